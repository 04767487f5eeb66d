//! The whole platform flow with the sample buildpacks, each phase a separate process, as platforms run
//! it: analyzer → detector → restorer → builder → exporter, twice (checklist §2, §5, §8, §20, T-*).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::Path;

use cnb_acceptance::harness::{ContainerRoot, Output};
use common::*;

fn setup(root: &ContainerRoot) {
    sample_buildpacks(root);
    make_run_image(root, "cnb/run");
}

fn layout_flags(root: &ContainerRoot) -> Vec<String> {
    vec![
        "-layout".into(),
        format!("-layout-dir={}", root.join("layout").display()),
    ]
}

fn build(root: &ContainerRoot) -> Vec<Output> {
    let cache = format!("-cache-dir={}", root.join("cache").display());
    let mut out = Vec::new();
    let mut a = layout_flags(root);
    a.extend(["-run-image=cnb/run".to_string(), "app/img".to_string()]);
    out.push(
        root.phase("analyzer")
            .env("CNB_EXPERIMENTAL_MODE", "quiet")
            .args(a)
            .run(),
    );
    out.push(root.phase("detector").run());
    out.push(root.phase("restorer").arg(&cache).run());
    out.push(root.phase("builder").run());
    let mut e = layout_flags(root);
    e.extend([
        cache.clone(),
        format!(
            "-launcher={}",
            root.join("cnb/lifecycle/launcher").display()
        ),
        "app/img".to_string(),
    ]);
    out.push(
        root.phase("exporter")
            .env("CNB_EXPERIMENTAL_MODE", "quiet")
            .args(e)
            .run(),
    );
    for o in &out {
        o.assert_success();
    }
    out
}

#[test]
fn sample_app_builds_and_rebuilds_with_cache() {
    let root = ContainerRoot::new();
    setup(&root);
    let first = build(&root);
    first[4]
        .assert_contains("Adding layer 'samples/runtime:runtime'")
        .assert_contains("Adding cache layer 'samples/runtime:runtime'");
    let d1 = report_digest(&root);
    let dir = app_layout(&root);
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
    let rootfs = bundle.join("rootfs");
    let inside = |p: &Path| rootfs.join(p.strip_prefix("/").unwrap());
    assert!(inside(&root.join("layers/samples_runtime/runtime/bin/greet")).is_file());
    assert!(inside(&root.join("layers/samples_app-deps/deps/flavor")).is_file());
    assert!(inside(&root.join("workspace/hello.txt")).is_file());
    for t in ["web", "worker"] {
        assert_eq!(
            fs::read_link(rootfs.join(format!("cnb/process/{t}"))).unwrap(),
            Path::new("/cnb/lifecycle/launcher")
        );
    }
    let cfg = image_config(&dir, &d1);
    assert_eq!(cfg["config"]["Entrypoint"][0], "/cnb/process/web");
    assert_eq!(cfg["config"]["Labels"]["io.samples.runtime"], "1.0.0");

    // Second build on a fresh layers dir: the cache brings the runtime layer back and every layer is
    // reused; same inputs, same digest.
    fs::remove_dir_all(root.join("layers")).unwrap();
    fs::create_dir_all(root.join("layers")).unwrap();
    let second = build(&root);
    second[2].assert_contains("Restoring data for \"samples/runtime:runtime\" from cache");
    second[4]
        .assert_contains("Reusing layer 'samples/runtime:runtime'")
        .assert_contains("Reusing cache layer 'samples/runtime:runtime'")
        .assert_not_contains("Adding layer");
    assert_eq!(report_digest(&root), d1);
}
