//! `plan.toml`: the resolved build plan the detector writes (platform spec "plan.toml (TOML)";
//! checklist F-PLAN, BPL-07, BPL-08).

use serde::{Deserialize, Serialize};

use crate::buildpack::{BuildpackPlan, GroupElement, Require};
use crate::io::toml_file;

/// `plan.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `[[entries]]`, one per dependency name. An empty plan is written as an empty file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<PlanEntry>,
}

/// One `[[entries]]` element: who provides a dependency and who requires it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// `[[entries.providers]]` `id`, `version`, `extension` (extensions only).
    #[serde(default)]
    pub providers: Vec<GroupElement>,
    /// `[[entries.requires]]` `name`, `[entries.requires.metadata]`.
    #[serde(default)]
    pub requires: Vec<Require>,
}

impl Plan {
    /// The buildpack plan for module `id` (`extension` selects the kind): the concatenated `requires` of
    /// every entry listing it as a provider.
    pub fn find(&self, id: &str, extension: bool) -> BuildpackPlan {
        let mut entries = Vec::new();
        for e in &self.entries {
            if e.providers
                .iter()
                .any(|p| p.id == id && p.extension == extension)
            {
                entries.extend(e.requires.iter().cloned());
            }
        }
        BuildpackPlan { entries }
    }
    /// The plan without every entry that has a requirement named in `met` (those are done; later
    /// providers do not see them).
    pub fn filter_met(&self, met: &[String]) -> Plan {
        Plan {
            entries: self
                .entries
                .iter()
                .filter(|e| !e.requires.iter().any(|r| met.contains(&r.name)))
                .cloned()
                .collect(),
        }
    }
}

toml_file!(Plan, "a `plan.toml`");
