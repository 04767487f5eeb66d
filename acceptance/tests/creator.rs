//! `creator` end to end (issue 8; checklist §9): the sample app built by one `creator` call into an OCI
//! layout — exactly what `make demo` runs (`samples/demo.sh`) — then the image is unpacked with umoci and
//! its default process started through the launcher in a chroot. A second build reuses every layer and
//! gives the same digest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use cnb_acceptance::harness::{bin_dir, running_as_root, workspace_dir};

fn run_demo(out: &std::path::Path) -> String {
    let output = Command::new("bash")
        .arg(workspace_dir().join("samples/demo.sh"))
        .env("DEMO_OUT", out)
        .env("CNB_LIFECYCLE_BIN_DIR", bin_dir())
        .output()
        .expect("run samples/demo.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "demo failed:\n{text}");
    text
}

fn digest(out: &std::path::Path) -> String {
    let report = std::fs::read_to_string(out.join("layers/report.toml")).unwrap();
    let v: toml::Table = report.parse().unwrap();
    v["image"]["digest"].as_str().unwrap().to_string()
}

#[test]
fn creator_builds_the_sample_into_a_layout_and_the_image_runs() {
    if !running_as_root() {
        println!("SKIPPED: the creator demo runs buildpacks as uid 1000 and the app in a chroot; needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The build user must reach DEMO_OUT (a 0700 parent makes the demo refuse it).
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = tmp.path().join("demo");

    let t = std::time::Instant::now();
    let first = run_demo(&out);
    let fresh = t.elapsed();
    for section in [
        "===> ANALYZING",
        "===> DETECTING",
        "===> RESTORING",
        "===> BUILDING",
        "===> EXPORTING",
    ] {
        assert!(first.contains(section), "missing {section}:\n{first}");
    }
    assert!(first.contains("Timing:"), "no timing summary:\n{first}");
    // The image's default process (web) ran through the launcher with its args from launch.toml.
    assert!(
        first.contains("Hello from the sample runtime: web --port 8080"),
        "the app did not run:\n{first}"
    );
    let d1 = digest(&out);

    // Checked by independent tools too.
    let layout = out.join("oci/localhost/samples/hello/latest");
    let st = Command::new("oci-image-tool")
        .args(["validate", "--type", "image"])
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "oci-image-tool: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:latest", layout.display()))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let inspect = String::from_utf8_lossy(&st.stdout);
    assert!(
        inspect.contains("io.buildpacks.lifecycle.metadata"),
        "{inspect}"
    );

    // Rebuild: cache restored, every layer reused, same image.
    let t = std::time::Instant::now();
    let second = run_demo(&out);
    let rebuild = t.elapsed();
    println!(
        "TIMING creator demo flow (samples/demo.sh, host buildpacks, layout): fresh {:.2}s, rebuild {:.2}s",
        fresh.as_secs_f64(),
        rebuild.as_secs_f64()
    );
    assert!(second.contains("from cache"), "cache not used:\n{second}");
    assert!(
        !second.contains("Adding layer"),
        "a layer was rebuilt:\n{second}"
    );
    assert!(
        second.contains("Hello from the sample runtime: web --port 8080"),
        "{second}"
    );
    assert_eq!(
        digest(&out),
        d1,
        "same inputs must give the same image digest"
    );
}
