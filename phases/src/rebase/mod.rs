//! The rebaser: move an app image onto a new run image (platform spec "rebaser"; checklist §10).

pub mod check;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("rebase"))
}
