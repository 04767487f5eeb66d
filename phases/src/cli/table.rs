//! The flag table: every phase flag, its `CNB_*` variable, its default, and the Platform API range in
//! which each phase accepts it (platform spec per-phase "Inputs" tables; checklist §2–§10 `*-I*` items).
//!
//! One table drives parsing (a flag outside its range is an unknown flag, G-08), the usage text, and
//! the documentation. Environment variables are read for every input whatever the phase or API
//! (as the reference does); only flags are gated.

use cnb_spec::env as e;
use cnb_spec::PlatformApi;

use super::flags::FlagKind;
use super::Phase;

/// A half-open Platform API range `[since, before)`; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// First API that accepts the flag.
    pub since: Option<PlatformApi>,
    /// First API that no longer accepts the flag.
    pub before: Option<PlatformApi>,
}

impl ApiRange {
    /// Every supported API.
    pub const ALL: ApiRange = ApiRange {
        since: None,
        before: None,
    };

    /// `[P≥major.minor]`.
    pub const fn since(major: u16, minor: u16) -> ApiRange {
        ApiRange {
            since: Some(PlatformApi::new(major, minor)),
            before: None,
        }
    }

    /// `[P<major.minor]`.
    pub const fn before(major: u16, minor: u16) -> ApiRange {
        ApiRange {
            since: None,
            before: Some(PlatformApi::new(major, minor)),
        }
    }

    /// Whether `api` lies in the range.
    pub fn contains(&self, api: PlatformApi) -> bool {
        self.since.is_none_or(|s| api >= s) && self.before.is_none_or(|b| api < b)
    }
}

/// Which resolved input a flag sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// `-analyzed`
    Analyzed,
    /// `-app`
    App,
    /// `-build-config`
    BuildConfig,
    /// `-build-image`
    BuildImage,
    /// `-buildpacks`
    Buildpacks,
    /// `-cache-dir`
    CacheDir,
    /// `-cache-image`
    CacheImage,
    /// `-daemon`
    Daemon,
    /// `-extended`
    Extended,
    /// `-extensions`
    Extensions,
    /// `-force`
    Force,
    /// `-generated`
    Generated,
    /// `-gid`
    Gid,
    /// `-group`
    Group,
    /// `-image` (deprecated run image)
    DeprecatedImage,
    /// `-insecure-registry`
    InsecureRegistry,
    /// `-kaniko-cache-ttl`
    KanikoCacheTtl,
    /// `-kind`
    Kind,
    /// `-launch-cache`
    LaunchCache,
    /// `-launcher`
    Launcher,
    /// `-launcher-sbom`
    LauncherSbom,
    /// `-layers`
    Layers,
    /// `-layout`
    Layout,
    /// `-layout-dir`
    LayoutDir,
    /// `-log-level`
    LogLevel,
    /// `-no-color`
    NoColor,
    /// `-order`
    Order,
    /// `-parallel`
    Parallel,
    /// `-plan`
    Plan,
    /// `-platform`
    Platform,
    /// `-previous-image`
    PreviousImage,
    /// `-process-type`
    ProcessType,
    /// `-project-metadata`
    ProjectMetadata,
    /// `-report`
    Report,
    /// `-run`
    Run,
    /// `-run-image`
    RunImage,
    /// `-skip-layers`
    SkipLayers,
    /// `-skip-restore`
    SkipRestore,
    /// `-stack`
    Stack,
    /// `-system`
    System,
    /// `-tag`
    Tag,
    /// `-uid`
    Uid,
    /// `-version`
    Version,
}

/// One flag: syntax, variable, default and per-phase availability.
#[derive(Debug, Clone, Copy)]
pub struct FlagDef {
    /// Name without dashes, e.g. `layers`.
    pub name: &'static str,
    /// How it takes its value.
    pub kind: FlagKind,
    /// The input it sets.
    pub key: Key,
    /// Its environment variable, if any.
    pub env: Option<&'static str>,
    /// Its default as documented (`<layers>` stands for the resolved layers directory).
    pub default: &'static str,
    /// One-line help.
    pub usage: &'static str,
    /// Phases that accept it, each with the Platform API range.
    pub phases: &'static [(Phase, ApiRange)],
}

impl FlagDef {
    /// Whether `phase` accepts this flag at `api`.
    pub fn accepted(&self, phase: Phase, api: PlatformApi) -> bool {
        self.phases
            .iter()
            .any(|(p, r)| *p == phase && r.contains(api))
    }
}

