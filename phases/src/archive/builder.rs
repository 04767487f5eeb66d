//! The normalising layer builder: sources → ordered tar entries (checklist IM-10, IM-12…IM-14).
//!
//! Ordering follows the reference: sources in the order given; for a host tree, first its ancestors (per
//! [`Parents`]), then a depth-first walk with each directory's children sorted by name bytes (Go's
//! `filepath.Walk`). Missing ancestors of single entries are emitted before them, and a directory already
//! emitted is not emitted again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::header::{self, EntryHeader, Kind};
use super::{ArchiveError, NORMALIZED_MTIME};

/// Mode and owner of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits plus setuid/setgid/sticky (`0o7777` is kept).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
}

impl Meta {
    /// `mode` owned by `uid:gid`.
    pub fn new(mode: u32, uid: u64, gid: u64) -> Self {
        Self { mode, uid, gid }
    }
    /// `mode` owned by root.
    pub fn root(mode: u32) -> Self {
        Self::new(mode, 0, 0)
    }
}

/// How the ancestors of a tree's image path are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parents {
    /// Each ancestor takes mode and owner from the host directory at the same distance above the tree
    /// (host `/tmp/x/layers/bp/l` mapped to `/layers/bp/l` → `/layers` from `/tmp/x/layers`). This is the
    /// reference's behaviour (real owner for ancestors, checklist IM-10).
    FromHost,
    /// Every ancestor gets this mode and owner.
    Fixed(Meta),
    /// Ancestors are not emitted.
    Omit,
}

/// A host directory tree mapped to an image path.
#[derive(Debug, Clone)]
pub struct TreeSource {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where it appears in the image, e.g. `/layers/<bp>/<layer>`, `workspace` or `/` (children only).
    pub path: String,
    /// Owner given to the directory and everything below it (`CNB_USER_ID`).
    pub uid: u64,
    /// Group given to the directory and everything below it (`CNB_GROUP_ID`).
    pub gid: u64,
    /// How ancestors of `path` are emitted.
    pub parents: Parents,
}

/// One thing to put into a layer.
#[derive(Debug, Clone)]
pub enum Source {
    /// A host directory tree (walked, sorted, modes kept, owner replaced).
    Tree(TreeSource),
    /// A directory entry.
    Dir {
        /// Image path.
        path: String,
        /// Mode and owner.
        meta: Meta,
    },
    /// A regular file whose content is read from a host file.
    File {
        /// Image path.
        path: String,
        /// Host file with the content.
        host: PathBuf,
        /// Mode and owner.
        meta: Meta,
    },
    /// A regular file with in-memory content.
    Bytes {
        /// Image path.
        path: String,
        /// The content.
        data: Vec<u8>,
        /// Mode and owner.
        meta: Meta,
    },
    /// A symbolic link.
    Symlink {
        /// Image path.
        path: String,
        /// Link target, stored verbatim.
        target: String,
        /// Mode and owner.
        meta: Meta,
    },
}

