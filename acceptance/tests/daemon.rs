//! Issue 15: `-daemon` against a real Docker Engine started by the tests (`acceptance/src/docker.rs`:
//! a private `dockerd`, vfs, no bridge): pack's untrusted-builder flow — analyzer and exporter as root
//! with `CNB_USER_ID`/`CNB_GROUP_ID` and the socket, the build output made without it — a no-op
//! rebuild whose load stream carries no layer, a rebuild with one changed layer, extra tags, the
//! image run with `docker run --network none`, `rebaser -daemon`, and a bad socket. Checklist: AN-01,
//! AN-04, EP-01, EP-12, EP-15, RB-01, IM-30.

use crate::common;

use cnb_acceptance::docker::Docker;
use cnb_acceptance::harness::{running_as_root, ContainerRoot, Output};
use common::{make_run_image, make_run_image_with, write_build_output};

/// The daemon; `None` (after a message) only where the test cannot run at all (not root).
fn docker() -> Option<&'static Docker> {
    if !running_as_root() {
        println!("SKIPPED: dockerd needs root");
        return None;
    }
    Some(Docker::shared().unwrap_or_else(|why| panic!("no Docker Engine: {why}")))
}

fn phase(root: &ContainerRoot, d: &Docker, name: &str, args: &[&str]) -> Output {
    root.phase(name)
        .as_current_user()
        .env("DOCKER_HOST", d.host())
        .env("CNB_LOG_LEVEL", "debug")
        .args(args.iter().map(|s| s.to_string()))
        .run()
}

fn launch_cache(root: &ContainerRoot) -> String {
    format!("-launch-cache={}", root.join("launch-cache").display())
}

fn analyze(root: &ContainerRoot, d: &Docker, image: &str) -> Output {
    let lc = launch_cache(root);
    phase(
        root,
        d,
        "analyzer",
        &["-daemon", &lc, "-run-image=cnb-dmn/run", image],
    )
}

fn export(root: &ContainerRoot, d: &Docker, images: &[&str]) -> Output {
    let launcher = format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    );
    let lc = launch_cache(root);
    let mut args = vec!["-daemon", lc.as_str(), launcher.as_str()];
    args.extend(images);
    phase(root, d, "exporter", &args)
}

