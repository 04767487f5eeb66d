//! Rebaser against a real loopback registry across Platform APIs (checklist §10 RB-I2…RB-I7, RB-01…RB-09,
//! G-17, G-18): stack ids and mixins for app images exported before Platform 0.12, run image mirrors from
//! the `stack` metadata, `-previous-image`, `-report`, additional names, `-force`/`CNB_FORCE_REBASE`, flags
//! outside their API range, and credentials read before the rebaser drops privileges.
//!
//! App images are assembled with umoci and pushed with skopeo (independent tools), so each test controls
//! exactly the labels and metadata an older exporter would have written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{running_as_root, ContainerRoot, Output};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

const STACK: &str = "io.test.stack";

fn json_blob(dir: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The config of the only image of a layout.
fn layout_config(dir: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = json_blob(dir, index["manifests"][0]["digest"].as_str().unwrap());
    json_blob(dir, manifest["config"]["digest"].as_str().unwrap())
}

fn umoci_config(dir: &Path, args: &[String]) {
    let img = format!("{}:latest", dir.display());
    let mut all: Vec<&str> = vec!["config", "--image", &img];
    all.extend(args.iter().map(String::as_str));
    tool("umoci", &all);
}

/// A busybox run image with `io.buildpacks.stack.id`/`mixins` labels (plus `extra` labels), pushed to
/// `repo:latest`. Returns its layout dir.
fn push_run_image(
    root: &ContainerRoot,
    reg: &Registry,
    repo: &str,
    stack: &str,
    mixins: &[&str],
) -> PathBuf {
    let dir = make_run_image_with(root, &format!("local/{repo}"), repo);
    umoci_config(
        &dir,
        &[
            "--config.label".into(),
            format!("io.buildpacks.stack.id={stack}"),
            "--config.label".into(),
            format!(
                "io.buildpacks.stack.mixins={}",
                serde_json::to_string(mixins).unwrap()
            ),
        ],
    );
    reg.skopeo_copy(
        &format!("oci:{}:latest", dir.display()),
        &format!("docker://{}", reg.image(&format!("{repo}:latest"))),
    );
    dir
}

/// What an exporter of Platform API `api` would have produced on top of the run image in `run_layout`: one
/// app layer (`/workspace/app.sh`), `CNB_PLATFORM_API=<api>` in the env, the run image's stack labels and
/// `io.buildpacks.lifecycle.metadata` = `metadata` with `runImage.topLayer` filled in. Pushed to `name`.
fn push_app_image(
    root: &ContainerRoot,
    reg: &Registry,
    run_layout: &Path,
    name: &str,
    api: &str,
    mut metadata: serde_json::Value,
    extra_labels: &[&str],
) -> String {
    let dir = root.join(format!("app-{}", name.replace(['/', ':'], "_")));
    let _ = fs::remove_dir_all(&dir);
    root.copy_dir(run_layout, &dir);
    let top = layout_config(&dir)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    metadata["runImage"]["topLayer"] = top;
    let app = root.join("app-src/workspace");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("app.sh"), format!("echo {name}")).unwrap();
    let img = format!("{}:latest", dir.display());
    tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &img,
            app.to_str().unwrap(),
            "/workspace",
        ],
    );
    let mut args = vec![
        "--config.env".to_string(),
        format!("CNB_PLATFORM_API={api}"),
        "--config.label".into(),
        format!("io.buildpacks.lifecycle.metadata={metadata}"),
    ];
    for l in extra_labels {
        args.push("--config.label".into());
        args.push(l.to_string());
    }
    umoci_config(&dir, &args);
    let reference = reg.image(name);
    reg.skopeo_copy(
        &format!("oci:{}:latest", dir.display()),
        &format!("docker://{reference}"),
    );
    reference
}

fn rebaser(root: &ContainerRoot, reg: &Registry, api: &str, args: &[String]) -> Output {
    root.mkdir("home");
    root.phase("rebaser")
        .platform_api(api)
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("HOME", root.join("home").display().to_string())
        .args(args)
        .run()
}

fn manifest(reg: &Registry, repo_and_tag: &str) -> serde_json::Value {
    serde_json::from_slice(&reg.skopeo_inspect_raw(repo_and_tag)).unwrap()
}

