//! The detector driven through the built binary, as a platform runs it (checklist §3 DT-*, §4 GN-*, §12 DS-*,
//! §13 BPL-*, §14 ENV-*). Each test builds a temp container root with the sample buildpacks/extensions
//! (`samples/`) or small inline ones, runs `detector` as a separate process (as the build user when the
//! suite runs as root) and checks exit codes, logs and the files it writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cnb_acceptance::harness::{running_as_root, workspace_dir, ContainerRoot};

/// Copies a sample buildpack (`samples/buildpacks/<name>`) to `cnb/buildpacks/<escaped id>/<version>`.
fn sample_bp(root: &ContainerRoot, name: &str, id: &str) {
    root.copy_dir(
        workspace_dir().join("samples/buildpacks").join(name),
        format!("cnb/buildpacks/{}/0.1.0", id.replace('/', "_")),
    );
}

/// Copies a sample extension to `cnb/extensions/<escaped id>/<version>`.
fn sample_ext(root: &ContainerRoot, name: &str, id: &str) {
    root.copy_dir(
        workspace_dir().join("samples/extensions").join(name),
        format!("cnb/extensions/{}/0.1.0", id.replace('/', "_")),
    );
}

/// Copies a sample app into the workspace.
fn sample_app(root: &ContainerRoot, name: &str) {
    root.copy_dir(workspace_dir().join("samples/apps").join(name), "workspace");
}

/// All sample buildpacks.
fn samples(root: &ContainerRoot) {
    sample_bp(root, "runtime", "samples/runtime");
    sample_bp(root, "app-deps", "samples/app-deps");
    sample_bp(root, "composite", "samples/composite");
}

/// An inline buildpack `id@1` with API `api` and the given `bin/detect` body.
fn inline_bp(root: &ContainerRoot, id: &str, api: &str, detect: &str) {
    let dir = format!("cnb/buildpacks/{}/1", id.replace('/', "_"));
    root.write(
        format!("{dir}/buildpack.toml"),
        format!("api = \"{api}\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n"),
    );
    root.write_executable(
        format!("{dir}/bin/detect"),
        format!("#!/bin/sh\n{detect}\n"),
    );
    root.write_executable(format!("{dir}/bin/build"), "#!/bin/sh\nexit 0\n");
}

fn order(groups: &[&[(&str, &str, bool)]]) -> String {
    let mut s = String::new();
    for g in groups {
        s.push_str("[[order]]\n");
        for (id, v, optional) in *g {
            s.push_str(&format!(
                "[[order.group]]\nid = \"{id}\"\nversion = \"{v}\"\noptional = {optional}\n"
            ));
        }
    }
    s
}

#[test]
fn ds_03_composite_sample_detects_group_and_plan() {
    // DS-03, DS-14, BPL-03, BPL-07, DT-07, DT-09
    let root = ContainerRoot::new();
    samples(&root);
    sample_app(&root, "hello");
    root.write(
        "cnb/order.toml",
        order(&[&[("samples/composite", "0.1.0", false)]]),
    );
    let out = root.phase("detector").run();
    out.assert_code(0);
    out.assert_contains("samples/runtime  0.1.0");
    out.assert_contains("samples/app-deps 0.1.0");
    out.assert_not_contains("======== Results ========");
    let group: toml::Table = toml::from_str(&root.read("layers/group.toml")).unwrap();
    let ids: Vec<&str> = group["group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["samples/runtime", "samples/app-deps"]);
    assert_eq!(group["group"][0]["api"].as_str(), Some("0.10"));
    assert_eq!(
        group["group"][0]["homepage"].as_str(),
        Some("https://github.com/cnb-lifecycle/samples")
    );
    assert!(group["group"][1].get("optional").is_none());
    let plan: toml::Table = toml::from_str(&root.read("layers/plan.toml")).unwrap();
    let entries = plan["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{plan}");
    assert_eq!(
        entries[0]["providers"][0]["id"].as_str(),
        Some("samples/runtime")
    );
    assert_eq!(entries[0]["requires"][0]["name"].as_str(), Some("runtime"));
    assert_eq!(
        entries[0]["requires"][0]["metadata"]["version"].as_str(),
        Some("1.0.0")
    );
}

#[test]
fn dt_08_no_group_passes_exits_20_with_results_table() {
    // DT-08, DT-09, DS-11
    let root = ContainerRoot::new();
    samples(&root);
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("samples/composite", "0.1.0", false)]]),
    );
    let out = root.phase("detector").run();
    out.assert_code(20);
    out.assert_contains("No buildpack groups passed detection.");
    out.assert_contains("Please check that you are running against the correct path.");
    out.assert_contains("======== Results ========");
    out.assert_contains("fail: samples/runtime@0.1.0");
    out.assert_contains("no hello.txt in");
    assert!(!root.exists("layers/group.toml"));
}

