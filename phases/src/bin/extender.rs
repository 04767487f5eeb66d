//! The `extender` phase binary.

fn main() -> std::process::ExitCode {
    cnb_lifecycle::cli::run_phase(cnb_lifecycle::cli::Phase::Extender)
}
