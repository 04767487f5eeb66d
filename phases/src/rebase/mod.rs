//! The rebaser: move an app image onto a new run image (platform spec "rebaser"; checklist §10), on
//! registries and — unlike the reference — on OCI layouts. [`Rebaser::rebase`] does the work; [`run`]
//! is the phase.

pub mod check;

use cnb_spec::exit;
use cnb_spec::labels::{BASE_PREFIX, STACK_ID, STACK_MIXINS, STACK_PREFIX};
use cnb_spec::platform::Report;
use tracing::{info, warn};

use crate::analyze::run_image::{select_run_image, RunImageCandidates};
use crate::analyze::target_of;
use crate::cli::{Inputs, Phase};
use crate::export::access::ImageAccess;
use crate::export::config::NORMALIZED_CREATED;
use crate::export::metadata::{
    metadata_from_label, LifecycleMetadata, RunImageForExport, StackMetadata,
    LIFECYCLE_METADATA_LABEL, REBASABLE_LABEL,
};
use crate::image::oci::History;
use crate::image::{Image, ImageBuilder, ImageError, ImageWriter, SaveReport};
use crate::Failure;
use check::{
    check_new_base_recorded, check_rebasable, check_stack, check_target, ImageTarget,
    RebaseCheckError,
};

/// Rebase errors, naming the image.
#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    /// A validation failed (without `-force`).
    #[error(transparent)]
    Check(#[from] RebaseCheckError),
    /// The app image's run image top layer is not among its layers (RB-04).
    #[error("previous run image top layer '{0}' not found in app image")]
    TopLayerNotFound(String),
    /// An image store error.
    #[error("image '{image}'")]
    Store {
        /// The image.
        image: String,
        /// Cause.
        #[source]
        source: Box<ImageError>,
    },
    /// Encoding failed.
    #[error("encoding image config")]
    Encode(#[source] serde_json::Error),
}

/// The rebased image, ready to be saved under each name.
pub struct Rebased {
    /// The new image: the new base's layers, then the app's own (blobs taken from both images).
    pub image: ImageBuilder,
    /// The new lifecycle metadata.
    pub metadata: LifecycleMetadata,
}

/// The rebaser.
pub struct Rebaser {
    /// `-force`.
    pub force: bool,
}

fn to_check_target(t: &cnb_spec::platform::TargetMetadata) -> ImageTarget {
    let d = t.distro.clone().unwrap_or_default();
    ImageTarget {
        os: t.os.clone(),
        arch: t.arch.clone(),
        arch_variant: t.arch_variant.clone(),
        distro_name: d.name,
        distro_version: d.version,
    }
}

impl Rebaser {
    fn enforce(&self, r: Result<(), RebaseCheckError>) -> Result<(), RebaseError> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if self.force => {
                warn!("{e}");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Rebases `app` onto `new_base` (named `new_base_name`), RB-03…RB-07.
    pub fn rebase(
        &self,
        app: &Image,
        new_base: &Image,
        new_base_name: &str,
    ) -> Result<Rebased, RebaseError> {
        let store = |image: &Image| {
            let name = image.name().to_string();
            move |source| RebaseError::Store {
                image: name,
                source: Box::new(source),
            }
        };
        let mut meta = metadata_from_label(app.label(LIFECYCLE_METADATA_LABEL));
        let app_api = app
            .config()
            .env_var("CNB_PLATFORM_API")
            .and_then(|v| v.parse::<cnb_spec::api::Version>().ok());
        let new_style = app_api.is_some_and(|v| v >= cnb_spec::api::Version::new(0, 12));
        if new_style {
            self.enforce(check_rebasable(app.label(REBASABLE_LABEL)))?;
            self.enforce(check_target(
                &to_check_target(&target_of(app)),
                &to_check_target(&target_of(new_base)),
            ))?;
            let recorded = RunImageCandidates {
                image: meta.run_image.image.clone(),
                mirrors: meta.run_image.mirrors.clone(),
            };
            let stack = meta.stack.as_ref().map(|s| RunImageCandidates {
                image: s.run_image.image.clone(),
                mirrors: s.run_image.mirrors.clone(),
            });
            let json = serde_json::to_string(&meta.run_image).unwrap_or_default();
            let known = check_new_base_recorded(new_base_name, &recorded, &json).is_ok()
                || stack.as_ref().is_some_and(|s| s.contains(new_base_name));
            if !known {
                self.enforce(check_new_base_recorded(new_base_name, &recorded, &json))?;
                meta.run_image.image = new_base_name.to_string();
                meta.run_image.mirrors = Vec::new();
                meta.stack = Some(StackMetadata {
                    run_image: RunImageForExport {
                        image: meta.run_image.image.clone(),
                        mirrors: Vec::new(),
                    },
                });
            }
        } else {
            let mixins = |i: &Image| -> Vec<String> {
                i.label(STACK_MIXINS)
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or_default()
            };
            self.enforce(check_stack(
                app.label(STACK_ID),
                new_base.label(STACK_ID),
                &mixins(app),
                &mixins(new_base),
            ))?;
        }

        // RB-04: swap the layers up to and including the old top layer.
        let top = meta.run_image.top_layer.clone();
        let app_ids = app.diff_ids();
        let idx = app_ids
            .iter()
            .position(|l| l.as_str() == top)
            .ok_or_else(|| RebaseError::TopLayerNotFound(top.clone()))?;
        let app_layers = app_ids.len() - idx - 1;
        let new_layers = new_base.diff_ids().len();
        let mut image = ImageBuilder::from_base(app)
            .map_err(store(app))?
            .normalize();
        image
            .replace_base_layers(idx + 1, new_base)
            .map_err(store(new_base))?;

        meta.run_image.top_layer = new_base
            .top_layer()
            .map(ToString::to_string)
            .unwrap_or_default();
        meta.run_image.reference = new_base.identifier();

        let mut cfg = app.config().clone();
        let base_cfg = new_base.config();
        cfg.architecture = base_cfg.architecture.clone();
        cfg.os = base_cfg.os.clone();
        cfg.os_version = base_cfg.os_version.clone();
        // RB-07: constant created; history: new base entries then the app's own.
        let app_hist = cfg.history.clone().unwrap_or_default();
        let app_tail: Vec<History> = if app_hist.len() == app_ids.len() {
            app_hist[idx + 1..].to_vec()
        } else {
            vec![History::default(); app_layers]
        };
        let base_hist: Vec<History> = base_cfg
            .history
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.empty_layer != Some(true))
            .collect();
        let base_hist = if base_hist.len() == new_layers {
            base_hist
        } else {
            vec![History::default(); new_layers]
        };
        let history: Vec<History> = base_hist
            .into_iter()
            .chain(app_tail)
            .map(|mut h| {
                h.created = Some(NORMALIZED_CREATED.to_string());
                h
            })
            .collect();
        cfg.history = Some(history);
        cfg.created = Some(NORMALIZED_CREATED.to_string());
        // RB-06: stack/base labels from the new base; updated lifecycle label.
        let mut c = cfg.config.clone().unwrap_or_default();
        let mut labels = c.labels.clone().unwrap_or_default();
        labels.retain(|k, _| !k.starts_with(STACK_PREFIX) && !k.starts_with(BASE_PREFIX));
        for (k, v) in base_cfg.labels() {
            if k.starts_with(STACK_PREFIX) || k.starts_with(BASE_PREFIX) {
                labels.insert(k, v);
            }
        }
        let label = serde_json::to_string(&meta)
            .map(cnb_spec::io::go_json_escape)
            .map_err(RebaseError::Encode)?;
        labels.insert(LIFECYCLE_METADATA_LABEL.to_string(), label);
        c.labels = Some(labels);
        cfg.config = Some(c);
        image.set_config(cfg);
        Ok(Rebased {
            image,
            metadata: meta,
        })
    }
}

/// Writes a rebased image through `dest`, taking blobs from the new base and the app image.
pub fn save(dest: &dyn ImageWriter, rebased: &Rebased) -> Result<SaveReport, ImageError> {
    rebased.image.save(dest)
}

/// G-17: while still running as the invoking user (often root, with a root-only docker config or
/// credential helper), resolve the credentials of every registry named on the command line — the images
/// to write, the previous image and `-run-image`. Run images found later in the app image's metadata
/// (mirrors) use what the keychain read at start-up (`CNB_REGISTRY_AUTH`, the docker config file), like
/// the reference, which builds its keychain from the same list.
fn resolve_credentials_now(access: &ImageAccess, inputs: &Inputs) {
    let refs: Vec<&String> = inputs
        .output_images
        .iter()
        .chain(&inputs.additional_tags)
        .chain(&inputs.previous_image)
        .chain(&inputs.run_image)
        .collect();
    access.resolve_credentials(&refs);
}

fn fail(e: &(dyn std::error::Error + 'static)) -> Failure {
    Failure::new(exit::REBASE_ERROR, "rebase", e)
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let access = ImageAccess::from_inputs(inputs).map_err(|e| e.failure())?;
    resolve_credentials_now(&access, inputs);
    crate::privilege::ensure_privileges(Phase::Rebaser, inputs)?;
    let Some(first) = inputs.output_images.first().cloned() else {
        return Err(Failure::msg(
            exit::INVALID_ARGS,
            "parse arguments",
            "at least one image argument is required",
        ));
    };
    let app_name = inputs
        .previous_image
        .clone()
        .unwrap_or_else(|| first.clone());
    let app = access
        .open(&app_name)
        .map_err(|e| fail(&e))?
        .ok_or_else(|| {
            Failure::msg(
                exit::REBASE_ERROR,
                "access image to rebase",
                format!("image '{app_name}' not found"),
            )
        })?;
    let meta = metadata_from_label(app.label(LIFECYCLE_METADATA_LABEL));
    let new_base_name = match inputs.run_image.clone().filter(|s| !s.is_empty()) {
        Some(r) => r,
        None => {
            let mut cands = RunImageCandidates {
                image: meta.run_image.image.clone(),
                mirrors: meta.run_image.mirrors.clone(),
            };
            if cands.image.is_empty() {
                if let Some(s) = &meta.stack {
                    cands = RunImageCandidates {
                        image: s.run_image.image.clone(),
                        mirrors: s.run_image.mirrors.clone(),
                    };
                }
            }
            let layout = access.is_layout();
            select_run_image(&cands, &first, |n| {
                layout || access.open(n).map(|o| o.is_some()).unwrap_or(false)
            })
            .map_err(|_| {
                Failure::msg(
                    exit::INVALID_ARGS,
                    "resolve inputs",
                    "-run-image is required when there is no run image metadata available",
                )
            })?
        }
    };
    let new_base = access
        .open(&new_base_name)
        .map_err(|e| fail(&e))?
        .ok_or_else(|| {
            Failure::msg(
                exit::REBASE_ERROR,
                "rebase",
                format!("new base image '{new_base_name}' not found"),
            )
        })?;
    info!("Rebasing {app_name} on run image {new_base_name}");
    let rebased = Rebaser {
        force: inputs.force_rebase,
    }
    .rebase(&app, &new_base, &new_base_name)
    .map_err(|e| fail(&e))?;
    let mut names = vec![first];
    names.extend(inputs.additional_tags.iter().cloned());
    let mut tags = Vec::new();
    let mut saved_as = None;
    for name in &names {
        let saved = access.writer(name).and_then(|d| save(d.as_ref(), &rebased));
        match saved {
            Ok(r) => {
                info!("Saving {name}...");
                tags.push(name.clone());
                saved_as = Some(r);
            }
            Err(e) => warn!("{name} - {e}"),
        }
    }
    let Some(saved) = saved_as else {
        return Err(Failure::msg(
            exit::REBASE_ERROR,
            "rebase",
            "no image could be saved",
        ));
    };
    let report = Report {
        image: crate::export::phase::image_report(
            &access,
            tags,
            saved.has_manifest,
            saved.manifest_digest.as_str(),
            saved.manifest_size,
            saved.image_id.as_str(),
        ),
        build: None,
    };
    report.write(&inputs.report_path).map_err(|e| fail(&e))
}
