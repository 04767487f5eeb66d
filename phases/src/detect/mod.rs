//! The detector: run `bin/detect`, resolve groups and the build plan, generate Dockerfiles (platform spec "detector").

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("detect"))
}
