//! The builder: run each group buildpack's `bin/build` and collect its outputs (platform spec "builder",
//! buildpack spec "Phase #3: Build"; checklist §7, §14–§18).
//!
//! [`Builder::build`] takes the group, the plan and the shared module context; it never receives an image
//! store or registry client. [`BuildPhase`] reads the platform files, runs it and writes
//! `<layers>/config/metadata.toml`.

pub mod metadata;
pub mod outputs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cnb_spec::{exit, BuildpackApi, PlatformApi};

use crate::cli::Inputs;
use crate::detect::exec::{spawn_retrying, ModuleContext};
use crate::detect::files::{self, buildpack_plan_toml};
use crate::detect::generate::stdout_stdio;
use crate::detect::model::{filter_met, plan_for, GroupMember, Kind, PlanEntry};
use crate::detect::store::{escape_id, DescriptorStore, DirStore, StoreError};
use crate::env::{Env, EnvError};
use crate::Failure;

pub use metadata::{build_metadata, BuildMetadata, Collected};
pub use outputs::{BuildOutputs, OutputError, Process};

/// Why a build failed; [`BuildError::code`] gives the exit code.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A buildpack's `bin/build` could not be run or exited non-zero (exit 51).
    #[error("buildpack '{id}@{version}': {} {status}", path.display())]
    BuildpackFailed {
        /// Buildpack id.
        id: String,
        /// Buildpack version.
        version: String,
        /// The executable.
        path: PathBuf,
        /// How it ended.
        status: String,
    },
    /// The group names a buildpack that cannot be looked up (exit 52, or 12 for its API).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A buildpack wrote invalid output (exit 52).
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Env files could not be applied (exit 52).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A lifecycle file operation failed (exit 52).
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl BuildError {
    /// 51 for buildpack failures, 12 for unsupported buildpack APIs, 52 otherwise (BD-15).
    pub fn code(&self) -> u8 {
        match self {
            BuildError::BuildpackFailed { .. } => exit::BUILD_BUILDPACK_ERROR,
            BuildError::Store(StoreError::UnsupportedApi { .. }) => {
                exit::INCOMPATIBLE_BUILDPACK_API
            }
            _ => exit::BUILD_ERROR,
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io { what, path, source }
}

/// The builder.
pub struct Builder<'a> {
    /// Where buildpack descriptors come from.
    pub store: &'a dyn DescriptorStore,
    /// App, platform, build-config dirs, the allow-listed base env and target variables.
    pub ctx: ModuleContext,
    /// `-layers`.
    pub layers_dir: PathBuf,
    /// Platform API.
    pub platform_api: PlatformApi,
}

impl Builder<'_> {
    /// Builds the group in order and returns the metadata for `metadata.toml` (BD-03…BD-14).
    pub fn build(
        &self,
        buildpacks: &[GroupMember],
        extensions: &[GroupMember],
        mut plan: Vec<PlanEntry>,
    ) -> Result<BuildMetadata, BuildError> {
        let sbom_dir = self.layers_dir.join("sbom");
        match std::fs::remove_dir_all(&sbom_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("failed to clean layers SBOM directory", &sbom_dir)(e)),
        }
        let mut env: Env = self.ctx.base_env.clone();
        let mut col = Collected::default();
        let mut sboms = Vec::new();
        let (mut launch_bom, mut build_bom) = (Vec::new(), Vec::new());
        for bp in buildpacks {
            let m = &bp.module;
            tracing::debug!("Running build for buildpack {m}");
            let d = self.store.lookup(Kind::Buildpack, &m.id, &m.version)?;
            let bp_plan = plan_for(&plan, Kind::Buildpack, &m.id);
            let bp_layers = self.layers_dir.join(escape_id(&m.id));
            cnb_spec::io::create_dirs(&bp_layers)
                .map_err(io("failed to create buildpack layers dir", &bp_layers))?;
            let plan_dir = tempfile::Builder::new()
                .prefix(&format!("{}-", escape_id(&m.id)))
                .tempdir()
                .map_err(io("failed to create plan dir in", &std::env::temp_dir()))?;
            let plan_path = plan_dir.path().join("plan.toml");
            std::fs::write(&plan_path, buildpack_plan_toml(&bp_plan))
                .map_err(io("failed to write buildpack plan", &plan_path))?;

            let mut extra = vec![("CNB_BUILDPACK_DIR", d.root.to_string_lossy().into_owned())];
            if d.api >= BuildpackApi::new(0, 8) {
                extra.push((
                    "CNB_PLATFORM_DIR",
                    self.ctx.platform_dir.to_string_lossy().into_owned(),
                ));
                extra.push(("CNB_BP_PLAN_PATH", plan_path.to_string_lossy().into_owned()));
                extra.push(("CNB_LAYERS_DIR", bp_layers.to_string_lossy().into_owned()));
            }
            let child_env = self.ctx.env_for(&env, &d, &extra, true)?;
            let bin = d.bin("build");
            let mut cmd = Command::new(&bin);
            cmd.arg(&bp_layers)
                .arg(&self.ctx.platform_dir)
                .arg(&plan_path)
                .current_dir(&self.ctx.app_dir);
            child_env.apply_to(&mut cmd);
            cmd.stdin(Stdio::null())
                .stdout(stdout_stdio())
                .stderr(stdout_stdio());
            let failed = |status: String| BuildError::BuildpackFailed {
                id: m.id.clone(),
                version: m.version.clone(),
                path: bin.clone(),
                status,
            };
            let status = spawn_retrying(&mut cmd)
                .and_then(|mut c| c.wait())
                .map_err(|e| failed(format!("could not be run: {e}")))?;
            if !status.success() {
                return Err(failed(status.to_string()));
            }

            let layers = outputs::process_layers(&m.id, &bp_layers)?;
            // BD-07 / ENV-08: build layers change the env of later buildpacks.
            for (name, t) in &layers {
                if !t.build {
                    continue;
                }
                env.add_build_layer(&bp_layers.join(name), d.api)?;
            }
            let out = outputs::read_outputs(&d, &bp_layers, &bp_plan, layers)?;
            plan = filter_met(plan, &out.met);
            col.labels.extend(out.labels);
            col.slices.extend(out.slices);
            sboms.extend(out.sboms);
            launch_bom.extend(out.launch_bom);
            build_bom.extend(out.build_bom);
            col.processes.push((m.id.clone(), out.processes));
            tracing::debug!("Finished running build for buildpack {m}");
        }

        if self.platform_api.at_least(0, 8) {
            for s in &sboms {
                let mut dir = sbom_dir.join(s.kind.as_str()).join(escape_id(
                    &s.path
                        .parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ));
                if let Some(l) = &s.layer {
                    dir = dir.join(l);
                }
                let to = dir.join(s.file_name);
                copy_file(&s.path, &to).map_err(io("failed to copy SBOM to", &to))?;
            }
        }
        if self.platform_api.at_least(0, 9) {
            for (kind, bom) in [("launch", &launch_bom), ("build", &build_bom)] {
                let p = sbom_dir.join(kind).join("sbom.legacy.json");
                // The reference's `json.Encoder` output: `null` for no entries, a trailing newline.
                let body = if bom.is_empty() {
                    "null\n".to_string()
                } else {
                    cnb_spec::io::to_json(&p, bom)
                        .map(|j| j + "\n")
                        .map_err(|e| {
                            io("failed to encode", &p)(std::io::Error::other(e.to_string()))
                        })?
                };
                files::write_atomic("legacy SBOM", &p, body.as_bytes())
                    .map_err(|e| io("failed to write", &p)(std::io::Error::other(e.to_string())))?;
            }
        } else {
            col.launch_bom = launch_bom;
        }
        Ok(build_metadata(buildpacks, extensions, col))
    }
}

