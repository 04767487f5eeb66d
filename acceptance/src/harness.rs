//! Temp "container roots" and running phase binaries as separate processes, as platforms do.
//!
//! # The two pieces
//!
//! - [`ContainerRoot`]: a temp directory laid out like a lifecycle container —
//!   `cnb/buildpacks/`, `cnb/extensions/`, `layers/`, `workspace/`, `platform/`, `cache/` — with helpers
//!   to write files and executables into it. Removed on drop.
//! - [`PhaseCommand`]: a builder that runs one lifecycle binary (`detector`, `exporter`, ...) as a child
//!   process with a **clean environment** (only `PATH` plus what the test sets), stdin closed, a timeout,
//!   and — when the test process is root — **as the build user** [`BUILD_UID`]:[`BUILD_GID`] with the
//!   container root chowned to it first (detector and builder refuse root, G-20). It returns an
//!   [`Output`]: exit code, stdout, stderr.
//!
//! # Which binaries
//!
//! [`bin_dir`]: `$CNB_LIFECYCLE_BIN_DIR` if set — a directory with the reference's layout (`lifecycle`,
//! the phase names as symlinks to it, `launcher`), e.g. an installed `/cnb/lifecycle`, `make install`'s
//! output or the reference Go lifecycle — else the debug build ([`build_dir`]: `$CARGO_TARGET_DIR` or
//! `<workspace>/target`, then `x86_64-unknown-linux-gnu/debug/`) **staged** by [`stage_dir`]: hard links
//! (or copies) of `lifecycle` and `launcher` plus the phase symlinks, in a fresh 0755 directory
//! `/tmp/cnb-lifecycle-test-<hash>/lifecycle/` outside the checkout. The build user (uid 1000) then reaches
//! the binaries whatever the checkout's location and umask (a clone under a 0700 `/root` or `mktemp -d`).
//! The debug binaries must be built first (`cargo build --bins`; `make test` does it).
//!
//! # Example
//!
//! ```no_run
//! use cnb_acceptance::harness::ContainerRoot;
//!
//! let root = ContainerRoot::new();
//! root.write_executable("cnb/buildpacks/a/0.1/bin/detect", "#!/bin/sh\nexit 0\n");
//! root.write("cnb/buildpacks/a/0.1/buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"a\"\nversion = \"0.1\"\n");
//! root.write("layers/order.toml", "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"0.1\"\n");
//! let out = root
//!     .phase("detector")
//!     .platform_api("0.12") // default: the newest supported API
//!     .arg("-log-level=debug")
//!     .run();
//! out.assert_code(0);
//! assert!(root.read("layers/group.toml").contains("id = \"a\""));
//! ```
//!
//! [`ContainerRoot::phase`] pre-sets the `CNB_*` directory variables so that every default points inside
//! the root: `CNB_LAYERS_DIR`, `CNB_APP_DIR` (workspace), `CNB_PLATFORM_DIR`, `CNB_BUILDPACKS_DIR`,
//! `CNB_EXTENSIONS_DIR`, `CNB_BUILD_CONFIG_DIR` (`cnb/build-config`), `CNB_RUN_PATH` (`cnb/run.toml`),
//! `CNB_STACK_PATH` (`cnb/stack.toml`), `CNB_SYSTEM_PATH` (`cnb/system.toml`), plus `CNB_PLATFORM_API`
//! (newest) and `CNB_USER_ID`/`CNB_GROUP_ID` ([`build_ids`]: the build user when root, else the test's
//! own ids). The order file follows G-11 inside the
//! root: `layers/order.toml` if present (the phase's own default), else `CNB_ORDER_PATH=cnb/order.toml`
//! if that exists. Flags and [`PhaseCommand::env`] override any of these; [`PhaseCommand::env_remove`]
//! drops one. [`phase`] (the free function) sets nothing but `PATH`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The build user's uid (the `cnb` user of the test base images).
pub const BUILD_UID: u32 = 1000;
/// The build user's gid.
pub const BUILD_GID: u32 = 1000;
/// The `PATH` every phase gets unless the test changes it (what a container image would set).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Default timeout of a phase run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The newest Platform API this lifecycle supports (the default `CNB_PLATFORM_API` of [`ContainerRoot::phase`]).
pub const LATEST_PLATFORM_API: &str = "0.15";

