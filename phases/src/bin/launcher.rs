//! The `launcher` binary, copied into app images as `/cnb/lifecycle/launcher`.

fn main() -> std::process::ExitCode {
    cnb_lifecycle::launch::main()
}
