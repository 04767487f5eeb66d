//! Round-trip and golden tests for the buildpack-side formats (checklist §22 F-BUILDPACK, F-EXTENSION,
//! F-DETECTPLAN, F-BPPLAN, F-LAUNCH, F-BUILD, F-STORE, F-LAYER).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::api::BuildpackApi;

const BP_0_8: BuildpackApi = BuildpackApi::new(0, 8);
const BP_0_12: BuildpackApi = BuildpackApi::new(0, 12);

#[test]
fn buildpack_toml_golden_from_spec() {
    // F-BUILDPACK: the spec's buildpack.toml example (spec exec-env table form, `variant`).
    let text = r#"
api = "0.12"
[buildpack]
id = "example/node"
name = "Node"
version = "1.2.3"
homepage = "https://example.com"
clear-env = true
description = "node"
keywords = ["js"]
sbom-formats = ["application/vnd.cyclonedx+json"]
unknown-key = "tolerated"

[[buildpack.licenses]]
type = "MIT"
uri = "https://mit"

[[buildpack.exec-env]]
name = "production"

[[targets]]
os = "linux"
arch = "arm"
variant = "v6"
[[targets.distros]]
name = "ubuntu"
version = "22.04"

[metadata]
anything = { nested = [1, 2] }
"#;
    let d = BuildpackDescriptor::from_toml_str(text).unwrap();
    assert_eq!(d.buildpack_api().unwrap(), BP_0_12);
    assert_eq!(d.buildpack.id, "example/node");
    assert!(d.buildpack.clear_env);
    assert_eq!(d.buildpack.exec_env, vec!["production"]);
    assert_eq!(d.buildpack.licenses[0].kind, "MIT");
    assert_eq!(d.targets[0].variant, "v6");
    assert_eq!(d.targets[0].distros[0].version, "22.04");
    assert!(!d.is_composite());
    assert!(d.metadata.as_ref().unwrap().contains_key("anything"));
    let back = BuildpackDescriptor::from_toml_str(&d.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, d);
}

#[test]
fn buildpack_toml_reference_forms() {
    // D-03, D-04: the reference's `arch-variant` and string-array exec-env are accepted.
    let text = r#"
api = "0.10"
[buildpack]
id = "a"
version = "1"
exec-env = ["test", "production"]
[[targets]]
os = "linux"
arch = "arm64"
arch-variant = "v8"
"#;
    let d = BuildpackDescriptor::from_toml_str(text).unwrap();
    assert_eq!(d.targets[0].variant, "v8");
    assert_eq!(d.buildpack.exec_env, vec!["test", "production"]);
}

#[test]
fn composite_order_and_stacks() {
    let text = r#"
api = "0.7"
[buildpack]
id = "meta"
version = "0.0.1"
[[order]]
[[order.group]]
id = "A"
version = "1"
[[order.group]]
id = "B"
version = "2"
optional = true
[[order]]
[[order.group]]
id = "C"
version = "3"
"#;
    let d = BuildpackDescriptor::from_toml_str(text).unwrap();
    assert!(d.is_composite());
    assert_eq!(d.order.len(), 2);
    assert!(d.order[0].group[1].optional);
    assert_eq!(d.order[0].group[1].to_string(), "B@2");
    let back = BuildpackDescriptor::from_toml_str(&d.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, d);

    let stacks = BuildpackDescriptor::from_toml_str(
        "api = \"0.9\"\n[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n[[stacks]]\nid = \"*\"\n",
    )
    .unwrap();
    // BP<0.10 with two stacks: bionic is not translated; `*` matches anything.
    assert_eq!(stacks.effective_targets(), vec![Target::default()]);
    let bionic = BuildpackDescriptor::from_toml_str(
        "api = \"0.9\"\n[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n",
    )
    .unwrap();
    let t = bionic.effective_targets();
    assert_eq!((t[0].os.as_str(), t[0].arch.as_str()), ("linux", "amd64"));
    assert_eq!(t[0].distros[0].name, "ubuntu");
}

#[test]
fn unsupported_api_is_an_api_error_not_a_file_error() {
    let d =
        BuildpackDescriptor::from_toml_str("api = \"0.99\"\n[buildpack]\nid = \"x\"\n").unwrap();
    assert!(d.buildpack_api().is_err());
}

#[test]
fn extension_toml_round_trip() {
    let text = r#"
api = "0.9"
[extension]
id = "samples/curl"
version = "0.0.1"
name = "Curl"
[[targets]]
os = "linux"
"#;
    let d = ExtensionDescriptor::from_toml_str(text).unwrap();
    assert_eq!(d.extension.id, "samples/curl");
    assert_eq!(d.targets[0].os, "linux");
    let back = ExtensionDescriptor::from_toml_str(&d.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, d);
}

