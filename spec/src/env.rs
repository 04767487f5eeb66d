//! `CNB_*` environment variable names and default values (platform spec "Inputs" tables; checklist §1).

/// Platform API requested by the platform.
pub const PLATFORM_API: &str = "CNB_PLATFORM_API";
/// Log level: debug, info, warn, error.
pub const LOG_LEVEL: &str = "CNB_LOG_LEVEL";
/// Disable coloured output.
pub const NO_COLOR: &str = "CNB_NO_COLOR";
/// Deprecation mode: quiet, warn, error.
pub const DEPRECATION_MODE: &str = "CNB_DEPRECATION_MODE";
/// Experimental mode: quiet, warn, error.
pub const EXPERIMENTAL_MODE: &str = "CNB_EXPERIMENTAL_MODE";
/// Registry credentials as JSON `{ "<registry>": "<Authorization header>" }`. Never passed to buildpacks.
pub const REGISTRY_AUTH: &str = "CNB_REGISTRY_AUTH";
/// Comma-separated registries contacted over plain HTTP.
pub const INSECURE_REGISTRIES: &str = "CNB_INSECURE_REGISTRIES";
/// Analyzed metadata path.
pub const ANALYZED_PATH: &str = "CNB_ANALYZED_PATH";
/// Application directory.
pub const APP_DIR: &str = "CNB_APP_DIR";
/// Build config directory.
pub const BUILD_CONFIG_DIR: &str = "CNB_BUILD_CONFIG_DIR";
/// Build image reference (restorer, for build-image extension).
pub const BUILD_IMAGE: &str = "CNB_BUILD_IMAGE";
/// Buildpacks directory.
pub const BUILDPACKS_DIR: &str = "CNB_BUILDPACKS_DIR";
/// Cache directory.
pub const CACHE_DIR: &str = "CNB_CACHE_DIR";
/// Cache image reference.
pub const CACHE_IMAGE: &str = "CNB_CACHE_IMAGE";
/// Extensions directory.
pub const EXTENSIONS_DIR: &str = "CNB_EXTENSIONS_DIR";
/// Generated Dockerfiles directory.
pub const GENERATED_DIR: &str = "CNB_GENERATED_DIR";
/// Group path.
pub const GROUP_PATH: &str = "CNB_GROUP_PATH";
/// Kaniko cache TTL (Go duration).
pub const KANIKO_CACHE_TTL: &str = "CNB_KANIKO_CACHE_TTL";
/// Launch cache directory.
pub const LAUNCH_CACHE_DIR: &str = "CNB_LAUNCH_CACHE_DIR";
/// Layers directory.
pub const LAYERS_DIR: &str = "CNB_LAYERS_DIR";
/// OCI layout root directory.
pub const LAYOUT_DIR: &str = "CNB_LAYOUT_DIR";
/// Use an OCI layout instead of a registry.
pub const USE_LAYOUT: &str = "CNB_USE_LAYOUT";
/// Use the docker daemon.
pub const USE_DAEMON: &str = "CNB_USE_DAEMON";
/// Order path.
pub const ORDER_PATH: &str = "CNB_ORDER_PATH";
/// Plan path.
pub const PLAN_PATH: &str = "CNB_PLAN_PATH";
/// Platform directory.
pub const PLATFORM_DIR: &str = "CNB_PLATFORM_DIR";
/// Previous image reference.
pub const PREVIOUS_IMAGE: &str = "CNB_PREVIOUS_IMAGE";
/// Default process type.
pub const PROCESS_TYPE: &str = "CNB_PROCESS_TYPE";
/// Project metadata path.
pub const PROJECT_METADATA_PATH: &str = "CNB_PROJECT_METADATA_PATH";
/// Report path.
pub const REPORT_PATH: &str = "CNB_REPORT_PATH";
/// Run image reference.
pub const RUN_IMAGE: &str = "CNB_RUN_IMAGE";
/// `run.toml` path.
pub const RUN_PATH: &str = "CNB_RUN_PATH";
/// Skip layer restoration.
pub const SKIP_LAYERS: &str = "CNB_SKIP_LAYERS";
/// Skip restore (creator).
pub const SKIP_RESTORE: &str = "CNB_SKIP_RESTORE";
/// `stack.toml` path.
pub const STACK_PATH: &str = "CNB_STACK_PATH";
/// `system.toml` path.
pub const SYSTEM_PATH: &str = "CNB_SYSTEM_PATH";
/// Build user id.
pub const USER_ID: &str = "CNB_USER_ID";
/// Build group id.
pub const GROUP_ID: &str = "CNB_GROUP_ID";
/// Export image and cache in parallel.
pub const PARALLEL_EXPORT: &str = "CNB_PARALLEL_EXPORT";
/// Extend kind (build or run).
pub const EXTEND_KIND: &str = "CNB_EXTEND_KIND";
/// Extended images directory.
pub const EXTENDED_DIR: &str = "CNB_EXTENDED_DIR";
/// Force rebase.
pub const FORCE_REBASE: &str = "CNB_FORCE_REBASE";
/// Launcher SBOM directory.
pub const LAUNCHER_SBOM_DIR: &str = "CNB_LAUNCHER_SBOM_DIR";

