//! Looking up buildpack and extension descriptors on disk (buildpack spec "buildpack.toml",
//! image extension spec "extension.toml"; platform spec "Buildpacks Directory Layout"; checklist DT-05).
//!
//! `<buildpacks>/<escaped id>/<version>/buildpack.toml` and
//! `<extensions>/<escaped id>/<version>/extension.toml`, where the escaped id replaces every `/` by `_`.

use std::path::{Path, PathBuf};

use cnb_spec::BuildpackApi;
use serde::Deserialize;

use super::model::{Kind, ModuleRef, Order, OrderElement};

/// A target a module supports (`[[targets]]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub struct Target {
    /// `os`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// `arch`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// `arch-variant` (also accepted as `variant`).
    #[serde(
        default,
        rename = "arch-variant",
        alias = "variant",
        skip_serializing_if = "String::is_empty"
    )]
    pub arch_variant: String,
    /// `[[targets.distros]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distro>,
}

/// An OS distribution (`name`, `version`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub struct Distro {
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `version`.
    #[serde(default)]
    pub version: String,
}

/// A buildpack's or extension's descriptor, normalised for the detector, generator and builder.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Buildpack or extension.
    pub kind: Kind,
    /// `id`.
    pub id: String,
    /// `version`.
    pub version: String,
    /// `api`, checked to be supported.
    pub api: BuildpackApi,
    /// `homepage`.
    pub homepage: Option<String>,
    /// `clear-env`: when true, user-provided platform env is not set for this module.
    pub clear_env: bool,
    /// `[[order]]` of a composite buildpack (empty for component buildpacks and extensions).
    pub order: Order,
    /// `[[targets]]`, inferred as the reference does when absent.
    pub targets: Vec<Target>,
    /// `exec-env` (Buildpack API ≥ 0.12).
    pub exec_env: Vec<String>,
    /// `sbom-formats` media types.
    pub sbom_formats: Vec<String>,
    /// The module's root directory (absolute when the store's directory is).
    pub root: PathBuf,
    /// The descriptor file.
    pub path: PathBuf,
}

impl Descriptor {
    /// `<root>/bin/<name>`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }
}

/// Errors looking up or reading a descriptor.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The descriptor file could not be read.
    #[error("{kind} '{id}@{version}': failed to read descriptor {}: {source}", path.display())]
    Read {
        /// Module kind.
        kind: Kind,
        /// Module id.
        id: String,
        /// Module version.
        version: String,
        /// Descriptor path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The descriptor is not valid TOML or has the wrong shape.
    #[error("{kind} '{id}@{version}': invalid descriptor {}: {message}", path.display())]
    Parse {
        /// Module kind.
        kind: Kind,
        /// Module id.
        id: String,
        /// Module version.
        version: String,
        /// Descriptor path.
        path: PathBuf,
        /// The TOML error, with its location.
        message: String,
    },
    /// The descriptor's `api` is unparsable or unsupported (exit 12).
    #[error("set API for {kind} '{id}@{version}': buildpack API version '{api}' is incompatible with the lifecycle ({})", path.display())]
    UnsupportedApi {
        /// Module kind.
        kind: Kind,
        /// Module id.
        id: String,
        /// Module version.
        version: String,
        /// Descriptor path.
        path: PathBuf,
        /// The declared API.
        api: String,
    },
}

/// Finds descriptors under the buildpacks and extensions directories.
pub trait DescriptorStore: Sync {
    /// Looks up a module by kind, id and version.
    fn lookup(&self, kind: Kind, id: &str, version: &str) -> Result<Descriptor, StoreError>;
}

/// The on-disk store: `<dir>/<escaped id>/<version>/<buildpack|extension>.toml`.
#[derive(Debug, Clone)]
pub struct DirStore {
    /// `-buildpacks`.
    pub buildpacks_dir: PathBuf,
    /// `-extensions`.
    pub extensions_dir: PathBuf,
}

/// `id` with every `/` replaced by `_`.
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

impl DescriptorStore for DirStore {
    fn lookup(&self, kind: Kind, id: &str, version: &str) -> Result<Descriptor, StoreError> {
        let (dir, file) = match kind {
            Kind::Buildpack => (&self.buildpacks_dir, "buildpack.toml"),
            Kind::Extension => (&self.extensions_dir, "extension.toml"),
        };
        let path = dir.join(escape_id(id)).join(version).join(file);
        read_descriptor(kind, id, version, &path)
    }
}

// TODO(integration): decode through the cnb-spec `buildpack.toml` / `extension.toml` types once they are
// in main; these private shapes only cover what the detector, generator and builder read.
#[derive(Debug, Deserialize)]
struct RawDescriptor {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    buildpack: Option<RawInfo>,
    #[serde(default)]
    extension: Option<RawInfo>,
    #[serde(default)]
    order: Vec<RawGroup>,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    stacks: Vec<RawStack>,
}

#[derive(Debug, Deserialize)]
struct RawInfo {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    homepage: Option<String>,
    #[serde(default, rename = "clear-env")]
    clear_env: bool,
    #[serde(default, rename = "sbom-formats")]
    sbom_formats: Vec<String>,
    #[serde(default, rename = "exec-env")]
    exec_env: Vec<RawExecEnv>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawExecEnv {
    Name(String),
    Table { name: String },
}

#[derive(Debug, Deserialize)]
struct RawStack {
    id: String,
}

/// An `[[order]]` group as written in `order.toml` and composite `buildpack.toml`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawGroup {
    #[serde(default)]
    pub(crate) group: Vec<RawGroupElement>,
}