#[test]
fn dt_08_buildpack_error_exits_21() {
    // DT-08, DS-09
    let root = ContainerRoot::new();
    inline_bp(&root, "erroring", "0.10", "echo boom >&2; exit 3");
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("erroring", "1", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(21);
    out.assert_contains("err:  erroring@1 (3)");
    out.assert_contains("boom");
}

#[test]
fn ds_05_optional_buildpack_failing_is_skipped() {
    // DS-05, DS-14
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    inline_bp(&root, "b", "0.10", "exit 100");
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("a", "1", false), ("b", "1", true)]]),
    );
    let out = root.phase("detector").arg("-log-level=debug").run();
    out.assert_code(0);
    out.assert_contains("skip: b@1");
    let group = root.read("layers/group.toml");
    assert!(
        group.contains("id = \"a\"") && !group.contains("id = \"b\""),
        "{group}"
    );
    // Empty plan => zero-byte plan.toml (DT-07).
    assert_eq!(root.read("layers/plan.toml"), "");
}

#[test]
fn ds_02_later_group_passes_after_earlier_fails() {
    // DS-02, DS-06
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 100");
    inline_bp(&root, "b", "0.10", "exit 0");
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[
            &[("a", "1", false)],
            &[("b", "1", false), ("b", "1", false)],
        ]),
    );
    let out = root.phase("detector").run();
    out.assert_code(0);
    let group: toml::Table = toml::from_str(&root.read("layers/group.toml")).unwrap();
    assert_eq!(group["group"].as_array().unwrap().len(), 1);
    assert_eq!(group["group"][0]["id"].as_str(), Some("b"));
}

#[test]
fn bpl_02_or_alternative_used_when_first_option_unmet() {
    // BPL-01, BPL-02, BPL-04: app-deps requires runtime + curl; nothing provides curl, so its [[or]]
    // alternative (runtime only) resolves.
    let root = ContainerRoot::new();
    samples(&root);
    sample_app(&root, "hello");
    root.write(
        "cnb/order.toml",
        order(&[&[
            ("samples/runtime", "0.1.0", false),
            ("samples/app-deps", "0.1.0", false),
        ]]),
    );
    let out = root.phase("detector").arg("-log-level=debug").run();
    out.assert_code(0);
    out.assert_contains("Resolving plan... (try #1)");
    out.assert_contains("fail: samples/app-deps@0.1.0 requires curl");
    out.assert_contains("Resolving plan... (try #2)");
    let plan = root.read("layers/plan.toml");
    assert!(!plan.contains("curl"), "{plan}");
}

