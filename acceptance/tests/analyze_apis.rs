//! `analyzer` and `restorer` at older Platform APIs (0.7, 0.9, 0.10, 0.11, 0.12, 0.13) against the real
//! loopback registry: `stack.toml` run image and mirrors before 0.12, `run.toml` after (AN-I11, AN-02,
//! RI-01, RI-02), flags that exist only in some APIs (G-08: `-skip-layers`, `-stack`, `-run`,
//! `-layout`, `-insecure-registry`, `-cache-image`, `-tag`, `-previous-image`), the `analyzed.toml` shape
//! per API (AN-07, F-ANALYZED), and where layer metadata comes from per API (RS-10).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use cnb_acceptance::harness::{ContainerRoot, Output};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

fn push(reg: &Registry, repo: &str) {
    let base = busybox();
    reg.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{}", reg.image(repo)),
    );
}

fn phase_at(
    root: &ContainerRoot,
    reg: &Registry,
    name: &str,
    api: &str,
    args: &[String],
) -> Output {
    root.phase(name)
        .platform_api(api)
        .env(
            "CNB_INSECURE_REGISTRIES",
            format!("{},localhost:{}", reg.host(), reg.port()),
        )
        .args(args.iter().cloned())
        .run()
}

fn analyzed(root: &ContainerRoot) -> toml::Value {
    toml::from_str(&root.read("layers/analyzed.toml")).unwrap()
}

/// AN-02, AN-I11, RI-01: before Platform 0.12 the run image comes from `stack.toml` (`-stack`), its
/// mirror on the app image's registry that is readable wins; `run.toml` is ignored and `-run` is an
/// unknown flag. From 0.12 it is the other way round. `analyzed.toml` gets `image` and `target` only
/// from 0.12 (AN-07).
#[test]
fn run_image_from_stack_toml_or_run_toml_per_api() {
    let reg = Registry::start(RegistryOptions::plain());
    push(&reg, "cnb/run-mirror:latest");
    push(&reg, "cnb/run-new:latest");
    let other_registry = format!("localhost:{}/cnb/run", reg.port());
    let missing = reg.image("cnb/missing");
    let mirror = reg.image("cnb/run-mirror");
    let app = reg.image("app/img:latest");
    let stack = format!(
        "[run-image]\nimage = \"{other_registry}\"\nmirrors = [\"{missing}\", \"{mirror}\"]\n"
    );
    let run_new = reg.image("cnb/run-new");
    let run_toml = format!("[[images]]\nimage = \"{run_new}\"\n");
    for api in ["0.7", "0.9", "0.10", "0.11"] {
        let root = ContainerRoot::new();
        root.write("cnb/stack.toml", &stack);
        root.write("cnb/run.toml", &run_toml);
        let stack_flag = format!("-stack={}", root.join("cnb/stack.toml").display());
        let args = vec![
            stack_flag.clone(),
            format!("-cache-image={}", reg.image("app/cache:latest")),
            format!("-tag={}", reg.image("app/img:v2")),
            format!("-previous-image={}", reg.image("app/prev:latest")),
            app.clone(),
        ];
        let out = phase_at(&root, &reg, "analyzer", api, &args);
        out.assert_success().assert_contains(&format!(
            "Image with name \"{}\" not found",
            reg.image("app/prev:latest")
        ));
        let a = analyzed(&root);
        let run = &a["run-image"];
        assert!(
            run["reference"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{mirror}@sha256:")),
            "P{api}: {a}"
        );
        assert!(
            run.get("image").is_none(),
            "P{api}: no image before 0.12: {a}"
        );
        assert!(
            run.get("target").is_none(),
            "P{api}: no target before 0.12: {a}"
        );
        assert_eq!(
            a["image"]["reference"].as_str(),
            Some(""),
            "AN-08: [image] always written"
        );
        // Flags of other APIs are unknown (G-08, exit 2).
        let run_flag = format!("-run={}", root.join("cnb/run.toml").display());
        phase_at(&root, &reg, "analyzer", api, &[run_flag, app.clone()]).assert_code(2);
        phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &["-layout".into(), app.clone()],
        )
        .assert_code(2);
        phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[format!("-insecure-registry={}", reg.host()), app.clone()],
        )
        .assert_code(2);
        let skip = phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[stack_flag.clone(), "-skip-layers".into(), app.clone()],
        );
        if api == "0.7" {
            skip.assert_code(2);
        } else {
            skip.assert_success();
        }
    }
    // No readable candidate at all: exit 3 while resolving inputs.
    let root = ContainerRoot::new();
    root.write(
        "cnb/stack.toml",
        format!("[run-image]\nimage = \"{missing}\"\n"),
    );
    phase_at(&root, &reg, "analyzer", "0.9", std::slice::from_ref(&app))
        .assert_code(3)
        .assert_contains("failed to find accessible run image");
    root.write("cnb/stack.toml", "");
    phase_at(&root, &reg, "analyzer", "0.9", std::slice::from_ref(&app))
        .assert_code(3)
        .assert_contains("-run-image is required when there is no run metadata available");

    for api in ["0.12", "0.13"] {
        let root = ContainerRoot::new();
        root.write("cnb/stack.toml", &stack);
        root.write("cnb/run.toml", &run_toml);
        phase_at(&root, &reg, "analyzer", api, std::slice::from_ref(&app)).assert_success();
        let a = analyzed(&root);
        let run = &a["run-image"];
        assert!(run["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{run_new}@sha256:")));
        assert_eq!(run["image"].as_str(), Some(run_new.as_str()), "P{api}");
        assert_eq!(run["target"]["os"].as_str(), Some("linux"), "P{api}");
        assert_eq!(
            run["target"]["id"].as_str(),
            Some(cnb_acceptance::images::STACK_ID)
        );
        let stack_flag = format!("-stack={}", root.join("cnb/stack.toml").display());
        phase_at(&root, &reg, "analyzer", api, &[stack_flag, app.clone()]).assert_code(2);
        let insecure = phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[format!("-insecure-registry={}", reg.host()), app.clone()],
        );
        if api == "0.12" {
            insecure.assert_code(2);
        } else {
            insecure.assert_success();
        }
    }
}

