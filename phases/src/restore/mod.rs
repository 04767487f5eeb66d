//! The restorer: restore layer metadata and cached layers before the build (platform spec "restorer";
//! checklist §5). [`Restorer::restore`] works on resolved inputs and a [`Cache`]; [`run`] is the phase.
//! A missing, empty or corrupt cache only warns: the build goes on without it.

pub mod images;
pub mod plan;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cnb_spec::buildpack::LayerName;
use cnb_spec::exit;
use cnb_spec::platform::{Analyzed, Group};
use cnb_spec::PlatformApi;
use tracing::{debug, info, warn};

use crate::archive::{self, ExtractOptions};
use crate::cache::image::ImageCache;
use crate::cache::{sha_of, Cache, CacheMetadata, VolumeCache};
use crate::cli::{Inputs, Phase};
use crate::export::access::ImageAccess;
use crate::export::metadata::LifecycleMetadata;
use crate::export::phase::group_buildpacks;
use crate::export::plan::GroupBuildpack;
use crate::Failure;
use plan::{plan_restore, MetadataSource};

/// Restorer errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Writing restored metadata failed.
    #[error("writing '{}'", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// What was restored (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// `<bp>:<layer>` whose metadata was restored.
    pub metadata: Vec<String>,
    /// `<bp>:<layer>` whose data came back from the cache.
    pub data: Vec<String>,
    /// `<bp>:<layer>` skipped because the cache could not provide them.
    pub skipped: Vec<String>,
}

/// The restorer on resolved inputs.
pub struct Restorer<'a> {
    /// `<layers>`.
    pub layers_dir: PathBuf,
    /// The group.
    pub group: &'a [GroupBuildpack],
    /// Platform API.
    pub platform_api: PlatformApi,
    /// `-skip-layers`.
    pub skip_layers: bool,
}

