//! The app image's `io.buildpacks.lifecycle.metadata` label (checklist L-LIFECYCLE), as the exporter
//! writes it and the analyzer, restorer and rebaser read it.
//!
//! TODO(integration): replace with the spec helper's label structs once they are in `cnb-spec`.

use serde::{Deserialize, Serialize};

use crate::cache::{BuildpackLayers, LayerSha};

/// Label name of [`LifecycleMetadata`].
pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";
/// Label name of the build metadata.
pub const BUILD_METADATA_LABEL: &str = "io.buildpacks.build.metadata";
/// Label name of the project metadata.
pub const PROJECT_METADATA_LABEL: &str = "io.buildpacks.project.metadata";
/// Label `io.buildpacks.rebasable`.
pub const REBASABLE_LABEL: &str = "io.buildpacks.rebasable";

/// `runImage` in the lifecycle label: what the rebaser needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageForRebase {
    /// DiffID of the run image's top layer (before extension layers).
    #[serde(rename = "topLayer", default)]
    pub top_layer: String,
    /// Run image identifier (`<repo>@sha256:<manifest>` or `<layout path>@sha256:<manifest>`).
    #[serde(default)]
    pub reference: String,
    /// The run image name (`[P≥0.12]`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Its mirrors (`[P≥0.12]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// `stack.runImage` (deprecated copy, always written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMetadata {
    /// The run image and mirrors.
    #[serde(rename = "runImage", default)]
    pub run_image: StackRunImage,
}

/// `stack.runImage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRunImage {
    /// Run image name.
    #[serde(default)]
    pub image: String,
    /// Mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// App layers in order.
    #[serde(default)]
    pub app: Vec<LayerSha>,
    /// SBOM launch layer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
    /// Buildpacks and their layers (group order).
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayers>,
    /// Config layer.
    #[serde(default)]
    pub config: LayerSha,
    /// Launcher layer.
    #[serde(default)]
    pub launcher: LayerSha,
    /// Process-types layer.
    #[serde(rename = "process-types", default)]
    pub process_types: LayerSha,
    /// Run image data for rebase.
    #[serde(rename = "runImage", default)]
    pub run_image: RunImageForRebase,
    /// Deprecated stack copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackMetadata>,
}

impl LifecycleMetadata {
    /// Decodes the label; undecodable → empty (AN-04).
    pub fn from_label(label: Option<&str>) -> Self {
        label
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// The recorded metadata of layer `name` of buildpack `id`.
    pub fn layer(&self, id: &str, name: &str) -> Option<&crate::cache::BuildpackLayerMetadata> {
        self.buildpacks
            .iter()
            .find(|b| b.key == id)
            .and_then(|b| b.layers.get(name))
    }

    /// Every diffID this metadata records (for blob reuse lookups).
    pub fn all_diff_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.app.iter().filter_map(LayerSha::get).collect();
        out.extend(self.sbom.as_ref().and_then(LayerSha::get));
        out.extend(self.config.get());
        out.extend(self.launcher.get());
        out.extend(self.process_types.get());
        for b in &self.buildpacks {
            out.extend(
                b.layers
                    .values()
                    .map(|l| l.sha.as_str())
                    .filter(|s| !s.is_empty()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn l_lifecycle_reads_reference_label() {
        let label = r#"{"app":[{"sha":"sha256:a1"}],"config":{"sha":"sha256:c"},"launcher":{"sha":"sha256:l"},"buildpacks":[{"key":"bp","version":"1","layers":{"web":{"sha":"sha256:w","data":{},"build":false,"launch":true,"cache":false}}}],"runImage":{"topLayer":"sha256:t","reference":"reg/run@sha256:x","image":"reg/run"},"stack":{"runImage":{"image":"reg/run"}}}"#;
        let m = LifecycleMetadata::from_label(Some(label));
        assert_eq!(m.run_image.top_layer, "sha256:t");
        assert_eq!(m.layer("bp", "web").unwrap().sha, "sha256:w");
        assert!(m.sbom.is_none());
        let mut ids = m.all_diff_ids();
        ids.sort();
        assert_eq!(ids, vec!["sha256:a1", "sha256:c", "sha256:l", "sha256:w"]);
        assert_eq!(
            LifecycleMetadata::from_label(Some("nope")),
            LifecycleMetadata::default()
        );
    }
}
