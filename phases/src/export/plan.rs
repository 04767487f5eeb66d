//! The exporter's layer plan (checklist EP-06…EP-11, IM-12…IM-14, LY-06, LY-07): which layers the app
//! image gets, in which order, where each one's content comes from, and how it is recorded in the
//! lifecycle metadata label.
//!
//! Order: extension layers → buildpack launch layers (group order, layer names sorted) → SBOM launch
//! layer → app slice layers → launcher → launcher config → process types.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::metadata::LifecycleMetadata;
use super::slices::AppSlices;
use crate::cache::{sha_of, BuildpackLayerMetadata};

/// Layer id of the launcher layer.
pub const LAUNCHER_ID: &str = "buildpacksio/lifecycle:launcher";
/// Layer id of the launcher config layer.
pub const CONFIG_ID: &str = "buildpacksio/lifecycle:config";
/// Layer id of the process-types layer.
pub const PROCESS_TYPES_ID: &str = "buildpacksio/lifecycle:process-types";
/// Layer id of the SBOM launch layer.
pub const LAUNCH_SBOM_ID: &str = "buildpacksio/lifecycle:launch.sbom";
/// Layer id of the SBOM cache layer.
pub const CACHE_SBOM_ID: &str = "buildpacksio/lifecycle:cache.sbom";

/// A buildpack of the group, as the exporter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBuildpack {
    /// Buildpack id.
    pub id: String,
    /// Buildpack version.
    pub version: String,
}

impl GroupBuildpack {
    /// The id with `/` replaced by `_` (its directory name under `<layers>`).
    pub fn escaped_id(&self) -> String {
        self.id.replace('/', "_")
    }
}

/// Where a planned layer's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerContent {
    /// A directory tarred with its ancestors (IM-10): buildpack layers, SBOM, config.
    Dir(PathBuf),
    /// App entries relative to the app dir (one slice; SL-04).
    App {
        /// The app dir.
        app_dir: PathBuf,
        /// Entries of this slice.
        entries: Vec<PathBuf>,
    },
    /// `/cnb/lifecycle/launcher` from this host file (IM-12).
    Launcher(PathBuf),
    /// `/cnb/process/<type>` symlinks to the launcher (IM-13).
    ProcessTypes(Vec<String>),
    /// The previous image's layer with this diffID, unchanged (LY-06): not re-tarred.
    Previous(String),
}

/// What a planned layer is, for the lifecycle metadata label.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerRole {
    /// A buildpack launch layer.
    Buildpack {
        /// Index into the group.
        buildpack: usize,
        /// Layer name.
        name: String,
        /// Its `<layer>.toml` as recorded in the label (sha filled at export).
        metadata: BuildpackLayerMetadata,
    },
    /// The SBOM launch layer.
    Sbom,
    /// An app layer.
    App,
    /// The launcher layer.
    Launcher,
    /// The launcher config layer.
    Config,
    /// The process-types layer.
    ProcessTypes,
}

/// One layer the app image will get.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLayer {
    /// Id used in logs (`<bp>:<layer>`, `slice-<n>`, `buildpacksio/lifecycle:…`).
    pub id: String,
    /// History `created_by` (IM-04).
    pub created_by: String,
    /// Content source.
    pub content: LayerContent,
    /// The diffID the previous image recorded for this layer, if any: a freshly tarred layer with
    /// this diffID is reused from the previous image.
    pub previous_sha: Option<String>,
    /// Role in the label.
    pub role: LayerRole,
}

pub use cnb_spec::buildpack::{LayerMetadataFile as LayerToml, LayerTypes};

/// Errors while planning the export. Each names the layer or file.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A directory could not be listed or a file read.
    #[error("reading '{}'", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A `<layer>.toml` is malformed (EP-08).
    #[error("failed to parse metadata for layers '[{}]'", path.display())]
    BadLayerToml {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `cache = true` but no contents (EP-08).
    #[error("layer '{0}' is cache=true but has no contents")]
    CacheLayerWithoutContents(String),
    /// Absent dir and nothing to reuse (EP-08).
    #[error("cannot reuse '{0}', previous image has no metadata for layer '{0}'")]
    NoPreviousLayer(String),
    /// A process type that cannot be a file name (IM-13).
    #[error("invalid process type '{0}'")]
    InvalidProcessType(String),
}