#[test]
fn detect_plan_with_or_alternatives() {
    // F-DETECTPLAN: spec "Build Plan (TOML)" example shape.
    let text = r#"
[[provides]]
name = "node"
[[requires]]
name = "node"
[requires.metadata]
version = "18"
[[or]]
[[or.provides]]
name = "npm"
[[or.requires]]
name = "npm"
"#;
    let p = DetectPlan::from_toml_str(text).unwrap();
    assert_eq!(p.options().len(), 2);
    assert_eq!(p.options()[1].provides[0].name, "npm");
    assert_eq!(p.requires[0].metadata["version"].as_str(), Some("18"));
    p.validate("bp", false).unwrap();
    let e = p.validate("ext", true).unwrap_err();
    assert_eq!(
        e.0,
        "extension ext outputs \"requires\" which is not allowed"
    );
    let back = DetectPlan::from_toml_str(&p.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn detect_plan_rejects_top_level_version() {
    // DS-10
    let p = DetectPlan::from_toml_str("[[or]]\n[[or.requires]]\nname = \"a\"\nversion = \"1\"\n")
        .unwrap();
    let e = p.validate("A", false).unwrap_err();
    assert!(
        e.0.contains("has a \"version\" key which is not supported"),
        "{e}"
    );
}

#[test]
fn buildpack_plan_round_trip_and_filters() {
    let text = "[[entries]]\nname = \"a\"\n[entries.metadata]\nx = 1\n[[entries]]\nname = \"b\"\n";
    let p = BuildpackPlan::from_toml_str(text).unwrap();
    assert_eq!(p.entries.len(), 2);
    assert_eq!(p.met_names(&["b".into()]), vec!["a"]);
    assert_eq!(p.only_unmet(&["b".into()]).entries[0].name, "b");
    let back = BuildpackPlan::from_toml_str(&p.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn launch_toml_array_form_bp_0_9_plus() {
    // F-LAUNCH, BD-09
    let text = r#"
[[labels]]
key = "k"
value = "v"
[[processes]]
type = "web"
command = ["node", "server.js"]
args = ["--port", "8080"]
default = true
working-dir = "/workspace/sub"
exec-env = ["production"]
[[slices]]
paths = ["public/*"]
"#;
    let l = LaunchToml::from_toml_str(text, BP_0_12).unwrap();
    let p = &l.processes[0];
    assert_eq!(p.command, vec!["node", "server.js"]);
    assert!(p.direct);
    assert!(p.default);
    assert_eq!(p.working_dir.as_deref(), Some("/workspace/sub"));
    assert!(p.applies_to_exec_env("production"));
    assert!(!p.applies_to_exec_env("test"));
    assert_eq!(l.default_process_types(), vec!["web"]);
    assert_eq!(l.slices[0].paths, vec!["public/*"]);
    let out = l.to_toml_string(BP_0_12).unwrap();
    assert!(!out.contains("direct"), "{out}");
    assert_eq!(LaunchToml::from_toml_str(&out, BP_0_12).unwrap(), l);
}

#[test]
fn launch_toml_string_form_before_0_9() {
    let text = "[[processes]]\ntype = \"web\"\ncommand = \"echo hi\"\n[[processes]]\ntype = \"d\"\ncommand = \"ls\"\nargs = [\"-l\"]\ndirect = true\n";
    let l = LaunchToml::from_toml_str(text, BP_0_8).unwrap();
    assert_eq!(l.processes[0].command, vec!["echo hi"]);
    assert!(!l.processes[0].direct, "legacy processes default to shell");
    assert!(l.processes[1].direct);
    let out = l.to_toml_string(BP_0_8).unwrap();
    assert_eq!(LaunchToml::from_toml_str(&out, BP_0_8).unwrap(), l);
}

#[test]
fn launch_toml_wrong_form_for_api_is_an_error() {
    let e = LaunchToml::from_toml_str(
        "[[processes]]\ntype = \"w\"\ncommand = [\"a\"]\ndirect = false\n",
        BP_0_12,
    )
    .unwrap_err();
    assert!(e
        .to_string()
        .contains("process.direct is not supported on this buildpack version"));
    assert!(LaunchToml::from_toml_str("[[processes]]\ncommand = \"a\"\n", BP_0_12).is_err());
    assert!(LaunchToml::from_toml_str("[[processes]]\ncommand = [\"a\"]\n", BP_0_8).is_err());
}

#[test]
fn layer_toml_types_table_and_legacy_top_level() {
    // F-LAYER, LY-01, BD-06
    let l = LayerMetadataFile::from_toml_str(
        "[types]\nlaunch = true\ncache = true\n[metadata]\nversion = \"1.2\"\n[metadata.deep]\nx = [1]\n",
    )
    .unwrap();
    assert!(l.types.launch && l.types.cache && !l.types.build);
    assert!(!l.types_at_top_level);
    assert_eq!(
        LayerMetadataFile::from_toml_str(&l.to_toml_string().unwrap()).unwrap(),
        l
    );

    let legacy = LayerMetadataFile::from_toml_str("launch = true\n[metadata]\na = 1\n").unwrap();
    assert!(legacy.types.launch && legacy.types_at_top_level);
    let p = std::path::Path::new("/layers/bp/l.toml");
    let e = legacy.check_types_table(p).unwrap_err();
    assert!(e.to_string().contains(
        "the launch, cache and build flags should be in the types table of /layers/bp/l.toml"
    ));

    // Restored metadata carries no [types].
    let restored = LayerMetadataFile {
        types: LayerTypes::default(),
        ..l
    };
    assert!(!restored.to_toml_string().unwrap().contains("types"));
}

#[test]
fn layer_toml_missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let l = LayerMetadataFile::read_or_default(dir.path().join("nope.toml")).unwrap();
    assert!(l.types.is_none());
}

#[test]
fn build_and_store_toml_round_trip() {
    let b = BuildToml::from_toml_str(
        "[[unmet]]\nname = \"x\"\n[[bom]]\nname = \"dep\"\n[bom.metadata]\nversion = \"1\"\n",
    )
    .unwrap();
    assert_eq!(b.unmet_names(), vec!["x"]);
    assert_eq!(b.bom[0].metadata["version"].as_str(), Some("1"));
    assert_eq!(
        BuildToml::from_toml_str(&b.to_toml_string().unwrap()).unwrap(),
        b
    );

    let s = StoreToml::from_toml_str("[metadata]\nkey = \"v\"\n[metadata.t]\nn = 2\n").unwrap();
    assert_eq!(
        StoreToml::from_toml_str(&s.to_toml_string().unwrap()).unwrap(),
        s
    );
}

#[test]
fn files_round_trip_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bp/launch.toml");
    let l = LaunchToml {
        processes: vec![Process {
            r#type: "web".into(),
            command: vec!["a".into(), "b".into()],
            direct: true,
            ..Process::default()
        }],
        ..LaunchToml::default()
    };
    l.write(&path, BP_0_12).unwrap();
    assert_eq!(LaunchToml::read(&path, BP_0_12).unwrap(), l);
    // Pre-0.9 encoding moves extra command entries into args.
    l.write(&path, BP_0_8).unwrap();
    let old = LaunchToml::read(&path, BP_0_8).unwrap();
    assert_eq!(old.processes[0].command, vec!["a"]);
    assert_eq!(old.processes[0].args, vec!["b"]);
}

#[test]
fn ids_escape_and_validate() {
    assert_eq!(escape_id("samples/hello-world"), "samples_hello-world");
    assert!(validate_id("io.buildpacks/node-1").is_ok());
    assert!(validate_id("app").is_err());
    assert!(validate_id("SBOM").is_err());
    assert!(validate_id("a_b").is_err());
    assert!(validate_id("").is_err());
}

#[test]
fn syntax_errors_name_the_file_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buildpack.toml");
    std::fs::write(&path, "api = \"0.9\"\n[buildpack\n").unwrap();
    let e = BuildpackDescriptor::read(&path).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("toml: line 2, column"), "{s}");
    assert!(s.contains(&path.display().to_string()), "{s}");
}

