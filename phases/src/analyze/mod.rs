//! The analyzer: read the previous and run images, write `analyzed.toml` (platform spec "analyzer";
//! checklist §2). [`Analyzer::analyze`] does the work on resolved inputs; [`run`] is the phase.

pub mod run_image;

use std::path::{Path, PathBuf};

use cnb_spec::exit;
use cnb_spec::platform::{Analyzed, ImageIdentifier, RunImage, RunToml, StackToml, TargetMetadata};
use cnb_spec::PlatformApi;
use tracing::{debug, info};

use crate::archive::{self, ArchiveError, ExtractOptions};
use crate::cache::sha_of;
use crate::cli::{Inputs, Phase};
use crate::export::access::ImageAccess;
use crate::export::metadata::{metadata_from_label, LIFECYCLE_METADATA_LABEL};
use crate::image::registry::{ImageRef, RegistryError};
use crate::image::{Image, ImageError};
use crate::Failure;
use run_image::{select_run_image, RunImageCandidates, RunImageError};

/// Analyzer errors, naming the image.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Reading an image failed.
    #[error("reading image '{image}'")]
    Image {
        /// The image.
        image: String,
        /// Cause.
        #[source]
        source: Box<ImageError>,
    },
    /// The run image does not exist.
    #[error("run image '{0}' not found")]
    RunImageNotFound(String),
    /// The run image config has no OS (AN-07).
    #[error("failed to find OS in run image config of '{0}'")]
    NoOs(String),
    /// Restoring the previous image's SBOM layer failed.
    #[error("restoring SBOM layer '{diff_id}' from previous image '{image}'")]
    Sbom {
        /// The image.
        image: String,
        /// The layer.
        diff_id: String,
        /// Cause.
        #[source]
        source: ArchiveError,
    },
}

/// Target data from an image's config and labels (AN-07).
pub fn target_of(image: &Image) -> TargetMetadata {
    let cfg = image.config();
    TargetMetadata::from_image_config(
        &cfg.os,
        &cfg.architecture,
        cfg.variant.as_deref().unwrap_or_default(),
        |k| image.label(k).map(str::to_string),
    )
}

/// The analyzer on resolved inputs and an image access seam.
pub struct Analyzer<'a> {
    /// Where images are read from.
    pub access: &'a ImageAccess,
    /// `<layers>` (SBOM restore target).
    pub layers_dir: PathBuf,
    /// Platform API.
    pub platform_api: PlatformApi,
    /// `-skip-layers`.
    pub skip_layers: bool,
}

impl Analyzer<'_> {
    /// Reads the previous image (if any) and the run image and returns the `analyzed.toml` content
    /// (AN-04…AN-08). Restores the previous image's SBOM layer unless `-skip-layers` (AN-05).
    pub fn analyze(
        &self,
        previous_image: Option<&str>,
        run_image: &str,
    ) -> Result<Analyzed, AnalyzeError> {
        let mut analyzed = Analyzed {
            previous_image: Some(ImageIdentifier::default()),
            ..Default::default()
        };
        if let Some(name) = previous_image.filter(|s| !s.is_empty()) {
            match self.access.open(name) {
                Ok(Some(prev)) => {
                    analyzed.previous_image = Some(ImageIdentifier {
                        reference: prev.identifier(),
                    });
                    analyzed.metadata = metadata_from_label(prev.label(LIFECYCLE_METADATA_LABEL));
                    self.restore_sbom(&prev, &analyzed)?;
                }
                Ok(None) => info!("Image with name \"{name}\" not found"),
                Err(e) => {
                    // A corrupt or unreadable previous image is ignored (AN-04).
                    info!(
                        "Ignoring previous image \"{name}\": {}",
                        crate::error::chain(&e)
                    );
                }
            }
        }
        let run = self
            .access
            .open(run_image)
            .map_err(|source| AnalyzeError::Image {
                image: run_image.to_string(),
                source: Box::new(source),
            })?
            .ok_or_else(|| AnalyzeError::RunImageNotFound(run_image.to_string()))?;
        let target = target_of(&run);
        let new_api = self.platform_api.uses_run_toml();
        // AN-07: target data (and the OS check) exist from Platform 0.12 on.
        if new_api && target.os.is_empty() {
            return Err(AnalyzeError::NoOs(run_image.to_string()));
        }
        analyzed.run_image = Some(RunImage {
            reference: run.identifier(),
            image: if new_api {
                recorded_name(self.access, run_image)
            } else {
                String::new()
            },
            extend: false,
            target: new_api.then_some(target),
        });
        Ok(analyzed)
    }

    fn restore_sbom(&self, prev: &Image, analyzed: &Analyzed) -> Result<(), AnalyzeError> {
        if self.skip_layers || !self.platform_api.sboms_in_layers_dir() {
            return Ok(());
        }
        let Some(diff_id) = analyzed.metadata.sbom.as_ref().and_then(sha_of) else {
            return Ok(());
        };
        let Some(layer) = diff_id.parse().ok().and_then(|d| prev.layer_by_diff_id(&d)) else {
            return Ok(());
        };
        info!("Restoring data for SBOM from previous image");
        let err = |source| AnalyzeError::Sbom {
            image: prev.name().to_string(),
            diff_id: diff_id.to_string(),
            source,
        };
        let blob = prev
            .open_blob(&layer.descriptor.digest)
            .map_err(|e| AnalyzeError::Image {
                image: prev.name().to_string(),
                source: Box::new(e),
            })?;
        let dest = self.layers_dir.join("sbom").join("launch");
        cnb_spec::io::create_dirs(&dest).map_err(|e| {
            err(ArchiveError::Extract {
                entry: "<root>".into(),
                root: dest.clone(),
                source: e,
            })
        })?;
        // The previous image's SBOM layer is buildpack output: relocated from `sbom/launch`, no
        // devices, setuid bits or hard links leaving it.
        let stats = archive::extract(blob, &dest, &ExtractOptions::untrusted(&["sbom", "launch"]))
            .map_err(err)?;
        debug!("Restored SBOM layer: {stats:?}");
        Ok(())
    }
}

