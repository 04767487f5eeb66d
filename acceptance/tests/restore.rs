//! Restorer with a cache directory, in platform order (analyzer → restorer → exporter; checklist §5,
//! §20). A corrupt or missing cache only warns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use cnb_acceptance::harness::{ContainerRoot, Output};
use common::*;

fn restore(root: &ContainerRoot, extra: &[&str]) -> Output {
    root.phase("restorer")
        .args(extra.iter().map(|s| s.to_string()))
        .run()
}

fn cache_flag(root: &ContainerRoot) -> String {
    format!("-cache-dir={}", root.join("cache").display())
}

/// First build with a cache dir; then a fresh layers dir.
fn first_build(root: &ContainerRoot) {
    make_run_image(root, "cnb/run");
    write_build_output(root, "v1", "echo v1");
    write_cache_layer(root, "dep-v1");
    analyze(root).assert_success();
    export(root, &[&cache_flag(root)])
        .assert_success()
        .assert_contains("Adding cache layer 'bp/a:deps'");
    assert!(root.exists("cache/committed/io.buildpacks.lifecycle.cache.metadata"));
    // A new build starts with an empty layers dir (only group.toml from the detector).
    fs::remove_dir_all(root.join("layers/bp_a")).unwrap();
    fs::remove_file(root.join("layers/analyzed.toml")).unwrap();
    analyze(root).assert_success();
}

/// RS-10, RS-11, LY-05, CA-03: the cache layer's metadata and data come back; the launch-only layer's
/// metadata comes back from the app image without data; the rebuild then reuses everything.
#[test]
fn cache_dir_restores_on_second_build() {
    let root = ContainerRoot::new();
    first_build(&root);
    let out = restore(&root, &[&cache_flag(&root)]);
    out.assert_success()
        .assert_contains("Restoring metadata for \"bp/a:deps\" from cache")
        .assert_contains("Restoring data for \"bp/a:deps\" from cache")
        .assert_contains("Restoring metadata for \"bp/a:web\" from app image");
    assert_eq!(root.read("layers/bp_a/deps/lib/dep.txt"), "dep-v1");
    let deps = root.read("layers/bp_a/deps.toml");
    assert!(
        deps.contains("[metadata]") && deps.contains("v = \"1\"") && !deps.contains("[types]"),
        "{deps}"
    );
    assert!(root
        .read("layers/bp_a/web.toml")
        .contains("version = \"1\""));
    assert!(
        !root.exists("layers/bp_a/web"),
        "launch-only layer: metadata, no data"
    );

    // The builder re-declares the types; the exporter reuses the web layer and the cached deps layer.
    let d1 = report_digest(&root);
    root.write(
        "layers/bp_a/web.toml",
        "[types]\nlaunch = true\n[metadata]\nversion = \"1\"\n",
    );
    root.write(
        "layers/bp_a/deps.toml",
        "[types]\ncache = true\nbuild = true\n[metadata]\nv = \"1\"\n",
    );
    let out = export(&root, &[&cache_flag(&root)]);
    out.assert_success()
        .assert_contains("Reusing layer 'bp/a:web'")
        .assert_contains("Reusing cache layer 'bp/a:deps'");
    assert_eq!(report_digest(&root), d1, "same build, same digest");
}

/// RS-11, CA-04: a corrupted cached layer is not restored; the restorer warns and succeeds.
#[test]
fn corrupt_cache_warns_and_builds() {
    let root = ContainerRoot::new();
    first_build(&root);
    for e in fs::read_dir(root.join("cache/committed")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tar") {
            fs::remove_file(&p).unwrap();
            fs::write(&p, "corrupt").unwrap();
        }
    }
    let out = restore(&root, &[&cache_flag(&root)]);
    out.assert_success()
        .assert_contains("Skipping restore for layer bp/a:deps");
    assert!(
        out.contains("expected layer contents to have SHA"),
        "{}",
        out.dump()
    );
    assert!(!root.exists("layers/bp_a/deps/lib/dep.txt"));
    assert!(
        !root.exists("layers/bp_a/deps.toml"),
        "a layer without data is rebuilt from scratch"
    );
}

/// RS-01, RS-08: no cache, a missing cache dir and garbage cache metadata only warn.
#[test]
fn missing_or_empty_cache_only_warns() {
    let root = ContainerRoot::new();
    first_build(&root);
    restore(&root, &[])
        .assert_success()
        .assert_contains("No cached data will be used, no cache specified.");
    let missing = format!("-cache-dir={}", root.join("nope").display());
    restore(&root, &[&missing])
        .assert_success()
        .assert_contains("Ignoring cache");
    fs::write(
        root.join("cache/committed/io.buildpacks.lifecycle.cache.metadata"),
        "{garbage",
    )
    .unwrap();
    let out = restore(&root, &[&cache_flag(&root)]);
    out.assert_success().assert_not_contains("from cache");
    assert!(!root.exists("layers/bp_a/deps"));
}

/// RS-10 skip-layers: nothing restored.
#[test]
fn skip_layers_restores_nothing() {
    let root = ContainerRoot::new();
    first_build(&root);
    let out = restore(&root, &["-skip-layers", &cache_flag(&root)]);
    out.assert_success()
        .assert_contains("Skipping buildpack layer analysis");
    assert!(!root.exists("layers/bp_a/deps.toml"));
}
