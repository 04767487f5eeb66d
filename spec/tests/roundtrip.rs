//! Property tests: every file type survives encode → decode unchanged (STYLE.md "TOML types round-trip";
//! checklist §22, §23). Strings include quotes, backslashes, newlines, tabs and non-ASCII.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use cnb_spec::buildpack::{
    BuildpackPlan, GroupElement, Label, LaunchToml, LayerMetadataFile, LayerTypes, OrderGroup,
    Process, Require, Slice, StoreToml,
};
use cnb_spec::labels::{
    BuildMetadataLabel, BuildpackLayerMetadata, BuildpackLayersMetadata, LayerSha,
    LifecycleMetadata, RunImageForRebase, StackMetadata,
};
use cnb_spec::platform::{
    Analyzed, BuildMetadata, Group, ImageIdentifier, Order, Plan, PlanEntry, RunImage,
    RunImageForExport,
};
use cnb_spec::{BuildpackApi, PlatformApi};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._/\\-\"'\\\\\n\t\u{e9}\u{1F600}]{0,10}"
}

fn nonempty() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._/\\-]{1,10}"
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..3)
}

fn table() -> impl Strategy<Value = toml::Table> {
    let leaf = prop_oneof![
        text().prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        prop::collection::vec(text().prop_map(toml::Value::String), 0..3)
            .prop_map(toml::Value::Array),
    ];
    let value = leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::btree_map(nonempty(), inner, 0..3)
            .prop_map(|m| toml::Value::Table(m.into_iter().collect()))
    });
    prop::collection::btree_map(text(), value, 0..3).prop_map(|m| m.into_iter().collect())
}

fn element() -> impl Strategy<Value = GroupElement> {
    (
        nonempty(),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(id, version, api, homepage, optional)| GroupElement {
            id,
            version,
            api,
            homepage,
            optional,
            ..GroupElement::default()
        })
}