fn extension_root(app: &str) -> ContainerRoot {
    let root = ContainerRoot::new();
    samples(&root);
    sample_ext(&root, "curl", "samples/curl");
    sample_ext(&root, "run-switch", "samples/run-switch");
    sample_app(&root, app);
    root.write(
        "cnb/order.toml",
        format!(
            "{}[[order-extensions]]\n[[order-extensions.group]]\nid = \"samples/curl\"\nversion = \"0.1.0\"\n[[order-extensions.group]]\nid = \"samples/run-switch\"\nversion = \"0.1.0\"\n",
            order(&[&[("samples/composite", "0.1.0", false)]])
        ),
    );
    root.write(
        "layers/analyzed.toml",
        "[run-image]\nreference = \"localhost:5000/samples/run@sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nimage = \"localhost:5000/samples/run:latest\"\n",
    );
    root.write(
        "cnb/run.toml",
        "[[images]]\nimage = \"localhost:5000/samples/run:latest\"\n",
    );
    root
}

#[test]
fn gn_03_extensions_generate_flat_layout_and_switch_run_image() {
    // GN-01, GN-02, GN-03 [P≥0.13], GN-08, GN-09, GN-10, DT-10, DT-11, DS-01
    let root = extension_root("hello-switch");
    let out = root.phase("detector").platform_api("0.13").run();
    out.assert_code(0);
    out.assert_contains("samples/curl: wrote build.Dockerfile");
    out.assert_contains(
        "new runtime base image 'localhost:5000/samples/run:switched' not found in run metadata",
    );
    let group = root.read("layers/group.toml");
    assert!(group.contains("[[group-extensions]]"), "{group}");
    let df = root.read("layers/generated/samples_curl/build.Dockerfile");
    assert!(df.contains("apt-get install"), "{df}");
    assert_eq!(
        root.read("layers/generated/samples_run-switch/run.Dockerfile"),
        "FROM localhost:5000/samples/run:switched\n"
    );
    let analyzed: toml::Table = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    assert_eq!(
        analyzed["run-image"]["image"].as_str(),
        Some("localhost:5000/samples/run:switched")
    );
    assert_eq!(
        analyzed["run-image"]["reference"].as_str(),
        Some("localhost:5000/samples/run:switched")
    );
    // The extension met "curl": the plan handed to the builder no longer has it (GN-08).
    let plan = root.read("layers/plan.toml");
    assert!(!plan.contains("curl") && plan.contains("runtime"), "{plan}");
}

#[test]
fn gn_03_extensions_nested_layout_before_platform_0_13() {
    // GN-03 [P<0.13], DT-06 (experimental guard)
    let root = extension_root("hello");
    let out = root.phase("detector").platform_api("0.12").run();
    out.assert_code(1);
    out.assert_contains("experimental features are disabled by CNB_EXPERIMENTAL_MODE=error");

    let out = root
        .phase("detector")
        .platform_api("0.12")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .run();
    out.assert_code(0);
    out.assert_contains("Platform requested experimental feature 'Dockerfiles'");
    let df = root.read("layers/generated/build/samples_curl/Dockerfile");
    assert!(df.starts_with("ARG base_image\nFROM ${base_image}"), "{df}");
    assert!(!root.exists("layers/generated/samples_curl"));
    // Without run-image.txt the switch extension failed detection and is not in the group.
    let group = root.read("layers/group.toml");
    assert!(!group.contains("run-switch"), "{group}");
}

