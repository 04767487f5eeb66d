//! `project-metadata.toml` (platform spec "project-metadata.toml (TOML)"; checklist F-PROJECT,
//! L-PROJECT). The same structure, as JSON, is the `io.buildpacks.project.metadata` label.

use serde::{Deserialize, Serialize};

use crate::io::{self, toml_file, FileError, STRING_SOURCE};

/// `[source]`: all values are optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectSource {
    /// `type`: SHOULD be the kind of location of the app source (`git`, `s3`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `[source.version]`: arbitrary data identifying the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<toml::Table>,
    /// `[source.metadata]`: arbitrary data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// `project-metadata.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectMetadata {
    /// `[source]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ProjectSource>,
}

impl ProjectMetadata {
    /// The `io.buildpacks.project.metadata` label value: this structure as JSON, `{}` when absent, empty
    /// fields omitted.
    pub fn to_label_json(&self) -> Result<String, FileError> {
        let mut m = self.clone();
        if let Some(s) = &mut m.source {
            if s.version.as_ref().is_some_and(toml::Table::is_empty) {
                s.version = None;
            }
            if s.metadata.as_ref().is_some_and(toml::Table::is_empty) {
                s.metadata = None;
            }
            if s.kind.as_deref() == Some("") {
                s.kind = None;
            }
        }
        io::to_json(std::path::Path::new(crate::labels::PROJECT_METADATA), &m)
    }
    /// Decodes the `io.buildpacks.project.metadata` label.
    pub fn from_label_json(text: &str) -> Result<Self, FileError> {
        io::parse_json(std::path::Path::new(STRING_SOURCE), text)
            .map_err(|e| e.with_path(crate::labels::PROJECT_METADATA))
    }
}

toml_file!(ProjectMetadata, "a `project-metadata.toml`");
