//! Restorer image work (checklist RS-04…RS-07): `-build-image`, a run image with `extend = true`, run
//! image target data filled in for extensions, and the `[P≥0.14]` run image access check — against the
//! real loopback registry and OCI layouts.
//!
//! The kaniko dir is fixed at `/kaniko` (platform spec), so the static `restorer` runs in a `chroot` of
//! the container root, as it would in a build container: started as root, it chowns `/layers` and
//! `/kaniko` and drops to uid 1000. chroot needs root: when not root the tests print why they are
//! skipped and pass (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{
    bin_path, chown_tree, phase, running_as_root, ContainerRoot, Output,
};
use cnb_acceptance::images::{busybox, busybox_with, BaseImageOptions};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use sha2::{Digest as _, Sha256};

const GROUP: &str = "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n";
const GROUP_WITH_EXTENSION: &str = "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n\n[[group-extensions]]\nid = \"ext/a\"\nversion = \"1.0\"\napi = \"0.10\"\nextension = true\n";

fn skip() -> bool {
    if !running_as_root() {
        println!(
            "SKIPPED: the restorer runs in a chroot (fixed /kaniko); needs root (CI runs as root)"
        );
        return true;
    }
    false
}

/// A container root with `/cnb/lifecycle/restorer` (the static binary), `/kaniko`, a group and an
/// `analyzed.toml`.
fn chroot_root(group: &str, analyzed: &str) -> ContainerRoot {
    let root = ContainerRoot::new();
    fs::create_dir_all(root.join("cnb/lifecycle")).unwrap();
    fs::copy(bin_path("restorer"), root.join("cnb/lifecycle/restorer")).unwrap();
    fs::create_dir_all(root.join("kaniko")).unwrap();
    // Without system CA roots the registry client writes its bundled roots to a temp file, or to an
    // in-memory file via /proc/self/fd; this bare chroot has neither /proc nor /tmp, so give it /tmp.
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    root.write("layers/group.toml", group);
    root.write("layers/analyzed.toml", analyzed);
    root
}

/// `chroot <root> /cnb/lifecycle/restorer <args>` as root with Platform API `api`.
fn restore_in_chroot(
    root: &ContainerRoot,
    api: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = phase("restorer")
        .program("/usr/sbin/chroot")
        .as_current_user()
        .arg(root.path().display().to_string())
        .arg("/cnb/lifecycle/restorer")
        .args(args.iter().map(|s| s.to_string()))
        .platform_api(api)
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .env("CNB_LAYERS_DIR", "/layers")
        .env("CNB_RUN_PATH", "/cnb/run.toml")
        .env("CNB_LOG_LEVEL", "debug");
    for (k, v) in env {
        cmd = cmd.env(*k, *v);
    }
    cmd.run()
}

fn analyzed(root: &ContainerRoot) -> toml::Value {
    toml::from_str(&root.read("layers/analyzed.toml")).unwrap()
}

fn kaniko_entries(root: &ContainerRoot) -> Vec<String> {
    let dir = root.join("kaniko/cache/base");
    if !dir.exists() {
        return Vec::new();
    }
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A registry with the busybox base image pushed as `repo` (e.g. `cnb/build:latest`); returns the
/// registry and the pushed manifest's digest.
fn registry_with(repos: &[&str]) -> (Registry, Vec<String>) {
    let reg = Registry::start(RegistryOptions::plain());
    let base = busybox();
    let mut digests = Vec::new();
    for repo in repos {
        reg.skopeo_copy(
            &format!("oci:{}:{}", base.layout.display(), base.tag),
            &format!("docker://{}", reg.image(repo)),
        );
        digests.push(sha256(&reg.skopeo_inspect_raw(repo)));
    }
    (reg, digests)
}

/// Checks a sparse layout: index.json names exactly the manifest `digest`, whose bytes hash to it;
/// only the manifest and config blobs are present; skopeo reads the manifest and the config from it.
fn assert_sparse_layout(dir: &Path, digest: &str, raw_manifest: &[u8]) {
    assert!(dir.join("oci-layout").is_file(), "{}", dir.display());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], digest);
    let manifest: serde_json::Value = serde_json::from_slice(raw_manifest).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let mut blobs: Vec<String> = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    blobs.sort();
    let mut want = vec![digest.to_string(), config.to_string()];
    want.sort();
    assert_eq!(blobs, want, "only manifest and config, no layer blobs");
    // Independent check: skopeo reads the same manifest bytes (digest preserved) and the config
    // (through a colon-free path: skopeo splits `oci:<path>:<tag>` at the colon of `sha256:`).
    let link_dir = tempfile::tempdir().unwrap();
    let link = link_dir.path().join("sparse");
    std::os::unix::fs::symlink(dir, &link).unwrap();
    let oci = format!("oci:{}", link.display());
    let out = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw", &oci])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256(&out.stdout), digest);
    let out = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--config", &oci])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["os"], "linux");
}

