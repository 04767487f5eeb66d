//! Acceptance tests of the real, static `launcher` binary (checklist §11 LN-01..12, ENVM-05, ENV-09):
//! each test builds a busybox root filesystem in a temp dir (plus a real `bash` for shell processes),
//! installs the launcher as `/cnb/lifecycle/launcher` with `/cnb/process/<type>` symlinks, prepares
//! `/layers` and `/workspace`, and runs it with `chroot` — as an app image would be run.
//!
//! chroot needs root: when not root the tests print why they are skipped and pass (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

const BUSYBOX: &str = "/bin/busybox";
const LATEST: &str = "0.15";

const METADATA: &str = r#"
buildpack-default-process-type = "web"

[[buildpacks]]
id = "simple/bp"
version = "1.0"
api = "0.12"

[[buildpacks]]
id = "legacy/bp"
version = "1.0"
api = "0.8"

[[processes]]
type = "web"
command = ["echo"]
args = ["Executing web process-type"]
direct = true
buildpack-id = "simple/bp"

[[processes]]
type = "process.with.period"
command = ["echo", "Executing process.with.period process-type"]
direct = true
buildpack-id = "simple/bp"

[[processes]]
type = "always"
command = ["echo", "always-arg"]
args = ["default-arg"]
direct = true
buildpack-id = "simple/bp"

[[processes]]
type = "wd"
command = ["pwd"]
direct = true
working-dir = "subdir"
buildpack-id = "simple/bp"

[[processes]]
type = "exec.d-checker"
command = ["sh", "-c", "echo $VAR_FROM_EXEC_D"]
direct = true
buildpack-id = "simple/bp"

[[processes]]
type = "test-only"
command = ["echo", "test process"]
direct = true
exec-env = ["test"]
buildpack-id = "simple/bp"

[[processes]]
type = "shell"
command = "echo $SOME_VAR from shell in $(pwd)"
direct = false
buildpack-id = "legacy/bp"

[[processes]]
type = "legacy-args"
command = "echo"
args = ["legacy-default"]
direct = false
buildpack-id = "legacy/bp"
"#;

const EXEC_D_HELPER: &str = r#"#!/bin/sh
if [ -n "$FAIL_EXEC_D" ]; then echo "exec.d failing on purpose" >&2; exit 3; fi
echo "$0 was executed"
echo "Exec.d Working Dir: $(pwd)"
printf 'VAR_FROM_EXEC_D = "%s"\n' "$VAR_FROM_EXEC_D:$SUFFIX" >&3
"#;

fn launcher_bin() -> PathBuf {
    cnb_acceptance::harness::bin_path("launcher")
}

/// Why the chroot tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("launcher chroot tests need root (CI runs as root)".into());
    }
    if !Path::new(BUSYBOX).is_file() {
        return Some(format!("{BUSYBOX} missing (install busybox-static)"));
    }
    None
}

macro_rules! root_or_skip {
    ($($bash:tt)?) => {
        match skip_reason() {
            Some(why) => {
                eprintln!("SKIPPED: {why}");
                return;
            }
            None => Root::new(root_or_skip!(@bash $($bash)?)),
        }
    };
    (@bash bash) => { true };
    (@bash) => { false };
}

struct Root {
    dir: TempDir,
}

/// `chroot` by absolute path: the tests clear the environment (and `PATH`) of the command.
fn chroot_bin() -> PathBuf {
    ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("chroot"))
}

