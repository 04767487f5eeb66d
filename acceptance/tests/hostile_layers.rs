//! Hostile layers through every flow that unpacks an untrusted tar, as the phase really runs it (issue 14
//! goal 2): the corpus of `cnb_acceptance::hostile` (≥ 25 crafted tars) goes through
//!
//! 1. the restorer's cache directory (as the build user),
//! 2. the restorer's cache image in a loopback registry (as the build user),
//! 3. the analyzer's restore of the previous image's SBOM layer (as the build user),
//! 4. the creator's `-build-image` unpack (as root, the only way it runs),
//! 5. the extender's unpack of its base image (as root, in a user namespace).
//!
//! Around each run the whole test tree (the container root, a victim directory inside it, another
//! outside it) is snapshotted — paths, types, modes, owners, inodes, link counts, content hashes — and
//! nothing may differ outside the directories the phase is meant to write. Where the phase reports a
//! failure for a layer, nothing of that layer may be left behind; what a buildpack-written layer may
//! create (no devices, no setuid/setgid files) is checked too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{bin_dir, chown_tree, running_as_root, ContainerRoot, Output};
use cnb_acceptance::hostile::{build, corpus, make_victim, Case, Snapshot};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use cnb_lifecycle::archive::{Compression, LayerInfo, LayerWriter, Sink};
use cnb_lifecycle::image::layout::{Layout, Selector};
use cnb_lifecycle::image::{Image, ImageBuilder};
use sha2::{Digest as _, Sha256};

/// A container root with a victim directory inside it and one outside, owned by the build user (so a
/// hard link to them is not already refused by `fs.protected_hardlinks`).
struct World {
    root: ContainerRoot,
    outside: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World::owned_by(1000, 1000)
    }

    /// Everything (victims included) owned by `uid:gid`, the identity the phase runs as.
    fn owned_by(uid: u32, gid: u32) -> World {
        let root = ContainerRoot::new();
        let outside = tempfile::tempdir().unwrap();
        make_victim(&root.join("victim-dir"));
        make_victim(&outside.path().join("victim-dir"));
        if running_as_root() {
            root.chown(uid, gid);
            chown_tree(outside.path(), uid, gid);
        }
        World { root, outside }
    }

    fn victim_out(&self) -> PathBuf {
        self.outside.path().join("victim-dir")
    }

    fn cases(&self, prefix: &str, up: &str) -> Vec<Case> {
        corpus(
            prefix,
            up,
            &self.root.join("victim-dir"),
            &self.victim_out(),
            "victim-dir",
        )
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::take(&[self.root.path(), self.outside.path()])
    }
}

/// One flow's verdict on one case, for the table printed at the end.
struct Verdict {
    case: &'static str,
    code: Option<i32>,
    note: String,
}

fn report(flow: &str, verdicts: &[Verdict]) {
    println!(
        "== {flow}: {} cases, 0 changes outside the target",
        verdicts.len()
    );
    for v in verdicts {
        println!("  {:<52} exit {:?}  {}", v.case, v.code, v.note);
    }
}

fn assert_contained(
    flow: &str,
    case: &Case,
    before: &Snapshot,
    after: &Snapshot,
    allowed: &[PathBuf],
    out: &Output,
) {
    let diffs = before.diff(after, allowed);
    assert!(
        diffs.is_empty(),
        "{flow}: case {:?} changed things outside the target:\n{}\n--- output\n{}{}",
        case.name,
        diffs.join("\n"),
        out.stdout,
        out.stderr
    );
}

