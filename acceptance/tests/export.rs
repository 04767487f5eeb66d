//! Analyzer → exporter on OCI layouts, run as separate processes (checklist §2, §8, §19, §25; issue 5).
//! Outputs are checked with skopeo, umoci and oci-image-tool, not only with our own reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use cnb_acceptance::harness::ContainerRoot;
use common::*;

/// AN-04, AN-07, AN-08, EP-06, EP-16, LY-06, LY-07, T-*: first build, no-op rebuild (same digest,
/// nothing written), metadata-only layer reused by diffID, changed app → only the app layer is new.
#[test]
fn layout_build_rebuild_reuses_unchanged_layers() {
    let root = ContainerRoot::new();
    let layout = make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");

    analyze(&root).assert_success();
    let analyzed = root.read("layers/analyzed.toml");
    assert!(
        analyzed.contains(&format!("reference = \"{}", layout.display())),
        "{analyzed}"
    );
    assert!(
        analyzed.contains("index.docker.io/cnb/run/latest@sha256:"),
        "{analyzed}"
    );
    assert!(
        !root.exists("layers/bp_a/web.sha"),
        "AN-08: analyzer writes no layer files"
    );

    let out = export(&root, &[]);
    out.assert_success()
        .assert_contains("Adding layer 'bp/a:web'");
    let d1 = report_digest(&root);
    let app_dir = app_layout(&root);
    let blobs1 = blob_files(&app_dir);

    // No-op rebuild: same digest, no new blob at all.
    analyze(&root).assert_success();
    assert!(root
        .read("layers/analyzed.toml")
        .contains("[metadata.run-image]"));
    let out = export(&root, &[]);
    out.assert_success()
        .assert_contains("Reusing layer 'bp/a:web'")
        .assert_contains("Reused 1/1 app layer(s)")
        .assert_not_contains("Adding layer");
    assert_eq!(report_digest(&root), d1, "T: same inputs, same digest");
    assert_eq!(
        blob_files(&app_dir),
        blobs1,
        "no blob written on a no-op rebuild"
    );

    // LY-06: the buildpack keeps only web.toml; the layer is taken from the previous image.
    fs::remove_dir_all(root.join("layers/bp_a/web")).unwrap();
    analyze(&root).assert_success();
    export(&root, &[])
        .assert_success()
        .assert_contains("Reusing layer 'bp/a:web'");
    assert_eq!(report_digest(&root), d1);
    assert_eq!(blob_files(&app_dir), blobs1);

    // A changed app changes only the app layer (+ config and manifest).
    root.write("workspace/app.sh", "echo changed");
    analyze(&root).assert_success();
    let out = export(&root, &[]);
    out.assert_success()
        .assert_contains("Added 1/1 app layer(s)")
        .assert_contains("Reusing layer 'bp/a:web'");
    let d2 = report_digest(&root);
    assert_ne!(d2, d1);
    let new: Vec<String> = blob_files(&app_dir).difference(&blobs1).cloned().collect();
    assert_eq!(new.len(), 3, "app layer, config, manifest: {new:?}");
    let m1 = manifest_layers(&app_dir, &d1);
    let m2 = manifest_layers(&app_dir, &d2);
    assert_eq!(m1.len(), m2.len());
    let changed: Vec<usize> = (0..m1.len()).filter(|i| m1[*i] != m2[*i]).collect();
    assert_eq!(changed.len(), 1, "exactly one layer differs");
}

/// EP-06, EP-14, IM-10, IM-12, IM-13, IM-30: the layout is valid for oci-image-tool, copyable by skopeo,
/// and unpacks with umoci into app in the app dir, layers under <layers>/<bp>/<layer>, /cnb/process links.
#[test]
fn layout_output_checked_by_independent_tools() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    export(&root, &["-process-type=web"]).assert_success();
    let dir = app_layout(&root);
    tool(
        "oci-image-tool",
        &["validate", "--type", "image", dir.to_str().unwrap()],
    );
    let copy = root.join("copy");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", dir.display()),
            &format!("oci:{}:latest", copy.display()),
        ],
    );
    let bundle = root.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest", dir.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    let inside = |p: &std::path::Path| rootfs.join(p.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read_to_string(inside(&root.join("workspace/app.sh"))).unwrap(),
        "echo v1"
    );
    assert_eq!(
        fs::read_to_string(inside(&root.join("layers/bp_a/web/bin/server"))).unwrap(),
        "v1"
    );
    assert_eq!(
        fs::read_link(rootfs.join("cnb/process/web")).unwrap(),
        std::path::Path::new("/cnb/lifecycle/launcher")
    );
    assert!(rootfs.join("cnb/lifecycle/launcher").is_file());
    let cfg = fs::read_to_string(bundle.join("config.json")).unwrap();
    assert!(cfg.contains("/cnb/process/web"), "entrypoint: {cfg}");
    assert!(cfg.contains(&format!("CNB_APP_DIR={}", root.join("workspace").display())));
    let config = image_config(&dir, &report_digest(&root));
    let labels = &config["config"]["Labels"];
    let lm: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap()).unwrap();
    assert!(lm["runImage"]["topLayer"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(lm["buildpacks"][0]["layers"]["web"]["sha"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(labels["io.buildpacks.build.metadata"]
        .as_str()
        .unwrap()
        .contains("\"processes\""));
    assert_eq!(labels["io.buildpacks.base.id"], "test-run");
    assert_eq!(config["created"], "1980-01-01T00:00:01Z");
    let history = config["history"].as_array().unwrap();
    assert!(history
        .iter()
        .any(|h| h["created_by"] == "Application Layer"));
    assert!(history
        .iter()
        .any(|h| h["created_by"] == "Buildpacks Process Types"));
}

/// IM-31, AN-04: a previous image written by another tool (`skopeo copy`) is read and its layers reused.
#[test]
fn previous_image_copied_by_skopeo_is_reused() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    export(&root, &[]).assert_success();
    let src = app_layout(&root);
    let other = root.join("layout/index.docker.io/other/img/latest");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", src.display()),
            &format!("oci:{}:latest", other.display()),
        ],
    );
    fs::remove_dir_all(&src).unwrap();
    analyze_with(&root, &["-previous-image=other/img"]).assert_success();
    assert!(root
        .read("layers/analyzed.toml")
        .contains(&other.display().to_string()));
    fs::remove_dir_all(root.join("layers/bp_a/web")).unwrap();
    export(&root, &[])
        .assert_success()
        .assert_contains("Reusing layer 'bp/a:web'");
    tool(
        "oci-image-tool",
        &["validate", "--type", "image", src.to_str().unwrap()],
    );
}

