//! Which executor applies the Dockerfile steps (issue 19 item 1): the extender runs where platforms run
//! it — on a laptop, in a rootless pod, or as root in the build/run image's own container under the
//! default seccomp profile, where no namespace can be made (pack, the Tekton `buildpacks-phases` task).
//!
//! - [`Executor::UserNamespace`]: a forked worker in a new user + mount namespace (identity id map as
//!   root, subordinate ranges or only our own ids rootless); every `RUN` is sandboxed (mount + pid
//!   namespaces, fresh `/proc`, private `/dev`, `chroot`).
//! - [`Executor::Current`]: the caller already is root of its own user + mount namespace
//!   (`creator -build-image`, rootless included): same sandboxed steps, no nested user namespace.
//! - [`Executor::InPlace`]: root, but namespaces are refused (`unshare(CLONE_NEWUSER)` → `EPERM` under
//!   Docker's/Kubernetes' `RuntimeDefault` seccomp profile, no `CAP_SYS_ADMIN`, or any chrooted process):
//!   the work runs in this process and each `RUN` runs directly on the root — the container's own `/`,
//!   with its `/proc`, `/dev` and network files — with the step's user, env, working directory and shell,
//!   like kaniko does. Snapshots leave out every mount point and the lifecycle's own paths
//!   ([`super::snapshot::Ignore`]), so platform volumes are never part of a layer.
//!
//! [`Executor::detect`] picks one: user namespaces where they work, in place as root where they do not,
//! and otherwise an error naming what is missing.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::sandbox::{self, IdMapping, Isolation, SandboxError};
use crate::archive::Ownership;

/// How the steps of one extension run are executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// A worker forked into a new user + mount namespace with this id map; sandboxed steps.
    UserNamespace(IdMapping),
    /// Already namespace root (the creator's build-image worker): in this process, sandboxed steps.
    Current,
    /// Root without namespaces: in this process, steps directly on the root.
    InPlace,
}

impl Executor {
    /// User namespaces where they can be made (identity map as root; subordinate ranges, else only our
    /// own ids, rootless), [`Executor::InPlace`] as root where they cannot, else
    /// [`SandboxError::NoExecutor`] naming the refused call.
    pub fn detect() -> Result<Self, SandboxError> {
        let root = nix::unistd::Uid::effective().is_root();
        match sandbox::probe_user_namespace() {
            Ok(()) if root => Ok(Executor::UserNamespace(IdMapping::Identity)),
            Ok(()) => Ok(Executor::UserNamespace(IdMapping::detect_or_single())),
            Err(e) if root => {
                tracing::debug!(
                    "unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}: applying the Dockerfiles in place"
                );
                Ok(Executor::InPlace)
            }
            Err(e) => Err(SandboxError::NoExecutor(format!(
                "not root and user namespaces unavailable: unshare(CLONE_NEWUSER|CLONE_NEWNS): {e} \
                 (run the extender as root in the image's container, or allow user namespaces, e.g. \
                 a seccomp profile that permits unshare)"
            ))),
        }
    }

    /// How each `RUN` step is isolated.
    pub fn isolation(&self) -> Isolation {
        match self {
            Executor::UserNamespace(_) | Executor::Current => Isolation::Sandbox,
            Executor::InPlace => Isolation::Direct,
        }
    }

    /// How layers are unpacked into a private root: with their owners, unless only our own ids are
    /// mapped (then every file belongs to the one mapped user).
    pub fn ownership(&self) -> Ownership {
        match self {
            Executor::UserNamespace(IdMapping::Single { .. }) => Ownership::Ignore,
            _ => Ownership::FromArchive,
        }
    }

    /// Whether steps may switch to `uid` (a single-id map has no other user).
    pub fn maps_uid(&self, uid: u32) -> bool {
        match self {
            Executor::UserNamespace(m) => m.host_uid(uid).is_some(),
            Executor::Current | Executor::InPlace => true,
        }
    }

    /// Runs `work` under this executor: in the namespaced worker (result passed back as JSON) or in
    /// this process.
    pub fn run<T, F>(&self, work: F) -> Result<T, SandboxError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, String>,
    {
        match self {
            Executor::UserNamespace(mapping) => sandbox::in_user_namespace(mapping, work),
            Executor::Current | Executor::InPlace => work().map_err(SandboxError::Worker),
        }
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        match self {
            Executor::UserNamespace(IdMapping::Identity) => {
                "user namespace (identity id map)".into()
            }
            Executor::UserNamespace(IdMapping::Rootless { .. }) => {
                "rootless user namespace (subordinate id ranges)".into()
            }
            Executor::UserNamespace(IdMapping::Single { uid, .. }) => {
                format!("rootless user namespace (only uid {uid} mapped)")
            }
            Executor::Current => "the current user namespace".into(),
            Executor::InPlace => "in place (no namespaces)".into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn in_place_steps_are_direct_and_keep_owners() {
        assert_eq!(Executor::InPlace.isolation(), Isolation::Direct);
        assert_eq!(Executor::Current.isolation(), Isolation::Sandbox);
        assert!(matches!(
            Executor::UserNamespace(IdMapping::Single { uid: 5, gid: 5 }).ownership(),
            Ownership::Ignore
        ));
        assert!(!Executor::UserNamespace(IdMapping::Single { uid: 5, gid: 5 }).maps_uid(1000));
        assert!(Executor::InPlace.maps_uid(1000));
        // In-process executors pass the closure's result and error through unchanged.
        assert_eq!(Executor::InPlace.run(|| Ok(7)).unwrap(), 7);
        let e = Executor::Current.run::<u8, _>(|| Err("boom".into()));
        assert!(matches!(e, Err(SandboxError::Worker(m)) if m == "boom"));
    }
}
