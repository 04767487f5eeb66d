//! Reading and validating what one buildpack's `bin/build` left in its layers directory (buildpack spec
//! "Build", "Layer Types", "launch.toml", "build.toml", "Bill of Materials"; checklist BD-06…BD-11, LY-01,
//! LY-03, SB-01…SB-03).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cnb_spec::BuildpackApi;

use crate::detect::model::Require;
use crate::detect::store::Descriptor;

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

/// `<layer>.toml` types (LY-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerTypes {
    /// `[types] launch`.
    pub launch: bool,
    /// `[types] build`.
    pub build: bool,
    /// `[types] cache`.
    pub cache: bool,
}

/// A process from `launch.toml`, in the canonical (array command) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// `type`.
    pub r#type: String,
    /// `command` (one element for pre-0.9 string commands).
    pub command: Vec<String>,
    /// `args`.
    pub args: Vec<String>,
    /// `direct` (always true for Buildpack API ≥ 0.9).
    pub direct: bool,
    /// `default`.
    pub default: bool,
    /// The contributing buildpack.
    pub buildpack_id: String,
    /// `working-dir`.
    pub working_dir: Option<String>,
    /// `exec-env`.
    pub exec_env: Vec<String>,
}

/// What one buildpack produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutputs {
    /// Layers with their types, by name (renamed `.ignore` ones excluded).
    pub layers: BTreeMap<String, LayerTypes>,
    /// `launch.toml` labels.
    pub labels: Vec<(String, String)>,
    /// `launch.toml` processes.
    pub processes: Vec<Process>,
    /// `launch.toml` slices (each a list of globs).
    pub slices: Vec<Vec<String>>,
    /// Names of plan entries the buildpack met (all its plan minus `unmet`).
    pub met: Vec<String>,
    /// SBOM files found, classified.
    pub sboms: Vec<SbomFile>,
    /// Legacy launch BOM entries (JSON, annotated with the buildpack).
    pub launch_bom: Vec<serde_json::Value>,
    /// Legacy build BOM entries.
    pub build_bom: Vec<serde_json::Value>,
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

fn read_toml(id: &str, path: &Path) -> Result<Option<toml::Table>, OutputError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(OutputError {
                id: id.to_string(),
                path: path.to_path_buf(),
                message: format!("failed to read: {e}"),
            })
        }
    };
    toml::from_str(&text).map(Some).map_err(|e| OutputError {
        id: id.to_string(),
        path: path.to_path_buf(),
        message: format!("invalid TOML: {e}"),
    })
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
            if !["launch", "build", "store"].contains(&layer) {
                names.push(layer.to_string());
            }
        }
    }
    names.sort();
    for layer in names {
        let path = bp_layers.join(format!("{layer}.toml"));
        let doc = read_toml(id, &path)?.unwrap_or_default();
        if ["launch", "build", "cache"]
            .iter()
            .any(|k| doc.contains_key(*k))
        {
            return Err(OutputError {
                id: id.into(),
                path: path.clone(),
                message: format!(
                    "the launch, cache and build flags should be in the types table of {}",
                    path.display()
                ),
            });
        }
        let types = doc.get("types").and_then(|t| t.as_table());
        let flag = |k: &str| {
            types
                .and_then(|t| t.get(k))
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        };
        let t = LayerTypes {
            launch: flag("launch"),
            build: flag("build"),
            cache: flag("cache"),
        };
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
    doc: &toml::Table,
) -> Result<Vec<serde_json::Value>, OutputError> {
    let mut out = Vec::new();
    for e in doc
        .get("bom")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let Some(t) = e.as_table() else { continue };
        let name = t.get("name").and_then(|v| v.as_str()).unwrap_or("");
        if t.get("version")
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.is_empty())
        {
            return Err(OutputError {
                id: d.id.clone(),
                path: path.to_path_buf(),
                message: format!(
                    "bom entry '{name}' has a top level version which is not allowed. The buildpack should instead set metadata.version"
                ),
            });
        }
        out.push(serde_json::json!({
            "name": name,
            "metadata": t.get("metadata").cloned().unwrap_or(toml::Value::Table(toml::Table::new())),
            "buildpack": {"id": d.id, "version": d.version},
        }));
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
    let build = read_toml(&d.id, &build_path)?.unwrap_or_default();
    out.build_bom = bom_entries(d, &build_path, &build)?;
    let mut unmet = Vec::new();
    for u in build
        .get("unmet")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = u.get("name").and_then(|v| v.as_str()).unwrap_or("");
        if name.is_empty() {
            return Err(err(&build_path, "unmet.name is required".into()));
        }
        if !plan.iter().any(|r| r.name == name) {
            return Err(err(
                &build_path,
                format!("unmet.name '{name}' must match a requested dependency"),
            ));
        }
        unmet.push(name.to_string());
    }
    out.met = plan
        .iter()
        .filter(|r| !unmet.contains(&r.name))
        .map(|r| r.name.clone())
        .collect();

    out.sboms = sbom_files(d, bp_layers, &layers)?;

    let launch_path = bp_layers.join("launch.toml");
    if let Some(launch) = read_toml(&d.id, &launch_path)? {
        out.launch_bom = bom_entries(d, &launch_path, &launch)?;
        for l in launch
            .get("labels")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let s = |k: &str| l.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            out.labels.push((s("key"), s("value")));
        }
        for s in launch
            .get("slices")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let paths = s
                .get("paths")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            out.slices.push(paths);
        }
        out.processes = processes(d, &launch_path, &launch)?;
    }
    if (!out.launch_bom.is_empty() || !out.build_bom.is_empty()) && out.sboms.is_empty() {
        {
            tracing::warn!("BOM table is deprecated in this buildpack api version, though it remains supported for backwards compatibility. Buildpack authors should write BOM information to <layer>.sbom.<ext>, launch.sbom.<ext>, or build.sbom.<ext>.");
        }
    }
    out.layers = layers;
    Ok(out)
}

