//! Cache stores: a cache directory ([`VolumeCache`]) and a cache image (platform spec "Cache";
//! checklist §20). The restorer reads a cache through [`Cache`]; the exporter fills a new one and
//! commits it.

pub mod image;
pub mod metadata;
mod volume;

pub use metadata::{
    cache_metadata_lenient, find_layer, sha_of, BuildpackLayerMetadata, BuildpackLayersMetadata,
    CacheMetadata, LayerSha, StoreToml,
};
pub use volume::{sha256_file, VolumeCache};

use std::io::Read;
use std::path::{Path, PathBuf};

/// The label (image cache) and file name (cache directory) holding [`CacheMetadata`].
pub const METADATA_LABEL: &str = cnb_spec::labels::CACHE_METADATA;

/// Errors of the cache stores. Each names the cache path or layer.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// `-cache-dir` does not exist.
    #[error("cache directory '{}' does not exist", .0.display())]
    MissingDir(PathBuf),
    /// A filesystem operation failed.
    #[error("cache file '{}'", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cached layer's content does not hash to its diffID (CA-04).
    #[error("expected layer contents to have SHA '{expected}'; found '{found}' (in '{}')", path.display())]
    WrongSha {
        /// The cached tar.
        path: PathBuf,
        /// The diffID recorded for it.
        expected: String,
        /// What its content hashes to.
        found: String,
    },
    /// A diffID that is not `sha256:<64 hex>`.
    #[error("invalid layer diffID '{0}'")]
    InvalidDiffId(String),
    /// The cache was already committed (CA-03).
    #[error("cache '{}' was already committed", .0.display())]
    AlreadyCommitted(PathBuf),
    /// The metadata could not be encoded.
    #[error("encoding cache metadata")]
    Encode(#[source] serde_json::Error),
    /// An error of the image cache's image store.
    #[error("cache image '{image}': {message}")]
    Image {
        /// The cache image.
        image: String,
        /// The cause.
        message: String,
    },
}

impl CacheError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A cache the restorer reads from and the exporter writes to.
pub trait Cache {
    /// A name for logs (`-cache-dir` path or `-cache-image` reference).
    fn name(&self) -> String;
    /// The committed metadata; empty for a new, empty or undecodable cache.
    fn retrieve_metadata(&self) -> Result<CacheMetadata, CacheError>;
    /// The uncompressed tar of a cached layer.
    fn retrieve_layer(&self, diff_id: &str) -> Result<Box<dyn Read + Send + '_>, CacheError>;
    /// Checks that a cached layer is present and intact (CA-04); image caches trust the registry.
    fn verify_layer(&self, diff_id: &str) -> Result<(), CacheError>;
    /// Adds a layer tar (uncompressed) to the cache being assembled.
    fn add_layer_file(&mut self, tar: &Path, diff_id: &str) -> Result<(), CacheError>;
    /// Keeps a committed layer in the cache being assembled.
    fn reuse_layer(&mut self, diff_id: &str) -> Result<(), CacheError>;
    /// Sets the metadata of the cache being assembled.
    fn set_metadata(&mut self, metadata: &CacheMetadata) -> Result<(), CacheError>;
    /// Makes the assembled cache the committed one. Further mutation is an error.
    fn commit(&mut self) -> Result<(), CacheError>;
}
