//! The launcher (platform spec "launcher"; checklist §11): select a process, apply the launch environment,
//! run `exec.d`, and `execve` the process.

use std::process::ExitCode;

/// Entry point of the `launcher` binary.
pub fn main() -> ExitCode {
    eprintln!("ERROR: failed to launch: the launcher is not yet implemented in this lifecycle");
    ExitCode::from(cnb_spec::exit::LAUNCH_ERROR)
}
