//! Input resolution (platform spec "Inputs"; checklist G-05, G-08–G-12, G-15 and the per-phase `*-I*`
//! items): the "low args → high args" step that turns environment + parsed flags + positionals into
//! [`Inputs`].
//!
//! It runs in two stages so that the binary can set up logging in between, as the reference does:
//! [`settle`] seeds every input from its `CNB_*` variable or default, applies the flags in order
//! (flag > env > default, G-08) and validates the log level; [`finish`] checks the positionals, replaces
//! `<layers>` placeholders once the final `-layers` is known (G-10), picks the order file (G-11), makes
//! directories absolute (G-12) and applies the phase's own checks. Everything reads its environment from
//! a [`Context`], so tests never touch the process environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use cnb_spec::env as e;
use cnb_spec::env::defaults as d;
use cnb_spec::{exit, PlatformApi};

use super::flags::{self, FlagValue, ParseError, Parsed};
use super::inputs::{ExperimentalMode, ExtendKind, Inputs, LogLevel};
use super::table::{self, Key};
use super::Phase;
use crate::image::registry::{ensure_same_registry, ImageRef, RegistryError};
use crate::Failure;

/// The placeholder for the layers directory in defaults that live under it (G-10).
pub const PLACEHOLDER_LAYERS: &str = "<layers>";

/// The process environment and working directory that inputs are resolved against.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Environment variables (only UTF-8 ones are kept).
    pub vars: HashMap<String, String>,
    /// The directory relative paths are resolved against.
    pub cwd: PathBuf,
}

impl Context {
    /// The current process's environment and working directory.
    pub fn from_process() -> Result<Self, Failure> {
        let cwd = std::env::current_dir()
            .map_err(|err| Failure::new(exit::INVALID_ARGS, "resolve inputs", &err))?;
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Ok(Self { vars, cwd })
    }

    /// A context with the given variables (for tests and embedding).
    pub fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: impl Into<PathBuf>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd: cwd.into(),
        }
    }

    /// A variable's value; empty counts as unset (Go's `os.Getenv(k) != ""`).
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean variable with Go `ParseBool` semantics; invalid or unset → false (G-09).
    pub fn bool_var(&self, key: &str) -> bool {
        self.var(key)
            .and_then(flags::parse_go_bool)
            .unwrap_or(false)
    }

    fn path_or(&self, key: &str, default: &str) -> PathBuf {
        PathBuf::from(self.var(key).unwrap_or(default))
    }

    fn layers_path_or(&self, key: &str, file: &str) -> PathBuf {
        match self.var(key) {
            Some(v) => PathBuf::from(v),
            None => Path::new(PLACEHOLDER_LAYERS).join(file),
        }
    }

    fn opt(&self, key: &str) -> Option<String> {
        self.var(key).map(str::to_string)
    }

    /// A user or group id variable: unset or empty → 0 (the default), else it must be a valid id.
    fn id_var(&self, key: &str) -> Result<u32, String> {
        let Some(v) = self.var(key) else {
            return Ok(0);
        };
        flags::parse_go_atoi(v)
            .and_then(valid_id)
            .ok_or_else(|| format!("invalid {key} \"{v}\": {ID_RANGE}"))
    }
}

/// Inputs after environment and flags, before positionals and path resolution.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The phase being run.
    pub phase: Phase,
    /// Inputs so far; paths may still contain [`PLACEHOLDER_LAYERS`].
    pub inputs: Inputs,
    /// `-version` was given.
    pub version: bool,
    extend_kind: String,
}

/// Fully resolved inputs plus the warnings resolution produced (the binary logs them).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The inputs the phase runs with.
    pub inputs: Inputs,
    /// Warnings to print (`Warning: ` prefix added by the logger).
    pub warnings: Vec<String>,
}

