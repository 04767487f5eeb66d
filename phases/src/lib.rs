//! `cnb-lifecycle`: a Cloud Native Buildpacks lifecycle (buildpacks/spec `platform.md`).
//!
//! One module per concern, mirroring the reference lifecycle's map. Each phase is a type with one verb
//! taking its resolved inputs; the binaries under `src/bin/` only parse, run and exit.
#![deny(missing_docs)]

pub mod analyze;
pub mod archive;
pub mod build;
pub mod build_info;
pub mod cache;
pub mod cli;
pub mod create;
pub mod detect;
pub mod env;
pub mod error;
pub mod export;
pub mod extend;
pub mod image;
pub mod launch;
pub mod privilege;
pub mod rebase;
pub mod restore;

pub use error::Failure;
