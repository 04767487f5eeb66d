//! `creator -build-image` (issue 8 item 2; checklist §9 CR-01, CR-05, CR-07): detect and build run inside
//! the build image's root filesystem (user namespace + chroot), not on the host. The build image is the
//! busybox test image plus a marker file the host does not have; the test buildpack copies that file
//! into a launch layer, so the app image can only contain it if the build really ran in the build image.
//! The app image goes to an OCI layout, is unpacked with umoci and its default process runs through the
//! launcher in a chroot. A rebuild reuses the unpacked build image and every layer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_acceptance::harness::{bin_dir, running_as_root, ContainerRoot, Output};
use cnb_acceptance::images::{busybox, copy_layout};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use cnb_lifecycle::archive::{Compression, LayerBuilder, Meta, Sink, Source};
use cnb_lifecycle::image::layout::{Layout, Selector};
use cnb_lifecycle::image::{Image, ImageBuilder};
use e2e_support::{check_and_unpack, run_bundle};

const MARKER: &str = "only-in-the-busybox-build-image";
const APP: &str = "localhost/test/app:latest";

/// The busybox image plus `/etc/cnb-build-image-marker`, as an OCI layout at `dir`.
fn build_image(dir: &Path, with_user_env: bool) -> PathBuf {
    let base = busybox();
    let img = Image::from_layout(&base.layout, &Selector::Tag(base.tag.clone()), None).unwrap();
    let layout = Layout::create(dir).unwrap();
    let mut b = LayerBuilder::new();
    b.absolute_names(false);
    b.add(Source::Dir {
        path: "etc".into(),
        meta: Meta::root(0o755),
    });
    b.add(Source::Bytes {
        path: "etc/cnb-build-image-marker".into(),
        data: format!("{MARKER}\n").into_bytes(),
        meta: Meta::root(0o644),
    });
    let info = b
        .write(
            Compression::Gzip { level: 6 },
            Sink::BlobDir(layout.blob_dir()),
        )
        .unwrap();
    let mut ib = ImageBuilder::from_base(&img).unwrap();
    ib.add_layer(&info, Some("build image marker".into()))
        .unwrap();
    if !with_user_env {
        ib.remove_env("CNB_USER_ID");
        ib.remove_env("CNB_GROUP_ID");
    }
    ib.save_to_layout(&layout, &["latest".to_string()]).unwrap();
    unshare_blobs(dir);
    dir.to_path_buf()
}

/// Replaces hard links into the shared cached busybox image by real copies: the tests chown their
/// volumes (a rootless creator even to subordinate ids), which must not touch other tests' inodes.
fn unshare_blobs(layout: &Path) {
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let bytes = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, bytes).unwrap();
    }
}

/// A container root with the marker buildpack, the order, an app, a run image under the layout dir.
struct Setup {
    /// The container root.
    root: ContainerRoot,
    /// Scratch outside the root.
    tmp: tempfile::TempDir,
}

impl Setup {
    /// Lays everything out.
    fn new() -> Self {
        let root = ContainerRoot::new();
        let tmp = tempfile::tempdir().unwrap();
        let bp = "cnb/buildpacks/test_marker/0.1.0";
        root.write(
            format!("{bp}/buildpack.toml"),
            "api = \"0.10\"\n[buildpack]\nid = \"test/marker\"\nversion = \"0.1.0\"\n[[targets]]\nos = \"linux\"\n",
        );
        root.write_executable(
            format!("{bp}/bin/detect"),
            "#!/bin/sh\ntest -f /etc/cnb-build-image-marker || { echo 'not in the build image' >&2; exit 100; }\nexit 0\n",
        );
        root.write_executable(
            format!("{bp}/bin/build"),
            r#"#!/bin/sh
set -eu
layers="${CNB_LAYERS_DIR:-$1}"
echo "---> marker build as uid $(id -u) (HOME=$HOME)"
mkdir -p "$layers/marker"
cp /etc/cnb-build-image-marker "$layers/marker/marker.txt"
if [ -f /etc/cnb-build-extension ]; then cp /etc/cnb-build-extension "$layers/marker/extension.txt"; fi
printf '[types]\nlaunch = true\ncache = true\n' > "$layers/marker.toml"
cat > "$layers/launch.toml" <<TOML
[[processes]]
type = "web"
command = ["/bin/sh", "-c", "echo app says: \$(cat /layers/test_marker/marker/*.txt)"]
default = true
TOML
"#,
        );
        root.write(
            "cnb/order.toml",
            "[[order]]\n[[order.group]]\nid = \"test/marker\"\nversion = \"0.1.0\"\n",
        );
        root.write("workspace/app.txt", "hello\n");
        root.mkdir("platform");
        root.mkdir("cache");
        root.write(
            "cnb/run.toml",
            "[[images]]\nimage = \"localhost/test/run:latest\"\n",
        );
        let run = copy_layout(busybox(), &root.join("oci/localhost/test/run/latest"));
        unshare_blobs(&run.layout);
        // As a platform prepares its volumes: the build user owns them (the layout dir included).
        root.chown(1000, 1000);
        Setup { root, tmp }
    }