/// RS-10 per API, end to end (analyzer → restorer → exporter with a cache dir, on the registry): a
/// cached layer that is also a launch layer comes back from the cache when the previous app image does
/// not list it only from Platform 0.14; cache-only layers come back at every API; `-run` exists for the
/// restorer only from 0.14 (RS-I9).
#[test]
fn restorer_layer_metadata_sources_per_api() {
    let reg = Registry::start(RegistryOptions::plain());
    push(&reg, "cnb/run:latest");
    let run = reg.image("cnb/run:latest");
    for api in ["0.7", "0.9", "0.10", "0.12", "0.13", "0.14"] {
        let root = ContainerRoot::new();
        let app = reg.image(&format!("app/img-{}:latest", api.replace('.', "-")));
        let cache = format!("-cache-dir={}", root.join("cache").display());
        write_build_output(&root, "v1", "echo v1");
        write_cache_layer(&root, "dep-v1");
        root.write("layers/bp_a/cl/data.txt", "cl-v1");
        root.write(
            "layers/bp_a/cl.toml",
            "[types]\ncache = true\nlaunch = true\n[metadata]\nc = \"1\"\n",
        );
        phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[format!("-run-image={run}"), app.clone()],
        )
        .assert_success();
        phase_at(
            &root,
            &reg,
            "exporter",
            api,
            &[
                cache.clone(),
                format!(
                    "-launcher={}",
                    root.join("cnb/lifecycle/launcher").display()
                ),
                app.clone(),
            ],
        )
        .assert_success();
        fs::remove_dir_all(root.join("layers/bp_a")).unwrap();

        // Second build with the app image as previous image: everything comes back.
        phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[format!("-run-image={run}"), app.clone()],
        )
        .assert_success();
        let out = phase_at(&root, &reg, "restorer", api, std::slice::from_ref(&cache));
        out.assert_success()
            .assert_contains("Restoring metadata for \"bp/a:cl\" from app image")
            .assert_contains("Restoring data for \"bp/a:cl\" from cache")
            .assert_contains("Restoring data for \"bp/a:deps\" from cache");
        assert_eq!(root.read("layers/bp_a/cl/data.txt"), "cl-v1", "P{api}");
        assert_eq!(
            root.read("layers/bp_a/deps/lib/dep.txt"),
            "dep-v1",
            "P{api}"
        );
        fs::remove_dir_all(root.join("layers/bp_a")).unwrap();

        // Previous image unknown: the cached launch layer comes back from the cache only from 0.14.
        let prev = format!("-previous-image={}", reg.image("app/none:latest"));
        phase_at(
            &root,
            &reg,
            "analyzer",
            api,
            &[format!("-run-image={run}"), prev, app.clone()],
        )
        .assert_success();
        let out = phase_at(&root, &reg, "restorer", api, std::slice::from_ref(&cache));
        out.assert_success()
            .assert_contains("Restoring data for \"bp/a:deps\" from cache");
        if api == "0.14" {
            out.assert_contains("Restoring metadata for \"bp/a:cl\" from cache");
            assert_eq!(root.read("layers/bp_a/cl/data.txt"), "cl-v1");
        } else {
            out.assert_not_contains("bp/a:cl");
            assert!(!root.exists("layers/bp_a/cl.toml"), "P{api}");
            assert!(!root.exists("layers/bp_a/cl"), "P{api}");
        }
        let run_flag = format!("-run={}", root.join("cnb/run.toml").display());
        let out = phase_at(&root, &reg, "restorer", api, &[run_flag]);
        if api == "0.14" {
            out.assert_success();
        } else {
            out.assert_code(2);
        }
    }
}

