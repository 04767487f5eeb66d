//! The detector: run `bin/detect`, resolve groups and the build plan, generate Dockerfiles (platform spec
//! "detector", buildpack spec "Phase #1: Detection", image extension spec "generate"; checklist §3, §4, §12,
//! §13).

pub mod childenv;
pub mod detector;
pub mod exec;
pub mod log;
pub mod model;
pub mod resolve;
pub mod store;
pub mod target;

use crate::cli::Inputs;
use crate::Failure;

pub use detector::{DetectError, DetectRunner, Detected, Detector};

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("detect"))
}
