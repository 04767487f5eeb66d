//! The extended run image as the exporter's base (platform spec "exporter": "MUST be based on the image
//! in `<extended>/run`"; checklist EP-02, EP-04, EP-05, EP-07, EP-19, IM-11).
//!
//! `extender -kind=run` leaves a *sparse* OCI layout at `<extended>/run/<manifest digest>/`: its manifest
//! and config list the run image's layers followed by the extension layers, but only the extension
//! layers' blobs are present. The exporter therefore keeps taking the base layers from the run image
//! (registry mount / HEAD skip, shared layout blobs) and appends each extension layer, rewritten as the
//! reference does (IM-11: gunzip, same entries, mtime normalised, uname/gname cleared), with its history
//! entry from the extended config. The extended config's `config` section (Env, User, WorkingDir,
//! Labels, ...) replaces the run image's.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::header::{self, EntryHeader, Kind};
use crate::archive::{Compression, LayerWriter, Sink};
use crate::image::layout::LayoutStore;
use crate::image::oci::ImageConfig;
use crate::image::{Image, ImageError};

/// The label that says whether the app image may be rebased (EP-19).
pub const REBASABLE_LABEL: &str = "io.buildpacks.rebasable";

/// Errors reading the extended run image; each names the directory.
#[derive(Debug, thiserror::Error)]
pub enum ExtendedError {
    /// `<extended>/run` could not be listed.
    #[error("reading extended run image directory '{}'", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// More than one extended run image.
    #[error("expected one extended run image in '{}', found {count}", path.display())]
    Ambiguous {
        /// `<extended>/run`.
        path: PathBuf,
        /// How many were found.
        count: usize,
    },
    /// `run-image.extend = true` but nothing under `<extended>/run`.
    #[error("analyzed.toml says the run image is extended, but '{}' holds no extended run image", path.display())]
    Missing {
        /// `<extended>/run`.
        path: PathBuf,
    },
    /// The layout is unreadable.
    #[error("reading extended run image '{}'", path.display())]
    Store {
        /// The layout directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Box<ImageError>,
    },
    /// The layout lists no image.
    #[error("extended run image '{}' has no manifest in index.json", path.display())]
    Empty {
        /// The layout directory.
        path: PathBuf,
    },
    /// The extended image does not start with the run image's layers.
    #[error("extended run image '{}' is not based on run image '{run_image}'", path.display())]
    WrongBase {
        /// The layout directory.
        path: PathBuf,
        /// The run image.
        run_image: String,
    },
    /// An extension layer's blob is missing from the sparse layout.
    #[error("extended run image '{}' lacks the blob of extension layer {digest}", path.display())]
    MissingBlob {
        /// The layout directory.
        path: PathBuf,
        /// The blob digest.
        digest: String,
    },
}

/// One extension layer to append after the run image's layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionLayer {
    /// Layer id for logs: `<extension id>:extended-layer-<n>` (EP-07).
    pub id: String,
    /// The blob as the extender wrote it (gzip, zstd or plain tar).
    pub blob: PathBuf,
}

/// The extended run image, read from its sparse layout.
#[derive(Debug)]
pub struct ExtendedRun {
    /// The extended config (its `config` section and history are the app image's starting point).
    pub config: ImageConfig,
    /// The extension layers, in order.
    pub layers: Vec<ExtensionLayer>,
}

impl ExtendedRun {
    /// `io.buildpacks.rebasable` for the app image (EP-19, platform spec): `true` only when the extended
    /// run image says `true`.
    pub fn rebasable(&self) -> &'static str {
        if self.config.label(REBASABLE_LABEL) == Some("true") {
            "true"
        } else {
            "false"
        }
    }
}

