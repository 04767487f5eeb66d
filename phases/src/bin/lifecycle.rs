//! The multi-call `lifecycle` binary, installed as `/cnb/lifecycle/lifecycle` with `analyzer`, `detector`,
//! `restorer`, `extender`, `builder`, `exporter`, `rebaser` and `creator` as symlinks to it (the
//! reference's layout): it runs the phase named by the basename of `argv[0]`, or `lifecycle <phase> ...`.

fn main() -> std::process::ExitCode {
    cnb_lifecycle::cli::main_multicall()
}
