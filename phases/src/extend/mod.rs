//! The extender: apply image-extension Dockerfiles in userspace (platform spec "extender"; checklist
//! §6 EX-*). No daemon, no kaniko: steps run in a chroot inside user + mount + pid namespaces
//! ([`sandbox`]), each file-system step is snapshotted into a layer ([`snapshot`]) and cached
//! ([`cache`]).

pub mod apply;
pub mod cache;
pub mod dockerfile;
pub mod fsutil;
pub mod sandbox;
pub mod snapshot;

#[cfg(test)]
mod tests;

use crate::cli::Inputs;
use crate::Failure;

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let _ = inputs;
    Err(Failure::not_implemented("extend"))
}
