//! The launcher (platform spec "launcher", buildpack spec "Launch"; checklist §11 LN-01..12, ENV-09):
//! select a process, build the launch environment from the launch layers, run `exec.d`, and `execve` the
//! process (directly, or through `bash` with the profile scripts for shell processes).
//!
//! The launcher ships inside every app image, so it stays small: this module and [`crate::env`] use only
//! std, `cnb-spec`, `toml`/`serde`, `nix` and `libc` — nothing here references the registry, image or
//! async code of this crate, so the linker drops it from the `launcher` binary.
//!
//! [`prepare`] does everything except the final `chdir` + `execve` and returns a [`Plan`]; [`main`]
//! resolves [`LaunchInputs`] from the process, prepares, and [`Plan::exec`]s.

pub mod exec;
pub mod execd;
pub mod process;
pub mod shell;

use std::convert::Infallible;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cnb_spec::api::ApiError;
use cnb_spec::exit;
use cnb_spec::platform::{BuildMetadata, METADATA_PATH};
use cnb_spec::{BuildpackApi, FileError, PlatformApi};

use crate::env::{escape_id, Env, EnvError};
use crate::error::chain;
use exec::ExecError;
use execd::ExecDError;
use process::{LaunchProcess, SelectError};

/// Directory of the `/cnb/process/<type>` symlinks; removed from the app's `PATH` (LN-06).
pub const PROCESS_DIR: &str = "/cnb/process";
/// Directory of the lifecycle binaries; removed from the app's `PATH` (LN-06).
pub const LIFECYCLE_DIR: &str = "/cnb/lifecycle";
/// The app's own profile script, sourced last for shell processes.
pub const APP_PROFILE: &str = ".profile";