/// The single extended run image directory under `<extended>/run`, if any (EP-02). Temporary
/// directories of an interrupted extender (dot-prefixed) are ignored.
pub fn find(extended_dir: &Path) -> Result<Option<PathBuf>, ExtendedError> {
    let run = extended_dir.join("run");
    let rd = match std::fs::read_dir(&run) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ExtendedError::ReadDir { path: run, source }),
    };
    let mut dirs = Vec::new();
    for e in rd {
        let e = e.map_err(|source| ExtendedError::ReadDir {
            path: run.clone(),
            source,
        })?;
        if e.file_name().to_string_lossy().starts_with('.') || !e.path().is_dir() {
            continue;
        }
        dirs.push(e.path());
    }
    match dirs.len() {
        0 => Ok(None),
        1 => Ok(dirs.pop()),
        count => Err(ExtendedError::Ambiguous { path: run, count }),
    }
}

/// The error for `run-image.extend = true` with nothing under `<extended>/run`.
pub fn missing(extended_dir: &Path) -> ExtendedError {
    ExtendedError::Missing {
        path: extended_dir.join("run"),
    }
}

/// The extension id in a history entry `Layer: '<cmd>', Created by extension: <id>` (EP-07).
pub fn extension_id(created_by: &str) -> String {
    created_by
        .rsplit_once("Created by extension: ")
        .map(|(_, id)| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "from extensions".to_string())
}

/// Reads the extended run image at `dir` and checks it extends `base` (the run image): its first
/// layers must be the run image's, and every later layer's blob must be in the layout.
pub fn open(dir: &Path, base: &Image) -> Result<ExtendedRun, ExtendedError> {
    let store = |source| ExtendedError::Store {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    let img = LayoutStore::open_path(dir)
        .map_err(store)?
        .ok_or_else(|| ExtendedError::Empty {
            path: dir.to_path_buf(),
        })?;
    let layers = img.layers().map_err(store)?;
    let base_ids = base.diff_ids();
    let n = base_ids.len();
    let same_base = layers.len() >= n && layers.iter().zip(base_ids).all(|(a, b)| a.diff_id == *b);
    if !same_base {
        return Err(ExtendedError::WrongBase {
            path: dir.to_path_buf(),
            run_image: base.name().to_string(),
        });
    }
    let history: Vec<String> = img
        .config()
        .history
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.empty_layer != Some(true))
        .map(|h| h.created_by.unwrap_or_default())
        .collect();
    let mut ext = Vec::new();
    for (i, l) in layers.iter().enumerate().skip(n) {
        let blob =
            img.blob_path(&l.descriptor.digest)
                .ok_or_else(|| ExtendedError::MissingBlob {
                    path: dir.to_path_buf(),
                    digest: l.descriptor.digest.to_string(),
                })?;
        let id = extension_id(history.get(i).map(String::as_str).unwrap_or_default());
        ext.push(ExtensionLayer {
            id: format!("{id}:extended-layer-{}", i - n + 1),
            blob,
        });
    }
    Ok(ExtendedRun {
        config: img.config().clone(),
        layers: ext,
    })
}

/// A rewritten extension layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedLayer {
    /// sha256 of the rewritten tar.
    pub diff_id: String,
    /// sha256 of the gzip blob.
    pub digest: String,
    /// Blob size.
    pub size: u64,
}

/// Opens a layer blob, detecting gzip / zstd / plain tar by its magic bytes.
pub(crate) fn open_layer(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let r = io::BufReader::with_capacity(1 << 20, io::Cursor::new(magic[..n].to_vec()).chain(f));
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(r)?)
    } else {
        Box::new(r)
    })
}

fn kind_of(t: tar::EntryType) -> Option<Kind> {
    Some(match t {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Link => Kind::Hardlink,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Char => Kind::Char,
        tar::EntryType::Block => Kind::Block,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Fifo => Kind::Fifo,
        _ => return None,
    })
}

