//! `launch.toml` (buildpack spec "launch.toml (TOML)"; checklist F-LAUNCH, BD-09) and the canonical
//! [`Process`] shared with `<layers>/config/metadata.toml` and the build metadata label.
//!
//! The process encoding changed with Buildpack API 0.9: before, `command` is a string run through a shell
//! unless `direct = true`; from 0.9, `command` is an array, `args` are overridable defaults, every process
//! is direct and the `direct` key is forbidden. Both decode into one [`Process`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bom::BomEntry;
use crate::api::BuildpackApi;
use crate::io::{self, FileError, STRING_SOURCE};

/// A buildpack-provided image label: `[[labels]] key, value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    /// Label key.
    #[serde(default)]
    pub key: String,
    /// Label value.
    #[serde(default)]
    pub value: String,
}

/// An application slice: `[[slices]] paths = ["<glob>", ...]`, relative to the app directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slice {
    /// Glob patterns of the files that form this slice's layer.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A process to launch at runtime, in canonical form whatever the file's API version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Process {
    /// The process type: MUST only contain numbers, letters, and `.`, `_`, `-`.
    pub r#type: String,
    /// The command and its fixed arguments (always at least one element when valid). Pre-0.9 string
    /// commands are the single element.
    pub command: Vec<String>,
    /// Arguments; from BP 0.9 they are defaults the user may override.
    pub args: Vec<String>,
    /// Whether the command is executed directly (`true` for every BP≥0.9 process) rather than through
    /// `bash -c`.
    pub direct: bool,
    /// `default = true`: this buildpack marks the type as the image's default process.
    pub default: bool,
    /// `working-dir`: the directory to start the process in (BP≥0.8; defaults to the app directory).
    pub working_dir: Option<String>,
    /// `exec-env`: execution environments the process applies to (BP≥0.12). Empty = all.
    pub exec_env: Vec<String>,
    /// The contributing buildpack (metadata.toml `buildpack-id`, label `buildpackID`); empty in launch.toml.
    pub buildpack_id: String,
}

impl Process {
    /// Whether this process is meant for execution environment `env` (empty list or `*` = all).
    pub fn applies_to_exec_env(&self, env: &str) -> bool {
        self.exec_env.is_empty() || self.exec_env.iter().any(|e| e == "*" || e == env)
    }
}

/// The raw TOML form of a process: `command` is a string or an array.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RawProcess {
    #[serde(default, rename = "type")]
    pub r#type: String,
    #[serde(default)]
    pub command: Option<RawCommand>,
    /// `None` is not written (the reference's nil slice); see [`args_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
    #[serde(default, skip_serializing_if = "super::element::is_false")]
    pub default: bool,
    #[serde(
        default,
        rename = "buildpack-id",
        skip_serializing_if = "String::is_empty"
    )]
    pub buildpack_id: String,
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// `command = "string"` or `command = ["array"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawCommand {
    One(String),
    Many(Vec<String>),
}

impl RawCommand {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            RawCommand::One(s) => vec![s],
            RawCommand::Many(v) => v,
        }
    }
}

impl RawProcess {
    /// Canonical process, accepting either command form (reader of metadata.toml, as the reference).
    pub(crate) fn into_process_lenient(self) -> Process {
        Process {
            r#type: self.r#type,
            command: self.command.map(RawCommand::into_vec).unwrap_or_default(),
            args: self.args.unwrap_or_default(),
            direct: self.direct.unwrap_or(true),
            default: self.default,
            working_dir: self.working_dir,
            exec_env: self.exec_env,
            buildpack_id: self.buildpack_id,
        }
    }
}

/// A missing `command`, or an empty array.
fn p_command_empty(c: &Option<RawCommand>) -> bool {
    match c {
        None => true,
        Some(RawCommand::Many(v)) => v.is_empty(),
        Some(RawCommand::One(_)) => false,
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RawLaunch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    processes: Vec<RawProcess>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    slices: Vec<Slice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bom: Vec<BomEntry>,
}

/// `<layers>/<escaped id>/launch.toml`, written by a buildpack's `bin/build`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchToml {
    /// `[[labels]]`: labels added to the app image.
    pub labels: Vec<Label>,
    /// `[[processes]]`, canonical.
    pub processes: Vec<Process>,
    /// `[[slices]]`: app directory slices, each exported as its own layer.
    pub slices: Vec<Slice>,
    /// Deprecated `[[bom]]` (BP<0.7 style bill of materials, still read).
    pub bom: Vec<BomEntry>,
}

impl LaunchToml {
    /// Reads `launch.toml` written by a buildpack implementing `api`.
    pub fn read(path: impl AsRef<Path>, api: BuildpackApi) -> Result<Self, FileError> {
        let path = path.as_ref();
        Self::parse(path, &io::read_text(path)?, api)
    }

    /// Decodes `launch.toml` text written by a buildpack implementing `api`.
    pub fn from_toml_str(text: &str, api: BuildpackApi) -> Result<Self, FileError> {
        Self::parse(Path::new(STRING_SOURCE), text, api)
    }

