//! The analyzer: read the previous and run images, write `analyzed.toml` (platform spec "analyzer";
//! checklist §2).

pub mod run_image;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("analyze"))
}
