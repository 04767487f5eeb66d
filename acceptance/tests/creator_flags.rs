//! The creator's flags per Platform API against the reference's (issue 8 item 1; checklist §9 CR-I1,
//! CR-I2, CR-I3, CR-I5, CR-03, CR-07, G-08): the creator runs as root on the host, builds the sample
//! runtime buildpack and pushes to a loopback registry, at Platform 0.10, 0.12, 0.13 and 0.15, with
//! every flag the reference accepts at that API that works without a daemon; flags of later APIs are
//! unknown (exit 2) and `-daemon` without an engine fails clearly (exit 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use cnb_acceptance::harness::{bin_dir, running_as_root, workspace_dir, ContainerRoot, Output};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};

fn setup(reg: &Registry) -> ContainerRoot {
    let root = ContainerRoot::new();
    for bp in ["runtime", "app-deps"] {
        root.copy_dir(
            workspace_dir().join("samples/buildpacks").join(bp),
            format!("cnb/buildpacks/samples_{bp}/0.1.0"),
        );
    }
    root.copy_dir(workspace_dir().join("samples/apps/hello"), "workspace");
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"samples/runtime\"\nversion = \"0.1.0\"\n[[order.group]]\nid = \"samples/app-deps\"\nversion = \"0.1.0\"\n",
    );
    root.write(
        "cnb/run.toml",
        format!("[[images]]\nimage = \"{}\"\n", reg.image("test/run:latest")),
    );
    root.write(
        "cnb/stack.toml",
        format!(
            "[run-image]\nimage = \"{}\"\n",
            reg.image("test/run:latest")
        ),
    );
    root.write("cnb/system.toml", "[system]\n[system.pre]\n[system.post]\n");
    root.write("project-metadata.toml", "[source]\ntype = \"git\"\n");
    root.write(
        "cnb/lifecycle-sbom/launcher.sbom.cdx.json",
        "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.4\"}\n",
    );
    root.mkdir("cache");
    root.mkdir("launch-cache");
    root.mkdir("platform");
    root.chown(1000, 1000);
    root
}

fn creator(root: &ContainerRoot, api: &str, reg: &Registry, args: &[String]) -> Output {
    root.phase("creator")
        .as_current_user()
        .platform_api(api)
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .args(args.iter().cloned())
        .run()
}

