//! Build plans on the buildpack side: the plan a module writes from `bin/detect` to `CNB_BUILD_PLAN_PATH`
//! (`[[provides]]`, `[[requires]]`, `[[or]]`), and the buildpack plan the lifecycle hands to `bin/build`
//! and `bin/generate` at `CNB_BP_PLAN_PATH` (`[[entries]]`). Buildpack spec "Build Plan (TOML)",
//! "Buildpack Plan (TOML)"; checklist F-DETECTPLAN, F-BPPLAN, DS-10.

use serde::{Deserialize, Serialize};

use crate::io::toml_file;

/// A dependency a module provides: `[[provides]] name = "<dependency name>"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provide {
    /// The dependency name.
    #[serde(default)]
    pub name: String,
}

/// A dependency a module requires, also the shape of buildpack plan entries:
/// `name` plus opaque `[metadata]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Require {
    /// The dependency name.
    #[serde(default)]
    pub name: String,
    /// A top-level `version` key. Not allowed: "`metadata.version` should be used instead" (detect fails
    /// with an error when it is set); kept so that the check can be made and reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `[requires.metadata]`: opaque data for the provider. Not written when empty (the reference's nil
    /// map: `plan.toml` entries without metadata have no `metadata` key).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
}

impl Require {
    /// A requirement of `name` with no metadata.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
    /// Whether a non-empty top-level `version` key is present.
    pub fn has_top_level_version(&self) -> bool {
        self.version.as_deref().is_some_and(|v| !v.is_empty())
    }
    /// Whether both `version` and `metadata.version` are present.
    pub fn has_doubly_specified_version(&self) -> bool {
        self.has_top_level_version() && self.metadata.contains_key("version")
    }
}

/// One set of `provides` and `requires` (the top level of a detect plan or one `[[or]]` alternative).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSections {
    /// `[[provides]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<Provide>,
    /// `[[requires]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Require>,
}

/// The build plan a module writes during detection (`CNB_BUILD_PLAN_PATH`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectPlan {
    /// `[[provides]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<Provide>,
    /// `[[requires]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Require>,
    /// `[[or]]`: alternative `provides`/`requires` sets tried after the top-level one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or: Vec<PlanSections>,
}

/// A detect plan breaks a rule of the buildpack spec (checklist DS-10). The message matches the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanRuleError(pub String);

impl DetectPlan {
    /// The options to try in plan resolution: the top-level sections first, then each `[[or]]`
    /// alternative (checklist BPL-01).
    pub fn options(&self) -> Vec<PlanSections> {
        let mut out = vec![PlanSections {
            provides: self.provides.clone(),
            requires: self.requires.clone(),
        }];
        out.extend(self.or.iter().cloned());
        out
    }

    fn all_requires(&self) -> impl Iterator<Item = &Require> {
        self.requires
            .iter()
            .chain(self.or.iter().flat_map(|s| s.requires.iter()))
    }

    /// Checks the plan of module `id` (`is_extension` for image extensions): top-level `version` keys are
    /// rejected, and extensions MUST NOT output `requires`.
    pub fn validate(&self, id: &str, is_extension: bool) -> Result<(), PlanRuleError> {
        let kind = if is_extension {
            "extension"
        } else {
            "buildpack"
        };
        if is_extension && self.all_requires().next().is_some() {
            return Err(PlanRuleError(format!(
                "extension {id} outputs \"requires\" which is not allowed"
            )));
        }
        if self.all_requires().any(Require::has_top_level_version) {
            return Err(PlanRuleError(format!(
                "{kind} {id} has a \"version\" key which is not supported. \"metadata.version\" should be used instead"
            )));
        }
        Ok(())
    }
}

/// The buildpack plan given to `bin/build` / `bin/generate` (`CNB_BP_PLAN_PATH`): the requirements this
/// module was chosen to provide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackPlan {
    /// `[[entries]]`: `name` plus `[entries.metadata]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Require>,
}

impl BuildpackPlan {
    /// The plan without the entries whose name is in `unmet` (what the next provider still gets).
    pub fn only_unmet(&self, unmet: &[String]) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|e| unmet.contains(&e.name))
                .cloned()
                .collect(),
        }
    }
    /// The names of entries not listed in `unmet`: what this module met.
    pub fn met_names(&self, unmet: &[String]) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| !unmet.contains(&e.name))
            .map(|e| e.name.clone())
            .collect()
    }
}

toml_file!(DetectPlan, "a detect-time build plan");
toml_file!(BuildpackPlan, "a buildpack plan");
