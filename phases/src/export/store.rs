//! The image seams the exporter, analyzer, restorer and rebaser use: [`SourceImage`] (read a run or
//! previous image) and [`Destination`] (write blobs, config and manifest), with an OCI image layout
//! implementation ([`LayoutImage`], [`LayoutDestination`]; checklist IM-30, IM-31).
//!
//! TODO(integration): implement these traits over the image helper's `image::layout` and the registry
//! facade once they are in main, and drop the interim layout code here.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use serde_json::json;

use crate::analyze::run_image::{normalized_name, registry_of};

/// OCI manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Tag annotation in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A compressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type as the source image declares it.
    pub media_type: String,
}

/// A layer of an image: its diffID and blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// The blob.
    pub blob: BlobRef,
}

/// Image store errors. Each names the image or path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem error.
    #[error("'{}'", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Malformed image.
    #[error("image '{image}' is invalid: {reason}")]
    Invalid {
        /// Image.
        image: String,
        /// Reason.
        reason: String,
    },
    /// A layer the exporter wants to reuse is not in the image.
    #[error("layer with diffID '{diff_id}' not found in image '{image}'")]
    LayerNotFound {
        /// Image.
        image: String,
        /// DiffID.
        diff_id: String,
    },
    /// The operation is not supported by this store.
    #[error("{0}")]
    Unsupported(String),
}

impl StoreError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An image the phases read: run image, previous image, extended run image.
pub trait SourceImage: Send + Sync {
    /// Name for logs.
    fn name(&self) -> String;
    /// Identifier recorded in metadata (`<repo>@sha256:…` or `<layout path>@sha256:…`).
    fn identifier(&self) -> String;
    /// The config.
    fn config(&self) -> &ImageConfiguration;
    /// The manifest digest.
    fn manifest_digest(&self) -> String;
    /// Layers in order (manifest layers zipped with `rootfs.diff_ids`).
    fn layers(&self) -> &[ImageLayer];
    /// Opens a blob for reading (compressed as stored).
    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send + '_>, StoreError>;
    /// A local file holding the blob, if any (lets a layout destination hard-link instead of copy).
    fn blob_path(&self, digest: &str) -> Option<PathBuf>;
    /// The registry reference, for registry images (lets a registry destination mount blobs).
    fn registry_ref(&self) -> Option<String> {
        None
    }
    /// A config label.
    fn label(&self, key: &str) -> Option<String> {
        self.config()
            .config()
            .as_ref()
            .and_then(|c| c.labels().as_ref())
            .and_then(|l| l.get(key).cloned())
    }
    /// The layer with this diffID.
    fn layer_by_diff_id(&self, diff_id: &str) -> Option<&ImageLayer> {
        self.layers().iter().find(|l| l.diff_id == diff_id)
    }
}

/// Where an image is written.
pub trait Destination: Send + Sync {
    /// Name for logs.
    fn name(&self) -> String;
    /// Whether the destination already holds this blob.
    fn has_blob(&self, digest: &str) -> Result<bool, StoreError>;
    /// Makes `blob` of `src` available in the destination (nothing when already there).
    fn copy_blob(&self, src: &dyn SourceImage, blob: &BlobRef) -> Result<(), StoreError>;
    /// Moves a freshly built blob file into the destination.
    fn put_blob_file(&self, path: &Path, blob: &BlobRef) -> Result<(), StoreError>;
    /// Writes config and manifest and tags it; returns the manifest digest and size.
    fn put_image(&self, config: &[u8], manifest: &[u8]) -> Result<(String, u64), StoreError>;
    /// A temp dir on the destination's filesystem for building blobs.
    fn scratch_dir(&self) -> PathBuf;
    /// Layer blobs written so far (new bytes only; for tests and benchmarks).
    fn blob_writes(&self) -> (u64, u64);
}

/// `sha256:<hex>` → `<dir>/blobs/sha256/<hex>`.
fn blob_file(dir: &Path, digest: &str) -> Result<PathBuf, StoreError> {
    let (alg, hexpart) = digest.split_once(':').ok_or_else(|| StoreError::Invalid {
        image: dir.display().to_string(),
        reason: format!("bad digest '{digest}'"),
    })?;
    if alg.is_empty() || hexpart.is_empty() || !hexpart.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(StoreError::Invalid {
            image: dir.display().to_string(),
            reason: format!("bad digest '{digest}'"),
        });
    }
    Ok(dir.join("blobs").join(alg).join(hexpart))
}