/// Stage 1: seeds every input from `CNB_*` variables or defaults, then applies `parsed.flags` in order.
/// Fails with exit 1 on an invalid log level (G-13).
pub fn settle(
    phase: Phase,
    api: PlatformApi,
    parsed: &Parsed,
    ctx: &Context,
) -> Result<Settled, Failure> {
    let mut i = seed(api, ctx);
    let mut version = false;
    let mut log_level = ctx.var(e::LOG_LEVEL).unwrap_or("info").to_string();
    let mut extend_kind = ctx.var(e::EXTEND_KIND).unwrap_or("build").to_string();
    let mut id_flags = (false, false);
    for (name, value) in &parsed.flags {
        let Some(def) = table::lookup(phase, api, name) else {
            // The parser only accepts table flags; a mismatch is a programming error, not user input.
            return Err(Failure::msg(
                exit::PARSE_ERROR,
                "parse flags",
                format!("flag provided but not defined: -{name}"),
            ));
        };
        let s = || match value {
            FlagValue::Str(s) => s.clone(),
            _ => String::new(),
        };
        let path = || PathBuf::from(s());
        let opt = || Some(s()).filter(|v| !v.is_empty());
        let b = matches!(value, FlagValue::Bool(true));
        match def.key {
            Key::Analyzed => i.analyzed_path = path(),
            Key::App => i.app_dir = path(),
            Key::BuildConfig => i.build_config_dir = path(),
            Key::BuildImage => i.build_image = opt(),
            Key::Buildpacks => i.buildpacks_dir = path(),
            Key::CacheDir => i.cache_dir = opt().map(PathBuf::from),
            Key::CacheImage => i.cache_image = opt(),
            Key::Daemon => i.use_daemon = b,
            Key::Extended => i.extended_dir = path(),
            Key::Extensions => i.extensions_dir = path(),
            Key::Force => i.force_rebase = b,
            Key::Generated => i.generated_dir = path(),
            Key::Gid => {
                i.gid = id_flag(name, value)?;
                id_flags.1 = true;
            }
            Key::Group => i.group_path = path(),
            Key::DeprecatedImage => i.deprecated_run_image = opt(),
            Key::InsecureRegistry => i.insecure_registries.push(s()),
            Key::KanikoCacheTtl => {
                if let FlagValue::Duration(dur) = value {
                    i.kaniko_cache_ttl = *dur;
                }
            }
            Key::Kind => extend_kind = s(),
            Key::LaunchCache => i.launch_cache_dir = opt().map(PathBuf::from),
            Key::Launcher => i.launcher_path = path(),
            Key::LauncherSbom => i.launcher_sbom_dir = path(),
            Key::Layers => i.layers_dir = path(),
            Key::Layout => i.use_layout = b,
            Key::LayoutDir => i.layout_dir = opt().map(PathBuf::from),
            Key::LogLevel => log_level = s(),
            Key::NoColor => i.no_color = b,
            Key::Order => i.order_path = path(),
            Key::Parallel => i.parallel_export = b,
            Key::Plan => i.plan_path = path(),
            Key::Platform => i.platform_dir = path(),
            Key::PreviousImage => i.previous_image = opt(),
            Key::ProcessType => i.default_process_type = opt(),
            Key::ProjectMetadata => i.project_metadata_path = path(),
            Key::Report => i.report_path = path(),
            Key::Run => i.run_path = path(),
            Key::RunImage => i.run_image = opt(),
            Key::SkipLayers => i.skip_layers = b,
            Key::SkipRestore => {
                // creator: -skip-restore governs both (the reference binds it to SkipLayers).
                i.skip_restore = b;
                i.skip_layers = b;
            }
            Key::Stack => i.stack_path = path(),
            Key::System => i.system_path = path(),
            Key::Tag => i.additional_tags.push(s()),
            Key::Uid => {
                i.uid = id_flag(name, value)?;
                id_flags.0 = true;
            }
            Key::Version => version = b,
        }
    }
    if !version {
        ids_from_env(phase, api, ctx, &mut i, id_flags)?;
        i.log_level = LogLevel::parse(&log_level).ok_or_else(|| {
            Failure::msg(
                exit::FAILED,
                "parse log level",
                format!("not a valid log level: \"{log_level}\""),
            )
        })?;
    }
    Ok(Settled {
        phase,
        inputs: i,
        version,
        extend_kind,
    })
}

