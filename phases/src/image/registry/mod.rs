//! Registry access (platform spec "Registry Authentication"; checklist G-16…G-18, G-21, G-23): a
//! synchronous facade over oci-client. Async is confined to this module: a private tokio runtime is
//! created lazily by the first [`RegistryClient`], never at program start (the extender forks before any
//! thread exists).
//!
//! - [`ImageRef`]: reference parsing and normalisation (`busybox` → `index.docker.io/library/busybox:latest`).
//! - [`Keychain`]: `CNB_REGISTRY_AUTH`, docker `config.json` (`auths`, `credHelpers`, `credsStore`),
//!   anonymous. Build it before dropping privileges.
//! - [`RegistryClient`]: manifests (raw bytes + digest + media type, OCI and Docker v2, platform selection
//!   from indexes), streaming blob pull/push, `HEAD` checks, cross-repository mounts, manifests pushed
//!   byte-for-byte, access checks, retries on transient errors.
//!
//! TLS: system roots plus the PEM files in [`RegistryOptions::ca_certs`] (env [`REGISTRY_CA_CERTS_ENV`],
//! `CNB_REGISTRY_CA_CERTS=/path/ca.pem:/etc/certs.d`). The system roots come from `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` or the usual distribution paths; when an image has none, the bundled Mozilla roots are
//! used instead of failing.
//!
//! Scheme (the `scheme` module, as the reference's registry library): every registry is tried over HTTPS
//! first; local ones (`localhost`, `127.0.0.1`, `::1`, RFC 1918 addresses, `*.localhost`) fall back to
//! plain HTTP, registries in `CNB_INSECURE_REGISTRIES` / `-insecure-registry` to HTTPS without
//! verification and then plain HTTP; the choice is made once per registry and used for every request.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cnb_lifecycle::image::registry::{ImageRef, Keychain, RegistryClient, RegistryOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let image = ImageRef::parse("registry.example.com/app:latest")?;
//! let keychain = Keychain::from_env()?;          // before dropping privileges
//! keychain.resolve_now(std::slice::from_ref(&image));
//! let client = RegistryClient::new(Arc::new(keychain), RegistryOptions::from_env())?;
//! let manifest = client.pull_image_manifest(&image)?;
//! println!("{} {}", manifest.manifest.digest, manifest.manifest.media_type);
//! # Ok(()) }
//! ```

mod blob;
mod client;
mod error;
mod identity;
mod keychain;
mod media_types;
mod open;
mod reference;
mod retry;
mod scheme;
mod store;
mod tls;

pub use blob::{BlobPushOutcome, BlobSource, BlobUpload};
pub use client::{
    sha256_digest, RegistryClient, RegistryOptions, DEFAULT_READ_TIMEOUT, REGISTRY_CA_CERTS_ENV,
    REGISTRY_READ_TIMEOUT_ENV,
};
pub use error::{KeychainError, RegistryError};
pub use keychain::{Credential, Keychain, KeychainSource};
pub use media_types::{
    Manifest, Platform, ResolvedManifest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX,
    OCI_MANIFEST,
};
pub use reference::{
    ensure_same_registry, normalise_registry, ImageRef, DEFAULT_REGISTRY, DEFAULT_TAG,
};
pub use retry::RetryPolicy;
pub use store::{RegistryStore, RegistryWriter};
