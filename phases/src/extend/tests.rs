//! Tests of the extender engine on a real busybox-static root filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::apply::{apply, ExtensionInput, ImageState, Outcome, Request};
use super::cache::StepCache;
use super::dockerfile;
use super::sandbox::{in_user_namespace, IdMapping};
use super::snapshot::Ignore;

/// A busybox-static root filesystem with a build user 1000:1000 `cnb`.
pub(crate) fn busybox_root(dir: &Path) {
    for d in [
        "bin", "etc", "tmp", "root", "home/cnb", "usr/bin", "proc", "dev",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "rm", "ls", "vi", "mkdir", "touch", "id", "env", "pwd", "chmod",
        "false", "true", "ln", "stat",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\ncnb:x:1000:\n").unwrap();
    std::os::unix::fs::chown(dir.join("home/cnb"), Some(1000), Some(1000)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Runs `f` as root of a user namespace mapped like the extender's (so a rootless run can own files
/// of any mapped id).
pub(crate) fn in_ns(f: impl FnOnce()) {
    let mapping = IdMapping::detect().unwrap();
    in_user_namespace(&mapping, || {
        f();
        Ok(())
    })
    .unwrap();
}

/// The host id that namespace id `id` maps to.
pub(crate) fn host_id(id: u32) -> u32 {
    match IdMapping::detect().unwrap() {
        IdMapping::Identity => id,
        IdMapping::Rootless { subuid, .. } => subuid.0 + id - 1,
        IdMapping::Single { uid, .. } => uid,
    }
}

pub(crate) struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub ctx: PathBuf,
    pub blobs: PathBuf,
    pub cache: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    in_ns(|| busybox_root(&root));
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let blobs = tmp.path().join("blobs");
    let cache = tmp.path().join("cache");
    Fixture {
        root,
        ctx,
        blobs,
        cache,
        _tmp: tmp,
    }
}

pub(crate) fn run_one(
    f: &Fixture,
    text: &str,
    args: Vec<(String, String)>,
    cache: bool,
) -> Result<Outcome, String> {
    run_one_with(f, text, args, cache, true)
}

/// [`run_one`] with `materialize` (false: kind run, cached layers applied only when needed).
pub(crate) fn run_one_with(
    f: &Fixture,
    text: &str,
    args: Vec<(String, String)>,
    cache: bool,
    materialize: bool,
) -> Result<Outcome, String> {
    let path = f.ctx.join("run.Dockerfile");
    let df = dockerfile::parse("test/ext", &path, text).map_err(|e| e.to_string())?;
    let req = Request {
        root: f.root.clone(),
        extensions: vec![ExtensionInput {
            dockerfile: df,
            context: f.ctx.clone(),
            args,
        }],
        base: ImageState {
            env: vec!["PATH=/bin".into()],
            user: "1000:1000".into(),
            ..Default::default()
        },
        base_image: "base@sha256:00".into(),
        base_digest: "sha256:00".into(),
        blobs_dir: f.blobs.clone(),
        cache: cache.then(|| StepCache::new(&f.cache, Duration::from_secs(3600))),
        ignore: Ignore::defaults(),
        unpack_base: None,
        materialize,
        compression: crate::archive::Compression::default(),
        isolation: super::sandbox::Isolation::Sandbox,
        ownership: crate::archive::Ownership::FromArchive,
    };
    let mapping = IdMapping::detect().map_err(|e| e.to_string())?;
    in_user_namespace(&mapping, || apply(&req)).map_err(|e| e.to_string())
}

/// Entry names of a layer blob (gzip, zstd or plain tar).
pub(crate) fn layer_entries(blob: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(crate::export::extended::open_layer(blob).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn layer_names(f: &Fixture, o: &Outcome, i: usize) -> Vec<String> {
    let blob = f
        .blobs
        .join(o.layers[i].blob.digest.trim_start_matches("sha256:"));
    let file = std::fs::File::open(blob).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(file));
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn run_write_delete_env_user_workdir() {
    scenario_run_write_delete_env_user_workdir()
}

fn scenario_run_write_delete_env_user_workdir() {
    let f = fixture();
    let o = run_one(
        &f,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo hi > /x\nRUN rm /bin/vi\nENV GREETING=hello\nWORKDIR /app\nRUN echo $GREETING > greeting && id -u > /uid\nUSER 1000:1000\nRUN id -u > /tmp/uid2\n",
        vec![],
        false,
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(f.root.join("x")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_to_string(f.root.join("app/greeting")).unwrap(),
        "hello\n"
    );
    assert_eq!(std::fs::read_to_string(f.root.join("uid")).unwrap(), "0\n");
    assert_eq!(
        std::fs::read_to_string(f.root.join("tmp/uid2")).unwrap(),
        "1000\n"
    );
    assert_eq!(o.runs, 4);
    assert_eq!(o.layers.len(), 5, "{:?}", o.layers);
    assert_eq!(layer_names(&f, &o, 0), vec!["x"]);
    assert_eq!(layer_names(&f, &o, 1), vec!["bin", "bin/.wh.vi"]);
    assert!(o.state.env.contains(&"GREETING=hello".to_string()));
    assert_eq!(o.state.user, "1000:1000");
    assert_eq!(o.state.workdir, "/app");
    assert!(o
        .history
        .iter()
        .any(|h| h.created_by == "Layer: 'RUN echo hi > /x', Created by extension: test/ext"));
}

#[test]
fn copy_heredoc_and_args() {
    scenario_copy_heredoc_and_args()
}

fn scenario_copy_heredoc_and_args() {
    let f = fixture();
    std::fs::write(f.ctx.join("hello.txt"), "from context\n").unwrap();
    std::fs::create_dir_all(f.ctx.join("dir/sub")).unwrap();
    std::fs::write(f.ctx.join("dir/sub/a"), "a").unwrap();
    let o = run_one(
        &f,
        "ARG base_image\nFROM ${base_image}\nARG user_id\nARG group_id\nARG build_id=0\nARG GREETING=dflt\nARG EXTRA\nCOPY hello.txt /opt/\nCOPY --chown=${user_id}:${group_id} dir /opt/dir\nCOPY <<EOF /opt/inline\nuser=${user_id} greeting=${GREETING}\nEOF\nUSER root\nRUN <<EOF\necho \"$EXTRA-${GREETING:-x}\" > /args\necho $build_id > /build_id\nEOF\nRUN <<EOF cat > /piped\npiped $GREETING\nEOF\n",
        vec![("EXTRA".into(), "extra".into())],
        false,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(f.root.join("opt/hello.txt")).unwrap(),
        "from context\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("opt/dir/sub/a")).unwrap(),
        "a"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(f.root.join("opt/dir/sub/a"))
            .unwrap()
            .uid(),
        host_id(1000)
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("opt/inline")).unwrap(),
        "user=1000 greeting=dflt\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("args")).unwrap(),
        "extra-dflt\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("piped")).unwrap(),
        "piped dflt\n"
    );
    let build_id = std::fs::read_to_string(f.root.join("build_id")).unwrap();
    assert_eq!(build_id.trim().len(), 36, "{build_id}");
    assert_eq!(o.layers.len(), 5);
    // ARG values are not persisted in the config.
    assert!(!o.state.env.iter().any(|e| e.starts_with("EXTRA=")));
}

#[test]
fn cached_rebuild_runs_nothing() {
    scenario_cached_rebuild_runs_nothing()
}

fn scenario_cached_rebuild_runs_nothing() {
    let f = fixture();
    let text = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\nRUN rm /bin/vi && echo two > /two\n";
    let first = run_one(&f, text, vec![], true).unwrap();
    assert_eq!((first.runs, first.cache_hits), (2, 0));
    // A fresh root from the same base: the cache rebuilds the same layers without running anything.
    in_ns(|| {
        std::fs::remove_dir_all(&f.root).unwrap();
        std::fs::remove_dir_all(&f.blobs).unwrap();
        busybox_root(&f.root);
    });
    let second = run_one(&f, text, vec![], true).unwrap();
    assert_eq!((second.runs, second.cache_hits), (0, 2));
    assert_eq!(first.layers, second.layers);
    assert_eq!(
        std::fs::read_to_string(f.root.join("two")).unwrap(),
        "two\n"
    );
    assert!(std::fs::symlink_metadata(f.root.join("bin/vi")).is_err());
    // A changed instruction misses from there on.
    let third = run_one(&f, "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\nRUN echo three > /three\n", vec![], true).unwrap();
    assert_eq!((third.runs, third.cache_hits), (1, 1));
}

#[test]
fn copy_patterns_mtimes_and_trailing_heredocs() {
    scenario_copy_patterns_mtimes_and_trailing_heredocs()
}

/// EX-02 Dockerfile coverage: `COPY` with patterns (Docker's `filepath.Match` per component), source
/// mtimes kept in the root, `RUN cmd <<EOF` with the heredoc after the command; a pattern that
/// matches nothing is an error naming the line; changed matched content misses the cache.
fn scenario_copy_patterns_mtimes_and_trailing_heredocs() {
    use std::os::unix::fs::MetadataExt;
    let f = fixture();
    for (n, c) in [("a.txt", "A"), ("b.txt", "B"), ("c.md", "C")] {
        std::fs::write(f.ctx.join(n), c).unwrap();
    }
    std::fs::create_dir_all(f.ctx.join("conf.d")).unwrap();
    std::fs::write(f.ctx.join("conf.d/x.conf"), "x").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(f.ctx.join("a.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let text = "ARG base_image\nFROM ${base_image}\nUSER 0\nCOPY *.txt /opt/txt/\nCOPY conf.?/*.conf /etc/app/\nRUN cat > /etc/app/greeting <<EOF\nhello $HOSTNAME_X\nEOF\nRUN cat <<'RAW' > /raw\n$NOT_EXPANDED\nRAW\n";
    let o = run_one(&f, text, vec![], true).unwrap();
    assert_eq!(o.runs, 2);
    let names: Vec<String> = std::fs::read_dir(f.root.join("opt/txt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, vec!["a.txt", "b.txt"]);
    assert_eq!(
        std::fs::metadata(f.root.join("opt/txt/a.txt"))
            .unwrap()
            .mtime(),
        1_000_000_000
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("etc/app/x.conf")).unwrap(),
        "x"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("etc/app/greeting")).unwrap(),
        "hello \n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("raw")).unwrap(),
        "$NOT_EXPANDED\n"
    );
    // Same context: all from the cache; a changed matched file misses from its step on.
    in_ns(|| {
        std::fs::remove_dir_all(&f.root).unwrap();
        std::fs::remove_dir_all(&f.blobs).unwrap();
        busybox_root(&f.root);
    });
    let again = run_one(&f, text, vec![], true).unwrap();
    assert_eq!((again.runs, again.cache_hits), (0, 4));
    std::fs::write(f.ctx.join("b.txt"), "B2").unwrap();
    let changed = run_one(&f, text, vec![], true).unwrap();
    assert_eq!((changed.runs, changed.cache_hits), (2, 0));
    let err = run_one(
        &f,
        "ARG base_image\nFROM ${base_image}\nCOPY *.none /x/\n",
        vec![],
        false,
    )
    .unwrap_err();
    assert!(err.contains(":3:") && err.contains("*.none"), "{err}");
}

#[test]
fn cache_hits_are_applied_lazily() {
    scenario_cache_hits_are_applied_lazily()
}

/// EX-04 (cache) with kind run semantics: a rebuild served entirely from the cache walks and changes
/// nothing on the root; a later cache miss first applies the cached layers it builds on.
fn scenario_cache_hits_are_applied_lazily() {
    let f = fixture();
    let text =
        "ARG base_image\nFROM ${base_image}\nUSER 0\nRUN echo one > /one\nRUN echo two > /two\n";
    let first = run_one_with(&f, text, vec![], true, false).unwrap();
    assert_eq!((first.runs, first.cache_hits), (2, 0));
    assert!(first.root_current);
    let fresh = || {
        in_ns(|| {
            std::fs::remove_dir_all(&f.root).unwrap();
            std::fs::remove_dir_all(&f.blobs).unwrap();
            busybox_root(&f.root);
        })
    };
    fresh();
    let second = run_one_with(&f, text, vec![], true, false).unwrap();
    assert_eq!((second.runs, second.cache_hits), (0, 2));
    assert_eq!(first.layers, second.layers);
    assert!(!second.root_current);
    assert!(std::fs::symlink_metadata(f.root.join("one")).is_err());
    // The blobs are still there for the output image.
    for l in &second.layers {
        assert!(f
            .blobs
            .join(l.blob.digest.trim_start_matches("sha256:"))
            .is_file());
    }
    fresh();
    let text =
        "ARG base_image\nFROM ${base_image}\nUSER 0\nRUN echo one > /one\nRUN cat /one > /copy\n";
    let third = run_one_with(&f, text, vec![], true, false).unwrap();
    assert_eq!((third.runs, third.cache_hits), (1, 1));
    assert!(third.root_current);
    assert_eq!(
        std::fs::read_to_string(f.root.join("copy")).unwrap(),
        "one\n"
    );
    // The executed step's layer holds only its own change, not the applied cached layer.
    let names = layer_names(&f, &third, 1);
    assert!(
        names.iter().any(|n| n.trim_start_matches('/') == "copy"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.trim_start_matches('/') == "one"),
        "{names:?}"
    );
}

#[test]
fn failing_run_names_extension_file_and_line() {
    scenario_failing_run_names_extension_file_and_line()
}

fn scenario_failing_run_names_extension_file_and_line() {
    let f = fixture();
    let e = run_one(
        &f,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo visible-output; exit 3\n",
        vec![],
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("extension 'test/ext'")
            && e.contains("run.Dockerfile:4")
            && e.contains("exit code 3"),
        "{e}"
    );
    assert!(e.contains("visible-output"), "{e}");
    let e = run_one(
        &f,
        "ARG base_image\nFROM ${base_image}\nRUN [\"/nope\"]\n",
        vec![],
        false,
    )
    .unwrap_err();
    assert!(e.contains("run.Dockerfile:3") && e.contains("127"), "{e}");
}

#[test]
fn copy_outside_context_is_refused() {
    scenario_copy_outside_context_is_refused()
}

fn scenario_copy_outside_context_is_refused() {
    let f = fixture();
    std::fs::write(f.ctx.parent().unwrap().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink("../secret", f.ctx.join("link")).unwrap();
    for src in ["../secret", "link"] {
        let e = run_one(
            &f,
            &format!("ARG base_image\nFROM ${{base_image}}\nCOPY {src} /s\n"),
            vec![],
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("outside the build context") && e.contains("run.Dockerfile:3"),
            "{e}"
        );
    }
    assert!(!f.root.join("s").exists());
}

/// Writes `root` as a one-layer OCI layout (build user 1000:1000) and returns its manifest digest.
pub(crate) fn write_base_layout(root: &Path, layout: &Path) -> String {
    use super::snapshot;
    use sha2::Digest;
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let after = snapshot::take(root, &snapshot::Ignore::default()).unwrap();
    let changes = snapshot::diff(&snapshot::Snapshot::default(), &after);
    let layer = snapshot::write_layer(
        root,
        &after,
        &changes,
        &blobs,
        crate::archive::Compression::default(),
    )
    .unwrap()
    .unwrap();
    let put = |v: serde_json::Value| {
        let b = serde_json::to_vec(&v).unwrap();
        let hex = hex::encode(sha2::Sha256::digest(&b));
        std::fs::write(blobs.join(&hex), &b).unwrap();
        (format!("sha256:{hex}"), b.len())
    };
    let (cd, cs) = put(serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"], "User": "1000:1000"},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "busybox"}]
    }));
    let (md, ms) = put(serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.digest, "size": layer.size}]
    }));
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "base"}}]}).to_string(),
    )
    .unwrap();
    md
}

pub(crate) fn extender_for(f: &Fixture, layout: &Path, text: &str) -> super::Extender {
    let df = dockerfile::parse("test/ext", &f.ctx.join("run.Dockerfile"), text).unwrap();
    super::Extender {
        kind: super::Kind::Run,
        base_layout: layout.to_path_buf(),
        base_digest: None,
        base_ref: "base".into(),
        root: None,
        extensions: vec![ExtensionInput {
            dockerfile: df,
            context: f.ctx.clone(),
            args: vec![],
        }],
        extended_dir: f.root.parent().unwrap().join("extended"),
        cache: Some(StepCache::new(&f.cache, Duration::from_secs(3600))),
        work_dir: f.root.parent().unwrap().join("work"),
        executor: super::Executor::UserNamespace(IdMapping::detect().unwrap()),
        ignore: vec![],
    }
}

#[test]
fn kind_run_from_layout_writes_sparse_extended_image() {
    scenario_kind_run_from_layout_writes_sparse_extended_image()
}

fn scenario_kind_run_from_layout_writes_sparse_extended_image() {
    let f = fixture();
    let layout = f.root.parent().unwrap().join("base-layout");
    in_ns(|| {
        write_base_layout(&f.root, &layout);
    });
    let ext = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo hi > /x && rm /bin/vi\nLABEL io.buildpacks.rebasable=true\nUSER 1000:1000\n",
    );
    let done = ext.extend().unwrap();
    let out = done.output.unwrap();
    let entries: Vec<_> = std::fs::read_dir(ext.extended_dir.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].to_string_lossy().starts_with("sha256:"));
    // Sparse: only the new layer's blob + config + manifest.
    assert_eq!(
        std::fs::read_dir(out.join("blobs/sha256")).unwrap().count(),
        3
    );
    // Complete it with the base blobs and check it with umoci.
    let full = f.root.parent().unwrap().join("full");
    std::process::Command::new("cp")
        .arg("-a")
        .arg(&out)
        .arg(&full)
        .status()
        .unwrap();
    for b in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let b = b.unwrap();
        let _ = std::fs::copy(b.path(), full.join("blobs/sha256").join(b.file_name()));
    }
    let bundle = f.root.parent().unwrap().join("bundle");
    let st = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:extended", full.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/x")).unwrap(),
        "hi\n"
    );
    assert!(std::fs::symlink_metadata(bundle.join("rootfs/bin/vi")).is_err());
    assert!(bundle.join("rootfs/bin/sh").exists());
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let md = idx["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(md)).unwrap()).unwrap();
    let cd = m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(cd)).unwrap()).unwrap();
    assert_eq!(c["config"]["User"], "1000:1000");
    assert_eq!(c["config"]["Labels"]["io.buildpacks.rebasable"], "true");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let hist: Vec<String> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap().to_string())
        .collect();
    assert!(
        hist.contains(
            &"Layer: 'RUN echo hi > /x && rm /bin/vi', Created by extension: test/ext".to_string()
        ),
        "{hist:?}"
    );
    // The work dir is cleaned up.
    assert_eq!(std::fs::read_dir(&ext.work_dir).unwrap().count(), 0);
}

#[test]
fn kind_run_final_root_user_or_failure_leaves_nothing() {
    scenario_kind_run_final_root_user_or_failure_leaves_nothing()
}

fn scenario_kind_run_final_root_user_or_failure_leaves_nothing() {
    let f = fixture();
    let layout = f.root.parent().unwrap().join("base-layout");
    in_ns(|| {
        write_base_layout(&f.root, &layout);
    });
    let ext = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo hi > /x\n",
    );
    let e = ext.extend().unwrap_err();
    assert!(
        e.to_string().contains("the final user ID is 0 (root)"),
        "{e}"
    );
    let ext2 = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nRUN false\n",
    );
    let e = ext2.extend().unwrap_err();
    assert!(
        e.to_string()
            .contains("run.Dockerfile:3: RUN failed with exit code 1"),
        "{e}"
    );
    let left = std::fs::read_dir(ext.extended_dir.join("run"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0);
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Files owned by mapped ids can only be removed from inside the namespace when rootless.
        let dir = self._tmp.path().to_path_buf();
        let mapping = IdMapping::detect().unwrap();
        let _ = in_user_namespace(&mapping, || {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        });
    }
}

/// Name and ids of the unprivileged user the rootless test runs as.
const ROOTLESS_USER: &str = "cnb-extend-rootless";
const ROOTLESS_ID: u32 = 23456;
const ROOTLESS_SUBIDS: &str = "300000:65536";

/// Makes sure the rootless test user exists with a subordinate id range (needs real root). This is
/// the one place the tests touch host files: `/etc/passwd`, `/etc/group` (via `useradd`),
/// `/etc/subuid` and `/etc/subgid`, each only if the entry is missing.
fn ensure_rootless_user() {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = ONCE.lock().unwrap();
    let exists = std::process::Command::new("id")
        .arg(ROOTLESS_USER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let st = std::process::Command::new("useradd")
            .args([
                "-M",
                "-N",
                "-u",
                &ROOTLESS_ID.to_string(),
                "-s",
                "/usr/sbin/nologin",
                ROOTLESS_USER,
            ])
            .status()
            .unwrap();
        assert!(st.success(), "useradd failed");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.starts_with(&format!("{ROOTLESS_USER}:")))
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            writeln!(f, "{ROOTLESS_USER}:{ROOTLESS_SUBIDS}").unwrap();
        }
    }
}

/// Runs every busybox scenario again as an unprivileged user (a subordinate id range, newuidmap /
/// newgidmap), in a child test process started with that uid/gid.
#[test]
fn rootless_same_cases() {
    if !nix::unistd::Uid::effective().is_root() {
        // Already unprivileged: the scenarios above ran rootless.
        return;
    }
    ensure_rootless_user();
    // Built here (as root) so that the child only reads it.
    sample_layout("busybox");
    run_rootless_child("busybox");
}

/// The bookworm `apt-get install` case rootless: apt's `_apt` sandbox user (uid 42), dpkg's chowns
/// and the bind-mounted `resolv.conf` all work inside a subordinate id range.
#[test]
fn rootless_bookworm_apt_get_install_tree() {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    ensure_rootless_user();
    sample_layout("bookworm");
    run_rootless_child("bookworm");
}

/// Runs [`rootless_child_entry`] as the rootless test user with `CNB_EXTEND_ROOTLESS_CHILD=<which>`.
fn run_rootless_child(which: &str) {
    let gid_out = std::process::Command::new("id")
        .args(["-g", ROOTLESS_USER])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&gid_out.stdout)
        .trim()
        .parse()
        .unwrap();
    let (_stage, exe, samples) = stage_for_rootless(which);
    let mut tries = 0;
    let out = loop {
        let r = std::process::Command::new(&exe)
            .args([
                "--exact",
                "extend::tests::rootless_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CNB_EXTEND_ROOTLESS_CHILD", which)
            .env(SAMPLE_ROOT_ENV, &samples)
            .env("TMPDIR", "/tmp")
            .env("HOME", "/tmp")
            .current_dir("/tmp")
            .uid(ROOTLESS_ID)
            .gid(gid)
            .output();
        match r {
            // The copy fallback can still race with a fork elsewhere in the test process: retry.
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => break r.unwrap(),
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ROOTLESS-SCENARIOS-DONE"), "{text}");
}

/// Entry point for [`rootless_same_cases`]' child; does nothing unless started by it.
#[test]
fn rootless_child_entry() {
    let Some(which) = std::env::var_os("CNB_EXTEND_ROOTLESS_CHILD") else {
        return;
    };
    assert!(!nix::unistd::Uid::effective().is_root());
    assert!(matches!(
        IdMapping::detect().unwrap(),
        IdMapping::Rootless { .. }
    ));
    if which == "bookworm" {
        scenario_bookworm_apt_get_install_tree();
        println!("ROOTLESS-SCENARIOS-DONE");
        return;
    }
    scenario_run_write_delete_env_user_workdir();
    scenario_copy_patterns_mtimes_and_trailing_heredocs();
    scenario_cache_hits_are_applied_lazily();
    scenario_copy_heredoc_and_args();
    scenario_cached_rebuild_runs_nothing();
    scenario_failing_run_names_extension_file_and_line();
    scenario_copy_outside_context_is_refused();
    scenario_kind_run_from_layout_writes_sparse_extended_image();
    scenario_kind_run_final_root_user_or_failure_leaves_nothing();
    scenario_kind_build_changes_the_root_in_place_and_returns_the_env();
    scenario_kind_run_on_umoci_built_busybox_layout();
    println!("ROOTLESS-SCENARIOS-DONE");
}

#[test]
fn kind_build_changes_the_root_in_place_and_returns_the_env() {
    scenario_kind_build_changes_the_root_in_place_and_returns_the_env()
}

fn scenario_kind_build_changes_the_root_in_place_and_returns_the_env() {
    let f = fixture();
    let layout = f.root.parent().unwrap().join("base-layout");
    in_ns(|| {
        write_base_layout(&f.root, &layout);
    });
    let mut ext = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo built > /tool\nENV CNB_STACK_ID=from-dockerfile\nUSER 1000:1000\n",
    );
    ext.kind = super::Kind::Build;
    ext.root = Some(f.root.clone());
    let done = ext.extend().unwrap();
    assert!(done.output.is_none());
    assert!(!ext.extended_dir.join("run").exists());
    assert_eq!(
        std::fs::read_to_string(f.root.join("tool")).unwrap(),
        "built\n"
    );
    assert!(done
        .outcome
        .state
        .env
        .contains(&"CNB_STACK_ID=from-dockerfile".to_string()));
    assert!(done
        .outcome
        .state
        .env
        .contains(&"CNB_USER_ID=1000".to_string()));
}

/// The layout a `samples/base-images/<name>/build.sh` recipe makes, built once and cached under
/// `target/extend-cache/<name>/` (a lock file serialises parallel tests and processes).
/// Where [`sample_layout`] finds the cached layouts in a rootless child (set by [`run_rootless_child`]).
const SAMPLE_ROOT_ENV: &str = "CNB_EXTEND_TEST_SAMPLE_ROOT";

/// The test binary and the cached sample layout `which`, copied (layouts hard-linked) into a fresh 0755
/// directory under `/tmp`: the rootless user cannot reach the checkout when it sits under a 0700 parent
/// (a clone in `/root` or a `mktemp -d`). Returns (the staging dir, removed on drop; test binary; sample
/// root for [`SAMPLE_ROOT_ENV`]).
fn stage_for_rootless(which: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let stage = tempfile::Builder::new()
        .prefix("cnb-extend-rootless-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = stage.path().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("tests");
    // A hard link, not a copy: a file this process just wrote can still be open for writing in a child
    // that another test thread forked meanwhile, and exec would fail with ETXTBSY.
    let current = std::env::current_exe().unwrap();
    if std::fs::hard_link(&current, &exe).is_err() {
        std::fs::copy(&current, &exe).unwrap();
    }
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let samples = dir.join("samples");
    let src = sample_layout(which);
    std::fs::create_dir_all(samples.join(which)).unwrap();
    let out = std::process::Command::new("cp")
        .arg("-al")
        .arg(&src)
        .arg(samples.join(which).join("layout"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(samples.join(which).join("layout.done"), "").unwrap();
    let out = std::process::Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (stage, exe, samples)
}

pub(crate) fn sample_layout(name: &str) -> PathBuf {
    use std::os::fd::AsRawFd;
    if let Some(root) = std::env::var_os(SAMPLE_ROOT_ENV) {
        return PathBuf::from(root).join(name).join("layout");
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = ws.join("target/extend-cache").join(name);
    if dir.join("layout.done").exists() {
        return dir.join("layout");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    // SAFETY: flock on an open descriptor we own; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let layout = dir.join("layout");
    if !dir.join("layout.done").exists() {
        let script = ws.join("samples/base-images").join(name).join("build.sh");
        let out = std::process::Command::new("sh")
            .arg(script)
            .arg(&layout)
            .arg(dir.join("rootfs"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // umoci writes 0600 files; the rootless test user must be able to read the layout.
        let st = std::process::Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(&layout)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(dir.join("layout.done"), "").unwrap();
    }
    layout
}

fn umoci_unpack_full(extended: &Path, base_layout: &Path, bundle: &Path) {
    let full = bundle.with_extension("layout");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(extended)
        .arg(&full)
        .status()
        .unwrap();
    assert!(st.success());
    for b in std::fs::read_dir(base_layout.join("blobs/sha256")).unwrap() {
        let b = b.unwrap();
        let _ = std::fs::copy(b.path(), full.join("blobs/sha256").join(b.file_name()));
    }
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:extended", full.display()))
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kind_run_on_umoci_built_busybox_layout() {
    scenario_kind_run_on_umoci_built_busybox_layout()
}

fn scenario_kind_run_on_umoci_built_busybox_layout() {
    let layout = sample_layout("busybox");
    let f = fixture();
    let mut ext = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nARG user_id\nUSER root\nRUN echo \"uid=${user_id}\" > /etc/marker && rm /bin/vi\nUSER ${user_id}\n",
    );
    ext.base_ref = format!("{}@sha256:x", layout.display());
    let done = ext.extend().unwrap();
    let bundle = f.root.parent().unwrap().join("bundle");
    umoci_unpack_full(done.output.as_ref().unwrap(), &layout, &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/marker")).unwrap(),
        "uid=1000\n"
    );
    assert!(std::fs::symlink_metadata(bundle.join("rootfs/bin/vi")).is_err());
    assert!(std::fs::symlink_metadata(bundle.join("rootfs/bin/ls")).is_ok());
    assert_eq!(done.outcome.state.user, "1000");
}

/// Debian bookworm minbase: `apt-get install` in a RUN step (needs the Debian mirror), then the same
/// Dockerfile again from the step cache without running anything.
#[test]
fn bookworm_apt_get_install_tree() {
    scenario_bookworm_apt_get_install_tree()
}

fn scenario_bookworm_apt_get_install_tree() {
    let layout = sample_layout("bookworm");
    let f = fixture();
    let text = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN apt-get update && apt-get install -y --no-install-recommends tree && rm -rf /var/lib/apt/lists/*\nUSER 1000:1000\n";
    let ext = extender_for(&f, &layout, text);
    let first = ext.extend().unwrap();
    assert_eq!((first.outcome.runs, first.outcome.cache_hits), (1, 0));
    let bundle = f.root.parent().unwrap().join("bundle");
    umoci_unpack_full(first.output.as_ref().unwrap(), &layout, &bundle);
    assert!(bundle.join("rootfs/usr/bin/tree").is_file());
    assert!(bundle.join("rootfs/usr/bin/apt-get").is_file());
    // The bind-mounted resolv.conf is not part of the layer.
    let blob = first.output.as_ref().unwrap().join("blobs/sha256").join(
        first.outcome.layers[0]
            .blob
            .digest
            .trim_start_matches("sha256:"),
    );
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(blob).unwrap(),
    ));
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "usr/bin/tree"));
    assert!(!names
        .iter()
        .any(|n| n == "etc/resolv.conf" || n == "etc/hosts" || n.starts_with("proc/")));
    let second = ext.extend().unwrap();
    assert_eq!((second.outcome.runs, second.outcome.cache_hits), (0, 1));
    assert_eq!(second.output, first.output);
}

/// Local `-kind=run` without a container: the run image comes from a registry (loopback), is unpacked
/// into a work dir and extended.
#[test]
fn kind_run_local_from_a_registry_image() {
    use crate::image::registry::{ImageRef, Keychain, RegistryClient, RegistryOptions};
    use cnb_acceptance::registry::{Registry, RegistryOptions as RegOpts};
    let layout = sample_layout("busybox");
    let reg = Registry::start(RegOpts::plain());
    let st = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{}", reg.image("run:latest")))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let f = fixture();
    let fetched = f.root.parent().unwrap().join("fetched");
    {
        let client = RegistryClient::new(
            std::sync::Arc::new(Keychain::anonymous()),
            RegistryOptions::default().insecure(&reg.host()),
        )
        .unwrap();
        let image = ImageRef::parse(&reg.image("run:latest")).unwrap();
        super::oci::fetch_to_layout(&client, &image, &fetched, true).unwrap();
    }
    let ext = extender_for(
        &f,
        &fetched,
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo local > /local\nUSER 1000:1000\n",
    );
    let done = ext.extend().unwrap();
    let bundle = f.root.parent().unwrap().join("bundle");
    umoci_unpack_full(done.output.as_ref().unwrap(), &fetched, &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/local")).unwrap(),
        "local\n"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}
