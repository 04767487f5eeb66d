//! Unreachable volumes (issue 18; checklist G-19): a phase started as root that drops to the build user
//! must fail up front, before touching anything, when that user cannot reach one of its volumes — with a
//! message naming the volume, the uid/gid and the first parent directory that blocks it, and exit 1 (the
//! reference's code for a failed privilege step). Each phase that drops privileges is run with its layers
//! (or layout, for the rebaser) under a 0700 parent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_acceptance::harness::{running_as_root, ContainerRoot, Output};

/// A root whose `private/` is 0700 and owned by root, holding `private/layers`.
fn blocked_root() -> ContainerRoot {
    let root = ContainerRoot::new();
    root.mkdir("private/layers");
    root.mkdir("private/layout");
    for d in ["private/layers", "private/layout"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    root
}

fn assert_blocked(out: &Output, root: &ContainerRoot, volume: &str) {
    out.assert_code(1);
    out.assert_contains(&format!(
        "failed to access volume {}",
        root.join(volume).display()
    ))
    .assert_contains(&format!(
        "the build user 1000:1000 cannot enter {} (owner 0:0, mode 0700)",
        root.join("private").display()
    ))
    .assert_not_contains("Permission denied");
    // Nothing was handed over or written.
    assert!(!root.exists("private/layers/analyzed.toml"));
    let md = fs::metadata(root.join("private/layers")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&md),
        0,
        "layers was chowned"
    );
}

fn layers_flag(root: &ContainerRoot) -> String {
    format!("-layers={}", root.join("private/layers").display())
}

fn layout_flags(root: &ContainerRoot) -> Vec<String> {
    vec![
        "-layout".into(),
        format!("-layout-dir={}", root.join("private/layout").display()),
    ]
}

#[test]
fn every_privilege_dropping_phase_names_the_blocking_parent() {
    if !running_as_root() {
        println!("SKIPPED: needs root to start the phases as root with a build user to drop to");
        return;
    }
    let root = blocked_root();
    let run = |name: &str, args: Vec<String>| {
        root.phase(name)
            .as_current_user()
            .env("CNB_EXPERIMENTAL_MODE", "quiet")
            .env("CNB_USER_ID", "1000")
            .env("CNB_GROUP_ID", "1000")
            .args(args)
            .run()
    };
    let mut args = vec![layers_flag(&root)];
    args.extend(layout_flags(&root));
    args.extend([
        "-run-image=busybox:latest".to_string(),
        "app/img".to_string(),
    ]);
    assert_blocked(&run("analyzer", args), &root, "private/layers");

    let out = run("restorer", vec![layers_flag(&root)]);
    assert_blocked(&out, &root, "private/layers");

    let mut args = vec![layers_flag(&root)];
    args.extend(layout_flags(&root));
    args.push("app/img".into());
    assert_blocked(&run("exporter", args), &root, "private/layers");

    let mut args = vec![layers_flag(&root)];
    args.extend(layout_flags(&root));
    args.extend([
        "-run-image=busybox:latest".to_string(),
        "app/img".to_string(),
    ]);
    assert_blocked(&run("creator", args), &root, "private/layers");

    let mut args = layout_flags(&root);
    args.push("app/img".into());
    let out = run("rebaser", args);
    assert_blocked(&out, &root, "private/layout");
}

#[test]
fn a_reachable_volume_under_a_traversable_parent_passes_the_check() {
    if !running_as_root() {
        println!("SKIPPED: needs root to start the phases as root with a build user to drop to");
        return;
    }
    let root = blocked_root();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o711)).unwrap();
    let out = root
        .phase("restorer")
        .as_current_user()
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .arg(layers_flag(&root))
        .run();
    out.assert_not_contains("failed to access volume");
}
