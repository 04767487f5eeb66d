//! Reading daemon images: an [`Image`] from `GET /images/{name}/json` (the configuration as the daemon
//! reports it, the rootfs diffIDs, the `Id`) and, only when a layer's bytes are needed, every layer
//! of the image at once from `GET /images/{id}/get` (the Engine API has no per-layer download).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;

use tracing::debug;

use super::Daemon;
use crate::archive::{self, ExtractOptions};
use crate::cache::VolumeCache;
use crate::image::oci::{
    self, Descriptor, ImageConfig, Manifest, RootFs, RuntimeConfig, DOCKER_LAYER_TAR,
};
use crate::image::source::Backend;
use crate::image::{Digest, Image, ImageError};

/// Layers of one daemon image, read from the daemon on first use.
pub(crate) struct DaemonBlobs {
    pub(super) daemon: Arc<Daemon>,
    pub(super) id: String,
    pub(super) diff_ids: Vec<Digest>,
    launch_cache: Option<PathBuf>,
    saved: OnceLock<Result<Saved, String>>,
}

struct Saved {
    _dir: tempfile::TempDir,
    by_diff_id: HashMap<Digest, PathBuf>,
}

impl std::fmt::Debug for DaemonBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DaemonBlobs({})", self.id)
    }
}

impl DaemonBlobs {
    /// The file holding the uncompressed layer `diff_id` (the whole image is saved from the daemon
    /// the first time a layer is asked for).
    pub(super) fn layer_file(&self, diff_id: &Digest) -> Result<PathBuf, ImageError> {
        if let Some(p) = self
            .launch_cache
            .as_deref()
            .and_then(|dir| VolumeCache::committed_layer(dir, diff_id.as_str()))
        {
            return Ok(p);
        }
        let saved = self
            .saved
            .get_or_init(|| self.save().map_err(|e| crate::error::chain(&e)))
            .as_ref()
            .map_err(|m| {
                self.daemon
                    .err(format!("reading the layers of image {}", self.id), m)
            })?;
        saved
            .by_diff_id
            .get(diff_id)
            .cloned()
            .ok_or_else(|| ImageError::LayerNotFound {
                image: self.id.clone(),
                diff_id: diff_id.clone(),
            })
    }

    fn save(&self) -> Result<Saved, ImageError> {
        debug!("Reading the layers of image {} from the daemon", self.id);
        let io_err = |what: &str, source| ImageError::Io {
            image: self.id.clone(),
            what: what.to_string(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("cnb-daemon-save-")
            .tempdir()
            .map_err(|e| io_err("temp dir", e))?;
        let tar_path = dir.path().join("image.tar");
        let mut out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tar_path)
            .map_err(|e| io_err("saved image", e))?;
        self.daemon.block_on(async {
            let mut s = self.daemon.docker.export_image(&self.id);
            while let Some(chunk) = s.next().await {
                let chunk =
                    chunk.map_err(|e| self.daemon.err(format!("saving image {}", self.id), e))?;
                out.write_all(&chunk)
                    .map_err(|e| io_err("saved image", e))?;
            }
            Ok::<_, ImageError>(())
        })?;
        out.rewind().map_err(|e| io_err("saved image", e))?;
        let root = dir.path().join("x");
        cnb_spec::io::create_dirs(&root).map_err(|e| io_err("temp dir", e))?;
        archive::extract(&mut out, &root, &ExtractOptions::untrusted(&[])).map_err(|e| {
            ImageError::Invalid {
                image: self.id.clone(),
                reason: format!("the daemon's image archive: {}", crate::error::chain(&e)),
            }
        })?;
        drop(out);
        let _ = std::fs::remove_file(&tar_path);
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            layers: Vec<String>,
        }
        let text =
            std::fs::read(root.join("manifest.json")).map_err(|e| io_err("manifest.json", e))?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&text).map_err(|source| ImageError::Json {
                image: self.id.clone(),
                what: "manifest.json of the saved image".into(),
                source,
            })?;
        let layers = entries
            .into_iter()
            .next()
            .map(|e| e.layers)
            .unwrap_or_default();
        if layers.len() != self.diff_ids.len() {
            return Err(ImageError::Invalid {
                image: self.id.clone(),
                reason: format!(
                    "the daemon saved {} layers for {} diffIDs",
                    layers.len(),
                    self.diff_ids.len()
                ),
            });
        }
        let mut by_diff_id = HashMap::new();
        for (d, l) in self.diff_ids.iter().zip(layers) {
            let p = root.join(&l);
            if !p.starts_with(&root) || l.split('/').any(|c| c == "..") {
                return Err(ImageError::Invalid {
                    image: self.id.clone(),
                    reason: format!("layer path {l:?} outside the archive"),
                });
            }
            by_diff_id.insert(d.clone(), p);
        }
        Ok(Saved {
            _dir: dir,
            by_diff_id,
        })
    }
}

