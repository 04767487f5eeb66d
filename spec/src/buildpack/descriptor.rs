//! Buildpack and extension descriptors: `buildpack.toml` and `extension.toml` (buildpack spec
//! "buildpack.toml (TOML)", image extension spec "extension.toml (TOML)"; checklist F-BUILDPACK, F-EXTENSION).

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::element::OrderGroup;
use crate::api::{ApiError, BuildpackApi};
use crate::io::toml_file;

/// `buildpack.toml`: describes a component buildpack (with `bin/detect` and `bin/build`) or a composite
/// buildpack (with `[[order]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackDescriptor {
    /// `api = "<buildpack API version>"`: MUST be in form `<major>.<minor>` or `<major>`. Kept as written;
    /// parse with [`BuildpackDescriptor::buildpack_api`].
    #[serde(default)]
    pub api: String,
    /// The `[buildpack]` table.
    #[serde(default)]
    pub buildpack: BuildpackInfo,
    /// `[[order]]`: present only for composite buildpacks ("If an `order` is specified, then `stacks` MUST
    /// NOT be specified").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderGroup>,
    /// `[[targets]]`: the OS/architecture/distributions the buildpack supports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Deprecated `[[stacks]]` (BP<0.10); translated to targets by [`BuildpackDescriptor::effective_targets`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    /// `[metadata]`: buildpack-specific data, opaque to the lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// The `[buildpack]` table of `buildpack.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackInfo {
    /// The buildpack ID: MUST only contain numbers, letters, and the characters `.`, `/`, and `-`; MUST NOT
    /// be `app`, `config`, `generated`, or `sbom` (see [`super::validate_id`]).
    #[serde(default)]
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// The version: MUST be in the form `<X>.<Y>.<Z>`.
    #[serde(default)]
    pub version: String,
    /// Homepage URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// `clear-env = true`: the user-provided environment (`<platform>/env`) is not applied for this module.
    #[serde(
        default,
        rename = "clear-env",
        skip_serializing_if = "super::element::is_false"
    )]
    pub clear_env: bool,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `[[buildpack.licenses]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// `sbom-formats`: media types of the SBOM files the buildpack writes; files of other types are an error.
    #[serde(
        default,
        rename = "sbom-formats",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sbom_formats: Vec<String>,
    /// Execution environments the buildpack applies to (BP≥0.12). Accepts both the spec's
    /// `[[buildpack.exec-env]] name = "..."` tables and the reference's `exec-env = ["..."]`; written as the
    /// latter. Empty means all environments.
    #[serde(
        default,
        rename = "exec-env",
        deserialize_with = "de_exec_env",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec_env: Vec<String>,
}

/// The `[extension]` table of `extension.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtensionInfo {
    /// The extension ID (same rules as buildpack IDs).
    #[serde(default)]
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// Homepage URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// `clear-env = true`: the user-provided environment is not applied.
    #[serde(
        default,
        rename = "clear-env",
        skip_serializing_if = "super::element::is_false"
    )]
    pub clear_env: bool,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `[[extension.licenses]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// Execution environments (BP≥0.12), as for buildpacks.
    #[serde(
        default,
        rename = "exec-env",
        deserialize_with = "de_exec_env",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec_env: Vec<String>,
}

/// `extension.toml`: describes an image extension. An extension never has an order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtensionDescriptor {
    /// The Buildpack API the extension implements, as written.
    #[serde(default)]
    pub api: String,
    /// The `[extension]` table.
    #[serde(default)]
    pub extension: ExtensionInfo,
    /// `[[targets]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// `[metadata]`: opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// `[[buildpack.licenses]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// SPDX identifier or other type.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// URI of the license text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
}

/// One `[[targets]]` entry of a descriptor. Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// OS name (e.g. `linux`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// Architecture (e.g. `amd64`, `arm64`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Architecture variant. The spec key is `variant`; the reference lifecycle reads `arch-variant`
    /// (checklist D-03): both are accepted, `variant` is written.
    #[serde(
        default,
        alias = "arch-variant",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    /// `[[targets.distros]]`: supported distributions (empty = any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distro>,
}

