//! `make bench` / `make bench-creator` (issue #16 "Benchmarks"): `creator` fresh and no-op builds of a
//! generated app (a few thousand files, text-like and random content) into an OCI layout, against floors
//! measured in the same run on the same bytes (the app as one tar): read + sha256 of the tar (and
//! `sha256sum`, which is slower here: no SHA extensions), single-core deflate-1 of it, all-core deflate-1
//! of it (independent slices, one per core), and the all-core floor the target refers to:
//! `max(sha256, (sha256 + deflate-1) / cores)`, the reading, hashing and compressing of the app bytes
//! spread perfectly over every core. Prints ratios and the creator's peak
//! RSS (wait4's ru_maxrss), and the layer pipeline alone (tar bytes → sha256 → gzip → sha256) with one
//! gzip worker and with all cores. Each figure is the best of two runs. No assertion depends on time.
//!
//! Needs root (creator drops to uid 1000 for buildpacks), busybox-static, GNU tar, sha256sum, and the
//! release `lifecycle` + `launcher` (`make build`). Environment:
//! - `BENCH_CREATOR_MB` — app sizes in MB, comma-separated (default `300,1024`);
//! - `BENCH_CREATOR_BIN` — directory holding `lifecycle` and `launcher` (default the release target dir);
//! - `BENCH_CREATOR_BASELINE` — another such directory (e.g. main's build) to run side by side;
//! - `BENCH_DIR` — where to put the scratch files (default the system temp dir); `BENCH_KEEP=1` keeps them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cnb_lifecycle::archive::{set_gzip_workers, Compression, LayerWriter, Sink};
use sha2::{Digest as _, Sha256};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Writes `mb` MB of app files under `dir/data`: files of 16–240 KiB in directories of 100, one third
/// pseudo-random, two thirds text-like (varied words), so gzip-1 gets a realistic ~2x.
fn generate(dir: &Path, mb: u64) -> usize {
    let words: Vec<&[u8]> = [
        "import",
        "function",
        "return",
        "const",
        "value",
        "config",
        "module",
        "export",
        "self",
        "string",
        "number",
        "render",
        "layer",
        "buildpack",
        "print",
        "if",
        "else",
        "for",
        "{",
        "}",
        "(",
        ")",
        ";",
        "\n",
        "  ",
        "0",
        "1",
        "42",
        "null",
        "true",
        "false",
        "data",
        "index",
    ]
    .iter()
    .map(|w| w.as_bytes())
    .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let target = mb * 1_000_000;
    let (mut total, mut n) = (0u64, 0usize);
    let mut buf = Vec::with_capacity(256 << 10);
    while total < target {
        let size = (16 << 10) + (next() % (224 << 10)) as usize;
        buf.clear();
        if n % 3 == 0 {
            while buf.len() < size {
                buf.extend_from_slice(&next().to_le_bytes());
            }
        } else {
            while buf.len() < size {
                let r = next();
                buf.extend_from_slice(words[(r % words.len() as u64) as usize]);
                buf.push(b' ');
            }
        }
        buf.truncate(size);
        let d = dir.join(format!("data/d{:03}", n / 100));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{n:05}.txt")), &buf).unwrap();
        total += size as u64;
        n += 1;
    }
    n
}

fn sh(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed");
}