/// Reads the run image candidates for this Platform API (RI-02: a missing file is empty).
pub fn run_image_candidates(inputs: &Inputs) -> Result<RunImageCandidates, Failure> {
    let fail = |e: &cnb_spec::FileError| Failure::new(exit::INVALID_ARGS, "resolve inputs", e);
    if inputs.platform_api.uses_run_toml() {
        let path = &inputs.run_path;
        match RunToml::read_optional(path).map_err(|e| fail(&e))? {
            Some(run) => Ok(run
                .images
                .first()
                .map(|e| RunImageCandidates {
                    image: e.image.clone(),
                    mirrors: e.mirrors.clone(),
                })
                .unwrap_or_default()),
            None => {
                info!("No run metadata found at path \"{}\"", path.display());
                Ok(RunImageCandidates::default())
            }
        }
    } else {
        match StackToml::read_optional(&inputs.stack_path).map_err(|e| fail(&e))? {
            Some(s) => Ok(RunImageCandidates {
                image: s.run_image.image,
                mirrors: s.run_image.mirrors,
            }),
            None => {
                info!(
                    "No stack metadata found at path \"{}\"",
                    inputs.stack_path.display()
                );
                Ok(RunImageCandidates::default())
            }
        }
    }
}

/// Resolves the run image name: `-run-image`, else run.toml/stack.toml per RI-01 (exit 3 on failure).
pub fn resolve_run_image(inputs: &Inputs, access: &ImageAccess) -> Result<String, Failure> {
    if let Some(r) = inputs.run_image.as_ref().filter(|s| !s.is_empty()) {
        return Ok(r.clone());
    }
    let candidates = run_image_candidates(inputs)?;
    let app = inputs
        .output_images
        .first()
        .map(String::as_str)
        .unwrap_or("");
    // Layout images are always "readable" (AN-09).
    let readable =
        |name: &str| access.is_layout() || access.open(name).map(|o| o.is_some()).unwrap_or(false);
    select_run_image(&candidates, app, readable).map_err(|e: RunImageError| {
        Failure::msg(exit::INVALID_ARGS, "resolve inputs", e.to_string())
    })
}

