//! Image reference → layout directory (platform spec "Map an image reference to a path in the layout
//! directory"; checklist IM-30, G-21 weak validation: `busybox` → `index.docker.io/library/busybox:latest`).

use std::path::{Path, PathBuf};

use super::LayoutError;
use crate::image::Digest;

// TODO(integration): switch to `image::registry`'s reference parser once it is in main; the normalisation
// rules here are the same (Docker Hub → `index.docker.io`, `library/` for one-component names, `latest`).

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
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|_| bad())?)),
            None => (reference, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => {
                (&name[..i], Some(name[i + 1..].to_string()))
            }
            _ => (name, None),
        };
        if name.is_empty() {
            return Err(bad());
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts[0];
        let registry = if parts.len() > 1
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            parts.remove(0);
            first.to_string()
        } else {
            "index.docker.io".to_string()
        };
        let registry = if registry == "docker.io" {
            "index.docker.io".to_string()
        } else {
            registry
        };
        if registry == "index.docker.io" && parts.len() == 1 {
            parts.insert(0, "library");
        }
        let repository = parts.join("/");
        let repo_ok = parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && *p != "."
                && *p != ".."
        });
        let tag_ok = tag.as_ref().is_none_or(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !t.starts_with(['.', '-'])
        });
        if !repo_ok || !tag_ok {
            return Err(bad());
        }
        let tag = if digest.is_some() {
            None
        } else {
            Some(tag.unwrap_or_else(|| "latest".into()))
        };
        Ok(Self {
            registry,
            repository,
            tag,
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
