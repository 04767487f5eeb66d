//! Shared helpers of the analyze/restore/export/rebase acceptance tests: run images made with umoci,
//! a builder's output written by hand, phase invocations on OCI layouts, layout inspection.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{ContainerRoot, Output};

pub use cnb_acceptance::harness::tool;

/// The sample shell buildpacks (`samples/runtime`, `samples/app-deps`), their order, the hello app in
/// `workspace` and a stand-in launcher at `cnb/lifecycle/launcher`.
pub fn sample_buildpacks(root: &ContainerRoot) {
    let samples = cnb_acceptance::harness::workspace_dir().join("samples");
    for bp in ["runtime", "app-deps"] {
        root.copy_dir(
            samples.join("buildpacks").join(bp),
            format!("cnb/buildpacks/samples_{bp}/0.1.0"),
        );
    }
    root.copy_dir(samples.join("apps/hello"), "workspace");
    root.write(
        "cnb/order.toml",
        "[[order]]\n[[order.group]]\nid = \"samples/runtime\"\nversion = \"0.1.0\"\n[[order.group]]\nid = \"samples/app-deps\"\nversion = \"0.1.0\"\n",
    );
    root.write_executable("cnb/lifecycle/launcher", "#!/bin/sh\necho launcher\n");
}

/// The layout dir of `name` under `<root>/layout` (IM-30, docker hub names only).
pub fn layout_of(root: &ContainerRoot, name: &str) -> PathBuf {
    let (repo, tag) = name.split_once(':').unwrap_or((name, "latest"));
    root.join("layout/index.docker.io").join(repo).join(tag)
}

/// Builds a small run image (busybox, user 1000, `io.buildpacks.base.*` labels) with umoci as an OCI
/// layout at the layout path of `name`. `marker` goes into `/etc/run-marker`.
pub fn make_run_image_with(root: &ContainerRoot, name: &str, marker: &str) -> PathBuf {
    let dir = layout_of(root, name);
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let rootfs = root.join(format!("rootfs-{}", name.replace(['/', ':'], "_")));
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/run-marker"), marker).unwrap();
    let d = dir.to_str().unwrap();
    let img = format!("{d}:latest");
    tool("umoci", &["init", "--layout", d]);
    tool("umoci", &["new", "--image", &img]);
    tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &img,
            rootfs.to_str().unwrap(),
            "/",
        ],
    );
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &img,
            "--os",
            "linux",
            "--architecture",
            "amd64",
            "--config.env",
            "PATH=/bin",
            "--config.user",
            "1000:1000",
            "--config.label",
            "io.buildpacks.base.id=test-run",
            "--config.label",
            "io.buildpacks.base.distro.name=busybox",
            "--config.label",
            "io.buildpacks.base.distro.version=1",
        ],
    );
    fs::remove_dir_all(&rootfs).unwrap();
    dir
}

/// [`make_run_image_with`] with a default marker.
pub fn make_run_image(root: &ContainerRoot, name: &str) -> PathBuf {
    make_run_image_with(root, name, "run-v1")
}

/// What a builder leaves behind for one buildpack `bp/a`: group.toml, a launch layer `web` (content
/// `layer`), a cache+build layer `deps`, metadata.toml with a `web` process, the app, a launcher.
pub fn write_build_output(root: &ContainerRoot, layer: &str, app: &str) {
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    root.write("layers/bp_a/web/bin/server", layer);
    root.write(
        "layers/bp_a/web.toml",
        "[types]\nlaunch = true\n[metadata]\nversion = \"1\"\n",
    );
    root.write(
        "layers/config/metadata.toml",
        "[[buildpacks]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n\n[[processes]]\ntype = \"web\"\ncommand = [\"/bin/sh\"]\nargs = [\"-c\", \"echo hi\"]\ndirect = true\nbuildpack-id = \"bp/a\"\n",
    );
    root.write("workspace/app.sh", app);
    root.write("cnb/lifecycle/launcher", "#!/bin/sh\necho fake launcher\n");
}

/// Adds a `cache = true` (and build) layer `deps` to `bp/a`.
pub fn write_cache_layer(root: &ContainerRoot, content: &str) {
    root.write("layers/bp_a/deps/lib/dep.txt", content);
    root.write(
        "layers/bp_a/deps.toml",
        "[types]\ncache = true\nbuild = true\n[metadata]\nv = \"1\"\n",
    );
}

fn layout_args(root: &ContainerRoot) -> Vec<String> {
    vec![
        "-layout".into(),
        format!("-layout-dir={}", root.join("layout").display()),
    ]
}

/// `analyzer -layout … -run-image=cnb/run <extra> app/img`.
pub fn analyze_with(root: &ContainerRoot, extra: &[&str]) -> Output {
    let mut args = layout_args(root);
    args.push("-run-image=cnb/run".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("app/img".into());
    root.phase("analyzer")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args(args)
        .run()
}

/// [`analyze_with`] without extra flags.
pub fn analyze(root: &ContainerRoot) -> Output {
    analyze_with(root, &[])
}

/// `exporter -layout … -launcher=<root>/cnb/lifecycle/launcher <extra> [app/img]` (the image name is
/// added unless `extra` has a positional).
pub fn export(root: &ContainerRoot, extra: &[&str]) -> Output {
    let mut args = layout_args(root);
    args.push(format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    ));
    args.extend(extra.iter().map(|s| s.to_string()));
    if !extra.iter().any(|a| !a.starts_with('-')) {
        args.push("app/img".into());
    }
    root.phase("exporter")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args(args)
        .run()
}

/// The output image's layout dir.
pub fn app_layout(root: &ContainerRoot) -> PathBuf {
    layout_of(root, "app/img")
}

/// The app image digest: `[image] digest` from report.toml (registry), or from the `index.json` of
/// the layout path report.toml names (layout mode, EP-16).
pub fn report_digest(root: &ContainerRoot) -> String {
    cnb_acceptance::report::image_digest(&root.join("layers/report.toml"), root.path())
}

/// Names of the blob files in a layout.
pub fn blob_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

fn blob_json(dir: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// Layer digests of the manifest `digest`.
pub fn manifest_layers(dir: &Path, digest: &str) -> Vec<String> {
    blob_json(dir, digest)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The config of the manifest `digest`.
pub fn image_config(dir: &Path, digest: &str) -> serde_json::Value {
    let m = blob_json(dir, digest);
    blob_json(dir, m["config"]["digest"].as_str().unwrap())
}
