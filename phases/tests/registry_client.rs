//! `image::registry` against a REAL loopback registry (Debian docker-registry): plain HTTP, basic auth and
//! TLS with a test CA. Images are made by independent tools (umoci, skopeo) and our results are checked
//! with skopeo. Checklist: G-16 (auth sources), G-18 (insecure registries), G-21 (references), G-23
//! (retry classification is unit-tested in the module).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cnb_acceptance::registry::{Registry, RegistryOptions as RegOpts};
use cnb_lifecycle::image::registry::{
    BlobPushOutcome, BlobSource, BlobUpload, ImageRef, Keychain, KeychainSource, RegistryClient,
    RegistryError, RegistryOptions, RetryPolicy, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OCI layout with one tagged image `v1` holding two layers of random data (made by umoci).
fn umoci_layout(dir: &Path) -> String {
    let layout = dir.join("layout");
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    let image = format!("{}:v1", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    for (i, size) in [(1, 300_000), (2, 50_000)] {
        let src = dir.join(format!("src{i}"));
        std::fs::create_dir_all(&src).unwrap();
        let data: Vec<u8> = (0..size)
            .map(|j: u32| (j.wrapping_mul(2654435761) >> (i * 3)) as u8)
            .collect();
        std::fs::write(src.join(format!("file{i}")), data).unwrap();
        run(Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&src)
            .arg(format!("/data{i}")));
    }
    format!("oci:{image}")
}

/// Puts the umoci image into `reg` as `<repo>:v1` with skopeo; `format` e.g. `v2s2` for Docker types.
fn seed(reg: &Registry, dir: &Path, repo: &str, format: Option<&str>) -> ImageRef {
    let src = umoci_layout(dir);
    let dest = format!("docker://{}", reg.image(&format!("{repo}:v1")));
    let extra: Vec<&str> = format.map(|f| vec!["--format", f]).unwrap_or_default();
    let out = reg.skopeo_copy_output(&src, &dest, &extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ImageRef::parse(&reg.image(&format!("{repo}:v1"))).unwrap()
}

fn keychain_for(reg: &Registry) -> Keychain {
    let auth = reg
        .basic_auth_header()
        .map(|h| format!(r#"{{"{}": "{h}"}}"#, reg.host()));
    Keychain::new(&KeychainSource {
        registry_auth: auth,
        ..Default::default()
    })
    .unwrap()
}

fn client_with(reg: &Registry, keychain: Keychain) -> RegistryClient {
    let mut opts = RegistryOptions::default();
    match reg.ca_cert_path() {
        Some(ca) => opts = opts.ca_cert(ca),
        None => opts = opts.insecure(&reg.host()),
    }
    RegistryClient::new(Arc::new(keychain), opts).unwrap()
}

fn client(reg: &Registry) -> RegistryClient {
    client_with(reg, keychain_for(reg))
}

#[derive(serde::Deserialize)]
struct Desc {
    digest: String,
    size: u64,
}
#[derive(serde::Deserialize)]
struct Man {
    config: Desc,
    layers: Vec<Desc>,
}

/// Downloads config + layers of `image` into `dir` with our client; returns uploads for them.
fn fetch_blobs(
    c: &RegistryClient,
    image: &ImageRef,
    manifest: &[u8],
    dir: &Path,
) -> Vec<BlobUpload> {
    let m: Man = serde_json::from_slice(manifest).unwrap();
    let mut uploads = Vec::new();
    for d in std::iter::once(&m.config).chain(&m.layers) {
        let path: PathBuf = dir.join(d.digest.replace(':', "-"));
        let mut f = std::fs::File::create(&path).unwrap();
        let n = c.pull_blob_to(image, &d.digest, &mut f).unwrap();
        assert_eq!(n, d.size);
        uploads.push(BlobUpload {
            digest: d.digest.clone(),
            size: d.size,
            source: BlobSource::Path(path),
            mount_from: Vec::new(),
        });
    }
    uploads
}

/// Pull everything from `<src>:v1` and push it to `<dst>:v1` with our client; check digests with skopeo.
fn round_trip(reg: &Registry, format: Option<&str>, expected_type: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(reg, tmp.path(), "rt/src", format);
    let c = client(reg);
    let pulled = c.pull_manifest(&src).unwrap();
    assert_eq!(pulled.media_type, expected_type);
    assert_eq!(
        pulled.bytes,
        reg.skopeo_inspect_raw("rt/src:v1"),
        "bytes as stored"
    );
    let dst = ImageRef::parse(&reg.image("rt/dst:v1")).unwrap();
    let blobs = tmp.path().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let uploads = fetch_blobs(&c, &src, &pulled.bytes, &blobs);
    let outcomes = c.push_blobs(&dst, &uploads).unwrap();
    assert!(
        outcomes.iter().all(|o| *o == BlobPushOutcome::Uploaded),
        "{outcomes:?}"
    );
    let digest = c
        .push_manifest(&dst, &pulled.bytes, &pulled.media_type)
        .unwrap();
    assert_eq!(digest, pulled.digest, "manifest digest preserved");
    assert_eq!(reg.skopeo_inspect_raw("rt/dst:v1"), pulled.bytes);
    // skopeo verifies every blob digest while copying back out.
    reg.skopeo_copy(
        &format!("docker://{}", reg.image("rt/dst:v1")),
        &format!("oci:{}/check:v1", tmp.path().display()),
    );
    // Tags point at the same bytes.
    c.tag(&dst, &["t2", "t3"], &pulled.bytes, &pulled.media_type)
        .unwrap();
    assert_eq!(reg.skopeo_inspect_raw("rt/dst:t3"), pulled.bytes);
    let by_digest = dst.with_digest(&digest).unwrap();
    assert_eq!(c.pull_manifest(&by_digest).unwrap().bytes, pulled.bytes);
}

#[test]
fn round_trip_keeps_digests_on_plain_registry_g18() {
    let reg = Registry::start(RegOpts::plain());
    round_trip(&reg, None, OCI_MANIFEST);
}

#[test]
fn round_trip_docker_v2_manifests() {
    let reg = Registry::start(RegOpts::plain());
    round_trip(&reg, Some("v2s2"), DOCKER_MANIFEST);
}

#[test]
fn round_trip_with_basic_auth_from_cnb_registry_auth_g16() {
    let reg = Registry::start(RegOpts::plain().basic_auth());
    round_trip(&reg, None, OCI_MANIFEST);
}

#[test]
fn round_trip_over_tls_with_extra_ca() {
    let reg = Registry::start(RegOpts::plain().tls().basic_auth());
    round_trip(&reg, None, OCI_MANIFEST);
}

#[test]
fn tls_without_the_ca_fails_clearly_and_fast() {
    let reg = Registry::start(RegOpts::plain().tls());
    let c =
        RegistryClient::new(Arc::new(Keychain::anonymous()), RegistryOptions::default()).unwrap();
    let image = ImageRef::parse(&reg.image("x/y:v1")).unwrap();
    let start = std::time::Instant::now();
    let err = c.pull_manifest(&image).unwrap_err();
    let text = cnb_lifecycle::error::chain(&err);
    assert!(text.contains(&reg.host()), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    // A certificate problem is not transient: no 3.8 s of retries.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn blobs_the_registry_has_are_not_uploaded_again() {
    let reg = Registry::start(RegOpts::plain().access_log());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "dedup/a", None);
    let c = client(&reg);
    let m = c.pull_manifest(&src).unwrap();
    let uploads = fetch_blobs(&c, &src, &m.bytes, tmp.path());
    let before = reg.access_log().len();
    let outcomes = c.push_blobs(&src, &uploads).unwrap();
    assert!(
        outcomes.iter().all(|o| *o == BlobPushOutcome::Exists),
        "{outcomes:?}"
    );
    let log = reg.access_log();
    // The client probed `GET /v2/` once, while pulling; pushing needs no further probe.
    let new: Vec<&String> = log[before..].iter().collect();
    assert!(!new.is_empty());
    assert!(
        new.iter()
            .all(|l| l.starts_with("HEAD /v2/dedup/a/blobs/sha256:")),
        "only HEAD requests expected: {new:#?}"
    );
    assert_eq!(new.len(), uploads.len());
}

#[test]
fn cross_repository_mount_is_used() {
    let reg = Registry::start(RegOpts::plain().basic_auth().access_log());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "mount/src", None);
    let c = client(&reg);
    let m = c.pull_manifest(&src).unwrap();
    let mut uploads = fetch_blobs(&c, &src, &m.bytes, tmp.path());
    for u in &mut uploads {
        u.mount_from = vec![src.clone()];
    }
    let dst = ImageRef::parse(&reg.image("mount/dst:v1")).unwrap();
    let before = reg.access_log().len();
    let outcomes = c.push_blobs(&dst, &uploads).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == BlobPushOutcome::Mounted(src.name())),
        "{outcomes:?}"
    );
    c.push_manifest(&dst, &m.bytes, &m.media_type).unwrap();
    let log = reg.access_log();
    let new = &log[before..];
    assert!(
        new.iter().any(|l| l
            .contains("/v2/mount/dst/blobs/uploads/?from=mount%2Fsrc&mount=sha256")
            || l.contains("/v2/mount/dst/blobs/uploads/?mount=sha256")),
        "{new:#?}"
    );
    assert!(
        !new.iter()
            .any(|l| l.starts_with("PUT /v2/mount/dst/blobs/")),
        "no upload: {new:#?}"
    );
    assert!(
        !new.iter().any(|l| l.starts_with("PATCH")),
        "no upload: {new:#?}"
    );
    assert_eq!(reg.skopeo_inspect_raw("mount/dst:v1"), m.bytes);
}

#[test]
fn wrong_credentials_give_a_clear_401() {
    let reg = Registry::start(RegOpts::plain().basic_auth());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "auth/app", None);
    let wrong = Keychain::new(&KeychainSource {
        registry_auth: Some(format!(r#"{{"{}": "Basic d3Jvbmc6d3Jvbmc="}}"#, reg.host())),
        ..Default::default()
    })
    .unwrap();
    let c = client_with(&reg, wrong);
    let err = c.pull_manifest(&src).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unauthorized"), "{msg}");
    assert!(
        msg.contains(&format!("check credentials for {}", reg.host())),
        "{msg}"
    );
    assert!(msg.contains("auth/app"), "{msg}");
    assert_eq!(err.status(), Some(401));
    // Pushing fails the same way.
    let upload = BlobUpload {
        digest: cnb_lifecycle::image::registry::sha256_digest(b"x"),
        size: 1,
        source: BlobSource::Bytes(Arc::new(b"x".to_vec())),
        mount_from: vec![],
    };
    let err = c.push_blob(&src, &upload).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    // Anonymous as well.
    let anon = client_with(&reg, Keychain::anonymous());
    assert!(anon.pull_manifest(&src).unwrap_err().is_auth());
}

#[test]
fn access_checks_for_the_analyzer() {
    let reg = Registry::start(RegOpts::plain().basic_auth());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "access/app", None);
    let good = client(&reg);
    assert!(good.check_read_access(&src).unwrap());
    assert!(good.check_write_access(&src).unwrap());
    let missing = ImageRef::parse(&reg.image("access/none:v1")).unwrap();
    assert!(
        good.check_read_access(&missing).unwrap(),
        "a missing image is readable"
    );
    assert!(good.check_write_access(&missing).unwrap());
    let anon = client_with(&reg, Keychain::anonymous());
    assert!(!anon.check_read_access(&src).unwrap());
    assert!(!anon.check_write_access(&src).unwrap());
}

#[test]
fn docker_config_json_from_docker_login_g16() {
    let reg = Registry::start(RegOpts::plain().basic_auth());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "dockercfg/app", None);
    let cfg = tmp.path().join("docker-config");
    reg.docker_login(&cfg);
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(text.contains(&reg.host()), "{text}");
    let keychain = Keychain::new(&KeychainSource {
        docker_config_dir: Some(cfg),
        ..Default::default()
    })
    .unwrap();
    let c = client_with(&reg, keychain);
    let m = c.pull_manifest(&src).unwrap();
    assert_eq!(m.bytes, reg.skopeo_inspect_raw("dockercfg/app:v1"));
}

