//! Issue 19: the extender where platforms really run it — in the build and run image's own containers
//! (a real Docker Engine, `acceptance/src/docker.rs`) under Docker's **default seccomp profile and
//! capabilities**, where `unshare(CLONE_NEWUSER)` is refused, as pack and the Tekton
//! `buildpacks-phases` task run it: every other phase as the cnb user (1000) in the builder
//! container, the extender as root, the lifecycle bind-mounted read-only at `/cnb/lifecycle`, the
//! volumes `/layers`, `/workspace`, `/platform`, `/kaniko` shared between the steps.
//!
//! Each case checks the produced layers by content (nothing from a volume or a mounted file), the
//! modes of everything the root extender wrote (umask 077, read back as the cnb user), runs the app
//! image in a container, and rebuilds from the step cache with no `RUN` executed. Checklist: EX-01…
//! EX-09, EX-11, RS-06, EP-02.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cnb_acceptance::docker::Docker;
use cnb_acceptance::harness::{bin_dir, chown_tree, ContainerRoot};
use cnb_acceptance::images::{busybox_with, BaseImage, BaseImageOptions};
use cnb_acceptance::registry::{Registry, RegistryOptions};

const API: &str = "0.14";

/// The daemon, or `None` after printing why the test cannot run here.
fn docker() -> Option<&'static Docker> {
    match Docker::shared() {
        Ok(d) => Some(d),
        Err(why) => {
            println!("SKIPPED: no Docker Engine here: {why}");
            None
        }
    }
}

/// The busybox build and run images (distinct digests), loaded into the daemon once.
struct Images {
    build: BaseImage,
    run: BaseImage,
}

fn images(d: &Docker) -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let img = |role: &str| {
            busybox_with(&BaseImageOptions {
                labels: vec![("test.role".into(), role.into())],
                ..Default::default()
            })
        };
        let (build, run) = (img("build"), img("run"));
        d.load_layout(&build.layout, &build.tag, "cnb-ext-test/build:latest");
        d.load_layout(&run.layout, &run.tag, "cnb-ext-test/run:latest");
        Images { build, run }
    })
}

/// Where the images and the app image live.
enum Mode {
    /// A loopback registry (`--network host`).
    Registry(Registry),
    /// OCI layouts under `/layout-repo` (`-layout`, Platform ≥ 0.12).
    Layout,
}

/// One build's volumes on the host, as a platform prepares them (owned by the cnb user).
struct Flow {
    d: &'static Docker,
    root: ContainerRoot,
    mode: Mode,
}

const GENERATE: &str = r#"#!/bin/sh
set -eu
out="${CNB_OUTPUT_DIR:-$1}"
mkdir -p "$out"
for kind in KINDS; do
cat > "$out/$kind.Dockerfile" <<DOCKERFILE
ARG base_image
FROM \${base_image}
USER root
RUN echo from-$kind-extension > /etc/cnb-$kind-extension && rm -f /bin/vi && mkdir -p /opt/$kind && echo \$(id -u) > /opt/$kind/ran-as
ARG user_id
USER \${user_id}
DOCKERFILE
done
"#;

const BUILD: &str = r#"#!/bin/sh
set -eu
layers="${CNB_LAYERS_DIR:-$1}"
echo "---> test build as uid $(id -u): $(cat /etc/cnb-build-extension 2>/dev/null || echo no-build-extension)"
mkdir -p "$layers/marker"
cat /etc/cnb-build-extension > "$layers/marker/build-ext.txt" 2>/dev/null || echo none > "$layers/marker/build-ext.txt"
printf '[types]\nlaunch = true\ncache = true\n' > "$layers/marker.toml"
cat > "$layers/launch.toml" <<TOML
[[processes]]
type = "web"
command = ["/bin/sh", "-c", "echo app says: \$(cat /layers/test_bp/marker/build-ext.txt) \$(cat /etc/cnb-run-extension 2>/dev/null || echo no-run-extension)"]
default = true
TOML
"#;

