//! `make bench` case `layer`: layer creation throughput against the machine's limits and a peer, in one run.
//!
//! 1. Generates a tree deterministically (default ~1 GiB; `BENCH_LAYER_MB` overrides): two halves, each
//!    with thousands of small files and a few large ones, text-like data that gzip compresses ~2-3×.
//! 2. Limits, on the same file bytes read from the page cache: raw sha256 and raw deflate (flate2/zlib-rs,
//!    level 1), single core.
//! 3. Ours: one layer per half, gzip level 1 and zstd level 3, on 1 thread (the halves one after the other)
//!    and on 2 threads (the halves in parallel), blobs written to disk.
//! 4. Peer: `umoci insert` of the same tree into a fresh image.
//!
//! Prints MB/s (of tar input), ratios ours/limit and ours/peer, and peak RSS (getrusage). Numbers from a
//! shared, loaded machine are noisy; the ratios are measured in the same run to compensate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cnb_lifecycle::archive::{build_parallel, Compression, LayerBuilder, LayerInfo, Sink};
use sha2::{Digest as _, Sha256};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "layer",
    "buildpack",
    "lifecycle",
    "export",
    "cache",
    "image",
    "registry",
    "digest",
    "manifest",
    "config",
    "launch",
    "process",
    "detect",
    "build",
    "analyze",
    "restore",
    "rebase",
    "extend",
    "platform",
    "stack",
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "on",
    "as",
    "by",
    "an",
    "be",
    "at",
    "or",
];

/// Text-like data: words with some random bytes mixed in (gzip level 1 ratio ~2-3×).
fn fill(rng: &mut Rng, buf: &mut Vec<u8>, n: usize) {
    buf.clear();
    while buf.len() < n {
        let r = rng.next();
        if r % 9 == 0 {
            buf.extend_from_slice(&r.to_le_bytes());
        } else {
            buf.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
            buf.push(if r % 13 == 0 { b'\n' } else { b' ' });
        }
    }
    buf.truncate(n);
}

fn generate(root: &Path, total: u64) -> (Vec<PathBuf>, u64, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut halves = Vec::new();
    let (mut bytes, mut files) = (0u64, 0usize);
    for h in 0..2 {
        let half = root.join(format!("half{h}"));
        let target = total / 2;
        let small_budget = target * 2 / 5;
        let mut written = 0u64;
        let mut i = 0;
        while written < small_budget {
            let dir = half
                .join(format!("d{:03}", i / 100))
                .join(format!("s{:02}", i % 7));
            fs::create_dir_all(&dir).unwrap();
            let size = 512 + (rng.next() % 48_000) as usize;
            fill(&mut rng, &mut buf, size);
            fs::write(dir.join(format!("file{i:05}.txt")), &buf).unwrap();
            written += size as u64;
            i += 1;
        }
        files += i;
        let big = half.join("big");
        fs::create_dir_all(&big).unwrap();
        let per_big = (target - written) / 3;
        for b in 0..3 {
            let mut f = File::create(big.join(format!("blob{b}.bin"))).unwrap();
            let mut left = per_big;
            while left > 0 {
                let n = left.min(1 << 20) as usize;
                fill(&mut rng, &mut buf, n);
                f.write_all(&buf).unwrap();
                left -= n as u64;
            }
            written += per_big;
            files += 1;
        }
        bytes += written;
        halves.push(half);
    }
    (halves, bytes, files)
}

/// Streams every regular file under `dir` (sorted walk) into `f`.
fn for_each_file(dir: &Path, f: &mut dyn FnMut(&[u8])) {
    let mut kids: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kids.sort();
    let mut buf = vec![0u8; 1 << 20];
    for k in kids {
        let md = fs::symlink_metadata(&k).unwrap();
        if md.is_dir() {
            for_each_file(&k, f);
        } else if md.is_file() {
            let mut file = File::open(&k).unwrap();
            loop {
                let n = file.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                f(&buf[..n]);
            }
        }
    }
}

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

/// CPU seconds (user + system) used so far by this process (`who` = RUSAGE_SELF) or its waited-for
/// children (RUSAGE_CHILDREN). On a loaded shared machine wall time mostly measures the other tenants; CPU
/// time is what a dedicated core would need.
fn cpu_secs(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn layers(
    halves: &[PathBuf],
    c: Compression,
    out: &Path,
    threads: usize,
) -> (f64, f64, Vec<LayerInfo>) {
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out).unwrap();
    let jobs: Vec<_> = halves
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut b = LayerBuilder::new();
            b.add_tree(h, format!("/layers/bench/half{i}"), 1000, 1000);
            (b, c, Sink::BlobDir(out.to_path_buf()))
        })
        .collect();
    let (t, c0) = (Instant::now(), cpu_secs(libc::RUSAGE_SELF));
    let infos: Vec<LayerInfo> = build_parallel(jobs, threads)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    (
        t.elapsed().as_secs_f64(),
        cpu_secs(libc::RUSAGE_SELF) - c0,
        infos,
    )
}