/// No device node, FIFO is fine, no setuid/setgid file under `dir` (buildpack-written layers).
fn assert_policy(flow: &str, case: &Case, dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = m.file_type();
        assert!(
            !ft.is_char_device() && !ft.is_block_device(),
            "{flow}: case {:?} created a device {}",
            case.name,
            p.display()
        );
        assert!(
            !(ft.is_file() && m.mode() & 0o6000 != 0),
            "{flow}: case {:?} created a setuid/setgid file {}",
            case.name,
            p.display()
        );
        if ft.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn group_bp_a(root: &ContainerRoot) {
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
}

fn cache_metadata(diff_id: &str) -> String {
    format!(
        r#"{{"buildpacks":[{{"key":"bp/a","version":"1.0","layers":{{"deps":{{"sha":"{diff_id}","data":{{"v":"1"}},"build":true,"launch":false,"cache":true}}}}}}]}}"#
    )
}

/// What the restorer did with the layer: restored, or skipped (then nothing of it may be left).
fn restorer_verdict(flow: &str, case: &Case, w: &World, out: &Output) -> Verdict {
    let dir = w.root.join("layers/bp_a/deps");
    let text = format!("{}{}", out.stdout, out.stderr);
    let note = if text.contains("Skipping restore for layer") {
        assert!(
            !dir.exists() && !w.root.exists("layers/bp_a/deps.toml"),
            "{flow}: case {:?}: a skipped layer left data or metadata behind",
            case.name
        );
        "skipped (warning), nothing left".to_string()
    } else if dir.exists() {
        assert_policy(flow, case, &dir);
        "restored (policy applied)".to_string()
    } else {
        "nothing restored".to_string()
    };
    Verdict {
        case: case.name,
        code: out.code,
        note,
    }
}

/// Flow 1: a cache directory whose committed layer is the hostile tar.
#[test]
fn restorer_cache_dir_contains_every_hostile_layer() {
    let mut verdicts = Vec::new();
    let probe = World::new();
    let n = probe.cases("/layers/bp_a/deps", "../../../").len();
    assert!(n >= 25, "corpus has {n} cases");
    for i in 0..n {
        let w = World::new();
        let case = w.cases("/layers/bp_a/deps", "../../../").swap_remove(i);
        let tar = build(&case);
        let sha = sha256(&tar);
        group_bp_a(&w.root);
        w.root.write(format!("cache/committed/{sha}.tar"), &tar);
        w.root.write(
            "cache/committed/io.buildpacks.lifecycle.cache.metadata",
            cache_metadata(&sha),
        );
        if running_as_root() {
            w.root.chown(1000, 1000);
        }
        let before = w.snapshot();
        let out = w
            .root
            .phase("restorer")
            .arg(format!("-cache-dir={}", w.root.join("cache").display()))
            .run();
        let after = w.snapshot();
        let allowed = [
            w.root.join("layers/bp_a/deps"),
            w.root.join("layers/bp_a/deps.toml"),
            w.root.join("cache/staging"),
            w.root.join("layers/sbom"),
        ];
        assert_contained(
            "restorer -cache-dir",
            &case,
            &before,
            &after,
            &allowed,
            &out,
        );
        out.assert_success();
        verdicts.push(restorer_verdict("restorer -cache-dir", &case, &w, &out));
    }
    report("restorer -cache-dir (build user)", &verdicts);
}

/// A gzip layer blob of `tar` in `layout`'s blob dir.
fn layer_blob(layout: &Layout, tar: &[u8]) -> LayerInfo {
    let mut lw = LayerWriter::new(
        Compression::Gzip { level: 1 },
        Sink::BlobDir(layout.blob_dir()),
    )
    .unwrap();
    std::io::Write::write_all(&mut lw, tar).unwrap();
    lw.finish().unwrap()
}

/// Flow 2: a cache image in a registry whose layer is the hostile tar.
#[test]
fn restorer_cache_image_contains_every_hostile_layer() {
    let reg = Registry::start(RegistryOptions::plain());
    let mut verdicts = Vec::new();
    let n = World::new().cases("/layers/bp_a/deps", "../../../").len();
    for i in 0..n {
        let w = World::new();
        let case = w.cases("/layers/bp_a/deps", "../../../").swap_remove(i);
        let tar = build(&case);
        let img_dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(img_dir.path()).unwrap();
        let info = layer_blob(&layout, &tar);
        let mut ib = ImageBuilder::empty(&cnb_lifecycle::image::oci::Platform::current());
        ib.add_layer(&info, None).unwrap();
        ib.set_label(
            "io.buildpacks.lifecycle.cache.metadata",
            &cache_metadata(info.diff_id.as_ref()),
        );
        ib.save_to_layout(&layout, &["latest".to_string()]).unwrap();
        let cache = reg.image(&format!("cache/case{i}:latest"));
        reg.skopeo_copy(
            &format!("oci:{}:latest", img_dir.path().display()),
            &format!("docker://{cache}"),
        );
        group_bp_a(&w.root);
        if running_as_root() {
            w.root.chown(1000, 1000);
        }
        let before = w.snapshot();
        let out = w
            .root
            .phase("restorer")
            .env("CNB_INSECURE_REGISTRIES", reg.host())
            .arg(format!("-cache-image={cache}"))
            .run();
        let after = w.snapshot();
        let allowed = [
            w.root.join("layers/bp_a/deps"),
            w.root.join("layers/bp_a/deps.toml"),
            w.root.join("layers/sbom"),
        ];
        assert_contained(
            "restorer -cache-image",
            &case,
            &before,
            &after,
            &allowed,
            &out,
        );
        out.assert_success();
        verdicts.push(restorer_verdict("restorer -cache-image", &case, &w, &out));
    }
    report(
        "restorer -cache-image (build user, loopback registry)",
        &verdicts,
    );
}

/// Flow 3: a previous image (OCI layout) whose SBOM layer is the hostile tar.
#[test]
fn analyzer_previous_image_sbom_contains_every_hostile_layer() {
    let mut verdicts = Vec::new();
    let n = World::new().cases("/layers/sbom/launch", "../../../").len();
    for i in 0..n {
        let w = World::new();
        let case = w.cases("/layers/sbom/launch", "../../../").swap_remove(i);
        let tar = build(&case);
        let oci = w.root.join("oci");
        let prev = oci.join("localhost/test/prev/latest");
        let layout = Layout::create(&prev).unwrap();
        let info = layer_blob(&layout, &tar);
        let mut ib = ImageBuilder::empty(&cnb_lifecycle::image::oci::Platform::current());
        ib.add_layer(&info, None).unwrap();
        ib.set_label(
            "io.buildpacks.lifecycle.metadata",
            &format!(r#"{{"sbom":{{"sha":"{}"}}}}"#, info.diff_id),
        );
        ib.save_to_layout(&layout, &["latest".to_string()]).unwrap();
        copy_busybox(&oci.join("localhost/test/run/latest"));
        group_bp_a(&w.root);
        if running_as_root() {
            w.root.chown(1000, 1000);
        }
        let before = w.snapshot();
        let out = w
            .root
            .phase("analyzer")
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .args([
                "-layout".to_string(),
                format!("-layout-dir={}", oci.display()),
                "-run-image=localhost/test/run:latest".to_string(),
                "-previous-image=localhost/test/prev:latest".to_string(),
                "localhost/test/app:latest".to_string(),
            ])
            .run();
        let after = w.snapshot();
        let allowed = [
            w.root.join("layers/sbom"),
            w.root.join("layers/analyzed.toml"),
        ];
        assert_contained("analyzer SBOM", &case, &before, &after, &allowed, &out);
        let sbom = w.root.join("layers/sbom/launch");
        let note = match out.code {
            Some(0) => {
                assert_policy("analyzer SBOM", &case, &sbom);
                "restored (policy applied)".to_string()
            }
            _ => {
                assert!(
                    out.stderr.contains("SBOM") || out.stdout.contains("SBOM"),
                    "analyzer: case {:?}: the error must name the SBOM layer:\n{}{}",
                    case.name,
                    out.stdout,
                    out.stderr
                );
                "refused (error naming the SBOM layer)".to_string()
            }
        };
        verdicts.push(Verdict {
            case: case.name,
            code: out.code,
            note,
        });
    }
    report(
        "analyzer previous-image SBOM (build user, layout)",
        &verdicts,
    );
}

/// A real copy (no hard links into the shared cached image) of the busybox layout at `dest`.
fn copy_busybox(dest: &Path) {
    let base = busybox();
    fs::create_dir_all(dest.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(base.layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dest.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    for f in ["index.json", "oci-layout"] {
        fs::copy(base.layout.join(f), dest.join(f)).unwrap();
    }
}

/// The busybox image plus a top layer holding `tar`, as an OCI layout at `dir` (blobs copied, never
/// linked); returns the manifest digest.
fn busybox_plus(dir: &Path, tar: &[u8]) -> String {
    let base = busybox();
    let img = Image::from_layout(&base.layout, &Selector::Tag(base.tag.clone()), None).unwrap();
    let layout = Layout::create(dir).unwrap();
    let info = layer_blob(&layout, tar);
    let mut ib = ImageBuilder::from_base(&img).unwrap();
    ib.add_layer(&info, Some("hostile".into())).unwrap();
    let report = ib.save_to_layout(&layout, &["latest".to_string()]).unwrap();
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let bytes = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    report.manifest_digest.to_string()
}

/// Flow 4: `creator -build-image` whose build image's top layer is the hostile tar (root, as it runs).
#[test]
fn creator_build_image_unpack_contains_every_hostile_layer() {
    assert!(
        running_as_root(),
        "the creator unpacks build images and runs them in user namespaces as root"
    );
    let mut verdicts = Vec::new();
    let n = World::new().cases("", "../../../").len();
    for i in 0..n {
        let w = World::new();
        // The unpack root is <root>/bicache/.unpack-*/rootfs: three levels below the container root.
        let case = w.cases("", "../../../").swap_remove(i);
        let tar = build(&case);
        let bi = w.outside.path().join("build-image");
        busybox_plus(&bi, &tar);
        let r = &w.root;
        r.write(
            "cnb/buildpacks/bp_a/1.0/buildpack.toml",
            "api = \"0.10\"\n[buildpack]\nid = \"bp/a\"\nversion = \"1.0\"\n",
        );
        r.write_executable("cnb/buildpacks/bp_a/1.0/bin/detect", "#!/bin/sh\nexit 0\n");
        r.write_executable("cnb/buildpacks/bp_a/1.0/bin/build", "#!/bin/sh\nexit 0\n");
        r.write(
            "cnb/order.toml",
            "[[order]]\n[[order.group]]\nid = \"bp/a\"\nversion = \"1.0\"\n",
        );
        r.write(
            "cnb/run.toml",
            "[[images]]\nimage = \"localhost/test/run:latest\"\n",
        );
        copy_busybox(&r.join("oci/localhost/test/run/latest"));
        r.chown(1000, 1000);
        chown_tree(w.outside.path(), 1000, 1000);
        let before = w.snapshot();
        let out = r
            .phase("creator")
            .as_current_user()
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .env(
                "CNB_BUILD_IMAGE_CACHE",
                r.join("bicache").display().to_string(),
            )
            .env(
                "CNB_ORDER_PATH",
                r.join("cnb/order.toml").display().to_string(),
            )
            .args([
                "-layout".to_string(),
                format!("-layout-dir={}", r.join("oci").display()),
                format!("-run={}", r.join("cnb/run.toml").display()),
                format!("-build-image={}", bi.display()),
                format!("-cache-dir={}", r.join("cache").display()),
                format!("-launcher={}", bin_dir().join("launcher").display()),
                "localhost/test/app:latest".to_string(),
            ])
            .run();
        let after = w.snapshot();
        // The exporter hard-links the run image's blobs into the app layout (link counts change).
        let allowed = [
            r.join("bicache"),
            r.join("oci/localhost/test/run"),
            r.join("layers"),
            r.join("cache"),
            r.join("oci/localhost/test/app"),
            r.join("workspace"),
        ];
        assert_contained(
            "creator -build-image",
            &case,
            &before,
            &after,
            &allowed,
            &out,
        );
        let note = if out.code == Some(0) {
            "unpacked (inside its root), build ran".to_string()
        } else if out.stdout.contains("unpacking layer") || out.stderr.contains("unpacking layer") {
            "refused while unpacking (error names the layer)".to_string()
        } else {
            "unpacked; the build failed later".to_string()
        };
        verdicts.push(Verdict {
            case: case.name,
            code: out.code,
            note,
        });
    }
    report("creator -build-image unpack (root)", &verdicts);
}

/// Flow 5: the extender applying a run.Dockerfile with a `RUN` step to a base image whose top layer
/// is the hostile tar. The extender unpacks a base image only when it extends a private copy: as an
/// unprivileged user (with a subordinate id range) that cannot write the run image's `/` — the
/// rootless way it runs in a container with user namespaces allowed. So: the rootless test user, a
/// root-owned extender root (`CNB_EXTENDER_ROOT`) whose kaniko dir it owns, the base layout where the
/// restorer leaves it (`<kaniko>/cache/base/<digest>`). The unpack runs in a user namespace as its root.
#[test]
fn extender_base_unpack_contains_every_hostile_layer() {
    assert!(
        running_as_root(),
        "the extender flow needs root to create the rootless test user and its subordinate ids"
    );
    let (uid, gid) = cnb_acceptance::rootless::ensure_user();
    let mut verdicts = Vec::new();
    // The unpack root is <outside>/extroot/kaniko/extend-*/rootfs: four levels below the victim.
    let up = "../../../../";
    let n = World::new().cases("", up).len();
    for i in 0..n {
        let w = World::owned_by(uid, gid);
        let case = w.cases("", up).swap_remove(i);
        let tar = build(&case);
        let r = &w.root;
        let extroot = w.outside.path().join("extroot");
        let tmp = w.outside.path().join("base");
        let digest = busybox_plus(&tmp, &tar);
        let base = extroot.join("kaniko/cache/base").join(&digest);
        fs::create_dir_all(base.parent().unwrap()).unwrap();
        fs::rename(&tmp, &base).unwrap();
        r.write(
            "layers/analyzed.toml",
            format!(
                "[run-image]\n  reference = \"registry.example/run@{digest}\"\n  extend = true\n"
            ),
        );
        r.write(
            "layers/group.toml",
            "[[group]]\n  id = \"bp/a\"\n  version = \"1.0\"\n  api = \"0.10\"\n\n[[group-extensions]]\n  id = \"samples/ext\"\n  version = \"0.0.1\"\n  api = \"0.10\"\n",
        );
        r.write(
            "layers/generated/samples_ext/run.Dockerfile",
            "ARG base_image\nFROM ${base_image}\nUSER 0:0\nRUN echo extended > /extended-marker\nUSER 1000:1000\n",
        );
        r.chown(uid, gid);
        chown_tree(&extroot, 0, 0);
        chown_tree(&extroot.join("kaniko"), uid, gid);
        let before = w.snapshot();
        let out = r
            .phase("extender")
            .user(uid, gid)
            .env("CNB_EXTENDER_ROOT", extroot.display().to_string())
            .arg("-kind=run")
            .run();
        let after = w.snapshot();
        let allowed = [
            extroot.join("kaniko/cache/layers"),
            r.join("layers/extended"),
        ];
        // The scratch dir is `extend-<random>`: allow any sibling with that prefix.
        let allowed: Vec<PathBuf> = allowed
            .iter()
            .cloned()
            .chain(
                after
                    .0
                    .keys()
                    .chain(before.0.keys())
                    .filter(|p| {
                        p.parent() == Some(&extroot.join("kaniko"))
                            && p.file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with("extend-"))
                    })
                    .cloned(),
            )
            .collect();
        assert_contained(
            "extender base unpack",
            &case,
            &before,
            &after,
            &allowed,
            &out,
        );
        assert!(
            out.all()
                .contains("extending a private copy of the run image"),
            "extender: case {:?}: expected the private-copy path:\n{}",
            case.name,
            out.all()
        );
        let extended = fs::read_dir(r.join("layers/extended/run"))
            .map(|d| d.count())
            .unwrap_or(0);
        let note = if out.code == Some(0) {
            assert_eq!(
                extended, 1,
                "extender: case {:?}: no extended image",
                case.name
            );
            "unpacked (inside its root), RUN ran".to_string()
        } else {
            assert_eq!(
                out.code,
                Some(102),
                "extender: case {:?}: {}",
                case.name,
                out.all()
            );
            assert_eq!(
                extended, 0,
                "extender: case {:?}: a failed extension left an extended image",
                case.name
            );
            assert!(
                out.all().contains("unpacking base layer"),
                "extender: case {:?}: the error must name the base layer:\n{}",
                case.name,
                out.all()
            );
            "refused (exit 102, names the layer, nothing written)".to_string()
        };
        verdicts.push(Verdict {
            case: case.name,
            code: out.code,
            note,
        });
    }
    report(
        "extender base unpack (rootless user, user namespace, private copy)",
        &verdicts,
    );
}

/// The control: the corpus through a naive extractor (GNU tar with `-P`, which keeps absolute names
/// and `..`, and follows what earlier entries planted) does change things outside its directory, and
/// the snapshot sees it — so the flows above pass because the phases contain the corpus, not because
/// the corpus or the snapshot is toothless.
#[test]
fn the_snapshot_sees_what_a_naive_extractor_does() {
    let mut escaped = Vec::new();
    let n = World::new().cases("", "../").len();
    for i in 0..n {
        let w = World::new();
        let case = w.cases("", "../").swap_remove(i);
        let target = w.root.join("unpack");
        fs::create_dir_all(&target).unwrap();
        let tar = w.outside.path().join("case.tar");
        fs::write(&tar, build(&case)).unwrap();
        let before = w.snapshot();
        let _ = std::process::Command::new("tar")
            .arg("-xPf")
            .arg(&tar)
            .arg("-C")
            .arg(&target)
            .output()
            .unwrap();
        let after = w.snapshot();
        if !before
            .diff(&after, &[target.clone(), tar.clone()])
            .is_empty()
        {
            escaped.push(case.name);
        }
    }
    println!(
        "== naive control (GNU tar -P): {} of {n} cases changed things outside: {escaped:?}",
        escaped.len()
    );
    for must in [
        "dotdot file",
        "absolute name outside",
        "symlink then write (absolute)",
        "hard link to absolute outside file",
        "hard link through a planted symlink",
        "whiteout through a symlink",
    ] {
        assert!(
            escaped.contains(&must),
            "{must:?} did not escape: {escaped:?}"
        );
    }
}
