//! The exporter under Platform APIs below 0.13 (checklist EP-05, EP-12, EP-14, IM-02, IM-03, EP-I9,
//! EP-I12, EP-I14, F-STACK): `run.toml` (0.12, OCI layout) versus `stack.toml` (0.10 and 0.7, registry),
//! history kept or blanked, `SOURCE_DATE_EPOCH` honoured from 0.9, the `runImage`/`stack` label keys,
//! the build label's process command form, and the entrypoint from `-process-type`, `CNB_PROCESS_TYPE`
//! or the buildpack default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use cnb_acceptance::harness::ContainerRoot;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

const EPOCH: &str = "1700000000";
const EPOCH_TIME: &str = "2023-11-14T22:13:20Z";

fn label(config: &serde_json::Value, key: &str) -> serde_json::Value {
    serde_json::from_str(config["config"]["Labels"][key].as_str().unwrap()).unwrap()
}

fn created_by(config: &serde_json::Value) -> Vec<String> {
    config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Platform 0.12 on a layout: history `created_by` entries, `SOURCE_DATE_EPOCH`, `runImage.image` and
/// mirrors from `run.toml`, `-process-type`.
#[test]
fn platform_0_12_layout_history_run_toml_and_process_type() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    root.write(
        "cnb/run.toml",
        "[[images]]\nimage = \"cnb/run\"\nmirrors = [\"mirror.example/cnb/run\"]\n",
    );
    root.phase("analyzer")
        .env("CNB_PLATFORM_API", "0.12")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            "-run-image=cnb/run".to_string(),
            "app/img".to_string(),
        ])
        .run()
        .assert_success();
    root.phase("exporter")
        .env("CNB_PLATFORM_API", "0.12")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ),
            "-process-type=web".to_string(),
            "app/img".to_string(),
        ])
        .run()
        .assert_success();
    let config = image_config(&app_layout(&root), &report_digest(&root));
    assert_eq!(config["created"], EPOCH_TIME, "IM-03");
    let hist = created_by(&config);
    for want in [
        "Layer: 'web', Created by buildpack: bp/a@1.0",
        "Application Layer",
        "Buildpacks Application Launcher",
        "Buildpacks Launcher Config",
        "Buildpacks Process Types",
    ] {
        assert!(hist.iter().any(|h| h == want), "IM-04 {want}: {hist:?}");
    }
    assert!(config["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["created"] == EPOCH_TIME));
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/cnb/process/web"])
    );
    let lm = label(&config, "io.buildpacks.lifecycle.metadata");
    assert_eq!(lm["runImage"]["image"], "cnb/run", "EP-05 [P>=0.12]");
    assert_eq!(
        lm["runImage"]["mirrors"],
        serde_json::json!(["mirror.example/cnb/run"])
    );
    assert_eq!(lm["stack"]["runImage"]["image"], "cnb/run");
    assert!(
        config["config"]["Labels"]
            .get("io.buildpacks.exec-env")
            .is_none(),
        "EP-12: exec-env label only from 0.15"
    );
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("CNB_PLATFORM_API=0.12"), "EP-13 {env}");
}

/// Platforms 0.10 and 0.7 on a registry: `stack.toml` run image, blank history, the build label's
/// command form, `SOURCE_DATE_EPOCH` only from 0.9, entrypoint from the buildpack default (0.10) or
/// `CNB_PROCESS_TYPE` (0.7).
#[test]
fn platforms_0_10_and_0_7_registry_stack_toml() {
    let reg = Registry::start(RegistryOptions::plain());
    for (api, created, command_is_array) in [
        ("0.10", EPOCH_TIME, true),
        ("0.7", "1980-01-01T00:00:01Z", false),
    ] {
        let root = ContainerRoot::new();
        let run_layout = make_run_image(&root, "cnb/run");
        let run_image = reg.image("cnb/run:latest");
        tool(
            "skopeo",
            &[
                "copy",
                "--dest-tls-verify=false",
                &format!("oci:{}:latest", run_layout.display()),
                &format!("docker://{run_image}"),
            ],
        );
        write_build_output(&root, "v1", "echo v1");
        // The buildpack declared `web` as its default process.
        let md = root.read("layers/config/metadata.toml");
        root.write(
            "layers/config/metadata.toml",
            format!("buildpack-default-process-type = \"web\"\n{md}"),
        );
        root.write(
            "cnb/stack.toml",
            format!(
                "[run-image]\nimage = \"{run_image}\"\nmirrors = [\"mirror.example/cnb/run\"]\n"
            ),
        );
        root.mkdir("home");
        let app = reg.image(&format!("app/img-{}:latest", api.replace('.', "-")));
        let phase = |name: &str| {
            root.phase(name)
                .env("CNB_PLATFORM_API", api)
                .env("CNB_INSECURE_REGISTRIES", reg.host())
                .env("HOME", root.join("home").display().to_string())
        };
        phase("analyzer")
            .args([format!("-run-image={run_image}"), app.clone()])
            .run()
            .assert_success();
        let mut exporter = phase("exporter").env("SOURCE_DATE_EPOCH", EPOCH);
        if api == "0.7" {
            exporter = exporter.env("CNB_PROCESS_TYPE", "web");
            // No buildpack default at 0.7 in this case: the env var alone picks the process.
            root.write("layers/config/metadata.toml", md.clone());
        }
        exporter
            .args([
                format!(
                    "-launcher={}",
                    root.join("cnb/lifecycle/launcher").display()
                ),
                app.clone(),
            ])
            .run()
            .assert_success();
        let raw = tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--config",
                &format!("docker://{app}"),
            ],
        );
        let config: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(config["created"], created, "IM-03 at {api}");
        assert!(
            created_by(&config).iter().all(String::is_empty),
            "IM-02: history blanked before 0.12 ({api}): {:?}",
            config["history"]
        );
        let n_layers = config["rootfs"]["diff_ids"].as_array().unwrap().len();
        assert_eq!(config["history"].as_array().unwrap().len(), n_layers);
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/cnb/process/web"]),
            "EP-14 at {api}"
        );
        let lm = label(&config, "io.buildpacks.lifecycle.metadata");
        assert_eq!(
            lm["stack"]["runImage"]["image"],
            run_image.as_str(),
            "F-STACK at {api}"
        );
        assert_eq!(
            lm["stack"]["runImage"]["mirrors"],
            serde_json::json!(["mirror.example/cnb/run"])
        );
        assert!(
            lm["runImage"].get("image").is_none(),
            "EP-05: runImage.image only from 0.12 ({api}): {}",
            lm["runImage"]
        );
        assert!(lm["runImage"]["reference"]
            .as_str()
            .unwrap()
            .contains("@sha256:"));
        let bm = label(&config, "io.buildpacks.build.metadata");
        let command = &bm["processes"][0]["command"];
        assert_eq!(
            command.is_array(),
            command_is_array,
            "EP-12 build label command form at {api}: {command}"
        );
        let env = config["config"]["Env"].to_string();
        assert!(
            !env.contains("CNB_PROCESS_TYPE"),
            "EP-14: CNB_PROCESS_TYPE not written into the image ({api})"
        );
        assert!(env.contains(&format!("CNB_PLATFORM_API={api}")));
    }
}
