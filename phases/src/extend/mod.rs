//! The extender: apply image-extension Dockerfiles in userspace (platform spec "extender"; checklist
//! §6 EX-*). No daemon, no kaniko: steps run in a chroot inside user + mount + pid namespaces
//! ([`sandbox`]), each file-system step is snapshotted into a layer ([`snapshot`]) and cached
//! ([`cache`]).
//!
//! Library entry: [`Extender::extend`]. Phase entry: [`run`] (reads `analyzed.toml`, `group.toml`,
//! the generated Dockerfiles and `extend-config.toml`, then extends; kind `build` continues with the
//! builder in the same process).

pub mod apply;
pub mod cache;
pub mod dockerfile;
pub mod executor;
pub mod fsutil;
pub mod idmap;
pub mod inputs;
pub mod mounts;
pub mod oci;
mod phase;
pub mod sandbox;
pub mod snapshot;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_inplace;

use std::path::{Path, PathBuf};

pub use apply::{ExtensionInput, ImageState, Outcome};
pub use cache::StepCache;
pub use executor::Executor;
pub use sandbox::IdMapping;

use crate::cli::{ExtendKind, Inputs};

/// Which image is extended (`-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The build image; the build follows in the same process.
    Build,
    /// The run image; the result is written for the exporter.
    Run,
}

impl Kind {
    /// The kind the phase inputs ask for.
    pub fn of(inputs: &Inputs) -> Self {
        match inputs.extend_kind {
            ExtendKind::Build => Kind::Build,
            ExtendKind::Run => Kind::Run,
        }
    }
}

