//! The write side of the image abstraction: [`ImageBuilder`] starts from a base image (or nothing), appends
//! new layers or reuses existing ones by diffID, edits the configuration and saves to a layout or a registry
//! with tags (checklist IM-01…IM-04, IM-20, IM-30).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::layout::{Layout, WriteStats};
use super::oci::{
    self, Descriptor, History, ImageConfig, Manifest, Platform, RootFs, RuntimeConfig,
};
use super::registry::{BlobPushOutcome, BlobSource, BlobUpload, ImageRef, RegistryClient};
use super::source::{open_blob, Image, LayerRef, Store};
use super::{Digest, ImageError};
use crate::archive::{LayerInfo, MEDIA_TYPE_DOCKER_GZIP, MEDIA_TYPE_TAR_GZIP};

#[derive(Debug, Clone)]
enum Origin {
    /// A blob file on this machine (from the archive pipeline).
    File(PathBuf),
    /// A blob of another image.
    Store(Arc<Store>),
}

#[derive(Debug, Clone)]
struct NewLayer {
    layer: LayerRef,
    origin: Origin,
}

/// What saving an image produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReport {
    /// Digest of the manifest (the image digest).
    pub manifest_digest: Digest,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// The image ID (config digest).
    pub image_id: Digest,
    /// Blob writes (layout) or uploads (registry: `blobs_written` = uploaded, `blobs_reused` = present or
    /// mounted).
    pub stats: WriteStats,
    /// Blobs the registry mounted from another repository.
    pub mounted: u64,
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
                origin: Origin::Store(base.store.clone()),
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
        }
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
        if self.manifest_media_type == oci::DOCKER_MANIFEST && media_type == MEDIA_TYPE_TAR_GZIP {
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
        self.layers.push(NewLayer {
            layer,
            origin: Origin::Store(from.store.clone()),
        });
        self.push_history(created_by);
        Ok(())
    }

    /// Replaces the bottom `old_base_layers` layers (and as many non-empty history entries) by `new_base`'s
    /// layers and history, keeping everything above (rebase, checklist IM-40).
    pub fn rebase(&mut self, old_base_layers: usize, new_base: &Image) -> Result<(), ImageError> {
        if old_base_layers > self.layers.len() {
            return Err(ImageError::Invalid {
                image: "image being rebased".into(),
                reason: format!(
                    "it has {} layers, fewer than the {old_base_layers} of its base",
                    self.layers.len()
                ),
            });
        }
        let mut layers: Vec<NewLayer> = new_base
            .layers()?
            .into_iter()
            .map(|layer| NewLayer {
                layer,
                origin: Origin::Store(new_base.store.clone()),
            })
            .collect();
        layers.extend(self.layers.drain(old_base_layers..));
        self.layers = layers;
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

    /// The configuration and manifest bytes this builder would save.
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
        let config_bytes = serde_json::to_vec(&config).map_err(|source| ImageError::Json {
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
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| ImageError::Json {
            image: "new image".into(),
            what: "manifest".into(),
            source,
        })?;
        Ok((config_bytes, manifest_bytes))
    }

    /// Saves into the layout `dest` and tags it with each of `tags` (moving tags that pointed elsewhere;
    /// no tags = untagged entry). Blobs already in `dest` are not written again; blobs of layout images
    /// and blob files are hard-linked when possible, else copied; registry blobs are downloaded.
    pub fn save_to_layout(&self, dest: &Layout, tags: &[String]) -> Result<SaveReport, ImageError> {
        let mut stats = WriteStats::default();
        for l in &self.layers {
            let digest = &l.layer.descriptor.digest;
            if dest.has_blob(digest) {
                stats.blobs_reused += 1;
                continue;
            }
            let target = dest.blob_path(digest);
            let local = match &l.origin {
                Origin::File(p) => Some(p.clone()),
                Origin::Store(s) => match &**s {
                    Store::Layout(src) => Some(src.blob_path(digest)),
                    Store::Registry { .. } => None,
                },
            };
            if let Some(src) = local {
                if let Some(parent) = target.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                if fs::hard_link(&src, &target).is_ok() {
                    stats.blobs_written += 1;
                    continue;
                }
                let f = File::open(&src).map_err(|source| ImageError::Io {
                    image: dest.path().display().to_string(),
                    what: format!("blob {digest} from {}", src.display()),
                    source,
                })?;
                let (_, s) = dest.write_blob_from(f, Some(digest))?;
                stats.add(s);
            } else if let Origin::Store(s) = &l.origin {
                let r = open_blob(s, digest)?;
                let (_, s) = dest.write_blob_from(r, Some(digest))?;
                stats.add(s);
            }
        }
        let (config_bytes, manifest_bytes) = self.render()?;
        let (image_id, s) = dest.write_blob(&config_bytes)?;
        stats.add(s);
        let (manifest_digest, s) = dest.write_blob(&manifest_bytes)?;
        stats.add(s);
        let desc = Descriptor::new(
            self.manifest_media_type.clone(),
            manifest_digest.clone(),
            manifest_bytes.len() as u64,
        );
        dest.add_manifest(&desc, tags)?;
        Ok(SaveReport {
            manifest_digest,
            manifest_size: manifest_bytes.len() as u64,
            manifest_media_type: self.manifest_media_type.clone(),
            image_id,
            stats,
            mounted: 0,
            manifest_bytes,
            config_bytes,
        })
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
        let mut uploads = Vec::new();
        for l in &self.layers {
            let d = &l.layer.descriptor;
            let (source, mount_from) = match &l.origin {
                Origin::File(p) => (BlobSource::Path(p.clone()), Vec::new()),
                Origin::Store(s) => match &**s {
                    Store::Layout(src) => (BlobSource::Path(src.blob_path(&d.digest)), Vec::new()),
                    Store::Registry {
                        reference: from, ..
                    } => {
                        let (s2, dg) = (s.clone(), d.digest.clone());
                        let open: Arc<
                            dyn Fn() -> io::Result<Box<dyn io::Read + Send>> + Send + Sync,
                        > = Arc::new(move || {
                            open_blob(&s2, &dg)
                                .map_err(|e| io::Error::other(crate::error::chain(&e)))
                        });
                        (BlobSource::Open(open), vec![from.clone()])
                    }
                },
            };
            uploads.push(BlobUpload {
                digest: d.digest.to_string(),
                size: d.size,
                source,
                mount_from,
            });
        }
        let (config_bytes, manifest_bytes) = self.render()?;
        let image_id = Digest::sha256_of(&config_bytes);
        uploads.push(BlobUpload {
            digest: image_id.to_string(),
            size: config_bytes.len() as u64,
            source: BlobSource::Bytes(Arc::new(config_bytes.clone())),
            mount_from: Vec::new(),
        });
        let outcomes = client.push_blobs(reference, &uploads)?;
        let mut stats = WriteStats::default();
        let mut mounted = 0;
        for (o, u) in outcomes.iter().zip(&uploads) {
            match o {
                BlobPushOutcome::Uploaded => {
                    stats.blobs_written += 1;
                    stats.bytes_written += u.size;
                }
                BlobPushOutcome::Exists => stats.blobs_reused += 1,
                BlobPushOutcome::Mounted(_) => {
                    stats.blobs_reused += 1;
                    mounted += 1;
                }
            }
        }
        client.push_manifest(reference, &manifest_bytes, &self.manifest_media_type)?;
        let tags: Vec<&str> = extra_tags.iter().map(String::as_str).collect();
        client.tag(reference, &tags, &manifest_bytes, &self.manifest_media_type)?;
        Ok(SaveReport {
            manifest_digest: Digest::sha256_of(&manifest_bytes),
            manifest_size: manifest_bytes.len() as u64,
            manifest_media_type: self.manifest_media_type.clone(),
            image_id,
            stats,
            mounted,
            manifest_bytes,
            config_bytes,
        })
    }
}
