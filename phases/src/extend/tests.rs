//! Tests of the extender engine on a real busybox-static root filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
    busybox_root(&root);
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
    };
    let mapping = IdMapping::detect().map_err(|e| e.to_string())?;
    in_user_namespace(&mapping, || apply(&req)).map_err(|e| e.to_string())
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
        1000
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
    let f = fixture();
    let text = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\nRUN rm /bin/vi && echo two > /two\n";
    let first = run_one(&f, text, vec![], true).unwrap();
    assert_eq!((first.runs, first.cache_hits), (2, 0));
    // A fresh root from the same base: the cache rebuilds the same layers without running anything.
    std::fs::remove_dir_all(&f.root).unwrap();
    std::fs::remove_dir_all(&f.blobs).unwrap();
    busybox_root(&f.root);
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
fn failing_run_names_extension_file_and_line() {
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
