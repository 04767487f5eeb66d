//! `make bench` case `push`: push an OCI layout image with ~1 GiB of layers to a loopback registry with
//! our registry client (parallel streamed uploads) and with `skopeo copy` (the baseline, same run, fresh
//! repository), printing seconds, MB/s, the ratio ours/skopeo and the request counts from the registry's
//! access log.
//!
//! Environment: `BENCH_PUSH_MB` (total layer size, default 1024), `BENCH_PUSH_LAYERS` (default 8),
//! `BENCH_PUSH_AUTH` (`basic` (default) or `none`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cnb_acceptance::registry::{Registry, RegistryOptions as RegOpts};
use cnb_lifecycle::image::registry::{
    sha256_digest, BlobPushOutcome, BlobSource, BlobUpload, ImageRef, Keychain, KeychainSource,
    RegistryClient, RegistryOptions, OCI_MANIFEST,
};
use sha2::{Digest as _, Sha256};

struct HashWriter<W: Write> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Blob {
    digest: String,
    size: u64,
    diff_id: String,
}

/// A gzip layer (stored blocks: random data does not compress) of `bytes` deterministic pseudo-random bytes.
fn write_layer(blobs: &Path, seed: u64, bytes: u64) -> Blob {
    let tmp = blobs.join(format!("tmp-{seed}"));
    let file = fs::File::create(&tmp).unwrap();
    let hw = HashWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        size: 0,
    };
    let mut gz = flate2::write::GzEncoder::new(hw, flate2::Compression::none());
    let mut diff = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        diff.update(&buf[..n]);
        gz.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    let mut hw = gz.finish().unwrap();
    hw.flush().unwrap();
    let digest = format!("sha256:{}", hex::encode(hw.hash.finalize()));
    fs::rename(&tmp, blobs.join(&digest[7..])).unwrap();
    Blob {
        digest,
        size: hw.size,
        diff_id: format!("sha256:{}", hex::encode(diff.finalize())),
    }
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256_digest(bytes);
    fs::write(blobs.join(&digest[7..]), bytes).unwrap();
    (digest, bytes.len() as u64)
}

struct Layout {
    dir: PathBuf,
    config: (String, u64),
    layers: Vec<Blob>,
    manifest: Vec<u8>,
}

fn make_layout(dir: &Path, total_mb: u64, n_layers: u64) -> Layout {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let per = total_mb * 1024 * 1024 / n_layers;
    let layers: Vec<Blob> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n_layers)
            .map(|i| {
                let blobs = &blobs;
                s.spawn(move || write_layer(blobs, i + 1, per))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", l.diff_id))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config = write_blob(&blobs, config.as_bytes());
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}"#,
                l.digest, l.size
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.0,
        config.1,
        layer_descs.join(",")
    );
    let (mdigest, msize) = write_blob(&blobs, manifest.as_bytes());
    fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{mdigest}","size":{msize},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        ),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout {
        dir: dir.to_path_buf(),
        config,
        layers,
        manifest: manifest.into_bytes(),
    }
}

