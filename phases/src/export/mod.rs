//! The exporter: assemble the app image and the cache (platform spec "exporter"; checklist §8).

pub mod config;
pub mod exporter;
mod glob;
pub mod layer_tar;
pub mod metadata;
pub mod plan;
pub mod slices;
pub mod store;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("export"))
}