/// Builds one normalised layer from several [`Source`]s. See the module docs for ordering and
/// [`LayerBuilder::write`](crate::archive::LayerBuilder::write) for producing the blob.
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    pub(super) sources: Vec<Source>,
    pub(super) mtime: i64,
    pub(super) hardlinks: bool,
    pub(super) xattrs: bool,
    pub(super) absolute: bool,
    pub(super) parent_meta: Meta,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    /// An empty layer: absolute entry names (`/layers/...`, as the reference writes them), mtime
    /// 1980-01-01T00:00:01Z, hard links detected, xattrs not recorded, auto-created parents `0755` root.
    pub fn new() -> Self {
        Self {
            sources: Vec::new(),
            mtime: NORMALIZED_MTIME,
            hardlinks: true,
            xattrs: false,
            absolute: true,
            parent_meta: Meta::root(0o755),
        }
    }

    /// Adds a source; sources are written in the order added.
    pub fn add(&mut self, source: Source) -> &mut Self {
        self.sources.push(source);
        self
    }

    /// Adds a host tree mapped to `path`, owned by `uid:gid`, ancestors as the reference emits them.
    pub fn add_tree(
        &mut self,
        host: impl Into<PathBuf>,
        path: impl Into<String>,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        self.add(Source::Tree(TreeSource {
            host: host.into(),
            path: path.into(),
            uid,
            gid,
            parents: Parents::FromHost,
        }))
    }

    /// Sets the entry mtime (seconds since the epoch); see [`super::mtime_from_env`] for `SOURCE_DATE_EPOCH`.
    pub fn mtime(&mut self, secs: i64) -> &mut Self {
        self.mtime = secs;
        self
    }

    /// Whether files with several links inside one tree become hard-link entries (default true). The
    /// reference does not detect hard links; turn this off to get its diffID for trees that contain them.
    pub fn hardlinks(&mut self, on: bool) -> &mut Self {
        self.hardlinks = on;
        self
    }

    /// Whether extended attributes of tree entries are recorded as `SCHILY.xattr.*` PAX records (default
    /// false, like the reference, which drops them). Sparse files are always stored dense.
    pub fn xattrs(&mut self, on: bool) -> &mut Self {
        self.xattrs = on;
        self
    }

    /// Whether entry names start with `/` (default true, the reference's form) or are relative.
    pub fn absolute_names(&mut self, on: bool) -> &mut Self {
        self.absolute = on;
        self
    }

    /// Mode and owner for ancestors created implicitly before single entries (default `0755` root).
    pub fn parent_meta(&mut self, meta: Meta) -> &mut Self {
        self.parent_meta = meta;
        self
    }

    /// Writes the plain tar stream (entries then 1024 zero bytes) to `out`; returns the bytes written.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<u64, ArchiveError> {
        let mut w = TarOut {
            out,
            n: 0,
            dirs: HashSet::new(),
            links: HashMap::new(),
            b: self,
        };
        for s in &self.sources {
            w.source(s)?;
        }
        w.put(&[0u8; 2 * header::BLOCK], Path::new("<end of archive>"))?;
        Ok(w.n)
    }
}

fn components(path: &str) -> Result<Vec<&[u8]>, ArchiveError> {
    let bad = || ArchiveError::BadImagePath(path.to_string());
    if path.is_empty() || path.contains('\0') {
        return Err(bad());
    }
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err(bad()),
            p => parts.push(p.as_bytes()),
        }
    }
    Ok(parts)
}

struct TarOut<'a, W: Write> {
    out: W,
    n: u64,
    dirs: HashSet<Vec<u8>>,
    links: HashMap<(u64, u64), Vec<u8>>,
    b: &'a LayerBuilder,
}