fn find_bash() -> Option<PathBuf> {
    ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Root {
    /// A busybox rootfs with the launcher, the layers fixture and (optionally) a real bash.
    fn new(with_bash: bool) -> Self {
        let dir = TempDir::new().unwrap();
        let r = Self { dir };
        for d in [
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "tmp",
            "workspace/subdir",
        ] {
            fs::create_dir_all(r.path(d)).unwrap();
        }
        fs::copy(BUSYBOX, r.path("bin/busybox")).unwrap();
        let out = retry_text_file_busy(|| {
            Command::new(chroot_bin())
                .arg(r.dir.path())
                .args(["/bin/busybox", "--install", "-s"])
                .output()
                .unwrap()
        });
        assert!(out.status.success(), "busybox --install: {out:?}");
        if with_bash {
            r.install_bash();
        }
        // The launcher and the exporter's process symlinks.
        fs::create_dir_all(r.path("cnb/lifecycle")).unwrap();
        fs::create_dir_all(r.path("cnb/process")).unwrap();
        fs::copy(launcher_bin(), r.path("cnb/lifecycle/launcher")).unwrap();
        for t in [
            "web",
            "process.with.period",
            "always",
            "wd",
            "exec.d-checker",
            "test-only",
            "shell",
            "legacy-args",
        ] {
            symlink(
                "/cnb/lifecycle/launcher",
                r.path(&format!("cnb/process/{t}")),
            )
            .unwrap();
        }
        r.write("layers/config/metadata.toml", METADATA);
        let layer = "layers/simple_bp/some_layer";
        r.write(&format!("{layer}/env/SOME_VAR"), "some-bp-val");
        r.write(
            &format!("{layer}/env.launch/OTHER_VAR.append"),
            "other-bp-val",
        );
        r.write(&format!("{layer}/env.launch/OTHER_VAR.delim"), "**");
        r.write(
            &format!("{layer}/env.launch/worker/WORKER_VAR"),
            "worker-val",
        );
        r.write(
            &format!("{layer}/env.launch/WORKER_VAR.default"),
            "worker-no-process-val",
        );
        r.write(&format!("{layer}/env.build/BUILD_ONLY"), "leaked");
        r.exe(
            &format!("{layer}/bin/bp-executable"),
            "#!/bin/sh\necho bp executable\n",
        );
        r.write(
            &format!("{layer}/profile.d/prof"),
            "echo sourced bp profile\n",
        );
        r.write(
            &format!("{layer}/profile.d/shell/typed"),
            "echo sourced shell-type profile\n",
        );
        r.exe(&format!("{layer}/exec.d/helper"), EXEC_D_HELPER);
        r.exe(
            &format!("{layer}/exec.d/exec.d-checker/helper"),
            EXEC_D_HELPER,
        );
        r.write(
            "layers/simple_bp/some_layer.toml",
            "[types]\nlaunch = true\n",
        );
        r.write("workspace/.profile", "echo sourced app profile\n");
        r
    }

    /// Copies the host's bash and the shared objects it needs (shell processes need `/bin/bash`).
    fn install_bash(&self) {
        let Some(bash) = find_bash() else {
            panic!("bash not found on the host: shell-process tests need it");
        };
        fs::copy(&bash, self.path("bin/bash")).unwrap();
        let ldd = Command::new("ldd").arg(&bash).output().unwrap();
        let text = String::from_utf8_lossy(&ldd.stdout);
        for line in text.lines() {
            let path = line
                .split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from);
            if let Some(lib) = path {
                let dest = self.dir.path().join(lib.strip_prefix("/").unwrap());
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::copy(&lib, &dest).unwrap();
            }
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }

    fn exe(&self, rel: &str, contents: &str) {
        self.write(rel, contents);
        fs::set_permissions(self.path(rel), fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `entrypoint args…` in the chroot with a clean image-like environment plus `env`.
    fn run(&self, entrypoint: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_pid(entrypoint, args, env).1
    }

    /// [`Root::run`], also returning the pid of the process that was started.
    fn run_pid(&self, entrypoint: &str, args: &[&str], env: &[(&str, &str)]) -> (u32, Output) {
        let mut pid = 0;
        let o = retry_text_file_busy(|| {
            let child = Command::new(chroot_bin())
                .arg(self.dir.path())
                .arg(entrypoint)
                .args(args)
                .env_clear()
                .env("PATH", "/cnb/process:/cnb/lifecycle:/usr/bin:/bin")
                .env("CNB_PLATFORM_API", LATEST)
                .env("HOME", "/root")
                .env("SUFFIX", "val-from-exec.d")
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            pid = child.id();
            child.wait_with_output().unwrap()
        });
        (pid, o)
    }
}

/// Tests run in parallel threads: a file this process just wrote may still be open in a child forked by
/// another test (between its fork and exec), so exec fails with ETXTBSY. That is an artefact of the test
/// process, not of the launcher: retry a few times.
fn retry_text_file_busy(mut run: impl FnMut() -> Output) -> Output {
    for _ in 0..20 {
        let o = run();
        if !stderr(&o).contains("Text file busy") {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Output minus the exec.d helper's own lines (every process runs the generic exec.d helper).
fn app_output(o: &Output) -> String {
    assert_ok(o)
        .lines()
        .filter(|l| !l.contains(" was executed") && !l.starts_with("Exec.d Working Dir"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn ln03_process_symlink_is_the_default_process() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/web", &[], &[]);
    assert_eq!(app_output(&o), "Executing web process-type\n");
}

#[test]
fn ln03_process_type_with_periods() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/process.with.period", &[], &[]);
    assert_eq!(
        app_output(&o),
        "Executing process.with.period process-type\n"
    );
}

#[test]
fn ln03_exec_env_filters_processes_at_platform_015() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/test-only", &[], &[]);
    assert_eq!(o.status.code(), Some(82), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ERROR: failed to launch: determine start command: process type test-only was not found"),
        "{}",
        stderr(&o)
    );
    let o = r.run("/cnb/process/test-only", &[], &[("CNB_EXEC_ENV", "test")]);
    assert_eq!(app_output(&o), "test process\n");
    let o = r.run(
        "/cnb/process/test-only",
        &[],
        &[("CNB_PLATFORM_API", "0.14")],
    );
    assert_eq!(app_output(&o), "test process\n");
}

#[test]
fn ln04_user_args_replace_default_args_for_platform_010_and_later() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/web", &["with", "user args"], &[]);
    assert_eq!(app_output(&o), "with user args\n");
    let o = r.run("/cnb/process/always", &[], &[]);
    assert_eq!(app_output(&o), "always-arg default-arg\n");
    let o = r.run("/cnb/process/always", &["user"], &[]);
    assert_eq!(app_output(&o), "always-arg user\n");
}

#[test]
fn ln04_user_args_are_appended_before_platform_010() {
    let r = root_or_skip!();
    let o = r.run(
        "/cnb/process/web",
        &["appended"],
        &[("CNB_PLATFORM_API", "0.9")],
    );
    assert_eq!(app_output(&o), "Executing web process-type appended\n");
}

#[test]
fn ln04_ln10_pre_09_buildpack_shell_process_appends_user_args() {
    let r = root_or_skip!(bash);
    let o = r.run(
        "/cnb/process/legacy-args",
        &["$SOME_VAR", "'quoted arg'"],
        &[],
    );
    assert_eq!(
        app_output(&o),
        "sourced bp profile\nsourced app profile\nlegacy-default some-bp-val 'quoted arg'\n"
    );
}

#[test]
fn ln10_shell_process_sources_profiles_and_evaluates_command() {
    let r = root_or_skip!(bash);
    let o = r.run("/cnb/process/shell", &[], &[]);
    assert_eq!(
        app_output(&o),
        "sourced bp profile\nsourced shell-type profile\nsourced app profile\nsome-bp-val from shell in /workspace\n"
    );
}

#[test]
fn ln05_user_command_without_dashes_runs_in_a_shell_with_profiles() {
    let r = root_or_skip!(bash);
    let o = r.run(
        "/cnb/lifecycle/launcher",
        &["echo", "$SOME_VAR", "$OTHER_VAR", "$WORKER_VAR"],
        &[],
    );
    assert_eq!(
        app_output(&o),
        "sourced bp profile\nsourced app profile\nsome-bp-val other-bp-val worker-no-process-val\n"
    );
}

#[test]
fn ln05_user_command_after_dashes_runs_directly_with_layer_path() {
    let r = root_or_skip!();
    let o = r.run("/cnb/lifecycle/launcher", &["--", "bp-executable"], &[]);
    assert_eq!(app_output(&o), "bp executable\n");
    let o = r.run("/cnb/lifecycle/launcher", &["--", "echo", "$SOME_VAR"], &[]);
    assert_eq!(
        app_output(&o),
        "$SOME_VAR\n",
        "direct processes are not shell-evaluated"
    );
}

#[test]
fn ln05_no_command_and_no_process_is_an_error_and_process_type_env_warns() {
    let r = root_or_skip!();
    let o = r.run(
        "/cnb/lifecycle/launcher",
        &[],
        &[("CNB_PROCESS_TYPE", "web")],
    );
    assert_eq!(o.status.code(), Some(82));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "Warning: CNB_PROCESS_TYPE is not supported in Platform API {LATEST}"
        )),
        "{err}"
    );
    assert!(
        err.contains("Warning: Run with ENTRYPOINT 'web' to invoke the 'web' process type"),
        "{err}"
    );
    assert!(
        err.contains("ERROR: failed to launch: determine start command: when there is no default process a command is required"),
        "{err}"
    );
}

#[test]
fn ln06_env_passes_user_vars_excludes_lifecycle_vars_and_applies_layers() {
    let r = root_or_skip!();
    let o = r.run(
        "/cnb/lifecycle/launcher",
        &["--", "env"],
        &[
            ("CNB_APP_DIR", "/workspace"),
            ("CNB_LAYERS_DIR", "/layers"),
            ("SOME_USER_VAR", "some-user-val"),
            ("OTHER_VAR", "other-user-val"),
        ],
    );
    let out = app_output(&o);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "SOME_USER_VAR=some-user-val",
        "SOME_VAR=some-bp-val",
        "OTHER_VAR=other-user-val**other-bp-val",
        "WORKER_VAR=worker-no-process-val",
        "PATH=/layers/simple_bp/some_layer/bin:/usr/bin:/bin",
        "VAR_FROM_EXEC_D=:val-from-exec.d",
    ] {
        assert!(lines.contains(&want), "missing {want} in:\n{out}");
    }
    for gone in [
        "CNB_APP_DIR=",
        "CNB_LAYERS_DIR=",
        "CNB_PLATFORM_API=",
        "BUILD_ONLY=",
    ] {
        assert!(!out.contains(gone), "{gone} leaked into:\n{out}");
    }
}

#[test]
fn ln09_working_dir_is_relative_to_app() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/wd", &[], &[]);
    assert_eq!(app_output(&o), "/workspace/subdir\n");
}

