//! Analyzer details (checklist §2): registry access validation (AN-03), the previous image's SBOM layer
//! restored unless `-skip-layers` and then copied next to the layers by the restorer (AN-05, RS-12), an
//! undecodable lifecycle metadata label (AN-04), no layer metadata written by the analyzer (AN-08).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use cnb_acceptance::harness::ContainerRoot;
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

/// AN-03: read access to the previous and run images, read/write access to the output image, every
/// `-tag` and the cache image; a failure exits 32 naming the image. Credentials fix it (G-16).
#[test]
fn registry_access_is_checked_an03() {
    let open = Registry::start(RegistryOptions::plain());
    let locked = Registry::start(RegistryOptions::plain().basic_auth());
    let base = busybox();
    let run = open.image("cnb/run:latest");
    open.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{run}"),
    );
    let root = ContainerRoot::new();
    let analyze = |args: Vec<String>, auth: bool| {
        let mut cmd = root
            .phase("analyzer")
            .env(
                "CNB_INSECURE_REGISTRIES",
                format!("{},{}", open.host(), locked.host()),
            )
            .args(args);
        if auth {
            cmd = cmd.env("CNB_REGISTRY_AUTH", locked.registry_auth_env());
        }
        cmd.run()
    };
    let run_flag = format!("-run-image={run}");
    let locked_app = locked.image("app/img:latest");
    let open_app = open.image("app/img:latest");

    // The previous image defaults to the output image: read access is checked first.
    analyze(vec![run_flag.clone(), locked_app.clone()], false)
        .assert_code(32)
        .assert_contains(&format!(
            "failed to ensure registry read access to {locked_app}"
        ));
    let prev = format!("-previous-image={}", open.image("app/prev:latest"));
    analyze(
        vec![run_flag.clone(), prev.clone(), locked_app.clone()],
        false,
    )
    .assert_code(32)
    .assert_contains(&format!(
        "failed to ensure registry read/write access to {locked_app}"
    ));
    // (A -tag must be on the output image's registry, G-21: checked with the credentials below.)
    let tag = locked.image("app/img:v2");
    let cache = locked.image("app/cache:latest");
    analyze(
        vec![
            run_flag.clone(),
            format!("-cache-image={cache}"),
            open_app.clone(),
        ],
        false,
    )
    .assert_code(32)
    .assert_contains(&format!(
        "failed to ensure registry read/write access to {cache}"
    ));
    // With credentials for the locked registry every check passes.
    analyze(
        vec![
            run_flag.clone(),
            format!("-tag={tag}"),
            format!("-cache-image={cache}"),
            locked_app.clone(),
        ],
        true,
    )
    .assert_success();
    // AN-08: the analyzer writes no layer metadata.
    assert!(!root.exists("layers/bp_a"));
}

/// AN-05, RS-12: the previous image's SBOM layer is restored to `<layers>/sbom/launch/...` by the
/// analyzer (not with `-skip-layers`), and the restorer copies each layer's SBOM next to the restored
/// layer metadata, then removes `<layers>/sbom`.
#[test]
fn previous_image_sbom_is_restored_an05_rs12() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    let sbom = r#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"name":"web"}]}"#;
    // What the builder leaves: the layer's SBOM under <layers>/sbom/launch/<bp>/<layer>/.
    root.write("layers/sbom/launch/bp_a/web/sbom.cdx.json", sbom);
    analyze(&root).assert_success();
    export(&root, &[]).assert_success();
    let labels = image_config(&app_layout(&root), &report_digest(&root));
    let md: serde_json::Value = serde_json::from_str(
        labels["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        md["sbom"]["sha"].as_str().is_some(),
        "the exporter wrote an SBOM layer: {md}"
    );

    // New build, fresh layers dir (group.toml stays).
    for d in ["layers/bp_a", "layers/sbom"] {
        let _ = std::fs::remove_dir_all(root.join(d));
    }
    std::fs::remove_file(root.join("layers/analyzed.toml")).unwrap();
    analyze_with(&root, &["-skip-layers"])
        .assert_success()
        .assert_not_contains("Restoring data for SBOM from previous image");
    assert!(!root.exists("layers/sbom"));
    analyze(&root)
        .assert_success()
        .assert_contains("Restoring data for SBOM from previous image");
    assert_eq!(root.read("layers/sbom/launch/bp_a/web/sbom.cdx.json"), sbom);
    root.phase("restorer")
        .run()
        .assert_success()
        .assert_contains("Restoring metadata for \"bp/a:web\" from app image");
    assert_eq!(root.read("layers/bp_a/web.sbom.cdx.json"), sbom);
    assert!(!root.exists("layers/sbom"), "RS-12: <layers>/sbom removed");
}

