//! Safe layer extraction with OCI whiteouts (image-spec "Representing Changes": `.wh.<name>` removes a lower
//! entry, `.wh..wh..opq` makes a directory opaque).
//!
//! Safety: every path is resolved from an open directory descriptor of the root, one component at a time,
//! with chroot semantics: `..` never climbs above the root, a symlink met in a parent directory (including
//! one planted by an earlier entry) is resolved *inside* the root (absolute targets restart at the root), and
//! the final component is created with `O_NOFOLLOW`/`O_EXCL`-style calls on the parent descriptor. Entry names
//! containing `..` are refused; absolute names are taken relative to the root (layers written by the
//! reference lifecycle use `/layers/...`). Nothing is ever written outside the root.
//!
//! What an archive may create is the caller's policy ([`ExtractOptions`]): image layers unpacked as root keep
//! owners, device nodes, setuid/setgid bits and extended attributes; layers written by buildpacks (cache
//! layers, SBOM layers: [`ExtractOptions::untrusted`]) get none of those, and are *relocated*: only entries
//! at or below an anchor (`<bp>/<layer>`, `sbom/launch`) are extracted, relative to it, hard-link targets
//! mapped the same way and refused when they fall outside it. A whiteout name that is not one plain
//! component (`.wh..`, `.wh...`) is refused.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};

use super::ArchiveError;

/// Whose ownership extracted entries get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The archive's uid/gid when the process may chown (root), otherwise the extracting user's.
    FromArchive,
    /// Always the extracting user's (no chown).
    Ignore,
    /// This uid/gid for every entry (needs the right to chown).
    Fixed {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
}

/// Options for [`extract`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Ownership policy (default [`Ownership::FromArchive`]).
    pub ownership: Ownership,
    /// Apply whiteouts (default true); when false, `.wh.` entries are skipped.
    pub whiteouts: bool,
    /// Set modification times from the archive (default true).
    pub mtimes: bool,
    /// Restore extended attributes from `SCHILY.xattr.*` PAX records on files and directories (default
    /// true). Attributes the process may not set (e.g. `security.*` when not root) are counted in
    /// [`ExtractStats::xattrs_skipped`], not fatal.
    pub xattrs: bool,
    /// Create character/block devices and FIFOs (default true). When false they are skipped and counted
    /// in [`ExtractStats::skipped_devices`].
    pub devices: bool,
    /// Keep setuid/setgid bits (default true). When false they are cleared on every entry but
    /// directories (whose setgid only steers group inheritance) and counted in
    /// [`ExtractStats::setid_cleared`].
    pub setid: bool,
    /// Relocation anchor (default empty: none). When set, an entry is extracted only if its name contains
    /// these components in sequence (first occurrence), at the path below them; other entries are
    /// skipped ([`ExtractStats::outside_anchor`]). Hard-link targets are mapped the same way; one outside
    /// the anchor is refused.
    pub anchor: Vec<String>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            ownership: Ownership::FromArchive,
            whiteouts: true,
            mtimes: true,
            xattrs: true,
            devices: true,
            setid: true,
            anchor: Vec::new(),
        }
    }
}