/// Extender failures (all exit 102 except where noted by [`run`]).
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    /// A Dockerfile is unusable.
    #[error(transparent)]
    Dockerfile(#[from] dockerfile::DockerfileError),
    /// The sandbox or a step failed (message names extension, file and line).
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    /// Reading the base image or writing the extended image failed.
    #[error(transparent)]
    Oci(#[from] oci::OciError),
    /// A platform file is unusable.
    #[error(transparent)]
    Inputs(#[from] inputs::InputsError),
    /// EX-07: the extended run image would run as root.
    #[error("the final user ID is 0 (root); please add another extension that resets the user to non-root")]
    FinalUserRoot,
    /// Rootless, the root to extend belongs to someone else (a build image cannot be extended in a
    /// private copy: the build runs on it).
    #[error(
        "cannot apply build.Dockerfiles to {} as uid {uid}: it belongs to uid {owner}; run `extender -kind=build` as root in the build image's container (no extra capabilities are needed), or build rootless with `creator -build-image`",
        root.display()
    )]
    RootNotWritable {
        /// The root.
        root: PathBuf,
        /// Our uid.
        uid: u32,
        /// Its owner.
        owner: u32,
    },
    /// The root is this machine's own `/`, not a container's.
    #[error("refusing to apply Dockerfiles to this machine's own / (not a container): run the extender inside the build or run image's container, as platforms do, or point CNB_EXTENDER_ROOT at a root filesystem to extend")]
    NotInContainer,
    /// A work directory could not be prepared.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// One extension run: which image, which root, which Dockerfiles, where outputs go.
#[derive(Debug, Clone)]
pub struct Extender {
    /// `build` or `run`.
    pub kind: Kind,
    /// OCI layout holding (at least) the manifest and config of the image being extended.
    pub base_layout: PathBuf,
    /// Manifest digest in that layout (first manifest if `None`).
    pub base_digest: Option<String>,
    /// The reference handed to Dockerfiles as `base_image`.
    pub base_ref: String,
    /// The root filesystem to change in place (the container's own `/` in platform use). `None`:
    /// unpack the base image's layers (which must be in the layout) into a directory under `work_dir`,
    /// and only if a step has to run. Kind build leaves every step applied to the root; kind run
    /// applies layers served from the step cache only when a later step (or a user name to resolve)
    /// needs them, since only the layers matter for the run image.
    pub root: Option<PathBuf>,
    /// Dockerfiles in group order.
    pub extensions: Vec<ExtensionInput>,
    /// `<extended>` (kind run writes `<extended>/run/<digest>/`).
    pub extended_dir: PathBuf,
    /// Step cache.
    pub cache: Option<StepCache>,
    /// Scratch space (removed afterwards).
    pub work_dir: PathBuf,
    /// How the steps run ([`Executor::detect`] for the phase; [`Executor::Current`] inside the
    /// creator's build-image namespace).
    pub executor: Executor,
    /// More paths (absolute, inside the root) to leave out of snapshots, e.g. `<layers>`, `<app>`.
    pub ignore: Vec<PathBuf>,
}

/// What [`Extender::extend`] produced.
#[derive(Debug, Clone)]
pub struct Extended {
    /// Layers, history and the final config state.
    pub outcome: Outcome,
    /// Kind run: the written `<extended>/run/<digest>/` layout.
    pub output: Option<PathBuf>,
}

fn is_root_user(root: &Path, user: &str) -> bool {
    if let Some(uid) = apply::numeric_uid(user) {
        return uid == 0;
    }
    match sandbox::resolve_user(root, user) {
        Ok((uid, _, _)) => uid == 0,
        Err(_) => {
            let u = user.split(':').next().unwrap_or(user);
            u == "0" || u == "root"
        }
    }
}

impl Extender {
    /// Applies the Dockerfiles. Kind run writes the extended image (and refuses a root final user);
    /// on failure nothing is left in `<extended>`.
    pub fn extend(&self) -> Result<Extended, ExtendError> {
        let base = oci::BaseImage::read(&self.base_layout, self.base_digest.as_deref())?;
        let io = |what: &str| {
            let what = what.to_string();
            move |source| ExtendError::Io { what, source }
        };
        std::fs::create_dir_all(&self.work_dir).map_err(io("creating the extender work dir"))?;
        let scratch = tempfile::Builder::new()
            .prefix("extend-")
            .tempdir_in(&self.work_dir)
            .map_err(io("creating the extender work dir"))?;
        let blobs_dir = scratch.path().join("blobs");
        let (root, unpack) = match &self.root {
            Some(r) => (r.clone(), false),
            None => (scratch.path().join("rootfs"), true),
        };
        let mut ignore = snapshot::Ignore::defaults();
        for p in &self.ignore {
            ignore.add_abs(&root, p);
        }
        ignore.add_abs(&root, &self.work_dir);
        ignore.add_abs(&root, &self.extended_dir);
        if let Some(c) = &self.cache {
            ignore.add_abs(&root, &c.dir);
        }
        // Volumes, secrets and bind-mounted files, and the lifecycle's own binaries.
        ignore.add_mount_points(&root, &mounts::mount_points());
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            ignore.add_abs(&root, &dir);
        }
        let req = apply::Request {
            root: root.clone(),
            extensions: self.extensions.clone(),
            base: base.state(),
            base_image: self.base_ref.clone(),
            base_digest: base.digest.clone(),
            blobs_dir: blobs_dir.clone(),
            cache: self.cache.clone(),
            ignore,
            // Unpacked only if a step has to run or the root is wanted afterwards.
            unpack_base: unpack.then(|| base.layer_paths()),
            materialize: self.kind == Kind::Build,
            compression: match self.kind {
                Kind::Build => crate::archive::Compression::None,
                Kind::Run => crate::archive::Compression::default(),
            },
            isolation: self.executor.isolation(),
            ownership: self.executor.ownership(),
        };
        let t = std::time::Instant::now();
        tracing::debug!("applying Dockerfiles {}", self.executor.describe());
        let outcome = self.executor.run(|| apply::apply(&req))?;
        tracing::debug!("extension worker done in {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let output = match self.kind {
            Kind::Build => None,
            Kind::Run => {
                // `apply` left the root current whenever a user name needs its passwd.
                if is_root_user(&root, &outcome.state.user) {
                    return Err(ExtendError::FinalUserRoot);
                }
                let uid_of = |u: &str| match apply::numeric_uid(u) {
                    Some(uid) => Some(uid),
                    None => sandbox::resolve_user(&root, u).ok().map(|r| r.0),
                };
                if uid_of(&outcome.state.user) != uid_of(&base.state().user) {
                    tracing::warn!(
                        "the extended run image's user ({}) differs from the original ({})",
                        outcome.state.user,
                        base.state().user
                    );
                }
                Some(oci::write_extended_run(
                    &self.extended_dir,
                    &base,
                    &outcome,
                    &blobs_dir,
                )?)
            }
        };
        tracing::debug!("output written in {:?}", t.elapsed());
        if let Some(c) = &self.cache {
            // EX-I2: expired entries are deleted, not only ignored. A failure only costs disk.
            // The worker wrote the cache as namespace root, i.e. as this process's own uid.
            match c.prune() {
                Ok(s) if s == cache::PruneStats::default() => {}
                Ok(s) => tracing::debug!(
                    "step cache: pruned {} expired entr(ies), {} blob(s), {} bytes",
                    s.entries,
                    s.blobs,
                    s.bytes
                ),
                Err(e) => tracing::warn!("step cache {}: pruning failed: {e}", c.dir.display()),
            }
        }
        if unpack && root.exists() {
            // The unpacked root may hold files only namespace root can delete.
            let _ = self
                .executor
                .run(|| std::fs::remove_dir_all(&root).map_err(|e| e.to_string()));
        }
        tracing::debug!("cleaned up");
        Ok(Extended { outcome, output })
    }
}

pub use phase::run;
