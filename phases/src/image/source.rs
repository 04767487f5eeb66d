//! The read side of the image abstraction: [`Image`] is a base, run or previous image, in an OCI layout or a
//! registry, seen the same way (checklist IM-01, IM-31).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::layout::{path_for_reference, Layout, LayoutError, Selector};
use super::oci::{Descriptor, ImageConfig, Manifest, Platform};
use super::registry::{ImageRef, RegistryClient};
use super::store::{ImageWriter, SavedImage};
use super::{Digest, ImageError};

/// Where an opened image's blobs are read from: implemented once per store (layout, registry, daemon).
/// A store's writer downcasts through [`Backend::as_any`] to recognise images of its own kind.
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Opens blob `digest` (as stored) for streaming.
    fn open_blob(&self, image: &str, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError>;
    /// A local file holding blob `digest`, if the store keeps one.
    fn blob_path(&self, _digest: &Digest) -> Option<PathBuf> {
        None
    }
    /// The identifier the platform records for the image (IM-30).
    fn identifier(&self, manifest_digest: &Digest, image_id: &Digest) -> String;
    /// For downcasts by writers of the same store.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Blobs of an image in an OCI layout.
#[derive(Debug, Clone)]
pub(crate) struct LayoutBlobs(pub(crate) Layout);

impl Backend for LayoutBlobs {
    fn open_blob(&self, _image: &str, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        let f: File = self.0.open_blob(digest)?;
        Ok(Box::new(f))
    }

    fn blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.0.blob_path(digest)).filter(|p| p.is_file())
    }

    fn identifier(&self, manifest_digest: &Digest, _image_id: &Digest) -> String {
        format!("{}@{manifest_digest}", self.0.path().display())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Blobs of an image in a registry repository.
#[derive(Debug, Clone)]
pub(crate) struct RegistryBlobs {
    pub(crate) client: RegistryClient,
    pub(crate) reference: ImageRef,
}

impl Backend for RegistryBlobs {
    fn open_blob(&self, _image: &str, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        let (client, reference, d) = (self.client.clone(), self.reference.clone(), digest.clone());
        pipe_from_thread(&self.reference.to_string(), digest, move |w| {
            client
                .pull_blob_to(&reference, d.as_str(), w)
                .map(|_| ())
                .map_err(|e| crate::error::chain(&e))
        })
    }

    fn identifier(&self, manifest_digest: &Digest, _image_id: &Digest) -> String {
        format!(
            "{}/{}@{manifest_digest}",
            self.reference.registry(),
            self.reference.repository()
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A layer of an image: its diffID paired with its blob descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// sha256 of the uncompressed tar (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
    /// The blob as the manifest lists it (`layers[i]`).
    pub descriptor: Descriptor,
}

/// An image opened for reading. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Image {
    pub(crate) name: String,
    pub(crate) backend: Arc<dyn Backend>,
    manifest_descriptor: Descriptor,
    manifest_bytes: Arc<Vec<u8>>,
    manifest: Manifest,
    config_bytes: Arc<Vec<u8>>,
    config: ImageConfig,
}

impl Image {
    /// Opens the image `selector` names in the OCI layout at `path` (for an index, the manifest for
    /// `platform`, default this machine's).
    pub fn from_layout(
        path: &Path,
        selector: &Selector,
        platform: Option<&Platform>,
    ) -> Result<Self, ImageError> {
        let layout = Layout::open(path)?;
        let r = layout.resolve(selector, platform)?;
        Ok(Self {
            name: path.display().to_string(),
            backend: Arc::new(LayoutBlobs(layout)),
            manifest_descriptor: r.descriptor,
            manifest_bytes: Arc::new(r.manifest_bytes),
            manifest: r.manifest,
            config_bytes: Arc::new(r.config_bytes),
            config: r.config,
        })
    }

    /// Opens `reference` from a layout root laid out as the platform spec maps references
    /// (`<layout_dir>/<registry>/<repo>/<tag>`); `Ok(None)` when that directory holds no layout.
    pub fn from_layout_dir(layout_dir: &Path, reference: &str) -> Result<Option<Self>, ImageError> {
        let path = path_for_reference(layout_dir, reference)?;
        if !Layout::exists(&path) {
            return Ok(None);
        }
        let layout = Layout::open(&path)?;
        if layout.index()?.manifests.is_empty() {
            return Ok(None);
        }
        Self::from_layout(&path, &Selector::Only, None).map(Some)
    }

    /// Opens `reference` from a registry (for an index, the client's platform is selected).
    pub fn from_registry(
        client: &RegistryClient,
        reference: &ImageRef,
    ) -> Result<Self, ImageError> {
        let resolved = client.pull_image_manifest(reference)?;
        let m = resolved.manifest;
        let digest: Digest = m.digest.parse().map_err(|_| ImageError::Invalid {
            image: reference.to_string(),
            reason: format!("registry returned digest {:?}", m.digest),
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&m.bytes).map_err(|source| ImageError::Json {
                image: reference.to_string(),
                what: format!("manifest {digest}"),
                source,
            })?;
        let config_bytes = client.pull_blob_bytes(reference, manifest.config.digest.as_str())?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Json {
                image: reference.to_string(),
                what: format!("config {}", manifest.config.digest),
                source,
            })?;
        Ok(Self {
            name: reference.to_string(),
            backend: Arc::new(RegistryBlobs {
                client: client.clone(),
                reference: reference.clone(),
            }),
            manifest_descriptor: Descriptor::new(m.media_type, digest, m.bytes.len() as u64),
            manifest_bytes: Arc::new(m.bytes),
            manifest,
            config_bytes: Arc::new(config_bytes),
            config,
        })
    }

    /// An image of another store (a daemon) from its parts: `manifest` lists its layers and names its
    /// configuration by the store's image ID.
    pub(crate) fn from_parts(
        name: String,
        backend: Arc<dyn Backend>,
        manifest: Manifest,
        config: ImageConfig,
    ) -> Result<Self, ImageError> {
        let json = |what: &str, source| ImageError::Json {
            image: name.clone(),
            what: what.to_string(),
            source,
        };
        let manifest_bytes =
            super::oci::canonical_json(&manifest).map_err(|e| json("manifest", e))?;
        let config_bytes = super::oci::canonical_json(&config).map_err(|e| json("config", e))?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| super::oci::DOCKER_MANIFEST.to_string());
        Ok(Self {
            name,
            backend,
            manifest_descriptor: Descriptor::new(
                media_type,
                Digest::sha256_of(&manifest_bytes),
                manifest_bytes.len() as u64,
            ),
            manifest_bytes: Arc::new(manifest_bytes),
            manifest,
            config_bytes: Arc::new(config_bytes),
            config,
        })
    }

    /// A name for logs and errors (layout path or registry reference).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The identifier the platform records: `<layout path>@<digest>` or `<registry>/<repo>@<digest>` (IM-30).
    pub fn identifier(&self) -> String {
        self.backend
            .identifier(self.manifest_digest(), self.image_id())
    }

    /// The layout this image lives in, if it is a layout image.
    pub fn layout(&self) -> Option<&Layout> {
        self.backend
            .as_any()
            .downcast_ref::<LayoutBlobs>()
            .map(|b| &b.0)
    }

    /// The registry reference, if it is a registry image.
    pub fn registry_reference(&self) -> Option<&ImageRef> {
        self.backend
            .as_any()
            .downcast_ref::<RegistryBlobs>()
            .map(|b| &b.reference)
    }

    /// The manifest digest.
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_descriptor.digest
    }

    /// The manifest's media type (OCI or Docker v2).
    pub fn manifest_media_type(&self) -> &str {
        &self.manifest_descriptor.media_type
    }

    /// The manifest bytes exactly as stored.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The configuration bytes exactly as stored.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    /// The parsed configuration.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The image ID: the digest of the configuration.
    pub fn image_id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The platform the configuration declares.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.config.architecture.clone(),
            os: self.config.os.clone(),
            os_version: self.config.os_version.clone(),
            variant: self.config.variant.clone(),
            extra: BTreeMap::new(),
        }
    }

    /// All labels (empty when none).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }

    /// One label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config
            .config
            .as_ref()?
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// The environment as `(name, value)` pairs in config order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .map(|e| {
                e.iter()
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv.clone(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One environment variable.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The diffIDs, base first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }

    /// Layers (diffID + blob descriptor), base first. Fails when the manifest and config disagree.
    pub fn layers(&self) -> Result<Vec<LayerRef>, ImageError> {
        if self.manifest.layers.len() != self.config.rootfs.diff_ids.len() {
            return Err(ImageError::Invalid {
                image: self.name.clone(),
                reason: format!(
                    "manifest lists {} layers but config has {} diff_ids",
                    self.manifest.layers.len(),
                    self.config.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(self
            .config
            .rootfs
            .diff_ids
            .iter()
            .zip(&self.manifest.layers)
            .map(|(d, l)| LayerRef {
                diff_id: d.clone(),
                descriptor: l.clone(),
            })
            .collect())
    }

    /// The layer with this diffID.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Option<LayerRef> {
        let i = self
            .config
            .rootfs
            .diff_ids
            .iter()
            .position(|d| d == diff_id)?;
        Some(LayerRef {
            diff_id: diff_id.clone(),
            descriptor: self.manifest.layers.get(i)?.clone(),
        })
    }

    /// The diffID of the top layer.
    pub fn top_layer(&self) -> Option<&Digest> {
        self.config.rootfs.diff_ids.last()
    }

    /// A local file holding blob `digest` (layout images only; lets a layout destination hard-link it).
    pub fn blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        self.backend.blob_path(digest)
    }

    /// Opens blob `digest` (compressed as stored) for streaming. Registry blobs are streamed through a
    /// pipe from a helper thread; a failed download surfaces as an error from `read`.
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        self.backend.open_blob(&self.name, digest)
    }

    /// Opens the blob of the layer with this diffID.
    pub fn open_layer(&self, diff_id: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        let l = self
            .layer_by_diff_id(diff_id)
            .ok_or_else(|| ImageError::LayerNotFound {
                image: self.name.clone(),
                diff_id: diff_id.clone(),
            })?;
        self.open_blob(&l.descriptor.digest)
    }

    /// Copies blob `digest` into `writer`; returns the bytes copied.
    pub fn copy_blob_to(&self, digest: &Digest, writer: &mut dyn Write) -> Result<u64, ImageError> {
        let mut r = self.open_blob(digest)?;
        io::copy(&mut r, writer).map_err(|source| ImageError::Io {
            image: self.name.clone(),
            what: format!("blob {digest}"),
            source,
        })
    }
}

