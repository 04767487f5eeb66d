//! Reading and validating what one buildpack's `bin/build` left in its layers directory (buildpack spec
//! "Build", "Layer Types", "launch.toml", "build.toml", "Bill of Materials"; checklist BD-06…BD-11, LY-01,
//! LY-03, SB-01…SB-03).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cnb_spec::buildpack::{
    BomEntry, BuildToml, GroupElement, Label, LaunchToml, LayerMetadataFile, Slice,
};
use cnb_spec::BuildpackApi;

use crate::detect::model::Require;
use crate::detect::store::Descriptor;

pub use cnb_spec::buildpack::{LayerTypes, Process};

/// What a buildpack output file got wrong. Always names the buildpack and the file.
#[derive(Debug, thiserror::Error)]
#[error("buildpack '{id}': {message} ({})", path.display())]
pub struct OutputError {
    /// The buildpack id.
    pub id: String,
    /// The offending file or directory.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What one buildpack produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutputs {
    /// Layers with their types, by name (renamed `.ignore` ones excluded).
    pub layers: BTreeMap<String, LayerTypes>,
    /// `launch.toml` labels.
    pub labels: Vec<Label>,
    /// `launch.toml` processes.
    pub processes: Vec<Process>,
    /// `launch.toml` slices.
    pub slices: Vec<Slice>,
    /// Names of plan entries the buildpack met (all its plan minus `unmet`).
    pub met: Vec<String>,
    /// SBOM files found, classified.
    pub sboms: Vec<SbomFile>,
    /// Legacy launch BOM entries, annotated with the buildpack.
    pub launch_bom: Vec<BomEntry>,
    /// Legacy build BOM entries, annotated with the buildpack.
    pub build_bom: Vec<BomEntry>,
}

/// Where an SBOM file goes (SB-03).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomKind {
    /// `<layers>/sbom/launch/…`.
    Launch,
    /// `<layers>/sbom/build/…`.
    Build,
    /// `<layers>/sbom/cache/…`.
    Cache,
}

impl SbomKind {
    /// Directory name under `<layers>/sbom`.
    pub fn as_str(self) -> &'static str {
        match self {
            SbomKind::Launch => "launch",
            SbomKind::Build => "build",
            SbomKind::Cache => "cache",
        }
    }
}

/// One SBOM file and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomFile {
    /// The source file.
    pub path: PathBuf,
    /// `Some(layer)` for `<layer>.sbom.*`.
    pub layer: Option<String>,
    /// Classification.
    pub kind: SbomKind,
    /// `sbom.cdx.json`, `sbom.spdx.json` or `sbom.syft.json`.
    pub file_name: &'static str,
}

fn spec_err(id: &str, path: &Path) -> impl Fn(cnb_spec::io::FileError) -> OutputError {
    let id = id.to_string();
    let path = path.to_path_buf();
    move |e| OutputError {
        id: id.clone(),
        path: path.clone(),
        message: e.to_string(),
    }
}

/// BD-06 / LY-03: reads every `<name>.toml` of the buildpack's layers dir; all-false layers are renamed
/// `<name>.ignore`; top-level flags are an error.
pub fn process_layers(
    id: &str,
    bp_layers: &Path,
) -> Result<BTreeMap<String, LayerTypes>, OutputError> {
    let mut out = BTreeMap::new();
    let rd = match std::fs::read_dir(bp_layers) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(OutputError {
                id: id.into(),
                path: bp_layers.into(),
                message: e.to_string(),
            })
        }
    };
    let mut names: Vec<String> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            continue;
        }
        if let Some(layer) = name.strip_suffix(".toml") {
            if ["launch", "build", "store"].contains(&layer) {
                continue;
            }
            match cnb_spec::buildpack::LayerName::new(layer) {
                Ok(_) => names.push(layer.to_string()),
                Err(err) => tracing::warn!("Skipping '{}': {err}", e.path().display()),
            }
        }
    }
    names.sort();
    for layer in names {
        let path = bp_layers.join(format!("{layer}.toml"));
        let md = LayerMetadataFile::read_or_default(&path).map_err(spec_err(id, &path))?;
        md.check_types_table(&path).map_err(|_| OutputError {
            id: id.into(),
            path: path.clone(),
            message: format!(
                "the launch, cache and build flags should be in the types table of {}",
                path.display()
            ),
        })?;
        let t = md.types;
        if !t.launch && !t.build && !t.cache {
            let dir = bp_layers.join(&layer);
            match std::fs::rename(&dir, bp_layers.join(format!("{layer}.ignore"))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(OutputError {
                        id: id.into(),
                        path: dir,
                        message: format!("failed to rename layer directory: {e}"),
                    })
                }
            }
        }
        out.insert(layer, t);
    }
    Ok(out)
}

