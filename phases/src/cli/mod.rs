//! The phase command-line contract (platform spec "Inputs"; checklist §1 G-04…G-15): Go `flag` syntax
//! ([`flags`]), a per-phase flag table gated by Platform API ([`table`]), precedence flag > `CNB_*` env >
//! default and the resolved [`Inputs`] every phase receives ([`resolve`]), and logging ([`logging`]).
//!
//! [`run_phase`] is the whole life of a phase binary, in the reference's order:
//! 1. `CNB_PLATFORM_API` is checked before anything else (G-05, exit 11);
//! 2. flags are parsed (unknown or malformed → the error, usage, exit 2; `-h` → usage, exit 0);
//! 3. `-version` prints the version and exits 0 (G-04);
//! 4. the log level is validated (exit 1) and logging starts;
//! 5. flag-like positionals are warned about (G-07);
//! 6. positionals and inputs are resolved (exit 3 on bad arguments);
//! 7. detector and builder refuse root (G-20);
//! 8. the phase runs; a failure prints `ERROR: failed to <action>: <cause>` and exits with its code.
//!
//! Debugging aid: with `CNB_LIFECYCLE_PRINT_INPUTS=1` a phase prints its resolved [`Inputs`] (Rust
//! `Debug` form) to stdout after step 7 and exits 0 without running. Acceptance tests use it.

pub mod descriptor;
pub mod flags;
mod inputs;
pub mod logging;
pub mod resolve;
pub mod table;

pub use inputs::{ExperimentalMode, ExtendKind, Inputs, LogLevel};
pub use resolve::{guard_experimental, Context, Resolved};

use std::process::ExitCode;

use cnb_spec::{exit, PlatformApi};

use crate::Failure;

/// The hidden variable that makes a phase print its resolved inputs and exit 0.
pub const PRINT_INPUTS_ENV: &str = "CNB_LIFECYCLE_PRINT_INPUTS";

/// The lifecycle phases that share the platform input contract (the launcher has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `analyzer`
    Analyzer,
    /// `detector`
    Detector,
    /// `restorer`
    Restorer,
    /// `extender`
    Extender,
    /// `builder`
    Builder,
    /// `exporter`
    Exporter,
    /// `rebaser`
    Rebaser,
    /// `creator`
    Creator,
}

impl Phase {
    /// Every phase, in the order a build runs them (creator last).
    pub const ALL: [Phase; 8] = [
        Phase::Analyzer,
        Phase::Detector,
        Phase::Restorer,
        Phase::Extender,
        Phase::Builder,
        Phase::Exporter,
        Phase::Rebaser,
        Phase::Creator,
    ];

    /// The binary name, e.g. `detector`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyzer",
            Phase::Detector => "detector",
            Phase::Restorer => "restorer",
            Phase::Extender => "extender",
            Phase::Builder => "builder",
            Phase::Exporter => "exporter",
            Phase::Rebaser => "rebaser",
            Phase::Creator => "creator",
        }
    }

    /// The phase whose binary name (`detector`) or `lifecycle` subcommand verb (`detect`) is `name`.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == name || p.verb() == name)
    }

    /// The verb used in failure messages, e.g. `detect` (`failed to detect: ...`).
    pub fn verb(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyze",
            Phase::Detector => "detect",
            Phase::Restorer => "restore",
            Phase::Extender => "extend",
            Phase::Builder => "build",
            Phase::Exporter => "export",
            Phase::Rebaser => "rebase",
            Phase::Creator => "create",
        }
    }
}

/// The lifecycle version as `-version` prints it: the workspace version plus `+<commit>` when the build
/// was stamped with one (G-04; see [`crate::build_info`]).
pub fn version() -> String {
    crate::build_info::version_string()
}

/// Checks `CNB_PLATFORM_API` (G-05): blank → `failed to get platform API version; please set
/// 'CNB_PLATFORM_API' ...`, unparsable or unsupported → failure; all exit 11. A deprecated version warns,
/// or fails when `CNB_DEPRECATION_MODE=error` (G-14).
pub fn platform_api(ctx: &Context) -> Result<PlatformApi, Failure> {
    let code = exit::INCOMPATIBLE_PLATFORM_API;
    let raw = ctx
        .vars
        .get(cnb_spec::env::PLATFORM_API)
        .map(String::as_str)
        .unwrap_or("");
    if raw.trim().is_empty() {
        return Err(Failure::msg(
            code,
            format!(
                "get platform API version; please set '{}' to specify the desired platform API version",
                cnb_spec::env::PLATFORM_API
            ),
            "",
        ));
    }
    let api: PlatformApi = raw
        .parse()
        .map_err(|_| Failure::msg(code, format!("parse platform API '{raw}'"), ""))?;
    if !api.is_supported() {
        return Err(Failure::msg(
            code,
            "set platform API",
            format!("platform API version '{raw}' is incompatible with the lifecycle"),
        ));
    }
    if api.is_deprecated() {
        match ctx.var(cnb_spec::env::DEPRECATION_MODE).unwrap_or("warn") {
            "quiet" => {}
            "error" => {
                tracing::error!("Platform requested deprecated API '{raw}'");
                return Err(Failure::msg(
                    code,
                    "set platform API",
                    format!("platform API version '{raw}' is incompatible with the lifecycle"),
                ));
            }
            _ => tracing::warn!("Platform requested deprecated API '{raw}'"),
        }
    }
    Ok(api)
}