fn layer_digests(m: &serde_json::Value) -> Vec<String> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The image config of `repo:tag`, fetched from the registry's blob endpoint.
fn config(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let m = manifest(reg, &format!("{repo}:{tag}"));
    let (status, body) = reg.http_get(&format!(
        "/v2/{repo}/blobs/{}",
        m["config"]["digest"].as_str().unwrap()
    ));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn lifecycle_metadata(cfg: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(
        cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// RB-03 (app images from Platform API < 0.12), RB-04, RB-05, RB-06, RB-08: the stack ids must match and
/// the app's mixins (stage prefixes stripped) must be provided by the new run image; the
/// `io.buildpacks.rebasable` label is not consulted for such images. Checked with rebasers running
/// Platform API 0.7, 0.10 and 0.11.
#[test]
fn stack_id_and_mixins_gate_rebase_of_pre_0_12_images_rb03() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &["curl", "run:tzdata"]);
    let run2 = push_run_image(&root, &reg, "cnb/run2", STACK, &["curl", "tzdata", "jq"]);
    push_run_image(
        &root,
        &reg,
        "cnb/other-stack",
        "io.other.stack",
        &["curl", "tzdata"],
    );
    push_run_image(&root, &reg, "cnb/no-tzdata", STACK, &["curl"]);
    let run2_layers = layer_digests(&manifest(&reg, "cnb/run2:latest"));
    let run2_top = layout_config(&run2)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();

    for api in ["0.7", "0.10", "0.11"] {
        let tag = format!("app/img:{}", api.replace('.', "-"));
        let metadata = serde_json::json!({
            "runImage": {"reference": reg.image("cnb/run@sha256:0")},
            "stack": {"runImage": {"image": reg.image("cnb/run"), "mirrors": []}},
        });
        let app = push_app_image(
            &root,
            &reg,
            &run1,
            &tag,
            api,
            metadata,
            &[
                &format!("io.buildpacks.stack.id={STACK}"),
                "io.buildpacks.stack.mixins=[\"curl\",\"run:tzdata\"]",
                // Ignored before 0.12 (RB-03 checks stacks instead).
                "io.buildpacks.rebasable=false",
            ],
        );
        let app_layers = layer_digests(&manifest(&reg, &tag));

        let out = rebaser(
            &root,
            &reg,
            api,
            &[
                format!("-run-image={}", reg.image("cnb/other-stack")),
                app.clone(),
            ],
        );
        out.assert_code(72).assert_contains(
            "incompatible stack: 'io.other.stack' is not compatible with 'io.test.stack'",
        );
        let out = rebaser(
            &root,
            &reg,
            api,
            &[
                format!("-run-image={}", reg.image("cnb/no-tzdata")),
                app.clone(),
            ],
        );
        out.assert_code(72)
            .assert_contains("missing required mixin(s)")
            .assert_contains("tzdata");
        assert_eq!(
            layer_digests(&manifest(&reg, &tag)),
            app_layers,
            "a refused rebase leaves the image alone"
        );

        let out = rebaser(
            &root,
            &reg,
            api,
            &[format!("-run-image={}", reg.image("cnb/run2")), app.clone()],
        );
        out.assert_success();
        let after = layer_digests(&manifest(&reg, &tag));
        assert_eq!(after.len(), run2_layers.len() + 1, "{api}: {after:?}");
        assert_eq!(
            after[..run2_layers.len()],
            run2_layers[..],
            "{api}: new base"
        );
        assert_eq!(after.last(), app_layers.last(), "{api}: app layer kept");
        let repo_tag: Vec<&str> = tag.split(':').collect();
        let cfg = config(&reg, repo_tag[0], repo_tag[1]);
        let labels = &cfg["config"]["Labels"];
        assert_eq!(
            labels["io.buildpacks.stack.mixins"],
            "[\"curl\",\"tzdata\",\"jq\"]"
        );
        assert_eq!(labels["io.buildpacks.stack.id"], STACK);
        let lm = lifecycle_metadata(&cfg);
        assert_eq!(
            lm["runImage"]["topLayer"], run2_top,
            "{api}: RB-05 topLayer"
        );
        let reference = lm["runImage"]["reference"].as_str().unwrap();
        assert!(
            reference.starts_with(&format!("{}@sha256:", reg.image("cnb/run2"))),
            "{api}: RB-05 reference {reference}"
        );
        assert_eq!(
            lm["stack"]["runImage"]["image"],
            reg.image("cnb/run"),
            "{api}: stack metadata kept"
        );
        // RB-08: report.toml at the default `<layers>/report.toml`, `[image]` only.
        let report: toml::Value = toml::from_str(&root.read("layers/report.toml")).unwrap();
        assert_eq!(report["image"]["tags"][0].as_str(), Some(app.as_str()));
        assert!(report.get("build").is_none());
    }
}

/// RB-02 with RI-01: without `-run-image`, an app image exported before Platform 0.12 names its run image
/// in `stack.runImage`; the rebaser picks the mirror on the app image's own registry. Without any run
/// image metadata it exits 3 (`-run-image is required…`).
#[test]
fn run_image_mirror_on_the_app_registry_is_chosen_rb02() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "mirror/run", STACK, &[]);
    let mirror_layers = layer_digests(&manifest(&reg, "mirror/run:latest"));
    let metadata = serde_json::json!({
        "runImage": {"reference": "x"},
        "stack": {"runImage": {
            "image": "registry.invalid/cnb/run",
            "mirrors": ["other.invalid/cnb/run", reg.image("mirror/run")],
        }},
    });
    let label = format!("io.buildpacks.stack.id={STACK}");
    let app = push_app_image(
        &root,
        &reg,
        &run1,
        "app/img:latest",
        "0.10",
        metadata,
        &[&label],
    );
    rebaser(&root, &reg, "0.10", std::slice::from_ref(&app)).assert_success();
    let after = layer_digests(&manifest(&reg, "app/img:latest"));
    assert_eq!(after[..mirror_layers.len()], mirror_layers[..]);
    let lm = lifecycle_metadata(&config(&reg, "app/img", "latest"));
    assert!(lm["runImage"]["reference"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}@sha256:", reg.image("mirror/run"))));

    let bare = push_app_image(
        &root,
        &reg,
        &run1,
        "app/bare:latest",
        "0.10",
        serde_json::json!({"runImage": {}}),
        &[&label],
    );
    rebaser(&root, &reg, "0.10", &[bare])
        .assert_code(3)
        .assert_contains("-run-image is required when there is no run image metadata available");
}

