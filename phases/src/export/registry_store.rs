//! Registry images behind the [`SourceImage`] and [`Destination`] seams, over the sync registry facade
//! (checklist IM-20, AN-04, AN-07). Reused layers are never re-uploaded: a blob the repository has is
//! skipped, a blob of another repository on the same registry is mounted, only new blobs are uploaded.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::store::{
    pair_layers, BlobRef, Destination, ImageLayer, SourceImage, StoreError, OCI_MANIFEST,
};
use crate::image::registry::{
    BlobPushOutcome, BlobSource, BlobUpload, ImageRef, RegistryClient, RegistryError,
};

fn reg_err(image: &str, e: RegistryError) -> StoreError {
    StoreError::Invalid {
        image: image.to_string(),
        reason: crate::error::chain(&e),
    }
}

/// An image in a registry.
pub struct RegistryImage {
    client: RegistryClient,
    image: ImageRef,
    manifest_digest: String,
    config: ImageConfiguration,
    layers: Vec<ImageLayer>,
}

impl RegistryImage {
    /// Reads manifest and config of `reference`; `Ok(None)` when it does not exist.
    pub fn open(client: &RegistryClient, reference: &str) -> Result<Option<Self>, StoreError> {
        let image = ImageRef::parse(reference).map_err(|e| reg_err(reference, e))?;
        let resolved = match client.pull_image_manifest(&image) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(reg_err(reference, e)),
        };
        let invalid = |reason: String| StoreError::Invalid {
            image: reference.to_string(),
            reason,
        };
        let manifest: ImageManifest = serde_json::from_slice(&resolved.manifest.bytes)
            .map_err(|e| invalid(format!("manifest: {e}")))?;
        let cfg_bytes = client
            .pull_blob_bytes(&image, manifest.config().digest().as_ref())
            .map_err(|e| reg_err(reference, e))?;
        let config: ImageConfiguration =
            serde_json::from_slice(&cfg_bytes).map_err(|e| invalid(format!("config: {e}")))?;
        let layers = pair_layers(&manifest, &config).map_err(invalid)?;
        Ok(Some(Self {
            client: client.clone(),
            image,
            manifest_digest: resolved.manifest.digest,
            config,
            layers,
        }))
    }
}

impl SourceImage for RegistryImage {
    fn name(&self) -> String {
        self.image.to_string()
    }

    fn identifier(&self) -> String {
        format!("{}@{}", self.image.name(), self.manifest_digest)
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
        // Spool to an unnamed temp file: the facade writes into a `Write`.
        let mut f =
            tempfile::tempfile().map_err(|e| StoreError::Unsupported(format!("temp file: {e}")))?;
        self.client
            .pull_blob_to(&self.image, digest, &mut f)
            .map_err(|e| reg_err(&self.name(), e))?;
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(0))
            .map_err(|e| StoreError::Unsupported(format!("temp file: {e}")))?;
        Ok(Box::new(io::BufReader::new(f)))
    }

    fn blob_path(&self, _digest: &str) -> Option<PathBuf> {
        None
    }

    fn registry_ref(&self) -> Option<String> {
        Some(self.image.to_string())
    }
}

/// Writes an image to a registry repository under one tag.
pub struct RegistryDestination {
    client: RegistryClient,
    image: ImageRef,
    scratch: tempfile::TempDir,
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
}

impl RegistryDestination {
    /// A destination for `reference` (its tag is set by the manifest push).
    pub fn new(client: &RegistryClient, reference: &str) -> Result<Self, StoreError> {
        let image = ImageRef::parse(reference).map_err(|e| reg_err(reference, e))?;
        let scratch = tempfile::Builder::new()
            .prefix("cnb-export-")
            .tempdir()
            .map_err(|e| StoreError::Unsupported(format!("temp dir: {e}")))?;
        Ok(Self {
            client: client.clone(),
            image,
            scratch,
            uploads: AtomicU64::new(0),
            uploaded_bytes: AtomicU64::new(0),
        })
    }

    fn count(&self, outcome: &BlobPushOutcome, size: u64) {
        if *outcome == BlobPushOutcome::Uploaded {
            self.uploads.fetch_add(1, Ordering::Relaxed);
            self.uploaded_bytes.fetch_add(size, Ordering::Relaxed);
        }
    }
}

impl Destination for RegistryDestination {
    fn name(&self) -> String {
        self.image.to_string()
    }

    fn has_blob(&self, digest: &str) -> Result<bool, StoreError> {
        self.client
            .blob_exists(&self.image, digest)
            .map_err(|e| reg_err(&self.name(), e))
    }

    fn copy_blob(&self, src: &dyn SourceImage, blob: &BlobRef) -> Result<(), StoreError> {
        if self.has_blob(&blob.digest)? {
            return Ok(());
        }
        let mount_from: Vec<ImageRef> = src
            .registry_ref()
            .and_then(|r| ImageRef::parse(&r).ok())
            .filter(|r| r.registry() == self.image.registry())
            .into_iter()
            .collect();
        if let Some(from) = mount_from.first() {
            if self
                .client
                .mount_blob(&self.image, from, &blob.digest)
                .unwrap_or(false)
            {
                return Ok(());
            }
        }
        // Different registry or layout source: stream through a spool file.
        let path = self.scratch.path().join(blob.digest.replace(':', "-"));
        {
            let mut r = src.open_blob(&blob.digest)?;
            let mut f = std::fs::File::create(&path)
                .map_err(|e| StoreError::Unsupported(format!("{}: {e}", path.display())))?;
            io::copy(&mut r, &mut f)
                .map_err(|e| StoreError::Unsupported(format!("{}: {e}", path.display())))?;
        }
        let res = self.put_blob_file(&path, blob);
        let _ = std::fs::remove_file(&path);
        res
    }

    fn put_blob_file(&self, path: &Path, blob: &BlobRef) -> Result<(), StoreError> {
        let upload = BlobUpload {
            digest: blob.digest.clone(),
            size: blob.size,
            source: BlobSource::Path(path.to_path_buf()),
            mount_from: Vec::new(),
        };
        let outcome = self
            .client
            .push_blob(&self.image, &upload)
            .map_err(|e| reg_err(&self.name(), e))?;
        self.count(&outcome, blob.size);
        let _ = std::fs::remove_file(path);
        Ok(())
    }

    fn put_image(&self, config: &[u8], manifest: &[u8]) -> Result<(String, u64), StoreError> {
        let digest = crate::image::registry::sha256_digest(config);
        let upload = BlobUpload {
            digest,
            size: config.len() as u64,
            source: BlobSource::Bytes(Arc::new(config.to_vec())),
            mount_from: Vec::new(),
        };
        self.client
            .push_blob(&self.image, &upload)
            .map_err(|e| reg_err(&self.name(), e))?;
        let digest = self
            .client
            .push_manifest(&self.image, manifest, OCI_MANIFEST)
            .map_err(|e| reg_err(&self.name(), e))?;
        Ok((digest, manifest.len() as u64))
    }

    fn scratch_dir(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    fn blob_writes(&self) -> (u64, u64) {
        (
            self.uploads.load(Ordering::Relaxed),
            self.uploaded_bytes.load(Ordering::Relaxed),
        )
    }
}