/// A buildpack launch layer found under `<layers>/<bp>`.
#[derive(Debug, Clone)]
pub struct FoundLayer {
    /// Layer name.
    pub name: String,
    /// Its directory (may not exist).
    pub dir: PathBuf,
    /// Parsed `<layer>.toml`.
    pub toml: LayerToml,
}

/// Names of non-layer TOML files in a buildpack's layers dir.
const RESERVED_TOMLS: &[&str] = &["launch", "build", "store"];

/// Lists `<layers>/<bp>/<name>.toml` files (sorted by name), parsed. A missing buildpack dir is empty.
pub fn read_buildpack_layers(bp_dir: &Path) -> Result<Vec<FoundLayer>, PlanError> {
    let rd = match fs::read_dir(bp_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PlanError::Io {
                path: bp_dir.to_path_buf(),
                source: e,
            })
        }
    };
    let mut names = BTreeMap::new();
    for entry in rd {
        let entry = entry.map_err(|e| PlanError::Io {
            path: bp_dir.to_path_buf(),
            source: e,
        })?;
        let fname = entry.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        let Some(name) = fname.strip_suffix(".toml") else {
            continue;
        };
        if RESERVED_TOMLS.contains(&name) || name.is_empty() {
            continue;
        }
        if let Err(e) = cnb_spec::buildpack::LayerName::new(name) {
            tracing::warn!("Skipping '{}': {e}", entry.path().display());
            continue;
        }
        names.insert(name.to_string(), entry.path());
    }
    let mut out = Vec::with_capacity(names.len());
    for (name, path) in names {
        let toml = LayerToml::read(&path).map_err(|e| PlanError::BadLayerToml {
            path: path.clone(),
            source: Box::new(e),
        })?;
        if toml.types_at_top_level {
            return Err(PlanError::BadLayerToml {
                path,
                source: "types table isn't supported in this buildpack api version: flags must be under [types]".into(),
            });
        }
        out.push(FoundLayer {
            dir: bp_dir.join(&name),
            name,
            toml,
        });
    }
    Ok(out)
}

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    /// `<layers>`.
    pub layers_dir: &'a Path,
    /// `<app>`.
    pub app_dir: &'a Path,
    /// The group, in order.
    pub group: &'a [GroupBuildpack],
    /// The previous image's label (empty when there is none).
    pub previous: &'a LifecycleMetadata,
    /// The app split into slices.
    pub app_slices: &'a AppSlices,
    /// `-launcher`.
    pub launcher: &'a Path,
    /// Process types from `metadata.toml` (sorted, T-04).
    pub process_types: &'a [String],
    /// Whether SBOM layers are exported (`[P≥0.8]`).
    pub sbom: bool,
}

