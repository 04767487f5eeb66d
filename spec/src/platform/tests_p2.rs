//! Tests for analyzed.toml, run.toml, stack.toml, system.toml, report.toml, project-metadata.toml and
//! the lifecycle descriptor (checklist F-ANALYZED, F-RUN, F-STACK, F-SYSTEM, F-REPORT, F-PROJECT, F-DESC,
//! RI-20).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::buildpack::{Distro, Target};

#[test]
fn analyzed_reference_old_format_golden() {
    // F-ANALYZED: the reference's "serializes to the old format" fixture reads and round-trips.
    let text = r#"[image]
  reference = "previous-img"

[metadata]
  [metadata.config]
    sha = ""
  [metadata.launcher]
    sha = ""
  [metadata.process-types]
    sha = ""
  [metadata.run-image]
    top-layer = ""
    reference = ""
  [metadata.stack]
    [metadata.stack.run-image]
      image = "imagine that"

[run-image]
  reference = "some-ref"
"#;
    let a = Analyzed::from_toml_str(text).unwrap();
    assert_eq!(a.previous_image_ref(), "previous-img");
    assert_eq!(a.run_image_ref(), "some-ref");
    assert_eq!(
        a.metadata.stack.as_ref().unwrap().run_image.image,
        "imagine that"
    );
    let out = a.to_toml_string().unwrap();
    assert_eq!(Analyzed::from_toml_str(&out).unwrap(), a);
    // The same document as the reference writes (same tables, keys and values).
    let doc = |s: &str| s.parse::<toml::Table>().unwrap();
    assert_eq!(doc(&out), doc(text), "{out}");
}

#[test]
fn analyzed_full_round_trip_with_layers_and_target() {
    let text = r#"
[image]
reference = "reg/app@sha256:1"
[build-image]
reference = "reg/build@sha256:2"
[metadata]
[[metadata.app]]
sha = "sha256:app"
[metadata.sbom]
sha = "sha256:sbom"
[[metadata.buildpacks]]
key = "A"
version = "1"
[metadata.buildpacks.layers.node]
sha = "sha256:node"
launch = true
cache = true
[metadata.buildpacks.layers.node.metadata]
version = "18"
[metadata.buildpacks.store.metadata]
k = "v"
[metadata.run-image]
top-layer = "sha256:top"
reference = "reg/run@sha256:3"
image = "reg/run"
mirrors = ["m/run"]
[run-image]
reference = "reg/run@sha256:3"
image = "reg/run"
extend = true
[run-image.target]
os = "linux"
arch = "arm"
variant = "v7"
[run-image.target.distro]
name = "ubuntu"
version = "22.04"
"#;
    let a = Analyzed::from_toml_str(text).unwrap();
    let bp = a.metadata.buildpack("A").unwrap();
    assert!(bp.layers["node"].launch && bp.layers["node"].cache);
    assert_eq!(bp.layers["node"].data["version"].as_str(), Some("18"));
    assert_eq!(bp.store.as_ref().unwrap().metadata["k"].as_str(), Some("v"));
    assert_eq!(a.metadata.run_image.mirrors, vec!["m/run"]);
    let t = a.run_image_target();
    assert_eq!(t.arch_variant, "v7", "spec `variant` is read");
    assert_eq!(t.distro.as_ref().unwrap().version, "22.04");
    assert!(a.run_image.as_ref().unwrap().extend);
    assert_eq!(
        a.build_image.as_ref().unwrap().reference,
        "reg/build@sha256:2"
    );
    let out = a.to_toml_string().unwrap();
    assert!(out.contains("arch-variant = \"v7\""), "{out}");
    assert!(out.contains("top-layer"), "{out}");
    assert_eq!(Analyzed::from_toml_str(&out).unwrap(), a);
    // The metadata table and the label carry the same data.
    let label = a.metadata.to_json().unwrap();
    assert_eq!(
        crate::labels::LifecycleMetadata::from_json(&label).unwrap(),
        a.metadata
    );
}

