//! Run-image resolution (checklist §21 RI-01, RI-02, RI-10; AN-02; RB-02).
//!
//! `run.toml` (`[P≥0.12]`) or `stack.toml` (`[P<0.12]`) give a run image and its mirrors; the
//! analyzer and rebaser pick the first readable candidate on the app image's registry, else the first
//! readable one. Only the first `[[images]]` entry counts.

use std::path::Path;

use crate::image::registry::ImageRef;

/// A run image and its mirrors (one `run.toml` `[[images]]` entry, or `stack.toml` `[run-image]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunImageCandidates {
    /// `image`.
    pub image: String,
    /// `mirrors`, in order.
    pub mirrors: Vec<String>,
}

impl RunImageCandidates {
    fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.image.as_str())
            .chain(self.mirrors.iter().map(String::as_str))
            .filter(|s| !s.is_empty())
    }

    /// Whether `name` is this image or one of its mirrors, comparing normalised names without digests
    /// (`busybox` = `index.docker.io/library/busybox:latest`); `name` may be the layout path that
    /// `analyzed.toml` records in layout mode.
    pub fn contains(&self, name: &str) -> bool {
        let want = normalized_name(name);
        self.all()
            .any(|c| normalized_name(c) == want || is_layout_path_of(name, c))
    }
}

/// Run-image resolution failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunImageError {
    /// No `-run-image` and no run metadata.
    #[error("-run-image is required when there is no run metadata available")]
    NoRunMetadata,
    /// No candidate could be read.
    #[error("failed to find accessible run image (tried: {0})")]
    NoneAccessible(String),
}

/// Chooses the run image (RI-01): the first candidate on `app_image`'s registry that `readable`
/// accepts, else the first readable candidate. In layout mode pass `|_| true`.
pub fn select_run_image(
    candidates: &RunImageCandidates,
    app_image: &str,
    mut readable: impl FnMut(&str) -> bool,
) -> Result<String, RunImageError> {
    if candidates.all().next().is_none() {
        return Err(RunImageError::NoRunMetadata);
    }
    let app_registry = registry_of(app_image);
    let mut checked: Vec<(String, bool)> = Vec::new();
    let mut is_readable = |c: &str| -> bool {
        if let Some((_, r)) = checked.iter().find(|(n, _)| n == c) {
            return *r;
        }
        let r = readable(c);
        checked.push((c.to_string(), r));
        r
    };
    for c in candidates.all() {
        if registry_of(c) == app_registry && is_readable(c) {
            return Ok(c.to_string());
        }
    }
    for c in candidates.all() {
        if is_readable(c) {
            return Ok(c.to_string());
        }
    }
    Err(RunImageError::NoneAccessible(
        candidates.all().collect::<Vec<_>>().join(", "),
    ))
}

/// The exporter's run-image metadata (RI-10): the first entry containing the analyzed run image name,
/// else (extensions may have switched it) `{image = name}` when `has_extensions`, else the first entry.
pub fn run_image_for_export(
    entries: &[RunImageCandidates],
    analyzed_image: &str,
    has_extensions: bool,
) -> Option<RunImageCandidates> {
    if let Some(e) = entries.iter().find(|e| e.contains(analyzed_image)) {
        return Some(e.clone());
    }
    if has_extensions && !analyzed_image.is_empty() {
        return Some(RunImageCandidates {
            image: analyzed_image.to_string(),
            mirrors: Vec::new(),
        });
    }
    entries.first().cloned()
}

/// Whether `recorded` is the layout path of `name` under some layout directory (`analyzed.toml` in layout
/// mode records `<layout-dir>/index.docker.io/library/busybox/latest` for `busybox`).
pub fn is_layout_path_of(recorded: &str, name: &str) -> bool {
    let recorded = recorded.split('@').next().unwrap_or(recorded);
    Path::new(recorded).is_absolute()
        && !name.is_empty()
        && !name.starts_with('/')
        && crate::image::layout::path_for_reference(Path::new(""), name)
            .is_ok_and(|p| Path::new(recorded).ends_with(p))
}

/// Docker's default registry host.
pub const DEFAULT_REGISTRY: &str = crate::image::registry::DEFAULT_REGISTRY;

