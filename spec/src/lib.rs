//! `cnb-spec`: the Cloud Native Buildpacks specification (buildpacks/spec `platform.md`, `buildpack.md`,
//! `image_extension.md`) as Rust types.
//!
//! Pure data: API versions with named behaviour gates ([`api`]), exit codes ([`exit`]), `CNB_*` names and
//! defaults ([`env`]), every platform ([`platform`]) and buildpack ([`buildpack`]) file format, and the
//! image labels ([`labels`]). Decoding tolerates unknown keys; opaque metadata is kept as `toml::Table`.
//!
//! Every file type has `read(path)`, `write(path)` (atomic: temp file + rename), `from_toml_str` and
//! `to_toml_string`; types whose encoding depends on an API version take it as an argument. Errors are
//! [`FileError`]s naming the file and, for syntax errors, the line and column:
//!
//! ```
//! use cnb_spec::platform::Group;
//!
//! let group = Group::from_toml_str("[[group]]\nid = \"A\"\nversion = \"1\"\napi = \"0.12\"\n").unwrap();
//! assert_eq!(group.group[0].buildpack_api().unwrap().to_string(), "0.12");
//!
//! let err = Group::from_toml_str("[[group]\n").unwrap_err();
//! assert!(err.to_string().starts_with("toml: line 1, column"));
//! ```
//!
//! Formats that changed between API versions decode into one canonical type:
//!
//! ```
//! use cnb_spec::buildpack::LaunchToml;
//! use cnb_spec::BuildpackApi;
//!
//! let old = LaunchToml::from_toml_str("[[processes]]\ntype = \"web\"\ncommand = \"echo hi\"\n", BuildpackApi::new(0, 8)).unwrap();
//! let new = LaunchToml::from_toml_str("[[processes]]\ntype = \"web\"\ncommand = [\"echo\", \"hi\"]\n", BuildpackApi::new(0, 12)).unwrap();
//! assert!(!old.processes[0].direct && new.processes[0].direct);
//! assert_eq!(new.processes[0].command, ["echo", "hi"]);
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod buildpack;
pub mod env;
pub mod exit;
pub mod io;
pub mod labels;
pub mod parity;
pub mod platform;
pub mod toml_encoder;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod golden_bytes;
#[cfg(test)]
mod golden_toml;

pub use api::{BuildpackApi, PlatformApi};
pub use io::FileError;
