//! Golden tests: the examples of buildpacks/spec (`buildpack.md`, `platform.md`, `image_extension.md`),
//! verbatim except where a placeholder cannot type-check (noted), decode and round-trip (checklist §22).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::api::{BuildpackApi, PlatformApi};
use crate::buildpack::*;
use crate::platform::*;

const BP: BuildpackApi = BuildpackApi::new(0, 12);

#[test]
fn spec_launch_toml() {
    let text = r#"
[[labels]]
key = "<label key>"
value = "<label valu>"

[[processes]]
type = "<process type>"
command = ["<command>"]
args = ["<arguments>"]
default = false
working-dir = "<working directory>"
exec-env = ["<execution environment>"] # Optional. If not specified, applies to all execution environments

[[slices]]
paths = ["<app sub-path glob>"]
"#;
    let l = LaunchToml::from_toml_str(text, BP).unwrap();
    assert_eq!(l.labels[0].value, "<label valu>");
    assert_eq!(l.processes[0].command, vec!["<command>"]);
    assert_eq!(l.processes[0].exec_env, vec!["<execution environment>"]);
    assert!(l.processes[0].direct);
    assert_eq!(l.slices[0].paths, vec!["<app sub-path glob>"]);
    assert_eq!(
        LaunchToml::from_toml_str(&l.to_toml_string(BP).unwrap(), BP).unwrap(),
        l
    );
}

#[test]
fn spec_build_store_plan_layer() {
    let b = BuildToml::from_toml_str("[[unmet]]\nname = \"<dependency name>\"\n").unwrap();
    assert_eq!(b.unmet_names(), vec!["<dependency name>"]);

    let s = StoreToml::from_toml_str("[metadata]\n# buildpack-specific data\n").unwrap();
    assert!(s.metadata.is_empty());

    let plan = r#"
[[provides]]
name = "<dependency name>"

[[requires]]
name = "<dependency name>"

[requires.metadata]
# buildpack-specific data

[[or]]

[[or.provides]]
name = "<dependency name>"

[[or.requires]]
name = "<dependency name>"

[or.requires.metadata]
# buildpack-specific data

"#;
    let p = DetectPlan::from_toml_str(plan).unwrap();
    assert_eq!(p.options().len(), 2);
    assert_eq!(p.or[0].requires[0].name, "<dependency name>");

    let bpplan = "[[entries]]\nname = \"<dependency name>\"\n\n[entries.metadata]\n# buildpack-specific data\n";
    assert_eq!(
        BuildpackPlan::from_toml_str(bpplan).unwrap().entries.len(),
        1
    );

    let layer = r#"
[types]
  launch = false
  build = false
  cache = false

[metadata]
  exec-env = ["<execution environment>"] # Optional. If not specified, applies to all execution environments
  # other buildpack-specific data
"#;
    let l = LayerMetadataFile::from_toml_str(layer).unwrap();
    assert!(l.types.is_none());
    assert_eq!(l.exec_env(), vec!["<execution environment>"]);
}

#[test]
fn spec_buildpack_toml() {
    let text = r#"
api = "<buildpack API version>"

[buildpack]
id = "<buildpack ID>"
name = "<buildpack name>"
version = "<buildpack version>"
homepage = "<buildpack homepage>"
clear-env = false
description = "<buildpack description>"
keywords = [ "<string>" ]
sbom-formats = [ "<string>" ]

[[buildpack.licenses]]
type = "<string>"
uri = "<uri>"

[[buildpack.exec-env]]
name = "<execution environment>"

[[order]]
[[order.group]]
id = "<buildpack ID>"
version = "<buildpack version>"
optional = false
exec-env = ["<execution environment>"]

[[targets]]
os = "<OS name>"
arch = "<architecture>"
variant = "<architecture variant>"
[[targets.distros]]
name = "<OS distribution name>"
version = "<OS distribution version>"

[metadata]
# buildpack-specific data
"#;
    let d = BuildpackDescriptor::from_toml_str(text).unwrap();
    assert!(
        d.buildpack_api().is_err(),
        "placeholder API is not a version"
    );
    assert_eq!(d.buildpack.exec_env, vec!["<execution environment>"]);
    assert_eq!(
        d.order[0].group[0].exec_env,
        vec!["<execution environment>"]
    );
    assert_eq!(d.targets[0].variant, "<architecture variant>");
    assert_eq!(
        BuildpackDescriptor::from_toml_str(&d.to_toml_string().unwrap()).unwrap(),
        d
    );
}

