#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::time::Duration;

fn api(minor: u16) -> PlatformApi {
    PlatformApi::new(0, minor)
}

fn ctx(vars: &[(&str, &str)]) -> Context {
    Context::new(vars.iter().map(|(k, v)| (*k, *v)), "/cwd")
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn ok(phase: Phase, minor: u16, a: &[&str], c: &Context) -> Resolved {
    match resolve(phase, api(minor), &args(a), c) {
        Ok(r) => r,
        Err(CliError::Parse(e)) => panic!("parse error: {e}"),
        Err(CliError::Fail(f)) => panic!("failure: {f}"),
    }
}

fn fail(phase: Phase, minor: u16, a: &[&str], c: &Context) -> Failure {
    match resolve(phase, api(minor), &args(a), c) {
        Err(CliError::Fail(f)) => f,
        other => panic!("expected failure, got {other:?}"),
    }
}

fn parse_err(phase: Phase, minor: u16, a: &[&str]) -> ParseError {
    match resolve(phase, api(minor), &args(a), &ctx(&[])) {
        Err(CliError::Parse(e)) => e,
        other => panic!("expected parse error, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let i = ok(Phase::Detector, 15, &[], &ctx(&[])).inputs;
    assert_eq!(i.app_dir, Path::new("/workspace"));
    assert_eq!(i.layers_dir, Path::new("/layers"));
    assert_eq!(i.group_path, Path::new("/layers/group.toml"));
    assert_eq!(i.plan_path, Path::new("/layers/plan.toml"));
    assert_eq!(i.analyzed_path, Path::new("/layers/analyzed.toml"));
    assert_eq!(i.generated_dir, Path::new("/layers/generated"));
    assert_eq!(i.buildpacks_dir, Path::new("/cnb/buildpacks"));
    assert_eq!(i.extensions_dir, Path::new("/cnb/extensions"));
    assert_eq!(i.build_config_dir, Path::new("/cnb/build-config"));
    assert_eq!(i.platform_dir, Path::new("/platform"));
    assert_eq!(i.run_path, Path::new("/cnb/run.toml"));
    assert_eq!(i.system_path, Path::new("/cnb/system.toml"));
    assert_eq!(i.order_path, Path::new("/cnb/order.toml"));
    assert_eq!(i.log_level, LogLevel::Info);
    assert_eq!(i.exec_env, "production");
    assert_eq!(i.kaniko_cache_ttl, Duration::from_secs(14 * 24 * 3600));
    assert_eq!(i.experimental_mode, ExperimentalMode::Error);
    assert_eq!((i.uid, i.gid), (0, 0));
}

#[test]
fn equals_and_space_forms_resolve_alike() {
    // Issue 2 "done when": detector -app=/x and -app /x.
    let c = ctx(&[]);
    let a = ok(Phase::Detector, 15, &["-app=/x"], &c).inputs;
    let b = ok(Phase::Detector, 15, &["-app", "/x"], &c).inputs;
    assert_eq!(a.app_dir, Path::new("/x"));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn precedence_flag_env_default() {
    // G-08
    let c = ctx(&[("CNB_APP_DIR", "/from-env"), ("CNB_LOG_LEVEL", "warn")]);
    assert_eq!(
        ok(Phase::Builder, 15, &[], &c).inputs.app_dir,
        Path::new("/from-env")
    );
    let i = ok(
        Phase::Builder,
        15,
        &["-app", "/from-flag", "-log-level=debug"],
        &c,
    )
    .inputs;
    assert_eq!(i.app_dir, Path::new("/from-flag"));
    assert_eq!(i.log_level, LogLevel::Debug);
    // Empty env counts as unset.
    let c = ctx(&[("CNB_APP_DIR", "")]);
    assert_eq!(
        ok(Phase::Builder, 15, &[], &c).inputs.app_dir,
        Path::new("/workspace")
    );
    // Last flag wins.
    let i = ok(Phase::Builder, 15, &["-app=/a", "-app=/b"], &ctx(&[])).inputs;
    assert_eq!(i.app_dir, Path::new("/b"));
}

#[test]
fn layers_placeholders_follow_the_final_layers() {
    // G-10
    let i = ok(
        Phase::Detector,
        15,
        &["-layers=/l1", "-layers", "/l2"],
        &ctx(&[]),
    )
    .inputs;
    assert_eq!(i.group_path, Path::new("/l2/group.toml"));
    assert_eq!(i.plan_path, Path::new("/l2/plan.toml"));
    assert_eq!(i.generated_dir, Path::new("/l2/generated"));
    let c = ctx(&[
        ("CNB_LAYERS_DIR", "/env-layers"),
        ("CNB_GROUP_PATH", "/g.toml"),
    ]);
    let i = ok(Phase::Exporter, 15, &["img"], &c).inputs;
    assert_eq!(i.report_path, Path::new("/env-layers/report.toml"));
    assert_eq!(
        i.project_metadata_path,
        Path::new("/env-layers/project-metadata.toml")
    );
    assert_eq!(i.extended_dir, Path::new("/env-layers/extended"));
    assert_eq!(i.group_path, Path::new("/g.toml"));
    // Rebaser has no -layers but its report lives under CNB_LAYERS_DIR (RB-I5).
    let i = ok(Phase::Rebaser, 15, &["img"], &c).inputs;
    assert_eq!(i.report_path, Path::new("/env-layers/report.toml"));
    // A placeholder given explicitly is honoured, like the reference.
    let i = ok(
        Phase::Builder,
        15,
        &["-layers=/L", "-group=<layers>/mine.toml"],
        &ctx(&[]),
    )
    .inputs;
    assert_eq!(i.group_path, Path::new("/L/mine.toml"));
}

#[test]
fn order_prefers_layers_order_toml() {
    // G-11
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().to_str().unwrap();
    let c = ctx(&[]);
    let i = ok(Phase::Detector, 15, &["-layers", layers], &c).inputs;
    assert_eq!(i.order_path, Path::new("/cnb/order.toml"));
    std::fs::write(dir.path().join("order.toml"), "").unwrap();
    let i = ok(Phase::Detector, 15, &["-layers", layers], &c).inputs;
    assert_eq!(i.order_path, dir.path().join("order.toml"));
    let i = ok(
        Phase::Detector,
        15,
        &["-layers", layers, "-order", "/o.toml"],
        &c,
    )
    .inputs;
    assert_eq!(i.order_path, Path::new("/o.toml"));
    let c = ctx(&[("CNB_ORDER_PATH", "/env/order.toml")]);
    let i = ok(Phase::Detector, 15, &["-layers", layers], &c).inputs;
    assert_eq!(i.order_path, Path::new("/env/order.toml"));
}

#[test]
fn directories_are_made_absolute() {
    // G-12
    let c = ctx(&[("CNB_CACHE_DIR", "cache/../c2")]);
    let i = ok(
        Phase::Restorer,
        15,
        &["-layers", "./l", "-generated", "gen"],
        &c,
    )
    .inputs;
    assert_eq!(i.layers_dir, Path::new("/cwd/l"));
    assert_eq!(i.generated_dir, Path::new("/cwd/gen"));
    assert_eq!(i.cache_dir.as_deref(), Some(Path::new("/cwd/c2")));
    // Files are joined to the (relative) layers dir before it is made absolute, as in the reference.
    assert_eq!(i.group_path, Path::new("./l/group.toml"));
    assert_eq!(
        absolute(Path::new("/a"), Path::new("../../x/./y/")),
        Path::new("/x/y")
    );
    assert_eq!(absolute(Path::new("/a"), Path::new("")), Path::new(""));
}

#[test]
fn flags_outside_their_api_range_are_unknown() {
    // G-08, AN-I5
    assert_eq!(
        parse_err(Phase::Analyzer, 12, &["-insecure-registry", "r", "img"]),
        ParseError::Undefined("insecure-registry".into())
    );
    let r = ok(
        Phase::Analyzer,
        13,
        &["-insecure-registry", "r1", "-insecure-registry=r2", "img"],
        &ctx(&[]),
    );
    assert_eq!(r.inputs.insecure_registries, vec!["r1", "r2"]);
    assert_eq!(
        parse_err(Phase::Detector, 14, &["-system=/s"]),
        ParseError::Undefined("system".into())
    );
    assert_eq!(
        parse_err(Phase::Detector, 15, &["-tag=x"]),
        ParseError::Undefined("tag".into())
    );
    assert_eq!(
        parse_err(Phase::Analyzer, 15, &["-stack=/s", "img"]),
        ParseError::Undefined("stack".into())
    );
}

#[test]
fn insecure_registries_combine_env_and_flags() {
    // G-09, G-18
    let c = ctx(&[("CNB_INSECURE_REGISTRIES", "a.io, b.io,")]);
    let i = ok(
        Phase::Exporter,
        15,
        &["-insecure-registry", "c.io", "img"],
        &c,
    )
    .inputs;
    assert_eq!(i.insecure_registries, vec!["a.io", "b.io", "c.io"]);
}

#[test]
fn env_booleans_use_go_parse_bool() {
    // G-09
    for (v, want) in [
        ("1", true),
        ("T", true),
        ("True", true),
        ("yes", false),
        ("0", false),
        ("", false),
    ] {
        let c = ctx(&[("CNB_USE_DAEMON", v)]);
        assert_eq!(
            ok(Phase::Analyzer, 15, &["img"], &c).inputs.use_daemon,
            want,
            "{v}"
        );
    }
    let c = ctx(&[("CNB_USE_DAEMON", "true")]);
    assert!(
        !ok(Phase::Analyzer, 15, &["-daemon=false", "img"], &c)
            .inputs
            .use_daemon
    );
}

#[test]
fn env_ints_and_durations() {
    // G-09
    let c = ctx(&[
        ("CNB_USER_ID", "1001"),
        ("CNB_GROUP_ID", ""),
        ("CNB_KANIKO_CACHE_TTL", "1h"),
    ]);
    let i = ok(Phase::Extender, 15, &[], &c).inputs;
    assert_eq!((i.uid, i.gid), (1001, 0));
    assert_eq!(i.kaniko_cache_ttl, Duration::from_secs(3600));
    let i = ok(
        Phase::Extender,
        15,
        &["-uid=7", "-kaniko-cache-ttl", "2m"],
        &c,
    )
    .inputs;
    assert_eq!(i.uid, 7);
    assert_eq!(i.kaniko_cache_ttl, Duration::from_secs(120));
    let c = ctx(&[("CNB_KANIKO_CACHE_TTL", "bogus")]);
    assert_eq!(
        ok(Phase::Extender, 15, &[], &c).inputs.kaniko_cache_ttl,
        Duration::from_secs(336 * 3600)
    );
    assert!(matches!(
        parse_err(Phase::Extender, 15, &["-uid=x"]),
        ParseError::InvalidValue { .. }
    ));
    assert_eq!(
        fail(Phase::Extender, 15, &["-uid=-1"], &ctx(&[])).code,
        exit::PARSE_ERROR
    );
}

/// Issue 14: an invalid `CNB_USER_ID`/`CNB_GROUP_ID` (or `-uid`/`-gid`) is an argument error naming the
/// value, in every phase that takes them; it never becomes uid/gid 0. Deliberately stricter than the
/// reference, which reads invalid ints as 0 (G-09).
#[test]
fn invalid_ids_are_rejected_not_root() {
    let takes_ids = [
        Phase::Analyzer,
        Phase::Restorer,
        Phase::Exporter,
        Phase::Creator,
        Phase::Rebaser,
        Phase::Extender,
    ];
    for phase in takes_ids {
        let pos: &[&str] = match phase {
            Phase::Analyzer | Phase::Exporter | Phase::Creator | Phase::Rebaser => &["img"],
            _ => &[],
        };
        for (k, v) in [
            ("CNB_USER_ID", "abc"),
            ("CNB_USER_ID", "99999999999"),
            ("CNB_USER_ID", "4294967295"),
            ("CNB_GROUP_ID", "-1"),
            ("CNB_GROUP_ID", "1000x"),
        ] {
            let f = fail(phase, 15, pos, &ctx(&[(k, v)]));
            assert_eq!(f.code, exit::INVALID_ARGS, "{phase:?} {k}={v}");
            let msg = f.to_string();
            assert!(msg.contains(k) && msg.contains(v), "{msg}");
        }
        // A valid flag wins over an invalid variable (flag > env).
        let mut args = vec!["-uid=1000", "-gid=1000"];
        args.extend(pos);
        let c = ctx(&[("CNB_USER_ID", "abc"), ("CNB_GROUP_ID", "-1")]);
        let i = ok(phase, 15, &args, &c).inputs;
        assert_eq!((i.uid, i.gid), (1000, 1000));
        for flag in ["-uid=99999999999", "-gid=-1", "-uid=4294967295"] {
            let mut args = vec![flag];
            args.extend(pos);
            assert_eq!(
                fail(phase, 15, &args, &ctx(&[])).code,
                exit::PARSE_ERROR,
                "{phase:?} {flag}"
            );
        }
    }
    // Phases without -uid ignore the variables.
    let c = ctx(&[("CNB_USER_ID", "abc")]);
    ok(Phase::Builder, 15, &[], &c);
    ok(Phase::Detector, 15, &[], &c);
}

#[test]
fn skip_restore_and_skip_layers() {
    // AN-I13, CR-I2
    let c = ctx(&[("CNB_SKIP_RESTORE", "true")]);
    assert!(ok(Phase::Analyzer, 15, &["img"], &c).inputs.skip_layers);
    let i = ok(Phase::Creator, 15, &["-skip-restore", "img"], &ctx(&[])).inputs;
    assert!(i.skip_restore && i.skip_layers);
    assert!(
        !ok(Phase::Analyzer, 8, &["img"], &ctx(&[]))
            .inputs
            .skip_layers
    );
    assert_eq!(
        parse_err(Phase::Analyzer, 8, &["-skip-layers", "img"]),
        ParseError::Undefined("skip-layers".into())
    );
}

#[test]
fn log_level() {
    // G-13
    let f = fail(Phase::Detector, 15, &["-log-level=loud"], &ctx(&[]));
    assert_eq!(f.code, exit::FAILED);
    let f = fail(Phase::Detector, 15, &[], &ctx(&[("CNB_LOG_LEVEL", "nope")]));
    assert_eq!(f.code, exit::FAILED);
    for (v, want) in [
        ("debug", LogLevel::Debug),
        ("WARN", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        assert_eq!(
            ok(Phase::Detector, 15, &["-log-level", v], &ctx(&[]))
                .inputs
                .log_level,
            want
        );
    }
    // -version wins over a bad log level (it is handled first).
    let parsed = parse_args(
        Phase::Detector,
        api(15),
        &args(&["-version", "-log-level=x"]),
    )
    .unwrap();
    assert!(
        settle(Phase::Detector, api(15), &parsed, &ctx(&[]))
            .unwrap()
            .version
    );
}

#[test]
fn positionals_per_phase() {
    // AN-I15, DT-I15, RS-I12, BD-I7, EP-I15, RB-I7, CR-I5
    let c = ctx(&[]);
    let f = fail(Phase::Analyzer, 15, &[], &c);
    assert_eq!(f.code, exit::INVALID_ARGS);
    assert_eq!(
        f.to_string(),
        "failed to parse arguments: received 0 arguments, but expected 1"
    );
    assert_eq!(
        fail(Phase::Creator, 15, &["a", "b"], &c).code,
        exit::INVALID_ARGS
    );
    assert_eq!(
        fail(Phase::Detector, 15, &["x"], &c).to_string(),
        "failed to parse arguments: received unexpected arguments"
    );
    assert_eq!(
        fail(Phase::Restorer, 15, &["x"], &c).to_string(),
        "failed to parse arguments: received unexpected Args"
    );
    assert_eq!(
        fail(Phase::Exporter, 15, &[], &c).to_string(),
        "failed to parse arguments: at least one image argument is required"
    );
    let i = ok(Phase::Exporter, 15, &["img", "t1", "t2"], &c).inputs;
    assert_eq!(i.output_image(), Some("img"));
    assert_eq!(i.additional_tags, vec!["t1", "t2"]);
    let i = ok(Phase::Analyzer, 15, &["-tag", "t1", "-tag=t2", "img"], &c).inputs;
    assert_eq!(i.output_images, vec!["img"]);
    assert_eq!(i.destination_images(), vec!["img", "t1", "t2"]);
    // Flag-like positionals after the first positional are positionals.
    let parsed = parse_args(Phase::Analyzer, api(15), &args(&["img", "-tag", "x"])).unwrap();
    assert_eq!(
        parsed.flag_like_positionals().collect::<Vec<_>>(),
        vec!["-tag"]
    );
}

#[test]
fn previous_image_defaults_to_output_image() {
    // AN-01, RB-I4
    let c = ctx(&[]);
    assert_eq!(
        ok(Phase::Analyzer, 15, &["img"], &c)
            .inputs
            .previous_image
            .as_deref(),
        Some("img")
    );
    let i = ok(Phase::Analyzer, 15, &["-previous-image", "prev", "img"], &c).inputs;
    assert_eq!(i.previous_image.as_deref(), Some("prev"));
    let c = ctx(&[("CNB_PREVIOUS_IMAGE", "envprev")]);
    assert_eq!(
        ok(Phase::Creator, 15, &["img"], &c)
            .inputs
            .previous_image
            .as_deref(),
        Some("envprev")
    );
    assert_eq!(
        ok(Phase::Exporter, 15, &["img"], &c)
            .inputs
            .previous_image
            .as_deref(),
        Some("envprev")
    );
}

#[test]
fn exporter_and_rebaser_run_image_rules() {
    // EP-I13, RB-I6
    let f = fail(Phase::Exporter, 15, &["-run-image", "r", "img"], &ctx(&[]));
    assert_eq!(
        f.to_string(),
        "failed to resolve inputs: -run-image is unsupported"
    );
    assert_eq!(f.code, exit::INVALID_ARGS);
    let c = ctx(&[("CNB_RUN_IMAGE", "r")]);
    assert!(resolve(
        Phase::Exporter,
        api(15),
        &args(&["-run-image", "r", "img"]),
        &c
    )
    .is_ok());
    let f = fail(Phase::Exporter, 15, &["-image", "r", "img"], &ctx(&[]));
    assert_eq!(
        f.to_string(),
        "failed to resolve inputs: -image is unsupported"
    );
    let f = fail(
        Phase::Rebaser,
        15,
        &["-image", "a", "-run-image", "b", "img"],
        &ctx(&[]),
    );
    assert!(f
        .to_string()
        .contains("supply only one of -run-image or (deprecated) -image"));
    let i = ok(Phase::Rebaser, 15, &["-image", "a", "img"], &ctx(&[])).inputs;
    assert_eq!(i.run_image.as_deref(), Some("a"));
}

#[test]
fn cache_warnings() {
    // RS-01, AN-06, AN-10
    let r = ok(Phase::Restorer, 15, &[], &ctx(&[]));
    assert_eq!(
        r.warnings,
        vec!["No cached data will be used, no cache specified."]
    );
    assert!(ok(Phase::Restorer, 15, &["-cache-dir=/c"], &ctx(&[]))
        .warnings
        .is_empty());
    let r = ok(
        Phase::Analyzer,
        15,
        &["-launch-cache", "/lc", "img"],
        &ctx(&[]),
    );
    assert_eq!(
        r.warnings,
        vec!["Ignoring -launch-cache, only intended for use with -daemon"]
    );
    let r = ok(
        Phase::Analyzer,
        15,
        &["-launch-cache", "/lc", "-daemon", "img"],
        &ctx(&[]),
    );
    assert!(r.warnings.is_empty());
    let r = ok(
        Phase::Analyzer,
        15,
        &["img"],
        &ctx(&[("CNB_PARALLEL_EXPORT", "true")]),
    );
    assert!(r.warnings[0].starts_with("Parallel export has been enabled"));
}

#[test]
fn layout_is_experimental() {
    // G-15, AN-I8
    let f = fail(Phase::Analyzer, 15, &["-layout", "img"], &ctx(&[]));
    assert_eq!(f.code, exit::FAILED);
    assert_eq!(
        f.to_string(),
        "experimental features are disabled by CNB_EXPERIMENTAL_MODE=error"
    );
    let r = ok(
        Phase::Analyzer,
        15,
        &["-layout", "img"],
        &ctx(&[("CNB_EXPERIMENTAL_MODE", "warn")]),
    );
    assert_eq!(
        r.warnings,
        vec!["Platform requested experimental feature 'export to OCI layout format'"]
    );
    let c = ctx(&[
        ("CNB_EXPERIMENTAL_MODE", "quiet"),
        ("CNB_USE_LAYOUT", "true"),
        ("CNB_LAYOUT_DIR", "/lay"),
    ]);
    let r = ok(Phase::Exporter, 15, &["img"], &c);
    assert!(r.warnings.iter().all(|w| !w.contains("experimental")));
    assert!(r.inputs.use_layout);
    assert_eq!(r.inputs.layout_dir.as_deref(), Some(Path::new("/lay")));
    assert_eq!(
        ExperimentalMode::from_env_value(Some("silent")),
        ExperimentalMode::Quiet
    );
    assert_eq!(
        ExperimentalMode::from_env_value(Some("other")),
        ExperimentalMode::Warn
    );
}

#[test]
fn extend_kind() {
    // EX-I3
    assert_eq!(
        ok(Phase::Extender, 15, &[], &ctx(&[])).inputs.extend_kind,
        ExtendKind::Build
    );
    assert_eq!(
        ok(Phase::Extender, 15, &["-kind=run"], &ctx(&[]))
            .inputs
            .extend_kind,
        ExtendKind::Run
    );
    let c = ctx(&[("CNB_EXTEND_KIND", "run")]);
    assert_eq!(
        ok(Phase::Extender, 11, &[], &c).inputs.extend_kind,
        ExtendKind::Run
    );
    assert_eq!(
        fail(Phase::Extender, 15, &["-kind=both"], &ctx(&[])).code,
        exit::INVALID_ARGS
    );
}

#[test]
fn platform_api_check() {
    // G-05
    let f = crate::cli::platform_api(&ctx(&[])).unwrap_err();
    assert_eq!(f.code, exit::INCOMPATIBLE_PLATFORM_API);
    assert!(f.to_string().contains("please set 'CNB_PLATFORM_API'"));
    let f = crate::cli::platform_api(&ctx(&[("CNB_PLATFORM_API", "  ")])).unwrap_err();
    assert!(f.to_string().contains("please set 'CNB_PLATFORM_API'"));
    let f = crate::cli::platform_api(&ctx(&[("CNB_PLATFORM_API", "0.6")])).unwrap_err();
    assert_eq!(f.code, exit::INCOMPATIBLE_PLATFORM_API);
    assert_eq!(
        f.to_string(),
        "failed to set platform API: platform API version '0.6' is incompatible with the lifecycle"
    );
    let f = crate::cli::platform_api(&ctx(&[("CNB_PLATFORM_API", "x.y")])).unwrap_err();
    assert_eq!(f.to_string(), "failed to parse platform API 'x.y'");
    assert_eq!(
        crate::cli::platform_api(&ctx(&[("CNB_PLATFORM_API", "0.15")])).unwrap(),
        api(15)
    );
}

#[test]
fn run_with_exit_codes() {
    let run = |vars: &[(&str, &str)], a: &[&str]| {
        crate::cli::run_with(Phase::Rebaser, &args(a), &ctx(vars))
    };
    assert_eq!(run(&[], &["-version"]), exit::INCOMPATIBLE_PLATFORM_API);
    assert_eq!(
        run(&[("CNB_PLATFORM_API", "0.15")], &["-version"]),
        exit::SUCCESS
    );
    assert_eq!(
        run(&[("CNB_PLATFORM_API", "0.15")], &["-bogus"]),
        exit::PARSE_ERROR
    );
    assert_eq!(run(&[("CNB_PLATFORM_API", "0.15")], &["-h"]), exit::SUCCESS);
    assert_eq!(
        run(&[("CNB_PLATFORM_API", "0.15")], &[]),
        exit::INVALID_ARGS
    );
    assert_eq!(
        run(
            &[
                ("CNB_PLATFORM_API", "0.15"),
                ("CNB_LIFECYCLE_PRINT_INPUTS", "1")
            ],
            &["img"]
        ),
        exit::SUCCESS
    );
}

#[test]
fn image_references_are_validated() {
    // G-21
    let c = ctx(&[]);
    let f = fail(
        Phase::Analyzer,
        15,
        &["-tag", "other.io/app:t", "reg.io/app"],
        &c,
    );
    assert_eq!(f.code, exit::INVALID_ARGS);
    assert!(
        f.to_string()
            .contains("writing to multiple registries is unsupported"),
        "{f}"
    );
    assert!(resolve(
        Phase::Analyzer,
        api(15),
        &args(&["-daemon", "-tag", "other.io/app:t", "reg.io/app"]),
        &c
    )
    .is_ok());
    let f = fail(
        Phase::Exporter,
        15,
        &["reg.io/app", "reg.io/app:t", "BAD REF"],
        &c,
    );
    assert!(
        f.to_string().starts_with("failed to resolve inputs: "),
        "{f}"
    );
    let f = fail(
        Phase::Rebaser,
        15,
        &["-run-image", "no spaces", "reg.io/app"],
        &c,
    );
    assert_eq!(f.code, exit::INVALID_ARGS);
    assert!(resolve(
        Phase::Creator,
        api(15),
        &args(&["-cache-image", "reg.io/cache", "busybox"]),
        &c
    )
    .is_ok());
}
