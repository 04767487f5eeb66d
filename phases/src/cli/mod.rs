//! The phase command-line contract (platform spec "Inputs"; checklist §1 G-04…G-15): Go `flag` syntax,
//! a per-phase flag table gated by Platform API, precedence flag > `CNB_*` env > default, and the
//! resolved [`Inputs`] every phase receives.

mod inputs;

pub use inputs::Inputs;

use std::process::ExitCode;

/// The lifecycle phases that share the platform input contract (the launcher has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `analyzer`
    Analyzer,
    /// `detector`
    Detector,
    /// `restorer`
    Restorer,
    /// `extender`
    Extender,
    /// `builder`
    Builder,
    /// `exporter`
    Exporter,
    /// `rebaser`
    Rebaser,
    /// `creator`
    Creator,
}

impl Phase {
    /// The binary name, e.g. `detector`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyzer",
            Phase::Detector => "detector",
            Phase::Restorer => "restorer",
            Phase::Extender => "extender",
            Phase::Builder => "builder",
            Phase::Exporter => "exporter",
            Phase::Rebaser => "rebaser",
            Phase::Creator => "creator",
        }
    }
}

/// Entry point of every phase binary except the launcher: parse and resolve inputs, run the phase,
/// print a failure as `ERROR: failed to <action>: <cause>` and map it to its exit code.
pub fn run_phase(phase: Phase) -> ExitCode {
    let _ = phase;
    eprintln!("ERROR: command-line parsing is not yet implemented");
    ExitCode::from(cnb_spec::exit::FAILED)
}

/// Runs `phase` on already-resolved inputs (dispatch table used by [`run_phase`]).
pub fn dispatch(phase: Phase, inputs: &Inputs) -> Result<(), crate::Failure> {
    match phase {
        Phase::Analyzer => crate::analyze::run(inputs),
        Phase::Detector => crate::detect::run(inputs),
        Phase::Restorer => crate::restore::run(inputs),
        Phase::Extender => crate::extend::run(inputs),
        Phase::Builder => crate::build::run(inputs),
        Phase::Exporter => crate::export::run(inputs),
        Phase::Rebaser => crate::rebase::run(inputs),
        Phase::Creator => crate::create::run(inputs),
    }
}
