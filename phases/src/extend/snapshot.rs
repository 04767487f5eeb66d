//! Walk-and-compare snapshotter (issue 7, "Snapshotter"): records the metadata of every path under a
//! root, compares two records into a neutral change list (added/modified paths, deletions, opaque
//! directories) and writes that list as an OCI layer (whiteouts `.wh.<name>`, opaque `.wh..wh..opq`).
//!
//! Compared: type+mode, uid, gid, size, mtime (ns), inode, device numbers, symlink target and
//! the kept xattrs (`security.capability`, `user.*`, written as PAX `SCHILY.xattr.*`). `nlink`
//! and `ctime` are ignored (deleting one hard link changes both on its siblings). A file rewritten in
//! place with the same size and an mtime forced back is not detected (same as kaniko's default mode).
//! Directories on another device (mount points) and the ignore list are not descended into.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::{self, Compression, LayerBuilder, Parents, Sink, Source, TreeSource};

/// Metadata of one path (what the comparison looks at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// mtime seconds.
    pub mtime: i64,
    /// mtime nanoseconds.
    pub mtime_ns: i64,
    /// Inode.
    pub ino: u64,
    /// Device of a char/block node.
    pub rdev: u64,
    /// Link count (not compared; used to find hard links).
    pub nlink: u64,
    /// Symlink target.
    pub link: Option<PathBuf>,
    /// Extended attributes kept in layers (`security.capability`, `user.*`), sorted.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn same(&self, o: &Meta) -> bool {
        self.mode == o.mode
            && self.uid == o.uid
            && self.gid == o.gid
            && self.size == o.size
            && self.mtime == o.mtime
            && self.mtime_ns == o.mtime_ns
            && self.ino == o.ino
            && self.rdev == o.rdev
            && self.link == o.link
            && self.xattrs == o.xattrs
    }
    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// A record of every path under a root, keyed by path relative to the root.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Entries (parents sort before their children).
    pub entries: BTreeMap<PathBuf, Meta>,
}

/// Paths (relative to the root) that are never recorded.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// Relative paths; a directory's whole subtree is skipped.
    pub paths: BTreeSet<PathBuf>,
    /// Relative path prefixes matched as strings (kaniko's `PrefixMatchOnly`: `tmp/apt-key-gpghome`
    /// also covers `tmp/apt-key-gpghome.XXXX`).
    pub prefixes: BTreeSet<String>,
}

impl Ignore {
    /// The defaults: kernel and runtime mounts, the lifecycle's volumes, the bind-mounted files and
    /// kaniko's own list (`/etc/mtab`, which may be a mount; `/tmp/apt-key-gpghome*`, apt's temporary
    /// key home; `/var/run`, where sockets get mounted).
    pub fn defaults() -> Self {
        let paths = [
            "proc",
            "sys",
            "dev",
            "etc/resolv.conf",
            "etc/hosts",
            "etc/hostname",
            "etc/mtab",
            "layers",
            "workspace",
            "cnb",
            "platform",
            "kaniko",
            "var/run",
            ".dockerenv",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        Ignore {
            paths,
            prefixes: ["tmp/apt-key-gpghome".to_string()].into_iter().collect(),
        }
    }

    /// Adds an absolute path inside `root` (ignored if it is not inside).
    pub fn add_abs(&mut self, root: &Path, path: &Path) {
        if let Ok(rel) = path.strip_prefix(root) {
            if !rel.as_os_str().is_empty() {
                self.paths.insert(rel.to_path_buf());
            }
        }
    }

    /// Adds every mount point below `root` (platform volumes, secrets, bind-mounted files such as
    /// `/etc/resolv.conf`): their content does not belong to the image, whether or not they are on
    /// the root's device.
    pub fn add_mount_points(&mut self, root: &Path, mount_points: &[PathBuf]) {
        for m in mount_points {
            self.add_abs(root, m);
        }
    }

    /// Whether `rel` (relative to the root) or one of its parents is ignored.
    pub fn covers(&self, rel: &Path) -> bool {
        let text = rel.to_string_lossy();
        rel.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| self.paths.contains(a))
            || self.prefixes.iter().any(|p| text.starts_with(p.as_str()))
    }

