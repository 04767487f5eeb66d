//! `make bench` case `extend`: apply a Dockerfile with three RUN steps (one `apt-get install` on a
//! Debian bookworm minbase image, two file writes) with our extender and with
//! `buildah bud --isolation chroot --layers` on the same Dockerfile and base (an OCI layout), then
//! rebuild both with warm caches. Prints both times, the ratio and the cached-rebuild times.
//!
//! Then (issue 19) each executor's step time against the user-namespace executor's on the same root
//! and steps (five small `RUN`s on the unpacked bookworm root, no cache): in place (no namespace, no
//! mount: the extender in a container under the default seccomp profile; here chrooted, since the root
//! is not `/`) and the current namespace (`creator -build-image`), printed as ratios.
//! `BENCH_EXTEND_EXECUTORS=1` runs only that part.
//!
//! Needs root (or a subuid range), `umoci`, `debootstrap` (first run), `buildah` and the Debian mirror.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cnb_lifecycle::extend::{
    dockerfile, fsutil, sandbox, Executor, Extender, ExtensionInput, IdMapping, Kind, StepCache,
};

const DOCKERFILE: &str = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN apt-get update && apt-get install -y --no-install-recommends tree && rm -rf /var/lib/apt/lists/*\nRUN echo one > /one.txt\nRUN echo two > /two.txt\nUSER 1000:1000\n";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bookworm_layout() -> PathBuf {
    let dir = workspace().join("target/extend-cache/bookworm");
    let layout = dir.join("layout");
    if !dir.join("layout.done").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        eprintln!("building the bookworm base image (debootstrap, once)...");
        let st = Command::new("sh")
            .arg(workspace().join("samples/base-images/bookworm/build.sh"))
            .arg(&layout)
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(&layout)
            .status()
            .unwrap();
        std::fs::write(dir.join("layout.done"), "").unwrap();
    }
    layout
}

fn ours(
    layout: &Path,
    tmp: &Path,
    cache: &Path,
    root: Option<PathBuf>,
    kind: Kind,
) -> (Duration, usize, usize) {
    ours_with(
        layout,
        tmp,
        Some(cache),
        root,
        kind,
        DOCKERFILE,
        Executor::UserNamespace(IdMapping::detect().unwrap()),
    )
}

fn ours_with(
    layout: &Path,
    tmp: &Path,
    cache: Option<&Path>,
    root: Option<PathBuf>,
    kind: Kind,
    dockerfile_text: &str,
    executor: Executor,
) -> (Duration, usize, usize) {
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let df = dockerfile::parse("bench/ext", &ctx.join("run.Dockerfile"), dockerfile_text).unwrap();
    let extended = tmp.join("extended");
    let _ = std::fs::remove_dir_all(&extended);
    let ext = Extender {
        kind,
        base_layout: layout.to_path_buf(),
        base_digest: None,
        base_ref: "bookworm".into(),
        root,
        extensions: vec![ExtensionInput {
            dockerfile: df,
            context: ctx,
            args: vec![],
        }],
        extended_dir: extended,
        cache: cache.map(|c| StepCache::new(c, Duration::from_secs(3600))),
        work_dir: tmp.join("work"),
        executor,
        ignore: vec![],
    };
    let t = Instant::now();
    let done = ext.extend().unwrap();
    (t.elapsed(), done.outcome.runs, done.outcome.cache_hits)
}

/// Unpacks the base into `dir` (outside the timed region): the "container's own root" case.
fn unpacked_root(layout: &Path, dir: &Path) -> PathBuf {
    let base = cnb_lifecycle::extend::oci::BaseImage::read(layout, None).unwrap();
    let mapping = IdMapping::detect().unwrap();
    let root = dir.to_path_buf();
    sandbox::in_user_namespace(&mapping, || {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        for l in base.layer_paths() {
            fsutil::apply_layer(&root, &l, cnb_lifecycle::archive::Ownership::FromArchive)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .unwrap();
    root
}

fn buildah(layout: &Path, tmp: &Path) -> Option<Duration> {
    let dir = tmp.join("buildah-ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    let t = Instant::now();
    let out = Command::new("buildah")
        .arg("--root")
        .arg(tmp.join("buildah-storage"))
        .arg("--runroot")
        .arg(tmp.join("buildah-run"))
        .args(["--storage-driver", "vfs"])
        .args([
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--network",
            "host",
        ])
        .arg("--build-arg")
        .arg(format!("base_image=oci:{}:latest", layout.display()))
        .args(["-t", "bench-extended", "-f"])
        .arg(dir.join("Dockerfile"))
        .arg(&dir)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(t.elapsed()),
        Ok(o) => {
            eprintln!("buildah failed:\n{}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("buildah not runnable ({e}); `apt-get install buildah` to compare");
            None
        }
    }
}

/// Files written under namespaced ids are removed from inside the namespace.
fn cleanup(dir: &Path) {
    let mapping = IdMapping::detect().unwrap();
    let t = dir.to_path_buf();
    let _ = sandbox::in_user_namespace(&mapping, || {
        let _ = std::fs::remove_dir_all(&t);
        Ok(())
    });
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// BENCH_EXTEND_OVERLAY=1: the snapshot mechanism side by side on the apt step — walk-and-compare
/// of the whole root (two walks + diff) vs an overlayfs mount (`userxattr`, inside the worker's user
/// namespace) whose upper directory alone holds the change (mount + unmount + one walk of the upper).
/// Each variant runs the same RUN on its own freshly unpacked root; the RUN itself is timed apart.
fn overlay_vs_walk(layout: &Path, tmp: &Path) {
    use cnb_lifecycle::extend::snapshot::{self, Ignore};
    let mapping = IdMapping::detect().unwrap();
    let script = "apt-get update && apt-get install -y --no-install-recommends tree && rm -rf /var/lib/apt/lists/*";
    let spec = |root: &Path| sandbox::StepSpec {
        root: root.to_path_buf(),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "HOME=/root".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
        ],
        uid: 0,
        gid: 0,
        groups: vec![],
        workdir: "/".into(),
        binds: ["/etc/resolv.conf", "/etc/hosts"]
            .iter()
            .filter_map(|f| sandbox::host_file(f).map(|h| (h, f.to_string())))
            .collect(),
        isolation: sandbox::Isolation::Sandbox,
    };
    let walk_root = unpacked_root(layout, &tmp.join("walk-root"));
    let lower = unpacked_root(layout, &tmp.join("overlay-lower"));
    let dirs = tmp.join("overlay");
    let r: (f64, f64, usize, f64, f64, usize) = sandbox::in_user_namespace(&mapping, || {
        let ig = Ignore::defaults();
        // Walk and compare.
        let t = Instant::now();
        let before = snapshot::take(&walk_root, &ig).map_err(|e| e.to_string())?;
        let w1 = t.elapsed();
        let t = Instant::now();
        let out = sandbox::run_step(&spec(&walk_root)).map_err(|e| e.to_string())?;
        let run_walk = t.elapsed();
        if out.code != 0 {
            return Err(format!("RUN failed: {}", out.tail));
        }
        let t = Instant::now();
        let after = snapshot::take(&walk_root, &ig).map_err(|e| e.to_string())?;
        let changes = snapshot::diff(&before, &after);
        let walk = w1 + t.elapsed();
        let n_walk = changes.upserts.len() + changes.deletions.len() + changes.opaque.len();
        // overlayfs: the upper directory is the change.
        let (upper, work, merged) = (dirs.join("upper"), dirs.join("work"), dirs.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        // `volatile`: no sync of the upper directory on unmount (0.23 s for the apt step here); the
        // upper is scratch that is turned into a layer right away.
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},userxattr,volatile",
            lower.display(),
            upper.display(),
            work.display()
        );
        let t = Instant::now();
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| format!("mounting overlayfs ({opts}): {e}"))?;
        let mount = t.elapsed();
        let t = Instant::now();
        let out = sandbox::run_step(&spec(&merged)).map_err(|e| e.to_string())?;
        let run_ovl = t.elapsed();
        if out.code != 0 {
            return Err(format!("RUN failed on overlayfs: {}", out.tail));
        }
        let t = Instant::now();
        nix::mount::umount(&merged).map_err(|e| e.to_string())?;
        let up = snapshot::take(&upper, &Ignore::default()).map_err(|e| e.to_string())?;
        let ovl = mount + t.elapsed();
        Ok((
            walk.as_secs_f64(),
            run_walk.as_secs_f64(),
            n_walk,
            ovl.as_secs_f64(),
            run_ovl.as_secs_f64(),
            up.entries.len(),
        ))
    })
    .unwrap();
    println!("snapshot mechanism on the apt step (debian bookworm minbase, RUN timed apart):");
    println!(
        "  walk-and-compare: 2 walks + diff {:.3} s, {} changed paths (RUN {:.2} s)",
        r.0, r.2, r.1
    );
    println!(
        "  overlayfs (userxattr,volatile): mount + umount + walk of upper {:.3} s, {} upper entries (RUN {:.2} s)",
        r.3, r.5, r.4
    );
}

/// Five small RUN steps (each one snapshot of the whole root and one layer).
const STEPS: &str = "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /s1\nRUN echo two > /s2 && rm -f /s1\nRUN mkdir -p /opt/x && echo three > /opt/x/s3\nRUN touch /etc/s4\nRUN echo five > /tmp/s5\nUSER 1000:1000\n";

/// Each executor's time per RUN step on the same unpacked root, against the user namespace's.
fn executor_ratios(layout: &Path, tmp: &Path) {
    let root = nix::unistd::Uid::effective().is_root();
    let mapping = IdMapping::detect().unwrap();
    let roots: Vec<PathBuf> = (0..3)
        .map(|i| unpacked_root(layout, &tmp.join(format!("exec-root-{i}"))))
        .collect();
    let run = |i: usize, name: &str| -> Option<f64> {
        let dir = tmp.join(format!("exec-{name}"));
        let r = roots[i].clone();
        let (t, runs, _) = match name {
            "userns" => ours_with(
                layout,
                &dir,
                None,
                Some(r),
                Kind::Build,
                STEPS,
                Executor::UserNamespace(mapping.clone()),
            ),
            "in place" if root => ours_with(
                layout,
                &dir,
                None,
                Some(r),
                Kind::Build,
                STEPS,
                Executor::InPlace,
            ),
            "in place" => return None,
            _ => sandbox::in_user_namespace(&mapping, || {
                Ok(ours_with(
                    layout,
                    &dir,
                    None,
                    Some(r),
                    Kind::Build,
                    STEPS,
                    Executor::Current,
                ))
            })
            .unwrap(),
        };
        assert_eq!(runs, 5);
        Some(secs(t) / 5.0)
    };
    let names = ["userns", "in place", "current namespace"];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    // Rotating the order per round spreads page-cache and load effects over every executor.
    for round in 0..7 {
        for k in 0..names.len() {
            let i = (k + round) % names.len();
            if let Some(t) = run(i, names[i]) {
                samples[i].push(t);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let base = median(&mut samples[0]).unwrap();
    println!("executors: 5 RUN steps (kind build, no cache) on the unpacked debian bookworm root, median of 7 rounds");
    println!(
        "  user namespace (sandboxed steps):          {:>7.3} s per step",
        base
    );
    for (i, name) in names.iter().enumerate().skip(1) {
        match median(&mut samples[i]) {
            Some(t) => println!(
                "  {:<42} {:>7.3} s per step = {:.2}x the user namespace's",
                format!("{name}:"),
                t,
                t / base
            ),
            None => println!("  {name}: needs root"),
        }
    }
    step_overhead(&roots[0]);
}

/// The process cost alone: 20 `RUN true` through each step isolation on the same root (the in-place
/// step skips the mount + pid namespaces, `/proc`, `/dev` and the binds).
fn step_overhead(root: &Path) {
    let mapping = IdMapping::detect().unwrap();
    let spec = |isolation| sandbox::StepSpec {
        root: root.to_path_buf(),
        argv: vec!["/bin/true".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        uid: 0,
        gid: 0,
        groups: vec![],
        workdir: "/".into(),
        binds: vec![],
        isolation,
    };
    let time = |isolation| {
        let t = Instant::now();
        for _ in 0..20 {
            assert_eq!(sandbox::run_step(&spec(isolation)).unwrap().code, 0);
        }
        t.elapsed().as_secs_f64() / 20.0
    };
    let sandboxed: f64 =
        sandbox::in_user_namespace(&mapping, || Ok(time(sandbox::Isolation::Sandbox))).unwrap();
    if nix::unistd::Uid::effective().is_root() {
        let direct = time(sandbox::Isolation::Direct);
        println!(
            "  process cost of one RUN (`true`, 20x): sandboxed {:.2} ms, in place {:.2} ms = {:.2}x",
            sandboxed * 1e3,
            direct * 1e3,
            direct / sandboxed
        );
    } else {
        println!(
            "  process cost of one RUN (`true`, 20x): sandboxed {:.2} ms; in place needs root",
            sandboxed * 1e3
        );
    }
}

fn main() {
    if std::env::var_os("BENCH_EXTEND_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let layout = bookworm_layout();
    let tmp = tempfile::tempdir().unwrap();
    executor_ratios(&layout, tmp.path());
    if std::env::var_os("BENCH_EXTEND_EXECUTORS").is_some() {
        cleanup(tmp.path());
        return;
    }
    if std::env::var_os("BENCH_EXTEND_OVERLAY").is_some() {
        overlay_vs_walk(&layout, tmp.path());
        cleanup(tmp.path());
        return;
    }
    // BENCH_EXTEND_QUICK=1: only the cached rebuild on an existing root, with the step cache kept
    // under target/ between runs (profiling loop; the first run fills the cache).
    if std::env::var_os("BENCH_EXTEND_QUICK").is_some() {
        let cache = workspace().join("target/extend-cache/bench-step-cache");
        for (kind, name) in [(Kind::Run, "run"), (Kind::Build, "build")] {
            let (first, runs, _) = ours(&layout, tmp.path(), &cache, None, kind);
            if runs > 0 {
                println!(
                    "  kind {name}: filled the step cache in {:.2} s",
                    secs(first)
                );
            }
            let mut times = Vec::new();
            for i in 0..5 {
                let root = unpacked_root(&layout, &tmp.path().join(format!("root-{name}{i}")));
                let (t, runs_r, _) = ours(&layout, tmp.path(), &cache, Some(root), kind);
                assert_eq!(runs_r, 0);
                times.push(secs(t));
            }
            times.sort_by(f64::total_cmp);
            println!(
                "  kind {name}: cached rebuild on an existing root: min {:.3} s, median {:.3} s, max {:.3} s (5 runs)",
                times[0], times[2], times[4]
            );
        }
        cleanup(tmp.path());
        return;
    }
    let cache = tmp.path().join("step-cache");

    let (cold, runs, _) = ours(&layout, tmp.path(), &cache, None, Kind::Run);
    assert_eq!(runs, 3);
    let (warm, runs_w, hits_w) = ours(&layout, tmp.path(), &cache, None, Kind::Run);
    assert_eq!((runs_w, hits_w), (0, 3));
    let root = unpacked_root(&layout, &tmp.path().join("root"));
    let (warm_in_place, runs_r, _) = ours(&layout, tmp.path(), &cache, Some(root), Kind::Run);
    assert_eq!(runs_r, 0);

    let b_cold = buildah(&layout, tmp.path());
    let b_warm = b_cold.and_then(|_| buildah(&layout, tmp.path()));
    cleanup(tmp.path());

    println!("extend benchmark: 3 RUN steps (apt-get install tree + 2 file writes) on debian bookworm minbase (OCI layout)");
    println!(
        "  cnb-lifecycle extender, cold (unpack base + 3 RUN + snapshots + layers): {:>7.2} s",
        secs(cold)
    );
    println!(
        "  cnb-lifecycle extender, cached rebuild (no root given; all hits):       {:>7.2} s",
        secs(warm)
    );
    println!(
        "  cnb-lifecycle extender, cached rebuild on an existing root (platform):  {:>7.2} s",
        secs(warm_in_place)
    );
    match (b_cold, b_warm) {
        (Some(bc), Some(bw)) => {
            println!("  buildah bud --isolation chroot --layers, cold:                         {:>7.2} s", secs(bc));
            println!("  buildah bud --isolation chroot --layers, cached rebuild:               {:>7.2} s", secs(bw));
            println!(
                "  ratio cold (buildah / ours):   {:.2}x",
                secs(bc) / secs(cold)
            );
            println!(
                "  ratio cached (buildah / ours): {:.2}x",
                secs(bw) / secs(warm)
            );
        }
        _ => println!("  buildah: not measured (see above)"),
    }
}
