//! Golden tests of the exact bytes of the TOML files the lifecycle writes for other phases and the
//! platform (issue 13): `analyzed.toml`, `group.toml`, `report.toml`, restored `<layer>.toml` and
//! `store.toml`, at the Platform API boundaries where their content changes (0.7 bare run image,
//! 0.12 `run-image.image` and target data, 0.12+ `extend`, report `[build]` only before 0.9).
//!
//! The reference's test suites hold no byte-exact fixture of these files (its tests compare decoded
//! structs), so the expected bytes are constructed from the rules of its encoder (BurntSushi/toml
//! v1.3 `encode.go`, summarised in [`crate::toml_encoder`]) applied to its Go types
//! (`platform/files/analyzed.go`, `report.go`, `buildpack/group.go`, `layermetadata.go`): struct fields
//! in declaration order, direct keys before tables, map keys sorted, nil/omitempty skipped, two spaces
//! per nesting level, a blank line before top-level tables and every `[[…]]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use crate::buildpack::{BomEntry, GroupElement, StoreToml};
use crate::labels::{
    BuildpackLayerMetadata, BuildpackLayersMetadata, LayerSha, LifecycleMetadata, RunImageForRebase,
};
use crate::platform::{
    Analyzed, BuildReport, Group, ImageIdentifier, ImageReport, OsDistro, Report, RunImage,
    TargetMetadata,
};

fn table(pairs: &[(&str, toml::Value)]) -> toml::Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn previous_metadata() -> LifecycleMetadata {
    let mut layers = BTreeMap::new();
    layers.insert(
        "node".to_string(),
        BuildpackLayerMetadata {
            sha: "sha256:n".into(),
            data: table(&[("version", "18".into()), ("arch", "x64".into())]),
            launch: true,
            cache: true,
            ..BuildpackLayerMetadata::default()
        },
    );
    layers.insert(
        "deps".to_string(),
        BuildpackLayerMetadata {
            sha: "sha256:d".into(),
            build: true,
            ..BuildpackLayerMetadata::default()
        },
    );
    LifecycleMetadata {
        app: vec![LayerSha::new("sha256:app")],
        buildpacks: vec![BuildpackLayersMetadata {
            key: "samples/node".into(),
            version: "1.0".into(),
            layers,
            store: Some(StoreToml {
                metadata: table(&[("runs", 2.into())]),
            }),
        }],
        config: LayerSha::new("sha256:cfg"),
        launcher: LayerSha::new("sha256:l"),
        process_types: LayerSha::default(),
        run_image: RunImageForRebase {
            top_layer: "sha256:top".into(),
            reference: "sha256:runid".into(),
            image: "registry.test/run".into(),
            mirrors: vec!["mirror.test/run".into()],
        },
        ..LifecycleMetadata::default()
    }
}

#[test]
fn analyzed_toml_platform_0_7_first_build() {
    // No previous image: `[metadata]` holds only the always-written structs (the reference's
    // `LayersMetadata{}`: nil slices skipped, `config`/`launcher`/`process-types`/`run-image` kept).
    let a = Analyzed {
        run_image: Some(RunImage {
            reference: "registry.test/run@sha256:abc".into(),
            ..RunImage::default()
        }),
        ..Analyzed::default()
    };
    assert_eq!(
        a.to_toml_string().unwrap(),
        "[metadata]\n\
         \x20 [metadata.config]\n    sha = \"\"\n\
         \x20 [metadata.launcher]\n    sha = \"\"\n\
         \x20 [metadata.process-types]\n    sha = \"\"\n\
         \x20 [metadata.run-image]\n    top-layer = \"\"\n    reference = \"\"\n\
         \n[run-image]\n  reference = \"registry.test/run@sha256:abc\"\n"
    );
}