#[test]
fn gn_02_failing_generate_exits_91_and_invalid_dockerfile_92() {
    // GN-02, GN-05, DT-08
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    let ext = "cnb/extensions/bad/1";
    root.write(
        format!("{ext}/extension.toml"),
        "api = \"0.10\"\n[extension]\nid = \"bad\"\nversion = \"1\"\n",
    );
    root.write_executable(format!("{ext}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.write_executable(format!("{ext}/bin/generate"), "#!/bin/sh\nexit 7\n");
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        format!(
            "{}[[order-extensions]]\n[[order-extensions.group]]\nid = \"bad\"\nversion = \"1\"\n",
            order(&[&[("a", "1", false)]])
        ),
    );
    let out = root.phase("detector").run();
    out.assert_code(91);
    out.assert_contains("bin/generate");

    root.write_executable(
        format!("{ext}/bin/generate"),
        "#!/bin/sh\nprintf 'FROM ${base_image}\\nRUN true\\n' > \"$CNB_OUTPUT_DIR/build.Dockerfile\"\n",
    );
    let out = root.phase("detector").run();
    out.assert_code(92);
    out.assert_contains("build.Dockerfile did not start with required ARG command");
}

#[test]
fn env_02_platform_env_reaches_detect_unless_clear_env() {
    // ENV-02, ENV-04
    let root = ContainerRoot::new();
    root.write("platform/env/SAMPLE_SETTING", "on");
    inline_bp(
        &root,
        "reads-env",
        "0.10",
        "[ \"$SAMPLE_SETTING\" = on ] || exit 100\n[ -n \"$CNB_TARGET_OS\" ] || exit 100\nexit 0",
    );
    let dir = "cnb/buildpacks/clears-env/1";
    root.write(
        format!("{dir}/buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"clears-env\"\nversion = \"1\"\nclear-env = true\n",
    );
    root.write_executable(
        format!("{dir}/bin/detect"),
        "#!/bin/sh\n[ -z \"$SAMPLE_SETTING\" ] || exit 100\nexit 0\n",
    );
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("reads-env", "1", false), ("clears-env", "1", false)]]),
    );
    let out = root.phase("detector").run();
    out.assert_code(0);
}

#[test]
fn env_01_registry_credentials_never_reach_detect() {
    // ENV-01, issue 3 item 4
    let root = ContainerRoot::new();
    inline_bp(
        &root,
        "dump-env",
        "0.10",
        "env > \"$CNB_PLATFORM_DIR/../workspace/detect-env.txt\"\nexit 0",
    );
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("dump-env", "1", false)]]));
    let out = root
        .phase("detector")
        .env(
            "CNB_REGISTRY_AUTH",
            "{\"127.0.0.1:5000\":\"Basic c2VjcmV0OnNlY3JldA==\"}",
        )
        .env("DOCKER_CONFIG", "/secret/docker")
        .env("HOME", "/home/cnb")
        .run();
    out.assert_code(0);
    let env = root.read("workspace/detect-env.txt");
    assert!(!env.contains("CNB_REGISTRY_AUTH"), "{env}");
    assert!(!env.contains("c2VjcmV0"), "{env}");
    assert!(!env.contains("DOCKER_CONFIG"), "{env}");
    assert!(!env.contains("CNB_PLATFORM_API"), "{env}");
    assert!(env.contains("HOME=/home/cnb"), "{env}");
    assert!(env.contains("CNB_BUILD_PLAN_PATH="), "{env}");
}

#[test]
fn dt_01_refuses_to_run_as_root() {
    // DT-01, G-20
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("a", "1", false)]]));
    let out = root.phase("detector").as_current_user().run();
    out.assert_code(1);
    out.assert_contains("failed to detect: refusing to run as root");
}