fn main() {
    let mb: u64 = std::env::var("BENCH_LAYER_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("bench-layer-")
        .tempdir_in(base)
        .unwrap();
    let t = Instant::now();
    let (halves, bytes, files) = generate(&tmp.path().join("tree"), mb << 20);
    println!(
        "layer bench: tree of {files} files, {:.0} MB (generated in {:.1}s); load average {}",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or("?")
    );

    // Limits: same bytes, from the page cache, one core.
    let c0 = cpu_secs(libc::RUSAGE_SELF);
    let mut h = Sha256::new();
    for half in &halves {
        for_each_file(half, &mut |b| h.update(b));
    }
    let _ = h.finalize();
    let sha = mbps(bytes, cpu_secs(libc::RUSAGE_SELF) - c0);
    let c0 = cpu_secs(libc::RUSAGE_SELF);
    let mut z = flate2::write::DeflateEncoder::new(std::io::sink(), flate2::Compression::new(1));
    for half in &halves {
        for_each_file(half, &mut |b| z.write_all(b).unwrap());
    }
    z.finish().unwrap();
    let deflate = mbps(bytes, cpu_secs(libc::RUSAGE_SELF) - c0);
    let c0 = cpu_secs(libc::RUSAGE_SELF);
    let mut zs = zstd::Encoder::new(std::io::sink(), 3).unwrap();
    for half in &halves {
        for_each_file(half, &mut |b| zs.write_all(b).unwrap());
    }
    zs.finish().unwrap();
    let zstd_raw = mbps(bytes, cpu_secs(libc::RUSAGE_SELF) - c0);
    println!("limits (1 core, per CPU-second): sha256 {sha:.0} MB/s, deflate-1 {deflate:.0} MB/s, zstd-3 {zstd_raw:.0} MB/s");

    // Ours.
    let out = tmp.path().join("out");
    let mut results = Vec::new();
    for (name, c) in [
        ("gzip-1", Compression::Gzip { level: 1 }),
        ("zstd-3", Compression::Zstd { level: 3 }),
    ] {
        for threads in [1usize, 2] {
            let (secs, cpu, infos) = layers(&halves, c, &out, threads);
            let tar: u64 = infos.iter().map(|i| i.tar_size).sum();
            let blob: u64 = infos.iter().map(|i| i.size).sum();
            let rate = mbps(tar, secs);
            let per_cpu = mbps(tar, cpu);
            println!(
                "ours {name} {threads} thread(s): wall {secs:.2}s = {rate:.0} MB/s; CPU {cpu:.2}s = {per_cpu:.0} MB/s per core; ratio {:.2}x; diffIDs {}",
                tar as f64 / blob as f64,
                infos.iter().map(|i| &i.diff_id.hex()[..12]).collect::<Vec<_>>().join(",")
            );
            results.push((name, threads, rate, secs, per_cpu, cpu));
        }
    }
    let _ = fs::remove_dir_all(&out);
    let rate = |n: &str, th: usize| {
        results
            .iter()
            .find(|r| r.0 == n && r.1 == th)
            .map(|r| r.4)
            .unwrap_or(0.0)
    };
    let cpu = |n: &str, th: usize| {
        results
            .iter()
            .find(|r| r.0 == n && r.1 == th)
            .map(|r| r.5)
            .unwrap_or(0.0)
    };

    // Peer: umoci insert of the same tree.
    let umoci = tmp.path().join("umoci");
    let img = format!("{}:bench", umoci.display());
    let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
    let peer = if ok(Command::new("umoci").args(["init", "--layout", &umoci.display().to_string()]))
        && ok(Command::new("umoci").args(["new", "--image", &img]))
    {
        let (t, c0) = (Instant::now(), cpu_secs(libc::RUSAGE_CHILDREN));
        let done = ok(Command::new("umoci").args([
            "insert",
            "--image",
            &img,
            &tmp.path().join("tree").display().to_string(),
            "/layers/bench",
        ]));
        done.then(|| {
            (
                t.elapsed().as_secs_f64(),
                cpu_secs(libc::RUSAGE_CHILDREN) - c0,
            )
        })
    } else {
        None
    };

    println!();
    println!("Rates are MB of tar input per CPU-second (robust on a shared, loaded machine); wall times in brackets.");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| tree | {files} files, {:.0} MB |", bytes as f64 / 1e6);
    println!("| sha256 limit (1 core) | {sha:.0} MB/s |");
    println!("| deflate-1 limit (1 core) | {deflate:.0} MB/s |");
    println!("| zstd-3 raw (1 core) | {zstd_raw:.0} MB/s |");
    for (n, th, r, s, pc, c) in &results {
        println!("| ours {n}, {th} thread(s) | {pc:.0} MB/s per core (CPU {c:.1}s; wall {s:.1}s = {r:.0} MB/s) |");
    }
    println!(
        "| gzip 1 thread / deflate limit | {:.2} (target >= 0.8) |",
        rate("gzip-1", 1) / deflate
    );
    println!(
        "| gzip 2 threads, per core / deflate limit | {:.2} (target >= 0.8) |",
        rate("gzip-1", 2) / deflate
    );
    println!(
        "| zstd / gzip (per core) | {:.2} (target >= 3) |",
        rate("zstd-3", 1) / rate("gzip-1", 1)
    );
    match peer {
        Some((wall, c)) => {
            println!(
                "| umoci insert (peer) | {:.0} MB/s per core (CPU {c:.1}s; wall {wall:.1}s) |",
                mbps(bytes, c)
            );
            println!(
                "| ours gzip / umoci (CPU time umoci / ours) | {:.2} |",
                c / cpu("gzip-1", 1)
            );
            println!(
                "| ours gzip 2 threads / umoci (wall) | {:.2} |",
                wall / results
                    .iter()
                    .find(|r| r.0 == "gzip-1" && r.1 == 2)
                    .map(|r| r.3)
                    .unwrap_or(1.0)
            );
        }
        None => println!("| umoci insert (peer) | not available |"),
    }
    println!(
        "| peak RSS (this process) | {:.1} MB (target <= 100) |",
        peak_rss_mb()
    );
}
