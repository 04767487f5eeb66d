//! `<layers>/config/metadata.toml`: what the builder records for the exporter and launcher (platform spec
//! "metadata.toml (TOML)"; checklist F-META, BD-14, T-04).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::PlatformApi;
use crate::buildpack::{
    args_for, encode_command, BomEntry, GroupElement, Label, Process, RawProcess, Slice,
};
use crate::io::{self, FileError, STRING_SOURCE};

/// Path of `metadata.toml` relative to the layers directory.
pub const METADATA_PATH: &str = "config/metadata.toml";

/// `<layers>/config/metadata.toml`, canonical.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildMetadata {
    /// Deprecated `[[bom]]` (written only for P<0.9).
    pub bom: Vec<BomEntry>,
    /// `[[buildpacks]]`: the group's buildpacks (`id`, `version`, `api`, `homepage`).
    pub buildpacks: Vec<GroupElement>,
    /// `[[extensions]]`: the group's extensions.
    pub extensions: Vec<GroupElement>,
    /// `[[labels]]`: buildpack-provided labels, all buildpacks in order.
    pub labels: Vec<Label>,
    /// `[[processes]]`: sorted by type; `buildpack-id` set.
    pub processes: Vec<Process>,
    /// `[[slices]]`: concatenated in buildpack order.
    pub slices: Vec<Slice>,
    /// `buildpack-default-process-type`: the process type buildpacks marked default.
    pub buildpack_default_process_type: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Raw {
    #[serde(
        default,
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    buildpack_default_process_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bom: Vec<BomEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    buildpacks: Vec<GroupElement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<GroupElement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    processes: Vec<RawProcess>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    slices: Vec<Slice>,
}

impl BuildMetadata {
    /// Reads `metadata.toml`. `command` is accepted as a string or an array whatever the API.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let raw: Raw = io::read_toml(path.as_ref())?;
        Ok(Self::from_raw(raw))
    }

    /// Decodes `metadata.toml` text.
    pub fn from_toml_str(text: &str) -> Result<Self, FileError> {
        let raw: Raw = io::parse_toml(Path::new(STRING_SOURCE), text)?;
        Ok(Self::from_raw(raw))
    }

    fn from_raw(raw: Raw) -> Self {
        Self {
            bom: raw.bom,
            buildpacks: raw.buildpacks,
            extensions: raw.extensions,
            labels: raw.labels,
            processes: raw
                .processes
                .into_iter()
                .map(RawProcess::into_process_lenient)
                .collect(),
            slices: raw.slices,
            buildpack_default_process_type: raw.buildpack_default_process_type,
        }
    }

    fn to_raw(&self, platform: PlatformApi) -> Raw {
        let array = platform.metadata_command_is_array();
        Raw {
            buildpack_default_process_type: self.buildpack_default_process_type.clone(),
            bom: if platform.legacy_bom_in_metadata() {
                self.bom.clone()
            } else {
                Vec::new()
            },
            buildpacks: self.buildpacks.iter().map(for_metadata).collect(),
            extensions: self.extensions.iter().map(for_metadata).collect(),
            labels: self.labels.clone(),
            processes: self
                .processes
                .iter()
                .map(|p| {
                    let (command, args) = encode_command(p, array);
                    RawProcess {
                        r#type: p.r#type.clone(),
                        command: Some(command),
                        args: args_for(args, array),
                        direct: Some(p.direct),
                        default: false,
                        buildpack_id: p.buildpack_id.clone(),
                        working_dir: p.working_dir.clone(),
                        exec_env: p.exec_env.clone(),
                    }
                })
                .collect(),
            slices: self.slices.clone(),
        }
    }

    /// Encodes for Platform API `platform`: P≥0.10 `command` arrays; earlier a string command with extra
    /// command entries moved to the front of `args`. `default` is never written; `[[bom]]` only P<0.9.
    pub fn to_toml_string(&self, platform: PlatformApi) -> Result<String, FileError> {
        io::to_toml(Path::new(STRING_SOURCE), &self.to_raw(platform))
    }

    /// Writes atomically, encoded for `platform`.
    pub fn write(&self, path: impl AsRef<Path>, platform: PlatformApi) -> Result<(), FileError> {
        io::write_toml(path.as_ref(), &self.to_raw(platform))
    }

    /// The process of type `t`.
    pub fn find_process(&self, t: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.r#type == t)
    }
}

fn for_metadata(e: &GroupElement) -> GroupElement {
    GroupElement {
        extension: false,
        optional: false,
        exec_env: Vec::new(),
        ..e.clone()
    }
}
