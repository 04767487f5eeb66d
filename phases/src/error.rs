//! The failure a phase reports to its binary: an exit code (checklist §24) and a message printed as
//! `ERROR: failed to <action>: <cause chain>`.

use std::error::Error as StdError;
use std::fmt;

/// A phase failure: what the binary prints and the code it exits with.
///
/// Displayed as `failed to <action>: <cause>`; with an empty cause as `failed to <action>`, and with an
/// empty action as the bare cause (the reference prints a few errors, e.g. the experimental-mode refusal,
/// without a `failed to` prefix).
#[derive(Debug)]
pub struct Failure {
    /// The process exit code (see [`cnb_spec::exit`]).
    pub code: u8,
    /// What was being done, e.g. `detect` (printed as `failed to detect`).
    pub action: String,
    /// The cause, already rendered with its source chain.
    pub cause: String,
}

impl Failure {
    /// Builds a failure from any error, rendering its whole source chain.
    pub fn new(code: u8, action: impl Into<String>, err: &(dyn StdError + 'static)) -> Self {
        Self {
            code,
            action: action.into(),
            cause: chain(err),
        }
    }

    /// Builds a failure from a plain message.
    pub fn msg(code: u8, action: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            code,
            action: action.into(),
            cause: cause.into(),
        }
    }

    /// A phase whose logic has not landed yet.
    pub fn not_implemented(phase: &str) -> Self {
        Self::msg(
            cnb_spec::exit::FAILED,
            phase,
            format!("the {phase} phase is not yet implemented in this lifecycle"),
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.action.is_empty(), self.cause.is_empty()) {
            (true, _) => write!(f, "{}", self.cause),
            (false, true) => write!(f, "failed to {}", self.action),
            (false, false) => write!(f, "failed to {}: {}", self.action, self.cause),
        }
    }
}

/// Renders an error and its sources as `outer: inner: innermost`, skipping repeats.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        assert_eq!(
            Failure::msg(1, "detect", "boom").to_string(),
            "failed to detect: boom"
        );
        assert_eq!(
            Failure::msg(11, "set platform API", "").to_string(),
            "failed to set platform API"
        );
        assert_eq!(Failure::msg(1, "", "bare").to_string(), "bare");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            Failure::new(3, "read group", &io).to_string(),
            "failed to read group: no such file"
        );
    }
}
