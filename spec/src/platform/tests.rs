//! Round-trip and golden tests for the platform-side formats (checklist §22 F-ORDER, F-GROUP, F-PLAN,
//! F-META).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::api::PlatformApi;
use crate::buildpack::{GroupElement, Label, Process, Require, Slice};

#[test]
fn order_toml_with_extensions() {
    // F-ORDER, DS-01: spec "order.toml (TOML)".
    let text = r#"
[[order]]
[[order.group]]
id = "A"
version = "1"
optional = false
[[order.group]]
id = "B"
version = "2"
optional = true

[[order-extensions]]
[[order-extensions.group]]
id = "E"
version = "3"
"#;
    let o = Order::from_toml_str(text).unwrap();
    assert_eq!(o.order[0].group.len(), 2);
    assert!(o.order[0].group[1].optional);
    let e = &o.order_extensions[0].group[0];
    assert!(e.extension && e.optional, "extensions are marked on read");
    let out = o.to_toml_string().unwrap();
    assert!(!out.contains("extension ="), "{out}");
    assert_eq!(Order::from_toml_str(&out).unwrap(), o);
}

#[test]
fn group_toml_round_trip() {
    // F-GROUP, DS-14
    let text = r#"
[[group]]
id = "A"
version = "1"
api = "0.12"
homepage = "https://a"
[[group-extensions]]
id = "E"
version = "1"
api = "0.9"
"#;
    let g = Group::from_toml_str(text).unwrap();
    assert_eq!(g.group[0].buildpack_api().unwrap().to_string(), "0.12");
    assert!(g.group_extensions[0].extension);
    assert!(g.has_extensions());
    let out = g.to_toml_string().unwrap();
    assert!(
        !out.contains("optional") && !out.contains("extension ="),
        "{out}"
    );
    assert_eq!(Group::from_toml_str(&out).unwrap(), g);
    // An empty group file is valid (BD-01).
    assert_eq!(Group::from_toml_str("").unwrap(), Group::default());
}

#[test]
fn group_with_bad_api_reads_and_fails_api_check() {
    // G-06: the API problem is reported by the caller with exit 12, not as a file error.
    let g = Group::from_toml_str("[[group]]\nid = \"A\"\nversion = \"1\"\napi = \"x\"\n").unwrap();
    assert!(g.group[0].buildpack_api().is_err());
}

#[test]
fn plan_toml_find_and_filter() {
    // F-PLAN, BPL-07, BPL-08
    let text = r#"
[[entries]]
[[entries.providers]]
id = "A"
version = "1"
[[entries.providers]]
id = "E"
version = "1"
extension = true
[[entries.requires]]
name = "node"
[entries.requires.metadata]
version = "18"

[[entries]]
[[entries.providers]]
id = "A"
version = "1"
[[entries.requires]]
name = "npm"
"#;
    let p = Plan::from_toml_str(text).unwrap();
    assert_eq!(p.find("A", false).entries.len(), 2);
    assert_eq!(p.find("E", true).entries.len(), 1);
    assert_eq!(p.find("E", false).entries.len(), 0);
    assert_eq!(p.filter_met(&["node".into()]).entries.len(), 1);
    assert_eq!(
        Plan::from_toml_str(&p.to_toml_string().unwrap()).unwrap(),
        p
    );
}

fn sample_metadata() -> BuildMetadata {
    BuildMetadata {
        buildpacks: vec![GroupElement {
            api: Some("0.12".into()),
            ..GroupElement::new("A", "1")
        }],
        labels: vec![Label {
            key: "k".into(),
            value: "v".into(),
        }],
        processes: vec![Process {
            r#type: "web".into(),
            command: vec!["node".into(), "x.js".into()],
            args: vec!["--a".into()],
            direct: true,
            buildpack_id: "A".into(),
            working_dir: Some("/w".into()),
            ..Process::default()
        }],
        slices: vec![Slice {
            paths: vec!["a/*".into()],
        }],
        buildpack_default_process_type: Some("web".into()),
        ..BuildMetadata::default()
    }
}

#[test]
fn metadata_toml_array_commands_from_platform_0_10() {
    // F-META, BD-14
    let m = sample_metadata();
    let out = m.to_toml_string(PlatformApi::new(0, 15)).unwrap();
    assert!(
        out.contains("[[processes]]"),
        "never inline processes: {out}"
    );
    assert!(out.contains("command = [\"node\", \"x.js\"]"), "{out}");
    assert!(out.contains("buildpack-id = \"A\""), "{out}");
    assert!(
        out.contains("buildpack-default-process-type = \"web\""),
        "{out}"
    );
    assert_eq!(BuildMetadata::from_toml_str(&out).unwrap(), m);
}

#[test]
fn metadata_toml_string_command_before_platform_0_10() {
    let m = sample_metadata();
    let out = m.to_toml_string(PlatformApi::new(0, 9)).unwrap();
    assert!(out.contains("command = \"node\""), "{out}");
    let back = BuildMetadata::from_toml_str(&out).unwrap();
    assert_eq!(back.processes[0].command, vec!["node"]);
    assert_eq!(back.processes[0].args, vec!["x.js", "--a"]);
}

#[test]
fn metadata_toml_never_writes_default_and_bom_only_before_0_9() {
    let mut m = sample_metadata();
    m.processes[0].default = true;
    m.bom = vec![crate::buildpack::BomEntry {
        name: "dep".into(),
        ..Default::default()
    }];
    let new = m.to_toml_string(PlatformApi::new(0, 9)).unwrap();
    assert!(!new.contains("default ="), "{new}");
    assert!(!new.contains("[[bom]]"), "{new}");
    let old = m.to_toml_string(PlatformApi::new(0, 8)).unwrap();
    assert!(old.contains("[[bom]]"), "{old}");
}

#[test]
fn metadata_toml_disk_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(METADATA_PATH);
    let m = sample_metadata();
    m.write(&path, PlatformApi::LATEST).unwrap();
    assert_eq!(BuildMetadata::read(&path).unwrap(), m);
    assert_eq!(
        BuildMetadata::read(&path)
            .unwrap()
            .find_process("web")
            .unwrap()
            .buildpack_id,
        "A"
    );
    let _ = Require::new("x");
}

#[test]
fn metadata_toml_never_inline_arrays() {
    // BD-14: "prevent regression of inline table serialization".
    let out = BuildMetadata::default()
        .to_toml_string(PlatformApi::LATEST)
        .unwrap();
    assert!(!out.contains("processes ="), "{out}");
    assert!(!out.contains(" = []"), "{out}");
}