#[test]
fn spec_extension_toml_and_extend_config() {
    let text = r#"
api = "<buildpack API version>"

[extension]
id = "<extension ID>"
name = "<extension name>"
version = "<extension version>"
homepage = "<extension homepage>"
description = "<extension description>"
keywords = [ "<string>" ]

[[extension.licenses]]
type = "<string>"
uri = "<uri>"

[[targets]]
os = "<OS name>"
arch = "<architecture>"
variant = "<architecture variant>"
[[targets.distros]]
name = "<OS distribution name>"
version = "<OS distribution version>"

[metadata]
# extension-specific data
"#;
    let d = ExtensionDescriptor::from_toml_str(text).unwrap();
    assert_eq!(d.extension.licenses[0].uri, "<uri>");
    assert_eq!(
        ExtensionDescriptor::from_toml_str(&d.to_toml_string().unwrap()).unwrap(),
        d
    );
    let cfg = r#"
[[build.args]]
name = "<build arg name>"
value = "<build arg value>"

[[run.args]]
name = "<build arg name>"
value = "<build arg value>"
"#;
    assert_eq!(ExtendConfig::from_toml_str(cfg).unwrap().run.args.len(), 1);
}

#[test]
fn spec_analyzed_toml() {
    // The spec's example nests `[target]` under `[run-image]` by indentation only, which TOML reads as a
    // top-level table: tolerated and ignored. The intended form is `[run-image.target]`.
    let text = r#"
[image]
  reference = "<image reference>"

[metadata]
# layer metadata

[run-image]
  image = "<image>"
  reference = "<image reference>"
  extend = false
  [target]
  os = "<OS name>"
  arch = "<architecture>"
  variant = "<architecture variant>"
  [target.distro]
  name = "<OS distribution name>"
  version = "<OS distribution version>"

[build-image]
  reference = "<image reference>"
"#;
    let a = Analyzed::from_toml_str(text).unwrap();
    assert_eq!(a.previous_image_ref(), "<image reference>");
    assert_eq!(a.run_image_image(), "<image>");
    assert_eq!(
        a.build_image.as_ref().unwrap().reference,
        "<image reference>"
    );
    let intended = text
        .replace("[target]", "[run-image.target]")
        .replace("[target.distro]", "[run-image.target.distro]");
    let a = Analyzed::from_toml_str(&intended).unwrap();
    let t = a.run_image_target();
    assert_eq!(t.arch_variant, "<architecture variant>");
    assert_eq!(t.distro.unwrap().name, "<OS distribution name>");
}

#[test]
fn spec_group_order_plan_system() {
    let group = r#"
[[group]]
id = "<buildpack ID>"
version = "<buildpack version>"
api = "<buildpack API version>"
homepage = "<buildpack homepage>"

[[group-extensions]]
id = "<image extension ID>"
version = "<image extension version>"
api = "<image extension API version>"
homepage = "<image extension homepage>"
"#;
    let g = Group::from_toml_str(group).unwrap();
    assert!(g.group_extensions[0].extension);

    let order = r#"
[[order]]
[[order.group]]
id = "<buildpack ID>"
version = "<buildpack version>"
optional = false

[[order-extensions]]
[[order-extensions.group]]
id = "<image extension ID>"
version = "<image extension version>"
"#;
    let o = Order::from_toml_str(order).unwrap();
    assert_eq!(o.order_extensions[0].group[0].id, "<image extension ID>");

    let plan = r#"
[[entries]]

  [[entries.providers]]
    id = "<buildpack or image extension ID>"
    version = "<buildpack or image extension version>"
    extension = false

  [[entries.requires]]
    name = "<dependency name>"
    [entries.requires.metadata]
      # arbitrary data describing the required dependency
"#;
    let p = Plan::from_toml_str(plan).unwrap();
    assert_eq!(
        p.find("<buildpack or image extension ID>", false)
            .entries
            .len(),
        1
    );

    let system = r#"
[[system.pre.buildpacks]]
  id = "<buildpack ID>"
  version = "<buildpack version>"
  optional = false

[[system.post.buildpacks]]
  id = "<buildpack ID>"
  version = "<buildpack version>"
  optional = false
"#;
    let s = SystemToml::from_toml_str(system).unwrap();
    assert_eq!(s.system.post.buildpacks.len(), 1);
}

#[test]
fn spec_metadata_toml() {
    let text = r#"
buildpack-default-process-type = "<process type>"

[[buildpacks]]
id = "<buildpack ID>"
version = "<buildpack version>"
api = "<buildpack API version>"
optional = false

[[extensions]]
id = "<image extension ID>"
version = "<image extension version>"
api = "<image extension API version>"

[[processes]]
type = "<process type>"
command = ["<command>"]
args = ["<arguments>"]
direct = false
working-dir = "<working directory>"
exec-env = ["<execution environment>"] # Optional. If not specified, applies to all execution environments. The special value "*" indicates compatibility with all execution environments. If exec-env is ["*"] or not specified, the process is eligible for all execution environments.

[[slices]]
paths = ["<app sub-path glob>"]
"#;
    let m = BuildMetadata::from_toml_str(text).unwrap();
    assert_eq!(
        m.buildpack_default_process_type.as_deref(),
        Some("<process type>")
    );
    assert!(!m.processes[0].direct);
    assert_eq!(m.extensions.len(), 1);
    let out = m.to_toml_string(PlatformApi::LATEST).unwrap();
    assert_eq!(BuildMetadata::from_toml_str(&out).unwrap(), m);
}