/// RB-I4, RB-01, RB-I5, RB-08, RB-09: `-previous-image` (Platform ≥ 0.11) names the image to rebase, which
/// stays untouched unless it is also an output; every positional name gets the rebased image;
/// `-report` / `CNB_REPORT_PATH` move report.toml. Flags outside their Platform API range are refused
/// (`-previous-image` before 0.11, `-force` before 0.12, `-insecure-registry` before 0.13).
#[test]
fn previous_image_additional_names_and_report_rb01_rb08() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "cnb/run2", STACK, &[]);
    let metadata = serde_json::json!({
        "runImage": {"reference": "x"},
        "stack": {"runImage": {"image": reg.image("cnb/run"), "mirrors": []}},
    });
    let label = format!("io.buildpacks.stack.id={STACK}");
    let v1 = push_app_image(
        &root,
        &reg,
        &run1,
        "app/img:v1",
        "0.11",
        metadata,
        &[&label],
    );
    let v1_digest = manifest(&reg, "app/img:v1");
    let report = root.join("out/custom-report.toml");
    fs::create_dir_all(report.parent().unwrap()).unwrap();

    let out = rebaser(
        &root,
        &reg,
        "0.11",
        &[
            format!("-previous-image={v1}"),
            format!("-run-image={}", reg.image("cnb/run2")),
            format!("-report={}", report.display()),
            reg.image("app/img:v2"),
            reg.image("app/img:v3"),
        ],
    );
    out.assert_success();
    assert_eq!(
        manifest(&reg, "app/img:v1"),
        v1_digest,
        "previous image untouched"
    );
    let v2 = reg.skopeo_inspect_raw("app/img:v2");
    assert_eq!(
        v2,
        reg.skopeo_inspect_raw("app/img:v3"),
        "same manifest under every name"
    );
    let r: toml::Value = toml::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let tags: Vec<&str> = r["image"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, [reg.image("app/img:v2"), reg.image("app/img:v3")]);
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&v2))
    );
    assert_eq!(r["image"]["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(
        r["image"]["manifest-size"].as_integer(),
        Some(v2.len() as i64)
    );
    assert!(
        !root.exists("layers/report.toml"),
        "-report replaces the default path"
    );

    // CNB_REPORT_PATH works like -report.
    let env_report = root.join("out/env-report.toml");
    root.mkdir("home");
    root.phase("rebaser")
        .platform_api("0.11")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("HOME", root.join("home").display().to_string())
        .env("CNB_REPORT_PATH", env_report.display().to_string())
        .args([
            format!("-run-image={}", reg.image("cnb/run2")),
            reg.image("app/img:v3"),
        ])
        .run()
        .assert_success();
    assert!(fs::read_to_string(&env_report).unwrap().contains("[image]"));

    for (api, flag) in [
        ("0.10", format!("-previous-image={v1}")),
        ("0.11", "-force".to_string()),
        ("0.12", format!("-insecure-registry={}", reg.host())),
    ] {
        let out = rebaser(&root, &reg, api, &[flag.clone(), reg.image("app/img:v4")]);
        assert!(!out.success(), "{api} {flag}: {}", out.dump());
        out.assert_contains("flag provided but not defined");
    }
}

