//! Label JSON tests (checklist §23 L-LIFECYCLE, L-BUILD, L-PROJECT, CA-01).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::api::PlatformApi;
use crate::buildpack::{GroupElement, Process};
use serde_json::{json, Value};

fn v(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

const REFERENCE_LIFECYCLE_LABEL: &str = r#"{
  "app": [{"sha": "sha256:app1"}, {"sha": "sha256:app2"}],
  "sbom": {"sha": "sha256:sbom"},
  "config": {"sha": "sha256:config"},
  "launcher": {"sha": "sha256:launcher"},
  "process-types": {"sha": "sha256:pt"},
  "buildpacks": [
    {"key": "buildpack.id", "version": "1.2.3",
     "layers": {
        "launch-layer": {"sha": "sha256:l1", "data": {"key": "val", "n": 2}, "build": false, "launch": true, "cache": false},
        "nodata": {"sha": "sha256:l2", "data": null, "build": false, "launch": true, "cache": true}
     },
     "store": {"metadata": {"k": {"x": "y"}}}},
    {"key": "other", "version": "4.5.6", "layers": null}
  ],
  "runImage": {"topLayer": "sha256:top", "reference": "reg/run@sha256:abc", "image": "reg/run", "mirrors": ["m/run"]},
  "stack": {"runImage": {"image": "reg/run", "mirrors": ["m/run"]}},
  "unknown": {"ignored": true}
}"#;

#[test]
fn lifecycle_label_reads_reference_json() {
    // L-LIFECYCLE: keys exactly as the reference writes them; nulls tolerated.
    let m = LifecycleMetadata::from_json(REFERENCE_LIFECYCLE_LABEL).unwrap();
    assert_eq!(m.app.len(), 2);
    assert_eq!(m.sbom.as_ref().unwrap().sha, "sha256:sbom");
    assert_eq!(m.process_types.sha, "sha256:pt");
    let bp = m.buildpack("buildpack.id").unwrap();
    assert_eq!(bp.layers["launch-layer"].data["key"].as_str(), Some("val"));
    assert!(bp.layers["nodata"].data.is_empty());
    assert!(bp.layers["nodata"].types().cache);
    assert!(bp.store.as_ref().unwrap().metadata.contains_key("k"));
    assert!(m.buildpack("other").unwrap().layers.is_empty());
    assert_eq!(m.run_image.top_layer, "sha256:top");
    assert_eq!(m.run_image.mirrors, vec!["m/run"]);
    assert_eq!(m.stack.as_ref().unwrap().run_image.image, "reg/run");
}

#[test]
fn lifecycle_label_writes_reference_keys_and_round_trips() {
    let m = LifecycleMetadata::from_json(REFERENCE_LIFECYCLE_LABEL).unwrap();
    let out = m.to_json().unwrap();
    let j = v(&out);
    assert_eq!(j["runImage"]["topLayer"], "sha256:top");
    assert_eq!(j["runImage"]["image"], "reg/run");
    assert_eq!(j["stack"]["runImage"]["mirrors"], json!(["m/run"]));
    assert_eq!(j["buildpacks"][0]["layers"]["launch-layer"]["data"]["n"], 2);
    assert_eq!(j["process-types"]["sha"], "sha256:pt");
    assert_eq!(LifecycleMetadata::from_json(&out).unwrap(), m);
    // Field order is fixed (T-04): same value, same bytes.
    assert_eq!(out, m.clone().to_json().unwrap());
    // Empty run image fields and missing sbom are omitted.
    let empty = v(&LifecycleMetadata::default().to_json().unwrap());
    assert!(empty.get("sbom").is_none());
    assert!(empty["runImage"].get("image").is_none());
}

#[test]
fn lifecycle_label_old_single_app_object() {
    let m = LifecycleMetadata::from_json(r#"{"app": {"sha": "sha256:a"}}"#).unwrap();
    assert_eq!(m.app, vec![LayerSha::new("sha256:a")]);
}

#[test]
fn lifecycle_label_error_names_label() {
    let e = LifecycleMetadata::from_json("{not json").unwrap_err();
    assert!(e.to_string().contains(LIFECYCLE_METADATA), "{e}");
}

#[test]
fn cache_metadata_round_trip() {
    // CA-01
    let text = r#"{"sbom":{"sha":"sha256:s"},"buildpacks":[{"key":"A","version":"1","layers":{"c":{"sha":"sha256:c","data":{},"build":false,"launch":false,"cache":true}}}]}"#;
    let c = CacheMetadata::from_json(text).unwrap();
    assert!(c.buildpack("A").unwrap().layers["c"].cache);
    assert_eq!(v(&c.to_json().unwrap()), v(text));
}

fn label() -> BuildMetadataLabel {
    BuildMetadataLabel {
        buildpacks: vec![
            GroupElement {
                homepage: Some("buildpack homepage".into()),
                ..GroupElement::new("buildpack.id", "1.2.3")
            },
            GroupElement {
                homepage: Some("other buildpack homepage".into()),
                ..GroupElement::new("other.buildpack.id", "4.5.6")
            },
        ],
        launcher: LauncherMetadata {
            version: "1.2.3".into(),
            source: SourceMetadata {
                git: GitMetadata {
                    repository: "github.com/buildpacks/lifecycle".into(),
                    commit: "asdf1234".into(),
                },
            },
        },
        processes: vec![Process {
            r#type: "some-process-type".into(),
            command: vec!["/some/command".into()],
            args: vec!["some".into(), "command".into(), "args".into()],
            direct: true,
            buildpack_id: "buildpack.id".into(),
            ..Process::default()
        }],
        ..BuildMetadataLabel::default()
    }
}

#[test]
fn build_label_matches_reference_golden_p_0_15() {
    // L-BUILD: the reference exporter test's expected JSON (bom omitted, command array).
    let expected = r#"{
  "buildpacks": [
    {"id": "buildpack.id", "version": "1.2.3", "homepage": "buildpack homepage"},
    {"id": "other.buildpack.id", "version": "4.5.6", "homepage": "other buildpack homepage"}
  ],
  "launcher": {"version": "1.2.3", "source": {"git": {"repository": "github.com/buildpacks/lifecycle", "commit": "asdf1234"}}},
  "processes": [
    {"type": "some-process-type", "direct": true, "command": ["/some/command"],
     "args": ["some", "command", "args"], "buildpackID": "buildpack.id"}
  ]
}"#;
    let out = label().to_json(PlatformApi::new(0, 15)).unwrap();
    assert_eq!(v(&out), v(expected));
    assert_eq!(BuildMetadataLabel::from_json(&out).unwrap(), label());
}

