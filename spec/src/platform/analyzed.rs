//! `analyzed.toml`: what the analyzer found (platform spec "analyzed.toml (TOML)"; checklist F-ANALYZED).
//!
//! `[metadata]` is the TOML form of the `io.buildpacks.lifecycle.metadata` label
//! ([`LifecycleMetadata`]), with TOML key names (`run-image`, `top-layer`, layer `metadata` instead of the
//! label's `runImage`, `topLayer`, `data`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::run::RunImageForExport;
use super::target::TargetMetadata;
use crate::buildpack::StoreToml;
use crate::io::toml_file;
use crate::labels::{
    BuildpackLayerMetadata, BuildpackLayersMetadata, LayerSha, LifecycleMetadata,
    RunImageForRebase, StackMetadata,
};

/// `[image]` / `[build-image]`: an image identified by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentifier {
    /// A digest reference, a daemon image ID, or a path in an OCI layout.
    #[serde(default)]
    pub reference: String,
}

/// `[run-image]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImage {
    /// `reference`: digest reference, daemon image ID or layout path of the run image.
    #[serde(default)]
    pub reference: String,
    /// `image`: the platform- or extension-provided image name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// `extend`: whether extensions extend the run image.
    #[serde(default, skip_serializing_if = "crate::buildpack::is_false")]
    pub extend: bool,
    /// `[run-image.target]`: the run image's target data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetMetadata>,
}

/// `analyzed.toml`. All tables are optional on read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analyzed {
    /// `[image]` (the spec also names it `previous-image`, accepted on read): the previous app image, if
    /// it was found.
    pub previous_image: Option<ImageIdentifier>,
    /// `[build-image]` (P≥0.10 with extensions).
    pub build_image: Option<ImageIdentifier>,
    /// `[metadata]`: the previous image's lifecycle metadata label.
    pub metadata: LifecycleMetadata,
    /// `[run-image]`.
    pub run_image: Option<RunImage>,
}

impl Analyzed {
    /// `image.reference`, or `""`.
    pub fn previous_image_ref(&self) -> &str {
        self.previous_image
            .as_ref()
            .map_or("", |i| i.reference.as_str())
    }
    /// `run-image.reference`, or `""`.
    pub fn run_image_ref(&self) -> &str {
        self.run_image.as_ref().map_or("", |r| r.reference.as_str())
    }
    /// `run-image.image`, or `""`.
    pub fn run_image_image(&self) -> &str {
        self.run_image.as_ref().map_or("", |r| r.image.as_str())
    }
    /// `run-image.target`, or the empty target.
    pub fn run_image_target(&self) -> TargetMetadata {
        self.run_image
            .as_ref()
            .and_then(|r| r.target.clone())
            .unwrap_or_default()
    }
}

// ---- TOML mirror ----------------------------------------------------------------------------------

#[derive(Default, Serialize, Deserialize)]
struct RawAnalyzed {
    #[serde(
        default,
        alias = "previous-image",
        skip_serializing_if = "Option::is_none"
    )]
    image: Option<ImageIdentifier>,
    #[serde(
        default,
        rename = "build-image",
        skip_serializing_if = "Option::is_none"
    )]
    build_image: Option<ImageIdentifier>,
    #[serde(default)]
    metadata: TomlLifecycleMetadata,
    #[serde(default, rename = "run-image", skip_serializing_if = "Option::is_none")]
    run_image: Option<RunImage>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlLayer {
    #[serde(default)]
    sha: String,
    #[serde(default)]
    build: bool,
    #[serde(default)]
    launch: bool,
    #[serde(default)]
    cache: bool,
    #[serde(default)]
    metadata: toml::Table,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlBuildpack {
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    layers: BTreeMap<String, TomlLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<StoreToml>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlRunImageForRebase {
    #[serde(default, rename = "top-layer")]
    top_layer: String,
    #[serde(default)]
    reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mirrors: Vec<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlStack {
    #[serde(default, rename = "run-image")]
    run_image: RunImageForExport,
}

#[derive(Default, Serialize, Deserialize)]
struct TomlLifecycleMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    app: Vec<LayerSha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sbom: Option<LayerSha>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    buildpacks: Vec<TomlBuildpack>,
    #[serde(default)]
    config: LayerSha,
    #[serde(default)]
    launcher: LayerSha,
    #[serde(default, rename = "process-types")]
    process_types: LayerSha,
    #[serde(default, rename = "run-image")]
    run_image: TomlRunImageForRebase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stack: Option<TomlStack>,
}

impl From<TomlLifecycleMetadata> for LifecycleMetadata {
    fn from(t: TomlLifecycleMetadata) -> Self {
        Self {
            app: t.app,
            sbom: t.sbom,
            buildpacks: t
                .buildpacks
                .into_iter()
                .map(|b| BuildpackLayersMetadata {
                    key: b.key,
                    version: b.version,
                    layers: b
                        .layers
                        .into_iter()
                        .map(|(k, l)| {
                            let v = BuildpackLayerMetadata {
                                sha: l.sha,
                                data: l.metadata,
                                build: l.build,
                                launch: l.launch,
                                cache: l.cache,
                            };
                            (k, v)
                        })
                        .collect(),
                    store: b.store,
                })
                .collect(),
            config: t.config,
            launcher: t.launcher,
            process_types: t.process_types,
            run_image: RunImageForRebase {
                top_layer: t.run_image.top_layer,
                reference: t.run_image.reference,
                image: t.run_image.image,
                mirrors: t.run_image.mirrors,
            },
            stack: t.stack.map(|s| StackMetadata {
                run_image: s.run_image,
            }),
        }
    }
}

impl From<&LifecycleMetadata> for TomlLifecycleMetadata {
    fn from(m: &LifecycleMetadata) -> Self {
        Self {
            app: m.app.clone(),
            sbom: m.sbom.clone(),
            buildpacks: m
                .buildpacks
                .iter()
                .map(|b| TomlBuildpack {
                    key: b.key.clone(),
                    version: b.version.clone(),
                    layers: b
                        .layers
                        .iter()
                        .map(|(k, l)| {
                            let v = TomlLayer {
                                sha: l.sha.clone(),
                                build: l.build,
                                launch: l.launch,
                                cache: l.cache,
                                metadata: l.data.clone(),
                            };
                            (k.clone(), v)
                        })
                        .collect(),
                    store: b.store.clone(),
                })
                .collect(),
            config: m.config.clone(),
            launcher: m.launcher.clone(),
            process_types: m.process_types.clone(),
            run_image: TomlRunImageForRebase {
                top_layer: m.run_image.top_layer.clone(),
                reference: m.run_image.reference.clone(),
                image: m.run_image.image.clone(),
                mirrors: m.run_image.mirrors.clone(),
            },
            stack: m.stack.as_ref().map(|s| TomlStack {
                run_image: s.run_image.clone(),
            }),
        }
    }
}

/// Serde bridge: [`Analyzed`] (de)serializes through the TOML mirror.
impl Serialize for Analyzed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawAnalyzed {
            image: self.previous_image.clone(),
            build_image: self.build_image.clone(),
            metadata: (&self.metadata).into(),
            run_image: self.run_image.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Analyzed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawAnalyzed::deserialize(d)?;
        Ok(Self {
            previous_image: r.image,
            build_image: r.build_image,
            metadata: r.metadata.into(),
            run_image: r.run_image,
        })
    }
}

toml_file!(Analyzed, "an `analyzed.toml`");
