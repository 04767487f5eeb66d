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
        use crate::labels::table_to_json;
        #[derive(Serialize)]
        struct JsonSource {
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            kind: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<serde_json::Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            metadata: Option<serde_json::Value>,
        }
        #[derive(Serialize)]
        struct Json {
            #[serde(skip_serializing_if = "Option::is_none")]
            source: Option<JsonSource>,
        }
        let non_empty =
            |t: &Option<toml::Table>| t.as_ref().filter(|t| !t.is_empty()).map(table_to_json);
        let json = Json {
            source: self.source.as_ref().map(|s| JsonSource {
                kind: s.kind.clone().filter(|k| !k.is_empty()),
                version: non_empty(&s.version),
                metadata: non_empty(&s.metadata),
            }),
        };
        io::to_json(std::path::Path::new(crate::labels::PROJECT_METADATA), &json)
    }
    /// Decodes the `io.buildpacks.project.metadata` label.
    pub fn from_label_json(text: &str) -> Result<Self, FileError> {
        io::parse_json(std::path::Path::new(STRING_SOURCE), text)
            .map_err(|e| e.with_path(crate::labels::PROJECT_METADATA))
    }
}

toml_file!(ProjectMetadata, "a `project-metadata.toml`");
