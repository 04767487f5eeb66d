//! Resolved phase inputs (the reference's `LifecycleInputs`): every flag/env/default after precedence
//! and `<layers>`-relative default resolution. Fields a phase does not use keep their defaults.

use std::path::PathBuf;
use std::time::Duration;

use cnb_spec::PlatformApi;

/// Log verbosity (`-log-level`, `CNB_LOG_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Default.
    #[default]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// Parses a level as the reference's logger does (`debug`, `info`, `warn`/`warning`, `error`/`fatal`,
    /// case-insensitive); `None` for anything else (G-13: the phase then exits 1).
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" | "fatal" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

/// Extender kind (`-kind`, `CNB_EXTEND_KIND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtendKind {
    /// Extend the build image, then build.
    #[default]
    Build,
    /// Extend the run image.
    Run,
}

/// Every input of every phase, resolved. See the platform spec's per-phase input tables.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// `CNB_PLATFORM_API`.
    pub platform_api: PlatformApi,
    /// `-log-level`.
    pub log_level: LogLevel,
    /// `-no-color`.
    pub no_color: bool,

    /// `-analyzed` (default `<layers>/analyzed.toml`).
    pub analyzed_path: PathBuf,
    /// `-app` (default `/workspace`).
    pub app_dir: PathBuf,
    /// `-build-config` (default `/cnb/build-config`).
    pub build_config_dir: PathBuf,
    /// `-build-image` (restorer, creator).
    pub build_image: Option<String>,
    /// `-buildpacks` (default `/cnb/buildpacks`).
    pub buildpacks_dir: PathBuf,
    /// `-cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `-cache-image`.
    pub cache_image: Option<String>,
    /// `-process-type` (exporter, creator).
    pub default_process_type: Option<String>,
    /// `-extensions` (default `/cnb/extensions`).
    pub extensions_dir: PathBuf,
    /// `-extended` (default `<layers>/extended`).
    pub extended_dir: PathBuf,
    /// `-generated` (default `<layers>/generated`).
    pub generated_dir: PathBuf,
    /// `-group` (default `<layers>/group.toml`).
    pub group_path: PathBuf,
    /// `-kind` (extender).
    pub extend_kind: ExtendKind,
    /// `CNB_KANIKO_CACHE_TTL` / `-kaniko-cache-ttl`.
    pub kaniko_cache_ttl: Duration,
    /// Kaniko directory (`/kaniko`): the extender's step cache lives under it.
    pub kaniko_dir: PathBuf,
    /// `-launch-cache`.
    pub launch_cache_dir: Option<PathBuf>,
    /// `-launcher` (default `/cnb/lifecycle/launcher`).
    pub launcher_path: PathBuf,
    /// `-launcher-sbom` (default `/cnb/lifecycle`).
    pub launcher_sbom_dir: PathBuf,
    /// `-layers` (default `/layers`).
    pub layers_dir: PathBuf,
    /// `-layout-dir` (`CNB_LAYOUT_DIR`).
    pub layout_dir: Option<PathBuf>,
    /// `-order` (default `<layers>/order.toml` if present, else `/cnb/order.toml`).
    pub order_path: PathBuf,
    /// `-plan` (default `<layers>/plan.toml`).
    pub plan_path: PathBuf,
    /// `-platform` (default `/platform`).
    pub platform_dir: PathBuf,
    /// `-previous-image`; analyzer, creator and rebaser default it to the output image (AN-01, RB-I4).
    pub previous_image: Option<String>,
    /// `-project-metadata` (default `<layers>/project-metadata.toml`).
    pub project_metadata_path: PathBuf,
    /// `-report` (default `<layers>/report.toml`).
    pub report_path: PathBuf,
    /// `-run-image`.
    pub run_image: Option<String>,
    /// `-run` (default `/cnb/run.toml`).
    pub run_path: PathBuf,
    /// `-stack` (default `/cnb/stack.toml`).
    pub stack_path: PathBuf,
    /// `-system` (default `/cnb/system.toml`).
    pub system_path: PathBuf,
    /// `-uid` (`CNB_USER_ID`).
    pub uid: u32,
    /// `-gid` (`CNB_GROUP_ID`).
    pub gid: u32,
    /// `-force` (rebaser).
    pub force_rebase: bool,
    /// `-parallel` (exporter).
    pub parallel_export: bool,
    /// `-skip-layers` (analyzer, restorer).
    pub skip_layers: bool,
    /// `-skip-restore` (creator).
    pub skip_restore: bool,
    /// `-daemon`.
    pub use_daemon: bool,
    /// `-layout`.
    pub use_layout: bool,
    /// Additional destination names: `-tag` values (analyzer, creator) or the positionals after the first
    /// (exporter, rebaser).
    pub additional_tags: Vec<String>,
    /// `-insecure-registry` (repeatable) plus `CNB_INSECURE_REGISTRIES`.
    pub insecure_registries: Vec<String>,
    /// Positional image names as given (analyzer/exporter/rebaser/creator): output image first.
    pub output_images: Vec<String>,
    /// Deprecated `-image` (exporter, rebaser): for the rebaser it becomes [`Inputs::run_image`]; the
    /// exporter rejects it while resolving inputs.
    pub deprecated_run_image: Option<String>,
    /// `CNB_EXEC_ENV` (default `production`; Platform API 0.15 semantics, env only).
    pub exec_env: String,
    /// `CNB_EXPERIMENTAL_MODE` (checklist G-15); see [`crate::cli::guard_experimental`].
    pub experimental_mode: ExperimentalMode,
    /// The root filesystem the extender changes (default `/`, the container's own). Not a spec input:
    /// library callers (creator with `-build-image`) set it; tests set `CNB_EXTENDER_ROOT`.
    pub extender_root: PathBuf,
}

/// Environment variable (ours, not the spec's) that sets [`Inputs::extender_root`].
pub(crate) const EXTENDER_ROOT_ENV: &str = "CNB_EXTENDER_ROOT";

/// `CNB_EXPERIMENTAL_MODE` (checklist G-15): what to do when an experimental feature is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExperimentalMode {
    /// `quiet` (also the spec's spelling `silent`): allow silently.
    Quiet,
    /// `warn` and any unrecognised value: allow with a warning.
    Warn,
    /// `error` (the default when unset): refuse.
    #[default]
    Error,
}

impl ExperimentalMode {
    /// Parses the variable's value: unset/empty → `error`, unknown values behave like `warn`.
    pub fn from_env_value(v: Option<&str>) -> Self {
        match v.unwrap_or("") {
            "" | "error" => ExperimentalMode::Error,
            "quiet" | "silent" => ExperimentalMode::Quiet,
            _ => ExperimentalMode::Warn,
        }
    }
}

impl Inputs {
    /// The output image (first positional) of analyzer, exporter, rebaser and creator.
    pub fn output_image(&self) -> Option<&str> {
        self.output_images.first().map(String::as_str)
    }

    /// Every destination name: the output image, then [`Inputs::additional_tags`], without duplicates
    /// (the reference's `DestinationImages`).
    pub fn destination_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let names = self.output_image().into_iter().map(str::to_string);
        for n in names.chain(self.additional_tags.iter().cloned()) {
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }
}