/// Builds the ordered layer plan (extension layers are prepended by the caller).
pub fn plan_layers(inp: &PlanInputs<'_>) -> Result<Vec<PlannedLayer>, PlanError> {
    let mut plan = Vec::new();
    for (index, bp) in inp.group.iter().enumerate() {
        let bp_dir = inp.layers_dir.join(bp.escaped_id());
        for layer in read_buildpack_layers(&bp_dir)? {
            if !layer.toml.types.launch {
                continue;
            }
            let id = format!("{}:{}", bp.id, layer.name);
            let previous_sha = inp
                .previous
                .buildpack(&bp.id)
                .and_then(|b| b.layers.get(&layer.name))
                .map(|l| l.sha.clone())
                .filter(|s| !s.is_empty());
            let content = if layer.dir.is_dir() {
                LayerContent::Dir(layer.dir.clone())
            } else if layer.toml.types.cache {
                return Err(PlanError::CacheLayerWithoutContents(id));
            } else {
                match &previous_sha {
                    Some(sha) => LayerContent::Previous(sha.clone()),
                    None => return Err(PlanError::NoPreviousLayer(id)),
                }
            };
            let metadata = BuildpackLayerMetadata {
                sha: String::new(),
                data: layer.toml.metadata.clone(),
                build: layer.toml.types.build,
                launch: true,
                cache: layer.toml.types.cache,
            };
            plan.push(PlannedLayer {
                created_by: format!(
                    "Layer: '{}', Created by buildpack: {}@{}",
                    layer.name, bp.id, bp.version
                ),
                id,
                content,
                previous_sha,
                role: LayerRole::Buildpack {
                    buildpack: index,
                    name: layer.name,
                    metadata,
                },
            });
        }
    }
    let sbom_dir = inp.layers_dir.join("sbom").join("launch");
    if inp.sbom && sbom_dir.is_dir() {
        plan.push(PlannedLayer {
            id: LAUNCH_SBOM_ID.into(),
            created_by: "Software Bill-of-Materials".into(),
            content: LayerContent::Dir(sbom_dir),
            previous_sha: inp
                .previous
                .sbom
                .as_ref()
                .and_then(sha_of)
                .map(String::from),
            role: LayerRole::Sbom,
        });
    }
    let n = inp.app_slices.layers.len();
    for (i, slice) in inp.app_slices.layers.iter().enumerate() {
        let (id, created_by) = if n == 1 {
            ("app".to_string(), "Application Layer".to_string())
        } else {
            (
                format!("slice-{}", i + 1),
                format!("Application Slice: {}", i + 1),
            )
        };
        plan.push(PlannedLayer {
            id,
            created_by,
            content: LayerContent::App {
                app_dir: inp.app_dir.to_path_buf(),
                entries: slice.entries.clone(),
            },
            // Any previous app layer with the same diffID is reused (EP-10); see `reuse`.
            previous_sha: None,
            role: LayerRole::App,
        });
    }
    plan.push(PlannedLayer {
        id: LAUNCHER_ID.into(),
        created_by: "Buildpacks Application Launcher".into(),
        content: LayerContent::Launcher(inp.launcher.to_path_buf()),
        previous_sha: sha_of(&inp.previous.launcher).map(String::from),
        role: LayerRole::Launcher,
    });
    plan.push(PlannedLayer {
        id: CONFIG_ID.into(),
        created_by: "Buildpacks Launcher Config".into(),
        content: LayerContent::Dir(inp.layers_dir.join("config")),
        previous_sha: sha_of(&inp.previous.config).map(String::from),
        role: LayerRole::Config,
    });
    if !inp.process_types.is_empty() {
        for t in inp.process_types {
            validate_process_type(t)?;
        }
        plan.push(PlannedLayer {
            id: PROCESS_TYPES_ID.into(),
            created_by: "Buildpacks Process Types".into(),
            content: LayerContent::ProcessTypes(inp.process_types.to_vec()),
            previous_sha: sha_of(&inp.previous.process_types).map(String::from),
            role: LayerRole::ProcessTypes,
        });
    }
    Ok(plan)
}

