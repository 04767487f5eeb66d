//! Process selection and argument rules (platform spec "launcher" Inputs; checklist LN-03, LN-04, LN-05).

use std::ffi::{OsStr, OsString};
use std::path::Path;

use cnb_spec::{BuildpackApi, PlatformApi};

use cnb_spec::buildpack::Process;
use cnb_spec::platform::BuildMetadata;

/// A process ready to be started: what [`select`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchProcess {
    /// The buildpack process type, or `None` for a user-provided command.
    pub process_type: Option<String>,
    /// The command: for a direct process the first entries of argv (the first is looked up in `PATH`);
    /// for a shell process joined with spaces into the command string.
    pub command: Vec<OsString>,
    /// Arguments after the command.
    pub args: Vec<OsString>,
    /// `true`: `execve` the command; `false`: run it through `bash` with profile scripts.
    pub direct: bool,
    /// The process's `working-dir` (relative to `<app>`), `None` for `<app>` itself.
    pub working_dir: Option<String>,
    /// Id of the buildpack that contributed the process (empty for user-provided commands).
    pub buildpack_id: String,
}

/// Why no process could be selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Invoked as `launcher` with no arguments (LN-05).
    #[error("when there is no default process a command is required")]
    NoCommand,
    /// The process type exists but no process of that type is eligible for `CNB_EXEC_ENV` (LN-03).
    #[error("process type {0} was not found")]
    NotFound(String),
    /// The process names a buildpack that is not in the metadata.
    #[error("failed to find buildpack for process {kind} with buildpack ID {buildpack}")]
    UnknownBuildpack {
        /// Process type.
        kind: String,
        /// The missing buildpack id.
        buildpack: String,
    },
    /// The contributing buildpack's API cannot be parsed.
    #[error("failed to parse api '{api}' of buildpack '{buildpack}'")]
    BadBuildpackApi {
        /// Buildpack id.
        buildpack: String,
        /// The API string.
        api: String,
    },
}

/// The process type named by the final path element of `argv0` (`/cnb/process/<type>`), if `md` has a
/// process of that type (LN-03).
pub fn type_from_argv0(argv0: &OsStr, md: &BuildMetadata) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    md.find_process(name).map(|_| name.to_string())
}

