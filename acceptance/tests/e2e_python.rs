//! The Python sample end to end (issue 8 item 3; checklist §9): `samples/python` installs the app's
//! vendored dependency (no network) into a launch + cache layer; one `creator` builds
//! `samples/apps/python` into an OCI layout on the bookworm + python3 run image
//! (`samples/base-images/python/build.sh`, written by cnb-mkimage, cached under `target/samples-cache/`);
//! the image is checked with oci-image-tool/skopeo/umoci, unpacked, and its default process run through the
//! launcher in a chroot as the build user. A rebuild reuses the layer (same image digest).
//!
//! Slower test: the first run on a machine builds the bookworm images (debootstrap + apt-get python3, about
//! a minute, needs the Debian mirror); later runs reuse them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use cnb_acceptance::harness::running_as_root;
use e2e_support::{check_and_unpack, run_bundle, sample_images, Build};

const EXPECTED: &str = "Hello from greeting 1.2.0: python sample on Python 3.";

#[test]
fn python_sample_builds_on_bookworm_and_runs_through_the_launcher() {
    if !running_as_root() {
        println!("SKIPPED: builds bookworm images (debootstrap, chroot) and runs the app in a chroot; needs root");
        return;
    }
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("the Python buildpack runs on the host here: apt-get install python3");
    }
    let images = sample_images("python");
    let b = Build::new("python", &["python"], &images.join("run"));

    let (ok, out, fresh) = b.creator(&[]);
    assert!(ok, "creator failed:\n{out}");
    assert!(
        out.contains("installed greeting 1.2.0 from vendor/greeting"),
        "{out}"
    );
    let d1 = b.digest();

    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let cfg = check_and_unpack(&b.app_layout(), "latest", &bundle);
    // The app image is the bookworm run image plus the build's layers.
    assert_eq!(
        cfg["config"]["Labels"]["io.buildpacks.stack.id"],
        "io.buildpacks.stacks.bookworm"
    );
    let (ran, text) = run_bundle(&bundle);
    assert!(ran, "the app failed:\n{text}");
    assert!(text.contains(EXPECTED), "unexpected app output:\n{text}");

    // Rebuild: the dependencies layer comes back from the cache, is kept, and the image is identical.
    let (ok, out2, rebuild) = b.creator(&[]);
    assert!(ok, "rebuild failed:\n{out2}");
    assert!(out2.contains("reusing the dependencies layer"), "{out2}");
    assert_eq!(b.digest(), d1, "rebuild changed the image:\n{out2}");
    println!("python sample (creator, layout): fresh {fresh:.2}s, rebuild {rebuild:.2}s");
}
