//! Running a module's `bin/detect` as a child process (buildpack spec "Detection", image extension spec
//! "Detection"; checklist DS-08…DS-10, ENV-04, ENV-06).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cnb_spec::BuildpackApi;

use super::detector::DetectRunner;
use super::model::{DetectOutcome, DetectPlan, DetectStatus, Kind};
use super::store::Descriptor;
use crate::env::{Env, EnvError};

/// What every module run shares: directories, the base environment and the target variables.
#[derive(Debug, Clone)]
pub struct ModuleContext {
    /// `-app` (the working directory of every module).
    pub app_dir: PathBuf,
    /// `-platform`.
    pub platform_dir: PathBuf,
    /// `-build-config` when the Platform API has it (≥ 0.11), else `None`.
    pub build_config_dir: Option<PathBuf>,
    /// The allow-listed base environment (plus accumulated build-layer env for the builder).
    pub base_env: Env,
    /// `CNB_TARGET_*` (passed to modules with Buildpack API ≥ 0.10).
    pub target_env: Vec<(String, String)>,
    /// `CNB_EXEC_ENV` (passed to modules with Buildpack API ≥ 0.12 when non-empty).
    pub exec_env: String,
}

impl ModuleContext {
    /// Builds the child environment for `d`: base env with user env (unless `clear-env`) and operator
    /// env, then the lifecycle-provided variables (ENV-02…ENV-04). `extra` is appended last.
    pub fn env_for(
        &self,
        base: &Env,
        d: &Descriptor,
        extra: &[(&str, String)],
        with_exec_env: bool,
    ) -> Result<Env, EnvError> {
        let platform = (!d.clear_env).then_some(self.platform_dir.as_path());
        let mut env = base.with_overrides(platform, self.build_config_dir.as_deref())?;
        for (k, v) in extra {
            env.set(*k, v);
        }
        if d.api >= BuildpackApi::new(0, 10) {
            for (k, v) in &self.target_env {
                env.set(k, v);
            }
        }
        if with_exec_env && d.api >= BuildpackApi::new(0, 12) && !self.exec_env.is_empty() {
            env.set("CNB_EXEC_ENV", &self.exec_env);
        }
        Ok(env)
    }
}

/// Spawns `cmd`, retrying briefly on `ETXTBSY` (a script just written while another thread forked).
pub fn spawn_retrying(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 * tries));
            }
            // A missing working directory makes the kernel report ENOENT as if the program were
            // missing: name the directory (the reference's `chdir <dir>: ...`).
            Err(e) => {
                return Err(match cmd.get_current_dir().filter(|d| !d.is_dir()) {
                    Some(dir) => {
                        std::io::Error::new(e.kind(), format!("chdir {}: {e}", dir.display()))
                    }
                    None => e,
                })
            }
            ok => return ok,
        }
    }
}

/// Runs `cmd` with stdout and stderr merged into one buffer, in write order.
pub fn run_captured(cmd: &mut Command) -> std::io::Result<(Option<i32>, Vec<u8>)> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut reader = std::fs::File::from(reader);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer));
    let spawned = spawn_retrying(cmd);
    // Drop our copies of the write end (held by `cmd`) so reading reaches EOF when the child exits.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = spawned?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    let status = child.wait()?;
    Ok((status.code(), out))
}

/// The real detect runner: runs `bin/detect` of buildpacks and extensions.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    /// Shared inputs.
    pub ctx: ModuleContext,
}

