//! The detector: run `bin/detect`, resolve groups and the build plan, generate Dockerfiles (platform spec
//! "detector", buildpack spec "Phase #1: Detection", image extension spec "generate"; checklist §3, §4, §12,
//! §13).
//!
//! [`DetectPhase`] is the whole phase on resolved inputs: read `order.toml` (+ `system.toml`), verify the
//! modules, run [`Detector::detect`], write `group.toml` and `plan.toml`, then run [`Generator::generate`]
//! when extensions passed. The detector never receives an image store or registry client.

pub mod detector;
pub mod dockerfile;
pub mod exec;
pub mod files;
pub mod generate;
pub mod log;
pub mod model;
pub mod resolve;
pub mod store;
pub mod target;

use std::path::PathBuf;

use cnb_spec::exit;
use cnb_spec::PlatformApi;

use crate::cli::Inputs;
use crate::Failure;

pub use detector::{DetectError, DetectRunner, Detected, Detector};
pub use generate::{GenerateError, Generated, Generator};

use crate::env::Env;
use exec::{ModuleContext, ProcessRunner};
use model::prepend_extensions;
use store::{DescriptorStore, DirStore, StoreError};
use target::RunTarget;

/// `CNB_EXEC_ENV` for Platform API ≥ 0.15 (default `production`), else empty.
pub fn exec_env(api: PlatformApi) -> String {
    if !api.at_least(0, 15) {
        return String::new();
    }
    std::env::var("CNB_EXEC_ENV")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "production".to_string())
}

/// The detect phase's resolved inputs.
#[derive(Debug, Clone)]
pub struct DetectPhase {
    /// Platform API.
    pub platform_api: PlatformApi,
    /// `-analyzed`.
    pub analyzed_path: PathBuf,
    /// `-app`.
    pub app_dir: PathBuf,
    /// `-build-config`.
    pub build_config_dir: PathBuf,
    /// `-buildpacks`.
    pub buildpacks_dir: PathBuf,
    /// `-extensions`.
    pub extensions_dir: PathBuf,
    /// `-generated`.
    pub generated_dir: PathBuf,
    /// `-group`.
    pub group_path: PathBuf,
    /// `-order`.
    pub order_path: PathBuf,
    /// `-plan`.
    pub plan_path: PathBuf,
    /// `-platform`.
    pub platform_dir: PathBuf,
    /// `-run`.
    pub run_path: PathBuf,
    /// `-system`.
    pub system_path: PathBuf,
    /// `CNB_EXEC_ENV`.
    pub exec_env: String,
    /// `CNB_EXPERIMENTAL_MODE` (quiet, warn, error; default error).
    pub experimental_mode: String,
    /// The build container's os-release (distro fallback for target data).
    pub os_release: PathBuf,
    /// The lifecycle's own environment, filtered through the allow-list for modules.
    pub lifecycle_env: Vec<(String, String)>,
}

impl DetectPhase {
    /// Takes what the detector needs from the resolved inputs and the process environment.
    pub fn from_inputs(inputs: &Inputs) -> Self {
        Self {
            platform_api: inputs.platform_api,
            analyzed_path: inputs.analyzed_path.clone(),
            app_dir: inputs.app_dir.clone(),
            build_config_dir: inputs.build_config_dir.clone(),
            buildpacks_dir: inputs.buildpacks_dir.clone(),
            extensions_dir: inputs.extensions_dir.clone(),
            generated_dir: inputs.generated_dir.clone(),
            group_path: inputs.group_path.clone(),
            order_path: inputs.order_path.clone(),
            plan_path: inputs.plan_path.clone(),
            platform_dir: inputs.platform_dir.clone(),
            run_path: inputs.run_path.clone(),
            system_path: inputs.system_path.clone(),
            exec_env: exec_env(inputs.platform_api),
            experimental_mode: std::env::var(cnb_spec::env::EXPERIMENTAL_MODE)
                .unwrap_or_else(|_| "error".to_string()),
            os_release: PathBuf::from("/etc/os-release"),
            lifecycle_env: std::env::vars().collect(),
        }
    }

    /// The context shared by every module run.
    pub fn module_context(&self, run_target: &RunTarget) -> ModuleContext {
        ModuleContext {
            app_dir: self.app_dir.clone(),
            platform_dir: self.platform_dir.clone(),
            build_config_dir: self
                .platform_api
                .at_least(0, 11)
                .then(|| self.build_config_dir.clone()),
            base_env: Env::for_build(self.lifecycle_env.iter().cloned()),
            target_env: target::env_vars(run_target),
            exec_env: self.exec_env.clone(),
        }
    }