/// A launch failure; [`LaunchError::code`] is the exit code (LN-11).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `CNB_PLATFORM_API` is missing, unparsable or unsupported (exit 11).
    #[error(transparent)]
    PlatformApi(ApiError),
    /// A buildpack in `metadata.toml` declares an unsupported API (exit 12).
    #[error("set API for buildpack '{id}'")]
    BuildpackApi {
        /// Buildpack id.
        id: String,
        /// The cause.
        #[source]
        source: ApiError,
    },
    /// `metadata.toml` could not be read.
    #[error("read metadata")]
    Metadata(#[source] FileError),
    /// No process could be selected.
    #[error("determine start command")]
    Select(#[source] SelectError),
    /// A buildpack or layer directory could not be listed.
    #[error("list directory '{path}'")]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Launch env files could not be applied.
    #[error("modify env")]
    Env(#[source] EnvError),
    /// An exec.d executable failed.
    #[error("exec.d")]
    ExecD(#[source] ExecDError),
    /// A shell process names a buildpack that is not in the metadata.
    #[error("process type '{kind}' provided by unknown buildpack '{id}'")]
    UnknownBuildpack {
        /// Process type.
        kind: String,
        /// Buildpack id.
        id: String,
    },
    /// A direct process has no command.
    #[error("no command provided for process type \"{0}\"")]
    NoCommand(String),
    /// The command was not found.
    #[error("path lookup")]
    Lookup(#[source] ExecError),
    /// The working directory cannot be entered.
    #[error("change directory to '{path}'")]
    Chdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `execve` failed.
    #[error("exec")]
    Exec(#[source] ExecError),
}

impl LaunchError {
    /// The exit code: 11, 12, or 82 for every other error before the process starts.
    pub fn code(&self) -> u8 {
        match self {
            LaunchError::PlatformApi(_) => exit::INCOMPATIBLE_PLATFORM_API,
            LaunchError::BuildpackApi { .. } => exit::INCOMPATIBLE_BUILDPACK_API,
            _ => exit::LAUNCH_ERROR,
        }
    }

    /// The message printed after `ERROR: `.
    pub fn message(&self) -> String {
        match self {
            LaunchError::PlatformApi(e) => e.to_string(),
            LaunchError::BuildpackApi { source, .. } => {
                format!("failed to {self}: {source}")
            }
            _ => format!("failed to launch: {}", chain(self)),
        }
    }
}

/// Everything the launcher reads from its invocation.
#[derive(Debug, Clone)]
pub struct LaunchInputs {
    /// `CNB_PLATFORM_API`.
    pub platform_api: PlatformApi,
    /// `CNB_LAYERS_DIR` (absolute).
    pub layers_dir: PathBuf,
    /// `CNB_APP_DIR` (absolute).
    pub app_dir: PathBuf,
    /// `CNB_EXEC_ENV`.
    pub exec_env: String,
    /// argv\[0\] (selects the process type when it is `/cnb/process/<type>`).
    pub argv0: OsString,
    /// argv\[1..\].
    pub args: Vec<OsString>,
    /// The launcher's environment.
    pub env: Vec<(OsString, OsString)>,
}

impl LaunchInputs {
    /// Resolves the inputs from this process's argv and environment.
    pub fn from_process() -> Result<Self, LaunchError> {
        let mut argv = std::env::args_os();
        let argv0 = argv.next().unwrap_or_default();
        Self::from_parts(argv0, argv.collect(), std::env::vars_os().collect())
    }

    /// Resolves the inputs from the given argv and environment.
    pub fn from_parts(
        argv0: OsString,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
    ) -> Result<Self, LaunchError> {
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
                .filter(|v| !v.is_empty())
        };
        let platform_api =
            PlatformApi::parse_supported(&var(cnb_spec::env::PLATFORM_API).unwrap_or_default())
                .map_err(LaunchError::PlatformApi)?;
        let abs = |name: &str, default: &str| {
            let p = PathBuf::from(var(name).unwrap_or_else(|| default.to_string()));
            std::path::absolute(&p).unwrap_or(p)
        };
        Ok(Self {
            platform_api,
            layers_dir: abs(
                cnb_spec::env::LAYERS_DIR,
                cnb_spec::env::defaults::LAYERS_DIR,
            ),
            app_dir: abs(cnb_spec::env::APP_DIR, cnb_spec::env::defaults::APP_DIR),
            exec_env: var(cnb_spec::env::EXEC_ENV)
                .unwrap_or_else(|| cnb_spec::env::defaults::EXEC_ENV.to_string()),
            argv0,
            args,
            env,
        })
    }

    /// `<layers>/config/metadata.toml`.
    pub fn metadata_path(&self) -> PathBuf {
        self.layers_dir.join(METADATA_PATH)
    }
}

/// What to `execve`, in which directory, with which environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The executable (absolute, or relative to `cwd`).
    pub program: PathBuf,
    /// Its argv (argv\[0\] included).
    pub argv: Vec<OsString>,
    /// Its environment as `NAME=value` entries.
    pub env: Vec<OsString>,
    /// The directory to change to before `execve`.
    pub cwd: PathBuf,
    /// The selected process.
    pub process: LaunchProcess,
}

impl Plan {
    /// Changes to [`Plan::cwd`] and replaces this process. Returns only on failure.
    pub fn exec(&self) -> Result<Infallible, LaunchError> {
        std::env::set_current_dir(&self.cwd).map_err(|source| LaunchError::Chdir {
            path: self.cwd.clone(),
            source,
        })?;
        exec::execve(&self.program, &self.argv, &self.env).map_err(LaunchError::Exec)
    }
}

/// A buildpack's layers directory and API, in build order (absent directories skipped).
struct BuildpackDir {
    dir: PathBuf,
    api: BuildpackApi,
}

/// Reads the metadata, selects the process, builds the environment, runs exec.d, and returns the
/// [`Plan`] to exec. Warnings (LN-02) go to stderr.
pub fn prepare(inputs: &LaunchInputs) -> Result<Plan, LaunchError> {
    let md = BuildMetadata::read(inputs.metadata_path()).map_err(LaunchError::Metadata)?;
    for bp in &md.buildpacks {
        bp.buildpack_api()
            .map_err(|source| LaunchError::BuildpackApi {
                id: bp.id.clone(),
                source,
            })?;
    }
    if let Some((_, t)) = inputs
        .env
        .iter()
        .find(|(k, v)| k == cnb_spec::env::PROCESS_TYPE && !v.is_empty())
    {
        let t = t.to_string_lossy();
        eprintln!(
            "Warning: CNB_PROCESS_TYPE is not supported in Platform API {}",
            inputs.platform_api
        );
        eprintln!("Warning: Run with ENTRYPOINT '{t}' to invoke the '{t}' process type");
    }
    let process_type = process::type_from_argv0(&inputs.argv0, &md);
    let proc = process::select(
        &md,
        inputs.platform_api,
        &inputs.exec_env,
        process_type.as_deref(),
        &inputs.args,
    )
    .map_err(LaunchError::Select)?;
    let ptype = proc.process_type.as_deref();

    let bps = buildpack_dirs(inputs, &md)?;
    let mut env = Env::for_launch(
        inputs.env.iter().cloned(),
        Path::new(PROCESS_DIR),
        Path::new(LIFECYCLE_DIR),
    );
    for bp in &bps {
        let layers = entries(&bp.dir, true)?;
        for layer in &layers {
            env.add_root_dir(layer).map_err(LaunchError::Env)?;
        }
        for layer in &layers {
            env.add_launch_layer_env(layer, bp.api, ptype)
                .map_err(LaunchError::Env)?;
        }
    }
    for bp in &bps {
        for layer in entries(&bp.dir, true)? {
            let execd = layer.join("exec.d");
            let mut files = entries(&execd, false)?;
            if let Some(t) = ptype {
                files.extend(entries(&execd.join(t), false)?);
            }
            for f in files {
                execd::run(&f, &inputs.app_dir, &mut env).map_err(LaunchError::ExecD)?;
            }
        }
    }
    let working_dir = match &proc.working_dir {
        Some(w) => inputs.app_dir.join(w),
        None => inputs.app_dir.clone(),
    };
    if proc.direct {
        direct_plan(proc, env, &inputs.app_dir, working_dir)
    } else {
        shell_plan(inputs, &md, &bps, proc, env, working_dir)
    }
}

fn direct_plan(
    proc: LaunchProcess,
    env: Env,
    app_dir: &Path,
    working_dir: PathBuf,
) -> Result<Plan, LaunchError> {
    let kind = proc.process_type.clone().unwrap_or_default();
    let first = proc.command.first().ok_or(LaunchError::NoCommand(kind))?;
    let program = if first.as_encoded_bytes().contains(&b'/') {
        exec::look_path(working_dir.join(first).as_os_str(), None)
    } else {
        // A program found through a relative `PATH` entry is relative to `<app>`, where the launcher
        // runs (the reference chdirs there before the lookup).
        exec::look_path(first, env.get("PATH")).map(|p| app_dir.join(p))
    }
    .map_err(LaunchError::Lookup)?;
    let mut argv = proc.command.clone();
    argv.extend(proc.args.iter().cloned());
    Ok(Plan {
        program,
        argv,
        env: env.to_list(),
        cwd: working_dir,
        process: proc,
    })
}

fn shell_plan(
    inputs: &LaunchInputs,
    md: &BuildMetadata,
    bps: &[BuildpackDir],
    proc: LaunchProcess,
    env: Env,
    working_dir: PathBuf,
) -> Result<Plan, LaunchError> {
    if !proc.args.is_empty()
        && !proc.buildpack_id.is_empty()
        && !md.buildpacks.iter().any(|b| b.id == proc.buildpack_id)
    {
        return Err(LaunchError::UnknownBuildpack {
            kind: proc.process_type.clone().unwrap_or_default(),
            id: proc.buildpack_id.clone(),
        });
    }
    let mut profiles = Vec::new();
    for bp in bps {
        for layer in entries(&bp.dir, true)? {
            let profile_d = layer.join("profile.d");
            profiles.extend(entries(&profile_d, false)?);
            if let Some(t) = proc.process_type.as_deref() {
                profiles.extend(entries(&profile_d.join(t), false)?);
            }
        }
    }
    let app_profile = inputs.app_dir.join(APP_PROFILE);
    if std::fs::metadata(&app_profile).is_ok_and(|m| !m.is_dir()) {
        profiles.push(app_profile);
    }
    let argv = shell::bash_argv(
        &profiles,
        &working_dir,
        &inputs.argv0,
        &proc.command,
        &proc.args,
    );
    Ok(Plan {
        program: PathBuf::from(shell::BASH),
        argv,
        env: env.to_list(),
        cwd: inputs.app_dir.clone(),
        process: proc,
    })
}

/// The buildpacks of `md` whose `<layers>/<escaped id>` directory exists, in build order.
fn buildpack_dirs(
    inputs: &LaunchInputs,
    md: &BuildMetadata,
) -> Result<Vec<BuildpackDir>, LaunchError> {
    let mut out = Vec::new();
    for bp in &md.buildpacks {
        let dir = inputs.layers_dir.join(escape_id(&bp.id));
        match std::fs::metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LaunchError::List { path: dir, source }),
        }
        let api = bp
            .buildpack_api()
            .map_err(|source| LaunchError::BuildpackApi {
                id: bp.id.clone(),
                source,
            })?;
        out.push(BuildpackDir { dir, api });
    }
    Ok(out)
}

/// The entries of `dir` sorted by name: directories (`dirs = true`; symlinks are not followed) or
/// everything else. A missing `dir` has no entries.
fn entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>, LaunchError> {
    let list = |source| LaunchError::List {
        path: dir.to_path_buf(),
        source,
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(list(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(list)?;
        let is_dir = e.file_type().map_err(list)?.is_dir();
        if is_dir == dirs {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Entry point of the `launcher` binary: resolve inputs, prepare, exec. Prints `ERROR: ...` and exits
/// 11, 12 or 82 when the process cannot be started (LN-11).
pub fn main() -> ExitCode {
    let result = LaunchInputs::from_process()
        .and_then(|inputs| prepare(&inputs))
        .and_then(|plan| plan.exec());
    match result {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("ERROR: {}", e.message());
            ExitCode::from(e.code())
        }
    }
}

#[cfg(test)]
mod tests;
