//! Local plain-HTTP registries with **no** insecure flag (checklist G-18; issue 13): the phases try HTTPS
//! first and fall back to plain HTTP for local names (`127.0.0.1:PORT`, `localhost:PORT`), as the
//! reference's registry library does, at every Platform API (before 0.13 there is no
//! `-insecure-registry` at all). The phases run as the cnb user (uid 1000), the creator with the Tekton
//! catalog `buildpacks` 0.7 task's command line in a chroot of a builder root filesystem. A non-local name
//! that only answers plain HTTP must fail with a clear HTTPS error (no silent downgrade).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::e2e_support;

use std::collections::BTreeMap;
use std::fs;

use cnb_acceptance::harness::{running_as_root, workspace_dir, ContainerRoot, Output};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};

/// A plain-HTTP loopback registry holding the busybox image as `samples/run` and `samples/builder`.
fn registry() -> Registry {
    let reg = Registry::start(RegistryOptions::plain());
    let base = busybox();
    for repo in ["samples/run:latest", "samples/builder:latest"] {
        reg.skopeo_copy(
            &format!("oci:{}:{}", base.layout.display(), base.tag),
            &format!("docker://{}", reg.image(repo)),
        );
    }
    reg
}

/// The two local names of the registry: `127.0.0.1:PORT` and `localhost:PORT`.
fn local_names(reg: &Registry) -> [String; 2] {
    [reg.host(), format!("localhost:{}", reg.port())]
}

fn setup(root: &ContainerRoot) {
    common::sample_buildpacks(root);
}

fn ok(out: Output) -> Output {
    out.assert_success();
    out.assert_not_contains("insecure");
    out
}

/// analyzer → detector → restorer → builder → exporter (cache image), then analyzer + restorer again
/// (the cache image is read back, `-build-image` recorded from P0.10) and the rebaser, all as uid 1000
/// against `host`, without `CNB_INSECURE_REGISTRIES` / `-insecure-registry`.
fn phases_flow(api: &str, host: &str) {
    let root = ContainerRoot::new();
    setup(&root);
    let app = format!("{host}/samples/app:latest");
    let run = format!("{host}/samples/run:latest");
    let cache = format!("-cache-image={host}/samples/cache:latest");
    let build_image = format!("-build-image={host}/samples/builder:latest");
    let launcher = format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    );
    let phase = |name: &str| {
        root.phase(name)
            .platform_api(api)
            .env_remove("CNB_INSECURE_REGISTRIES")
    };
    let extensions_api = api != "0.9";
    let restore = || {
        let mut args = vec![cache.clone()];
        if extensions_api {
            args.push(build_image.clone());
        }
        ok(phase("restorer").args(args).run())
    };
    ok(phase("analyzer")
        .args([format!("-run-image={run}"), cache.clone(), app.clone()])
        .run());
    let analyzed = root.read("layers/analyzed.toml");
    assert!(
        analyzed.contains(&format!("{host}/samples/run@sha256:")),
        "{analyzed}"
    );
    ok(phase("detector").run());
    restore();
    ok(phase("builder").run());
    ok(phase("exporter")
        .args([cache.clone(), launcher.clone(), app.clone()])
        .run())
    .assert_contains("Adding cache layer 'samples/runtime:runtime'");
    let report = root.read("layers/report.toml");
    assert!(report.contains("digest = \"sha256:"), "{report}");

    // Second build: the cache image is read back over plain HTTP.
    fs::remove_dir_all(root.join("layers")).unwrap();
    fs::create_dir_all(root.join("layers")).unwrap();
    ok(phase("analyzer")
        .args([format!("-run-image={run}"), cache.clone(), app.clone()])
        .run());
    ok(phase("detector").run());
    let restored = restore();
    restored.assert_contains("Restoring data for \"samples/runtime:runtime\" from cache");
    if extensions_api {
        // The build image's manifest and config were read over plain HTTP: either recorded, or (the
        // kaniko dir is the fixed `/kaniko`, not writable by uid 1000 on this host) only its sparse copy
        // could not be saved — never a registry failure.
        let analyzed = root.read("layers/analyzed.toml");
        let recorded = analyzed.contains(&format!("{host}/samples/builder@sha256:"));
        let saved_failed = restored.contains("creating cache directory '/kaniko/cache/base'");
        assert!(
            recorded || saved_failed,
            "-build-image not read: {analyzed}\n{}",
            restored.all()
        );
    }
    ok(phase("rebaser")
        .args([
            format!(
                "-report={}",
                root.join("layers/rebase-report.toml").display()
            ),
            format!("-run-image={run}"),
            app.clone(),
        ])
        .run());
    let report = root.read("layers/rebase-report.toml");
    assert!(report.contains("digest = \"sha256:"), "{report}");
}

#[test]
fn phases_reach_local_plain_http_registries_without_insecure_flags_p09() {
    let reg = registry();
    for host in local_names(&reg) {
        phases_flow("0.9", &host);
    }
}

