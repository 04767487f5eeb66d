//! Deterministic layer tarballs, one-pass hashing/compression and safe extraction (platform spec "Layer"
//! handling; checklist IM-10…IM-15, T-01…T-03).
//!
//! - [`LayerBuilder`] collects [`Source`]s (a host directory mapped to an image path, single files, symlinks,
//!   directories with explicit owner and mode) and writes them as one normalised tar whose bytes match the
//!   reference lifecycle's Go writer for the same tree (same diffID).
//! - [`LayerBuilder::write`] streams walk → tar → sha256 (diffID) → gzip/zstd → sha256 (digest) → [`Sink`] in
//!   one pass with bounded memory, gzip on all cores within one layer ([`ParGzEncoder`], pigz's scheme);
//!   [`build_parallel`] produces independent layers on several threads.
//! - [`extract`] unpacks a gzip/zstd/plain layer into a root, applying whiteouts and never writing outside it.

mod builder;
mod extract;
pub mod header;
mod parallel;
mod pgzip;
mod pipeline;
mod stream;

use std::io;
use std::path::PathBuf;

pub use builder::{LayerBuilder, Meta, Parents, Source, TreeSource};
pub use extract::{extract, ExtractOptions, ExtractStats, Ownership};
pub use parallel::parallel_map;
pub use pgzip::{set_gzip_workers, ParGzEncoder, BLOCK as GZIP_BLOCK};
pub use pipeline::{
    build_parallel, set_zstd_workers, Compression, LayerInfo, Sink, ZSTD_DEFAULT_LEVEL,
};
pub use stream::LayerWriter;

/// The reference's normalised timestamp, 1980-01-01T00:00:01Z (checklist T-03).
pub const NORMALIZED_MTIME: i64 = 315_532_801;

/// The timestamp to stamp on layer entries: `SOURCE_DATE_EPOCH` when set to a valid integer, else
/// [`NORMALIZED_MTIME`].
pub fn mtime_from_env() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(NORMALIZED_MTIME)
}

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Media type of a gzip-compressed Docker v2 layer.
pub const MEDIA_TYPE_DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Errors while building or extracting layers. Every variant names the path or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading a source file or directory failed.
    #[error("failed to read {path}")]
    Read {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file changed size while it was being added.
    #[error("file {path} changed while being archived (expected {expected} bytes, read {actual})")]
    Changed {
        /// The host path.
        path: PathBuf,
        /// Size from `lstat`.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// An image path given to the builder is not usable.
    #[error("invalid image path {0:?} in layer: must be non-empty, without '..' or NUL")]
    BadImagePath(String),
    /// Writing the layer (tar stream, compressor or sink) failed.
    #[error("failed to write layer to {target}")]
    Write {
        /// Where the layer was going.
        target: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A tar entry is malformed or unsafe; extraction stops.
    #[error("refusing tar entry {entry:?}: {reason}")]
    Unsafe {
        /// The entry name as it appears in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// Reading the archive or writing into the extraction root failed.
    #[error("failed to extract {entry:?} into {root}")]
    Extract {
        /// The entry name.
        entry: String,
        /// The extraction root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A worker thread producing a layer panicked.
    #[error("layer worker thread for {0} panicked")]
    Worker(String),
}
