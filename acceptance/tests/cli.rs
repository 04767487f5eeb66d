//! The phase command-line contract, driven through the built binaries (checklist §1: G-04, G-05, G-07,
//! G-08, G-13, G-20; issue 2 "done when"). Runs against `$CNB_LIFECYCLE_BIN_DIR` when set; the tests that
//! rely on our debug aid `CNB_LIFECYCLE_PRINT_INPUTS` only run against this lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use cnb_acceptance::harness::{
    self, bin_path, phase, running_as_root, ContainerRoot, ALL_BINARIES,
};

const PHASES: [&str; 8] = [
    "analyzer", "detector", "restorer", "extender", "builder", "exporter", "rebaser", "creator",
];

/// Whether the binaries under test are this lifecycle (not e.g. the reference pointed at by
/// `CNB_LIFECYCLE_BIN_DIR`): our hidden inputs dump is only in ours.
fn ours() -> bool {
    let out = phase("detector").platform_api("0.15").arg("-version").run();
    out.stdout.trim() == env!("CARGO_PKG_VERSION")
        || out
            .stdout
            .trim()
            .starts_with(concat!(env!("CARGO_PKG_VERSION"), "+"))
}

/// Resolved inputs as printed by `CNB_LIFECYCLE_PRINT_INPUTS=1`.
fn inputs(name: &str, api: &str, args: &[&str]) -> harness::Output {
    let out = phase(name)
        .platform_api(api)
        .env("CNB_LIFECYCLE_PRINT_INPUTS", "1")
        .args(args.iter().copied())
        .run();
    out.assert_success();
    out
}

#[test]
fn every_binary_prints_its_version() {
    // G-04
    for name in ALL_BINARIES {
        let out = phase(name).platform_api("0.15").arg("-version").run();
        out.assert_success();
        let v = out.stdout.trim();
        let semver = v.split(['+', '-']).next().unwrap_or("");
        assert!(
            semver.split('.').count() == 3 && semver.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{name}: not a version: {v:?}"
        );
    }
}

#[test]
fn missing_platform_api_exits_11() {
    // G-05 [ACC]: checked before anything else, even -version.
    for name in ALL_BINARIES {
        for args in [vec!["-version"], vec![]] {
            if name == "launcher" && args.is_empty() {
                continue; // the launcher without arguments is the launch helper's to test
            }
            let out = phase(name).args(args.clone()).run();
            out.assert_code(11)
                .assert_contains("please set 'CNB_PLATFORM_API'");
        }
        let out = phase(name).platform_api("  ").arg("-version").run();
        out.assert_code(11)
            .assert_contains("please set 'CNB_PLATFORM_API'");
    }
}

#[test]
fn unsupported_platform_api_exits_11() {
    // G-05
    for name in ALL_BINARIES {
        for api in ["0.6", "0.16", "1.0", "banana"] {
            let out = phase(name).platform_api(api).arg("-version").run();
            out.assert_code(11);
        }
    }
    phase("detector")
        .platform_api("0.6")
        .run()
        .assert_code(11)
        .assert_contains("platform API version '0.6' is incompatible with the lifecycle");
}

#[test]
fn unknown_flag_prints_usage_and_exits_2() {
    // G-07
    for name in PHASES {
        let out = phase(name).platform_api("0.15").arg("-bogus").run();
        out.assert_code(2)
            .assert_contains("flag provided but not defined: -bogus");
        assert!(
            out.all().contains("-log-level"),
            "{name}: no usage\n{}",
            out.dump()
        );
    }
    // A non-bool flag with no value is a parse error too.
    phase("detector")
        .platform_api("0.15")
        .arg("-app")
        .run()
        .assert_code(2);
    // A bad boolean value as well.
    phase("analyzer")
        .platform_api("0.15")
        .args(["-daemon=maybe", "img"])
        .run()
        .assert_code(2);
}

#[test]
fn flags_outside_their_platform_api_are_unknown() {
    // G-08, AN-I5 (-insecure-registry from 0.13), DT-I13 (-system from 0.15)
    phase("analyzer")
        .platform_api("0.12")
        .args(["-insecure-registry", "r.io", "img"])
        .run()
        .assert_code(2)
        .assert_contains("flag provided but not defined: -insecure-registry");
    phase("detector")
        .platform_api("0.14")
        .args(["-system", "/s.toml"])
        .run()
        .assert_code(2);
    if ours() {
        inputs("analyzer", "0.13", &["-insecure-registry", "r.io", "img"])
            .assert_contains("\"r.io\"");
        inputs("detector", "0.15", &["-system", "/s.toml"])
            .assert_contains("system_path: \"/s.toml\"");
    }
}

