//! Exit codes (platform spec "Exit Codes", conformance checklist §24).
//!
//! Codes are `u8` because that is what a process can return. Phase codes are grouped by tens:
//! 20s detector, 30s analyzer, 40s restorer, 50s builder, 60s exporter, 70s rebaser, 80s launcher,
//! 90s generation, 100s extender.

/// Success.
pub const SUCCESS: u8 = 0;
/// Generic lifecycle error.
pub const FAILED: u8 = 1;
/// Flag parse error (unknown flag, bad flag value): usage is printed.
pub const PARSE_ERROR: u8 = 2;
/// Invalid arguments or input resolution failure (also: unknown multicall phase).
pub const INVALID_ARGS: u8 = 3;
/// Platform API incompatible (missing, unparsable or unsupported `CNB_PLATFORM_API`).
pub const INCOMPATIBLE_PLATFORM_API: u8 = 11;
/// Buildpack API incompatible (a buildpack or extension declares an unsupported `api`).
pub const INCOMPATIBLE_BUILDPACK_API: u8 = 12;

/// Detector: no group passed detection.
pub const DETECT_FAILED_NO_GROUP: u8 = 20;
/// Detector: a buildpack's `bin/detect` errored.
pub const DETECT_BUILDPACK_ERROR: u8 = 21;
/// Detector: any other detect error.
pub const DETECT_ERROR: u8 = 22;

/// Analyzer: generic failure.
pub const ANALYZE_ERROR: u8 = 32;
/// Restorer: generic failure.
pub const RESTORE_ERROR: u8 = 42;
/// Builder: a buildpack's `bin/build` failed.
pub const BUILD_BUILDPACK_ERROR: u8 = 51;
/// Builder: lifecycle failure while building.
pub const BUILD_ERROR: u8 = 52;
/// Exporter: generic failure.
pub const EXPORT_ERROR: u8 = 62;
/// Rebaser: generic failure.
pub const REBASE_ERROR: u8 = 72;
/// Launcher: generic failure.
pub const LAUNCH_ERROR: u8 = 82;
/// Generation: an extension's `bin/generate` failed.
pub const GENERATE_EXTENSION_ERROR: u8 = 91;
/// Generation: lifecycle failure while generating.
pub const GENERATE_ERROR: u8 = 92;
/// Extender: generic failure.
pub const EXTEND_ERROR: u8 = 102;