/// What a user or group id must be (issue 14: never fall back to root on a bad value).
const ID_RANGE: &str = "must be an integer from 0 to 4294967294";

/// A uid/gid from its integer value: `0..u32::MAX` (`u32::MAX` is the kernel's "unchanged" marker, -1).
fn valid_id(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|id| *id != u32::MAX)
}

fn id_flag(name: &str, value: &FlagValue) -> Result<u32, Failure> {
    match value {
        FlagValue::Int(v) => valid_id(*v).ok_or_else(|| {
            Failure::msg(
                exit::PARSE_ERROR,
                "parse flags",
                format!("invalid value \"{v}\" for flag -{name}: value out of range ({ID_RANGE})"),
            )
        }),
        _ => Ok(0),
    }
}

/// The `CNB_USER_ID`/`CNB_GROUP_ID` of a phase that takes `-uid`/`-gid`, unless the flag was given: an
/// invalid value is an argument error (exit 3), not uid 0. The reference falls back to 0 (G-09).
fn ids_from_env(
    phase: Phase,
    api: PlatformApi,
    ctx: &Context,
    i: &mut Inputs,
    flags_given: (bool, bool),
) -> Result<(), Failure> {
    let fail = |m: String| Failure::msg(exit::INVALID_ARGS, "resolve inputs", m);
    if !flags_given.0 && table::lookup(phase, api, "uid").is_some() {
        i.uid = ctx.id_var(e::USER_ID).map_err(fail)?;
    }
    if !flags_given.1 && table::lookup(phase, api, "gid").is_some() {
        i.gid = ctx.id_var(e::GROUP_ID).map_err(fail)?;
    }
    Ok(())
}

fn seed(api: PlatformApi, ctx: &Context) -> Inputs {
    Inputs {
        platform_api: api,
        log_level: LogLevel::Info,
        no_color: ctx.bool_var(e::NO_COLOR),
        analyzed_path: ctx.layers_path_or(e::ANALYZED_PATH, d::ANALYZED_FILE),
        app_dir: ctx.path_or(e::APP_DIR, d::APP_DIR),
        build_config_dir: ctx.path_or(e::BUILD_CONFIG_DIR, d::BUILD_CONFIG_DIR),
        build_image: ctx.opt(e::BUILD_IMAGE),
        buildpacks_dir: ctx.path_or(e::BUILDPACKS_DIR, d::BUILDPACKS_DIR),
        cache_dir: ctx.opt(e::CACHE_DIR).map(PathBuf::from),
        cache_image: ctx.opt(e::CACHE_IMAGE),
        default_process_type: ctx.opt(e::PROCESS_TYPE),
        extensions_dir: ctx.path_or(e::EXTENSIONS_DIR, d::EXTENSIONS_DIR),
        extended_dir: ctx.layers_path_or(e::EXTENDED_DIR, d::EXTENDED_DIR),
        generated_dir: ctx.layers_path_or(e::GENERATED_DIR, d::GENERATED_DIR),
        group_path: ctx.layers_path_or(e::GROUP_PATH, d::GROUP_FILE),
        extend_kind: ExtendKind::Build,
        kaniko_cache_ttl: ctx
            .var(e::KANIKO_CACHE_TTL)
            .and_then(flags::parse_go_duration)
            .unwrap_or(Duration::from_secs(d::KANIKO_CACHE_TTL_SECS)),
        kaniko_dir: PathBuf::from(d::KANIKO_DIR),
        launch_cache_dir: ctx.opt(e::LAUNCH_CACHE_DIR).map(PathBuf::from),
        launcher_path: PathBuf::from(d::LAUNCHER_PATH),
        launcher_sbom_dir: PathBuf::from(d::LAUNCHER_SBOM_DIR),
        layers_dir: ctx.path_or(e::LAYERS_DIR, d::LAYERS_DIR),
        layout_dir: ctx.opt(e::LAYOUT_DIR).map(PathBuf::from),
        order_path: ctx.layers_path_or(e::ORDER_PATH, d::ORDER_FILE),
        plan_path: ctx.layers_path_or(e::PLAN_PATH, d::PLAN_FILE),
        platform_dir: ctx.path_or(e::PLATFORM_DIR, d::PLATFORM_DIR),
        previous_image: ctx.opt(e::PREVIOUS_IMAGE),
        project_metadata_path: ctx
            .layers_path_or(e::PROJECT_METADATA_PATH, d::PROJECT_METADATA_FILE),
        report_path: ctx.layers_path_or(e::REPORT_PATH, d::REPORT_FILE),
        run_image: ctx.opt(e::RUN_IMAGE),
        run_path: ctx.path_or(e::RUN_PATH, d::RUN_PATH),
        stack_path: ctx.path_or(e::STACK_PATH, d::STACK_PATH),
        system_path: ctx.path_or(e::SYSTEM_PATH, d::SYSTEM_PATH),
        uid: ctx.id_var(e::USER_ID).unwrap_or(0),
        gid: ctx.id_var(e::GROUP_ID).unwrap_or(0),
        force_rebase: ctx.bool_var(e::FORCE_REBASE),
        parallel_export: ctx.bool_var(e::PARALLEL_EXPORT),
        skip_layers: ctx.bool_var(e::SKIP_LAYERS) || ctx.bool_var(e::SKIP_RESTORE),
        skip_restore: ctx.bool_var(e::SKIP_RESTORE),
        use_daemon: ctx.bool_var(e::USE_DAEMON),
        use_layout: ctx.bool_var(e::USE_LAYOUT),
        additional_tags: Vec::new(),
        insecure_registries: ctx
            .var(e::INSECURE_REGISTRIES)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        output_images: Vec::new(),
        deprecated_run_image: None,
        exec_env: ctx.var(EXEC_ENV).unwrap_or(d::EXEC_ENV).to_string(),
        experimental_mode: ExperimentalMode::from_env_value(ctx.var(e::EXPERIMENTAL_MODE)),
        extender_root: PathBuf::from(ctx.var(super::inputs::EXTENDER_ROOT_ENV).unwrap_or("/")),
    }
}