/// One `[[order.group]]` element.
#[derive(Debug, Deserialize)]
pub(crate) struct RawGroupElement {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) optional: bool,
}

/// Reads and normalises one descriptor file.
pub fn read_descriptor(
    kind: Kind,
    id: &str,
    version: &str,
    path: &Path,
) -> Result<Descriptor, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read {
        kind,
        id: id.to_string(),
        version: version.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |message: String| StoreError::Parse {
        kind,
        id: id.to_string(),
        version: version.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let raw: RawDescriptor = toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?;
    let info = match kind {
        Kind::Buildpack => raw.buildpack,
        Kind::Extension => raw.extension,
    }
    .ok_or_else(|| parse_err(format!("missing [{kind}] table")))?;
    let api_text = raw.api.unwrap_or_default();
    let api = BuildpackApi::parse_supported(&api_text).map_err(|_| StoreError::UnsupportedApi {
        kind,
        id: id.to_string(),
        version: version.to_string(),
        path: path.to_path_buf(),
        api: api_text.clone(),
    })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = std::path::absolute(&root).unwrap_or(root);
    let order = raw
        .order
        .into_iter()
        .map(|g| {
            g.group
                .into_iter()
                .map(|e| {
                    OrderElement::Module(ModuleRef {
                        kind: Kind::Buildpack,
                        id: e.id,
                        version: e.version,
                        optional: e.optional,
                    })
                })
                .collect()
        })
        .collect();
    let exec_env = if api >= BuildpackApi::new(0, 12) {
        info.exec_env
            .into_iter()
            .map(|e| match e {
                RawExecEnv::Name(n) | RawExecEnv::Table { name: n } => n,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut targets = raw.targets;
    if targets.is_empty() {
        targets = infer_targets(kind, &root, api, &raw.stacks);
    }
    Ok(Descriptor {
        kind,
        id: if info.id.is_empty() {
            id.to_string()
        } else {
            info.id
        },
        version: if info.version.is_empty() {
            version.to_string()
        } else {
            info.version
        },
        api,
        homepage: info.homepage.filter(|h| !h.is_empty()),
        clear_env: info.clear_env,
        order,
        targets,
        exec_env,
        sbom_formats: info.sbom_formats,
        root,
        path: path.to_path_buf(),
    })
}

/// Target inference for descriptors without `[[targets]]` (buildpack spec "Targets"; reference parity):
/// the bionic stack id maps to ubuntu 18.04 amd64, `*` matches anything, and a module with a `bin/build`
/// (buildpack) or `bin/detect`/`bin/generate` (extension) supports `linux`.
fn infer_targets(kind: Kind, root: &Path, api: BuildpackApi, stacks: &[RawStack]) -> Vec<Target> {
    let mut out = Vec::new();
    if kind == Kind::Buildpack {
        for s in stacks {
            if s.id == "io.buildpacks.stacks.bionic" {
                if api >= BuildpackApi::new(0, 10) || stacks.len() == 1 {
                    out.push(Target {
                        os: "linux".into(),
                        arch: "amd64".into(),
                        arch_variant: String::new(),
                        distros: vec![Distro {
                            name: "ubuntu".into(),
                            version: "18.04".into(),
                        }],
                    });
                }
            } else if s.id == "*" {
                out.push(Target::default());
            }
        }
        if out.is_empty() && root.join("bin").join("build").exists() {
            out.push(Target {
                os: "linux".into(),
                ..Target::default()
            });
        }
    } else {
        let bin = root.join("bin");
        if bin.join("detect").exists() || bin.join("generate").exists() {
            out.push(Target {
                os: "linux".into(),
                ..Target::default()
            });
        }
        if out.is_empty() {
            out.push(Target::default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    #[test]
    fn dt_05_looks_up_escaped_id_and_reads_composite_order() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "bps/org_comp/1.0/buildpack.toml",
            r#"api = "0.10"
[buildpack]
id = "org/comp"
version = "1.0"
homepage = "https://example.com"
[[order]]
[[order.group]]
id = "a"
version = "1"
optional = true
"#,
        );
        let store = DirStore {
            buildpacks_dir: tmp.path().join("bps"),
            extensions_dir: tmp.path().join("exts"),
        };
        let d = store.lookup(Kind::Buildpack, "org/comp", "1.0").unwrap();
        assert_eq!(d.id, "org/comp");
        assert_eq!(d.api, BuildpackApi::new(0, 10));
        assert_eq!(d.homepage.as_deref(), Some("https://example.com"));
        assert_eq!(
            d.order,
            vec![vec![OrderElement::Module(
                ModuleRef::buildpack("a", "1").optional()
            )]]
        );
    }

    #[test]
    fn dt_05_unsupported_api_and_malformed_descriptor_name_the_module_and_path() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "bps/a/1/buildpack.toml",
            "api = \"0.99\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n",
        );
        write(tmp.path(), "bps/b/1/buildpack.toml", "api = \n");
        let store = DirStore {
            buildpacks_dir: tmp.path().join("bps"),
            extensions_dir: tmp.path().join("exts"),
        };
        let e = store.lookup(Kind::Buildpack, "a", "1").unwrap_err();
        assert!(matches!(e, StoreError::UnsupportedApi { .. }), "{e}");
        let e = store.lookup(Kind::Buildpack, "b", "1").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("'b@1'") && msg.contains("bps/b/1/buildpack.toml"),
            "{msg}"
        );
        let e = store.lookup(Kind::Buildpack, "c", "1").unwrap_err();
        assert!(matches!(e, StoreError::Read { .. }));
    }
}