fn analyze_failure(e: &(dyn std::error::Error + 'static)) -> Failure {
    Failure::new(exit::ANALYZE_ERROR, "analyze", e)
}

/// Every registry image the analyzer may touch: outputs, tags, previous, run (and its mirrors), cache.
fn registry_images(inputs: &Inputs) -> Vec<String> {
    let mut images: Vec<String> = inputs.output_images.clone();
    images.extend(inputs.additional_tags.iter().cloned());
    images.extend(inputs.previous_image.clone());
    images.extend(inputs.run_image.clone());
    images.extend(inputs.cache_image.clone());
    // Read quietly: resolve_run_image reads these files again and logs what it finds.
    let candidates = if inputs.platform_api.uses_run_toml() {
        RunToml::read_optional(&inputs.run_path)
            .ok()
            .flatten()
            .and_then(|r| r.images.into_iter().next())
            .map(|e| (e.image, e.mirrors))
    } else {
        StackToml::read_optional(&inputs.stack_path)
            .ok()
            .flatten()
            .map(|s| (s.run_image.image, s.run_image.mirrors))
    };
    if let Some((image, mirrors)) = candidates {
        images.push(image);
        images.extend(mirrors);
    }
    images
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let access = ImageAccess::from_inputs(inputs).map_err(|e| e.failure())?;
    // G-17: credential helpers and root-only docker configs are read before privileges drop.
    // G-17: credential helpers run now, before privileges are dropped.
    access.resolve_credentials(&registry_images(inputs));
    crate::privilege::ensure_privileges(Phase::Analyzer, inputs)?;
    let run_image = resolve_run_image(inputs, &access)?;
    check_registry_access(inputs, &access, &run_image)?;
    debug!("Run image: {run_image}");
    let analyzer = Analyzer {
        access: &access,
        layers_dir: inputs.layers_dir.clone(),
        platform_api: inputs.platform_api,
        skip_layers: inputs.skip_layers,
    };
    let analyzed = analyzer
        .analyze(inputs.previous_image.as_deref(), &run_image)
        .map_err(|e| analyze_failure(&e))?;
    write_analyzed(&analyzed, &inputs.analyzed_path)
}

/// How `analyzed.toml` records an image name: the name, or in layout mode the layout path the image was
/// read from (`<layout-dir>/index.docker.io/library/busybox/latest`), as the reference writes it.
fn recorded_name(access: &ImageAccess, name: &str) -> String {
    access
        .layout_path(name)
        .map_or_else(|| name.to_string(), |p| p.display().to_string())
}

/// AN-03: read access to the previous and run images; read+write access to the output image, every
/// `-tag` and the cache image (registry mode only; layout images are always accessible).
fn check_registry_access(
    inputs: &Inputs,
    access: &ImageAccess,
    run_image: &str,
) -> Result<(), Failure> {
    let Some(client) = access.registry_client_of() else {
        return Ok(());
    };
    let parse = |r: &str| {
        ImageRef::parse(r).map_err(|e| Failure::new(exit::INVALID_ARGS, "resolve inputs", &e))
    };
    // The reference's message; when the registry could not be asked at all (TLS, connection), the
    // cause follows so that the failure is clear.
    let check = |kind: &str, r: &str, res: Result<bool, RegistryError>| match res {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::msg(
            exit::ANALYZE_ERROR,
            "initialize analyzer",
            format!("failed to ensure registry {kind} access to {r}"),
        )),
        Err(e) => Err(Failure::msg(
            exit::ANALYZE_ERROR,
            "initialize analyzer",
            format!(
                "failed to ensure registry {kind} access to {r}: {}",
                crate::error::chain(&e)
            ),
        )),
    };
    // With -daemon, the images live in the daemon; only the cache image is in a registry.
    let daemon = access.kind() == crate::image::StoreKind::Daemon;
    let mut read: Vec<&str> = vec![run_image];
    read.extend(inputs.previous_image.as_deref());
    for r in read.into_iter().filter(|r| !r.is_empty() && !daemon) {
        check("read", r, client.check_read_access(&parse(r)?))?;
    }
    let mut write: Vec<&str> = Vec::new();
    if !daemon {
        write.extend(inputs.output_images.iter().map(String::as_str));
        write.extend(inputs.additional_tags.iter().map(String::as_str));
    }
    write.extend(inputs.cache_image.as_deref());
    for r in write.into_iter().filter(|r| !r.is_empty()) {
        check("read/write", r, client.check_write_access(&parse(r)?))?;
    }
    Ok(())
}

/// Writes `analyzed.toml` (atomic; AN-08), failing with the analyze exit code.
pub fn write_analyzed(analyzed: &Analyzed, path: &Path) -> Result<(), Failure> {
    analyzed.write(path).map_err(|e| analyze_failure(&e))
}
