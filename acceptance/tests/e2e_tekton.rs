//! The Tekton phases Task end to end (issue 8 item 5a; checklist §9, G-07/G-08, G-17): reads
//! `samples/tekton/task-phases.yaml`, substitutes its params, workspaces and results, and runs every step
//! as a separate process exactly as written (command + args, or its script), as the user its
//! securityContext names, with the stepTemplate's and the step's env. Each step runs in a chroot of one
//! "builder image" root filesystem (busybox + our static binaries at `/cnb/lifecycle/`, the sample
//! buildpacks at `/cnb/buildpacks/`, `/cnb/order.toml`), with the Task's volumes (`/layers`, `/platform`,
//! fresh per TaskRun) and workspaces (`/workspace/source`, `/workspace/cache`) shared between steps, against
//! a real loopback registry. The pushed image is copied back with skopeo, checked with oci-image-tool and
//! umoci, unpacked and its default process run through the launcher; a second TaskRun reuses layers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{running_as_root, workspace_dir};
use cnb_acceptance::images;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use e2e_support::{copy_tree, pull_check_and_run, tool, Sample};
use yaml_rust2::{Yaml, YamlLoader};

/// One step of the Task, after substitution.
#[derive(Debug)]
struct Step {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    uid: u32,
    gid: u32,
    script: Option<String>,
}