#[test]
fn spec_project_report_run() {
    let project = r#"
[source]
type = "<source type>"

[source.version]
# arbitrary data

[source.metadata]
# arbitrary data
"#;
    let p = ProjectMetadata::from_toml_str(project).unwrap();
    assert_eq!(
        p.source.as_ref().unwrap().kind.as_deref(),
        Some("<source type>")
    );
    // Empty version/metadata tables are omitted from the label; `<`/`>` escaped as Go's json.Marshal.
    assert_eq!(
        p.to_label_json().unwrap(),
        r#"{"source":{"type":"\u003csource type\u003e"}}"#
    );

    // `manifest-size` placeholder replaced by a number (the spec shows a string placeholder).
    let report = r#"
[image]
tags = ["<tag reference>"]
digest = "<image digest>"
image-id = "<imageID>"
manifest-size = "1024"
"#;
    let r = Report::from_toml_str(report).unwrap();
    assert_eq!(r.image.manifest_size, 1024);
    assert_eq!(r.image.image_id, "<imageID>");

    let run = "[[images]]\n image = \"<image>\"\n mirrors = [\"<mirror1>\", \"<mirror2>\"]\n";
    assert_eq!(
        RunToml::from_toml_str(run).unwrap().images[0].mirrors.len(),
        2
    );
}

#[test]
fn spec_labels() {
    use crate::labels::*;
    let build = r#"{
  "processes": [
    {
      "type": "<process-type>",
      "command": ["<command>"],
      "args": [
        "<args>"
      ],
      "direct": false,
      "working-dir": "<working-dir>",
      "buildpackID": "<buildpack ID>",
      "exec-env": ["<execution environment>"]
    }
  ],
  "buildpacks": [
    {
      "id": "<buildpack ID>",
      "version": "<buildpack version>",
      "homepage": "<buildpack homepage>",
      "api": "<buildpack API version>"
    }
  ],
  "extensions": [
    {
      "id": "<extension ID>",
      "version": "<extension version>",
      "homepage": "<extension homepage>",
      "api": "<buildpack API version>"
    }
  ],
 "launcher": {
    "version": "<launcher-version>",
    "source": {
      "git": {
        "repository": "<launcher-source-repository>",
        "commit": "<launcher-source-commit>"
      }
    }
  }
}"#;
    let b = BuildMetadataLabel::from_json(build).unwrap();
    assert_eq!(b.processes[0].buildpack_id, "<buildpack ID>");
    assert_eq!(
        b.buildpacks[0].api.as_deref(),
        Some("<buildpack API version>")
    );
    assert_eq!(b.launcher.source.git.commit, "<launcher-source-commit>");
    let again = BuildMetadataLabel::from_json(&b.to_json(PlatformApi::LATEST).unwrap()).unwrap();
    assert_eq!(again, b);

    // The spec's lifecycle label example has a typo (`"mirrors": = [...]`); fixed here.
    let lifecycle = r#"{
  "app": [
    {"sha": "<slice-layer-diffID>"}
  ],
  "sbom": {
    "sha": "<BOM-layer-diffID>"
  },
  "config": {
    "sha": "<config-layer-diffID>"
  },
  "exec-env": "<execution environment>",
  "launcher": {
    "sha": "<launcher-layer-diffID>"
  },
  "buildpacks": [
    {
      "key": "<buildpack-id>",
      "version": "<buildpack-version>",
      "layers": {
        "<layer-name>": {
          "sha": "<layer-diffID>",
          "data": {},
          "build": false,
          "launch": false,
          "cache": false
        }
      }
    }
  ],
  "runImage": {
    "image": "cnbs/sample-stack-run:bionic",
    "mirrors": ["<mirror1>", "<mirror2>"],
    "topLayer": "<run-image-top-layer-diffID>",
    "reference": "<run-image-reference>"
  }
}"#;
    let l = LifecycleMetadata::from_json(lifecycle).unwrap();
    assert_eq!(l.run_image.image, "cnbs/sample-stack-run:bionic");
    assert!(l.layer("<buildpack-id>", "<layer-name>").is_some());
    assert_eq!(
        LifecycleMetadata::from_json(&l.to_json().unwrap()).unwrap(),
        l
    );

    let project = r#"{"source": {"type": "<type>", "version": {"a": 1}, "metadata": {"b": "c"}}}"#;
    let p = ProjectMetadata::from_label_json(project).unwrap();
    assert_eq!(p.source.unwrap().metadata.unwrap()["b"].as_str(), Some("c"));
}
