//! Shared helpers of the end-to-end tests (`e2e_*.rs`): independent checks of an OCI layout and running an
//! image's default process in a chroot, the way a container runtime would start it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnb_acceptance::harness::workspace_dir;

pub use cnb_acceptance::harness::tool;

/// `chroot` by absolute path.
pub fn chroot_bin() -> PathBuf {
    ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("chroot"))
}

/// The `cnb-mkimage` developer tool built with these tests.
pub fn mkimage() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cnb-mkimage"))
}

/// Checks `layout:tag` with oci-image-tool (schemas, blobs), skopeo (digests) and umoci (diffIDs, real
/// extraction into `bundle`); returns the image config (`skopeo inspect --config`).
pub fn check_and_unpack(layout: &Path, tag: &str, bundle: &Path) -> serde_json::Value {
    let l = layout.to_str().unwrap();
    tool("oci-image-tool", &["validate", "--type", "image", l]);
    let copy = bundle.with_extension("skopeo-copy");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{l}:{tag}"),
            &format!("oci:{}:{tag}", copy.display()),
        ],
    );
    let _ = fs::remove_dir_all(&copy);
    let cfg = tool(
        "skopeo",
        &["inspect", "--config", &format!("oci:{l}:{tag}")],
    );
    let mut args = vec!["unpack"];
    if !cnb_acceptance::harness::running_as_root() {
        args.push("--rootless");
    }
    let image = format!("{l}:{tag}");
    let b = bundle.to_str().unwrap();
    args.extend(["--image", &image, b]);
    tool("umoci", &args);
    serde_json::from_str(&cfg).unwrap()
}

/// Copies `app_image` back from `reg` with skopeo into `dir/copy`, checks and unpacks it into
/// `dir/bundle` ([`check_and_unpack`]), runs its default process ([`run_bundle`]) and asserts that it
/// succeeds and prints `says`.
pub fn pull_check_and_run(
    reg: &cnb_acceptance::registry::Registry,
    app_image: &str,
    dir: &Path,
    says: &str,
) {
    let copy = dir.join("copy");
    reg.skopeo_copy(
        &format!("docker://{app_image}"),
        &format!("oci:{}:latest", copy.display()),
    );
    let bundle = dir.join("bundle");
    check_and_unpack(&copy, "latest", &bundle);
    let (ran, text) = run_bundle(&bundle);
    assert!(ran, "the app failed:\n{text}");
    assert!(text.contains(says), "unexpected app output:\n{text}");
}