/// BD-09: processes in the API's command form; more than one default is an error.
fn processes(
    d: &Descriptor,
    path: &Path,
    launch: &toml::Table,
) -> Result<Vec<Process>, OutputError> {
    let err = |message: String| OutputError {
        id: d.id.clone(),
        path: path.to_path_buf(),
        message,
    };
    let array_form = d.api.process_command_is_array();
    let mut out = Vec::new();
    let mut default_seen = false;
    for p in launch
        .get("processes")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let Some(t) = p.as_table() else {
            return Err(err("[[processes]] entries must be tables".into()));
        };
        let r#type = t
            .get("type")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let strings = |v: Option<&toml::Value>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let (command, direct) = if array_form {
            if t.contains_key("direct") {
                return Err(err(
                    "process.direct is not supported on this buildpack version".into(),
                ));
            }
            match t.get("command") {
                Some(toml::Value::Array(_)) | None => (strings(t.get("command")), true),
                Some(_) => {
                    return Err(err(format!(
                        "process '{}': command must be an array of strings for buildpack API {}",
                        r#type, d.api
                    )))
                }
            }
        } else {
            let c = match t.get("command") {
                Some(toml::Value::String(s)) => s.clone(),
                None => String::new(),
                Some(_) => {
                    return Err(err(format!(
                        "process '{}': command must be a string for buildpack API {}",
                        r#type, d.api
                    )))
                }
            };
            let direct = t.get("direct").and_then(|v| v.as_bool()).unwrap_or(false);
            (vec![c], direct)
        };
        let default = t.get("default").and_then(|v| v.as_bool()).unwrap_or(false);
        if default {
            if default_seen {
                return Err(err("multiple default process types aren't allowed".into()));
            }
            default_seen = true;
        }
        let mut working_dir = t
            .get("working-dir")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .filter(|s| !s.is_empty());
        if d.api < BuildpackApi::new(0, 8) && working_dir.is_some() {
            tracing::warn!("Warning: process working directory isn't supported in this buildpack api version. Ignoring working directory for process '{}'", r#type);
            working_dir = None;
        }
        out.push(Process {
            r#type,
            command,
            args: strings(t.get("args")),
            direct,
            default,
            buildpack_id: d.id.clone(),
            working_dir,
            exec_env: strings(t.get("exec-env")),
        });
    }
    Ok(out)
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