fn s(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Substitutes `$(params.X)`, `$(workspaces.X.path)` and `$(results.X.path)` in one string.
fn subst(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(')').map(|e| i + e).unwrap();
        let key = &rest[i + 2..end];
        let value = if let Some(p) = key.strip_prefix("params.") {
            params
                .get(p)
                .cloned()
                .unwrap_or_else(|| panic!("unknown param {p}"))
        } else if let Some(w) = key.strip_prefix("workspaces.") {
            format!("/workspace/{}", w.strip_suffix(".path").unwrap())
        } else if let Some(r) = key.strip_prefix("results.") {
            format!("/tekton/results/{}", r.strip_suffix(".path").unwrap())
        } else {
            panic!("unknown substitution $({key})")
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn env_of(list: &Yaml, params: &BTreeMap<String, String>, into: &mut BTreeMap<String, String>) {
    for e in list.as_vec().into_iter().flatten() {
        into.insert(
            s(&e["name"]).unwrap(),
            subst(&s(&e["value"]).unwrap_or_default(), params),
        );
    }
}

/// The Task's steps with `given` params (others take their defaults; array params from `arrays`).
fn task_steps(given: &BTreeMap<&str, String>, arrays: &BTreeMap<&str, Vec<String>>) -> Vec<Step> {
    let text = fs::read_to_string(workspace_dir().join("samples/tekton/task-phases.yaml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let spec = &doc["spec"];
    let mut params = BTreeMap::new();
    for p in spec["params"].as_vec().unwrap() {
        let name = s(&p["name"]).unwrap();
        if let Some(v) = given.get(name.as_str()) {
            params.insert(name, v.clone());
        } else if let Some(d) = s(&p["default"]) {
            params.insert(name, d);
        } else if p["default"].as_vec().is_none() {
            panic!("required param {name} not given");
        }
    }
    let tmpl = &spec["stepTemplate"];
    let user = |sc: &Yaml, default: (u32, u32)| -> (u32, u32) {
        (
            sc["runAsUser"].as_i64().map_or(default.0, |v| v as u32),
            sc["runAsGroup"].as_i64().map_or(default.1, |v| v as u32),
        )
    };
    let base_user = user(&tmpl["securityContext"], (0, 0));
    assert_eq!(
        tmpl["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let mut steps = Vec::new();
    for st in spec["steps"].as_vec().unwrap() {
        let name = s(&st["name"]).unwrap();
        let mut env = BTreeMap::new();
        env_of(&tmpl["env"], &params, &mut env);
        env_of(&st["env"], &params, &mut env);
        let (uid, gid) = user(&st["securityContext"], base_user);
        let mut args = Vec::new();
        for a in st["args"].as_vec().into_iter().flatten() {
            let a = s(a).unwrap();
            // `$(params.ARRAY[*])` as a whole element expands to the array's elements.
            if let Some(p) = a
                .strip_prefix("$(params.")
                .and_then(|r| r.strip_suffix("[*])"))
            {
                args.extend(arrays.get(p).cloned().unwrap_or_default());
            } else {
                args.push(subst(&a, &params));
            }
        }
        let script = s(&st["script"]).map(|t| subst(&t, &params));
        let mut argv: Vec<String> = st["command"]
            .as_vec()
            .into_iter()
            .flatten()
            .map(|c| subst(&s(c).unwrap(), &params))
            .collect();
        if script.is_some() {
            argv = vec![format!("/tekton/scripts/{name}")];
        }
        argv.extend(args);
        steps.push(Step {
            name,
            argv,
            env,
            uid,
            gid,
            script,
        });
    }
    steps
}

/// The builder root filesystem plus Tekton's mounts: workspaces (owned by the step user, like an fsGroup
/// volume, the app in `source`) and `/tekton`.
fn builder_rootfs(dir: &Path, sample: &Sample) -> PathBuf {
    let r = e2e_support::builder_rootfs(dir, sample);
    for d in [
        "workspace/cache",
        "workspace/dockerconfig",
        "tekton/home",
        "tekton/results",
        "tekton/scripts",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    copy_tree(
        &workspace_dir().join("samples/apps").join(sample.app),
        &r.join("workspace/source"),
    );
    tool("chmod", &["-R", "0777", r.join("tekton").to_str().unwrap()]);
    tool(
        "chown",
        &["-R", "1000:1000", r.join("workspace").to_str().unwrap()],
    );
    r
}

/// The mount paths of the Task's emptyDir volumes (from `volumes` and the stepTemplate's `volumeMounts`).
fn empty_dirs() -> Vec<String> {
    let text = fs::read_to_string(workspace_dir().join("samples/tekton/task-phases.yaml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let spec = &doc["spec"];
    let mut out = Vec::new();
    for v in spec["volumes"].as_vec().unwrap() {
        if v["emptyDir"].is_badvalue() {
            continue;
        }
        let name = s(&v["name"]).unwrap();
        for m in spec["stepTemplate"]["volumeMounts"].as_vec().unwrap() {
            if s(&m["name"]).as_deref() == Some(name.as_str()) {
                out.push(s(&m["mountPath"]).unwrap());
            }
        }
    }
    out
}

/// One TaskRun: fresh emptyDir volumes (`/layers`, `/platform`, ...), then every step in order.
fn task_run(rootfs: &Path, steps: &[Step]) -> BTreeMap<String, String> {
    let volumes = empty_dirs();
    assert!(volumes.iter().any(|v| v == "/layers"), "{volumes:?}");
    for v in &volumes {
        let v = v.trim_start_matches('/');
        let _ = fs::remove_dir_all(rootfs.join(v));
        fs::create_dir_all(rootfs.join(v)).unwrap();
        fs::set_permissions(rootfs.join(v), fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut logs = BTreeMap::new();
    for st in steps {
        if let Some(script) = &st.script {
            let p = rootfs.join("tekton/scripts").join(&st.name);
            fs::write(&p, script).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let text = e2e_support::run_step(rootfs, &st.name, &st.argv, &st.env, (st.uid, st.gid));
        logs.insert(st.name.clone(), text);
    }
    logs
}

/// Runs the Task twice for `sample`; returns (fresh, rebuild) seconds.
fn run_task(sample: &Sample) -> (f64, f64) {
    let reg = Registry::start(RegistryOptions::plain());
    let tmp = tempfile::tempdir().unwrap();
    reg.skopeo_copy(
        &format!("oci:{}:latest", sample.run_layout.display()),
        &format!("docker://{}", reg.image("samples/run:latest")),
    );
    let rootfs = builder_rootfs(tmp.path(), sample);
    // The builder image the steps run in (CNB_BUILDER_IMAGE) exists in the registry: the restore step
    // reads its metadata (`-build-image`, RS-05). Written from the very same root filesystem.
    let builder_layout = tmp.path().join("builder-layout");
    let out = std::process::Command::new(e2e_support::mkimage())
        .arg(format!("--layout={}", builder_layout.display()))
        .arg(format!("--rootfs={}", rootfs.display()))
        .args(["--build-user", "1000:1000", "--compression", "zstd"])
        .args(["--env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    reg.skopeo_copy(
        &format!("oci:{}:latest", builder_layout.display()),
        &format!("docker://{}", reg.image("samples/builder:latest")),
    );
    let app_image = reg.image(&format!("samples/{}:latest", sample.app));
    let given: BTreeMap<&str, String> = [
        ("APP_IMAGE", app_image.clone()),
        ("CNB_BUILDER_IMAGE", reg.image("samples/builder:latest")),
        ("CNB_RUN_IMAGE", reg.image("samples/run:latest")),
        ("CNB_INSECURE_REGISTRIES", reg.host()),
    ]
    .into_iter()
    .collect();
    let arrays: BTreeMap<&str, Vec<String>> =
        [("CNB_ENV_VARS", vec!["GREETING_FROM=tekton".to_string()])]
            .into_iter()
            .collect();
    let steps = task_steps(&given, &arrays);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prepare",
            "analyze",
            "detect",
            "restore",
            "extend-or-build",
            "export",
            "results"
        ]
    );
    // Rootless: every step runs as 1000:1000; credentials only where the Task gives them.
    for st in &steps {
        assert_eq!((st.uid, st.gid), (1000, 1000), "{}", st.name);
        let creds = st.env.contains_key("DOCKER_CONFIG");
        assert_eq!(
            creds,
            ["analyze", "restore", "export"].contains(&st.name.as_str()),
            "{}",
            st.name
        );
    }

    let start = std::time::Instant::now();
    let logs = task_run(&rootfs, &steps);
    let fresh = start.elapsed().as_secs_f64();
    assert!(
        logs["extend-or-build"].contains(sample.build_says),
        "{}",
        logs["extend-or-build"]
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("platform/env/GREETING_FROM")).unwrap(),
        "tekton"
    );
    let digest = fs::read_to_string(rootfs.join("tekton/results/APP_IMAGE_DIGEST")).unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        fs::read_to_string(rootfs.join("tekton/results/APP_IMAGE_URL")).unwrap(),
        app_image
    );

    // The pushed image, copied back by an independent client and checked, runs.
    pull_check_and_run(&reg, &app_image, tmp.path(), sample.app_says);

    // A second TaskRun (fresh /layers and /platform, same cache workspace) reuses the layers.
    let start = std::time::Instant::now();
    let logs2 = task_run(&rootfs, &steps);
    let rebuild = start.elapsed().as_secs_f64();
    let digest2 = fs::read_to_string(rootfs.join("tekton/results/APP_IMAGE_DIGEST")).unwrap();
    assert_eq!(digest, digest2, "export:\n{}", logs2["export"]);
    assert!(
        logs2["export"].contains("Reusing"),
        "export did not reuse layers:\n{}",
        logs2["export"]
    );
    (fresh, rebuild)
}

#[test]
fn tekton_phases_task_builds_the_shell_sample_against_a_registry() {
    if !running_as_root() {
        println!("SKIPPED: runs each step in a chroot as the step's user; needs root");
        return;
    }
    let (fresh, rebuild) = run_task(&Sample {
        base: None,
        buildpacks: &[("runtime", false), ("app-deps", true)],
        app: "hello",
        run_layout: images::busybox().layout.clone(),
        build_says: "samples/runtime build",
        app_says: "Hello from the sample runtime: web --port 8080",
    });
    println!(
        "shell sample (Tekton phases task, registry): fresh {fresh:.2}s, rebuild {rebuild:.2}s"
    );
}

/// Slower test: the builder is the bookworm + python3 root filesystem (built once, cached in
/// `target/samples-cache/python`), the run image the Python run image pushed to the registry.
#[test]
fn tekton_phases_task_builds_the_python_sample_against_a_registry() {
    if !running_as_root() {
        println!("SKIPPED: runs each step in a chroot as the step's user; needs root");
        return;
    }
    let images = e2e_support::sample_images("python");
    let base = images.parent().unwrap().join("rootfs/python");
    let (fresh, rebuild) = run_task(&Sample {
        base: Some(base),
        buildpacks: &[("python", false)],
        app: "python",
        run_layout: images.join("run"),
        build_says: "installed greeting 1.2.0 from vendor/greeting",
        app_says: "Hello from greeting 1.2.0: python sample on Python 3.",
    });
    println!(
        "python sample (Tekton phases task, registry): fresh {fresh:.2}s, rebuild {rebuild:.2}s"
    );
}