#[test]
fn local_plain_http_registries_need_no_declaration_g18() {
    // As the reference's registry library: HTTPS first, then plain HTTP for local names (127.0.0.1,
    // localhost); a declared insecure registry also works (HTTPS without verification, then HTTP).
    let reg = Registry::start(RegOpts::plain().access_log());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "insecure/app", None);
    let pings = || {
        reg.access_log()
            .iter()
            .filter(|l| l.contains("GET /v2/ "))
            .count()
    };
    let seeded = pings();
    let undeclared = RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::default().retry(RetryPolicy::none()),
    )
    .unwrap();
    let m = undeclared.pull_manifest(&src).unwrap();
    let port = reg.host().rsplit_once(':').unwrap().1.to_string();
    let by_localhost = ImageRef::parse(&format!("localhost:{port}/insecure/app:v1")).unwrap();
    assert_eq!(
        undeclared.pull_manifest(&by_localhost).unwrap().bytes,
        m.bytes
    );
    let declared = RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::default().insecure(&reg.host()),
    )
    .unwrap();
    assert_eq!(declared.pull_manifest(&src).unwrap().bytes, m.bytes);
    assert_eq!(undeclared.pull_manifest(&src).unwrap().bytes, m.bytes);
    // One ping per registry name and client: the scheme is decided once (127.0.0.1 and localhost for
    // the first client, 127.0.0.1 for the second).
    assert_eq!(pings() - seeded, 3, "{:#?}", reg.access_log());
}