    /// Where unpacked build images are cached.
    fn rootfs_cache(&self) -> PathBuf {
        self.tmp.path().join("rootfs-cache")
    }

    /// `creator` as root with `extra` flags, to a layout.
    fn creator(&self, api: &str, extra: &[String]) -> Output {
        let r = &self.root;
        let mut args = vec![
            "-layout".to_string(),
            format!("-layout-dir={}", r.join("oci").display()),
            format!("-run={}", r.join("cnb/run.toml").display()),
            format!("-cache-dir={}", r.join("cache").display()),
            format!("-launcher={}", bin_dir().join("launcher").display()),
        ];
        args.extend(extra.iter().cloned());
        args.push(APP.into());
        r.phase("creator")
            .as_current_user()
            .platform_api(api)
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .env(
                "CNB_BUILD_IMAGE_CACHE",
                self.rootfs_cache().display().to_string(),
            )
            .env(
                "CNB_ORDER_PATH",
                r.join("cnb/order.toml").display().to_string(),
            )
            .args(args)
            .run()
    }

    /// `creator -build-image=<build_image>` as the unprivileged `uid:gid` (a subordinate range), with
    /// everything it reads in the container root; `extra` flags before the image name.
    fn creator_as(&self, uid: u32, gid: u32, build_image: &Path, extra: &[String]) -> Output {
        let r = &self.root;
        let mut args = vec![
            "-layout".to_string(),
            format!("-layout-dir={}", r.join("oci").display()),
            format!("-run={}", r.join("cnb/run.toml").display()),
            format!("-launcher={}", bin_dir().join("launcher").display()),
            format!("-build-image={}", build_image.display()),
        ];
        args.extend(extra.iter().cloned());
        args.push(APP.to_string());
        r.phase("creator")
            .user(uid, gid)
            .platform_api("0.14")
            .env("HOME", r.path().display().to_string())
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .env(
                "CNB_BUILD_IMAGE_CACHE",
                r.join("rootfs-cache").display().to_string(),
            )
            .env(
                "CNB_ORDER_PATH",
                r.join("cnb/order.toml").display().to_string(),
            )
            .args(args)
            .run()
    }

    /// The app image's layout.
    fn app_layout(&self) -> PathBuf {
        self.root.join("oci/localhost/test/app/latest")
    }

    /// The app image digest from report.toml.
    fn digest(&self) -> String {
        let report = fs::read_to_string(self.root.join("layers/report.toml")).unwrap();
        let v: toml::Table = report.parse().unwrap();
        v["image"]["digest"].as_str().unwrap().to_string()
    }

