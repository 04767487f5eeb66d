//! The builder driven through the built binary (checklist §7 BD-*, §14 ENV-*, §16 LY-*, §17 SB-*, §18 SL-*).
//! Runs `detector` then `builder` on the samples into a temp `layers/`, and small inline buildpacks for
//! the error paths; as the build user when the suite runs as root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cnb_acceptance::harness::{running_as_root, workspace_dir, ContainerRoot};

fn sample_bp(root: &ContainerRoot, name: &str, id: &str) {
    root.copy_dir(
        workspace_dir().join("samples/buildpacks").join(name),
        format!("cnb/buildpacks/{}/0.1.0", id.replace('/', "_")),
    );
}

fn samples_root() -> ContainerRoot {
    let root = ContainerRoot::new();
    sample_bp(&root, "runtime", "samples/runtime");
    sample_bp(&root, "app-deps", "samples/app-deps");
    sample_bp(&root, "composite", "samples/composite");
    root.copy_dir(workspace_dir().join("samples/apps/hello"), "workspace");
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"samples/composite\"\nversion = \"0.1.0\"\n",
    );
    root
}

/// An inline buildpack `id@1` (API `api`) with the given `bin/build` body; group.toml lists it.
fn inline_bp(root: &ContainerRoot, id: &str, api: &str, build: &str) {
    let dir = format!("cnb/buildpacks/{}/1", id.replace('/', "_"));
    root.write(
        format!("{dir}/buildpack.toml"),
        format!("api = \"{api}\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n"),
    );
    root.write_executable(format!("{dir}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.write_executable(
        format!("{dir}/bin/build"),
        format!("#!/bin/sh\nset -e\n{build}\n"),
    );
}

fn group(root: &ContainerRoot, members: &[(&str, &str)]) {
    let mut s = String::new();
    for (id, api) in members {
        s.push_str(&format!(
            "[[group]]\nid = \"{id}\"\nversion = \"1\"\napi = \"{api}\"\n"
        ));
    }
    root.write("layers/group.toml", s);
    root.write("layers/plan.toml", "");
    root.mkdir("workspace");
}

#[test]
fn bd_14_samples_build_into_layers_with_metadata() {
    // BD-04..BD-07, BD-12..BD-14, BD-16, LY-01, LY-04, SB-03, SB-04, ENV-08
    let root = samples_root();
    root.phase("detector").run().assert_code(0);
    // BD-03: a stale <layers>/sbom is removed before any buildpack runs.
    root.write("layers/sbom/launch/stale/sbom.cdx.json", "{}");
    let out = root.phase("builder").run();
    out.assert_code(0);
    out.assert_contains("---> samples/runtime build");
    // app-deps ran `greet` from the runtime's build layer and saw its env file (ENV-08).
    out.assert_contains("Hello from the sample runtime: from app-deps (flavor: sample)");
    assert_eq!(root.read("layers/samples_app-deps/deps/flavor"), "sample\n");
    assert!(root.exists("layers/samples_runtime/runtime/bin/greet"));
    assert!(root
        .read("layers/samples_runtime/runtime.toml")
        .contains("launch = true"));

    let md: toml::Table = toml::from_str(&root.read("layers/config/metadata.toml")).unwrap();
    assert_eq!(
        md["buildpack-default-process-type"].as_str(),
        Some("web"),
        "{md}"
    );
    let procs = md["processes"].as_array().unwrap();
    let types: Vec<&str> = procs.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["web", "worker"]);
    assert_eq!(procs[0]["command"].as_array().unwrap().len(), 2);
    assert_eq!(procs[0]["buildpack-id"].as_str(), Some("samples/runtime"));
    assert_eq!(procs[0]["direct"].as_bool(), Some(true));
    assert!(procs[0].get("default").is_none());
    let bps: Vec<&str> = md["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(bps, ["samples/runtime", "samples/app-deps"]);
    assert_eq!(md["labels"][0]["key"].as_str(), Some("io.samples.runtime"));
    // SBOM of a launch+cache layer goes to both sbom/launch and sbom/cache (SB-03, SB-04).
    assert!(root.exists("layers/sbom/launch/samples_runtime/runtime/sbom.cdx.json"));
    assert!(root.exists("layers/sbom/cache/samples_runtime/runtime/sbom.cdx.json"));
    // The reference's json.Encoder output, 0644 (same bytes, same diffID as the reference's layer).
    assert_eq!(root.read("layers/sbom/launch/sbom.legacy.json"), "null\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("layers/sbom/launch/sbom.legacy.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
    assert!(!root.exists("layers/sbom/launch/stale"));
    // The text uses [[processes]] tables (BD-14).
    assert!(root
        .read("layers/config/metadata.toml")
        .contains("[[processes]]"));
}

#[test]
fn bd_09_pre_0_9_string_commands_and_platform_command_forms() {
    // BD-09, BD-14: a BP 0.8 buildpack writes a string command; metadata.toml has a string command
    // for P<0.10 and an array for P≥0.10.
    for (platform, array) in [("0.9", false), ("0.15", true)] {
        let root = ContainerRoot::new();
        inline_bp(
            &root,
            "legacy",
            "0.8",
            "cat > \"$1/launch.toml\" <<'EOF'\n[[processes]]\ntype = \"web\"\ncommand = \"echo hi\"\ndirect = false\n\n[[processes]]\ntype = \"cli\"\ncommand = \"/bin/cli\"\nargs = [\"a\"]\ndirect = true\nEOF",
        );
        group(&root, &[("legacy", "0.8")]);
        let out = root.phase("builder").platform_api(platform).run();
        out.assert_code(0);
        let md: toml::Table = toml::from_str(&root.read("layers/config/metadata.toml")).unwrap();
        let web = &md["processes"].as_array().unwrap()[1];
        assert_eq!(web["type"].as_str(), Some("web"));
        assert_eq!(web["direct"].as_bool(), Some(false));
        if array {
            assert_eq!(
                web["command"].as_array().unwrap()[0].as_str(),
                Some("echo hi")
            );
        } else {
            assert_eq!(web["command"].as_str(), Some("echo hi"));
        }
    }
}

#[test]
fn bd_09_direct_key_rejected_for_bp_0_9() {
    // BD-09
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "modern",
        "0.9",
        "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"x\"]\\ndirect = true\\n' > \"$1/launch.toml\"",
    );
    group(&root, &[("modern", "0.9")]);
    let out = root.phase("builder").run();
    out.assert_code(52);
    out.assert_contains("process.direct is not supported on this buildpack version");
    out.assert_contains("layers/modern/launch.toml");
}

#[test]
fn ly_01_layer_flags_outside_types_table_fail_52() {
    // BD-06, LY-01
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "old-layers",
        "0.10",
        "mkdir -p \"$1/l\"\nprintf 'launch = true\\n' > \"$1/l.toml\"",
    );
    group(&root, &[("old-layers", "0.10")]);
    let out = root.phase("builder").run();
    out.assert_code(52);
    out.assert_contains("the launch, cache and build flags should be in the types table of");
    out.assert_contains("old-layers/l.toml");
}