/// RS-08, CA-05 at the oldest Platform API: the cache image named by `-cache-image` (which exists for
/// analyzer and restorer at every API) restores the cached layer on the second build.
#[test]
fn cache_image_restores_at_platform_0_7() {
    let reg = Registry::start(RegistryOptions::plain());
    push(&reg, "cnb/run:latest");
    let run = format!("-run-image={}", reg.image("cnb/run:latest"));
    let cache = format!("-cache-image={}", reg.image("app/cache:latest"));
    let app = reg.image("app/img:latest");
    let root = ContainerRoot::new();
    write_build_output(&root, "v1", "echo v1");
    write_cache_layer(&root, "dep-v1");
    phase_at(&root, &reg, "restorer", "0.7", std::slice::from_ref(&cache))
        .assert_success()
        .assert_contains("Layer cache not found");
    phase_at(
        &root,
        &reg,
        "analyzer",
        "0.7",
        &[run.clone(), cache.clone(), app.clone()],
    )
    .assert_success();
    let launcher = format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    );
    phase_at(
        &root,
        &reg,
        "exporter",
        "0.7",
        &[cache.clone(), launcher, app.clone()],
    )
    .assert_success();
    fs::remove_dir_all(root.join("layers/bp_a")).unwrap();
    phase_at(&root, &reg, "analyzer", "0.7", &[run, cache.clone(), app]).assert_success();
    phase_at(&root, &reg, "restorer", "0.7", std::slice::from_ref(&cache))
        .assert_success()
        .assert_contains("Restoring metadata for \"bp/a:deps\" from cache")
        .assert_contains("Restoring data for \"bp/a:deps\" from cache");
    assert_eq!(root.read("layers/bp_a/deps/lib/dep.txt"), "dep-v1");
}

/// AN-07: target data, and with it the "failed to find OS in run image config" check, exist from
/// Platform 0.12 on; an older platform may use a run image whose config has no `os`.
#[test]
fn run_image_without_os_is_an_error_only_from_0_12() {
    let reg = Registry::start(RegistryOptions::plain());
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("noos");
    let img = format!("{}:latest", layout.display());
    tool("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    tool("umoci", &["new", "--image", &img]);
    tool("umoci", &["config", "--image", &img, "--os", ""]);
    let run = reg.image("cnb/noos:latest");
    reg.skopeo_copy(&format!("oci:{img}"), &format!("docker://{run}"));
    let app = reg.image("app/img:latest");
    let args = [format!("-run-image={run}"), app];
    let root = ContainerRoot::new();
    phase_at(&root, &reg, "analyzer", "0.9", &args).assert_success();
    assert!(analyzed(&root)["run-image"]["reference"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/cnb/noos@sha256:", reg.host())));
    let root = ContainerRoot::new();
    phase_at(&root, &reg, "analyzer", "0.12", &args)
        .assert_code(32)
        .assert_contains("failed to find OS in run image config");
}