pub use crate::stage::{
    bin_dir, build_dir, first_blocking_dir, install_lifecycle, sbom_files, stage_dir,
    standard_umask, write_sboms, ALL_BINARIES, MULTICALL, PHASE_LINKS,
};

/// The cargo workspace root (parent of the `acceptance` crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of the lifecycle binary `name`; panics with a hint when it has not been built.
pub fn bin_path(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "lifecycle binary {} not found: build it first (`cargo build --bins` or `make build-debug`), \
         or set CNB_LIFECYCLE_BIN_DIR",
        p.display()
    );
    p
}

/// Whether the test process runs as root (then phases run as the build user by default).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The identity phases run as by default and the `CNB_USER_ID`/`CNB_GROUP_ID` that
/// [`ContainerRoot::phase`] presets: [`BUILD_UID`]:[`BUILD_GID`] when the tests run as root, else the
/// test's own uid/gid (a non-root test cannot switch users).
pub fn build_ids() -> (u32, u32) {
    if running_as_root() {
        (BUILD_UID, BUILD_GID)
    } else {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// Runs the external tool `name args` (skopeo, umoci, oci-image-tool, ...), asserts it succeeded and
/// returns its stdout.
pub fn tool(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Recursively `lchown`s `path` and everything below it (symlinks themselves, not their targets).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        {
            chown_tree(&entry.expect("dir entry").path(), uid, gid);
        }
    }
}

/// A temp directory laid out like a lifecycle container's filesystem (see the module docs).
#[derive(Debug)]
pub struct ContainerRoot {
    dir: TempDir,
}

impl Default for ContainerRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl ContainerRoot {
    /// Directories every root starts with.
    pub const DIRS: [&'static str; 7] = [
        "cnb/buildpacks",
        "cnb/extensions",
        "layers",
        "workspace",
        "platform",
        "platform/env",
        "cache",
    ];

    /// Creates a fresh root in a temp dir (removed on drop).
    pub fn new() -> Self {
        standard_umask();
        let dir = tempfile::Builder::new()
            .prefix("cnb-root-")
            .tempdir()
            .expect("create temp container root");
        // The temp dir is 0700; the build user must be able to enter it even before the chown.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod root");
        for d in Self::DIRS {
            std::fs::create_dir_all(dir.path().join(d)).expect("create root dirs");
        }
        Self { dir }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `root/<rel>`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// `root/cnb`.
    pub fn cnb(&self) -> PathBuf {
        self.join("cnb")
    }
    /// `root/cnb/buildpacks`.
    pub fn buildpacks(&self) -> PathBuf {
        self.join("cnb/buildpacks")
    }
    /// `root/cnb/extensions`.
    pub fn extensions(&self) -> PathBuf {
        self.join("cnb/extensions")
    }
    /// `root/layers`.
    pub fn layers(&self) -> PathBuf {
        self.join("layers")
    }
    /// `root/workspace` (the app directory).
    pub fn workspace(&self) -> PathBuf {
        self.join("workspace")
    }
    /// `root/platform`.
    pub fn platform(&self) -> PathBuf {
        self.join("platform")
    }
    /// `root/cache`.
    pub fn cache(&self) -> PathBuf {
        self.join("cache")
    }

    /// Writes `contents` to `root/<rel>` (mode 0644), creating parent directories. Returns the path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Writes an executable (mode 0755), e.g. a buildpack's `bin/detect` script. Returns the path.
    pub fn write_executable(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.write(rel, contents);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        p
    }

    /// Creates `root/<rel>` and its parents. Returns the path.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// Creates a symlink `root/<rel>` → `target`. Returns the link path.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir for symlink");
        }
        std::os::unix::fs::symlink(target.as_ref(), &p)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
        p
    }

    /// Reads `root/<rel>` as UTF-8; panics with the path when missing.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let p = self.join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Whether `root/<rel>` exists (symlinks are not followed).
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        std::fs::symlink_metadata(self.join(rel)).is_ok()
    }

    /// Copies a directory tree from `src` into `root/<rel>` (files keep their permission bits, made
    /// readable by all — `a+rX` — whatever the checkout's umask was).
    pub fn copy_dir(&self, src: impl AsRef<Path>, rel: impl AsRef<Path>) -> PathBuf {
        let dst = self.join(rel);
        copy_tree(src.as_ref(), &dst);
        dst
    }

    /// Chowns the whole root to `uid:gid` (done automatically before running as the build user).
    pub fn chown(&self, uid: u32, gid: u32) {
        chown_tree(self.path(), uid, gid);
    }

    /// A command for the lifecycle binary `name` with every `CNB_*` directory pointed into this root
    /// (see the module docs), `CNB_PLATFORM_API` = newest, `CNB_USER_ID`/`CNB_GROUP_ID` = [`build_ids`].
    pub fn phase(&self, name: &str) -> PhaseCommand {
        let mut cmd = phase(name);
        let p = |rel: &str| self.join(rel).to_string_lossy().into_owned();
        cmd = cmd
            .env("CNB_PLATFORM_API", LATEST_PLATFORM_API)
            .env("CNB_LAYERS_DIR", p("layers"))
            .env("CNB_APP_DIR", p("workspace"))
            .env("CNB_PLATFORM_DIR", p("platform"))
            .env("CNB_BUILDPACKS_DIR", p("cnb/buildpacks"))
            .env("CNB_EXTENSIONS_DIR", p("cnb/extensions"))
            .env("CNB_BUILD_CONFIG_DIR", p("cnb/build-config"))
            .env("CNB_RUN_PATH", p("cnb/run.toml"))
            .env("CNB_STACK_PATH", p("cnb/stack.toml"))
            .env("CNB_SYSTEM_PATH", p("cnb/system.toml"))
            .env("CNB_USER_ID", build_ids().0.to_string())
            .env("CNB_GROUP_ID", build_ids().1.to_string())
            .cwd(self.path());
        cmd.root = Some(self.path().to_path_buf());
        cmd
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    let meta =
        std::fs::symlink_metadata(src).unwrap_or_else(|e| panic!("stat {}: {e}", src.display()));
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).expect("readlink");
        std::os::unix::fs::symlink(target, dst).expect("symlink");
    } else if meta.is_dir() {
        std::fs::create_dir_all(dst).expect("mkdir");
        for entry in std::fs::read_dir(src).expect("read dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &dst.join(entry.file_name()));
        }
    } else {
        std::fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        // A checkout made under umask 077 has 0600/0700 files: fixtures are world-readable (a+rX), as
        // buildpacks and apps in an image are, so that the build user reads them.
        let mode = meta.permissions().mode() & 0o7777;
        let mode = mode | 0o444 | if mode & 0o100 != 0 { 0o111 } else { 0 };
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dst.display()));
    }
}