/// An OS distribution (`name`, `version`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Distro {
    /// Distribution name (`ID` in `/etc/os-release`, e.g. `ubuntu`).
    #[serde(default)]
    pub name: String,
    /// Distribution version (`VERSION_ID`, e.g. `22.04`).
    #[serde(default)]
    pub version: String,
}

/// A deprecated `[[stacks]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// Stack ID, or `*` for any stack.
    #[serde(default)]
    pub id: String,
    /// Required mixins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixins: Vec<String>,
}

/// The bionic stack ID that is translated to an `ubuntu 18.04` `linux/amd64` target.
pub const BIONIC_STACK_ID: &str = "io.buildpacks.stacks.bionic";

fn de_exec_env<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Name(String),
        Table {
            #[serde(default)]
            name: String,
        },
    }
    let items = Vec::<Item>::deserialize(d)?;
    Ok(items
        .into_iter()
        .map(|i| match i {
            Item::Name(n) | Item::Table { name: n } => n,
        })
        .collect())
}

impl BuildpackDescriptor {
    /// Parses `api`: unparsable or unsupported → [`ApiError`] (exit code 12).
    pub fn buildpack_api(&self) -> Result<BuildpackApi, ApiError> {
        BuildpackApi::parse_supported(&self.api)
    }
    /// Whether this is a composite buildpack (it has an `[[order]]`).
    pub fn is_composite(&self) -> bool {
        !self.order.is_empty()
    }
    /// The targets to match against the run image: `[[targets]]`, or when none are declared, those
    /// implied by deprecated `[[stacks]]` (`io.buildpacks.stacks.bionic` → linux/amd64 ubuntu 18.04, kept
    /// only for BP≥0.10 or when it is the only stack; `*` → a target matching anything). When this is still
    /// empty, callers infer `os = linux` from the presence of `bin/build` (reference behaviour).
    pub fn effective_targets(&self) -> Vec<Target> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        let new_api = BuildpackApi::parse_supported(&self.api)
            .map(|a| a.at_least(0, 10))
            .unwrap_or(false);
        let mut out = Vec::new();
        for s in &self.stacks {
            if s.id == BIONIC_STACK_ID && (new_api || self.stacks.len() == 1) {
                out.push(Target {
                    os: "linux".into(),
                    arch: "amd64".into(),
                    variant: String::new(),
                    distros: vec![Distro {
                        name: "ubuntu".into(),
                        version: "18.04".into(),
                    }],
                });
            } else if s.id == "*" {
                out.push(Target::default());
            }
        }
        out
    }
    /// [`BuildpackDescriptor::effective_targets`], and when still empty, `os = linux` if `bin/build`
    /// exists under `root` (the buildpack's directory), as the reference infers (RI-21). An empty result
    /// matches any run image.
    pub fn targets_for(&self, root: &Path) -> Vec<Target> {
        let t = self.effective_targets();
        if t.is_empty() && root.join("bin").join("build").exists() {
            return vec![linux()];
        }
        t
    }
}

impl ExtensionDescriptor {
    /// Parses `api`: unparsable or unsupported → [`ApiError`] (exit code 12).
    pub fn buildpack_api(&self) -> Result<BuildpackApi, ApiError> {
        BuildpackApi::parse_supported(&self.api)
    }
    /// The targets to match against the run image, inferring when none are declared (RI-21):
    /// `bin/detect` or `bin/generate` under `root` (the extension's directory) → `os = linux`;
    /// otherwise one target that matches anything.
    pub fn targets_for(&self, root: &Path) -> Vec<Target> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        let bin = root.join("bin");
        if bin.join("detect").exists() || bin.join("generate").exists() {
            return vec![linux()];
        }
        vec![Target::default()]
    }
}

fn linux() -> Target {
    Target {
        os: "linux".into(),
        ..Target::default()
    }
}

toml_file!(BuildpackDescriptor, "a `buildpack.toml`");
toml_file!(ExtensionDescriptor, "an `extension.toml`");
