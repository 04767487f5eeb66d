//! The image seams the exporter, analyzer, restorer and rebaser use: [`SourceImage`] (read a run or
//! previous image) and [`Destination`] (write blobs, config and manifest), with an OCI image layout
//! implementation ([`LayoutImage`], [`LayoutDestination`]; checklist IM-30, IM-31) built on the shared
//! [`crate::image::Image`] (reading: index, platform selection, manifest and config digests verified) and
//! [`crate::image::layout::Layout`] (blob store, `index.json`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::ImageConfiguration;
use serde_json::json;

use crate::analyze::run_image::{normalized_name, registry_of};
use crate::image::layout::{Layout, Selector, WriteStats};
use crate::image::oci::{Descriptor, Index};
use crate::image::{Digest, Image, ImageError};

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

fn parse_digest(image: &str, digest: &str) -> Result<Digest, StoreError> {
    digest.parse().map_err(|_| StoreError::Invalid {
        image: image.to_string(),
        reason: format!("bad digest '{digest}'"),
    })
}

fn image_err(image: &str, e: &ImageError) -> StoreError {
    StoreError::Invalid {
        image: image.to_string(),
        reason: crate::error::chain(e),
    }
}

/// The config (as `oci_spec` parses it) and layers of an opened image.
fn read_image(image: &Image) -> Result<(ImageConfiguration, Vec<ImageLayer>), StoreError> {
    let name = image.name().to_string();
    let config: ImageConfiguration =
        serde_json::from_slice(image.config_bytes()).map_err(|e| StoreError::Invalid {
            image: name.clone(),
            reason: format!("config: {e}"),
        })?;
    let layers = image
        .layers()
        .map_err(|e| image_err(&name, &e))?
        .into_iter()
        .map(|l| ImageLayer {
            diff_id: l.diff_id.to_string(),
            blob: BlobRef {
                digest: l.descriptor.digest.to_string(),
                size: l.descriptor.size,
                media_type: l.descriptor.media_type,
            },
        })
        .collect();
    Ok((config, layers))
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

/// An image opened through the shared [`Image`] (from a layout or a registry; for an index, this machine's
/// platform), seen through the [`SourceImage`] seam.
#[derive(Debug)]
pub struct OpenedImage {
    image: Image,
    name: String,
    identifier: String,
    registry_ref: Option<String>,
    config: ImageConfiguration,
    layers: Vec<ImageLayer>,
}

/// An image read from an OCI image layout directory (OCI or Docker media types, tag optional).
pub type LayoutImage = OpenedImage;

impl OpenedImage {
    /// Wraps `image`: `name` for logs, `identifier_base@<manifest digest>` as its identifier.
    pub(crate) fn new(
        image: Image,
        name: String,
        identifier_base: &str,
        registry_ref: Option<String>,
    ) -> Result<Self, StoreError> {
        let (config, layers) = read_image(&image)?;
        let identifier = format!("{identifier_base}@{}", image.manifest_digest());
        Ok(Self {
            image,
            name,
            identifier,
            registry_ref,
            config,
            layers,
        })
    }

    /// Opens the first image listed in the layout `dir`'s `index.json`: `Ok(None)` when there is no
    /// layout or it lists no manifest (a new image); an error when it is malformed.
    pub fn open(dir: &Path) -> Result<Option<Self>, StoreError> {
        if !dir.join("index.json").is_file() {
            return Ok(None);
        }
        let name = dir.display().to_string();
        let layout = Layout::open(dir).map_err(|e| image_err(&name, &ImageError::from(e)))?;
        let index = layout
            .index()
            .map_err(|e| image_err(&name, &ImageError::from(e)))?;
        let Some(first) = index.manifests.first() else {
            return Ok(None);
        };
        let image = Image::from_layout(dir, &Selector::Digest(first.digest.clone()), None)
            .map_err(|e| image_err(&name, &e))?;
        Self::new(image, name.clone(), &name, None).map(Some)
    }
}

impl SourceImage for OpenedImage {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn identifier(&self) -> String {
        self.identifier.clone()
    }

    fn config(&self) -> &ImageConfiguration {
        &self.config
    }

    fn manifest_digest(&self) -> String {
        self.image.manifest_digest().to_string()
    }

    fn layers(&self) -> &[ImageLayer] {
        &self.layers
    }

    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let d = parse_digest(&self.name, digest)?;
        self.image
            .open_blob(&d)
            .map_err(|e| image_err(&self.name, &e))
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        self.image.blob_path(&digest.parse().ok()?)
    }

    fn registry_ref(&self) -> Option<String> {
        self.registry_ref.clone()
    }
}