/// RB-I2, RB-03, RB-05 on a registry (Platform ≥ 0.12 app images): `io.buildpacks.rebasable=false` and a
/// new base that is not in the run image metadata are refused with exit 72 and accepted with `-force` or
/// `CNB_FORCE_REBASE=true`, which record the new base as the run image (mirrors cleared).
#[test]
fn force_overrides_rebasable_and_unknown_base_on_a_registry_rb03_rb05() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "cnb/run2", STACK, &[]);
    push_run_image(&root, &reg, "elsewhere/run", STACK, &[]);
    let metadata = serde_json::json!({
        "runImage": {"reference": "x", "image": reg.image("cnb/run"), "mirrors": [reg.image("cnb/run2")]},
    });
    let app = push_app_image(
        &root,
        &reg,
        &run1,
        "app/img:latest",
        "0.13",
        metadata.clone(),
        &["io.buildpacks.rebasable=false"],
    );
    let run2 = format!("-run-image={}", reg.image("cnb/run2"));
    rebaser(&root, &reg, "0.13", &[run2.clone(), app.clone()])
        .assert_code(72)
        .assert_contains("app image is not marked as rebasable; please provide -force to override");
    root.phase("rebaser")
        .platform_api("0.13")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("CNB_FORCE_REBASE", "true")
        .args([run2.clone(), app.clone()])
        .run()
        .assert_success()
        .assert_contains("not marked as rebasable");

    let app = push_app_image(&root, &reg, &run1, "app/img:latest", "0.13", metadata, &[]);
    // A mirror recorded in the metadata needs no force.
    rebaser(&root, &reg, "0.13", &[run2, app.clone()]).assert_success();
    let elsewhere = format!("-run-image={}", reg.image("elsewhere/run"));
    rebaser(&root, &reg, "0.13", &[elsewhere.clone(), app.clone()])
        .assert_code(72)
        .assert_contains("not found in existing run image metadata");
    rebaser(&root, &reg, "0.13", &[elsewhere, "-force".into(), app]).assert_success();
    let lm = lifecycle_metadata(&config(&reg, "app/img", "latest"));
    assert_eq!(lm["runImage"]["image"], reg.image("elsewhere/run"));
    // Mirrors cleared (omitted when empty, as the reference's `omitempty`).
    assert!(
        lm["runImage"]["mirrors"].is_null() || lm["runImage"]["mirrors"] == serde_json::json!([]),
        "{lm}"
    );
}

