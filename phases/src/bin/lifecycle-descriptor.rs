//! Prints `lifecycle.toml` (the lifecycle descriptor) generated from the supported-API lists;
//! `make install` writes it to `<DESTDIR>/cnb/lifecycle/lifecycle.toml`. Not a phase.

fn main() -> std::process::ExitCode {
    match cnb_lifecycle::cli::descriptor::descriptor_toml() {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("ERROR: {f}");
            std::process::ExitCode::from(f.code)
        }
    }
}