/// The platform directories of `samples/demo.sh`: buildpacks, order, run image layout, the app.
fn setup(out: &Path, mb: u64) -> usize {
    let root = Path::new(ROOT);
    for d in ["oci", "cache", "layers", "platform/env", "cnb/buildpacks"] {
        fs::create_dir_all(out.join(d)).unwrap();
    }
    sh(Command::new("sh")
        .arg(root.join("samples/base-images/busybox/build.sh"))
        .arg(out.join("oci/localhost/samples/run/latest"))
        .stdout(Stdio::null()));
    for bp in ["runtime", "app-deps"] {
        let src = root.join("samples/buildpacks").join(bp);
        let toml = fs::read_to_string(src.join("buildpack.toml")).unwrap();
        let ver = toml
            .lines()
            .find_map(|l| l.trim().strip_prefix("version = \""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap()
            .to_string();
        let dst = out.join(format!("cnb/buildpacks/samples_{bp}"));
        fs::create_dir_all(&dst).unwrap();
        sh(Command::new("cp").arg("-R").arg(&src).arg(dst.join(ver)));
    }
    for f in ["order.toml", "run.toml"] {
        fs::copy(
            root.join("samples/builders/shell").join(f),
            out.join("cnb").join(f),
        )
        .unwrap();
    }
    sh(Command::new("cp")
        .arg("-R")
        .arg(root.join("samples/apps/hello"))
        .arg(out.join("workspace")));
    let files = generate(&out.join("workspace"), mb);
    fs::write(out.join("platform/env/GREETING_FROM"), "bench").unwrap();
    sh(Command::new("chmod").args(["-R", "a+rX"]).arg(out));
    for d in ["workspace", "layers", "cache", "oci"] {
        sh(Command::new("chown")
            .args(["-R", "1000:1000"])
            .arg(out.join(d)));
    }
    files
}

struct Run {
    secs: f64,
    maxrss_kb: i64,
}

/// Runs `creator` from `bin` (through a `creator` symlink to the multi-call binary); fresh removes the
/// layers, cache and previous app image first.
fn creator(out: &Path, bin: &Path, fresh: bool) -> Run {
    if fresh {
        for d in ["layers", "cache", "oci/localhost/samples/hello"] {
            let _ = fs::remove_dir_all(out.join(d));
        }
        for d in ["layers", "cache"] {
            fs::create_dir_all(out.join(d)).unwrap();
            sh(Command::new("chown").arg("1000:1000").arg(out.join(d)));
        }
    }
    let links = out.join("bin");
    let _ = fs::remove_dir_all(&links);
    fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(bin.join("lifecycle"), links.join("creator")).unwrap();
    let app = "localhost/samples/hello:latest";
    let log = fs::File::create(out.join("creator.log")).unwrap();
    // Through a fresh copy of this binary (see `measured`): a child's ru_maxrss includes the high-water RSS
    // of the process it was forked from, and this one held the app's tar in memory.
    let res = Command::new(std::env::current_exe().unwrap())
        .arg("--run-measured")
        .arg(links.join("creator"))
        .arg(format!("-app={}", out.join("workspace").display()))
        .arg(format!("-layers={}", out.join("layers").display()))
        .arg(format!("-platform={}", out.join("platform").display()))
        .arg(format!(
            "-buildpacks={}",
            out.join("cnb/buildpacks").display()
        ))
        .arg(format!("-order={}", out.join("cnb/order.toml").display()))
        .arg(format!("-run={}", out.join("cnb/run.toml").display()))
        .arg(format!("-cache-dir={}", out.join("cache").display()))
        .arg(format!("-launcher={}", bin.join("launcher").display()))
        .arg("-layout")
        .arg(format!("-layout-dir={}", out.join("oci").display()))
        .arg(format!("-previous-image={app}"))
        .arg(app)
        .env("CNB_PLATFORM_API", "0.14")
        .env("CNB_USER_ID", "1000")
        .env("CNB_GROUP_ID", "1000")
        .env("CNB_EXPERIMENTAL_MODE", "warn")
        .stderr(log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&res.stdout);
    let mut it = text.split_whitespace();
    let (Some(secs), Some(maxrss_kb)) = (
        it.next().and_then(|v| v.parse().ok()),
        it.next().and_then(|v| v.parse().ok()),
    ) else {
        let log = fs::read_to_string(out.join("creator.log")).unwrap_or_default();
        panic!("creator failed ({}):\n{log}", res.status);
    };
    Run { secs, maxrss_kb }
}

/// `--run-measured PROGRAM ARGS…`: runs the program (stdout and stderr to this process's stderr) and
/// prints its wall seconds and ru_maxrss (KiB); exits non-zero if it failed.
fn measured(prog: &str, args: &[String]) -> ! {
    let t = Instant::now();
    let child = Command::new(prog)
        .args(args)
        .stdout(std::io::stderr())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    if r < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        eprintln!("{prog} failed (wait status {status})");
        std::process::exit(1);
    }
    println!("{secs} {}", ru.ru_maxrss);
    std::process::exit(0);
}

/// Every measurement is the best of this many runs.
const RUNS: usize = 2;

fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| f()).fold(f64::MAX, f64::min)
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

/// Deflate-1 of `data` on `n` threads, each an independent contiguous slice (the raw ceiling).
fn deflate_on(data: &[u8], n: usize) -> f64 {
    let chunk = data.len().div_ceil(n.max(1)).max(1);
    timed(|| {
        std::thread::scope(|s| {
            for part in data.chunks(chunk) {
                s.spawn(move || {
                    let mut z = flate2::write::DeflateEncoder::new(
                        std::io::sink(),
                        flate2::Compression::new(1),
                    );
                    z.write_all(part).unwrap();
                    z.finish().unwrap();
                });
            }
        })
    })
    .0
}

/// Our layer pipeline alone on the tar bytes: sha256 → gzip → sha256, to a sink.
fn pipeline(data: &[u8], workers: usize) -> f64 {
    set_gzip_workers(workers);
    let secs = timed(|| {
        let mut w = LayerWriter::new(
            Compression::default(),
            Sink::Writer(Box::new(std::io::sink())),
        )
        .unwrap();
        for c in data.chunks(1 << 20) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    })
    .0;
    set_gzip_workers(0);
    secs
}