/// G-17: started as root, the rebaser resolves registry credentials before it drops to the build user.
/// Here they come from a credential helper that only root can execute (a root-only directory on `PATH`)
/// for a basic-auth registry; after the drop the helper could not run, and the rebase would fail with 401.
#[test]
fn rebaser_as_root_resolves_credentials_before_dropping_privileges_g17() {
    if !running_as_root() {
        println!("SKIPPED: needs root (the rebaser starts as root and drops to uid 1000)");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "cnb/run2", STACK, &[]);
    let metadata = serde_json::json!({
        "runImage": {"reference": "x", "image": reg.image("cnb/run"), "mirrors": [reg.image("cnb/run2")]},
    });
    let app = push_app_image(&root, &reg, &run1, "app/img:latest", "0.13", metadata, &[]);

    // Root-only: the helper directory and the docker config.
    let secret = tempfile::tempdir().unwrap();
    let (user, pass) = reg.credentials().unwrap();
    let bin = secret.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-cnbtest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho '{{\"Username\":\"{user}\",\"Secret\":\"{pass}\"}}'\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = secret.path().join("docker");
    fs::create_dir(&cfg).unwrap();
    fs::write(
        cfg.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"cnbtest\"}}}}", reg.host()),
    )
    .unwrap();
    for d in [&bin, &cfg, &secret.path().to_path_buf()] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
    }
    // The build user writes report.toml.
    root.mkdir("layers");
    root.chown(1000, 1000);

    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let out = root
        .phase("rebaser")
        .as_current_user()
        .platform_api("0.13")
        .env("PATH", path)
        .env("DOCKER_CONFIG", cfg.display().to_string())
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .env_remove("CNB_REGISTRY_AUTH")
        .args([format!("-run-image={}", reg.image("cnb/run2")), app])
        .run();
    out.assert_success();
    out.assert_not_contains(pass);
    // The rebased image is on the new base, and report.toml was written by the build user.
    let run2_layers = layer_digests(&manifest(&reg, "cnb/run2:latest"));
    let after = layer_digests(&manifest(&reg, "app/img:latest"));
    assert_eq!(after[..run2_layers.len()], run2_layers[..]);
    let meta = fs::metadata(root.join("layers/report.toml")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
}

/// RB-I1, RB-I3, RB-I6, RB-I7, RB-01, RB-04, RB-08: argument errors exit 3, `-daemon` without an engine fails clearly (exit 1),
/// a missing app image and a run image top layer that is not in the app image exit 72; the deprecated
/// `-image` names the new base (not together with `-run-image`); `-insecure-registry` (Platform ≥ 0.13)
/// replaces `CNB_INSECURE_REGISTRIES`.
#[test]
fn inputs_and_failures_rb_i1_i3_i6_i7_rb01_rb04() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "cnb/run2", STACK, &[]);
    let metadata = serde_json::json!({
        "runImage": {"reference": "x", "image": reg.image("cnb/run"), "mirrors": [reg.image("cnb/run2")]},
    });
    let app = push_app_image(
        &root,
        &reg,
        &run1,
        "app/img:latest",
        "0.13",
        metadata.clone(),
        &[],
    );
    let run2 = reg.image("cnb/run2");

    rebaser(&root, &reg, "0.13", &[format!("-run-image={run2}")])
        .assert_code(3)
        .assert_contains("at least one image argument is required");
    root.phase("rebaser")
        .platform_api("0.13")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["-daemon".to_string(), app.clone()])
        .run()
        .assert_code(1)
        .assert_contains("Docker daemon at unix:///nonexistent/docker.sock");
    rebaser(
        &root,
        &reg,
        "0.13",
        &[
            format!("-run-image={run2}"),
            format!("-image={run2}"),
            app.clone(),
        ],
    )
    .assert_code(3)
    .assert_contains("supply only one of -run-image or (deprecated) -image");
    rebaser(
        &root,
        &reg,
        "0.13",
        &[
            format!("-run-image={run2}"),
            reg.image("app/missing:latest"),
        ],
    )
    .assert_code(72)
    .assert_contains("access image to rebase")
    .assert_contains("app/missing:latest");

    // -image and -insecure-registry, without CNB_INSECURE_REGISTRIES.
    root.phase("rebaser")
        .platform_api("0.13")
        .args([
            format!("-insecure-registry={}", reg.host()),
            format!("-image={run2}"),
            app.clone(),
        ])
        .run()
        .assert_success();
    let run2_layers = layer_digests(&manifest(&reg, "cnb/run2:latest"));
    let after = layer_digests(&manifest(&reg, "app/img:latest"));
    assert_eq!(after[..run2_layers.len()], run2_layers[..]);

    // RB-04: the recorded top layer must be one of the app image's layers.
    let mut bad = metadata;
    bad["runImage"]["topLayer"] =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111".into();
    let label = format!("io.buildpacks.lifecycle.metadata={bad}");
    let app = push_app_image(
        &root,
        &reg,
        &run1,
        "app/bad:latest",
        "0.13",
        serde_json::json!({"runImage": {}}),
        &[&label],
    );
    rebaser(&root, &reg, "0.13", &[format!("-run-image={run2}"), app])
        .assert_code(72)
        .assert_contains("previous run image top layer 'sha256:1111");
}

