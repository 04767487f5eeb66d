//! A corpus of hostile layer tars (issue 14 goal 2) and a whole-tree snapshot to prove none of them changed
//! anything outside the directory a phase was meant to write.
//!
//! [`corpus`] generates every case from raw headers (so each is readable here): `..` names, absolute
//! names, symlink-then-write-through, hard links to outside / to a symlink / through a planted symlink,
//! device nodes, setuid/setgid root files, climbing whiteouts, duplicate entries, huge and "negative"
//! sizes, truncated archives, PAX/GNU long-name and long-link tricks, directory-over-symlink chmod. Entries
//! are named below a `prefix` (e.g. `/layers/bp_a/deps` for a cache layer, as the exporter writes them;
//! empty for a root filesystem layer), and aim at two victim directories: one inside the test's
//! container root, one outside it. [`Snapshot`] records paths, types, modes, owners, inodes, link counts,
//! sizes and content hashes; [`Snapshot::diff`] lists every difference outside the allowed subtrees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cnb_lifecycle::archive::header::{encode, padding, EntryHeader, Kind};
use sha2::{Digest as _, Sha256};

/// One entry of a hostile tar.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file with content and mode.
    File(String, Vec<u8>, u32),
    /// A directory with mode.
    Dir(String, u32),
    /// A symbolic link `name -> target`.
    Sym(String, String),
    /// A hard link `name` to `target` (an earlier entry's name, or anything).
    Hard(String, String),
    /// A character device (1:3) or, with `true`, a block device (8:0), mode 0666.
    Dev(String, bool),
    /// A FIFO.
    Fifo(String),
    /// A setuid/setgid file owned by root with this mode.
    RootFile(String, u32),
    /// A file entry whose header claims `1 << 40` bytes (a PAX `size` record) followed by 512 bytes.
    Huge(String),
    /// A file entry whose size field is base-256 all ones (a "negative" size).
    Negative(String),
    /// A GNU `././@LongLink` long name for a file.
    GnuLongName(String),
    /// A GNU `././@LongLink` long *link* name (`K`) for a hard link.
    GnuLongLink(String, String),
    /// Raw bytes appended as they are (e.g. a cut-off entry).
    Raw(Vec<u8>),
}

/// A named case.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case tries.
    pub name: &'static str,
    /// Its entries, in order.
    pub entries: Vec<Entry>,
    /// Leave off the end-of-archive blocks and cut the last entry (a truncated archive).
    pub truncated: bool,
}

fn header(name: &[u8], kind: Kind, link: &[u8], size: u64, mode: u32, uid: u64) -> Vec<u8> {
    encode(&EntryHeader {
        name: name.to_vec(),
        kind,
        mode,
        uid,
        gid: uid,
        size,
        mtime: 0,
        link: link.to_vec(),
        devmajor: 0,
        devminor: 0,
        xattrs: BTreeMap::new(),
    })
}

fn with_data(mut h: Vec<u8>, data: &[u8]) -> Vec<u8> {
    h.extend_from_slice(data);
    h.resize(h.len() + padding(data.len() as u64), 0);
    h
}

fn checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block[..512].iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn gnu_long(flag: u8, value: &str) -> Vec<u8> {
    let mut name = value.as_bytes().to_vec();
    name.push(0);
    let mut h = [0u8; 512];
    h[..13].copy_from_slice(b"././@LongLink");
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", name.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = flag;
    h[257..265].copy_from_slice(b"ustar  \0");
    checksum(&mut h);
    with_data(h.to_vec(), &name)
}