fn process(array: bool) -> impl Strategy<Value = Process> {
    let cmd = if array {
        prop::collection::vec(text(), 1..3).boxed()
    } else {
        text().prop_map(|c| vec![c]).boxed()
    };
    (
        nonempty(),
        cmd,
        strings(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(text()),
        strings(),
    )
        .prop_map(
            move |(t, command, args, direct, default, wd, exec_env)| Process {
                r#type: t,
                command,
                args,
                direct: if array { true } else { direct },
                default,
                working_dir: wd,
                exec_env,
                buildpack_id: String::new(),
            },
        )
}

fn require() -> impl Strategy<Value = Require> {
    (text(), table()).prop_map(|(name, metadata)| Require {
        name,
        version: None,
        metadata,
    })
}

fn layers_md() -> impl Strategy<Value = LifecycleMetadata> {
    let layer = (text(), table(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(sha, data, build, launch, cache)| BuildpackLayerMetadata {
            sha,
            data,
            build,
            launch,
            cache,
        },
    );
    let bp = (
        text(),
        text(),
        prop::collection::btree_map(text(), layer, 0..3),
        prop::option::of(table().prop_map(|metadata| StoreToml { metadata })),
    )
        .prop_map(|(key, version, layers, store)| BuildpackLayersMetadata {
            key,
            version,
            layers: layers.into_iter().collect::<BTreeMap<_, _>>(),
            store,
        });
    let export =
        || (text(), strings()).prop_map(|(image, mirrors)| RunImageForExport { image, mirrors });
    (
        prop::collection::vec(text().prop_map(LayerSha::new), 0..3),
        prop::option::of(text().prop_map(LayerSha::new)),
        prop::collection::vec(bp, 0..3),
        (text(), text(), text()),
        (text(), text(), export()),
        prop::option::of(export()),
    )
        .prop_map(
            |(app, sbom, buildpacks, (c, l, p), (top, reference, ex), stack)| LifecycleMetadata {
                app,
                sbom,
                buildpacks,
                config: LayerSha::new(c),
                launcher: LayerSha::new(l),
                process_types: LayerSha::new(p),
                run_image: RunImageForRebase {
                    top_layer: top,
                    reference,
                    image: ex.image,
                    mirrors: ex.mirrors,
                },
                stack: stack.map(|run_image| StackMetadata { run_image }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn order_round_trips(groups in prop::collection::vec(prop::collection::vec(element(), 0..3), 0..3)) {
        let order = Order {
            order: groups.iter().cloned().map(OrderGroup::new).collect(),
            order_extensions: Vec::new(),
        };
        prop_assert_eq!(Order::from_toml_str(&order.to_toml_string().unwrap()).unwrap(), order);
    }

    #[test]
    fn group_round_trips(group in prop::collection::vec(element(), 0..4)) {
        let g = Group {
            group: group.into_iter().map(|e| e.no_opt()).collect(),
            group_extensions: Vec::new(),
        };
        prop_assert_eq!(Group::from_toml_str(&g.to_toml_string().unwrap()).unwrap(), g);
    }

    #[test]
    fn plan_round_trips(entries in prop::collection::vec(
        (prop::collection::vec(element(), 1..3), prop::collection::vec(require(), 1..3)), 0..3)) {
        let p = Plan {
            entries: entries
                .into_iter()
                .map(|(providers, requires)| PlanEntry {
                    providers: providers.iter().map(GroupElement::as_provider).collect(),
                    requires,
                })
                .collect(),
        };
        prop_assert_eq!(Plan::from_toml_str(&p.to_toml_string().unwrap()).unwrap(), p.clone());
        let bp = BuildpackPlan { entries: p.entries.iter().flat_map(|e| e.requires.clone()).collect() };
        prop_assert_eq!(BuildpackPlan::from_toml_str(&bp.to_toml_string().unwrap()).unwrap(), bp);
    }

    #[test]
    fn launch_toml_round_trips_for_each_api(
        new in prop::collection::vec(process(true), 0..3),
        old in prop::collection::vec(process(false), 0..3),
        labels in prop::collection::vec((text(), text()), 0..3),
        slices in prop::collection::vec(strings(), 0..3),
    ) {
        let labels: Vec<Label> = labels.into_iter().map(|(key, value)| Label { key, value }).collect();
        let slices: Vec<Slice> = slices.into_iter().map(|paths| Slice { paths }).collect();
        for (api, processes) in [(BuildpackApi::new(0, 12), new), (BuildpackApi::new(0, 8), old)] {
            let l = LaunchToml { labels: labels.clone(), processes, slices: slices.clone(), bom: Vec::new() };
            let text = l.to_toml_string(api).unwrap();
            prop_assert_eq!(LaunchToml::from_toml_str(&text, api).unwrap(), l);
        }
    }

    #[test]
    fn layer_toml_round_trips(launch in any::<bool>(), build in any::<bool>(), cache in any::<bool>(), metadata in table()) {
        let l = LayerMetadataFile {
            types: LayerTypes { launch, build, cache },
            metadata,
            types_at_top_level: false,
        };
        prop_assert_eq!(LayerMetadataFile::from_toml_str(&l.to_toml_string().unwrap()).unwrap(), l);
    }

    #[test]
    fn metadata_toml_round_trips(
        buildpacks in prop::collection::vec(element(), 0..3),
        processes in prop::collection::vec(process(true), 0..3),
        default_type in prop::option::of(text()),
    ) {
        let m = BuildMetadata {
            buildpacks: buildpacks.into_iter().map(|e| e.no_opt()).collect(),
            processes: processes.into_iter().map(|mut p| { p.default = false; p.buildpack_id = "bp".into(); p }).collect(),
            buildpack_default_process_type: default_type,
            ..BuildMetadata::default()
        };
        let text = m.to_toml_string(PlatformApi::LATEST).unwrap();
        prop_assert_eq!(BuildMetadata::from_toml_str(&text).unwrap(), m.clone());
        let label = BuildMetadataLabel::from_build_metadata(&m, Default::default());
        let json = label.to_json(PlatformApi::LATEST).unwrap();
        let mut back = BuildMetadataLabel::from_json(&json).unwrap();
        // The label carries only id, version, homepage, api of modules.
        for (b, l) in back.buildpacks.iter_mut().zip(&label.buildpacks) {
            prop_assert_eq!(&b.api, &l.api.clone().filter(|a| !a.is_empty()));
            prop_assert_eq!(&b.homepage, &l.homepage.clone().filter(|h| !h.is_empty()));
            b.api = l.api.clone();
            b.homepage = l.homepage.clone();
        }
        prop_assert_eq!(back, label);
    }

    #[test]
    fn lifecycle_metadata_round_trips_as_label_and_analyzed(md in layers_md(), prev in prop::option::of(text())) {
        let json = md.to_json().unwrap();
        prop_assert_eq!(LifecycleMetadata::from_json(&json).unwrap(), md.clone());
        let a = Analyzed {
            previous_image: prev.map(|reference| ImageIdentifier { reference }),
            build_image: None,
            metadata: md,
            run_image: Some(RunImage { reference: "r".into(), ..RunImage::default() }),
        };
        prop_assert_eq!(Analyzed::from_toml_str(&a.to_toml_string().unwrap()).unwrap(), a);
    }
}
