//! Stamps the source of this build into the binaries (as the reference's `-ldflags -X cmd.SCMCommit=…
//! -X cmd.SCMRepository=…`): `CNB_LIFECYCLE_COMMIT` (short commit) and `CNB_LIFECYCLE_REPOSITORY`
//! (`host/owner/repo`, no scheme, no `.git`). An explicit value in the build environment wins; otherwise
//! they come from `git` when the sources are a checkout; from a tarball without git they are empty.
//! The version itself is the workspace version (`CARGO_PKG_VERSION`), one place for every binary.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env_dir())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn env_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into())
}

/// `https://github.com/o/r.git`, `git@github.com:o/r.git`, `ssh://git@host/o/r` → `host/o/r`; local paths
/// (a clone of a clone) are not repositories anyone else can find: empty.
fn normalise_remote(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    if let Some((_, rest)) = url.split_once("://") {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        if url.starts_with("file://") {
            return String::new();
        }
        return rest.to_string();
    }
    if let Some((user_host, path)) = url.split_once(':') {
        if !user_host.contains('/') && !path.starts_with('/') {
            let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
            return format!("{host}/{path}");
        }
    }
    String::new()
}

fn main() {
    for var in ["CNB_LIFECYCLE_COMMIT", "CNB_LIFECYCLE_REPOSITORY"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // Re-stamp when HEAD moves (the files are found through git, so worktrees work too).
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        let p = Path::new(&env_dir()).join(&path);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let given = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let commit = given("CNB_LIFECYCLE_COMMIT")
        .or_else(|| git(&["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_default();
    let repository = given("CNB_LIFECYCLE_REPOSITORY")
        .or_else(|| git(&["config", "--get", "remote.origin.url"]).map(|u| normalise_remote(&u)))
        .unwrap_or_default();
    println!("cargo:rustc-env=CNB_LIFECYCLE_COMMIT={commit}");
    println!("cargo:rustc-env=CNB_LIFECYCLE_REPOSITORY={repository}");
}
