//! Reading and writing the platform files the detector and builder exchange: `order.toml`,
//! `system.toml`, `group.toml`, `plan.toml`, `analyzed.toml` (platform spec "Data Format"; checklist
//! DT-03, DT-04, DT-07, DS-14, BPL-07, F-*).
//!
//! TODO(integration): decode/encode through the cnb-spec types (`cnb_spec::platform::*`) once they are
//! in main. The conversions into the detector's model stay here; only the serde shapes move.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{GroupMember, Kind, ModuleRef, PlanEntry, Provider, Require};
use super::store::{Distro, RawGroup};
use super::target::RunTarget;

/// Errors reading or writing a platform file; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("failed to read {what} file {}: {source}", path.display())]
    Read {
        /// `order`, `group`, `plan`, …
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has the wrong shape.
    #[error("failed to read {what} file {}: {message}", path.display())]
    Parse {
        /// `order`, `group`, `plan`, …
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The TOML error with its location.
        message: String,
    },
    /// The file could not be written.
    #[error("failed to write {what} file {}: {source}", path.display())]
    Write {
        /// `order`, `group`, `plan`, …
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn read_text(what: &'static str, path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    what: &'static str,
    path: &Path,
    text: &str,
) -> Result<T, FileError> {
    toml::from_str(text).map_err(|e| FileError::Parse {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `contents` atomically (temp file in the same directory, then rename).
pub fn write_atomic(what: &'static str, path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let err = |source| FileError::Write {
        what,
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, contents).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

fn to_toml<T: Serialize>(what: &'static str, path: &Path, v: &T) -> Result<String, FileError> {
    toml::to_string(v).map_err(|e| FileError::Write {
        what,
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

#[derive(Debug, Deserialize, Default)]
struct RawOrder {
    #[serde(default)]
    order: Vec<RawGroup>,
    #[serde(default, rename = "order-extensions")]
    order_extensions: Vec<RawGroup>,
}

fn refs(kind: Kind, groups: Vec<RawGroup>) -> Vec<Vec<ModuleRef>> {
    groups
        .into_iter()
        .map(|g| {
            g.group
                .into_iter()
                .map(|e| ModuleRef {
                    kind,
                    id: e.id,
                    version: e.version,
                    optional: e.optional || kind == Kind::Extension,
                })
                .collect()
        })
        .collect()
}

/// Groups of module references, as in `[[order]]`.
pub type Groups = Vec<Vec<ModuleRef>>;

/// `order.toml`: buildpack groups and extension groups (DT-03).
pub fn read_order(path: &Path) -> Result<(Groups, Groups), FileError> {
    let text = read_text("order", path)?;
    let raw: RawOrder = parse("order", path, &text)?;
    Ok((
        refs(Kind::Buildpack, raw.order),
        refs(Kind::Extension, raw.order_extensions),
    ))
}

#[derive(Debug, Deserialize, Default)]
struct RawSystem {
    #[serde(default)]
    system: RawSystemInner,
}

#[derive(Debug, Deserialize, Default)]
struct RawSystemInner {
    #[serde(default)]
    pre: RawSystemList,
    #[serde(default)]
    post: RawSystemList,
}

#[derive(Debug, Deserialize, Default)]
struct RawSystemList {
    #[serde(default)]
    buildpacks: Vec<super::store::RawGroupElement>,
}

/// `system.toml` pre and post buildpacks; a missing file means none (DT-04).
pub fn read_system(path: &Path) -> Result<(Vec<ModuleRef>, Vec<ModuleRef>), FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(source) => {
            return Err(FileError::Read {
                what: "system",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let raw: RawSystem = parse("system", path, &text)?;
    let conv = |l: RawSystemList| {
        l.buildpacks
            .into_iter()
            .map(|e| ModuleRef::buildpack(e.id, e.version))
            .collect()
    };
    Ok((conv(raw.system.pre), conv(raw.system.post)))
}

/// Prepends `pre` and appends `post` to every group, skipping ids the group already has (DT-04).
pub fn merge_system(
    order: Vec<Vec<ModuleRef>>,
    pre: &[ModuleRef],
    post: &[ModuleRef],
) -> (Vec<Vec<ModuleRef>>, Vec<String>) {
    let mut logs = Vec::new();
    if pre.is_empty() && post.is_empty() {
        return (order, logs);
    }
    let merged = order
        .into_iter()
        .map(|g| {
            let keep = |s: &&ModuleRef| !g.iter().any(|e| e.id == s.id);
            let pre: Vec<ModuleRef> = pre.iter().filter(keep).cloned().collect();
            let post: Vec<ModuleRef> = post.iter().filter(keep).cloned().collect();
            if !pre.is_empty() {
                logs.push(format!(
                    "Prepending {} system buildpack(s) to group",
                    pre.len()
                ));
            }
            if !post.is_empty() {
                logs.push(format!(
                    "Appending {} system buildpack(s) to group",
                    post.len()
                ));
            }
            pre.into_iter().chain(g).chain(post).collect()
        })
        .collect();
    (merged, logs)
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct RawGroupFile {
    #[serde(default)]
    group: Vec<RawMember>,
    #[serde(
        default,
        rename = "group-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    group_extensions: Vec<RawMember>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawMember {
    id: String,
    version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
}

fn members(kind: Kind, raw: Vec<RawMember>) -> Vec<GroupMember> {
    raw.into_iter()
        .map(|m| GroupMember {
            module: ModuleRef {
                kind,
                id: m.id,
                version: m.version,
                optional: false,
            },
            api: m.api,
            homepage: m.homepage,
        })
        .collect()
}

fn raw_members(ms: &[GroupMember]) -> Vec<RawMember> {
    ms.iter()
        .map(|m| RawMember {
            id: m.module.id.clone(),
            version: m.module.version.clone(),
            api: m.api.clone(),
            homepage: m.homepage.clone(),
        })
        .collect()
}

/// `group.toml`: buildpacks and extensions (empty file = empty group, BD-01).
pub fn read_group(path: &Path) -> Result<(Vec<GroupMember>, Vec<GroupMember>), FileError> {
    let text = read_text("group", path)?;
    let raw: RawGroupFile = parse("group", path, &text)?;
    Ok((
        members(Kind::Buildpack, raw.group),
        members(Kind::Extension, raw.group_extensions),
    ))
}

/// Writes `group.toml` (DS-14).
pub fn write_group(
    path: &Path,
    buildpacks: &[GroupMember],
    extensions: &[GroupMember],
) -> Result<(), FileError> {
    let raw = RawGroupFile {
        group: raw_members(buildpacks),
        group_extensions: raw_members(extensions),
    };
    let text = to_toml("group", path, &raw)?;
    write_atomic("group", path, text.as_bytes())
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct RawPlanFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entries: Vec<RawEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawEntry {
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    requires: Vec<RawReq>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawProvider {
    id: String,
    version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    extension: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawReq {
    name: String,
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    metadata: toml::Table,
}

/// `plan.toml` (empty file = empty plan).
pub fn read_plan(path: &Path) -> Result<Vec<PlanEntry>, FileError> {
    let text = read_text("plan", path)?;
    let raw: RawPlanFile = parse("plan", path, &text)?;
    Ok(raw
        .entries
        .into_iter()
        .map(|e| PlanEntry {
            providers: e
                .providers
                .into_iter()
                .map(|p| Provider {
                    id: p.id,
                    version: p.version,
                    extension: p.extension,
                })
                .collect(),
            requires: e
                .requires
                .into_iter()
                .map(|r| Require {
                    name: r.name,
                    metadata: r.metadata,
                })
                .collect(),
        })
        .collect())
}

/// Writes `plan.toml`; an empty plan is a zero-byte file (DT-07).
pub fn write_plan(path: &Path, entries: &[PlanEntry]) -> Result<(), FileError> {
    let raw = RawPlanFile {
        entries: entries
            .iter()
            .map(|e| RawEntry {
                providers: e
                    .providers
                    .iter()
                    .map(|p| RawProvider {
                        id: p.id.clone(),
                        version: p.version.clone(),
                        extension: p.extension,
                    })
                    .collect(),
                requires: e
                    .requires
                    .iter()
                    .map(|r| RawReq {
                        name: r.name.clone(),
                        metadata: r.metadata.clone(),
                    })
                    .collect(),
            })
            .collect(),
    };
    let text = to_toml("plan", path, &raw)?;
    write_atomic("plan", path, text.as_bytes())
}

/// The buildpack plan file handed to one module (`[[entries]]` of `{name, metadata}`).
pub fn buildpack_plan_toml(requires: &[Require]) -> String {
    #[derive(Serialize)]
    struct BpPlan<'a> {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        entries: Vec<BpEntry<'a>>,
    }
    #[derive(Serialize)]
    struct BpEntry<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "toml::Table::is_empty")]
        metadata: &'a toml::Table,
    }
    let p = BpPlan {
        entries: requires
            .iter()
            .map(|r| BpEntry {
                name: &r.name,
                metadata: &r.metadata,
            })
            .collect(),
    };
    toml::to_string(&p).unwrap_or_default()
}

/// `analyzed.toml` kept as a table so that keys other phases own survive a rewrite.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analyzed {
    /// The whole document.
    pub doc: toml::Table,
}

impl Analyzed {
    /// Reads `analyzed.toml`; a missing file is an empty document (DT-02).
    pub fn read(path: &Path) -> Result<Option<Self>, FileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Self {
                doc: parse("analyzed", path, &text)?,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(FileError::Read {
                what: "analyzed",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes it back atomically.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        let text = to_toml("analyzed", path, &self.doc)?;
        write_atomic("analyzed", path, text.as_bytes())
    }

    fn run_image(&self) -> Option<&toml::Table> {
        self.doc.get("run-image").and_then(|v| v.as_table())
    }

    /// `run-image.image`.
    pub fn run_image_image(&self) -> &str {
        self.run_image()
            .and_then(|r| r.get("image"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }

    /// `[run-image.target]` (not yet completed from os-release).
    pub fn run_target(&self) -> RunTarget {
        let Some(t) = self
            .run_image()
            .and_then(|r| r.get("target"))
            .and_then(|v| v.as_table())
        else {
            return RunTarget::default();
        };
        let s = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let distro = t.get("distro").and_then(|v| v.as_table()).map(|d| Distro {
            name: d
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            version: d
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        });
        let variant = s("arch-variant");
        RunTarget {
            os: s("os"),
            arch: s("arch"),
            arch_variant: if variant.is_empty() {
                s("variant")
            } else {
                variant
            },
            distro,
        }
    }

    /// Replaces the run image (target data cleared) — an extension switched it (GN-10).
    pub fn set_run_image(&mut self, image: &str, extend: bool) {
        let mut t = toml::Table::new();
        t.insert("reference".into(), image.into());
        t.insert("image".into(), image.into());
        if extend {
            t.insert("extend".into(), true.into());
        }
        self.doc.insert("run-image".into(), toml::Value::Table(t));
    }

    /// Marks the run image as extended, if there is one.
    pub fn set_run_image_extend(&mut self) {
        if let Some(r) = self.doc.get_mut("run-image").and_then(|v| v.as_table_mut()) {
            r.insert("extend".into(), true.into());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn order_group_plan_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let order = tmp.path().join("order.toml");
        std::fs::write(
            &order,
            r#"[[order]]
[[order.group]]
id = "a"
version = "1"
optional = true
[[order-extensions]]
[[order-extensions.group]]
id = "e"
version = "2"
"#,
        )
        .unwrap();
        let (bps, exts) = read_order(&order).unwrap();
        assert!(bps[0][0].optional && bps[0][0].kind == Kind::Buildpack);
        assert!(exts[0][0].optional && exts[0][0].kind == Kind::Extension);

        let g = tmp.path().join("group.toml");
        let m = GroupMember {
            module: ModuleRef::buildpack("a", "1"),
            api: "0.10".into(),
            homepage: None,
        };
        write_group(&g, std::slice::from_ref(&m), &[]).unwrap();
        assert_eq!(read_group(&g).unwrap().0, vec![m]);

        let p = tmp.path().join("plan.toml");
        write_plan(&p, &[]).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert!(read_plan(&p).unwrap().is_empty());
    }

    #[test]
    fn dt_04_system_buildpacks_merge_skipping_duplicates() {
        let order = vec![vec![ModuleRef::buildpack("a", "1")]];
        let (m, logs) = merge_system(
            order,
            &[
                ModuleRef::buildpack("pre", "1"),
                ModuleRef::buildpack("a", "9"),
            ],
            &[ModuleRef::buildpack("post", "1")],
        );
        let ids: Vec<_> = m[0].iter().map(|r| r.to_string()).collect();
        assert_eq!(ids, ["pre@1", "a@1", "post@1"]);
        assert_eq!(
            logs,
            [
                "Prepending 1 system buildpack(s) to group",
                "Appending 1 system buildpack(s) to group"
            ]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("group.toml");
        std::fs::write(&p, "[[group]\n").unwrap();
        let e = read_group(&p).unwrap_err().to_string();
        assert!(e.contains("group.toml"), "{e}");
    }
}