#[test]
fn equals_and_space_forms_resolve_alike() {
    // G-07, issue 2: `detector -app=/x` and `detector -app /x` resolve alike.
    if !ours() {
        return;
    }
    let a = inputs("detector", "0.15", &["-app=/x"]);
    let b = inputs("detector", "0.15", &["-app", "/x"]);
    let c = inputs("detector", "0.15", &["--app", "/x"]);
    assert!(a.stdout.contains("app_dir: \"/x\""), "{}", a.dump());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout, c.stdout);
}

#[test]
fn layers_defaults_follow_the_final_layers_flag() {
    // G-10, G-12
    if !ours() {
        return;
    }
    let out = inputs("detector", "0.15", &["-layers=/l1", "-layers", "/l2/../l3"]);
    out.assert_contains("layers_dir: \"/l3\"")
        .assert_contains("group_path: \"/l2/../l3/group.toml\"")
        .assert_contains("generated_dir: \"/l3/generated\"");
    let env = phase("builder")
        .platform_api("0.15")
        .env("CNB_LIFECYCLE_PRINT_INPUTS", "1")
        .env("CNB_LAYERS_DIR", "/from-env")
        .env("CNB_PLAN_PATH", "/plan.toml")
        .run();
    env.assert_success()
        .assert_contains("group_path: \"/from-env/group.toml\"")
        .assert_contains("plan_path: \"/plan.toml\"");
}

#[test]
fn order_defaults_to_layers_order_toml_when_present() {
    // G-11
    if !ours() {
        return;
    }
    let root = ContainerRoot::new();
    let layers = root.layers();
    let l = layers.to_str().unwrap();
    inputs("detector", "0.15", &["-layers", l]).assert_contains("order_path: \"/cnb/order.toml\"");
    root.write("layers/order.toml", "");
    let (uid, gid) = harness::build_ids();
    root.chown(uid, gid);
    inputs("detector", "0.15", &["-layers", l])
        .assert_contains(&format!("order_path: \"{l}/order.toml\""));
}

#[test]
fn flag_like_positionals_are_warned_about() {
    // G-07: parsing stops at the first positional.
    phase("analyzer")
        .platform_api("0.15")
        .args(["img", "-tag", "other"])
        .run()
        .assert_code(3)
        .assert_contains("unconsumed flag-like positional arg");
}

#[test]
fn wrong_positionals_exit_3() {
    // AN-I15, DT-I15, RS-I12, BD-I7, EP-I15
    phase("analyzer")
        .platform_api("0.15")
        .run()
        .assert_code(3)
        .assert_contains("failed to parse arguments: received 0 arguments, but expected 1");
    phase("detector")
        .platform_api("0.15")
        .arg("extra")
        .run()
        .assert_code(3)
        .assert_contains("received unexpected arguments");
    phase("exporter")
        .platform_api("0.15")
        .run()
        .assert_code(3)
        .assert_contains("at least one image argument is required");
}

#[test]
fn invalid_log_level_exits_1() {
    // G-13
    phase("detector")
        .platform_api("0.15")
        .arg("-log-level=loud")
        .run()
        .assert_code(1);
    phase("builder")
        .platform_api("0.15")
        .env("CNB_LOG_LEVEL", "loud")
        .run()
        .assert_code(1);
}

#[test]
fn layout_is_guarded_by_experimental_mode() {
    // G-15 [ACC]
    let root = ContainerRoot::new();
    root.phase("analyzer")
        .args(["-layout", "-layout-dir", "/tmp/x", "img"])
        .run()
        .assert_code(1)
        .assert_contains("experimental features are disabled by CNB_EXPERIMENTAL_MODE=error");
}

#[test]
fn phases_fail_with_a_clear_error() {
    // Every phase, given valid arguments in an empty container root, either runs or fails with an
    // `ERROR: failed to ...` line and a non-zero code — never a panic. Phases whose logic has not landed
    // say so ("not yet implemented") and exit 1.
    let root = ContainerRoot::new();
    let args: &[(&str, &[&str])] = &[
        ("analyzer", &["img"]),
        ("detector", &[]),
        ("restorer", &[]),
        ("extender", &[]),
        ("builder", &[]),
        ("exporter", &["img"]),
        ("rebaser", &["img"]),
        ("creator", &["img"]),
    ];
    for (name, a) in args {
        let out = root
            .phase(name)
            .args(a.iter().copied())
            .timeout(std::time::Duration::from_secs(60))
            .run();
        assert!(
            !out.contains("panicked at"),
            "{name} panicked\n{}",
            out.dump()
        );
        if out.success() {
            continue;
        }
        out.assert_contains("ERROR: failed to ");
        if out.contains("not yet implemented") {
            out.assert_code(1);
        }
    }
}

