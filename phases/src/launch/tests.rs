//! Unit tests of launcher preparation (checklist §11) on temp layer trees; the real binary is exercised
//! in a chroot by `acceptance/tests/launcher.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;

const METADATA: &str = r#"
[[buildpacks]]
id = "first/bp"
api = "0.12"
[[buildpacks]]
id = "second/bp"
api = "0.8"
[[buildpacks]]
id = "absent/bp"
api = "0.10"
[[processes]]
type = "web"
command = ["web-cmd", "always"]
args = ["default"]
direct = true
buildpack-id = "first/bp"
working-dir = "sub"
[[processes]]
type = "worker"
command = "echo worker"
direct = false
buildpack-id = "second/bp"
"#;

struct Fixture {
    root: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let root = TempDir::new().unwrap();
        let f = Self { root };
        f.write("layers/config/metadata.toml", METADATA);
        fs::create_dir_all(f.path("app/sub")).unwrap();
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
    }

    fn exe(&self, rel: &str, body: &str) {
        self.write(rel, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(self.path(rel), fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn inputs(&self, argv0: &str, args: &[&str], extra_env: &[(&str, &str)]) -> LaunchInputs {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("CNB_PLATFORM_API".into(), "0.15".into()),
            ("CNB_LAYERS_DIR".into(), self.path("layers").into()),
            ("CNB_APP_DIR".into(), self.path("app").into()),
            ("PATH".into(), "/cnb/process:/usr/bin:/bin".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.into(), v.into())));
        LaunchInputs::from_parts(argv0.into(), args.iter().map(OsString::from).collect(), env)
            .unwrap()
    }
}

fn env_of(plan: &Plan) -> Env {
    Env::from_vars(
        crate::env::Context::Launch,
        plan.env.iter().map(|kv| {
            let s = kv.to_str().unwrap();
            let (k, v) = s.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        }),
    )
}

#[test]
fn ln11_platform_api_missing_or_unsupported_is_exit_11() {
    for api in ["", "0.6", "x"] {
        let e = LaunchInputs::from_parts(
            "launcher".into(),
            vec![],
            vec![("CNB_PLATFORM_API".into(), api.into())],
        )
        .unwrap_err();
        assert_eq!(e.code(), 11, "{api}");
        assert!(e.message().contains("incompatible"), "{}", e.message());
    }
}

#[test]
fn ln01_missing_metadata_is_a_clear_error_82() {
    let f = Fixture::new();
    fs::remove_file(f.path("layers/config/metadata.toml")).unwrap();
    let e = prepare(&f.inputs("launcher", &["--", "true"], &[])).unwrap_err();
    assert_eq!(e.code(), 82);
    let m = e.message();
    assert_eq!(
        m,
        format!(
            "failed to launch: read metadata: open {}: no such file or directory",
            f.path("layers/config/metadata.toml").display()
        )
    );
}

#[test]
fn ln01_unsupported_buildpack_api_is_exit_12() {
    let f = Fixture::new();
    f.write(
        "layers/config/metadata.toml",
        "[[buildpacks]]\nid = \"x/y\"\napi = \"0.2\"\n",
    );
    let e = prepare(&f.inputs("launcher", &["--", "true"], &[])).unwrap_err();
    assert_eq!(e.code(), 12);
    assert_eq!(
        e.message(),
        "failed to set API for buildpack 'x/y': buildpack API version '0.2' is incompatible with the lifecycle"
    );
}

#[test]
fn ln05_no_process_and_no_command_is_82_with_reference_message() {
    let f = Fixture::new();
    let e = prepare(&f.inputs(
        "/cnb/lifecycle/launcher",
        &[],
        &[("CNB_PROCESS_TYPE", "web")],
    ))
    .unwrap_err();
    assert_eq!(e.code(), 82);
    assert_eq!(
        e.message(),
        "failed to launch: determine start command: when there is no default process a command is required"
    );
}

#[test]
fn ln07_ln09_direct_process_env_working_dir_and_args() {
    let f = Fixture::new();
    f.exe("layers/first_bp/l1/bin/web-cmd", "true");
    fs::create_dir_all(f.path("layers/first_bp/l1/lib")).unwrap();
    f.write("layers/first_bp/l1/env/SHARED.append", "first");
    f.write("layers/first_bp/l1/env/SHARED.delim", ":");
    f.write("layers/first_bp/l1/env.launch/web/ONLY_WEB", "yes");
    f.write("layers/first_bp/l1/env.launch/worker/ONLY_WORKER", "yes");
    f.write("layers/first_bp/l1/env.build/BUILD_ONLY", "no");
    f.write("layers/second_bp/l2/env.launch/SHARED.append", "second");
    f.write("layers/second_bp/l2/env.launch/SHARED.delim", ":");
    f.write("layers/first_bp/l1.toml", "[types]\nlaunch = true\n");
    let inputs = f.inputs(
        "/cnb/process/web",
        &["user-arg"],
        &[
            ("SHARED", "user"),
            ("CNB_APP_DIR", f.path("app").to_str().unwrap()),
        ],
    );
    let plan = prepare(&inputs).unwrap();
    assert_eq!(plan.program, f.path("layers/first_bp/l1/bin/web-cmd"));
    assert_eq!(
        plan.argv,
        ["web-cmd", "always", "user-arg"].map(OsString::from)
    );
    assert_eq!(plan.cwd, f.path("app/sub"));
    let env = env_of(&plan);
    assert_eq!(env.get_str("SHARED"), "user:first:second");
    assert_eq!(env.get_str("ONLY_WEB"), "yes");
    assert_eq!(env.get("ONLY_WORKER"), None);
    assert_eq!(env.get("BUILD_ONLY"), None);
    assert_eq!(
        env.get_str("PATH"),
        format!(
            "{}:/usr/bin:/bin",
            f.path("layers/first_bp/l1/bin").display()
        )
    );
    assert_eq!(
        env.get_str("LD_LIBRARY_PATH"),
        f.path("layers/first_bp/l1/lib").to_str().unwrap()
    );
    for gone in ["CNB_APP_DIR", "CNB_LAYERS_DIR", "CNB_PLATFORM_API"] {
        assert_eq!(env.get(gone), None, "{gone}");
    }
}

