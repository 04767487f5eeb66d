//! Registry faults (issue 14, goal 4; checklist G-23): the real exporter, analyzer, restorer (cache
//! image) and rebaser, as the build user, against a real `docker-registry` (basic auth) behind
//! [`FaultProxy`], each run with its own seeded fault plan (resets, 502/503, 429 + `Retry-After`,
//! truncated bodies, stalls beyond the read timeout, 401 mid-push, and storms of each).
//!
//! Every run must end in one of: success with exactly the image / file a clean run produces (the image
//! pulled back with skopeo from the registry itself, not through the proxy, so skopeo verifies every
//! blob), a clean cache miss (restorer), or a failure with the phase's exit code and a message naming
//! the registry; a tag is either untouched or the complete image, never half-written; no run hangs (the
//! harness kills and fails a run after 180 s).
//!
//! CI runs 5 plans per phase; `CNB_STRESS=1` (`make stress`) runs 30 per phase (120 runs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use cnb_acceptance::faults::{Fault, FaultProxy, Plan};
use cnb_acceptance::harness::{ContainerRoot, Output};
use cnb_acceptance::registry::{Registry, RegistryOptions};
use common::*;
use sha2::Digest as _;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Exit 0 and exactly the clean run's result.
    Ok,
    /// Exit 0, the cache layer not restored, a warning (restorer only).
    CleanMiss,
    /// The phase's exit code, a message naming the registry, nothing half-written.
    CleanFailure,
}