impl Image {
    /// Saves this image unchanged through `dest` (another name, another store): every layer is made
    /// available there, then the same config and manifest bytes are written, so the digest is the same
    /// (EP-15).
    pub fn save_to(&self, dest: &dyn ImageWriter) -> Result<SavedImage, ImageError> {
        let layers = self.layers()?;
        for l in &layers {
            dest.copy_layer(self, l)?;
        }
        dest.commit(
            &self.config_bytes,
            &self.manifest_bytes,
            self.manifest_media_type(),
            &layers,
        )
    }
}

/// Runs `produce` on a helper thread writing into a pipe and returns the pipe's reading end; the
/// producer's error is reported by `read` at end of stream.
pub(crate) fn pipe_from_thread(
    image: &str,
    digest: &Digest,
    produce: impl FnOnce(&mut File) -> Result<(), String> + Send + 'static,
) -> Result<Box<dyn Read + Send>, ImageError> {
    let (reader, writer) = nix::unistd::pipe().map_err(|e| ImageError::Io {
        image: image.to_string(),
        what: format!("pipe for blob {digest}"),
        source: io::Error::from_raw_os_error(e as i32),
    })?;
    let (reader, mut writer) = (File::from(reader), File::from(writer));
    let handle = std::thread::spawn(move || produce(&mut writer));
    Ok(Box::new(PipeReader {
        reader,
        handle: Some(handle),
    }))
}

/// Reads from the pipe and reports the download thread's error at end of stream.
struct PipeReader {
    reader: File,
    handle: Option<JoinHandle<Result<(), String>>>,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(h) = self.handle.take() {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(io::Error::other(e)),
                    Err(_) => return Err(io::Error::other("blob download thread panicked")),
                }
            }
        }
        Ok(n)
    }
}

impl From<LayoutError> for ImageError {
    fn from(e: LayoutError) -> Self {
        ImageError::Layout(e)
    }
}
