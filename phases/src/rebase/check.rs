//! Rebase validation (checklist RB-03, RB-05): whether an app image may move onto a new run image.

use crate::analyze::run_image::{normalized_name, RunImageCandidates};

/// Target data of an image (from its config and `io.buildpacks.base.*` labels).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageTarget {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub arch: String,
    /// `variant`.
    pub arch_variant: String,
    /// `io.buildpacks.base.distro.name`.
    pub distro_name: String,
    /// `io.buildpacks.base.distro.version`.
    pub distro_version: String,
}

/// Rebase refusals (each can be overridden with `-force`, which turns it into a warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebaseCheckError {
    /// `io.buildpacks.rebasable=false` (RB-03).
    #[error("app image is not marked as rebasable; please provide -force to override")]
    NotRebasable,
    /// Target mismatch (RB-03).
    #[error(
        "unable to satisfy target os/arch constraints; new run image: {new}, old run image: {old}"
    )]
    TargetMismatch {
        /// The new base's target.
        new: String,
        /// The app image's target.
        old: String,
    },
    /// Stack ids differ (`[P<0.12]` app images).
    #[error("incompatible stack: '{new}' is not compatible with '{old}'")]
    StackMismatch {
        /// New run image's stack id.
        new: String,
        /// App image's stack id.
        old: String,
    },
    /// The app needs mixins the new run image lacks.
    #[error("missing required mixin(s): {0}")]
    MissingMixins(String),
    /// The new base is neither the recorded run image nor a mirror (RB-05).
    #[error("new base image '{name}' not found in existing run image metadata: {metadata}; please provide -force to override")]
    NotInRunImageMetadata {
        /// The new base name.
        name: String,
        /// The recorded metadata (JSON).
        metadata: String,
    },
}

impl std::fmt::Display for ImageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.arch_variant.is_empty() {
            write!(f, "/{}", self.arch_variant)?;
        }
        if !self.distro_name.is_empty() {
            write!(f, " ({} {})", self.distro_name, self.distro_version)?;
        }
        Ok(())
    }
}

/// RB-03 `[P≥0.12]`: os and arch equal; variant and distro equal where the new base sets them.
pub fn check_target(app: &ImageTarget, new: &ImageTarget) -> Result<(), RebaseCheckError> {
    let field_ok = |new: &str, old: &str| new.is_empty() || new == old;
    let ok = app.os == new.os
        && app.arch == new.arch
        && field_ok(&new.arch_variant, &app.arch_variant)
        && field_ok(&new.distro_name, &app.distro_name)
        && field_ok(&new.distro_version, &app.distro_version);
    if ok {
        Ok(())
    } else {
        Err(RebaseCheckError::TargetMismatch {
            new: new.to_string(),
            old: app.to_string(),
        })
    }
}

/// RB-03 `[P≥0.12]`: the `io.buildpacks.rebasable` label; only `"false"` refuses.
pub fn check_rebasable(label: Option<&str>) -> Result<(), RebaseCheckError> {
    if label.map(str::trim) == Some("false") {
        Err(RebaseCheckError::NotRebasable)
    } else {
        Ok(())
    }
}

/// RB-03 `[P<0.12]` app images: stack ids equal and present; app mixins ⊆ run mixins
/// (`build:`/`run:` stage prefixes stripped).
pub fn check_stack(
    app_stack: Option<&str>,
    new_stack: Option<&str>,
    app_mixins: &[String],
    new_mixins: &[String],
) -> Result<(), RebaseCheckError> {
    let (a, n) = (app_stack.unwrap_or(""), new_stack.unwrap_or(""));
    if a.is_empty() || a != n {
        return Err(RebaseCheckError::StackMismatch {
            new: n.into(),
            old: a.into(),
        });
    }
    let strip = |m: &str| -> String {
        m.strip_prefix("run:")
            .or_else(|| m.strip_prefix("build:"))
            .unwrap_or(m)
            .to_string()
    };
    let have: Vec<String> = new_mixins.iter().map(|m| strip(m)).collect();
    let missing: Vec<String> = app_mixins
        .iter()
        .filter(|m| !m.starts_with("build:"))
        .map(|m| strip(m))
        .filter(|m| !have.contains(m))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RebaseCheckError::MissingMixins(missing.join(", ")))
    }
}

/// RB-05: the new base must be the recorded run image or a mirror (digest ignored, defaults applied).
pub fn check_new_base_recorded(
    new_base: &str,
    recorded: &RunImageCandidates,
    metadata_json: &str,
) -> Result<(), RebaseCheckError> {
    if recorded.contains(new_base) {
        return Ok(());
    }
    Err(RebaseCheckError::NotInRunImageMetadata {
        name: normalized_name(new_base),
        metadata: metadata_json.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(os: &str, arch: &str, variant: &str, dn: &str, dv: &str) -> ImageTarget {
        ImageTarget {
            os: os.into(),
            arch: arch.into(),
            arch_variant: variant.into(),
            distro_name: dn.into(),
            distro_version: dv.into(),
        }
    }

    #[test]
    fn rb03_target_compatibility() {
        let app = t("linux", "amd64", "", "ubuntu", "22.04");
        assert!(check_target(&app, &t("linux", "amd64", "", "", "")).is_ok());
        assert!(check_target(&app, &t("linux", "amd64", "", "ubuntu", "22.04")).is_ok());
        let e = check_target(&app, &t("linux", "arm64", "", "", "")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("unable to satisfy target os/arch constraints"));
        assert!(check_target(&app, &t("linux", "amd64", "", "ubuntu", "24.04")).is_err());
        assert!(check_target(&app, &t("linux", "amd64", "v8", "", "")).is_err());
    }

    #[test]
    fn rb03_rebasable_and_stack() {
        assert!(check_rebasable(None).is_ok());
        assert!(check_rebasable(Some("true")).is_ok());
        assert_eq!(
            check_rebasable(Some("false")).unwrap_err(),
            RebaseCheckError::NotRebasable
        );
        let m = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_stack(
            Some("s"),
            Some("s"),
            &m(&["a", "run:b", "build:c"]),
            &m(&["a", "b"])
        )
        .is_ok());
        assert!(check_stack(Some("s"), Some("t"), &[], &[]).is_err());
        assert!(check_stack(None, None, &[], &[]).is_err());
        let e = check_stack(Some("s"), Some("s"), &m(&["a", "z"]), &m(&["a"])).unwrap_err();
        assert_eq!(e.to_string(), "missing required mixin(s): z");
    }

    #[test]
    fn rb05_new_base_must_be_recorded() {
        let rec = RunImageCandidates {
            image: "reg.io/run".into(),
            mirrors: vec!["mirror.io/run".into()],
        };
        assert!(check_new_base_recorded("reg.io/run:latest@sha256:1", &rec, "{}").is_ok());
        assert!(check_new_base_recorded("mirror.io/run", &rec, "{}").is_ok());
        let e = check_new_base_recorded("other.io/run", &rec, "{}")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("new base image 'other.io/run:latest' not found"),
            "{e}"
        );
    }
}