    /// Unpacks the app image with umoci and runs its default process through the launcher in a chroot as
    /// the image's user; returns the bundle's rootfs and the process output.
    fn run_app(&self) -> (PathBuf, String) {
        let bundle = self.tmp.path().join(format!(
            "bundle-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        check_and_unpack(&self.app_layout(), "latest", &bundle);
        let (ok, text) = run_bundle(&bundle);
        assert!(ok, "app failed: {text}");
        (bundle.join("rootfs"), text)
    }
}

fn need_root() -> bool {
    if !running_as_root() {
        println!("SKIPPED: needs root (user namespace with an identity map, chroot, uid 1000)");
        return false;
    }
    true
}

#[test]
fn creator_builds_inside_a_build_image_layout_and_rebuild_reuses_it() {
    if !need_root() {
        return;
    }
    assert!(
        !Path::new("/etc/cnb-build-image-marker").exists(),
        "the host must not have the marker"
    );
    let s = Setup::new();
    let bi = build_image(&s.tmp.path().join("build-image"), true);
    let flag = format!("-build-image={}", bi.display());

    let t = std::time::Instant::now();
    let first = s.creator("0.14", std::slice::from_ref(&flag));
    let fresh = t.elapsed();
    first.assert_success();
    for section in [
        "===> ANALYZING",
        "===> DETECTING",
        "===> RESTORING",
        "===> BUILDING",
        "===> EXPORTING",
    ] {
        first.assert_contains(section);
    }
    first.assert_contains("root filesystem unpacked");
    // CR-05: the buildpack ran as the build image's CNB_USER_ID with its HOME from the image's passwd.
    first.assert_contains("---> marker build as uid 1000 (HOME=/home/cnb)");
    let d1 = s.digest();
    let (rootfs, out) = s.run_app();
    assert_eq!(
        fs::read_to_string(rootfs.join("layers/test_marker/marker/marker.txt")).unwrap(),
        format!("{MARKER}\n")
    );
    assert!(out.contains(&format!("app says: {MARKER}")), "{out}");

    // Rebuild: the unpacked build image and every layer are reused; same image.
    let t = std::time::Instant::now();
    let second = s.creator("0.14", std::slice::from_ref(&flag));
    let rebuild = t.elapsed();
    second.assert_success();
    second.assert_contains("root filesystem reused from cache");
    second.assert_not_contains("Adding layer");
    assert_eq!(s.digest(), d1, "same inputs must give the same digest");
    // The cached tree stayed clean: no mount points or build output leaked into it.
    let cached: Vec<_> = fs::read_dir(s.rootfs_cache())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(!cached[0].join("layers/test_marker").exists());
    assert!(!cached[0].join("cnb/lifecycle").exists());
    println!(
        "TIMING creator -build-image (layout): fresh {:.2}s, rebuild {:.2}s",
        fresh.as_secs_f64(),
        rebuild.as_secs_f64()
    );
}

#[test]
fn creator_build_image_from_a_registry_reference() {
    if !need_root() {
        return;
    }
    let reg = Registry::start(RegistryOptions::plain());
    let s = Setup::new();
    let bi = build_image(&s.tmp.path().join("build-image"), true);
    let reference = reg.image("test/build:latest");
    reg.skopeo_copy(
        &format!("oci:{}:latest", bi.display()),
        &format!("docker://{reference}"),
    );
    let t = std::time::Instant::now();
    let out = s
        .root
        .phase("creator")
        .as_current_user()
        .platform_api("0.13")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env(
            "CNB_BUILD_IMAGE_CACHE",
            s.rootfs_cache().display().to_string(),
        )
        .env(
            "CNB_ORDER_PATH",
            s.root.join("cnb/order.toml").display().to_string(),
        )
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", s.root.join("oci").display()),
            format!("-run={}", s.root.join("cnb/run.toml").display()),
            format!("-launcher={}", bin_dir().join("launcher").display()),
            format!("-build-image={reference}"),
            APP.to_string(),
        ])
        .run();
    let fresh = t.elapsed();
    out.assert_success();
    out.assert_contains("root filesystem unpacked");
    let (rootfs, app) = s.run_app();
    assert!(rootfs
        .join("layers/test_marker/marker/marker.txt")
        .is_file());
    assert!(app.contains(MARKER), "{app}");
    println!(
        "TIMING creator -build-image (registry): fresh {:.2}s",
        fresh.as_secs_f64()
    );
}

#[test]
fn creator_build_image_errors_name_the_image_cr07() {
    if !need_root() {
        return;
    }
    let s = Setup::new();
    // Not a layout: exit 3 (invalid inputs), names the path.
    let missing = s.tmp.path().join("nope");
    let out = s.creator("0.14", &[format!("-build-image={}", missing.display())]);
    out.assert_code(3);
    out.assert_contains("is not an OCI image layout");
    out.assert_contains(&missing.display().to_string());
    // Not a build image (no CNB_USER_ID/CNB_GROUP_ID): exit 3.
    let bad = build_image(&s.tmp.path().join("not-build"), false);
    let out = s.creator("0.14", &[format!("-build-image={}", bad.display())]);
    out.assert_code(3);
    out.assert_contains("is not a build image");
    // A registry reference nobody serves: exit 3, names the reference.
    let reg = Registry::start(RegistryOptions::plain());
    let r = reg.image("test/absent:latest");
    let out = s
        .root
        .phase("creator")
        .as_current_user()
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .args([
            "-layout".to_string(),
            format!("-layout-dir={}", s.root.join("oci").display()),
            format!("-build-image={r}"),
            APP.to_string(),
        ])
        .run();
    out.assert_code(3);
    out.assert_contains("failed to find accessible build image");
    out.assert_contains(&r);
}

