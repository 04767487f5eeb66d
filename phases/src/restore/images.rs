//! The restorer's image work before layer restoration (platform spec "restorer"; checklist RS-04…RS-07):
//! the run image access check (`[P≥0.14]`), the build image's manifest and config for the extender
//! (`-build-image`, `[P≥0.10]`), a sparse pull of a run image that extensions extend (`[P≥0.12]`, not in
//! layout mode), and run image target data filled in when extensions may have switched it (`[P≥0.10]`).
//!
//! A "sparse" image is an OCI layout holding only the manifest and config blobs (digest preserved, no
//! layer blobs) at `<kaniko>/cache/base/<manifest digest>/` — where `extender` looks for its base.

use std::io;
use std::path::PathBuf;

use cnb_spec::platform::{Analyzed, Group, ImageIdentifier, RunImage, RunToml, TargetMetadata};
use cnb_spec::PlatformApi;
use tracing::{debug, warn};

use crate::analyze::run_image::RunImageCandidates;
use crate::export::access::ImageAccess;
use crate::image::layout::{Layout, LayoutError};
use crate::image::oci::Descriptor;
use crate::image::registry::ImageRef;
use crate::image::{Image, ImageError};

/// Errors of the restorer's image work; each names the image or file.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// `run.toml` could not be read.
    #[error("reading run metadata")]
    RunToml(#[source] Box<cnb_spec::FileError>),
    /// RS-04: the run image the analyzer chose can no longer be read.
    #[error("selected run image '{0}' is not accessible")]
    RunImageNotAccessible(String),
    /// An image could not be read.
    #[error("pull {what} image {image}")]
    Pull {
        /// `builder` or `run`.
        what: &'static str,
        /// The image.
        image: String,
        /// Cause.
        #[source]
        source: Box<ImageError>,
    },
    /// The image is not there.
    #[error("get {what} image {image}: image not found")]
    NotFound {
        /// `builder` or `run`.
        what: &'static str,
        /// The image.
        image: String,
    },
    /// A reference could not be parsed.
    #[error("invalid image reference '{image}'")]
    Reference {
        /// The reference.
        image: String,
        /// Cause.
        #[source]
        source: Box<crate::image::registry::RegistryError>,
    },
    /// The sparse layout could not be written.
    #[error("saving image metadata of {image} to '{}'", path.display())]
    Save {
        /// The image.
        image: String,
        /// The layout directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Box<LayoutError>,
    },
    /// The kaniko cache directory could not be created.
    #[error("creating cache directory '{}'", path.display())]
    KanikoDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The run image config has no OS.
    #[error("failed to find OS in run image config of '{0}'")]
    NoOs(String),
}

/// The restorer's image step on resolved inputs.
pub struct RestoreImages<'a> {
    /// How images are reached (registry or layouts).
    pub access: &'a ImageAccess,
    /// Platform API.
    pub platform_api: PlatformApi,
    /// `/kaniko` (fixed by the spec; an input so tests can point elsewhere).
    pub kaniko_dir: PathBuf,
    /// `-run` (`run.toml`), read for the `[P≥0.14]` access check.
    pub run_path: PathBuf,
    /// `-build-image`, if given.
    pub build_image: Option<String>,
}

/// What the step did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImagesSummary {
    /// Sparse layouts written under `<kaniko>/cache/base`.
    pub saved: Vec<PathBuf>,
    /// Whether `run-image` in `analyzed.toml` was updated.
    pub run_image_updated: bool,
}

/// Whether a target is filled in (has an OS), as the reference decides (RS-07).
fn is_populated(target: Option<&TargetMetadata>) -> bool {
    target.is_some_and(|t| !t.os.is_empty())
}

