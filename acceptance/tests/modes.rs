//! Everything a root-started phase leaves for the next one is readable by the cnb user whatever the
//! process umask (issue 13; checklist G-19, T-*): analyzer, restorer, exporter, rebaser and creator are
//! started as root with `umask 077` (they drop to uid 1000 themselves), then every file and directory
//! they left is opened / traversed **as uid 1000** (`setpriv` + `find` + `cat`, not only mode bits), and
//! the files the lifecycle wrote itself (platform files, layer metadata, layout blobs, cache) have the
//! reference's 0644/0755 modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_acceptance::harness::{
    bin_path, running_as_root, unreadable_by_build_user, ContainerRoot, Output,
};
use common::*;

fn setup(root: &ContainerRoot) {
    sample_buildpacks(root);
    make_run_image(root, "cnb/run");
    make_run_image_with(root, "cnb/run2", "second run image");
    // umoci writes its layouts 0600: these inputs are not the lifecycle's.
    tool(
        "chmod",
        &["-R", "a+rX", root.join("layout").to_str().unwrap()],
    );
    // The container root is traversable by everyone (as `/` is); the layout dir is shared.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `phase` as root with umask 077.
fn as_root_umask_077(root: &ContainerRoot, phase: &str, args: &[String]) -> Output {
    let mut argv = vec![
        "-c".to_string(),
        "umask 077 && exec \"$0\" \"$@\"".to_string(),
        bin_path(phase).display().to_string(),
    ];
    argv.extend(args.iter().cloned());
    let out = root
        .phase(phase)
        .as_current_user()
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .program("/bin/sh")
        .args(argv)
        .run();
    out.assert_success();
    out
}

/// Files the lifecycle itself writes (not a buildpack's layer contents nor the app): their modes must be
/// 0644 (files) and 0755 (directories) whatever the umask.
fn wrong_lifecycle_modes(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<String> {
    let mut bad = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() || skip(&p) {
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                if mode & 0o055 != 0o055 {
                    bad.push(format!("{:o} {}", mode, p.display()));
                }
                stack.push(p);
            } else if mode & 0o044 != 0o044 {
                bad.push(format!("{:o} {}", mode, p.display()));
            }
        }
    }
    bad.sort();
    bad
}

fn check(root: &ContainerRoot, phase: &str) {
    for dir in ["layers", "cache", "layout"] {
        let p = root.join(dir);
        if !p.exists() {
            continue;
        }
        let problems = unreadable_by_build_user(&p);
        assert!(
            problems.trim().is_empty(),
            "after {phase}: not readable by uid 1000 under {dir}:\n{problems}"
        );
        // What buildpacks write (`<layers>/<bp>/…`, after a build) keeps the modes they gave; the
        // restorer's `<layer>.toml` files and everything else are the lifecycle's.
        let layers = root.join("layers");
        let built = matches!(phase, "exporter" | "creator" | "rebaser");
        let skip = |p: &Path| {
            p.strip_prefix(&layers).is_ok_and(|rel| {
                let in_bp =
                    rel.starts_with("samples_runtime") || rel.starts_with("samples_app-deps");
                let layer_toml =
                    rel.components().count() == 2 && p.extension().is_some_and(|x| x == "toml");
                in_bp && (built || (rel.components().count() > 1 && !layer_toml))
            })
        };
        let bad = wrong_lifecycle_modes(&p, &skip);
        assert!(
            bad.is_empty(),
            "after {phase}: lifecycle files under {dir} not 0644/0755:\n{}",
            bad.join("\n")
        );
    }
}

fn layout_args(root: &ContainerRoot) -> Vec<String> {
    vec![
        "-layout".into(),
        format!("-layout-dir={}", root.join("layout").display()),
    ]
}

#[test]
fn root_phases_leave_files_the_cnb_user_can_read_under_umask_077() {
    if !running_as_root() {
        panic!("this test starts phases as root (umask 077) and reads as uid 1000: run as root");
    }
    let root = ContainerRoot::new();
    setup(&root);
    // As a platform prepares its volumes: owned by the build user (the harness does this for uid-1000
    // runs; the phases here start as root).
    root.chown(1000, 1000);
    let cache = format!("-cache-dir={}", root.join("cache").display());
    let launcher = format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    );
    for round in 0..2 {
        let mut a = layout_args(&root);
        a.extend(["-run-image=cnb/run".to_string(), "app/img".to_string()]);
        as_root_umask_077(&root, "analyzer", &a);
        check(&root, "analyzer");
        root.phase("detector").run().assert_success();
        as_root_umask_077(&root, "restorer", std::slice::from_ref(&cache));
        check(&root, "restorer");
        if round == 1 {
            assert!(root.exists("layers/samples_runtime/runtime.toml"));
        }
        root.phase("builder").run().assert_success();
        let mut e = layout_args(&root);
        e.extend([cache.clone(), launcher.clone(), "app/img".to_string()]);
        as_root_umask_077(&root, "exporter", &e);
        check(&root, "exporter");
        if round == 0 {
            fs::remove_dir_all(root.join("layers")).unwrap();
            fs::create_dir_all(root.join("layers")).unwrap();
        }
    }
    let mut r = layout_args(&root);
    r.extend([
        format!(
            "-report={}",
            root.join("layers/rebase-report.toml").display()
        ),
        "-run-image=cnb/run2".to_string(),
        "-force".to_string(),
        "app/img".to_string(),
    ]);
    as_root_umask_077(&root, "rebaser", &r);
    check(&root, "rebaser");

    // creator, started as root, in a fresh layers dir.
    fs::remove_dir_all(root.join("layers")).unwrap();
    fs::create_dir_all(root.join("layers")).unwrap();
    let mut c = layout_args(&root);
    c.extend([
        cache.clone(),
        launcher.clone(),
        "-run-image=cnb/run".to_string(),
        "app/img".to_string(),
    ]);
    as_root_umask_077(&root, "creator", &c);
    check(&root, "creator");
}