#[test]
fn ln08_execd_output_is_applied_in_order_before_profiles() {
    let r = root_or_skip!(bash);
    let o = r.run(
        "/cnb/process/exec.d-checker",
        &[],
        &[("VAR_FROM_EXEC_D", "orig-val")],
    );
    let out = assert_ok(&o);
    assert_eq!(
        out,
        "/layers/simple_bp/some_layer/exec.d/helper was executed\n\
         Exec.d Working Dir: /workspace\n\
         /layers/simple_bp/some_layer/exec.d/exec.d-checker/helper was executed\n\
         Exec.d Working Dir: /workspace\n\
         orig-val:val-from-exec.d:val-from-exec.d\n"
    );
    // exec.d runs before profile.d: a shell command sees exec.d's variables after the profiles ran.
    let o = r.run(
        "/cnb/lifecycle/launcher",
        &["echo", "$VAR_FROM_EXEC_D"],
        &[("VAR_FROM_EXEC_D", "orig")],
    );
    assert_eq!(
        app_output(&o),
        "sourced bp profile\nsourced app profile\norig:val-from-exec.d\n"
    );
}

#[test]
fn ln08_failing_execd_exits_82_with_message() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/web", &[], &[("FAIL_EXEC_D", "1")]);
    assert_eq!(o.status.code(), Some(82));
    let err = stderr(&o);
    assert!(err.contains("exec.d failing on purpose"), "{err}");
    assert!(
        err.contains("ERROR: failed to launch: exec.d: failed to execute exec.d file at path '/layers/simple_bp/some_layer/exec.d/helper': exit status: 3"),
        "{err}"
    );
    assert!(
        !stdout(&o).contains("Executing"),
        "the process must not start"
    );
}

