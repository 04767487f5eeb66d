//! Which lifecycle binaries the acceptance tests run, and where (the harness's "Which binaries"): the
//! debug build staged in the reference's `/cnb/lifecycle` layout in a 0755 directory outside the
//! checkout, so that the build user reaches it from any checkout location and umask; the SBOM files
//! that go beside the binaries; the lifecycle layout for chroots and builder root filesystems.
//! Re-exported from [`crate::harness`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{running_as_root, workspace_dir, BUILD_GID, BUILD_UID};

/// Every binary a lifecycle ships (names in [`bin_dir`]; the phases are symlinks to [`MULTICALL`]).
pub const ALL_BINARIES: [&str; 9] = [
    "analyzer", "detector", "restorer", "extender", "builder", "exporter", "rebaser", "creator",
    "launcher",
];

/// The multi-call binary the phase names link to.
pub const MULTICALL: &str = "lifecycle";

/// The phase names installed as symlinks to [`MULTICALL`] (`/cnb/lifecycle/<phase> -> lifecycle`).
pub const PHASE_LINKS: [&str; 8] = [
    "analyzer", "detector", "restorer", "extender", "builder", "exporter", "rebaser", "creator",
];

/// Directory holding the lifecycle binaries under test, in the reference's layout (see the module docs).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CNB_LIFECYCLE_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    stage_dir().join("lifecycle")
}

/// Where cargo writes the debug binaries (`lifecycle`, `launcher`, `cnb-mkimage`): `$CARGO_TARGET_DIR` or
/// `<workspace>/target`, then `x86_64-unknown-linux-gnu/debug`.
pub fn build_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("x86_64-unknown-linux-gnu").join("debug")
}

/// Lays out a lifecycle directory in the reference's layout at `dest` (created): `lifecycle` and
/// `launcher` copied from `src` (both 0755; `src` may itself hold symlinks), every phase of
/// [`PHASE_LINKS`] as a relative symlink to `lifecycle`, and the SBOMs ([`sbom_files`]) `src` has. Used for chroots and builder root filesystems.
pub fn install_lifecycle(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap_or_else(|e| panic!("mkdir {}: {e}", dest.display()));
    for b in [MULTICALL, "launcher"] {
        let to = dest.join(b);
        std::fs::copy(src.join(b), &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.join(b).display(), to.display()));
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", to.display()));
    }
    for p in PHASE_LINKS {
        std::os::unix::fs::symlink(MULTICALL, dest.join(p))
            .unwrap_or_else(|e| panic!("symlink {}: {e}", dest.join(p).display()));
    }
    for f in sbom_files() {
        if src.join(&f).is_file() {
            std::fs::copy(src.join(&f), dest.join(&f))
                .unwrap_or_else(|e| panic!("copy {}: {e}", src.join(&f).display()));
        }
    }
}