/// `CNB_EXEC_ENV` (Platform API 0.15), re-exported from [`cnb_spec::env`].
pub const EXEC_ENV: &str = e::EXEC_ENV;

/// The feature name the reference uses for OCI layout export (G-15).
pub const FEATURE_LAYOUT: &str = "export to OCI layout format";
/// The feature name the reference uses for image extensions before Platform API 0.13 (G-15).
pub const FEATURE_DOCKERFILES: &str = "Dockerfiles";

/// Guards an experimental feature per `CNB_EXPERIMENTAL_MODE` (G-15): `Ok(Some(warning))` in warn
/// mode, `Ok(None)` in quiet mode, and in error mode a failure (exit 1) printed as
/// `ERROR: experimental features are disabled by CNB_EXPERIMENTAL_MODE=error` after the log line
/// `Platform requested experimental feature '<feature>'`.
pub fn guard_experimental(
    mode: ExperimentalMode,
    feature: &str,
) -> Result<Option<String>, Failure> {
    let requested = format!("Platform requested experimental feature '{feature}'");
    match mode {
        ExperimentalMode::Quiet => Ok(None),
        ExperimentalMode::Warn => Ok(Some(requested)),
        ExperimentalMode::Error => {
            tracing::error!("{requested}");
            Err(Failure::msg(
                exit::FAILED,
                "",
                format!(
                    "experimental features are disabled by {}=error",
                    e::EXPERIMENTAL_MODE
                ),
            ))
        }
    }
}

