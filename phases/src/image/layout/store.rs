//! The layout backend of the image interface (platform spec "Map an image reference to a path in the
//! layout directory"; checklist IM-30, IM-31): [`LayoutStore`] maps references to layouts under
//! `-layout-dir`, [`LayoutWriter`] writes one image into a layout (blobs hard-linked from other layouts
//! where possible).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{path_for_reference, Layout, Selector, WriteStats};
use crate::image::oci::{self, Descriptor, Index};
use crate::image::store::{ImageStore, ImageWriter, SavedImage, StoreKind};
use crate::image::{Image, ImageError, LayerRef};

/// Images as OCI layouts under one directory, `<layout-dir>/<registry>/<repository>/<tag>`.
#[derive(Debug, Clone)]
pub struct LayoutStore {
    dir: PathBuf,
}

impl LayoutStore {
    /// The store rooted at `dir` (`-layout-dir`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The layout path of `reference` (IM-30).
    pub fn path_of(&self, reference: &str) -> Result<PathBuf, ImageError> {
        Ok(path_for_reference(&self.dir, reference)?)
    }

    /// Opens the first image listed in the layout at `path`; `Ok(None)` when there is no layout there
    /// or it lists no manifest (a new image).
    pub fn open_path(path: &Path) -> Result<Option<Image>, ImageError> {
        if !Layout::exists(path) {
            return Ok(None);
        }
        let layout = Layout::open(path)?;
        if layout.index()?.manifests.is_empty() {
            return Ok(None);
        }
        Image::from_layout(path, &Selector::First, None).map(Some)
    }
}

impl ImageStore for LayoutStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Layout
    }

    /// A reference, or an identifier `<layout path>@sha256:…` recorded in `analyzed.toml`.
    fn open(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let path = reference.split('@').next().unwrap_or(reference);
        if Path::new(path).is_absolute() {
            return Self::open_path(Path::new(path));
        }
        Self::open_path(&self.path_of(reference)?)
    }

    /// The index of the layout names only the new image, tagged with the reference's tag (or digest).
    fn writer(&self, reference: &str) -> Result<Box<dyn ImageWriter>, ImageError> {
        let path = self.path_of(reference)?;
        let layout = Layout::create(&path)?;
        Ok(Box::new(LayoutWriter::new(
            layout,
            IndexUpdate::Replace(tag_of(reference)),
        )))
    }
}

/// The tag (or digest) a reference names, `latest` by default (the layout's `ref.name`).
pub fn tag_of(reference: &str) -> String {
    if let Some((_, d)) = reference.split_once('@') {
        return d.to_string();
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.split_once(':') {
        Some((_, t)) if !t.is_empty() => t.to_string(),
        _ => "latest".to_string(),
    }
}

/// How a [`LayoutWriter`] updates `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUpdate {
    /// The index lists only the new image, with this `org.opencontainers.image.ref.name` (the
    /// exporter's and rebaser's layouts: one image per `<layout-dir>/<registry>/<repo>/<tag>`).
    Replace(String),
    /// The new image is added under each tag (moved from where they pointed), other entries are kept;
    /// no tags = an untagged entry.
    Tag(Vec<String>),
}

/// Writes one image into an OCI layout.
#[derive(Debug)]
pub struct LayoutWriter {
    layout: Layout,
    index: IndexUpdate,
    blobs_written: AtomicU64,
    bytes_written: AtomicU64,
    blobs_reused: AtomicU64,
}

impl LayoutWriter {
    /// A writer into `layout` updating its index as `index` says.
    pub fn new(layout: Layout, index: IndexUpdate) -> Self {
        Self {
            layout,
            index,
            blobs_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            blobs_reused: AtomicU64::new(0),
        }
    }

    /// The layout written to.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn count(&self, stats: WriteStats) {
        self.blobs_written
            .fetch_add(stats.blobs_written, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(stats.bytes_written, Ordering::Relaxed);
        self.blobs_reused
            .fetch_add(stats.blobs_reused, Ordering::Relaxed);
    }

    fn io(&self, what: String, source: std::io::Error) -> ImageError {
        ImageError::Io {
            image: self.name(),
            what,
            source,
        }
    }
}

