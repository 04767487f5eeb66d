//! [`Exporter::export`]: turn a layer plan into an image through any store's [`ImageWriter`], reusing
//! every layer the previous or run image already has (checklist EP-06…EP-16, LY-06, LY-07, IM-15).
//!
//! Reuse rules:
//! - [`LayerContent::Previous`] (a buildpack left only the `.toml`): the previous image's blob is used
//!   as is; nothing is tarred, and nothing is written when the destination already holds it.
//! - Anything else is tarred. When a previous image exists, the tar is first only hashed (no
//!   compression); if that diffID is a layer of the previous or run image, its blob is reused.
//!   Otherwise (or with no previous image) the layer is tarred, hashed and gzipped in one pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::info;

use super::config::{build_config, ConfigInputs};
use super::extended::{normalize_layer, ExtensionLayer};
use super::layers::Owner;
use super::metadata::{LifecycleMetadata, RunImageForExport, RunImageForRebase, StackMetadata};
use super::plan::{GroupBuildpack, LayerContent, LayerRole, PlannedLayer};
use crate::cache::{BuildpackLayersMetadata, LayerSha, StoreToml};
use crate::image::oci::{Descriptor, ImageConfig, OCI_LAYER, OCI_LAYER_TAR};
use crate::image::{
    Digest, Image, ImageBuilder, ImageError, ImageWriter, LayerEncoding, LayerRef, SaveReport,
};

/// Export errors; each names the layer or image.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Tarring a layer failed.
    #[error("exporting layer '{id}'")]
    Layer {
        /// Layer id.
        id: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing an image failed.
    #[error("image '{image}'")]
    Store {
        /// Image or destination name.
        image: String,
        /// Cause.
        #[source]
        source: Box<ImageError>,
    },
    /// A layer to reuse is missing from the previous image.
    #[error("cannot reuse layer '{id}': previous image has no layer with diffID '{diff_id}'")]
    MissingPreviousLayer {
        /// Layer id.
        id: String,
        /// DiffID.
        diff_id: String,
    },
}

/// How a layer got into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOutcome {
    /// Taken from the previous (or run) image's blob.
    Reused,
    /// Newly compressed and written.
    Added,
}

/// A layer of the exported image.
#[derive(Debug, Clone)]
pub struct ExportedLayer {
    /// Layer id.
    pub id: String,
    /// DiffID.
    pub diff_id: String,
    /// Blob.
    pub blob: Descriptor,
    /// Reused or added.
    pub outcome: LayerOutcome,
    /// The uncompressed tar, when it was kept for the cache (IM-15).
    pub tar: Option<PathBuf>,
}

/// Everything the exporter needs besides the destination.
pub struct ExportRequest<'a> {
    /// The ordered layer plan.
    pub plan: Vec<PlannedLayer>,
    /// The group (for the label's `buildpacks` and `store`).
    pub group: &'a [GroupBuildpack],
    /// `store.toml` `[metadata]` per group buildpack index.
    pub stores: BTreeMap<usize, toml::Table>,
    /// Owner of layer content.
    pub owner: Owner,
    /// The run image (or extended run image).
    pub base: &'a Image,
    /// The base config to start from (the base's own, or the extended run image's).
    pub base_config: ImageConfig,
    /// The previous image, if found.
    pub previous: Option<&'a Image>,
    /// Layer ids whose uncompressed tar must be kept for the cache.
    pub keep_tars: Vec<String>,
    /// Config settings (its `layers` and the lifecycle label are filled in here).
    pub config: ConfigInputs,
    /// Run image name and mirrors for the label (`[P≥0.12]`).
    pub run_image_name: String,
    /// Run image mirrors.
    pub run_image_mirrors: Vec<String>,
    /// Extension layers appended after the run image's layers (EP-07); `base_config` is then the
    /// extended run image's config, whose history covers them.
    pub extension: Vec<ExtensionLayer>,
}

