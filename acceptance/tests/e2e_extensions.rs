//! The extension samples end to end (issue 8 item 5; checklist §6, CR-01): `creator -build-image` builds
//! the Python sample with `samples/curl` (a build.Dockerfile: `apt-get install curl` into the bookworm
//! build image, which the Python buildpack then uses) and `samples/run-tools` (a run.Dockerfile:
//! `apt-get install procps` into the bookworm run image). Both run in user namespaces on unpacked roots —
//! no daemon, no kaniko — and the exporter builds the app image on the extended run image.
//! Needs root and the Debian mirror (as the bookworm extender test does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::fs;

use cnb_acceptance::harness::{running_as_root, workspace_dir};
use e2e_support::{check_and_unpack, copy_tree, run_bundle, sample_images, tool, Build};

const EXPECTED: &str = "Hello from greeting 1.2.0: python sample on Python 3.";

#[test]
fn build_and_run_image_extension_samples_through_creator() {
    if !running_as_root() {
        println!("SKIPPED: extends bookworm images in user namespaces and chroots; needs root");
        return;
    }
    let images = sample_images("python");
    let b = Build::new("python", &["python"], &images.join("run"));
    // The extension samples, and an order that offers them before the Python buildpack.
    let ws = workspace_dir();
    for ext in ["curl", "run-tools"] {
        let dest = b.path(&format!("cnb/extensions/samples_{ext}"));
        fs::create_dir_all(&dest).unwrap();
        copy_tree(
            &ws.join("samples/extensions").join(ext),
            &dest.join("0.1.0"),
        );
    }
    fs::write(
        b.path("cnb/order.toml"),
        "[[order-extensions]]\n\
         [[order-extensions.group]]\nid = \"samples/curl\"\nversion = \"0.1.0\"\n\
         [[order-extensions.group]]\nid = \"samples/run-tools\"\nversion = \"0.1.0\"\n\n\
         [[order]]\n[[order.group]]\nid = \"samples/python\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    // The app asks for procps in its run image.
    fs::write(b.path("workspace/run-tools.txt"), "procps\n").unwrap();
    tool("chmod", &["-R", "a+rX", b.path("cnb").to_str().unwrap()]);
    tool(
        "chown",
        &["-R", "1000:1000", b.path("workspace").to_str().unwrap()],
    );

    let flag = format!("-build-image={}", images.join("build").display());
    let cache = images.parent().unwrap().join("build-image-cache");
    let env = [
        ("CNB_BUILD_IMAGE_CACHE", cache.display().to_string()),
        (
            "CNB_EXTENSIONS_DIR",
            b.path("cnb/extensions").display().to_string(),
        ),
    ];
    let (ok, out, fresh) = b.creator_with_env(std::slice::from_ref(&flag), &env);
    assert!(ok, "creator with the extension samples failed:\n{out}");
    assert!(out.contains("===> EXTENDING (BUILD)"), "{out}");
    assert!(out.contains("===> EXTENDING (RUN)"), "{out}");
    // The build extension installed curl into the build image; the buildpack used it there.
    assert!(
        out.contains("build tools: curl "),
        "the buildpack did not see the build extension's curl:\n{out}"
    );
    assert!(out.contains("image: bookworm-python-build"), "{out}");
    let d1 = b.digest();

    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let config = check_and_unpack(&b.app_layout(), "latest", &bundle);
    let rootfs = bundle.join("rootfs");
    // The run extension's packages are in the app image (built on the extended run image).
    assert!(
        rootfs.join("usr/bin/ps").exists(),
        "no procps in the app image"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/cnb-sample-image")).unwrap(),
        "bookworm-python-run\n"
    );
    // The build extension's curl is not in the app image (it extended the build image only).
    assert!(
        !rootfs.join("usr/bin/curl").exists(),
        "curl leaked into the app image"
    );
    // An extended run image is not rebasable (spec: image_extension.md).
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        serde_json::json!("false"),
        "{config}"
    );
    let (ran, text) = run_bundle(&bundle);
    assert!(ran, "the app failed:\n{text}");
    assert!(text.contains(EXPECTED), "unexpected app output:\n{text}");

    // Rebuild: every Dockerfile step comes from the step cache, every layer is reused.
    let (ok, out2, rebuild) = b.creator_with_env(std::slice::from_ref(&flag), &env);
    assert!(ok, "rebuild failed:\n{out2}");
    assert!(out2.contains("build tools: curl "), "{out2}");
    assert_eq!(b.digest(), d1, "rebuild changed the image:\n{out2}");
    println!("extension samples (creator -build-image, layout): fresh {fresh:.2}s, rebuild {rebuild:.2}s");
}