/// RB-03 target check (Platform ≥ 0.12 app images), RB-04, RB-06, RB-07: a new base for another
/// architecture and distro version is refused (exit 72); with `-force` the rebased config takes the new
/// base's architecture/os, its `io.buildpacks.base.*` labels, and `created` is the constant
/// 1980-01-01T00:00:01Z on the image and every history entry.
#[test]
fn target_mismatch_needs_force_and_config_follows_new_base_rb03_rb06_rb07() {
    let reg = Registry::start(RegistryOptions::plain());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    let arm = make_run_image_with(&root, "local/cnb/run-arm", "arm");
    umoci_config(
        &arm,
        &[
            "--architecture".into(),
            "arm64".into(),
            "--config.label".into(),
            "io.buildpacks.base.distro.version=2".into(),
        ],
    );
    reg.skopeo_copy(
        &format!("oci:{}:latest", arm.display()),
        &format!("docker://{}", reg.image("cnb/run-arm:latest")),
    );
    let metadata = serde_json::json!({
        "runImage": {"reference": "x", "image": reg.image("cnb/run"), "mirrors": [reg.image("cnb/run-arm")]},
    });
    let app = push_app_image(&root, &reg, &run1, "app/img:latest", "0.13", metadata, &[]);
    let arm_ref = format!("-run-image={}", reg.image("cnb/run-arm"));
    rebaser(&root, &reg, "0.13", &[arm_ref.clone(), app.clone()])
        .assert_code(72)
        .assert_contains("unable to satisfy target os/arch constraints");
    rebaser(&root, &reg, "0.13", &[arm_ref, "-force".into(), app])
        .assert_success()
        .assert_contains("unable to satisfy target os/arch constraints");
    let cfg = config(&reg, "app/img", "latest");
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["os"], "linux");
    assert_eq!(
        cfg["config"]["Labels"]["io.buildpacks.base.distro.version"],
        "2"
    );
    assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
    let history = cfg["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    assert!(
        history
            .iter()
            .all(|h| h["created"] == "1980-01-01T00:00:01Z"),
        "{history:?}"
    );
}

/// G-16, issue #4: credentials from a containers `auth.json` written by `skopeo login` (podman's format),
/// found through `REGISTRY_AUTH_FILE` and through `$XDG_RUNTIME_DIR/containers/auth.json`, when the
/// docker config has nothing for the registry.
#[test]
fn containers_auth_json_from_skopeo_login_g16() {
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let root = ContainerRoot::new();
    let run1 = push_run_image(&root, &reg, "cnb/run", STACK, &[]);
    push_run_image(&root, &reg, "cnb/run2", STACK, &[]);
    let metadata = serde_json::json!({
        "runImage": {"reference": "x", "image": reg.image("cnb/run"), "mirrors": [reg.image("cnb/run2")]},
    });
    let app = push_app_image(&root, &reg, &run1, "app/img:latest", "0.13", metadata, &[]);

    let runtime = root.mkdir("xdg-runtime");
    let auth_file = runtime.join("containers/auth.json");
    fs::create_dir_all(auth_file.parent().unwrap()).unwrap();
    let (user, pass) = reg.credentials().unwrap();
    tool(
        "skopeo",
        &[
            "login",
            "--tls-verify=false",
            "--authfile",
            auth_file.to_str().unwrap(),
            "-u",
            user,
            "-p",
            pass,
            &reg.host(),
        ],
    );
    assert!(fs::read_to_string(&auth_file)
        .unwrap()
        .contains("\"auths\""));
    let run2 = format!("-run-image={}", reg.image("cnb/run2"));

    // No credentials at all: 401.
    rebaser(&root, &reg, "0.13", &[run2.clone(), app.clone()])
        .assert_code(72)
        .assert_not_contains(pass);
    for (var, value) in [
        ("REGISTRY_AUTH_FILE", auth_file.display().to_string()),
        ("XDG_RUNTIME_DIR", runtime.display().to_string()),
    ] {
        root.mkdir("home");
        root.phase("rebaser")
            .platform_api("0.13")
            .env("CNB_INSECURE_REGISTRIES", reg.host())
            .env("HOME", root.join("home").display().to_string())
            .env(var, value)
            .args([run2.clone(), app.clone()])
            .run()
            .assert_success()
            .assert_not_contains(pass);
    }
    let run2_layers = layer_digests(&manifest(&reg, "cnb/run2:latest"));
    let after = layer_digests(&manifest(&reg, "app/img:latest"));
    assert_eq!(after[..run2_layers.len()], run2_layers[..]);
}