#[test]
fn extend_config_golden_from_spec() {
    // F-EXTEND: image extension spec "extend-config.toml (TOML)".
    let text =
        "[[build.args]]\nname = \"a\"\nvalue = \"1\"\n[[run.args]]\nname = \"b\"\nvalue = \"2\"\n";
    let c = ExtendConfig::from_toml_str(text).unwrap();
    assert_eq!(c.args_for("build")[0].name, "a");
    assert_eq!(c.args_for("run")[0].value, "2");
    assert_eq!(
        ExtendConfig::from_toml_str(&c.to_toml_string().unwrap()).unwrap(),
        c
    );
    assert_eq!(
        ExtendConfig::from_toml_str("").unwrap(),
        ExtendConfig::default()
    );
}

#[test]
fn exec_d_output_is_string_pairs() {
    // F-EXECD
    let m = parse_exec_d_output_str("A = \"1\"\nB = \"x y\"\n").unwrap();
    assert_eq!(m["A"], "1");
    assert_eq!(m["B"], "x y");
    assert!(parse_exec_d_output_str("A = 1\n").is_err());
    let e = parse_exec_d_output(std::path::Path::new("/layers/bp/l/exec.d/x"), "A =").unwrap_err();
    assert!(e.to_string().contains("/layers/bp/l/exec.d/x"), "{e}");
}