/// The tar bytes of `case`.
pub fn build(case: &Case) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &case.entries {
        match e {
            Entry::File(n, d, m) => out.extend(with_data(
                header(n.as_bytes(), Kind::File, b"", d.len() as u64, *m, 1000),
                d,
            )),
            Entry::Dir(n, m) => out.extend(header(n.as_bytes(), Kind::Dir, b"", 0, *m, 1000)),
            Entry::Sym(n, t) => out.extend(header(
                n.as_bytes(),
                Kind::Symlink,
                t.as_bytes(),
                0,
                0o777,
                1000,
            )),
            Entry::Hard(n, t) => out.extend(header(
                n.as_bytes(),
                Kind::Hardlink,
                t.as_bytes(),
                0,
                0o644,
                1000,
            )),
            Entry::Dev(n, block) => {
                let mut h = header(
                    n.as_bytes(),
                    if *block { Kind::Block } else { Kind::Char },
                    b"",
                    0,
                    0o666,
                    0,
                );
                let (maj, min) = if *block { (8, 0) } else { (1, 3) };
                let at = h.len() - 512;
                h[at + 329..at + 337].copy_from_slice(format!("{maj:07o}\0").as_bytes());
                h[at + 337..at + 345].copy_from_slice(format!("{min:07o}\0").as_bytes());
                checksum(&mut h[at..]);
                out.extend(h);
            }
            Entry::Fifo(n) => out.extend(header(n.as_bytes(), Kind::Fifo, b"", 0, 0o644, 1000)),
            Entry::RootFile(n, m) => out.extend(with_data(
                header(n.as_bytes(), Kind::File, b"", 4, *m, 0),
                b"root",
            )),
            Entry::Huge(n) => {
                out.extend(header(n.as_bytes(), Kind::File, b"", 1 << 40, 0o644, 1000));
                out.extend(vec![b'x'; 512]);
            }
            Entry::Negative(n) => {
                let mut h = header(n.as_bytes(), Kind::File, b"", 0, 0o644, 1000);
                let at = h.len() - 512;
                for b in &mut h[at + 124..at + 136] {
                    *b = 0xff;
                }
                checksum(&mut h[at..]);
                out.extend(h);
                out.extend(vec![b'y'; 512]);
            }
            Entry::GnuLongName(n) => {
                out.extend(gnu_long(b'L', n));
                out.extend(with_data(
                    header(b"placeholder", Kind::File, b"", 5, 0o644, 1000),
                    b"pwned",
                ));
            }
            Entry::GnuLongLink(n, t) => {
                out.extend(gnu_long(b'K', t));
                out.extend(header(
                    n.as_bytes(),
                    Kind::Hardlink,
                    b"placeholder",
                    0,
                    0o644,
                    1000,
                ));
            }
            Entry::Raw(b) => out.extend_from_slice(b),
        }
    }
    if case.truncated {
        // Cut the last entry's data in half and end the stream there.
        let keep = out.len().saturating_sub(700);
        out.truncate(keep);
    } else {
        out.extend_from_slice(&[0u8; 1024]);
    }
    out
}

