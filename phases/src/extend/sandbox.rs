//! Userspace isolation for applying Dockerfile steps (issue 7, "Executor"; ENVIRONMENT.md "Running
//! Dockerfile steps in userspace").
//!
//! Two levels:
//! - [`in_user_namespace`] forks a worker that unshares a user + mount namespace with a full id map
//!   (identity when real root; the caller's `/etc/subuid` + `/etc/subgid` ranges through `newuidmap` /
//!   `newgidmap` when rootless) and runs a closure there as namespace root. The whole extension (file
//!   copies, RUN steps, snapshots, layer writing) runs in that worker, so a rootless extender can read and
//!   create files owned by any mapped id.
//! - [`run_step`] (inside the worker) forks a child that unshares mount + pid namespaces, becomes pid 1
//!   of the new pid namespace through one more fork, mounts `proc`, a tmpfs `/dev` with bind-mounted
//!   device nodes, binds the host's `resolv.conf`/`hosts`, chroots into the root filesystem, drops to the
//!   step's user and execs the command. Its output is forwarded to our stdout and its tail kept for error
//!   messages.
//!
//! Forking happens from the calling thread; the children only use raw system calls and the allocator
//! (glibc's `fork` resets the allocator's locks in the child), never Rust's stdio locks.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, chroot, fork, pipe, ForkResult, Gid, Uid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::idmap::write_maps;
pub use super::idmap::{probe_user_namespace, IdMapping};

