//! `build.toml` (buildpack spec "build.toml (TOML)"; checklist F-BUILD, BD-08).

use serde::{Deserialize, Serialize};

use super::bom::BomEntry;
use super::plan::BuildpackPlan;
use crate::io::toml_file;

/// A buildpack plan entry the buildpack did not meet: `[[unmet]] name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unmet {
    /// The name of the plan entry; MUST match an entry of this buildpack's plan.
    #[serde(default)]
    pub name: String,
}

/// `<layers>/<escaped id>/build.toml`, written by a buildpack's `bin/build`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildToml {
    /// `[[unmet]]`: entries left for a later provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<Unmet>,
    /// Deprecated `[[bom]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bom: Vec<BomEntry>,
}

impl BuildToml {
    /// The unmet names.
    pub fn unmet_names(&self) -> Vec<String> {
        self.unmet.iter().map(|u| u.name.clone()).collect()
    }
    /// Checks `[[unmet]]` against the buildpack's plan (BD-08): each name is required and MUST match an
    /// entry of `plan`. Messages match the reference.
    pub fn validate_unmet(&self, plan: &BuildpackPlan) -> Result<(), String> {
        for u in &self.unmet {
            if u.name.is_empty() {
                return Err("unmet.name is required".into());
            }
            if !plan.entries.iter().any(|e| e.name == u.name) {
                return Err(format!(
                    "unmet.name '{}' must match a requested dependency",
                    u.name
                ));
            }
        }
        Ok(())
    }
}

toml_file!(BuildToml, "a `build.toml`");
