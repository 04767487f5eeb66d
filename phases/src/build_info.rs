//! What this build is (platform spec "io.buildpacks.build.metadata" `launcher`; checklist G-04,
//! F-DESC): the version (the workspace version, one place for every binary) and the source stamped by
//! `build.rs` — as the reference's `cmd.Version`, `cmd.SCMCommit` and `cmd.SCMRepository`.

use cnb_spec::labels::{GitMetadata, LauncherMetadata, SourceMetadata};

/// The lifecycle version (`lifecycle.toml` `[lifecycle] version`, the launcher's label version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short commit the binaries were built from; empty when built without git and without
/// `CNB_LIFECYCLE_COMMIT`.
pub const COMMIT: &str = env!("CNB_LIFECYCLE_COMMIT");

/// The source repository (`host/owner/repo`); empty when unknown.
pub const REPOSITORY: &str = env!("CNB_LIFECYCLE_REPOSITORY");

/// What `-version` prints: the version, plus `+<commit>` when the commit is known and not already part
/// of the version (the reference's `buildVersion`).
pub fn version_string() -> String {
    if COMMIT.is_empty() || VERSION.contains(COMMIT) {
        VERSION.to_string()
    } else {
        format!("{VERSION}+{COMMIT}")
    }
}

/// The `launcher` section of `io.buildpacks.build.metadata`: the launcher is built with the phases, so
/// it has their version and source.
pub fn launcher_metadata() -> LauncherMetadata {
    LauncherMetadata {
        version: VERSION.to_string(),
        source: SourceMetadata {
            git: GitMetadata {
                repository: REPOSITORY.to_string(),
                commit: COMMIT.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_source_are_stamped_g04() {
        assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
        let v = version_string();
        assert!(v.starts_with(VERSION), "{v}");
        if !COMMIT.is_empty() {
            assert!(v.ends_with(COMMIT), "{v}");
        }
        let l = launcher_metadata();
        assert_eq!(
            (l.version.as_str(), l.source.git.commit.as_str()),
            (VERSION, COMMIT)
        );
        assert!(
            !REPOSITORY.contains("://") && !REPOSITORY.ends_with(".git"),
            "{REPOSITORY}"
        );
    }
}
