//! Images (platform spec "Image", image-spec): one abstraction the phases use — [`Image`] to read a
//! base/run/previous image, [`ImageBuilder`] to build a new one, and an [`ImageStore`] per place images
//! live, each with its [`ImageWriter`]: OCI image layouts on disk ([`layout`]), registries ([`registry`])
//! and a Docker Engine ([`daemon`]).
//!
//! Phases that must not touch images (detector, builder) are simply never given a store.

mod builder;
pub mod daemon;
pub mod digest;
pub mod layout;
pub mod oci;
pub mod registry;
mod source;
pub mod store;

use std::io;

pub use builder::{ImageBuilder, SaveReport};
pub use digest::Digest;
pub use source::{Image, LayerRef};
pub use store::{ImageStore, ImageWriter, LayerEncoding, SavedImage, StoreKind};

/// Errors of the image abstraction; each names the image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Layout store error.
    #[error(transparent)]
    Layout(layout::LayoutError),
    /// Registry error.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// A document could not be parsed.
    #[error("invalid {what} of image {image}")]
    Json {
        /// The image.
        image: String,
        /// What was parsed.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The image is inconsistent.
    #[error("image {image} is invalid: {reason}")]
    Invalid {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// A layer asked for by diffID is not in the image.
    #[error("layer with diffID {diff_id} not found in image {image}")]
    LayerNotFound {
        /// The image.
        image: String,
        /// The diffID.
        diff_id: Digest,
    },
    /// The Docker daemon failed or could not be reached.
    #[error("Docker daemon at {host}: {message}")]
    Daemon {
        /// `DOCKER_HOST`.
        host: String,
        /// What failed and why.
        message: String,
    },
    /// I/O while moving blobs.
    #[error("failed to read or write {what} of image {image}")]
    Io {
        /// The image.
        image: String,
        /// What was being moved.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
