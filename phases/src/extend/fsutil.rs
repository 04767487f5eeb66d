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

/// Creates missing directories of `host` (a path under `root`) owned by root with mode 0755 whatever
/// the umask (as Docker's `WORKDIR` and `COPY` do).
pub fn mkdir_all(host: &Path) -> io::Result<()> {
    cnb_spec::io::create_dirs(host)
}

/// Gives `dest` the access and modification times of `src` (not following a symlink `dest`).
fn copy_times(src: &std::fs::Metadata, dest: &Path) -> io::Result<()> {
    use nix::sys::time::TimeSpec;
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dest,
        &TimeSpec::new(src.atime(), src.atime_nsec()),
        &TimeSpec::new(src.mtime(), src.mtime_nsec()),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Copies `src` (file, symlink or directory contents) to `dest`, setting owner `uid:gid` and, if
/// given, permission bits `mode` on everything copied. Modification times of the sources are kept,
/// as Docker/BuildKit's `COPY` does (a directory that already existed at `dest` keeps its own).
pub fn copy_tree(src: &Path, dest: &Path, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    if m.is_dir() {
        let created = !dest.is_dir();
        if created {
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
        if created {
            copy_times(&m, dest)?;
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
        return copy_times(&m, dest);
    }
    std::fs::copy(src, dest)?;
    set_owner_mode(dest, uid, gid, Some(mode.unwrap_or(m.mode() & 0o7777)))?;
    copy_times(&m, dest)
}

/// Whether `name` matches the shell pattern `pattern` (Go's `filepath.Match`, which Docker uses for
/// `COPY` sources: `*` any run of characters, `?` one character, `[...]` a class with ranges and
/// `^`/`!` negation, `\\` escapes). Neither `*` nor `?` matches `/` (callers match one component).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| glob_at(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(1), Some('^') | Some('!'));
            if negate {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != ']') {
                first = false;
                let lo = if p[i] == '\\' && i + 1 < p.len() {
                    i += 1;
                    p[i]
                } else {
                    p[i]
                };
                if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                    if lo <= c && c <= p[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if lo == c {
                        hit = true;
                    }
                    i += 1;
                }
            }
            if i >= p.len() {
                return false; // unterminated class: no match (Go reports ErrBadPattern)
            }
            hit != negate && glob_at(&p[i + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

/// Expands a `COPY` source pattern relative to `context` into the matching paths (sorted; components
/// without wildcards are taken literally). Paths are relative to `context`.
pub fn glob_in(context: &Path, pattern: &str) -> io::Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for base in &found {
            if !comp.contains(['*', '?', '[']) {
                let p = base.join(comp);
                if std::fs::symlink_metadata(context.join(&p)).is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(context.join(base)) else {
                continue;
            };
            let mut names: Vec<_> = rd
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|n| n.to_str().is_some_and(|n| glob_match(comp, n)))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty());
    Ok(found)
}

/// Sets owner and (optionally) permission bits of `path`.
pub fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Applies a layer blob (gzip, zstd or plain tar) to `root` with the `archive` module's safe
/// extraction: whiteouts delete, opaque markers empty their directory, other entries are unpacked with
/// owners, modes, mtimes and extended attributes; nothing lands outside `root`.
pub fn apply_layer(
    root: &Path,
    blob: &Path,
    ownership: crate::archive::Ownership,
) -> io::Result<()> {
    let f = std::fs::File::open(blob)?;
    let options = crate::archive::ExtractOptions {
        ownership,
        ..Default::default()
    };
    crate::archive::extract(f, root, &options)
        .map(|_| ())
        .map_err(io::Error::other)
}

/// Whether any entry of the layer blob (gzip, zstd or plain tar) lies under a path `ignore` covers
/// (whiteouts name the path they delete). Such a layer must not be applied to a live root: it would
/// write into a platform volume or a mounted file.
pub fn layer_touches(blob: &Path, ignore: &super::snapshot::Ignore) -> io::Result<bool> {
    let mut archive = tar::Archive::new(crate::export::extended::open_layer(blob)?);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let path = match name.as_deref().and_then(|n| n.strip_prefix(".wh.")) {
            Some(".wh..opq") => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Some(deleted) => path.with_file_name(deleted),
            None => path,
        };
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if !rel.as_os_str().is_empty() && ignore.covers(&rel) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_go_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("[!a-c]x", "dx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
        assert!(!glob_match("[ab", "a"));
        let t = tempfile::tempdir().unwrap();
        let c = t.path();
        std::fs::create_dir_all(c.join("d1/sub")).unwrap();
        std::fs::create_dir_all(c.join("d2")).unwrap();
        for f in [
            "a.txt",
            "b.txt",
            "c.md",
            "d1/x.txt",
            "d2/y.txt",
            "d1/sub/z.txt",
        ] {
            std::fs::write(c.join(f), f).unwrap();
        }
        assert_eq!(
            glob_in(c, "*.txt").unwrap(),
            vec![PathBuf::from("a.txt"), PathBuf::from("b.txt")]
        );
        assert_eq!(
            glob_in(c, "d*/*.txt").unwrap(),
            vec![PathBuf::from("d1/x.txt"), PathBuf::from("d2/y.txt")]
        );
        assert!(glob_in(c, "*.none").unwrap().is_empty());
    }

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