#[test]
fn sbom_names_and_media_types() {
    // SB-01, SB-02
    let f = SbomFileName::parse("node.sbom.cdx.json").unwrap();
    assert_eq!(f.owner, "node");
    assert_eq!(f.format, Ok(SbomFormat::CycloneDx));
    assert_eq!(
        SbomFileName::parse("launch.sbom.foo.json").unwrap().format,
        Err("foo.json".to_string())
    );
    assert!(SbomFileName::parse("node.toml").is_none());
    assert!(SbomFileName::parse("node.sbom.json").is_none());
    assert_eq!(
        SbomFormat::from_media_type("application/vnd.cyclonedx+json;version=1.4"),
        Some(SbomFormat::CycloneDx)
    );
    assert!(SbomFormat::Spdx.declared_in(&["application/spdx+json".to_string()]));
    assert!(!SbomFormat::Syft.declared_in(&["application/spdx+json".to_string()]));
    assert_eq!(SbomFormat::Syft.sbom_file_name(), "sbom.syft.json");
}

#[test]
fn targets_inferred_from_bin_dir() {
    // RI-21
    let dir = tempfile::tempdir().unwrap();
    let bp = BuildpackDescriptor::from_toml_str("api = \"0.10\"\n").unwrap();
    assert!(bp.targets_for(dir.path()).is_empty());
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/build"), "").unwrap();
    assert_eq!(bp.targets_for(dir.path())[0].os, "linux");

    let ext = ExtensionDescriptor::from_toml_str("api = \"0.10\"\n").unwrap();
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(ext.targets_for(empty.path()), vec![Target::default()]);
    std::fs::create_dir_all(empty.path().join("bin")).unwrap();
    std::fs::write(empty.path().join("bin/generate"), "").unwrap();
    assert_eq!(ext.targets_for(empty.path())[0].os, "linux");
}

#[test]
fn process_type_rules() {
    assert!(validate_process_type("process.with.period").is_ok());
    assert!(validate_process_type("web_1-a").is_ok());
    assert!(validate_process_type("a/b").is_err());
    assert!(validate_process_type("").is_err());
}

#[test]
fn process_serde_is_lenient_and_round_trips() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct W {
        processes: Vec<Process>,
    }
    let w: W = toml::from_str("[[processes]]\ntype = \"a\"\ncommand = \"x\"\n").unwrap();
    assert_eq!(w.processes[0].command, vec!["x"]);
    assert!(w.processes[0].direct);
    let back: W = toml::from_str(&toml::to_string(&w).unwrap()).unwrap();
    assert_eq!(back, w);
}

#[test]
fn builder_checks_with_reference_messages() {
    // BD-08, BD-09, BD-11
    let plan = BuildpackPlan::from_toml_str("[[entries]]\nname = \"a\"\n").unwrap();
    let ok = BuildToml::from_toml_str("[[unmet]]\nname = \"a\"\n").unwrap();
    ok.validate_unmet(&plan).unwrap();
    let empty = BuildToml::from_toml_str("[[unmet]]\n").unwrap();
    assert_eq!(
        empty.validate_unmet(&plan).unwrap_err(),
        "unmet.name is required"
    );
    let other = BuildToml::from_toml_str("[[unmet]]\nname = \"b\"\n").unwrap();
    assert_eq!(
        other.validate_unmet(&plan).unwrap_err(),
        "unmet.name 'b' must match a requested dependency"
    );

    let two = LaunchToml::from_toml_str(
        "[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"y\"]\ndefault = true\n",
        BP_0_12,
    )
    .unwrap();
    assert_eq!(
        two.check_single_default().unwrap_err(),
        "multiple default process types aren't allowed"
    );

    let bom = BuildToml::from_toml_str("[[bom]]\nname = \"dep\"\nversion = \"1\"\n")
        .unwrap()
        .bom;
    assert!(BomEntry::validate_all(&bom)
        .unwrap_err()
        .contains("bom entry 'dep' has a top level version"));
    let bp = GroupElement {
        api: Some("0.7".into()),
        ..GroupElement::new("A", "1")
    };
    let annotated = BomEntry::with_buildpack(&bom, &bp);
    assert_eq!(annotated[0].buildpack, GroupElement::new("A", "1"));
}
