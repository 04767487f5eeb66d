//! Exporting the cache after the image (checklist CA-02, CA-03, IM-15): every `cache = true` layer of
//! the group's buildpacks plus the SBOM cache layer. Unchanged layers are kept by diffID (no copy);
//! tars made for the image export are reused. Failures are the caller's to turn into warnings
//! (EP-17).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::layers::Owner;
use super::plan::{read_buildpack_layers, GroupBuildpack, LayerContent, CACHE_SBOM_ID};
use crate::cache::{
    find_layer, sha_of, BuildpackLayerMetadata, BuildpackLayersMetadata, Cache, CacheError,
    CacheMetadata, LayerSha,
};

/// Inputs of a cache export.
pub struct CacheExport<'a> {
    /// `<layers>`.
    pub layers_dir: &'a Path,
    /// The group.
    pub group: &'a [GroupBuildpack],
    /// Owner of layer content.
    pub owner: Owner,
    /// Tars already made by the image export, by layer id (`<bp>:<layer>`), with their diffIDs.
    pub tars: BTreeMap<String, (PathBuf, String)>,
    /// A scratch dir for new tars.
    pub scratch: &'a Path,
    /// Whether the SBOM cache layer is exported (`[P≥0.8]`).
    pub sbom: bool,
}

/// Writes and commits the cache; returns the metadata committed.
pub fn export_cache(
    cache: &mut dyn Cache,
    req: &CacheExport<'_>,
) -> Result<CacheMetadata, CacheError> {
    let previous = cache.retrieve_metadata().unwrap_or_default();
    let mut meta = CacheMetadata::default();
    for bp in req.group {
        let bp_dir = req.layers_dir.join(bp.escaped_id());
        let mut entry = BuildpackLayersMetadata {
            key: bp.id.clone(),
            version: bp.version.clone(),
            layers: BTreeMap::new(),
            store: None,
        };
        let layers = match read_buildpack_layers(&bp_dir) {
            Ok(l) => l,
            Err(e) => {
                warn!("Failed to read layers of '{}': {e}", bp.id);
                continue;
            }
        };
        for layer in layers.into_iter().filter(|l| l.toml.types.cache) {
            let id = format!("{}:{}", bp.id, layer.name);
            if !layer.dir.is_dir() {
                warn!("Failed to cache layer '{id}' because it has no contents");
                continue;
            }
            let prev_sha =
                find_layer(&previous.buildpacks, &bp.id, &layer.name).map(|l| l.sha.clone());
            let sha = match add_or_reuse(
                cache,
                req,
                &id,
                LayerContent::Dir(layer.dir.clone()),
                prev_sha.as_deref(),
            ) {
                Ok(sha) => sha,
                Err(e) => {
                    warn!("Failed to cache layer '{id}': {e}");
                    continue;
                }
            };
            entry.layers.insert(
                layer.name.clone(),
                BuildpackLayerMetadata {
                    sha,
                    data: layer.toml.metadata.clone(),
                    build: layer.toml.types.build,
                    launch: layer.toml.types.launch,
                    cache: true,
                },
            );
        }
        meta.buildpacks.push(entry);
    }
    let sbom_dir = req.layers_dir.join("sbom").join("cache");
    if req.sbom && sbom_dir.is_dir() {
        match add_or_reuse(
            cache,
            req,
            CACHE_SBOM_ID,
            LayerContent::Dir(sbom_dir),
            sha_of(&previous.sbom),
        ) {
            Ok(sha) => meta.sbom = LayerSha::new(sha),
            Err(e) => warn!("Failed to cache layer '{CACHE_SBOM_ID}': {e}"),
        }
    }
    cache.set_metadata(&meta)?;
    cache.commit()?;
    Ok(meta)
}

fn add_or_reuse(
    cache: &mut dyn Cache,
    req: &CacheExport<'_>,
    id: &str,
    content: LayerContent,
    previous_sha: Option<&str>,
) -> Result<String, CacheError> {
    let (tar, diff_id, owned) = match req.tars.get(id) {
        Some((p, d)) => (p.clone(), d.clone(), false),
        None => {
            let p = req
                .scratch
                .join(format!(".cache-tar-{}", id.replace(['/', ':'], "_")));
            let d = super::layers::diff_id(&content, req.owner, Some(&p))
                .map_err(|e| CacheError::io(&p, e))?;
            (p, d, true)
        }
    };
    let result = (|| {
        if previous_sha == Some(diff_id.as_str()) {
            match cache.verify_layer(&diff_id) {
                Ok(()) => {
                    info!("Reusing cache layer '{id}'");
                    return cache.reuse_layer(&diff_id).map(|_| diff_id.clone());
                }
                Err(e) => warn!("Skipping reuse for layer {id}: {e}"),
            }
        }
        info!("Adding cache layer '{id}'");
        cache
            .add_layer_file(&tar, &diff_id)
            .map(|_| diff_id.clone())
    })();
    if owned {
        let _ = std::fs::remove_file(&tar);
    }
    result
}
