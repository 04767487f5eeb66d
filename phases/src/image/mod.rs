//! Images: OCI image layouts on disk ([`layout`]) and registry images ([`registry`]), behind one
//! abstraction the phases use: [`Image`] to read a base/run/previous image, [`ImageBuilder`] to build a
//! new one from a base and save it to a layout or a registry.
//!
//! Phases that must not touch registries (detector, builder, extender) are simply never given a
//! [`registry::RegistryClient`].

mod builder;
pub mod digest;
pub mod layout;
pub mod oci;
pub mod registry;
mod source;

use std::io;

pub use builder::{ImageBuilder, SaveReport};
pub use digest::Digest;
pub use source::{Image, LayerRef};

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