    fn parse(path: &Path, text: &str, api: BuildpackApi) -> Result<Self, FileError> {
        let raw: RawLaunch = io::parse_toml(path, text)?;
        let mut processes = Vec::with_capacity(raw.processes.len());
        for p in raw.processes {
            // The spec's `command` is required: a process without one cannot be launched (the
            // reference let it through as an empty command).
            if p_command_empty(&p.command) {
                return Err(FileError::invalid(
                    path,
                    format!("process '{}': command is required", p.r#type),
                ));
            }
            let command = match (api.process_command_is_array(), p.command) {
                (_, None) => Vec::new(),
                (true, Some(RawCommand::Many(v))) => v,
                (false, Some(RawCommand::One(s))) => vec![s],
                (true, Some(RawCommand::One(_))) => {
                    return Err(FileError::invalid(
                        path,
                        format!(
                        "process '{}': command must be an array of strings for buildpack API {api}",
                        p.r#type
                    ),
                    ))
                }
                (false, Some(RawCommand::Many(_))) => {
                    return Err(FileError::invalid(
                        path,
                        format!(
                            "process '{}': command must be a string for buildpack API {api}",
                            p.r#type
                        ),
                    ))
                }
            };
            if api.process_command_is_array() && p.direct.is_some() {
                return Err(FileError::invalid(
                    path,
                    "process.direct is not supported on this buildpack version",
                ));
            }
            processes.push(Process {
                r#type: p.r#type,
                command,
                args: p.args.unwrap_or_default(),
                // Legacy processes default to shell processes; BP≥0.9 processes are always direct.
                direct: p.direct.unwrap_or(api.process_command_is_array()),
                default: p.default,
                working_dir: p.working_dir,
                exec_env: p.exec_env,
                buildpack_id: String::new(),
            });
        }
        Ok(Self {
            labels: raw.labels,
            processes,
            slices: raw.slices,
            bom: raw.bom,
        })
    }

    /// Encodes as a buildpack implementing `api` would write it: BP≥0.9 `command` array without
    /// `direct`; earlier a string `command` (the first element; further elements are moved to the
    /// front of `args`) with `direct`.
    pub fn to_toml_string(&self, api: BuildpackApi) -> Result<String, FileError> {
        io::to_toml(Path::new(STRING_SOURCE), &self.to_raw(api))
    }

    /// Writes `launch.toml` atomically, encoded for `api`.
    pub fn write(&self, path: impl AsRef<Path>, api: BuildpackApi) -> Result<(), FileError> {
        io::write_toml(path.as_ref(), &self.to_raw(api))
    }

    fn to_raw(&self, api: BuildpackApi) -> RawLaunch {
        let array = api.process_command_is_array();
        RawLaunch {
            labels: self.labels.clone(),
            processes: self
                .processes
                .iter()
                .map(|p| {
                    let (command, args) = encode_command(p, array);
                    RawProcess {
                        r#type: p.r#type.clone(),
                        command: Some(command),
                        args: (!args.is_empty()).then_some(args),
                        direct: (!array).then_some(p.direct),
                        default: p.default,
                        buildpack_id: p.buildpack_id.clone(),
                        working_dir: p.working_dir.clone(),
                        exec_env: p.exec_env.clone(),
                    }
                })
                .collect(),
            slices: self.slices.clone(),
            bom: self.bom.clone(),
        }
    }

    /// Checks that at most one process is marked `default = true` (BD-09; reference message).
    pub fn check_single_default(&self) -> Result<(), String> {
        if self.processes.iter().filter(|p| p.default).count() > 1 {
            return Err("multiple default process types aren't allowed".into());
        }
        Ok(())
    }

    /// The process types marked `default = true`. More than one is an error for the builder
    /// ("multiple default process types aren't allowed").
    pub fn default_process_types(&self) -> Vec<&str> {
        self.processes
            .iter()
            .filter(|p| p.default)
            .map(|p| p.r#type.as_str())
            .collect()
    }
}

/// `args` as the reference encodes a process for `metadata.toml` and the build label: with array commands
/// (P≥0.10) the buildpack's args as given, so none → absent (TOML) / `null` (JSON); with string commands
/// (P<0.10) the reference rebuilds them as `command[1:] + args`, an empty but present list.
pub(crate) fn args_for(args: Vec<String>, array: bool) -> Option<Vec<String>> {
    if array && args.is_empty() {
        None
    } else {
        Some(args)
    }
}

/// Encodes a command as an array, or as its first element with the rest moved to the front of `args`.
pub(crate) fn encode_command(p: &Process, array: bool) -> (RawCommand, Vec<String>) {
    if array {
        return (RawCommand::Many(p.command.clone()), p.args.clone());
    }
    let mut it = p.command.iter().cloned();
    let first = it.next().unwrap_or_default();
    let mut args: Vec<String> = it.collect();
    args.extend(p.args.iter().cloned());
    (RawCommand::One(first), args)
}

/// Serializes in the current `metadata.toml` form (`command` array, `direct`, `buildpack-id` when set,
/// `default` when true). Use [`LaunchToml`] / `BuildMetadata` for API-dependent encodings.
impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawProcess {
            r#type: self.r#type.clone(),
            command: Some(RawCommand::Many(self.command.clone())),
            args: args_for(self.args.clone(), true),
            direct: Some(self.direct),
            default: self.default,
            buildpack_id: self.buildpack_id.clone(),
            working_dir: self.working_dir.clone(),
            exec_env: self.exec_env.clone(),
        }
        .serialize(s)
    }
}

/// Deserializes leniently: `command` as a string or an array; `direct` defaults to `true`.
impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawProcess::deserialize(d).map(RawProcess::into_process_lenient)
    }
}
