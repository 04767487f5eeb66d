//! The Python sample with `creator -build-image` (issue 8 items 2–3; checklist §9 CR-01, CR-05): the build
//! runs inside the bookworm + python3 build image written by `samples/base-images/python/build.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use cnb_acceptance::harness::running_as_root;
use e2e_support::{check_and_unpack, run_bundle, sample_images, Build};

const EXPECTED: &str = "Hello from greeting 1.2.0: python sample on Python 3.";

/// `creator -build-image` (CR-01, CR-05): detect and build run inside the bookworm + python3 build image's
/// root filesystem instead of on the host (the buildpack reports the image's `/etc/cnb-sample-image`), the
/// app image runs on the run image, and a rebuild reuses the unpacked build image and every layer.
#[test]
fn python_sample_builds_inside_the_bookworm_build_image() {
    if !running_as_root() {
        println!("SKIPPED: builds bookworm images and unpacks the build image (namespaces, chroot); needs root");
        return;
    }
    let images = sample_images("python");
    let b = Build::new("python", &["python"], &images.join("run"));
    let flag = format!("-build-image={}", images.join("build").display());
    // Unpacked build images are cached per digest next to the images.
    let cache = images.parent().unwrap().join("build-image-cache");
    let env = [("CNB_BUILD_IMAGE_CACHE", cache.display().to_string())];

    let (ok, out, fresh) = b.creator_with_env(std::slice::from_ref(&flag), &env);
    assert!(ok, "creator -build-image failed:\n{out}");
    assert!(
        out.contains("image: bookworm-python-build, uid 1000"),
        "the buildpack did not run in the build image as the build user:\n{out}"
    );
    assert!(
        out.contains("installed greeting 1.2.0 from vendor/greeting"),
        "{out}"
    );
    let d1 = b.digest();

    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    check_and_unpack(&b.app_layout(), "latest", &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/cnb-sample-image")).unwrap(),
        "bookworm-python-run\n"
    );
    let (ran, text) = run_bundle(&bundle);
    assert!(ran, "the app failed:\n{text}");
    assert!(text.contains(EXPECTED), "unexpected app output:\n{text}");

    let (ok, out2, rebuild) = b.creator_with_env(std::slice::from_ref(&flag), &env);
    assert!(ok, "rebuild failed:\n{out2}");
    assert!(out2.contains("reusing the dependencies layer"), "{out2}");
    assert_eq!(b.digest(), d1, "rebuild changed the image:\n{out2}");
    println!(
        "python sample (creator -build-image, layout): fresh {fresh:.2}s, rebuild {rebuild:.2}s"
    );
}
