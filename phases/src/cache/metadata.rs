//! Layer metadata shared by the cache metadata (checklist CA-01, label
//! `io.buildpacks.lifecycle.cache.metadata`) and the buildpack part of the app image's
//! `io.buildpacks.lifecycle.metadata` label (L-LIFECYCLE `buildpacks[]`).
//!
//! Field names and order follow the reference's JSON so labels written by either lifecycle read back.
//! TODO(integration): switch to the spec helper's label structs once they are in `cnb-spec`, if identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{"sha": "sha256:..."}`: a layer identified by its diffID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSha {
    /// The layer's diffID (`sha256:<hex>`), empty when unknown.
    #[serde(default)]
    pub sha: String,
}

impl LayerSha {
    /// A layer SHA from a diffID.
    pub fn new(sha: impl Into<String>) -> Self {
        Self { sha: sha.into() }
    }

    /// `None` when the SHA is empty.
    pub fn get(&self) -> Option<&str> {
        (!self.sha.is_empty()).then_some(self.sha.as_str())
    }
}

/// One buildpack layer as recorded in a label: diffID, `[metadata]` and the `[types]` flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayerMetadata {
    /// The layer's diffID.
    #[serde(default)]
    pub sha: String,
    /// The layer's `[metadata]` table (opaque to the lifecycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// `types.build`.
    #[serde(default)]
    pub build: bool,
    /// `types.launch`.
    #[serde(default)]
    pub launch: bool,
    /// `types.cache`.
    #[serde(default)]
    pub cache: bool,
}

/// A buildpack's `store.toml` content as kept in the label (`{"metadata": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreMetadata {
    /// The `[metadata]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// One buildpack's layers (`buildpacks[]` entry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayers {
    /// Buildpack id.
    #[serde(default)]
    pub key: String,
    /// Buildpack version.
    #[serde(default)]
    pub version: String,
    /// Layers by name (sorted: JSON output is deterministic).
    #[serde(default)]
    pub layers: BTreeMap<String, BuildpackLayerMetadata>,
    /// `store.toml`, if the buildpack wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreMetadata>,
}

/// The cache metadata (label/file `io.buildpacks.lifecycle.cache.metadata`; checklist CA-01).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    /// The cache SBOM layer (`<layers>/sbom/cache`).
    #[serde(default)]
    pub sbom: LayerSha,
    /// Cached layers per buildpack.
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayers>,
}

impl CacheMetadata {
    /// The entry of buildpack `id`, if any.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayers> {
        self.buildpacks.iter().find(|b| b.key == id)
    }

    /// The metadata of layer `name` of buildpack `id`, if any.
    pub fn layer(&self, id: &str, name: &str) -> Option<&BuildpackLayerMetadata> {
        self.buildpack(id).and_then(|b| b.layers.get(name))
    }

    /// Decodes the JSON label/file; anything undecodable is an empty cache (CA-03: invalid → empty).
    pub fn from_json_lenient(s: &str) -> Self {
        serde_json::from_str(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ca01_round_trips_reference_json() {
        let json = r#"{"sbom":{"sha":"sha256:aa"},"buildpacks":[{"key":"bp/a","version":"1.0","layers":{"deps":{"sha":"sha256:bb","data":{"k":"v"},"build":false,"launch":true,"cache":true}},"store":{"metadata":{"x":1}}}]}"#;
        let m: CacheMetadata = serde_json::from_str(json).unwrap();
        assert_eq!(m.sbom.get(), Some("sha256:aa"));
        let l = m.layer("bp/a", "deps").unwrap();
        assert!(l.launch && l.cache && !l.build);
        assert_eq!(serde_json::to_string(&m).unwrap(), json);
    }

    #[test]
    fn ca03_invalid_metadata_is_empty() {
        assert_eq!(
            CacheMetadata::from_json_lenient("{not json"),
            CacheMetadata::default()
        );
        assert_eq!(
            CacheMetadata::from_json_lenient(""),
            CacheMetadata::default()
        );
    }
}
