//! The cache image (`-cache-image`, registry only; checklist CA-05, CA-06): cached layers as gzip
//! blobs of an image without base, metadata in its `io.buildpacks.lifecycle.cache.metadata` label.
//! Unchanged layers are kept by reference to the previous cache image's blobs (nothing uploaded).

use std::io::Read;
use std::path::Path;

use super::{cache_metadata_lenient, Cache, CacheError, CacheMetadata, METADATA_LABEL};
use crate::export::config::NORMALIZED_CREATED;
use crate::image::oci::{Descriptor, ImageConfig, Platform, RuntimeConfig, OCI_LAYER};
use crate::image::{Digest, Image, ImageBuilder, ImageWriter, LayerRef};

/// diffID of the empty layer (1024 zero bytes) added when a cache has no layers (CA-05).
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// A cache image: the previous one (if any) to read from, a destination to write the new one.
pub struct ImageCache {
    name: String,
    previous: Option<Image>,
    dest: Box<dyn ImageWriter>,
    image: ImageBuilder,
    metadata: CacheMetadata,
    committed: bool,
}

impl ImageCache {
    /// A cache named `name` reading `previous` (missing or corrupt → empty) and writing to `dest`.
    pub fn new(name: &str, previous: Option<Image>, dest: Box<dyn ImageWriter>) -> Self {
        Self {
            name: name.to_string(),
            previous,
            dest,
            image: ImageBuilder::empty(&Platform::current()).normalize(),
            metadata: CacheMetadata::default(),
            committed: false,
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> CacheError {
        CacheError::Image {
            image: self.name.clone(),
            message: message.to_string(),
        }
    }

    fn ensure_open(&self) -> Result<(), CacheError> {
        if self.committed {
            return Err(self.err("cache was already committed"));
        }
        Ok(())
    }
}

impl Cache for ImageCache {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn retrieve_metadata(&self) -> Result<CacheMetadata, CacheError> {
        Ok(self
            .previous
            .as_ref()
            .and_then(|p| p.label(METADATA_LABEL))
            .map(cache_metadata_lenient)
            .unwrap_or_default())
    }

    fn retrieve_layer(&self, diff_id: &str) -> Result<Box<dyn Read + Send + '_>, CacheError> {
        let prev = self
            .previous
            .as_ref()
            .ok_or_else(|| self.err("no previous cache image"))?;
        let layer = self.previous_layer(prev, diff_id)?;
        let blob = prev
            .open_blob(&layer.descriptor.digest)
            .map_err(|e| self.err(crate::error::chain(&e)))?;
        Ok(Box::new(flate2::read::GzDecoder::new(blob)))
    }

    fn verify_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        // The registry verified blob digests; only presence is checked (CA-05).
        let prev = self
            .previous
            .as_ref()
            .ok_or_else(|| self.err("no previous cache image"))?;
        self.previous_layer(prev, diff_id).map(|_| ())
    }

    fn add_layer_file(&mut self, tar: &Path, diff_id: &str) -> Result<(), CacheError> {
        self.ensure_open()?;
        let diff: Digest = diff_id
            .parse()
            .map_err(|_| CacheError::InvalidDiffId(diff_id.to_string()))?;
        if self.image.layers().iter().any(|l| l.diff_id == diff) {
            return Ok(());
        }
        let blob_path = self
            .dest
            .scratch_dir()
            .join(format!(".cache-blob-{}", diff_id.replace(':', "-")));
        let (digest, size) = gzip_file(tar, &blob_path).map_err(|e| CacheError::io(tar, e))?;
        let layer = LayerRef {
            diff_id: diff,
            descriptor: Descriptor::new(OCI_LAYER, digest, size),
        };
        self.dest
            .put_layer_file(&blob_path, &layer)
            .map_err(|e| self.err(crate::error::chain(&e)))?;
        self.image.add_stored_layer(layer, None);
        Ok(())
    }

    fn reuse_layer(&mut self, diff_id: &str) -> Result<(), CacheError> {
        self.ensure_open()?;
        let prev = self
            .previous
            .as_ref()
            .ok_or_else(|| self.err("no previous cache image"))?;
        let layer = self.previous_layer(prev, diff_id)?;
        self.dest
            .copy_layer(prev, &layer)
            .map_err(|e| self.err(crate::error::chain(&e)))?;
        self.image.add_stored_layer(layer, None);
        Ok(())
    }

    fn set_metadata(&mut self, metadata: &CacheMetadata) -> Result<(), CacheError> {
        self.ensure_open()?;
        self.metadata = metadata.clone();
        Ok(())
    }

    fn commit(&mut self) -> Result<(), CacheError> {
        self.ensure_open()?;
        if self.image.layers().is_empty() {
            let tmp = self.dest.scratch_dir().join(".cache-empty.tar");
            std::fs::write(&tmp, [0u8; 1024]).map_err(|e| CacheError::io(&tmp, e))?;
            self.add_layer_file(&tmp, EMPTY_LAYER_DIFF_ID)?;
            let _ = std::fs::remove_file(&tmp);
        }
        self.committed = true;
        let label = self.metadata.to_json().map_err(|e| self.err(e))?;
        // No base: the reference's default platform (linux/amd64), the constant time, one label.
        self.image.set_config(ImageConfig {
            architecture: "amd64".into(),
            os: std::env::consts::OS.into(),
            created: Some(NORMALIZED_CREATED.into()),
            config: Some(RuntimeConfig {
                labels: Some([(METADATA_LABEL.to_string(), label)].into()),
                ..RuntimeConfig::default()
            }),
            ..ImageConfig::default()
        });
        self.image
            .save(self.dest.as_ref())
            .map_err(|e| self.err(crate::error::chain(&e)))?;
        Ok(())
    }
}

impl ImageCache {
    fn previous_layer(&self, prev: &Image, diff_id: &str) -> Result<LayerRef, CacheError> {
        diff_id
            .parse()
            .ok()
            .and_then(|d| prev.layer_by_diff_id(&d))
            .ok_or_else(|| self.err(format!("layer {diff_id} not found")))
    }
}

/// Gzips `src` into `dst` through the archive pipeline; returns the blob digest and size.
fn gzip_file(src: &Path, dst: &Path) -> std::io::Result<(Digest, u64)> {
    use crate::archive::{Compression, LayerWriter, Sink};
    let archive_err =
        |e: crate::archive::ArchiveError| std::io::Error::other(crate::error::chain(&e));
    let mut w = LayerWriter::new(
        Compression::Gzip { level: 1 },
        Sink::File(dst.to_path_buf()),
    )
    .map_err(archive_err)?;
    std::io::copy(&mut std::fs::File::open(src)?, &mut w)?;
    let info = w.finish().map_err(archive_err)?;
    Ok((info.digest, info.size))
}
