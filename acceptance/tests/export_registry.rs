//! Analyzer → exporter → rebaser against a real loopback registry (checklist §2, §8, §10, IM-20).
//! Reuse is asserted with the registry's access log: a no-op rebuild uploads no blob.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use cnb_acceptance::harness::{ContainerRoot, Output};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

fn run_phase(root: &ContainerRoot, reg: &Registry, name: &str, args: Vec<String>) -> Output {
    root.phase(name)
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("HOME", root.join("home").display().to_string())
        .args(args)
        .run()
}

fn analyze_reg(root: &ContainerRoot, reg: &Registry) -> Output {
    let args = vec![
        format!("-run-image={}", reg.image("cnb/run:latest")),
        reg.image("app/img:latest"),
    ];
    run_phase(root, reg, "analyzer", args)
}

fn export_reg(root: &ContainerRoot, reg: &Registry) -> Output {
    let args = vec![
        format!(
            "-launcher={}",
            root.join("cnb/lifecycle/launcher").display()
        ),
        reg.image("app/img:latest"),
    ];
    run_phase(root, reg, "exporter", args)
}

/// Blob upload requests (`POST …/blobs/uploads/`, mounts excluded) for a repository so far.
fn uploads(reg: &Registry, repo: &str) -> usize {
    let needle = format!("POST /v2/{repo}/blobs/uploads/");
    reg.access_log()
        .iter()
        .filter(|l| l.contains(&needle) && !l.contains("mount="))
        .count()
}

fn push_run_image(root: &ContainerRoot, reg: &Registry, marker: &str) {
    let dir = make_run_image_with(root, &format!("cnb/run-{marker}"), marker);
    tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", dir.display()),
            &format!("docker://{}", reg.image("cnb/run:latest")),
        ],
    );
}

/// EP-06, EP-15, EP-16, IM-20, T-*: registry build, no-op rebuild (same digest, zero uploads), changed
/// app uploads only the app layer and config; skopeo reads the image; rebase onto a new run image.
#[test]
fn registry_build_rebuild_and_rebase() {
    let reg = Registry::start(RegistryOptions::plain().access_log());
    let root = ContainerRoot::new();
    push_run_image(&root, &reg, "run-v1");
    write_build_output(&root, "v1", "echo v1");
    root.mkdir("home");

    analyze_reg(&root, &reg).assert_success();
    let analyzed = root.read("layers/analyzed.toml");
    assert!(
        analyzed.contains(&format!("{}@sha256:", reg.image("cnb/run"))),
        "{analyzed}"
    );
    export_reg(&root, &reg)
        .assert_success()
        .assert_contains("Adding layer 'bp/a:web'");
    let d1 = report_digest(&root);
    let inspect = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}", reg.image("app/img:latest")),
        ],
    );
    assert!(inspect.contains(&d1), "{inspect}");
    let first = uploads(&reg, "app/img");
    // The lifecycle's own launcher SBOM layer, when the lifecycle under test ships SBOMs (EP-03, SB-05).
    let sbom_layer = usize::from(
        cnb_acceptance::harness::bin_dir()
            .join("launcher.sbom.cdx.json")
            .is_file(),
    );
    assert_eq!(
        first,
        5 + sbom_layer + 1,
        "five new layers (+ the SBOM layer) and the config; base layer mounted: {:?}",
        reg.access_log()
    );

    analyze_reg(&root, &reg).assert_success();
    assert!(root
        .read("layers/analyzed.toml")
        .contains(&format!("{}@{d1}", reg.image("app/img"))));
    export_reg(&root, &reg)
        .assert_success()
        .assert_not_contains("Adding layer");
    assert_eq!(report_digest(&root), d1, "same inputs, same digest");
    assert_eq!(
        uploads(&reg, "app/img"),
        first,
        "no-op rebuild uploads nothing"
    );

    root.write("workspace/app.sh", "echo v2");
    analyze_reg(&root, &reg).assert_success();
    export_reg(&root, &reg)
        .assert_success()
        .assert_contains("Added 1/1 app layer(s)");
    assert_eq!(
        uploads(&reg, "app/img"),
        first + 2,
        "only the app layer and the config"
    );

    // Rebase onto an updated run image.
    let before = report_digest(&root);
    push_run_image(&root, &reg, "run-v2");
    let out = run_phase(&root, &reg, "rebaser", vec![reg.image("app/img:latest")]);
    out.assert_success();
    assert_ne!(report_digest(&root), before);
    tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}", reg.image("app/img:latest")),
        ],
    );
}

/// CA-05, RS-08, RS-11: a cache image written by the exporter restores the cache layer on the next
/// build; an unchanged cache layer is not uploaded again.
#[test]
fn cache_image_restores_on_second_build() {
    let reg = Registry::start(RegistryOptions::plain().access_log());
    let root = ContainerRoot::new();
    root.mkdir("home");
    push_run_image(&root, &reg, "run-v1");
    write_build_output(&root, "v1", "echo v1");
    write_cache_layer(&root, "dep-v1");
    let cache = format!("-cache-image={}", reg.image("app/cache:latest"));
    analyze_reg(&root, &reg).assert_success();
    let mut args = vec![
        cache.clone(),
        format!(
            "-launcher={}",
            root.join("cnb/lifecycle/launcher").display()
        ),
    ];
    args.push(reg.image("app/img:latest"));
    run_phase(&root, &reg, "exporter", args.clone())
        .assert_success()
        .assert_contains("Adding cache layer 'bp/a:deps'");
    let cache_uploads = uploads(&reg, "app/cache");
    assert!(cache_uploads >= 2, "cache layer and config uploaded");

    std::fs::remove_dir_all(root.join("layers/bp_a")).unwrap();
    analyze_reg(&root, &reg).assert_success();
    run_phase(&root, &reg, "restorer", vec![cache.clone()])
        .assert_success()
        .assert_contains("Restoring data for \"bp/a:deps\" from cache");
    assert_eq!(root.read("layers/bp_a/deps/lib/dep.txt"), "dep-v1");

    root.write("layers/bp_a/web/bin/server", "v1");
    root.write(
        "layers/bp_a/web.toml",
        "[types]\nlaunch = true\n[metadata]\nversion = \"1\"\n",
    );
    root.write(
        "layers/bp_a/deps.toml",
        "[types]\ncache = true\nbuild = true\n[metadata]\nv = \"1\"\n",
    );
    run_phase(&root, &reg, "exporter", args)
        .assert_success()
        .assert_contains("Reusing cache layer 'bp/a:deps'");
    assert_eq!(
        uploads(&reg, "app/cache"),
        cache_uploads,
        "unchanged cache: nothing uploaded"
    );
}
