//! `io.buildpacks.lifecycle.metadata` and `io.buildpacks.lifecycle.cache.metadata` (JSON; checklist
//! L-LIFECYCLE, CA-01). The same data in TOML form is `analyzed.toml` `[metadata]`
//! ([`crate::platform::Analyzed`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::buildpack::{LayerTypes, StoreToml};
use crate::io::{self, FileError};
use crate::platform::RunImageForExport;

/// `{"sha": "<diffID>"}`: the uncompressed digest of a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerSha {
    /// `sha256:<hex>` diffID, empty when the layer does not exist.
    #[serde(default)]
    pub sha: String,
}

impl LayerSha {
    /// A layer reference with this diffID.
    pub fn new(sha: impl Into<String>) -> Self {
        Self { sha: sha.into() }
    }
    /// The diffID, or `None` when empty (no such layer).
    pub fn get(&self) -> Option<&str> {
        (!self.sha.is_empty()).then_some(self.sha.as_str())
    }
}

/// One buildpack layer in the label: the layer's `<layer>.toml` content plus its diffID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayerMetadata {
    /// The layer's diffID.
    #[serde(default)]
    pub sha: String,
    /// The layer's `[metadata]` (JSON key `data`, TOML key `metadata`). `null` reads as empty; TOML
    /// datetimes are written as RFC 3339 strings, as the reference does.
    #[serde(
        default,
        deserialize_with = "de_table_or_null",
        serialize_with = "ser_table_json"
    )]
    pub data: toml::Table,
    /// `build` flag.
    #[serde(default)]
    pub build: bool,
    /// `launch` flag.
    #[serde(default)]
    pub launch: bool,
    /// `cache` flag.
    #[serde(default)]
    pub cache: bool,
}

impl BuildpackLayerMetadata {
    /// The layer's flags.
    pub fn types(&self) -> LayerTypes {
        LayerTypes {
            launch: self.launch,
            build: self.build,
            cache: self.cache,
        }
    }
}

/// Plain JSON for a TOML table: datetimes become their RFC 3339 text instead of toml's private
/// `{"$__toml_private_datetime": ...}` encoding.
pub(crate) fn table_to_json(t: &toml::Table) -> serde_json::Value {
    serde_json::Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(value_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

fn ser_table_json<S: serde::Serializer>(t: &toml::Table, s: S) -> Result<S::Ok, S::Error> {
    table_to_json(t).serialize(s)
}

fn ser_store_json<S: serde::Serializer>(st: &Option<StoreToml>, s: S) -> Result<S::Ok, S::Error> {
    match st {
        Some(st) => serde_json::json!({ "metadata": table_to_json(&st.metadata) }).serialize(s),
        None => s.serialize_none(),
    }
}

pub(crate) fn de_table_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<toml::Table, D::Error> {
    Ok(Option::<toml::Table>::deserialize(d)?.unwrap_or_default())
}

/// One buildpack's layers in the label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayersMetadata {
    /// `key`: the buildpack ID.
    #[serde(default)]
    pub key: String,
    /// The buildpack version.
    #[serde(default)]
    pub version: String,
    /// `layers`: one entry per launch (or cache) layer, by layer name.
    #[serde(default, deserialize_with = "de_map_or_null")]
    pub layers: BTreeMap<String, BuildpackLayerMetadata>,
    /// `store`: the buildpack's `store.toml`, when it wrote one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_store_json"
    )]
    pub store: Option<StoreToml>,
}

fn de_map_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, BuildpackLayerMetadata>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

fn de_vec_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Old images store `app` as one `{"sha"}` object instead of an array; both read as a list.
fn de_app<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LayerSha>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum App {
        Many(Vec<LayerSha>),
        One(LayerSha),
    }
    Ok(match Option::<App>::deserialize(d)? {
        None => Vec::new(),
        Some(App::Many(v)) => v,
        Some(App::One(one)) if one.sha.is_empty() => Vec::new(),
        Some(App::One(one)) => vec![one],
    })
}

