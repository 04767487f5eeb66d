//! `system.toml` (P≥0.15): buildpacks inserted before and after every order group (platform spec
//! "system.toml (TOML)"; checklist F-SYSTEM, D-07).

use serde::{Deserialize, Serialize};

use crate::buildpack::GroupElement;
use crate::io::toml_file;

/// `[system.pre]` or `[system.post]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemBuildpacks {
    /// `[[system.<pre|post>.buildpacks]]` `id`, `version`, `optional` ("MUST default to `false`"). The
    /// reference ignores `optional`; we keep it (checklist D-07).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buildpacks: Vec<GroupElement>,
}

/// The `[system]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    /// Inserted at the beginning of every order group.
    #[serde(default)]
    pub pre: SystemBuildpacks,
    /// Inserted at the end of every order group.
    #[serde(default)]
    pub post: SystemBuildpacks,
}

/// `system.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemToml {
    /// `[system]`.
    #[serde(default)]
    pub system: System,
}

toml_file!(SystemToml, "a `system.toml`");