impl Backend for DaemonBlobs {
    /// Blobs of daemon images are their uncompressed layers, named by diffID (a daemon that saves
    /// compressed layers, as the containerd store may, is decompressed here).
    fn open_blob(&self, _image: &str, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        let path = self.layer_file(digest)?;
        let open = || {
            File::open(&path).map_err(|source| ImageError::Io {
                image: self.id.clone(),
                what: format!("layer {digest}"),
                source,
            })
        };
        if is_gzip(&path) {
            Ok(Box::new(flate2::read::MultiGzDecoder::new(open()?)))
        } else {
            Ok(Box::new(open()?))
        }
    }

    /// The reference's `local.IDIdentifier`: the image ID without `sha256:`.
    fn identifier(&self, _manifest_digest: &Digest, image_id: &Digest) -> String {
        image_id.hex().to_string()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The daemon-image backend of `image`, when it is an image of `daemon`.
pub(super) fn source_of<'a>(daemon: &Arc<Daemon>, image: &'a Image) -> Option<&'a DaemonBlobs> {
    image
        .backend
        .as_any()
        .downcast_ref::<DaemonBlobs>()
        .filter(|b| Arc::ptr_eq(&b.daemon, daemon))
}

/// Whether `image` lives in `daemon`.
pub(super) fn is_in(daemon: &Arc<Daemon>, image: &Image) -> bool {
    source_of(daemon, image).is_some()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn set_of(v: Option<Vec<String>>) -> Option<BTreeMap<String, serde_json::Value>> {
    v.filter(|v| !v.is_empty()).map(|v| {
        v.into_iter()
            .map(|k| (k, serde_json::Value::Object(serde_json::Map::new())))
            .collect()
    })
}

/// The image `inspect` describes, as the phases read images: its configuration from the inspect
/// fields (as the reference's `local` package builds it), layers named by diffID, the daemon's `Id` as
/// the image ID.
pub(super) fn image_from_inspect(
    daemon: &Arc<Daemon>,
    reference: &str,
    inspect: bollard::models::ImageInspect,
    launch_cache: Option<PathBuf>,
) -> Result<Image, ImageError> {
    let invalid = |reason: String| ImageError::Invalid {
        image: reference.to_string(),
        reason,
    };
    let id = inspect.id.clone().unwrap_or_default();
    let id_digest: Digest = id
        .parse()
        .map_err(|_| invalid(format!("the daemon reported image ID {id:?}")))?;
    let diff_ids = inspect
        .root_fs
        .and_then(|r| r.layers)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            d.parse()
                .map_err(|_| invalid(format!("layer diffID {d:?}")))
        })
        .collect::<Result<Vec<Digest>, _>>()?;
    let config = inspect.config.map(|c| RuntimeConfig {
        user: non_empty(c.user),
        exposed_ports: set_of(c.exposed_ports),
        env: c.env,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        volumes: set_of(c.volumes),
        working_dir: non_empty(c.working_dir),
        labels: c.labels.map(|l| l.into_iter().collect()),
        stop_signal: non_empty(c.stop_signal),
        ..RuntimeConfig::default()
    });
    let config = ImageConfig {
        created: non_empty(inspect.created.map(|c| c.to_string())),
        author: non_empty(inspect.author),
        architecture: inspect.architecture.unwrap_or_default(),
        os: inspect.os.unwrap_or_default(),
        os_version: non_empty(inspect.os_version),
        variant: non_empty(inspect.variant),
        config,
        rootfs: RootFs {
            diff_ids: diff_ids.clone(),
            ..RootFs::default()
        },
        ..ImageConfig::default()
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::DOCKER_MANIFEST.to_string()),
        config: Descriptor::new(oci::DOCKER_CONFIG, id_digest, 0),
        layers: diff_ids
            .iter()
            .map(|d| Descriptor::new(DOCKER_LAYER_TAR, d.clone(), 0))
            .collect(),
        annotations: None,
        extra: BTreeMap::new(),
    };
    let backend = Arc::new(DaemonBlobs {
        daemon: daemon.clone(),
        id,
        diff_ids,
        launch_cache,
        saved: OnceLock::new(),
    });
    Image::from_parts(reference.to_string(), backend, manifest, config)
}

/// Copies `r` into a new file at `path`; returns its size.
pub(super) fn copy_to_file(mut r: impl Read, path: &std::path::Path) -> io::Result<u64> {
    let mut f = File::create(path)?;
    let n = io::copy(&mut r, &mut f)?;
    f.sync_data()?;
    Ok(n)
}

/// Whether the file at `path` starts with the gzip magic.
pub(super) fn is_gzip(path: &std::path::Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path).is_ok_and(|mut f| f.read_exact(&mut magic).is_ok()) && magic == [0x1f, 0x8b]
}
