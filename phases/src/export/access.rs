//! How phases reach images: an OCI layout directory tree (`-layout`, `-layout-dir`; IM-30) or a
//! registry. `-daemon` is not supported: a clear error tells the platform to use a registry or
//! `-layout`.

use std::path::{Path, PathBuf};

use super::store::{
    layout_path, Destination, LayoutDestination, LayoutImage, SourceImage, StoreError,
};
use std::sync::Arc;

use super::registry_store::{RegistryDestination, RegistryImage};
use crate::cli::Inputs;
use crate::image::registry::{
    ImageRef, Keychain, KeychainError, RegistryClient, RegistryError, RegistryOptions,
};

/// Message for `-daemon` (issue 5 §5).
pub const DAEMON_UNSUPPORTED: &str =
    "exporting to a Docker daemon (-daemon, CNB_USE_DAEMON) is not supported by this lifecycle; use a registry or an OCI layout (-layout with -layout-dir)";

/// Image access mode.
#[derive(Debug, Clone)]
pub enum ImageAccess {
    /// Images are OCI layouts under this directory.
    Layout {
        /// `-layout-dir`.
        dir: PathBuf,
    },
    /// Images are in registries.
    Registry {
        /// The registry client (keychain built before privileges are dropped).
        client: RegistryClient,
    },
}

/// Access-mode errors.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// `-daemon`.
    #[error("{DAEMON_UNSUPPORTED}")]
    DaemonUnsupported,
    /// `-layout` without a layout dir.
    #[error("-layout requires -layout-dir (CNB_LAYOUT_DIR)")]
    NoLayoutDir,
    /// The registry client could not be set up.
    #[error("setting up registry access")]
    Registry(#[source] RegistryError),
    /// The keychain could not be read.
    #[error("reading registry credentials")]
    Keychain(#[source] KeychainError),
}

impl AccessError {
    /// The phase failure: unreadable credentials (a malformed `CNB_REGISTRY_AUTH`) fail as the
    /// reference's `failed to resolve keychain` (exit 1), anything else as an input error (exit 3).
    pub fn into_failure(self) -> crate::error::Failure {
        match &self {
            AccessError::Keychain(e) => {
                crate::error::Failure::new(cnb_spec::exit::FAILED, "resolve keychain", e)
            }
            _ => crate::error::Failure::new(cnb_spec::exit::INVALID_ARGS, "resolve inputs", &self),
        }
    }
}

impl ImageAccess {
    /// The access mode the inputs ask for.
    pub fn from_inputs(inputs: &Inputs) -> Result<Self, AccessError> {
        if inputs.use_daemon {
            return Err(AccessError::DaemonUnsupported);
        }
        if inputs.use_layout {
            let dir = inputs.layout_dir.clone().ok_or(AccessError::NoLayoutDir)?;
            return Ok(Self::Layout { dir });
        }
        Ok(Self::Registry {
            client: Self::registry_client(inputs)?,
        })
    }

    /// A registry client for the phase: the keychain from the environment (`CNB_REGISTRY_AUTH`, docker
    /// config), registry options from the environment plus `-insecure-registry`.
    pub fn registry_client(inputs: &Inputs) -> Result<RegistryClient, AccessError> {
        let keychain = Keychain::from_env().map_err(AccessError::Keychain)?;
        let mut opts = RegistryOptions::from_env();
        for r in &inputs.insecure_registries {
            opts = opts.insecure(r);
        }
        RegistryClient::new(Arc::new(keychain), opts).map_err(AccessError::Registry)
    }

    /// Resolves the registry credentials of every image in `references` now, running credential
    /// helpers while the process still has its original user's access (G-17): call it before
    /// `ensure_privileges`. References that are not registry references (layout paths) are skipped.
    pub fn resolve_credentials<S: AsRef<str>>(&self, references: &[S]) {
        if let Self::Registry { client } = self {
            let refs: Vec<ImageRef> = references
                .iter()
                .map(AsRef::as_ref)
                .filter(|r| !r.is_empty() && !r.starts_with('/'))
                .filter_map(|r| ImageRef::parse(r).ok())
                .collect();
            client.keychain().resolve_now(&refs);
        }
    }

    /// Whether images live in layouts.
    pub fn is_layout(&self) -> bool {
        matches!(self, Self::Layout { .. })
    }

    /// The layout path of a reference (layout mode).
    pub fn layout_path(&self, reference: &str) -> Option<PathBuf> {
        match self {
            Self::Layout { dir } => Some(layout_path(dir, reference)),
            Self::Registry { .. } => None,
        }
    }

    /// Opens an image; `Ok(None)` when it does not exist. In layout mode `reference` may also be a
    /// layout path (`analyzed.toml` and the image label record those, as the reference's do).
    pub fn open(&self, reference: &str) -> Result<Option<Box<dyn SourceImage>>, StoreError> {
        match self {
            Self::Layout { .. } if reference.starts_with('/') => {
                let path = reference.split('@').next().unwrap_or(reference);
                Ok(
                    LayoutImage::open(Path::new(path))?
                        .map(|i| Box::new(i) as Box<dyn SourceImage>),
                )
            }
            Self::Layout { dir } => Ok(LayoutImage::open(&layout_path(dir, reference))?
                .map(|i| Box::new(i) as Box<dyn SourceImage>)),
            Self::Registry { client } => Ok(RegistryImage::open_registry(client, reference)?
                .map(|i| Box::new(i) as Box<dyn SourceImage>)),
        }
    }

    /// Opens an image given either as a reference or (layout mode) as an identifier
    /// `<layout path>@sha256:…` recorded in `analyzed.toml`.
    pub fn open_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<Box<dyn SourceImage>>, StoreError> {
        if let Self::Layout { .. } = self {
            let path = identifier.split('@').next().unwrap_or(identifier);
            if Path::new(path).is_absolute() {
                return Ok(LayoutImage::open(Path::new(path))?
                    .map(|i| Box::new(i) as Box<dyn SourceImage>));
            }
        }
        self.open(identifier)
    }

    /// A destination for `reference`.
    pub fn destination(&self, reference: &str) -> Result<Box<dyn Destination>, StoreError> {
        match self {
            Self::Layout { dir } => {
                let path = layout_path(dir, reference);
                let tag = tag_of(reference);
                Ok(Box::new(LayoutDestination::create(&path, &tag)?))
            }
            Self::Registry { client } => Ok(Box::new(RegistryDestination::new(client, reference)?)),
        }
    }
}

/// The tag (or digest) a reference names, `latest` by default (the layout's `ref.name`).
pub fn tag_of(reference: &str) -> String {
    if let Some((_, d)) = reference.split_once('@') {
        return d.to_string();
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.split_once(':') {
        Some((_, t)) if !reference.ends_with(last) || !t.is_empty() => t.to_string(),
        _ => "latest".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn tags() {
        assert_eq!(tag_of("busybox"), "latest");
        assert_eq!(tag_of("127.0.0.1:5000/app"), "latest");
        assert_eq!(tag_of("127.0.0.1:5000/app:v1"), "v1");
        assert_eq!(tag_of("a/b@sha256:00"), "sha256:00");
    }
}
