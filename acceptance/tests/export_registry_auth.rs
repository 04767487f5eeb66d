//! `exporter` started as root against an authenticated loopback registry (checklist G-17, EP-15): the
//! docker `config.json` names a credential helper for the registry, and both the config and the helper
//! live in root-only directories, as with secrets mounted for root. The exporter must run the helper
//! before it drops to the build user; afterwards the helper is out of reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_acceptance::harness::{running_as_root, ContainerRoot, DEFAULT_PATH};
use cnb_acceptance::registry::{Registry, RegistryOptions, PASSWORD, USERNAME};
use common::*;

#[test]
fn exporter_as_root_resolves_helper_credentials_before_dropping_g17() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the exporter starts as root and drops to uid 1000)");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let root = ContainerRoot::new();
    let run_layout = make_run_image(&root, "cnb/run");
    let run_image = reg.image("cnb/run:latest");
    reg.skopeo_copy(
        &format!("oci:{}:latest", run_layout.display()),
        &format!("docker://{run_image}"),
    );
    write_build_output(&root, "v1", "echo v1");
    let app = reg.image("app/img:latest");
    // The analyzer is not under test here: give it the credentials directly.
    root.phase("analyzer")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("CNB_REGISTRY_AUTH", reg.registry_auth_env())
        .args([format!("-run-image={run_image}"), app.clone()])
        .run()
        .assert_success();

    // Root-only secrets: config.json naming helper `cnbtest`, and the helper itself.
    let secret = tempfile::tempdir().unwrap();
    let cfg = secret.path().join("docker");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(
        cfg.join("config.json"),
        format!(r#"{{"credHelpers": {{"{}": "cnbtest"}}}}"#, reg.host()),
    )
    .unwrap();
    let helpers = secret.path().join("helpers");
    fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-cnbtest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncat >/dev/null\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USERNAME}\",\"Secret\":\"{PASSWORD}\"}}' \"{}\"\n",
            reg.host()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o700)).unwrap();
    for d in [&cfg, &helpers, &secret.path().to_path_buf()] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
    }

    let out = root
        .phase("exporter")
        .as_current_user()
        .env("DOCKER_CONFIG", cfg.display().to_string())
        .env("PATH", format!("{}:{DEFAULT_PATH}", helpers.display()))
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env_remove("CNB_REGISTRY_AUTH")
        .args([
            format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ),
            app.clone(),
            reg.image("app/img:extra"),
        ])
        .run();
    out.assert_success();
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password is never printed"
    );
    let digest = report_digest(&root);
    // An independent client with the credentials sees both tags at the reported digest.
    for tag in ["latest", "extra"] {
        let inspect = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                &format!("{USERNAME}:{PASSWORD}"),
                "--format",
                "{{.Digest}}",
                &format!("docker://{}", reg.image(&format!("app/img:{tag}"))),
            ])
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), digest);
    }
}