#[test]
fn bad_input_malformed_descriptor_names_buildpack_and_path() {
    // DT-05, bad input
    let root = ContainerRoot::new();
    root.write(
        "cnb/buildpacks/broken/1/buildpack.toml",
        "api = \"0.10\"\n[buildpack\n",
    );
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("broken", "1", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(1);
    out.assert_contains("broken@1");
    out.assert_contains("cnb/buildpacks/broken/1/buildpack.toml");
}

#[test]
fn bad_input_unknown_buildpack_in_order_names_path() {
    // DT-05, bad input
    let root = ContainerRoot::new();
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("nowhere", "9", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(1);
    out.assert_contains("nowhere@9");
    out.assert_contains("cnb/buildpacks/nowhere/9/buildpack.toml");
}

#[test]
fn bad_input_missing_bin_detect_is_a_buildpack_error() {
    // DS-09, bad input
    let root = ContainerRoot::new();
    root.write(
        "cnb/buildpacks/no-detect/1/buildpack.toml",
        "api = \"0.10\"\n[buildpack]\nid = \"no-detect\"\nversion = \"1\"\n",
    );
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("no-detect", "1", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(21);
    out.assert_contains("no-detect@1");
    out.assert_contains("cnb/buildpacks/no-detect/1/bin/detect");
}

#[test]
fn dt_05_unsupported_buildpack_api_exits_12() {
    // DT-05
    let root = ContainerRoot::new();
    inline_bp(&root, "future", "0.99", "exit 0");
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("future", "1", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(12);
    out.assert_contains("buildpack API version '0.99' is incompatible with the lifecycle");
}

#[test]
fn dt_04_system_buildpacks_are_merged() {
    // DT-04 [P≥0.15]
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    inline_bp(&root, "pre", "0.10", "exit 0");
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("a", "1", false)]]));
    root.write(
        "cnb/system.toml",
        "[system.pre]\n[[system.pre.buildpacks]]\nid = \"pre\"\nversion = \"1\"\n",
    );
    let out = root.phase("detector").arg("-log-level=debug").run();
    out.assert_code(0);
    out.assert_contains("Prepending 1 system buildpack(s) to group");
    let group: toml::Table = toml::from_str(&root.read("layers/group.toml")).unwrap();
    assert_eq!(group["group"][0]["id"].as_str(), Some("pre"));
    assert_eq!(group["group"][1]["id"].as_str(), Some("a"));
}

#[test]
fn ds_07_detects_of_a_group_run_in_parallel_with_output_in_order() {
    // DS-07, DT-09: each detect waits for the other to have started, so this only passes when they run
    // concurrently; their output is still logged in group order.
    let root = ContainerRoot::new();
    let wait_for = |me: &str, other: &str| {
        format!(
            "touch {me}.started\ni=0\nwhile [ ! -e {other}.started ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\necho \"output of {me}\"\n[ -e {other}.started ] || exit 100\nexit 0"
        )
    };
    inline_bp(&root, "first", "0.10", &wait_for("first", "second"));
    inline_bp(&root, "second", "0.10", &wait_for("second", "first"));
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("first", "1", false), ("second", "1", false)]]),
    );
    let out = root.phase("detector").arg("-log-level=debug").run();
    out.assert_code(0);
    let all = out.all();
    let a = all.find("output of first").unwrap();
    let b = all.find("output of second").unwrap();
    assert!(a < b, "{all}");
}

#[test]
fn env_03_build_config_env_applies_even_with_clear_env() {
    // ENV-03 [P≥0.11]: suffix-less files are defaults, suffixes follow the modification rules.
    let root = ContainerRoot::new();
    root.write("cnb/build-config/env/OPERATOR_SETTING", "operator");
    root.write("cnb/build-config/env/MODE.override", "strict");
    root.write("platform/env/MODE", "user");
    let dir = "cnb/buildpacks/reads-config/1";
    root.write(
        format!("{dir}/buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"reads-config\"\nversion = \"1\"\nclear-env = true\n",
    );
    root.write_executable(
        format!("{dir}/bin/detect"),
        "#!/bin/sh\n[ \"$OPERATOR_SETTING\" = operator ] || exit 100\n[ \"$MODE\" = strict ] || exit 100\nexit 0\n",
    );
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("reads-config", "1", false)]]));
    root.phase("detector").run().assert_code(0);
    // Before Platform API 0.11 there is no build-config: the same detect fails.
    root.phase("detector")
        .platform_api("0.10")
        .run()
        .assert_code(20);
}