fn bom_entries(
    d: &Descriptor,
    path: &Path,
    bom: Vec<BomEntry>,
) -> Result<Vec<BomEntry>, OutputError> {
    let mut out = Vec::with_capacity(bom.len());
    for mut e in bom {
        if e.version.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(OutputError {
                id: d.id.clone(),
                path: path.to_path_buf(),
                message: format!(
                    "bom entry '{}' has a top level version which is not allowed. The buildpack should instead set metadata.version",
                    e.name
                ),
            });
        }
        e.buildpack = GroupElement::new(d.id.clone(), d.version.clone());
        out.push(e);
    }
    Ok(out)
}

/// BD-08…BD-11: `build.toml`, SBOM files and `launch.toml` of one buildpack.
pub fn read_outputs(
    d: &Descriptor,
    bp_layers: &Path,
    plan: &[Require],
    layers: BTreeMap<String, LayerTypes>,
) -> Result<BuildOutputs, OutputError> {
    let err = |path: &Path, message: String| OutputError {
        id: d.id.clone(),
        path: path.to_path_buf(),
        message,
    };
    let mut out = BuildOutputs::default();

    let build_path = bp_layers.join("build.toml");
    let build = BuildToml::read_optional(&build_path)
        .map_err(spec_err(&d.id, &build_path))?
        .unwrap_or_default();
    let unmet = build.unmet_names();
    out.build_bom = bom_entries(d, &build_path, build.bom)?;
    for name in &unmet {
        if name.is_empty() {
            return Err(err(&build_path, "unmet.name is required".into()));
        }
        if !plan.iter().any(|r| r.name == *name) {
            return Err(err(
                &build_path,
                format!("unmet.name '{name}' must match a requested dependency"),
            ));
        }
    }
    out.met = plan
        .iter()
        .filter(|r| !unmet.contains(&r.name))
        .map(|r| r.name.clone())
        .collect();

    out.sboms = sbom_files(d, bp_layers, &layers)?;

    let launch_path = bp_layers.join("launch.toml");
    if launch_path.exists() {
        let launch =
            LaunchToml::read(&launch_path, d.api).map_err(spec_err(&d.id, &launch_path))?;
        if launch.default_process_types().len() > 1 {
            return Err(err(
                &launch_path,
                "multiple default process types aren't allowed".into(),
            ));
        }
        out.launch_bom = bom_entries(d, &launch_path, launch.bom)?;
        out.labels = launch.labels;
        out.slices = launch.slices;
        out.processes = launch
            .processes
            .into_iter()
            .map(|mut p| {
                if d.api < BuildpackApi::new(0, 8) && p.working_dir.is_some() {
                    tracing::warn!("Warning: process working directory isn't supported in this buildpack api version. Ignoring working directory for process '{}'", p.r#type);
                    p.working_dir = None;
                }
                p.buildpack_id = d.id.clone();
                p
            })
            .collect();
    }
    if (!out.launch_bom.is_empty() || !out.build_bom.is_empty()) && out.sboms.is_empty() {
        {
            tracing::warn!("BOM table is deprecated in this buildpack api version, though it remains supported for backwards compatibility. Buildpack authors should write BOM information to <layer>.sbom.<ext>, launch.sbom.<ext>, or build.sbom.<ext>.");
        }
    }
    warn_exec_d(bp_layers, &layers);
    out.layers = layers;
    Ok(out)
}

/// The launcher runs every file of a launch layer's `exec.d/` (and `exec.d/<process>/`); warn about
/// entries it could not execute (buildpack spec "exec.d").
fn warn_exec_d(bp_layers: &Path, layers: &BTreeMap<String, LayerTypes>) {
    use std::os::unix::fs::PermissionsExt;
    for (name, t) in layers {
        if !t.launch {
            continue;
        }
        let dir = bp_layers.join(name).join("exec.d");
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_dir() => stack.push(p),
                    Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                        tracing::warn!("exec.d entry {} is not executable", p.display());
                    }
                    _ => {}
                }
            }
        }
    }
}

