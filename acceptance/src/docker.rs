//! A real Docker Engine for tests that must run phases the way platforms do: in containers with the
//! default seccomp profile and capabilities (ENVIRONMENT.md "A real Docker Engine").
//!
//! [`Docker::shared`] starts one `dockerd` per test binary on a private socket, data root and exec root
//! under `target/docker-tests/` (vfs storage, no bridge, no iptables), and stops it by PID when the
//! process exits. When it cannot start (no `dockerd`, not root, a kernel that refuses it) the result
//! names why, for the test to print as a skip message. Containers need `--network none` or
//! `--network host` (there is no bridge); images come from OCI layouts through
//! `skopeo copy oci:… docker-daemon:…` ([`Docker::load_layout`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running daemon.
#[derive(Debug)]
pub struct Docker {
    dir: PathBuf,
    socket: PathBuf,
    pid: u32,
}

static SHARED: OnceLock<Result<Docker, String>> = OnceLock::new();
static STOP: OnceLock<(u32, PathBuf)> = OnceLock::new();

extern "C" fn stop_at_exit() {
    if let Some((pid, dir)) = STOP.get() {
        stop(*pid, dir);
    }
}

fn stop(pid: u32, dir: &Path) {
    let pid_i = i32::try_from(pid).unwrap_or(i32::MAX);
    // SAFETY: kill(2) on the daemon we started; no memory is touched.
    unsafe {
        libc::kill(pid_i, libc::SIGTERM);
    }
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed() < Duration::from_secs(20) {
        let mut status = 0;
        // SAFETY: reaps our own child if it has exited; WNOHANG never blocks.
        unsafe {
            libc::waitpid(pid_i, &mut status, libc::WNOHANG);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: as above.
        unsafe {
            libc::kill(pid_i, libc::SIGKILL);
        }
    }
    // dockerd leaves its mounts (the default netns file) behind: detach them, deepest first.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: `c` is a NUL-terminated path; umount2 touches no memory of ours.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

impl Docker {
    /// The daemon of this test binary, started on first use; `Err` says why it cannot run here.
    pub fn shared() -> Result<&'static Docker, String> {
        SHARED
            .get_or_init(Self::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start() -> Result<Docker, String> {
        if !crate::harness::running_as_root() {
            return Err("dockerd needs root".into());
        }
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("dockerd is not installed (apt-get install docker.io containerd runc)")?;
        let base = crate::harness::workspace_dir().join("target/docker-tests");
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("d")
            .tempdir_in(&base)
            .map_err(|e| e.to_string())?
            .keep();
        let socket = dir.join("docker.sock");
        let log = dir.join("dockerd.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(dockerd)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge",
                "none",
            ])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {dockerd}: {e}"))?;
        let pid = child.id();
        let _ = STOP.set((pid, dir.clone()));
        // SAFETY: registers a plain `extern "C"` function without captures.
        unsafe {
            libc::atexit(stop_at_exit);
        }
        let d = Docker { dir, socket, pid };
        let t = Instant::now();
        loop {
            if d.docker(&["info", "--format", "{{.ServerVersion}}"])
                .is_ok_and(|o| o.status.success())
            {
                return Ok(d);
            }
            if !Path::new(&format!("/proc/{pid}")).exists() || t.elapsed() > Duration::from_secs(60)
            {
                let why = tail(&log);
                stop(pid, &d.dir);
                return Err(format!("dockerd did not come up:\n{why}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `unix://<socket>`, for `DOCKER_HOST` and skopeo's `--dest-daemon-host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A `docker` command talking to this daemon (with a private client config dir).
    pub fn command(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> std::io::Result<Output> {
        self.command().args(args).output()
    }

    /// Runs `docker args…` and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self
            .docker(args)
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies image `tag` of the OCI layout at `layout` into the daemon as `name` (`repo:tag`).
    pub fn load_layout(&self, layout: &Path, tag: &str, name: &str) {
        crate::harness::tool(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-daemon-host",
                &self.host(),
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker-daemon:{name}"),
            ],
        );
    }

    /// `docker run --rm` with `args` (flags, image, command), returning exit code and combined output.
    pub fn run(&self, args: &[String]) -> (i32, String) {
        let out = self
            .command()
            .arg("run")
            .arg("--rm")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("docker run {args:?}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}