/// Sandbox failures.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call failed in the extender itself.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// An I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Rootless mode needs a subordinate id range.
    #[error(
        "cannot map ids for a rootless user namespace: {0} (add a range for this user to /etc/subuid and /etc/subgid, e.g. `user:100000:65536`)"
    )]
    NoSubIds(String),
    /// `newuidmap`/`newgidmap` failed.
    #[error("{tool} failed: {message}")]
    IdMap {
        /// Tool name.
        tool: String,
        /// Its stderr.
        message: String,
    },
    /// The namespaced worker died or reported garbage, or the work failed.
    #[error("{0}")]
    Worker(String),
    /// No executor can run here (not root, and user namespaces are refused).
    #[error("{0}")]
    NoExecutor(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Sys { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

fn write_all_fd(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for its length; `fd` is an open descriptor we own.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the forked child without running the parent's atexit handlers or
    // destructors, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// Runs `work` in a forked worker inside a new user + mount namespace (as namespace root, with the
/// id map of `mapping`) and returns its result, passed back as JSON through a pipe.
pub fn in_user_namespace<T, F>(mapping: &IdMapping, work: F) -> Result<T, SandboxError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let (sync_r, sync_w) = pipe().map_err(sys("creating a pipe"))?;
    let (go_r, go_w) = pipe().map_err(sys("creating a pipe"))?;
    let (res_r, res_w) = pipe().map_err(sys("creating a pipe"))?;
    // SAFETY: the child only runs our closure (allocator and raw system calls, no stdio locks) and
    // leaves with `_exit`; see the module documentation.
    match unsafe { fork() }.map_err(sys("forking the extension worker"))? {
        ForkResult::Child => {
            drop(sync_r);
            drop(go_w);
            drop(res_r);
            // The parent maps our ids through /proc/<pid>: a non-dumpable child's /proc belongs to root.
            // So this copy of the credentials is wiped first; once mapped, the worker is made
            // non-dumpable again and receives them back through the pipe (the creator's worker runs
            // analyze and export, which need them).
            crate::privilege::secrets::forget_and_become_dumpable();
            let report = |r: Result<T, String>| {
                let bytes = serde_json::to_vec(&r).unwrap_or_default();
                write_all_fd(res_w.as_raw_fd(), &bytes);
            };
            if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
                report(Err(format!(
                    "unshare(user, mount): {e} (are unprivileged user namespaces enabled?)"
                )));
                exit_now(1);
            }
            write_all_fd(sync_w.as_raw_fd(), b"1");
            let mut b = [0u8; 1];
            // SAFETY: reading one byte into a valid buffer from our pipe end.
            let n = unsafe { libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if n != 1 || b[0] != b'1' {
                exit_now(1);
            }
            if let Err(e) = crate::privilege::secrets::reprotect() {
                report(Err(format!("making the worker non-dumpable: {e}")));
                exit_now(1);
            }
            match read_credentials(go_r.as_raw_fd()) {
                Ok(Some(auth)) => {
                    if !crate::privilege::secrets::restore_in_forked_child(auth) {
                        report(Err("receiving the registry credentials: store busy".into()));
                        exit_now(1);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    report(Err(format!("receiving the registry credentials: {e}")));
                    exit_now(1);
                }
            }
            // Our own mounts must not propagate back to the host.
            if let Err(e) = mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            ) {
                report(Err(format!("making mounts private: {e}")));
                exit_now(1);
            }
            let r = work();
            report(r);
            exit_now(0);
        }
        ForkResult::Parent { child } => {
            drop(sync_w);
            drop(go_r);
            drop(res_w);
            let mut sync_file = std::fs::File::from(sync_r);
            let mut b = [0u8; 1];
            let synced = sync_file.read(&mut b).map(|n| n == 1).unwrap_or(false);
            let mapped = if synced {
                write_maps(child, mapping)
            } else {
                Ok(())
            };
            let go = synced && mapped.is_ok();
            write_all_fd(go_w.as_raw_fd(), if go { b"1" } else { b"0" });
            if go {
                // Length-prefixed; zero length: none. The pipe is private to parent and worker.
                let auth = crate::privilege::secrets::registry_auth().unwrap_or_default();
                write_all_fd(go_w.as_raw_fd(), &(auth.len() as u64).to_le_bytes());
                write_all_fd(go_w.as_raw_fd(), auth.as_bytes());
            }
            drop(go_w);
            let mut out = Vec::new();
            let read = std::fs::File::from(res_r).read_to_end(&mut out);
            let status = waitpid(child, None).map_err(sys("waiting for the extension worker"))?;
            mapped?;
            read.map_err(io("reading the extension worker's result"))?;
            if out.is_empty() {
                return Err(SandboxError::Worker(format!(
                    "the worker ended without a result ({status:?})"
                )));
            }
            let r: Result<T, String> = serde_json::from_slice(&out)
                .map_err(|e| SandboxError::Worker(format!("bad result: {e}")))?;
            r.map_err(SandboxError::Worker)
        }
    }
}

/// Reads the length-prefixed credentials the parent writes after the go byte (raw reads: the
/// worker is a forked child and uses no buffered stdio).
fn read_credentials(fd: i32) -> Result<Option<String>, String> {
    let mut len = [0u8; 8];
    read_exact_fd(fd, &mut len)?;
    let len = u64::from_le_bytes(len);
    if len == 0 {
        return Ok(None);
    }
    if len > 64 << 20 {
        return Err(format!("{len} bytes is not a credentials document"));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact_fd(fd, &mut buf)?;
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| "not UTF-8".to_string())
}

fn read_exact_fd(fd: i32, mut buf: &mut [u8]) -> Result<(), String> {
    while !buf.is_empty() {
        // SAFETY: reading into a valid, exclusive slice for its length from our own pipe end.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.to_string());
        }
        if n == 0 {
            return Err("the parent closed the pipe early".to_string());
        }
        buf = &mut buf[n as usize..];
    }
    Ok(())
}

/// One command to run in the root filesystem.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The root filesystem (host path).
    pub root: PathBuf,
    /// argv; `argv[0]` is resolved through `PATH` inside the root if it has no `/`.
    pub argv: Vec<String>,
    /// `KEY=VALUE` environment.
    pub env: Vec<String>,
    /// User, primary group and supplementary groups.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Working directory inside the root (created if missing).
    pub workdir: String,
    /// Host files bind-mounted over files inside the root (e.g. `/etc/resolv.conf`; sandboxed steps
    /// only).
    pub binds: Vec<(PathBuf, String)>,
    /// How the step is isolated.
    pub isolation: Isolation,
}

/// How a step process is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// New mount + pid namespaces, a fresh `/proc`, a private `/dev`, bound `resolv.conf`/`hosts`,
    /// then `chroot` into the root (needs namespace root, i.e. [`in_user_namespace`] or real root
    /// with `CAP_SYS_ADMIN`).
    #[default]
    Sandbox,
    /// No namespaces and no mounts: the step runs on the current `/` (root `/`) or chrooted into the
    /// root, with the container's own `/proc`, `/dev` and network files — the in-place executor for a
    /// container that refuses namespaces.
    Direct,
}

/// What a step did.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// Exit code (128 + signal when killed).
    pub code: i32,
    /// The last few KiB of its output.
    pub tail: String,
}

const TAIL: usize = 4096;

/// Resolves `name` through the `PATH` in `env`, looking inside `root` (without following symlinks out).
pub fn resolve_in_root(root: &Path, env: &[String], name: &str) -> Option<String> {
    if name.contains('/') {
        return Some(name.to_string());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|dir| {
            let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
            let host = root.join(candidate.trim_start_matches('/'));
            std::fs::symlink_metadata(&host).ok().map(|_| candidate)
        })
}