/// IM-13: non-empty, none of `/><:|&\`.
pub fn validate_process_type(t: &str) -> Result<(), PlanError> {
    if t.is_empty() || t.contains(['/', '>', '<', ':', '|', '&', '\\']) {
        return Err(PlanError::InvalidProcessType(t.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::cache::BuildpackLayersMetadata as BuildpackLayers;
    use crate::export::slices::AppSlice;

    fn bp(id: &str) -> GroupBuildpack {
        GroupBuildpack {
            id: id.into(),
            version: "1.0".into(),
        }
    }

    fn setup() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("layers");
        let a = l.join("example_a");
        fs::create_dir_all(a.join("zeta")).unwrap();
        fs::create_dir_all(a.join("alpha")).unwrap();
        fs::create_dir_all(a.join("build-only")).unwrap();
        fs::write(
            a.join("zeta.toml"),
            "[types]\nlaunch = true\n[metadata]\nv = 1\n",
        )
        .unwrap();
        fs::write(
            a.join("alpha.toml"),
            "[types]\nlaunch = true\ncache = true\n",
        )
        .unwrap();
        fs::write(a.join("build-only.toml"), "[types]\nbuild = true\n").unwrap();
        fs::write(a.join("launch.toml"), "[[processes]]\n").unwrap();
        fs::write(a.join("store.toml"), "[metadata]\n").unwrap();
        // Restored metadata only: reused from the previous image.
        fs::write(a.join("restored.toml"), "[types]\nlaunch = true\n").unwrap();
        fs::create_dir_all(l.join("sbom/launch")).unwrap();
        fs::create_dir_all(l.join("config")).unwrap();
        t
    }

    fn previous() -> LifecycleMetadata {
        let mut layers = BTreeMap::new();
        layers.insert(
            "restored".to_string(),
            BuildpackLayerMetadata {
                sha: "sha256:r".into(),
                launch: true,
                ..Default::default()
            },
        );
        LifecycleMetadata {
            buildpacks: vec![BuildpackLayers {
                key: "example/a".into(),
                version: "1.0".into(),
                layers,
                store: None,
            }],
            launcher: crate::cache::LayerSha::new("sha256:l"),
            ..Default::default()
        }
    }

    #[test]
    fn ep06_order_and_reuse_sources() {
        let t = setup();
        let l = t.path().join("layers");
        let prev = previous();
        let slices = AppSlices {
            layers: vec![AppSlice::default(), AppSlice::default()],
        };
        let types = vec!["web".to_string()];
        let plan = plan_layers(&PlanInputs {
            layers_dir: &l,
            app_dir: Path::new("/workspace"),
            group: &[bp("example/a"), bp("other/b")],
            previous: &prev,
            app_slices: &slices,
            launcher: Path::new("/cnb/lifecycle/launcher"),
            process_types: &types,
            sbom: true,
        })
        .unwrap();
        let ids: Vec<&str> = plan.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "example/a:alpha",
                "example/a:restored",
                "example/a:zeta",
                LAUNCH_SBOM_ID,
                "slice-1",
                "slice-2",
                LAUNCHER_ID,
                CONFIG_ID,
                PROCESS_TYPES_ID
            ]
        );
        assert_eq!(plan[1].content, LayerContent::Previous("sha256:r".into()));
        assert_eq!(
            plan[0].created_by,
            "Layer: 'alpha', Created by buildpack: example/a@1.0"
        );
        assert_eq!(plan[4].created_by, "Application Slice: 1");
        assert_eq!(plan[6].previous_sha.as_deref(), Some("sha256:l"));
        match &plan[2].role {
            LayerRole::Buildpack { metadata, .. } => {
                assert_eq!(metadata.data.get("v").and_then(|v| v.as_integer()), Some(1))
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn ep08_errors() {
        let t = setup();
        let l = t.path().join("layers");
        let a = l.join("example_a");
        fs::write(a.join("gone.toml"), "[types]\nlaunch = true\n").unwrap();
        let slices = AppSlices {
            layers: vec![AppSlice::default()],
        };
        let inp = PlanInputs {
            layers_dir: &l,
            app_dir: Path::new("/workspace"),
            group: &[bp("example/a")],
            previous: &LifecycleMetadata::default(),
            app_slices: &slices,
            launcher: Path::new("/l"),
            process_types: &[],
            sbom: true,
        };
        let err = plan_layers(&inp).unwrap_err().to_string();
        assert_eq!(err, "cannot reuse 'example/a:gone', previous image has no metadata for layer 'example/a:gone'");
        fs::write(
            a.join("gone.toml"),
            "[types]\nlaunch = true\ncache = true\n",
        )
        .unwrap();
        let err = plan_layers(&inp).unwrap_err().to_string();
        assert_eq!(
            err,
            "layer 'example/a:gone' is cache=true but has no contents"
        );
        fs::write(a.join("gone.toml"), "launch = true\n").unwrap();
        assert!(plan_layers(&inp)
            .unwrap_err()
            .to_string()
            .starts_with("failed to parse metadata for layers"));
        assert!(validate_process_type("we/b").is_err());
        assert!(validate_process_type("").is_err());
        assert!(validate_process_type("web-1.x").is_ok());
    }
}
