//! Launcher overhead benchmark (`make bench-launcher`, part of `make bench`; issue 6).
//!
//! Times starting a trivial process (`true`) directly and through the release `launcher` binary invoked as
//! `/cnb/process/web` (metadata read, env from several layers with env files, one exec.d, `execve`), and
//! prints the medians, the added milliseconds (target ≤ 2 ms) and the launcher's size (target ≤ 3 MB).
//! Both are measured in the same run on the same machine; nothing is asserted.
//!
//! Usage: `bench_launcher [<launcher binary>] [<iterations>]`; the binary defaults to
//! `target/x86_64-unknown-linux-gnu/release/launcher`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run_once(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.status().unwrap();
    let elapsed = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

/// Alternates `a` and `b` (so load changes on a shared machine hit both alike) and returns the medians of
/// `a`, of `b`, and of the paired differences `b - a`.
fn time_pair(
    iterations: usize,
    a: impl Fn() -> Command,
    b: impl Fn() -> Command,
) -> (Duration, Duration, Duration) {
    for _ in 0..5 {
        run_once(&mut a());
        run_once(&mut b());
    }
    let (mut sa, mut sb, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let da = run_once(&mut a());
        let db = run_once(&mut b());
        sa.push(da);
        sb.push(db);
        diff.push(db.saturating_sub(da));
    }
    (median(sa), median(sb), median(diff))
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let launcher = args.next().map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/launcher")
    });
    let iterations: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300);
    assert!(
        launcher.is_file(),
        "{} not found: build it with `cargo build --release --bin launcher`",
        launcher.display()
    );
    let truebin = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("true");

    let t = tempfile::TempDir::new().unwrap();
    let layers = t.path().join("layers");
    let app = t.path().join("workspace");
    std::fs::create_dir_all(&app).unwrap();
    write(
        &layers.join("config/metadata.toml"),
        &format!(
            "[[buildpacks]]\nid = \"bench/a\"\napi = \"0.12\"\n[[buildpacks]]\nid = \"bench/b\"\napi = \"0.12\"\n\
             [[processes]]\ntype = \"web\"\ncommand = [\"{truebin}\"]\nargs = [\"x\"]\ndirect = true\n\
             buildpack-id = \"bench/a\"\n"
        ),
    );
    // A realistic-ish layer set: 2 buildpacks × 3 layers, each with bin/, lib/ and a few env files.
    for bp in ["bench_a", "bench_b"] {
        for l in ["jdk", "deps", "app"] {
            let d = layers.join(bp).join(l);
            std::fs::create_dir_all(d.join("bin")).unwrap();
            std::fs::create_dir_all(d.join("lib")).unwrap();
            write(&d.join("env/JAVA_HOME.default"), "/opt/jdk");
            write(&d.join("env.launch/OPTS.append"), "-Xmx1g");
            write(&d.join("env.launch/OPTS.delim"), " ");
            write(&d.join("env.launch/web/WEB_ONLY"), "1");
        }
    }
    let launcher_env = |cmd: &mut Command| {
        cmd.env("CNB_PLATFORM_API", "0.15")
            .env("CNB_LAYERS_DIR", &layers)
            .env("CNB_APP_DIR", &app)
            .stdout(Stdio::null());
    };

    let direct = || {
        let mut c = Command::new(truebin);
        c.arg("x").stdout(Stdio::null());
        c
    };
    let via_launcher = || {
        let mut c = Command::new(&launcher);
        c.arg0("/cnb/process/web");
        launcher_env(&mut c);
        c
    };
    let (direct_ms, via, added) = time_pair(iterations, direct, via_launcher);
    // With one exec.d executable (a shell script: costs a shell start, reported separately).
    let execd = layers.join("bench_a/app/exec.d/noop");
    write(&execd, "#!/bin/sh\necho 'FROM_EXECD = \"1\"' >&3\n");
    std::fs::set_permissions(&execd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, via_execd, added_execd) = time_pair(iterations, direct, via_launcher);

    let size = std::fs::metadata(&launcher).unwrap().len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("launcher benchmark ({iterations} iterations, medians)");
    println!(
        "  direct `true`:                      {:8.3} ms",
        ms(direct_ms)
    );
    println!("  via launcher (6 layers, env files): {:8.3} ms", ms(via));
    println!(
        "  added by the launcher:              {:8.3} ms  (median of paired differences; target <= 2 ms)",
        ms(added)
    );
    println!(
        "  via launcher + 1 exec.d (sh):       {:8.3} ms  (added {:.3} ms; the exec.d is a shell start)",
        ms(via_execd),
        ms(added_execd)
    );
    println!(
        "  launcher size: {size} bytes ({:.2} MB; target <= 3 MB) at {}",
        size as f64 / 1024.0 / 1024.0,
        launcher.display()
    );
}