/// SB-01…SB-03: `*.sbom.<ext>.json` files, classified and checked against `sbom-formats`.
fn sbom_files(
    d: &Descriptor,
    bp_layers: &Path,
    layers: &BTreeMap<String, LayerTypes>,
) -> Result<Vec<SbomFile>, OutputError> {
    let mut names: Vec<String> = std::fs::read_dir(bp_layers)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".json")
                && n.split_once('.')
                    .is_some_and(|(_, rest)| rest.starts_with("sbom."))
        })
        .collect();
    names.sort();
    let declared: Vec<String> = d
        .sbom_formats
        .iter()
        .map(|m| m.split(';').next().unwrap_or("").trim().to_string())
        .collect();
    let mut out = Vec::new();
    for n in names {
        let path = bp_layers.join(&n);
        let (media, file_name) = if n.ends_with(".sbom.cdx.json") {
            ("application/vnd.cyclonedx+json", "sbom.cdx.json")
        } else if n.ends_with(".sbom.spdx.json") {
            ("application/spdx+json", "sbom.spdx.json")
        } else if n.ends_with(".sbom.syft.json") {
            ("application/vnd.syft+json", "sbom.syft.json")
        } else {
            return Err(OutputError {
                id: d.id.clone(),
                path,
                message: "unsupported SBOM file format".into(),
            });
        };
        let layer = n.split('.').next().unwrap_or("").to_string();
        let before = out.len();
        let mut push = |layer: Option<String>, kind| {
            out.push(SbomFile {
                path: path.clone(),
                layer,
                kind,
                file_name,
            })
        };
        match layer.as_str() {
            "launch" => push(None, SbomKind::Launch),
            "build" => push(None, SbomKind::Build),
            _ => {
                let Some(t) = layers.get(&layer) else {
                    continue;
                };
                push(
                    Some(layer.clone()),
                    if t.launch {
                        SbomKind::Launch
                    } else {
                        SbomKind::Build
                    },
                );
                if t.cache {
                    push(Some(layer.clone()), SbomKind::Cache);
                }
            }
        }
        if out.len() > before && !declared.iter().any(|m| m == media) {
            return Err(OutputError {
                id: d.id.clone(),
                path,
                message: format!(
                    "validating SBOM file for buildpack '{}@{}': undeclared SBOM media type: '{media}'",
                    d.id, d.version
                ),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn desc(api: (u16, u16)) -> Descriptor {
        Descriptor {
            kind: crate::detect::model::Kind::Buildpack,
            id: "bp".into(),
            version: "1".into(),
            api: BuildpackApi::new(api.0, api.1),
            homepage: None,
            clear_env: false,
            order: vec![],
            targets: vec![],
            exec_env: vec![],
            sbom_formats: vec!["application/vnd.cyclonedx+json".into()],
            root: PathBuf::new(),
            path: PathBuf::new(),
        }
    }

    #[test]
    fn ly_03_all_false_layers_are_ignored_and_top_level_flags_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        std::fs::create_dir_all(l.join("keep")).unwrap();
        std::fs::write(l.join("keep.toml"), "[types]\nlaunch = true\n").unwrap();
        std::fs::create_dir_all(l.join("drop")).unwrap();
        std::fs::write(l.join("drop.toml"), "[metadata]\nx = 1\n").unwrap();
        std::fs::write(l.join("launch.toml"), "").unwrap();
        let layers = process_layers("bp", l).unwrap();
        assert!(layers["keep"].launch);
        assert!(!l.join("drop").exists() && l.join("drop.ignore").is_dir());
        assert!(!layers.contains_key("launch"));

        std::fs::write(l.join("bad.toml"), "launch = true\n").unwrap();
        let e = process_layers("bp", l).unwrap_err().to_string();
        assert!(e.contains("should be in the types table"), "{e}");
    }

    #[test]
    fn bd_09_command_forms_per_api() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        std::fs::write(
            l.join("launch.toml"),
            "[[processes]]\ntype = \"web\"\ncommand = [\"bin/web\", \"-p\"]\nargs = [\"8080\"]\ndefault = true\n",
        )
        .unwrap();
        let out = read_outputs(&desc((0, 9)), l, &[], BTreeMap::new()).unwrap();
        assert_eq!(out.processes[0].command, ["bin/web", "-p"]);
        assert!(out.processes[0].direct && out.processes[0].default);
        assert!(read_outputs(&desc((0, 8)), l, &[], BTreeMap::new()).is_err());

        std::fs::write(
            l.join("launch.toml"),
            "[[processes]]\ntype = \"web\"\ncommand = \"bin/web\"\n",
        )
        .unwrap();
        let out = read_outputs(&desc((0, 8)), l, &[], BTreeMap::new()).unwrap();
        assert_eq!(out.processes[0].command, ["bin/web"]);
        assert!(!out.processes[0].direct);

        std::fs::write(
            l.join("launch.toml"),
            "[[processes]]\ntype = \"web\"\ncommand = [\"a\"]\ndirect = true\n",
        )
        .unwrap();
        let e = read_outputs(&desc((0, 10)), l, &[], BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.direct is not supported"), "{e}");

        std::fs::write(
            l.join("launch.toml"),
            "[[processes]]\ntype = \"a\"\ncommand = [\"a\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"b\"]\ndefault = true\n",
        )
        .unwrap();
        let e = read_outputs(&desc((0, 10)), l, &[], BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("multiple default process types"), "{e}");
    }

    #[test]
    fn bd_11_legacy_bom_is_annotated_and_top_level_version_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        std::fs::write(
            l.join("launch.toml"),
            "[[bom]]\nname = \"dep\"\n[bom.metadata]\nversion = \"1\"\n",
        )
        .unwrap();
        let out = read_outputs(&desc((0, 10)), l, &[], BTreeMap::new()).unwrap();
        assert_eq!(out.launch_bom[0].buildpack.id, "bp");
        std::fs::write(
            l.join("build.toml"),
            "[[bom]]\nname = \"dep\"\nversion = \"1\"\n",
        )
        .unwrap();
        let e = read_outputs(&desc((0, 10)), l, &[], BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has a top level version which is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn bd_08_unmet_must_name_a_plan_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        let plan = vec![Require::new("a"), Require::new("b")];
        std::fs::write(l.join("build.toml"), "[[unmet]]\nname = \"b\"\n").unwrap();
        let out = read_outputs(&desc((0, 10)), l, &plan, BTreeMap::new()).unwrap();
        assert_eq!(out.met, ["a"]);
        std::fs::write(l.join("build.toml"), "[[unmet]]\nname = \"zzz\"\n").unwrap();
        let e = read_outputs(&desc((0, 10)), l, &plan, BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("must match a requested dependency"), "{e}");
    }

    #[test]
    fn sb_02_sbom_classification_and_media_type_check() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        std::fs::write(l.join("launch.sbom.cdx.json"), "{}").unwrap();
        std::fs::write(l.join("deps.sbom.cdx.json"), "{}").unwrap();
        std::fs::write(l.join("ghost.sbom.cdx.json"), "{}").unwrap();
        let mut layers = BTreeMap::new();
        layers.insert(
            "deps".to_string(),
            LayerTypes {
                launch: true,
                build: false,
                cache: true,
            },
        );
        let out = read_outputs(&desc((0, 10)), l, &[], layers.clone()).unwrap();
        let kinds: Vec<_> = out
            .sboms
            .iter()
            .map(|s| (s.layer.clone(), s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (Some("deps".to_string()), SbomKind::Launch),
                (Some("deps".to_string()), SbomKind::Cache),
                (None, SbomKind::Launch)
            ]
        );
        std::fs::write(l.join("build.sbom.spdx.json"), "{}").unwrap();
        let e = read_outputs(&desc((0, 10)), l, &[], layers)
            .unwrap_err()
            .to_string();
        assert!(e.contains("undeclared SBOM media type"), "{e}");
    }
}