#[test]
fn analyzed_toml_platform_0_12_rebuild_with_target_and_extend() {
    let a = Analyzed {
        previous_image: Some(ImageIdentifier {
            reference: "registry.test/app@sha256:prev".into(),
        }),
        build_image: Some(ImageIdentifier {
            reference: "registry.test/build@sha256:b".into(),
        }),
        metadata: previous_metadata(),
        run_image: Some(RunImage {
            reference: "registry.test/run@sha256:abc".into(),
            image: "registry.test/run:latest".into(),
            extend: true,
            target: Some(TargetMetadata {
                id: "io.test.base".into(),
                os: "linux".into(),
                arch: "arm64".into(),
                arch_variant: "v8".into(),
                distro: Some(OsDistro {
                    name: "ubuntu".into(),
                    version: "22.04".into(),
                }),
            }),
        }),
    };
    let expected = concat!(
        "[image]\n",
        "  reference = \"registry.test/app@sha256:prev\"\n",
        "\n[build-image]\n",
        "  reference = \"registry.test/build@sha256:b\"\n",
        "\n[metadata]\n",
        "\n  [[metadata.app]]\n",
        "    sha = \"sha256:app\"\n",
        "\n  [[metadata.buildpacks]]\n",
        "    key = \"samples/node\"\n",
        "    version = \"1.0\"\n",
        "    [metadata.buildpacks.layers]\n",
        "      [metadata.buildpacks.layers.deps]\n",
        "        sha = \"sha256:d\"\n",
        "        build = true\n",
        "        launch = false\n",
        "        cache = false\n",
        "        [metadata.buildpacks.layers.deps.metadata]\n",
        "      [metadata.buildpacks.layers.node]\n",
        "        sha = \"sha256:n\"\n",
        "        build = false\n",
        "        launch = true\n",
        "        cache = true\n",
        "        [metadata.buildpacks.layers.node.metadata]\n",
        "          arch = \"x64\"\n",
        "          version = \"18\"\n",
        "    [metadata.buildpacks.store]\n",
        "      [metadata.buildpacks.store.metadata]\n",
        "        runs = 2\n",
        "  [metadata.config]\n",
        "    sha = \"sha256:cfg\"\n",
        "  [metadata.launcher]\n",
        "    sha = \"sha256:l\"\n",
        "  [metadata.process-types]\n",
        "    sha = \"\"\n",
        "  [metadata.run-image]\n",
        "    top-layer = \"sha256:top\"\n",
        "    reference = \"sha256:runid\"\n",
        "    image = \"registry.test/run\"\n",
        "    mirrors = [\"mirror.test/run\"]\n",
        "\n[run-image]\n",
        "  reference = \"registry.test/run@sha256:abc\"\n",
        "  image = \"registry.test/run:latest\"\n",
        "  extend = true\n",
        "  [run-image.target]\n",
        "    id = \"io.test.base\"\n",
        "    os = \"linux\"\n",
        "    arch = \"arm64\"\n",
        "    arch-variant = \"v8\"\n",
        "    [run-image.target.distro]\n",
        "      name = \"ubuntu\"\n",
        "      version = \"22.04\"\n",
    );
    let text = a.to_toml_string().unwrap();
    assert_eq!(text, expected);
    // And it reads back to the same value.
    assert_eq!(Analyzed::from_toml_str(&text).unwrap(), a);
}

#[test]
fn analyzed_toml_target_without_id_variant_or_distro() {
    // The reference's current `TargetMetadata`: `id` and `arch-variant` omitempty, `distro` a nil pointer.
    let a = Analyzed {
        run_image: Some(RunImage {
            reference: "r@sha256:1".into(),
            image: "r".into(),
            target: Some(TargetMetadata {
                os: "linux".into(),
                arch: "amd64".into(),
                ..TargetMetadata::default()
            }),
            ..RunImage::default()
        }),
        ..Analyzed::default()
    };
    let text = a.to_toml_string().unwrap();
    assert!(
        text.ends_with(
            "\n[run-image]\n  reference = \"r@sha256:1\"\n  image = \"r\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n"
        ),
        "{text}"
    );
    // The distro table of older reference lifecycles (`distribution`) is read too.
    let old = text
        + "    [run-image.target.distribution]\n      name = \"debian\"\n      version = \"12\"\n";
    let back = Analyzed::from_toml_str(&old).unwrap();
    assert_eq!(back.run_image_target().distro.unwrap().name, "debian");
}