/// Runs the default process of an unpacked bundle (umoci's `config.json`: args, env, cwd, user) in a
/// chroot of its rootfs, as its user; returns (success, stdout + stderr). Needs root.
pub fn run_bundle(bundle: &Path) -> (bool, String) {
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let p = &cfg["process"];
    let args: Vec<String> = p["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let uid = p["user"]["uid"].as_u64().unwrap_or(0);
    let gid = p["user"]["gid"].as_u64().unwrap_or(0);
    let cwd = p["cwd"].as_str().unwrap_or("/");
    let mut cmd = Command::new(chroot_bin());
    cmd.env_clear();
    for e in p["env"].as_array().into_iter().flatten() {
        if let Some((k, v)) = e.as_str().unwrap().split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.arg(format!("--userspec={uid}:{gid}"))
        .arg(bundle.join("rootfs"))
        .args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd])
        .args(&args);
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Builds (once per checkout; cached under `target/samples-cache/<name>/`, serialised by a lock file) the
/// images of `samples/base-images/<name>/build.sh OUT ROOTFS_CACHE`; returns `OUT`. Start from the
/// extender's cached bookworm root filesystem when there is one.
pub fn sample_images(name: &str) -> PathBuf {
    let ws = workspace_dir();
    let dir = ws.join("target/samples-cache").join(name);
    let out = dir.join("images");
    // The cache is valid for this version of the recipe only.
    let recipe = fs::read(ws.join("samples/base-images").join(name).join("build.sh")).unwrap();
    let key = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&recipe))
    };
    let done = || fs::read_to_string(dir.join("images.done")).is_ok_and(|k| k == key);
    if done() {
        return out;
    }
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::File::create(dir.join("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if !done() {
        let mut cmd = Command::new("sh");
        cmd.arg(ws.join("samples/base-images").join(name).join("build.sh"))
            .arg(&out)
            .arg(dir.join("rootfs"))
            .env("CNB_MKIMAGE", mkimage());
        let bookworm = ws.join("target/extend-cache/bookworm/rootfs");
        if ws
            .join("target/extend-cache/bookworm/rootfs.complete")
            .exists()
        {
            cmd.env("BOOKWORM_ROOTFS", bookworm);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "sample images {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        tool("chmod", &["-R", "a+rX", out.to_str().unwrap()]);
        fs::write(dir.join("images.done"), &key).unwrap();
    }
    out
}

/// A platform directory tree for one `creator` run into OCI layouts, as `samples/demo.sh` lays it out:
/// `cnb/buildpacks`, `cnb/order.toml`, `cnb/run.toml`, `layers`, `workspace` (a copy of the app),
/// `platform`, `cache` and `oci` (the layout dir, holding the run image).
pub struct Build {
    /// The temp dir holding it all.
    pub dir: tempfile::TempDir,
    /// The app image reference (`localhost/samples/<app>:latest`).
    pub app_image: String,
}

/// Copies a directory tree with `cp -a` (owners, modes and links kept); `dest` must not exist.
pub fn copy_tree(src: &Path, dest: &Path) {
    tool("cp", &["-a", src.to_str().unwrap(), dest.to_str().unwrap()]);
}

impl Build {
    /// Lays out `buildpacks` (sample ids `samples/<name>`, version 0.1.0, in this order, the last ones
    /// optional when `optional_tail`), the app `samples/apps/<app>`, and the run image layout `run_layout`
    /// as `localhost/samples/<app>-run:latest`.
    pub fn new(app: &str, buildpacks: &[&str], run_layout: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace_dir();
        let root = dir.path();
        for d in ["cnb/buildpacks", "layers", "platform/env", "cache", "oci"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut order = String::from("[[order]]\n");
        for bp in buildpacks {
            let dest = root.join(format!("cnb/buildpacks/samples_{bp}"));
            fs::create_dir_all(&dest).unwrap();
            copy_tree(&ws.join("samples/buildpacks").join(bp), &dest.join("0.1.0"));
            order.push_str(&format!(
                "[[order.group]]\nid = \"samples/{bp}\"\nversion = \"0.1.0\"\n"
            ));
        }
        fs::write(root.join("cnb/order.toml"), order).unwrap();
        let run_image = format!("localhost/samples/{app}-run:latest");
        fs::write(
            root.join("cnb/run.toml"),
            format!("[[images]]\nimage = \"{run_image}\"\n"),
        )
        .unwrap();
        let run_dest = root.join(format!("oci/localhost/samples/{app}-run"));
        fs::create_dir_all(&run_dest).unwrap();
        copy_tree(run_layout, &run_dest.join("latest"));
        copy_tree(&ws.join("samples/apps").join(app), &root.join("workspace"));
        tool("chmod", &["-R", "a+rX", root.to_str().unwrap()]);
        for d in ["workspace", "layers", "cache", "oci"] {
            tool(
                "chown",
                &["-R", "1000:1000", root.join(d).to_str().unwrap()],
            );
        }
        Self {
            dir,
            app_image: format!("localhost/samples/{app}:latest"),
        }
    }

    /// A path inside the tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The app image's layout.
    pub fn app_layout(&self) -> PathBuf {
        let (repo, tag) = self.app_image.rsplit_once(':').unwrap();
        self.path("oci").join(repo).join(tag)
    }

    /// Runs `creator` (as root; it drops to 1000:1000) into the layout dir with `extra` flags; returns
    /// (success, output, seconds).
    pub fn creator(&self, extra: &[String]) -> (bool, String, f64) {
        self.creator_with_env(extra, &[])
    }

    /// [`Build::creator`] with extra environment variables.
    pub fn creator_with_env(
        &self,
        extra: &[String],
        envs: &[(&str, String)],
    ) -> (bool, String, f64) {
        let bin = cnb_acceptance::harness::bin_dir();
        let p = |r: &str| self.path(r).to_string_lossy().into_owned();
        let start = std::time::Instant::now();
        let out = Command::new(bin.join("creator"))
            .env("CNB_PLATFORM_API", "0.14")
            .env("CNB_USER_ID", "1000")
            .env("CNB_GROUP_ID", "1000")
            .env("CNB_EXPERIMENTAL_MODE", "warn")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .arg(format!("-app={}", p("workspace")))
            .arg(format!("-layers={}", p("layers")))
            .arg(format!("-platform={}", p("platform")))
            .arg(format!("-buildpacks={}", p("cnb/buildpacks")))
            .arg(format!("-order={}", p("cnb/order.toml")))
            .arg(format!("-run={}", p("cnb/run.toml")))
            .arg(format!("-cache-dir={}", p("cache")))
            .arg(format!("-launcher={}", bin.join("launcher").display()))
            .arg("-layout")
            .arg(format!("-layout-dir={}", p("oci")))
            .arg(format!("-previous-image={}", self.app_image))
            .args(extra)
            .arg(&self.app_image)
            .output()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            secs,
        )
    }

    /// The image digest from `layers/report.toml`.
    pub fn digest(&self) -> String {
        let v: toml::Table = fs::read_to_string(self.path("layers/report.toml"))
            .unwrap()
            .parse()
            .unwrap();
        v["image"]["digest"].as_str().unwrap().to_string()
    }
}

/// What one sample needs: the builder's base root filesystem, its buildpacks (id suffix, optional) and app.
pub struct Sample {
    /// `None`: the busybox test image; else a root filesystem to copy.
    pub base: Option<PathBuf>,
    pub buildpacks: &'static [(&'static str, bool)],
    pub app: &'static str,
    /// The run image's OCI layout (tag `latest`).
    pub run_layout: PathBuf,
    /// A line the build step prints; the app's expected output.
    pub build_says: &'static str,
    pub app_says: &'static str,
}