/// Stage 2: positionals, `<layers>` placeholders (G-10), order fallback (G-11), absolute directories
/// (G-12) and the phase's own input checks.
pub fn finish(
    settled: Settled,
    positionals: &[String],
    ctx: &Context,
) -> Result<Resolved, Failure> {
    let Settled {
        phase,
        inputs: mut i,
        extend_kind,
        ..
    } = settled;
    let mut warnings = Vec::new();
    let args_err = |msg: String| Failure::msg(exit::INVALID_ARGS, "parse arguments", msg);
    let resolve_err = |msg: String| Failure::msg(exit::INVALID_ARGS, "resolve inputs", msg);

    // Positionals (AN-I15, DT-I15, RS-I12, BD-I7, EP-I15, RB-I7, CR-I5).
    match phase {
        Phase::Analyzer | Phase::Creator => {
            if positionals.len() != 1 {
                return Err(args_err(format!(
                    "received {} arguments, but expected 1",
                    positionals.len()
                )));
            }
            i.output_images = positionals.to_vec();
        }
        Phase::Exporter | Phase::Rebaser => {
            if positionals.is_empty() {
                return Err(args_err("at least one image argument is required".into()));
            }
            i.output_images = positionals.to_vec();
            i.additional_tags = positionals[1..].to_vec();
        }
        Phase::Restorer => {
            if !positionals.is_empty() {
                return Err(args_err("received unexpected Args".into()));
            }
        }
        Phase::Detector | Phase::Builder | Phase::Extender => {
            if !positionals.is_empty() {
                return Err(args_err("received unexpected arguments".into()));
            }
        }
    }

    // G-10 / G-11: placeholders after the final -layers.
    let order_was_default = i.order_path == Path::new(PLACEHOLDER_LAYERS).join(d::ORDER_FILE);
    for p in [
        &mut i.analyzed_path,
        &mut i.extended_dir,
        &mut i.generated_dir,
        &mut i.group_path,
        &mut i.order_path,
        &mut i.plan_path,
        &mut i.project_metadata_path,
        &mut i.report_path,
    ] {
        *p = replace_placeholder(p, &i.layers_dir);
    }
    if order_was_default && !ctx.cwd.join(&i.order_path).exists() {
        i.order_path = PathBuf::from(d::ORDER_PATH);
    }

    // G-12: directories made absolute (and cleaned).
    for p in [
        &mut i.app_dir,
        &mut i.build_config_dir,
        &mut i.buildpacks_dir,
        &mut i.extensions_dir,
        &mut i.generated_dir,
        &mut i.kaniko_dir,
        &mut i.layers_dir,
        &mut i.platform_dir,
    ] {
        *p = absolute(&ctx.cwd, p);
    }
    for p in [&mut i.cache_dir, &mut i.launch_cache_dir]
        .into_iter()
        .flatten()
    {
        *p = absolute(&ctx.cwd, p);
    }

    i.extend_kind = match extend_kind.as_str() {
        "build" => ExtendKind::Build,
        "run" => ExtendKind::Run,
        other => {
            return Err(resolve_err(format!(
                "unsupported extend kind '{other}': expected 'build' or 'run'"
            )))
        }
    };

    // Phase checks (the reference's ResolveInputs operations that need no file or registry).
    let no_cache = i.cache_image.is_none() && i.cache_dir.is_none();
    if matches!(phase, Phase::Analyzer | Phase::Creator | Phase::Rebaser)
        && i.previous_image.is_none()
    {
        i.previous_image = i.output_images.first().cloned();
    }
    match phase {
        Phase::Exporter => {
            if i.run_image.is_some() && i.run_image.as_deref() != ctx.var(e::RUN_IMAGE) {
                return Err(resolve_err("-run-image is unsupported".into()));
            }
            if i.deprecated_run_image.is_some() {
                return Err(resolve_err("-image is unsupported".into()));
            }
        }
        Phase::Rebaser => {
            if let Some(dep) = i.deprecated_run_image.clone() {
                if i.run_image.as_deref() != ctx.var(e::RUN_IMAGE) {
                    return Err(resolve_err(
                        "supply only one of -run-image or (deprecated) -image".into(),
                    ));
                }
                i.run_image = Some(dep);
            }
        }
        _ => {}
    }
    if matches!(phase, Phase::Restorer | Phase::Exporter | Phase::Creator) && no_cache {
        warnings.push("No cached data will be used, no cache specified.".to_string());
    }
    if matches!(phase, Phase::Analyzer | Phase::Exporter | Phase::Creator)
        && !i.use_daemon
        && i.launch_cache_dir.is_some()
    {
        warnings.push("Ignoring -launch-cache, only intended for use with -daemon".to_string());
    }
    if matches!(phase, Phase::Analyzer | Phase::Creator) && i.parallel_export && no_cache {
        warnings.push(
            "Parallel export has been enabled, but it has not taken effect because no cache has been specified."
                .to_string(),
        );
    }
    // G-21: every image reference parses (weak validation); destinations share one registry unless
    // exporting to a daemon.
    if matches!(
        phase,
        Phase::Analyzer | Phase::Creator | Phase::Exporter | Phase::Rebaser
    ) {
        validate_image_refs(&i)
            .map_err(|e| Failure::new(exit::INVALID_ARGS, "resolve inputs", &e))?;
    }

    // G-15: OCI layout is experimental at every API.
    if i.use_layout && matches!(phase, Phase::Analyzer | Phase::Exporter | Phase::Creator) {
        if let Some(w) = guard_experimental(i.experimental_mode, FEATURE_LAYOUT)? {
            warnings.push(w);
        }
    }
    Ok(Resolved {
        inputs: i,
        warnings,
    })
}

