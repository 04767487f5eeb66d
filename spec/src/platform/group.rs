//! `group.toml` (platform spec "group.toml (TOML)"; checklist F-GROUP, DS-14).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::buildpack::GroupElement;
use crate::io::{self, FileError, STRING_SOURCE};

/// `group.toml`: the buildpacks and extensions that passed detection, in order.
///
/// On read, `[[group-extensions]]` elements are marked `extension = true`, `optional = true`; on write
/// `extension` and `optional` are omitted for all elements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// `[[group]]`: `id`, `version`, `api`, `homepage`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<GroupElement>,
    /// `[[group-extensions]]` (P≥0.10): `id`, `version`, `api`, `homepage`.
    #[serde(
        default,
        rename = "group-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group_extensions: Vec<GroupElement>,
}

impl Group {
    /// Reads `group.toml`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let mut g: Self = io::read_toml(path.as_ref())?;
        g.mark(true);
        Ok(g)
    }
    /// Decodes `group.toml` text.
    pub fn from_toml_str(text: &str) -> Result<Self, FileError> {
        let mut g: Self = io::parse_toml(Path::new(STRING_SOURCE), text)?;
        g.mark(true);
        Ok(g)
    }
    /// Encodes as TOML.
    pub fn to_toml_string(&self) -> Result<String, FileError> {
        io::to_toml(Path::new(STRING_SOURCE), &self.for_write())
    }
    /// Writes atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        io::write_toml(path.as_ref(), &self.for_write())
    }
    /// Whether the group has extensions.
    pub fn has_extensions(&self) -> bool {
        !self.group_extensions.is_empty()
    }
    fn mark(&mut self, on: bool) {
        for e in &mut self.group_extensions {
            e.extension = on;
            e.optional = on;
        }
    }
    fn for_write(&self) -> Self {
        let strip = |v: &[GroupElement]| -> Vec<GroupElement> {
            v.iter()
                .map(|e| GroupElement {
                    extension: false,
                    optional: false,
                    exec_env: Vec::new(),
                    ..e.clone()
                })
                .collect()
        };
        Self {
            group: strip(&self.group),
            group_extensions: strip(&self.group_extensions),
        }
    }
}
