//! The one image interface the phases use (platform spec "Image"; checklist IM-01, IM-20, IM-30, IM-31):
//! an [`ImageStore`] per place images live — an OCI layout tree (`image::layout`), registries
//! (`image::registry`) and a Docker Engine (`image::daemon`) — opens [`Image`] handles and hands out an
//! [`ImageWriter`] for a new image. [`crate::image::ImageBuilder`] assembles the new image (layers by
//! diffID, configuration) and saves it through the writer, whatever the store.
//!
//! A backend is one module: it implements these two traits, and its writer recognises its own images
//! (hard links in a layout, mounts in a registry, layers the daemon already has) while taking every
//! other image's layers through [`Image::open_blob`].

use std::path::{Path, PathBuf};

use super::layout::WriteStats;
use super::{Digest, Image, ImageError, LayerRef};

/// Which kind of place a store is (for logs and for the few platform files that differ by kind, e.g.
/// `report.toml` records an image ID instead of a digest for a daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// OCI image layouts under a layout directory.
    Layout,
    /// Registries.
    Registry,
    /// A Docker Engine (or Podman's Docker-compatible API).
    Daemon,
}

/// How new layer blobs should be produced for a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEncoding {
    /// gzip (layouts, registries).
    Gzip,
    /// The uncompressed tar (a daemon stores layers uncompressed; compressing them only costs time).
    Tar,
}

/// A place images live.
pub trait ImageStore: Send + Sync + std::fmt::Debug {
    /// The kind of store.
    fn kind(&self) -> StoreKind;

    /// Opens the image `reference` names (or an identifier this store recorded earlier, e.g.
    /// `<layout path>@sha256:…`); `Ok(None)` when there is no such image.
    fn open(&self, reference: &str) -> Result<Option<Image>, ImageError>;

    /// Starts writing the image named `reference`.
    fn writer(&self, reference: &str) -> Result<Box<dyn ImageWriter>, ImageError>;

    /// Names `source`, an image of this store, also `reference` without writing it again, where the
    /// store can (a daemon tags); `None` when the image must be saved under that name instead.
    fn tag_existing(&self, _source: &Image, _reference: &str) -> Option<Result<(), ImageError>> {
        None
    }
}

/// What saving an image under one name produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImage {
    /// The manifest digest; `None` where the store keeps no manifest (a daemon).
    pub manifest_digest: Option<Digest>,
    /// The manifest size in bytes (0 without a manifest).
    pub manifest_size: u64,
    /// The image ID: the configuration digest.
    pub image_id: Digest,
    /// What writing the configuration and manifest did (layer blobs are in [`ImageWriter::stats`]).
    pub stats: WriteStats,
}

/// Writes one image into a store. Blobs may be handed over as they are produced (from several threads);
/// [`ImageWriter::commit`] then writes the configuration and manifest and names the image.
pub trait ImageWriter: Send + Sync {
    /// A name for logs and errors (the reference or path written).
    fn name(&self) -> String;

    /// How new layers should be encoded for this store.
    fn layer_encoding(&self) -> LayerEncoding {
        LayerEncoding::Gzip
    }

    /// A directory on the store's side to build blob files in, so [`ImageWriter::put_layer_file`] can
    /// move them instead of copying.
    fn scratch_dir(&self) -> PathBuf;

    /// Whether the store already holds this layer (a freshly built blob can then be dropped).
    fn has_layer(&self, layer: &LayerRef) -> Result<bool, ImageError>;

    /// Takes over a freshly built blob file for `layer` (the file is moved or removed).
    fn put_layer_file(&self, path: &Path, layer: &LayerRef) -> Result<(), ImageError>;

    /// Makes `layer` of `from` available to the new image (nothing when the store has it already).
    fn copy_layer(&self, from: &Image, layer: &LayerRef) -> Result<(), ImageError>;

    /// Writes `config` and `manifest` (bytes unchanged, so the digests hold) and names the image.
    /// `layers` are the image's layers, base first, as the manifest lists them.
    fn commit(
        &self,
        config: &[u8],
        manifest: &[u8],
        manifest_media_type: &str,
        layers: &[LayerRef],
    ) -> Result<SavedImage, ImageError>;

    /// Layer blobs written so far, not counting the configuration and manifest: new bytes only (for
    /// logs, tests and benchmarks).
    fn stats(&self) -> WriteStats;
}