/// The builder image's root filesystem: the sample's base (a shell for script steps), our binaries at
/// /cnb/lifecycle, the buildpacks at /cnb/buildpacks, /cnb/order.toml, the app at /cnb/samples/apps/<app>,
/// and a container runtime's /dev devices.
pub fn builder_rootfs(dir: &Path, sample: &Sample) -> PathBuf {
    let r = dir.join("builder");
    match &sample.base {
        None => cnb_acceptance::images::busybox_rootfs(&r),
        Some(base) => copy_tree(base, &r),
    }
    cnb_acceptance::harness::install_lifecycle(
        &cnb_acceptance::harness::bin_dir(),
        &r.join("cnb/lifecycle"),
    );
    let mut order = String::from("[[order]]\n");
    for &(bp, optional) in sample.buildpacks {
        let dest = r.join(format!("cnb/buildpacks/samples_{bp}"));
        fs::create_dir_all(&dest).unwrap();
        copy_tree(
            &workspace_dir().join("samples/buildpacks").join(bp),
            &dest.join("0.1.0"),
        );
        order.push_str(&format!(
            "[[order.group]]\nid = \"samples/{bp}\"\nversion = \"0.1.0\"\noptional = {optional}\n"
        ));
    }
    fs::write(r.join("cnb/order.toml"), order).unwrap();
    // A container runtime's /dev.
    fs::create_dir_all(r.join("dev")).unwrap();
    for (name, minor) in [
        ("null", 3),
        ("zero", 5),
        ("full", 7),
        ("random", 8),
        ("urandom", 9),
    ] {
        let p = r.join("dev").join(name);
        if p.exists() {
            continue;
        }
        tool(
            "mknod",
            &[
                "-m",
                "666",
                p.to_str().unwrap(),
                "c",
                "1",
                &minor.to_string(),
            ],
        );
    }
    fs::create_dir_all(r.join("cnb/samples/apps")).unwrap();
    copy_tree(
        &workspace_dir().join("samples/apps").join(sample.app),
        &r.join("cnb/samples/apps").join(sample.app),
    );
    tool("chmod", &["-R", "a+rX", r.join("cnb").to_str().unwrap()]);
    r
}

/// Runs one step/container `argv` in a chroot of `rootfs` as `uid:gid`, with the builder image's config env
/// (`PATH`, `CNB_USER_ID`, `CNB_GROUP_ID`) and then `env`, like a container runtime; asserts success and
/// returns its output.
pub fn run_step(
    rootfs: &Path,
    name: &str,
    argv: &[String],
    env: &std::collections::BTreeMap<String, String>,
    (uid, gid): (u32, u32),
) -> String {
    let out = Command::new(chroot_bin())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .envs(env)
        .arg(format!("--userspec={uid}:{gid}"))
        .arg(rootfs)
        .args(argv)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "step {name} ({argv:?}) failed:\n{text}"
    );
    text
}
