//! `analyzer` and `restorer` started as root against an authenticated loopback registry (checklist
//! G-17, G-16, G-19): the docker `config.json` and its credential helper live in a root-only directory,
//! as a secret mounted for root would. Both phases must resolve credentials for every registry they
//! touch before dropping to the build user. A control run as the build user shows that the helper is
//! really out of its reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_acceptance::harness::{running_as_root, ContainerRoot, Output, DEFAULT_PATH};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

/// A root-only directory holding `config.json` (credHelpers → `cnbtest`) and the helper
/// `docker-credential-cnbtest`, which answers with the registry's user and password.
fn root_only_credentials(reg: &Registry, dir: &Path) {
    let (user, pass) = reg.credentials().unwrap();
    let helper = dir.join("docker-credential-cnbtest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{pass}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        dir.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"cnbtest\"}}}}", reg.host()),
    )
    .unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
}

fn with_creds(
    root: &ContainerRoot,
    reg: &Registry,
    secret: &Path,
    name: &str,
    args: Vec<String>,
) -> Output {
    root.phase(name)
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("DOCKER_CONFIG", secret.display().to_string())
        .env("PATH", format!("{}:{DEFAULT_PATH}", secret.display()))
        .env_remove("CNB_REGISTRY_AUTH")
        .args(args)
        .as_current_user()
        .run()
}

/// G-17: analyzer (run image, previous image, output and cache image access checks) and restorer (cache
/// image) as root with credentials only root can reach; the password never shows in the output.
#[test]
fn analyzer_and_restorer_resolve_credentials_before_dropping_privileges_g17() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the phases start as root and drop to uid 1000)");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let base = busybox();
    let run = reg.image("cnb/run:latest");
    reg.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{run}"),
    );
    let app = reg.image("app/img:latest");
    let cache = reg.image("app/cache:latest");
    let root = ContainerRoot::new();
    let secret = tempfile::tempdir().unwrap();
    root_only_credentials(&reg, secret.path());
    let (_, pass) = reg.credentials().unwrap();

    // First build: the app image and the cache image are written with CNB_REGISTRY_AUTH.
    write_build_output(&root, "v1", "echo v1");
    write_cache_layer(&root, "dep-v1");
    let auth = |name: &str, args: Vec<String>| {
        root.phase(name)
            .env("CNB_INSECURE_REGISTRIES", reg.host())
            .env("CNB_REGISTRY_AUTH", reg.registry_auth_env())
            .args(args)
            .run()
    };
    auth(
        "analyzer",
        vec![
            format!("-run-image={run}"),
            format!("-cache-image={cache}"),
            app.clone(),
        ],
    )
    .assert_success();
    auth(
        "exporter",
        vec![
            format!("-cache-image={cache}"),
            format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ),
            app.clone(),
        ],
    )
    .assert_success();
    fs::remove_dir_all(root.join("layers/bp_a")).unwrap();
    fs::remove_file(root.join("layers/analyzed.toml")).unwrap();

    // Second build as root, credentials from the root-only helper only.
    let out = with_creds(
        &root,
        &reg,
        secret.path(),
        "analyzer",
        vec![
            format!("-run-image={run}"),
            format!("-cache-image={cache}"),
            format!("-tag={}", reg.image("app/img:v2")),
            app.clone(),
        ],
    );
    out.assert_success().assert_not_contains(pass);
    let analyzed = root.read("layers/analyzed.toml");
    assert!(
        analyzed.contains(&format!("{}/app/img@sha256:", reg.host())),
        "previous image found: {analyzed}"
    );
    assert!(analyzed.contains(&format!("{}/cnb/run@sha256:", reg.host())));
    let out = with_creds(
        &root,
        &reg,
        secret.path(),
        "restorer",
        vec![format!("-cache-image={cache}")],
    );
    out.assert_success()
        .assert_contains("Restoring data for \"bp/a:deps\" from cache")
        .assert_not_contains(pass);
    assert_eq!(root.read("layers/bp_a/deps/lib/dep.txt"), "dep-v1");

    // Control: started as the build user, the same phases cannot run the root-only helper.
    let out = root
        .phase("analyzer")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("DOCKER_CONFIG", secret.path().display().to_string())
        .env(
            "PATH",
            format!("{}:{DEFAULT_PATH}", secret.path().display()),
        )
        .args([format!("-run-image={run}"), app.clone()])
        .run();
    assert!(!out.success(), "{}", out.dump());
}
