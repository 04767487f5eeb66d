//! Platform and Buildpack API versions (platform spec "Platform API Compatibility", buildpack spec
//! "Buildpack API Compatibility"; conformance checklist G-05, G-06).
//!
//! [`PlatformApi`] and [`BuildpackApi`] are distinct ordered types so that one cannot be compared with the
//! other by mistake. Every behaviour that changed between versions is a named method on the version type;
//! phases call those methods and hold no version literals.

use std::fmt;
use std::str::FromStr;

/// A `<major>.<minor>` API version, ordered by (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major component.
    pub major: u16,
    /// Minor component (0 when the version was written as `<major>`).
    pub minor: u16,
}

impl Version {
    /// Builds a version from its parts.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Error parsing an API version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not parse API version '{0}': expected <major>.<minor> or <major>")]
pub struct ParseVersionError(pub String);

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || ParseVersionError(s.to_string());
        let t = t.strip_prefix('v').unwrap_or(t);
        let (maj, min) = match t.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(maj) || min.is_some_and(|m| !digits(m)) {
            return Err(err());
        }
        let major = maj.parse().map_err(|_| err())?;
        let minor = match min {
            Some(m) => m.parse().map_err(|_| err())?,
            None => 0,
        };
        Ok(Version { major, minor })
    }
}