fn push_ours(reg: &Registry, layout: &Layout, repo: &str) -> (f64, Vec<BlobPushOutcome>) {
    let auth = reg
        .basic_auth_header()
        .map(|h| format!(r#"{{"{}": "{h}"}}"#, reg.host()));
    let keychain = Keychain::new(&KeychainSource {
        registry_auth: auth,
        ..Default::default()
    })
    .unwrap();
    let start = Instant::now();
    let client = RegistryClient::new(
        Arc::new(keychain),
        RegistryOptions::default().insecure(&reg.host()),
    )
    .unwrap();
    let image = ImageRef::parse(&reg.image(&format!("{repo}:v1"))).unwrap();
    let blobs = layout.dir.join("blobs/sha256");
    let mut uploads: Vec<BlobUpload> = layout
        .layers
        .iter()
        .map(|l| BlobUpload {
            digest: l.digest.clone(),
            size: l.size,
            source: BlobSource::Path(blobs.join(&l.digest[7..])),
            mount_from: vec![],
        })
        .collect();
    uploads.push(BlobUpload {
        digest: layout.config.0.clone(),
        size: layout.config.1,
        source: BlobSource::Path(blobs.join(&layout.config.0[7..])),
        mount_from: vec![],
    });
    let outcomes = client.push_blobs(&image, &uploads).unwrap();
    client
        .push_manifest(&image, &layout.manifest, OCI_MANIFEST)
        .unwrap();
    (start.elapsed().as_secs_f64(), outcomes)
}

fn push_skopeo(reg: &Registry, layout: &Layout, repo: &str) -> f64 {
    let start = Instant::now();
    reg.skopeo_copy(
        &format!("oci:{}:v1", layout.dir.display()),
        &format!("docker://{}", reg.image(&format!("{repo}:v1"))),
    );
    start.elapsed().as_secs_f64()
}

fn requests_since(reg: &Registry, before: usize) -> (usize, String) {
    let log = reg.access_log();
    let new = &log[before..];
    let mut by_method = std::collections::BTreeMap::<String, usize>::new();
    for line in new {
        let method = line.split_whitespace().next().unwrap_or("?").to_string();
        let key = if line.starts_with("GET /v2/ ") {
            "GET /v2/".to_string()
        } else {
            method
        };
        *by_method.entry(key).or_default() += 1;
    }
    let detail: Vec<String> = by_method.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (new.len(), detail.join(" "))
}

fn main() {
    let total_mb: u64 = std::env::var("BENCH_PUSH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let n_layers: u64 = std::env::var("BENCH_PUSH_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let auth = std::env::var("BENCH_PUSH_AUTH").unwrap_or_else(|_| "basic".into());
    let tmp = tempfile::Builder::new()
        .prefix("bench-push-")
        .tempdir()
        .unwrap();
    let t = Instant::now();
    let layout = make_layout(&tmp.path().join("layout"), total_mb, n_layers);
    let bytes: u64 = layout.layers.iter().map(|l| l.size).sum::<u64>() + layout.config.1;
    let mb = bytes as f64 / 1e6;
    println!(
        "push: layout with {n_layers} layers, {mb:.0} MB of blobs, generated in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let mut opts = RegOpts::plain().access_log();
    if auth == "basic" {
        opts = opts.basic_auth();
    }
    let reg = Registry::start(opts);
    println!(
        "push: registry {} (auth: {auth}), storage in {}",
        reg.host(),
        reg.storage_dir().display()
    );

    // Baseline first, to a fresh repository; then ours to another fresh repository.
    let before = reg.access_log().len();
    let skopeo_s = push_skopeo(&reg, &layout, "bench/skopeo");
    let (skopeo_reqs, skopeo_detail) = requests_since(&reg, before);
    let before = reg.access_log().len();
    let (ours_s, outcomes) = push_ours(&reg, &layout, "bench/ours");
    let (ours_reqs, ours_detail) = requests_since(&reg, before);
    assert!(
        outcomes.iter().all(|o| *o == BlobPushOutcome::Uploaded),
        "{outcomes:?}"
    );
    assert_eq!(
        reg.skopeo_inspect_raw("bench/ours:v1"),
        reg.skopeo_inspect_raw("bench/skopeo:v1")
    );

    // Pushing again: every blob is already there.
    let before = reg.access_log().len();
    let (again_s, outcomes) = push_ours(&reg, &layout, "bench/ours");
    let (again_reqs, again_detail) = requests_since(&reg, before);
    assert!(
        outcomes.iter().all(|o| *o == BlobPushOutcome::Exists),
        "{outcomes:?}"
    );

    println!("push: skopeo copy     {skopeo_s:7.2}s {:8.1} MB/s  requests {skopeo_reqs:3} ({skopeo_detail})", mb / skopeo_s);
    println!(
        "push: ours            {ours_s:7.2}s {:8.1} MB/s  requests {ours_reqs:3} ({ours_detail})",
        mb / ours_s
    );
    println!(
        "push: ours (re-push)  {again_s:7.2}s {:>8}       requests {again_reqs:3} ({again_detail})",
        "-"
    );
    println!(
        "push: ratio ours/skopeo throughput {:.2}x (time {:.2}x)",
        skopeo_s / ours_s,
        ours_s / skopeo_s
    );
}
