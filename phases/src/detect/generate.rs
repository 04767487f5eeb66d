//! Generation: run each detected extension's `bin/generate`, collect and validate its Dockerfiles and
//! `extend-config.toml`, lay them out for the extender, and switch the run image when an extension asks
//! to (image extension spec "Phase: Generation", platform spec "detector" outputs; checklist GN-01…GN-10).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cnb_spec::{BuildpackApi, PlatformApi};

use super::dockerfile::{
    select_run_image, validate, validate_extend_config, DockerfileError, DockerfileInfo,
    DockerfileKind,
};
use super::exec::{spawn_retrying, ModuleContext};
use super::files::{buildpack_plan_toml, Analyzed};
use super::model::{filter_met, plan_for, GroupMember, Kind, PlanEntry};
use super::store::{escape_id, DescriptorStore, StoreError};

/// Errors during generation; [`GenerateError::code`] maps them to exit 91/92.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// An extension's `bin/generate` failed (exit 91).
    #[error("extension '{id}@{version}': {} {status}", path.display())]
    ExtensionFailed {
        /// Extension id.
        id: String,
        /// Extension version.
        version: String,
        /// The executable.
        path: PathBuf,
        /// How it ended.
        status: String,
    },
    /// The descriptor could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An output is invalid.
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    /// The extension's environment could not be prepared.
    #[error(transparent)]
    Env(#[from] crate::env::EnvError),
    /// The lifecycle could not prepare or copy files.
    #[error("extension '{id}': {what} {}: {source}", path.display())]
    Io {
        /// Extension id.
        id: String,
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl GenerateError {
    /// 91 when an extension failed, 92 otherwise (12 for an unsupported extension API).
    pub fn code(&self) -> u8 {
        match self {
            GenerateError::ExtensionFailed { .. } => cnb_spec::exit::GENERATE_EXTENSION_ERROR,
            GenerateError::Store(StoreError::UnsupportedApi { .. }) => {
                cnb_spec::exit::INCOMPATIBLE_BUILDPACK_API
            }
            _ => cnb_spec::exit::GENERATE_ERROR,
        }
    }
}

/// The generator: extensions of the detected group in, Dockerfiles out.
pub struct Generator<'a> {
    /// Where descriptors come from.
    pub store: &'a dyn DescriptorStore,
    /// Shared module inputs (app, platform, env, targets).
    pub ctx: &'a ModuleContext,
    /// Platform API (gates the output layout).
    pub platform_api: PlatformApi,
    /// `-generated`.
    pub generated_dir: PathBuf,
    /// Run images known to `run.toml` (for the "not found in run metadata" warning).
    pub known_run_images: Vec<String>,
}

/// What generation changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// `analyzed.toml` with the run image possibly switched or marked extended.
    pub analyzed: Analyzed,
    /// The plan without entries the extensions met.
    pub plan: Vec<PlanEntry>,
    /// The Dockerfiles, in extension order.
    pub dockerfiles: Vec<DockerfileInfo>,
}

fn io_err(
    id: &str,
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> GenerateError {
    let id = id.to_string();
    let path = path.to_path_buf();
    move |source| GenerateError::Io {
        id,
        what,
        path,
        source,
    }
}

/// Our stdout as a child's stdio (module output is passed through, not logged).
pub fn stdout_stdio() -> Stdio {
    use std::os::fd::AsFd;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit())
}