/// Who the child runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunAs {
    /// The build user when the test runs as root, else the test's own user.
    Default,
    /// Keep the test process's identity (root stays root).
    Current,
    /// An explicit uid/gid (requires root unless it is the current user).
    User(u32, u32),
}

/// A lifecycle binary to run as a separate process; build with [`phase`] or [`ContainerRoot::phase`],
/// then [`PhaseCommand::run`].
#[derive(Debug, Clone)]
pub struct PhaseCommand {
    program: PathBuf,
    name: String,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    kill_after: Option<Duration>,
    run_as: RunAs,
    root: Option<PathBuf>,
}

/// Opens, as the build user ([`BUILD_UID`]/[`BUILD_GID`], via `setpriv`), every directory (listed and
/// traversed) and file (read with `cat`) under `dir`; returns what it could not open (empty when all is
/// readable). Needs root.
pub fn unreadable_by_build_user(dir: &Path) -> String {
    let script = "find \"$1\" -type d \\( ! -readable -o ! -executable \\) -print; \
                  find \"$1\" -type f ! -readable -print; \
                  find \"$1\" -type f -exec cat {} + >/dev/null";
    let out = Command::new("setpriv")
        .arg(format!("--reuid={BUILD_UID}"))
        .arg(format!("--regid={BUILD_GID}"))
        .args(["--clear-groups", "/bin/sh", "-c", script, "sh"])
        .arg(dir)
        .output()
        .expect("run setpriv (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        text
    } else {
        format!("{text}(exit {:?})", out.status.code())
    }
}

/// A command for the lifecycle binary `name` from [`bin_dir`], with a clean environment holding only
/// `PATH` ([`DEFAULT_PATH`]).
pub fn phase(name: &str) -> PhaseCommand {
    PhaseCommand {
        program: bin_dir().join(name),
        name: name.to_string(),
        args: Vec::new(),
        env: vec![("PATH".to_string(), Some(DEFAULT_PATH.to_string()))],
        cwd: None,
        timeout: DEFAULT_TIMEOUT,
        kill_after: None,
        run_as: RunAs::Default,
        root: None,
    }
}