struct Campaign {
    reg: Registry,
    proxy: FaultProxy,
    /// Stall storms cost ~10 s each: stress mode only.
    stress: bool,
    table: BTreeMap<(&'static str, Outcome), usize>,
    faults: BTreeMap<(&'static str, Fault), usize>,
    codes: BTreeMap<(&'static str, i32), usize>,
    /// The error line of each failed run (printed with the table).
    messages: Vec<String>,
}

impl Campaign {
    fn auth_env(&self) -> String {
        format!(
            r#"{{"{}":"{}"}}"#,
            self.proxy.host(),
            self.reg.basic_auth_header().unwrap()
        )
    }

    /// `HOST/repo:tag` through the proxy.
    fn via(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.proxy.host())
    }

    fn run(&self, root: &ContainerRoot, phase: &str, args: Vec<String>) -> Output {
        root.phase(phase)
            .env("CNB_INSECURE_REGISTRIES", self.proxy.host())
            .env("CNB_REGISTRY_AUTH", self.auth_env())
            .env("CNB_REGISTRY_READ_TIMEOUT", "1")
            .env("HOME", root.join("home").display().to_string())
            .timeout(Duration::from_secs(180))
            .args(args)
            .run()
    }

    /// The manifest digest of `repo_tag` read from the registry itself, `None` when the tag is absent.
    fn tag_digest(&self, repo_tag: &str) -> Option<String> {
        let (u, p) = self.reg.credentials().unwrap();
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "inspect",
                "--raw",
                "--tls-verify=false",
            ])
            .arg(format!("--creds={u}:{p}"))
            .arg(format!("docker://{}", self.reg.image(repo_tag)))
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("manifest unknown") || err.contains("not found"),
                "skopeo inspect {repo_tag}: {err}"
            );
            return None;
        }
        Some(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&out.stdout))
        ))
    }

    /// Pulls `repo_tag` from the registry with skopeo (which verifies every blob's digest): the image
    /// behind the tag is whole.
    fn assert_pullable(&self, repo_tag: &str, scratch: &std::path::Path) {
        let dest = scratch.join(format!("pull-{}", repo_tag.replace(['/', ':'], "_")));
        let out = self.reg.skopeo_copy_output(
            &format!("docker://{}", self.reg.image(repo_tag)),
            &format!("oci:{}:x", dest.display()),
            &[],
        );
        assert!(
            out.status.success(),
            "{repo_tag} is not a whole image: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(&dest).unwrap();
    }

    /// Checks a failed run: the phase's code and the registry named.
    fn assert_clean_failure(&mut self, phase: &'static str, out: &Output, codes: &[i32]) {
        let code = out.code();
        assert!(
            codes.contains(&code),
            "{phase}: exit {code}, want one of {codes:?}\n{}",
            out.dump()
        );
        let text = out.all();
        assert!(
            text.contains(&self.proxy.host()),
            "{phase}: the failure does not name the registry {}\n{}",
            self.proxy.host(),
            out.dump()
        );
        assert!(
            !text.contains("panicked"),
            "{phase} panicked\n{}",
            out.dump()
        );
        *self.codes.entry((phase, code)).or_default() += 1;
        let line = text
            .lines()
            .find(|l| l.starts_with("ERROR"))
            .unwrap_or("")
            .to_string();
        self.messages.push(format!("{phase} {code}: {line}"));
    }

    fn plan(&self, seed: u64, pushes: bool) -> Plan {
        let transient = [
            Fault::Reset,
            Fault::BadGateway,
            Fault::Unavailable,
            Fault::TooManyRequests,
            Fault::Truncate,
        ];
        match seed % 10 {
            0..=4 => Plan::sporadic(seed, 25, 3),
            5 => Plan::sporadic(seed, 60, 6).kinds(&transient),
            6 | 7 => Plan::storm(transient[(seed / 10) as usize % 5], (seed % 7) as u32),
            8 if self.stress => Plan::storm(Fault::Stall, (seed % 5) as u32),
            8 => Plan::sporadic(seed, 50, 1).kinds(&[Fault::Stall]),
            _ if pushes => Plan::sporadic(seed, 100, 1).kinds(&[Fault::Unauthorized]),
            _ => Plan::sporadic(seed, 40, 2).kinds(&[Fault::Truncate, Fault::Reset]),
        }
    }

    fn record(&mut self, phase: &'static str, outcome: Outcome) {
        *self.table.entry((phase, outcome)).or_default() += 1;
        for f in self.proxy.injected() {
            *self.faults.entry((phase, f)).or_default() += 1;
        }
    }

    fn print(&self) {
        println!("\nregistry faults: outcomes per phase");
        println!(
            "{:<10} {:>5} {:>6} {:>10} {:>12}",
            "phase", "runs", "ok", "clean-miss", "clean-fail"
        );
        for phase in PHASES {
            let n = |o| self.table.get(&(phase, o)).copied().unwrap_or(0);
            let (a, b, c) = (
                n(Outcome::Ok),
                n(Outcome::CleanMiss),
                n(Outcome::CleanFailure),
            );
            println!("{phase:<10} {:>5} {a:>6} {b:>10} {c:>12}", a + b + c);
        }
        println!("faults injected per phase: {:?}", self.faults);
        println!("exit codes of failed runs: {:?}", self.codes);
        for m in &self.messages {
            println!("  {m}");
        }
    }
}

const PHASES: [&str; 4] = ["exporter", "analyzer", "restorer", "rebaser"];

fn launcher_arg(root: &ContainerRoot) -> String {
    format!(
        "-launcher={}",
        root.join("cnb/lifecycle/launcher").display()
    )
}

fn push_run_image(root: &ContainerRoot, reg: &Registry, repo: &str, marker: &str) {
    let dir = make_run_image_with(root, &format!("cnb/{marker}"), marker);
    reg.skopeo_copy(
        &format!("oci:{}:latest", dir.display()),
        &format!("docker://{}", reg.image(repo)),
    );
}

