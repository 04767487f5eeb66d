//! The lifecycle's and launcher's own SBOMs (platform spec "exporter", `<layers>` outputs; checklist
//! EP-03, SB-05; `[P≥0.11]`):
//! - `lifecycle.sbom.<ext>` from the lifecycle directory → `<layers>/sbom/build/buildpacksio_lifecycle/sbom.<ext>`;
//! - with the default `-launcher-sbom`, `launcher.sbom.<ext>` from the lifecycle directory →
//!   `<layers>/sbom/launch/buildpacksio_lifecycle/launcher/sbom.<ext>`; with a custom directory, every
//!   `*.sbom.<ext>` file there is copied under its own name into that launch directory.
//!
//! `<ext>` is `cdx.json`, `spdx.json` or `syft.json`. A missing default SBOM only warns
//! (`Did not find SBOM …`). The lifecycle directory is the one holding the running binary
//! (`/cnb/lifecycle` in a lifecycle image).

use std::io;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

/// The SBOM file extensions, in the reference's order.
pub const SBOM_EXTENSIONS: [&str; 3] = ["sbom.cdx.json", "sbom.spdx.json", "sbom.syft.json"];

/// The escaped id of the lifecycle's own SBOM directories.
const LIFECYCLE_ID: &str = "buildpacksio_lifecycle";

/// Copy failures; each names the file.
#[derive(Debug, thiserror::Error)]
#[error("copying SBOM '{}' to '{}'", from.display(), to.display())]
pub struct SbomCopyError {
    /// Source.
    pub from: PathBuf,
    /// Destination.
    pub to: PathBuf,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// The directory holding the running lifecycle binary, `/cnb/lifecycle` if it cannot be found.
pub fn lifecycle_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(cnb_spec::env::defaults::LAUNCHER_SBOM_DIR))
}

fn copy(from: &Path, to: &Path) -> Result<(), SbomCopyError> {
    let err = |source| SbomCopyError {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    crate::build::copy_file(from, to).map_err(err)
}

fn copy_component(src_dir: &Path, component: &str, dst_dir: &Path) -> Result<(), SbomCopyError> {
    for ext in SBOM_EXTENSIONS {
        let name = format!("{component}.{ext}");
        let src = src_dir.join(&name);
        if !src.is_file() {
            warn!("Did not find SBOM {name} in {}", src_dir.display());
            continue;
        }
        let dst = dst_dir.join(ext);
        debug!("Copying SBOM {name} to {}", dst.display());
        copy(&src, &dst)?;
    }
    Ok(())
}

/// Copies the lifecycle and launcher SBOMs into `<layers>/sbom` (EP-03). `lifecycle_dir` is where
/// `lifecycle.sbom.*` (and, with the default `launcher_sbom_dir`, `launcher.sbom.*`) live.
pub fn copy_lifecycle_sboms(
    layers_dir: &Path,
    lifecycle_dir: &Path,
    launcher_sbom_dir: &Path,
) -> Result<(), SbomCopyError> {
    let build = layers_dir.join("sbom/build").join(LIFECYCLE_ID);
    copy_component(lifecycle_dir, "lifecycle", &build)?;
    let launch = layers_dir
        .join("sbom/launch")
        .join(LIFECYCLE_ID)
        .join("launcher");
    if launcher_sbom_dir == Path::new(cnb_spec::env::defaults::LAUNCHER_SBOM_DIR) {
        return copy_component(lifecycle_dir, "launcher", &launch);
    }
    let rd = std::fs::read_dir(launcher_sbom_dir).map_err(|source| SbomCopyError {
        from: launcher_sbom_dir.to_path_buf(),
        to: launch.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| SBOM_EXTENSIONS.iter().any(|x| n.ends_with(x)))
        })
        .collect();
    files.sort();
    for f in files {
        if let Some(name) = f.file_name() {
            let dst = launch.join(name);
            debug!("Copying SBOM {} to {}", f.display(), dst.display());
            copy(&f, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs;

    #[test]
    fn ep03_default_and_custom_launcher_sbom_dirs() {
        let t = tempfile::tempdir().unwrap();
        let lc = t.path().join("cnb/lifecycle");
        fs::create_dir_all(&lc).unwrap();
        fs::write(lc.join("lifecycle.sbom.cdx.json"), "lc-cdx").unwrap();
        fs::write(lc.join("launcher.sbom.spdx.json"), "ln-spdx").unwrap();
        let layers = t.path().join("layers");
        copy_lifecycle_sboms(
            &layers,
            &lc,
            Path::new(cnb_spec::env::defaults::LAUNCHER_SBOM_DIR),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(layers.join("sbom/build/buildpacksio_lifecycle/sbom.cdx.json"))
                .unwrap(),
            "lc-cdx"
        );
        assert!(!layers
            .join("sbom/build/buildpacksio_lifecycle/sbom.spdx.json")
            .exists());
        assert_eq!(
            fs::read_to_string(
                layers.join("sbom/launch/buildpacksio_lifecycle/launcher/sbom.spdx.json")
            )
            .unwrap(),
            "ln-spdx"
        );

        let custom = t.path().join("custom");
        fs::create_dir_all(&custom).unwrap();
        fs::write(custom.join("my.sbom.syft.json"), "x").unwrap();
        fs::write(custom.join("README"), "not an sbom").unwrap();
        let layers2 = t.path().join("layers2");
        copy_lifecycle_sboms(&layers2, &lc, &custom).unwrap();
        let launch = layers2.join("sbom/launch/buildpacksio_lifecycle/launcher");
        let names: Vec<String> = fs::read_dir(&launch)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["my.sbom.syft.json".to_string()]);
    }
}
