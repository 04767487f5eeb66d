//! `creator -build-image`, export step: the exporter runs chrooted in the build root, so the app image
//! holds `<layers>` at `/layers` and the app at `/workspace` — the paths the buildpacks saw and wrote
//! into `launch.toml`, env files and process definitions.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::unistd::{Gid, Uid};

use super::sandboxed::{back_to_user, decode, encode, regain_root, sys_fail, BuildRoot};
use crate::cli::Inputs;
use crate::Failure;

/// A host path as the chrooted exporter sees it: inside `<layers>` → `/layers/…`, inside the app →
/// `/workspace/…`, else the same path (bind-mounted there by [`export_binds`]).
fn translate(inputs: &Inputs, p: &Path) -> PathBuf {
    if let Ok(rel) = p.strip_prefix(&inputs.layers_dir) {
        return Path::new("/layers").join(rel);
    }
    if let Ok(rel) = p.strip_prefix(&inputs.app_dir) {
        return Path::new("/workspace").join(rel);
    }
    if let Ok(rel) = p.strip_prefix(&inputs.platform_dir) {
        return Path::new("/platform").join(rel);
    }
    p.to_path_buf()
}

/// The inputs of the in-image exporter: every path as the build saw it.
fn inside_inputs(inputs: &Inputs) -> Inputs {
    let mut i = inputs.clone();
    for p in [
        &mut i.analyzed_path,
        &mut i.group_path,
        &mut i.plan_path,
        &mut i.report_path,
        &mut i.project_metadata_path,
        &mut i.extended_dir,
        &mut i.generated_dir,
    ] {
        *p = translate(inputs, p);
    }
    i.layers_dir = PathBuf::from("/layers");
    i.app_dir = PathBuf::from("/workspace");
    i.platform_dir = PathBuf::from("/platform");
    i
}

/// Host paths the exporter needs inside the build root, mounted at the same path.
fn export_binds(inputs: &Inputs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    v.extend(inputs.cache_dir.iter().cloned());
    v.extend(inputs.layout_dir.iter().cloned());
    v.extend(inputs.launch_cache_dir.iter().cloned());
    v.push(inputs.launcher_path.clone());
    v.push(inputs.launcher_sbom_dir.clone());
    v.push(inputs.run_path.clone());
    v.push(inputs.stack_path.clone());
    for p in [&inputs.report_path, &inputs.project_metadata_path] {
        if translate(inputs, p) == *p {
            v.extend(p.parent().map(Path::to_path_buf));
        }
    }
    for p in ["/etc/ssl/certs", "/etc/resolv.conf", "/etc/hosts"] {
        v.push(PathBuf::from(p));
    }
    v.retain(|p| p.exists() && !p.starts_with("/cnb/lifecycle"));
    v
}

fn bind_same_path(root: &Path, host: &Path) -> Result<(), String> {
    let target = root.join(host.strip_prefix("/").unwrap_or(host));
    if host.is_dir() {
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    } else {
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        if !target.exists() {
            std::fs::write(&target, b"").map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    mount(
        Some(host),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("mounting {} in the build root: {e}", host.display()))
}

impl BuildRoot {
    /// Exports from inside the build root, so the image holds `<layers>` at `/layers` and the app at
    /// `/workspace` — the paths the buildpacks wrote into `launch.toml`, env files and the processes.
    /// A forked child unshares its mount namespace, mounts the exporter's other inputs (cache, layout
    /// dir, launcher, `run.toml`, CA certificates) at their own paths, chroots and drops to the build user.
    pub fn export(&self, inputs: &Inputs) -> Result<(), Failure> {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let inside = inside_inputs(inputs);
        let binds = export_binds(inputs);
        let (r, w) = nix::unistd::pipe().map_err(sys_fail("create a pipe".into()))?;
        regain_root().map_err(sys_fail("regain namespace root".into()))?;
        // SAFETY: the child runs the exporter in a fresh copy of this process and leaves with `_exit`;
        // no lock of ours is held across the fork (the worker is single-threaded here).
        let forked = unsafe { nix::unistd::fork() };
        match forked {
            Err(e) => {
                let _ = back_to_user(self.uid, self.gid);
                Err(Failure::msg(
                    cnb_spec::exit::FAILED,
                    "fork the exporter",
                    e.to_string(),
                ))
            }
            Ok(nix::unistd::ForkResult::Child) => {
                drop(r);
                let result = (|| -> Result<(), Failure> {
                    let f = |what: &str| {
                        let what = what.to_string();
                        move |e: String| Failure::msg(cnb_spec::exit::FAILED, what, e)
                    };
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                        .map_err(|e| e.to_string())
                        .map_err(f("unshare the mount namespace"))?;
                    for b in &binds {
                        bind_same_path(&self.root, b).map_err(f("prepare the export root"))?;
                    }
                    nix::unistd::chroot(&self.root)
                        .and_then(|()| nix::unistd::chdir("/"))
                        .map_err(|e| e.to_string())
                        .map_err(f("chroot into the build root"))?;
                    nix::unistd::setresgid(
                        Gid::from_raw(self.gid),
                        Gid::from_raw(self.gid),
                        Gid::from_raw(self.gid),
                    )
                    .and_then(|()| {
                        nix::unistd::setresuid(
                            Uid::from_raw(self.uid),
                            Uid::from_raw(self.uid),
                            Uid::from_raw(self.uid),
                        )
                    })
                    .map_err(|e| e.to_string())
                    .map_err(f("drop to the build user"))?;
                    crate::export::run(&inside)
                })();
                let msg = match &result {
                    Ok(()) => String::new(),
                    Err(f) => encode(f),
                };
                let bytes = msg.as_bytes();
                // SAFETY: writing a valid buffer to our pipe end, then `_exit` without the parent's
                // destructors.
                unsafe {
                    libc::write(w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                    libc::_exit(i32::from(result.is_err()))
                }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(w);
                let mut msg = String::new();
                let _ = std::fs::File::from(r).read_to_string(&mut msg);
                let status = nix::sys::wait::waitpid(child, None);
                back_to_user(self.uid, self.gid)
                    .map_err(sys_fail(format!("switch back to user {}", self.uid)))?;
                match status {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                    _ if !msg.is_empty() => Err(decode(&msg)),
                    other => Err(Failure::msg(
                        cnb_spec::exit::EXPORT_ERROR,
                        "export",
                        format!("the exporter in the build root ended with {other:?}"),
                    )),
                }
            }
        }
    }
}