#[test]
fn build_label_before_p_0_9_has_null_bom_and_string_command() {
    let mut l = label();
    l.processes[0].command = vec!["/some/command".into(), "first".into()];
    let j = v(&l.to_json(PlatformApi::new(0, 8)).unwrap());
    assert_eq!(j["bom"], Value::Null);
    assert!(j.as_object().unwrap().contains_key("bom"));
    assert_eq!(j["processes"][0]["command"], "/some/command");
    assert_eq!(
        j["processes"][0]["args"],
        json!(["first", "some", "command", "args"])
    );
    // P 0.9 string command, no bom key.
    let j9 = v(&l.to_json(PlatformApi::new(0, 9)).unwrap());
    assert!(j9.get("bom").is_none());
    assert_eq!(j9["processes"][0]["command"], "/some/command");
}

#[test]
fn build_label_includes_api_and_extensions_when_known() {
    // D-08: the spec lists `api`; the reference omits it. We write it when known.
    let mut l = label();
    l.buildpacks[0].api = Some("0.12".into());
    l.extensions = vec![GroupElement::new("ext", "1")];
    l.buildpack_default_process_type = Some("web".into());
    let j = v(&l.to_json(PlatformApi::LATEST).unwrap());
    assert_eq!(j["buildpacks"][0]["api"], "0.12");
    assert!(j["buildpacks"][1].get("api").is_none());
    assert_eq!(j["extensions"][0]["id"], "ext");
    assert_eq!(j["buildpack-default-process-type"], "web");
}

#[test]
fn project_label_json() {
    // L-PROJECT: `{}` when absent, empty fields omitted.
    use crate::platform::{ProjectMetadata, ProjectSource};
    assert_eq!(ProjectMetadata::default().to_label_json().unwrap(), "{}");
    let p = ProjectMetadata {
        source: Some(ProjectSource {
            kind: Some("git".into()),
            version: Some(toml::Table::new()),
            metadata: Some(toml::from_str("url = \"https://x\"").unwrap()),
        }),
    };
    let j = v(&p.to_label_json().unwrap());
    assert_eq!(
        j,
        json!({"source": {"type": "git", "metadata": {"url": "https://x"}}})
    );
    let text = p.to_label_json().unwrap();
    assert!(
        text.find("\"type\"") < text.find("\"metadata\""),
        "reference field order: {text}"
    );
    let back = ProjectMetadata::from_label_json(&text).unwrap();
    assert_eq!(back.source.unwrap().kind.as_deref(), Some("git"));
}

#[test]
fn label_name_helpers() {
    assert!(is_base_image_label("io.buildpacks.base.distro.name"));
    assert!(is_base_image_label(STACK_ID));
    assert!(!is_base_image_label(LIFECYCLE_METADATA));
    assert!(parse_rebasable("true") && !parse_rebasable("false") && !parse_rebasable(""));
}

#[test]
fn label_data_datetimes_are_plain_strings() {
    let data: toml::Table = toml::from_str("d = 1979-05-27T07:32:00Z\n[t]\nn = 1.5\n").unwrap();
    let m = LifecycleMetadata {
        buildpacks: vec![BuildpackLayersMetadata {
            key: "A".into(),
            layers: [(
                "l".to_string(),
                BuildpackLayerMetadata {
                    data: data.clone(),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            store: Some(crate::buildpack::StoreToml { metadata: data }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let j = v(&m.to_json().unwrap());
    assert_eq!(
        j["buildpacks"][0]["layers"]["l"]["data"]["d"],
        "1979-05-27T07:32:00Z"
    );
    assert_eq!(j["buildpacks"][0]["layers"]["l"]["data"]["t"]["n"], 1.5);
    assert_eq!(
        j["buildpacks"][0]["store"]["metadata"]["d"],
        "1979-05-27T07:32:00Z"
    );
}
