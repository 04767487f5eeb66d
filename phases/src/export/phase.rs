//! The `exporter` phase on resolved inputs (checklist EP-01…EP-17): reads group, analyzed,
//! `metadata.toml` and project metadata, plans and writes the image under every name, writes
//! `report.toml`, then exports the cache (failures there only warn).

use std::collections::BTreeMap;
use std::path::Path;

use cnb_spec::buildpack::StoreToml;
use cnb_spec::exit;
use cnb_spec::labels::BuildMetadataLabel;
use cnb_spec::platform::{
    Analyzed, BuildMetadata, Group, ImageReport, ProjectMetadata, Report, METADATA_PATH,
};
use tracing::{info, warn};

use super::access::ImageAccess;
use super::cache_export::{export_cache, CacheExport};
use super::config::{created_time, entrypoint, ConfigInputs, NORMALIZED_CREATED};
use super::exporter::{ExportRequest, Exporter};
use super::extended::{self, ExtendedRun};
use super::layers::Owner;
use super::metadata::{
    metadata_from_label, BUILD_METADATA_LABEL, LIFECYCLE_METADATA_LABEL, PROJECT_METADATA_LABEL,
};
use super::plan::{plan_layers, GroupBuildpack, LayerRole, PlanInputs};
use super::slices::slice_app;
use crate::analyze::run_image::{run_image_for_export, RunImageCandidates};
use crate::cli::{Inputs, Phase};
use crate::Failure;

