//! Environment files and modification rules (buildpack spec "Environment", "Environment Variable
//! Modification Rules"; platform spec "launcher"; checklist §14 ENV-01..10, §15 ENVM-01..05).
//!
//! [`Env`] is one environment: an ordered map of variable name → value (bytes, never re-encoded) plus the
//! context ([`Context::Build`] or [`Context::Launch`]) that decides which layer root directories feed which
//! path variables. Phases build one with [`Env::for_build`] (the allow-list of ENV-01: nothing else from the
//! lifecycle's own environment — in particular no `CNB_REGISTRY_AUTH` — reaches buildpacks) or
//! [`Env::for_launch`] (the launcher's exclusion list, LN-06), then apply layers in buildpack order:
//!
//! - [`Env::add_root_dir`]: `bin`→`PATH`, `lib`→`LD_LIBRARY_PATH` (+ `LIBRARY_PATH` at build time),
//!   `include`→`CPATH`, `pkgconfig`→`PKG_CONFIG_PATH` (build only), each prepended with `:`.
//! - [`Env::add_env_dir`]: every file `NAME[.suffix]` of an `env/`, `env.build/`, `env.launch/` or
//!   `env.launch/<process>/` directory, by the rules of [`Action`].
//! - [`Env::add_build_layer`] / [`Env::add_launch_layer`]: the per-layer sequences the builder and the
//!   launcher use.
//!
//! For each buildpack/extension execution, [`Env::with_overrides`] returns a copy with the user's platform
//! env (`<platform>/env/`, ENV-02) and the operator's build-config env (`<build-config>/env/`, ENV-03)
//! applied; the overlays are never persisted in the cumulative build environment (ENV-07).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_spec::BuildpackApi;

/// The path list separator on Linux.
pub const PATH_LIST_SEPARATOR: &str = ":";

