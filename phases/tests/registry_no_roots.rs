//! An image without system CA certificates must not make the registry client panic (ENVIRONMENT.md:
//! oci-client's default client panics with "No CA certificates were loaded from the system"). Simulated
//! by pointing rustls-native-certs at empty locations; this file holds a single test because it changes
//! the process environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use cnb_acceptance::registry::{Registry, RegistryOptions as RegOpts};
use cnb_lifecycle::image::registry::{ImageRef, Keychain, RegistryClient, RegistryOptions};

#[test]
fn client_works_without_system_roots() {
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("SSL_CERT_FILE", empty.path().join("none.pem"));
    std::env::set_var("SSL_CERT_DIR", empty.path());
    // The precondition is real: oci-client alone cannot build a client here.
    assert!(oci_client::Client::try_from(oci_client::client::ClientConfig::default()).is_err());

    let tls = Registry::start(RegOpts::plain().tls());
    let plain = Registry::start(RegOpts::plain());
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("l");
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
        let out = std::process::Command::new("umoci")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let src = format!("oci:{}:v1", layout.display());
    tls.skopeo_copy(&src, &format!("docker://{}", tls.image("roots/app:v1")));
    plain.skopeo_copy(&src, &format!("docker://{}", plain.image("roots/app:v1")));

    // Plain HTTP needs no roots at all.
    let c = RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::default().insecure(&plain.host()),
    )
    .unwrap();
    c.pull_manifest(&ImageRef::parse(&plain.image("roots/app:v1")).unwrap())
        .unwrap();

    // An extra CA still works on top of the bundled roots.
    let c = RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::default().ca_cert(tls.ca_cert_path().unwrap()),
    )
    .unwrap();
    let m = c
        .pull_manifest(&ImageRef::parse(&tls.image("roots/app:v1")).unwrap())
        .unwrap();
    assert_eq!(m.bytes, tls.skopeo_inspect_raw("roots/app:v1"));

    // Without the CA the bundled roots do not trust the test CA: a clean error, no panic.
    let c =
        RegistryClient::new(Arc::new(Keychain::anonymous()), RegistryOptions::default()).unwrap();
    let err = c
        .pull_manifest(&ImageRef::parse(&tls.image("roots/app:v1")).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("roots/app"), "{err}");
}