#[test]
fn ln01_missing_metadata_is_a_clear_error() {
    let r = root_or_skip!();
    fs::remove_file(r.path("layers/config/metadata.toml")).unwrap();
    let o = r.run("/cnb/process/web", &[], &[]);
    assert_eq!(o.status.code(), Some(82));
    let err = stderr(&o);
    assert!(
        err.contains("ERROR: failed to launch: read metadata: open /layers/config/metadata.toml: no such file or directory"),
        "{err}"
    );
}

#[test]
fn ln11_platform_api_and_buildpack_api_errors() {
    let r = root_or_skip!();
    let o = r.run("/cnb/process/web", &[], &[("CNB_PLATFORM_API", "0.3")]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    r.write(
        "layers/config/metadata.toml",
        &METADATA.replace("api = \"0.8\"", "api = \"0.1\""),
    );
    let o = r.run("/cnb/process/web", &[], &[]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("buildpack 'legacy/bp'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ln09_ln11_launcher_is_replaced_by_the_process() {
    let r = root_or_skip!();
    let (pid, o) = r.run_pid(
        "/cnb/lifecycle/launcher",
        &["--", "sh", "-c", "echo $$; exit 7"],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(7),
        "exit status of the app: {}",
        stderr(&o)
    );
    let printed = stdout(&o);
    let app_pid = printed.lines().last().unwrap_or_default();
    assert_eq!(
        app_pid,
        pid.to_string(),
        "no fork: the app has the launcher's pid"
    );
}

#[test]
fn static_launcher_runs_without_a_dynamic_loader() {
    let r = root_or_skip!();
    // No bash was installed: the rootfs holds no ld.so and no libc.
    assert!(!r.path("lib64").exists() && !r.path("lib").exists());
    let o = r.run("/cnb/process/web", &[], &[]);
    assert_eq!(app_output(&o), "Executing web process-type\n");
}
