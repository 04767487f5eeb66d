//! The extender: apply image-extension Dockerfiles in userspace (platform spec "extender").

pub mod dockerfile;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("extend"))
}
