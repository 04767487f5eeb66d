//! `-log-level debug` shows the lifecycle's own events only (issue 18; checklist G-13): pack always passes
//! it, and the reference's debug output holds the lifecycle's messages, not its HTTP client's. Run against
//! a loopback registry so that the HTTP, TLS and registry crates are busy; `RUST_LOG` turns their events
//! back on, which also proves they exist to be filtered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;

use cnb_acceptance::harness::{ContainerRoot, Output};
use cnb_acceptance::images::busybox;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;

/// Lines the HTTP stack logs at debug level (hyper, hyper-util, h2, reqwest, rustls, oci-client).
const DEPENDENCY_PHRASES: [&str; 6] = [
    "pooling idle connection",
    "connecting to",
    "reuse idle connection",
    "starting new connection",
    "binding client connection",
    "flushed",
];

fn analyze(root: &ContainerRoot, reg: &Registry, rust_log: Option<&str>) -> Output {
    let mut cmd = root
        .phase("analyzer")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .args([
            "-log-level=debug".to_string(),
            format!("-run-image={}", reg.image("cnb/run:latest")),
            reg.image("app/img:latest"),
        ]);
    if let Some(v) = rust_log {
        cmd = cmd.env("RUST_LOG", v);
    }
    let out = cmd.run();
    out.assert_success();
    out
}

#[test]
fn debug_output_has_no_dependency_lines_unless_rust_log_asks() {
    let reg = Registry::start(RegistryOptions::plain());
    let base = busybox();
    reg.skopeo_copy(
        &format!("oci:{}:{}", base.layout.display(), base.tag),
        &format!("docker://{}", reg.image("cnb/run:latest")),
    );
    let root = ContainerRoot::new();
    write_build_output(&root, "v1", "echo v1");

    let quiet = analyze(&root, &reg, None);
    quiet.assert_contains("Starting analyzer...");
    for phrase in DEPENDENCY_PHRASES {
        quiet.assert_not_contains(phrase);
    }
    let own: BTreeSet<String> = quiet.all().lines().map(str::to_string).collect();

    let loud = analyze(
        &root,
        &reg,
        Some("hyper_util=debug,hyper=debug,reqwest=debug,h2=debug"),
    );
    loud.assert_contains("Starting analyzer...");
    let loud_text = loud.all();
    let extra: Vec<&str> = loud_text
        .lines()
        .filter(|l| !own.contains(*l) && !l.contains("Analyzing image") && !l.contains("sha256:"))
        .collect();
    assert!(
        !extra.is_empty(),
        "RUST_LOG should bring the HTTP stack's debug lines back:\n{}",
        loud.dump()
    );
    assert!(
        DEPENDENCY_PHRASES.iter().any(|p| loud.contains(p)),
        "expected one of {DEPENDENCY_PHRASES:?} with RUST_LOG:\n{}",
        loud.dump()
    );
}
