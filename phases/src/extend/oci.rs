//! Reading the image being extended from an OCI layout and writing the extended run image
//! (checklist EX-05, EX-07): `<extended>/run/<manifest digest>/` is an OCI layout holding the new
//! manifest and config plus only the extension layers' blobs (base layers referenced, not copied).
//!
//! Configs and manifests are handled as JSON values so that Docker v2 media types and unknown fields
//! of the base survive. TODO(integration): move onto `image::layout` once it lands in main.

use std::path::{Path, PathBuf};

use crate::archive::MEDIA_TYPE_TAR_GZIP;
use crate::image::layout::{Layout, LayoutError, Selector};
use crate::image::oci::{Descriptor, History, Manifest, OCI_MANIFEST};
use crate::image::{Digest, Image, ImageBuilder, ImageError};

use super::apply::{ImageState, Outcome};

/// Failures reading or writing images.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A document is malformed or lacks a field.
    #[error("{path}: {message}")]
    Format {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The image layer (layout store, image reader/builder) failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl From<LayoutError> for OciError {
    fn from(e: LayoutError) -> Self {
        OciError::Image(e.into())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn digest(path: &Path, d: &str) -> Result<Digest, OciError> {
    d.parse().map_err(|_| OciError::Format {
        path: path.to_path_buf(),
        message: format!("invalid digest {d:?}"),
    })
}

/// The image being extended, read from an OCI layout (OCI or Docker media types, an index resolved to
/// this platform's manifest).
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The image.
    pub image: Image,
    /// Its manifest digest (`sha256:<hex>`).
    pub digest: String,
}

impl BaseImage {
    /// Reads the image whose manifest (or index) digest is `digest`, or the layout's only image.
    pub fn read(layout: &Path, digest_str: Option<&str>) -> Result<Self, OciError> {
        let selector = match digest_str {
            Some(d) => Selector::Digest(digest(layout, d)?),
            None => Selector::Only,
        };
        let image = Image::from_layout(layout, &selector, None)?;
        Ok(BaseImage {
            digest: image.manifest_digest().to_string(),
            image,
        })
    }

    /// The config fields Dockerfile steps change.
    pub fn state(&self) -> ImageState {
        let c = self.image.config().config.clone().unwrap_or_default();
        ImageState {
            env: c.env.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            workdir: c.working_dir.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            shell: Vec::new(),
        }
    }

    /// Paths of the layer blobs in order (they must be present in the layout to be unpacked: a
    /// missing one fails the unpack, naming it).
    pub fn layer_paths(&self) -> Vec<PathBuf> {
        let Some(layout) = self.image.layout() else {
            return Vec::new();
        };
        self.image
            .manifest()
            .layers
            .iter()
            .map(|l| layout.blob_path(&l.digest))
            .collect()
    }

    /// Whether every layer blob is in the layout (a sparse layout has none).
    pub fn has_all_layers(&self) -> bool {
        self.layer_paths().len() == self.image.manifest().layers.len()
            && self.layer_paths().iter().all(|p| p.is_file())
    }
}

/// The `created` time of the extended config and its new history entries (the epoch: the extension
/// layers are reproducible, so is their config).
const CREATED: i64 = 0;

/// Writes the extended run image as a sparse OCI layout under `<extended>/run/<manifest digest>/`
/// (built in a temp dir, then renamed: nothing half-written). `blobs_dir` holds the new layers.
///
/// Format (read by the exporter): `index.json` lists one manifest tagged `extended`; the manifest and
/// config list the base layers followed by the new ones, in the base's media-type family; only the
/// new layers' blobs, the config and the manifest are present (base blobs are referenced, not copied).
pub fn write_extended_run(
    extended_dir: &Path,
    base: &BaseImage,
    outcome: &Outcome,
    blobs_dir: &Path,
) -> Result<PathBuf, OciError> {
    let run_dir = extended_dir.join("run");
    cnb_spec::io::create_dirs(&run_dir).map_err(io_err(&run_dir))?;
    // Built next to `run/`, not in it: the reference's exporter wants exactly one entry there.
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-extended-run-")
        .tempdir_in(extended_dir)
        .map_err(io_err(extended_dir))?;
    // Renamed into place below: the exporter reads it as the build user.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(cnb_spec::io::DIR_MODE),
    )
    .map_err(io_err(tmp.path()))?;

    let mut b = ImageBuilder::from_base(&base.image)?;
    let mut new_blobs = Vec::new();
    for l in &outcome.layers {
        let d = digest(blobs_dir, &l.blob.digest)?;
        let path = blobs_dir.join(d.hex());
        let media_type = l.blob.media_type.as_deref().unwrap_or(MEDIA_TYPE_TAR_GZIP);
        b.add_layer_file(
            path.clone(),
            digest(blobs_dir, &l.blob.diff_id)?,
            d.clone(),
            l.blob.size,
            media_type,
            None,
        );
        new_blobs.push((d, path));
    }
    let created = crate::image::oci::rfc3339(CREATED);
    let config = b.config_mut();
    config.created = Some(created.clone());
    let history = config.history.get_or_insert_with(Vec::new);
    // One non-empty history entry per base layer, as the reference's extender normalises it
    // (imgutil's OverrideHistoryIfNeeded): its exporter finds an extension layer's entry by counting.
    let base_layers = base.image.manifest().layers.len();
    if history
        .iter()
        .filter(|h| h.empty_layer != Some(true))
        .count()
        != base_layers
    {
        *history = vec![History::default(); base_layers];
    }
    for h in &outcome.history {
        history.push(History {
            created: Some(created.clone()),
            created_by: Some(h.created_by.clone()),
            empty_layer: h.empty_layer.then_some(true),
            ..History::default()
        });
    }
    let rt = config.config.get_or_insert_with(Default::default);
    rt.env = Some(outcome.state.env.clone());
    rt.user = Some(outcome.state.user.clone());
    if !outcome.state.workdir.is_empty() {
        rt.working_dir = Some(outcome.state.workdir.clone());
    }
    let mut labels = outcome.state.labels.clone();
    labels.insert(
        "io.buildpacks.rebasable".into(),
        outcome.rebasable.to_string(),
    );
    rt.labels = Some(labels);
    let (config_bytes, manifest_bytes) = b.render()?;

    let layout = Layout::create(tmp.path())?;
    for (d, src) in &new_blobs {
        let dst = layout.blob_path(d);
        if std::fs::hard_link(src, &dst).is_err() {
            let f = std::fs::File::open(src).map_err(io_err(src))?;
            layout.write_blob_from(f, Some(d))?;
        }
    }
    layout.write_blob(&config_bytes)?;
    let (manifest_digest, _) = layout.write_blob(&manifest_bytes)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| OciError::Format {
            path: tmp.path().to_path_buf(),
            message: format!("rendered manifest: {e}"),
        })?;
    let media_type = manifest.media_type.unwrap_or_else(|| OCI_MANIFEST.into());
    layout.add_manifest(
        &Descriptor::new(
            media_type,
            manifest_digest.clone(),
            manifest_bytes.len() as u64,
        ),
        &["extended".to_string()],
    )?;

    let dest = run_dir.join(manifest_digest.as_str());
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(io_err(&dest))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &dest).map_err(io_err(&dest))?;
    // An earlier extension of another image (or an interrupted one) must not be read instead.
    for entry in std::fs::read_dir(&run_dir).map_err(io_err(&run_dir))? {
        let path = entry.map_err(io_err(&run_dir))?.path();
        if path != dest {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io_err(&path))?;
        }
    }
    Ok(dest)
}

/// Copies an image from a registry into an OCI layout at `dir` (manifest + config, and the layers
/// when `with_layers`), as the restorer does for the extender (`<kaniko>/cache/base/<digest>`).
/// Returns the manifest digest. Blobs already present are not fetched again.
pub fn fetch_to_layout(
    client: &crate::image::registry::RegistryClient,
    reference: &crate::image::registry::ImageRef,
    dir: &Path,
    with_layers: bool,
) -> Result<String, OciError> {
    let image = Image::from_registry(client, reference)?;
    let layout = Layout::create(dir)?;
    layout.write_blob(image.config_bytes())?;
    if with_layers {
        for l in &image.manifest().layers {
            if !layout.has_blob(&l.digest) {
                layout.write_blob_from(image.open_blob(&l.digest)?, Some(&l.digest))?;
            }
        }
    }
    let (d, _) = layout.write_blob(image.manifest_bytes())?;
    layout.add_manifest(
        &Descriptor::new(
            image.manifest_media_type(),
            d.clone(),
            image.manifest_bytes().len() as u64,
        ),
        &[],
    )?;
    Ok(d.to_string())
}