/// The corpus: entries below `prefix` (`""` or e.g. `/layers/bp_a/deps`), aiming at `victim_in` (a
/// directory inside the container root, reached from the target with `up` = enough `../`) and
/// `victim_out` (an absolute directory outside it). Each victim directory holds `victim-file` and
/// `sub/precious`. `cwd_rel` is the victim as seen from the phase's working directory.
pub fn corpus(
    prefix: &str,
    up: &str,
    victim_in: &Path,
    victim_out: &Path,
    cwd_rel: &str,
) -> Vec<Case> {
    let p = |s: &str| {
        if prefix.is_empty() {
            s.to_string()
        } else {
            format!("{}/{s}", prefix.trim_end_matches('/'))
        }
    };
    let vin = victim_in.display().to_string();
    let vout = victim_out.display().to_string();
    let f = |n: String, d: &str| Entry::File(n, d.as_bytes().to_vec(), 0o644);
    let c = |name: &'static str, entries: Vec<Entry>| Case {
        name,
        entries,
        truncated: false,
    };
    let long = "a".repeat(120);
    let mut cases = vec![
        c(
            "dotdot file",
            vec![f(p(&format!("{up}victim-dir/pwned")), "x")],
        ),
        c(
            "nested dotdot",
            vec![f(p(&format!("a/../{up}victim-dir/pwned")), "x")],
        ),
        c(
            "absolute name outside",
            vec![f(format!("{vout}/pwned"), "x")],
        ),
        c(
            "absolute name, issue 14 style",
            vec![
                f("/victim-dir/evil".into(), "x"),
                f(p("x/../../../victim-dir/evil"), "x"),
            ],
        ),
        c(
            "symlink then write (relative)",
            vec![
                Entry::Sym(p("l"), format!("{up}victim-dir")),
                f(p("l/pwned"), "x"),
            ],
        ),
        c(
            "symlink then write (absolute)",
            vec![Entry::Sym(p("l"), vout.clone()), f(p("l/pwned"), "x")],
        ),
        c(
            "symlink chain",
            vec![
                Entry::Sym(p("l1"), "l2".into()),
                Entry::Sym(p("l2"), vout.clone()),
                f(p("l1/pwned"), "x"),
            ],
        ),
        c(
            "symlink to .. repeated",
            vec![
                Entry::Sym(p("a"), "..".into()),
                f(p("a/a/a/a/a/a/victim-dir/pwned"), "x"),
            ],
        ),
        c(
            "hard link to absolute outside file",
            vec![Entry::Hard(p("hl"), format!("{vout}/victim-file"))],
        ),
        c(
            "hard link relative to the cwd",
            vec![Entry::Hard(p("hl"), format!("{cwd_rel}/victim-file"))],
        ),
        c(
            "hard link with dotdot",
            vec![Entry::Hard(
                p("hl"),
                p(&format!("{up}victim-dir/victim-file")),
            )],
        ),
        c(
            "hard link through a planted symlink",
            vec![
                Entry::Sym(p("l"), vout.clone()),
                Entry::Hard(p("hl"), p("l/victim-file")),
            ],
        ),
        c(
            "hard link to a symlink, then write through it",
            vec![
                Entry::Sym(p("s"), format!("{vout}/victim-file")),
                Entry::Hard(p("h"), p("s")),
                f(p("h"), "pwned"),
            ],
        ),
        c(
            "directory over a symlink (chmod 0777, outside)",
            vec![Entry::Sym(p("x"), vout.clone()), Entry::Dir(p("x"), 0o777)],
        ),
        c(
            "directory over a symlink (chmod 0777, inside the root)",
            vec![Entry::Sym(p("x"), vin.clone()), Entry::Dir(p("x"), 0o777)],
        ),
        c(
            "file over a symlink",
            vec![
                Entry::Sym(p("s"), format!("{vout}/victim-file")),
                f(p("s"), "pwned"),
            ],
        ),
        c("character device", vec![Entry::Dev(p("null2"), false)]),
        c("block device", vec![Entry::Dev(p("disk"), true)]),
        c("fifo", vec![Entry::Fifo(p("fifo"))]),
        c("setuid root file", vec![Entry::RootFile(p("suid"), 0o4755)]),
        c("setgid root file", vec![Entry::RootFile(p("sgid"), 0o2755)]),
        c("whiteout of '..' (.wh...)", vec![f(p(".wh..."), "")]),
        c(
            "whiteout of '.' (.wh..)",
            vec![Entry::Dir(p("d"), 0o755), f(p("d/.wh.."), "")],
        ),
        c(
            "whiteout with dotdot",
            vec![f(p(&format!("{up}victim-dir/.wh.victim-file")), "")],
        ),
        c(
            "whiteout through a symlink",
            vec![
                Entry::Sym(p("w"), vout.clone()),
                f(p("w/.wh.victim-file"), ""),
            ],
        ),
        c(
            "opaque whiteout through a symlink",
            vec![Entry::Sym(p("w"), vout.clone()), f(p("w/.wh..wh..opq"), "")],
        ),
        c(
            "duplicate entries",
            vec![
                f(p("dup"), "one"),
                f(p("dup"), "two"),
                Entry::Dir(p("dup"), 0o755),
                Entry::Sym(p("dup"), vout.clone()),
                f(p("dup/x"), "x"),
                Entry::Dir(p("dup"), 0o777),
            ],
        ),
        c("huge size", vec![Entry::Huge(p("huge"))]),
        c("negative size", vec![Entry::Negative(p("neg"))]),
        Case {
            name: "truncated archive",
            entries: vec![
                Entry::Dir(p("t"), 0o755),
                Entry::File(p("t/big"), vec![b'z'; 4000], 0o644),
            ],
            truncated: true,
        },
        c(
            "PAX long name with dotdot",
            vec![f(p(&format!("{long}/../../{up}victim-dir/pwned")), "x")],
        ),
        c(
            "GNU long name with dotdot",
            vec![Entry::GnuLongName(p(&format!("{up}victim-dir/pwned")))],
        ),
        c(
            "PAX long link target outside",
            vec![Entry::Hard(
                p("hl"),
                format!("{vout}/{}/../victim-file", "b".repeat(120)),
            )],
        ),
        c(
            "GNU long link target outside",
            vec![Entry::GnuLongLink(p("hl"), format!("{vout}/victim-file"))],
        ),
        c(
            "symlink loop",
            vec![Entry::Sym(p("loop"), "loop".into()), f(p("loop/x"), "x")],
        ),
        c(
            "garbage after a valid entry",
            vec![
                f(p("ok"), "ok"),
                Entry::Raw(b"this is not a tar header".repeat(30)),
            ],
        ),
    ];
    cases.extend([
        c(
            "PAX long symlink target, then write through",
            vec![
                Entry::Sym(p("l"), format!("{vout}/{}/..", "c".repeat(120))),
                f(p("l/pwned"), "x"),
            ],
        ),
        c(
            "symlink through /proc/self/root",
            vec![
                Entry::Sym(p("l"), format!("/proc/self/root{vout}")),
                f(p("l/pwned"), "x"),
            ],
        ),
        c(
            "hard link to a directory outside",
            vec![Entry::Hard(p("hd"), vout.clone())],
        ),
    ]);
    if !prefix.is_empty() {
        // Relocating flows (restore): the anchor directory itself, or its parent, planted as a symlink.
        let anchor = prefix.trim_end_matches('/').to_string();
        let parent = anchor
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        cases.push(c(
            "anchor directory is a symlink outside",
            vec![Entry::Sym(anchor.clone(), vout.clone()), f(p("pwned"), "x")],
        ));
        if !parent.is_empty() {
            cases.push(c(
                "parent of the anchor is a symlink outside",
                vec![Entry::Sym(parent, vout.clone()), f(p("pwned"), "x")],
            ));
        }
    }
    cases
}

