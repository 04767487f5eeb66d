//! Legacy bill-of-materials entries (`[[bom]]` in launch.toml, build.toml, metadata.toml, report.toml;
//! deprecated since Buildpack API 0.7 in favour of SBOM files; checklist BD-11).

use serde::{Deserialize, Serialize};

use super::element::GroupElement;

/// One legacy `[[bom]]` entry: a plan requirement annotated with the buildpack that contributed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BomEntry {
    /// Dependency name.
    #[serde(default)]
    pub name: String,
    /// Top-level version: not allowed ("`metadata.version` should be used instead"); kept for the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Opaque metadata.
    #[serde(default)]
    pub metadata: toml::Table,
    /// The contributing buildpack (`id`, `version`), filled in by the builder.
    #[serde(default)]
    pub buildpack: GroupElement,
}
