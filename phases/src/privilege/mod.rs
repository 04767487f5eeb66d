//! Privileges: run as the build user, chown volumes, refuse root where the spec says (checklist G-17,
//! G-19, G-20; platform spec "Build user" and the per-phase "Running as root" notes).
//!
//! - [`refuse_root`]: detector and builder never run as root (G-20).
//! - [`chown_volumes`]: recursively hands volumes to `CNB_USER_ID:CNB_GROUP_ID` unless the top directory
//!   is already writable by them (G-19; skipping is what lets rootless platforms such as kpack work).
//! - [`reach::check_reachable`]: fails up front, naming the blocking directory, when the build user
//!   cannot reach a volume (a 0700 parent).
//! - [`drop_to`]: `setgroups` + `setresgid` + `setresuid` to the build user (a no-op when already him).
//! - [`ensure_privileges`]: the whole per-phase step in one call. Phases that talk to registries must
//!   build their keychain/registry client **before** calling it (G-17: docker config may be root-only).
//! - `/etc/passwd` and `/etc/group` are parsed here ([`passwd`]) rather than through NSS: the binaries are
//!   static and run inside arbitrary images.

pub mod passwd;
pub mod reach;
pub mod secrets;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use crate::cli::{Inputs, Phase};
use crate::Failure;

pub use passwd::{BuildUser, GroupEntry, PasswdEntry};

/// Privilege errors. Each names the path or identity involved.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// Changing ownership failed.
    #[error("chown {path}: {source}")]
    Chown {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading a directory or file's metadata failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A set*id call failed.
    #[error("{call}: {source}")]
    SetId {
        /// The call, e.g. `setresuid(1000)`.
        call: String,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// The uid has no `/etc/passwd` entry.
    #[error("user {uid} not found in {path}")]
    UnknownUser {
        /// The uid looked up.
        uid: u32,
        /// The passwd file read.
        path: PathBuf,
    },
}

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// G-20: detector and builder refuse to run as root: `failed to <action>: refusing to run as root`
/// (exit 1).
pub fn refuse_root(action: &str) -> Result<(), Failure> {
    if is_root() {
        return Err(Failure::msg(
            cnb_spec::exit::FAILED,
            action,
            "refusing to run as root",
        ));
    }
    Ok(())
}

const GROUP_WRITE: u32 = 0o020;
const WORLD_WRITE: u32 = 0o002;

/// Whether a file owned by `owner:group` with `mode` counts as writable by `uid:gid` (G-19): owner
/// match, or group match with group-write, or world-write.
pub fn can_write(uid: u32, gid: u32, owner: u32, group: u32, mode: u32) -> bool {
    owner == uid || (group == gid && mode & GROUP_WRITE != 0) || mode & WORLD_WRITE != 0
}

/// G-19: for each existing path whose top directory is not already writable by `uid:gid`, chowns it
/// and everything below it (symlinks themselves, never their targets). Missing paths are skipped.
pub fn chown_volumes<P: AsRef<Path>>(
    uid: u32,
    gid: u32,
    paths: &[P],
) -> Result<(), PrivilegeError> {
    for p in paths {
        let p = p.as_ref();
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(PrivilegeError::Read {
                    path: p.to_path_buf(),
                    source,
                })
            }
        };
        if can_write(uid, gid, meta.uid(), meta.gid(), meta.mode()) {
            // Correct ownership at the top: assume the children have it too (performance, as the reference).
            continue;
        }
        // The top may be a symlink to the volume: follow it there, never below.
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|source| {
            PrivilegeError::Chown {
                path: p.to_path_buf(),
                source,
            }
        })?;
        if meta.is_dir() {
            chown_children(p, uid, gid)?;
        }
    }
    Ok(())
}

fn chown_children(dir: &Path, uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let read_err = |source| PrivilegeError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(|source| {
            PrivilegeError::Chown {
                path: path.clone(),
                source,
            }
        })?;
        let ft = entry.file_type().map_err(|source| PrivilegeError::Read {
            path: path.clone(),
            source,
        })?;
        if ft.is_dir() {
            chown_children(&path, uid, gid)?;
        }
    }
    Ok(())
}

