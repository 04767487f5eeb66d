//! `report.toml` written by the exporter and rebaser (platform spec "report.toml (TOML)"; checklist
//! F-REPORT).

use serde::{Deserialize, Deserializer, Serialize};

use crate::buildpack::BomEntry;
use crate::io::toml_file;

/// `[image]` of `report.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// `tags`: MUST contain all tag references to the exported app image.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `image-id`: set when exported to a docker daemon.
    #[serde(default, rename = "image-id", skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// `digest`: MUST be set when exported to a registry (also set for OCI layouts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// `manifest-size`: manifest size in bytes, set when exported to a registry. Written as an integer
    /// (reference); the spec's string form is accepted on read.
    #[serde(
        default,
        rename = "manifest-size",
        deserialize_with = "de_size",
        skip_serializing_if = "is_zero"
    )]
    pub manifest_size: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(i64),
        Str(String),
    }
    match Size::deserialize(d)? {
        Size::Int(n) => Ok(n),
        Size::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// `[build]` of `report.toml` (P<0.9 only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildReport {
    /// Legacy bill of materials.
    #[serde(default)]
    pub bom: Vec<BomEntry>,
}

/// `report.toml` (the rebaser writes only `[image]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `[build]`: only for P<0.9 (see `PlatformApi::legacy_bom_in_metadata`). Declared before `image`
    /// as in the reference's `files.Report`, so `[build]` is written first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildReport>,
    /// `[image]`.
    #[serde(default)]
    pub image: ImageReport,
}

toml_file!(Report, "a `report.toml`");