impl PhaseCommand {
    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (overrides any preset).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        let k = k.into();
        self.env.retain(|(key, _)| *key != k);
        self.env.push((k, Some(v.into())));
        self
    }

    /// Removes a variable the builder preset (e.g. `CNB_PLATFORM_API`, `PATH`).
    pub fn env_remove(mut self, k: impl Into<String>) -> Self {
        let k = k.into();
        self.env.retain(|(key, _)| *key != k);
        self.env.push((k, None));
        self
    }

    /// Sets `CNB_PLATFORM_API`.
    pub fn platform_api(self, api: &str) -> Self {
        self.env("CNB_PLATFORM_API", api)
    }

    /// Runs in `dir` (default: the container root, or the test's cwd without one).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Kills the child (and its process group) after `t` (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// SIGKILLs the phase (its whole process group) this long after it started, unless it ended
    /// before; [`Output::signal`] then says `Some(9)` (kill -9 safety trials, issue 14).
    pub fn kill_after(mut self, delay: Duration) -> Self {
        self.kill_after = Some(delay);
        self
    }

    /// Runs as `uid:gid` (the test must be root unless it is its own identity). The container root is
    /// chowned to it first.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.run_as = RunAs::User(uid, gid);
        self
    }

    /// Runs with the test's own identity: root stays root (for analyzer/restorer/exporter/creator, which
    /// platforms start as root and which then drop to `CNB_USER_ID`/`CNB_GROUP_ID` themselves).
    pub fn as_current_user(mut self) -> Self {
        self.run_as = RunAs::Current;
        self
    }

    /// Replaces the program with another path (e.g. a copy inside a chroot); the name stays.
    pub fn program(mut self, p: impl Into<PathBuf>) -> Self {
        self.program = p.into();
        self
    }

    /// The identity the child will run as, if it differs from the test's.
    fn identity(&self) -> Option<(u32, u32)> {
        match self.run_as {
            RunAs::Current => None,
            RunAs::User(u, g) => Some((u, g)),
            RunAs::Default if running_as_root() => Some((BUILD_UID, BUILD_GID)),
            RunAs::Default => None,
        }
    }

    /// Runs the binary to completion (or the timeout) and captures its output. Panics if it cannot be
    /// started or times out — both are test-environment failures, not phase behaviour.
    ///
    /// All acceptance tests share one process: a binary another test just copied into its container
    /// root may still be open for writing in a child forked by a third test (between its fork and exec),
    /// so exec fails with ETXTBSY (`chroot: … Text file busy`, exit 126). The phase never started, so
    /// that attempt is retried.
    pub fn run(self) -> Output {
        for _ in 0..40 {
            let o = self.run_once();
            let busy = o.code == Some(126) && o.stderr.contains("Text file busy");
            if !busy {
                return o;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.run_once()
    }

    fn run_once(&self) -> Output {
        assert!(
            self.program.exists(),
            "lifecycle binary {} not found: build it first (`cargo build --bins`), or set CNB_LIFECYCLE_BIN_DIR",
            self.program.display()
        );
        let identity = self.identity();
        if let (Some((uid, gid)), Some(root)) = (identity, &self.root) {
            chown_tree(root, uid, gid);
        }
        let mut env = self.env.clone();
        if let Some(root) = &self.root {
            // G-11 inside the root: <layers>/order.toml (the phase's own default) else cnb/order.toml.
            let explicit = env.iter().any(|(k, _)| k == "CNB_ORDER_PATH");
            if !explicit
                && !root.join("layers/order.toml").exists()
                && root.join("cnb/order.toml").exists()
            {
                let order = root.join("cnb/order.toml").to_string_lossy().into_owned();
                env.push(("CNB_ORDER_PATH".to_string(), Some(order)));
            }
        }
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        if let Some((uid, gid)) = identity {
            // std drops supplementary groups (setgroups(0)) when root sets a uid.
            cmd.uid(uid).gid(gid);
        }
        let started = Instant::now();
        let mut spawned = cmd.spawn();
        for _ in 0..40 {
            match &spawned {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(50));
                    spawned = cmd.spawn();
                }
                _ => break,
            }
        }
        let mut child = spawned.unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        let mut out = child.stdout.take().expect("stdout pipe");
        let mut err = child.stderr.take().expect("stderr pipe");
        let out_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for phase") {
                break s;
            }
            if self.kill_after.is_some_and(|d| started.elapsed() >= d) {
                // SAFETY: plain kill(2) on the child's process group.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                break child.wait().expect("wait for killed phase");
            }
            if started.elapsed() > self.timeout {
                // SAFETY: plain kill(2) on the child's process group.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.wait();
                let stdout =
                    String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
                let stderr =
                    String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
                panic!(
                    "{} {:?} timed out after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                    self.name, self.args, self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Leftover grandchildren (e.g. a buildpack's background process) would keep the pipes open:
        // the child led its own process group, so end whatever is left of it.
        // SAFETY: plain kill(2); ESRCH when the group is already empty is fine.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
        Output {
            name: self.name.clone(),
            args: self.args.clone(),
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout,
            stderr,
            duration: started.elapsed(),
        }
    }
}

