//! The exporter on an extended run image (checklist EP-02, EP-04, EP-05, EP-07, EP-19, IM-11): the real
//! `extender -kind=run` applies a run.Dockerfile to a busybox run image and leaves a sparse layout under
//! `<layers>/extended/run`; the real `exporter` then builds the app image on it, to an OCI layout and to
//! a loopback registry. Outputs are checked with umoci, oci-image-tool and skopeo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::export_checks;

use std::fs;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{running_as_root, workspace_dir, ContainerRoot, Output};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;
use export_checks::{unpack, validate_layout};

const DOCKERFILE: &str = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo hello-from-extension > /ext.txt\nENV EXT_VAR=from-ext\nLABEL ext.label=yes\nUSER 1000\n";

/// The busybox sample run image (with `/bin/sh`) as an OCI layout at `dir`; returns its manifest digest.
fn busybox_layout(dir: &Path) -> String {
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let st = std::process::Command::new("sh")
        .arg(workspace_dir().join("samples/base-images/busybox/build.sh"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The extender's own root filesystem: the run image unpacked, with the base layout where the restorer
/// leaves it (`<kaniko>/cache/base/<digest>`).
fn extender_root(layout: &Path, digest: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let base = bundle.join("rootfs/kaniko/cache/base").join(digest);
    fs::create_dir_all(&base).unwrap();
    tool(
        "cp",
        &[
            "-a",
            &format!("{}/.", layout.display()),
            base.to_str().unwrap(),
        ],
    );
    t
}

/// group.toml with one extension, its generated run.Dockerfile, and `run-image.extend = true`.
fn add_extension(root: &ContainerRoot) {
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n\n[[group-extensions]]\nid = \"samples/ext\"\nversion = \"0.0.1\"\napi = \"0.10\"\n",
    );
    root.write("layers/generated/samples_ext/run.Dockerfile", DOCKERFILE);
    let mut analyzed: toml::Table = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    analyzed["run-image"]
        .as_table_mut()
        .unwrap()
        .insert("extend".into(), toml::Value::Boolean(true));
    root.write("layers/analyzed.toml", toml::to_string(&analyzed).unwrap());
}

fn extend(root: &ContainerRoot, fs_root: &Path, env: &[(&str, String)]) {
    let mut cmd = root
        .phase("extender")
        .as_current_user()
        .env(
            "CNB_EXTENDER_ROOT",
            fs_root.join("bundle/rootfs").to_string_lossy(),
        )
        .arg("-kind=run");
    for (k, v) in env {
        cmd = cmd.env(*k, v.clone());
    }
    let out = cmd.run();
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
}

fn extended_dirs(root: &ContainerRoot) -> Vec<PathBuf> {
    fs::read_dir(root.join("layers/extended/run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The checks shared by the layout and registry variants, on a config JSON and the run image's layers.
fn assert_extended_config(config: &serde_json::Value, run_diff_ids: &[String]) {
    let c = &config["config"];
    assert_eq!(c["Labels"]["io.buildpacks.rebasable"], "false", "EP-19");
    assert_eq!(
        c["Labels"]["ext.label"], "yes",
        "EP-04: labels from the extended config"
    );
    assert_eq!(
        c["Labels"]["io.buildpacks.base.distro.name"], "busybox",
        "base labels kept"
    );
    assert_eq!(c["User"], "1000", "EP-04: user from the extended config");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"EXT_VAR=from-ext"), "{env:?}");
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/cnb/process:")),
        "{env:?}"
    );
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        &diff_ids[..run_diff_ids.len()],
        run_diff_ids,
        "run image layers first"
    );
    let history: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(history.len(), diff_ids.len(), "one history entry per layer");
    let ext = &history[run_diff_ids.len()];
    assert!(
        ext.starts_with("Layer: 'RUN echo hello-from-extension")
            && ext.ends_with("Created by extension: samples/ext"),
        "EP-07 history: {history:?}"
    );
    assert!(
        history[run_diff_ids.len() + 1].ends_with("Created by buildpack: bp/a@1.0"),
        "EP-06: buildpack layers after the extension layers: {history:?}"
    );
    let lm: serde_json::Value = serde_json::from_str(
        c["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        lm["runImage"]["topLayer"].as_str().unwrap(),
        run_diff_ids.last().unwrap(),
        "EP-05: the run image's top layer, not the extension layer"
    );
}

fn layout_diff_ids(dir: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"].as_str().unwrap();
    image_config(dir, d)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// EP-02, EP-04, EP-05, EP-06, EP-07, EP-19, IM-11, IM-30: layout output.
#[test]
fn exports_on_the_extended_run_image_to_a_layout() {
    if !running_as_root() {
        eprintln!("the extender binary drives a root-owned root filesystem; run as root");
        return;
    }
    let root = ContainerRoot::new();
    let run_layout = layout_of(&root, "cnb/run");
    let digest = busybox_layout(&run_layout);
    let run_diff_ids = layout_diff_ids(&run_layout);
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    add_extension(&root);
    let fs_root = extender_root(&run_layout, &digest);
    extend(&root, fs_root.path(), &[]);
    assert_eq!(extended_dirs(&root).len(), 1);

    let out = export(&root, &[]);
    out.assert_success()
        .assert_contains("Adding layer 'samples/ext:extended-layer-1'")
        .assert_contains("Adding layer 'bp/a:web'");
    let d1 = report_digest(&root);
    let dir = app_layout(&root);
    validate_layout(&dir);
    let rootfs = unpack(&dir, &root.join("bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("ext.txt")).unwrap(),
        "hello-from-extension\n",
        "the extension's file is in the app image"
    );
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("cnb/lifecycle/launcher").is_file());
    let config = image_config(&dir, &d1);
    assert_extended_config(&config, &run_diff_ids);

    // No-op re-export: same digest, no blob written.
    let blobs = blob_files(&dir);
    analyze(&root).assert_success();
    add_extension(&root);
    export(&root, &[])
        .assert_success()
        .assert_contains("Reusing layer 'samples/ext:extended-layer-1'")
        .assert_not_contains("Adding layer");
    assert_eq!(report_digest(&root), d1, "same inputs, same digest");
    assert_eq!(blob_files(&dir), blobs);
}

/// EP-02: with `run-image.extend = true` the extended image must be there; before Platform 0.13 it is
/// experimental.
#[test]
fn extended_run_image_missing_or_experimental() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    add_extension(&root);
    let out = export(&root, &[]);
    assert_eq!(out.code(), 62, "{}", out.stderr);
    out.assert_contains("holds no extended run image");

    // A stand-in extended image (the run image itself, no extension layers) under Platform 0.12 with
    // experimental features disabled.
    let run_layout = layout_of(&root, "cnb/run");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(run_layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"].as_str().unwrap();
    let ext = root.join("layers/extended/run").join(d);
    fs::create_dir_all(&ext).unwrap();
    tool(
        "cp",
        &[
            "-a",
            &format!("{}/.", run_layout.display()),
            ext.to_str().unwrap(),
        ],
    );
    let mut args = vec![
        "-layout".to_string(),
        format!("-layout-dir={}", root.join("layout").display()),
        format!(
            "-launcher={}",
            root.join("cnb/lifecycle/launcher").display()
        ),
        "app/img".to_string(),
    ];
    let run = |mode: &str, args: &[String]| -> Output {
        root.phase("exporter")
            .env("CNB_PLATFORM_API", "0.12")
            .env("CNB_EXPERIMENTAL_MODE", mode)
            .args(args.to_vec())
            .run()
    };
    let out = run("error", &args);
    assert_ne!(out.code(), 0);
    out.assert_contains("experimental features are disabled");
    args.insert(0, "-log-level=info".into());
    let out = run("warn", &args);
    out.assert_success()
        .assert_contains("Platform requested experimental feature 'Dockerfiles'");
}

/// EP-04, EP-07, IM-20: registry output; the run image's layers are mounted/skipped, only the extension
/// layer and the app's layers are uploaded.
#[test]
fn exports_on_the_extended_run_image_to_a_registry() {
    if !running_as_root() {
        eprintln!("the extender binary drives a root-owned root filesystem; run as root");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().access_log());
    let root = ContainerRoot::new();
    let run_layout = root.join("run-layout");
    let digest = busybox_layout(&run_layout);
    let run_diff_ids = layout_diff_ids(&run_layout);
    tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", run_layout.display()),
            &format!("docker://{}", reg.image("cnb/run:latest")),
        ],
    );
    write_build_output(&root, "v1", "echo v1");
    root.mkdir("home");
    let env = |cmd: cnb_acceptance::harness::PhaseCommand| {
        cmd.env("CNB_INSECURE_REGISTRIES", reg.host())
            .env("HOME", root.join("home").display().to_string())
    };
    env(root.phase("analyzer"))
        .arg(format!("-run-image={}", reg.image("cnb/run:latest")))
        .arg(reg.image("app/img:latest"))
        .run()
        .assert_success();
    add_extension(&root);
    let fs_root = extender_root(&run_layout, &digest);
    extend(
        &root,
        fs_root.path(),
        &[("CNB_INSECURE_REGISTRIES", reg.host().to_string())],
    );
    let export = || {
        env(root.phase("exporter"))
            .arg(format!(
                "-launcher={}",
                root.join("cnb/lifecycle/launcher").display()
            ))
            .arg(reg.image("app/img:latest"))
            .run()
    };
    export()
        .assert_success()
        .assert_contains("Adding layer 'samples/ext:extended-layer-1'");
    let d1 = report_digest(&root);
    let copy = root.join("copy");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}", reg.image("app/img:latest")),
            &format!("oci:{}:latest", copy.display()),
        ],
    );
    validate_layout(&copy);
    let rootfs = unpack(&copy, &root.join("bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("ext.txt")).unwrap(),
        "hello-from-extension\n"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(copy.join("index.json")).unwrap()).unwrap();
    let cd = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_extended_config(&image_config(&copy, &cd), &run_diff_ids);
    let uploads = |repo: &str| {
        let needle = format!("POST /v2/{repo}/blobs/uploads/");
        reg.access_log()
            .iter()
            .filter(|l| l.contains(&needle) && !l.contains("mount="))
            .count()
    };
    let first = uploads("app/img");
    // extension layer, bp layer, app, launcher, config layer, process types, image config (+ the
    // lifecycle's own launcher SBOM layer when the lifecycle under test ships SBOMs): the run image's
    // layer is mounted, never uploaded.
    let sbom_layer = usize::from(
        cnb_acceptance::harness::bin_dir()
            .join("launcher.sbom.cdx.json")
            .is_file(),
    );
    assert_eq!(first, 7 + sbom_layer, "{:#?}", reg.access_log());

    env(root.phase("analyzer"))
        .arg(format!("-run-image={}", reg.image("cnb/run:latest")))
        .arg(reg.image("app/img:latest"))
        .run()
        .assert_success();
    add_extension(&root);
    export()
        .assert_success()
        .assert_contains("Reusing layer 'samples/ext:extended-layer-1'");
    assert_eq!(report_digest(&root), d1);
    assert_eq!(uploads("app/img"), first, "no-op re-export uploads nothing");
}