impl ExtractOptions {
    /// The policy for archives a buildpack or a previous build wrote (cache layers, SBOM layers): entries
    /// relocated from `anchor`, owned by the extracting user, no devices or FIFOs, no setuid/setgid files,
    /// no extended attributes, `.wh.` entries skipped (buildpack layers carry no whiteouts).
    pub fn untrusted(anchor: &[&str]) -> Self {
        Self {
            ownership: Ownership::Ignore,
            whiteouts: false,
            mtimes: true,
            xattrs: false,
            devices: false,
            setid: false,
            anchor: anchor.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries created (files, dirs, links, devices).
    pub entries: u64,
    /// Whiteouts applied (plain and opaque).
    pub whiteouts: u64,
    /// Regular-file bytes written.
    pub bytes: u64,
    /// Device nodes skipped because the process may not create them.
    pub skipped_devices: u64,
    /// Extended attributes restored.
    pub xattrs: u64,
    /// Extended attributes that could not be set (permission or filesystem support).
    pub xattrs_skipped: u64,
    /// Entries skipped because they are not below [`ExtractOptions::anchor`].
    pub outside_anchor: u64,
    /// Entries whose setuid/setgid bits were cleared ([`ExtractOptions::setid`] false).
    pub setid_cleared: u64,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const MAX_SYMLINK_HOPS: usize = 40;

/// Extracts a layer (gzip, zstd or plain tar, detected from its first bytes) into `root`, which must exist.
pub fn extract(
    reader: impl Read,
    root: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, ArchiveError> {
    let xerr = |entry: &str, source: io::Error| ArchiveError::Extract {
        entry: entry.to_string(),
        root: root.to_path_buf(),
        source,
    };
    let mut buf = BufReader::with_capacity(256 << 10, reader);
    let head = buf
        .fill_buf()
        .map_err(|e| xerr("<archive header>", e))?
        .to_vec();
    let inner: Box<dyn Read> = if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::Decoder::with_buffer(buf).map_err(|e| xerr("<zstd stream>", e))?)
    } else {
        Box::new(buf)
    };
    let rootfd: OwnedFd = File::open(root).map_err(|e| xerr("<root>", e))?.into();
    let chown = match opts.ownership {
        Ownership::Ignore => false,
        _ => unistd::geteuid().is_root(),
    };
    let mut x = Extractor {
        root: rootfd,
        root_path: root.to_path_buf(),
        opts: opts.clone(),
        chown,
        anchor: opts.anchor.iter().map(|a| a.as_bytes().to_vec()).collect(),
        root_meta: None,
        created: HashSet::new(),
        dirs: Vec::new(),
        stats: ExtractStats::default(),
    };
    let mut archive = tar::Archive::new(inner);
    let entries = archive.entries().map_err(|e| xerr("<archive>", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| xerr("<next entry>", e))?;
        x.entry(&mut entry)?;
    }
    x.finish_dirs()?;
    Ok(x.stats)
}

struct Extractor {
    root: OwnedFd,
    root_path: PathBuf,
    opts: ExtractOptions,
    chown: bool,
    anchor: Vec<Vec<u8>>,
    /// Mode and mtime of the anchor entry, for the root (relocated layers only).
    root_meta: Option<(u32, i64)>,
    created: HashSet<Vec<u8>>,
    dirs: Vec<(Vec<Vec<u8>>, u32, i64)>,
    stats: ExtractStats,
}

/// chmod of a directory entry without ever following a symlink (`fchmodat` cannot refuse links portably).
fn chmod_dir(dir: BorrowedFd<'_>, leaf: &OsStr, mode: u32) -> io::Result<()> {
    let fd = nix::fcntl::openat(
        dir,
        leaf,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    stat::fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(errno)
}

/// Sets `leaf`'s owner without following a symlink there, when ownership is being restored.
fn chown_at(dir: BorrowedFd<'_>, leaf: &OsStr, owner: Option<(u32, u32)>) -> io::Result<()> {
    let Some((u, g)) = owner else {
        return Ok(());
    };
    unistd::fchownat(
        dir,
        leaf,
        Some(Uid::from_raw(u)),
        Some(Gid::from_raw(g)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(errno)
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Splits an entry name into safe components: `..` refused, `.`/empty dropped, leading `/` ignored.
fn clean(name: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if name.contains(&0) {
        return Err("name contains NUL".into());
    }
    let mut out = Vec::new();
    for p in name.split(|&b| b == b'/') {
        match p {
            b"" | b"." => {}
            b".." => return Err("name contains '..'".into()),
            p => out.push(p.to_vec()),
        }
    }
    Ok(out)
}

/// The components of `comps` below the first occurrence of `anchor`; `None` when the anchor does not occur.
/// An empty anchor maps every name to itself.
fn below_anchor(comps: &[Vec<u8>], anchor: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if anchor.is_empty() {
        return Some(comps.to_vec());
    }
    let n = anchor.len();
    (0..=comps.len().checked_sub(n)?)
        .find(|&i| comps[i..i + n] == *anchor)
        .map(|i| comps[i + n..].to_vec())
}

/// Whether `name` is one plain path component (no `/`, not empty, `.` or `..`).
fn plain_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

impl Extractor {
    fn unsafe_entry(&self, name: &str, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Unsafe {
            entry: name.to_string(),
            reason: reason.into(),
        }
    }

    fn xerr(&self, name: &str, source: io::Error) -> ArchiveError {
        ArchiveError::Extract {
            entry: name.to_string(),
            root: self.root_path.clone(),
            source,
        }
    }

    /// Opens the directory at `comps` (chroot-style resolution inside the root), creating missing
    /// directories (0755) when `create`.
    fn open_dir(&self, comps: &[Vec<u8>], create: bool) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = vec![self.root.try_clone()?];
        let mut work: VecDeque<Vec<u8>> = comps.iter().cloned().collect();
        let mut hops = 0usize;
        while let Some(c) = work.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let top = stack
                .last()
                .ok_or_else(|| io::Error::other("empty resolution stack"))?;
            let name = OsStr::from_bytes(&c);
            match stat::fstatat(top.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Err(Errno::ENOENT) if create => {
                    match stat::mkdirat(top.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        // 0755 whatever the umask (implicit parents are read by other phases).
                        Ok(()) => chmod_dir(top.as_fd(), name, 0o755)?,
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(errno(e)),
                    }
                    work.push_front(c);
                }
                Err(e) => return Err(errno(e)),
                Ok(st) => {
                    let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
                    if fmt == SFlag::S_IFDIR {
                        let fd = nix::fcntl::openat(
                            top.as_fd(),
                            name,
                            OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_RDONLY
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(errno)?;
                        stack.push(fd);
                    } else if fmt == SFlag::S_IFLNK {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(errno(Errno::ELOOP));
                        }
                        let target = nix::fcntl::readlinkat(top.as_fd(), name).map_err(errno)?;
                        let t = target.as_bytes();
                        if t.starts_with(b"/") {
                            stack.truncate(1);
                        }
                        for part in t.split(|&b| b == b'/').rev() {
                            work.push_front(part.to_vec());
                        }
                    } else {
                        return Err(errno(Errno::ENOTDIR));
                    }
                }
            }
        }
        stack
            .pop()
            .ok_or_else(|| io::Error::other("empty resolution stack"))
    }

    fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        match stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
            Ok(st) => {
                let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
                if fmt == SFlag::S_IFDIR {
                    let sub = nix::fcntl::openat(
                        dir,
                        name,
                        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno)?;
                    Self::clear_dir(sub.as_fd(), &HashSet::new(), &[])?;
                    unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(errno)
                } else {
                    unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(errno)
                }
            }
        }
    }

    /// Removes every child of `dir` whose path (`prefix/child`) is not in `keep`.
    fn clear_dir(dir: BorrowedFd<'_>, keep: &HashSet<Vec<u8>>, prefix: &[u8]) -> io::Result<()> {
        let dup = nix::unistd::dup(dir).map_err(errno)?;
        let mut d = nix::dir::Dir::from_fd(dup).map_err(errno)?;
        let mut names = Vec::new();
        for e in d.iter() {
            let e = e.map_err(errno)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        for n in names {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&n);
            if !keep.contains(&full) {
                Self::remove_all(dir, OsStr::from_bytes(&n))?;
            }
        }
        Ok(())
    }

    /// Sets extended attributes on an open file or directory (never through a symlink).
    fn set_xattrs(&mut self, fd: &impl AsRawFd, xattrs: &[(Vec<u8>, Vec<u8>)]) {
        for (k, v) in xattrs {
            let Ok(name) = std::ffi::CString::new(k.clone()) else {
                self.stats.xattrs_skipped += 1;
                continue;
            };
            // SAFETY: valid descriptor, NUL-terminated name, value pointer/length from a live Vec.
            let r = unsafe {
                libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), v.as_ptr().cast(), v.len(), 0)
            };
            if r == 0 {
                self.stats.xattrs += 1;
            } else {
                self.stats.xattrs_skipped += 1;
            }
        }
    }