fn config(reg: &Registry, repo_tag: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--config",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{}", reg.image(repo_tag)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect --config {repo_tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn digest(reg: &Registry, repo_tag: &str) -> String {
    let raw = reg.skopeo_inspect_raw(repo_tag);
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
}

/// Every daemon-free flag of the reference creator at `api` (with its gates), and what they do.
fn every_flag_at(api: &str, minor: u32) {
    let reg = Registry::start(RegistryOptions::plain());
    let base = busybox();
    reg.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{}", reg.image("test/run:latest")),
    );
    let root = setup(&reg);
    let p = |rel: &str| root.join(rel).display().to_string();
    let app = reg.image("test/app:latest");
    let mut args = vec![
        format!("-app={}", p("workspace")),
        format!("-buildpacks={}", p("cnb/buildpacks")),
        format!("-cache-dir={}", p("cache")),
        format!("-cache-image={}", reg.image("test/cache:latest")),
        format!("-gid=1000"),
        format!("-uid=1000"),
        format!("-launch-cache={}", p("launch-cache")),
        format!("-launcher={}", bin_dir().join("launcher").display()),
        format!("-layers={}", p("layers")),
        "-log-level=debug".to_string(),
        "-no-color".to_string(),
        format!("-order={}", p("cnb/order.toml")),
        "-parallel".to_string(),
        format!("-platform={}", p("platform")),
        format!("-previous-image={app}"),
        "-process-type=worker".to_string(),
        format!("-project-metadata={}", p("project-metadata.toml")),
        format!("-report={}", p("layers/report.toml")),
        format!("-run-image={}", reg.image("test/run:latest")),
        format!("-stack={}", p("cnb/stack.toml")),
        format!("-tag={}", reg.image("test/app:extra")),
        "-skip-restore".to_string(),
    ];
    if minor >= 11 {
        args.push(format!("-build-config={}", p("cnb/build-config")));
        args.push(format!("-launcher-sbom={}", p("cnb/lifecycle-sbom")));
    }
    if minor >= 12 {
        args.push(format!("-run={}", p("cnb/run.toml")));
    }
    if minor >= 13 {
        args.push(format!("-insecure-registry={}", reg.host()));
    }
    if minor >= 15 {
        args.push(format!("-system={}", p("cnb/system.toml")));
    }
    args.push(app.clone());
    let t = std::time::Instant::now();
    let out = creator(&root, api, &reg, &args);
    println!(
        "TIMING creator at Platform {api} to a registry with every flag: {:.2}s",
        t.elapsed().as_secs_f64()
    );
    out.assert_success();
    // CR-01 sections; CR-03: from 0.10 -skip-restore still runs the restorer.
    for s in [
        "===> ANALYZING",
        "===> DETECTING",
        "===> RESTORING",
        "===> BUILDING",
        "===> EXPORTING",
    ] {
        out.assert_contains(s);
    }
    // -log-level=debug
    out.assert_contains("Starting creator");
    // -launch-cache without -daemon is ignored with the reference's warning.
    out.assert_contains("Ignoring -launch-cache, only intended for use with -daemon");
    // -process-type: the default process is worker.
    let cfg = config(&reg, "test/app:latest");
    let entrypoint = cfg["config"]["Entrypoint"].to_string();
    assert!(entrypoint.contains("/cnb/process/worker"), "{entrypoint}");
    // -tag: the same image under the extra tag (CR-I5).
    assert_eq!(
        digest(&reg, "test/app:extra"),
        digest(&reg, "test/app:latest")
    );
    // -cache-image: the cache went to the registry too.
    let _ = reg.skopeo_inspect_raw("test/cache:latest");
    // -project-metadata: recorded in the image label.
    let labels = cfg["config"]["Labels"].to_string();
    assert!(
        labels.contains("io.buildpacks.project.metadata"),
        "{labels}"
    );
    assert!(labels.contains("git"), "{labels}");
    // -report
    assert!(root.join("layers/report.toml").is_file());
}

fn rejects(api: &str, flag: &str) {
    let out = cnb_acceptance::harness::phase("creator")
        .platform_api(api)
        .args([flag.to_string(), "example.com/app".to_string()])
        .run();
    out.assert_code(2);
    let name = flag.trim_start_matches('-');
    let name = name.split('=').next().unwrap_or(name);
    out.assert_contains(&format!("flag provided but not defined: -{name}"));
}

#[test]
fn creator_flags_at_platform_0_10() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the creator drops to uid 1000)");
        return;
    }
    every_flag_at("0.10", 10);
    // CR-I3 gates: none of these exist yet at 0.10.
    rejects("0.10", "-build-config=/x");
    rejects("0.10", "-layout");
    rejects("0.10", "-run=/x");
    rejects("0.10", "-insecure-registry=x");
}

#[test]
fn creator_flags_at_platform_0_12() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the creator drops to uid 1000)");
        return;
    }
    every_flag_at("0.12", 12);
    rejects("0.12", "-insecure-registry=x");
    rejects("0.12", "-system=/x");
}

#[test]
fn creator_flags_at_platform_0_13() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the creator drops to uid 1000)");
        return;
    }
    every_flag_at("0.13", 13);
    rejects("0.13", "-system=/x");
}

#[test]
fn creator_flags_at_platform_0_15() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the creator drops to uid 1000)");
        return;
    }
    every_flag_at("0.15", 15);
}

#[test]
fn creator_daemon_without_an_engine_fails_clearly_cr07() {
    for api in ["0.10", "0.15"] {
        // -daemon with no engine at DOCKER_HOST: the reference's "initialize docker client", exit 1,
        // naming the socket (issue 15; the daemon flow itself is in daemon.rs).
        let out = cnb_acceptance::harness::phase("creator")
            .platform_api(api)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["-daemon", "example.com/app"])
            .run();
        out.assert_code(1);
        out.assert_contains("initialize docker client");
        out.assert_contains("unix:///nonexistent/docker.sock");
        // Extra positionals: exactly one image (CR-I5).
        let out = cnb_acceptance::harness::phase("creator")
            .platform_api(api)
            .args(["example.com/a", "example.com/b"])
            .run();
        out.assert_code(3);
        out.assert_contains("received 2 arguments, but expected 1");
    }
}
