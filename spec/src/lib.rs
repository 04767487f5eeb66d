//! `cnb-spec`: the Cloud Native Buildpacks specification (buildpacks/spec `platform.md`, `buildpack.md`,
//! `image_extension.md`) as Rust types.
//!
//! Pure data: API versions with named behaviour gates ([`api`]), exit codes ([`exit`]), `CNB_*` names and
//! defaults ([`env`]), and every platform and buildpack file format. Decoding tolerates unknown keys.
#![deny(missing_docs)]

pub mod api;
pub mod buildpack;
pub mod env;
pub mod exit;
pub mod io;
pub mod labels;
pub mod platform;

pub use api::{BuildpackApi, PlatformApi};
pub use io::FileError;