/// Writes an image into an OCI layout directory, tagged with `org.opencontainers.image.ref.name`; its
/// `index.json` then lists only that image.
#[derive(Debug)]
pub struct LayoutDestination {
    layout: Layout,
    tag: String,
    blobs_written: AtomicU64,
    bytes_written: AtomicU64,
}

impl LayoutDestination {
    /// A destination at `dir` whose index entry is annotated with `tag`.
    pub fn create(dir: &Path, tag: &str) -> Result<Self, StoreError> {
        let layout = Layout::create(dir)
            .map_err(|e| image_err(&dir.display().to_string(), &ImageError::from(e)))?;
        Ok(Self {
            layout,
            tag: tag.to_string(),
            blobs_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        self.layout.path()
    }

    fn layout_err(&self, e: crate::image::layout::LayoutError) -> StoreError {
        image_err(&self.name(), &ImageError::from(e))
    }

    fn digest(&self, digest: &str) -> Result<Digest, StoreError> {
        parse_digest(&self.name(), digest)
    }

    fn count(&self, stats: WriteStats) {
        self.blobs_written
            .fetch_add(stats.blobs_written, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(stats.bytes_written, Ordering::Relaxed);
    }
}

/// Writes `bytes` to `path` through a temp file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = cnb_spec::io::AtomicFile::create(path, cnb_spec::io::FILE_MODE)
        .map_err(|e| StoreError::io(path, e))?
        .durable();
    f.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    f.commit().map_err(|e| StoreError::io(path, e))
}

impl Destination for LayoutDestination {
    fn name(&self) -> String {
        self.dir().display().to_string()
    }

    fn has_blob(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self.layout.has_blob(&self.digest(digest)?))
    }

    fn copy_blob(&self, src: &dyn SourceImage, blob: &BlobRef) -> Result<(), StoreError> {
        let digest = self.digest(&blob.digest)?;
        let dst = self.layout.blob_path(&digest);
        if dst.is_file() {
            return Ok(());
        }
        if let Some(p) = src.blob_path(&blob.digest) {
            if fs::hard_link(&p, &dst).is_ok() {
                return Ok(());
            }
        }
        let r = src.open_blob(&blob.digest)?;
        let (_, stats) = self
            .layout
            .write_blob_from(r, Some(&digest))
            .map_err(|e| self.layout_err(e))?;
        self.count(stats);
        Ok(())
    }

    fn put_blob_file(&self, path: &Path, blob: &BlobRef) -> Result<(), StoreError> {
        let dst = self.layout.blob_path(&self.digest(&blob.digest)?);
        if dst.is_file() {
            let _ = fs::remove_file(path);
            return Ok(());
        }
        fs::rename(path, &dst)
            .or_else(|_| fs::copy(path, &dst).map(|_| ()))
            .map_err(|e| StoreError::io(&dst, e))?;
        self.count(WriteStats {
            blobs_written: 1,
            bytes_written: blob.size,
            blobs_reused: 0,
        });
        Ok(())
    }

    fn put_image(&self, config: &[u8], manifest: &[u8]) -> Result<(String, u64), StoreError> {
        self.layout
            .write_blob(config)
            .map_err(|e| self.layout_err(e))?;
        let (digest, _) = self
            .layout
            .write_blob(manifest)
            .map_err(|e| self.layout_err(e))?;
        let mut desc = Descriptor::new(OCI_MANIFEST, digest.clone(), manifest.len() as u64);
        desc.annotations = Some(BTreeMap::from([(REF_NAME.to_string(), self.tag.clone())]));
        let index = Index {
            media_type: None,
            manifests: vec![desc],
            ..Index::default()
        };
        self.layout
            .write_index(&index)
            .map_err(|e| self.layout_err(e))?;
        Ok((digest.to_string(), manifest.len() as u64))
    }

    fn scratch_dir(&self) -> PathBuf {
        self.layout.blob_dir()
    }

    fn blob_writes(&self) -> (u64, u64) {
        (
            self.blobs_written.load(Ordering::Relaxed),
            self.bytes_written.load(Ordering::Relaxed),
        )
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
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
        let diff_id = sha256_hex(b"tar");
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let cfg = cfg.as_bytes();
        let m = manifest_bytes(cfg, std::slice::from_ref(&b)).unwrap();
        let (digest, size) = dest.put_image(cfg, &m).unwrap();
        assert_eq!(size, m.len() as u64);
        assert_eq!(dest.blob_writes(), (1, 10));
        let img = LayoutImage::open(t.path()).unwrap().unwrap();
        assert_eq!(img.manifest_digest(), digest);
        assert_eq!(img.layers()[0].diff_id, diff_id);
        assert_eq!(
            img.layers()[0].blob.media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(img.identifier().ends_with(&format!("@{digest}")));
        assert!(LayoutImage::open(&t.path().join("none")).unwrap().is_none());
    }
}
