//! `run.toml` (P≥0.12) and the deprecated `stack.toml` (P<0.12): run image names and mirrors (platform
//! spec "run.toml (TOML)", "stack.toml"; checklist F-RUN, F-STACK, RI-01, RI-02).

use serde::{Deserialize, Serialize};

use crate::io::toml_file;

/// A run image and its mirrors: `[[images]]` in `run.toml`, `[run-image]` in `stack.toml`, and the
/// `runImage`/`stack.runImage` parts of the lifecycle metadata label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunImageForExport {
    /// `image`: MAY be a tag reference to a run image in an OCI registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// `mirrors`: MUST NOT be present if `image` is not present; SHOULD reference images with the same ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

impl RunImageForExport {
    /// `image` followed by the mirrors, in order (the candidates of run image resolution).
    pub fn candidates(&self) -> Vec<&str> {
        std::iter::once(self.image.as_str())
            .filter(|s| !s.is_empty())
            .chain(self.mirrors.iter().map(String::as_str))
            .collect()
    }
}

/// `run.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunToml {
    /// `[[images]]`: only the first entry is used for run image selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<RunImageForExport>,
}

/// `stack.toml` (deprecated, P<0.12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackToml {
    /// `[run-image]`.
    #[serde(default, rename = "run-image")]
    pub run_image: RunImageForExport,
}

toml_file!(RunToml, "a `run.toml`");
toml_file!(StackToml, "a `stack.toml`");
