//! Acceptance tests of the `extender` binary (checklist §6 EX-*): a busybox-static root filesystem
//! stands in for the container's own `/` (`CNB_EXTENDER_ROOT`, our explicit-root input), the run image
//! is an OCI layout written by `umoci` where the restorer leaves it (`<kaniko>/cache/base/<digest>`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{workspace_dir, ContainerRoot};

struct Setup {
    root: ContainerRoot,
    rootfs: tempfile::TempDir,
}

/// Builds a busybox rootfs + its umoci layout (as the restorer would leave it) and the platform files
/// for one extension `samples/ext` whose run.Dockerfile is `dockerfile`.
fn setup(dockerfile: &str) -> Setup {
    let root = ContainerRoot::new();
    let rootfs = tempfile::tempdir().unwrap();
    let layout_tmp = rootfs.path().join("layout-tmp");
    let st = std::process::Command::new("sh")
        .arg(workspace_dir().join("samples/base-images/busybox/build.sh"))
        .arg(&layout_tmp)
        .status()
        .unwrap();
    assert!(st.success());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout_tmp.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // The container's own root is the unpacked image.
    let bundle = rootfs.path().join("bundle");
    let st = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout_tmp.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let base = bundle.join("rootfs/kaniko/cache/base").join(&digest);
    std::fs::create_dir_all(base.parent().unwrap()).unwrap();
    std::fs::rename(&layout_tmp, &base).unwrap();
    root.write(
        "layers/analyzed.toml",
        format!("[run-image]\n  reference = \"registry.example/run@{digest}\"\n  extend = true\n"),
    );
    root.write(
        "layers/group.toml",
        "[[group]]\n  id = \"samples/bp\"\n  version = \"0.0.1\"\n  api = \"0.10\"\n\n[[group-extensions]]\n  id = \"samples/ext\"\n  version = \"0.0.1\"\n  api = \"0.10\"\n",
    );
    root.write("layers/generated/samples_ext/run.Dockerfile", dockerfile);
    root.write(
        "layers/generated/samples_ext/context/hello.txt",
        "hello from context\n",
    );
    root.write(
        "layers/generated/samples_ext/extend-config.toml",
        "[[run.args]]\n  name = \"GREETING\"\n  value = \"hi-from-config\"\n",
    );
    Setup { root, rootfs }
}

impl Setup {
    fn fs(&self) -> PathBuf {
        self.rootfs.path().join("bundle/rootfs")
    }
    fn run(&self) -> cnb_acceptance::harness::Output {
        self.root
            .phase("extender")
            .as_current_user()
            .env("CNB_EXTENDER_ROOT", self.fs().to_string_lossy())
            .arg("-kind=run")
            .arg("-log-level=debug")
            .run()
    }
    fn extended(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.root.join("layers/extended/run")) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => vec![],
        }
    }
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn running_as_root() -> bool {
    cnb_acceptance::harness::running_as_root()
}

// EX-02, EX-03, EX-05, EX-07, EX-11
#[test]
fn extends_the_run_image_into_a_sparse_layout() {
    if !running_as_root() {
        eprintln!("the extender binary test drives a root-owned container root; run as root");
        return;
    }
    let s = setup(
        "ARG base_image\nFROM ${base_image}\nARG GREETING\nARG user_id\nUSER root\nRUN echo \"$GREETING\" > /greeting && rm /bin/vi\nCOPY hello.txt /opt/hello.txt\nUSER ${user_id}\n",
    );
    let out = s.run();
    assert!(out.success(), "{}", out.stderr);
    let dirs = s.extended();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    assert!(dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("sha256:"));
    let index = read_json(&dir.join("index.json"));
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(format!("{}", dir.file_name().unwrap().to_string_lossy()), m);
    let manifest = read_json(
        &dir.join("blobs/sha256")
            .join(m.trim_start_matches("sha256:")),
    );
    let config = read_json(
        &dir.join("blobs/sha256").join(
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    );
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.rebasable"],
        "false"
    );
    assert_eq!(config["config"]["User"], "1000");
    let hist: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    assert!(
        hist.iter().any(|h| h.starts_with("Layer: 'RUN echo")
            && h.ends_with("Created by extension: samples/ext")),
        "{hist:?}"
    );
    // Only the new layers' blobs (2) + config + manifest are in the sparse layout.
    assert_eq!(
        std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
        4
    );
    // The container's root really changed.
    assert_eq!(
        std::fs::read_to_string(s.fs().join("greeting")).unwrap(),
        "hi-from-config\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.fs().join("opt/hello.txt")).unwrap(),
        "hello from context\n"
    );
    // EX-08: only the cache is left under the kaniko dir's work area.
    assert!(!s.fs().join("kaniko/work").exists());
    assert!(s.fs().join("kaniko/cache/layers").is_dir());
}