/// Execution environment (`production`, `test`, ...; P≥0.15, BP≥0.12). Default `production`.
pub const EXEC_ENV: &str = "CNB_EXEC_ENV";
/// Skip the Amazon ECR credential helper in the keychain when `true` (reference).
pub const REGISTRY_AUTH_KEYCHAIN_SKIP_AMAZON: &str = "CNB_REGISTRY_AUTH_KEYCHAIN_SKIP_AMAZON";
/// Skip the Azure ACR credential helper in the keychain when `true` (reference).
pub const REGISTRY_AUTH_KEYCHAIN_SKIP_AZURE: &str = "CNB_REGISTRY_AUTH_KEYCHAIN_SKIP_AZURE";
/// Reproducible build time in seconds since the epoch (P≥0.9; IM-03). Not a `CNB_` variable.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Variables the lifecycle provides to buildpack and extension executables (buildpack spec
/// "Environment"; checklist ENV-04). Never read from the platform.
pub mod provided {
    /// The buildpack's directory (detect, build).
    pub const BUILDPACK_DIR: &str = "CNB_BUILDPACK_DIR";
    /// The extension's directory (detect, generate).
    pub const EXTENSION_DIR: &str = "CNB_EXTENSION_DIR";
    /// The platform directory (BP≥0.8).
    pub const PLATFORM_DIR: &str = "CNB_PLATFORM_DIR";
    /// Where `bin/detect` writes its build plan (BP≥0.8).
    pub const BUILD_PLAN_PATH: &str = "CNB_BUILD_PLAN_PATH";
    /// The buildpack plan given to `bin/build` / `bin/generate` (BP≥0.8).
    pub const BP_PLAN_PATH: &str = "CNB_BP_PLAN_PATH";
    /// The buildpack's layers directory `<layers>/<escaped id>` (build, BP≥0.8).
    pub const LAYERS_DIR: &str = "CNB_LAYERS_DIR";
    /// Where `bin/generate` writes Dockerfiles (generate).
    pub const OUTPUT_DIR: &str = "CNB_OUTPUT_DIR";
    /// Target OS of the run image (BP≥0.10, always set).
    pub const TARGET_OS: &str = "CNB_TARGET_OS";
    /// Target architecture of the run image (BP≥0.10, always set).
    pub const TARGET_ARCH: &str = "CNB_TARGET_ARCH";
    /// Target architecture variant (BP≥0.10, only when non-empty).
    pub const TARGET_ARCH_VARIANT: &str = "CNB_TARGET_ARCH_VARIANT";
    /// Target distribution name (BP≥0.10, only when non-empty).
    pub const TARGET_DISTRO_NAME: &str = "CNB_TARGET_DISTRO_NAME";
    /// Target distribution version (BP≥0.10, only when non-empty).
    pub const TARGET_DISTRO_VERSION: &str = "CNB_TARGET_DISTRO_VERSION";
    /// Execution environment (BP≥0.12, detect and build, when non-empty).
    pub const EXEC_ENV: &str = super::EXEC_ENV;
    /// Deprecated stack ID, passed through from the build image environment (ENV-01).
    pub const STACK_ID: &str = "CNB_STACK_ID";
}

/// Default values of directory and file inputs. Those under `<layers>` are relative names joined to the
/// resolved layers directory (checklist G-10).
pub mod defaults {
    /// Default app directory.
    pub const APP_DIR: &str = "/workspace";
    /// Default build config directory.
    pub const BUILD_CONFIG_DIR: &str = "/cnb/build-config";
    /// Default buildpacks directory.
    pub const BUILDPACKS_DIR: &str = "/cnb/buildpacks";
    /// Default extensions directory.
    pub const EXTENSIONS_DIR: &str = "/cnb/extensions";
    /// Default layers directory.
    pub const LAYERS_DIR: &str = "/layers";
    /// Default platform directory.
    pub const PLATFORM_DIR: &str = "/platform";
    /// Default OCI layout directory.
    pub const LAYOUT_DIR: &str = "/layout";
    /// Default order path when `<layers>/order.toml` does not exist.
    pub const ORDER_PATH: &str = "/cnb/order.toml";
    /// Default `run.toml` path.
    pub const RUN_PATH: &str = "/cnb/run.toml";
    /// Default `stack.toml` path.
    pub const STACK_PATH: &str = "/cnb/stack.toml";
    /// Default `system.toml` path.
    pub const SYSTEM_PATH: &str = "/cnb/system.toml";
    /// Default kaniko directory (extender/restorer).
    pub const KANIKO_DIR: &str = "/kaniko";
    /// Default launcher path.
    pub const LAUNCHER_PATH: &str = "/cnb/lifecycle/launcher";
    /// Default launcher SBOM directory.
    pub const LAUNCHER_SBOM_DIR: &str = "/cnb/lifecycle";
    /// Default kaniko cache TTL: 14 days.
    pub const KANIKO_CACHE_TTL_SECS: u64 = 14 * 24 * 3600;
    /// `analyzed.toml` under `<layers>`.
    pub const ANALYZED_FILE: &str = "analyzed.toml";
    /// `group.toml` under `<layers>`.
    pub const GROUP_FILE: &str = "group.toml";
    /// `plan.toml` under `<layers>`.
    pub const PLAN_FILE: &str = "plan.toml";
    /// `order.toml` under `<layers>` (overrides `/cnb/order.toml` when present).
    pub const ORDER_FILE: &str = "order.toml";
    /// `report.toml` under `<layers>`.
    pub const REPORT_FILE: &str = "report.toml";
    /// `project-metadata.toml` under `<layers>`.
    pub const PROJECT_METADATA_FILE: &str = "project-metadata.toml";
    /// Generated Dockerfiles directory under `<layers>`.
    pub const GENERATED_DIR: &str = "generated";
    /// Extended images directory under `<layers>`.
    pub const EXTENDED_DIR: &str = "extended";
    /// Default execution environment.
    pub const EXEC_ENV: &str = "production";
}
