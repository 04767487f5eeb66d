//! A corpus of crafted malicious tars: extraction must never create, modify or link anything outside its root
//! (issue 4 "Extraction"; the corpus is generated here from raw headers so every case is readable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use cnb_lifecycle::archive::header::{encode, padding, EntryHeader, Kind};
use cnb_lifecycle::archive::{extract, ExtractOptions};

#[derive(Clone)]
enum E {
    File(&'static str, &'static str),
    Dir(&'static str),
    Sym(&'static str, String),
    Hard(&'static str, String),
    Char(&'static str),
    /// A name given as raw bytes through a PAX `path` record.
    LongFile(String),
    /// A GNU `././@LongLink` name.
    GnuLong(String),
    /// A regular file with this mode.
    Moded(&'static str, u32),
    /// A directory with mode 02775.
    SgidDir(&'static str),
}

fn raw(name: &[u8], kind: Kind, link: &[u8], data: &[u8], mode: u32) -> Vec<u8> {
    let mut out = encode(&EntryHeader {
        name: name.to_vec(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        size: data.len() as u64,
        mtime: 0,
        link: link.to_vec(),
        devmajor: 1,
        devminor: 3,
        xattrs: BTreeMap::new(),
    });
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    out
}

fn build(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            E::File(n, d) => out.extend(raw(n.as_bytes(), Kind::File, b"", d.as_bytes(), 0o644)),
            E::Dir(n) => out.extend(raw(n.as_bytes(), Kind::Dir, b"", b"", 0o755)),
            E::Sym(n, t) => out.extend(raw(n.as_bytes(), Kind::Symlink, t.as_bytes(), b"", 0o777)),
            E::Hard(n, t) => {
                out.extend(raw(n.as_bytes(), Kind::Hardlink, t.as_bytes(), b"", 0o644))
            }
            E::Char(n) => out.extend(raw(n.as_bytes(), Kind::Char, b"", b"", 0o666)),
            E::Moded(n, m) => out.extend(raw(n.as_bytes(), Kind::File, b"", b"m", *m)),
            E::SgidDir(n) => out.extend(raw(n.as_bytes(), Kind::Dir, b"", b"", 0o2775)),
            E::LongFile(n) => out.extend(raw(n.as_bytes(), Kind::File, b"", b"pwned", 0o644)),
            E::GnuLong(n) => {
                let mut name = n.clone().into_bytes();
                name.push(0);
                let mut h = [0u8; 512];
                h[..13].copy_from_slice(b"././@LongLink");
                h[100..108].copy_from_slice(b"0000644\0");
                h[108..116].copy_from_slice(b"0000000\0");
                h[116..124].copy_from_slice(b"0000000\0");
                h[124..136].copy_from_slice(format!("{:011o}\0", name.len()).as_bytes());
                h[136..148].copy_from_slice(b"00000000000\0");
                h[156] = b'L';
                h[257..265].copy_from_slice(b"ustar  \0");
                h[148..156].copy_from_slice(b"        ");
                let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
                h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
                out.extend_from_slice(&h);
                out.extend_from_slice(&name);
                out.resize(out.len() + padding(name.len() as u64), 0);
                out.extend(raw(b"placeholder", Kind::File, b"", b"pwned", 0o644));
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Everything under `dir` as (relative path, kind, content) for before/after comparison.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, p: &Path, out: &mut Vec<(String, String)>) {
        let md = fs::symlink_metadata(p).unwrap();
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let what = if md.is_dir() {
            let mut kids: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            for k in kids {
                walk(base, &k, out);
            }
            format!(
                "dir {:o}",
                std::os::unix::fs::PermissionsExt::mode(&md.permissions())
            )
        } else if md.file_type().is_symlink() {
            format!("link {}", fs::read_link(p).unwrap().display())
        } else {
            format!(
                "file {:?} nlink {}",
                fs::read(p).unwrap(),
                std::os::unix::fs::MetadataExt::nlink(&md)
            )
        };
        out.push((rel, what));
    }
    walk(dir, dir, &mut out);
    out
}

fn corpus(outside: &Path) -> Vec<(&'static str, Vec<E>)> {
    let o = outside.display().to_string();
    vec![
        ("dotdot file", vec![E::File("../outside/pwned", "x")]),
        ("nested dotdot", vec![E::File("a/../../outside/pwned", "x")]),
        (
            "absolute name is rebased",
            vec![E::File(
                Box::leak(format!("{o}/pwned").into_boxed_str()),
                "x",
            )],
        ),
        (
            "symlink parent relative escape",
            vec![E::Sym("l", "../outside".into()), E::File("l/pwned", "x")],
        ),
        (
            "symlink parent absolute host path",
            vec![E::Sym("l", o.clone()), E::File("l/pwned", "x")],
        ),
        (
            "symlink to root then up",
            vec![
                E::Sym("l", "/../../..".into()),
                E::File("l/outside/pwned", "x"),
            ],
        ),
        (
            "symlink dotdot chain",
            vec![
                E::Sym("a", "..".into()),
                E::File("a/a/a/outside/pwned", "x"),
            ],
        ),
        (
            "symlink chain",
            vec![
                E::Sym("l1", "l2".into()),
                E::Sym("l2", "../outside".into()),
                E::File("l1/pwned", "x"),
            ],
        ),
        (
            "symlink loop",
            vec![E::Sym("loop", "loop".into()), E::File("loop/x", "x")],
        ),
        (
            "hardlink dotdot",
            vec![E::Hard("h", "../outside/sentinel".into())],
        ),
        (
            "hardlink absolute host path",
            vec![E::Hard("h", format!("{o}/sentinel"))],
        ),
        (
            "hardlink through escaping symlink",
            vec![E::Sym("l", o.clone()), E::Hard("h", "l/sentinel".into())],
        ),
        (
            "whiteout dotdot",
            vec![E::File("../outside/.wh.sentinel", "")],
        ),
        (
            "whiteout through symlink",
            vec![
                E::Sym("w", "../outside".into()),
                E::File("w/.wh.sentinel", ""),
            ],
        ),
        (
            "opaque through symlink",
            vec![E::Sym("w", o.clone()), E::File("w/.wh..wh..opq", "")],
        ),
        (
            "file over symlink leaf",
            vec![E::Sym("s", format!("{o}/sentinel")), E::File("s", "pwned")],
        ),
        (
            "dir over symlink leaf",
            vec![E::Sym("d", o.clone()), E::Dir("d"), E::File("d/pwned", "x")],
        ),
        (
            "symlink replaces dir then write",
            vec![E::Dir("x"), E::Sym("x", o.clone()), E::File("x/pwned", "x")],
        ),
        (
            "hardlink to escaping symlink then write",
            vec![
                E::Sym("s", format!("{o}/sentinel")),
                E::Hard("h", "s".into()),
                E::File("h", "pwned"),
            ],
        ),
        (
            "pax long name with dotdot",
            vec![E::LongFile(format!(
                "{}/../../../outside/pwned",
                "a".repeat(120)
            ))],
        ),
        (
            "gnu longname with dotdot",
            vec![E::GnuLong("../../outside/pwned".into())],
        ),
        ("device node stays inside", vec![E::Char("dev/evil")]),
        (
            "root entry",
            vec![E::Dir("./"), E::Dir("/"), E::File("./ok", "x")],
        ),
        (
            "whiteout of the sentinel by absolute name",
            vec![E::File(
                Box::leak(format!("{o}/.wh.sentinel").into_boxed_str()),
                "",
            )],
        ),
        (
            "symlink in deep parent",
            vec![
                E::Dir("p"),
                E::Sym("p/q", "../../outside".into()),
                E::File("p/q/r/pwned", "x"),
            ],
        ),
    ]
}

#[test]
fn malicious_corpus_never_escapes() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("sentinel"), "precious").unwrap();
    let cases = corpus(&outside);
    assert!(cases.len() >= 20);
    let before = snapshot(t.path());
    for (i, (label, entries)) in cases.into_iter().enumerate() {
        let root = t.path().join("roots").join(i.to_string());
        fs::create_dir_all(&root).unwrap();
        let tar = build(&entries);
        let result = extract(&tar[..], &root, &ExtractOptions::default());
        let mut after = snapshot(t.path());
        after.retain(|(p, _)| !p.starts_with("roots"));
        assert_eq!(
            before, after,
            "case {label:?} changed something outside the root (result {result:?})"
        );
        // Whatever was extracted sits inside the root and every symlink target stays a string.
        if let Err(e) = &result {
            let msg = e.to_string();
            assert!(!msg.is_empty());
        }
    }
    // Dotdot names are refused with an error naming the entry.
    let e = extract(
        &build(&[E::File("../outside/pwned", "x")])[..],
        t.path(),
        &ExtractOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("../outside/pwned") && e.contains(".."), "{e}");
}

#[test]
fn contained_writes_land_inside_root() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let tar = build(&[
        E::Sym("l", "/../etc".into()),
        E::File("l/passwd", "inside"),
        E::File("/abs/file", "a"),
    ]);
    extract(&tar[..], &root, &ExtractOptions::default()).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "inside"
    );
    assert_eq!(fs::read_to_string(root.join("abs/file")).unwrap(), "a");
    assert_eq!(
        fs::read_link(root.join("l")).unwrap().display().to_string(),
        "/../etc"
    );
}

/// Issue 14: a whiteout `.wh..` / `.wh...` named `.` or `..` of its directory: at the root, `.wh...` used to
/// empty the root's *parent* (outside the root), `.wh..` the root itself. Both are refused now.
#[test]
fn climbing_whiteouts_are_refused() {
    for (label, entries) in [
        ("dot", vec![E::File(".wh..", "")]),
        ("dotdot at the root", vec![E::File(".wh...", "")]),
        (
            "dotdot below",
            vec![E::Dir("sub"), E::File("sub/.wh...", "")],
        ),
        ("reserved name", vec![E::File(".wh..wh.plnk", "")]),
    ] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("keep"), "inside").unwrap();
        fs::write(t.path().join("sibling"), "outside").unwrap();
        let before = snapshot(t.path());
        let err = extract(&build(&entries)[..], &root, &ExtractOptions::default())
            .expect_err(label)
            .to_string();
        assert!(err.contains("invalid whiteout name"), "{label}: {err}");
        let mut after = snapshot(t.path());
        after.retain(|(p, _)| p != "root/sub" && p != "root");
        let mut before = before;
        before.retain(|(p, _)| p != "root");
        assert_eq!(before, after, "{label}");
    }
}

/// The policy for buildpack-written layers: relocated below the anchor, hard links mapped and confined,
/// no devices, setuid/setgid cleared, entries outside the anchor skipped.
#[test]
fn untrusted_layers_are_relocated_and_stripped() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("deps");
    fs::create_dir(&root).unwrap();
    let tar = build(&[
        E::SgidDir("/layers/bp_a/deps"),
        E::File("/layers/bp_a/deps/lib/a", "a"),
        E::Hard("/layers/bp_a/deps/h", "/layers/bp_a/deps/lib/a".into()),
        E::File("/layers/bp_b/other/x", "other layer"),
        E::Char("/layers/bp_a/deps/dev"),
        E::Moded("/layers/bp_a/deps/suid", 0o6755),
        E::Sym("/layers/bp_a/deps/s", "lib/a".into()),
        E::SgidDir("/layers/bp_a/deps/shared"),
    ]);
    let opts = ExtractOptions::untrusted(&["bp_a", "deps"]);
    let stats = extract(&tar[..], &root, &opts).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(fs::read_to_string(root.join("lib/a")).unwrap(), "a");
    assert_eq!(
        fs::metadata(root.join("h")).unwrap().ino(),
        fs::metadata(root.join("lib/a")).unwrap().ino()
    );
    assert!(!root.join("dev").exists() && !root.join("x").exists());
    assert!(!t.path().join("layers").exists() && !root.join("layers").exists());
    assert_eq!(
        fs::metadata(root.join("suid"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(fs::read_link(root.join("s")).unwrap(), Path::new("lib/a"));
    // The anchor entry's mode is the layer directory's; a setgid directory (an fsGroup volume's) keeps
    // its bit: restored layers stay byte-identical.
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o7777,
        0o2775
    );
    assert_eq!(
        fs::metadata(root.join("shared"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o2775
    );
    assert_eq!((stats.skipped_devices, stats.setid_cleared), (1, 1));
    assert_eq!(stats.outside_anchor, 1);

    // A hard link whose target is outside the anchor (another layer, the cwd, an absolute host path)
    // is refused, naming the target.
    for target in ["/layers/bp_b/other/x", "victim", "/victim"] {
        let root = t.path().join(format!("r{}", target.len()));
        fs::create_dir(&root).unwrap();
        let tar = build(&[
            E::File("/layers/bp_b/other/x", "other"),
            E::Hard("/layers/bp_a/deps/hl", target.into()),
        ]);
        let err = extract(&tar[..], &root, &opts).unwrap_err();
        let msg = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(msg.contains("outside") && msg.contains(target), "{msg}");
        assert!(!root.join("hl").exists());
    }
}