/// Copies a file written for another phase: atomically, 0644 whatever the umask (parents 0755).
pub(crate) fn copy_file(from: &Path, to: &Path) -> std::io::Result<()> {
    use cnb_spec::io::{AtomicFile, FILE_MODE};
    let mut src = std::fs::File::open(from)?;
    let mut out = AtomicFile::create(to, FILE_MODE)?;
    std::io::copy(&mut src, &mut out)?;
    out.commit()
}

/// The build phase's resolved inputs.
#[derive(Debug, Clone)]
pub struct BuildPhase {
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
    /// `-group`.
    pub group_path: PathBuf,
    /// `-layers`.
    pub layers_dir: PathBuf,
    /// `-plan`.
    pub plan_path: PathBuf,
    /// `-platform`.
    pub platform_dir: PathBuf,
    /// `CNB_EXEC_ENV`.
    pub exec_env: String,
    /// The build container's os-release.
    pub os_release: PathBuf,
    /// The lifecycle's environment (filtered by the allow-list for buildpacks).
    pub lifecycle_env: Vec<(String, String)>,
}

impl BuildPhase {
    /// Takes what the builder needs from the resolved inputs and the process environment.
    pub fn from_inputs(inputs: &Inputs) -> Self {
        Self {
            platform_api: inputs.platform_api,
            analyzed_path: inputs.analyzed_path.clone(),
            app_dir: inputs.app_dir.clone(),
            build_config_dir: inputs.build_config_dir.clone(),
            buildpacks_dir: inputs.buildpacks_dir.clone(),
            group_path: inputs.group_path.clone(),
            layers_dir: inputs.layers_dir.clone(),
            plan_path: inputs.plan_path.clone(),
            platform_dir: inputs.platform_dir.clone(),
            exec_env: crate::detect::exec_env(inputs.platform_api),
            os_release: PathBuf::from("/etc/os-release"),
            lifecycle_env: std::env::vars().collect(),
        }
    }

