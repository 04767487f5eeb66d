//! The exporter's layers produced with [`archive::LayerBuilder`](crate::archive::LayerBuilder), whose tar
//! headers are byte-identical to the reference's Go writer (checklist IM-10, IM-12, IM-13, IM-14, T-01),
//! so the same tree gives the reference's diffID.
//!
//! - [`LayerContent::Dir`]: the directory as a host tree mapped to its own path, its ancestors with their
//!   real mode and owner, everything from the directory down owned by `CNB_USER_ID:CNB_GROUP_ID`.
//! - [`LayerContent::App`]: the app dir's ancestors (real owner), the app dir and the slice's entries
//!   (and their parents inside the app dir) owned by the build user, modes kept.
//! - [`LayerContent::Launcher`] / [`LayerContent::ProcessTypes`]: `/cnb`, `/cnb/lifecycle` or
//!   `/cnb/process` (0755 root), the launcher file (0755 root) or one symlink per process type.
//!
//! Hard links are not detected (the reference stores each link as a regular file).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::plan::LayerContent;
use crate::archive::{Compression, LayerBuilder, LayerWriter, Meta, Sink, Source};

/// Owner of the layer content (`CNB_USER_ID`/`CNB_GROUP_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

/// A compressed layer written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// sha256 of the blob.
    pub digest: String,
    /// Blob size.
    pub size: u64,
    /// Blob file.
    pub path: PathBuf,
}

fn io_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn archive_err(e: crate::archive::ArchiveError) -> io::Error {
    io::Error::other(crate::error::chain(&e))
}

fn image_path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A directory entry for every ancestor of `dir` (root excluded) with its host mode and owner.
fn host_ancestors(b: &mut LayerBuilder, dir: &Path) -> io::Result<()> {
    let mut anc: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .collect();
    anc.reverse();
    for a in anc {
        let md = fs::metadata(a).map_err(|e| io_at(a, e))?;
        b.add(Source::Dir {
            path: image_path(a),
            meta: Meta::new(md.mode() & 0o7777, u64::from(md.uid()), u64::from(md.gid())),
        });
    }
    Ok(())
}

/// One host entry (dir, file or symlink; anything else skipped) owned by `owner`, mode kept.
fn owned_entry(b: &mut LayerBuilder, host: &Path, owner: Owner) -> io::Result<()> {
    let md = fs::symlink_metadata(host).map_err(|e| io_at(host, e))?;
    let meta = Meta::new(
        md.mode() & 0o7777,
        u64::from(owner.uid),
        u64::from(owner.gid),
    );
    let path = image_path(host);
    let ft = md.file_type();
    if ft.is_dir() {
        b.add(Source::Dir { path, meta });
    } else if ft.is_file() {
        b.add(Source::File {
            path,
            host: host.to_path_buf(),
            meta,
        });
    } else if ft.is_symlink() {
        let target = fs::read_link(host).map_err(|e| io_at(host, e))?;
        b.add(Source::Symlink {
            path,
            target: target.to_string_lossy().into_owned(),
            meta,
        });
    }
    Ok(())
}

/// The layer builder for `content` (not for [`LayerContent::Previous`], which is never re-tarred).
pub fn builder(content: &LayerContent, owner: Owner) -> io::Result<LayerBuilder> {
    let mut b = LayerBuilder::new();
    b.hardlinks(false);
    let root = |mode| Meta::root(mode);
    match content {
        LayerContent::Dir(dir) => {
            b.add_tree(
                dir.clone(),
                image_path(dir),
                u64::from(owner.uid),
                u64::from(owner.gid),
            );
        }
        LayerContent::App { app_dir, entries } => {
            host_ancestors(&mut b, app_dir)?;
            owned_entry(&mut b, app_dir, owner)?;
            for rel in entries {
                let mut parents: Vec<&Path> = rel
                    .ancestors()
                    .skip(1)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect();
                parents.reverse();
                for p in parents {
                    owned_entry(&mut b, &app_dir.join(p), owner)?;
                }
                owned_entry(&mut b, &app_dir.join(rel), owner)?;
            }
        }
        LayerContent::Launcher(path) => {
            b.add(Source::Dir {
                path: "/cnb".into(),
                meta: root(0o755),
            });
            b.add(Source::Dir {
                path: "/cnb/lifecycle".into(),
                meta: root(0o755),
            });
            b.add(Source::File {
                path: "/cnb/lifecycle/launcher".into(),
                host: path.clone(),
                meta: root(0o755),
            });
        }
        LayerContent::ProcessTypes(types) => {
            b.add(Source::Dir {
                path: "/cnb".into(),
                meta: root(0o755),
            });
            b.add(Source::Dir {
                path: "/cnb/process".into(),
                meta: root(0o755),
            });
            for t in types {
                b.add(Source::Symlink {
                    path: format!("/cnb/process/{t}"),
                    target: "/cnb/lifecycle/launcher".into(),
                    meta: root(0o755),
                });
            }
        }
        LayerContent::Previous(d) => {
            return Err(io::Error::other(format!(
                "layer {d} is reused from the previous image, not tarred"
            )))
        }
    }
    Ok(b)
}