impl<W: Write> TarOut<'_, W> {
    fn name(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut n = if self.b.absolute {
            vec![b'/']
        } else {
            Vec::new()
        };
        n.extend(parts.join(&b'/'));
        n
    }

    fn put(&mut self, bytes: &[u8], what: &Path) -> Result<(), ArchiveError> {
        self.out
            .write_all(bytes)
            .map_err(|source| ArchiveError::Write {
                target: format!("tar stream (entry {})", what.display()),
                source,
            })?;
        self.n += bytes.len() as u64;
        Ok(())
    }

    fn header(&mut self, name: Vec<u8>, kind: Kind, meta: Meta) -> EntryHeader {
        EntryHeader {
            name,
            kind,
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            size: 0,
            mtime: self.b.mtime,
            link: Vec::new(),
            devmajor: 0,
            devminor: 0,
            xattrs: BTreeMap::new(),
        }
    }

    fn entry(&mut self, h: &EntryHeader) -> Result<(), ArchiveError> {
        let bytes = header::encode(h);
        self.put(
            &bytes,
            Path::new(OsString::from_vec(h.name.clone()).as_os_str()),
        )
    }

    fn dir_once(&mut self, parts: &[&[u8]], meta: Meta) -> Result<(), ArchiveError> {
        let name = self.name(parts);
        if self.dirs.contains(&name) {
            return Ok(());
        }
        let h = self.header(name.clone(), Kind::Dir, meta);
        self.entry(&h)?;
        self.dirs.insert(name);
        Ok(())
    }

    fn ancestors(
        &mut self,
        parts: &[&[u8]],
        meta_of: impl Fn(usize) -> Result<Meta, ArchiveError>,
    ) -> Result<(), ArchiveError> {
        for i in 1..parts.len() {
            let name = self.name(&parts[..i]);
            if !self.dirs.contains(&name) {
                let m = meta_of(i)?;
                self.dir_once(&parts[..i], m)?;
            }
        }
        Ok(())
    }

    fn data(&mut self, data: &[u8], what: &Path) -> Result<(), ArchiveError> {
        self.put(data, what)?;
        let pad = header::padding(data.len() as u64);
        self.put(&[0u8; header::BLOCK][..pad], what)
    }

    fn source(&mut self, s: &Source) -> Result<(), ArchiveError> {
        let pm = self.b.parent_meta;
        match s {
            Source::Dir { path, meta } => {
                let parts = components(path)?;
                self.ancestors(&parts, |_| Ok(pm))?;
                if !parts.is_empty() {
                    self.dir_once(&parts, *meta)?;
                }
            }
            Source::Bytes { path, data, meta } => {
                let parts = self.leaf(path, pm)?;
                let mut h = self.header(self.name(&parts), Kind::File, *meta);
                h.size = data.len() as u64;
                self.entry(&h)?;
                self.data(data, Path::new(path))?;
            }
            Source::File { path, host, meta } => {
                let parts = self.leaf(path, pm)?;
                let md = fs::metadata(host).map_err(|source| ArchiveError::Read {
                    path: host.clone(),
                    source,
                })?;
                let mut h = self.header(self.name(&parts), Kind::File, *meta);
                h.size = md.len();
                self.entry(&h)?;
                self.content(host, md.len())?;
            }
            Source::Symlink { path, target, meta } => {
                let parts = self.leaf(path, pm)?;
                let mut h = self.header(self.name(&parts), Kind::Symlink, *meta);
                h.link = target.as_bytes().to_vec();
                self.entry(&h)?;
            }
            Source::Tree(t) => self.tree(t)?,
        }
        Ok(())
    }

    fn leaf<'p>(&mut self, path: &'p str, pm: Meta) -> Result<Vec<&'p [u8]>, ArchiveError> {
        let parts = components(path)?;
        if parts.is_empty() {
            return Err(ArchiveError::BadImagePath(path.to_string()));
        }
        self.ancestors(&parts, |_| Ok(pm))?;
        Ok(parts)
    }

    fn content(&mut self, host: &Path, size: u64) -> Result<(), ArchiveError> {
        let f = File::open(host).map_err(|source| ArchiveError::Read {
            path: host.to_path_buf(),
            source,
        })?;
        let mut limited = f.take(size);
        let copied = io::copy(&mut limited, &mut CountingRef(self)).map_err(|source| {
            ArchiveError::Read {
                path: host.to_path_buf(),
                source,
            }
        })?;
        if copied != size {
            return Err(ArchiveError::Changed {
                path: host.to_path_buf(),
                expected: size,
                actual: copied,
            });
        }
        let pad = header::padding(size);
        self.put(&[0u8; header::BLOCK][..pad], host)
    }

    fn tree(&mut self, t: &TreeSource) -> Result<(), ArchiveError> {
        let parts = components(&t.path)?;
        let host_md = fs::symlink_metadata(&t.host).map_err(|source| ArchiveError::Read {
            path: t.host.clone(),
            source,
        })?;
        match t.parents {
            Parents::Omit => {}
            Parents::Fixed(m) => self.ancestors(&parts, |_| Ok(m))?,
            Parents::FromHost => {
                let depth = parts.len();
                let host = t.host.clone();
                self.ancestors(&parts, |i| {
                    // ancestor i (1-based count of components) is `depth - i` levels above the tree.
                    let mut p = host.as_path();
                    for _ in 0..(depth - i) {
                        p = p.parent().unwrap_or(p);
                    }
                    let md = fs::metadata(p).map_err(|source| ArchiveError::Read {
                        path: p.to_path_buf(),
                        source,
                    })?;
                    Ok(Meta::new(
                        md.mode(),
                        u64::from(md.uid()),
                        u64::from(md.gid()),
                    ))
                })?;
            }
        }
        let name = self.name(&parts);
        self.walk(&t.host, name, &host_md, t, parts.is_empty())
    }

    fn walk(
        &mut self,
        host: &Path,
        name: Vec<u8>,
        md: &fs::Metadata,
        t: &TreeSource,
        is_root: bool,
    ) -> Result<(), ArchiveError> {
        let meta = Meta::new(md.mode(), t.uid, t.gid);
        let ft = md.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        if !is_root {
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_char_device() {
                Kind::Char
            } else if ft.is_block_device() {
                Kind::Block
            } else {
                Kind::Fifo
            };
            if kind == Kind::Dir && self.dirs.contains(&name) {
                // already emitted by an earlier source
            } else {
                let mut h = self.header(name.clone(), kind, meta);
                if self.b.xattrs {
                    h.xattrs = read_xattrs(host)?;
                }
                match kind {
                    Kind::Symlink => {
                        h.link = fs::read_link(host)
                            .map_err(|source| ArchiveError::Read {
                                path: host.to_path_buf(),
                                source,
                            })?
                            .into_os_string()
                            .into_vec();
                    }
                    Kind::Char | Kind::Block => {
                        let rdev = md.rdev();
                        h.devmajor = libc::major(rdev);
                        h.devminor = libc::minor(rdev);
                    }
                    Kind::File if self.b.hardlinks && md.nlink() > 1 => {
                        if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                            h.kind = Kind::Hardlink;
                            h.link = first.clone();
                        } else {
                            self.links.insert((md.dev(), md.ino()), name.clone());
                        }
                    }
                    _ => {}
                }
                if h.kind == Kind::File {
                    h.size = md.len();
                }
                self.entry(&h)?;
                if h.kind == Kind::File {
                    self.content(host, md.len())?;
                }
                if kind == Kind::Dir {
                    self.dirs.insert(name.clone());
                }
            }
        }
        if !ft.is_dir() {
            return Ok(());
        }
        let mut children: Vec<OsString> = fs::read_dir(host)
            .map_err(|source| ArchiveError::Read {
                path: host.to_path_buf(),
                source,
            })?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|source| ArchiveError::Read {
                path: host.to_path_buf(),
                source,
            })?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for c in children {
            let child_host = host.join(&c);
            let cmd = fs::symlink_metadata(&child_host).map_err(|source| ArchiveError::Read {
                path: child_host.clone(),
                source,
            })?;
            let mut child_name = name.clone();
            if !child_name.is_empty() && child_name != b"/" {
                child_name.push(b'/');
            }
            child_name.extend_from_slice(c.as_bytes());
            self.walk(&child_host, child_name, &cmd, t, false)?;
        }
        Ok(())
    }
}

/// Adapter so file content goes through [`TarOut::put`]'s counting.
struct CountingRef<'r, 'a, W: Write>(&'r mut TarOut<'a, W>);

impl<W: Write> Write for CountingRef<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.out.write_all(buf)?;
        self.0.n += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.out.flush()
    }
}

fn read_xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    use std::ffi::CString;
    let err = |source: io::Error| ArchiveError::Read {
        path: path.to_path_buf(),
        source,
    };
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let mut out = BTreeMap::new();
    // SAFETY: c is a valid NUL-terminated path; a null buffer with size 0 asks for the needed size.
    let len = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(out)
        } else {
            Err(err(e))
        };
    }
    let mut names = vec![0u8; len as usize];
    // SAFETY: names has exactly `len` writable bytes.
    let len = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    names.truncate(len as usize);
    for n in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cn = CString::new(n).map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        // SAFETY: valid C strings; null buffer asks for the size.
        let vlen = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        if vlen < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        let mut v = vec![0u8; vlen as usize];
        // SAFETY: v has `vlen` writable bytes.
        let vlen =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        if vlen < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        v.truncate(vlen as usize);
        out.insert(String::from_utf8_lossy(n).into_owned(), v);
    }
    Ok(out)
}
