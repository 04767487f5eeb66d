//! The rebaser: move an app image onto a new run image (platform spec "rebaser"; checklist §10), on
//! registries and — unlike the reference — on OCI layouts. [`Rebaser::rebase`] does the work; [`run`]
//! is the phase.

pub mod check;

use std::collections::HashMap;

use cnb_spec::exit;
use cnb_spec::labels::{BASE_PREFIX, STACK_ID, STACK_MIXINS, STACK_PREFIX};
use cnb_spec::platform::Report;
use oci_spec::image::{History, ImageConfiguration};
use tracing::{info, warn};

use crate::analyze::run_image::{select_run_image, RunImageCandidates};
use crate::analyze::target_of;
use crate::cli::{Inputs, Phase};
use crate::export::access::ImageAccess;
use crate::export::config::{config_bytes, NORMALIZED_CREATED};
use crate::export::metadata::{
    metadata_from_label, LifecycleMetadata, RunImageForExport, StackMetadata,
    LIFECYCLE_METADATA_LABEL, REBASABLE_LABEL,
};
use crate::export::store::{manifest_bytes, BlobRef, Destination, SourceImage, StoreError};
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
        source: StoreError,
    },
    /// Encoding failed.
    #[error("encoding image config")]
    Encode(#[source] serde_json::Error),
}

/// The rebased image, ready to be saved.
pub struct Rebased {
    /// Config bytes.
    pub config: Vec<u8>,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Blobs with the image that holds each.
    pub blobs: Vec<(usize, BlobRef)>,
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

fn env_of(cfg: &ImageConfiguration, key: &str) -> Option<String> {
    cfg.config()
        .as_ref()
        .and_then(|c| c.env().as_ref())
        .and_then(|env| {
            env.iter()
                .find_map(|e| e.strip_prefix(&format!("{key}=")).map(String::from))
        })
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

    /// Rebases `app` onto `new_base` (named `new_base_name`), RB-03…RB-07. Blob owners in
    /// [`Rebased::blobs`]: 0 = new base, 1 = app image.
    pub fn rebase(
        &self,
        app: &dyn SourceImage,
        new_base: &dyn SourceImage,
        new_base_name: &str,
    ) -> Result<Rebased, RebaseError> {
        let mut meta = metadata_from_label(app.label(LIFECYCLE_METADATA_LABEL).as_deref());
        let app_api = env_of(app.config(), "CNB_PLATFORM_API")
            .and_then(|v| v.parse::<cnb_spec::api::Version>().ok());
        let new_style = app_api.is_some_and(|v| v >= cnb_spec::api::Version::new(0, 12));
        if new_style {
            self.enforce(check_rebasable(app.label(REBASABLE_LABEL).as_deref()))?;
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
            let mixins = |i: &dyn SourceImage| -> Vec<String> {
                i.label(STACK_MIXINS)
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_default()
            };
            self.enforce(check_stack(
                app.label(STACK_ID).as_deref(),
                new_base.label(STACK_ID).as_deref(),
                &mixins(app),
                &mixins(new_base),
            ))?;
        }

        // RB-04: swap the layers up to and including the old top layer.
        let top = meta.run_image.top_layer.clone();
        let idx = app
            .layers()
            .iter()
            .position(|l| l.diff_id == top)
            .ok_or_else(|| RebaseError::TopLayerNotFound(top.clone()))?;
        let app_layers = &app.layers()[idx + 1..];
        let mut blobs: Vec<(usize, BlobRef)> = new_base
            .layers()
            .iter()
            .map(|l| (0, l.blob.clone()))
            .collect();
        blobs.extend(app_layers.iter().map(|l| (1, l.blob.clone())));
        let mut diff_ids: Vec<String> = new_base
            .layers()
            .iter()
            .map(|l| l.diff_id.clone())
            .collect();
        diff_ids.extend(app_layers.iter().map(|l| l.diff_id.clone()));

        meta.run_image.top_layer = new_base
            .layers()
            .last()
            .map(|l| l.diff_id.clone())
            .unwrap_or_default();
        meta.run_image.reference = new_base.identifier();

        let mut cfg = app.config().clone();
        let base_cfg = new_base.config();
        cfg.set_architecture(base_cfg.architecture().clone());
        cfg.set_os(base_cfg.os().clone());
        cfg.set_os_version(base_cfg.os_version().clone());
        let mut rootfs = cfg.rootfs().clone();
        rootfs.set_diff_ids(diff_ids);
        cfg.set_rootfs(rootfs);
        // RB-07: constant created; history: new base entries then the app's own.
        let app_hist = cfg.history().clone().unwrap_or_default();
        let app_tail: Vec<History> = if app_hist.len() == app.layers().len() {
            app_hist[idx + 1..].to_vec()
        } else {
            vec![History::default(); app_layers.len()]
        };
        let base_hist: Vec<History> = base_cfg
            .history()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.empty_layer() != Some(true))
            .collect();
        let base_hist = if base_hist.len() == new_base.layers().len() {
            base_hist
        } else {
            vec![History::default(); new_base.layers().len()]
        };
        let history: Vec<History> = base_hist
            .into_iter()
            .chain(app_tail)
            .map(|mut h| {
                h.set_created(Some(NORMALIZED_CREATED.to_string()));
                h
            })
            .collect();
        cfg.set_history(Some(history));
        cfg.set_created(Some(NORMALIZED_CREATED.to_string()));
        // RB-06: stack/base labels from the new base; updated lifecycle label.
        let mut c = cfg.config().clone().unwrap_or_default();
        let mut labels: HashMap<String, String> = c.labels().clone().unwrap_or_default();
        labels.retain(|k, _| !k.starts_with(STACK_PREFIX) && !k.starts_with(BASE_PREFIX));
        for (k, v) in base_cfg
            .config()
            .as_ref()
            .and_then(|c| c.labels().as_ref())
            .into_iter()
            .flatten()
        {
            if k.starts_with(STACK_PREFIX) || k.starts_with(BASE_PREFIX) {
                labels.insert(k.clone(), v.clone());
            }
        }
        let label = serde_json::to_string(&meta)
            .map(cnb_spec::io::go_json_escape)
            .map_err(RebaseError::Encode)?;
        labels.insert(LIFECYCLE_METADATA_LABEL.to_string(), label);
        c.set_labels(Some(labels));
        cfg.set_config(Some(c));
        let config = config_bytes(&cfg).map_err(RebaseError::Encode)?;
        let blob_refs: Vec<BlobRef> = blobs.iter().map(|(_, b)| b.clone()).collect();
        let manifest = manifest_bytes(&config, &blob_refs).map_err(RebaseError::Encode)?;
        Ok(Rebased {
            config,
            manifest,
            blobs,
            metadata: meta,
        })
    }
}

