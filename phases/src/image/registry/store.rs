//! The registry backend of the image interface (checklist IM-20, AN-04, AN-07): [`RegistryStore`] opens
//! registry images, [`RegistryWriter`] pushes one. Reused layers are never re-uploaded: a blob the
//! repository has is skipped, a blob of another repository on the same registry is mounted, only new
//! blobs are uploaded (streamed from files or piped from their source).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{BlobPushOutcome, BlobSource, BlobUpload, ImageRef, RegistryClient};
use crate::image::layout::WriteStats;
use crate::image::store::{ImageStore, ImageWriter, SavedImage, StoreKind};
use crate::image::{Digest, Image, ImageError, LayerRef};

/// Images in registries, reached with one client (keychain, TLS and insecure-registry options).
#[derive(Debug, Clone)]
pub struct RegistryStore {
    client: RegistryClient,
}

impl RegistryStore {
    /// A store using `client`.
    pub fn new(client: RegistryClient) -> Self {
        Self { client }
    }

    /// The registry client.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }
}

fn parse(reference: &str) -> Result<ImageRef, ImageError> {
    Ok(ImageRef::parse(reference)?)
}

impl ImageStore for RegistryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Registry
    }

    fn open(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let parsed = parse(reference)?;
        match Image::from_registry(&self.client, &parsed) {
            Ok(i) => Ok(Some(i)),
            Err(ImageError::Registry(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn writer(&self, reference: &str) -> Result<Box<dyn ImageWriter>, ImageError> {
        Ok(Box::new(RegistryWriter::new(
            &self.client,
            parse(reference)?,
            Vec::new(),
        )?))
    }
}

/// Pushes one image to a registry repository (its tag set by the manifest push, plus extra tags in the
/// same repository).
pub struct RegistryWriter {
    client: RegistryClient,
    image: ImageRef,
    extra_tags: Vec<String>,
    scratch: tempfile::TempDir,
    pushed: Mutex<HashSet<Digest>>,
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    reused: AtomicU64,
    mounted: AtomicU64,
}

impl RegistryWriter {
    /// A writer for `image`, also tagging `extra_tags` in its repository.
    pub fn new(
        client: &RegistryClient,
        image: ImageRef,
        extra_tags: Vec<String>,
    ) -> Result<Self, ImageError> {
        let scratch = tempfile::Builder::new()
            .prefix("cnb-export-")
            .tempdir()
            .map_err(|source| ImageError::Io {
                image: image.to_string(),
                what: "temp dir".into(),
                source,
            })?;
        Ok(Self {
            client: client.clone(),
            image,
            extra_tags,
            scratch,
            pushed: Mutex::new(HashSet::new()),
            uploads: AtomicU64::new(0),
            uploaded_bytes: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            mounted: AtomicU64::new(0),
        })
    }

    fn was_pushed(&self, digest: &Digest) -> bool {
        self.pushed.lock().is_ok_and(|p| p.contains(digest))
    }

    fn push(&self, upload: &BlobUpload, digest: &Digest) -> Result<(), ImageError> {
        let outcome = self.client.push_blob(&self.image, upload)?;
        if outcome == BlobPushOutcome::Uploaded {
            self.uploads.fetch_add(1, Ordering::Relaxed);
            self.uploaded_bytes
                .fetch_add(upload.size, Ordering::Relaxed);
        } else {
            self.reused.fetch_add(1, Ordering::Relaxed);
            if matches!(outcome, BlobPushOutcome::Mounted(_)) {
                self.mounted.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut p) = self.pushed.lock() {
            p.insert(digest.clone());
        }
        Ok(())
    }
}

impl ImageWriter for RegistryWriter {
    fn name(&self) -> String {
        self.image.to_string()
    }

    fn scratch_dir(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    fn has_layer(&self, layer: &LayerRef) -> Result<bool, ImageError> {
        let digest = &layer.descriptor.digest;
        if self.was_pushed(digest) {
            return Ok(true);
        }
        Ok(self.client.blob_exists(&self.image, digest.as_str())?)
    }

    fn put_layer_file(&self, path: &Path, layer: &LayerRef) -> Result<(), ImageError> {
        let digest = &layer.descriptor.digest;
        let result = if self.was_pushed(digest) {
            Ok(())
        } else {
            let upload = BlobUpload {
                digest: digest.to_string(),
                size: layer.descriptor.size,
                source: BlobSource::Path(path.to_path_buf()),
                mount_from: Vec::new(),
            };
            self.push(&upload, digest)
        };
        let _ = std::fs::remove_file(path);
        result
    }

    fn copy_layer(&self, from: &Image, layer: &LayerRef) -> Result<(), ImageError> {
        let digest = &layer.descriptor.digest;
        if self.was_pushed(digest) {
            return Ok(());
        }
        let source = match from.blob_path(digest) {
            Some(p) => BlobSource::Path(p),
            None => {
                let (src, d) = (from.clone(), digest.clone());
                let open: Arc<dyn Fn() -> io::Result<Box<dyn io::Read + Send>> + Send + Sync> =
                    Arc::new(move || {
                        src.open_blob(&d)
                            .map_err(|e| io::Error::other(crate::error::chain(&e)))
                    });
                BlobSource::Open(open)
            }
        };
        let upload = BlobUpload {
            digest: digest.to_string(),
            size: layer.descriptor.size,
            source,
            mount_from: from.registry_reference().cloned().into_iter().collect(),
        };
        self.push(&upload, digest)
    }

    fn commit(
        &self,
        config: &[u8],
        manifest: &[u8],
        manifest_media_type: &str,
        _layers: &[LayerRef],
    ) -> Result<SavedImage, ImageError> {
        let image_id = Digest::sha256_of(config);
        let upload = BlobUpload {
            digest: image_id.to_string(),
            size: config.len() as u64,
            source: BlobSource::Bytes(Arc::new(config.to_vec())),
            mount_from: Vec::new(),
        };
        let stats = match self.client.push_blob(&self.image, &upload)? {
            BlobPushOutcome::Uploaded => WriteStats {
                blobs_written: 1,
                bytes_written: upload.size,
                ..WriteStats::default()
            },
            _ => WriteStats {
                blobs_reused: 1,
                ..WriteStats::default()
            },
        };
        self.client
            .push_manifest(&self.image, manifest, manifest_media_type)?;
        let tags: Vec<&str> = self.extra_tags.iter().map(String::as_str).collect();
        self.client
            .tag(&self.image, &tags, manifest, manifest_media_type)?;
        Ok(SavedImage {
            manifest_digest: Some(Digest::sha256_of(manifest)),
            manifest_size: manifest.len() as u64,
            image_id,
            stats,
        })
    }

    fn stats(&self) -> WriteStats {
        WriteStats {
            blobs_written: self.uploads.load(Ordering::Relaxed),
            bytes_written: self.uploaded_bytes.load(Ordering::Relaxed),
            blobs_reused: self.reused.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
        }
    }
}