/// The test buildpack, the test extension generating `kinds` Dockerfiles, and the order of both.
fn write_buildpack_and_extension(root: &ContainerRoot, kinds: &str) {
    let bp = "cnb/buildpacks/test_bp/0.1.0";
    root.write(
        format!("{bp}/buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"test/bp\"\nversion = \"0.1.0\"\n[[targets]]\nos = \"linux\"\n",
    );
    root.write_executable(format!("{bp}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.write_executable(format!("{bp}/bin/build"), BUILD);
    let ext = "cnb/extensions/test_ext/0.1.0";
    root.write(
        format!("{ext}/extension.toml"),
        "api = \"0.10\"\n[extension]\nid = \"test/ext\"\nversion = \"0.1.0\"\n",
    );
    root.write_executable(format!("{ext}/bin/detect"), "#!/bin/sh\nexit 0\n");
    root.write_executable(
        format!("{ext}/bin/generate"),
        GENERATE.replace("KINDS", kinds),
    );
    root.write(
        "cnb/order.toml",
        "[[order-extensions]]\n[[order-extensions.group]]\nid = \"test/ext\"\nversion = \"0.1.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/bp\"\nversion = \"0.1.0\"\n",
    );
}

impl Flow {
    /// Lays out the buildpack, the extension (`kinds`: which Dockerfiles it generates), the order,
    /// the app and the volumes; pushes or copies the images.
    fn new(d: &'static Docker, layout: bool, kinds: &str) -> Flow {
        let imgs = images(d);
        let root = ContainerRoot::new();
        write_buildpack_and_extension(&root, kinds);
        root.write("workspace/app.txt", "hello\n");
        root.mkdir("kaniko");
        root.mkdir("layout-repo");
        let mode = if layout {
            for (name, img) in [("build", &imgs.build), ("run", &imgs.run)] {
                // Real copies: the volumes are chowned below, the cached image's blobs must not be.
                let rel = format!("layout-repo/localhost/cnb/{name}/latest");
                fs::create_dir_all(root.join(&rel).parent().unwrap()).unwrap();
                root.copy_dir(&img.layout, &rel);
            }
            Mode::Layout
        } else {
            let reg = Registry::start(RegistryOptions::plain());
            // The run image with Docker v2 media types, as images pushed by docker are.
            for (name, img, format) in [("build", &imgs.build, "oci"), ("run", &imgs.run, "v2s2")] {
                let out = reg.skopeo_copy_output(
                    &format!("oci:{}:{}", img.layout.display(), img.tag),
                    &format!("docker://{}", reg.image(&format!("cnb/{name}:latest"))),
                    &["--format", format],
                );
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Mode::Registry(reg)
        };
        // The Tekton task's prepare step: the volumes belong to the cnb user.
        chown_tree(root.path(), 1000, 1000);
        Flow { d, root, mode }
    }

    /// An image name as the phases see it.
    fn image(&self, name: &str) -> String {
        match &self.mode {
            Mode::Registry(reg) => reg.image(&format!("cnb/{name}:latest")),
            Mode::Layout => format!("localhost/cnb/{name}:latest"),
        }
    }

    /// `docker run` flags shared by every step: network, volumes, the lifecycle read-only, env.
    fn flags(&self, user: &str) -> Vec<String> {
        let r = &self.root;
        let v = |host: &str, inside: &str, ro: bool| {
            format!(
                "--volume={}:{inside}{}",
                r.join(host).display(),
                if ro { ":ro" } else { "" }
            )
        };
        let mut f = vec![
            format!("--user={user}"),
            v("layers", "/layers", false),
            v("workspace", "/workspace", false),
            v("platform", "/platform", false),
            v("kaniko", "/kaniko", false),
            v("cnb/buildpacks", "/cnb/buildpacks", true),
            v("cnb/extensions", "/cnb/extensions", true),
            v("cnb/order.toml", "/cnb/order.toml", true),
            format!("--volume={}:/cnb/lifecycle:ro", bin_dir().display()),
            format!("--env=CNB_PLATFORM_API={API}"),
            "--env=CNB_USER_ID=1000".into(),
            "--env=CNB_GROUP_ID=1000".into(),
        ];
        match &self.mode {
            Mode::Registry(reg) => {
                f.push("--network=host".into());
                f.push(format!("--env=CNB_INSECURE_REGISTRIES={}", reg.host()));
            }
            Mode::Layout => {
                f.push("--network=none".into());
                f.push(v("layout-repo", "/layout-repo", false));
                f.push("--env=CNB_EXPERIMENTAL_MODE=warn".into());
            }
        }
        f
    }

    /// Flags for the phases that read images in layout mode.
    fn layout_flags(&self) -> Vec<String> {
        match self.mode {
            Mode::Layout => vec!["-layout".into(), "-layout-dir=/layout-repo".into()],
            Mode::Registry(_) => vec![],
        }
    }

    /// Runs `/cnb/lifecycle/<argv…>` (through `sh -c` with `umask 077` when `umask`) in a container of
    /// `image` (`build` or `run`) as `user`, with `extra` docker flags.
    fn step(&self, image: &str, user: &str, extra: &[&str], argv: &[String]) -> (i32, String) {
        let mut args = self.flags(user);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("cnb-ext-test/{image}:latest"));
        args.extend(argv.iter().cloned());
        self.d.run(&args)
    }

    fn ok(&self, image: &str, user: &str, argv: &[String]) -> String {
        let (code, out) = self.step(image, user, &[], argv);
        assert_eq!(code, 0, "{argv:?} in the {image} image failed:\n{out}");
        out
    }

    /// analyze → detect → restore as the cnb user.
    fn prepare(&self) {
        let mut a = vec!["/cnb/lifecycle/analyzer".to_string()];
        a.extend(self.layout_flags());
        a.push(format!("-run-image={}", self.image("run")));
        a.push(self.image("app"));
        self.ok("build", "1000:1000", &a);
        let d = self.ok(
            "build",
            "1000:1000",
            &["/cnb/lifecycle/detector".into(), "-log-level=debug".into()],
        );
        assert!(
            self.root.exists("layers/generated/test_ext"),
            "no Dockerfiles generated:\n{d}"
        );
        let mut r = vec!["/cnb/lifecycle/restorer".to_string()];
        r.extend(self.layout_flags());
        r.push(format!("-build-image={}", self.image("build")));
        self.ok("build", "1000:1000", &r);
    }

    /// The extender as root with umask 077 (`kind` build runs in the build image's container, run in
    /// the run image's), `extra` docker flags.
    fn extend(&self, kind: &str, user: &str, extra: &[&str]) -> (i32, String) {
        let image = kind;
        let cmd =
            format!("umask 077 && exec /cnb/lifecycle/extender -kind={kind} -log-level=debug");
        self.step(image, user, extra, &["/bin/sh".into(), "-c".into(), cmd])
    }

    /// The exporter as the cnb user.
    fn export(&self) -> String {
        let mut e = vec!["/cnb/lifecycle/exporter".to_string()];
        e.extend(self.layout_flags());
        e.push(self.image("app"));
        self.ok("build", "1000:1000", &e)
    }

    /// Runs the app image's default process in a container; returns its output.
    fn run_app(&self) -> String {
        let name = match &self.mode {
            Mode::Registry(reg) => {
                let name = reg.image("cnb/app:latest");
                self.d.ok(&["pull", "-q", &name]);
                name
            }
            Mode::Layout => {
                let name = format!("cnb-ext-test/app-{}:latest", std::process::id());
                let layout = self.root.join("layout-repo/localhost/cnb/app/latest");
                self.d.load_layout(&layout, "latest", &name);
                name
            }
        };
        let (code, out) = self.d.run(&["--network=none".to_string(), name.clone()]);
        let _ = self.d.command().args(["rmi", "-f", &name]).output();
        assert_eq!(code, 0, "the app failed:\n{out}");
        out
    }

    /// The single extended run image directory.
    fn extended_run(&self) -> PathBuf {
        let run = self.root.join("layers/extended/run");
        let dirs: Vec<PathBuf> = fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            dirs.len(),
            1,
            "exactly one entry in {}: {dirs:?}",
            run.display()
        );
        dirs[0].clone()
    }

    /// Nothing the extender may leave behind after a failure.
    fn extended_is_empty(&self) -> bool {
        let dir = self.root.join("layers/extended");
        walk(&dir).iter().all(|p| p.is_dir() && p.ends_with("run")) || !dir.exists()
    }
}

/// Every path under `dir` (not `dir` itself).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Files are 0644 and directories 0755 although the extender ran as root with umask 077.
fn assert_modes(dir: &Path) {
    let all = walk(dir);
    assert!(!all.is_empty(), "{} is empty", dir.display());
    for p in all {
        let m = fs::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode() & 0o777;
        if m.is_dir() {
            assert_eq!(mode, 0o755, "{}", p.display());
        } else if m.is_file() {
            assert_eq!(mode, 0o644, "{}", p.display());
        }
    }
}

/// The names in the extension layers of the extended run image (the blobs present in the sparse
/// layout, read with GNU tar) and the content of `file` in them.
fn extension_layers(dir: &Path, file: &str) -> (Vec<String>, Option<String>) {
    let mut names = Vec::new();
    let mut content = None;
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let list = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&p)
            .output()
            .unwrap();
        if !list.status.success() {
            continue; // the manifest or the config
        }
        names.extend(
            String::from_utf8_lossy(&list.stdout)
                .lines()
                .map(String::from),
        );
        let x = std::process::Command::new("tar")
            .arg("-xOf")
            .arg(&p)
            .arg(file)
            .output()
            .unwrap();
        if x.status.success() {
            content = Some(String::from_utf8_lossy(&x.stdout).into_owned());
        }
    }
    (names, content)
}