fn run_analyzed(image: &str, reference: &str, extend: bool) -> String {
    format!(
        "[image]\nreference = \"\"\n\n[run-image]\nreference = \"{reference}\"\nimage = \"{image}\"\nextend = {extend}\n"
    )
}

/// RS-05: `-build-image` records the digest reference and saves manifest + config (no layers) under
/// `/kaniko/cache/base/<digest>/`; before Platform 0.10 the flag does not exist.
#[test]
fn build_image_is_recorded_and_saved_sparse_rs05() {
    if skip() {
        return;
    }
    let (reg, digests) = registry_with(&["cnb/build:latest", "cnb/run:latest"]);
    let build = reg.image("cnb/build:latest");
    let run = reg.image("cnb/run:latest");
    let root = chroot_root(GROUP, &run_analyzed(&run, &run, false));
    let out = restore_in_chroot(
        &root,
        "0.15",
        &[("CNB_INSECURE_REGISTRIES", &reg.host())],
        &[&format!("-build-image={build}")],
    );
    out.assert_success()
        .assert_contains("No cached data will be used, no cache specified.");
    let a = analyzed(&root);
    let want = format!("{}/cnb/build@{}", reg.host(), digests[0]);
    assert_eq!(a["build-image"]["reference"].as_str(), Some(want.as_str()));
    assert_eq!(kaniko_entries(&root), vec![digests[0].clone()]);
    let raw = reg.skopeo_inspect_raw("cnb/build:latest");
    assert_sparse_layout(
        &root.join("kaniko/cache/base").join(&digests[0]),
        &digests[0],
        &raw,
    );
    // Restoring again (a retried step) leaves the same single sparse layout.
    restore_in_chroot(
        &root,
        "0.15",
        &[("CNB_INSECURE_REGISTRIES", &reg.host())],
        &[&format!("-build-image={build}")],
    )
    .assert_success();
    assert_eq!(kaniko_entries(&root), vec![digests[0].clone()]);
    assert_sparse_layout(
        &root.join("kaniko/cache/base").join(&digests[0]),
        &digests[0],
        &raw,
    );
    // No extensions in the group: the run image entry is left as is (RS-07).
    assert_eq!(a["run-image"]["reference"].as_str(), Some(run.as_str()));

    // CNB_BUILD_IMAGE works like the flag; at Platform 0.9 the flag is unknown (exit 2) and the
    // variable is ignored.
    let root = chroot_root(GROUP, &run_analyzed(&run, &run, false));
    restore_in_chroot(
        &root,
        "0.10",
        &[
            ("CNB_INSECURE_REGISTRIES", &reg.host()),
            ("CNB_BUILD_IMAGE", &build),
        ],
        &[],
    )
    .assert_success();
    assert_eq!(kaniko_entries(&root), vec![digests[0].clone()]);
    let root = chroot_root(GROUP, &run_analyzed(&run, &run, false));
    restore_in_chroot(&root, "0.9", &[], &[&format!("-build-image={build}")]).assert_code(2);
    restore_in_chroot(
        &root,
        "0.9",
        &[
            ("CNB_INSECURE_REGISTRIES", &reg.host()),
            ("CNB_BUILD_IMAGE", &build),
        ],
        &[],
    )
    .assert_success();
    assert!(kaniko_entries(&root).is_empty());
    assert!(analyzed(&root).get("build-image").is_none());

    // A build image that does not exist fails the restorer, naming it, when the group has image
    // extensions (the extender needs it); without extensions it is only a warning (spec: the build
    // image is "only needed when using image extensions"; deliberate difference from the reference).
    let missing = reg.image("cnb/nope:latest");
    let root = chroot_root(GROUP_WITH_EXTENSION, &run_analyzed(&run, &run, false));
    restore_in_chroot(
        &root,
        "0.15",
        &[("CNB_INSECURE_REGISTRIES", &reg.host())],
        &[&format!("-build-image={missing}")],
    )
    .assert_code(42)
    .assert_contains("cnb/nope");
    let root = chroot_root(GROUP, &run_analyzed(&run, &run, false));
    restore_in_chroot(
        &root,
        "0.15",
        &[("CNB_INSECURE_REGISTRIES", &reg.host())],
        &[&format!("-build-image={missing}")],
    )
    .assert_success()
    .assert_contains("Not recording build image")
    .assert_contains("cnb/nope");
    assert!(analyzed(&root).get("build-image").is_none());
    assert!(kaniko_entries(&root).is_empty());
}

