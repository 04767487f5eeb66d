//! Reading the image being extended from an OCI layout and writing the extended run image
//! (checklist EX-05, EX-07): `<extended>/run/<manifest digest>/` is an OCI layout holding the new
//! manifest and config plus only the extension layers' blobs (base layers referenced, not copied).
//!
//! Configs and manifests are handled as JSON values so that Docker v2 media types and unknown fields
//! of the base survive. TODO(integration): move onto `image::layout` once it lands in main.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::apply::{ImageState, Outcome};

/// Failures reading or writing images.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document is malformed or lacks a field.
    #[error("{path}: {message}")]
    Format {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_json(path: &Path) -> Result<Value, OciError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| OciError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(alg).join(hex)
}

/// An image read from an OCI layout.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The layout directory.
    pub layout: PathBuf,
    /// Manifest digest.
    pub digest: String,
    /// Manifest JSON.
    pub manifest: Value,
    /// Config JSON.
    pub config: Value,
}

impl BaseImage {
    /// Reads the image whose manifest digest is `digest` (or the first manifest) from `layout`.
    pub fn read(layout: &Path, digest: Option<&str>) -> Result<Self, OciError> {
        let index_path = layout.join("index.json");
        let index = read_json(&index_path)?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let desc = manifests
            .iter()
            .find(|m| digest.is_none_or(|d| m["digest"].as_str() == Some(d)))
            .ok_or_else(|| OciError::Format {
                path: index_path.clone(),
                message: match digest {
                    Some(d) => format!("no manifest {d}"),
                    None => "no manifests".into(),
                },
            })?;
        let mdigest = desc["digest"].as_str().unwrap_or_default().to_string();
        let mut manifest = read_json(&blob_path(layout, &mdigest))?;
        if manifest.get("manifests").is_some() {
            // An image index: take the linux/amd64 (or first) entry.
            let inner = manifest["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let pick = inner
                .iter()
                .find(|m| m["platform"]["architecture"] == "amd64")
                .or_else(|| inner.first())
                .cloned()
                .unwrap_or(Value::Null);
            let d = pick["digest"].as_str().unwrap_or_default().to_string();
            manifest = read_json(&blob_path(layout, &d))?;
            return Self::finish(layout, d, manifest);
        }
        Self::finish(layout, mdigest, manifest)
    }

    fn finish(layout: &Path, digest: String, manifest: Value) -> Result<Self, OciError> {
        let cdigest = manifest["config"]["digest"].as_str().unwrap_or_default();
        let config = read_json(&blob_path(layout, cdigest))?;
        Ok(BaseImage {
            layout: layout.to_path_buf(),
            digest,
            manifest,
            config,
        })
    }

    /// The config fields Dockerfile steps change.
    pub fn state(&self) -> ImageState {
        let c = &self.config["config"];
        ImageState {
            env: c["Env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            user: c["User"].as_str().unwrap_or_default().to_string(),
            workdir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
            labels: c["Labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            shell: Vec::new(),
        }
    }

    /// Paths of the layer blobs in order (they must be present in the layout).
    pub fn layer_paths(&self) -> Vec<PathBuf> {
        self.manifest["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| blob_path(&self.layout, l["digest"].as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String, OciError> {
    let hex = hex::encode(Sha256::digest(bytes));
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(&hex);
    std::fs::write(&path, bytes).map_err(io_err(&path))?;
    Ok(format!("sha256:{hex}"))
}

/// Writes the extended run image as a sparse OCI layout under `<extended>/run/<manifest digest>/`
/// (built in a temp dir, then renamed: nothing half-written). `blobs_dir` holds the new layers.
pub fn write_extended_run(
    extended_dir: &Path,
    base: &BaseImage,
    outcome: &Outcome,
    blobs_dir: &Path,
) -> Result<PathBuf, OciError> {
    let run_dir = extended_dir.join("run");
    std::fs::create_dir_all(&run_dir).map_err(io_err(&run_dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-extended-")
        .tempdir_in(&run_dir)
        .map_err(io_err(&run_dir))?;
    let layout = tmp.path();

    let docker = base.manifest["mediaType"]
        .as_str()
        .is_some_and(|m| m.contains("docker"));
    let layer_type = if docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    let mut config = base.config.clone();
    let mut layers = base.manifest["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for l in &outcome.layers {
        let hex = l.blob.digest.trim_start_matches("sha256:");
        let src = blobs_dir.join(hex);
        let dst_dir = layout.join("blobs/sha256");
        std::fs::create_dir_all(&dst_dir).map_err(io_err(&dst_dir))?;
        let dst = dst_dir.join(hex);
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(io_err(&src))?;
        }
        layers.push(json!({"mediaType": layer_type, "digest": l.blob.digest, "size": l.blob.size}));
        diff_ids.push(json!(l.blob.diff_id));
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    for h in &outcome.history {
        let mut e = json!({"created": "1970-01-01T00:00:00Z", "created_by": h.created_by});
        if h.empty_layer {
            e["empty_layer"] = json!(true);
        }
        history.push(e);
    }
    config["history"] = json!(history);
    config["created"] = json!("1970-01-01T00:00:00Z");
    let c = &mut config["config"];
    if !c.is_object() {
        *c = json!({});
    }
    c["Env"] = json!(outcome.state.env);
    c["User"] = json!(outcome.state.user);
    if !outcome.state.workdir.is_empty() {
        c["WorkingDir"] = json!(outcome.state.workdir);
    }
    let mut labels = outcome.state.labels.clone();
    labels.insert(
        "io.buildpacks.rebasable".into(),
        outcome.rebasable.to_string(),
    );
    c["Labels"] = json!(labels);

    let config_bytes = serde_json::to_vec(&config).map_err(|e| OciError::Format {
        path: layout.to_path_buf(),
        message: e.to_string(),
    })?;
    let config_digest = write_blob(layout, &config_bytes)?;
    let mut manifest = base.manifest.clone();
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_bytes.len());
    manifest["layers"] = json!(layers);
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| OciError::Format {
        path: layout.to_path_buf(),
        message: e.to_string(),
    })?;
    let manifest_digest = write_blob(layout, &manifest_bytes)?;
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": media_type,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "extended"}
        }]
    });
    let index_path = layout.join("index.json");
    std::fs::write(&index_path, index.to_string()).map_err(io_err(&index_path))?;
    let marker = layout.join("oci-layout");
    std::fs::write(&marker, r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&marker))?;