/// Switches the whole process to `uid:gid` with `groups` as supplementary groups: `setgroups` (when
/// root), then `setresgid`, then `setresuid`. A no-op when the real uid and gid already match. glibc
/// applies set*id to every thread of the process.
pub fn drop_to_with_groups(uid: u32, gid: u32, groups: &[u32]) -> Result<(), PrivilegeError> {
    if nix::unistd::getuid().as_raw() == uid && nix::unistd::getgid().as_raw() == gid {
        return Ok(());
    }
    let setid = |call: String| move |source| PrivilegeError::SetId { call, source };
    if is_root() {
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids).map_err(setid(format!("setgroups({groups:?})")))?;
    }
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(setid(format!("setresgid({gid})")))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(setid(format!("setresuid({uid})")))?;
    // A uid change resets the dumpable flag: a process holding credentials stays unreadable.
    secrets::reprotect().map_err(|e| PrivilegeError::SetId {
        call: "prctl(PR_SET_DUMPABLE, 0)".into(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EPERM)),
    })?;
    Ok(())
}

/// Drops to `uid:gid` with the supplementary groups `/etc/group` gives the user (plus `gid`), so no
/// group of the starting (root) identity survives.
pub fn drop_to(uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let user = BuildUser::lookup(
        uid,
        gid,
        Path::new(passwd::PASSWD_PATH),
        Path::new(passwd::GROUP_PATH),
    );
    drop_to_with_groups(uid, gid, &user.groups)
}