/// AN-04: a previous image whose lifecycle metadata label is not JSON is still the previous image
/// (its digest is recorded) with empty metadata; the build goes on.
#[test]
fn undecodable_metadata_label_is_empty_metadata_an04() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    let prev = make_run_image_with(&root, "app/img", "previous");
    let img = format!("{}:latest", prev.display());
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &img,
            "--config.label",
            "io.buildpacks.lifecycle.metadata={not json",
        ],
    );
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    analyze(&root).assert_success();
    let a: toml::Value = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    let reference = a["image"]["reference"].as_str().unwrap();
    assert!(
        reference.starts_with(&format!("{}@sha256:", prev.display())),
        "{a}"
    );
    assert!(a["metadata"].get("buildpacks").is_none(), "{a}");
    root.phase("restorer")
        .run()
        .assert_success()
        .assert_not_contains("Restoring metadata");
    assert!(!root.exists("layers/bp_a"));
}

/// AN-07, AN-09: in layout mode the run image is read from `<layout-dir>/<registry>/<repo>/<tag>`
/// without an access check; `analyzed.toml` records `reference` = `<layout path>@sha256:<manifest
/// digest>`, `image` = the name as given, and the target from the config and `io.buildpacks.base.*`
/// labels.
#[test]
fn layout_run_image_reference_and_target_an07_an09() {
    let root = ContainerRoot::new();
    let dir = make_run_image(&root, "cnb/run");
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    analyze(&root).assert_success();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let a: toml::Value = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    let run = &a["run-image"];
    assert_eq!(
        run["reference"].as_str().unwrap(),
        format!("{}@{digest}", dir.display())
    );
    assert_eq!(run["image"].as_str(), Some("cnb/run"));
    let t = &run["target"];
    assert_eq!(t["os"].as_str(), Some("linux"));
    assert_eq!(t["arch"].as_str(), Some("amd64"));
    assert_eq!(t["id"].as_str(), Some("test-run"));
    assert_eq!(t["distro"]["name"].as_str(), Some("busybox"));
    assert_eq!(t["distro"]["version"].as_str(), Some("1"));
    // No previous image: `[image]` is still written, with an empty reference (AN-04, AN-08).
    assert_eq!(a["image"]["reference"].as_str(), Some(""));

    // A run image that is not in the layout dir fails the analyzer (exit 32), naming it.
    root.phase("analyzer")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            "-run-image=cnb/missing".to_string(),
            "app/img".to_string(),
        ])
        .run()
        .assert_code(32)
        .assert_contains("cnb/missing");
}

/// AN-04: a previous image that cannot be read (its manifest blob is gone) is ignored — the build goes
/// on as a first build; AN-06, AN-10: a launch cache without `-daemon` and `CNB_PARALLEL_EXPORT` without
/// any cache only warn.
#[test]
fn corrupt_previous_image_and_warnings_an04_an06_an10() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    let prev = make_run_image_with(&root, "app/img", "previous");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prev.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    std::fs::remove_file(
        prev.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    let launch_cache = format!("-launch-cache={}", root.join("cache").display());
    let out = root
        .phase("analyzer")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .env("CNB_PARALLEL_EXPORT", "true")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            "-run-image=cnb/run".to_string(),
            launch_cache,
            "app/img".to_string(),
        ])
        .run();
    out.assert_success()
        .assert_contains("Ignoring -launch-cache, only intended for use with -daemon")
        .assert_contains("Parallel export has been enabled, but it has not taken effect because no cache has been specified.");
    let a: toml::Value = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    assert_eq!(a["image"]["reference"].as_str(), Some(""), "{a}");
    assert!(a["run-image"]["reference"]
        .as_str()
        .unwrap()
        .contains("@sha256:"));
}
