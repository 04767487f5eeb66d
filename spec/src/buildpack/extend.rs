//! Files an image extension's `bin/generate` writes besides Dockerfiles: `extend-config.toml` (image
//! extension spec "extend-config.toml (TOML)"; checklist F-EXTEND), and the TOML an `exec.d` executable
//! writes to file descriptor 3 (buildpack spec "exec.d"; checklist F-EXECD).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::{self, toml_file, FileError, STRING_SOURCE};

/// A Dockerfile build argument: `name`, `value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtendArg {
    /// MUST be the name of a build argument.
    #[serde(default)]
    pub name: String,
    /// MUST be the value of the build argument.
    #[serde(default)]
    pub value: String,
}

/// `[build]` / `[run]` of `extend-config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendArgs {
    /// `[[build.args]]` / `[[run.args]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ExtendArg>,
}

/// `<output>/extend-config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendConfig {
    /// Args provided to `build.Dockerfile`.
    #[serde(default)]
    pub build: ExtendArgs,
    /// Args provided to `run.Dockerfile`.
    #[serde(default)]
    pub run: ExtendArgs,
}

impl ExtendConfig {
    /// The args for Dockerfile kind `kind` (`"build"` or `"run"`).
    pub fn args_for(&self, kind: &str) -> &[ExtendArg] {
        match kind {
            "run" => &self.run.args,
            _ => &self.build.args,
        }
    }
}

toml_file!(ExtendConfig, "an `extend-config.toml`");

/// Decodes what an `exec.d` executable wrote to FD 3: a TOML table of `NAME = "value"` string pairs.
/// Non-string values are an error. `source` names the executable in errors.
pub fn parse_exec_d_output(
    source: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, FileError> {
    io::parse_toml(source, text)
}

/// [`parse_exec_d_output`] for text without a known source.
pub fn parse_exec_d_output_str(text: &str) -> Result<BTreeMap<String, String>, FileError> {
    parse_exec_d_output(Path::new(STRING_SOURCE), text)
}