    fn skips(&self, child: &Path) -> bool {
        self.paths.contains(child)
            || (!self.prefixes.is_empty() && {
                let text = child.to_string_lossy();
                self.prefixes.iter().any(|p| text.starts_with(p.as_str()))
            })
    }
}

fn meta_of(path: &Path, m: &std::fs::Metadata) -> io::Result<Meta> {
    let link = if m.file_type().is_symlink() {
        Some(std::fs::read_link(path)?)
    } else {
        None
    };
    Ok(Meta {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        size: if m.is_file() || link.is_some() {
            m.size()
        } else {
            0
        },
        mtime: m.mtime(),
        mtime_ns: m.mtime_nsec(),
        ino: m.ino(),
        rdev: m.rdev(),
        nlink: m.nlink(),
        link,
        xattrs: read_xattrs(path),
    })
}

/// Reads the extended attributes a layer keeps: `security.capability` (file capabilities) and `user.*`.
/// Unreadable attributes are skipped.
pub fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 1024];
    // SAFETY: `c` is NUL-terminated; the buffer pointer/length describe `names`.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(key) = std::str::from_utf8(name) else {
            continue;
        };
        if key != "security.capability" && !key.starts_with("user.") {
            continue;
        }
        let Ok(ckey) = std::ffi::CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 4096];
        // SAFETY: both strings are NUL-terminated; the buffer pointer/length describe `value`.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                ckey.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len >= 0 {
            value.truncate(len as usize);
            out.push((key.to_string(), value));
        }
    }
    out.sort();
    out
}

/// Records every path under `root` except `ignore` and other file systems' directories.
pub fn take(root: &Path, ignore: &Ignore) -> io::Result<Snapshot> {
    let root_dev = std::fs::symlink_metadata(root)?.dev();
    let mut snap = Snapshot::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        };
        for entry in rd {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            if ignore.skips(&child) {
                continue;
            }
            let path = entry.path();
            let m = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if m.file_type().is_socket() {
                continue;
            }
            if m.is_dir() {
                if m.dev() != root_dev {
                    continue;
                }
                stack.push(child.clone());
            }
            snap.entries.insert(child, meta_of(&path, &m)?);
        }
    }
    Ok(snap)
}

/// The neutral change list between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Added or modified paths (parents first).
    pub upserts: Vec<PathBuf>,
    /// Deleted paths (only the topmost deleted path of a deleted subtree).
    pub deletions: Vec<PathBuf>,
    /// Directories replaced by a new directory: their lower content is hidden.
    pub opaque: Vec<PathBuf>,
}

impl Changes {
    /// `true` when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletions.is_empty() && self.opaque.is_empty()
    }
}

/// Compares two snapshots of the same root.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Changes {
    let mut c = Changes::default();
    for (p, m) in &after.entries {
        match before.entries.get(p) {
            Some(b) if b.same(m) => {}
            Some(b) => {
                if b.is_dir() && m.is_dir() && b.ino != m.ino {
                    c.opaque.push(p.clone());
                }
                c.upserts.push(p.clone());
            }
            None => c.upserts.push(p.clone()),
        }
    }
    let opaque: BTreeSet<&PathBuf> = c.opaque.iter().collect();
    for (p, b) in &before.entries {
        if after.entries.contains_key(p) {
            continue;
        }
        // Whiteout only where the parent survives as the same directory.
        let parent = p.parent().unwrap_or(Path::new(""));
        let parent_kept = parent.as_os_str().is_empty()
            || match (before.entries.get(parent), after.entries.get(parent)) {
                (Some(pb), Some(pa)) => pa.is_dir() && pb.ino == pa.ino,
                _ => false,
            };
        if parent_kept && !opaque.contains(&parent.to_path_buf()) {
            let _ = b;
            c.deletions.push(p.clone());
        }
    }
    c
}

