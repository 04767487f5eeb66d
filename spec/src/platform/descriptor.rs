//! The lifecycle descriptor `/cnb/lifecycle/lifecycle.toml` (RFC-0011 / reference `lifecycle.toml`;
//! checklist F-DESC), generated from the one list of supported APIs in [`crate::api`].

use serde::{Deserialize, Serialize};

use crate::api::{
    DEPRECATED_BUILDPACK_APIS, DEPRECATED_PLATFORM_APIS, SUPPORTED_BUILDPACK_APIS,
    SUPPORTED_PLATFORM_APIS,
};
use crate::io::toml_file;

/// The SBOM media types the lifecycle produces for itself and accepts from buildpacks.
pub const SBOM_FORMATS: &[&str] = &[
    "application/vnd.cyclonedx+json",
    "application/spdx+json",
    "application/vnd.syft+json",
];

/// `[apis.buildpack]` / `[apis.platform]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiList {
    /// Deprecated versions (still supported).
    #[serde(default)]
    pub deprecated: Vec<String>,
    /// Supported versions, oldest first.
    #[serde(default)]
    pub supported: Vec<String>,
}

/// `[apis]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Apis {
    /// Buildpack APIs.
    #[serde(default)]
    pub buildpack: ApiList,
    /// Platform APIs.
    #[serde(default)]
    pub platform: ApiList,
}

/// `[api]`: the minimum supported versions in RFC-0011 form (backwards compatibility).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumApis {
    /// Oldest supported Platform API.
    #[serde(default)]
    pub platform: String,
    /// Oldest supported Buildpack API.
    #[serde(default)]
    pub buildpack: String,
}

/// `[lifecycle]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleInfo {
    /// The lifecycle version.
    #[serde(default)]
    pub version: String,
    /// SBOM media types of the lifecycle's own SBOMs.
    #[serde(default, rename = "sbom-formats")]
    pub sbom_formats: Vec<String>,
}

/// `lifecycle.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleDescriptor {
    /// `[apis]`.
    #[serde(default)]
    pub apis: Apis,
    /// `[api]`.
    #[serde(default)]
    pub api: MinimumApis,
    /// `[lifecycle]`.
    #[serde(default)]
    pub lifecycle: LifecycleInfo,
}

impl LifecycleDescriptor {
    /// The descriptor of this lifecycle at `version`, from [`SUPPORTED_PLATFORM_APIS`] and friends.
    pub fn current(version: &str) -> Self {
        fn strs<T: ToString>(v: &[T]) -> Vec<String> {
            v.iter().map(ToString::to_string).collect()
        }
        Self {
            apis: Apis {
                buildpack: ApiList {
                    deprecated: strs(DEPRECATED_BUILDPACK_APIS),
                    supported: strs(SUPPORTED_BUILDPACK_APIS),
                },
                platform: ApiList {
                    deprecated: strs(DEPRECATED_PLATFORM_APIS),
                    supported: strs(SUPPORTED_PLATFORM_APIS),
                },
            },
            api: MinimumApis {
                platform: SUPPORTED_PLATFORM_APIS
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                buildpack: SUPPORTED_BUILDPACK_APIS
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            lifecycle: LifecycleInfo {
                version: version.to_string(),
                sbom_formats: SBOM_FORMATS.iter().map(|s| s.to_string()).collect(),
            },
        }
    }
}

toml_file!(
    LifecycleDescriptor,
    "a lifecycle descriptor (`lifecycle.toml`)"
);