impl ImageWriter for LayoutWriter {
    fn name(&self) -> String {
        self.layout.path().display().to_string()
    }

    fn scratch_dir(&self) -> PathBuf {
        self.layout.blob_dir()
    }

    fn has_layer(&self, layer: &LayerRef) -> Result<bool, ImageError> {
        let has = self.layout.has_blob(&layer.descriptor.digest);
        if has {
            self.count(WriteStats {
                blobs_reused: 1,
                ..WriteStats::default()
            });
        }
        Ok(has)
    }

    fn put_layer_file(&self, path: &Path, layer: &LayerRef) -> Result<(), ImageError> {
        let dst = self.layout.blob_path(&layer.descriptor.digest);
        if dst.is_file() {
            if path != dst {
                let _ = fs::remove_file(path);
            }
            self.count(WriteStats {
                blobs_reused: 1,
                ..WriteStats::default()
            });
            return Ok(());
        }
        if let Some(parent) = dst.parent() {
            cnb_spec::io::create_dirs(parent)
                .map_err(|e| self.io(format!("blob dir {}", parent.display()), e))?;
        }
        fs::rename(path, &dst)
            .or_else(|_| fs::copy(path, &dst).map(|_| ()))
            .map_err(|e| self.io(format!("blob {}", layer.descriptor.digest), e))?;
        self.count(WriteStats {
            blobs_written: 1,
            bytes_written: layer.descriptor.size,
            ..WriteStats::default()
        });
        Ok(())
    }

    fn copy_layer(&self, from: &Image, layer: &LayerRef) -> Result<(), ImageError> {
        let digest = &layer.descriptor.digest;
        let dst = self.layout.blob_path(digest);
        if dst.is_file() {
            self.count(WriteStats {
                blobs_reused: 1,
                ..WriteStats::default()
            });
            return Ok(());
        }
        if let Some(p) = from.blob_path(digest) {
            if let Some(parent) = dst.parent() {
                let _ = cnb_spec::io::create_dirs(parent);
            }
            if fs::hard_link(&p, &dst).is_ok() {
                return Ok(());
            }
        }
        let r = from.open_blob(digest)?;
        let (_, stats) = self.layout.write_blob_from(r, Some(digest))?;
        self.count(stats);
        Ok(())
    }

    fn commit(
        &self,
        config: &[u8],
        manifest: &[u8],
        manifest_media_type: &str,
        _layers: &[LayerRef],
    ) -> Result<SavedImage, ImageError> {
        let (image_id, mut stats) = self.layout.write_blob(config)?;
        let (digest, s) = self.layout.write_blob(manifest)?;
        stats.add(s);
        let mut desc = Descriptor::new(manifest_media_type, digest.clone(), manifest.len() as u64);
        match &self.index {
            IndexUpdate::Replace(tag) => {
                desc.annotations = Some(BTreeMap::from([(oci::REF_NAME.to_string(), tag.clone())]));
                self.layout.write_index(&Index {
                    media_type: None,
                    manifests: vec![desc],
                    ..Index::default()
                })?;
            }
            IndexUpdate::Tag(tags) => {
                self.layout.add_manifest(&desc, tags)?;
            }
        }
        Ok(SavedImage {
            manifest_digest: Some(digest),
            manifest_size: manifest.len() as u64,
            image_id,
            stats,
        })
    }

    fn stats(&self) -> WriteStats {
        WriteStats {
            blobs_written: self.blobs_written.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            blobs_reused: self.blobs_reused.load(Ordering::Relaxed),
            blobs_mounted: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(tag_of("busybox"), "latest");
        assert_eq!(tag_of("127.0.0.1:5000/app"), "latest");
        assert_eq!(tag_of("127.0.0.1:5000/app:v1"), "v1");
        assert_eq!(tag_of("a/b@sha256:00"), "sha256:00");
    }

    #[test]
    fn im30_layout_paths() {
        let s = LayoutStore::new("/l");
        assert_eq!(
            s.path_of("busybox").unwrap(),
            Path::new("/l/index.docker.io/library/busybox/latest")
        );
        assert_eq!(
            s.path_of("127.0.0.1:5000/app:v2").unwrap(),
            Path::new("/l/127.0.0.1:5000/app/v2")
        );
    }
}