/// The result of an export.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    /// Manifest digest.
    pub digest: String,
    /// Manifest size.
    pub manifest_size: u64,
    /// The config digest (image id).
    pub image_id: String,
    /// Whether the store keeps the manifest (not a daemon): `report.toml` then records the digest.
    pub has_manifest: bool,
    /// The lifecycle metadata written to the label.
    pub metadata: LifecycleMetadata,
    /// The new layers in order.
    pub layers: Vec<ExportedLayer>,
    /// The config bytes written.
    pub config: Vec<u8>,
    /// The manifest bytes written.
    pub manifest: Vec<u8>,
}

/// A layer the exporter can take from an existing image: that image and the layer.
type Known<'a> = BTreeMap<String, (&'a Image, LayerRef)>;

/// Writes app images through one writer.
pub struct Exporter<'d> {
    dest: &'d dyn ImageWriter,
    threads: usize,
}

impl<'d> Exporter<'d> {
    /// An exporter writing to `dest`, producing layers on every available core.
    pub fn new(dest: &'d dyn ImageWriter) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { dest, threads }
    }

    /// Limits the threads producing layers (1 = one after another).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    fn store_err(&self, source: ImageError) -> ExportError {
        ExportError::Store {
            image: self.dest.name(),
            source: Box::new(source),
        }
    }

    /// Builds and writes the image described by `req`.
    pub fn export(&self, req: ExportRequest<'_>) -> Result<ExportOutcome, ExportError> {
        let base_err = |source| ExportError::Store {
            image: req.base.name().to_string(),
            source: Box::new(source),
        };
        let base_layers = req.base.layers().map_err(base_err)?;
        // The base layers are handed to the writer when saving (only where it lacks them).
        let mut image = ImageBuilder::from_base(req.base)
            .map_err(base_err)?
            .normalize();
        let mut known: Known<'_> = BTreeMap::new();
        for l in &base_layers {
            known.insert(l.diff_id.to_string(), (req.base, l.clone()));
        }
        if let Some(prev) = req.previous {
            let layers = prev.layers().map_err(|source| ExportError::Store {
                image: prev.name().to_string(),
                source: Box::new(source),
            })?;
            for l in layers {
                known.insert(l.diff_id.to_string(), (prev, l));
            }
        }
        let hash_first = req.previous.is_some();
        for ext in &req.extension {
            let (layer, outcome) = self.export_extension_layer(ext)?;
            match outcome {
                LayerOutcome::Reused => info!("Reusing layer '{}'", ext.id),
                LayerOutcome::Added => info!("Adding layer '{}'", ext.id),
            }
            image.add_stored_layer(layer, None);
        }

        let results = self.export_layers_parallel(&req, &known, hash_first);
        let mut exported = Vec::with_capacity(req.plan.len());
        for (layer, r) in req.plan.iter().zip(results) {
            let e = r?;
            match e.outcome {
                LayerOutcome::Reused => info!("Reusing layer '{}'", layer.id),
                LayerOutcome::Added => info!("Adding layer '{}'", layer.id),
            }
            exported.push(e);
        }
        log_app_layers(&req.plan, &exported);

        let metadata = lifecycle_metadata(&req, &exported);
        let mut config = req.config.clone();
        config.layers = req
            .plan
            .iter()
            .zip(&exported)
            .map(|(p, e)| (e.diff_id.clone(), p.created_by.clone()))
            .collect();
        let label = serde_json::to_string(&metadata)
            .map(cnb_spec::io::go_json_escape)
            .map_err(|source| {
                self.store_err(ImageError::Json {
                    image: self.dest.name(),
                    what: "lifecycle metadata label".into(),
                    source,
                })
            })?;
        config.labels.insert(
            0,
            (super::metadata::LIFECYCLE_METADATA_LABEL.to_string(), label),
        );
        let mut base_config = req.base_config.clone();
        base_config.rootfs.diff_ids = image.layers().into_iter().map(|l| l.diff_id).collect();
        image.set_config(build_config(&base_config, &config));
        for e in &exported {
            let diff_id = parse_digest(&e.id, &e.diff_id)?;
            image.add_stored_layer(
                LayerRef {
                    diff_id,
                    descriptor: e.blob.clone(),
                },
                None,
            );
        }
        let saved = image.save(self.dest).map_err(|e| self.store_err(e))?;
        Ok(outcome(saved, metadata, exported))
    }

    /// Produces the planned layers on up to [`Exporter::threads`] std threads (the layers are
    /// independent: each is tarred, hashed, compressed and stored on its own); results come back in
    /// plan order, so logs, config and manifest do not depend on scheduling.
    fn export_layers_parallel(
        &self,
        req: &ExportRequest<'_>,
        known: &Known<'_>,
        hash_first: bool,
    ) -> Vec<Result<ExportedLayer, ExportError>> {
        let threads = self.threads.max(1);
        let work: Vec<&PlannedLayer> = req.plan.iter().collect();
        crate::archive::parallel_map(work, threads, |l| {
            self.export_layer(l, req, known, hash_first)
        })
        .into_iter()
        .zip(&req.plan)
        .map(|(r, l)| {
            r.unwrap_or_else(|| {
                Err(ExportError::Layer {
                    id: l.id.clone(),
                    source: std::io::Error::other("layer worker thread panicked"),
                })
            })
        })
        .collect()
    }

    /// Rewrites an extension layer (IM-11) and stores its blob unless the writer has it.
    fn export_extension_layer(
        &self,
        ext: &ExtensionLayer,
    ) -> Result<(LayerRef, LayerOutcome), ExportError> {
        let tmp = self
            .dest
            .scratch_dir()
            .join(format!(".blob-{}", sanitize(&ext.id)));
        let n = normalize_layer(&ext.blob, &tmp, crate::archive::NORMALIZED_MTIME).map_err(
            |source| ExportError::Layer {
                id: ext.id.clone(),
                source,
            },
        )?;
        let layer = LayerRef {
            diff_id: parse_digest(&ext.id, &n.diff_id)?,
            descriptor: Descriptor::new(OCI_LAYER, parse_digest(&ext.id, &n.digest)?, n.size),
        };
        let outcome = self.store_new_layer(&tmp, &layer)?;
        Ok((layer, outcome))
    }

    /// Hands a freshly built blob to the writer, or drops it when the writer has that blob.
    fn store_new_layer(
        &self,
        path: &std::path::Path,
        layer: &LayerRef,
    ) -> Result<LayerOutcome, ExportError> {
        if self.dest.has_layer(layer).map_err(|e| self.store_err(e))? {
            let _ = std::fs::remove_file(path);
            Ok(LayerOutcome::Reused)
        } else {
            self.dest
                .put_layer_file(path, layer)
                .map_err(|e| self.store_err(e))?;
            Ok(LayerOutcome::Added)
        }
    }

    fn export_layer(
        &self,
        layer: &PlannedLayer,
        req: &ExportRequest<'_>,
        known: &Known<'_>,
        hash_first: bool,
    ) -> Result<ExportedLayer, ExportError> {
        let io_err = |source| ExportError::Layer {
            id: layer.id.clone(),
            source,
        };
        if let LayerContent::Previous(diff_id) = &layer.content {
            let prev = req.previous.and_then(|p| {
                let d: Digest = diff_id.parse().ok()?;
                p.layer_by_diff_id(&d).map(|l| (p, l))
            });
            let Some((prev, l)) = prev else {
                return Err(ExportError::MissingPreviousLayer {
                    id: layer.id.clone(),
                    diff_id: diff_id.clone(),
                });
            };
            self.dest
                .copy_layer(prev, &l)
                .map_err(|e| self.store_err(e))?;
            return Ok(ExportedLayer {
                id: layer.id.clone(),
                diff_id: diff_id.clone(),
                blob: l.descriptor,
                outcome: LayerOutcome::Reused,
                tar: None,
            });
        }
        let scratch = self.dest.scratch_dir();
        let tar = req
            .keep_tars
            .contains(&layer.id)
            .then(|| scratch.join(format!(".tar-{}", sanitize(&layer.id))));
        if hash_first {
            let diff_id = super::layers::diff_id(&layer.content, req.owner, tar.as_deref())
                .map_err(io_err)?;
            if let Some((src, l)) = known.get(diff_id.as_str()) {
                self.dest
                    .copy_layer(src, l)
                    .map_err(|e| self.store_err(e))?;
                return Ok(ExportedLayer {
                    id: layer.id.clone(),
                    diff_id,
                    blob: l.descriptor.clone(),
                    outcome: LayerOutcome::Reused,
                    tar,
                });
            }
        }
        let blob_tmp = scratch.join(format!(".blob-{}", sanitize(&layer.id)));
        let tee = if hash_first { None } else { tar.as_deref() };
        let (built, media_type) = match self.dest.layer_encoding() {
            LayerEncoding::Gzip => (
                super::layers::build_gzip(&layer.content, req.owner, &blob_tmp, tee),
                OCI_LAYER,
            ),
            LayerEncoding::Tar => (
                super::layers::build_tar(&layer.content, req.owner, &blob_tmp, tee),
                OCI_LAYER_TAR,
            ),
        };
        let built = built.map_err(io_err)?;
        let new = LayerRef {
            diff_id: parse_digest(&layer.id, &built.diff_id)?,
            descriptor: Descriptor::new(
                media_type,
                parse_digest(&layer.id, &built.digest)?,
                built.size,
            ),
        };
        let outcome = self.store_new_layer(&blob_tmp, &new)?;
        Ok(ExportedLayer {
            id: layer.id.clone(),
            diff_id: built.diff_id,
            blob: new.descriptor,
            outcome,
            tar,
        })
    }
}

