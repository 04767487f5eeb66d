//! Registry images behind the [`SourceImage`] and [`Destination`] seams, over the sync registry facade
//! (checklist IM-20, AN-04, AN-07). Reused layers are never re-uploaded: a blob the repository has is
//! skipped, a blob of another repository on the same registry is mounted, only new blobs are uploaded.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::store::{BlobRef, Destination, OpenedImage, SourceImage, StoreError, OCI_MANIFEST};
use crate::image::registry::{
    BlobPushOutcome, BlobSource, BlobUpload, ImageRef, RegistryClient, RegistryError,
};
use crate::image::{Image, ImageError};

fn reg_err(image: &str, e: RegistryError) -> StoreError {
    StoreError::Invalid {
        image: image.to_string(),
        reason: crate::error::chain(&e),
    }
}

/// An image in a registry, read through the shared [`Image`] (index → this platform's manifest, config).
pub type RegistryImage = OpenedImage;

impl OpenedImage {
    /// Reads manifest and config of `reference` from a registry; `Ok(None)` when it does not exist.
    pub fn open_registry(
        client: &RegistryClient,
        reference: &str,
    ) -> Result<Option<Self>, StoreError> {
        let parsed = ImageRef::parse(reference).map_err(|e| reg_err(reference, e))?;
        let image = match Image::from_registry(client, &parsed) {
            Ok(i) => i,
            Err(ImageError::Registry(e)) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(StoreError::Invalid {
                    image: reference.to_string(),
                    reason: crate::error::chain(&e),
                })
            }
        };
        let name = parsed.to_string();
        let base = parsed.name().to_string();
        Self::new(image, name.clone(), &base, Some(name)).map(Some)
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
