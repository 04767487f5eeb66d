//! The Tekton and Kubernetes samples are valid YAML, and every `/cnb/lifecycle/<phase>` call in them uses
//! flags our CLI accepts (issue 8; checklist G-07, G-08): each call's args are parsed and resolved by the
//! real binary (`CNB_LIFECYCLE_PRINT_INPUTS=1` resolves the inputs and exits 0 without running the phase).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cnb_acceptance::harness::{phase, workspace_dir};
use yaml_rust2::{Yaml, YamlLoader};

/// One lifecycle call found in a manifest.
#[derive(Debug)]
struct Call {
    file: String,
    step: String,
    phase: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn sample_files() -> Vec<PathBuf> {
    let root = workspace_dir().join("samples");
    let mut out = Vec::new();
    for dir in ["tekton", "kubernetes"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

/// Tekton params' defaults (`$(params.X)` → default, or a placeholder image name for required params).
fn param_defaults(doc: &Yaml) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(params) = doc["spec"]["params"].as_vec() {
        for p in params {
            let name = str_of(&p["name"]).unwrap();
            let value = match &p["default"] {
                Yaml::BadValue => {
                    format!("registry.example.com/placeholder/{}", name.to_lowercase())
                }
                Yaml::Array(_) => String::new(),
                v => str_of(v).unwrap_or_default(),
            };
            m.insert(name, value);
        }
    }
    m
}

/// Replaces Tekton substitutions: params by their defaults, workspace paths by `/workspace/<name>`.
fn substitute(s: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find(')').expect("unterminated $(");
        let expr = &after[..j];
        let value = if let Some(p) = expr.strip_prefix("params.") {
            params
                .get(p)
                .cloned()
                .unwrap_or_else(|| panic!("unknown param {p}"))
        } else if let Some(w) = expr.strip_prefix("workspaces.") {
            format!("/workspace/{}", w.trim_end_matches(".path"))
        } else {
            panic!("unexpected substitution $({expr})");
        };
        out.push_str(&value);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

fn env_of(container: &Yaml, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(list) = container["env"].as_vec() {
        for e in list {
            if let (Some(k), Some(v)) = (str_of(&e["name"]), str_of(&e["value"])) {
                env.insert(k, substitute(&v, params));
            }
        }
    }
    env
}

fn collect_calls(file: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(file).unwrap();
    let docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", file.display()));
    assert!(!docs.is_empty(), "{}: no YAML documents", file.display());
    let mut calls = Vec::new();
    for doc in &docs {
        let kind = str_of(&doc["kind"]).unwrap_or_default();
        assert!(
            !kind.is_empty(),
            "{}: a document without kind",
            file.display()
        );
        let params = param_defaults(doc);
        let template_env = env_of(&doc["spec"]["stepTemplate"], &params);
        let mut containers: Vec<&Yaml> = Vec::new();
        for list in [
            &doc["spec"]["steps"],
            &doc["spec"]["template"]["spec"]["initContainers"],
            &doc["spec"]["template"]["spec"]["containers"],
        ] {
            if let Some(v) = list.as_vec() {
                containers.extend(v.iter());
            }
        }
        for c in containers {
            let Some(command) = c["command"].as_vec() else {
                continue;
            };
            let Some(first) = command.first().and_then(str_of) else {
                continue;
            };
            let Some(phase) = first.strip_prefix("/cnb/lifecycle/") else {
                continue;
            };
            let mut env = template_env.clone();
            env.extend(env_of(c, &params));
            let args = c["args"]
                .as_vec()
                .map(|a| {
                    a.iter()
                        .map(|x| substitute(&str_of(x).unwrap(), &params))
                        .collect()
                })
                .unwrap_or_default();
            calls.push(Call {
                file: file.file_name().unwrap().to_string_lossy().into_owned(),
                step: str_of(&c["name"]).unwrap_or_default(),
                phase: phase.to_string(),
                args,
                env,
            });
        }
    }
    calls
}

#[test]
fn every_lifecycle_call_in_the_samples_parses() {
    let files = sample_files();
    assert!(
        files.len() >= 4,
        "expected the Tekton and Kubernetes samples, found {files:?}"
    );
    let calls: Vec<Call> = files.iter().flat_map(|f| collect_calls(f)).collect();
    let phases: std::collections::BTreeSet<&str> = calls.iter().map(|c| c.phase.as_str()).collect();
    for p in [
        "analyzer", "detector", "restorer", "builder", "exporter", "extender", "creator",
    ] {
        assert!(
            phases.contains(p),
            "no sample calls /cnb/lifecycle/{p}: {phases:?}"
        );
    }
    for call in &calls {
        let api = call
            .env
            .get("CNB_PLATFORM_API")
            .cloned()
            .unwrap_or_else(|| "0.14".into());
        let out = phase(&call.phase)
            .platform_api(&api)
            .env("CNB_LIFECYCLE_PRINT_INPUTS", "1")
            .args(call.args.iter().cloned())
            .run();
        assert_eq!(
            out.code(),
            0,
            "{} step {:?}: `{} {}` was not accepted\n{}",
            call.file,
            call.step,
            call.phase,
            call.args.join(" "),
            out.dump()
        );
    }
}

#[test]
fn manifests_run_rootless() {
    // PLATFORMS.md §1.7: no step runs as root, is privileged or adds capabilities.
    for file in sample_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for bad in [
            "privileged: true",
            "runAsUser: 0",
            "SYS_ADMIN",
            "SETFCAP",
            "runAsNonRoot: false",
        ] {
            assert!(!text.contains(bad), "{} contains {bad:?}", file.display());
        }
        assert!(
            text.contains("runAsNonRoot: true"),
            "{} does not set runAsNonRoot",
            file.display()
        );
    }
}