#[test]
fn analyzed_empty_and_previous_image_alias() {
    assert_eq!(Analyzed::from_toml_str("").unwrap(), Analyzed::default());
    let a = Analyzed::from_toml_str("[previous-image]\nreference = \"x\"\n").unwrap();
    assert_eq!(a.previous_image_ref(), "x");
}

#[test]
fn run_and_stack_toml() {
    // F-RUN, F-STACK
    let r = RunToml::from_toml_str(
        "[[images]]\nimage = \"reg/run\"\nmirrors = [\"a/run\", \"b/run\"]\n[[images]]\nimage = \"other\"\n",
    )
    .unwrap();
    assert_eq!(r.images[0].candidates(), vec!["reg/run", "a/run", "b/run"]);
    assert_eq!(
        RunToml::from_toml_str(&r.to_toml_string().unwrap()).unwrap(),
        r
    );
    let s = StackToml::from_toml_str("[run-image]\nimage = \"r\"\nmirrors = [\"m\"]\n").unwrap();
    assert_eq!(s.run_image.mirrors, vec!["m"]);
    assert_eq!(
        StackToml::from_toml_str(&s.to_toml_string().unwrap()).unwrap(),
        s
    );
}

#[test]
fn missing_run_toml_is_absent() {
    // RI-02
    let dir = tempfile::tempdir().unwrap();
    assert!(RunToml::read_optional(dir.path().join("run.toml"))
        .unwrap()
        .is_none());
}

#[test]
fn system_toml() {
    // F-SYSTEM
    let text = r#"
[[system.pre.buildpacks]]
id = "pre"
version = "1"
optional = true
[[system.post.buildpacks]]
id = "post"
version = "2"
"#;
    let s = SystemToml::from_toml_str(text).unwrap();
    assert!(s.system.pre.buildpacks[0].optional);
    assert_eq!(s.system.post.buildpacks[0].id, "post");
    assert_eq!(
        SystemToml::from_toml_str(&s.to_toml_string().unwrap()).unwrap(),
        s
    );
}

#[test]
fn report_toml() {
    // F-REPORT
    let r = Report {
        image: ImageReport {
            tags: vec!["reg/app:latest".into()],
            digest: "sha256:d".into(),
            manifest_size: 1234,
            ..ImageReport::default()
        },
        build: None,
    };
    let out = r.to_toml_string().unwrap();
    assert!(out.contains("manifest-size = 1234"), "{out}");
    assert!(
        !out.contains("image-id") && !out.contains("[build]"),
        "{out}"
    );
    assert_eq!(Report::from_toml_str(&out).unwrap(), r);
    // The spec's example writes the size as a string.
    let s = Report::from_toml_str("[image]\ntags = []\nmanifest-size = \"42\"\n").unwrap();
    assert_eq!(s.image.manifest_size, 42);
}

#[test]
fn project_metadata_toml() {
    // F-PROJECT
    let text = "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc\"\n[source.metadata]\nrepository = \"r\"\n";
    let p = ProjectMetadata::from_toml_str(text).unwrap();
    let s = p.source.as_ref().unwrap();
    assert_eq!(s.kind.as_deref(), Some("git"));
    assert_eq!(s.version.as_ref().unwrap()["commit"].as_str(), Some("abc"));
    assert_eq!(
        ProjectMetadata::from_toml_str(&p.to_toml_string().unwrap()).unwrap(),
        p
    );
}

#[test]
fn lifecycle_descriptor_from_supported_lists() {
    // F-DESC
    let d = LifecycleDescriptor::current("0.1.0");
    assert_eq!(
        d.apis.platform.supported.first().map(String::as_str),
        Some("0.7")
    );
    assert_eq!(
        d.apis.platform.supported.last().map(String::as_str),
        Some("0.15")
    );
    assert_eq!(
        d.apis.buildpack.supported.last().map(String::as_str),
        Some("0.12")
    );
    assert_eq!(d.api.platform, "0.7");
    assert_eq!(d.lifecycle.sbom_formats.len(), 3);
    let out = d.to_toml_string().unwrap();
    assert!(out.contains("[apis.platform]"), "{out}");
    assert!(out.contains("sbom-formats"), "{out}");
    assert_eq!(LifecycleDescriptor::from_toml_str(&out).unwrap(), d);
}