/// Writes a rebased image to `dest`, copying blobs from their images.
pub fn save(
    dest: &dyn Destination,
    sources: [&dyn SourceImage; 2],
    rebased: &Rebased,
) -> Result<(String, u64), StoreError> {
    for (owner, blob) in &rebased.blobs {
        dest.copy_blob(sources[*owner], blob)?;
    }
    dest.put_image(&rebased.config, &rebased.manifest)
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
    let access = ImageAccess::from_inputs(inputs)
        .map_err(crate::export::access::AccessError::into_failure)?;
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
    let meta = metadata_from_label(app.label(LIFECYCLE_METADATA_LABEL).as_deref());
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
    .rebase(app.as_ref(), new_base.as_ref(), &new_base_name)
    .map_err(|e| fail(&e))?;
    let mut names = vec![first];
    names.extend(inputs.additional_tags.iter().cloned());
    let mut tags = Vec::new();
    let mut digest = String::new();
    let mut size = 0u64;
    for name in &names {
        let saved = access
            .destination(name)
            .and_then(|d| save(d.as_ref(), [new_base.as_ref(), app.as_ref()], &rebased));
        match saved {
            Ok((d, s)) => {
                info!("Saving {name}...");
                tags.push(name.clone());
                digest = d;
                size = s;
            }
            Err(e) => warn!("{name} - {e}"),
        }
    }
    if tags.is_empty() {
        return Err(Failure::msg(
            exit::REBASE_ERROR,
            "rebase",
            "no image could be saved",
        ));
    }
    let report = Report {
        image: crate::export::phase::image_report(&access, tags, &digest, size),
        build: None,
    };
    report.write(&inputs.report_path).map_err(|e| fail(&e))
}