impl Generator<'_> {
    /// Runs generation for `extensions` (group order) against `plan` and `analyzed`.
    pub fn generate(
        &self,
        extensions: &[GroupMember],
        plan: Vec<PlanEntry>,
        mut analyzed: Analyzed,
    ) -> Result<Generated, GenerateError> {
        let flat = self.platform_api.generated_flat_layout();
        let scratch = tempfile::Builder::new()
            .prefix("cnb-extensions-generated.")
            .tempdir()
            .map_err(io_err("", "failed to create temp dir", Path::new("/tmp")))?;
        let out_parent = if flat {
            self.generated_dir.clone()
        } else {
            scratch.path().to_path_buf()
        };
        let mut plan = plan;
        let mut dockerfiles: Vec<DockerfileInfo> = Vec::new();
        for ext in extensions {
            let m = &ext.module;
            tracing::debug!("Running generate for extension {m}");
            let d = self.store.lookup(Kind::Extension, &m.id, &m.version)?;
            let ext_plan = plan_for(&plan, Kind::Extension, &m.id);
            let out_dir = out_parent.join(escape_id(&m.id));
            std::fs::create_dir_all(&out_dir).map_err(io_err(
                &m.id,
                "failed to create output dir",
                &out_dir,
            ))?;
            let bin = d.bin("generate");
            let read_dir = if bin.exists() {
                let plan_dir = tempfile::Builder::new()
                    .prefix(&format!("{}-", escape_id(&m.id)))
                    .tempdir()
                    .map_err(io_err(
                        &m.id,
                        "failed to create plan dir",
                        Path::new("/tmp"),
                    ))?;
                let plan_path = plan_dir.path().join("plan.toml");
                std::fs::write(&plan_path, buildpack_plan_toml(&ext_plan)).map_err(io_err(
                    &m.id,
                    "failed to write plan",
                    &plan_path,
                ))?;
                let extra = [
                    ("CNB_BP_PLAN_PATH", plan_path.to_string_lossy().into_owned()),
                    ("CNB_EXTENSION_DIR", d.root.to_string_lossy().into_owned()),
                    ("CNB_OUTPUT_DIR", out_dir.to_string_lossy().into_owned()),
                    (
                        "CNB_PLATFORM_DIR",
                        self.ctx.platform_dir.to_string_lossy().into_owned(),
                    ),
                ];
                let env = self.ctx.env_for(&self.ctx.base_env, &d, &extra, false)?;
                let mut cmd = Command::new(&bin);
                cmd.arg(&out_dir)
                    .arg(&self.ctx.platform_dir)
                    .arg(&plan_path)
                    .current_dir(&self.ctx.app_dir);
                env.apply_to(&mut cmd);
                cmd.stdin(Stdio::null())
                    .stdout(stdout_stdio())
                    .stderr(stdout_stdio());
                let status = spawn_retrying(&mut cmd)
                    .and_then(|mut c| c.wait())
                    .map_err(|e| GenerateError::ExtensionFailed {
                        id: m.id.clone(),
                        version: m.version.clone(),
                        path: bin.clone(),
                        status: format!("could not be run: {e}"),
                    })?;
                if !status.success() {
                    return Err(GenerateError::ExtensionFailed {
                        id: m.id.clone(),
                        version: m.version.clone(),
                        path: bin.clone(),
                        status: status.to_string(),
                    });
                }
                out_dir.clone()
            } else {
                // Pre-populated output: `<ext>/generate/`. Copy it where the extender looks.
                let pre = d.root.join("generate");
                if flat {
                    copy_tree(&pre, &out_dir).map_err(io_err(&m.id, "failed to copy", &pre))?;
                    out_dir.clone()
                } else {
                    pre
                }
            };

            validate_extend_config(&m.id, &read_dir.join("extend-config.toml"))?;
            for kind in [DockerfileKind::Run, DockerfileKind::Build] {
                let p = read_dir.join(format!("{}.Dockerfile", kind.as_str()));
                if !p.exists() {
                    continue;
                }
                let (info, warnings) = validate(&m.id, kind, &p)?;
                for w in warnings {
                    tracing::warn!("{w}");
                }
                dockerfiles.push(info);
            }
            check_contexts(&m.id, &read_dir)?;
            // GN-08: extensions meet every entry handed to them.
            let met: Vec<String> = ext_plan.iter().map(|r| r.name.clone()).collect();
            plan = filter_met(plan, &met);
            tracing::debug!("Finished running generate for extension {m}");
        }

        let (new_base, extend) = select_run_image(&mut dockerfiles);
        if let Some(base) = new_base {
            let is_new = if self.platform_api.uses_run_toml() {
                base != analyzed.run_image_image()
                    && !crate::analyze::run_image::is_layout_path_of(
                        analyzed.run_image_image(),
                        &base,
                    )
            } else {
                !base.is_empty()
            };
            if is_new {
                if !self.known_run_images.contains(&base) {
                    tracing::warn!("new runtime base image '{base}' not found in run metadata");
                }
                tracing::debug!("Updating analyzed metadata with new run image '{base}'");
                super::files::set_run_image(&mut analyzed, &base, extend);
            }
        }
        if extend {
            super::files::set_run_image_extend(&mut analyzed);
        }
        self.place(&dockerfiles, flat)?;
        Ok(Generated {
            analyzed,
            plan,
            dockerfiles,
        })
    }

    /// GN-03: `[P≥0.13]` outputs are already in `<generated>/<id>/` (ignored run.Dockerfiles renamed);
    /// earlier, copy to `<generated>/<build|run>/<id>/Dockerfile` with `extend-config.toml` alongside.
    fn place(&self, dockerfiles: &[DockerfileInfo], flat: bool) -> Result<(), GenerateError> {
        for d in dockerfiles {
            let ignore = d.kind == DockerfileKind::Run && d.ignore;
            if flat {
                if ignore {
                    let to = PathBuf::from(format!("{}.ignore", d.path.display()));
                    std::fs::rename(&d.path, &to).map_err(io_err(
                        &d.extension_id,
                        "failed to rename",
                        &d.path,
                    ))?;
                }
                continue;
            }
            let dir = self
                .generated_dir
                .join(d.kind.as_str())
                .join(escape_id(&d.extension_id));
            std::fs::create_dir_all(&dir).map_err(io_err(
                &d.extension_id,
                "failed to create",
                &dir,
            ))?;
            let target = dir.join(if ignore {
                "Dockerfile.ignore"
            } else {
                "Dockerfile"
            });
            std::fs::copy(&d.path, &target).map_err(io_err(
                &d.extension_id,
                "failed to copy Dockerfile to",
                &target,
            ))?;
            if let Some(src_dir) = d.path.parent() {
                let cfg = src_dir.join("extend-config.toml");
                if cfg.exists() {
                    let to = dir.join("extend-config.toml");
                    std::fs::copy(&cfg, &to).map_err(io_err(
                        &d.extension_id,
                        "failed to copy extend config to",
                        &to,
                    ))?;
                }
            }
        }
        Ok(())
    }
}