macro_rules! api_type {
    ($(#[$m:meta])* $name:ident, $kind:literal, $supported:ident, $deprecated:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Version);

        impl $name {
            /// Builds the API version `major.minor`.
            pub const fn new(major: u16, minor: u16) -> Self {
                Self(Version::new(major, minor))
            }
            /// Parses and checks that the version is one this lifecycle supports.
            pub fn parse_supported(s: &str) -> Result<Self, ApiError> {
                let v: Version = s.parse().map_err(|_| ApiError::Unparsable {
                    kind: $kind,
                    value: s.to_string(),
                })?;
                let api = Self(v);
                if api.is_supported() {
                    Ok(api)
                } else {
                    Err(ApiError::Unsupported { kind: $kind, value: s.to_string() })
                }
            }
            /// Whether this lifecycle implements this API version.
            pub fn is_supported(self) -> bool {
                $supported.contains(&self)
            }
            /// Whether this version is supported but deprecated.
            pub fn is_deprecated(self) -> bool {
                $deprecated.contains(&self)
            }
            /// `self >= major.minor`. Prefer the named gates; this exists for them and for tables.
            pub const fn at_least(self, major: u16, minor: u16) -> bool {
                self.0.major > major || (self.0.major == major && self.0.minor >= minor)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseVersionError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An API version is missing, unparsable or unsupported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The version string could not be parsed.
    #[error("{kind} API version '{value}' is incompatible with the lifecycle (unparsable)")]
    Unparsable {
        /// "platform" or "buildpack".
        kind: &'static str,
        /// The offending value.
        value: String,
    },
    /// The version is well-formed but not supported.
    #[error("{kind} API version '{value}' is incompatible with the lifecycle")]
    Unsupported {
        /// "platform" or "buildpack".
        kind: &'static str,
        /// The offending value.
        value: String,
    },
}

api_type!(
    /// The Platform API version a platform requested with `CNB_PLATFORM_API`.
    PlatformApi, "platform", SUPPORTED_PLATFORM_APIS, DEPRECATED_PLATFORM_APIS
);
api_type!(
    /// The Buildpack API version a buildpack or extension declares in its descriptor.
    BuildpackApi, "buildpack", SUPPORTED_BUILDPACK_APIS, DEPRECATED_BUILDPACK_APIS
);

/// Every Platform API version this lifecycle supports, oldest first. The one list: `lifecycle.toml` is
/// generated from it.
pub const SUPPORTED_PLATFORM_APIS: &[PlatformApi] = &[
    PlatformApi::new(0, 7),
    PlatformApi::new(0, 8),
    PlatformApi::new(0, 9),
    PlatformApi::new(0, 10),
    PlatformApi::new(0, 11),
    PlatformApi::new(0, 12),
    PlatformApi::new(0, 13),
    PlatformApi::new(0, 14),
    PlatformApi::new(0, 15),
];
/// Deprecated Platform API versions (none at present).
pub const DEPRECATED_PLATFORM_APIS: &[PlatformApi] = &[];
/// Every Buildpack API version this lifecycle supports, oldest first.
pub const SUPPORTED_BUILDPACK_APIS: &[BuildpackApi] = &[
    BuildpackApi::new(0, 7),
    BuildpackApi::new(0, 8),
    BuildpackApi::new(0, 9),
    BuildpackApi::new(0, 10),
    BuildpackApi::new(0, 11),
    BuildpackApi::new(0, 12),
];
/// Deprecated Buildpack API versions (none at present).
pub const DEPRECATED_BUILDPACK_APIS: &[BuildpackApi] = &[];

impl PlatformApi {
    /// The newest supported Platform API.
    pub const LATEST: PlatformApi = PlatformApi::new(0, 15);

    /// `[P≥0.10]` image extensions and the extender phase exist.
    pub fn supports_extensions(self) -> bool {
        self.at_least(0, 10)
    }
    /// `[P≥0.12]` run image information comes from `run.toml` (earlier: `stack.toml`).
    pub fn uses_run_toml(self) -> bool {
        self.at_least(0, 12)
    }
    /// `[P≥0.13]` the `-insecure-registry` flag exists.
    pub fn has_insecure_registry_flag(self) -> bool {
        self.at_least(0, 13)
    }
    /// `[P≥0.13]` generated Dockerfiles live at `<generated>/<escaped id>/` (earlier
    /// `<generated>/<build|run>/<escaped id>/Dockerfile`); extensions are no longer experimental.
    pub fn generated_flat_layout(self) -> bool {
        self.at_least(0, 13)
    }
    /// `[P<0.13]` image extensions are an experimental feature gated by `CNB_EXPERIMENTAL_MODE`.
    pub fn extensions_experimental(self) -> bool {
        !self.at_least(0, 13)
    }
    /// `[P≥0.9]` the process type is selected by `/cnb/process/<type>` symlinks only;
    /// `CNB_PROCESS_TYPE` is ignored with a warning.
    pub fn process_type_env_ignored(self) -> bool {
        self.at_least(0, 9)
    }
    /// `[P≥0.10]` `metadata.toml` and the build metadata label write process `command` as an array;
    /// earlier as a string (extra command entries move to the front of `args`).
    pub fn metadata_command_is_array(self) -> bool {
        self.at_least(0, 10)
    }
    /// `[P<0.9]` the legacy `bom` is written to `metadata.toml`, `report.toml` and the build metadata
    /// label; from 0.9 it goes to `<layers>/sbom/{launch,build}/sbom.legacy.json` instead.
    pub fn legacy_bom_in_metadata(self) -> bool {
        !self.at_least(0, 9)
    }
    /// `[P≥0.8]` SBOM files are copied to `<layers>/sbom/{launch,build,cache}/...`, exported as the SBOM
    /// layer, cached, and restored by analyzer/restorer (checklist BD-13, SB-04, AN-05, RS-12).
    pub fn sboms_in_layers_dir(self) -> bool {
        self.at_least(0, 8)
    }
    /// `[P≥0.9]` `SOURCE_DATE_EPOCH` sets image and history creation times (IM-03).
    pub fn honors_source_date_epoch(self) -> bool {
        self.at_least(0, 9)
    }
    /// `[P≥0.10]` user arguments to a buildpack process follow the overridable-args rules (LN-04, see
    /// `Process::with_user_args`); earlier they are always appended.
    pub fn process_args_overridable(self) -> bool {
        self.at_least(0, 10)
    }
    /// `[P≥0.10]` with `-skip-restore` the restorer still runs and restores only `store.toml` (CR-03);
    /// earlier the restore step is skipped entirely.
    pub fn skip_restore_restores_store(self) -> bool {
        self.at_least(0, 10)
    }
    /// `[P≥0.11]` operator env from `<build-config>/env` is applied (ENV-03).
    pub fn uses_build_config(self) -> bool {
        self.at_least(0, 11)
    }
    /// `[P≥0.11]` the lifecycle's and launcher's own SBOMs are added (EP-03, SB-05).
    pub fn exports_lifecycle_sboms(self) -> bool {
        self.at_least(0, 11)
    }
    /// `[P≥0.12]` layers get history `created_by` entries; earlier history is blanked (IM-02).
    pub fn writes_layer_history(self) -> bool {
        self.at_least(0, 12)
    }
    /// `[P≥0.12]` detection checks module targets against the run image target (DS-12).
    pub fn checks_targets(self) -> bool {
        self.at_least(0, 12)
    }
    /// `[P≥0.12]` the lifecycle metadata label's `runImage` carries `image` and `mirrors`; the rebaser
    /// reads the run image from it and honours `io.buildpacks.rebasable` (L-LIFECYCLE, RB-02).
    pub fn run_image_label_has_image(self) -> bool {
        self.at_least(0, 12)
    }
    /// `[P≥0.12]` the run image can be extended (`extender -kind=run`, `run-image.extend`; EP-07, RS-06).
    pub fn supports_run_image_extension(self) -> bool {
        self.at_least(0, 12)
    }
    /// `[P<0.13]` the exporter deletes the previous cache image when it differs from the new one (CA-05).
    pub fn deletes_previous_cache_image(self) -> bool {
        !self.at_least(0, 13)
    }
    /// `[P≥0.14]` the restorer checks run image access via `run.toml` (RS-04), and cached launch layers
    /// are restored from the cache unless the app image metadata has them (RS-10).
    pub fn restorer_reads_run_toml(self) -> bool {
        self.at_least(0, 14)
    }
    /// `[P≥0.15]` `system.toml` buildpacks are merged into every order group (DT-04).
    pub fn supports_system_buildpacks(self) -> bool {
        self.at_least(0, 15)
    }
    /// `[P≥0.15]` execution environments (`CNB_EXEC_ENV`): module and process filtering, the
    /// `io.buildpacks.exec-env` label (DS-13, LN-03, L-EXECENV).
    pub fn supports_exec_env(self) -> bool {
        self.at_least(0, 15)
    }
}

impl BuildpackApi {
    /// `[BP≥0.9]` `launch.toml` process `command` is an array and `args` are overridable defaults;
    /// earlier: `command` is a string with a `direct` flag (shell processes).
    pub fn process_command_is_array(self) -> bool {
        self.at_least(0, 9)
    }
    /// `[BP≥0.9]` image extensions (`extension.toml`, `bin/generate`) are available.
    pub fn supports_extensions(self) -> bool {
        self.at_least(0, 9)
    }
    /// `[BP≥0.8]` a process `working-dir` is honoured (earlier it is ignored with a warning; BD-09).
    pub fn supports_process_working_dir(self) -> bool {
        self.at_least(0, 8)
    }
    /// `[BP≥0.8]` detect and build receive `CNB_PLATFORM_DIR` and `CNB_BUILD_PLAN_PATH` /
    /// `CNB_BP_PLAN_PATH` / `CNB_LAYERS_DIR` in their environment (ENV-04).
    pub fn receives_dir_env_vars(self) -> bool {
        self.at_least(0, 8)
    }
    /// `[BP≥0.9]` user-provided arguments replace a process's `args` instead of being appended (LN-04).
    pub fn user_args_replace_process_args(self) -> bool {
        self.at_least(0, 9)
    }
    /// `[BP≥0.10]` modules receive `CNB_TARGET_OS`, `CNB_TARGET_ARCH`, ... (ENV-04); `[[stacks]]` is
    /// deprecated in favour of `[[targets]]`.
    pub fn receives_target_env(self) -> bool {
        self.at_least(0, 10)
    }
    /// `[BP≥0.12]` the module's `exec-env` is honoured and it receives `CNB_EXEC_ENV` (DS-13, ENV-04).
    pub fn supports_exec_env(self) -> bool {
        self.at_least(0, 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_minor_and_major() {
        assert_eq!("0.12".parse::<Version>(), Ok(Version::new(0, 12)));
        assert_eq!("1".parse::<Version>(), Ok(Version::new(1, 0)));
        assert!("0.x".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
        assert!("0.1.2".parse::<Version>().is_err());
    }

    #[test]
    fn orders_numerically_not_lexically() {
        assert!(PlatformApi::new(0, 10) > PlatformApi::new(0, 9));
        assert!(PlatformApi::new(1, 0) > PlatformApi::new(0, 15));
    }

    #[test]
    fn supported_ranges() {
        // G-05, G-06
        assert!(PlatformApi::parse_supported("0.7").is_ok());
        assert!(PlatformApi::parse_supported("0.15").is_ok());
        assert!(matches!(
            PlatformApi::parse_supported("0.6"),
            Err(ApiError::Unsupported { .. })
        ));
        assert!(matches!(
            PlatformApi::parse_supported("zz"),
            Err(ApiError::Unparsable { .. })
        ));
        assert!(BuildpackApi::parse_supported("0.12").is_ok());
        assert!(BuildpackApi::parse_supported("0.13").is_err());
    }

    #[test]
    fn named_gates_flip_at_their_versions() {
        let p = PlatformApi::new;
        type PGate = fn(PlatformApi) -> bool;
        let flips: &[(PGate, PlatformApi)] = &[
            (PlatformApi::sboms_in_layers_dir, p(0, 8)),
            (PlatformApi::honors_source_date_epoch, p(0, 9)),
            (PlatformApi::process_args_overridable, p(0, 10)),
            (PlatformApi::metadata_command_is_array, p(0, 10)),
            (PlatformApi::skip_restore_restores_store, p(0, 10)),
            (PlatformApi::uses_build_config, p(0, 11)),
            (PlatformApi::exports_lifecycle_sboms, p(0, 11)),
            (PlatformApi::writes_layer_history, p(0, 12)),
            (PlatformApi::checks_targets, p(0, 12)),
            (PlatformApi::run_image_label_has_image, p(0, 12)),
            (PlatformApi::supports_run_image_extension, p(0, 12)),
            (PlatformApi::restorer_reads_run_toml, p(0, 14)),
            (PlatformApi::supports_system_buildpacks, p(0, 15)),
            (PlatformApi::supports_exec_env, p(0, 15)),
        ];
        for (gate, at) in flips {
            for v in SUPPORTED_PLATFORM_APIS {
                assert_eq!(gate(*v), v >= at, "gate flipping at {at} wrong for {v}");
            }
        }
        assert!(PlatformApi::new(0, 8).legacy_bom_in_metadata());
        assert!(!PlatformApi::new(0, 9).legacy_bom_in_metadata());
        assert!(PlatformApi::new(0, 12).deletes_previous_cache_image());
        assert!(!PlatformApi::new(0, 13).deletes_previous_cache_image());
        let b = BuildpackApi::new;
        type BGate = fn(BuildpackApi) -> bool;
        let bflips: &[(BGate, BuildpackApi)] = &[
            (BuildpackApi::supports_process_working_dir, b(0, 8)),
            (BuildpackApi::receives_dir_env_vars, b(0, 8)),
            (BuildpackApi::user_args_replace_process_args, b(0, 9)),
            (BuildpackApi::process_command_is_array, b(0, 9)),
            (BuildpackApi::receives_target_env, b(0, 10)),
            (BuildpackApi::supports_exec_env, b(0, 12)),
        ];
        for (gate, at) in bflips {
            for v in SUPPORTED_BUILDPACK_APIS {
                assert_eq!(gate(*v), v >= at, "gate flipping at {at} wrong for {v}");
            }
        }
    }

    #[test]
    fn gates() {
        assert!(!PlatformApi::new(0, 12).generated_flat_layout());
        assert!(PlatformApi::new(0, 13).generated_flat_layout());
        assert!(!BuildpackApi::new(0, 8).process_command_is_array());
        assert!(BuildpackApi::new(0, 9).process_command_is_array());
    }
}
