//! The write side of the image abstraction: [`ImageBuilder`] starts from a base image (or nothing), appends
//! new layers or reuses existing ones by diffID, edits the configuration and saves through any store's
//! [`ImageWriter`] (layout, registry, daemon) with tags (checklist IM-01…IM-04, IM-20, IM-30).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::layout::{IndexUpdate, Layout, LayoutWriter, WriteStats};
use super::oci::{
    self, Descriptor, History, ImageConfig, Manifest, Platform, RootFs, RuntimeConfig,
};
use super::registry::{ImageRef, RegistryClient, RegistryWriter};
use super::source::{Image, LayerRef};
use super::store::ImageWriter;
use super::{Digest, ImageError};
use crate::archive::{LayerInfo, MEDIA_TYPE_DOCKER_GZIP, MEDIA_TYPE_TAR_GZIP};

#[derive(Debug, Clone)]
enum Origin {
    /// A blob file on this machine (from the archive pipeline), handed to the writer when saving.
    File(PathBuf),
    /// A layer of another image.
    Image(Box<Image>),
    /// Already handed to the writer the image will be saved with.
    Stored,
}

#[derive(Debug, Clone)]
struct NewLayer {
    layer: LayerRef,
    origin: Origin,
}

/// What saving an image produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReport {
    /// Digest of the manifest (the image digest); the digest of the manifest bytes also where the store
    /// keeps no manifest (a daemon).
    pub manifest_digest: Digest,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// The image ID (config digest).
    pub image_id: Digest,
    /// Whether the store keeps the manifest (layouts and registries; a daemon does not).
    pub has_manifest: bool,
    /// Blob writes (layout) or uploads (registry: `blobs_written` = uploaded, `blobs_reused` = present or
    /// mounted).
    pub stats: WriteStats,
    /// The manifest bytes written.
    pub manifest_bytes: Vec<u8>,
    /// The configuration bytes written.
    pub config_bytes: Vec<u8>,
}

/// A new image under construction.
///
/// ```no_run
/// # use cnb_lifecycle::image::{Image, ImageBuilder, layout::{Layout, Selector}};
/// # use cnb_lifecycle::archive::{LayerBuilder, Compression, Sink};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let base = Image::from_layout("/layout/run".as_ref(), &Selector::Only, None)?;
/// let dest = Layout::create("/layout/app")?;
/// let mut layer = LayerBuilder::new();
/// layer.add_tree("/layers/bp/web", "/layers/bp/web", 1000, 1000);
/// let info = layer.write(Compression::default(), Sink::BlobDir(dest.blob_dir()))?;
/// let mut img = ImageBuilder::from_base(&base)?;
/// img.add_layer(&info, Some("Layer: 'web', Created by buildpack: bp@1".into()))?;
/// img.set_label("io.buildpacks.lifecycle.metadata", "{}");
/// img.set_created(315_532_801);
/// let report = img.save_to_layout(&dest, &["latest".to_string()])?;
/// println!("{} {}", report.manifest_digest, report.image_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    manifest_media_type: String,
    config_media_type: String,
    config: ImageConfig,
    layers: Vec<NewLayer>,
    annotations: Option<BTreeMap<String, String>>,
    normalized: bool,
}

impl ImageBuilder {
    /// Starts from `base`: its layers, history, env, labels, user, ... and its media-type family (Docker or
    /// OCI, IM-01). Fails when the base's manifest and config disagree on the layer count.
    pub fn from_base(base: &Image) -> Result<Self, ImageError> {
        let docker = base.manifest_media_type() == oci::DOCKER_MANIFEST;
        let layers = base
            .layers()?
            .into_iter()
            .map(|layer| NewLayer {
                layer,
                origin: Origin::Image(Box::new(base.clone())),
            })
            .collect();
        Ok(Self {
            manifest_media_type: if docker {
                oci::DOCKER_MANIFEST
            } else {
                oci::OCI_MANIFEST
            }
            .into(),
            config_media_type: if docker {
                oci::DOCKER_CONFIG
            } else {
                oci::OCI_CONFIG
            }
            .into(),
            config: base.config().clone(),
            layers,
            annotations: None,
            normalized: false,
        })
    }