/// The reference's `ValidateImageRefs` + `ValidateTargetsAreSameRegistry` (G-21).
fn validate_image_refs(i: &Inputs) -> Result<(), RegistryError> {
    let destinations = i.destination_images();
    // The creator's -build-image may be an OCI layout path instead of a reference.
    let build_image = i
        .build_image
        .clone()
        .filter(|b| !crate::create::build_image::is_path(b));
    let others = [
        &i.previous_image,
        &build_image,
        &i.run_image,
        &i.deprecated_run_image,
        &i.cache_image,
    ];
    let mut parsed = Vec::new();
    for name in &destinations {
        parsed.push(ImageRef::parse(name)?);
    }
    for name in others.into_iter().flatten() {
        ImageRef::parse(name)?;
    }
    if !i.use_daemon {
        ensure_same_registry(&parsed)?;
    }
    Ok(())
}

/// Replaces the first `<layers>` in `path` with `layers` (the reference's `UpdatePlaceholderPaths`).
fn replace_placeholder(path: &Path, layers: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let ph = PLACEHOLDER_LAYERS.as_bytes();
    match bytes.windows(ph.len()).position(|w| w == ph) {
        None => path.to_path_buf(),
        Some(at) => {
            let mut out = bytes[..at].to_vec();
            out.extend_from_slice(layers.as_os_str().as_bytes());
            out.extend_from_slice(&bytes[at + ph.len()..]);
            PathBuf::from(OsString::from_vec(out))
        }
    }
}

/// `filepath.Abs`: joins relative paths to `cwd` and cleans the result lexically; empty stays empty.
pub fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() {
        return PathBuf::new();
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Why [`resolve`] stopped: a command-line syntax error (exit 2 with usage) or a failure.
#[derive(Debug)]
pub enum CliError {
    /// Bad command line (exit 2, or 0 for `-h`).
    Parse(ParseError),
    /// Any other failure, with its exit code.
    Fail(Failure),
}

/// Parses `args` for `phase` at `api` (flags gated by the table, G-08).
pub fn parse_args(phase: Phase, api: PlatformApi, args: &[String]) -> Result<Parsed, ParseError> {
    flags::parse(args, |name| table::lookup(phase, api, name).map(|f| f.kind))
}

/// The whole pipeline as one library call (no logging, no `-version` handling): parse `args`, settle,
/// finish. The binary runs the same stages with logging in between; tests use this.
pub fn resolve(
    phase: Phase,
    api: PlatformApi,
    args: &[String],
    ctx: &Context,
) -> Result<Resolved, CliError> {
    let parsed = parse_args(phase, api, args).map_err(CliError::Parse)?;
    let settled = settle(phase, api, &parsed, ctx).map_err(CliError::Fail)?;
    finish(settled, &parsed.positionals, ctx).map_err(CliError::Fail)
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