/// `runImage` of the label: the run image the app was built on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageForRebase {
    /// `topLayer`: diffID of the run image's top layer.
    #[serde(default, rename = "topLayer")]
    pub top_layer: String,
    /// `reference`: MUST uniquely identify the run image (image ID or digest reference).
    #[serde(default)]
    pub reference: String,
    /// `image` (P≥0.12): the run image name resolved from `run.toml`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// `mirrors` (P≥0.12): its mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

impl RunImageForRebase {
    /// `image` and `mirrors` as a [`RunImageForExport`].
    pub fn to_export(&self) -> RunImageForExport {
        RunImageForExport {
            image: self.image.clone(),
            mirrors: self.mirrors.clone(),
        }
    }
    /// The deprecated `stack` copy of this run image.
    pub fn to_stack(&self) -> StackMetadata {
        StackMetadata {
            run_image: self.to_export(),
        }
    }
}

/// Deprecated `stack` key: `{"runImage": {"image", "mirrors"}}`, the same data as `runImage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMetadata {
    /// `runImage`.
    #[serde(default, rename = "runImage")]
    pub run_image: RunImageForExport,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// `app`: one entry per app slice layer (diffIDs).
    #[serde(default, deserialize_with = "de_app")]
    pub app: Vec<LayerSha>,
    /// `sbom`: the SBOM layer, when one was exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
    /// `buildpacks`: one entry per buildpack of the group.
    #[serde(default, deserialize_with = "de_vec_or_null")]
    pub buildpacks: Vec<BuildpackLayersMetadata>,
    /// `config`: the launch config layer.
    #[serde(default)]
    pub config: LayerSha,
    /// `launcher`: the launcher layer.
    #[serde(default)]
    pub launcher: LayerSha,
    /// `process-types`: the `/cnb/process` symlinks layer (reference).
    #[serde(default, rename = "process-types")]
    pub process_types: LayerSha,
    /// `runImage`.
    #[serde(default, rename = "runImage")]
    pub run_image: RunImageForRebase,
    /// Deprecated `stack` (P<0.12 readers); the reference always writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackMetadata>,
}

impl LifecycleMetadata {
    /// The layers of buildpack `id`, if it has an entry.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayersMetadata> {
        self.buildpacks.iter().find(|b| b.key == id)
    }
    /// Layer `name` of buildpack `id`.
    pub fn layer(&self, id: &str, name: &str) -> Option<&BuildpackLayerMetadata> {
        self.buildpack(id).and_then(|b| b.layers.get(name))
    }
    /// Encodes the label value.
    pub fn to_json(&self) -> Result<String, FileError> {
        io::to_json(Path::new(super::LIFECYCLE_METADATA), self)
    }
    /// Decodes the label value (errors name the label).
    pub fn from_json(text: &str) -> Result<Self, FileError> {
        io::parse_json(Path::new(super::LIFECYCLE_METADATA), text)
    }
}

/// `io.buildpacks.lifecycle.cache.metadata`: the cache's SBOM layer and buildpack layers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    /// `sbom`: the cache SBOM layer (`sha` empty when none).
    #[serde(default)]
    pub sbom: LayerSha,
    /// `buildpacks`: cached layers by buildpack.
    #[serde(default, deserialize_with = "de_vec_or_null")]
    pub buildpacks: Vec<BuildpackLayersMetadata>,
}

impl CacheMetadata {
    /// The cached layers of buildpack `id`, if any.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayersMetadata> {
        self.buildpacks.iter().find(|b| b.key == id)
    }
    /// Cached layer `name` of buildpack `id`.
    pub fn layer(&self, id: &str, name: &str) -> Option<&BuildpackLayerMetadata> {
        self.buildpack(id).and_then(|b| b.layers.get(name))
    }
    /// Encodes the label / metadata file value.
    pub fn to_json(&self) -> Result<String, FileError> {
        io::to_json(Path::new(super::CACHE_METADATA), self)
    }
    /// Decodes the label / metadata file value.
    pub fn from_json(text: &str) -> Result<Self, FileError> {
        io::parse_json(Path::new(super::CACHE_METADATA), text)
    }
}