fn tar_to_file(b: &LayerBuilder, path: &Path) -> io::Result<String> {
    let info = b
        .write(Compression::None, Sink::File(path.to_path_buf()))
        .map_err(archive_err)?;
    Ok(info.diff_id.to_string())
}

/// The diffID of `content` without compressing; with `tee`, the tar is also written there (for the
/// cache, IM-15).
pub fn diff_id(content: &LayerContent, owner: Owner, tee: Option<&Path>) -> io::Result<String> {
    let b = builder(content, owner)?;
    match tee {
        Some(p) => tar_to_file(&b, p),
        None => Ok(b
            .write(Compression::None, Sink::HashOnly)
            .map_err(archive_err)?
            .diff_id
            .to_string()),
    }
}

/// Tars, hashes and gzips (level 1) `content` into `blob_path` in one pass; with `tee`, the
/// uncompressed tar is also written there.
pub fn build_gzip(
    content: &LayerContent,
    owner: Owner,
    blob_path: &Path,
    tee: Option<&Path>,
) -> io::Result<BuiltLayer> {
    let b = builder(content, owner)?;
    let gzip = Compression::Gzip { level: 1 };
    let info = match tee {
        // One walk: the tar stream goes both to the tee file and through the gzip pipeline.
        Some(t) => {
            let mut layer = LayerWriter::new(gzip, Sink::File(PathBuf::from(blob_path)))
                .map_err(archive_err)?;
            // Like `Sink::File`: a temp name in the same directory, renamed when complete.
            let mut file = io::BufWriter::new(cnb_spec::io::AtomicFile::create(
                t,
                cnb_spec::io::FILE_MODE,
            )?);
            b.write_tar(Tee(&mut file, &mut layer))
                .map_err(archive_err)?;
            let info = layer.finish().map_err(archive_err)?;
            file.into_inner().map_err(io::Error::from)?.commit()?;
            info
        }
        None => b
            .write(gzip, Sink::File(PathBuf::from(blob_path)))
            .map_err(archive_err)?,
    };
    Ok(BuiltLayer {
        diff_id: info.diff_id.to_string(),
        digest: info.digest.to_string(),
        size: info.size,
        path: blob_path.to_path_buf(),
    })
}

/// Tars and hashes `content` uncompressed into `blob_path` (the blob is the tar: digest = diffID), for
/// stores that keep layers uncompressed (a daemon); with `tee`, the tar is also linked (or copied) there.
pub fn build_tar(
    content: &LayerContent,
    owner: Owner,
    blob_path: &Path,
    tee: Option<&Path>,
) -> io::Result<BuiltLayer> {
    let b = builder(content, owner)?;
    let info = b
        .write(Compression::None, Sink::File(PathBuf::from(blob_path)))
        .map_err(archive_err)?;
    if let Some(t) = tee {
        let _ = std::fs::remove_file(t);
        std::fs::hard_link(blob_path, t)
            .or_else(|_| std::fs::copy(blob_path, t).map(|_| ()))
            .map_err(|e| io_at(t, e))?;
    }
    Ok(BuiltLayer {
        diff_id: info.diff_id.to_string(),
        digest: info.diff_id.to_string(),
        size: info.size,
        path: blob_path.to_path_buf(),
    })
}