/// Issue 15: `-daemon` with no engine at `DOCKER_HOST` fails as the reference's "initialize docker
/// client" (exit 1), naming the socket (the daemon flow itself is in daemon.rs).
#[test]
fn daemon_without_an_engine_fails_clearly() {
    let root = ContainerRoot::new();
    let sock = "unix:///nonexistent/docker.sock";
    let out = root
        .phase("analyzer")
        .env("DOCKER_HOST", sock)
        .arg("-daemon")
        .arg("-run-image=cnb/run")
        .arg("app/img")
        .run();
    out.assert_code(1)
        .assert_contains("initialize docker client")
        .assert_contains(sock);
    let out = root
        .phase("exporter")
        .env("DOCKER_HOST", sock)
        .arg("-daemon")
        .arg("app/img")
        .run();
    out.assert_code(1)
        .assert_contains("initialize docker client")
        .assert_contains(sock);
}

/// AN-02: no run image and no run.toml → exit 3 with the reference's message.
#[test]
fn analyzer_requires_run_image() {
    let root = ContainerRoot::new();
    let out = root
        .phase("analyzer")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args([
            "-layout",
            &format!("-layout-dir={}", root.join("layout").display()),
            "app/img",
        ])
        .run();
    out.assert_code(3)
        .assert_contains("-run-image is required when there is no run metadata available");
}

/// RI-01 (layout): the run image comes from run.toml's first entry; `analyzed.toml` records it as the
/// layout path it was read from, as the reference does (issue 13).
#[test]
fn analyzer_reads_run_toml() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    root.write(
        "cnb/run.toml",
        "[[images]]\nimage = \"cnb/run\"\nmirrors = [\"mirror.io/run\"]\n",
    );
    let out = root
        .phase("analyzer")
        .env("CNB_EXPERIMENTAL_MODE", "quiet")
        .args([
            "-layout",
            &format!("-layout-dir={}", root.join("layout").display()),
            "app/img",
        ])
        .run();
    out.assert_success();
    let analyzed = root.read("layers/analyzed.toml");
    let path = layout_of(&root, "cnb/run");
    assert!(
        analyzed.contains(&format!(
            "\n[run-image]\n  reference = \"{}@sha256:",
            path.display()
        )),
        "{analyzed}"
    );
    assert!(
        analyzed.contains(&format!("\n  image = \"{}\"\n", path.display())),
        "{analyzed}"
    );
}

/// EP-15, EP-16: extra names get the same image; report lists every tag (layout paths) and the size.
#[test]
fn exporter_saves_additional_tags() {
    let root = ContainerRoot::new();
    make_run_image(&root, "cnb/run");
    write_build_output(&root, "v1", "echo v1");
    analyze(&root).assert_success();
    export(&root, &["app/img", "app/img:v2"]).assert_success();
    // Layout mode: the tags are the layout paths written, and there is no digest (the reference's
    // report; the digest is in each layout's index.json).
    let report = root.read("layers/report.toml");
    let layout = root.join("layout/index.docker.io/app/img");
    assert!(
        report.contains(&format!(
            "tags = [\"{}\", \"{}\"]",
            layout.join("latest").display(),
            layout.join("v2").display()
        )),
        "{report}"
    );
    assert!(!report.contains("digest"), "{report}");
    assert!(report.contains("manifest-size = "), "{report}");
    let v2 = root.join("layout/index.docker.io/app/img/v2");
    let index = fs::read_to_string(v2.join("index.json")).unwrap();
    assert!(index.contains(&report_digest(&root)));
    assert!(index.contains("\"org.opencontainers.image.ref.name\":\"v2\""));
}

/// XC: analyze error 32 (run image missing), restore error 42 (no group.toml), export error 62
/// (no metadata.toml).
#[test]
fn phase_exit_codes() {
    let root = ContainerRoot::new();
    let out = analyze(&root);
    out.assert_code(32)
        .assert_contains("run image 'cnb/run' not found");
    let out = root.phase("restorer").run();
    out.assert_code(42).assert_contains("group.toml");
    make_run_image(&root, "cnb/run");
    analyze(&root).assert_success();
    root.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    root.write("cnb/lifecycle/launcher", "x");
    let out = export(&root, &[]);
    out.assert_code(62).assert_contains("metadata.toml");
}
