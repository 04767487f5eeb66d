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

impl System {
    /// Merges the system buildpacks into one order group (DT-04): `pre` buildpacks are prepended and
    /// `post` buildpacks appended, each skipped when the group already has that ID (IDs only). Returns the
    /// new group and how many were prepended and appended.
    pub fn merge_into(&self, group: &[GroupElement]) -> (Vec<GroupElement>, usize, usize) {
        let has = |id: &str| group.iter().any(|e| e.id == id);
        let pre: Vec<GroupElement> = self
            .pre
            .buildpacks
            .iter()
            .filter(|b| !has(&b.id))
            .cloned()
            .collect();
        let post: Vec<GroupElement> = self
            .post
            .buildpacks
            .iter()
            .filter(|b| !has(&b.id))
            .cloned()
            .collect();
        let (n_pre, n_post) = (pre.len(), post.len());
        let mut out = pre;
        out.extend(group.iter().cloned());
        out.extend(post);
        (out, n_pre, n_post)
    }
}

toml_file!(SystemToml, "a `system.toml`");