/// Writes everything to both writers.
struct Tee<A, B>(A, B);

impl<A: io::Write, B: io::Write> io::Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// IM-10: every route (hash only, hash + tee, gzip) gives the same diffID; ancestors keep their real
    /// owner, the layer dir and below get the build user.
    #[test]
    fn im10_same_diff_id_by_every_route_and_owner_rules() {
        let t = tempfile::tempdir().unwrap();
        let layers = t.path().join("layers");
        let layer = layers.join("corrupted_buildpack/corrupted-layer");
        fs::create_dir_all(&layer).unwrap();
        fs::write(layer.join("data"), "digest-not-match-data").unwrap();
        let (a, b) = (
            LayerContent::Dir(layer.clone()),
            LayerContent::Dir(layer.clone()),
        );
        // Same tree, same diffID, whatever the hashing route.
        let d1 = diff_id(&a, Owner { uid: 1, gid: 2 }, None).unwrap();
        let tee = t.path().join("tee.tar");
        let d2 = diff_id(&b, Owner { uid: 1, gid: 2 }, Some(&tee)).unwrap();
        assert_eq!(d1, d2);
        let built = build_gzip(&a, Owner { uid: 1, gid: 2 }, &t.path().join("blob"), None).unwrap();
        assert_eq!(built.diff_id, d1);
        // gzip + tee in one walk: same diffID and blob, and the tee holds the same tar.
        let tee2 = t.path().join("tee2.tar");
        let teed = build_gzip(
            &a,
            Owner { uid: 1, gid: 2 },
            &t.path().join("blob2"),
            Some(&tee2),
        )
        .unwrap();
        assert_eq!(
            (teed.diff_id.as_str(), teed.digest.as_str()),
            (d1.as_str(), built.digest.as_str())
        );
        assert_eq!(fs::read(&tee2).unwrap(), fs::read(&tee).unwrap());
        // The entries are the ancestors (real owner), the layer dir and data (build user).
        let mut ar = tar::Archive::new(fs::File::open(&tee).unwrap());
        let names: Vec<(String, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        let last = names.len() - 1;
        assert!(names[last].0.ends_with("corrupted-layer/data"));
        assert_eq!(names[last].1, 1);
        assert_eq!(names[last - 1].1, 1);
    }

    fn tar_of(c: &LayerContent) -> Vec<u8> {
        let mut buf = Vec::new();
        builder(
            c,
            Owner {
                uid: 1000,
                gid: 1000,
            },
        )
        .unwrap()
        .write_tar(&mut buf)
        .unwrap();
        buf
    }

    /// IM-12, IM-13: the launcher layer (0755 root) and one symlink per process type.
    #[test]
    fn im12_im13_launcher_and_process_types() {
        let t = tempfile::tempdir().unwrap();
        let launcher = t.path().join("launcher");
        fs::write(&launcher, b"#!bin").unwrap();
        let buf = tar_of(&LayerContent::Launcher(launcher));
        let mut a = tar::Archive::new(buf.as_slice());
        let names: Vec<(String, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(names[2], ("/cnb/lifecycle/launcher".to_string(), 0o755, 0));
        let buf = tar_of(&LayerContent::ProcessTypes(vec!["web".into()]));
        let mut a = tar::Archive::new(buf.as_slice());
        let links: Vec<_> = a
            .entries()
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
            })
            .collect();
        assert_eq!(links, vec!["/cnb/lifecycle/launcher"]);
    }

    /// Names longer than USTAR allows survive (prefix split or PAX record).
    #[test]
    fn long_names_survive() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d").join("x".repeat(90)).join("y".repeat(90));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("z".repeat(120)), b"1").unwrap();
        let buf = tar_of(&LayerContent::Dir(t.path().join("d")));
        let mut a = tar::Archive::new(buf.as_slice());
        assert!(a.entries().unwrap().any(|e| e
            .unwrap()
            .path()
            .unwrap()
            .display()
            .to_string()
            .ends_with(&"z".repeat(120))));
    }
}