#[test]
fn ds_13_exec_env_filter_skips_modules_for_other_environments() {
    // DS-13 [P≥0.15]
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.12", "exit 0");
    let dir = "cnb/buildpacks/test-only/1";
    root.write(
        format!("{dir}/buildpack.toml"),
        "api = \"0.12\"\n[buildpack]\nid = \"test-only\"\nversion = \"1\"\nexec-env = [\"test\"]\n",
    );
    root.write_executable(format!("{dir}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("a", "1", false), ("test-only", "1", false)]]),
    );
    root.phase("detector").run().assert_code(0);
    assert!(!root.read("layers/group.toml").contains("test-only"));
    root.phase("detector")
        .env("CNB_EXEC_ENV", "test")
        .run()
        .assert_code(0);
    assert!(root.read("layers/group.toml").contains("test-only"));
}

#[test]
fn ds_08_extension_without_binaries_uses_prepopulated_outputs() {
    // DS-08, GN-02 (pre-populated generate/), GN-03 [P≥0.13], GN-10 (same image: no switch)
    let root = ContainerRoot::new();
    inline_bp(&root, "a", "0.10", "exit 0");
    let ext = "cnb/extensions/static/1";
    root.write(
        format!("{ext}/extension.toml"),
        "api = \"0.10\"\n[extension]\nid = \"static\"\nversion = \"1\"\n",
    );
    root.write(format!("{ext}/detect/plan.toml"), "");
    root.write(
        format!("{ext}/generate/run.Dockerfile"),
        "ARG base_image\nFROM ${base_image}\nRUN echo extended\n",
    );
    root.mkdir("workspace");
    root.write(
        "layers/analyzed.toml",
        "[run-image]\nreference = \"r@sha256:00\"\nimage = \"registry.example/run:1\"\n",
    );
    root.write(
        "cnb/order.toml",
        format!(
            "{}[[order-extensions]]\n[[order-extensions.group]]\nid = \"static\"\nversion = \"1\"\n",
            order(&[&[("a", "1", false)]])
        ),
    );
    root.phase("detector").run().assert_code(0);
    assert!(root
        .read("layers/generated/static/run.Dockerfile")
        .contains("RUN echo extended"));
    let analyzed: toml::Table = toml::from_str(&root.read("layers/analyzed.toml")).unwrap();
    assert_eq!(
        analyzed["run-image"]["image"].as_str(),
        Some("registry.example/run:1")
    );
    assert_eq!(analyzed["run-image"]["extend"].as_bool(), Some(true));
}

#[test]
fn ds_12_target_mismatch_is_an_error_and_target_env_is_api_gated() {
    // DS-12 [P≥0.12], ENV-04 [BP≥0.10]
    let root = ContainerRoot::new();
    root.write(
        "layers/analyzed.toml",
        "[run-image]\nreference = \"r\"\n[run-image.target]\nos = \"linux\"\narch = \"amd64\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"22.04\"\n",
    );
    let dir = "cnb/buildpacks/arm-only/1";
    root.write(
        format!("{dir}/buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"arm-only\"\nversion = \"1\"\n[[targets]]\nos = \"linux\"\narch = \"arm64\"\n",
    );
    root.write_executable(format!("{dir}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.mkdir("workspace");
    root.write("cnb/order.toml", order(&[&[("arm-only", "1", false)]]));
    let out = root.phase("detector").run();
    out.assert_code(21);
    out.assert_contains("unable to satisfy target os/arch constraints");

    // Target variables reach BP 0.10 modules (from analyzed.toml), not BP 0.9 ones.
    let root = ContainerRoot::new();
    root.write(
        "layers/analyzed.toml",
        "[run-image]\nreference = \"r\"\n[run-image.target]\nos = \"linux\"\narch = \"amd64\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"22.04\"\n",
    );
    inline_bp(
        &root,
        "new",
        "0.10",
        "[ \"$CNB_TARGET_DISTRO_NAME\" = ubuntu ] && [ \"$CNB_TARGET_DISTRO_VERSION\" = 22.04 ] && [ \"$CNB_TARGET_ARCH\" = amd64 ] || exit 100",
    );
    inline_bp(&root, "old", "0.9", "[ -z \"$CNB_TARGET_OS\" ] || exit 100");
    root.mkdir("workspace");
    root.write(
        "cnb/order.toml",
        order(&[&[("new", "1", false), ("old", "1", false)]]),
    );
    root.phase("detector").run().assert_code(0);
}
