//! Image reference → layout directory (platform spec "Map an image reference to a path in the layout
//! directory"; checklist IM-30, G-21 weak validation: `busybox` → `index.docker.io/library/busybox:latest`).

use std::path::{Path, PathBuf};

use super::LayoutError;
use crate::image::registry::ImageRef;
use crate::image::Digest;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutReference {
    /// Registry host (`index.docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, when the reference has no digest (`latest` by default).
    pub tag: Option<String>,
    /// Digest, when given (takes precedence over a tag).
    pub digest: Option<Digest>,
}

impl LayoutReference {
    /// Parses and normalises `reference`.
    pub fn parse(reference: &str) -> Result<Self, LayoutError> {
        let bad = || LayoutError::Reference(reference.to_string());
        // One parser for every reference (the registry module's, G-21 weak validation).
        let parsed = ImageRef::parse(reference).map_err(|_| bad())?;
        // The repository becomes a path under the layout dir: no `.`/`..` components.
        if parsed
            .repository()
            .split('/')
            .any(|c| c == "." || c == "..")
        {
            return Err(bad());
        }
        let digest = match parsed.digest() {
            Some(d) => Some(d.parse::<Digest>().map_err(|_| bad())?),
            None => None,
        };
        Ok(Self {
            registry: parsed.registry().to_string(),
            repository: parsed.repository().to_string(),
            tag: parsed.tag().map(str::to_string),
            digest,
        })
    }

    /// The path inside a layout root: `<registry>/<repository>/<tag>` or `…/<algorithm>/<hex>`.
    pub fn relative_path(&self) -> PathBuf {
        let mut p = PathBuf::from(&self.registry);
        p.push(&self.repository);
        match (&self.digest, &self.tag) {
            (Some(d), _) => {
                p.push(d.algorithm());
                p.push(d.hex());
            }
            (None, Some(t)) => p.push(t),
            (None, None) => p.push("latest"),
        }
        p
    }

    /// The `org.opencontainers.image.ref.name` for this image: the tag, or the digest (IM-30).
    pub fn ref_name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

/// Maps `reference` to its directory under `layout_dir` (e.g. `busybox` →
/// `<layout_dir>/index.docker.io/library/busybox/latest`).
pub fn path_for_reference(layout_dir: &Path, reference: &str) -> Result<PathBuf, LayoutError> {
    Ok(layout_dir.join(LayoutReference::parse(reference)?.relative_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_the_platform_spec() {
        let root = Path::new("/layout");
        let cases = [
            ("busybox", "/layout/index.docker.io/library/busybox/latest"),
            ("busybox:1.36", "/layout/index.docker.io/library/busybox/1.36"),
            ("docker.io/cnbs/sample:v1", "/layout/index.docker.io/cnbs/sample/v1"),
            ("localhost:5000/a/b/c:t", "/layout/localhost:5000/a/b/c/t"),
            ("gcr.io/p/img", "/layout/gcr.io/p/img/latest"),
            (
                "my.reg/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "/layout/my.reg/app/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ];
        for (r, p) in cases {
            assert_eq!(
                path_for_reference(root, r).ok(),
                Some(PathBuf::from(p)),
                "{r}"
            );
        }
        for bad in [
            "",
            "UPPER/case",
            "a/../b",
            "x:bad tag",
            "r@sha256:zz",
            "a//b",
        ] {
            assert!(path_for_reference(root, bad).is_err(), "{bad}");
        }
    }
}