/// The name of the multi-call binary (`/cnb/lifecycle/lifecycle`); the phase names are symlinks to it.
pub const MULTICALL_NAME: &str = "lifecycle";

/// The hidden `lifecycle` subcommand that prints the lifecycle descriptor (`lifecycle.toml`).
pub const DESCRIPTOR_COMMAND: &str = "lifecycle-descriptor";

/// Entry point of the multi-call `lifecycle` binary, as the reference's `cmd/lifecycle/main.go`:
/// started as `analyzer`, `detector`, ... (the basename of `argv[0]`, normally a symlink) it runs that
/// phase on the remaining arguments; started under any other name it takes the phase from its first
/// argument (`lifecycle detect ...` or `lifecycle detector ...`), `lifecycle -version` prints the version,
/// no argument or an unknown phase fails with exit 3. `lifecycle lifecycle-descriptor` prints
/// `lifecycle.toml` (hidden; `make install` uses it).
pub fn main_multicall() -> ExitCode {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let arg0 = argv.next().unwrap_or_default();
    let args: Vec<String> = argv.collect();
    ExitCode::from(multicall(&arg0, &args))
}

/// [`main_multicall`] on explicit `argv[0]` and arguments; returns the exit code.
fn multicall(arg0: &str, args: &[String]) -> u8 {
    let base = std::path::Path::new(arg0)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(phase) = Phase::ALL.into_iter().find(|p| p.name() == base) {
        return run_process(phase, args);
    }
    if base == DESCRIPTOR_COMMAND {
        return print_descriptor();
    }
    let Some((first, rest)) = args.split_first() else {
        return report(
            &Failure::msg(exit::INVALID_ARGS, "parse arguments", ""),
            false,
        );
    };
    if first == "-version" || first == "--version" {
        println!("{}", version());
        return exit::SUCCESS;
    }
    if first == DESCRIPTOR_COMMAND {
        return print_descriptor();
    }
    let name = std::path::Path::new(first)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    match Phase::from_name(&name) {
        Some(phase) => run_process(phase, rest),
        None => report(
            &Failure::msg(
                exit::INVALID_ARGS,
                "recognize phase",
                format!("unknown phase: {name}"),
            ),
            false,
        ),
    }
}

/// Prints `lifecycle.toml` to stdout.
fn print_descriptor() -> u8 {
    match descriptor::descriptor_toml() {
        Ok(text) => {
            print!("{text}");
            exit::SUCCESS
        }
        Err(f) => report(&f, false),
    }
}

/// Runs `phase` on `args` with the process's environment. Issue 14: credentials leave the environment
/// before anything else runs (privilege::secrets), whichever way the phase was called (its own name,
/// `lifecycle <phase>`, a symlink).
fn run_process(phase: Phase, args: &[String]) -> u8 {
    protect_credentials(phase);
    match Context::from_process() {
        Ok(ctx) => run_with(phase, args, &ctx),
        Err(f) => report(&f, false),
    }
}

/// Entry point of one phase: parse and resolve inputs from the process's arguments (after `argv[0]`),
/// run the phase, print a failure as `ERROR: failed to <action>: <cause>` and map it to its exit code.
pub fn run_phase(phase: Phase) -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ExitCode::from(run_process(phase, &args))
}

/// Takes `CNB_REGISTRY_AUTH` out of the environment; phases that use registries keep it in memory and
/// become non-dumpable (also without it: a docker config or helper may be read later), the others
/// forget it.
fn protect_credentials(phase: Phase) {
    use crate::privilege::secrets;
    secrets::take_from_environment();
    match phase {
        Phase::Detector | Phase::Builder => secrets::discard(),
        _ => {
            if let Err(e) = secrets::protect_process() {
                eprintln!("Warning: cannot make the process non-dumpable: {e}");
            }
        }
    }
}

