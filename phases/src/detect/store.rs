//! Looking up buildpack and extension descriptors on disk (buildpack spec "buildpack.toml",
//! image extension spec "extension.toml"; platform spec "Buildpacks Directory Layout"; checklist DT-05).
//!
//! `<buildpacks>/<escaped id>/<version>/buildpack.toml` and
//! `<extensions>/<escaped id>/<version>/extension.toml`, where the escaped id replaces every `/` by `_`.

use std::path::{Path, PathBuf};

use cnb_spec::BuildpackApi;

use super::model::{Kind, ModuleRef, Order, OrderElement};

pub use cnb_spec::buildpack::{Distro, Target};

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

/// Reads and normalises one descriptor file (through the cnb-spec descriptor types).
pub fn read_descriptor(
    kind: Kind,
    id: &str,
    version: &str,
    path: &Path,
) -> Result<Descriptor, StoreError> {
    let read_err = |e: cnb_spec::io::FileError| {
        if e.is_not_found() {
            StoreError::Read {
                kind,
                id: id.to_string(),
                version: version.to_string(),
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }
        } else {
            StoreError::Parse {
                kind,
                id: id.to_string(),
                version: version.to_string(),
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        }
    };
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = std::path::absolute(&root).unwrap_or(root);
    let unsupported = |api: &str| StoreError::UnsupportedApi {
        kind,
        id: id.to_string(),
        version: version.to_string(),
        path: path.to_path_buf(),
        api: api.to_string(),
    };
    let d = match kind {
        Kind::Buildpack => {
            let raw = cnb_spec::buildpack::BuildpackDescriptor::read(path).map_err(read_err)?;
            let api = raw.buildpack_api().map_err(|_| unsupported(&raw.api))?;
            let mut targets = raw.effective_targets();
            if targets.is_empty() && root.join("bin").join("build").exists() {
                targets.push(Target {
                    os: "linux".into(),
                    ..Target::default()
                });
            }
            let order = raw
                .order
                .iter()
                .map(|g| {
                    g.group
                        .iter()
                        .map(|e| {
                            OrderElement::Module(ModuleRef {
                                kind: Kind::Buildpack,
                                id: e.id.clone(),
                                version: e.version.clone(),
                                optional: e.optional,
                            })
                        })
                        .collect()
                })
                .collect();
            let info = raw.buildpack;
            Descriptor {
                kind,
                id: info.id,
                version: info.version,
                api,
                homepage: info.homepage,
                clear_env: info.clear_env,
                order,
                targets,
                exec_env: info.exec_env,
                sbom_formats: info.sbom_formats,
                root,
                path: path.to_path_buf(),
            }
        }
        Kind::Extension => {
            let raw = cnb_spec::buildpack::ExtensionDescriptor::read(path).map_err(read_err)?;
            let api = raw.buildpack_api().map_err(|_| unsupported(&raw.api))?;
            let mut targets = raw.targets.clone();
            if targets.is_empty() {
                let bin = root.join("bin");
                if bin.join("detect").exists() || bin.join("generate").exists() {
                    targets.push(Target {
                        os: "linux".into(),
                        ..Target::default()
                    });
                } else {
                    targets.push(Target::default());
                }
            }
            let info = raw.extension;
            Descriptor {
                kind,
                id: info.id,
                version: info.version,
                api,
                homepage: info.homepage,
                clear_env: info.clear_env,
                order: Vec::new(),
                targets,
                exec_env: info.exec_env,
                sbom_formats: Vec::new(),
                root,
                path: path.to_path_buf(),
            }
        }
    };
    Ok(Descriptor {
        id: if d.id.is_empty() {
            id.to_string()
        } else {
            d.id
        },
        version: if d.version.is_empty() {
            version.to_string()
        } else {
            d.version
        },
        homepage: d.homepage.filter(|h| !h.is_empty()),
        exec_env: if d.api >= BuildpackApi::new(0, 12) {
            d.exec_env
        } else {
            Vec::new()
        },
        ..d
    })
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