    fn owner(&self, uid: u64, gid: u64) -> Option<(u32, u32)> {
        if !self.chown {
            return None;
        }
        match self.opts.ownership {
            Ownership::Fixed { uid, gid } => Some((uid, gid)),
            Ownership::FromArchive => Some((u32::try_from(uid).ok()?, u32::try_from(gid).ok()?)),
            Ownership::Ignore => None,
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let raw_name = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let comps = clean(&raw_name).map_err(|r| self.unsafe_entry(&name, r))?;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let Some(comps) = below_anchor(&comps, &self.anchor) else {
            self.stats.outside_anchor += 1;
            return Ok(());
        };
        let Some((leaf, parents)) = comps.split_last() else {
            // The root itself: its metadata is the caller's, except for a relocated layer, whose
            // anchor entry is the layer directory (mode and mtime as recorded, applied at the end).
            if !self.anchor.is_empty() && kind == tar::EntryType::Directory {
                let h = e.header();
                let mode = h.mode().map_err(|err| self.xerr(&name, err))? & 0o7777;
                self.root_meta = Some((mode & !0o4000, h.mtime().unwrap_or(0) as i64));
            }
            return Ok(());
        };
        let key = comps.iter().fold(Vec::new(), |mut k, c| {
            k.push(b'/');
            k.extend_from_slice(c);
            k
        });
        let dir = self
            .open_dir(parents, true)
            .map_err(|err| self.xerr(&name, err))?;
        let dirfd = dir.as_fd();
        // Whiteouts.
        if let Some(target) = leaf.strip_prefix(b".wh.") {
            if !self.opts.whiteouts {
                return Ok(());
            }
            if target == b".wh..opq" {
                let prefix = &key[..key.len() - leaf.len() - 1];
                Self::clear_dir(dirfd, &self.created, prefix)
                    .map_err(|err| self.xerr(&name, err))?;
            } else if plain_component(target) && !target.starts_with(b".wh.") {
                Self::remove_all(dirfd, OsStr::from_bytes(target))
                    .map_err(|err| self.xerr(&name, err))?;
            } else {
                // `.wh..` / `.wh...` would act on the directory itself or its parent (outside the
                // root at the top); other `.wh..wh.*` names are reserved.
                return Err(self.unsafe_entry(&name, "invalid whiteout name"));
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }
        let leaf_os = OsStr::from_bytes(leaf);
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if self.opts.xattrs {
            if let Ok(Some(exts)) = e.pax_extensions() {
                for ext in exts.flatten() {
                    if let Some(k) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                        xattrs.push((k.to_vec(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let h = e.header();
        let mut mode = h.mode().map_err(|err| self.xerr(&name, err))? & 0o7777;
        // Directories keep setgid: it only steers group inheritance (fsGroup volumes have it).
        if !self.opts.setid && kind != tar::EntryType::Directory && mode & 0o6000 != 0 {
            mode &= !0o6000;
            self.stats.setid_cleared += 1;
        }
        if !self.opts.devices
            && matches!(
                kind,
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
            )
        {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        let uid = h.uid().map_err(|err| self.xerr(&name, err))?;
        let gid = h.gid().map_err(|err| self.xerr(&name, err))?;
        let mtime = h.mtime().unwrap_or(0) as i64;
        let owner = self.owner(uid, gid);
        // Replace whatever is there, except a directory by a directory.
        let existing = stat::fstatat(dirfd, leaf_os, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing.is_some_and(|st| {
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
        });
        if existing.is_some() && !(kind == tar::EntryType::Directory && existing_dir) {
            Self::remove_all(dirfd, leaf_os).map_err(|err| self.xerr(&name, err))?;
        }
        let io = |r: nix::Result<()>| r.map_err(errno);
        let result: io::Result<()> = (|| {
            match kind {
                tar::EntryType::Directory => {
                    if !existing_dir {
                        io(stat::mkdirat(
                            dirfd,
                            leaf_os,
                            Mode::from_bits_truncate(0o700),
                        ))?;
                    }
                    chown_at(dirfd, leaf_os, owner)?;
                    // Writable while extracting; the final mode is applied at the end.
                    chmod_dir(dirfd, leaf_os, mode | 0o700)?;
                    if !xattrs.is_empty() {
                        let fd = nix::fcntl::openat(
                            dirfd,
                            leaf_os,
                            OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_RDONLY
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(errno)?;
                        self.set_xattrs(&fd, &xattrs);
                    }
                    self.dirs.push((comps.clone(), mode, mtime));
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let fd = nix::fcntl::openat(
                        dirfd,
                        leaf_os,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(errno)?;
                    let mut f = File::from(fd);
                    let n = io::copy(e, &mut f)?;
                    f.flush()?;
                    self.stats.bytes += n;
                    if let Some((u, g)) = owner {
                        unistd::fchown(&f, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                            .map_err(errno)?;
                    }
                    stat::fchmod(&f, Mode::from_bits_truncate(mode)).map_err(errno)?;
                    self.set_xattrs(&f, &xattrs);
                }
                tar::EntryType::Symlink => {
                    let target = e
                        .link_name_bytes()
                        .ok_or_else(|| io::Error::other("symlink without target"))?;
                    io(unistd::symlinkat(
                        OsStr::from_bytes(&target),
                        dirfd,
                        leaf_os,
                    ))?;
                    chown_at(dirfd, leaf_os, owner)?;
                }
                tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .ok_or_else(|| io::Error::other("hard link without target"))?;
                    let tcomps = clean(&target).map_err(|r| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("hard link target: {r}"))
                    })?;
                    let tcomps = below_anchor(&tcomps, &self.anchor).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "hard link target {:?} is outside {:?}",
                                String::from_utf8_lossy(&target),
                                self.opts.anchor.join("/")
                            ),
                        )
                    })?;
                    let (tleaf, tparents) = tcomps.split_last().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "hard link to the root")
                    })?;
                    let tdir = self.open_dir(tparents, false)?;
                    io(unistd::linkat(
                        tdir.as_fd(),
                        OsStr::from_bytes(tleaf),
                        dirfd,
                        leaf_os,
                        AtFlags::empty(),
                    ))?;
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let sflag = match kind {
                        tar::EntryType::Char => SFlag::S_IFCHR,
                        tar::EntryType::Block => SFlag::S_IFBLK,
                        _ => SFlag::S_IFIFO,
                    };
                    let major = e.header().device_major().ok().flatten().unwrap_or(0);
                    let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                    match stat::mknodat(
                        dirfd,
                        leaf_os,
                        sflag,
                        Mode::from_bits_truncate(mode),
                        libc::makedev(major, minor),
                    ) {
                        Ok(()) => {
                            chown_at(dirfd, leaf_os, owner)?;
                        }
                        Err(Errno::EPERM) if sflag != SFlag::S_IFIFO => {
                            self.stats.skipped_devices += 1;
                            return Ok(());
                        }
                        Err(err) => return Err(errno(err)),
                    }
                }
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unsupported entry type {:?}", other.as_byte() as char),
                    ))
                }
            }
            Ok(())
        })();
        result.map_err(|err| self.xerr(&name, err))?;
        if self.opts.mtimes && kind != tar::EntryType::Directory && kind != tar::EntryType::Link {
            let t = TimeSpec::new(mtime, 0);
            let _ = stat::utimensat(dirfd, leaf_os, &t, &t, UtimensatFlags::NoFollowSymlink);
        }
        self.created.insert(key);
        self.stats.entries += 1;
        Ok(())
    }

    /// Applies final directory modes and mtimes, deepest first.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        if let Some((mode, mtime)) = self.root_meta.take() {
            stat::fchmod(&self.root, Mode::from_bits_truncate(mode))
                .map_err(|e| self.xerr("<root>", errno(e)))?;
            if self.opts.mtimes {
                let t = TimeSpec::new(mtime, 0);
                let _ = stat::futimens(&self.root, &t, &t);
            }
        }
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (comps, mode, mtime) in dirs {
            let Some((leaf, parents)) = comps.split_last() else {
                continue;
            };
            let name = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            let dir = match self.open_dir(parents, false) {
                Ok(d) => d,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue, // removed by a later whiteout
                Err(e) => return Err(self.xerr(&name, e)),
            };
            let leaf_os = OsStr::from_bytes(leaf);
            match chmod_dir(dir.as_fd(), leaf_os, mode) {
                Ok(()) => {}
                // removed or replaced by a non-directory later in the archive
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(self.xerr(&name, e)),
            }
            if self.opts.mtimes {
                let t = TimeSpec::new(mtime, 0);
                let _ = stat::utimensat(
                    dir.as_fd(),
                    leaf_os,
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                );
            }
        }
        Ok(())
    }
}