/// Creates a victim directory: `victim-file` ("precious"), `sub/precious`, mode 0750 on the directory.
pub fn make_victim(dir: &Path) {
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("victim-file"), "precious").unwrap();
    fs::write(dir.join("sub/precious"), "precious").unwrap();
    fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
}

/// What a snapshot records for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `dir`, `file`, `link -> target`, `char`, `block`, `fifo`, `socket`.
    pub kind: String,
    /// Permission bits and setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Inode number.
    pub ino: u64,
    /// Link count (files only; a directory's changes with its subdirectories).
    pub nlink: u64,
    /// sha256 of a regular file's content.
    pub hash: Option<String>,
}

/// Every path under some roots with its [`Node`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Node>);

impl Snapshot {
    /// Walks `roots` (without following symlinks).
    pub fn take(roots: &[&Path]) -> Snapshot {
        let mut s = Snapshot::default();
        for r in roots {
            s.walk(r);
        }
        s
    }

    fn walk(&mut self, p: &Path) {
        let Ok(m) = fs::symlink_metadata(p) else {
            return;
        };
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!(
                "link -> {}",
                fs::read_link(p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            )
        } else if ft.is_char_device() {
            "char".into()
        } else if ft.is_block_device() {
            "block".into()
        } else if ft.is_fifo() {
            "fifo".into()
        } else if ft.is_socket() {
            "socket".into()
        } else {
            "file".into()
        };
        let hash = ft
            .is_file()
            .then(|| fs::read(p).ok())
            .flatten()
            .map(|b| hex::encode(Sha256::digest(b)));
        self.0.insert(
            p.to_path_buf(),
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                ino: m.ino(),
                nlink: if ft.is_dir() { 0 } else { m.nlink() },
                hash,
            },
        );
        if ft.is_dir() {
            let mut kids: Vec<PathBuf> = fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            kids.sort();
            for k in kids {
                self.walk(&k);
            }
        }
    }

    /// Differences between `self` (before) and `after` outside `allowed` subtrees (a path equal to or
    /// below one of them); a directory that is an ancestor of an allowed path may appear.
    pub fn diff(&self, after: &Snapshot, allowed: &[PathBuf]) -> Vec<String> {
        let is_allowed = |p: &Path| allowed.iter().any(|a| p.starts_with(a));
        let is_ancestor = |p: &Path| allowed.iter().any(|a| a.starts_with(p));
        let mut out = Vec::new();
        for (p, n) in &self.0 {
            if is_allowed(p) {
                continue;
            }
            match after.0.get(p) {
                None => out.push(format!("removed {}", p.display())),
                Some(m) if m != n => out.push(format!("changed {}: {n:?} -> {m:?}", p.display())),
                Some(_) => {}
            }
        }
        for (p, n) in &after.0 {
            if !(self.0.contains_key(p) || is_allowed(p) || (is_ancestor(p) && n.kind == "dir")) {
                out.push(format!("created {} ({n:?})", p.display()));
            }
        }
        out
    }
}
