//! `<layers>/config/metadata.toml` as the launcher reads it (platform spec "metadata.toml"; checklist LN-01).
//!
//! TODO(integration): switch to `cnb_spec::platform` metadata types once the spec helper's work is in main.
//! Until then this is a small private decoder tolerant of unknown keys; `command` is accepted both as a
//! string (Platform API < 0.10) and as an array.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The parts of `metadata.toml` the launcher uses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct LaunchMetadata {
    /// Buildpacks in build order.
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRef>,
    /// Every process contributed by the buildpacks.
    #[serde(default)]
    pub processes: Vec<Process>,
}

/// A buildpack of the group that built the image.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct BuildpackRef {
    /// Buildpack id (its layers live in `<layers>/<escaped id>`).
    pub id: String,
    /// Buildpack API the buildpack declared.
    #[serde(default)]
    pub api: String,
}

/// A process definition.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Process {
    /// Process type, e.g. `web`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The command: one entry (string form) or several (array form).
    #[serde(default, deserialize_with = "string_or_array")]
    pub command: Vec<String>,
    /// Default (overridable) arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Whether the process runs without a shell.
    #[serde(default)]
    pub direct: bool,
    /// Id of the buildpack that contributed the process.
    #[serde(default, rename = "buildpack-id")]
    pub buildpack_id: String,
    /// Working directory (relative paths are relative to `<app>`).
    #[serde(default, rename = "working-dir")]
    pub working_dir: Option<String>,
    /// Execution environments the process is eligible for (empty = all).
    #[serde(default, rename = "exec-env")]
    pub exec_env: Vec<String>,
}

fn string_or_array<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

/// Error reading `metadata.toml`.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file could not be read.
    #[error("failed to read '{path}'")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid metadata TOML.
    #[error("failed to parse '{path}'")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause (with TOML location).
        #[source]
        source: toml::de::Error,
    },
}

impl LaunchMetadata {
    /// Reads and decodes `path`.
    pub fn read(path: &Path) -> Result<Self, MetadataError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetadataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| MetadataError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Whether any process has type `kind`.
    pub fn has_process_type(&self, kind: &str) -> bool {
        self.processes.iter().any(|p| p.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ln01_command_as_string_or_array_and_unknown_keys() {
        let md: LaunchMetadata = toml::from_str(
            r#"
            buildpack-default-process-type = "web"
            unknown = 1
            [[buildpacks]]
            id = "a/b"
            api = "0.8"
            version = "1"
            [[processes]]
            type = "old"
            command = "echo hi"
            direct = false
            buildpack-id = "a/b"
            [[processes]]
            type = "new"
            command = ["echo", "always"]
            args = ["default"]
            working-dir = "sub"
            exec-env = ["test"]
            [[slices]]
            paths = ["x"]
            "#,
        )
        .unwrap();
        assert_eq!(md.processes[0].command, ["echo hi"]);
        assert!(!md.processes[0].direct);
        assert_eq!(md.processes[1].command, ["echo", "always"]);
        assert_eq!(md.processes[1].working_dir.as_deref(), Some("sub"));
        assert_eq!(md.processes[1].exec_env, ["test"]);
        assert_eq!(md.buildpacks[0].api, "0.8");
        assert!(md.has_process_type("new"));
    }

    #[test]
    fn read_errors_name_the_file() {
        let t = tempfile::TempDir::new().unwrap();
        let p = t.path().join("metadata.toml");
        let e = LaunchMetadata::read(&p).unwrap_err();
        assert!(e.to_string().contains("metadata.toml"));
        std::fs::write(&p, "processes = 3").unwrap();
        let e = LaunchMetadata::read(&p).unwrap_err();
        assert!(e.to_string().contains("failed to parse"));
    }
}