use ApiRange as R;
use FlagKind::{Bool, Duration, Int, List, String as Str};
use Phase::{
    Analyzer as AN, Builder as BD, Creator as CR, Detector as DT, Exporter as EP, Extender as EX,
    Rebaser as RB, Restorer as RS,
};

const A: ApiRange = R::ALL;

macro_rules! flag {
    ($name:literal, $kind:expr, $key:ident, $env:expr, $default:literal, $usage:literal, [$($p:ident : $r:expr),* $(,)?]) => {
        FlagDef {
            name: $name,
            kind: $kind,
            key: Key::$key,
            env: $env,
            default: $default,
            usage: $usage,
            phases: &[$(($p, $r)),*],
        }
    };
}

/// Every flag of every phase (the launcher takes no flags). Sorted by name, as Go prints usage.
pub static FLAGS: &[FlagDef] = &[
    flag!("analyzed", Str, Analyzed, Some(e::ANALYZED_PATH), "<layers>/analyzed.toml", "path to analyzed.toml",
        [AN: A, DT: R::since(0, 10), RS: A, EX: A, BD: R::since(0, 12), EP: A]),
    flag!("app", Str, App, Some(e::APP_DIR), "/workspace", "path to app directory",
        [DT: A, EX: A, BD: A, EP: A, CR: A]),
    flag!("build-config", Str, BuildConfig, Some(e::BUILD_CONFIG_DIR), "/cnb/build-config", "path to build config directory",
        [DT: R::since(0, 11), BD: R::since(0, 11), CR: R::since(0, 11)]),
    flag!("build-image", Str, BuildImage, Some(e::BUILD_IMAGE), "", "build image tag name",
        [RS: R::since(0, 10), CR: A]),
    flag!("buildpacks", Str, Buildpacks, Some(e::BUILDPACKS_DIR), "/cnb/buildpacks", "path to buildpacks directory",
        [DT: A, EX: A, BD: A, CR: A]),
    flag!("cache-dir", Str, CacheDir, Some(e::CACHE_DIR), "", "path to cache directory",
        [RS: A, EP: A, CR: A]),
    flag!("cache-image", Str, CacheImage, Some(e::CACHE_IMAGE), "", "cache image tag name",
        [AN: A, RS: A, EP: A, CR: A]),
    flag!("daemon", Bool, Daemon, Some(e::USE_DAEMON), "false", "export to docker daemon",
        [AN: A, RS: R::since(0, 12), EP: A, RB: A, CR: A]),
    flag!("extended", Str, Extended, Some(e::EXTENDED_DIR), "<layers>/extended", "path to output directory for image layers created from applying generated Dockerfiles",
        [EX: R::since(0, 12), EP: R::since(0, 12)]),
    flag!("extensions", Str, Extensions, Some(e::EXTENSIONS_DIR), "/cnb/extensions", "path to extensions directory",
        [DT: R::since(0, 10)]),
    flag!("force", Bool, Force, Some(e::FORCE_REBASE), "false", "execute rebase even if operation is unsafe",
        [RB: R::since(0, 12)]),
    flag!("generated", Str, Generated, Some(e::GENERATED_DIR), "<layers>/generated", "path to output directory for files generated by image extensions",
        [DT: R::since(0, 10), RS: R::since(0, 12), EX: A]),
    flag!("gid", Int, Gid, Some(e::GROUP_ID), "0", "GID of user's group in the stack's build and run images",
        [AN: A, RS: A, EX: A, EP: A, RB: A, CR: A]),
    flag!("group", Str, Group, Some(e::GROUP_PATH), "<layers>/group.toml", "path to group.toml",
        [DT: A, RS: A, EX: A, BD: A, EP: A]),
    flag!("image", Str, DeprecatedImage, None, "", "[deprecated] reference to run image",
        [EP: A, RB: A]),
    flag!("insecure-registry", List, InsecureRegistry, Some(e::INSECURE_REGISTRIES), "", "insecure registries (repeatable)",
        [AN: R::since(0, 13), RS: R::since(0, 13), EP: R::since(0, 13), RB: R::since(0, 13), CR: R::since(0, 13)]),
    flag!("kaniko-cache-ttl", Duration, KanikoCacheTtl, Some(e::KANIKO_CACHE_TTL), "336h0m0s", "kaniko cache time-to-live",
        [EX: A]),
    flag!("kind", Str, Kind, Some(e::EXTEND_KIND), "build", "kind of image to extend",
        [EX: R::since(0, 12)]),
    flag!("launch-cache", Str, LaunchCache, Some(e::LAUNCH_CACHE_DIR), "", "path to launch cache directory",
        [AN: R::since(0, 9), EP: A, CR: A]),
    flag!("launcher", Str, Launcher, None, "/cnb/lifecycle/launcher", "path to launcher binary",
        [EP: A, CR: A]),
    flag!("launcher-sbom", Str, LauncherSbom, None, "/cnb/lifecycle", "path to launcher SBOM directory",
        [EP: R::since(0, 11), CR: R::since(0, 11)]),
    flag!("layers", Str, Layers, Some(e::LAYERS_DIR), "/layers", "path to layers directory",
        [AN: A, DT: A, RS: A, EX: A, BD: A, EP: A, CR: A]),
    flag!("layout", Bool, Layout, Some(e::USE_LAYOUT), "false", "export to OCI layout format on disk",
        [AN: R::since(0, 12), RS: R::since(0, 12), EP: R::since(0, 12), RB: R::since(0, 12), CR: R::since(0, 12)]),
    flag!("layout-dir", Str, LayoutDir, Some(e::LAYOUT_DIR), "", "path to output directory for images in OCI layout format",
        [AN: R::since(0, 12), RS: R::since(0, 12), EP: R::since(0, 12), RB: R::since(0, 12), CR: R::since(0, 12)]),
    flag!("log-level", Str, LogLevel, Some(e::LOG_LEVEL), "info", "logging level",
        [AN: A, DT: A, RS: A, EX: A, BD: A, EP: A, RB: A, CR: A]),
    flag!("no-color", Bool, NoColor, Some(e::NO_COLOR), "false", "disable color output",
        [AN: A, DT: A, RS: A, EX: A, BD: A, EP: A, RB: A, CR: A]),
    flag!("order", Str, Order, Some(e::ORDER_PATH), "<layers>/order.toml if present, else /cnb/order.toml", "path to order.toml",
        [DT: A, CR: A]),
    flag!("parallel", Bool, Parallel, Some(e::PARALLEL_EXPORT), "false", "export app image and cache image in parallel",
        [EP: A, CR: A]),
    flag!("plan", Str, Plan, Some(e::PLAN_PATH), "<layers>/plan.toml", "path to plan.toml",
        [DT: A, EX: A, BD: A]),
    flag!("platform", Str, Platform, Some(e::PLATFORM_DIR), "/platform", "path to platform directory",
        [DT: A, EX: A, BD: A, CR: A]),
    flag!("previous-image", Str, PreviousImage, Some(e::PREVIOUS_IMAGE), "<image>", "reference to previous image",
        [AN: A, RB: R::since(0, 11), CR: A]),
    flag!("process-type", Str, ProcessType, Some(e::PROCESS_TYPE), "", "default process type",
        [EP: A, CR: A]),
    flag!("project-metadata", Str, ProjectMetadata, Some(e::PROJECT_METADATA_PATH), "<layers>/project-metadata.toml", "path to project-metadata.toml",
        [EP: A, CR: A]),
    flag!("report", Str, Report, Some(e::REPORT_PATH), "<layers>/report.toml", "path to report.toml",
        [EP: A, RB: A, CR: A]),
    flag!("run", Str, Run, Some(e::RUN_PATH), "/cnb/run.toml", "path to run.toml",
        [AN: R::since(0, 12), DT: R::since(0, 12), RS: R::since(0, 14), EP: R::since(0, 12), CR: R::since(0, 12)]),
    flag!("run-image", Str, RunImage, Some(e::RUN_IMAGE), "", "reference to run image",
        [AN: A, EP: A, RB: A, CR: A]),
    flag!("skip-layers", Bool, SkipLayers, Some(e::SKIP_LAYERS), "false", "do not provide layer metadata to buildpacks",
        [AN: R::since(0, 9), RS: A]),
    flag!("skip-restore", Bool, SkipRestore, Some(e::SKIP_RESTORE), "false", "do not restore layers or layer metadata",
        [CR: A]),
    flag!("stack", Str, Stack, Some(e::STACK_PATH), "/cnb/stack.toml", "path to stack.toml",
        [AN: R::before(0, 12), EP: R::before(0, 12), CR: A]),
    flag!("system", Str, System, Some(e::SYSTEM_PATH), "/cnb/system.toml", "path to system.toml",
        [DT: R::since(0, 15), CR: R::since(0, 15)]),
    flag!("tag", List, Tag, None, "", "additional tags (repeatable)",
        [AN: A, CR: A]),
    flag!("uid", Int, Uid, Some(e::USER_ID), "0", "UID of user in the stack's build and run images",
        [AN: A, RS: A, EX: A, EP: A, RB: A, CR: A]),
    flag!("version", Bool, Version, None, "false", "show version",
        [AN: A, DT: A, RS: A, EX: A, BD: A, EP: A, RB: A, CR: A]),
];