    /// Starts from nothing (OCI media types) for `platform`.
    pub fn empty(platform: &Platform) -> Self {
        Self {
            manifest_media_type: oci::OCI_MANIFEST.into(),
            config_media_type: oci::OCI_CONFIG.into(),
            config: ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                os_version: platform.os_version.clone(),
                config: Some(RuntimeConfig::default()),
                rootfs: RootFs::default(),
                history: Some(Vec::new()),
                ..ImageConfig::default()
            },
            layers: Vec::new(),
            annotations: None,
            normalized: false,
        }
    }

    /// The lifecycle's canonical form for the images it exports (what the exporter, rebaser and cache image
    /// write): OCI media types for manifest, config and layers (Docker layer media types mapped, blob bytes
    /// unchanged), layer descriptors with only media type, digest and size, and a configuration without
    /// fields outside the image spec (a Docker base's `container`, `docker_version`, `Hostname`, ...).
    pub fn normalize(mut self) -> Self {
        self.normalized = true;
        self.manifest_media_type = oci::OCI_MANIFEST.into();
        self.config_media_type = oci::OCI_CONFIG.into();
        for l in &mut self.layers {
            l.layer.descriptor = normalized_descriptor(&l.layer.descriptor);
        }
        self.config.strip_unknown();
        self
    }

    /// The layers so far, base first.
    pub fn layers(&self) -> Vec<LayerRef> {
        self.layers.iter().map(|l| l.layer.clone()).collect()
    }

    fn push_history(&mut self, created_by: Option<String>) {
        if let Some(cb) = created_by {
            self.config
                .history
                .get_or_insert_with(Vec::new)
                .push(History {
                    created_by: Some(cb),
                    ..History::default()
                });
        }
    }

    fn layer_media_type(&self, media_type: &str) -> String {
        if self.normalized {
            oci::oci_layer_media_type(media_type).into()
        } else if self.manifest_media_type == oci::DOCKER_MANIFEST
            && media_type == MEDIA_TYPE_TAR_GZIP
        {
            MEDIA_TYPE_DOCKER_GZIP.into()
        } else {
            media_type.into()
        }
    }

    /// Appends a layer produced by [`crate::archive::LayerBuilder::write`] into a file or blob directory;
    /// `created_by`, when given, adds a history entry.
    pub fn add_layer(
        &mut self,
        info: &LayerInfo,
        created_by: Option<String>,
    ) -> Result<(), ImageError> {
        let path = info.path.clone().ok_or_else(|| ImageError::Invalid {
            image: "new image".into(),
            reason: format!(
                "layer {} has no blob file (produced with a hash-only or writer sink)",
                info.diff_id
            ),
        })?;
        self.add_layer_file(
            path,
            info.diff_id.clone(),
            info.digest.clone(),
            info.size,
            &info.media_type,
            created_by,
        );
        Ok(())
    }

    /// Appends a layer from a blob file whose digests are known.
    pub fn add_layer_file(
        &mut self,
        path: PathBuf,
        diff_id: Digest,
        digest: Digest,
        size: u64,
        media_type: &str,
        created_by: Option<String>,
    ) {
        let descriptor = Descriptor::new(self.layer_media_type(media_type), digest, size);
        self.layers.push(NewLayer {
            layer: LayerRef {
                diff_id,
                descriptor,
            },
            origin: Origin::File(path),
        });
        self.push_history(created_by);
    }

    /// Appends the layer with `diff_id` from `from` (e.g. the previous app image) without re-tarring it:
    /// the blob is copied, hard-linked, found in place or mounted when saving.
    pub fn reuse_layer(
        &mut self,
        from: &Image,
        diff_id: &Digest,
        created_by: Option<String>,
    ) -> Result<(), ImageError> {
        let layer = from
            .layer_by_diff_id(diff_id)
            .ok_or_else(|| ImageError::LayerNotFound {
                image: from.name().to_string(),
                diff_id: diff_id.clone(),
            })?;
        let layer = if self.normalized {
            LayerRef {
                descriptor: normalized_descriptor(&layer.descriptor),
                ..layer
            }
        } else {
            layer
        };
        self.layers.push(NewLayer {
            layer,
            origin: Origin::Image(Box::new(from.clone())),
        });
        self.push_history(created_by);
        Ok(())
    }

    /// Appends a layer whose blob was already handed to the writer this image will be saved with
    /// ([`ImageWriter::put_layer_file`] or [`ImageWriter::copy_layer`], e.g. from worker threads).
    pub fn add_stored_layer(&mut self, layer: LayerRef, created_by: Option<String>) {
        let layer = if self.normalized {
            LayerRef {
                descriptor: normalized_descriptor(&layer.descriptor),
                ..layer
            }
        } else {
            layer
        };
        self.layers.push(NewLayer {
            layer,
            origin: Origin::Stored,
        });
        self.push_history(created_by);
    }

    /// Keeps only the bottom `n` layers (history and configuration are left to the caller).
    pub fn truncate_layers(&mut self, n: usize) {
        self.layers.truncate(n);
    }

    /// Replaces the bottom `old_base_layers` layers by `new_base`'s layers, keeping everything above;
    /// the configuration is left to the caller.
    pub fn replace_base_layers(
        &mut self,
        old_base_layers: usize,
        new_base: &Image,
    ) -> Result<(), ImageError> {
        if old_base_layers > self.layers.len() {
            return Err(ImageError::Invalid {
                image: "image being rebased".into(),
                reason: format!(
                    "it has {} layers, fewer than the {old_base_layers} of its base",
                    self.layers.len()
                ),
            });
        }
        let normalized = self.normalized;
        let mut layers: Vec<NewLayer> = new_base
            .layers()?
            .into_iter()
            .map(|layer| NewLayer {
                layer: if normalized {
                    LayerRef {
                        descriptor: normalized_descriptor(&layer.descriptor),
                        ..layer
                    }
                } else {
                    layer
                },
                origin: Origin::Image(Box::new(new_base.clone())),
            })
            .collect();
        layers.extend(self.layers.drain(old_base_layers..));
        self.layers = layers;
        Ok(())
    }

    /// Replaces the bottom `old_base_layers` layers (and as many non-empty history entries) by `new_base`'s
    /// layers and history, keeping everything above (rebase, checklist IM-40).
    pub fn rebase(&mut self, old_base_layers: usize, new_base: &Image) -> Result<(), ImageError> {
        self.replace_base_layers(old_base_layers, new_base)?;
        let mut history = new_base.config().history.clone().unwrap_or_default();
        let mut seen = 0;
        history.extend(
            self.config
                .history
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|h| {
                    if seen >= old_base_layers {
                        return true;
                    }
                    if h.empty_layer != Some(true) {
                        seen += 1;
                    }
                    false
                }),
        );
        self.config.history = Some(history);
        self.config.architecture = new_base.config().architecture.clone();
        self.config.os = new_base.config().os.clone();
        Ok(())
    }

    /// The configuration, for edits the helpers below do not cover (history, exposed ports, ...).
    pub fn config_mut(&mut self) -> &mut ImageConfig {
        &mut self.config
    }

    /// Replaces the configuration (its `rootfs` is rewritten from the layers when saving).
    pub fn set_config(&mut self, config: ImageConfig) {
        self.config = config;
        if self.normalized {
            self.config.strip_unknown();
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    fn runtime(&mut self) -> &mut RuntimeConfig {
        self.config
            .config
            .get_or_insert_with(RuntimeConfig::default)
    }

    /// Sets (or replaces) an environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.runtime().env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// Removes an environment variable.
    pub fn remove_env(&mut self, key: &str) {
        if let Some(env) = self.runtime().env.as_mut() {
            env.retain(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) != key);
        }
    }

    /// Sets a label.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.runtime()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
    }

    /// Removes a label.
    pub fn remove_label(&mut self, key: &str) {
        if let Some(l) = self.runtime().labels.as_mut() {
            l.remove(key);
        }
    }

    /// Sets the entrypoint (`None` clears it).
    pub fn set_entrypoint(&mut self, entrypoint: Option<Vec<String>>) {
        self.runtime().entrypoint = entrypoint;
    }

    /// Sets the command (`None` clears it).
    pub fn set_cmd(&mut self, cmd: Option<Vec<String>>) {
        self.runtime().cmd = cmd;
    }

    /// Sets the working directory.
    pub fn set_working_dir(&mut self, dir: &str) {
        self.runtime().working_dir = Some(dir.into());
    }

    /// Sets the user (`uid[:gid]` or a name).
    pub fn set_user(&mut self, user: &str) {
        self.runtime().user = Some(user.into());
    }

    /// Sets `created` of the config and of every history entry (IM-03), and drops the Docker `container` keys.
    pub fn set_created(&mut self, secs: i64) {
        let t = oci::rfc3339(secs);
        self.config.created = Some(t.clone());
        for h in self.config.history.iter_mut().flatten() {
            h.created = Some(t.clone());
        }
        self.config.extra.remove("container");
        self.config.extra.remove("container_config");
    }

    /// Sets a manifest annotation.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
    }

    /// The configuration and manifest bytes this builder would save (deterministic: the same image always
    /// has the same digests; canonical sorted-key JSON after [`ImageBuilder::normalize`]).
    pub fn render(&self) -> Result<(Vec<u8>, Vec<u8>), ImageError> {
        let mut config = self.config.clone();
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: self
                .layers
                .iter()
                .map(|l| l.layer.diff_id.clone())
                .collect(),
        };
        // The canonical form sorts keys (the exporter's documents); other images keep the field order
        // of the types, as every image this builder wrote before, so an unchanged image keeps its digest.
        let encode = |v: &dyn erased::Encode| {
            if self.normalized {
                v.canonical()
            } else {
                v.plain()
            }
        };
        let config_bytes = encode(&config).map_err(|source| ImageError::Json {
            image: "new image".into(),
            what: "config".into(),
            source,
        })?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(self.manifest_media_type.clone()),
            config: Descriptor::new(
                self.config_media_type.clone(),
                Digest::sha256_of(&config_bytes),
                config_bytes.len() as u64,
            ),
            layers: self
                .layers
                .iter()
                .map(|l| l.layer.descriptor.clone())
                .collect(),
            annotations: self.annotations.clone(),
            extra: BTreeMap::new(),
        };
        let manifest_bytes = encode(&manifest).map_err(|source| ImageError::Json {
            image: "new image".into(),
            what: "manifest".into(),
            source,
        })?;
        Ok((config_bytes, manifest_bytes))
    }

    /// Saves through `writer`: hands it every layer blob not handed over yet (several at a time), then
    /// the configuration and manifest.
    pub fn save(&self, writer: &dyn ImageWriter) -> Result<SaveReport, ImageError> {
        let pending: Vec<&NewLayer> = self
            .layers
            .iter()
            .filter(|l| !matches!(l.origin, Origin::Stored))
            .collect();
        let results = crate::archive::parallel_map(pending, 4, |l| match &l.origin {
            Origin::File(p) => {
                if writer.has_layer(&l.layer)? {
                    return Ok(());
                }
                // The writer takes files over: give it a link (or copy), the caller keeps its file.
                let tmp = writer
                    .scratch_dir()
                    .join(format!(".save-{}", l.layer.descriptor.digest.hex()));
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(p, &tmp)
                    .or_else(|_| std::fs::copy(p, &tmp).map(|_| ()))
                    .map_err(|source| ImageError::Io {
                        image: writer.name(),
                        what: format!("layer blob {}", p.display()),
                        source,
                    })?;
                writer.put_layer_file(&tmp, &l.layer)
            }
            Origin::Image(from) => writer.copy_layer(from, &l.layer),
            Origin::Stored => Ok(()),
        });
        for r in results {
            r.unwrap_or_else(|| {
                Err(ImageError::Invalid {
                    image: writer.name(),
                    reason: "a layer copy thread panicked".into(),
                })
            })?;
        }
        let (config_bytes, manifest_bytes) = self.render()?;
        let saved = writer.commit(
            &config_bytes,
            &manifest_bytes,
            &self.manifest_media_type,
            &self.layers(),
        )?;
        Ok(SaveReport {
            manifest_digest: saved
                .manifest_digest
                .clone()
                .unwrap_or_else(|| Digest::sha256_of(&manifest_bytes)),
            manifest_size: manifest_bytes.len() as u64,
            manifest_media_type: self.manifest_media_type.clone(),
            image_id: saved.image_id,
            has_manifest: saved.manifest_digest.is_some(),
            stats: {
                let mut s = writer.stats();
                s.add(saved.stats);
                s
            },
            manifest_bytes,
            config_bytes,
        })
    }

    /// Saves into the layout `dest` and tags it with each of `tags` (moving tags that pointed elsewhere,
    /// keeping other entries; no tags = untagged entry). Blobs already in `dest` are not written again;
    /// blobs of layout images and blob files are hard-linked when possible, else copied; registry blobs are
    /// downloaded.
    pub fn save_to_layout(&self, dest: &Layout, tags: &[String]) -> Result<SaveReport, ImageError> {
        self.save(&LayoutWriter::new(
            dest.clone(),
            IndexUpdate::Tag(tags.to_vec()),
        ))
    }

    /// Pushes to `reference` and tags `extra_tags` in the same repository. Blobs the repository has are
    /// skipped (`HEAD`), blobs of images in the same registry are mounted, the rest uploaded (streamed from
    /// files, or piped from their source registry); the manifest bytes are pushed unchanged.
    pub fn save_to_registry(
        &self,
        client: &RegistryClient,
        reference: &ImageRef,
        extra_tags: &[String],
    ) -> Result<SaveReport, ImageError> {
        self.save(&RegistryWriter::new(
            client,
            reference.clone(),
            extra_tags.to_vec(),
        )?)
    }
}

mod erased {
    /// JSON encodings of a document, object-safe so one closure picks the form.
    pub(super) trait Encode {
        fn canonical(&self) -> Result<Vec<u8>, serde_json::Error>;
        fn plain(&self) -> Result<Vec<u8>, serde_json::Error>;
    }

    impl<T: serde::Serialize> Encode for T {
        fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
            super::oci::canonical_json(self)
        }
        fn plain(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec(self)
        }
    }
}

/// A layer descriptor in the canonical form: OCI media type, digest and size only.
fn normalized_descriptor(d: &Descriptor) -> Descriptor {
    Descriptor::new(
        oci::oci_layer_media_type(&d.media_type),
        d.digest.clone(),
        d.size,
    )
}