/// The base directory of [`stage_dir`]: `$CNB_TEST_STAGE_BASE`, else `/tmp` (not `$TMPDIR`, which may be
/// a private 0700 directory).
pub fn stage_base() -> PathBuf {
    std::env::var_os("CNB_TEST_STAGE_BASE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// The staging directory of this test run: `/tmp/cnb-lifecycle-test-<hash>/` (0755), holding
/// `lifecycle/` (the debug build in the reference's layout, hard-linked where possible). `<hash>` covers
/// the build directory and the binaries' size and mtime, so parallel test processes of one build share it
/// and a rebuild gets a new one; it is made once (in a temp dir renamed into place, so concurrent test
/// binaries never see it half-written), and older stages of the same build directory are removed.
/// Panics with one line saying what to do when the build user cannot reach it.
pub fn stage_dir() -> PathBuf {
    static STAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    STAGE.get_or_init(make_stage).clone()
}

/// Sets this test process's umask to 022 (once): the temp dirs and fixtures the tests create must be
/// readable by the build user, whatever umask the suite was started with (077 makes every
/// `tempfile::tempdir()` 0700).
pub fn standard_umask() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: umask(2) cannot fail; it only changes this process's file-creation mask.
    ONCE.call_once(|| unsafe {
        libc::umask(0o022);
    });
}

fn make_stage() -> PathBuf {
    standard_umask();
    let build = build_dir();
    let build = std::fs::canonicalize(&build).unwrap_or(build);
    let mut key = build.to_string_lossy().into_owned();
    for b in [MULTICALL, "launcher"] {
        let p = build.join(b);
        let m = std::fs::metadata(&p).unwrap_or_else(|e| {
            panic!(
                "lifecycle binary {} not found ({e}): build it first (`cargo build --bins` or \
                 `make build-debug`), or set CNB_LIFECYCLE_BIN_DIR",
                p.display()
            )
        });
        use std::os::unix::fs::MetadataExt;
        key.push_str(&format!(
            ":{b}:{}:{}.{}",
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        ));
    }
    let hash = {
        use sha2::Digest as _;
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
    };
    let base = stage_base();
    let name = format!("cnb-lifecycle-test-{hash}");
    let stage = base.join(&name);
    if !stage.join("lifecycle").join(MULTICALL).exists() {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("create a staging dir in {}: {e}", base.display()));
        let dir = tmp.path();
        std::fs::write(dir.join("source"), build.to_string_lossy().as_bytes())
            .expect("write stage source");
        let bins = dir.join("lifecycle");
        std::fs::create_dir(&bins).expect("mkdir stage/lifecycle");
        for b in [MULTICALL, "launcher"] {
            if std::fs::hard_link(build.join(b), bins.join(b)).is_err() {
                std::fs::copy(build.join(b), bins.join(b))
                    .unwrap_or_else(|e| panic!("copy {}: {e}", build.join(b).display()));
            }
            // Under a strict umask cargo writes 0700 binaries: the build user must run them.
            std::fs::set_permissions(bins.join(b), std::fs::Permissions::from_mode(0o755))
                .expect("chmod staged binary");
        }
        for p in PHASE_LINKS {
            std::os::unix::fs::symlink(MULTICALL, bins.join(p)).expect("symlink phase");
        }
        write_sboms(&bins);
        for d in [dir, bins.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                .expect("chmod stage");
        }
        let tmp_path = tmp.keep();
        if std::fs::rename(&tmp_path, &stage).is_err() {
            // Another test process staged the same build first: use its directory.
            let _ = std::fs::remove_dir_all(&tmp_path);
        }
        remove_stale_stages(&base, &name, &build);
    }
    if running_as_root() {
        if let Some(blocker) = first_blocking_dir(&stage.join("lifecycle"), BUILD_UID, BUILD_GID) {
            panic!(
                "the build user {BUILD_UID}:{BUILD_GID} cannot reach the staged binaries in {}: {} \
                 is not traversable by it; set CNB_TEST_STAGE_BASE to a world-traversable directory",
                stage.display(),
                blocker.display()
            );
        }
    }
    stage
}

/// The SBOM files a lifecycle directory holds (`lifecycle.sbom.cdx.json`, ..., `launcher.sbom.syft.json`).
pub fn sbom_files() -> Vec<String> {
    let mut v = Vec::new();
    for c in [MULTICALL, "launcher"] {
        for ext in ["cdx", "spdx", "syft"] {
            v.push(format!("{c}.sbom.{ext}.json"));
        }
    }
    v
}

/// Writes the lifecycle's and launcher's SBOMs into `dir` as `make build` does: `cargo metadata` piped to
/// `tools/sbom.py` (needs `python3`).
pub fn write_sboms(dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let meta = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(workspace_dir())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run cargo metadata: {e}"));
    assert!(meta.status.success(), "cargo metadata failed");
    let meta_file = dir.join(".metadata.json");
    std::fs::write(&meta_file, &meta.stdout).expect("write cargo metadata");
    for component in [MULTICALL, "launcher"] {
        let out = Command::new("python3")
            .arg(workspace_dir().join("tools/sbom.py"))
            .arg(format!("--metadata={}", meta_file.display()))
            .args(["--package", "cnb-lifecycle", "--component", component])
            .arg(format!("--out-dir={}", dir.display()))
            .output()
            .unwrap_or_else(|e| panic!("run python3 tools/sbom.py (is python3 installed?): {e}"));
        assert!(
            out.status.success(),
            "tools/sbom.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(meta_file);
}

/// Removes other `cnb-lifecycle-test-*` stages of the same build directory (older builds).
fn remove_stale_stages(base: &Path, keep: &str, build: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == keep || !name.starts_with("cnb-lifecycle-test-") {
            continue;
        }
        let source = std::fs::read(e.path().join("source")).unwrap_or_default();
        let same = source == build.as_os_str().as_encoded_bytes();
        // A stage whose build directory is gone (a removed clone) is stale too.
        let gone = !source.is_empty()
            && !Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&source))
                .exists();
        if same || gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The first directory on the way to `path` that `uid:gid` (no supplementary groups) cannot search, if
/// any: the phases' own check ([`cnb_lifecycle::privilege::reach::first_blocking_dir`]).
pub fn first_blocking_dir(path: &Path, uid: u32, gid: u32) -> Option<PathBuf> {
    cnb_lifecycle::privilege::reach::first_blocking_dir(path, uid, gid, &[]).map(|b| b.dir)
}