/// The flag `name` if `phase` accepts it at `api` (G-08: otherwise it is an unknown flag).
pub fn lookup(phase: Phase, api: PlatformApi, name: &str) -> Option<&'static FlagDef> {
    FLAGS
        .iter()
        .find(|f| f.name == name && f.accepted(phase, api))
}

/// Every flag `phase` accepts at `api`, sorted by name.
pub fn flags_for(phase: Phase, api: PlatformApi) -> Vec<&'static FlagDef> {
    FLAGS.iter().filter(|f| f.accepted(phase, api)).collect()
}

/// Go-style usage text for `phase` at `api` (printed on a parse error, to stderr).
pub fn usage(phase: Phase, api: PlatformApi) -> String {
    let mut out = format!("Usage of {}:\n", phase.name());
    for f in flags_for(phase, api) {
        let ty = match f.kind {
            FlagKind::Bool => "",
            FlagKind::String | FlagKind::List => " string",
            FlagKind::Int => " int",
            FlagKind::Duration => " duration",
        };
        out.push_str(&format!("  -{}{}\n    \t{}", f.name, ty, f.usage));
        if !f.default.is_empty() && f.default != "false" {
            out.push_str(&format!(" (default {})", f.default));
        }
        if let Some(env) = f.env {
            out.push_str(&format!(" [${env}]"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ALL_PHASES: [Phase; 8] = [AN, DT, RS, EX, BD, EP, RB, CR];

    #[test]
    fn table_is_sorted_and_unique() {
        for w in FLAGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn gates_follow_the_platform_api() {
        let p = PlatformApi::new;
        // AN-I5 / G-18: -insecure-registry only from 0.13.
        assert!(lookup(AN, p(0, 12), "insecure-registry").is_none());
        assert!(lookup(AN, p(0, 13), "insecure-registry").is_some());
        // AN-I11: -stack before 0.12, -run from 0.12.
        assert!(lookup(AN, p(0, 11), "stack").is_some());
        assert!(lookup(AN, p(0, 12), "stack").is_none());
        assert!(lookup(AN, p(0, 11), "run").is_none());
        assert!(lookup(AN, p(0, 12), "run").is_some());
        // creator keeps -stack at every API (CR-I1).
        assert!(lookup(CR, p(0, 15), "stack").is_some());
        // DT-I1, DT-I13, RS-I9, RB-I4, EX-I3.
        assert!(lookup(DT, p(0, 9), "analyzed").is_none());
        assert!(lookup(DT, p(0, 10), "analyzed").is_some());
        assert!(lookup(DT, p(0, 14), "system").is_none());
        assert!(lookup(DT, p(0, 15), "system").is_some());
        assert!(lookup(RS, p(0, 13), "run").is_none());
        assert!(lookup(RS, p(0, 14), "run").is_some());
        assert!(lookup(RB, p(0, 10), "previous-image").is_none());
        assert!(lookup(RB, p(0, 11), "previous-image").is_some());
        assert!(lookup(EX, p(0, 11), "kind").is_none());
        assert!(lookup(EX, p(0, 12), "kind").is_some());
        // builder -analyzed from 0.12 (BD-I1); rebaser has no -layers.
        assert!(lookup(BD, p(0, 11), "analyzed").is_none());
        assert!(lookup(BD, p(0, 12), "analyzed").is_some());
        assert!(lookup(RB, p(0, 15), "layers").is_none());
    }

    #[test]
    fn every_phase_has_the_global_flags() {
        for ph in ALL_PHASES {
            for api in cnb_spec::api::SUPPORTED_PLATFORM_APIS {
                for name in ["version", "log-level", "no-color"] {
                    assert!(
                        lookup(ph, *api, name).is_some(),
                        "{} {api} {name}",
                        ph.name()
                    );
                }
            }
        }
    }

    #[test]
    fn usage_lists_flags() {
        let u = usage(DT, PlatformApi::new(0, 15));
        assert!(u.starts_with("Usage of detector:\n"));
        assert!(u.contains("  -app string\n"));
        assert!(u.contains("[$CNB_APP_DIR]"));
        assert!(!u.contains("-tag"));
    }
}