/// A sorted listing of `dir` (relative path → file content hash, `dir` for directories).
fn tree(dir: &std::path::Path) -> BTreeMap<String, String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &p, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.insert(rel, hex::encode(sha2::Sha256::digest(&data)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// G-23, EP-06, AN-*, RS-08, RB-*: the fault campaign (see the module docs).
#[test]
fn phases_survive_registry_faults_cleanly() {
    let stress = std::env::var("CNB_STRESS").is_ok_and(|v| v == "1");
    let per_phase: u64 = if stress { 30 } else { 5 };
    let reg = Registry::start(RegistryOptions::plain().basic_auth());
    let proxy = FaultProxy::start(reg.port());
    let mut c = Campaign {
        reg,
        proxy,
        stress,
        table: BTreeMap::new(),
        faults: BTreeMap::new(),
        codes: BTreeMap::new(),
        messages: Vec::new(),
    };
    let scratch = tempfile::tempdir().unwrap();

    // Clean runs through the proxy: the results every faulted run must reproduce.
    let root = ContainerRoot::new();
    root.mkdir("home");
    push_run_image(&root, &c.reg, "cnb/run:latest", "run-v1");
    push_run_image(&root, &c.reg, "cnb/run2:latest", "run-v2");
    write_build_output(&root, "v1", "echo v1");
    write_cache_layer(&root, "dep-v1");
    let run_image = format!("-run-image={}", c.via("cnb/run:latest"));
    let cache_image = format!("-cache-image={}", c.via("fault/cache:latest"));
    c.run(
        &root,
        "analyzer",
        vec![run_image.clone(), c.via("fault/none:latest")],
    )
    .assert_success();
    c.run(
        &root,
        "exporter",
        vec![
            launcher_arg(&root),
            cache_image.clone(),
            c.via("fault/golden:latest"),
        ],
    )
    .assert_success();
    let golden = report_digest(&root);
    assert_eq!(c.tag_digest("fault/golden:latest"), Some(golden.clone()));
    let cache_digest = c.tag_digest("fault/cache:latest").unwrap();

    // The analyzer's and restorer's root: the golden image is the previous image.
    let ar = ContainerRoot::new();
    ar.mkdir("home");
    ar.write(
        "layers/group.toml",
        "[[group]]\nid = \"bp/a\"\nversion = \"1.0\"\napi = \"0.10\"\n",
    );
    let analyze_args = vec![run_image.clone(), c.via("fault/golden:latest")];
    c.run(&ar, "analyzer", analyze_args.clone())
        .assert_success();
    let golden_analyzed = ar.read("layers/analyzed.toml");
    c.run(&ar, "restorer", vec![cache_image.clone()])
        .assert_success()
        .assert_contains("from cache");
    let golden_restored = tree(&ar.join("layers/bp_a"));
    assert_eq!(ar.read("layers/bp_a/deps/lib/dep.txt"), "dep-v1");

    // The rebaser's golden: the app image rebased onto run2.
    let rebase_args = |c: &Campaign, repo: &str| {
        vec![
            "-force".to_string(),
            format!("-run-image={}", c.via("cnb/run2:latest")),
            c.via(repo),
        ]
    };
    c.reg.skopeo_copy(
        &format!("docker://{}", c.reg.image("fault/golden:latest")),
        &format!("docker://{}", c.reg.image("fault/rb-golden:latest")),
    );
    c.run(&root, "rebaser", rebase_args(&c, "fault/rb-golden:latest"))
        .assert_success();
    let rebased = report_digest(&root);
    assert_ne!(rebased, golden);

    for i in 0..per_phase * 4 {
        let seed = 0x5eed_0000 + i * 7919;
        let phase = PHASES[(i % 4) as usize];
        let plan = c.plan(seed, phase == "exporter" || phase == "rebaser");
        match phase {
            "exporter" => {
                let repo = format!("fault/exp-{i}:latest");
                let cache = format!("fault/exp-cache-{i}:latest");
                let _ = std::fs::remove_file(root.join("layers/report.toml"));
                c.proxy.set_plan(plan);
                let out = c.run(
                    &root,
                    "exporter",
                    vec![
                        launcher_arg(&root),
                        format!("-cache-image={}", c.via(&cache)),
                        c.via(&repo),
                    ],
                );
                let tag = c.tag_digest(&repo);
                let cache_tag = c.tag_digest(&cache);
                for (t, want) in [(&tag, &golden), (&cache_tag, &cache_digest)] {
                    assert!(
                        t.is_none() || t.as_ref() == Some(want),
                        "run {i}: a tag holds {t:?}, not the clean run's {want}\n{}",
                        out.dump()
                    );
                }
                if tag.is_some() {
                    c.assert_pullable(&repo, scratch.path());
                }
                if cache_tag.is_some() {
                    c.assert_pullable(&cache, scratch.path());
                }
                if out.success() {
                    assert_eq!(report_digest(&root), golden, "run {i}\n{}", out.dump());
                    assert_eq!(tag.as_ref(), Some(&golden), "run {i}\n{}", out.dump());
                    c.record(phase, Outcome::Ok);
                } else {
                    c.assert_clean_failure(phase, &out, &[62]);
                    c.record(phase, Outcome::CleanFailure);
                }
            }
            "analyzer" => {
                std::fs::remove_file(ar.join("layers/analyzed.toml")).unwrap();
                c.proxy.set_plan(plan);
                let out = c.run(&ar, "analyzer", analyze_args.clone());
                if out.success() {
                    assert_eq!(
                        ar.read("layers/analyzed.toml"),
                        golden_analyzed,
                        "run {i}\n{}",
                        out.dump()
                    );
                    c.record(phase, Outcome::Ok);
                } else {
                    assert!(!ar.exists("layers/analyzed.toml"), "run {i}: half-written");
                    c.assert_clean_failure(phase, &out, &[1, 3, 32]);
                    c.record(phase, Outcome::CleanFailure);
                }
                // The restorer's runs need the clean analysis.
                ar.write("layers/analyzed.toml", &golden_analyzed);
            }
            "restorer" => {
                std::fs::remove_dir_all(ar.join("layers/bp_a")).unwrap();
                c.proxy.set_plan(plan);
                let out = c.run(&ar, "restorer", vec![cache_image.clone()]);
                let got = tree(&ar.join("layers/bp_a"));
                if out.success() && got == golden_restored {
                    c.record(phase, Outcome::Ok);
                } else if out.success() {
                    // A miss: the cache layer is absent as a whole, never partly there.
                    assert!(
                        got.keys().all(|k| !k.starts_with("deps")),
                        "run {i}: partial restore {got:?}\n{}",
                        out.dump()
                    );
                    // The reference's words (at info level, as there) or a warning.
                    let said = out.all();
                    assert!(
                        said.contains("Ignoring cache") || said.contains("Warning"),
                        "run {i}: a silent miss\n{}",
                        out.dump()
                    );
                    c.record(phase, Outcome::CleanMiss);
                } else {
                    c.assert_clean_failure(phase, &out, &[42]);
                    c.record(phase, Outcome::CleanFailure);
                }
            }
            _ => {
                let repo = format!("fault/rb-{i}:latest");
                c.reg.skopeo_copy(
                    &format!("docker://{}", c.reg.image("fault/golden:latest")),
                    &format!("docker://{}", c.reg.image(&repo)),
                );
                let _ = std::fs::remove_file(root.join("layers/report.toml"));
                c.proxy.set_plan(plan);
                let out = c.run(&root, "rebaser", rebase_args(&c, &repo));
                let tag = c.tag_digest(&repo).expect("the app tag never disappears");
                assert!(
                    tag == golden || tag == rebased,
                    "run {i}: the tag holds {tag}, neither the old {golden} nor the rebased {rebased}\n{}",
                    out.dump()
                );
                c.assert_pullable(&repo, scratch.path());
                if out.success() {
                    assert_eq!(report_digest(&root), rebased, "run {i}\n{}", out.dump());
                    assert_eq!(tag, rebased, "run {i}\n{}", out.dump());
                    c.record(phase, Outcome::Ok);
                } else {
                    c.assert_clean_failure(phase, &out, &[72]);
                    c.record(phase, Outcome::CleanFailure);
                }
            }
        }
    }
    c.proxy.set_plan(Plan::clean());
    c.print();
    let total: usize = c.table.values().sum();
    assert_eq!(total as u64, per_phase * 4);
    let kinds: std::collections::BTreeSet<Fault> = c.faults.keys().map(|(_, f)| *f).collect();
    for f in Fault::ALL {
        assert!(
            kinds.contains(&f),
            "{f:?} was never injected: {:?}",
            c.faults
        );
    }
    for phase in PHASES {
        assert!(
            c.table.contains_key(&(phase, Outcome::Ok)),
            "{phase}: no run succeeded under faults: {:?}",
            c.table
        );
    }
}
