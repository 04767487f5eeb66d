//! How a phase reaches images (platform spec "Outputs" / `-layout`, `-daemon`; IM-30): the one
//! [`ImageStore`] the inputs select — an OCI layout tree (`-layout`, `-layout-dir`), registries, or a Docker
//! daemon — plus the registry client for what lives in a registry whatever the store (the
//! cache image with `-daemon`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::Inputs;
use crate::image::daemon::DaemonStore;
use crate::image::layout::LayoutStore;
use crate::image::registry::{
    ImageRef, Keychain, KeychainError, RegistryClient, RegistryError, RegistryOptions,
    RegistryStore,
};
use crate::image::{Image, ImageError, ImageStore, ImageWriter, StoreKind};
use crate::Failure;

/// The image store of a phase run.
#[derive(Debug, Clone)]
pub struct ImageAccess {
    store: Arc<dyn ImageStore>,
    cache_store: Arc<dyn ImageStore>,
    layout: Option<LayoutStore>,
    registry: Option<RegistryClient>,
}

/// Access-mode errors.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The Docker daemon (`-daemon`) cannot be reached.
    #[error(transparent)]
    Daemon(ImageError),
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

impl ImageAccess {
    /// The access mode the inputs ask for.
    pub fn from_inputs(inputs: &Inputs) -> Result<Self, AccessError> {
        if inputs.use_daemon {
            let daemon = DaemonStore::connect()
                .map_err(AccessError::Daemon)?
                .with_launch_cache(inputs.launch_cache_dir.clone());
            return Ok(Self::daemon(daemon, Self::registry_client(inputs)?));
        }
        if inputs.use_layout {
            let dir = inputs.layout_dir.clone().ok_or(AccessError::NoLayoutDir)?;
            return Ok(Self::layout(dir));
        }
        Ok(Self::registry(Self::registry_client(inputs)?))
    }

    /// Images as OCI layouts under `dir`.
    pub fn layout(dir: PathBuf) -> Self {
        let store = LayoutStore::new(dir);
        let shared: Arc<dyn ImageStore> = Arc::new(store.clone());
        Self {
            store: shared.clone(),
            cache_store: shared,
            layout: Some(store),
            registry: None,
        }
    }

    /// Images in registries, reached with `client`.
    pub fn registry(client: RegistryClient) -> Self {
        let shared: Arc<dyn ImageStore> = Arc::new(RegistryStore::new(client.clone()));
        Self {
            store: shared.clone(),
            cache_store: shared,
            layout: None,
            registry: Some(client),
        }
    }

    /// Images in a Docker daemon; the cache image (`-cache-image`) and images named only in a
    /// registry stay in registries reached with `client`.
    pub fn daemon(daemon: DaemonStore, client: RegistryClient) -> Self {
        Self {
            store: Arc::new(daemon),
            cache_store: Arc::new(RegistryStore::new(client.clone())),
            layout: None,
            registry: Some(client),
        }
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
        if let Some(client) = &self.registry {
            let refs: Vec<ImageRef> = references
                .iter()
                .map(AsRef::as_ref)
                .filter(|r| !r.is_empty() && !r.starts_with('/'))
                .filter_map(|r| ImageRef::parse(r).ok())
                .collect();
            client.keychain().resolve_now(&refs);
        }
    }

    /// The store images are read from and written to.
    pub fn store(&self) -> &dyn ImageStore {
        self.store.as_ref()
    }

    /// Which kind of store it is.
    pub fn kind(&self) -> StoreKind {
        self.store.kind()
    }

    /// Whether images live in layouts.
    pub fn is_layout(&self) -> bool {
        self.kind() == StoreKind::Layout
    }

    /// The registry client, where images (or the cache image) live in registries.
    pub fn registry_client_of(&self) -> Option<&RegistryClient> {
        self.registry.as_ref()
    }

    /// The layout path of a reference (layout mode).
    pub fn layout_path(&self, reference: &str) -> Option<PathBuf> {
        self.layout.as_ref()?.path_of(reference).ok()
    }

    /// Opens an image given as a reference or as an identifier this store recorded (`<layout
    /// path>@sha256:…`); `Ok(None)` when it does not exist.
    pub fn open(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        self.store.open(reference)
    }

    /// A writer for the image `reference`.
    pub fn writer(&self, reference: &str) -> Result<Box<dyn ImageWriter>, ImageError> {
        self.store.writer(reference)
    }

    /// The store of the cache image (`-cache-image`): a registry, also with `-daemon` (as the
    /// reference); the layout tree in layout mode.
    pub fn cache_store(&self) -> &dyn ImageStore {
        self.cache_store.as_ref()
    }

    /// Names `source` (written to this store) also `reference` without writing it again, where the
    /// store can (a daemon tags); `None` when it must be saved under that name.
    pub fn tag_existing(&self, source: &Image, reference: &str) -> Option<Result<(), ImageError>> {
        self.store.tag_existing(source, reference)
    }
}

impl AccessError {
    /// The phase failure: the reference's `initialize docker client` (exit 1) for the daemon,
    /// unreadable credentials (a malformed `CNB_REGISTRY_AUTH`) as its `failed to resolve keychain`
    /// (exit 1), an input error (exit 3) otherwise.
    pub fn failure(&self) -> Failure {
        match self {
            AccessError::Daemon(_) => {
                Failure::new(cnb_spec::exit::FAILED, "initialize docker client", self)
            }
            AccessError::Keychain(e) => Failure::new(cnb_spec::exit::FAILED, "resolve keychain", e),
            _ => Failure::new(cnb_spec::exit::INVALID_ARGS, "resolve inputs", self),
        }
    }
}