#[test]
fn index_platform_selection_and_missing_things() {
    let reg = Registry::start(RegOpts::plain());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "index/app", None);
    let c = client(&reg);
    let m = c.pull_manifest(&src).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
          {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{n},"platform":{{"os":"linux","architecture":"s390x"}}}},
          {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{n},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        d = m.digest,
        n = m.bytes.len()
    );
    let multi = ImageRef::parse(&reg.image("index/app:multi")).unwrap();
    let idx_digest = c
        .push_manifest(&multi, index.as_bytes(), OCI_INDEX)
        .unwrap();
    assert_eq!(reg.skopeo_inspect_raw("index/app:multi"), index.as_bytes());
    let resolved = c.pull_image_manifest(&multi).unwrap();
    assert_eq!(resolved.manifest.digest, m.digest);
    assert_eq!(resolved.index.unwrap().digest, idx_digest);
    // Missing manifest and blob are "not found", not retried for seconds.
    let missing = ImageRef::parse(&reg.image("index/app:nope")).unwrap();
    assert!(c.pull_manifest(&missing).unwrap_err().is_not_found());
    let d = cnb_lifecycle::image::registry::sha256_digest(b"never pushed");
    assert!(!c.blob_exists(&src, &d).unwrap());
    let err = c.pull_blob_to(&src, &d, &mut Vec::new()).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