/// The registry host of an image reference, with Docker's defaults (`busybox` → `index.docker.io`).
/// An unparsable reference yields its text before the first `/` (the access check then names it).
pub fn registry_of(reference: &str) -> String {
    match ImageRef::parse(without_digest(reference)) {
        Ok(r) => r.registry().to_string(),
        Err(_) => reference.split('/').next().unwrap_or(reference).to_string(),
    }
}

/// The name part of a reference (the digest, which these helpers drop, is not validated here).
fn without_digest(reference: &str) -> &str {
    reference.split('@').next().unwrap_or(reference)
}

/// `registry/repository:tag` with defaults applied and any digest dropped; an unparsable reference is
/// returned unchanged.
pub fn normalized_name(reference: &str) -> String {
    match ImageRef::parse(without_digest(reference)) {
        Ok(r) => format!(
            "{}:{}",
            r.name(),
            r.tag().unwrap_or(crate::image::registry::DEFAULT_TAG)
        ),
        Err(_) => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn layout_paths_recorded_in_analyzed_toml_name_their_image() {
        let p = "/layout-repo/index.docker.io/library/busybox/latest";
        assert!(is_layout_path_of(p, "busybox"));
        assert!(is_layout_path_of(
            &format!("{p}@sha256:abc"),
            "busybox:latest"
        ));
        assert!(is_layout_path_of(p, "index.docker.io/library/busybox"));
        assert!(!is_layout_path_of(p, "busybox:1.36"));
        assert!(!is_layout_path_of("busybox", "busybox"));
        let c = RunImageCandidates {
            image: "registry.test/run".into(),
            mirrors: vec!["busybox".into()],
        };
        assert!(c.contains(p));
        assert!(c.contains("/l/registry.test/run/latest"));
        assert!(!c.contains("/l/registry.test/other/latest"));
    }

    fn cands(image: &str, mirrors: &[&str]) -> RunImageCandidates {
        RunImageCandidates {
            image: image.into(),
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn ri01_prefers_mirror_on_app_registry() {
        let c = cands(
            "docker.io/cnb/run",
            &["gcr.io/cnb/run", "127.0.0.1:5000/cnb/run"],
        );
        assert_eq!(
            select_run_image(&c, "127.0.0.1:5000/app", |_| true).unwrap(),
            "127.0.0.1:5000/cnb/run"
        );
        assert_eq!(
            select_run_image(&c, "gcr.io/foo/app:v1", |_| true).unwrap(),
            "gcr.io/cnb/run"
        );
        // Not on the app registry: the first readable candidate.
        assert_eq!(
            select_run_image(&c, "quay.io/app", |n| n.starts_with("gcr")).unwrap(),
            "gcr.io/cnb/run"
        );
    }

    #[test]
    fn ri01_unreadable_same_registry_falls_back() {
        let c = cands("docker.io/cnb/run", &["127.0.0.1:5000/cnb/run"]);
        let got = select_run_image(&c, "127.0.0.1:5000/app", |n| n.starts_with("docker")).unwrap();
        assert_eq!(got, "docker.io/cnb/run");
        let err = select_run_image(&c, "127.0.0.1:5000/app", |_| false).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("failed to find accessible run image"));
        assert_eq!(
            select_run_image(&RunImageCandidates::default(), "a", |_| true).unwrap_err(),
            RunImageError::NoRunMetadata
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalized_name("busybox"),
            "index.docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalized_name("docker.io/library/busybox:1"),
            "index.docker.io/library/busybox:1"
        );
        assert_eq!(
            normalized_name("cnb/run@sha256:abc"),
            "index.docker.io/cnb/run:latest"
        );
        assert_eq!(
            normalized_name("localhost:5000/a/b"),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(normalized_name("127.0.0.1:5000/a:t"), "127.0.0.1:5000/a:t");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn ri10_export_metadata() {
        let entries = vec![cands("a/run", &["b.io/run"]), cands("c.io/run", &[])];
        assert_eq!(
            run_image_for_export(&entries, "c.io/run@sha256:1", false).unwrap(),
            entries[1]
        );
        assert_eq!(
            run_image_for_export(&entries, "b.io/run:latest", false).unwrap(),
            entries[0]
        );
        assert_eq!(
            run_image_for_export(&entries, "x.io/ext", false).unwrap(),
            entries[0]
        );
        assert_eq!(
            run_image_for_export(&entries, "x.io/ext", true).unwrap(),
            cands("x.io/ext", &[])
        );
        assert!(run_image_for_export(&[], "x", false).is_none());
    }
}
