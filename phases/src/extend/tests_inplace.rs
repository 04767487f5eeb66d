//! Tests of the in-place executor (issue 19 item 1) on a busybox-static root: steps run with no
//! namespace and no mount (chrooted, since the root is not `/` here), and the result is the same as
//! with the user-namespace executor. The container case (`/` itself, default seccomp profile) is
//! covered by `acceptance/tests/extend_docker.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use super::sandbox::IdMapping;
use super::tests::{extender_for, fixture, write_base_layout, Fixture};
use super::{Executor, Extended, Kind};

fn root() -> bool {
    let r = nix::unistd::Uid::effective().is_root();
    if !r {
        eprintln!("the in-place executor is chosen only as root (it chroots without namespaces)");
    }
    r
}

const DOCKERFILE: &str = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo hi > /x && rm /bin/vi && mkdir -p /opt/d\nCOPY hello.txt /opt/d/hello.txt\nWORKDIR /opt/w\nUSER 1000:1000\nRUN id -u > /home/cnb/me\nENV GREETING=hello\n";

fn extend_with(f: &Fixture, executor: Executor, text: &str, kind: Kind) -> Extended {
    let layout = f.root.parent().unwrap().join("base-layout");
    if !layout.exists() {
        write_base_layout(&f.root, &layout);
    }
    std::fs::write(f.ctx.join("hello.txt"), "hello\n").unwrap();
    let mut ext = extender_for(f, &layout, text);
    ext.kind = kind;
    ext.root = Some(f.root.clone());
    ext.executor = executor;
    ext.extend().unwrap()
}

fn digests(e: &Extended) -> Vec<String> {
    e.outcome
        .layers
        .iter()
        .map(|l| l.blob.digest.clone())
        .collect()
}

/// The same Dockerfile on the same root gives byte-identical layers and config state in place and in
/// a user namespace; the root really changed (as the step's user), and a second run is all cache.
#[test]
fn in_place_makes_the_same_layers_as_the_user_namespace_executor() {
    if !root() {
        return;
    }
    let (a, b) = (fixture(), fixture());
    let ns = extend_with(
        &a,
        Executor::UserNamespace(IdMapping::Identity),
        DOCKERFILE,
        Kind::Run,
    );
    let inplace = extend_with(&b, Executor::InPlace, DOCKERFILE, Kind::Run);
    assert_eq!(inplace.outcome.runs, 2);
    assert_eq!(digests(&ns), digests(&inplace));
    assert_eq!(ns.outcome.state, inplace.outcome.state);
    assert_eq!(std::fs::read_to_string(b.root.join("x")).unwrap(), "hi\n");
    assert!(!b.root.join("bin/vi").exists());
    assert_eq!(
        std::fs::read_to_string(b.root.join("home/cnb/me")).unwrap(),
        "1000\n"
    );
    assert!(b.root.join("opt/w").is_dir());
    let again = extend_with(&b, Executor::InPlace, DOCKERFILE, Kind::Run);
    assert_eq!((again.outcome.runs, again.outcome.cache_hits), (0, 4));
    assert_eq!(digests(&again), digests(&inplace));
}

/// Mount points under the root (a platform volume, a bind-mounted file) are left out of the layer,
/// and a cached layer that would write into an ignored path is not applied to a live root: the step
/// runs again. A COPY into an ignored path is refused.
#[test]
fn mounts_and_ignored_paths_stay_out_of_layers_and_untouched() {
    if !root() {
        return;
    }
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let f = fixture();
    let vol = tempfile::tempdir().unwrap();
    let target = f.root.join("mnt/vol");
    std::fs::create_dir_all(&target).unwrap();
    mount(
        Some(vol.path()),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = umount2(self.0, MntFlags::MNT_DETACH);
        }
    }
    let _guard = Unmount(&target);
    let text = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo secret > /mnt/vol/s && echo kept > /kept && mkdir /data && echo d > /data/f\nUSER 1000:1000\n";
    let e = extend_with(&f, Executor::InPlace, text, Kind::Build);
    assert_eq!(e.outcome.layers.len(), 1);
    let blob = f.blobs_dir_of(&e);
    let names = super::tests::layer_entries(&blob);
    assert!(names.iter().any(|n| n == "kept"), "{names:?}");
    assert!(names.iter().any(|n| n == "data/f"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("mnt/vol/")),
        "{names:?}"
    );
    assert_eq!(
        std::fs::read_to_string(vol.path().join("s")).unwrap(),
        "secret\n"
    );

    // Now /data is a volume here: the cached layer (which writes data/f) must not be applied.
    let layout = f.root.parent().unwrap().join("base-layout");
    let mut ext = extender_for(&f, &layout, text);
    ext.kind = Kind::Build;
    ext.root = Some(f.root.clone());
    ext.executor = Executor::InPlace;
    ext.ignore = vec![f.root.join("data")];
    std::fs::remove_dir_all(f.root.join("data")).unwrap();
    std::fs::remove_file(f.root.join("kept")).unwrap();
    let e = ext.extend().unwrap();
    assert_eq!((e.outcome.runs, e.outcome.cache_hits), (1, 0));

    let mut copy = extender_for(
        &f,
        &layout,
        "ARG base_image\nFROM ${base_image}\nCOPY hello.txt /mnt/vol/hello.txt\n",
    );
    copy.root = Some(f.root.clone());
    copy.executor = Executor::InPlace;
    let err = copy.extend().unwrap_err().to_string();
    assert!(err.contains("does not snapshot"), "{err}");
    assert!(!vol.path().join("hello.txt").exists());
}

/// EX-09 in place: a failing RUN and a final root user fail with a message naming the file and line
/// (or the rule), and leave nothing in `<extended>`.
#[test]
fn in_place_errors_leave_nothing_behind() {
    if !root() {
        return;
    }
    for (text, needle) in [
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo boom; exit 7\nUSER 1000\n",
            "run.Dockerfile:4: RUN failed with exit code 7",
        ),
        (
            "ARG base_image\nFROM ${base_image}\nUSER root\nRUN true\n",
            "the final user ID is 0 (root)",
        ),
    ] {
        let f = fixture();
        let layout = f.root.parent().unwrap().join("base-layout");
        write_base_layout(&f.root, &layout);
        let mut ext = extender_for(&f, &layout, text);
        ext.root = Some(f.root.clone());
        ext.executor = Executor::InPlace;
        let err = ext.extend().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        let left = std::fs::read_dir(&ext.extended_dir)
            .map(|r| r.count())
            .unwrap_or(0);
        let run_left = std::fs::read_dir(ext.extended_dir.join("run"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(run_left, 0, "nothing under <extended>/run");
        assert!(left <= 1, "at most the empty run dir");
    }
}

impl Fixture {
    fn blobs_dir_of(&self, e: &Extended) -> std::path::PathBuf {
        // Kind build caches its (plain tar) layers; the step cache keeps the blob.
        self.cache.join("blobs").join(
            e.outcome.layers[0]
                .blob
                .digest
                .trim_start_matches("sha256:"),
        )
    }
}