// EX-09
#[test]
fn errors_exit_102_and_leave_nothing_behind() {
    if !running_as_root() {
        eprintln!("the extender binary test drives a root-owned container root; run as root");
        return;
    }
    for (dockerfile, needle) in [
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo boom; exit 7\nUSER 1000\n",
            "run.Dockerfile:4: RUN failed with exit code 7",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nENTRYPOINT [\"/bin/sh\"]\n",
            "run.Dockerfile:3: instruction ENTRYPOINT is not allowed",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nCOPY ../../../../etc/passwd /x\n",
            "outside the build context",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN true\n",
            "the final user ID is 0 (root)",
        ),
    ] {
        let s = setup(dockerfile);
        let out = s.run();
        assert_eq!(
            out.code(),
            102,
            "{dockerfile}\n{}\n{}",
            out.stdout,
            out.stderr
        );
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(needle), "{needle}\n{all}");
        // Errors in a Dockerfile name the extension and the file (the final-user check is global).
        assert!(
            needle.contains("final user") || all.contains("extension 'samples/ext'"),
            "{all}"
        );
        assert!(s.extended().is_empty(), "{:?}", s.extended());
    }
}

// EX-01 without a restorer: the run image's manifest and config come from a registry (loopback).
#[test]
fn reads_the_base_from_a_registry_when_no_layout_was_restored() {
    if !running_as_root() {
        eprintln!("the extender binary test drives a root-owned container root; run as root");
        return;
    }
    use cnb_acceptance::registry::{Registry, RegistryOptions};
    let s = setup("ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo from-registry > /r\nUSER 1000:1000\n");
    let reg = Registry::start(RegistryOptions::plain());
    // Move the restored layout away and push it to the registry instead.
    let base_dir = s.fs().join("kaniko/cache/base");
    let entry = std::fs::read_dir(&base_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let digest = entry.file_name().to_string_lossy().into_owned();
    let layout = s.rootfs.path().join("pushed-layout");
    std::fs::rename(entry.path(), &layout).unwrap();
    let st = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{}", reg.image("run:latest")))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let reference = format!("{}@{digest}", reg.image("run"));
    s.root.write(
        "layers/analyzed.toml",
        format!("[run-image]\n  reference = \"{reference}\"\n  extend = true\n"),
    );
    let out = s
        .root
        .phase("extender")
        .as_current_user()
        .env("CNB_EXTENDER_ROOT", s.fs().to_string_lossy())
        .env("CNB_INSECURE_REGISTRIES", reg.host())
        .arg("-kind=run")
        .run();
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(s.extended().len(), 1);
    assert_eq!(
        std::fs::read_to_string(s.fs().join("r")).unwrap(),
        "from-registry\n"
    );
    // The base's manifest and config were cached where the restorer would have put them.
    assert!(base_dir.join(&digest).join("index.json").is_file());
}

// EX-01, G-18 (issue 13): the base comes from a local plain-HTTP registry named `127.0.0.1:PORT` or
// `localhost:PORT` with no insecure flag (HTTPS first, then the reference's local-registry HTTP fallback).
#[test]
fn reads_the_base_from_a_local_plain_http_registry_without_insecure_flags() {
    if !running_as_root() {
        panic!("the extender binary test drives a root-owned container root; run as root");
    }
    use cnb_acceptance::registry::{Registry, RegistryOptions};
    let reg = Registry::start(RegistryOptions::plain());
    for host in [reg.host(), format!("localhost:{}", reg.port())] {
        let s = setup("ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo plain-http > /r\nUSER 1000:1000\n");
        let base_dir = s.fs().join("kaniko/cache/base");
        let entry = std::fs::read_dir(&base_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let digest = entry.file_name().to_string_lossy().into_owned();
        let layout = s.rootfs.path().join("pushed-layout");
        std::fs::rename(entry.path(), &layout).unwrap();
        reg.skopeo_copy(
            &format!("oci:{}:latest", layout.display()),
            &format!("docker://{}", reg.image("run:latest")),
        );
        s.root.write(
            "layers/analyzed.toml",
            format!("[run-image]\n  reference = \"{host}/run@{digest}\"\n  extend = true\n"),
        );
        let out = s
            .root
            .phase("extender")
            .as_current_user()
            .env("CNB_EXTENDER_ROOT", s.fs().to_string_lossy())
            .env_remove("CNB_INSECURE_REGISTRIES")
            .arg("-kind=run")
            .run();
        assert!(out.success(), "{host}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(s.extended().len(), 1);
        assert_eq!(
            std::fs::read_to_string(s.fs().join("r")).unwrap(),
            "plain-http\n"
        );
        assert!(base_dir.join(&digest).join("index.json").is_file());
    }
}

// Issue 13 modes: the extender (root, umask 077) leaves `<layers>/extended` readable by the cnb user —
// opened as uid 1000, and 0644/0755 modes — for the exporter that runs as that user.
#[test]
fn extended_output_is_readable_by_the_cnb_user_under_umask_077() {
    if !running_as_root() {
        panic!("the extender binary test drives a root-owned container root; run as root");
    }
    let s =
        setup("ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\nUSER 1000:1000\n");
    let bin = cnb_acceptance::harness::bin_path("extender");
    let out = s
        .root
        .phase("extender")
        .as_current_user()
        .env("CNB_EXTENDER_ROOT", s.fs().to_string_lossy())
        .program("/bin/sh")
        .args([
            "-c".to_string(),
            "umask 077 && exec \"$0\" \"$@\"".into(),
            bin.display().to_string(),
            "-kind=run".into(),
        ])
        .run();
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let extended = s.root.join("layers/extended");
    let text = cnb_acceptance::harness::unreadable_by_build_user(&extended);
    assert!(text.trim().is_empty(), "not readable by uid 1000:\n{text}");
    let mut stack = vec![extended.clone()];
    while let Some(d) = stack.pop() {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o777;
            if m.is_dir() {
                assert_eq!(mode & 0o055, 0o055, "{:o} {}", mode, p.display());
                stack.push(p);
            } else if m.is_file() {
                assert_eq!(mode & 0o044, 0o044, "{:o} {}", mode, p.display());
            }
        }
    }
}

use cnb_acceptance::rootless::{ID as ROOTLESS_ID, USER as ROOTLESS_USER};

/// The rootless test user's gid (created with its subordinate ranges when missing).
fn ensure_rootless_user() -> u32 {
    cnb_acceptance::rootless::ensure_user().1
}

// EX-02, EX-05, EX-11 rootless: the binary as an unprivileged user with a subordinate id range
// (newuidmap/newgidmap), extending a root filesystem that user owns (as in a rootless container whose
// ids are mapped to it) — no root, no capabilities.
#[test]
fn extends_the_run_image_rootless() {
    if !running_as_root() {
        eprintln!("needs root to create the rootless test user and its subordinate ids");
        return;
    }
    let gid = ensure_rootless_user();
    let s = setup(
        "ARG base_image\nFROM ${base_image}\nARG GREETING\nUSER root\nRUN echo \"$GREETING\" > /greeting && chown 1000:1000 /greeting\nCOPY hello.txt /opt/hello.txt\nUSER 1000:1000\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.rootfs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    cnb_acceptance::harness::chown_tree(&s.rootfs.path().join("bundle"), ROOTLESS_ID, gid);
    let out = s
        .root
        .phase("extender")
        .user(ROOTLESS_ID, gid)
        .env("CNB_EXTENDER_ROOT", s.fs().to_string_lossy())
        .arg("-kind=run")
        .arg("-log-level=debug")
        .run();
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(s.extended().len(), 1);
    assert_eq!(
        std::fs::read_to_string(s.fs().join("greeting")).unwrap(),
        "hi-from-config\n"
    );
    use std::os::unix::fs::MetadataExt;
    // Namespace uid 1000 is a subordinate id on the host (namespace 1 = the range's first id).
    let start: u32 = std::fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{ROOTLESS_USER}:")))
        .and_then(|r| r.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    let owner = std::fs::metadata(s.fs().join("greeting")).unwrap().uid();
    assert_eq!(owner, start + 1000 - 1, "namespace 1000 -> host subuid");

    // EX-09 rootless: a failing RUN exits 102 naming the file and line, and leaves no output.
    let s =
        setup("ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo boom; exit 7\nUSER 1000\n");
    std::fs::set_permissions(s.rootfs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    cnb_acceptance::harness::chown_tree(&s.rootfs.path().join("bundle"), ROOTLESS_ID, gid);
    let out = s
        .root
        .phase("extender")
        .user(ROOTLESS_ID, gid)
        .env("CNB_EXTENDER_ROOT", s.fs().to_string_lossy())
        .arg("-kind=run")
        .run();
    assert_eq!(out.code(), 102, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.all()
            .contains("run.Dockerfile:4: RUN failed with exit code 7"),
        "{}",
        out.all()
    );
    assert!(s.extended().is_empty());
}
