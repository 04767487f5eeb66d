//! Bad inputs and invalid identities found in issue 14, as the real binaries see them: each was accepted
//! on main (exit 0, or uid 0, or a nonsense path) and is now a clear error with the reference's exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use cnb_acceptance::harness::{running_as_root, ContainerRoot};
use common::*;

fn group_a(root: &ContainerRoot) {
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
}

/// Every file under `layers/` with its owner, to show nothing was written (and nothing as root).
fn layers_listing(root: &ContainerRoot) -> Vec<String> {
    fn walk(p: &std::path::Path, out: &mut Vec<String>) {
        use std::os::unix::fs::MetadataExt;
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push(format!("{} {}:{}", e.path().display(), m.uid(), m.gid()));
            if m.is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.layers(), &mut out);
    out.sort();
    out
}

/// Issue 14 "invalid identities fall back to root": `CNB_USER_ID=abc`, `99999999999`, `CNB_GROUP_ID=-1`
/// (and the flags) are argument errors naming the value, in every phase that takes them, before the
/// phase touches anything. Main accepted them as uid/gid 0 (the restorer then wrote root-owned files).
#[test]
fn invalid_ids_are_argument_errors_in_every_phase() {
    let root = ContainerRoot::new();
    group_a(&root);
    let before = layers_listing(&root);
    let cases: &[(&str, &[&str])] = &[
        ("restorer", &[]),
        ("analyzer", &["app/img"]),
        ("exporter", &["app/img"]),
        ("creator", &["app/img"]),
        ("rebaser", &["app/img"]),
    ];
    for (phase, pos) in cases {
        for (k, v) in [
            ("CNB_USER_ID", "abc"),
            ("CNB_USER_ID", "99999999999"),
            ("CNB_GROUP_ID", "-1"),
        ] {
            let out = root
                .phase(phase)
                .as_current_user()
                .env(k, v)
                .args(pos.iter().map(|s| s.to_string()))
                .run();
            out.assert_code(3)
                .assert_contains(&format!("invalid {k} \"{v}\""));
        }
        for flag in ["-uid=abc", "-uid=99999999999", "-gid=-1"] {
            let out = root
                .phase(phase)
                .as_current_user()
                .arg(flag)
                .args(pos.iter().map(|s| s.to_string()))
                .run();
            out.assert_code(2)
                .assert_contains(flag.split('=').nth(1).unwrap());
        }
    }
    assert_eq!(layers_listing(&root), before, "nothing written");
}

/// Issue 14: `restorer -cache-image 'x::y'` only warned and exited 0; the reference fails to initialise
/// its cache (exit 1, `could not parse reference`). The exporter already refused it while resolving its
/// inputs (exit 3), before anything is exported.
#[test]
fn unparsable_cache_image_fails_with_exit_1() {
    let root = ContainerRoot::new();
    group_a(&root);
    root.phase("restorer")
        .arg("-cache-image=x::y")
        .run()
        .assert_code(1)
        .assert_contains("could not parse reference: x::y");
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    let out = export(&root, &["-cache-image=x::y"]);
    out.assert_code(3)
        .assert_contains("invalid image reference 'x::y'");
    assert!(
        !app_layout(&root).join("index.json").exists(),
        "nothing exported before the cache inputs were checked"
    );
}

/// Issue 14: `exporter -cache-dir <a regular file>` warned and exited 0; the reference's volume cache
/// cannot be initialised there (exit 1). The restorer fails the same way; a *missing* cache directory
/// still only warns (RS-08, tested in restore.rs).
#[test]
fn cache_dir_that_is_a_file_fails_with_exit_1() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    let file = root.write("cache-file", "not a directory");
    let flag = format!("-cache-dir={}", file.display());
    root.phase("restorer")
        .arg(&flag)
        .run()
        .assert_code(1)
        .assert_contains(&format!("'{}' is not a directory", file.display()));
    export(&root, &[&flag])
        .assert_code(1)
        .assert_contains("failed to initialize cache")
        .assert_contains(&format!("'{}' is not a directory", file.display()));
    assert_eq!(root.read("cache-file"), "not a directory");
}

fn inline_bp(root: &ContainerRoot, api: &str, build: &str) {
    let dir = "cnb/buildpacks/bp_a/1.0";
    root.write(
        format!("{dir}/buildpack.toml"),
        format!("api = \"{api}\"\n[buildpack]\nid = \"bp/a\"\nversion = \"1.0\"\n"),
    );
    root.write_executable(format!("{dir}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.write_executable(format!("{dir}/bin/build"), format!("#!/bin/sh\n{build}\n"));
    root.write(
        "layers/group.toml",
        format!("[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"{api}\"\n"),
    );
    root.write("layers/plan.toml", "");
}

/// Issue 14: a `launch.toml` process without `command` was written to `metadata.toml` as
/// `command = []` (an image whose process cannot start). The spec requires `command`; the builder now
/// fails (52, as for any invalid `launch.toml`) naming the file and the process, for both encodings.
#[test]
fn launch_toml_process_without_command_is_an_error() {
    for (api, body) in [
        ("0.10", "[[processes]]\ntype = \"web\"\n"),
        ("0.10", "[[processes]]\ntype = \"web\"\ncommand = []\n"),
        ("0.8", "[[processes]]\ntype = \"web\"\n"),
    ] {
        let root = ContainerRoot::new();
        inline_bp(
            &root,
            api,
            &format!("cat > \"$1/launch.toml\" <<'EOF'\n{body}EOF"),
        );
        let out = root.phase("builder").run();
        out.assert_code(52)
            .assert_contains("launch.toml")
            .assert_contains("process 'web': command is required");
        assert!(!root.exists("layers/config/metadata.toml"));
    }
}

/// Issue 14: an order group entry without `id` made the detector look for
/// `<buildpacks>/<version>/buildpack.toml`; now the error names the order file and the entry.
#[test]
fn order_entry_without_id_names_the_order_file() {
    let root = ContainerRoot::new();
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"bp/a\"\nversion = \"1.0\"\n[[order]]\n[[order.group]]\nversion = \"1.0\"\n",
    );
    let out = root.phase("detector").run();
    out.assert_code(1)
        .assert_contains(&format!(
            "{}: [[order]] #2 entry #1 has no id",
            root.join("cnb/order.toml").display()
        ))
        .assert_not_contains("1.0/buildpack.toml");
}

/// Issue 14: `detector -app /nonexistent` failed every buildpack with "No such file or directory" as if
/// `bin/detect` were missing. The exit code stays the reference's (21, buildpack error); the message now
/// names the directory (the reference's `chdir <dir>`).
#[test]
fn detector_with_missing_app_dir_names_it() {
    let root = ContainerRoot::new();
    inline_bp(&root, "0.10", "exit 0");
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"bp/a\"\nversion = \"1.0\"\n",
    );
    let missing = root.join("no-such-app");
    let out = root
        .phase("detector")
        .arg(format!("-app={}", missing.display()))
        .run();
    out.assert_code(21)
        .assert_contains(&format!("chdir {}", missing.display()));
    assert!(running_as_root() || !missing.exists());
}
