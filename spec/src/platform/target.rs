//! Target data of a base image (platform spec "Target Data"; checklist RI-20, RI-22, D-03) as recorded in
//! `analyzed.toml` `[run-image.target]`, and matching of module targets against it.

use serde::{Deserialize, Serialize};

use crate::buildpack::Target;

/// The run image's target: `[run-image.target]` in `analyzed.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetMetadata {
    /// `io.buildpacks.base.id` of the image, when set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Image config `os`.
    #[serde(default)]
    pub os: String,
    /// Image config `architecture`.
    #[serde(default)]
    pub arch: String,
    /// Image config `variant`. Written as the reference's `arch-variant` (so reference phases can read
    /// our `analyzed.toml`); the spec's `variant` is accepted on read (checklist D-03, RI-22).
    #[serde(
        default,
        rename = "arch-variant",
        alias = "variant",
        skip_serializing_if = "String::is_empty"
    )]
    pub arch_variant: String,
    /// `[target.distro]` from `io.buildpacks.base.distro.*` or `/etc/os-release`.
    /// Read also under `distribution`, the key reference lifecycles before 0.17 wrote.
    #[serde(
        default,
        alias = "distribution",
        skip_serializing_if = "Option::is_none"
    )]
    pub distro: Option<OsDistro>,
}

/// An OS distribution of a base image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OsDistro {
    /// Distribution name (e.g. `ubuntu`).
    #[serde(default)]
    pub name: String,
    /// Distribution version (e.g. `22.04`).
    #[serde(default)]
    pub version: String,
}

impl OsDistro {
    /// The distribution described by `/etc/os-release` text (`ID` and `VERSION_ID`, quotes removed);
    /// `None` when both are missing or empty, as the reference (checklist ENV-05).
    pub fn from_os_release(text: &str) -> Option<Self> {
        let mut name = None;
        let mut version = None;
        for line in text.lines() {
            let Some((k, v)) = line.trim().split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            match k.trim() {
                "ID" => name = Some(v),
                "VERSION_ID" => version = Some(v),
                _ => {}
            }
        }
        let (name, version) = (name.unwrap_or_default(), version.unwrap_or_default());
        (!name.is_empty() || !version.is_empty()).then_some(Self { name, version })
    }
}

impl TargetMetadata {
    /// Target data of an image from its config `os`, `architecture`, `variant` and labels
    /// (`io.buildpacks.base.id`, `io.buildpacks.base.distro.name|version`); `label` looks a label up.
    pub fn from_image_config(
        os: &str,
        arch: &str,
        variant: &str,
        label: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let get = |k: &str| label(k).unwrap_or_default();
        let name = get(crate::labels::BASE_DISTRO_NAME);
        let version = get(crate::labels::BASE_DISTRO_VERSION);
        Self {
            id: get(crate::labels::BASE_ID),
            os: os.to_string(),
            arch: arch.to_string(),
            arch_variant: variant.to_string(),
            distro: (!name.is_empty() || !version.is_empty()).then_some(OsDistro { name, version }),
        }
    }
}

fn field_matches(module: &str, base: &str) -> bool {
    module.is_empty() || base.is_empty() || module == base
}

impl TargetMetadata {
    /// Whether a module's declared target is satisfied by this base image target (checklist RI-20):
    /// `os`, `arch` and variant match when either side is empty or both are equal; when the module lists
    /// distributions, the base must have a distribution and one listed entry must match it (empty fields
    /// are wildcards).
    pub fn satisfies(&self, module: &Target) -> bool {
        if !field_matches(&module.os, &self.os)
            || !field_matches(&module.arch, &self.arch)
            || !field_matches(&module.variant, &self.arch_variant)
        {
            return false;
        }
        if module.distros.is_empty() {
            return true;
        }
        let Some(d) = &self.distro else {
            return false;
        };
        module
            .distros
            .iter()
            .any(|m| field_matches(&m.name, &d.name) && field_matches(&m.version, &d.version))
    }

    /// Whether any of a module's targets is satisfied; a module with no targets matches anything.
    pub fn satisfies_any(&self, module_targets: &[Target]) -> bool {
        module_targets.is_empty() || module_targets.iter().any(|t| self.satisfies(t))
    }
}
