//! `io.buildpacks.build.metadata` (JSON; platform spec "io.buildpacks.build.metadata (JSON)"; checklist
//! L-BUILD, D-08).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::PlatformApi;
use crate::buildpack::{args_for, encode_command, BomEntry, GroupElement, Process, RawCommand};
use crate::io::{self, FileError};
use crate::platform::BuildMetadata;

/// `launcher.source.git`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitMetadata {
    /// SHOULD be the git repository of the launcher source.
    #[serde(default)]
    pub repository: String,
    /// SHOULD be the commit the launcher was built from.
    #[serde(default)]
    pub commit: String,
}

/// `launcher.source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMetadata {
    /// `git`.
    #[serde(default)]
    pub git: GitMetadata,
}

/// `launcher`: which launcher the image contains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherMetadata {
    /// SHOULD be the launcher version.
    #[serde(default)]
    pub version: String,
    /// `source`.
    #[serde(default)]
    pub source: SourceMetadata,
}

/// `io.buildpacks.build.metadata`, canonical. Encoded per Platform API by [`BuildMetadataLabel::to_json`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildMetadataLabel {
    /// Legacy `bom` (P<0.9 only: then always present, `null` when empty).
    pub bom: Vec<BomEntry>,
    /// `buildpacks`: MUST contain the detected group (`id`, `version`, `homepage`, `api`).
    pub buildpacks: Vec<GroupElement>,
    /// `extensions`: the group's extensions (omitted when none).
    pub extensions: Vec<GroupElement>,
    /// `launcher`.
    pub launcher: LauncherMetadata,
    /// `processes`: MUST contain all buildpack-contributed processes.
    pub processes: Vec<Process>,
    /// `buildpack-default-process-type` (omitted when none).
    pub buildpack_default_process_type: Option<String>,
}

/// JSON shape of a module: `id`, `version`, `homepage?`, `api?`. The reference omits `api`; the spec
/// lists it, so we write it (checklist D-08).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JsonModule {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JsonProcess {
    #[serde(default, rename = "type")]
    r#type: String,
    #[serde(default)]
    command: Option<RawCommand>,
    /// `null` when absent (P≥0.10, the reference's nil slice; [`args_for`]).
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    direct: bool,
    #[serde(default, rename = "buildpackID")]
    buildpack_id: String,
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    working_dir: Option<String>,
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    exec_env: Vec<String>,
}

/// A legacy BOM entry as the reference's JSON has it: `name`, `version?`, `metadata` (`null` when
/// empty: a nil map), `buildpack`.
#[derive(Debug, Serialize)]
struct JsonBom<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    metadata: Option<serde_json::Value>,
    buildpack: JsonModule,
}

fn ser_bom<S: serde::Serializer>(
    bom: &Option<Option<Vec<BomEntry>>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let entries = bom.as_ref().and_then(|b| b.as_ref()).map(|b| {
        b.iter()
            .map(|e| JsonBom {
                name: &e.name,
                version: e.version.as_deref().filter(|v| !v.is_empty()),
                metadata: (!e.metadata.is_empty()).then(|| super::table_to_json(&e.metadata)),
                buildpack: JsonModule {
                    api: None,
                    ..to_json_module(&e.buildpack)
                },
            })
            .collect::<Vec<_>>()
    });
    entries.serialize(s)
}

#[derive(Debug, Serialize, Deserialize)]
struct Json {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_bom"
    )]
    bom: Option<Option<Vec<BomEntry>>>,
    #[serde(default)]
    buildpacks: Option<Vec<JsonModule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extensions: Option<Vec<JsonModule>>,
    #[serde(default)]
    launcher: LauncherMetadata,
    #[serde(default)]
    processes: Option<Vec<JsonProcess>>,
    #[serde(
        default,
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    buildpack_default_process_type: Option<String>,
}

fn to_json_module(e: &GroupElement) -> JsonModule {
    JsonModule {
        id: e.id.clone(),
        version: e.version.clone(),
        homepage: e.homepage.clone().filter(|h| !h.is_empty()),
        api: e.api.clone().filter(|a| !a.is_empty()),
    }
}

fn from_json_module(m: JsonModule) -> GroupElement {
    GroupElement {
        api: m.api,
        homepage: m.homepage,
        ..GroupElement::new(m.id, m.version)
    }
}

impl BuildMetadataLabel {
    /// The label for a build recorded in `metadata.toml`.
    pub fn from_build_metadata(md: &BuildMetadata, launcher: LauncherMetadata) -> Self {
        Self {
            bom: md.bom.clone(),
            buildpacks: md.buildpacks.clone(),
            extensions: md.extensions.clone(),
            launcher,
            processes: md.processes.clone(),
            buildpack_default_process_type: md.buildpack_default_process_type.clone(),
        }
    }

    /// Encodes the label for `platform`: process `command` is an array for P≥0.10 and a string before
    /// (extra entries move to the front of `args`); `bom` is present only for P<0.9.
    pub fn to_json(&self, platform: PlatformApi) -> Result<String, FileError> {
        let array = platform.metadata_command_is_array();
        let json = Json {
            bom: platform
                .legacy_bom_in_metadata()
                .then(|| (!self.bom.is_empty()).then(|| self.bom.clone())),
            buildpacks: Some(self.buildpacks.iter().map(to_json_module).collect()),
            extensions: (!self.extensions.is_empty())
                .then(|| self.extensions.iter().map(to_json_module).collect()),
            launcher: self.launcher.clone(),
            processes: Some(
                self.processes
                    .iter()
                    .map(|p| {
                        let (command, args) = encode_command(p, array);
                        JsonProcess {
                            r#type: p.r#type.clone(),
                            command: Some(command),
                            args: args_for(args, array),
                            direct: p.direct,
                            buildpack_id: p.buildpack_id.clone(),
                            working_dir: p.working_dir.clone(),
                            exec_env: p.exec_env.clone(),
                        }
                    })
                    .collect(),
            ),
            buildpack_default_process_type: self.buildpack_default_process_type.clone(),
        };
        io::to_json(Path::new(super::BUILD_METADATA), &json)
    }

    /// Decodes the label; `command` may be a string or an array.
    pub fn from_json(text: &str) -> Result<Self, FileError> {
        let j: Json = io::parse_json(Path::new(super::BUILD_METADATA), text)?;
        Ok(Self {
            bom: j.bom.flatten().unwrap_or_default(),
            buildpacks: j
                .buildpacks
                .unwrap_or_default()
                .into_iter()
                .map(from_json_module)
                .collect(),
            extensions: j
                .extensions
                .unwrap_or_default()
                .into_iter()
                .map(from_json_module)
                .collect(),
            launcher: j.launcher,
            processes: j
                .processes
                .unwrap_or_default()
                .into_iter()
                .map(|p| Process {
                    r#type: p.r#type,
                    command: p.command.map(RawCommand::into_vec).unwrap_or_default(),
                    args: p.args.unwrap_or_default(),
                    direct: p.direct,
                    default: false,
                    working_dir: p.working_dir,
                    exec_env: p.exec_env,
                    buildpack_id: p.buildpack_id,
                })
                .collect(),
            buildpack_default_process_type: j.buildpack_default_process_type,
        })
    }
}
