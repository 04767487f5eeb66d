//! The exporter: assemble the app image and the cache (platform spec "exporter"; checklist §8).

pub mod access;
pub mod cache_export;
pub mod config;
pub mod exporter;
pub mod extended;
mod glob;
#[cfg(test)]
mod golden_tests;
pub mod layers;
pub mod metadata;
pub mod phase;
pub mod plan;
pub mod sbom_copy;
pub mod slices;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    phase::run(inputs)
}