/// RS-06: `run-image.extend = true` (Platform ≥ 0.12, registry): the run image's manifest and config
/// are saved under `/kaniko/cache/base/<digest>/`; `reference` becomes the digest reference and `target`
/// is filled in. Before 0.12 `extend` means nothing.
#[test]
fn run_image_to_extend_is_pulled_sparse_rs06() {
    if skip() {
        return;
    }
    let (reg, digests) = registry_with(&["cnb/run:latest"]);
    let run = reg.image("cnb/run:latest");
    let env = [("CNB_INSECURE_REGISTRIES", reg.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let root = chroot_root(GROUP_WITH_EXTENSION, &run_analyzed(&run, &run, true));
    restore_in_chroot(&root, "0.15", &env, &[])
        .assert_success()
        .assert_contains("Pulling run image metadata");
    let a = analyzed(&root);
    let want = format!("{}/cnb/run@{}", reg.host(), digests[0]);
    assert_eq!(a["run-image"]["reference"].as_str(), Some(want.as_str()));
    assert_eq!(a["run-image"]["image"].as_str(), Some(run.as_str()));
    assert_eq!(a["run-image"]["extend"].as_bool(), Some(true));
    let target = &a["run-image"]["target"];
    assert_eq!(target["os"].as_str(), Some("linux"));
    assert_eq!(target["arch"].as_str(), Some("amd64"));
    assert_eq!(
        target["id"].as_str(),
        Some(cnb_acceptance::images::STACK_ID)
    );
    assert_eq!(kaniko_entries(&root), vec![digests[0].clone()]);
    assert_sparse_layout(
        &root.join("kaniko/cache/base").join(&digests[0]),
        &digests[0],
        &reg.skopeo_inspect_raw("cnb/run:latest"),
    );
    // The extender finds its base where the restorer left it: reference digest = kaniko dir name.
    assert!(want.ends_with(&kaniko_entries(&root)[0]));

    // Platform 0.11: no run image extension; with extensions the reference still becomes a digest
    // reference (RS-07) but there is no target data before 0.12, and nothing is written to /kaniko.
    let root = chroot_root(GROUP_WITH_EXTENSION, &run_analyzed(&run, &run, true));
    restore_in_chroot(&root, "0.11", &env, &[]).assert_success();
    assert!(kaniko_entries(&root).is_empty());
    let a = analyzed(&root);
    assert_eq!(a["run-image"]["reference"].as_str(), Some(want.as_str()));
    assert!(a["run-image"].get("target").is_none(), "{a}");
}

/// RS-07: with extensions in the group and no run image target (an extension switched the run
/// image), the restorer records the run image's digest reference and target — without writing to
/// /kaniko. A plain group, or a target already present, leaves `run-image` as is; before Platform 0.10
/// nothing changes.
#[test]
fn run_image_target_filled_for_extensions_rs07() {
    if skip() {
        return;
    }
    let (reg, digests) = registry_with(&["ext/switched:v2"]);
    let switched = reg.image("ext/switched:v2");
    let env = [("CNB_INSECURE_REGISTRIES", reg.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let want = format!("{}/ext/switched@{}", reg.host(), digests[0]);

    let root = chroot_root(
        GROUP_WITH_EXTENSION,
        &run_analyzed(&switched, &switched, false),
    );
    restore_in_chroot(&root, "0.15", &env, &[]).assert_success();
    let a = analyzed(&root);
    assert_eq!(a["run-image"]["reference"].as_str(), Some(want.as_str()));
    assert_eq!(a["run-image"]["target"]["os"].as_str(), Some("linux"));
    assert!(
        kaniko_entries(&root).is_empty(),
        "RS-07 writes nothing to /kaniko"
    );

    for (group, analyzed_toml, api) in [
        (GROUP, run_analyzed(&switched, &switched, false), "0.15"),
        (
            GROUP_WITH_EXTENSION,
            format!(
                "{}\n[run-image.target]\nos = \"linux\"\narch = \"arm64\"\n",
                run_analyzed(&switched, &switched, false)
            ),
            "0.15",
        ),
        (
            GROUP_WITH_EXTENSION,
            run_analyzed(&switched, &switched, false),
            "0.9",
        ),
    ] {
        let root = chroot_root(group, &analyzed_toml);
        restore_in_chroot(&root, api, &env, &[]).assert_success();
        let a = analyzed(&root);
        assert_eq!(
            a["run-image"]["reference"].as_str(),
            Some(switched.as_str()),
            "P{api}: {a}"
        );
    }
}

/// RS-04 (Platform ≥ 0.14): the run image the analyzer chose, when `run.toml` lists it (as image or
/// mirror), must still be readable — no re-selection of another mirror. An image not listed (switched
/// by an extension) is not checked; before 0.14 nothing is checked.
#[test]
fn selected_run_image_must_be_accessible_rs04() {
    if skip() {
        return;
    }
    let (reg, _) = registry_with(&["cnb/run:latest"]);
    let run = reg.image("cnb/run:latest");
    let mirror = reg.image("cnb/mirror:latest"); // not pushed
    let env = [("CNB_INSECURE_REGISTRIES", reg.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run_toml = format!("[[images]]\nimage = \"{run}\"\nmirrors = [\"{mirror}\"]\n");

    let root = chroot_root(GROUP, &run_analyzed(&mirror, &mirror, false));
    root.write("cnb/run.toml", &run_toml);
    restore_in_chroot(&root, "0.15", &env, &[])
        .assert_code(42)
        .assert_contains(&format!("selected run image '{mirror}' is not accessible"));
    // Readable: fine, and analyzed.toml keeps the choice.
    let root = chroot_root(GROUP, &run_analyzed(&run, &run, false));
    root.write("cnb/run.toml", &run_toml);
    restore_in_chroot(&root, "0.14", &env, &[]).assert_success();
    assert_eq!(
        analyzed(&root)["run-image"]["image"].as_str(),
        Some(run.as_str())
    );
    // Before 0.14, or not listed in run.toml: no check.
    for (api, image) in [
        ("0.13", mirror.clone()),
        ("0.15", reg.image("ext/other:v1")),
    ] {
        let root = chroot_root(GROUP, &run_analyzed(&image, &image, false));
        root.write("cnb/run.toml", &run_toml);
        restore_in_chroot(&root, api, &env, &[]).assert_success();
    }
}

/// RS-05, RS-06, RS-07 in layout mode (`-layout`): the build image and the run image are read from the
/// layout directory; identifiers are `<layout path>@sha256:…`; with `extend = true` the run image is
/// saved sparse under /kaniko like the build image (the reference cannot extend in layout mode,
/// lifecycle#1102), and the target is filled in.
#[test]
fn layout_mode_build_and_run_images() {
    if skip() {
        return;
    }
    let base = busybox();
    let run_base = busybox_with(&BaseImageOptions {
        labels: vec![("test.role".into(), "run".into())],
        ..Default::default()
    });
    assert_ne!(base.manifest_digest, run_base.manifest_digest);
    let root = chroot_root(
        GROUP_WITH_EXTENSION,
        &run_analyzed("cnb/run", "cnb/run", true),
    );
    for (name, img) in [("cnb/build", base), ("cnb/run", &run_base)] {
        let rel = PathBuf::from("layout/index.docker.io")
            .join(name)
            .join("latest");
        fs::create_dir_all(root.join(&rel).parent().unwrap()).unwrap();
        root.copy_dir(&img.layout, &rel);
    }
    // The layouts belong to the build user the restorer drops to.
    chown_tree(&root.join("layout"), 1000, 1000);
    let out = restore_in_chroot(
        &root,
        "0.15",
        &[("CNB_EXPERIMENTAL_MODE", "quiet")],
        &["-layout", "-layout-dir=/layout", "-build-image=cnb/build"],
    );
    out.assert_success();
    let a = analyzed(&root);
    assert_eq!(
        a["build-image"]["reference"].as_str().unwrap(),
        format!(
            "/layout/index.docker.io/cnb/build/latest@{}",
            base.manifest_digest
        )
    );
    let mut want = vec![
        base.manifest_digest.clone(),
        run_base.manifest_digest.clone(),
    ];
    want.sort();
    assert_eq!(kaniko_entries(&root), want);
    for img in [base, &run_base] {
        let raw = fs::read(
            img.layout
                .join("blobs/sha256")
                .join(img.manifest_digest.trim_start_matches("sha256:")),
        )
        .unwrap();
        assert_sparse_layout(
            &root.join("kaniko/cache/base").join(&img.manifest_digest),
            &img.manifest_digest,
            &raw,
        );
    }
    assert_eq!(
        a["run-image"]["reference"].as_str().unwrap(),
        format!(
            "/layout/index.docker.io/cnb/run/latest@{}",
            run_base.manifest_digest
        )
    );
    assert_eq!(a["run-image"]["target"]["os"].as_str(), Some("linux"));
    assert_eq!(
        a["run-image"]["target"]["id"].as_str(),
        Some(cnb_acceptance::images::STACK_ID)
    );
}

/// RS-06 → EX: what the restorer leaves for `extender -kind=run` is what the extender consumes. The
/// container's root is the unpacked run image; the restorer (in a chroot of it) pulls the run image's
/// manifest and config from the registry into `/kaniko/cache/base/<digest>` and records the digest
/// reference; the extender then extends that root into `<layers>/extended/run/<digest>/`.
#[test]
fn extender_consumes_the_restorers_sparse_run_image() {
    if skip() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let st = std::process::Command::new("sh")
        .arg(cnb_acceptance::harness::workspace_dir().join("samples/base-images/busybox/build.sh"))
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    let reg = Registry::start(RegistryOptions::plain());
    let run = reg.image("cnb/run:latest");
    reg.skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{run}"),
    );
    let digest = sha256(&reg.skopeo_inspect_raw("cnb/run:latest"));
    let bundle = work.path().join("bundle");
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs_root = bundle.join("rootfs");
    fs::create_dir_all(fs_root.join("cnb/lifecycle")).unwrap();
    fs::copy(bin_path("restorer"), fs_root.join("cnb/lifecycle/restorer")).unwrap();
    fs::create_dir_all(fs_root.join("kaniko")).unwrap();
    fs::create_dir_all(fs_root.join("tmp")).unwrap();
    fs::set_permissions(fs_root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let w = |rel: &str, text: &str| {
        let p = fs_root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w("layers/group.toml", GROUP_WITH_EXTENSION);
    w("layers/analyzed.toml", &run_analyzed(&run, &run, true));
    w(
        "layers/generated/ext_a/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nARG user_id\nUSER root\nRUN echo extended > /greeting\nUSER ${user_id}\n",
    );

    let restored = phase("restorer")
        .program("/usr/sbin/chroot")
        .as_current_user()
        .arg(fs_root.display().to_string())
        .arg("/cnb/lifecycle/restorer")
        .platform_api("0.15")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .env("CNB_LAYERS_DIR", "/layers")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .run();
    restored.assert_success();
    let a: toml::Value =
        toml::from_str(&fs::read_to_string(fs_root.join("layers/analyzed.toml")).unwrap()).unwrap();
    assert_eq!(
        a["run-image"]["reference"].as_str().unwrap(),
        format!("{}/cnb/run@{digest}", reg.host())
    );
    assert!(fs_root
        .join("kaniko/cache/base")
        .join(&digest)
        .join("index.json")
        .is_file());

    let platform = ContainerRoot::new();
    let out = platform
        .phase("extender")
        .as_current_user()
        .env("CNB_EXTENDER_ROOT", fs_root.display().to_string())
        .env(
            "CNB_LAYERS_DIR",
            fs_root.join("layers").display().to_string(),
        )
        .arg("-kind=run")
        .run();
    out.assert_success();
    let extended = fs_root.join("layers/extended/run");
    let dirs: Vec<String> = fs::read_dir(&extended)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(extended.join(&dirs[0]).join("index.json")).unwrap())
            .unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            extended
                .join(&dirs[0])
                .join("blobs/sha256")
                .join(m.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let base: serde_json::Value =
        serde_json::from_slice(&reg.skopeo_inspect_raw("cnb/run:latest")).unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        base["layers"].as_array().unwrap().len() + 1,
        "the extended run image is the base plus one layer: {manifest}"
    );
}

/// RS-I4: `-daemon` exists for the restorer from Platform 0.12 on (with no engine at `DOCKER_HOST`:
/// "initialize docker client", exit 1, naming the socket); before 0.12 the flag is unknown (exit 2).
#[test]
fn daemon_flag_needs_an_engine() {
    let root = ContainerRoot::new();
    root.write("layers/group.toml", GROUP);
    root.phase("restorer")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("-daemon")
        .run()
        .assert_code(1)
        .assert_contains("unix:///nonexistent/docker.sock");
    root.phase("restorer")
        .platform_api("0.11")
        .arg("-daemon")
        .run()
        .assert_code(2);
}