fn fail(e: &(dyn std::error::Error + 'static)) -> Failure {
    Failure::new(exit::EXPORT_ERROR, "export", e)
}

fn fail_msg(m: impl Into<String>) -> Failure {
    Failure::msg(exit::EXPORT_ERROR, "export", m)
}

/// The group's buildpacks as the exporter needs them.
pub fn group_buildpacks(group: &Group) -> Vec<GroupBuildpack> {
    group
        .group
        .iter()
        .map(|e| GroupBuildpack {
            id: e.id.clone(),
            version: e.version.clone(),
        })
        .collect()
}

fn read_store(layers_dir: &Path, bp: &GroupBuildpack) -> Option<toml::Table> {
    let path = layers_dir.join(bp.escaped_id()).join("store.toml");
    match StoreToml::read_optional(&path) {
        Ok(Some(s)) if !s.metadata.is_empty() => Some(s.metadata),
        Ok(_) => None,
        Err(e) => {
            warn!("Ignoring unreadable {}: {e}", path.display());
            None
        }
    }
}

/// Runs the exporter.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let access = ImageAccess::from_inputs(inputs).map_err(|e| e.failure())?;
    // Before anything is pushed: an unusable -cache-image / -cache-dir fails the phase (exit 1).
    crate::restore::check_cache_inputs(inputs)?;
    access.resolve_credentials(&registry_references(inputs));
    crate::privilege::ensure_privileges(Phase::Exporter, inputs)?;
    let api = inputs.platform_api;
    let Some(image_name) = inputs.output_images.first().cloned() else {
        return Err(Failure::msg(
            exit::INVALID_ARGS,
            "parse arguments",
            "at least one image argument is required",
        ));
    };

    let group = Group::read(&inputs.group_path).map_err(|e| fail(&e))?;
    let group_bps = group_buildpacks(&group);
    let analyzed = Analyzed::read(&inputs.analyzed_path).map_err(|e| fail(&e))?;
    let md_path = inputs.layers_dir.join(METADATA_PATH);
    let md = BuildMetadata::read(&md_path).map_err(|e| fail(&e))?;
    let project = ProjectMetadata::read_optional(&inputs.project_metadata_path)
        .map_err(|e| fail(&e))?
        .unwrap_or_default();

    let run_ref = analyzed.run_image_ref().to_string();
    if run_ref.is_empty() {
        return Err(fail_msg("run image not found in analyzed metadata"));
    }
    let base = access
        .open(&run_ref)
        .map_err(|e| fail(&e))?
        .ok_or_else(|| fail_msg(format!("run image '{run_ref}' not found")))?;
    let extended = open_extended(inputs, &analyzed, &base)?;
    let previous: Option<crate::image::Image> = match analyzed.previous_image_ref() {
        "" => None,
        r => match access.open(r) {
            Ok(p) => p,
            Err(e) => {
                warn!("Ignoring previous image '{r}': {e}");
                None
            }
        },
    };
    let prev_meta = previous
        .as_ref()
        .map(|p| metadata_from_label(p.label(LIFECYCLE_METADATA_LABEL)))
        .unwrap_or_else(|| analyzed.metadata.clone());

    if api.exports_lifecycle_sboms() {
        super::sbom_copy::copy_lifecycle_sboms(
            &inputs.layers_dir,
            &super::sbom_copy::lifecycle_dir(),
            &inputs.launcher_sbom_dir,
        )
        .map_err(|e| fail(&e))?;
    }
    let slices: Vec<Vec<String>> = md.slices.iter().map(|s| s.paths.clone()).collect();
    let app_slices = slice_app(&inputs.app_dir, &slices).map_err(|e| {
        fail_msg(format!(
            "reading app dir '{}': {e}",
            inputs.app_dir.display()
        ))
    })?;
    let mut process_types: Vec<String> = md.processes.iter().map(|p| p.r#type.clone()).collect();
    process_types.sort();
    process_types.dedup();
    let plan = plan_layers(&PlanInputs {
        layers_dir: &inputs.layers_dir,
        app_dir: &inputs.app_dir,
        group: &group_bps,
        previous: &prev_meta,
        app_slices: &app_slices,
        launcher: &inputs.launcher_path,
        process_types: &process_types,
        sbom: api.sboms_in_layers_dir(),
    })
    .map_err(|e| fail(&e))?;

    let caching = inputs.cache_dir.is_some() || inputs.cache_image.is_some();
    // `-parallel` (EP-17): the cache is exported concurrently with the image and tars its own layers.
    let parallel = caching && inputs.parallel_export;
    let keep_tars: Vec<String> = plan
        .iter()
        .filter(|p| {
            caching
                && !parallel
                && matches!(&p.role, LayerRole::Buildpack { metadata, .. } if metadata.cache)
        })
        .map(|p| p.id.clone())
        .collect();

    let created = if api.honors_source_date_epoch() {
        match created_time(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref()) {
            Ok(c) => c,
            Err(v) => {
                warn!("Ignoring invalid SOURCE_DATE_EPOCH '{v}'");
                NORMALIZED_CREATED.to_string()
            }
        }
    } else {
        NORMALIZED_CREATED.to_string()
    };
    let entry = entrypoint(
        inputs.default_process_type.as_deref(),
        md.buildpack_default_process_type.as_deref(),
        &process_types,
    )
    .map_err(|e| fail(&e))?;
    if entry == super::config::LAUNCHER_IMAGE_PATH {
        info!("no default process type");
    }
    let launcher_meta = crate::build_info::launcher_metadata();
    let build_label = BuildMetadataLabel::from_build_metadata(&md, launcher_meta)
        .to_json(api)
        .map_err(|e| fail(&e))?;
    let project_label = project.to_label_json().map_err(|e| fail(&e))?;
    let mut labels = vec![
        (BUILD_METADATA_LABEL.to_string(), build_label),
        (PROJECT_METADATA_LABEL.to_string(), project_label),
    ];
    labels.extend(md.labels.iter().map(|l| (l.key.clone(), l.value.clone())));
    if let Some(x) = &extended {
        labels.push((
            super::extended::REBASABLE_LABEL.to_string(),
            x.rebasable().to_string(),
        ));
    }
    if api.supports_exec_env() {
        labels.push((
            cnb_spec::labels::EXEC_ENV.to_string(),
            inputs.exec_env.clone(),
        ));
    }

    let run_for_export = run_for_export(inputs, &analyzed, &md);
    let stores: BTreeMap<usize, toml::Table> = group_bps
        .iter()
        .enumerate()
        .filter_map(|(i, bp)| read_store(&inputs.layers_dir, bp).map(|t| (i, t)))
        .collect();

    let dest = access.writer(&image_name).map_err(|e| fail(&e))?;
    let scratch = dest.scratch_dir();
    info!("Saving {image_name}...");
    let (exported, cache_thread_ok) = std::thread::scope(|s| {
        let cache = parallel.then(|| {
            s.spawn(|| export_cache_step(inputs, &access, &group_bps, BTreeMap::new(), &scratch))
        });
        let exported = Exporter::new(dest.as_ref()).export(ExportRequest {
            plan,
            group: &group_bps,
            stores,
            owner: Owner {
                uid: inputs.uid,
                gid: inputs.gid,
            },
            base: &base,
            base_config: extended
                .as_ref()
                .map_or_else(|| base.config().clone(), |x| x.config.clone()),
            previous: previous.as_ref(),
            keep_tars,
            config: ConfigInputs {
                layers_dir: inputs.layers_dir.display().to_string(),
                app_dir: inputs.app_dir.display().to_string(),
                platform_api: api,
                created,
                entrypoint: entry,
                labels,
                layers: Vec::new(),
            },
            run_image_name: run_for_export.image,
            run_image_mirrors: run_for_export.mirrors,
            extension: extended.map(|x| x.layers).unwrap_or_default(),
        });
        (exported, cache.map(|h| h.join().is_ok()))
    });
    if cache_thread_ok == Some(false) {
        warn!("Failed to export cache: the cache export thread panicked");
    }
    let outcome = exported.map_err(|e| fail(&e))?;

    let mut tags = vec![image_name.clone()];
    // The image as written under the first name is the source of every blob (a layout shares them, a
    // registry mounts them, a daemon has them); read once, when the first extra tag needs it.
    let mut first = None;
    for extra in &inputs.additional_tags {
        info!("Saving {extra}...");
        let saved = (|| {
            let source = match &mut first {
                Some(source) => source,
                slot => slot.insert(access.open(&image_name)?.ok_or_else(|| {
                    crate::image::ImageError::Invalid {
                        image: image_name.clone(),
                        reason: "cannot be read back after saving".into(),
                    }
                })?),
            };
            match access.tag_existing(source, extra) {
                Some(tagged) => tagged,
                None => access
                    .writer(extra)
                    .and_then(|d| source.save_to(d.as_ref()))
                    .map(|_| ()),
            }
        })();
        match saved {
            Ok(_) => tags.push(extra.clone()),
            Err(e) => warn!("{extra} - {e}"),
        }
    }
    let short_id = outcome
        .image_id
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect::<String>();
    info!("*** Images ({short_id}):");
    for t in &tags {
        info!("      {t}");
    }
    let report = Report {
        image: image_report(
            &access,
            tags,
            outcome.has_manifest,
            &outcome.digest,
            outcome.manifest_size,
            &outcome.image_id,
        ),
        build: None,
    };
    report.write(&inputs.report_path).map_err(|e| fail(&e))?;

    if caching && !parallel {
        let tars: BTreeMap<String, (std::path::PathBuf, String)> = outcome
            .layers
            .iter()
            .filter_map(|l| {
                l.tar
                    .clone()
                    .map(|t| (l.id.clone(), (t, l.diff_id.clone())))
            })
            .collect();
        export_cache_step(inputs, &access, &group_bps, tars.clone(), &scratch);
        for (t, _) in tars.values() {
            let _ = std::fs::remove_file(t);
        }
    }
    Ok(())
}

/// `[image]` of `report.toml` (EP-16), as the reference writes it: for a registry the manifest digest
/// and size; in layout mode the tags are the layout paths the images were written to
/// (`<layout-dir>/index.docker.io/library/app/latest`) and there is no `digest` (the platform spec
/// requires it for registry exports; the layout's `index.json` holds it); for a daemon, which keeps
/// no manifest, the image ID (hex, the reference's daemon identifier).
pub fn image_report(
    access: &ImageAccess,
    tags: Vec<String>,
    has_manifest: bool,
    digest: &str,
    manifest_size: u64,
    image_id: &str,
) -> ImageReport {
    if !has_manifest {
        return ImageReport {
            tags,
            image_id: image_id.trim_start_matches("sha256:").to_string(),
            digest: String::new(),
            manifest_size: 0,
        };
    }
    let layout = access.is_layout();
    ImageReport {
        tags: tags
            .into_iter()
            .map(|t| {
                access
                    .layout_path(&t)
                    .map_or(t, |p| p.display().to_string())
            })
            .collect(),
        image_id: String::new(),
        digest: if layout {
            String::new()
        } else {
            digest.to_string()
        },
        manifest_size: i64::try_from(manifest_size).unwrap_or(i64::MAX),
    }
}

/// Exports the cache (EP-17, §CA): failures only warn. `tars` are layer tars the image export kept.
fn export_cache_step(
    inputs: &Inputs,
    access: &ImageAccess,
    group_bps: &[GroupBuildpack],
    tars: BTreeMap<String, (std::path::PathBuf, String)>,
    scratch: &Path,
) {
    match crate::restore::open_cache(inputs, access) {
        Some(mut cache) => {
            let result = export_cache(
                cache.as_mut(),
                &CacheExport {
                    layers_dir: &inputs.layers_dir,
                    group: group_bps,
                    owner: Owner {
                        uid: inputs.uid,
                        gid: inputs.gid,
                    },
                    tars,
                    scratch,
                    sbom: inputs.platform_api.sboms_in_layers_dir(),
                },
            );
            if let Err(e) = result {
                warn!("Failed to export cache: {}", crate::error::chain(&e));
            }
        }
        None => warn!("Failed to export cache: the cache could not be opened"),
    }
}

/// Every image the exporter may touch in a registry: the output image and its tags, the run and
/// previous images from `analyzed.toml` (read here as the original user; an unreadable file is
/// reported later), and the cache image (G-17).
fn registry_references(inputs: &Inputs) -> Vec<String> {
    let mut refs: Vec<String> = inputs.output_images.clone();
    refs.extend(inputs.additional_tags.iter().cloned());
    if let Ok(a) = Analyzed::read(&inputs.analyzed_path) {
        refs.push(a.run_image_ref().to_string());
        refs.push(a.previous_image_ref().to_string());
    }
    refs.extend(inputs.cache_image.iter().cloned());
    refs
}

/// The extended run image under `<extended>/run`, when extensions extended the run image (EP-02,
/// EP-04, EP-07): only from Platform 0.12 on, behind the experimental guard before 0.13. With
/// `run-image.extend = true` it must exist.
fn open_extended(
    inputs: &Inputs,
    analyzed: &Analyzed,
    base: &crate::image::Image,
) -> Result<Option<ExtendedRun>, Failure> {
    let api = inputs.platform_api;
    if !api.supports_run_image_extension() {
        return Ok(None);
    }
    let marked = analyzed.run_image.as_ref().is_some_and(|r| r.extend);
    let Some(dir) = extended::find(&inputs.extended_dir).map_err(|e| fail(&e))? else {
        if marked {
            return Err(fail(&extended::missing(&inputs.extended_dir)));
        }
        return Ok(None);
    };
    if api.extensions_experimental() {
        if let Some(w) = crate::cli::resolve::guard_experimental(
            inputs.experimental_mode,
            crate::cli::resolve::FEATURE_DOCKERFILES,
        )? {
            warn!("{w}");
        }
    }
    let x = extended::open(&dir, base).map_err(|e| fail(&e))?;
    info!(
        "Using extended run image '{}' ({} extension layer(s))",
        dir.display(),
        x.layers.len()
    );
    Ok(Some(x))
}

fn run_for_export(inputs: &Inputs, analyzed: &Analyzed, md: &BuildMetadata) -> RunImageCandidates {
    if !inputs.platform_api.uses_run_toml() {
        return crate::analyze::run_image_candidates(inputs).unwrap_or_default();
    }
    let entries: Vec<RunImageCandidates> =
        match cnb_spec::platform::RunToml::read_optional(&inputs.run_path) {
            Ok(Some(r)) => r
                .images
                .into_iter()
                .map(|e| RunImageCandidates {
                    image: e.image,
                    mirrors: e.mirrors,
                })
                .collect(),
            _ => Vec::new(),
        };
    // With no run.toml, record the run image the analyzer used so the rebaser can find it (the
    // reference records nothing here).
    let has_ext = !md.extensions.is_empty() || entries.is_empty();
    run_image_for_export(&entries, analyzed.run_image_image(), has_ext).unwrap_or_default()
}