fn probes(log: &[String]) -> usize {
    log.iter().filter(|l| l.starts_with("GET /v2/ ")).count()
}

/// A registry that needs no auth is probed with `GET /v2/` once per client, not before every request
/// (oci-client alone re-probes each time because it has no token to cache). Pull: probe + manifest +
/// config + 2 layers; push to a new repository: probe + per blob HEAD, POST, PUT + manifest PUT. Issue #4.
#[test]
fn open_registry_is_probed_once_per_client_for_pull_and_push() {
    let reg = Registry::start(RegOpts::plain().access_log());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "probe/src", None);

    let before = reg.access_log().len();
    let c = client(&reg);
    let m = c.pull_image_manifest(&src).unwrap().manifest;
    let uploads = fetch_blobs(&c, &src, &m.bytes, tmp.path());
    assert_eq!(uploads.len(), 3, "config + 2 layers");
    let log = reg.access_log()[before..].to_vec();
    assert_eq!(probes(&log), 1, "{log:#?}");
    assert_eq!(log.len(), 1 + 1 + uploads.len(), "{log:#?}");
    assert!(
        log[1].starts_with("GET /v2/probe/src/manifests/v1 HTTP/1.1 200"),
        "{log:#?}"
    );

    let before = reg.access_log().len();
    let c = client(&reg);
    let dst = ImageRef::parse(&reg.image("probe/dst:v1")).unwrap();
    let outcomes = c.push_blobs(&dst, &uploads).unwrap();
    assert!(
        outcomes.iter().all(|o| *o == BlobPushOutcome::Uploaded),
        "{outcomes:?}"
    );
    let digest = c.push_manifest(&dst, &m.bytes, &m.media_type).unwrap();
    assert!(c.check_read_access(&dst).unwrap());
    let log = reg.access_log()[before..].to_vec();
    assert_eq!(probes(&log), 1, "{log:#?}");
    // HEAD + POST + PUT per blob, the manifest PUT, the read-access HEAD.
    assert_eq!(log.len(), 1 + 3 * uploads.len() + 2, "{log:#?}");
    assert_eq!(digest, m.digest);
    // skopeo sees the same manifest under the new name.
    assert_eq!(reg.skopeo_inspect_raw("probe/dst:v1"), m.bytes);

    // A digest reference is verified against the bytes served.
    let by_digest = dst.with_digest(&m.digest).unwrap();
    assert_eq!(c.pull_manifest(&by_digest).unwrap().bytes, m.bytes);
}

/// With basic auth the registry challenges, so oci-client does the auth flow; its probes are per
/// repository and operation, not per request: pulling a manifest and three blobs probes a bounded number
/// of times, whatever the number of blobs.
#[test]
fn authenticated_registry_probes_are_not_per_request() {
    let reg = Registry::start(RegOpts::plain().basic_auth().access_log());
    let tmp = tempfile::tempdir().unwrap();
    let src = seed(&reg, tmp.path(), "probe/auth", None);
    let before = reg.access_log().len();
    let c = client(&reg);
    let m = c.pull_image_manifest(&src).unwrap().manifest;
    let uploads = fetch_blobs(&c, &src, &m.bytes, tmp.path());
    let log = reg.access_log()[before..].to_vec();
    let requests = log.len() - probes(&log);
    assert_eq!(requests, 1 + uploads.len(), "{log:#?}");
    assert!(probes(&log) <= 2, "{log:#?}");
}