fn cstr(s: &[u8]) -> Result<CString, SandboxError> {
    CString::new(s).map_err(|_| SandboxError::Worker("argument contains a NUL byte".into()))
}

/// Runs one step (must be called inside [`in_user_namespace`]).
pub fn run_step(spec: &StepSpec) -> Result<StepOutcome, SandboxError> {
    let program = resolve_in_root(&spec.root, &spec.env, spec.argv.first().map_or("", |s| s))
        .ok_or_else(|| {
            SandboxError::Worker(format!(
                "executable '{}' not found in PATH inside the image",
                spec.argv.first().map_or("", |s| s)
            ))
        })?;
    let program = cstr(program.as_bytes())?;
    let argv = spec
        .argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = spec
        .env
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let root = spec.root.clone();
    let workdir = root.join(spec.workdir.trim_start_matches('/'));
    super::fsutil::mkdir_all(&workdir).map_err(io(format!("creating WORKDIR {}", spec.workdir)))?;

    let (out_r, out_w) = pipe().map_err(sys("creating a pipe"))?;
    // SAFETY: the child only performs system calls and allocation before `execve`/`_exit`.
    match unsafe { fork() }.map_err(sys("forking a step"))? {
        ForkResult::Child => {
            drop(out_r);
            let code = match spec.isolation {
                Isolation::Sandbox => step_child(spec, &program, &argv, &envp, out_w),
                Isolation::Direct => {
                    let o = out_w.as_raw_fd();
                    match direct_exec(spec, &program, &argv, &envp, o) {
                        Ok(()) => 0,
                        Err(code) => code,
                    }
                }
            };
            exit_now(code);
        }
        ForkResult::Parent { child } => {
            drop(out_w);
            let mut tail: Vec<u8> = Vec::new();
            let mut file = std::fs::File::from(out_r);
            let mut buf = [0u8; 8192];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        write_all_fd(1, &buf[..n]);
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 2 * TAIL {
                            tail.drain(..tail.len() - TAIL);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let status = waitpid(child, None).map_err(sys("waiting for a step"))?;
            let code = match status {
                WaitStatus::Exited(_, c) => c,
                WaitStatus::Signaled(_, s, _) => 128 + s as i32,
                _ => 1,
            };
            if tail.len() > TAIL {
                tail.drain(..tail.len() - TAIL);
            }
            Ok(StepOutcome {
                code,
                tail: String::from_utf8_lossy(&tail).into_owned(),
            })
        }
    }
}

fn fail(out: i32, what: &str, e: impl std::fmt::Display) -> i32 {
    write_all_fd(out, format!("extender sandbox: {what}: {e}\n").as_bytes());
    125
}

/// The forked step process: new mount + pid namespaces, then pid 1 sets up the root and execs.
fn step_child(
    spec: &StepSpec,
    program: &CString,
    argv: &[CString],
    envp: &[CString],
    out: OwnedFd,
) -> i32 {
    let o = out.as_raw_fd();
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID) {
        return fail(o, "unshare(mount, pid)", e);
    }
    // SAFETY: as above; the grandchild becomes pid 1 of the new pid namespace.
    match unsafe { fork() } {
        Err(e) => fail(o, "fork", e),
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => c,
            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
            _ => 1,
        },
        Ok(ForkResult::Child) => {
            let code = match setup_and_exec(spec, program, argv, envp, o) {
                Ok(()) => 0,
                Err(code) => code,
            };
            exit_now(code)
        }
    }
}

fn setup_and_exec(
    spec: &StepSpec,
    program: &CString,
    argv: &[CString],
    envp: &[CString],
    o: i32,
) -> Result<(), i32> {
    let root = &spec.root;
    let flags_none = MsFlags::empty();
    // stdout/stderr to the pipe, stdin from /dev/null.
    redirect_stdio(o);
    let o = 2;
    let proc_dir = root.join("proc");
    let _ = std::fs::create_dir_all(&proc_dir);
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if mount(Some("proc"), &proc_dir, Some("proc"), nosuid, None::<&str>).is_err() {
        // A masked host /proc forbids a fresh mount; fall back to the host's.
        if let Err(e) = mount(
            Some("/proc"),
            &proc_dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            return Err(fail(o, "mounting /proc", e));
        }
    }
    let dev = root.join("dev");
    let _ = std::fs::create_dir_all(&dev);
    if let Err(e) = mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755"),
    ) {
        return Err(fail(o, "mounting /dev", e));
    }
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        if std::fs::write(&target, b"").is_err() {
            continue;
        }
        let host = format!("/dev/{node}");
        if let Err(e) = mount(
            Some(host.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            return Err(fail(o, &format!("binding {host}"), e));
        }
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(to, dev.join(link));
    }
    for d in ["pts", "shm"] {
        let _ = std::fs::create_dir_all(dev.join(d));
    }
    // A private devpts instance (apt and others want ptys); optional.
    let _ = mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    );
    let _ = mount(
        Some("tmpfs"),
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    );
    for (host, inside) in &spec.binds {
        let target = root.join(inside.trim_start_matches('/'));
        if std::fs::symlink_metadata(&target).is_err() {
            continue;
        }
        if let Err(e) = mount(
            Some(host.as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            return Err(fail(o, &format!("binding {}", host.display()), e));
        }
    }
    let _ = flags_none;
    enter_and_exec(spec, program, argv, envp, o)
}