/// Rewrites the layer at `src` (IM-11): the same entries with the same names, modes, owners, links and
/// xattrs, every mtime set to `mtime`, user and group names cleared, then gzips it (level 1) into
/// `dest` while hashing both streams in one pass.
pub fn normalize_layer(src: &Path, dest: &Path, mtime: i64) -> io::Result<NormalizedLayer> {
    let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", src.display()));
    let mut archive = tar::Archive::new(open_layer(src).map_err(at)?);
    let archive_err = |e: crate::archive::ArchiveError| io::Error::other(crate::error::chain(&e));
    let mut w = LayerWriter::new(
        Compression::Gzip { level: 1 },
        Sink::File(dest.to_path_buf()),
    )
    .map_err(archive_err)?;
    for entry in archive.entries().map_err(at)? {
        let mut entry = entry.map_err(at)?;
        let h = entry.header();
        let Some(kind) = kind_of(h.entry_type()) else {
            continue;
        };
        let mut xattrs = std::collections::BTreeMap::new();
        if let Some(exts) = entry.pax_extensions().map_err(at)? {
            for ext in exts {
                let ext = ext.map_err(at)?;
                if let Ok(k) = ext.key() {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                    }
                }
            }
        }
        let h = entry.header();
        let size = if kind == Kind::File { entry.size() } else { 0 };
        let eh = EntryHeader {
            name: entry.path_bytes().into_owned(),
            kind,
            mode: h.mode().map_err(at)? & 0o7777,
            // Empty numeric fields read as 0, as Go's reader does.
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            size,
            mtime,
            link: entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default(),
            devmajor: h.device_major().ok().flatten().unwrap_or(0),
            devminor: h.device_minor().ok().flatten().unwrap_or(0),
            xattrs,
        };
        w.write_all(&header::encode(&eh))?;
        if size > 0 {
            let n = io::copy(&mut (&mut entry).take(size), &mut w).map_err(at)?;
            if n != size {
                return Err(at(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated layer entry",
                )));
            }
            w.write_all(&vec![0u8; header::padding(size)])?;
        }
    }
    w.write_all(&[0u8; 1024])?;
    let info = w.finish().map_err(archive_err)?;
    Ok(NormalizedLayer {
        diff_id: info.diff_id.to_string(),
        digest: info.digest.to_string(),
        size: info.size,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ep07_extension_id_from_history() {
        assert_eq!(
            extension_id("Layer: 'RUN echo hi', Created by extension: samples/curl"),
            "samples/curl"
        );
        assert_eq!(extension_id("RUN echo"), "from extensions");
        assert_eq!(extension_id(""), "from extensions");
    }

    /// IM-11: entries keep names, modes, owners and links; mtimes and user names are normalised, so
    /// two layers differing only in those rewrite to the same diffID.
    #[test]
    fn im11_normalize_keeps_entries_and_drops_mtimes() {
        let t = tempfile::tempdir().unwrap();
        let write = |name: &str, mtime: u64, user: &str| {
            let p = t.path().join(name);
            let f = File::create(&p).unwrap();
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_mtime(mtime);
            h.set_size(0);
            h.set_username(user).unwrap();
            b.append_data(&mut h, "opt/", io::empty()).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o640);
            h.set_uid(1000);
            h.set_gid(1001);
            h.set_mtime(mtime);
            h.set_size(5);
            h.set_username(user).unwrap();
            let long = format!("opt/{}", "n".repeat(150));
            b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_mtime(mtime);
            h.set_size(0);
            b.append_link(&mut h, "opt/link", "target").unwrap();
            b.into_inner().unwrap().finish().unwrap();
            p
        };
        let a = write("a", 1_700_000_000, "root");
        let b = write("b", 1_600_000_000, "someone");
        let na = normalize_layer(&a, &t.path().join("na"), 315_532_801).unwrap();
        let nb = normalize_layer(&b, &t.path().join("nb"), 315_532_801).unwrap();
        assert_eq!(na, nb, "only mtimes and user names differed");
        let raw = std::fs::read(t.path().join("na")).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&raw[..]));
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.mtime().unwrap(), 315_532_801);
            assert_eq!(h.username().unwrap(), Some(""));
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push((
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                body,
            ));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].0, format!("opt/{}", "n".repeat(150)));
        assert_eq!(
            (seen[1].1, seen[1].2, seen[1].3, seen[1].4.as_str()),
            (0o640, 1000, 1001, "hello")
        );
        use sha2::Digest as _;
        let tar_bytes = {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut v)
                .unwrap();
            v
        };
        assert_eq!(
            na.diff_id,
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar_bytes)))
        );
        assert_eq!(na.size, raw.len() as u64);
    }
}
