//! Registry errors: each names the image reference (or registry) it concerns.

use std::path::PathBuf;

/// An error from the registry facade.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse (checklist G-21).
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference {
        /// The input as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Destination images span registries (checklist G-21).
    #[error("writing to multiple registries is unsupported: '{first}' and '{other}'")]
    MultipleRegistries {
        /// The first destination.
        first: String,
        /// A destination in another registry.
        other: String,
    },
    /// The registry answered 401: the credentials are missing or wrong.
    #[error("unauthorized to {action} '{image}': check credentials for {registry} ({detail})")]
    Unauthorized {
        /// What we tried (`pull`, `push`, ...).
        action: String,
        /// The image reference.
        image: String,
        /// The registry host.
        registry: String,
        /// The registry's message.
        detail: String,
    },
    /// The registry answered 403.
    #[error("access denied to {action} '{image}' on {registry} ({detail})")]
    Denied {
        /// What we tried.
        action: String,
        /// The image reference.
        image: String,
        /// The registry host.
        registry: String,
        /// The registry's message.
        detail: String,
    },
    /// The manifest or blob does not exist.
    #[error("{what} not found for '{image}'")]
    NotFound {
        /// `manifest` or `blob <digest>`.
        what: String,
        /// The image reference.
        image: String,
    },
    /// Any other registry or transport failure (after retries where they apply).
    #[error("failed to {action} '{image}': {detail}")]
    Request {
        /// What we tried.
        action: String,
        /// The image reference.
        image: String,
        /// HTTP status when the registry answered.
        status: Option<u16>,
        /// Whether the failure was transient (it was retried).
        transient: bool,
        /// The underlying error text.
        detail: String,
    },
    /// Content did not match its digest.
    #[error("digest mismatch for {what} of '{image}': expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The image reference.
        image: String,
        /// Expected digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// A manifest is not a type we can handle or has no entry for the wanted platform.
    #[error("unsupported manifest for '{image}': {reason}")]
    UnsupportedManifest {
        /// The image reference.
        image: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing local data for a registry operation failed.
    #[error("failed to {action} for '{image}': {source}")]
    Io {
        /// What we were doing.
        action: String,
        /// The image reference.
        image: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A credential source (CNB_REGISTRY_AUTH, docker config, credential helper) is unusable.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The HTTP client or runtime could not be set up.
    #[error("failed to set up the registry client: {0}")]
    Setup(String),
}

/// An error reading registry credentials.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// `CNB_REGISTRY_AUTH` is not a JSON object of strings.
    #[error("failed to parse CNB_REGISTRY_AUTH value: {0}")]
    EnvJson(String),
    /// A header value in `CNB_REGISTRY_AUTH` has an unknown scheme or bad encoding.
    #[error("parsing auth header for registry '{registry}': {reason}")]
    Header {
        /// The registry key.
        registry: String,
        /// What is wrong.
        reason: String,
    },
    /// The docker config file cannot be read or parsed.
    #[error("failed to read docker config '{path}': {reason}")]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper 'docker-credential-{helper}' failed for {registry}: {reason}")]
    Helper {
        /// Helper name (suffix after `docker-credential-`).
        helper: String,
        /// The registry asked for.
        registry: String,
        /// What went wrong.
        reason: String,
    },
}

impl RegistryError {
    /// The HTTP status the registry answered with, when known.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::Denied { .. } => Some(403),
            RegistryError::NotFound { .. } => Some(404),
            RegistryError::Request { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether this is an authentication/authorisation failure (401 or 403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. }
        )
    }

    /// Whether the manifest or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}