#[test]
fn ly_03_layer_without_types_is_renamed_ignore() {
    // LY-03, BD-06
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "scratch",
        "0.10",
        "mkdir -p \"$1/tmp\"\nprintf '[metadata]\\nx = 1\\n' > \"$1/tmp.toml\"",
    );
    group(&root, &[("scratch", "0.10")]);
    root.phase("builder").run().assert_code(0);
    assert!(root.exists("layers/scratch/tmp.ignore"));
    assert!(!root.exists("layers/scratch/tmp"));
}

#[test]
fn bd_08_unmet_entries_pass_to_next_provider() {
    // BD-08, BPL-08
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "first",
        "0.10",
        "cp \"$CNB_BP_PLAN_PATH\" \"$CNB_PLATFORM_DIR/../workspace/first-plan.toml\"\nprintf '[[unmet]]\\nname = \"dep\"\\n' > \"$1/build.toml\"",
    );
    inline_bp(
        &root,
        "second",
        "0.10",
        "cp \"$CNB_BP_PLAN_PATH\" \"$CNB_PLATFORM_DIR/../workspace/second-plan.toml\"",
    );
    group(&root, &[("first", "0.10"), ("second", "0.10")]);
    root.write(
        "layers/plan.toml",
        "[[entries]]\n[[entries.providers]]\nid = \"first\"\nversion = \"1\"\n[[entries.providers]]\nid = \"second\"\nversion = \"1\"\n[[entries.requires]]\nname = \"dep\"\n[entries.requires.metadata]\nv = \"2\"\n",
    );
    root.phase("builder").run().assert_code(0);
    assert!(root
        .read("workspace/first-plan.toml")
        .contains("name = \"dep\""));
    let second = root.read("workspace/second-plan.toml");
    assert!(
        second.contains("name = \"dep\"") && second.contains("v = \"2\""),
        "{second}"
    );
}

#[test]
fn bd_15_failing_build_exits_51() {
    // BD-04, BD-15
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "fails",
        "0.10",
        "echo 'compilation failed' >&2\nexit 9",
    );
    group(&root, &[("fails", "0.10")]);
    let out = root.phase("builder").run();
    out.assert_code(51);
    out.assert_contains("compilation failed");
    out.assert_contains("fails@1");
}