/// GN-07: `context` excludes `context.build` / `context.run`.
fn check_contexts(id: &str, dir: &Path) -> Result<(), GenerateError> {
    let shared = dir.join("context").is_dir();
    let specific = dir.join("context.build").is_dir() || dir.join("context.run").is_dir();
    if shared && specific {
        return Err(GenerateError::Io {
            id: id.to_string(),
            what: "image-specific context dir is provided together with a shared context in",
            path: dir.to_path_buf(),
            source: std::io::Error::other("conflicting context dirs"),
        });
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(from) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    std::fs::create_dir_all(to)?;
    for e in rd {
        let e = e?;
        let ft = e.file_type()?;
        let dst = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            let _ = std::fs::remove_file(&dst);
            std::os::unix::fs::symlink(target, &dst)?;
        } else {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// Whether an extension's API supports generation at all (Buildpack API ≥ 0.9).
pub fn supports_generate(api: BuildpackApi) -> bool {
    api.supports_extensions()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn gn_07_shared_and_specific_context_dirs_conflict() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check_contexts("e", tmp.path()).is_ok());
        std::fs::create_dir_all(tmp.path().join("context")).unwrap();
        assert!(check_contexts("e", tmp.path()).is_ok());
        std::fs::create_dir_all(tmp.path().join("context.run")).unwrap();
        let e = check_contexts("e", tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("image-specific context dir is provided together with a shared context"),
            "{e}"
        );
        assert_eq!(
            GenerateError::ExtensionFailed {
                id: "e".into(),
                version: "1".into(),
                path: PathBuf::new(),
                status: String::new()
            }
            .code(),
            91
        );
    }
}
