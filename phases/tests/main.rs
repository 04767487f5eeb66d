//! The library's integration tests as one binary (issue 17: fewer links), except the two that change
//! process-wide state and so keep a binary each: `archive_props` (the umask) and `registry_no_roots`
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR`). `every_test_file_is_listed` fails on a `tests/*.rs` that is in
//! neither list (with `autotests = false` it would never be compiled).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod archive;
mod archive_malicious;
mod layout;
mod registry_client;
mod registry_harness;
mod registry_identity;
mod registry_retry;

/// Test files with a binary of their own (see `Cargo.toml`).
const ALONE: [&str; 2] = ["archive_props", "registry_no_roots"];

#[test]
fn every_test_file_is_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let me = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name != "main"
            && !ALONE.contains(&name.as_str())
            && !me.contains(&format!("\nmod {name};\n"))
        {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "tests/main.rs does not declare: {missing:?}"
    );
}
