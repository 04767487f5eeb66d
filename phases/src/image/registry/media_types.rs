//! Manifest media types (OCI and Docker v2), raw manifests and platform selection from indexes.

use serde::Deserialize;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest types we ask registries for.
pub(crate) const ACCEPTED: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A manifest exactly as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The raw bytes (their sha256 is the digest).
    pub bytes: Vec<u8>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// One of the four manifest media types.
    pub media_type: String,
}

/// An image manifest and, when the reference pointed to an index, that index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedManifest {
    /// The single-platform image manifest.
    pub manifest: Manifest,
    /// The index it was selected from, if any.
    pub index: Option<Manifest>,
}

/// An OS/architecture pair as in image indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, ...
    pub os: String,
    /// `amd64`, `arm64`, ... (Go names).
    pub architecture: String,
    /// `v8`, ... when it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in Go's names.
    pub fn current() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
}

/// The media type of a manifest: its `mediaType` field, else inferred (`manifests` → OCI index,
/// `config` → OCI manifest).
pub(crate) fn detect_media_type(bytes: &[u8]) -> Result<String, String> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not JSON: {e}"))?;
    if probe.schema_version != Some(2) {
        return Err(format!(
            "schemaVersion {} is not supported (need 2)",
            probe
                .schema_version
                .map_or("missing".to_string(), |v| v.to_string())
        ));
    }
    match probe.media_type {
        Some(mt) if ACCEPTED.contains(&mt.as_str()) => Ok(mt),
        Some(mt) => Err(format!(
            "media type '{mt}' is not an image manifest or index"
        )),
        None if probe.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        None if probe.config.is_some() => Ok(OCI_MANIFEST.to_string()),
        None => Err("cannot tell the manifest type".into()),
    }
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<IndexPlatform>,
}

#[derive(Deserialize)]
struct IndexPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

impl Manifest {
    /// Whether this is an OCI index or Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }

    /// The digest of the index entry for `platform` (first match on os/architecture, and variant when the
    /// platform names one).
    pub fn select_platform(&self, platform: &Platform) -> Result<String, String> {
        let index: Index =
            serde_json::from_slice(&self.bytes).map_err(|e| format!("invalid index: {e}"))?;
        let found = index.manifests.iter().find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os == platform.os
                    && p.architecture == platform.architecture
                    && (platform.variant.is_none() || p.variant == platform.variant)
            })
        });
        match found {
            Some(m) => Ok(m.digest.clone()),
            None => {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                Err(format!(
                    "no manifest for platform {}/{} (index has: {})",
                    platform.os,
                    platform.architecture,
                    if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(", ")
                    }
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn media_types_are_detected() {
        let d = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{}}"#;
        assert_eq!(detect_media_type(d).unwrap(), DOCKER_MANIFEST);
        assert_eq!(
            detect_media_type(br#"{"schemaVersion":2,"config":{},"layers":[]}"#).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            detect_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
        assert!(detect_media_type(br#"{"schemaVersion":1}"#).is_err());
        assert!(detect_media_type(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#).is_err());
    }

    #[test]
    fn platform_selection() {
        let bytes = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:a","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"digest":"sha256:b","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:c"}]}"#
            .to_vec();
        let m = Manifest {
            bytes,
            digest: "sha256:x".into(),
            media_type: OCI_INDEX.into(),
        };
        let p = |a: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: a.into(),
            variant: v.map(str::to_string),
        };
        assert_eq!(m.select_platform(&p("amd64", None)).unwrap(), "sha256:b");
        assert_eq!(
            m.select_platform(&p("arm64", Some("v8"))).unwrap(),
            "sha256:a"
        );
        let e = m.select_platform(&p("s390x", None)).unwrap_err();
        assert!(e.contains("linux/arm64, linux/amd64"), "{e}");
    }
}