#[test]
fn bad_input_non_executable_build_names_buildpack_and_path() {
    // BD-04, bad input
    let root = ContainerRoot::new();
    inline_bp(&root, "not-exec", "0.10", "exit 0");
    std::fs::set_permissions(
        root.join("cnb/buildpacks/not-exec/1/bin/build"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    group(&root, &[("not-exec", "0.10")]);
    let out = root.phase("builder").run();
    out.assert_code(51);
    out.assert_contains("not-exec@1");
    out.assert_contains("cnb/buildpacks/not-exec/1/bin/build");
}

#[test]
fn bad_input_unknown_buildpack_in_group_exits_52() {
    // BD-04, bad input
    let root = ContainerRoot::new();
    group(&root, &[("ghost", "0.10")]);
    let out = root.phase("builder").run();
    out.assert_code(52);
    out.assert_contains("ghost@1");
    out.assert_contains("cnb/buildpacks/ghost/1/buildpack.toml");
}

#[test]
fn bd_01_malformed_group_names_file() {
    // BD-01
    let root = ContainerRoot::new();
    root.write("layers/group.toml", "[[group]\n");
    root.write("layers/plan.toml", "");
    root.mkdir("workspace");
    let out = root.phase("builder").run();
    out.assert_code(1);
    out.assert_contains("failed to read group file");
    out.assert_contains("layers/group.toml");
}

#[test]
fn bd_02_unsupported_api_in_group_exits_12() {
    // BD-02
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    group(&root, &[("a", "0.99")]);
    let out = root.phase("builder").run();
    out.assert_code(12);
    out.assert_contains("for buildpack 'a@1'");
}

#[test]
fn env_01_registry_credentials_never_reach_build() {
    // ENV-01, ENV-04, issue 3 item 4
    let root = ContainerRoot::new();
    root.write("platform/env/USER_SETTING", "from-platform");
    inline_bp(
        &root,
        "dump-env",
        "0.12",
        "env > \"$CNB_PLATFORM_DIR/../workspace/build-env.txt\"",
    );
    group(&root, &[("dump-env", "0.12")]);
    let out = root
        .phase("builder")
        .env(
            "CNB_REGISTRY_AUTH",
            "{\"127.0.0.1:5000\":\"Bearer s3cr3t\"}",
        )
        .env("HTTP_PROXY", "http://proxy:3128")
        .run();
    out.assert_code(0);
    let env = root.read("workspace/build-env.txt");
    assert!(
        !env.contains("CNB_REGISTRY_AUTH") && !env.contains("s3cr3t"),
        "{env}"
    );
    assert!(env.contains("HTTP_PROXY=http://proxy:3128"), "{env}");
    assert!(env.contains("USER_SETTING=from-platform"), "{env}");
    assert!(env.contains("CNB_LAYERS_DIR="), "{env}");
    assert!(env.contains("CNB_BP_PLAN_PATH="), "{env}");
    assert!(env.contains("CNB_TARGET_OS=linux"), "{env}");
    assert!(env.contains("CNB_EXEC_ENV=production"), "{env}");
}

#[test]
fn sb_02_undeclared_sbom_format_fails() {
    // SB-02, BD-10
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "sbom",
        "0.10",
        "echo '{}' > \"$1/launch.sbom.spdx.json\"",
    );
    group(&root, &[("sbom", "0.10")]);
    let out = root.phase("builder").run();
    out.assert_code(52);
    out.assert_contains("undeclared SBOM media type");
}

#[test]
fn sl_01_slices_are_recorded_in_order() {
    // SL-01
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "slicer",
        "0.10",
        "printf '[[slices]]\\npaths = [\"static/*\"]\\n[[slices]]\\npaths = [\"*.txt\"]\\n' > \"$1/launch.toml\"",
    );
    group(&root, &[("slicer", "0.10")]);
    root.phase("builder").run().assert_code(0);
    let md: toml::Table = toml::from_str(&root.read("layers/config/metadata.toml")).unwrap();
    let slices = md["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[0]["paths"][0].as_str(), Some("static/*"));
}

#[test]
fn bd_01_refuses_to_run_as_root() {
    // BD-01, G-20
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let root = ContainerRoot::new();
    group(&root, &[]);
    let out = root.phase("builder").as_current_user().run();
    out.assert_code(1);
    out.assert_contains("failed to build: refusing to run as root");
}

#[test]
fn every_platform_api_detects_and_builds_the_samples() {
    // DT-07, BD-14 across Platform API 0.7..0.15: the same samples build, and metadata.toml uses the
    // API's command form (string before 0.10, array from 0.10).
    for minor in 7..=15 {
        let api = format!("0.{minor}");
        let root = samples_root();
        root.phase("detector")
            .platform_api(&api)
            .run()
            .assert_code(0);
        root.phase("builder")
            .platform_api(&api)
            .run()
            .assert_code(0);
        let md: toml::Table = toml::from_str(&root.read("layers/config/metadata.toml")).unwrap();
        let web = &md["processes"].as_array().unwrap()[0];
        if minor >= 10 {
            assert!(web["command"].is_array(), "P{api}: {md}");
        } else {
            assert_eq!(web["command"].as_str(), Some("greet"), "P{api}: {md}");
            assert_eq!(web["args"][0].as_str(), Some("web"), "P{api}: {md}");
        }
        // SBOM files are copied from Platform API 0.8.
        assert_eq!(
            root.exists("layers/sbom/launch/samples_runtime/runtime/sbom.cdx.json"),
            minor >= 8,
            "P{api}"
        );
    }
}