/// What a phase run produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The binary's name.
    pub name: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// Wall time.
    pub duration: Duration,
}

impl Output {
    /// The exit code; panics (with the output) if the process died from a signal.
    pub fn code(&self) -> i32 {
        match self.code {
            Some(c) => c,
            None => panic!(
                "{} was killed by signal {:?}\n{}",
                self.name,
                self.signal,
                self.dump()
            ),
        }
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout followed by stderr. Our phases log info to stdout and warnings/errors to stderr; the
    /// reference logs everything to stdout, so assert on this to stay implementation-neutral.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Whether stdout or stderr contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }

    /// Asserts the exit code, printing both streams on mismatch.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "{} {:?}: expected exit {expected}\n{}",
            self.name,
            self.args,
            self.dump()
        );
        self
    }

    /// Asserts exit 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Asserts that stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.contains(needle),
            "{} {:?}: output lacks {needle:?}\n{}",
            self.name,
            self.args,
            self.dump()
        );
        self
    }

    /// Asserts that neither stream contains `needle`.
    #[track_caller]
    pub fn assert_not_contains(&self, needle: &str) -> &Self {
        assert!(
            !self.contains(needle),
            "{} {:?}: output unexpectedly has {needle:?}\n{}",
            self.name,
            self.args,
            self.dump()
        );
        self
    }

    /// Both streams, labelled, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "--- exit {:?} (signal {:?}) after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.duration, self.stdout, self.stderr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::stage_base;

    #[test]
    fn root_layout_and_writers() {
        let root = ContainerRoot::new();
        for d in ContainerRoot::DIRS {
            assert!(root.join(d).is_dir(), "{d}");
        }
        let p = root.write_executable("cnb/buildpacks/a/1/bin/detect", "#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        root.write("layers/x.toml", "a = 1\n");
        assert_eq!(root.read("layers/x.toml"), "a = 1\n");
        assert!(root.exists("layers/x.toml"));
        root.symlink("x.toml", "layers/y.toml");
        assert!(root.exists("layers/y.toml"));
    }

    #[test]
    fn env_overrides_and_removal() {
        let root = ContainerRoot::new();
        let cmd = root
            .phase("detector")
            .env("CNB_APP_DIR", "/x")
            .env_remove("CNB_PLATFORM_API");
        assert!(cmd.env.contains(&("CNB_APP_DIR".into(), Some("/x".into()))));
        assert!(cmd.env.contains(&("CNB_PLATFORM_API".into(), None)));
        assert_eq!(
            cmd.env.iter().filter(|(k, _)| k == "CNB_APP_DIR").count(),
            1
        );
    }

    #[test]
    fn bin_dir_honours_override() {
        // Reading only: the variable is not set in CI unless pointing at another build.
        if std::env::var_os("CNB_LIFECYCLE_BIN_DIR").is_none()
            && build_dir().join(MULTICALL).exists()
        {
            let d = bin_dir();
            assert!(build_dir().ends_with("x86_64-unknown-linux-gnu/debug"));
            assert!(d.starts_with(stage_base()), "{}", d.display());
            assert_eq!(
                std::fs::read_link(d.join("detector")).unwrap(),
                Path::new(MULTICALL)
            );
            assert!(first_blocking_dir(&d, BUILD_UID, BUILD_GID).is_none());
        }
    }
}