/// A written layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// Blob size in bytes.
    pub size: u64,
    /// Media type of the blob (absent in entries written before it was recorded: gzip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

fn utf8(p: &Path) -> io::Result<&str> {
    p.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: non-UTF-8 path names are not supported in layers",
                p.display()
            ),
        )
    })
}

fn archive_meta(m: &Meta) -> archive::Meta {
    archive::Meta::new(m.mode & 0o7777, u64::from(m.uid), u64::from(m.gid))
}

/// Writes `changes` (paths relative to `root`, metadata from `after`) as a layer into
/// `blobs_dir/<hex>` with the `archive` pipeline (one pass: tar → diffID → compression → digest, temp
/// file + rename). Returns `None` if there is nothing to write.
///
/// Entries: every ancestor of a change as a directory with its real mode and owner (so extraction
/// never invents a `0755 root` parent over e.g. a `1777` `/tmp`), changed paths with their type,
/// mode, owner, device numbers, hard links among them and extended attributes, `.wh.<name>` for
/// deletions and `.wh..wh..opq` in opaque directories. Names are relative (`usr/bin/x`), as Docker
/// and kaniko write them. Modification times are normalised (`SOURCE_DATE_EPOCH`, else
/// 1980-01-01T00:00:01Z) like every other layer the lifecycle writes, so a step that makes the same
/// files makes the same layer.
pub fn write_layer(
    root: &Path,
    after: &Snapshot,
    changes: &Changes,
    blobs_dir: &Path,
    compression: Compression,
) -> io::Result<Option<LayerBlob>> {
    if changes.is_empty() {
        return Ok(None);
    }
    enum Item<'a> {
        Upsert(&'a Meta),
        Marker,
    }
    let mut items: BTreeMap<PathBuf, Item<'_>> = BTreeMap::new();
    for p in &changes.upserts {
        if let Some(m) = after.entries.get(p) {
            items.insert(p.clone(), Item::Upsert(m));
        }
    }
    for p in &changes.opaque {
        items.insert(p.join(".wh..wh..opq"), Item::Marker);
    }
    for p in &changes.deletions {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = p.parent().unwrap_or(Path::new(""));
        items.insert(parent.join(format!(".wh.{name}")), Item::Marker);
    }
    let mut b = LayerBuilder::new();
    b.absolute_names(false)
        .mtime(archive::mtime_from_env())
        .hardlinks(true)
        .xattrs(true);
    let mut emitted: BTreeSet<PathBuf> = BTreeSet::new();
    for (p, item) in &items {
        // Ancestors with their real metadata, each once (the map's order puts parents first).
        let mut ancestors: Vec<&Path> = p.ancestors().skip(1).collect();
        ancestors.reverse();
        for a in ancestors {
            if a.as_os_str().is_empty() || emitted.contains(a) {
                continue;
            }
            if let Some(m) = after.entries.get(a) {
                b.add(Source::Dir {
                    path: utf8(a)?.to_string(),
                    meta: archive_meta(m),
                });
            }
            emitted.insert(a.to_path_buf());
        }
        let path = utf8(p)?.to_string();
        match item {
            Item::Marker => {
                b.add(Source::Bytes {
                    path,
                    data: Vec::new(),
                    meta: archive::Meta::root(0o644),
                });
            }
            Item::Upsert(m) if m.is_dir() => {
                if emitted.insert(p.clone()) {
                    b.add(Source::Dir {
                        path,
                        meta: archive_meta(m),
                    });
                }
            }
            Item::Upsert(m) => {
                b.add(Source::Tree(TreeSource {
                    host: root.join(p),
                    path,
                    uid: u64::from(m.uid),
                    gid: u64::from(m.gid),
                    parents: Parents::Omit,
                }));
            }
        }
    }
    std::fs::create_dir_all(blobs_dir)?;
    let info = b
        .write(compression, Sink::BlobDir(blobs_dir.to_path_buf()))
        .map_err(io::Error::other)?;
    Ok(Some(LayerBlob {
        diff_id: info.diff_id.to_string(),
        digest: info.digest.to_string(),
        size: info.size,
        media_type: Some(info.media_type),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn xattrs_travel_into_the_layer() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::write(r.join("f"), "x").unwrap();
        let c = std::ffi::CString::new(r.join("f").to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated strings and a valid value buffer.
        let rc = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                c"user.cnb".as_ptr(),
                b"v1".as_ptr().cast(),
                2,
                0,
            )
        };
        if rc != 0 {
            eprintln!("user xattrs unsupported on this file system; skipping");
            return;
        }
        let after = take(r, &Ignore::default()).unwrap();
        assert_eq!(
            after.entries[Path::new("f")].xattrs,
            vec![("user.cnb".to_string(), b"v1".to_vec())]
        );
        let changes = diff(&Snapshot::default(), &after);
        let out = tempfile::tempdir().unwrap();
        let layer = write_layer(r, &after, &changes, out.path(), Compression::default())
            .unwrap()
            .unwrap();
        let f = File::open(out.path().join(layer.digest.trim_start_matches("sha256:"))).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut found = false;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap() == Path::new("f") {
                for ext in e.pax_extensions().unwrap().unwrap() {
                    let ext = ext.unwrap();
                    if ext.key().unwrap() == "SCHILY.xattr.user.cnb" {
                        assert_eq!(ext.value_bytes(), b"v1");
                        found = true;
                    }
                }
            }
        }
        assert!(found);
    }

    #[test]
    fn detects_add_modify_delete_and_opaque() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::create_dir_all(r.join("gone/deep")).unwrap();
        std::fs::create_dir_all(r.join("proc/1")).unwrap();
        std::fs::write(r.join("a/b/f"), "1").unwrap();
        std::fs::write(r.join("a/keep"), "k").unwrap();
        std::fs::write(r.join("a/rm"), "x").unwrap();
        std::fs::write(r.join("gone/deep/f"), "x").unwrap();
        std::fs::create_dir_all(r.join("re")).unwrap();
        std::fs::write(r.join("re/old"), "x").unwrap();
        let ig = Ignore::defaults();
        let before = take(r, &ig).unwrap();
        assert!(!before.entries.contains_key(Path::new("proc/1")));
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(r.join("a/b/f"), "22").unwrap();
        std::fs::write(r.join("new"), "n").unwrap();
        std::fs::remove_file(r.join("a/rm")).unwrap();
        std::fs::remove_dir_all(r.join("gone")).unwrap();
        std::fs::remove_dir_all(r.join("re")).unwrap();
        std::fs::create_dir_all(r.join("re")).unwrap();
        std::fs::write(r.join("re/new"), "y").unwrap();
        let after = take(r, &ig).unwrap();
        let c = diff(&before, &after);
        assert!(c.upserts.contains(&PathBuf::from("a/b/f")));
        assert!(c.upserts.contains(&PathBuf::from("new")));
        assert!(!c.upserts.contains(&PathBuf::from("a/keep")));
        // A recreated directory is opaque, unless the file system reused its inode: then its old
        // entries are whited out one by one. Both hide `re/old`.
        if c.opaque.is_empty() {
            assert_eq!(
                c.deletions,
                vec![
                    PathBuf::from("a/rm"),
                    PathBuf::from("gone"),
                    PathBuf::from("re/old")
                ]
            );
        } else {
            assert_eq!(c.opaque, vec![PathBuf::from("re")]);
            assert_eq!(
                c.deletions,
                vec![PathBuf::from("a/rm"), PathBuf::from("gone")]
            );
        }
        let blobs = r.join("../blobs-snap-test");
        let out = tempfile::tempdir().unwrap();
        let _ = blobs;
        let layer = write_layer(r, &after, &c, out.path(), Compression::default())
            .unwrap()
            .unwrap();
        let f = File::open(out.path().join(layer.digest.trim_start_matches("sha256:"))).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in ["a/.wh.rm", ".wh.gone", "re/new", "new", "a/b/f"] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert!(!names.iter().any(|x| x.contains("gone/deep")));
    }
}