fn bench(base: &Path, mb: u64, bins: &[(String, PathBuf)]) {
    let out = base.join(format!("app-{mb}"));
    let (gen_s, files) = timed(|| setup(&out, mb));
    let tar = out.join("app.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(out.join("workspace"))
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    // Read + sha256 from the page cache in 1 MiB reads (what a layer writer must at least do).
    let _ = fs::read(&tar).unwrap();
    let (t_sha, data) = timed(|| {
        let mut f = fs::File::open(&tar).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        let (mut data, mut h) = (Vec::with_capacity(len), Sha256::new());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            data.extend_from_slice(&buf[..n]);
        }
        h.finalize();
        data
    });
    let mbytes = data.len() as f64 / 1e6;
    println!(
        "creator bench: app of {files} files, tar {mbytes:.0} MB (generated in {gen_s:.1}s), {} cores, load \
         average {}",
        cores(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or("?")
    );
    let t_sum = best(|| {
        timed(|| {
            sh(Command::new("sha256sum").arg(&tar).stdout(Stdio::null()));
        })
        .0
    });
    let t_sha = t_sha.min(best(|| timed(|| Sha256::digest(&data)).0));
    let t_def1 = best(|| deflate_on(&data, 1));
    let t_defn = best(|| deflate_on(&data, cores()));
    let floor = t_sha.max((t_sha + t_def1) / cores() as f64);
    let rate = |s: f64| mbytes / s;
    println!(
        "  floors: read + sha256 {t_sha:.2}s ({:.0} MB/s; `sha256sum` {t_sum:.2}s, {:.0} MB/s), deflate-1 one \
         core {t_def1:.2}s ({:.0} MB/s), all {} cores {t_defn:.2}s ({:.0} MB/s); all-core floor (read + \
         sha256 + deflate-1 spread on every core) {floor:.2}s",
        rate(t_sha),
        rate(t_sum),
        rate(t_def1),
        cores(),
        rate(t_defn)
    );
    let p1 = best(|| pipeline(&data, 1));
    let pn = best(|| pipeline(&data, 0));
    println!(
        "  layer pipeline (sha256 + gzip-1 + sha256): 1 gzip worker {p1:.2}s ({:.0} MB/s), all cores {pn:.2}s \
         ({:.0} MB/s, {:.2}x), {:.2}x the all-core floor",
        rate(p1),
        rate(pn),
        p1 / pn,
        pn / floor
    );
    drop(data);
    let _ = fs::remove_file(&tar);
    for (name, bin) in bins {
        // Best of RUNS: the machine is shared, a slower run measures the neighbours.
        let fresh = (0..RUNS)
            .map(|_| creator(&out, bin, true))
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .unwrap();
        let noop = (0..RUNS)
            .map(|_| creator(&out, bin, false))
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .unwrap();
        println!(
            "  creator [{name}]: fresh {:.2}s ({:.0} MB/s, {:.2}x the all-core floor, {:.2}x `sha256sum`), \
             peak RSS {} MB; no-op rebuild {:.2}s ({:.1}x faster than fresh), peak RSS {} MB",
            fresh.secs,
            rate(fresh.secs),
            fresh.secs / floor,
            fresh.secs / t_sum,
            fresh.maxrss_kb / 1024,
            noop.secs,
            fresh.secs / noop.secs,
            noop.maxrss_kb / 1024
        );
    }
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(&out);
    } else {
        println!("  kept {}", out.display());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 2 && args[1] == "--run-measured" {
        measured(&args[2], &args[3..]);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("bench_creator: SKIPPED (creator drops to uid 1000 for buildpacks: run as root)");
        return;
    }
    let default_bin = PathBuf::from(ROOT).join("target/x86_64-unknown-linux-gnu/release");
    let bin = std::env::var_os("BENCH_CREATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or(default_bin);
    if !bin.join("lifecycle").is_file() || !bin.join("launcher").is_file() {
        println!(
            "bench_creator: SKIPPED ({} has no lifecycle + launcher: run `make build` first)",
            bin.display()
        );
        return;
    }
    let mut bins = vec![("this build".to_string(), bin)];
    if let Some(b) = std::env::var_os("BENCH_CREATOR_BASELINE") {
        bins.push(("baseline".to_string(), PathBuf::from(b)));
    }
    let sizes: Vec<u64> = std::env::var("BENCH_CREATOR_MB")
        .unwrap_or_else(|_| "300,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut tmp = tempfile::Builder::new()
        .prefix("bench-creator-")
        .tempdir_in(base)
        .unwrap();
    tmp.disable_cleanup(std::env::var_os("BENCH_KEEP").is_some());
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for mb in sizes {
        bench(tmp.path(), mb, &bins);
    }
}