fn redirect_stdio(o: i32) {
    // SAFETY: dup2 on descriptors we own; open of a NUL-terminated literal.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        libc::dup2(o, 1);
        libc::dup2(o, 2);
    }
}

/// The in-place step: stdio to the pipe, then (no namespaces, no mounts) chroot unless the root is
/// `/`, user, exec.
fn direct_exec(
    spec: &StepSpec,
    program: &CString,
    argv: &[CString],
    envp: &[CString],
    o: i32,
) -> Result<(), i32> {
    redirect_stdio(o);
    enter_and_exec(spec, program, argv, envp, 2)
}

/// chroot (unless the root is `/`), working directory, groups, ids, exec.
fn enter_and_exec(
    spec: &StepSpec,
    program: &CString,
    argv: &[CString],
    envp: &[CString],
    o: i32,
) -> Result<(), i32> {
    let root = &spec.root;
    if root != Path::new("/") {
        if let Err(e) = chroot(root) {
            return Err(fail(o, &format!("chroot {}", root.display()), e));
        }
    }
    if let Err(e) = chdir(spec.workdir.as_str()) {
        return Err(fail(o, &format!("chdir {}", spec.workdir), e));
    }
    let groups: Vec<Gid> = spec.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        // A user namespace that maps only our own ids has setgroups(2) denied; the step keeps the
        // (single) group it has.
        let denied =
            std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        if !denied {
            return Err(fail(o, "setgroups", e));
        }
    }
    if let Err(e) = nix::unistd::setresgid(
        Gid::from_raw(spec.gid),
        Gid::from_raw(spec.gid),
        Gid::from_raw(spec.gid),
    ) {
        return Err(fail(o, &format!("setgid {}", spec.gid), e));
    }
    if let Err(e) = nix::unistd::setresuid(
        Uid::from_raw(spec.uid),
        Uid::from_raw(spec.uid),
        Uid::from_raw(spec.uid),
    ) {
        let hint = if e == nix::Error::EINVAL {
            " (this uid is not mapped into the user namespace: without a subordinate id range a \
             rootless extender runs steps only as root)"
        } else {
            ""
        };
        return Err(fail(o, &format!("setuid {}{hint}", spec.uid), e));
    }
    // Steps see the umask a container runtime gives its processes, not the extender's own.
    // SAFETY: umask(2) has no failure mode.
    unsafe {
        libc::umask(0o022);
    }
    let e = nix::unistd::execve(program, argv, envp).err();
    let name = String::from_utf8_lossy(program.as_bytes()).into_owned();
    Err(match e {
        Some(e) => {
            fail(o, &format!("exec {name}"), e);
            127
        }
        None => 127,
    })
}

/// Returns `true` if `path` exists as a host file we can bind (used for resolv.conf/hosts).
pub fn host_file(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    std::fs::metadata(&p)
        .ok()
        .filter(|m| m.is_file())
        .map(|_| p)
}

/// The user and groups a `USER` value names, resolved in the root's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == u || f[2] == u));
    let (uid, name, primary) = match (u.parse::<u32>(), &entry) {
        (_, Some(f)) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("bad uid for user '{u}' in /etc/passwd"))?,
            f[0].to_string(),
            f[3].parse::<u32>().unwrap_or(0),
        ),
        (Ok(n), None) => (n, String::new(), 0),
        (Err(_), None) => {
            return Err(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        }
    };
    let groups: Vec<Vec<&str>> = group.lines().map(|l| l.split(':').collect()).collect();
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
    };
    let mut extra = vec![gid];
    if g.is_none() && !name.is_empty() {
        for f in &groups {
            if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if !extra.contains(&n) {
                        extra.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

/// Converts a host path to bytes (helper for C strings).
pub fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}