/// Selects the process to start from the process type of argv0 (if any) and the user's arguments,
/// applying the argument-override rules of the Platform and Buildpack APIs (LN-03..05).
pub fn select(
    md: &BuildMetadata,
    api: PlatformApi,
    exec_env: &str,
    process_type: Option<&str>,
    user_args: &[OsString],
) -> Result<LaunchProcess, SelectError> {
    let Some(kind) = process_type else {
        return user_provided(user_args);
    };
    let p = md
        .find_eligible_process(kind, api, exec_env)
        .ok_or_else(|| SelectError::NotFound(kind.to_string()))?;
    let os = |v: &[String]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let bp_api = buildpack_api(md, p)?;
    let mut out = LaunchProcess {
        process_type: Some(p.r#type.clone()),
        command: os(&p.command),
        args: os(&p.args),
        // A buildpack that supports default process args always has direct processes.
        direct: p.direct || bp_api.is_some_and(|a| a.user_args_replace_process_args()),
        working_dir: p.working_dir.clone().filter(|w| !w.is_empty()),
        buildpack_id: p.buildpack_id.clone(),
    };
    if !api.process_args_overridable() {
        out.args.extend(user_args.iter().cloned());
        return Ok(out);
    }
    if out.command.len() > 1 {
        // Entries after the first are always given; user args replace the overridable defaults.
        let overridable = std::mem::take(&mut out.args);
        out.args = out.command.split_off(1);
        if user_args.is_empty() {
            out.args.extend(overridable);
        } else {
            out.args.extend(user_args.iter().cloned());
        }
    } else if !user_args.is_empty() {
        let bp_api = bp_api.ok_or_else(|| SelectError::UnknownBuildpack {
            kind: p.r#type.clone(),
            buildpack: p.buildpack_id.clone(),
        })?;
        if bp_api.user_args_replace_process_args() {
            out.args = user_args.to_vec();
        } else {
            out.args.extend(user_args.iter().cloned());
        }
    }
    Ok(out)
}

/// The API of the buildpack that contributed `p`; `None` when it is not in the metadata.
fn buildpack_api(md: &BuildMetadata, p: &Process) -> Result<Option<BuildpackApi>, SelectError> {
    let Some(bp) = md.buildpacks.iter().find(|b| b.id == p.buildpack_id) else {
        return Ok(None);
    };
    let api = bp.api.as_deref().unwrap_or_default();
    api.parse::<BuildpackApi>()
        .map(Some)
        .map_err(|_| SelectError::BadBuildpackApi {
            buildpack: bp.id.clone(),
            api: api.to_string(),
        })
}

/// A user-provided command (LN-05): `-- cmd args…` is direct, `cmd args…` runs in a shell.
fn user_provided(args: &[OsString]) -> Result<LaunchProcess, SelectError> {
    let (direct, rest) = match args {
        [] => return Err(SelectError::NoCommand),
        [dashes, rest @ ..] if dashes == "--" && !rest.is_empty() => (true, rest),
        all => (false, all),
    };
    let (cmd, args) = rest.split_first().ok_or(SelectError::NoCommand)?;
    Ok(LaunchProcess {
        process_type: None,
        command: vec![cmd.clone()],
        args: args.to_vec(),
        direct,
        working_dir: None,
        buildpack_id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn md() -> BuildMetadata {
        BuildMetadata::from_toml_str(
            r#"
            [[buildpacks]]
            id = "old/bp"
            api = "0.8"
            [[buildpacks]]
            id = "new/bp"
            api = "0.12"
            [[processes]]
            type = "legacy"
            command = "echo"
            args = ["default"]
            direct = false
            buildpack-id = "old/bp"
            [[processes]]
            type = "web"
            command = ["echo"]
            args = ["default"]
            direct = true
            buildpack-id = "new/bp"
            [[processes]]
            type = "multi"
            command = ["echo", "always"]
            args = ["default"]
            direct = true
            buildpack-id = "new/bp"
            working-dir = "sub"
            [[processes]]
            type = "test-only"
            command = ["echo"]
            exec-env = ["test"]
            buildpack-id = "new/bp"
            [[processes]]
            type = "process.with.period"
            command = ["echo"]
            buildpack-id = "new/bp"
            "#,
        )
        .unwrap()
    }

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    const P15: PlatformApi = PlatformApi::new(0, 15);
    const P9: PlatformApi = PlatformApi::new(0, 9);

    #[test]
    fn ln03_type_from_argv0_basename_including_periods() {
        let m = md();
        assert_eq!(
            type_from_argv0(OsStr::new("/cnb/process/web"), &m).as_deref(),
            Some("web")
        );
        assert_eq!(
            type_from_argv0(OsStr::new("process.with.period"), &m).as_deref(),
            Some("process.with.period")
        );
        assert_eq!(
            type_from_argv0(OsStr::new("/cnb/lifecycle/launcher"), &m),
            None
        );
    }

    #[test]
    fn ln03_exec_env_eligibility_from_platform_015() {
        let m = md();
        let e = select(&m, P15, "production", Some("test-only"), &[]).unwrap_err();
        assert_eq!(e, SelectError::NotFound("test-only".into()));
        assert_eq!(e.to_string(), "process type test-only was not found");
        assert!(select(&m, P15, "test", Some("test-only"), &[]).is_ok());
        assert!(select(
            &m,
            PlatformApi::new(0, 14),
            "production",
            Some("test-only"),
            &[]
        )
        .is_ok());
    }

    #[test]
    fn ln04_default_args_kept_without_user_args() {
        let p = select(&md(), P15, "production", Some("web"), &[]).unwrap();
        assert_eq!(
            (p.command, p.args, p.direct),
            (a(&["echo"]), a(&["default"]), true)
        );
    }

    #[test]
    fn ln04_user_args_replace_for_bp_09_and_append_before() {
        let m = md();
        let p = select(&m, P15, "production", Some("web"), &a(&["user"])).unwrap();
        assert_eq!(p.args, a(&["user"]));
        let p = select(&m, P15, "production", Some("legacy"), &a(&["user"])).unwrap();
        assert_eq!(p.args, a(&["default", "user"]));
        assert!(!p.direct, "pre-0.9 shell process keeps direct=false");
    }

    #[test]
    fn ln04_multi_entry_command_keeps_always_args() {
        let m = md();
        let p = select(&m, P15, "production", Some("multi"), &[]).unwrap();
        assert_eq!(
            (p.command, p.args),
            (a(&["echo"]), a(&["always", "default"]))
        );
        let p = select(&m, P15, "production", Some("multi"), &a(&["u1", "u2"])).unwrap();
        assert_eq!(
            (p.command, p.args),
            (a(&["echo"]), a(&["always", "u1", "u2"]))
        );
        assert_eq!(p.working_dir.as_deref(), Some("sub"));
    }

    #[test]
    fn ln04_platform_before_010_appends_user_args() {
        let m = md();
        let p = select(&m, P9, "production", Some("web"), &a(&["user"])).unwrap();
        assert_eq!(p.args, a(&["default", "user"]));
        let p = select(&m, P9, "production", Some("multi"), &a(&["user"])).unwrap();
        assert_eq!(
            [p.command, p.args].concat(),
            a(&["echo", "always", "default", "user"])
        );
    }

    #[test]
    fn ln04_unknown_buildpack_with_user_args_is_an_error() {
        let mut m = md();
        m.processes[1].buildpack_id = "gone".into();
        let e = select(&m, P15, "production", Some("web"), &a(&["x"])).unwrap_err();
        assert!(matches!(e, SelectError::UnknownBuildpack { .. }));
    }

    #[test]
    fn ln05_user_provided_commands() {
        let m = md();
        assert_eq!(
            select(&m, P15, "production", None, &[])
                .unwrap_err()
                .to_string(),
            "when there is no default process a command is required"
        );
        let p = select(&m, P15, "production", None, &a(&["--", "env", "-0"])).unwrap();
        assert_eq!(
            (p.command, p.args, p.direct),
            (a(&["env"]), a(&["-0"]), true)
        );
        let p = select(&m, P15, "production", None, &a(&["echo", "$HOME"])).unwrap();
        assert_eq!(
            (p.command, p.args, p.direct),
            (a(&["echo"]), a(&["$HOME"]), false)
        );
        assert_eq!(p.process_type, None);
    }
}
