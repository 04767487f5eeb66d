//! `<layers>/<escaped id>/<layer>.toml` layer content metadata (buildpack spec "Layer Content Metadata
//! (TOML)"; checklist F-LAYER, LY-01, BD-06).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::{self, FileError, STRING_SOURCE};

/// The `[types]` table: where a layer is used. Absent flags are `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerTypes {
    /// `launch = true`: the layer is exported into the app image.
    #[serde(default)]
    pub launch: bool,
    /// `build = true`: the layer is visible to later buildpacks during build.
    #[serde(default)]
    pub build: bool,
    /// `cache = true`: the layer is cached and restored on the next build.
    #[serde(default)]
    pub cache: bool,
}

impl LayerTypes {
    /// Whether no flag is set (the builder then renames the layer directory to `<name>.ignore`).
    pub fn is_none(&self) -> bool {
        !(self.launch || self.build || self.cache)
    }
}

/// `<layer>.toml`, canonical.
///
/// Buildpack API < 0.6 put `launch`, `build` and `cache` at the top level; that form is still decoded (into
/// [`LayerMetadataFile::types`], with [`LayerMetadataFile::types_at_top_level`] set) so that the builder can
/// report "the launch, cache and build flags should be in the types table of <path>" as the reference does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerMetadataFile {
    /// The layer's flags.
    pub types: LayerTypes,
    /// `[metadata]`: buildpack-defined data, opaque; `metadata.exec-env` restricts the layer to execution
    /// environments (BP≥0.12, informational).
    pub metadata: toml::Table,
    /// Whether any of `launch`/`build`/`cache` appeared at the top level (pre-0.6 form).
    pub types_at_top_level: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct Raw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    types: Option<LayerTypes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache: Option<bool>,
    #[serde(default)]
    metadata: toml::Table,
}

impl LayerMetadataFile {
    /// Reads a `<layer>.toml`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref();
        Self::parse(path, &io::read_text(path)?)
    }

    /// Reads a `<layer>.toml`; a missing file yields the empty value (no flags, no metadata), as the
    /// reference does.
    pub fn read_or_default(path: impl AsRef<Path>) -> Result<Self, FileError> {
        match Self::read(path) {
            Err(e) if e.is_not_found() => Ok(Self::default()),
            r => r,
        }
    }

    /// Decodes `<layer>.toml` text.
    pub fn from_toml_str(text: &str) -> Result<Self, FileError> {
        Self::parse(Path::new(STRING_SOURCE), text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        let raw: Raw = io::parse_toml(path, text)?;
        let top = raw.launch.is_some() || raw.build.is_some() || raw.cache.is_some();
        let types = match raw.types {
            Some(t) => t,
            None => LayerTypes {
                launch: raw.launch.unwrap_or(false),
                build: raw.build.unwrap_or(false),
                cache: raw.cache.unwrap_or(false),
            },
        };
        Ok(Self {
            types,
            metadata: raw.metadata,
            types_at_top_level: top,
        })
    }

    fn to_raw(&self) -> Raw {
        Raw {
            types: (!self.types.is_none()).then_some(self.types),
            metadata: self.metadata.clone(),
            ..Raw::default()
        }
    }

    /// Encodes in the current form: `[types]` (omitted when no flag is set — restored metadata never
    /// carries types) and `[metadata]`.
    pub fn to_toml_string(&self) -> Result<String, FileError> {
        io::to_toml(Path::new(STRING_SOURCE), &self.to_raw())
    }

    /// Writes atomically in the current form.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        io::write_toml(path.as_ref(), &self.to_raw())
    }

    /// `metadata.exec-env`: execution environments the layer applies to (BP≥0.12; empty = all).
    pub fn exec_env(&self) -> Vec<String> {
        self.metadata
            .get("exec-env")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The builder's check: `Err` with the reference message when the flags are at the top level.
    pub fn check_types_table(&self, path: &Path) -> Result<(), FileError> {
        if self.types_at_top_level {
            return Err(FileError::invalid(
                path,
                format!(
                    "the launch, cache and build flags should be in the types table of {}",
                    path.display()
                ),
            ));
        }
        Ok(())
    }
}