/// `HOME` and `USER` for `uid` from the passwd file at `passwd_path` (creator, G-19). Unlike the
/// reference, which sets `USER` to the GECOS name, `USER` is the login name.
pub fn user_environment(
    uid: u32,
    passwd_path: &Path,
) -> Result<[(&'static str, String); 2], PrivilegeError> {
    let entries = passwd::read_passwd(passwd_path).map_err(|source| PrivilegeError::Read {
        path: passwd_path.to_path_buf(),
        source,
    })?;
    let e =
        entries
            .into_iter()
            .find(|e| e.uid == uid)
            .ok_or_else(|| PrivilegeError::UnknownUser {
                uid,
                path: passwd_path.to_path_buf(),
            })?;
    Ok([("HOME", e.home), ("USER", e.name)])
}

/// Sets `HOME` and `USER` for `uid` from `/etc/passwd` in this process's environment. Call it while the
/// process is still single-threaded (the creator does so at start-up).
pub fn set_environment_for_user(uid: u32) -> Result<(), PrivilegeError> {
    for (k, v) in user_environment(uid, Path::new(passwd::PASSWD_PATH))? {
        std::env::set_var(k, v);
    }
    Ok(())
}

/// The volumes a phase hands to the build user before dropping privileges (G-19).
pub fn volumes_for(phase: Phase, inputs: &Inputs) -> Vec<PathBuf> {
    let layers = Some(inputs.layers_dir.clone());
    let cache = inputs.cache_dir.clone();
    let launch_cache = inputs.launch_cache_dir.clone();
    let kaniko = Some(inputs.kaniko_dir.clone());
    let list = match phase {
        Phase::Analyzer => vec![layers, cache, launch_cache],
        Phase::Restorer => vec![layers, cache, kaniko],
        Phase::Exporter => vec![cache, launch_cache],
        Phase::Creator => vec![cache, launch_cache, layers],
        Phase::Detector | Phase::Builder | Phase::Extender | Phase::Rebaser => vec![],
    };
    list.into_iter().flatten().collect()
}

/// The per-phase privilege step, as the reference's `Privileges()` (G-19, G-20):
/// detector/builder refuse root; every volume must be reachable by the build user
/// ([`reach::check_reachable`]); analyzer, restorer, exporter and creator chown their volumes
/// ([`volumes_for`]) to `inputs.uid:gid` and drop to it; the rebaser only drops; the creator then sets
/// `HOME`/`USER`; the extender keeps its identity (it drops itself before building).
///
/// Phases using registries must create their keychain/registry client *before* this call (G-17).
/// Failures: `failed to chown volumes: ...`, `failed to exec as user <uid>:<gid>: ...`,
/// `failed to set environment for user <uid>: ...` (exit 1).
pub fn ensure_privileges(phase: Phase, inputs: &Inputs) -> Result<(), Failure> {
    let code = cnb_spec::exit::FAILED;
    match phase {
        Phase::Detector | Phase::Builder => return refuse_root(phase.verb()),
        Phase::Extender => return Ok(()),
        _ => {}
    }
    let (uid, gid) = (inputs.uid, inputs.gid);
    reach::check_reachable(phase, inputs)?;
    chown_volumes(uid, gid, &volumes_for(phase, inputs))
        .map_err(|e| Failure::new(code, "chown volumes", &e))?;
    drop_to(uid, gid).map_err(|e| Failure::new(code, format!("exec as user {uid}:{gid}"), &e))?;
    if phase == Phase::Creator {
        set_environment_for_user(uid)
            .map_err(|e| Failure::new(code, format!("set environment for user {uid}"), &e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn can_write_rules() {
        // G-19
        assert!(can_write(1000, 1000, 1000, 0, 0o700));
        assert!(can_write(1000, 1000, 0, 1000, 0o770));
        assert!(!can_write(1000, 1000, 0, 1000, 0o750));
        assert!(can_write(1000, 1000, 0, 0, 0o777));
        assert!(can_write(1000, 1000, 0, 0, 0o1777));
        assert!(!can_write(1000, 1000, 0, 0, 0o755));
    }

    #[test]
    fn refuse_root_message() {
        // G-20
        match refuse_root("detect") {
            Ok(()) => assert!(!is_root()),
            Err(f) => {
                assert!(is_root());
                assert_eq!(f.to_string(), "failed to detect: refusing to run as root");
                assert_eq!(f.code, 1);
            }
        }
    }

    #[test]
    fn chown_volumes_recurses_unless_writable() {
        if !is_root() {
            return; // chown to another user needs root; CI runs as root
        }
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(vol.join("a/b")).unwrap();
        std::fs::write(vol.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", vol.join("a/link")).unwrap();
        std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        chown_volumes(1000, 1001, &[vol.clone(), dir.path().join("missing")]).unwrap();
        for p in ["", "a", "a/b", "a/b/f", "a/link"] {
            let m = std::fs::symlink_metadata(vol.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1000, 1001), "{p}");
        }
        // The symlink's target is untouched.
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);

        // Already writable at the top (world-writable): children are left alone.
        let vol2 = dir.path().join("vol2");
        std::fs::create_dir_all(vol2.join("c")).unwrap();
        std::fs::set_permissions(&vol2, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        chown_volumes(1000, 1000, &[&vol2]).unwrap();
        assert_eq!(std::fs::metadata(vol2.join("c")).unwrap().uid(), 0);
    }

    #[test]
    fn user_environment_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:CNB user,,,:/home/cnb:/bin/sh\n",
        )
        .unwrap();
        let env = user_environment(1000, &p).unwrap();
        assert_eq!(
            env,
            [
                ("HOME", "/home/cnb".to_string()),
                ("USER", "cnb".to_string())
            ]
        );
        let err = user_environment(42, &p).unwrap_err();
        assert!(err.to_string().contains("user 42 not found in"), "{err}");
    }

    #[test]
    fn volumes_per_phase() {
        let ctx = crate::cli::Context::new(
            [("CNB_CACHE_DIR", "/c"), ("CNB_LAUNCH_CACHE_DIR", "/lc")],
            "/",
        );
        let args: Vec<String> = vec!["img".into()];
        let api = cnb_spec::PlatformApi::LATEST;
        let r = crate::cli::resolve::resolve(Phase::Creator, api, &args, &ctx).unwrap();
        let v = volumes_for(Phase::Creator, &r.inputs);
        assert_eq!(
            v,
            vec![
                PathBuf::from("/c"),
                PathBuf::from("/lc"),
                PathBuf::from("/layers")
            ]
        );
        let r = crate::cli::resolve::resolve(Phase::Restorer, api, &[], &ctx).unwrap();
        let v = volumes_for(Phase::Restorer, &r.inputs);
        assert_eq!(
            v,
            vec![
                PathBuf::from("/layers"),
                PathBuf::from("/c"),
                PathBuf::from("/kaniko")
            ]
        );
        assert!(volumes_for(Phase::Rebaser, &r.inputs).is_empty());
    }

    #[test]
    fn drop_to_switches_every_id() {
        if !is_root() {
            return;
        }
        // In a forked child: only async-signal-safe-ish syscalls after fork (no allocation).
        let groups = [1000u32, 1005];
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = drop_to_with_groups(1000, 1000, &groups).is_ok()
                    && nix::unistd::getresuid().map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()))
                        == Ok((1000, 1000, 1000))
                    && nix::unistd::getresgid().map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()))
                        == Ok((1000, 1000, 1000))
                    && {
                        let mut buf = [0 as libc::gid_t; 8];
                        // SAFETY: buf has room for 8 gids.
                        let n = unsafe { libc::getgroups(8, buf.as_mut_ptr()) };
                        n == 2 && buf[..2] == [1000, 1005]
                    }
                    // Root is gone for good: regaining it must fail.
                    && nix::unistd::setuid(Uid::from_raw(0)).is_err();
                // SAFETY: _exit is always safe in a child.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