#[test]
fn detector_and_builder_refuse_root() {
    // G-20 [ACC]
    if !running_as_root() {
        return;
    }
    let root = ContainerRoot::new();
    root.phase("detector")
        .as_current_user()
        .run()
        .assert_code(1)
        .assert_contains("failed to detect: refusing to run as root");
    root.phase("builder")
        .as_current_user()
        .run()
        .assert_code(1)
        .assert_contains("failed to build: refusing to run as root");
}

/// Whether an ELF file has a `PT_INTERP` program header (i.e. needs a dynamic loader).
fn has_interpreter(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(b[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (entsize, num) = (u16_at(0x36), u16_at(0x38));
    (0..num).any(|i| u32_at(phoff + i * entsize) == 3)
}

#[test]
fn every_binary_is_static() {
    // Issue 2: phases run inside build, run and app images with no libc.
    for name in ALL_BINARIES {
        let p = bin_path(name);
        let real = std::fs::canonicalize(&p).unwrap();
        assert!(
            !has_interpreter(&real),
            "{name} is dynamically linked (has PT_INTERP)"
        );
    }
}

#[test]
fn every_binary_runs_in_an_empty_chroot() {
    if !running_as_root() {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    for name in ALL_BINARIES {
        std::fs::copy(bin_path(name), jail.path().join(name)).unwrap();
    }
    for name in ALL_BINARIES {
        let out = std::process::Command::new("chroot")
            .arg(jail.path())
            .arg(format!("/{name}"))
            .arg("-version")
            .env_clear()
            .env("PATH", harness::DEFAULT_PATH)
            .env("CNB_PLATFORM_API", "0.15")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} failed in an empty chroot: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn one_multicall_binary_with_the_phases_as_symlinks() {
    // G-01, G-02, G-03: /cnb/lifecycle/lifecycle + phase symlinks; the launcher is its own binary.
    let dir = harness::bin_dir();
    for name in PHASES {
        let link = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(link.file_type().is_symlink(), "{name} is not a symlink");
        assert_eq!(
            std::fs::read_link(dir.join(name)).unwrap(),
            Path::new("lifecycle")
        );
    }
    let launcher = std::fs::symlink_metadata(dir.join("launcher")).unwrap();
    assert!(launcher.is_file(), "launcher must be a separate binary");
    let lifecycle = std::fs::metadata(dir.join("lifecycle")).unwrap();
    assert!(
        launcher.len() < lifecycle.len(),
        "launcher ({}) should be smaller than lifecycle ({})",
        launcher.len(),
        lifecycle.len()
    );

    let lc = || phase("lifecycle").platform_api("0.15");
    let out = lc().run();
    out.assert_code(3)
        .assert_contains("failed to parse arguments");
    let out = lc().arg("frobnicate").run();
    out.assert_code(3)
        .assert_contains("unknown phase: frobnicate");
    let out = lc().arg("-version").run();
    out.assert_success();
    let version = phase("detector")
        .platform_api("0.15")
        .arg("-version")
        .run()
        .stdout;
    assert_eq!(out.stdout, version);
    // Subcommand form: verbs as the reference, flags after the verb.
    let root = ContainerRoot::new();
    for verb in [
        "detect", "analyze", "restore", "build", "export", "rebase", "create", "extend",
    ] {
        let out = root.phase("lifecycle").arg(verb).arg("-version").run();
        out.assert_success();
        assert_eq!(out.stdout, version, "lifecycle {verb} -version");
    }
    // The same binary under a phase name runs that phase: an unknown flag prints that phase's usage.
    let out = root
        .phase("lifecycle")
        .args(["detect", "-no-such-flag"])
        .run();
    out.assert_code(2);
    let direct = root.phase("detector").arg("-no-such-flag").run();
    direct.assert_code(2);
    assert_eq!(out.stderr, direct.stderr);
}

#[test]
fn lifecycle_descriptor_is_a_hidden_subcommand() {
    if !ours() {
        return;
    }
    let out = phase("lifecycle").arg("lifecycle-descriptor").run();
    out.assert_success();
    let v: toml::Table = out.stdout.parse().unwrap();
    assert!(v["apis"]["platform"]["supported"]
        .as_array()
        .unwrap()
        .contains(&toml::Value::String("0.15".into())));
}
