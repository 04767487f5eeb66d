//! The restorer: restore layer metadata and cached layers before the build (platform spec "restorer";
//! checklist §5).

pub mod extract;
pub mod plan;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("restore"))
}