/// No layer holds a volume, a mounted file, the lifecycle or the kernel's file systems.
fn assert_clean(names: &[String]) {
    for n in names {
        let n = n.trim_start_matches("./");
        for bad in [
            "layers",
            "workspace",
            "platform",
            "kaniko",
            "cnb",
            "proc",
            "sys",
            "dev",
            "etc/hosts",
            "etc/hostname",
            "etc/resolv.conf",
            ".dockerenv",
            "etc/mtab",
        ] {
            assert!(
                n != bad && !n.starts_with(&format!("{bad}/")),
                "a layer holds {n}: {names:?}"
            );
        }
    }
}

/// Everything under `<layers>/extended` and the kaniko cache can be read by the cnb user.
fn assert_readable_by_cnb(f: &Flow) {
    f.ok(
        "build",
        "1000:1000",
        &[
            "/bin/sh".into(),
            "-c".into(),
            "find /layers/extended /kaniko/cache -type f -exec cat {} + > /dev/null && find /layers/extended /kaniko/cache -type d -exec ls {} + > /dev/null".into(),
        ],
    );
}

/// The whole flow with build and run extensions, in place as root under the default seccomp profile,
/// then a rebuild served from the step cache.
fn build_and_run_extensions_in_place(layout: bool) {
    let Some(d) = docker() else { return };
    let f = Flow::new(d, layout, "build run");
    f.prepare();
    // RS-06 (layout mode too): the run image's manifest and config are where the extender reads them.
    assert_eq!(
        fs::read_dir(f.root.join("kaniko/cache/base"))
            .unwrap()
            .count(),
        2,
        "build and run image saved sparse"
    );

    let (code, build) = f.extend("build", "0:0", &[]);
    assert_eq!(code, 0, "{build}");
    assert!(build.contains("in place (no namespaces)"), "{build}");
    assert!(
        build.contains("1 RUN step(s) executed, 0 step(s) from cache"),
        "{build}"
    );
    // The buildpacks ran as the cnb user on the extended filesystem, in the same container.
    assert!(
        build.contains("---> test build as uid 1000: from-build-extension"),
        "{build}"
    );
    if let Mode::Registry(reg) = &f.mode {
        // The run image's base exactly as the reference restorer leaves it (imgutil sparse layout).
        let manifest = reg.skopeo_inspect_raw("cnb/run:latest");
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let (status, config) = reg.http_get(&format!(
            "/v2/cnb/run/blobs/{}",
            m["config"]["digest"].as_str().unwrap()
        ));
        assert_eq!(status, 200, "{config}");
        let dest = f.root.join("kaniko/cache/base").join(sha256(&manifest));
        fs::remove_dir_all(&dest).unwrap();
        write_reference_sparse(&manifest, config.as_bytes(), &dest);
        chown_tree(&dest, 1000, 1000);
    }
    // Leftovers of earlier builds must not survive: the reference exporter wants one entry.
    for stale in [
        "layers/extended/run/sha256:0123",
        "layers/extended/run/.tmp-extended-old",
    ] {
        f.root.write(format!("{stale}/index.json"), "{}");
    }
    let (code, run) = f.extend("run", "0:0", &[]);
    assert_eq!(code, 0, "{run}");
    assert!(run.contains("in place (no namespaces)"), "{run}");
    let media_type = assert_reference_extended_run(&f.root.join("layers"), 1);
    assert_eq!(
        media_type,
        if layout {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        "the base's media-type family is kept"
    );
    let dir = f.extended_run();
    let (names, content) = extension_layers(&dir, "etc/cnb-run-extension");
    assert_eq!(
        content.as_deref(),
        Some("from-run-extension\n"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "bin/.wh.vi"), "{names:?}");
    assert!(names.iter().any(|n| n == "opt/run/ran-as"), "{names:?}");
    assert_clean(&names);
    assert_modes(&f.root.join("layers/extended"));
    assert_modes(&f.root.join("kaniko/cache/layers"));
    assert_readable_by_cnb(&f);

    let export = f.export();
    assert!(export.contains("test/ext:extended-layer-1"), "{export}");
    let app = f.run_app();
    assert!(
        app.contains("app says: from-build-extension from-run-extension"),
        "{app}"
    );

    // A rebuild in fresh containers: every step from the cache, the same extended run image.
    let first = dir.file_name().unwrap().to_owned();
    let (code, build2) = f.extend("build", "0:0", &[]);
    assert_eq!(code, 0, "{build2}");
    assert!(
        build2.contains("0 RUN step(s) executed, 1 step(s) from cache"),
        "{build2}"
    );
    assert!(build2.contains("from-build-extension"), "{build2}");
    let (code, run2) = f.extend("run", "0:0", &[]);
    assert_eq!(code, 0, "{run2}");
    assert!(
        run2.contains("0 RUN step(s) executed, 1 step(s) from cache"),
        "{run2}"
    );
    assert_eq!(f.extended_run().file_name().unwrap(), first);
}

#[test]
fn extends_in_place_under_the_default_seccomp_profile_registry() {
    build_and_run_extensions_in_place(false);
}

#[test]
fn extends_in_place_under_the_default_seccomp_profile_layout_mode() {
    build_and_run_extensions_in_place(true);
}

/// Rootless: the extender as the cnb user with user namespaces allowed (`seccomp=unconfined`, no
/// other privilege). It cannot write the run image container's `/`, so it extends a private copy
/// (layers from the registry) in a user namespace mapping only its own ids; the build image cannot be
/// extended that way (the build runs on it), which it says clearly. Without the seccomp exception it
/// names what is missing. Errors exit 102.
#[test]
fn extends_the_run_image_rootless_in_a_user_namespace() {
    let Some(d) = docker() else { return };
    let f = Flow::new(d, false, "run");
    f.prepare();
    let unconfined = ["--security-opt=seccomp=unconfined"];
    // No build.Dockerfile: kind build just builds, rootless.
    let (code, build) = f.extend("build", "1000:1000", &unconfined);
    assert_eq!(code, 0, "{build}");
    assert!(build.contains("no Dockerfiles to apply"), "{build}");
    let (code, run) = f.extend("run", "1000:1000", &unconfined);
    assert_eq!(code, 0, "{run}");
    assert!(run.contains("rootless user namespace"), "{run}");
    assert!(
        run.contains("extending a private copy of the run image"),
        "{run}"
    );
    let dir = f.extended_run();
    let (names, content) = extension_layers(&dir, "etc/cnb-run-extension");
    assert_eq!(
        content.as_deref(),
        Some("from-run-extension\n"),
        "{names:?}"
    );
    assert_clean(&names);
    f.export();
    let app = f.run_app();
    assert!(app.contains("app says: none from-run-extension"), "{app}");
    let (code, again) = f.extend("run", "1000:1000", &unconfined);
    assert_eq!(code, 0, "{again}");
    assert!(
        again.contains("0 RUN step(s) executed, 1 step(s) from cache"),
        "{again}"
    );

    // Default seccomp profile and not root: no executor.
    let (code, out) = f.extend("run", "1000:1000", &[]);
    assert_eq!(code, 102, "{out}");
    assert!(
        out.contains("not root and user namespaces unavailable"),
        "{out}"
    );
    // A build image cannot be extended rootless: the build runs on the container's own /.
    let g = Flow::new(d, false, "build");
    g.prepare();
    let (code, out) = g.extend("build", "1000:1000", &unconfined);
    assert_eq!(code, 102, "{out}");
    assert!(out.contains("cannot apply build.Dockerfiles to /"), "{out}");
}

/// EX-09 in every executor: a failing RUN, an unsupported instruction and a final `USER root` in a
/// run.Dockerfile exit 102 with a message naming the file and line (or the rule), and leave nothing
/// in `<layers>/extended`.
#[test]
fn errors_exit_102_and_leave_nothing_behind_in_a_container() {
    let Some(d) = docker() else { return };
    let f = Flow::new(d, false, "run");
    f.prepare();
    let df = f.root.join("layers/generated/test_ext/run.Dockerfile");
    for (text, needle) in [
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo boom; exit 7\nUSER 1000\n",
            "run.Dockerfile:4: RUN failed with exit code 7",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nENTRYPOINT [\"/bin/sh\"]\n",
            "run.Dockerfile:3: instruction ENTRYPOINT is not allowed",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN true\n",
            "the final user ID is 0 (root)",
        ),
    ] {
        fs::write(&df, text).unwrap();
        for (user, extra) in [
            ("0:0", &[][..]),
            ("1000:1000", &["--security-opt=seccomp=unconfined"][..]),
        ] {
            let (code, out) = f.extend("run", user, extra);
            assert_eq!(code, 102, "{user} {text}\n{out}");
            assert!(out.contains(needle), "{needle}\n{out}");
            assert!(
                f.extended_is_empty(),
                "{:?}",
                walk(&f.root.join("layers/extended"))
            );
        }
    }
}

/// One `apt-get install` on the bookworm run image, in place as root in its container under the
/// default seccomp profile (the Debian mirror is reached through the host network): the layer holds
/// the package, not apt's lists of the mounted network files.
#[test]
fn apt_get_in_place_in_a_bookworm_run_image_container() {
    let Some(d) = docker() else { return };
    let bookworm = e2e_support::sample_images("bookworm");
    d.load_layout(&bookworm, "latest", "cnb-ext-test/bookworm:latest");
    let root = ContainerRoot::new();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(bookworm.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // What the restorer leaves: the run image's manifest and config, sparse.
    let base = root.join(format!("kaniko/cache/base/{digest}"));
    sparse_copy(&bookworm, &digest, &base);
    root.write(
        "layers/analyzed.toml",
        format!(
            "[run-image]\n  reference = \"registry.example/bookworm@{digest}\"\n  extend = true\n"
        ),
    );
    root.write(
        "layers/group.toml",
        "[[group]]\n  id = \"test/bp\"\n  version = \"0.1.0\"\n  api = \"0.10\"\n\n[[group-extensions]]\n  id = \"test/ext\"\n  version = \"0.1.0\"\n  api = \"0.10\"\n",
    );
    root.write(
        "layers/generated/test_ext/run.Dockerfile",
        "ARG base_image\nFROM ${base_image}\nUSER root\nRUN apt-get update && apt-get install -y --no-install-recommends tree && rm -rf /var/lib/apt/lists/*\nUSER 1000:1000\n",
    );
    chown_tree(root.path(), 1000, 1000);
    let run = |label: &str| {
        let (code, out) = d.run(&[
            "--user=0:0".into(),
            "--network=host".into(),
            format!("--volume={}:/layers", root.join("layers").display()),
            format!("--volume={}:/kaniko", root.join("kaniko").display()),
            format!("--volume={}:/workspace", root.join("workspace").display()),
            format!("--volume={}:/cnb/lifecycle:ro", bin_dir().display()),
            format!("--env=CNB_PLATFORM_API={API}"),
            "cnb-ext-test/bookworm:latest".into(),
            "/cnb/lifecycle/extender".into(),
            "-kind=run".into(),
        ]);
        assert_eq!(code, 0, "{label}:\n{out}");
        out
    };
    let first = run("fresh");
    assert!(first.contains("1 RUN step(s) executed"), "{first}");
    let run_dir = root.join("layers/extended/run");
    let dir = fs::read_dir(&run_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (names, _) = extension_layers(&dir, "usr/bin/tree");
    assert!(names.iter().any(|n| n == "usr/bin/tree"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("var/lib/apt/lists/")
            && !n.ends_with('/')
            && !n.contains(".wh.")),
        "{names:?}"
    );
    assert_clean(&names);
    let second = run("cached");
    assert!(
        second.contains("0 RUN step(s) executed, 1 step(s) from cache"),
        "{second}"
    );
    let _ = d
        .command()
        .args(["rmi", "-f", "cnb-ext-test/bookworm:latest"])
        .output();
}

/// Copies the manifest and config of `digest` from `layout` into a sparse layout at `dest`
/// ([`write_reference_sparse`]).
fn sparse_copy(layout: &Path, digest: &str, dest: &Path) {
    let blob = |hex: &str| fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    let manifest = blob(digest.trim_start_matches("sha256:"));
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config = blob(
        m["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    write_reference_sparse(&manifest, &config, dest);
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Writes a manifest and its config as the reference restorer does (imgutil `sparse.NewImage(…).Save()`
/// with go-containerregistry's layout writer): `oci-layout` as ggcr writes it, an `index.json` of media
/// type OCI index listing the one manifest (its own media type, size, digest; no annotations), and only
/// the manifest and config blobs, under `<kaniko>/cache/base/<manifest digest>`.
fn write_reference_sparse(manifest: &[u8], config: &[u8], dest: &Path) {
    let blobs = dest.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let digest = sha256(manifest);
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    fs::write(blobs.join(digest.trim_start_matches("sha256:")), manifest).unwrap();
    fs::write(
        blobs.join(sha256(config).trim_start_matches("sha256:")),
        config,
    )
    .unwrap();
    fs::write(
        dest.join("oci-layout"),
        "{\n    \"imageLayoutVersion\": \"1.0.0\"\n}",
    )
    .unwrap();
    fs::write(
        dest.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{{\"mediaType\":\"{}\",\"size\":{},\"digest\":\"{digest}\"}}]}}",
            m["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json"),
            manifest.len()
        ),
    )
    .unwrap();
}

/// Checks `<layers>/extended/run` the way the reference exporter reads it (`image.FromLayoutPath` and
/// `addExtensionLayers`): exactly one entry, named by the manifest digest; an OCI layout whose
/// `index.json` lists exactly that manifest; the config's diffIDs match the manifest's layers; the
/// blobs present are exactly the extension layers (gzip; digest and diffID check out), the base layers
/// are referenced only; one non-empty history entry per layer, the extension ones
/// `Layer: '<instruction>', Created by extension: test/ext`; `io.buildpacks.rebasable` set; every file
/// 0644, every directory 0755. Returns the manifest's media type.
fn assert_reference_extended_run(layers: &Path, base_layers: usize) -> String {
    let run = layers.join("extended/run");
    let entries: Vec<PathBuf> = fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "the reference exporter wants one entry: {entries:?}"
    );
    let dir = &entries[0];
    assert!(dir.join("oci-layout").is_file());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    let digest = manifests[0]["digest"].as_str().unwrap();
    assert_eq!(dir.file_name().unwrap().to_string_lossy(), digest);
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest_bytes = fs::read(blob(digest)).unwrap();
    assert_eq!(sha256(&manifest_bytes), digest);
    assert_eq!(
        manifests[0]["size"].as_u64().unwrap(),
        manifest_bytes.len() as u64
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let config_bytes = fs::read(blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    let c: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    let layer_list = m["layers"].as_array().unwrap();
    let diff_ids = c["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layer_list.len(), diff_ids.len());
    assert!(layer_list.len() > base_layers);
    let history: Vec<&serde_json::Value> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"].as_bool() != Some(true))
        .collect();
    assert_eq!(
        history.len(),
        layer_list.len(),
        "one non-empty history entry per layer"
    );
    for (i, l) in layer_list.iter().enumerate() {
        let d = l["digest"].as_str().unwrap();
        let present = blob(d).is_file();
        assert_eq!(
            present,
            i >= base_layers,
            "layer {i} blob present: {present}"
        );
        if !present {
            continue;
        }
        let bytes = fs::read(blob(d)).unwrap();
        assert_eq!(sha256(&bytes), d);
        let tar = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(blob(d))
            .output()
            .unwrap();
        assert!(tar.status.success(), "extension layer {d} is gzip");
        assert_eq!(sha256(&tar.stdout), diff_ids[i].as_str().unwrap());
        let created_by = history[i]["created_by"].as_str().unwrap();
        assert!(
            created_by.starts_with("Layer: 'RUN ")
                && created_by.ends_with("', Created by extension: test/ext"),
            "{created_by}"
        );
    }
    assert!(
        c["config"]["Labels"]["io.buildpacks.rebasable"].is_string(),
        "{c}"
    );
    assert_modes(&layers.join("extended"));
    m["mediaType"].as_str().unwrap_or_default().to_string()
}

/// A builder image that can start a rootless user namespace with a subordinate range, as rootless
/// CI images do: busybox plus the host's setuid `newuidmap`/`newgidmap` (and their libraries) and
/// `cnb:100000:65536` in `/etc/subuid` and `/etc/subgid`.
fn rootless_builder_image(d: &Docker, dir: &Path) -> &'static str {
    const NAME: &str = "cnb-ext-test/rootless-builder:latest";
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let rootfs = dir.join("rootless-rootfs");
        cnb_acceptance::images::busybox_rootfs(&rootfs);
        let ldd =
            cnb_acceptance::harness::tool("ldd", &["/usr/bin/newuidmap", "/usr/bin/newgidmap"]);
        let mut files: Vec<String> = ldd
            .split_whitespace()
            .filter(|w| w.starts_with('/') && Path::new(w).is_file())
            .map(String::from)
            .collect();
        files.extend(["/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()]);
        files.sort();
        files.dedup();
        for f in &files {
            let dest = rootfs.join(f.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(f, &dest).unwrap();
            if f.contains("/bin/new") {
                fs::set_permissions(&dest, fs::Permissions::from_mode(0o4755)).unwrap();
            }
        }
        for f in ["etc/subuid", "etc/subgid"] {
            fs::write(rootfs.join(f), "cnb:100000:65536\n").unwrap();
        }
        let tar = dir.join("rootless-rootfs.tar");
        cnb_acceptance::harness::tool(
            "tar",
            &[
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ],
        );
        d.ok(&[
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            tar.to_str().unwrap(),
            NAME,
        ]);
    });
    NAME
}

/// Issue 19 item 4 in a real container: `creator -build-image` rootless (`--user 1000`, user
/// namespaces allowed by `seccomp=unconfined`, a subordinate range) applies the build and run
/// extensions inside the one user namespace it sets up, the app runs, and a rebuild executes no RUN.
///
/// The build user needs a subordinate range (extensions' `USER root` steps and the build user both
/// live in the namespace), written by the setuid `newuidmap`. Debian's is built without libcap, so it
/// writes `uid_map` as euid 0, which the kernel accepts only with `CAP_SYS_ADMIN` in the container's
/// bounding set: `--cap-add=SYS_ADMIN` is for that helper alone — the creator itself (uid 1000) runs
/// with no effective capability, as the first check shows. (The extender alone needs no such range:
/// see `extends_the_run_image_rootless_in_a_user_namespace`.)
#[test]
fn creator_build_image_rootless_in_a_container() {
    let Some(d) = docker() else { return };
    let imgs = images(d);
    let tmp = tempfile::tempdir().unwrap();
    let image = rootless_builder_image(d, tmp.path());
    let root = ContainerRoot::new();
    write_buildpack_and_extension(&root, "build run");
    root.write(
        "cnb/run.toml",
        "[[images]]\nimage = \"localhost/test/run:latest\"\n",
    );
    root.write("workspace/app.txt", "hello\n");
    root.copy_dir(&imgs.build.layout, "build-image");
    fs::create_dir_all(root.join("oci/localhost/test/run")).unwrap();
    root.copy_dir(&imgs.run.layout, "oci/localhost/test/run/latest");
    chown_tree(root.path(), 1000, 1000);
    let (code, caps) = d.run(&[
        "--user=1000:1000".into(),
        "--security-opt=seccomp=unconfined".into(),
        "--cap-add=SYS_ADMIN".into(),
        "--network=none".into(),
        image.into(),
        "/bin/grep".into(),
        "CapEff".into(),
        "/proc/self/status".into(),
    ]);
    assert_eq!(code, 0, "{caps}");
    assert!(caps.contains("CapEff:\t0000000000000000"), "{caps}");
    let creator = || {
        d.run(&[
            "--user=1000:1000".into(),
            "--security-opt=seccomp=unconfined".into(),
            "--cap-add=SYS_ADMIN".into(),
            "--network=none".into(),
            format!("--volume={}:/w", root.path().display()),
            format!("--volume={}:/cnb/lifecycle:ro", bin_dir().display()),
            format!("--env=CNB_PLATFORM_API={API}"),
            "--env=HOME=/w".into(),
            "--env=CNB_EXPERIMENTAL_MODE=warn".into(),
            "--env=CNB_BUILD_IMAGE_CACHE=/w/rootfs-cache".into(),
            "--env=CNB_LAYERS_DIR=/w/layers".into(),
            "--env=CNB_APP_DIR=/w/workspace".into(),
            "--env=CNB_PLATFORM_DIR=/w/platform".into(),
            "--env=CNB_BUILDPACKS_DIR=/w/cnb/buildpacks".into(),
            "--env=CNB_EXTENSIONS_DIR=/w/cnb/extensions".into(),
            "--env=CNB_ORDER_PATH=/w/cnb/order.toml".into(),
            image.into(),
            "/cnb/lifecycle/creator".into(),
            "-layout".into(),
            "-layout-dir=/w/oci".into(),
            "-run=/w/cnb/run.toml".into(),
            "-cache-dir=/w/cache".into(),
            "-launcher=/cnb/lifecycle/launcher".into(),
            "-build-image=/w/build-image".into(),
            "localhost/test/app:latest".into(),
        ])
    };
    let (code, first) = creator();
    assert_eq!(code, 0, "{first}");
    assert!(first.contains("applied 1 build Dockerfile(s)"), "{first}");
    assert!(first.contains("applied 1 run Dockerfile(s)"), "{first}");
    assert!(
        first.contains("---> test build as uid 1000: from-build-extension"),
        "{first}"
    );
    let name = "cnb-ext-test/rootless-app:latest";
    d.load_layout(&root.join("oci/localhost/test/app/latest"), "latest", name);
    let (code, app) = d.run(&["--network=none".to_string(), name.to_string()]);
    let _ = d.command().args(["rmi", "-f", name]).output();
    assert_eq!(code, 0, "{app}");
    assert!(
        app.contains("app says: from-build-extension from-run-extension"),
        "{app}"
    );
    let (code, second) = creator();
    assert_eq!(code, 0, "{second}");
    assert!(
        second.contains("0 RUN step(s) executed, 1 from cache"),
        "{second}"
    );
}
