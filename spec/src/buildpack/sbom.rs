//! SBOM file names and media types (buildpack spec "Bill-of-Materials"; checklist SB-01, SB-02, F-SBOMS).

use std::fmt;

/// An SBOM format the lifecycle understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SbomFormat {
    /// CycloneDX JSON: `cdx.json`, `application/vnd.cyclonedx+json`.
    CycloneDx,
    /// SPDX JSON: `spdx.json`, `application/spdx+json`.
    Spdx,
    /// Syft JSON: `syft.json`, `application/vnd.syft+json`.
    Syft,
}

impl SbomFormat {
    /// All formats.
    pub const ALL: [SbomFormat; 3] = [SbomFormat::CycloneDx, SbomFormat::Spdx, SbomFormat::Syft];

    /// File extension after `.sbom.` (e.g. `cdx.json`).
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cdx.json",
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::Syft => "syft.json",
        }
    }
    /// Media type, as declared in `buildpack.toml` `sbom-formats`.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::Syft => "application/vnd.syft+json",
        }
    }
    /// The format with file extension `ext` (`cdx.json`, ...).
    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == ext)
    }
    /// The format of media type `mt`; parameters (`;version=...`) are ignored.
    pub fn from_media_type(mt: &str) -> Option<Self> {
        let base = mt.split(';').next().unwrap_or("").trim();
        Self::ALL.into_iter().find(|f| f.media_type() == base)
    }
    /// Whether a `sbom-formats` list declares this format (parameters ignored).
    pub fn declared_in(self, sbom_formats: &[String]) -> bool {
        sbom_formats
            .iter()
            .any(|m| Self::from_media_type(m) == Some(self))
    }
    /// The file name used under `<layers>/sbom/...`: `sbom.<ext>`.
    pub fn sbom_file_name(self) -> String {
        format!("sbom.{}", self.extension())
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// A buildpack-written SBOM file name `<owner>.sbom.<ext>`, where owner is `launch`, `build` or a layer
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomFileName {
    /// `launch`, `build`, or the layer name.
    pub owner: String,
    /// The format, or the unsupported extension (an error for the builder).
    pub format: Result<SbomFormat, String>,
}

impl SbomFileName {
    /// Parses a file name; `None` when it does not match `*.sbom.*.json` (such files are not SBOMs).
    pub fn parse(file_name: &str) -> Option<Self> {
        if !file_name.ends_with(".json") {
            return None;
        }
        let (owner, ext) = file_name.split_once(".sbom.")?;
        if owner.is_empty() || ext == "json" {
            return None;
        }
        Some(Self {
            owner: owner.to_string(),
            format: SbomFormat::from_extension(ext).ok_or_else(|| ext.to_string()),
        })
    }
}