/// Maps an image reference to its layout directory (IM-30):
/// `<layout-dir>/<registry>/<repository>/<tag>` or `…/<repository>/<algorithm>/<hex>`.
pub fn layout_path(layout_dir: &Path, reference: &str) -> PathBuf {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let full = normalized_name(name);
    let registry = registry_of(name);
    let rest = full.strip_prefix(&format!("{registry}/")).unwrap_or(&full);
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (rest, "latest"),
    };
    let mut p = layout_dir.join(&registry).join(repo);
    match digest.and_then(|d| d.split_once(':')) {
        Some((alg, hex)) => {
            p.push(alg);
            p.push(hex);
        }
        None => p.push(tag),
    }
    p
}

/// An image read from an OCI image layout directory (OCI or Docker media types, tag optional).
#[derive(Debug)]
pub struct LayoutImage {
    dir: PathBuf,
    manifest_digest: String,
    config: ImageConfiguration,
    layers: Vec<ImageLayer>,
}

impl LayoutImage {
    /// Opens the image in `dir`: `Ok(None)` when there is no layout or it has no manifest (a new
    /// image); an error when it is malformed.
    pub fn open(dir: &Path) -> Result<Option<Self>, StoreError> {
        let index_path = dir.join("index.json");
        let text = match fs::read_to_string(&index_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&index_path, e)),
        };
        let invalid = |reason: String| StoreError::Invalid {
            image: dir.display().to_string(),
            reason,
        };
        let index: ImageIndex =
            serde_json::from_str(&text).map_err(|e| invalid(format!("index.json: {e}")))?;
        let Some(desc) = index.manifests().first() else {
            return Ok(None);
        };
        let manifest_digest = desc.digest().to_string();
        let mbytes = fs::read(blob_file(dir, &manifest_digest)?)
            .map_err(|e| invalid(format!("manifest {manifest_digest}: {e}")))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&mbytes).map_err(|e| invalid(format!("manifest: {e}")))?;
        let cdigest = manifest.config().digest().to_string();
        let cbytes = fs::read(blob_file(dir, &cdigest)?)
            .map_err(|e| invalid(format!("config {cdigest}: {e}")))?;
        let config: ImageConfiguration =
            serde_json::from_slice(&cbytes).map_err(|e| invalid(format!("config: {e}")))?;
        let layers = pair_layers(&manifest, &config).map_err(invalid)?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            manifest_digest,
            config,
            layers,
        }))
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl SourceImage for LayoutImage {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn identifier(&self) -> String {
        format!("{}@{}", self.dir.display(), self.manifest_digest)
    }

    fn config(&self) -> &ImageConfiguration {
        &self.config
    }

    fn manifest_digest(&self) -> String {
        self.manifest_digest.clone()
    }

    fn layers(&self) -> &[ImageLayer] {
        &self.layers
    }

    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let p = blob_file(&self.dir, digest)?;
        let f = File::open(&p).map_err(|e| StoreError::io(&p, e))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        blob_file(&self.dir, digest).ok().filter(|p| p.is_file())
    }
}

/// Writes an image into an OCI layout directory, tagged with `org.opencontainers.image.ref.name`.
#[derive(Debug)]
pub struct LayoutDestination {
    dir: PathBuf,
    tag: String,
    blobs_written: AtomicU64,
    bytes_written: AtomicU64,
}

