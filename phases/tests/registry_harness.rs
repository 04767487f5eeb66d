//! The loopback registry harness (`cnb_acceptance::registry`) works in all three modes: an image pushed by
//! an independent client (skopeo) is visible in the catalog and tag list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

use cnb_acceptance::registry::{Registry, RegistryOptions};

/// An empty OCI image made by umoci (an independent tool): `oci:<dir>/layout:v1`.
fn umoci_image(dir: &std::path::Path) -> String {
    let layout = dir.join("layout");
    for args in [
        vec![
            "init".to_string(),
            "--layout".into(),
            layout.display().to_string(),
        ],
        vec![
            "new".into(),
            "--image".into(),
            format!("{}:v1", layout.display()),
        ],
    ] {
        let out = Command::new("umoci")
            .args(&args)
            .output()
            .expect("run umoci");
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    format!("oci:{}:v1", layout.display())
}

#[test]
fn plain_registry_accepts_skopeo_push() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistryOptions::plain());
    reg.skopeo_copy(
        &umoci_image(tmp.path()),
        &format!("docker://{}", reg.image("harness/plain:v1")),
    );
    let (status, body) = reg.http_get("/v2/_catalog");
    assert_eq!(status, 200);
    assert!(body.contains("harness/plain"), "{body}");
    let (status, body) = reg.http_get("/v2/harness/plain/tags/list");
    assert_eq!(status, 200);
    assert!(body.contains("\"v1\""), "{body}");
    let raw = reg.skopeo_inspect_raw("harness/plain:v1");
    assert!(String::from_utf8_lossy(&raw).contains("schemaVersion"));
}

#[test]
fn basic_auth_registry_requires_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistryOptions::plain().basic_auth().access_log());
    reg.skopeo_copy(
        &umoci_image(tmp.path()),
        &format!("docker://{}", reg.image("harness/auth:v1")),
    );
    let (status, body) = reg.http_get("/v2/harness/auth/tags/list");
    assert_eq!(status, 200, "{body}");
    // Without credentials the registry refuses.
    let out = reg.skopeo_copy_output(
        &format!("docker://{}", reg.image("harness/auth:v1")),
        &format!("oci:{}/copy:v1", tmp.path().display()),
        &["--src-creds=cnb-user:wrong"],
    );
    assert!(!out.status.success());
    assert!(reg
        .access_log()
        .iter()
        .any(|l| l.starts_with("PUT /v2/harness/auth/manifests/v1")));
}

#[test]
fn tls_registry_is_trusted_through_its_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistryOptions::plain().tls());
    assert!(reg.url().starts_with("https://"));
    let ca = reg.ca_cert_path().unwrap();
    assert!(ca.exists());
    reg.skopeo_copy(
        &umoci_image(tmp.path()),
        &format!("docker://{}", reg.image("harness/tls:v1")),
    );
    let raw = reg.skopeo_inspect_raw("harness/tls:v1");
    assert!(String::from_utf8_lossy(&raw).contains("schemaVersion"));
    // Verification is real: without the CA skopeo refuses the certificate.
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("docker://{}", reg.image("harness/tls:v1")))
        .output()
        .unwrap();
    assert!(!out.status.success());
}