    /// Reads group, plan and analyzed files, builds, writes `<layers>/config/metadata.toml`.
    pub fn execute(&self) -> Result<BuildMetadata, Failure> {
        let read = |e: files::FileError| Failure::new(exit::FAILED, "build", &e);
        let (buildpacks, extensions) = files::read_group(&self.group_path).map_err(read)?;
        let plan = files::read_plan(&self.plan_path).map_err(read)?;
        // BD-02: the group's recorded APIs must be supported.
        for m in &buildpacks {
            if BuildpackApi::parse_supported(&m.api).is_err() {
                return Err(Failure::msg(
                    exit::INCOMPATIBLE_BUILDPACK_API,
                    "build",
                    format!(
                        "parse buildpack API '{}' for buildpack '{}': buildpack API version '{}' is incompatible with the lifecycle ({})",
                        m.api,
                        m.module,
                        m.api,
                        self.group_path.display()
                    ),
                ));
            }
        }
        let analyzed = crate::detect::read_analyzed_or_warn(&self.analyzed_path)
            .map_err(|e| Failure::new(exit::FAILED, "reading analyzed.toml", &e))?;
        let target = crate::detect::target::complete(analyzed.run_image_target(), &self.os_release);
        let ctx = ModuleContext {
            app_dir: self.app_dir.clone(),
            platform_dir: self.platform_dir.clone(),
            build_config_dir: self
                .platform_api
                .at_least(0, 11)
                .then(|| self.build_config_dir.clone()),
            base_env: Env::for_build(self.lifecycle_env.iter().cloned()),
            target_env: crate::detect::target::env_vars(&target),
            exec_env: self.exec_env.clone(),
        };
        let store = DirStore {
            buildpacks_dir: self.buildpacks_dir.clone(),
            extensions_dir: PathBuf::new(),
        };
        let builder = Builder {
            store: &store,
            ctx,
            layers_dir: self.layers_dir.clone(),
            platform_api: self.platform_api,
        };
        let md = builder
            .build(&buildpacks, &extensions, plan)
            .map_err(|e| Failure::new(e.code(), "build", &e))?;
        let path = self.layers_dir.join(cnb_spec::platform::METADATA_PATH);
        md.write(&path, self.platform_api)
            .map_err(|e| Failure::new(exit::BUILD_ERROR, "build", &e))?;
        Ok(md)
    }
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    crate::privilege::refuse_root("build")?;
    BuildPhase::from_inputs(inputs).execute().map(|_| ())
}