impl LayoutDestination {
    /// A destination at `dir` whose index entry is annotated with `tag`.
    pub fn create(dir: &Path, tag: &str) -> Result<Self, StoreError> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| StoreError::io(&blobs, e))?;
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
            blobs_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let p = blob_file(&self.dir, digest)?;
        if !p.exists() {
            write_atomic(&p, bytes)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temp file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| StoreError::io(parent, e))?;
    tmp.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Destination for LayoutDestination {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn has_blob(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(blob_file(&self.dir, digest)?.is_file())
    }

    fn copy_blob(&self, src: &dyn SourceImage, blob: &BlobRef) -> Result<(), StoreError> {
        let dst = blob_file(&self.dir, &blob.digest)?;
        if dst.is_file() {
            return Ok(());
        }
        if let Some(p) = src.blob_path(&blob.digest) {
            if fs::hard_link(&p, &dst).is_ok() {
                return Ok(());
            }
        }
        let tmp_dir = self.scratch_dir();
        let mut tmp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| StoreError::io(&tmp_dir, e))?;
        let mut r = src.open_blob(&blob.digest)?;
        let n = io::copy(&mut r, &mut tmp).map_err(|e| StoreError::io(&dst, e))?;
        tmp.persist(&dst)
            .map_err(|e| StoreError::io(&dst, e.error))?;
        self.blobs_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn put_blob_file(&self, path: &Path, blob: &BlobRef) -> Result<(), StoreError> {
        let dst = blob_file(&self.dir, &blob.digest)?;
        if dst.is_file() {
            let _ = fs::remove_file(path);
            return Ok(());
        }
        fs::rename(path, &dst)
            .or_else(|_| fs::copy(path, &dst).map(|_| ()))
            .map_err(|e| StoreError::io(&dst, e))?;
        self.blobs_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(blob.size, Ordering::Relaxed);
        Ok(())
    }

    fn put_image(&self, config: &[u8], manifest: &[u8]) -> Result<(String, u64), StoreError> {
        self.put_bytes(&sha256_hex(config), config)?;
        let digest = sha256_hex(manifest);
        self.put_bytes(&digest, manifest)?;
        let mut annotations = BTreeMap::new();
        annotations.insert(REF_NAME, self.tag.as_str());
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": manifest.len(),
                "annotations": annotations,
            }],
        });
        let bytes = serde_json::to_vec(&index).map_err(|e| StoreError::Invalid {
            image: self.name(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.dir.join("index.json"), &bytes)?;
        Ok((digest, manifest.len() as u64))
    }

    fn scratch_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn blob_writes(&self) -> (u64, u64) {
        (
            self.blobs_written.load(Ordering::Relaxed),
            self.bytes_written.load(Ordering::Relaxed),
        )
    }
}

/// Builds an OCI manifest for a config and layers (docker layer media types are mapped to OCI ones;
/// the blob bytes are unchanged).
pub fn manifest_bytes(config: &[u8], layers: &[BlobRef]) -> Result<Vec<u8>, serde_json::Error> {
    let layers: Vec<_> = layers
        .iter()
        .map(|b| {
            json!({
                "mediaType": oci_layer_media_type(&b.media_type),
                "digest": b.digest,
                "size": b.size,
            })
        })
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_hex(config), "size": config.len()},
        "layers": layers,
    });
    serde_json::to_vec(&m)
}

fn oci_layer_media_type(mt: &str) -> &str {
    match mt {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

/// Pairs a manifest's layer blobs with the config's diffIDs (same order, same count), as both the layout
/// and the registry sources read them.
pub(crate) fn pair_layers(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Vec<ImageLayer>, String> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err("manifest layers and config diff_ids differ in number".into());
    }
    Ok(manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| ImageLayer {
            diff_id: diff_id.clone(),
            blob: BlobRef {
                digest: d.digest().to_string(),
                size: d.size(),
                media_type: d.media_type().to_string(),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn im30_layout_paths() {
        let d = Path::new("/l");
        assert_eq!(
            layout_path(d, "busybox"),
            Path::new("/l/index.docker.io/library/busybox/latest")
        );
        assert_eq!(
            layout_path(d, "127.0.0.1:5000/app:v2"),
            Path::new("/l/127.0.0.1:5000/app/v2")
        );
        assert_eq!(
            layout_path(d, "reg.io/a/b@sha256:abc"),
            Path::new("/l/reg.io/a/b/sha256/abc")
        );
    }

    #[test]
    fn im31_write_then_read_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let dest = LayoutDestination::create(t.path(), "latest").unwrap();
        let blob = t.path().join("blobs/sha256/tmpblob");
        fs::write(&blob, b"layerbytes").unwrap();
        let b = BlobRef {
            digest: sha256_hex(b"layerbytes"),
            size: 10,
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
        };
        dest.put_blob_file(&blob, &b).unwrap();
        let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:d"]}}"#;
        let m = manifest_bytes(cfg, std::slice::from_ref(&b)).unwrap();
        let (digest, size) = dest.put_image(cfg, &m).unwrap();
        assert_eq!(size, m.len() as u64);
        assert_eq!(dest.blob_writes(), (1, 10));
        let img = LayoutImage::open(t.path()).unwrap().unwrap();
        assert_eq!(img.manifest_digest(), digest);
        assert_eq!(img.layers()[0].diff_id, "sha256:d");
        assert_eq!(
            img.layers()[0].blob.media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(img.identifier().ends_with(&format!("@{digest}")));
        assert!(LayoutImage::open(&t.path().join("none")).unwrap().is_none());
    }
}
