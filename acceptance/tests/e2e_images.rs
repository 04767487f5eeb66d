//! Images written by the project's own writer (issue 8 item 3, `make image`): the `cnb-mkimage` developer
//! tool, the sample base-image recipes built with it, and the lifecycle's own image. Each layout is checked
//! with oci-image-tool, skopeo and umoci, and something in it is run in a chroot. Checklist: IM-10
//! (normalised entries: owners kept, mtimes fixed), IM-12…IM-14 (sorted entries, reproducible digests),
//! and the platform spec's build/run image requirements (`CNB_USER_ID`/`CNB_GROUP_ID`, `io.buildpacks.*`
//! labels).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::process::Command;

use cnb_acceptance::harness::{bin_dir, running_as_root, workspace_dir};
use e2e_support::{check_and_unpack, chroot_bin, mkimage, tool};

#[test]
fn mkimage_writes_a_rootfs_with_its_owners_and_a_reproducible_digest() {
    if !running_as_root() {
        println!("SKIPPED: needs root to give the test rootfs several owners");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("rootfs");
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    fs::create_dir_all(r.join("home/cnb")).unwrap();
    fs::write(r.join("usr/bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(r.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/tool-link")).unwrap();
    symlink("tool", r.join("usr/bin/alias")).unwrap();
    fs::write(r.join("home/cnb/.profile"), "# profile\n").unwrap();
    tool(
        "chown",
        &["-R", "1000:1001", r.join("home/cnb").to_str().unwrap()],
    );
    tool("mkfifo", &[r.join("fifo").to_str().unwrap()]);

    let mk = |layout: &std::path::Path| {
        let out = Command::new(mkimage())
            .arg(format!("--layout={}", layout.display()))
            .args(["--tag", "t1", "--rootfs"])
            .arg(&r)
            .args(["--build-user", "1000:1001", "--env", "PATH=/usr/bin:/bin"])
            .args(["--label", "io.example=yes", "--cmd", r#"["/usr/bin/tool"]"#])
            .args([
                "--base",
                "io.example.stack,debian,12,test image,https://example.com",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr,
        )
    };
    let (d1, stderr) = mk(&tmp.path().join("l1"));
    assert!(d1.starts_with("sha256:"), "{d1}");
    assert!(
        stderr.contains("fifo"),
        "the fifo is reported as left out: {stderr}"
    );
    // Same tree, other mtimes: same digest (IM-12…IM-14).
    tool("touch", &[r.join("usr/bin/tool").to_str().unwrap()]);
    let (d2, _) = mk(&tmp.path().join("l2"));
    assert_eq!(d1, d2);

    let bundle = tmp.path().join("bundle");
    let cfg = check_and_unpack(&tmp.path().join("l1"), "t1", &bundle);
    let c = &cfg["config"];
    assert_eq!(c["User"], "1000:1001");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"CNB_USER_ID=1000") && env.contains(&"CNB_GROUP_ID=1001"));
    for (k, v) in [
        ("io.example", "yes"),
        ("io.buildpacks.stack.id", "io.example.stack"),
        ("io.buildpacks.base.id", "io.example.stack"),
        ("io.buildpacks.base.distro.name", "debian"),
        ("io.buildpacks.base.distro.version", "12"),
    ] {
        assert_eq!(c["Labels"][k], v, "label {k}");
    }
    let rootfs = bundle.join("rootfs");
    let md = fs::metadata(rootfs.join("home/cnb/.profile")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1001));
    let md = fs::metadata(rootfs.join("usr/bin/tool")).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o4755));
    assert_eq!(md.mtime(), 315_532_801);
    // The uniformly owned /usr subtree went in as one tree: the hard link is kept.
    assert_eq!(
        md.ino(),
        fs::metadata(rootfs.join("usr/bin/tool-link"))
            .unwrap()
            .ino()
    );
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/alias")).unwrap(),
        std::path::Path::new("tool")
    );
    assert!(!rootfs.join("fifo").exists());

    // --owner gives every entry one owner (the lifecycle image: root).
    let out = Command::new(mkimage())
        .arg(format!("--layout={}", tmp.path().join("l3").display()))
        .arg(format!("--rootfs={}", r.display()))
        .args(["--owner", "0:0", "--tag", "t1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let b3 = tmp.path().join("bundle3");
    check_and_unpack(&tmp.path().join("l3"), "t1", &b3);
    let md = fs::metadata(b3.join("rootfs/home/cnb/.profile")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
}

#[test]
fn mkimage_rejects_bad_arguments_with_a_clear_error() {
    let out = Command::new(mkimage())
        .args(["--layout", "/nonexistent-dir/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rootfs is required"));
    let out = Command::new(mkimage())
        .args(["--layout", "/tmp/x", "--rootfs", "/nonexistent-rootfs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-rootfs"));
}

#[test]
fn busybox_recipe_writes_a_valid_build_and_run_image() {
    if !running_as_root() {
        println!("SKIPPED: the busybox recipe chroots and chowns; needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("busybox");
    let out = Command::new("sh")
        .arg(workspace_dir().join("samples/base-images/busybox/build.sh"))
        .arg(&layout)
        .env("CNB_MKIMAGE", mkimage())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bundle = tmp.path().join("bundle");
    let cfg = check_and_unpack(&layout, "latest", &bundle);
    assert_eq!(cfg["config"]["User"], "1000:1000");
    assert_eq!(
        cfg["config"]["Labels"]["io.buildpacks.stack.id"],
        "io.buildpacks.stacks.busybox"
    );
    assert_eq!(cfg["config"]["Labels"]["io.buildpacks.rebasable"], "true");
    let md = fs::metadata(bundle.join("rootfs/home/cnb")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    // Its shell works as the build user.
    let out = Command::new(chroot_bin())
        .arg("--userspec=1000:1000")
        .arg(bundle.join("rootfs"))
        .args(["/bin/sh", "-c", "id -u; echo ok > /tmp/x && cat /tmp/x"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\nok\n");
}

#[test]
fn lifecycle_image_holds_the_static_phases_and_runs_in_an_empty_chroot() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("lifecycle-image");
    let out = Command::new("sh")
        .arg(workspace_dir().join("samples/lifecycle-image.sh"))
        .arg(bin_dir())
        .arg(&layout)
        .env("CNB_MKIMAGE", mkimage())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let version = tool(
        &bin_dir().join("lifecycle").to_string_lossy(),
        &["lifecycle-descriptor"],
    );
    let version = version
        .lines()
        .skip_while(|l| l.trim() != "[lifecycle]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let bundle = tmp.path().join("bundle");
    let cfg = check_and_unpack(&layout, &version, &bundle);
    let c = &cfg["config"];
    assert_eq!(c["WorkingDir"], "/layers");
    assert_eq!(c["Labels"]["io.buildpacks.lifecycle.version"], version);
    let apis: serde_json::Value = serde_json::from_str(
        c["Labels"]["io.buildpacks.lifecycle.apis"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(apis["platform"]["supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("0.15")));
    assert!(apis["buildpack"]["supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("0.12")));
    let legacy: serde_json::Value = serde_json::from_str(
        c["Labels"]["io.buildpacks.builder.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(legacy["lifecycle"]["version"], version);
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("cnb/lifecycle/lifecycle.toml").is_file());
    // G-01/G-03: the reference's layout, one binary and symlinks, the launcher apart, SBOMs beside them.
    for p in ["lifecycle", "launcher"] {
        let md = fs::symlink_metadata(rootfs.join("cnb/lifecycle").join(p)).unwrap();
        assert!(md.is_file(), "{p}");
        assert_eq!(md.mode() & 0o777, 0o755, "{p}");
        if running_as_root() {
            assert_eq!((md.uid(), md.gid()), (0, 0), "{p}");
        }
    }
    for p in cnb_acceptance::harness::PHASE_LINKS {
        let link = rootfs.join("cnb/lifecycle").join(p);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            std::path::Path::new("lifecycle"),
            "{p}"
        );
    }
    for f in cnb_acceptance::harness::sbom_files() {
        let md = fs::metadata(rootfs.join("cnb/lifecycle").join(&f)).unwrap();
        assert_eq!(md.mode() & 0o777, 0o644, "{f}");
    }
    // The image holds nothing but /cnb: the binaries must be static to run at all.
    let mut cmd = if running_as_root() {
        let mut c = Command::new(chroot_bin());
        c.arg(&rootfs).arg("/cnb/lifecycle/creator");
        c
    } else {
        Command::new(rootfs.join("cnb/lifecycle/creator"))
    };
    let out = cmd
        .arg("-version")
        .env_clear()
        .env("CNB_PLATFORM_API", "0.14")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // `-version` is the image's version, plus `+<commit>` when the build was stamped (G-04).
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        printed == version || printed.starts_with(&format!("{version}+")),
        "{printed} vs {version}"
    );
}