#[test]
fn group_toml_with_extensions() {
    let g = Group {
        group: vec![GroupElement {
            api: Some("0.10".into()),
            homepage: Some("https://example.test".into()),
            ..GroupElement::new("samples/node", "1.0")
        }],
        group_extensions: vec![GroupElement {
            api: Some("0.10".into()),
            extension: true,
            optional: true,
            ..GroupElement::new("samples/curl", "0.1")
        }],
    };
    assert_eq!(
        g.to_toml_string().unwrap(),
        concat!(
            "[[group]]\n",
            "  id = \"samples/node\"\n",
            "  version = \"1.0\"\n",
            "  api = \"0.10\"\n",
            "  homepage = \"https://example.test\"\n",
            "\n[[group-extensions]]\n",
            "  id = \"samples/curl\"\n",
            "  version = \"0.1\"\n",
            "  api = \"0.10\"\n",
        )
    );
}

#[test]
fn report_toml_registry_and_legacy_build_bom() {
    let registry = Report {
        image: ImageReport {
            tags: vec![
                "registry.test/app:latest".into(),
                "registry.test/app:v1".into(),
            ],
            digest: "sha256:d".into(),
            manifest_size: 1234,
            ..ImageReport::default()
        },
        build: None,
    };
    assert_eq!(
        registry.to_toml_string().unwrap(),
        "[image]\n  tags = [\"registry.test/app:latest\", \"registry.test/app:v1\"]\n  digest = \"sha256:d\"\n  manifest-size = 1234\n"
    );
    // P<0.9: `[build]` (declared first in the reference's `files.Report`) with the legacy BOM.
    let legacy = Report {
        image: ImageReport {
            tags: vec!["app".into()],
            image_id: "sha256:id".into(),
            ..ImageReport::default()
        },
        build: Some(BuildReport {
            bom: vec![BomEntry {
                name: "dep".into(),
                version: Some("1".into()),
                metadata: table(&[("k", "v".into())]),
                buildpack: GroupElement::new("A", "v1"),
            }],
        }),
    };
    assert_eq!(
        legacy.to_toml_string().unwrap(),
        concat!(
            "[build]\n",
            "\n  [[build.bom]]\n",
            "    name = \"dep\"\n",
            "    version = \"1\"\n",
            "    [build.bom.metadata]\n",
            "      k = \"v\"\n",
            "    [build.bom.buildpack]\n",
            "      id = \"A\"\n",
            "      version = \"v1\"\n",
            "\n[image]\n",
            "  tags = [\"app\"]\n",
            "  image-id = \"sha256:id\"\n",
        )
    );
}

#[test]
fn restored_layer_toml_and_store_toml() {
    // The reference restorer's `dataTomlFile{Data}`: only `[metadata]` (nested tables sorted as Go maps).
    let mut doc = toml::Table::new();
    doc.insert(
        "metadata".into(),
        toml::Value::Table(table(&[
            ("version", "18".into()),
            ("arch", "x64".into()),
            (
                "nested",
                toml::Value::Table(table(&[("b", 1.into()), ("a", true.into())])),
            ),
            ("list", toml::Value::Array(vec!["x".into(), "y".into()])),
        ])),
    );
    assert_eq!(
        crate::io::to_toml(std::path::Path::new("-"), &doc).unwrap(),
        "[metadata]\n  arch = \"x64\"\n  list = [\"x\", \"y\"]\n  version = \"18\"\n  [metadata.nested]\n    a = true\n    b = 1\n"
    );
    let store = StoreToml {
        metadata: table(&[("runs", 3.into())]),
    };
    assert_eq!(store.to_toml_string().unwrap(), "[metadata]\n  runs = 3\n");
}
