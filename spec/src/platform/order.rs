//! `order.toml` (platform spec "order.toml (TOML)"; checklist F-ORDER, G-11, DS-01).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::buildpack::OrderGroup;
use crate::io::{self, FileError, STRING_SOURCE};

/// `order.toml`: the buildpack groups to try, and optionally the extension groups tried before each.
///
/// On read, every `[[order-extensions]]` element is marked `extension = true` and `optional = true`
/// (extensions are always optional); on write those flags are omitted again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// `[[order]]` with `[[order.group]]` `id`, `version`, `optional`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderGroup>,
    /// `[[order-extensions]]` with `[[order-extensions.group]]` `id`, `version` (P≥0.10).
    #[serde(
        default,
        rename = "order-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order_extensions: Vec<OrderGroup>,
}

impl Order {
    /// Reads `order.toml`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let mut o: Self = io::read_toml(path.as_ref())?;
        o.check_ids(path.as_ref())?;
        o.mark_extensions(true);
        Ok(o)
    }
    /// Decodes `order.toml` text.
    pub fn from_toml_str(text: &str) -> Result<Self, FileError> {
        let mut o: Self = io::parse_toml(Path::new(STRING_SOURCE), text)?;
        o.check_ids(Path::new(STRING_SOURCE))?;
        o.mark_extensions(true);
        Ok(o)
    }
    /// Every group entry must name a buildpack or extension: an empty `id` would become a path
    /// (`<buildpacks>/<version>/buildpack.toml`).
    fn check_ids(&self, path: &Path) -> Result<(), FileError> {
        for (table, groups) in [
            ("order", &self.order),
            ("order-extensions", &self.order_extensions),
        ] {
            for (g, group) in groups.iter().enumerate() {
                if let Some(e) = group.group.iter().position(|e| e.id.trim().is_empty()) {
                    return Err(FileError::invalid(
                        path,
                        format!("[[{table}]] #{} entry #{} has no id", g + 1, e + 1),
                    ));
                }
            }
        }
        Ok(())
    }
    /// Encodes as TOML.
    pub fn to_toml_string(&self) -> Result<String, FileError> {
        let mut o = self.clone();
        o.mark_extensions(false);
        io::to_toml(Path::new(STRING_SOURCE), &o)
    }
    /// Writes atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        let mut o = self.clone();
        o.mark_extensions(false);
        io::write_toml(path.as_ref(), &o)
    }
    fn mark_extensions(&mut self, on: bool) {
        for g in &mut self.order_extensions {
            for e in &mut g.group {
                e.extension = on;
                e.optional = on;
            }
        }
    }
}
