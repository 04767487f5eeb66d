//! Image labels (platform spec "Labels", "Target Data"; checklist §23): names and the JSON structures of
//! `io.buildpacks.lifecycle.metadata`, `io.buildpacks.build.metadata` and the cache metadata label. The
//! `io.buildpacks.project.metadata` label is [`crate::platform::ProjectMetadata`] as JSON.
//!
//! JSON keys are exactly those the reference lifecycle writes (camelCase `runImage`, `topLayer`,
//! `buildpackID`; kebab-case `process-types`, `working-dir`, `exec-env`), so images built by either
//! implementation can be rebased and rebuilt by the other.

mod build;
mod lifecycle;
#[cfg(test)]
mod tests;

pub use build::{BuildMetadataLabel, GitMetadata, LauncherMetadata, SourceMetadata};
pub(crate) use lifecycle::table_to_json;
pub use lifecycle::{
    BuildpackLayerMetadata, BuildpackLayersMetadata, CacheMetadata, LayerSha, LifecycleMetadata,
    RunImageForRebase, StackMetadata,
};

/// `io.buildpacks.lifecycle.metadata`: layer diffIDs and metadata for rebuild and rebase (L-LIFECYCLE).
pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
/// `io.buildpacks.build.metadata`: buildpacks, processes and launcher of the build (L-BUILD).
pub const BUILD_METADATA: &str = "io.buildpacks.build.metadata";
/// `io.buildpacks.project.metadata`: JSON of `project-metadata.toml` (L-PROJECT).
pub const PROJECT_METADATA: &str = "io.buildpacks.project.metadata";
/// `io.buildpacks.lifecycle.cache.metadata`: on cache images and in volume caches (L-CACHE, CA-01).
pub const CACHE_METADATA: &str = "io.buildpacks.lifecycle.cache.metadata";
/// `io.buildpacks.rebasable`: `"true"` when run image layers may be swapped (L-REBASABLE).
pub const REBASABLE: &str = "io.buildpacks.rebasable";
/// `io.buildpacks.exec-env`: the execution environment of the build (P≥0.15, reference; L-EXECENV).
pub const EXEC_ENV: &str = "io.buildpacks.exec-env";
/// Deprecated `io.buildpacks.stack.id` (P<0.12 stacks; `io.buildpacks.stacks.bionic` implies a target).
pub const STACK_ID: &str = "io.buildpacks.stack.id";
/// Deprecated `io.buildpacks.stack.mixins`: JSON array of mixin names.
pub const STACK_MIXINS: &str = "io.buildpacks.stack.mixins";
/// Prefix of the deprecated stack labels, synced on rebase.
pub const STACK_PREFIX: &str = "io.buildpacks.stack.";
/// Prefix of the base image labels, synced on rebase.
pub const BASE_PREFIX: &str = "io.buildpacks.base.";
/// `io.buildpacks.base.id`: target ID of the run image.
pub const BASE_ID: &str = "io.buildpacks.base.id";
/// `io.buildpacks.base.distro.name`: OS distribution name.
pub const BASE_DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
/// `io.buildpacks.base.distro.version`: OS distribution version.
pub const BASE_DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";
/// `io.buildpacks.base.maintainer`.
pub const BASE_MAINTAINER: &str = "io.buildpacks.base.maintainer";
/// `io.buildpacks.base.homepage`.
pub const BASE_HOMEPAGE: &str = "io.buildpacks.base.homepage";
/// `io.buildpacks.base.released`.
pub const BASE_RELEASED: &str = "io.buildpacks.base.released";
/// `io.buildpacks.base.description`.
pub const BASE_DESCRIPTION: &str = "io.buildpacks.base.description";
/// `io.buildpacks.base.metadata`.
pub const BASE_METADATA: &str = "io.buildpacks.base.metadata";

/// Whether a label is one of the base-image labels the rebaser replaces with the new run image's
/// (`io.buildpacks.base.*` and `io.buildpacks.stack.*`).
pub fn is_base_image_label(name: &str) -> bool {
    name.starts_with(BASE_PREFIX) || name.starts_with(STACK_PREFIX)
}

/// Interprets a `io.buildpacks.rebasable` value (`"true"`, case-insensitive, Go `ParseBool` spellings).
pub fn parse_rebasable(value: &str) -> bool {
    matches!(value.trim(), "1" | "t" | "T" | "true" | "TRUE" | "True")
}