/// Adds the test extension `test/ext` (a build.Dockerfile and a run.Dockerfile, each writing a file)
/// before the marker buildpack.
fn add_extension(s: &Setup) {
    let ext = "cnb/extensions/test_ext/0.1.0";
    s.root.write(
        format!("{ext}/extension.toml"),
        "api = \"0.10\"\n[extension]\nid = \"test/ext\"\nversion = \"0.1.0\"\n",
    );
    s.root
        .write_executable(format!("{ext}/bin/detect"), "#!/bin/sh\nexit 0\n");
    s.root.write_executable(
        format!("{ext}/bin/generate"),
        r#"#!/bin/sh
set -eu
out="${CNB_OUTPUT_DIR:-$1}"
mkdir -p "$out"
for kind in build run; do
cat > "$out/$kind.Dockerfile" <<DOCKERFILE
ARG base_image
FROM \${base_image}
USER root
RUN echo from-$kind-extension > /etc/cnb-$kind-extension
ARG user_id
USER \${user_id}
DOCKERFILE
done
"#,
    );
    s.root.write(
        "cnb/order.toml",
        "[[order-extensions]]\n[[order-extensions.group]]\nid = \"test/ext\"\nversion = \"0.1.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/marker\"\nversion = \"0.1.0\"\n",
    );
    s.root.chown(1000, 1000);
}

#[test]
fn creator_without_build_image_refuses_to_extend_the_host() {
    if !need_root() {
        return;
    }
    let s = Setup::new();
    add_extension(&s);
    // On the host the marker buildpack would not detect: let it pass there.
    s.root.write_executable(
        "cnb/buildpacks/test_marker/0.1.0/bin/detect",
        "#!/bin/sh\nexit 0\n",
    );
    s.root.chown(1000, 1000);
    let out = s.creator("0.14", &[]);
    out.assert_code(102);
    out.assert_contains("pass -build-image");
    assert!(!Path::new("/etc/cnb-build-extension").exists());
    assert!(!Path::new("/etc/cnb-run-extension").exists());
}

#[test]
fn creator_applies_build_and_run_extensions_in_the_build_image() {
    if !need_root() {
        return;
    }
    let s = Setup::new();
    add_extension(&s);
    let bi = build_image(&s.tmp.path().join("build-image"), true);
    let flag = format!("-build-image={}", bi.display());
    let t = std::time::Instant::now();
    let first = s.creator("0.14", std::slice::from_ref(&flag));
    let fresh = t.elapsed();
    first.assert_success();
    first.assert_contains("===> EXTENDING (BUILD)");
    first.assert_contains("===> EXTENDING (RUN)");
    first.assert_contains("applied 1 build Dockerfile(s)");
    first.assert_contains("applied 1 run Dockerfile(s)");
    // Neither the host nor the cached build image was changed.
    assert!(!Path::new("/etc/cnb-build-extension").exists());
    assert!(!Path::new("/etc/cnb-run-extension").exists());
    for e in fs::read_dir(s.rootfs_cache()).unwrap() {
        let p = e.unwrap().path();
        assert!(!p.join("etc/cnb-build-extension").exists(), "{p:?}");
    }
    // The extended run image was written for the exporter (EX-05).
    let run_dir = s.root.join("layers/extended/run");
    let written: Vec<_> = fs::read_dir(&run_dir).unwrap().collect();
    assert_eq!(written.len(), 1, "{run_dir:?}");

    // The build extension's effect is visible in what the buildpack produced.
    let (rootfs, out) = s.run_app();
    assert_eq!(
        fs::read_to_string(rootfs.join("layers/test_marker/marker/extension.txt")).unwrap(),
        "from-build-extension\n"
    );
    assert!(out.contains("from-build-extension"), "{out}");
    // The extended run image's top layer holds the run extension's file.
    assert_eq!(
        extended_run_file(
            &written[0].as_ref().unwrap().path(),
            "etc/cnb-run-extension"
        ),
        Some("from-run-extension\n".to_string())
    );
    // The exporter built the app image on the extended run image: the run extension's file is there.
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/cnb-run-extension")).unwrap_or_default(),
        "from-run-extension\n",
        "the app image lacks the run extension's layer"
    );

    let t = std::time::Instant::now();
    let second = s.creator("0.14", std::slice::from_ref(&flag));
    let rebuild = t.elapsed();
    second.assert_success();
    // The extender's step cache serves both RUN steps on the rebuild.
    second.assert_contains("0 RUN step(s) executed, 1 from cache");
    second.assert_not_contains("Adding layer 'test/marker:marker'");
    println!(
        "TIMING creator -build-image with build+run extensions: fresh {:.2}s, rebuild {:.2}s",
        fresh.as_secs_f64(),
        rebuild.as_secs_f64()
    );
}