#[test]
fn ln08_execd_runs_in_order_in_app_dir_and_sets_env() {
    let f = Fixture::new();
    f.exe(
        "layers/first_bp/a/exec.d/10",
        r#"echo "V = \"$V:a10:$(pwd)\"" >&3"#,
    );
    f.exe(
        "layers/first_bp/a/exec.d/web/20",
        r#"echo "V = \"$V:aweb\"" >&3"#,
    );
    f.exe(
        "layers/first_bp/a/exec.d/worker/20",
        r#"echo "V = \"$V:WRONG\"" >&3"#,
    );
    f.exe(
        "layers/second_bp/b/exec.d/05",
        r#"echo "V = \"$V:b05\"" >&3"#,
    );
    f.write("layers/first_bp/a/env/V.default", "from-env-file");
    let plan = prepare(&f.inputs("/cnb/process/web", &[], &[("PATH", "/usr/bin:/bin")]));
    // web-cmd is not on PATH: lookup fails after exec.d ran; check exec.d through a direct command.
    assert!(matches!(plan, Err(LaunchError::Lookup(_))));
    let plan = prepare(&f.inputs("launcher", &["--", "true"], &[])).unwrap();
    assert_eq!(
        env_of(&plan).get_str("V"),
        format!("from-env-file:a10:{}:b05", f.path("app").display())
    );
    // With a process type, the typed dir runs after the layer's generic files (interleaved per layer).
    f.exe("layers/first_bp/a/bin/web-cmd", "true");
    let plan = prepare(&f.inputs("/cnb/process/web", &[], &[])).unwrap();
    assert_eq!(
        env_of(&plan).get_str("V"),
        format!("from-env-file:a10:{}:aweb:b05", f.path("app").display())
    );
}

#[test]
fn ln08_failing_execd_is_82_naming_the_file() {
    let f = Fixture::new();
    f.exe("layers/first_bp/a/exec.d/bad", "echo boom >&2; exit 7");
    let e = prepare(&f.inputs("launcher", &["--", "true"], &[])).unwrap_err();
    assert_eq!(e.code(), 82);
    let m = e.message();
    assert!(
        m.starts_with("failed to launch: exec.d: failed to execute exec.d file at path '"),
        "{m}"
    );
    assert!(m.contains("first_bp/a/exec.d/bad"), "{m}");
}

#[test]
fn ln10_shell_process_profiles_in_order_then_app_profile() {
    let f = Fixture::new();
    f.write("layers/first_bp/a/profile.d/1.sh", "");
    f.write("layers/first_bp/a/profile.d/worker/2.sh", "");
    f.write("layers/first_bp/a/profile.d/web/x.sh", "");
    f.write("layers/second_bp/b/profile.d/0.sh", "");
    f.write("app/.profile", "");
    let plan = prepare(&f.inputs("/cnb/process/worker", &[], &[])).unwrap();
    assert_eq!(plan.program, Path::new("/bin/bash"));
    assert_eq!(plan.cwd, f.path("app"));
    let script = plan.argv[2].to_str().unwrap();
    let sources: Vec<&str> = script.lines().filter(|l| l.starts_with("source")).collect();
    let q = |p: &str| format!("source '{}'", f.path(p).display());
    assert_eq!(
        sources,
        [
            q("layers/first_bp/a/profile.d/1.sh"),
            q("layers/first_bp/a/profile.d/worker/2.sh"),
            q("layers/second_bp/b/profile.d/0.sh"),
            q("app/.profile"),
        ]
    );
    assert_eq!(plan.argv[3], OsStr::new("/cnb/process/worker"));
    assert_eq!(plan.argv[4], OsStr::new("echo worker"));
}

#[test]
fn ln05_user_shell_command_without_dashes() {
    let f = Fixture::new();
    let plan = prepare(&f.inputs("launcher", &["echo", "$HOME"], &[])).unwrap();
    assert_eq!(plan.program, Path::new("/bin/bash"));
    assert_eq!(&plan.argv[4..], ["echo", "$HOME"].map(OsString::from));
}
