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

use cnb_lifecycle::archive::{
    build_parallel, set_zstd_workers, Compression, LayerBuilder, LayerInfo, Sink,
    ZSTD_DEFAULT_LEVEL,
};
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

/// Counts the regular files under `dir` and their bytes.
fn count_files(dir: &Path, bytes: &mut u64, files: &mut usize) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            count_files(&p, bytes, files);
        } else if md.is_file() {
            *bytes += md.len();
            *files += 1;
        }
    }
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
    // BENCH_LAYER_TREE=dir1,dir2 measures existing trees (e.g. /usr/bin,/usr/share) instead of generated data.
    let (halves, bytes, files) = match std::env::var("BENCH_LAYER_TREE") {
        Ok(dirs) => {
            let halves: Vec<PathBuf> = dirs.split(',').map(PathBuf::from).collect();
            let (mut bytes, mut files) = (0u64, 0usize);
            for h in &halves {
                count_files(h, &mut bytes, &mut files);
                // Warm the page cache so the first measurement does not pay for disk reads.
                for_each_file(h, &mut |_| {});
            }
            (halves, bytes, files)
        }
        Err(_) => generate(&tmp.path().join("tree"), mb << 20),
    };
    println!(
        "layer bench: tree of {files} files, {:.0} MB (generated or counted in {:.1}s); load average {}",
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
    // zstd alone, single-threaded (no workers), on the same bytes.
    let mut zstd_raw = Vec::new();
    for level in [3, ZSTD_DEFAULT_LEVEL] {
        let c0 = cpu_secs(libc::RUSAGE_SELF);
        let mut zs = zstd::Encoder::new(std::io::sink(), level).unwrap();
        for half in &halves {
            for_each_file(half, &mut |b| zs.write_all(b).unwrap());
        }
        zs.finish().unwrap();
        zstd_raw.push((level, mbps(bytes, cpu_secs(libc::RUSAGE_SELF) - c0)));
    }
    println!(
        "limits (1 core, per CPU-second): sha256 {sha:.0} MB/s, deflate-1 {deflate:.0} MB/s, {}",
        zstd_raw
            .iter()
            .map(|(l, r)| format!("zstd{l} {r:.0} MB/s"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Ours: (name, compression, layer threads, zstd workers per layer).
    let def = Compression::zstd();
    let def_name = format!("zstd{ZSTD_DEFAULT_LEVEL}");
    let mut configs: Vec<(String, Compression, usize, usize)> = vec![
        ("gzip-1".into(), Compression::Gzip { level: 1 }, 1, 1),
        ("gzip-1".into(), Compression::Gzip { level: 1 }, 2, 1),
    ];
    for level in [3, 2, 1, -1, -3, -5, -7] {
        configs.push((format!("zstd{level}"), Compression::Zstd { level }, 1, 1));
    }
    configs.push((def_name.clone(), def, 1, 2));
    configs.push((def_name.clone(), def, 2, 1));
    let only: Option<Vec<String>> = std::env::var("BENCH_LAYER_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let out = tmp.path().join("out");
    // (name, layer threads, workers, wall MB/s, wall s, per-core MB/s, cpu s, ratio, digests, rss)
    let mut results = Vec::new();
    for (name, c, threads, workers) in configs {
        if only.as_ref().is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        set_zstd_workers(workers);
        let (secs, cpu, infos) = layers(&halves, c, &out, threads);
        let tar: u64 = infos.iter().map(|i| i.tar_size).sum();
        let blob: u64 = infos.iter().map(|i| i.size).sum();
        let rate = mbps(tar, secs);
        let per_cpu = mbps(tar, cpu);
        let ratio = tar as f64 / blob as f64;
        let digests = infos
            .iter()
            .map(|i| i.digest.hex()[..12].to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rss = peak_rss_mb();
        println!(
            "ours {name} {threads} layer thread(s), {workers} zstd worker(s): wall {secs:.2}s = {rate:.0} MB/s; CPU {cpu:.2}s = {per_cpu:.0} MB/s per core; compression {ratio:.2}x; blobs {digests}; peak RSS so far {rss:.1} MB",
        );
        results.push((
            name, threads, workers, rate, secs, per_cpu, cpu, ratio, digests, rss,
        ));
    }
    set_zstd_workers(0);
    let _ = fs::remove_dir_all(&out);
    let find =
        |n: &str, th: usize, w: usize| results.iter().find(|r| r.0 == n && r.1 == th && r.2 == w);
    let rate = |n: &str, th: usize, w: usize| find(n, th, w).map(|r| r.5).unwrap_or(0.0);
    let cpu = |n: &str, th: usize, w: usize| find(n, th, w).map(|r| r.6).unwrap_or(0.0);
    let wall_of = |n: &str, th: usize, w: usize| find(n, th, w).map(|r| r.4).unwrap_or(0.0);

    // Peer: umoci insert of the same tree.
    let umoci = tmp.path().join("umoci");
    let img = format!("{}:bench", umoci.display());
    let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
    let peer = if ok(Command::new("umoci").args(["init", "--layout", &umoci.display().to_string()]))
        && ok(Command::new("umoci").args(["new", "--image", &img]))
    {
        let (t, c0) = (Instant::now(), cpu_secs(libc::RUSAGE_CHILDREN));
        let done = halves.iter().enumerate().all(|(i, h)| {
            ok(Command::new("umoci").args([
                "insert",
                "--image",
                &img,
                &h.display().to_string(),
                &format!("/layers/bench/half{i}"),
            ]))
        });
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
    for (l, r) in &zstd_raw {
        println!("| zstd{l} alone, no workers (1 core) | {r:.0} MB/s |");
    }
    for (n, th, w, r, s, pc, c, ratio, _, _) in &results {
        let workers = if n.starts_with("zstd") {
            format!(", {w} zstd worker(s) per layer")
        } else {
            String::new()
        };
        println!("| ours {n}, {th} layer thread(s){workers} | {pc:.0} MB/s per core (CPU {c:.1}s; wall {s:.1}s = {r:.0} MB/s); {pc_def:.2}x deflate limit; compression {ratio:.2}x |", pc_def = pc / deflate);
    }
    println!(
        "| gzip 1 thread / deflate limit | {:.2} (target >= 0.8) |",
        rate("gzip-1", 1, 1) / deflate
    );
    println!(
        "| gzip 2 threads, per core / deflate limit | {:.2} (target >= 0.8) |",
        rate("gzip-1", 2, 1) / deflate
    );
    for (n, _, w, ..) in results
        .iter()
        .filter(|r| r.0.starts_with("zstd") && r.1 == 1)
    {
        println!(
            "| {n} ({w} worker(s)) / gzip-1, per CPU-second | {:.2} (target >= 3) |",
            rate(n, 1, *w) / rate("gzip-1", 1, 1)
        );
    }
    println!(
        "| {def_name} / gzip-1, wall, both 1 layer thread ({} zstd workers) | {:.2} |",
        2,
        wall_of("gzip-1", 1, 1) / wall_of(&def_name, 1, 2).max(1e-9)
    );
    println!(
        "| {def_name} / gzip-1, wall, both 2 layer threads | {:.2} |",
        wall_of("gzip-1", 2, 1) / wall_of(&def_name, 2, 1).max(1e-9)
    );
    let same =
        |w1: usize, th: usize, w2: usize| match (find(&def_name, 1, w1), find(&def_name, th, w2)) {
            (Some(a), Some(b)) => (a.8 == b.8).to_string(),
            _ => "not measured".into(),
        };
    println!(
        "| {def_name} blob digests equal across 1/2 workers and 1/2 layer threads | {} / {} |",
        same(1, 1, 2),
        same(1, 2, 1)
    );
    match peer {
        Some((wall, c)) => {
            println!(
                "| umoci insert (peer) | {:.0} MB/s per core (CPU {c:.1}s; wall {wall:.1}s) |",
                mbps(bytes, c)
            );
            println!(
                "| ours gzip / umoci (CPU time umoci / ours) | {:.2} |",
                c / cpu("gzip-1", 1, 1)
            );
            println!(
                "| ours gzip 2 threads / umoci (wall) | {:.2} |",
                wall / wall_of("gzip-1", 2, 1).max(1e-9)
            );
        }
        None => println!("| umoci insert (peer) | not available |"),
    }
    println!(
        "| peak RSS (this process) | {:.1} MB (target <= 100) |",
        peak_rss_mb()
    );
}