impl DetectRunner for ProcessRunner {
    fn detect(&self, d: &Descriptor) -> DetectOutcome {
        let bin = d.bin("detect");
        if d.kind == Kind::Extension && !bin.exists() {
            // DS-08: an extension without bin/detect passes with its pre-populated plan, if any.
            let plan_path = d.root.join("detect").join("plan.toml");
            return match std::fs::read_to_string(&plan_path) {
                Ok(text) => finish(d, &plan_path, &text, Vec::new()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => DetectOutcome {
                    status: DetectStatus::Pass,
                    plan: DetectPlan::default(),
                    output: Vec::new(),
                },
                Err(e) => DetectOutcome::error(format!(
                    "failed to read plan {}: {e}",
                    plan_path.display()
                )),
            };
        }
        let tmp = match tempfile::Builder::new().prefix("plan.").tempdir() {
            Ok(t) => t,
            Err(e) => return DetectOutcome::error(format!("failed to create plan dir: {e}")),
        };
        let plan_path = tmp.path().join("plan.toml");
        if let Err(e) = std::fs::write(&plan_path, b"") {
            return DetectOutcome::error(format!("failed to write {}: {e}", plan_path.display()));
        }
        let root_key = match d.kind {
            Kind::Buildpack => "CNB_BUILDPACK_DIR",
            Kind::Extension => "CNB_EXTENSION_DIR",
        };
        let mut extra = vec![(root_key, d.root.to_string_lossy().into_owned())];
        if d.api >= BuildpackApi::new(0, 8) {
            extra.push((
                "CNB_PLATFORM_DIR",
                self.ctx.platform_dir.to_string_lossy().into_owned(),
            ));
            extra.push((
                "CNB_BUILD_PLAN_PATH",
                plan_path.to_string_lossy().into_owned(),
            ));
        }
        let env = match self.ctx.env_for(&self.ctx.base_env, d, &extra, true) {
            Ok(e) => e,
            Err(e) => return DetectOutcome::error(e.to_string()),
        };
        let mut cmd = Command::new(&bin);
        cmd.arg(&self.ctx.platform_dir)
            .arg(&plan_path)
            .current_dir(&self.ctx.app_dir);
        env.apply_to(&mut cmd);
        let (code, output) = match run_captured(&mut cmd) {
            Ok(r) => r,
            Err(e) => {
                return DetectOutcome::error(format!(
                    "failed to run {} of {} '{}@{}': {e}",
                    bin.display(),
                    d.kind,
                    d.id,
                    d.version
                ))
            }
        };
        match code {
            Some(0) => match std::fs::read_to_string(&plan_path) {
                Ok(text) => finish(d, &plan_path, &text, output),
                Err(e) => DetectOutcome {
                    status: DetectStatus::Error(format!(
                        "failed to read plan {}: {e}",
                        plan_path.display()
                    )),
                    plan: DetectPlan::default(),
                    output,
                },
            },
            Some(100) => DetectOutcome {
                status: DetectStatus::Fail,
                plan: DetectPlan::default(),
                output,
            },
            Some(c) => DetectOutcome {
                status: DetectStatus::ExitCode(c),
                plan: DetectPlan::default(),
                output,
            },
            None => DetectOutcome {
                status: DetectStatus::Error(format!("{} was killed by a signal", bin.display())),
                plan: DetectPlan::default(),
                output,
            },
        }
    }
}

/// Parses and validates a detect plan (DS-10).
fn finish(d: &Descriptor, path: &Path, text: &str, output: Vec<u8>) -> DetectOutcome {
    match parse_plan(d, text) {
        Ok(plan) => DetectOutcome {
            status: DetectStatus::Pass,
            plan,
            output,
        },
        Err(msg) => DetectOutcome {
            status: DetectStatus::Error(format!("{msg} (plan {})", path.display())),
            plan: DetectPlan::default(),
            output,
        },
    }
}

/// Parses a detect-time build plan (cnb-spec type) and applies the spec's validity checks (DS-10).
pub fn parse_plan(d: &Descriptor, text: &str) -> Result<DetectPlan, String> {
    let plan = DetectPlan::from_toml_str(text).map_err(|e| e.to_string())?;
    let doubly = plan
        .requires
        .iter()
        .chain(plan.or.iter().flat_map(|o| o.requires.iter()))
        .any(|r| r.has_doubly_specified_version());
    if doubly {
        return Err(format!(
            "{} {} has a \"version\" key and a \"metadata.version\" which cannot be specified together. \"metadata.version\" should be used instead",
            d.kind, d.id
        ));
    }
    plan.validate(&d.id, d.kind == Kind::Extension)
        .map_err(|e| e.to_string())?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn descriptor(root: &Path, kind: Kind, api: (u16, u16)) -> Descriptor {
        Descriptor {
            kind,
            id: "test/bp".into(),
            version: "1".into(),
            api: BuildpackApi::new(api.0, api.1),
            homepage: None,
            clear_env: false,
            order: vec![],
            targets: vec![],
            exec_env: vec![],
            sbom_formats: vec![],
            root: root.to_path_buf(),
            path: root.join("buildpack.toml"),
        }
    }

    fn script(root: &Path, name: &str, body: &str) {
        let p = root.join("bin").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn ctx(tmp: &Path) -> ModuleContext {
        std::fs::create_dir_all(tmp.join("platform/env")).unwrap();
        std::fs::write(tmp.join("platform/env/USER_VAR"), "from-user").unwrap();
        ModuleContext {
            app_dir: tmp.to_path_buf(),
            platform_dir: tmp.join("platform"),
            build_config_dir: None,
            base_env: Env::for_build([("PATH", "/usr/bin:/bin")]),
            target_env: vec![
                ("CNB_TARGET_OS".into(), "linux".into()),
                ("CNB_TARGET_ARCH".into(), "amd64".into()),
            ],
            exec_env: "production".into(),
        }
    }

    #[test]
    fn env_04_detect_gets_args_env_and_plan_with_output_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let bp = tmp.path().join("bp");
        script(
            &bp,
            "detect",
            r#"echo "out1"; echo "err1" >&2; echo "out2"
[ "$1" = "$CNB_PLATFORM_DIR" ] || exit 3
[ "$2" = "$CNB_BUILD_PLAN_PATH" ] || exit 4
[ "$USER_VAR" = "from-user" ] || exit 5
[ "$CNB_TARGET_OS" = "linux" ] || exit 6
[ -n "$CNB_BUILDPACK_DIR" ] || exit 7
[ "$CNB_EXEC_ENV" = "production" ] || exit 8
printf '[[provides]]\nname = "x"\n[[requires]]\nname = "x"\n[requires.metadata]\nversion = "1"\n' > "$2""#,
        );
        let r = ProcessRunner {
            ctx: ctx(tmp.path()),
        };
        let o = r.detect(&descriptor(&bp, Kind::Buildpack, (0, 12)));
        assert_eq!(
            o.status,
            DetectStatus::Pass,
            "{}",
            String::from_utf8_lossy(&o.output)
        );
        assert_eq!(o.output, b"out1\nerr1\nout2\n");
        assert_eq!(o.plan.provides[0].name, "x");
        assert_eq!(o.plan.requires[0].metadata["version"].as_str(), Some("1"));
    }

    #[test]
    fn ds_09_exit_codes_and_missing_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let bp = tmp.path().join("bp");
        script(&bp, "detect", "exit 100");
        let r = ProcessRunner {
            ctx: ctx(tmp.path()),
        };
        let d = descriptor(&bp, Kind::Buildpack, (0, 10));
        assert_eq!(r.detect(&d).status, DetectStatus::Fail);
        script(&bp, "detect", "exit 7");
        assert_eq!(r.detect(&d).status, DetectStatus::ExitCode(7));
        std::fs::remove_file(bp.join("bin/detect")).unwrap();
        let o = r.detect(&d);
        match o.status {
            DetectStatus::Error(m) => {
                assert!(m.contains("bin/detect") && m.contains("test/bp@1"), "{m}")
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn ds_10_plan_validation() {
        let tmp = tempfile::tempdir().unwrap();
        let d = descriptor(tmp.path(), Kind::Buildpack, (0, 10));
        let e = parse_plan(&d, "[[requires]]\nname = \"a\"\nversion = \"1\"\n").unwrap_err();
        assert!(e.contains("has a \"version\" key which is not supported"));
        let x = descriptor(tmp.path(), Kind::Extension, (0, 10));
        let e = parse_plan(&x, "[[or]]\n[[or.requires]]\nname = \"a\"\n").unwrap_err();
        assert!(e.contains("outputs \"requires\""));
        assert!(parse_plan(&d, "not toml = = =").is_err());
    }

    #[test]
    fn ds_08_extension_without_detect_uses_prepopulated_plan() {
        let tmp = tempfile::tempdir().unwrap();
        let ext = tmp.path().join("ext");
        std::fs::create_dir_all(ext.join("detect")).unwrap();
        std::fs::write(
            ext.join("detect/plan.toml"),
            "[[provides]]\nname = \"tool\"\n",
        )
        .unwrap();
        let r = ProcessRunner {
            ctx: ctx(tmp.path()),
        };
        let o = r.detect(&descriptor(&ext, Kind::Extension, (0, 10)));
        assert_eq!(o.status, DetectStatus::Pass);
        assert_eq!(o.plan.provides[0].name, "tool");
    }
}
