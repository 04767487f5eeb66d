//! `creator` started as root against an authenticated registry (checklist G-17, G-19, §9): the docker
//! `config.json` lives in a root-only directory, as with a secret mounted for root. The creator must read
//! the credentials before it drops to the build user, and the buildpacks must still never see them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_acceptance::harness::{running_as_root, workspace_dir, ContainerRoot};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};

#[test]
fn creator_as_root_uses_a_root_only_docker_config_g17() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the creator starts as root and drops to uid 1000)");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let base = busybox();
    let run_image = reg.image("samples/run:latest");
    reg.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{run_image}"),
    );

    let root = ContainerRoot::new();
    let samples = workspace_dir().join("samples");
    for bp in ["runtime", "app-deps"] {
        root.copy_dir(
            samples.join("buildpacks").join(bp),
            format!("cnb/buildpacks/samples_{bp}/0.1.0"),
        );
    }
    root.copy_dir(samples.join("apps/hello"), "workspace");
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"samples/runtime\"\nversion = \"0.1.0\"\n[[order.group]]\nid = \"samples/app-deps\"\nversion = \"0.1.0\"\n",
    );
    // A stand-in launcher: this test is about registry access, not about running the image.
    root.write_executable("cnb/lifecycle/launcher", "#!/bin/sh\necho launcher\n");

    // Root-only docker config (0700 dir owned by root), outside the container root.
    let secret = tempfile::tempdir().unwrap();
    let cfg = secret.path().join("docker");
    reg.docker_login(&cfg);
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(secret.path(), fs::Permissions::from_mode(0o700)).unwrap();

    let app = reg.image("samples/app:latest");
    let t = std::time::Instant::now();
    let out = root
        .phase("creator")
        .as_current_user()
        .env("DOCKER_CONFIG", cfg.display().to_string())
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env_remove("CNB_REGISTRY_AUTH")
        .args([
            format!("-run-image={run_image}"),
            format!("-cache-dir={}", root.join("cache").display()),
            format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ),
            app.clone(),
        ])
        .run();
    println!(
        "TIMING creator to an authenticated registry (host buildpacks): fresh {:.2}s",
        t.elapsed().as_secs_f64()
    );
    out.assert_success();
    out.assert_contains("===> EXPORTING");
    let user_pass = reg.credentials().unwrap();
    out.assert_not_contains(user_pass.1);

    // The app image is in the registry, on top of the run image.
    let manifest = reg.skopeo_inspect_raw("samples/app:latest");
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert!(layers.len() >= 4, "app image has too few layers: {m}");
    let report = fs::read_to_string(root.join("layers/report.toml")).unwrap();
    assert!(report.contains("digest = \"sha256:"), "{report}");
}
