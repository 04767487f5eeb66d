//! `-parallel` (checklist EP-I8, EP-17, CA-02, CA-03): the image and the cache are exported
//! concurrently, and layers are produced on several threads; the result is the same image digest and the
//! same cache as a serial export.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::export_checks;

use std::collections::BTreeSet;
use std::fs;

use cnb_acceptance::harness::ContainerRoot;
use common::*;
use export_checks::validate_layout;

fn cache_files(root: &ContainerRoot) -> BTreeSet<String> {
    fs::read_dir(root.join("cache/committed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn parallel_export_gives_the_same_image_and_cache() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    write_cache_layer(&root, "dep-v1");
    // A few more launch layers so that several are produced at once.
    for i in 0..4 {
        root.write(format!("layers/bp_a/extra{i}/data"), format!("extra {i}"));
        root.write(
            format!("layers/bp_a/extra{i}.toml"),
            "[types]\nlaunch = true\n",
        );
    }
    root.mkdir("cache");
    let cache = format!("-cache-dir={}", root.join("cache").display());

    analyze(&root).assert_success();
    export(&root, &[cache.as_str()])
        .assert_success()
        .assert_contains("Adding cache layer 'bp/a:deps'");
    let serial = report_digest(&root);
    let serial_cache = cache_files(&root);
    assert!(
        serial_cache.iter().any(|f| f.ends_with(".tar")),
        "{serial_cache:?}"
    );

    // Start over from nothing: no previous image, empty cache.
    fs::remove_dir_all(root.join("layout/index.docker.io/app")).unwrap();
    fs::remove_dir_all(root.join("cache")).unwrap();
    root.mkdir("cache");
    analyze(&root).assert_success();
    export(&root, &["-parallel", cache.as_str()])
        .assert_success()
        .assert_contains("Adding cache layer 'bp/a:deps'")
        .assert_contains("Adding layer 'bp/a:extra3'");
    assert_eq!(
        report_digest(&root),
        serial,
        "same image as the serial export"
    );
    assert_eq!(cache_files(&root), serial_cache, "same cache");
    validate_layout(&app_layout(&root));

    // CNB_PARALLEL_EXPORT, no-op rebuild: everything reused, nothing written.
    let blobs = blob_files(&app_layout(&root));
    analyze(&root).assert_success();
    root.phase("exporter")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .env("CNB_PARALLEL_EXPORT", "true")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ),
            cache.clone(),
            "app/img".to_string(),
        ])
        .run()
        .assert_success()
        .assert_contains("Reusing cache layer 'bp/a:deps'")
        .assert_not_contains("Adding layer");
    assert_eq!(report_digest(&root), serial);
    assert_eq!(blob_files(&app_layout(&root)), blobs);
}