    /// Runs the phase: detection, outputs, generation. Returns the detected group.
    pub fn execute(&self) -> Result<Detected, Failure> {
        let api = self.platform_api;
        let init = |e: &dyn std::fmt::Display| {
            Failure::msg(exit::FAILED, "initialize detector", e.to_string())
        };
        let analyzed = read_analyzed_or_warn(&self.analyzed_path).map_err(|e| init(&e))?;
        let (mut bps, exts) = files::read_order(&self.order_path)
            .map_err(|e| init(&format!("reading order: {e}")))?;
        if api.at_least(0, 15) {
            let (pre, post) = files::read_system(&self.system_path)
                .map_err(|e| init(&format!("reading system: {e}")))?;
            let (merged, logs) = files::merge_system(bps, &pre, &post);
            for l in logs {
                tracing::debug!("{l}");
            }
            bps = merged;
        }
        let store = DirStore {
            buildpacks_dir: self.buildpacks_dir.clone(),
            extensions_dir: self.extensions_dir.clone(),
        };
        // DT-05: every top-level module exists and declares a supported API.
        for m in bps.iter().chain(exts.iter()).flatten() {
            store
                .lookup(m.kind, &m.id, &m.version)
                .map_err(|e| store_failure(e, "initialize detector"))?;
        }
        let has_extensions = !exts.is_empty();
        if has_extensions && api.extensions_experimental() {
            guard_experimental(&self.experimental_mode, "Dockerfiles")?;
        }
        let order = prepend_extensions(bps, exts);

        let run_target = target::complete(analyzed.run_image_target(), &self.os_release);
        let ctx = self.module_context(&run_target);
        let runner = ProcessRunner { ctx: ctx.clone() };
        let detector = Detector {
            store: &store,
            runner: &runner,
            platform_api: api,
            run_target,
            exec_env: self.exec_env.clone(),
        };
        let detected = match detector.detect(&order) {
            Ok(d) => d,
            Err(DetectError::NoGroupPassed) => {
                tracing::error!("No buildpack groups passed detection.");
                tracing::error!("Please check that you are running against the correct path.");
                return Err(Failure::msg(
                    exit::DETECT_FAILED_NO_GROUP,
                    "detect",
                    "no buildpacks participating",
                ));
            }
            Err(DetectError::BuildpackErrored) => {
                tracing::error!("No buildpack groups passed detection.");
                return Err(Failure::msg(
                    exit::DETECT_BUILDPACK_ERROR,
                    "detect",
                    "buildpack(s) failed with err",
                ));
            }
            Err(DetectError::Store(e)) => return Err(store_failure(e, "detect")),
        };
        let write_err = |e: files::FileError| Failure::new(exit::DETECT_ERROR, "detect", &e);
        files::write_group(&self.group_path, &detected.buildpacks, &detected.extensions)
            .map_err(write_err)?;
        files::write_plan(&self.plan_path, &detected.plan).map_err(write_err)?;

        if !detected.extensions.is_empty() {
            let generator = Generator {
                store: &store,
                ctx: &ctx,
                platform_api: api,
                generated_dir: self.generated_dir.clone(),
                known_run_images: known_run_images(&self.run_path),
            };
            let generated = generator
                .generate(&detected.extensions, detected.plan.clone(), analyzed)
                .map_err(|e| Failure::new(e.code(), "build", &e))?;
            let gen_err = |e: files::FileError| Failure::new(exit::GENERATE_ERROR, "build", &e);
            files::write_analyzed(&self.analyzed_path, &generated.analyzed).map_err(gen_err)?;
            files::write_plan(&self.plan_path, &generated.plan).map_err(gen_err)?;
        }
        Ok(detected)
    }
}

/// Reads `analyzed.toml`; a missing file is empty with the reference's warning (DT-02, BD-I1).
pub fn read_analyzed_or_warn(path: &std::path::Path) -> Result<files::Analyzed, files::FileError> {
    match files::read_analyzed(path)? {
        Some(a) => Ok(a),
        None => {
            tracing::warn!(
                "No analyzed metadata found at path {:?}",
                path.display().to_string()
            );
            Ok(files::Analyzed::default())
        }
    }
}

fn store_failure(e: StoreError, action: &str) -> Failure {
    let code = match e {
        StoreError::UnsupportedApi { .. } => exit::INCOMPATIBLE_BUILDPACK_API,
        _ if action == "detect" => exit::DETECT_ERROR,
        _ => exit::FAILED,
    };
    Failure::new(code, action, &e)
}

/// The experimental-feature guard (`CNB_EXPERIMENTAL_MODE`, checklist DT-06).
pub fn guard_experimental(mode: &str, feature: &str) -> Result<(), Failure> {
    match mode {
        "quiet" | "silent" => Ok(()),
        "warn" => {
            tracing::warn!("Platform requested experimental feature '{feature}'");
            Ok(())
        }
        _ => {
            tracing::error!("Platform requested experimental feature '{feature}'");
            Err(Failure::msg(
                exit::FAILED,
                "detect",
                format!(
                    "experimental features are disabled by {}=error",
                    cnb_spec::env::EXPERIMENTAL_MODE
                ),
            ))
        }
    }
}

/// Every image and mirror named in `run.toml` (missing or unreadable file = none).
fn known_run_images(path: &std::path::Path) -> Vec<String> {
    cnb_spec::platform::RunToml::read(path)
        .map(|run| {
            run.images
                .iter()
                .flat_map(|i| i.candidates())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    crate::privilege::refuse_root("detect")?;
    DetectPhase::from_inputs(inputs).execute().map(|_| ())
}
