//! `creator -build-image`: find the build image (an OCI layout path, a `-layout-dir` image or a registry
//! reference), check it is a build image (platform spec "Build Image": `CNB_USER_ID` and `CNB_GROUP_ID`
//! in its config), and unpack its root filesystem once per manifest digest into a cache directory.
//!
//! The unpacked tree is never modified: builds run on an overlay of it (see [`super::sandboxed`]).

use std::path::{Path, PathBuf};

use crate::archive::{self, ExtractOptions};
use crate::cli::Inputs;
use crate::image::layout::{path_for_reference, Layout, Selector};
use crate::image::registry::{ImageRef, RegistryClient};
use crate::image::Image;
use crate::Failure;

/// Environment variable naming the directory where unpacked build images are cached (default
/// `$XDG_CACHE_HOME/cnb-lifecycle/build-images`, else `$HOME/.cache/cnb-lifecycle/build-images`).
pub const ROOTFS_CACHE_ENV: &str = "CNB_BUILD_IMAGE_CACHE";

/// Where the build image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An OCI image layout directory (the only or the tagged manifest in it).
    Layout(PathBuf),
    /// A registry reference.
    Registry(ImageRef),
}

/// Whether `name` names a path (absolute, or starting with `./` or `../`) rather than a reference.
pub fn is_path(name: &str) -> bool {
    name.starts_with('/') || name.starts_with("./") || name.starts_with("../") || name == "."
}

/// Resolves `-build-image`: a path is an OCI layout; with `-layout`, a reference is first looked up
/// under `-layout-dir` (`<layout-dir>/<registry>/<repo>/<tag>`, as for the run image); otherwise it is a
/// registry reference.
pub fn source(inputs: &Inputs, name: &str, cwd: &Path) -> Result<Source, Failure> {
    let bad = |msg: String| Failure::msg(cnb_spec::exit::INVALID_ARGS, "resolve inputs", msg);
    if is_path(name) {
        let p = cwd.join(name);
        if !Layout::exists(&p) {
            return Err(bad(format!(
                "build image {name}: {} is not an OCI image layout (no index.json)",
                p.display()
            )));
        }
        return Ok(Source::Layout(p));
    }
    if inputs.use_layout {
        if let Some(dir) = &inputs.layout_dir {
            if let Ok(p) = path_for_reference(dir, name) {
                if Layout::exists(&p) {
                    return Ok(Source::Layout(p));
                }
            }
        }
    }
    ImageRef::parse(name)
        .map(Source::Registry)
        .map_err(|e| bad(format!("build image {name}: {e}")))
}

/// The build image, opened.
#[derive(Debug)]
pub struct BuildImage {
    /// What the platform passed.
    pub name: String,
    /// The opened image (manifest + config; layers are streamed on unpack).
    pub image: Image,
    /// `CNB_USER_ID` of its config.
    pub uid: u32,
    /// `CNB_GROUP_ID` of its config.
    pub gid: u32,
    /// Its config `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
}

/// A registry client with the platform's credentials and insecure registries.
pub(crate) fn registry_client(inputs: &Inputs) -> Result<RegistryClient, String> {
    crate::export::access::ImageAccess::registry_client(inputs).map_err(|e| e.to_string())
}

/// Opens the build image and checks it is one. Exit 3 when it cannot be found or is not a build image.
pub fn open(inputs: &Inputs, name: &str, source: &Source) -> Result<BuildImage, Failure> {
    let code = cnb_spec::exit::INVALID_ARGS;
    let fail = |msg: String| Failure::msg(code, "resolve inputs", msg);
    let image = match source {
        Source::Layout(p) => {
            let layout = Layout::open(p).map_err(|e| fail(format!("build image {name}: {e}")))?;
            let tags = layout.tags().unwrap_or_default();
            let selector = match tags.as_slice() {
                [one] => Selector::Tag(one.clone()),
                _ => Selector::Only,
            };
            Image::from_layout(p, &selector, None)
        }
        Source::Registry(r) => {
            let client = registry_client(inputs)
                .map_err(|e| fail(format!("build image {name}: registry client: {e}")))?;
            Image::from_registry(&client, r)
        }
    }
    .map_err(|e| {
        fail(format!(
            "failed to find accessible build image {name}: {}",
            crate::error::chain(&e)
        ))
    })?;
    let id = |var: &str| -> Result<u32, Failure> {
        let v = image.env_var(var).ok_or_else(|| {
            fail(format!(
                "{name} is not a build image: its config sets no {var} (platform spec: a build image MUST set CNB_USER_ID and CNB_GROUP_ID)"
            ))
        })?;
        v.trim().parse::<u32>().map_err(|_| {
            fail(format!(
                "{name} is not a build image: {var}={v:?} is not a number"
            ))
        })
    };
    let uid = id(cnb_spec::env::USER_ID)?;
    let gid = id(cnb_spec::env::GROUP_ID)?;
    if uid == 0 {
        return Err(fail(format!(
            "build image {name} sets CNB_USER_ID=0: buildpacks must not run as root"
        )));
    }
    let env = image
        .env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Ok(BuildImage {
        name: name.to_string(),
        image,
        uid,
        gid,
        env,
    })
}

/// The directory unpacked build images are cached in.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os(ROOTFS_CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&p).join("cnb-lifecycle/build-images");
    }
    if let Some(p) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Path::new(&p).join(".cache/cnb-lifecycle/build-images");
    }
    std::env::temp_dir().join("cnb-lifecycle-build-images")
}

/// Unpacks every layer of `image` into `dest` (created), keeping ownership.
pub fn unpack(image: &Image, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let layers = image.layers().map_err(|e| crate::error::chain(&e))?;
    for l in layers {
        let r = image
            .open_blob(&l.descriptor.digest)
            .map_err(|e| crate::error::chain(&e))?;
        archive::extract(r, dest, &ExtractOptions::default()).map_err(|e| {
            format!(
                "unpacking layer {} of {}: {}",
                l.descriptor.digest,
                image.name(),
                crate::error::chain(&e)
            )
        })?;
    }
    Ok(())
}

/// The cached root filesystem of `image` under `cache`, unpacking it first when missing (into a temp
/// dir renamed into place, so a crash leaves no half-unpacked tree). Returns the path and whether it
/// was already there.
pub fn cached_rootfs(image: &Image, cache: &Path) -> Result<(PathBuf, bool), String> {
    let dest = cache.join(image.manifest_digest().hex());
    if dest.is_dir() {
        return Ok((dest, true));
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(cache)
        .map_err(|e| format!("creating a temp dir in {}: {e}", cache.display()))?;
    let tree = tmp.path().join("rootfs");
    unpack(image, &tree)?;
    match std::fs::rename(&tree, &dest) {
        Ok(()) => Ok((dest, false)),
        // Another build unpacked the same image meanwhile.
        Err(_) if dest.is_dir() => Ok((dest, true)),
        Err(e) => Err(format!(
            "moving the unpacked build image to {}: {e}",
            dest.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_and_references() {
        assert!(is_path("/tmp/layout"));
        assert!(is_path("./layout"));
        assert!(is_path("../x"));
        assert!(!is_path("localhost:5000/build:latest"));
        assert!(!is_path("busybox"));
    }
}
