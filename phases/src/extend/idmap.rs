//! User-namespace id maps for the extender's executors (issue 7 "Executor", issue 19 item 1): identity
//! as real root, the caller's `/etc/subuid` + `/etc/subgid` ranges through `newuidmap`/`newgidmap`
//! when rootless, or only the caller's own ids when it has no range (rootless containers), plus the
//! probe that tells whether a user namespace can be created at all.

use std::path::Path;

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};

use super::sandbox::{exit_now, SandboxError};

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// How ids outside map to ids inside the user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// Real root: identity over the whole id space.
    Identity,
    /// Unprivileged: our uid/gid become 0, the subordinate ranges become 1..=count.
    Rootless {
        /// Our uid.
        uid: u32,
        /// Our gid.
        gid: u32,
        /// First subordinate uid and count.
        subuid: (u32, u32),
        /// First subordinate gid and count.
        subgid: (u32, u32),
    },
    /// Unprivileged without a subordinate range (e.g. `--user 1000` in a container): only our own
    /// uid/gid, as 0, written by ourselves (`setgroups` denied). Steps can only run as namespace root
    /// and files keep the one owner.
    Single {
        /// Our uid.
        uid: u32,
        /// Our gid.
        gid: u32,
    },
}

impl IdMapping {
    /// Identity when running as root, else the caller's ranges from `/etc/subuid` and `/etc/subgid`.
    pub fn detect() -> Result<Self, SandboxError> {
        let uid = Uid::effective().as_raw();
        let gid = Gid::effective().as_raw();
        if uid == 0 {
            return Ok(IdMapping::Identity);
        }
        let name = user_name(uid);
        let subuid = sub_range(Path::new("/etc/subuid"), uid, name.as_deref())?;
        let subgid = sub_range(Path::new("/etc/subgid"), uid, name.as_deref())?;
        Ok(IdMapping::Rootless {
            uid,
            gid,
            subuid,
            subgid,
        })
    }

    /// [`IdMapping::detect`], falling back to [`IdMapping::Single`] when this unprivileged user has no
    /// subordinate range (or no `newuidmap`).
    pub fn detect_or_single() -> Self {
        match Self::detect() {
            Ok(m @ IdMapping::Rootless { .. }) if !has_id_map_tools() => {
                tracing::warn!(
                    "newuidmap/newgidmap not found: mapping only uid {} into the user namespace ({m:?} unused)",
                    Uid::effective()
                );
                Self::single()
            }
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("{e}: mapping only this user's ids into the user namespace");
                Self::single()
            }
        }
    }

    fn single() -> Self {
        IdMapping::Single {
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
        }
    }

    /// The host id that namespace id `id` maps to, if it is mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        match self {
            IdMapping::Identity => Some(id),
            IdMapping::Rootless { uid, subuid, .. } => match id {
                0 => Some(*uid),
                n if n <= subuid.1 => Some(subuid.0 + n - 1),
                _ => None,
            },
            IdMapping::Single { uid, .. } => (id == 0).then_some(*uid),
        }
    }
}

fn has_id_map_tools() -> bool {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    ["newuidmap", "newgidmap"]
        .iter()
        .all(|tool| path.split(':').any(|d| Path::new(d).join(tool).is_file()))
}

/// Whether this process may create a user + mount namespace (a forked child tries `unshare(2)` and
/// exits). Refused under Docker's/Kubernetes' default seccomp profile, in a chroot, or where
/// unprivileged user namespaces are disabled.
pub fn probe_user_namespace() -> Result<(), nix::Error> {
    // SAFETY: the child only calls `unshare` and `_exit`.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
                Ok(()) => 0,
                Err(e) => (e as i32).clamp(1, 125),
            };
            exit_now(code)
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(nix::Error::from_raw(code)),
            _ => Err(nix::Error::ECHILD),
        },
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

fn sub_range(file: &Path, uid: u32, name: Option<&str>) -> Result<(u32, u32), SandboxError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| SandboxError::NoSubIds(format!("{}: {e}", file.display())))?;
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() != 3 {
            continue;
        }
        if f[0] == uid.to_string() || Some(f[0]) == name {
            if let (Ok(start), Ok(count)) = (f[1].parse(), f[2].parse()) {
                return Ok((start, count));
            }
        }
    }
    Err(SandboxError::NoSubIds(format!(
        "no entry for uid {uid} in {}",
        file.display()
    )))
}

pub(super) fn write_maps(pid: Pid, mapping: &IdMapping) -> Result<(), SandboxError> {
    match mapping {
        IdMapping::Identity => {
            for file in ["uid_map", "gid_map"] {
                let path = format!("/proc/{pid}/{file}");
                std::fs::write(&path, "0 0 4294967295\n").map_err(io(format!("writing {path}")))?;
            }
            Ok(())
        }
        IdMapping::Rootless {
            uid,
            gid,
            subuid,
            subgid,
        } => {
            for (tool, own, range) in [("newuidmap", uid, subuid), ("newgidmap", gid, subgid)] {
                let out = std::process::Command::new(tool)
                    .args([
                        pid.to_string(),
                        "0".into(),
                        own.to_string(),
                        "1".into(),
                        "1".into(),
                        range.0.to_string(),
                        range.1.to_string(),
                    ])
                    .output()
                    .map_err(io(format!("running {tool}")))?;
                if !out.status.success() {
                    return Err(SandboxError::IdMap {
                        tool: tool.into(),
                        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
            }
            Ok(())
        }
        IdMapping::Single { uid, gid } => {
            // An unprivileged process may map its own ids once it gave up setgroups(2).
            for (file, line) in [
                ("setgroups", "deny".to_string()),
                ("uid_map", format!("0 {uid} 1\n")),
                ("gid_map", format!("0 {gid} 1\n")),
            ] {
                let path = format!("/proc/{pid}/{file}");
                std::fs::write(&path, line).map_err(io(format!("writing {path}")))?;
            }
            Ok(())
        }
    }
}