#[test]
fn phases_reach_local_plain_http_registries_without_insecure_flags_p015() {
    let reg = registry();
    for host in local_names(&reg) {
        phases_flow("0.15", &host);
    }
}

/// The Tekton catalog `buildpacks` 0.7 task's `create` step, exactly: `CNB_PLATFORM_API=0.9`,
/// `DOCKER_CONFIG` from the (empty) dockerconfig workspace, uid/gid 1000, no insecure flag.
#[test]
fn tekton_buildpacks_task_creator_pushes_to_a_local_plain_http_registry() {
    if !running_as_root() {
        panic!("this test runs the creator in a chroot as uid 1000 and must run as root");
    }
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let sample = e2e_support::Sample {
        base: None,
        buildpacks: &[("runtime", false), ("app-deps", true)],
        app: "hello",
        run_layout: busybox().layout.clone(),
        build_says: "",
        app_says: "",
    };
    let rootfs = e2e_support::builder_rootfs(tmp.path(), &sample);
    for d in [
        "workspace/cache",
        "workspace/dockerconfig",
        "layers",
        "platform",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    e2e_support::copy_tree(
        &workspace_dir().join("samples/apps/hello"),
        &rootfs.join("workspace/source"),
    );
    cnb_acceptance::harness::chown_tree(&rootfs.join("workspace"), 1000, 1000);
    for host in local_names(&reg) {
        for d in ["layers", "platform"] {
            let _ = fs::remove_dir_all(rootfs.join(d));
            fs::create_dir_all(rootfs.join(d)).unwrap();
            cnb_acceptance::harness::chown_tree(&rootfs.join(d), 1000, 1000);
        }
        let app_image = format!("{host}/samples/tekton-app:latest");
        let argv: Vec<String> = [
            "/cnb/lifecycle/creator".to_string(),
            "-app=/workspace/source/".into(),
            "-cache-dir=/workspace/cache".into(),
            "-cache-image=".into(),
            "-uid=1000".into(),
            "-gid=1000".into(),
            "-layers=/layers".into(),
            "-platform=/platform".into(),
            "-report=/layers/report.toml".into(),
            "-process-type=web".into(),
            "-skip-restore=false".into(),
            format!("-previous-image={app_image}"),
            format!("-run-image={host}/samples/run:latest"),
            app_image.clone(),
        ]
        .into();
        let env: BTreeMap<String, String> = [
            ("CNB_PLATFORM_API", "0.9"),
            ("DOCKER_CONFIG", "/workspace/dockerconfig"),
            ("HOME", "/tekton/home"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let log = e2e_support::run_step(&rootfs, "create", &argv, &env, (1000, 1000));
        assert!(log.contains("===> EXPORTING"), "{log}");
        let report = fs::read_to_string(rootfs.join("layers/report.toml")).unwrap();
        assert!(report.contains("digest = \"sha256:"), "{report}");
        let manifest = reg.skopeo_inspect_raw("samples/tekton-app:latest");
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert!(m["layers"].as_array().unwrap().len() >= 4, "{m}");
    }
}

/// A name that is not local (`registry.example.test`, mapped to 127.0.0.1 by a private `/etc/hosts`
/// bind-mounted in a private mount namespace) gets no HTTP fallback: the analyzer fails clearly.
#[test]
fn a_non_local_plain_http_registry_fails_with_a_clear_https_error() {
    if !running_as_root() {
        panic!("this test needs root for a private mount namespace (unshare)");
    }
    let reg = registry();
    let root = ContainerRoot::new();
    setup(&root);
    let hosts = root.write(
        "hosts",
        "127.0.0.1 localhost registry.example.test\n::1 localhost\n",
    );
    let host = format!("registry.example.test:{}", reg.port());
    let analyzer = cnb_acceptance::harness::bin_path("analyzer");
    let out = root
        .phase("analyzer")
        .as_current_user()
        .platform_api("0.15")
        .env_remove("CNB_INSECURE_REGISTRIES")
        .program("/usr/bin/unshare")
        .args([
            "--mount".to_string(),
            "--propagation=private".into(),
            "/bin/sh".into(),
            "-c".into(),
            "mount --bind \"$0\" /etc/hosts && exec \"$@\"".into(),
            hosts.display().to_string(),
            analyzer.display().to_string(),
            format!("-run-image={host}/samples/run:latest"),
            format!("{host}/samples/app:latest"),
        ])
        .run();
    assert!(!out.success(), "{}", out.all());
    out.assert_contains("registry.example.test");
    out.assert_contains("reached over HTTPS only");
    assert!(!root.exists("layers/analyzed.toml"), "{}", out.all());
    // The host's own /etc/hosts was not touched.
    assert!(!fs::read_to_string("/etc/hosts")
        .unwrap()
        .contains("registry.example.test"));
}
