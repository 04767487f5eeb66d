//! Prints `lifecycle.toml` (the lifecycle descriptor) generated from the supported-API lists;
//! `make install` writes it to `<DESTDIR>/cnb/lifecycle/lifecycle.toml`. Not a phase.

fn main() {
    print!("{}", cnb_lifecycle::cli::descriptor::descriptor_toml());
}
