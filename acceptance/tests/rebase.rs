//! Rebaser on OCI layouts (checklist §10; the reference has no layout support).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use cnb_acceptance::harness::{ContainerRoot, Output};
use common::*;

fn rebase(root: &ContainerRoot, extra: &[&str]) -> Output {
    // The rebaser takes -layout/-layout-dir like the other registry phases (the reference has no
    // layout rebase at all).
    let mut args: Vec<String> = vec![
        "-layout".into(),
        format!("-layout-dir={}", root.join("layout").display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("app/img".into());
    root.phase("rebaser")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args(args)
        .run()
}

fn build(root: &ContainerRoot) -> String {
    write_build_output(root, "v1", "echo v1");
    analyze(root).assert_success();
    export(root, &[]).assert_success();
    report_digest(root)
}

/// RB-01…RB-08: rebase onto an updated run image keeps the app layers and changes the base layers.
#[test]
fn rebase_onto_new_run_image_keeps_app_layers() {
    let root = ContainerRoot::new();
    make_run_image_with(&root, "cnb/run", "run-v1");
    let d1 = build(&root);
    let dir = app_layout(&root);
    let before = manifest_layers(&dir, &d1);

    fs::remove_dir_all(layout_of(&root, "cnb/run")).unwrap();
    make_run_image_with(&root, "cnb/run", "run-v2");
    rebase(&root, &[]).assert_success();
    let d2 = report_digest(&root);
    assert_ne!(d1, d2);
    let after = manifest_layers(&dir, &d2);
    assert_eq!(before.len(), after.len());
    assert_ne!(before[0], after[0], "base layer replaced");
    assert_eq!(before[1..], after[1..], "app layers kept");
    let cfg = image_config(&dir, &d2);
    let lm: serde_json::Value = serde_json::from_str(
        cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(lm["runImage"]["topLayer"], cfg["rootfs"]["diff_ids"][0]);
    assert!(lm["runImage"]["reference"]
        .as_str()
        .unwrap()
        .contains("cnb/run/latest@sha256:"));

    tool(
        "oci-image-tool",
        &["validate", "--type", "image", dir.to_str().unwrap()],
    );
    let bundle = root.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest", dir.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/etc/run-marker")).unwrap(),
        "run-v2"
    );
    let app = bundle
        .join("rootfs")
        .join(root.join("workspace/app.sh").strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(app).unwrap(), "echo v1");
}

/// RB-03, RB-05: a base not recorded in the metadata needs -force; `io.buildpacks.rebasable=false`
/// refuses without -force (exit 72).
#[test]
fn rebase_checks_need_force() {
    let root = ContainerRoot::new();
    make_run_image_with(&root, "cnb/run", "run-v1");
    build(&root);
    make_run_image_with(&root, "other/run", "other");
    let out = rebase(&root, &["-run-image=other/run"]);
    out.assert_code(72)
        .assert_contains("not found in existing run image metadata")
        .assert_contains("please provide -force to override");
    rebase(&root, &["-run-image=other/run", "-force"]).assert_success();

    // Mark the app image non-rebasable through its base labels.
    let root = ContainerRoot::new();
    let run = make_run_image_with(&root, "cnb/run", "run-v1");
    let img = format!("{}:latest", run.display());
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &img,
            "--config.label",
            "io.buildpacks.rebasable=false",
        ],
    );
    build(&root);
    rebase(&root, &[])
        .assert_code(72)
        .assert_contains("app image is not marked as rebasable");
    rebase(&root, &["-force"]).assert_success();
}