fn write_err(path: &Path, source: io::Error) -> RestoreError {
    RestoreError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes a layer's directory and files; `name` is one path component, so this stays in `bp_dir`.
fn remove_layer(bp_dir: &Path, name: &LayerName) {
    let _ = fs::remove_dir_all(bp_dir.join(name));
    let _ = fs::remove_file(bp_dir.join(name.toml_file()));
    let _ = fs::remove_file(bp_dir.join(format!("{name}.sha")));
}

impl Restorer<'_> {
    /// Restores `store.toml`s, layer metadata and cached layer data (RS-09…RS-12).
    pub fn restore(
        &self,
        app: &LifecycleMetadata,
        cache: Option<&dyn Cache>,
    ) -> Result<RestoreSummary, RestoreError> {
        let mut summary = RestoreSummary::default();
        // RS-09: store.toml, also with -skip-layers.
        for bp in self.group {
            if let Some(store) = app.buildpack(&bp.id).and_then(|b| b.store.as_ref()) {
                let path = self.layers_dir.join(bp.escaped_id()).join("store.toml");
                store
                    .write(&path)
                    .map_err(|e| write_err(&path, io::Error::other(e.to_string())))?;
            }
        }
        if self.skip_layers {
            info!("Skipping buildpack layer analysis");
            return Ok(summary);
        }
        let cache_meta: CacheMetadata = match cache {
            Some(c) => c.retrieve_metadata().unwrap_or_else(|e| {
                warn!("Ignoring cache '{}': {}", c.name(), crate::error::chain(&e));
                CacheMetadata::default()
            }),
            None => CacheMetadata::default(),
        };
        let restores = plan_restore(
            self.group,
            app,
            &cache_meta,
            self.platform_api.at_least(0, 14),
        );
        for r in &restores {
            let Some(bp) = self.group.get(r.buildpack) else {
                continue;
            };
            let bp_dir = self.layers_dir.join(bp.escaped_id());
            let id = format!("{}:{}", bp.id, r.name);
            let from = match r.source {
                MetadataSource::AppImage => "app image",
                MetadataSource::Cache => "cache",
            };
            info!("Restoring metadata for \"{id}\" from {from}");
            cnb_spec::io::create_dirs(&bp_dir).map_err(|e| write_err(&bp_dir, e))?;
            let toml_path = bp_dir.join(r.name.toml_file());
            let mut doc = toml::Table::new();
            doc.insert(
                "metadata".into(),
                toml::Value::Table(r.metadata.data.clone()),
            );
            let text = cnb_spec::io::to_toml(&toml_path, &doc)
                .map_err(|e| write_err(&toml_path, io::Error::other(e)))?;
            write_atomic(&toml_path, text.as_bytes())?;
            summary.metadata.push(id.clone());

            if r.wrong_sha() {
                info!("Removing \"{id}\", wrong sha");
                remove_layer(&bp_dir, &r.name);
                continue;
            }
            if !r.restore_data() {
                continue;
            }
            let Some(cache) = cache else { continue };
            let restored = cache
                .verify_layer(&r.expected_sha)
                .and_then(|()| cache.retrieve_layer(&r.expected_sha));
            let result = restored
                .map_err(|e| crate::error::chain(&e))
                .and_then(|reader| {
                    let escaped = bp.escaped_id();
                    let opts = ExtractOptions::untrusted(&[&escaped, r.name.as_str()]);
                    extract_into(reader, &bp_dir.join(&r.name), &opts)
                });
            match result {
                Ok(_) => {
                    info!("Restoring data for \"{id}\" from cache");
                    summary.data.push(id);
                }
                Err(e) => {
                    warn!("Skipping restore for layer {id}: {e}");
                    // Without its data the layer must be rebuilt: drop the metadata too.
                    remove_layer(&bp_dir, &r.name);
                    summary.skipped.push(id);
                }
            }
        }
        if self.platform_api.sboms_in_layers_dir() {
            self.restore_sboms(&cache_meta, cache);
        }
        Ok(summary)
    }

    /// RS-12: the cache SBOM layer, then layer SBOMs copied next to their layers; `<layers>/sbom` removed.
    fn restore_sboms(&self, meta: &CacheMetadata, cache: Option<&dyn Cache>) {
        let sbom_root = self.layers_dir.join("sbom");
        if let (Some(sha), Some(cache)) = (sha_of(&meta.sbom), cache) {
            let r = cache
                .retrieve_layer(sha)
                .map_err(|e| crate::error::chain(&e))
                .and_then(|rd| {
                    let opts = ExtractOptions::untrusted(&["sbom", "cache"]);
                    extract_into(rd, &sbom_root.join("cache"), &opts)
                });
            if let Err(e) = r {
                warn!("Skipping restore for SBOM layer: {e}");
            }
        }
        // Never through a symlink the SBOM layer planted.
        let is_dir = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        let is_file = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        for bp in self.group {
            let bp_dir = self.layers_dir.join(bp.escaped_id());
            for kind in ["cache", "launch"] {
                let dir = sbom_root.join(kind).join(bp.escaped_id());
                if !is_dir(&sbom_root.join(kind)) || !is_dir(&dir) {
                    continue;
                }
                let Ok(layers) = fs::read_dir(&dir) else {
                    continue;
                };
                for layer in layers.flatten() {
                    let name = layer.file_name().to_string_lossy().into_owned();
                    if !is_dir(&layer.path())
                        || !bp_dir.join(&name).exists()
                            && !bp_dir.join(format!("{name}.toml")).exists()
                    {
                        continue;
                    }
                    for ext in ["cdx.json", "spdx.json", "syft.json"] {
                        let src = layer.path().join(format!("sbom.{ext}"));
                        if is_file(&src) {
                            let dst = bp_dir.join(format!("{name}.sbom.{ext}"));
                            if let Err(e) = fs::copy(&src, &dst) {
                                warn!("Failed to restore SBOM {}: {e}", dst.display());
                            }
                        }
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&sbom_root);
    }
}

/// Extracts an untrusted layer tar into `dest` (created), logging what the policy dropped.
fn extract_into(reader: impl io::Read, dest: &Path, opts: &ExtractOptions) -> Result<(), String> {
    cnb_spec::io::create_dirs(dest).map_err(|e| e.to_string())?;
    let stats = archive::extract(reader, dest, opts).map_err(|e| crate::error::chain(&e))?;
    if stats.skipped_devices > 0 || stats.setid_cleared > 0 {
        warn!(
            "Restoring '{}': skipped {} device node(s), cleared setuid/setgid on {} entr(ies)",
            dest.display(),
            stats.skipped_devices,
            stats.setid_cleared
        );
    }
    debug!("Extracted into '{}': {stats:?}", dest.display());
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RestoreError> {
    cnb_spec::io::write_atomic(path, bytes)
        .map_err(|e| write_err(path, io::Error::other(e.to_string())))
}

fn restore_failure(e: &(dyn std::error::Error + 'static)) -> Failure {
    Failure::new(exit::RESTORE_ERROR, "restore", e)
}

/// Checks the cache inputs the way the reference initialises its cache, before anything is done: a
/// `-cache-image` that is not a reference and a `-cache-dir` that exists but is not a directory fail
/// the phase with exit 1 (`failed to initialize cache`). A missing cache directory only warns later.
pub fn check_cache_inputs(inputs: &Inputs) -> Result<(), Failure> {
    let fail = |m: String| Failure::msg(exit::FAILED, "initialize cache", m);
    if let Some(name) = inputs.cache_image.as_deref().filter(|s| !s.is_empty()) {
        if !inputs.use_layout {
            crate::image::registry::ImageRef::parse(name).map_err(|e| {
                fail(format!(
                    "creating image cache: could not parse reference: {name} ({e})"
                ))
            })?;
        }
        return Ok(());
    }
    if let Some(dir) = &inputs.cache_dir {
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(fail(format!(
                    "creating volume cache: '{}' is not a directory",
                    dir.display()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Opens the cache the inputs name (`-cache-image` wins over `-cache-dir`); problems only warn (a
/// build never fails for its cache). [`check_cache_inputs`] has rejected unusable inputs already.
pub fn open_cache(inputs: &Inputs, access: &ImageAccess) -> Option<Box<dyn Cache>> {
    if let Some(name) = inputs.cache_image.as_deref().filter(|s| !s.is_empty()) {
        let previous = match access.open(name) {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                info!("Layer cache not found");
                None
            }
            Err(e) => {
                info!("Ignoring cache image \"{name}\" because it was corrupt: {e}");
                None
            }
        };
        return match access.writer(name) {
            Ok(dest) => Some(Box::new(ImageCache::new(name, previous, dest))),
            Err(e) => {
                warn!("Ignoring cache image \"{name}\": {e}");
                None
            }
        };
    }
    let dir = inputs.cache_dir.as_ref()?;
    match VolumeCache::open(dir) {
        Ok(c) => Some(Box::new(c)),
        Err(e) => {
            warn!("Ignoring cache: {}", crate::error::chain(&e));
            None
        }
    }
}

/// Every registry image the restorer may touch (for resolving credentials before privileges drop,
/// G-17): the cache image, the build image and the run image recorded in `analyzed.toml`.
fn registry_images(inputs: &Inputs) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    images.extend(inputs.cache_image.clone());
    images.extend(inputs.build_image.clone());
    if let Ok(Some(a)) = Analyzed::read_optional(&inputs.analyzed_path) {
        if let Some(run) = a.run_image {
            images.push(run.image);
            images.push(run.reference);
        }
    }
    images.retain(|s| !s.is_empty());
    images
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let access = ImageAccess::from_inputs(inputs).map_err(|e| e.failure())?;
    check_cache_inputs(inputs)?;
    // G-17: credential helpers and root-only docker configs are read before privileges drop.
    access.resolve_credentials(&registry_images(inputs));
    crate::privilege::ensure_privileges(Phase::Restorer, inputs)?;
    let group = Group::read(&inputs.group_path).map_err(|e| restore_failure(&e))?;
    // RS-04…RS-07 belong to the `restorer` phase; the reference creator restores without them. The
    // creator always has an output image, the restorer never has one.
    // TODO(integration): let the creator call a restore entry point without the image step instead.
    let image_step = inputs.output_images.is_empty();
    let analyzed = match Analyzed::read_optional(&inputs.analyzed_path) {
        Ok(Some(a)) if !image_step => a,
        Ok(Some(mut a)) => {
            let step = images::RestoreImages {
                access: &access,
                platform_api: inputs.platform_api,
                kaniko_dir: inputs.kaniko_dir.clone(),
                run_path: inputs.run_path.clone(),
                build_image: inputs.build_image.clone(),
            };
            let done = step
                .apply(&mut a, &group)
                .map_err(|e| restore_failure(&e))?;
            debug!("Image metadata: {done:?}");
            // RS-03: analyzed.toml is re-written when it was read.
            a.write(&inputs.analyzed_path)
                .map_err(|e| restore_failure(&e))?;
            a
        }
        Ok(None) => {
            warn!(
                "Not using analyzed data, usable file not found: {}",
                inputs.analyzed_path.display()
            );
            Analyzed::default()
        }
        Err(e) => return Err(restore_failure(&e)),
    };
    let bps = group_buildpacks(&group);
    let cache = open_cache(inputs, &access);
    let restorer = Restorer {
        layers_dir: inputs.layers_dir.clone(),
        group: &bps,
        platform_api: inputs.platform_api,
        skip_layers: inputs.skip_layers,
    };
    let summary = restorer
        .restore(&analyzed.metadata, cache.as_deref())
        .map_err(|e| restore_failure(&e))?;
    debug!("Restored: {summary:?}");
    Ok(())
}
