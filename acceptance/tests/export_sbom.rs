//! The exporter copies the lifecycle's and the launcher's own SBOMs (checklist EP-03, SB-05, EP-09,
//! EP-22; `[P≥0.11]`). The exporter binary is run from `<root>/cnb/lifecycle/`, as in a lifecycle image,
//! with SBOM files beside it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::export_checks;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cnb_acceptance::harness::{bin_path, ContainerRoot};
use common::*;
use export_checks::unpack;

fn install_exporter(root: &ContainerRoot) -> std::path::PathBuf {
    let exe = root.join("cnb/lifecycle/exporter");
    fs::copy(bin_path("exporter"), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    root.write(
        "cnb/lifecycle/lifecycle.sbom.cdx.json",
        r#"{"lifecycle":"cdx"}"#,
    );
    root.write(
        "cnb/lifecycle/launcher.sbom.spdx.json",
        r#"{"launcher":"spdx"}"#,
    );
    exe
}

fn run(root: &ContainerRoot, exe: &std::path::Path, api: &str, extra: &[String]) {
    let mut args = vec![
        "-layout".to_string(),
        format!("-layout-dir={}", root.join("layout").display()),
        format!(
            "-launcher={}",
            root.join("cnb/lifecycle/launcher").display()
        ),
        "-log-level=debug".to_string(),
    ];
    args.extend(extra.iter().cloned());
    args.push("app/img".into());
    let out = root
        .phase("exporter")
        .program(exe)
        .env("CNB_PLATFORM_API", api)
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args(args)
        .run();
    out.assert_success();
    out.assert_contains("Did not find SBOM lifecycle.sbom.spdx.json")
        .assert_contains("Copying SBOM lifecycle.sbom.cdx.json to");
}

/// EP-03 default `-launcher-sbom`: lifecycle SBOM into `<layers>/sbom/build`, launcher SBOM into the
/// launch SBOM layer of the image.
#[test]
fn copies_lifecycle_and_launcher_sboms_ep03() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    let exe = install_exporter(&root);
    analyze(&root).assert_success();
    run(&root, &exe, "0.15", &[]);
    assert_eq!(
        root.read("layers/sbom/build/buildpacksio_lifecycle/sbom.cdx.json"),
        r#"{"lifecycle":"cdx"}"#
    );
    assert!(!root.exists("layers/sbom/build/buildpacksio_lifecycle/sbom.spdx.json"));
    let dir = app_layout(&root);
    let rootfs = unpack(&dir, &root.join("bundle"));
    let layers = root.join("layers");
    let in_image = rootfs.join(
        layers
            .join("sbom/launch/buildpacksio_lifecycle/launcher/sbom.spdx.json")
            .strip_prefix("/")
            .unwrap(),
    );
    assert_eq!(
        fs::read_to_string(&in_image).unwrap(),
        r#"{"launcher":"spdx"}"#,
        "EP-09: the launcher SBOM is in the image's SBOM layer"
    );
}

/// EP-03 custom `-launcher-sbom` dir: every `*.sbom.<ext>` file is copied under its own name.
#[test]
fn custom_launcher_sbom_dir_copies_every_sbom_by_name() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    let exe = install_exporter(&root);
    root.write("custom-sbom/launcher.sbom.syft.json", "syft");
    root.write("custom-sbom/other.sbom.cdx.json", "cdx");
    root.write("custom-sbom/notes.txt", "not an sbom");
    analyze(&root).assert_success();
    run(
        &root,
        &exe,
        "0.15",
        &[format!(
            "-launcher-sbom={}",
            root.join("custom-sbom").display()
        )],
    );
    let launch = "layers/sbom/launch/buildpacksio_lifecycle/launcher";
    assert_eq!(
        root.read(format!("{launch}/launcher.sbom.syft.json")),
        "syft"
    );
    assert_eq!(root.read(format!("{launch}/other.sbom.cdx.json")), "cdx");
    assert!(!root.exists(format!("{launch}/notes.txt")));
    assert!(!root.exists(format!("{launch}/sbom.spdx.json")));
}

/// Issue 18: the lifecycle's own SBOMs (generated at build time by tools/sbom.py, installed next to the
/// binaries by the harness as by `make install`) land in the exported image, and a normal export prints
/// no `Did not find SBOM` warning (EP-03, EP-09, SB-05).
#[test]
fn our_own_sboms_are_exported_without_warnings() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    let dir = root.join("cnb/lifecycle");
    fs::remove_dir_all(&dir).ok();
    cnb_acceptance::harness::install_lifecycle(&cnb_acceptance::harness::bin_dir(), &dir);
    analyze(&root).assert_success();
    let out = root
        .phase("exporter")
        .program(dir.join("exporter"))
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", root.join("layout").display()),
            format!("-launcher={}", dir.join("launcher").display()),
            "app/img".to_string(),
        ])
        .run();
    out.assert_success()
        .assert_not_contains("Did not find SBOM");
    for ext in ["cdx", "spdx", "syft"] {
        assert_eq!(
            root.read(format!(
                "layers/sbom/build/buildpacksio_lifecycle/sbom.{ext}.json"
            )),
            fs::read_to_string(dir.join(format!("lifecycle.sbom.{ext}.json"))).unwrap()
        );
    }
    let rootfs = unpack(&app_layout(&root), &root.join("bundle"));
    let layers = root.join("layers");
    for ext in ["cdx", "spdx", "syft"] {
        let rel = format!("sbom/launch/buildpacksio_lifecycle/launcher/sbom.{ext}.json");
        let in_image = rootfs.join(layers.join(&rel).strip_prefix("/").unwrap());
        let text = fs::read_to_string(&in_image).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            text,
            fs::read_to_string(dir.join(format!("launcher.sbom.{ext}.json"))).unwrap()
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v.is_object(), "{rel} is JSON");
    }
}