#[test]
fn target_matching() {
    // RI-20
    let base = TargetMetadata {
        os: "linux".into(),
        arch: "amd64".into(),
        distro: Some(OsDistro {
            name: "ubuntu".into(),
            version: "22.04".into(),
        }),
        ..TargetMetadata::default()
    };
    let t = |os: &str, arch: &str, distros: Vec<Distro>| Target {
        os: os.into(),
        arch: arch.into(),
        variant: String::new(),
        distros,
    };
    assert!(base.satisfies(&t("linux", "", vec![])));
    assert!(base.satisfies(&t("", "", vec![])));
    assert!(!base.satisfies(&t("linux", "arm64", vec![])));
    let ubuntu = |v: &str| Distro {
        name: "ubuntu".into(),
        version: v.into(),
    };
    assert!(base.satisfies(&t("linux", "amd64", vec![ubuntu("20.04"), ubuntu("22.04")])));
    assert!(!base.satisfies(&t("linux", "amd64", vec![ubuntu("20.04")])));
    assert!(base.satisfies(&t("linux", "amd64", vec![ubuntu("")])));
    let no_distro = TargetMetadata {
        distro: None,
        ..base.clone()
    };
    assert!(!no_distro.satisfies(&t("linux", "amd64", vec![ubuntu("")])));
    assert!(base.satisfies_any(&[]));
}

#[test]
fn target_from_image_config_and_os_release() {
    let labels = std::collections::HashMap::from([
        (crate::labels::BASE_ID.to_string(), "my-target".to_string()),
        (
            crate::labels::BASE_DISTRO_NAME.to_string(),
            "ubuntu".to_string(),
        ),
        (
            crate::labels::BASE_DISTRO_VERSION.to_string(),
            "24.04".to_string(),
        ),
    ]);
    let t = TargetMetadata::from_image_config("linux", "arm64", "v8", |k| labels.get(k).cloned());
    assert_eq!(t.id, "my-target");
    assert_eq!(t.arch_variant, "v8");
    assert_eq!(t.distro.unwrap().version, "24.04");
    let bare = TargetMetadata::from_image_config("linux", "amd64", "", |_| None);
    assert!(bare.distro.is_none());

    let d = OsDistro::from_os_release(
        "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n",
    )
    .unwrap();
    assert_eq!((d.name.as_str(), d.version.as_str()), ("ubuntu", "22.04"));
    assert_eq!(
        OsDistro::from_os_release("ID=busybox\n").unwrap().version,
        ""
    );
    assert!(OsDistro::from_os_release("NAME=x\n").is_none());
}

#[test]
fn system_merge_skips_ids_already_in_group() {
    // DT-04
    use crate::buildpack::GroupElement;
    let s = SystemToml::from_toml_str(
        "[[system.pre.buildpacks]]\nid = \"P\"\nversion = \"1\"\n[[system.pre.buildpacks]]\nid = \"A\"\nversion = \"9\"\n[[system.post.buildpacks]]\nid = \"Z\"\nversion = \"1\"\n",
    )
    .unwrap();
    let (g, pre, post) = s.system.merge_into(&[GroupElement::new("A", "1")]);
    let ids: Vec<_> = g.iter().map(|e| e.to_string()).collect();
    assert_eq!(ids, vec!["P@1", "A@1", "Z@1"]);
    assert_eq!((pre, post), (1, 1));
}

#[test]
fn empty_plan_and_group_are_empty_files() {
    // DT-07: empty plan ⇒ zero-byte plan.toml.
    assert_eq!(Plan::default().to_toml_string().unwrap(), "");
    assert_eq!(Group::default().to_toml_string().unwrap(), "");
    assert_eq!(
        crate::buildpack::BuildpackPlan::default()
            .to_toml_string()
            .unwrap(),
        ""
    );
}