/// The image ID (`sha256:…`) the daemon reports for `name`.
fn image_id(d: &Docker, name: &str) -> String {
    d.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn report(root: &ContainerRoot) -> toml::Table {
    root.read("layers/report.toml").parse().unwrap()
}

/// Where the exporter put `rel` of the root's layers/app dirs (their paths are kept in the image).
fn in_root(root: &ContainerRoot, rel: &str) -> String {
    root.join(rel).display().to_string()
}

fn cat(d: &Docker, image: &str, path: &str) -> String {
    let (code, out) = d.run(&[
        "--network".into(),
        "none".into(),
        "--entrypoint".into(),
        "/bin/busybox".into(),
        image.into(),
        "cat".into(),
        path.into(),
    ]);
    assert_eq!(code, 0, "docker run {image} cat {path}:\n{out}");
    out
}

#[test]
fn analyzer_and_exporter_write_into_the_daemon_and_rebuilds_send_only_changes() {
    let Some(d) = docker() else { return };
    let root = ContainerRoot::new();
    let run = make_run_image(&root, "cnb-dmn/run");
    d.load_layout(&run, "latest", "cnb-dmn/run:latest");
    let run_id = image_id(d, "cnb-dmn/run:latest");
    write_build_output(&root, "server-v1", "app-v1");
    // The run image has only /bin/busybox: a launcher stand-in that runs there.
    root.write_executable(
        "cnb/lifecycle/launcher",
        "#!/bin/busybox sh\necho fake launcher \"$@\"\n",
    );
    root.mkdir("launch-cache");
    root.chown(1000, 1000);

    // First build: no previous image.
    analyze(&root, d, "cnb-dmn/app").assert_success();
    let analyzed: toml::Table = root.read("layers/analyzed.toml").parse().unwrap();
    assert_eq!(
        analyzed["run-image"]["reference"].as_str().unwrap(),
        run_id.trim_start_matches("sha256:"),
        "the run image is recorded by its daemon ID (IM-30): {analyzed}"
    );
    assert_eq!(
        analyzed["image"]["reference"].as_str(),
        Some(""),
        "no previous image: {analyzed}"
    );
    let out = export(&root, d, &["cnb-dmn/app", "cnb-dmn/app:v1"]);
    out.assert_success();
    let first_id = image_id(d, "cnb-dmn/app:latest");
    let r = report(&root);
    assert_eq!(
        r["image"]["image-id"].as_str().unwrap(),
        first_id.trim_start_matches("sha256:"),
        "{r}"
    );
    assert!(
        r["image"].get("digest").is_none(),
        "no digest in daemon mode: {r}"
    );
    assert_eq!(
        r["image"]["tags"].as_array().unwrap().len(),
        2,
        "both names reported: {r}"
    );
    assert_eq!(image_id(d, "cnb-dmn/app:v1"), first_id, "extra tag");
    // The run image's layer went as an empty entry: the daemon has it.
    out.assert_contains("1 of 7 layers already there");
    assert_eq!(
        cat(
            d,
            "cnb-dmn/app",
            &in_root(&root, "layers/bp_a/web/bin/server")
        ),
        "server-v1"
    );
    assert_eq!(
        cat(d, "cnb-dmn/app", &in_root(&root, "workspace/app.sh")),
        "app-v1"
    );
    assert_eq!(cat(d, "cnb-dmn/app", "/etc/run-marker"), "run-v1");
    let labels = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"io.buildpacks.lifecycle.metadata\"}}",
        "cnb-dmn/app",
    ]);
    assert!(labels.contains("\"bp/a\""), "{labels}");
    let (code, text) = d.run(&["--network".into(), "none".into(), "cnb-dmn/app".into()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("fake launcher"),
        "the entrypoint is the launcher: {text}"
    );

    // No-op rebuild: the previous image is found by name, every layer is reused and the load
    // stream carries none; same inputs, same image ID.
    // The previous image's SBOM layer comes from the launch cache, not from saving the image.
    analyze(&root, d, "cnb-dmn/app")
        .assert_success()
        .assert_not_contains("Reading the layers of image");
    let analyzed: toml::Table = root.read("layers/analyzed.toml").parse().unwrap();
    assert_eq!(
        analyzed["image"]["reference"].as_str().unwrap(),
        first_id.trim_start_matches("sha256:"),
        "{analyzed}"
    );
    assert!(
        root.read("layers/analyzed.toml").contains("bp/a"),
        "the previous image's lifecycle metadata is read:\n{}",
        root.read("layers/analyzed.toml")
    );
    let out = export(&root, d, &["cnb-dmn/app"]);
    out.assert_success();
    out.assert_contains("Reusing layer 'bp/a:web'");
    out.assert_contains("7 of 7 layers already there");
    assert_eq!(image_id(d, "cnb-dmn/app"), first_id, "deterministic");

    // One changed layer: only it and the layers above it are sent.
    write_build_output(&root, "server-v2", "app-v1");
    root.write_executable(
        "cnb/lifecycle/launcher",
        "#!/bin/busybox sh\necho fake launcher \"$@\"\n",
    );
    root.chown(1000, 1000);
    analyze(&root, d, "cnb-dmn/app").assert_success();
    let out = export(&root, d, &["cnb-dmn/app"]);
    out.assert_success();
    out.assert_contains("Adding layer 'bp/a:web'");
    out.assert_contains("1 of 7 layers already there");
    // The unchanged layers above it are sent from the launch cache (-launch-cache), not read back
    // from the daemon.
    out.assert_not_contains("Reading the layers of image");
    let cached = std::fs::read_dir(root.join("launch-cache/committed"))
        .unwrap()
        .count();
    assert!(
        cached >= 6,
        "the launch layers are in the launch cache: {cached}"
    );
    assert_ne!(image_id(d, "cnb-dmn/app"), first_id);
    assert_eq!(
        cat(
            d,
            "cnb-dmn/app",
            &in_root(&root, "layers/bp_a/web/bin/server")
        ),
        "server-v2"
    );
    assert_eq!(
        image_id(d, "cnb-dmn/app:v1"),
        first_id,
        "the old tag keeps the old image"
    );

    // rebaser -daemon onto a new run image with the same name.
    let run2 = make_run_image_with(&root, "cnb-dmn/run2", "run-v2");
    d.load_layout(&run2, "latest", "cnb-dmn/run:latest");
    let before = image_id(d, "cnb-dmn/app");
    phase(
        &root,
        d,
        "rebaser",
        &["-daemon", "-run-image=cnb-dmn/run", "cnb-dmn/app"],
    )
    .assert_success()
    // Without a launch cache (the rebaser has none) the app layers are read from the daemon.
    .assert_contains("Reading the layers of image");
    let after = image_id(d, "cnb-dmn/app");
    assert_ne!(before, after);
    assert_eq!(cat(d, "cnb-dmn/app", "/etc/run-marker"), "run-v2");
    assert_eq!(
        cat(
            d,
            "cnb-dmn/app",
            &in_root(&root, "layers/bp_a/web/bin/server")
        ),
        "server-v2"
    );
    let r = report(&root);
    assert_eq!(
        r["image"]["image-id"].as_str().unwrap(),
        after.trim_start_matches("sha256:"),
        "{r}"
    );
}

#[test]
fn a_missing_daemon_socket_is_named_with_exit_1() {
    let root = ContainerRoot::new();
    write_build_output(&root, "s", "a");
    let analyzer = ["-daemon", "-run-image=cnb-dmn/run", "cnb-dmn/app"];
    let exporter = ["-daemon", "cnb-dmn/app"];
    for (name, args) in [("analyzer", &analyzer[..]), ("exporter", &exporter[..])] {
        let out = root
            .phase(name)
            .as_current_user()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(args.iter().map(|s| s.to_string()))
            .run();
        out.assert_code(1);
        out.assert_contains("initialize docker client");
        out.assert_contains("unix:///nonexistent/docker.sock");
    }
}