/// Variables of the lifecycle's own environment that are passed through to `bin/detect`, `bin/build` and
/// `bin/generate` (ENV-01), in addition to the build-time layer path variables ([`BUILD_ROOT_DIRS`]).
/// Everything else — every other `CNB_*` variable, registry credentials, the platform's secrets — is dropped.
pub const BUILD_ENV_ALLOWLIST: &[&str] = &[
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Variables removed from the launcher's environment before the process starts (LN-06).
pub const LAUNCH_ENV_EXCLUDELIST: &[&str] = &[
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
];

/// A layer root sub-directory and the path variables it is prepended to.
pub type RootDir = (&'static str, &'static [&'static str]);

/// Layer root directories at build time (buildpack spec "Layer Paths", ENV-08).
pub const BUILD_ROOT_DIRS: &[RootDir] = &[
    ("bin", &["PATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("include", &["CPATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

/// Layer root directories at launch time (buildpack spec "Layer Paths", ENV-09).
pub const LAUNCH_ROOT_DIRS: &[RootDir] = &[("bin", &["PATH"]), ("lib", &["LD_LIBRARY_PATH"])];

/// Where an environment is used: decides the layer root directories and the per-layer env directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// detect, generate and build: root dirs of [`BUILD_ROOT_DIRS`], layer dirs `env/` then `env.build/`.
    Build,
    /// the launcher: root dirs of [`LAUNCH_ROOT_DIRS`], layer dirs `env/`, `env.launch/`,
    /// `env.launch/<process>/`.
    Launch,
}

impl Context {
    /// The layer root directories of this context.
    pub fn root_dirs(self) -> &'static [RootDir] {
        match self {
            Context::Build => BUILD_ROOT_DIRS,
            Context::Launch => LAUNCH_ROOT_DIRS,
        }
    }

    /// Whether `name` is a layer path variable of this context (e.g. `PATH`).
    pub fn is_root_var(self, name: &OsStr) -> bool {
        self.root_dirs()
            .iter()
            .any(|(_, vars)| vars.iter().any(|v| OsStr::new(v) == name))
    }

    /// The context-specific env directory name of a layer: `env.build` or `env.launch`.
    pub fn layer_env_dir(self) -> &'static str {
        match self {
            Context::Build => "env.build",
            Context::Launch => "env.launch",
        }
    }
}

/// How an env file modifies its variable (buildpack spec "Environment Variable Modification Rules"; ENVM-01..03).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `NAME.override` (and a suffix-less file in a layer env dir): the value is the file contents.
    Override,
    /// `NAME.default`: set only if the variable is currently empty or unset.
    Default,
    /// `NAME.prepend`: `contents + delim + current` (delim omitted when current is empty).
    Prepend,
    /// `NAME.append`: `current + delim + contents` (delim omitted when current is empty).
    Append,
    /// A file named `NAME.` (empty suffix), kept for parity with the reference: prepend with the
    /// `NAME.delim` delimiter, or `:` when there is none (pre-0.5 buildpack API behaviour).
    PrependPath,
}

impl Action {
    /// The action of a file suffix (text after the first `.`); `None` for `delim` and unknown suffixes,
    /// whose files are not modifications (ENVM-01: unknown suffix → file ignored).
    pub fn from_suffix(suffix: &[u8]) -> Option<Action> {
        match suffix {
            b"override" => Some(Action::Override),
            b"default" => Some(Action::Default),
            b"prepend" => Some(Action::Prepend),
            b"append" => Some(Action::Append),
            b"" => Some(Action::PrependPath),
            _ => None,
        }
    }
}

/// The action of a suffix-less file in a buildpack layer's env directory. For every supported Buildpack
/// API (0.7+) it is [`Action::Override`] (ENVM-01); the operator's build-config env uses
/// [`Action::Default`] instead (ENV-03).
pub fn default_action(_api: BuildpackApi) -> Action {
    Action::Override
}

/// Replaces every `/` of a buildpack id with `_`: the name of its directory under `<layers>`.
pub fn escape_id(id: &str) -> String {
    cnb_spec::buildpack::escape_id(id)
}

/// Error reading env files or layer directories; names the path.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A directory could not be listed.
    #[error("failed to list env directory '{path}'")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An env file (or the target of a symlink in an env dir) could not be read.
    #[error("failed to read env file '{path}'")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layer directory or one of its root dirs could not be inspected.
    #[error("failed to inspect layer directory '{path}'")]
    Layer {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// One environment: variable name → value, ordered by name, plus its [`Context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    context: Context,
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    /// An empty environment.
    pub fn new(context: Context) -> Self {
        Self {
            context,
            vars: BTreeMap::new(),
        }
    }

    /// An environment holding exactly `vars` (no filtering).
    pub fn from_vars<K, V>(context: Context, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self {
            context,
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The base environment of detect, generate and build (ENV-01): only the variables of `vars` named in
    /// [`BUILD_ENV_ALLOWLIST`] or that are build-time layer path variables (`PATH`, `LD_LIBRARY_PATH`,
    /// `LIBRARY_PATH`, `CPATH`, `PKG_CONFIG_PATH`).
    pub fn for_build<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut env = Self::new(Context::Build);
        for (k, v) in vars {
            let k = k.into();
            let allowed = BUILD_ENV_ALLOWLIST.iter().any(|a| OsStr::new(a) == k)
                || Context::Build.is_root_var(&k);
            if allowed {
                env.vars.insert(k, v.into());
            }
        }
        env
    }

    /// [`Env::for_build`] of this process's environment.
    pub fn for_build_from_process() -> Self {
        Self::for_build(std::env::vars_os())
    }

    /// The launcher's base environment (LN-06): `vars` minus [`LAUNCH_ENV_EXCLUDELIST`], with every
    /// `PATH` entry equal to `process_dir` (`/cnb/process`) or `lifecycle_dir` (`/cnb/lifecycle`) removed.
    pub fn for_launch<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
        process_dir: &Path,
        lifecycle_dir: &Path,
    ) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut env = Self::new(Context::Launch);
        for (k, v) in vars {
            let k = k.into();
            if !LAUNCH_ENV_EXCLUDELIST.iter().any(|e| OsStr::new(e) == k) {
                env.vars.insert(k, v.into());
            }
        }
        if let Some(path) = env.vars.get_mut(OsStr::new("PATH")) {
            let kept: Vec<&[u8]> = path
                .as_bytes()
                .split(|b| *b == b':')
                .filter(|p| *p != process_dir.as_os_str().as_bytes())
                .filter(|p| *p != lifecycle_dir.as_os_str().as_bytes())
                .collect();
            *path = OsString::from_vec(kept.join(&b':'));
        }
        env
    }

    /// The context of this environment.
    pub fn context(&self) -> Context {
        self.context
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: impl AsRef<OsStr>) -> Option<&OsStr> {
        self.vars.get(name.as_ref()).map(OsString::as_os_str)
    }

    /// The value of `name` as UTF-8 text (lossy), or `""` when unset.
    pub fn get_str(&self, name: impl AsRef<OsStr>) -> String {
        self.get(name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Removes `name`; returns its old value.
    pub fn remove(&mut self, name: impl AsRef<OsStr>) -> Option<OsString> {
        self.vars.remove(name.as_ref())
    }

    /// The variables, ordered by name.
    pub fn vars(&self) -> &BTreeMap<OsString, OsString> {
        &self.vars
    }

    /// Iterates over `(name, value)` ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The variables as `NAME=value` entries ordered by name (the form `execve` takes).
    pub fn to_list(&self) -> Vec<OsString> {
        self.vars
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                kv
            })
            .collect()
    }

    /// Replaces the environment of `cmd` with exactly these variables.
    pub fn apply_to(&self, cmd: &mut Command) {
        cmd.env_clear().envs(self.vars.iter());
    }

    /// Applies one modification: `value` to `name` by `action`, with `delim` for prepend/append.
    pub fn modify(&mut self, name: &OsStr, action: Action, value: &OsStr, delim: Option<&OsStr>) {
        let current = self.get(name).unwrap_or_default().to_os_string();
        let new = match action {
            Action::Override => value.to_os_string(),
            Action::Default => {
                if !current.is_empty() {
                    return;
                }
                value.to_os_string()
            }
            Action::Prepend | Action::PrependPath => {
                let default_delim = if action == Action::PrependPath {
                    OsStr::new(PATH_LIST_SEPARATOR)
                } else {
                    OsStr::new("")
                };
                let mut v = value.to_os_string();
                if !current.is_empty() {
                    v.push(delim.unwrap_or(default_delim));
                    v.push(&current);
                }
                v
            }
            Action::Append => {
                let mut v = current;
                if !v.is_empty() {
                    v.push(delim.unwrap_or_default());
                }
                v.push(value);
                v
            }
        };
        self.vars.insert(name.to_os_string(), new);
    }

    /// Prepends `value` to path variable `name` with `:` (omitted when the current value is empty).
    pub fn prepend_path(&mut self, name: &OsStr, value: &OsStr) {
        self.modify(
            name,
            Action::Prepend,
            value,
            Some(OsStr::new(PATH_LIST_SEPARATOR)),
        );
    }

    /// For each root dir of this context present under `layer_dir` (`bin`, `lib`, ...), prepends its
    /// absolute path to the associated variables (ENV-08, LN-07).
    pub fn add_root_dir(&mut self, layer_dir: &Path) -> Result<(), EnvError> {
        let abs = std::path::absolute(layer_dir).map_err(|source| EnvError::Layer {
            path: layer_dir.to_path_buf(),
            source,
        })?;
        for (sub, vars) in self.context.root_dirs() {
            let child = abs.join(sub);
            match std::fs::metadata(&child) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(EnvError::Layer {
                        path: child,
                        source,
                    })
                }
            }
            for var in vars.iter() {
                self.prepend_path(OsStr::new(var), child.as_os_str());
            }
        }
        Ok(())
    }

    /// Applies every env file of `dir` in name order (ENVM-01..04). A suffix-less file uses
    /// `default_action`; `NAME.delim` holds the delimiter of `NAME.prepend`/`NAME.append` in the same
    /// directory; unknown suffixes are ignored. A missing `dir` is not an error.
    pub fn add_env_dir(&mut self, dir: &Path, default_action: Action) -> Result<(), EnvError> {
        let files = read_env_files(dir)?;
        for (file_name, value) in &files {
            let bytes = file_name.as_bytes();
            let (name, action) = match bytes.iter().position(|b| *b == b'.') {
                None => (bytes, Some(default_action)),
                Some(i) => (&bytes[..i], Action::from_suffix(&bytes[i + 1..])),
            };
            let Some(action) = action else { continue };
            if name.is_empty() {
                continue;
            }
            let name = OsStr::from_bytes(name);
            let delim = if matches!(
                action,
                Action::Prepend | Action::Append | Action::PrependPath
            ) {
                let mut delim_name = name.to_os_string();
                delim_name.push(".delim");
                files.get(&delim_name).cloned()
            } else {
                None
            };
            self.modify(name, action, value, delim.as_deref());
        }
        Ok(())
    }

    /// Applies a build layer for later buildpacks (ENV-08): root dirs, then `env/`, then `env.build/`.
    pub fn add_build_layer(&mut self, layer_dir: &Path, api: BuildpackApi) -> Result<(), EnvError> {
        self.add_root_dir(layer_dir)?;
        let action = default_action(api);
        self.add_env_dir(&layer_dir.join("env"), action)?;
        self.add_env_dir(&layer_dir.join("env.build"), action)
    }

    /// Applies the env files of a launch layer (LN-07): `env/`, `env.launch/`, then
    /// `env.launch/<process>/` when a process type is given. Root dirs are applied separately with
    /// [`Env::add_root_dir`] (the launcher applies all of a buildpack's root dirs first).
    pub fn add_launch_layer_env(
        &mut self,
        layer_dir: &Path,
        api: BuildpackApi,
        process_type: Option<&str>,
    ) -> Result<(), EnvError> {
        let action = default_action(api);
        self.add_env_dir(&layer_dir.join("env"), action)?;
        let launch = layer_dir.join("env.launch");
        self.add_env_dir(&launch, action)?;
        match process_type {
            Some(t) if !t.is_empty() => self.add_env_dir(&launch.join(t), action),
            _ => Ok(()),
        }
    }

    /// Applies the user's platform env `<platform>/env/` (ENV-02): every file is a variable whose value
    /// is the file's contents; layer path variables of this context get `value:` prepended, others are
    /// overridden.
    pub fn add_platform_env(&mut self, platform_dir: &Path) -> Result<(), EnvError> {
        for (name, value) in read_env_files(&platform_dir.join("env"))? {
            if self.context.is_root_var(&name) {
                self.prepend_path(&name, &value);
            } else {
                self.vars.insert(name, value);
            }
        }
        Ok(())
    }

    /// Applies the operator's build-config env `<build-config>/env/` (ENV-03): modification rules with
    /// [`Action::Default`] for suffix-less files.
    pub fn add_build_config_env(&mut self, build_config_dir: &Path) -> Result<(), EnvError> {
        self.add_env_dir(&build_config_dir.join("env"), Action::Default)
    }

    /// A copy of this environment for one buildpack/extension execution: the user env of `platform_dir`
    /// (pass `None` when the buildpack sets `clear-env = true`), then the build-config env of
    /// `build_config_dir` (`None` when not applicable, e.g. Platform API < 0.11). `self` is unchanged.
    pub fn with_overrides(
        &self,
        platform_dir: Option<&Path>,
        build_config_dir: Option<&Path>,
    ) -> Result<Env, EnvError> {
        let mut env = self.clone();
        if let Some(p) = platform_dir {
            env.add_platform_env(p)?;
        }
        if let Some(b) = build_config_dir {
            env.add_build_config_env(b)?;
        }
        Ok(env)
    }
}

/// Reads every env file of `dir`, keyed and ordered by file name. Directories are skipped, symlinks are
/// followed (a symlink to a directory is skipped); contents are kept verbatim (no trimming). A missing
/// `dir` yields no files.
pub fn read_env_files(dir: &Path) -> Result<BTreeMap<OsString, OsString>, EnvError> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(EnvError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| EnvError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|source| EnvError::ReadFile {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            continue;
        }
        let value = std::fs::read(&path).map_err(|source| EnvError::ReadFile {
            path: path.clone(),
            source,
        })?;
        out.insert(entry.file_name(), OsString::from_vec(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
