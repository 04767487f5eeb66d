//! File-system helpers for applying steps to a root: symlink-safe path resolution inside the root,
//! `COPY` of context files and applying a cached layer (with whiteouts).

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute inside the image) to a host path under `root`, following symlinks as the
/// image would see them (absolute targets are re-rooted), so the result never leaves `root`. The last
/// component is followed too unless `follow_last` is false.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(parts.iter());
        candidate.push(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "too many symlinks resolving {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts.iter());
    Ok(out)
}

/// Creates missing directories of `host` (a path under `root`) owned by root with mode 0755.
pub fn mkdir_all(host: &Path) -> io::Result<()> {
    std::fs::create_dir_all(host)
}

/// Copies `src` (file, symlink or directory contents) to `dest`, setting owner `uid:gid` and, if
/// given, permission bits `mode` on everything copied.
pub fn copy_tree(src: &Path, dest: &Path, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    if m.is_dir() {
        if !dest.is_dir() {
            if std::fs::symlink_metadata(dest).is_ok() {
                std::fs::remove_file(dest)?;
            }
            std::fs::create_dir_all(dest)?;
            set_owner_mode(dest, uid, gid, Some(mode.unwrap_or(m.mode() & 0o7777)))?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(&e.path(), &dest.join(e.file_name()), uid, gid, mode)?;
        }
        return Ok(());
    }
    if let Ok(existing) = std::fs::symlink_metadata(dest) {
        if existing.is_dir() {
            std::fs::remove_dir_all(dest)?;
        } else {
            std::fs::remove_file(dest)?;
        }
    }
    if m.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dest)?;
        std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
        return Ok(());
    }
    std::fs::copy(src, dest)?;
    set_owner_mode(dest, uid, gid, Some(mode.unwrap_or(m.mode() & 0o7777)))
}

/// Sets owner and (optionally) permission bits of `path`.
pub fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies a layer blob (gzip, zstd or plain tar) to `root`: whiteouts delete, opaque markers empty their directory, other
/// entries are unpacked with owners, modes and mtimes. Entries never land outside `root`.
///
/// TODO(integration): switch to the `archive` module's safe extraction once it lands.
pub fn apply_layer(root: &Path, blob: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(super::oci::open_layer(blob)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        if raw.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(io::Error::other(format!(
                "layer entry {} escapes the root",
                raw.display()
            )));
        }
        // `/x` and `./x` mean `x`; the root entry itself is skipped.
        let rel: PathBuf = raw
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent_rel = rel
            .parent()
            .unwrap_or(Path::new(""))
            .to_string_lossy()
            .into_owned();
        let parent = resolve_in_root(root, &format!("/{parent_rel}"), true)?;
        if name == ".wh..wh..opq" {
            if let Ok(rd) = std::fs::read_dir(&parent) {
                for e in rd {
                    remove_any(&e?.path())?;
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            remove_any(&parent.join(hidden))?;
            continue;
        }
        std::fs::create_dir_all(&parent)?;
        let dest = parent.join(&name);
        let is_dir = entry.header().entry_type().is_dir();
        if let Ok(m) = std::fs::symlink_metadata(&dest) {
            if !(m.is_dir() && is_dir) {
                remove_any(&dest)?;
            }
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(true);
        if entry.header().entry_type().is_hard_link() {
            let target = entry
                .link_name()?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let target = resolve_in_root(root, &format!("/{}", target.display()), false)?;
            std::fs::hard_link(target, &dest)?;
            continue;
        }
        entry.unpack(&dest)?;
        let uid = entry.header().uid()?;
        let gid = entry.header().gid()?;
        let _ = std::os::unix::fs::lchown(&dest, u32::try_from(uid).ok(), u32::try_from(gid).ok());
        if !entry.header().entry_type().is_symlink() {
            if let Ok(mode) = entry.header().mode() {
                let _ = std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_in_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("usr/evil")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("usr/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/x", true).unwrap(),
            r.join("usr/bin/x")
        );
        assert_eq!(
            resolve_in_root(r, "/usr/evil/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, "/usr/up/etc", true).unwrap(),
            r.join("etc")
        );
        assert_eq!(resolve_in_root(r, "/../../x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/bin", false).unwrap(), r.join("bin"));
    }
}
