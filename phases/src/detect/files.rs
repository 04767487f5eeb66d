//! Reading and writing the platform files the detector and builder exchange: `order.toml`,
//! `system.toml`, `group.toml`, `plan.toml`, `analyzed.toml` (platform spec "Data Format"; checklist
//! DT-03, DT-04, DT-07, DS-14, BPL-07, F-*).
//!
//! The files are decoded and encoded by the `cnb-spec` types; this module converts them to and from the
//! detector's model and keeps the lifecycle's error messages (which always name the file).

use std::path::{Path, PathBuf};

use cnb_spec::buildpack::{BuildpackPlan, GroupElement};
use cnb_spec::io::FileError as SpecFileError;
use cnb_spec::platform::{Group, Order, Plan, RunImage, SystemToml};

use super::model::{GroupMember, Kind, ModuleRef, PlanEntry, Provider, Require};

pub use cnb_spec::platform::Analyzed;

/// Errors reading or writing a platform file; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read or decoded (the cause names the file and TOML location).
    #[error("failed to read {what} file: {source}")]
    Read {
        /// `order`, `group`, `plan`, …
        what: &'static str,
        /// The decoding error.
        source: SpecFileError,
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
    /// The file could not be encoded or written by the spec type.
    #[error("failed to write {what} file: {source}")]
    Encode {
        /// `order`, `group`, `plan`, …
        what: &'static str,
        /// The encoding error.
        source: SpecFileError,
    },
}

fn read_err(what: &'static str) -> impl Fn(SpecFileError) -> FileError {
    move |source| FileError::Read { what, source }
}

fn enc_err(what: &'static str) -> impl Fn(SpecFileError) -> FileError {
    move |source| FileError::Encode { what, source }
}

/// Writes `contents` atomically (temp file in the same directory, then rename).
pub fn write_atomic(what: &'static str, path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let err = |source| FileError::Write {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut f = cnb_spec::io::AtomicFile::create(path, cnb_spec::io::FILE_MODE).map_err(err)?;
    std::io::Write::write_all(&mut f, contents).map_err(err)?;
    f.commit().map_err(err)
}

/// Groups of module references, as in `[[order]]`.
pub type Groups = Vec<Vec<ModuleRef>>;

fn refs(kind: Kind, groups: Vec<cnb_spec::buildpack::OrderGroup>) -> Groups {
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

/// `order.toml`: buildpack groups and extension groups (DT-03).
pub fn read_order(path: &Path) -> Result<(Groups, Groups), FileError> {
    let o = Order::read(path).map_err(read_err("order"))?;
    Ok((
        refs(Kind::Buildpack, o.order),
        refs(Kind::Extension, o.order_extensions),
    ))
}

/// `system.toml` pre and post buildpacks; a missing file means none (DT-04).
pub fn read_system(path: &Path) -> Result<(Vec<ModuleRef>, Vec<ModuleRef>), FileError> {
    let Some(s) = SystemToml::read_optional(path).map_err(read_err("system"))? else {
        return Ok((vec![], vec![]));
    };
    let conv = |l: Vec<GroupElement>| {
        l.into_iter()
            .map(|e| ModuleRef::buildpack(e.id, e.version))
            .collect()
    };
    Ok((
        conv(s.system.pre.buildpacks),
        conv(s.system.post.buildpacks),
    ))
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

fn members(kind: Kind, raw: Vec<GroupElement>) -> Vec<GroupMember> {
    raw.into_iter()
        .map(|m| GroupMember {
            module: ModuleRef {
                kind,
                id: m.id,
                version: m.version,
                optional: false,
            },
            api: m.api.unwrap_or_default(),
            homepage: m.homepage,
        })
        .collect()
}

/// A group member as a spec group element (`id`, `version`, `api`, `homepage`).
pub fn element(m: &GroupMember) -> GroupElement {
    GroupElement {
        id: m.module.id.clone(),
        version: m.module.version.clone(),
        api: (!m.api.is_empty()).then(|| m.api.clone()),
        homepage: m.homepage.clone(),
        ..GroupElement::default()
    }
}

/// `group.toml`: buildpacks and extensions (empty file = empty group, BD-01).
pub fn read_group(path: &Path) -> Result<(Vec<GroupMember>, Vec<GroupMember>), FileError> {
    let g = Group::read(path).map_err(read_err("group"))?;
    Ok((
        members(Kind::Buildpack, g.group),
        members(Kind::Extension, g.group_extensions),
    ))
}

/// Writes `group.toml` (DS-14).
pub fn write_group(
    path: &Path,
    buildpacks: &[GroupMember],
    extensions: &[GroupMember],
) -> Result<(), FileError> {
    let g = Group {
        group: buildpacks.iter().map(element).collect(),
        group_extensions: extensions.iter().map(element).collect(),
    };
    g.write(path).map_err(enc_err("group"))
}

/// `plan.toml` (empty file = empty plan).
pub fn read_plan(path: &Path) -> Result<Vec<PlanEntry>, FileError> {
    let p = Plan::read(path).map_err(read_err("plan"))?;
    Ok(p.entries
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
            requires: e.requires,
        })
        .collect())
}

/// Writes `plan.toml`; an empty plan is a zero-byte file (DT-07).
pub fn write_plan(path: &Path, entries: &[PlanEntry]) -> Result<(), FileError> {
    if entries.is_empty() {
        return write_atomic("plan", path, b"");
    }
    let p = Plan {
        entries: entries
            .iter()
            .map(|e| cnb_spec::platform::PlanEntry {
                providers: e
                    .providers
                    .iter()
                    .map(|p| GroupElement {
                        id: p.id.clone(),
                        version: p.version.clone(),
                        extension: p.extension,
                        ..GroupElement::default()
                    })
                    .collect(),
                requires: e.requires.clone(),
            })
            .collect(),
    };
    p.write(path).map_err(enc_err("plan"))
}

/// The buildpack plan file handed to one module (`[[entries]]` of `{name, metadata}`).
pub fn buildpack_plan_toml(requires: &[Require]) -> String {
    let plan = BuildpackPlan {
        entries: requires.to_vec(),
    };
    plan.to_toml_string().unwrap_or_default()
}

/// Reads `analyzed.toml`; a missing file is `None` (DT-02).
pub fn read_analyzed(path: &Path) -> Result<Option<Analyzed>, FileError> {
    Analyzed::read_optional(path).map_err(read_err("analyzed"))
}

/// Writes `analyzed.toml` atomically.
pub fn write_analyzed(path: &Path, a: &Analyzed) -> Result<(), FileError> {
    a.write(path).map_err(enc_err("analyzed"))
}

/// Replaces the run image (target data cleared) — an extension switched it (GN-10).
pub fn set_run_image(a: &mut Analyzed, image: &str, extend: bool) {
    a.run_image = Some(RunImage {
        reference: image.to_string(),
        image: image.to_string(),
        extend,
        target: None,
    });
}

/// Marks the run image as extended, if there is one.
pub fn set_run_image_extend(a: &mut Analyzed) {
    if let Some(r) = a.run_image.as_mut() {
        r.extend = true;
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
        let e = super::super::super::error::chain(&read_group(&p).unwrap_err());
        assert!(e.contains("group.toml"), "{e}");
    }
}