fn parse_digest(id: &str, digest: &str) -> Result<Digest, ExportError> {
    digest.parse().map_err(|_| ExportError::Layer {
        id: id.to_string(),
        source: std::io::Error::other(format!("invalid digest {digest:?}")),
    })
}

fn outcome(
    saved: SaveReport,
    metadata: LifecycleMetadata,
    layers: Vec<ExportedLayer>,
) -> ExportOutcome {
    ExportOutcome {
        digest: saved.manifest_digest.to_string(),
        manifest_size: saved.manifest_size,
        image_id: saved.image_id.to_string(),
        has_manifest: saved.has_manifest,
        metadata,
        layers,
        config: saved.config_bytes,
        manifest: saved.manifest_bytes,
    }
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn log_app_layers(plan: &[PlannedLayer], exported: &[ExportedLayer]) {
    let app: Vec<&ExportedLayer> = plan
        .iter()
        .zip(exported)
        .filter(|(p, _)| p.role == LayerRole::App)
        .map(|(_, e)| e)
        .collect();
    let reused = app
        .iter()
        .filter(|e| e.outcome == LayerOutcome::Reused)
        .count();
    let total = app.len();
    if reused > 0 {
        info!("Reused {reused}/{total} app layer(s)");
    }
    if total > reused {
        info!("Added {}/{total} app layer(s)", total - reused);
    }
}

/// Builds the `io.buildpacks.lifecycle.metadata` label content (L-LIFECYCLE).
fn lifecycle_metadata(req: &ExportRequest<'_>, exported: &[ExportedLayer]) -> LifecycleMetadata {
    let buildpacks = req
        .group
        .iter()
        .enumerate()
        .map(|(i, bp)| BuildpackLayersMetadata {
            key: bp.id.clone(),
            version: bp.version.clone(),
            layers: BTreeMap::new(),
            store: req.stores.get(&i).map(|v| StoreToml {
                metadata: v.clone(),
            }),
        })
        .collect();
    let mut m = LifecycleMetadata {
        buildpacks,
        ..Default::default()
    };
    for (p, e) in req.plan.iter().zip(exported) {
        let sha = LayerSha::new(e.diff_id.clone());
        match &p.role {
            LayerRole::Buildpack {
                buildpack,
                name,
                metadata,
            } => {
                if let Some(b) = m.buildpacks.get_mut(*buildpack) {
                    let mut md = metadata.clone();
                    md.sha = e.diff_id.clone();
                    b.layers.insert(name.clone(), md);
                }
            }
            LayerRole::Sbom => m.sbom = Some(sha),
            LayerRole::App => m.app.push(sha),
            LayerRole::Launcher => m.launcher = sha,
            LayerRole::Config => m.config = sha,
            LayerRole::ProcessTypes => m.process_types = sha,
        }
    }
    // `runImage.image`/`mirrors` exist from Platform 0.12; `stack.runImage` always carries them (EP-05).
    let with_image = req.config.platform_api.run_image_label_has_image();
    m.run_image = RunImageForRebase {
        top_layer: req
            .base
            .top_layer()
            .map(ToString::to_string)
            .unwrap_or_default(),
        reference: req.base.identifier(),
        image: if with_image {
            req.run_image_name.clone()
        } else {
            String::new()
        },
        mirrors: if with_image {
            req.run_image_mirrors.clone()
        } else {
            Vec::new()
        },
    };
    m.stack = Some(StackMetadata {
        run_image: RunImageForExport {
            image: req.run_image_name.clone(),
            mirrors: req.run_image_mirrors.clone(),
        },
    });
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::config::NORMALIZED_CREATED;
    use crate::export::plan::{plan_layers, PlanInputs};
    use crate::export::slices::slice_app;
    use crate::image::layout::{IndexUpdate, Layout, LayoutStore, LayoutWriter};
    use crate::image::oci::Platform;
    use cnb_spec::PlatformApi;
    use std::fs;
    use std::path::Path;

    fn writer(dir: &Path) -> LayoutWriter {
        LayoutWriter::new(
            Layout::create(dir).unwrap(),
            IndexUpdate::Replace("latest".into()),
        )
    }

    /// A one-layer base image in a layout.
    fn base_image(dir: &Path) -> Image {
        let dest = writer(dir);
        let src = dir.join("src/etc");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("os-release"), "ID=test\n").unwrap();
        let tmp = dest.scratch_dir().join("b");
        let built = crate::export::layers::build_gzip(
            &LayerContent::Dir(src),
            Owner { uid: 0, gid: 0 },
            &tmp,
            None,
        )
        .unwrap();
        let mut b = ImageBuilder::empty(&Platform::current());
        b.add_layer_file(
            tmp,
            built.diff_id.parse().unwrap(),
            built.digest.parse().unwrap(),
            built.size,
            OCI_LAYER,
            None,
        );
        b.set_config(
            serde_json::from_value(serde_json::json!({
                "architecture": "amd64", "os": "linux",
                "config": {"Env": ["PATH=/bin"], "User": "1000:1000", "Labels": {"io.buildpacks.base.id": "t"}},
                "rootfs": {"type": "layers", "diff_ids": [built.diff_id]},
            }))
            .unwrap(),
        );
        b.save(&dest).unwrap();
        LayoutStore::open_path(dir).unwrap().unwrap()
    }

    struct Fixture {
        _t: tempfile::TempDir,
        layers: PathBuf,
        app: PathBuf,
        launcher: PathBuf,
        out: PathBuf,
        base: Image,
    }

    fn fixture() -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let layers = t.path().join("layers");
        let app = t.path().join("workspace");
        fs::create_dir_all(layers.join("bp_a/web/bin")).unwrap();
        fs::write(layers.join("bp_a/web/bin/server"), "v1").unwrap();
        fs::write(layers.join("bp_a/web.toml"), "[types]\nlaunch = true\n").unwrap();
        fs::create_dir_all(layers.join("config")).unwrap();
        fs::write(
            layers.join("config/metadata.toml"),
            "[[processes]]\ntype = \"web\"\n",
        )
        .unwrap();
        fs::create_dir_all(&app).unwrap();
        fs::write(app.join("main.sh"), "echo hi").unwrap();
        let launcher = t.path().join("launcher");
        fs::write(&launcher, "launcher-binary").unwrap();
        let base = base_image(&t.path().join("run"));
        let out = t.path().join("out");
        Fixture {
            layers,
            app,
            launcher,
            out,
            base,
            _t: t,
        }
    }

    fn export(f: &Fixture) -> (ExportOutcome, (u64, u64)) {
        let previous = LayoutStore::open_path(&f.out).unwrap();
        let prev_meta = super::super::metadata::metadata_from_label(
            previous
                .as_ref()
                .and_then(|p| p.label(super::super::metadata::LIFECYCLE_METADATA_LABEL)),
        );
        let group = vec![GroupBuildpack {
            id: "bp/a".into(),
            version: "1".into(),
        }];
        let slices = slice_app(&f.app, &[]).unwrap();
        let types = vec!["web".to_string()];
        let plan = plan_layers(&PlanInputs {
            layers_dir: &f.layers,
            app_dir: &f.app,
            group: &group,
            previous: &prev_meta,
            app_slices: &slices,
            launcher: &f.launcher,
            process_types: &types,
            sbom: true,
        })
        .unwrap();
        let dest = writer(&f.out);
        let out = Exporter::new(&dest)
            .export(ExportRequest {
                plan,
                group: &group,
                stores: BTreeMap::new(),
                owner: Owner {
                    uid: 1000,
                    gid: 1000,
                },
                base: &f.base,
                base_config: f.base.config().clone(),
                previous: previous.as_ref(),
                keep_tars: vec![],
                config: ConfigInputs {
                    layers_dir: "/layers".into(),
                    app_dir: "/workspace".into(),
                    platform_api: PlatformApi::new(0, 13),
                    created: NORMALIZED_CREATED.into(),
                    entrypoint: "/cnb/process/web".into(),
                    labels: vec![],
                    layers: vec![],
                },
                run_image_name: "run".into(),
                run_image_mirrors: vec![],
                extension: vec![],
            })
            .unwrap();
        let s = dest.stats();
        (out, (s.blobs_written, s.bytes_written))
    }

    #[test]
    fn rebuild_reuses_every_unchanged_layer_and_same_digest() {
        let f = fixture();
        let (first, writes) = export(&f);
        assert_eq!(
            first.layers.len(),
            5,
            "bp layer, app, launcher, config, process types"
        );
        assert!(first
            .layers
            .iter()
            .all(|l| l.outcome == LayerOutcome::Added));
        assert_eq!(
            writes.0, 5,
            "five new layers (the base layer is hard-linked)"
        );

        let (second, writes) = export(&f);
        assert_eq!(second.digest, first.digest, "same inputs, same digest");
        assert!(second
            .layers
            .iter()
            .all(|l| l.outcome == LayerOutcome::Reused));
        assert_eq!(writes, (0, 0), "no layer blob written on a no-op rebuild");

        // LY-06: the buildpack keeps only the .toml: reused by diffID, not re-tarred.
        fs::remove_dir_all(f.layers.join("bp_a/web")).unwrap();
        let (third, writes) = export(&f);
        assert_eq!(third.digest, first.digest);
        assert_eq!(writes, (0, 0));

        // A changed app changes only the app layer.
        fs::write(f.app.join("main.sh"), "echo changed").unwrap();
        let (fourth, writes) = export(&f);
        assert_ne!(fourth.digest, first.digest);
        let added: Vec<&str> = fourth
            .layers
            .iter()
            .filter(|l| l.outcome == LayerOutcome::Added)
            .map(|l| l.id.as_str())
            .collect();
        assert_eq!(added, vec!["app"]);
        assert_eq!(writes.0, 1);
        let img = LayoutStore::open_path(&f.out).unwrap().unwrap();
        let meta = super::super::metadata::metadata_from_label(
            img.label("io.buildpacks.lifecycle.metadata"),
        );
        assert_eq!(meta.app[0].sha, fourth.layers[1].diff_id);
        assert_eq!(meta.run_image.top_layer, f.base.diff_ids()[0].to_string());
        assert_eq!(
            crate::cache::find_layer(&meta.buildpacks, "bp/a", "web")
                .unwrap()
                .sha,
            first.layers[0].diff_id
        );
    }
}
