//! Legacy bill-of-materials entries (`[[bom]]` in launch.toml, build.toml, metadata.toml, report.toml;
//! deprecated since Buildpack API 0.7 in favour of SBOM files; checklist BD-11).

use serde::{Deserialize, Serialize};

use super::element::GroupElement;

impl BomEntry {
    /// Checks a legacy bill of materials (BD-11): a top-level `version` is not allowed.
    pub fn validate_all(bom: &[BomEntry]) -> Result<(), String> {
        match bom.iter().find(|e| e.version.as_deref().is_some_and(|v| !v.is_empty())) {
            Some(e) => Err(format!(
                "bom entry '{}' has a top level version which is not allowed. The buildpack should instead set metadata.version",
                e.name
            )),
            None => Ok(()),
        }
    }
    /// The entries annotated with the contributing buildpack (`id`, `version` only).
    pub fn with_buildpack(bom: &[BomEntry], bp: &GroupElement) -> Vec<BomEntry> {
        let b = GroupElement::new(bp.id.clone(), bp.version.clone());
        bom.iter()
            .map(|e| BomEntry {
                buildpack: b.clone(),
                ..e.clone()
            })
            .collect()
    }
}

/// One legacy `[[bom]]` entry: a plan requirement annotated with the buildpack that contributed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BomEntry {
    /// Dependency name.
    #[serde(default)]
    pub name: String,
    /// Top-level version: not allowed ("`metadata.version` should be used instead"); kept for the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Opaque metadata (not written when empty: the reference's nil map).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
    /// The contributing buildpack (`id`, `version`), filled in by the builder.
    #[serde(default)]
    pub buildpack: GroupElement,
}