/// [`run_phase`] on explicit arguments and context; returns the exit code.
pub fn run_with(phase: Phase, args: &[String], ctx: &Context) -> u8 {
    let api = match platform_api(ctx) {
        Ok(api) => api,
        Err(f) => return report(&f, false),
    };
    let parsed = match resolve::parse_args(phase, api, args) {
        Ok(p) => p,
        Err(flags::ParseError::Help) => {
            eprint!("{}", table::usage(phase, api));
            return exit::SUCCESS;
        }
        Err(err) => {
            eprintln!("{err}");
            eprint!("{}", table::usage(phase, api));
            return exit::PARSE_ERROR;
        }
    };
    let settled = match resolve::settle(phase, api, &parsed, ctx) {
        Ok(s) => s,
        Err(f) => return report(&f, false),
    };
    if settled.version {
        println!("{}", version());
        return exit::SUCCESS;
    }
    logging::init(settled.inputs.log_level, settled.inputs.no_color);
    for arg in parsed.flag_like_positionals() {
        tracing::warn!(
            "unconsumed flag-like positional arg: \n\t{arg}\n\t This will not be interpreted as a flag.\n\t Did you mean to put this before the first positional argument?"
        );
    }
    tracing::debug!("Starting {}...", phase.name());
    tracing::debug!("Parsing inputs...");
    let resolved = match resolve::finish(settled, &parsed.positionals, ctx) {
        Ok(r) => r,
        Err(f) => return report(&f, true),
    };
    for w in &resolved.warnings {
        tracing::warn!("{w}");
    }
    let inputs = resolved.inputs;
    if ctx.bool_var(PRINT_INPUTS_ENV) {
        println!("{inputs:#?}");
        return exit::SUCCESS;
    }
    tracing::debug!("Ensuring privileges...");
    if matches!(phase, Phase::Detector | Phase::Builder) {
        if let Err(f) = crate::privilege::refuse_root(phase.verb()) {
            return report(&f, true);
        }
    }
    tracing::debug!("Executing command...");
    match dispatch(phase, &inputs) {
        Ok(()) => exit::SUCCESS,
        Err(f) => report(&f, true),
    }
}

/// Prints a failure as `ERROR: <failure>` (through the logger once it is up) and returns its code.
fn report(f: &Failure, logging_ready: bool) -> u8 {
    if logging_ready {
        tracing::error!("{f}");
    } else {
        eprintln!("{}{f}", logging::ERROR_PREFIX);
    }
    f.code
}

/// For the launcher binary: when its only argument is `-version` (or `--version`), checks
/// `CNB_PLATFORM_API` and prints the version, returning the exit code; otherwise `None` and the
/// launcher proceeds to launch. (The reference launcher has no `-version`; ours adds it so every binary
/// can report its version.)
pub fn launcher_version(args: &[String]) -> Option<ExitCode> {
    if !matches!(args, [a] if a == "-version" || a == "--version") {
        return None;
    }
    let code = match Context::from_process().and_then(|ctx| platform_api(&ctx)) {
        Ok(_) => {
            println!("{}", version());
            exit::SUCCESS
        }
        Err(f) => report(&f, false),
    };
    Some(ExitCode::from(code))
}

/// Runs `phase` on already-resolved inputs (dispatch table used by [`run_phase`]).
pub fn dispatch(phase: Phase, inputs: &Inputs) -> Result<(), crate::Failure> {
    match phase {
        Phase::Analyzer => crate::analyze::run(inputs),
        Phase::Detector => crate::detect::run(inputs),
        Phase::Restorer => crate::restore::run(inputs),
        Phase::Extender => crate::extend::run(inputs),
        Phase::Builder => crate::build::run(inputs),
        Phase::Exporter => crate::export::run(inputs),
        Phase::Rebaser => crate::rebase::run(inputs),
        Phase::Creator => crate::create::run(inputs),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn phases_by_binary_name_and_verb() {
        for p in Phase::ALL {
            assert_eq!(Phase::from_name(p.name()), Some(p));
            assert_eq!(Phase::from_name(p.verb()), Some(p));
        }
        assert_eq!(Phase::from_name("launcher"), None);
        assert_eq!(Phase::from_name("lifecycle"), None);
    }

    #[test]
    fn multicall_without_a_phase_fails_with_invalid_args() {
        assert_eq!(
            multicall("/cnb/lifecycle/lifecycle", &[]),
            exit::INVALID_ARGS
        );
        let args = ["frobnicate".to_string()];
        assert_eq!(multicall("lifecycle", &args), exit::INVALID_ARGS);
        assert_eq!(multicall("lifecycle", &["-version".into()]), exit::SUCCESS);
    }
}
