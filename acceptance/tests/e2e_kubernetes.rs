//! The Kubernetes Job sample end to end (issue 8; checklist §9, G-17): reads
//! `samples/kubernetes/job-phases.yaml`, points its `registry.example.com` references at a real loopback
//! registry with basic auth (as a kustomize overlay would), and runs its init containers and then its
//! container in order, each exactly as written (command + args, env, the pod's runAsUser/runAsGroup), in a
//! chroot of one builder root filesystem. The Job's volumes: `/layers`, `/platform`, `/workspace` fresh per
//! Job (emptyDir), `/cache` kept between Jobs (the PVC), and the registry-credentials secret present only
//! while a container that mounts it runs. The pushed image is copied back with skopeo, checked and run
//! through the launcher; a second Job reuses layers and gives the same digest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnb_acceptance::harness::{running_as_root, workspace_dir};
use cnb_acceptance::images;
use cnb_acceptance::registry::{Registry, RegistryOptions};
use e2e_support::{pull_check_and_run, run_step, tool, Sample};
use yaml_rust2::{Yaml, YamlLoader};

/// One container of the Job's pod.
struct Container {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    /// mountPath of the registry-credentials secret, when this container mounts it.
    secret_at: Option<String>,
}

fn s(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

/// The pod's init containers then containers, and its runAsUser/runAsGroup.
fn job(registry_host: &str) -> (Vec<Container>, (u32, u32)) {
    let text = fs::read_to_string(workspace_dir().join("samples/kubernetes/job-phases.yaml"))
        .unwrap()
        .replace("registry.example.com", registry_host);
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let pod = &docs[0]["spec"]["template"]["spec"];
    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    let user = (
        sc["runAsUser"].as_i64().unwrap() as u32,
        sc["runAsGroup"].as_i64().unwrap() as u32,
    );
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_vec().unwrap() {
            assert!(
                c["securityContext"]["runAsUser"].is_badvalue(),
                "containers inherit the pod's user"
            );
            let mut argv: Vec<String> = c["command"].as_vec().unwrap().iter().map(s).collect();
            argv.extend(c["args"].as_vec().into_iter().flatten().map(s));
            let mut env = BTreeMap::new();
            for e in c["env"].as_vec().into_iter().flatten() {
                env.insert(s(&e["name"]), s(&e["value"]));
            }
            let secret_at = c["volumeMounts"]
                .as_vec()
                .into_iter()
                .flatten()
                .find(|m| s(&m["name"]) == "registry-credentials")
                .map(|m| s(&m["mountPath"]));
            out.push(Container {
                name: s(&c["name"]),
                argv,
                env,
                secret_at,
            });
        }
    }
    (out, user)
}

/// One Job: fresh emptyDirs, then every container in order; returns each container's output.
fn run_job(
    rootfs: &Path,
    containers: &[Container],
    user: (u32, u32),
    secret: &Path,
) -> BTreeMap<String, String> {
    for v in ["layers", "platform", "workspace"] {
        let _ = fs::remove_dir_all(rootfs.join(v));
        fs::create_dir_all(rootfs.join(v)).unwrap();
        // emptyDir with fsGroup 1000: group-owned and group-writable.
        tool("chown", &["1000:1000", rootfs.join(v).to_str().unwrap()]);
        fs::set_permissions(rootfs.join(v), fs::Permissions::from_mode(0o2775)).unwrap();
    }
    let mut logs = BTreeMap::new();
    for c in containers {
        let mount = c
            .secret_at
            .as_ref()
            .map(|at| rootfs.join(at.trim_start_matches('/')));
        if let Some(m) = &mount {
            fs::create_dir_all(m).unwrap();
            fs::copy(secret.join("config.json"), m.join("config.json")).unwrap();
            fs::set_permissions(m.join("config.json"), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let text = run_step(rootfs, &c.name, &c.argv, &c.env, user);
        if let Some(m) = &mount {
            fs::remove_dir_all(m).unwrap();
        }
        logs.insert(c.name.clone(), text);
    }
    logs
}

fn digest_of(report: &str) -> String {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest = "))
        .unwrap_or_else(|| panic!("no digest in report.toml:\n{report}"))
        .trim_matches('"')
        .to_string()
}

#[test]
fn kubernetes_job_builds_the_shell_sample_against_an_authenticated_registry() {
    if !running_as_root() {
        println!("SKIPPED: runs each container in a chroot as the pod's user; needs root");
        return;
    }
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    reg.docker_login(&secret);
    reg.skopeo_copy(
        &format!("oci:{}", images::busybox().layout_ref()),
        &format!("docker://{}", reg.image("stacks/run:latest")),
    );
    let sample = Sample {
        base: None,
        buildpacks: &[("runtime", false), ("app-deps", true)],
        app: "hello",
        run_layout: images::busybox().layout.clone(),
        build_says: "samples/runtime build",
        app_says: "Hello from the sample runtime: web --port 8080",
    };
    let rootfs = e2e_support::builder_rootfs(tmp.path(), &sample);
    // The PVC, kept between Jobs.
    fs::create_dir_all(rootfs.join("cache")).unwrap();
    tool(
        "chown",
        &["1000:1000", rootfs.join("cache").to_str().unwrap()],
    );

    let (mut containers, user) = job(&reg.host());
    assert_eq!(user, (1000, 1000));
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["prepare", "analyze", "detect", "restore", "build", "export", "report"]
    );
    for c in &containers {
        assert_eq!(
            c.secret_at.is_some(),
            ["analyze", "restore", "export"].contains(&c.name.as_str()),
            "credentials only where the Job mounts them: {}",
            c.name
        );
    }
    // Our loopback registry speaks plain HTTP: fill in the manifest's CNB_INSECURE_REGISTRIES.
    for c in &mut containers {
        if let Some(v) = c.env.get_mut("CNB_INSECURE_REGISTRIES") {
            *v = reg.host();
        }
    }

    let start = std::time::Instant::now();
    let logs = run_job(&rootfs, &containers, user, &secret);
    let fresh = start.elapsed().as_secs_f64();
    assert!(
        logs["build"].contains(sample.build_says),
        "{}",
        logs["build"]
    );
    let (_, password) = reg.credentials().unwrap();
    for (name, text) in &logs {
        assert!(!text.contains(password), "{name} printed the password");
    }
    let digest = digest_of(&logs["report"]);
    assert!(digest.starts_with("sha256:"), "{digest}");

    let app_image = reg.image("apps/hello:latest");
    pull_check_and_run(&reg, &app_image, tmp.path(), sample.app_says);

    // A second Job: fresh emptyDirs, the same cache PVC and the previous image.
    let start = std::time::Instant::now();
    let logs2 = run_job(&rootfs, &containers, user, &secret);
    let rebuild = start.elapsed().as_secs_f64();
    assert_eq!(digest_of(&logs2["report"]), digest, "{}", logs2["export"]);
    assert!(logs2["export"].contains("Reusing"), "{}", logs2["export"]);
    println!("shell sample (Kubernetes Job, registry with auth): fresh {fresh:.2}s, rebuild {rebuild:.2}s");
}
