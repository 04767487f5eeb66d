//! The acceptance suite as **one** test binary (issue 17): every `tests/<area>.rs` is a module here, so
//! the suite links once instead of forty times and all its tests share one pool of test threads (and one
//! private dockerd, one staged copy of the binaries). Run one area with
//! `cargo test -p cnb-acceptance --test acceptance <area>::`.
//!
//! `every_test_file_is_a_module` keeps it whole: a new `tests/*.rs` that is not listed below fails it
//! (with `autotests = false` it would otherwise never be compiled).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
mod e2e_support;
mod export_checks;

mod analyze_apis;
mod analyze_auth;
mod analyze_details;
mod build;
mod cli;
mod creator;
mod creator_build_image;
mod creator_flags;
mod creator_registry;
mod daemon;
mod debug_logging;
mod detect;
mod distribution;
mod e2e_extensions;
mod e2e_images;
mod e2e_kubernetes;
mod e2e_python;
mod e2e_python_build_image;
mod e2e_tekton;
mod export;
mod export_extended;
mod export_parallel;
mod export_platform_apis;
mod export_registry;
mod export_registry_auth;
mod export_sbom;
mod extend;
mod extend_docker;
mod hostile_inputs;
mod hostile_layers;
mod launcher;
mod modes;
mod phases_e2e;
mod rebase;
mod rebase_platform;
mod registry_faults;
mod registry_scheme;
mod restore;
mod restore_images;
mod samples_builders;
mod samples_yaml;
mod secrets;
mod volumes;

#[test]
fn every_test_file_is_a_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let me = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module =
            path.extension().is_some_and(|e| e == "rs") || path.join("mod.rs").is_file();
        if is_module && name != "main" && !me.contains(&format!("\nmod {name};\n")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "tests/main.rs does not declare: {missing:?}"
    );
}