    let dest = run_dir.join(&manifest_digest);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(io_err(&dest))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &dest).map_err(io_err(&dest))?;
    Ok(dest)
}

/// Opens a layer blob, detecting gzip / zstd / plain tar by its magic bytes.
pub fn open_layer(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let r = std::io::BufReader::new(head.chain(f));
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(r)?)
    } else {
        Box::new(r)
    })
}

/// Copies an image from a registry into an OCI layout at `dir` (manifest + config, and the layers
/// when `with_layers`), as the restorer does for the extender (`<kaniko>/cache/base/<digest>`).
/// Returns the manifest digest. Blobs already present are not fetched again.
pub fn fetch_to_layout(
    client: &crate::image::registry::RegistryClient,
    image: &crate::image::registry::ImageRef,
    dir: &Path,
    with_layers: bool,
) -> Result<String, OciError> {
    let fmt = |message: String| OciError::Format {
        path: dir.to_path_buf(),
        message,
    };
    let resolved = client
        .pull_image_manifest(image)
        .map_err(|e| fmt(format!("pulling {image}: {e}")))?;
    let m = resolved.manifest;
    let manifest: Value = serde_json::from_slice(&m.bytes).map_err(|e| fmt(e.to_string()))?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut wanted = vec![manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()];
    if with_layers {
        for l in manifest["layers"].as_array().cloned().unwrap_or_default() {
            wanted.push(l["digest"].as_str().unwrap_or_default().to_string());
        }
    }
    for d in wanted {
        let dest = blob_path(dir, &d);
        if dest.exists() {
            continue;
        }
        let tmp = tempfile::NamedTempFile::new_in(&blobs).map_err(io_err(&blobs))?;
        let mut w = std::io::BufWriter::new(tmp.reopen().map_err(io_err(tmp.path()))?);
        client
            .pull_blob_to(image, &d, &mut w)
            .map_err(|e| fmt(format!("pulling {d} of {image}: {e}")))?;
        std::io::Write::flush(&mut w).map_err(io_err(&dest))?;
        drop(w);
        tmp.persist(&dest).map_err(|e| OciError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
    }
    let mpath = blob_path(dir, &m.digest);
    std::fs::write(&mpath, &m.bytes).map_err(io_err(&mpath))?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len()}]
    });
    let ipath = dir.join("index.json");
    std::fs::write(&ipath, index.to_string()).map_err(io_err(&ipath))?;
    let marker = dir.join("oci-layout");
    std::fs::write(&marker, r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&marker))?;
    Ok(m.digest)
}
