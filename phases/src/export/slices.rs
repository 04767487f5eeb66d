//! App layers from `launch.toml` slices (checklist §18 SL-01…SL-05).
//!
//! N slices give N+1 layers: each slice takes the app entries its globs match (a matched directory
//! takes all its descendants) that no earlier slice took; the last layer takes the rest. Layers may be
//! empty (they are still added, so layer counts stay stable between builds).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::glob::go_match;

/// One app layer's content: paths relative to the app dir (files, symlinks, and directories as
/// single entries), sorted. The layer builder adds each entry's parent directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSlice {
    /// Entries relative to the app dir, sorted by path. Directories listed here are added as entries
    /// (not recursively: their descendants are listed when they belong to this slice).
    pub entries: Vec<PathBuf>,
}

/// The app dir split into layers: one per slice, then the remainder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSlices {
    /// Layers in image order; the last one is the remainder.
    pub layers: Vec<AppSlice>,
}

/// An app-dir walk entry.
#[derive(Debug, Clone)]
struct Entry {
    rel: PathBuf,
    is_dir: bool,
}

/// Splits `app_dir` per `slices` (each a list of globs relative to the app dir).
pub fn slice_app(app_dir: &Path, slices: &[Vec<String>]) -> io::Result<AppSlices> {
    let mut entries = Vec::new();
    walk(app_dir, Path::new(""), &mut entries)?;
    let mut taken: BTreeSet<PathBuf> = BTreeSet::new();
    let mut layers = Vec::with_capacity(slices.len() + 1);
    for globs in slices {
        let patterns: Vec<String> = globs.iter().filter_map(|g| clean_pattern(g)).collect();
        let mut matched_dirs: Vec<PathBuf> = Vec::new();
        let mut chosen = Vec::new();
        for e in &entries {
            if taken.contains(&e.rel) {
                continue;
            }
            let under_matched = matched_dirs.iter().any(|d| e.rel.starts_with(d));
            let rel = e.rel.to_string_lossy();
            let hit = under_matched || patterns.iter().any(|p| go_match(p, &rel));
            if hit {
                if e.is_dir {
                    matched_dirs.push(e.rel.clone());
                }
                chosen.push(e.rel.clone());
            }
        }
        taken.extend(chosen.iter().cloned());
        chosen.sort();
        layers.push(AppSlice { entries: chosen });
    }
    // Remainder: every entry not taken, except directories whose every descendant was taken (they
    // reappear only as parents of remaining entries).
    let mut rest: Vec<PathBuf> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if taken.contains(&e.rel) {
            continue;
        }
        if e.is_dir {
            let descendants: Vec<&Entry> = entries[i + 1..]
                .iter()
                .take_while(|d| d.rel.starts_with(&e.rel))
                .collect();
            if !descendants.is_empty() && descendants.iter().all(|d| taken.contains(&d.rel)) {
                continue;
            }
        }
        rest.push(e.rel.clone());
    }
    rest.sort();
    layers.push(AppSlice { entries: rest });
    Ok(AppSlices { layers })
}

/// Cleans a glob like Go's `filepath.Clean` on a relative path; patterns that are absolute or escape
/// the app dir match nothing (SL-02, as the reference).
fn clean_pattern(glob: &str) -> Option<String> {
    if glob.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(glob).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        // `.` would be the app dir itself, which is never a pattern.
        return None;
    }
    Some(parts.join("/"))
}

/// Lexical walk; symlinks are entries, never followed.
fn walk(root: &Path, rel: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)?
        .map(|r| r.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let ft = fs::symlink_metadata(root.join(&child))?.file_type();
        out.push(Entry {
            rel: child.clone(),
            is_dir: ft.is_dir(),
        });
        if ft.is_dir() {
            walk(root, &child, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn app() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["static/css", "static/js", "src/lib", "empty"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "static/css/a.css",
            "static/js/a.js",
            "static/index.html",
            "src/lib/m.rs",
            "src/main.rs",
            "README",
        ] {
            fs::write(r.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("static", r.join("link")).unwrap();
        t
    }

    fn names(s: &AppSlice) -> Vec<String> {
        s.entries.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn sl01_no_slices_one_layer_with_everything() {
        let t = app();
        let s = slice_app(t.path(), &[]).unwrap();
        assert_eq!(s.layers.len(), 1);
        assert!(names(&s.layers[0]).contains(&"empty".to_string()));
        assert!(names(&s.layers[0]).contains(&"link".to_string()));
        assert_eq!(s.layers[0].entries.len(), 13);
    }

    #[test]
    fn sl03_dir_takes_descendants_and_earlier_slices_win() {
        let t = app();
        let slices = vec![
            vec!["static/js/*.js".to_string()],
            vec!["static".to_string(), "nomatch".to_string()],
            vec!["static/**".to_string()],
        ];
        let s = slice_app(t.path(), &slices).unwrap();
        assert_eq!(s.layers.len(), 4);
        assert_eq!(names(&s.layers[0]), vec!["static/js/a.js"]);
        assert_eq!(
            names(&s.layers[1]),
            vec![
                "static",
                "static/css",
                "static/css/a.css",
                "static/index.html",
                "static/js"
            ]
        );
        assert!(s.layers[2].entries.is_empty(), "empty slice still a layer");
        let rest = names(&s.layers[3]);
        assert!(rest.contains(&"src/main.rs".to_string()));
        assert!(!rest.iter().any(|n| n.starts_with("static")));
    }

    #[test]
    fn sl02_star_does_not_cross_separator_and_escaping_patterns_match_nothing() {
        let t = app();
        let slices = vec![
            vec!["*.rs".to_string()],
            vec!["../*".to_string(), "/src".to_string(), ".".to_string()],
            vec!["src/./lib/".to_string()],
        ];
        let s = slice_app(t.path(), &slices).unwrap();
        assert!(s.layers[0].entries.is_empty());
        assert!(s.layers[1].entries.is_empty());
        assert_eq!(names(&s.layers[2]), vec!["src/lib", "src/lib/m.rs"]);
    }

    #[test]
    fn sl04_consumed_dir_not_repeated_in_remainder() {
        let t = app();
        let slices = vec![vec!["src/*".to_string()]];
        let s = slice_app(t.path(), &slices).unwrap();
        assert_eq!(
            names(&s.layers[0]),
            vec!["src/lib", "src/lib/m.rs", "src/main.rs"]
        );
        assert!(!names(&s.layers[1]).contains(&"src".to_string()));
    }
}
