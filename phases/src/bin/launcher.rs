//! The `launcher` binary, copied into app images as `/cnb/lifecycle/launcher`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(code) = cnb_lifecycle::cli::launcher_version(&args) {
        return code;
    }
    cnb_lifecycle::launch::main()
}
