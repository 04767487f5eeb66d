//! Acceptance-test harness: temp container roots, running phase binaries as separate processes, a real
//! loopback registry, and small base images.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

pub mod docker;
pub mod faults;
pub mod harness;
pub mod hostile;
pub mod images;
pub mod registry;
pub mod report;
pub mod rootless;
pub mod stage;
