//! Privileges: run as the build user, chown volumes, refuse root where the spec says (checklist G-19, G-20).

use crate::Failure;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// G-20: detector and builder refuse to run as root: `failed to <action>: refusing to run as root`
/// (exit 1).
pub fn refuse_root(action: &str) -> Result<(), Failure> {
    if is_root() {
        return Err(Failure::msg(
            cnb_spec::exit::FAILED,
            action,
            "refusing to run as root",
        ));
    }
    Ok(())
}
