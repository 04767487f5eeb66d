//! Extract a layer tar into `<layers>` (checklist AN-05, RS-11, RS-12). Layer tars carry absolute
//! paths of the layers dir they were made from; entries are relocated under an anchor
//! (`<bp>/<layer>` or `sbom/launch`) so a different `<layers>` path still works. Entries outside the
//! anchor (its parent directories) are skipped; nothing is written outside the destination, and
//! never through a symlink.
//!
//! TODO(integration): use `archive::extract` for the safety checks once it is in main.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use cnb_spec::io::create_dirs;

/// Extract errors, naming the entry or path.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading the tar or writing a file failed.
    #[error("extracting to '{}'", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// An entry would escape the destination.
    #[error("refusing unsafe tar entry '{0}'")]
    Unsafe(String),
}

/// Relative path of `entry` below `anchor` (a component sequence), or `None` when the entry is not
/// at or below it. `Some("")` is the anchor itself.
fn below_anchor(entry: &Path, anchor: &[&str]) -> Option<PathBuf> {
    let comps: Vec<&str> = entry
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let n = anchor.len();
    (0..comps.len().saturating_sub(n - 1)).find_map(|i| {
        (comps[i..i + n] == *anchor).then(|| comps[i + n..].iter().collect::<PathBuf>())
    })
}

/// Extracts an uncompressed tar stream; entries under `anchor` land under `dest`.
/// Returns the number of entries written.
pub fn extract_anchored(
    reader: impl Read,
    anchor: &[&str],
    dest: &Path,
) -> Result<u64, ExtractError> {
    let io_err = |path: &Path, source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    };
    create_dirs(dest).map_err(|e| io_err(dest, e))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let mut written = 0;
    for entry in archive.entries().map_err(|e| io_err(dest, e))? {
        let mut entry = entry.map_err(|e| io_err(dest, e))?;
        let path = entry.path().map_err(|e| io_err(dest, e))?.into_owned();
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(ExtractError::Unsafe(path.display().to_string()));
        }
        let Some(rel) = below_anchor(&path, anchor) else {
            continue;
        };
        let target = dest.join(&rel);
        // Never write through a symlink inside the destination.
        let mut cur = dest.to_path_buf();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            cur.push(c);
            if fs::symlink_metadata(&cur)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                return Err(ExtractError::Unsafe(path.display().to_string()));
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        if let Some(parent) = target.parent() {
            create_dirs(parent).map_err(|e| io_err(parent, e))?;
        }
        if entry.header().entry_type().is_dir() {
            create_dirs(&target).map_err(|e| io_err(&target, e))?;
            if let Ok(mode) = entry.header().mode() {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777));
            }
        } else {
            if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&target).map_err(|e| io_err(&target, e))?;
            }
            entry.unpack(&target).map_err(|e| io_err(&target, e))?;
        }
        written += 1;
    }
    Ok(written)
}

/// Like [`extract_anchored`] for a gzip-compressed (or plain) blob.
pub fn extract_blob_anchored(
    reader: impl Read,
    anchor: &[&str],
    dest: &Path,
) -> Result<u64, ExtractError> {
    let mut r = io::BufReader::new(reader);
    let gz = {
        use io::BufRead;
        let buf = r.fill_buf().map_err(|e| ExtractError::Io {
            path: dest.to_path_buf(),
            source: e,
        })?;
        buf.starts_with(&[0x1f, 0x8b])
    };
    if gz {
        extract_anchored(flate2::read::GzDecoder::new(r), anchor, dest)
    } else {
        extract_anchored(r, anchor, dest)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::layers::{builder, Owner};
    use crate::export::plan::LayerContent;

    #[test]
    fn relocates_under_anchor() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("old/layers/bp_a/deps");
        fs::create_dir_all(src.join("lib")).unwrap();
        fs::write(src.join("lib/x.so"), "so").unwrap();
        std::os::unix::fs::symlink("lib/x.so", src.join("x")).unwrap();
        let mut tar = Vec::new();
        builder(&LayerContent::Dir(src), Owner { uid: 0, gid: 0 })
            .unwrap()
            .write_tar(&mut tar)
            .unwrap();
        let dest = t.path().join("new/layers/bp_a/deps");
        let n = extract_anchored(tar.as_slice(), &["bp_a", "deps"], &dest).unwrap();
        assert_eq!(n, 3);
        assert_eq!(fs::read_to_string(dest.join("lib/x.so")).unwrap(), "so");
        assert_eq!(
            fs::read_link(dest.join("x")).unwrap(),
            Path::new("lib/x.so")
        );
        assert_eq!(
            below_anchor(Path::new("/a/sbom/launch/bp/x"), &["sbom", "launch"]),
            Some(PathBuf::from("bp/x"))
        );
        assert_eq!(
            below_anchor(Path::new("/a/sbom"), &["sbom", "launch"]),
            None
        );
    }
}