/// The contents of `path` in the top layer of the extended run image layout at `dir`.
fn extended_run_file(dir: &Path, path: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let top = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // GNU tar (an independent reader) detects the compression itself.
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(blob(&top))
        .arg("--wildcards")
        .arg(format!("*{path}"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn creator_build_image_rootless_with_subordinate_ids() {
    if !need_root() {
        return;
    }
    let (uid, gid) = cnb_acceptance::rootless::ensure_user();
    let s = Setup::new();
    // Everything the unprivileged user reads lives in the container root (chowned to it by the harness).
    let bi = build_image(&s.root.join("build-image"), true);
    let t = std::time::Instant::now();
    let out = s.creator_as(uid, gid, &bi, &[]);
    out.assert_success();
    // Inside the user namespace the buildpack still runs as the build image's CNB_USER_ID.
    out.assert_contains("---> marker build as uid 1000");
    println!(
        "TIMING creator -build-image rootless (subuid range): fresh {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let (rootfs, app) = s.run_app();
    assert!(rootfs
        .join("layers/test_marker/marker/marker.txt")
        .is_file());
    assert!(app.contains(MARKER), "{app}");
}

/// Issue 19 item 4: a rootless `creator -build-image` applies build and run extensions inside the
/// user namespace it already set up (no nested one), and the app image carries the run extension.
#[test]
fn creator_build_image_rootless_applies_extensions() {
    if !need_root() {
        return;
    }
    let (uid, gid) = cnb_acceptance::rootless::ensure_user();
    let s = Setup::new();
    add_extension(&s);
    let bi = build_image(&s.root.join("build-image"), true);
    let cache = format!("-cache-dir={}", s.root.join("cache").display());
    let run = |label: &str| {
        let t = std::time::Instant::now();
        let out = s.creator_as(uid, gid, &bi, std::slice::from_ref(&cache));
        out.assert_success();
        println!(
            "TIMING creator -build-image rootless with extensions, {label}: {:.2}s",
            t.elapsed().as_secs_f64()
        );
        out
    };
    let first = run("fresh");
    first.assert_contains("applied 1 build Dockerfile(s)");
    first.assert_contains("applied 1 run Dockerfile(s)");
    first.assert_not_contains("unshare");
    let (rootfs, app) = s.run_app();
    assert_eq!(
        fs::read_to_string(rootfs.join("layers/test_marker/marker/extension.txt")).unwrap(),
        "from-build-extension\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/cnb-run-extension")).unwrap_or_default(),
        "from-run-extension\n",
        "the app image lacks the run extension's layer"
    );
    assert!(app.contains("from-build-extension"), "{app}");
    // A rebuild is served from the step cache: no RUN executes.
    let second = run("rebuild");
    second.assert_contains("0 RUN step(s) executed, 1 from cache");
}

/// EX-09 with the creator's executor (the build image's own namespace): a failing RUN in a
/// build.Dockerfile and a final `USER root` in a run.Dockerfile exit 102 naming the file and line (or
/// the rule), and nothing is left in `<layers>/extended`.
#[test]
fn creator_build_image_extension_errors_exit_102() {
    if !need_root() {
        return;
    }
    for (kind, body, needle) in [
        (
            "build",
            "USER root\nRUN echo boom; exit 7",
            "build.Dockerfile:4: RUN failed with exit code 7",
        ),
        (
            "run",
            "USER root\nRUN true",
            "the final user ID is 0 (root)",
        ),
    ] {
        let s = Setup::new();
        add_extension(&s);
        s.root.write_executable(
            "cnb/extensions/test_ext/0.1.0/bin/generate",
            format!(
                "#!/bin/sh\nset -eu\nout=\"${{CNB_OUTPUT_DIR:-$1}}\"\nmkdir -p \"$out\"\nprintf 'ARG base_image\\nFROM ${{base_image}}\\n{}\\n' > \"$out/{kind}.Dockerfile\"\n",
                body.replace('\n', "\\n")
            ),
        );
        s.root.chown(1000, 1000);
        let bi = build_image(&s.tmp.path().join("build-image"), true);
        let out = s.creator("0.14", &[format!("-build-image={}", bi.display())]);
        out.assert_code(102);
        out.assert_contains(needle);
        let left: Vec<_> = fs::read_dir(s.root.join("layers/extended/run"))
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }
}