impl RestoreImages<'_> {
    /// Runs RS-05, RS-04, RS-06/RS-07 in the reference's order and updates `analyzed` in place.
    pub fn apply(
        &self,
        analyzed: &mut Analyzed,
        group: &Group,
    ) -> Result<ImagesSummary, ImagesError> {
        let mut summary = ImagesSummary::default();
        // RS-05: the build image's manifest and config for `extender -kind=build`.
        if let Some(name) = self
            .build_image
            .as_deref()
            .filter(|s| !s.is_empty() && self.platform_api.supports_extensions())
        {
            debug!("Pulling builder image metadata for {name}...");
            match self
                .open("builder", name)
                .and_then(|image| Ok((self.save_sparse(&image)?, image)))
            {
                Ok((path, image)) => {
                    summary.saved.push(path);
                    analyzed.build_image = Some(ImageIdentifier {
                        reference: image.identifier(),
                    });
                }
                // The build image is "only needed when using image extensions" (platform spec): without
                // extensions in the group an unreadable one does not fail the build (the reference
                // fails; platforms such as the Tekton task pass -build-image unconditionally).
                Err(e) if !group.has_extensions() => {
                    warn!(
                        "Not recording build image {name} (no image extensions in the group): {}",
                        crate::error::chain(&e)
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let Some(run) = analyzed.run_image.as_mut() else {
            return Ok(summary);
        };
        // RS-04: the image the analyzer chose must still be readable; no re-selection of mirrors.
        if self.platform_api.restorer_reads_run_toml() {
            self.check_run_image_access(&run.image)?;
        }
        if run.extend && self.platform_api.supports_run_image_extension() {
            // RS-06: the run image's manifest and config for `extender -kind=run`, from a registry or
            // (unlike the reference, lifecycle#1102) from the layout directory.
            let name = run_image_name(run).to_string();
            debug!("Pulling run image metadata for {name}...");
            let image = self.open("run", &name)?;
            summary.saved.push(self.save_sparse(&image)?);
            self.update_run_image(run, &image)?;
            summary.run_image_updated = true;
        } else if self.platform_api.supports_extensions()
            && group.has_extensions()
            && !is_populated(run.target.as_ref())
        {
            // RS-07: an extension may have switched the run image; record its digest and target.
            let name = run_image_name(run).to_string();
            debug!("Updating run image info in analyzed metadata for {name}...");
            let image = self.open("run", &name)?;
            self.update_run_image(run, &image)?;
            summary.run_image_updated = true;
        }
        Ok(summary)
    }

    /// RS-04: when `run.toml` lists `name` (image or mirror, digest ignored), it must be readable.
    fn check_run_image_access(&self, name: &str) -> Result<(), ImagesError> {
        let listed = RunToml::read_optional(&self.run_path)
            .map_err(|e| ImagesError::RunToml(Box::new(e)))?
            .is_some_and(|run| {
                run.images.iter().any(|e| {
                    RunImageCandidates {
                        image: e.image.clone(),
                        mirrors: e.mirrors.clone(),
                    }
                    .contains(name)
                })
            });
        if !listed {
            return Ok(());
        }
        if self.access.is_layout() {
            // Layout images are always "readable" (AN-09).
            return Ok(());
        }
        // Readable as the analyzer's mirror selection means it (RI-01): the image exists and the
        // keychain's credentials may pull it.
        let readable = matches!(self.access.open(name), Ok(Some(_)));
        if readable {
            Ok(())
        } else {
            Err(ImagesError::RunImageNotAccessible(name.to_string()))
        }
    }

    /// Sets `reference` to the image's identifier and (`[P≥0.12]`) its target data.
    fn update_run_image(&self, run: &mut RunImage, image: &Image) -> Result<(), ImagesError> {
        debug!("Run image info in analyzed metadata was: {run:?}");
        run.reference = image.identifier();
        if self.platform_api.uses_run_toml() {
            let target = crate::analyze::target_of(image);
            if target.os.is_empty() {
                return Err(ImagesError::NoOs(image.name().to_string()));
            }
            run.target = Some(target);
        } else {
            run.target = None;
        }
        debug!("Run image info in analyzed metadata is: {run:?}");
        Ok(())
    }

    /// Opens `name` from the registry, or in layout mode from the layout directory (a recorded
    /// `<layout path>@sha256:…` identifier is opened directly).
    fn open(&self, what: &'static str, name: &str) -> Result<Image, ImagesError> {
        let pull = |source| ImagesError::Pull {
            what,
            image: name.to_string(),
            source: Box::new(source),
        };
        if !self.access.is_layout() {
            ImageRef::parse(name).map_err(|e| ImagesError::Reference {
                image: name.to_string(),
                source: Box::new(e),
            })?;
        }
        match self.access.open(name) {
            Ok(Some(i)) => Ok(i),
            Ok(None) => Err(ImagesError::NotFound {
                what,
                image: name.to_string(),
            }),
            Err(e) => Err(pull(e)),
        }
    }

    /// Writes the manifest and config of `image` (bytes unchanged, so the digest is preserved) as an
    /// OCI layout at `<kaniko>/cache/base/<manifest digest>/`; layer blobs are not fetched.
    pub fn save_sparse(&self, image: &Image) -> Result<PathBuf, ImagesError> {
        let base = self.kaniko_dir.join("cache").join("base");
        cnb_spec::io::create_dirs(&base).map_err(|source| ImagesError::KanikoDir {
            path: base.clone(),
            source,
        })?;
        let path = base.join(image.manifest_digest().as_str());
        debug!("Saving image metadata to {}...", path.display());
        let save = |e| ImagesError::Save {
            image: image.name().to_string(),
            path: path.clone(),
            source: Box::new(e),
        };
        let layout = Layout::create(&path).map_err(save)?;
        layout.write_blob(image.config_bytes()).map_err(save)?;
        let (digest, _) = layout.write_blob(image.manifest_bytes()).map_err(save)?;
        let descriptor = Descriptor::new(
            image.manifest_media_type(),
            digest,
            image.manifest_bytes().len() as u64,
        );
        layout.add_manifest(&descriptor, &[]).map_err(save)?;
        Ok(path)
    }
}

/// The name to open for the run image: `image` (as provided or switched by an extension), else the
/// recorded `reference` (Platform APIs before 0.12 record no `image`).
fn run_image_name(run: &RunImage) -> &str {
    if run.image.is_empty() {
        &run.reference
    } else {
        &run.image
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rs07_populated_means_an_os() {
        assert!(!is_populated(None));
        assert!(!is_populated(Some(&TargetMetadata::default())));
        let t = TargetMetadata {
            os: "linux".into(),
            ..Default::default()
        };
        assert!(is_populated(Some(&t)));
    }

    #[test]
    fn run_image_name_falls_back_to_reference() {
        let mut r = RunImage {
            reference: "reg/run@sha256:00".into(),
            ..Default::default()
        };
        assert_eq!(run_image_name(&r), "reg/run@sha256:00");
        r.image = "reg/run:v1".into();
        assert_eq!(run_image_name(&r), "reg/run:v1");
    }
}
