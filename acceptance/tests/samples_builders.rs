//! The builder definitions in `samples/builders/` (issue 8 item 3): every `order.toml`, `run.toml` and
//! `system.toml` parses with the platform spec's types, names only buildpacks and extensions that exist in
//! `samples/` at those versions, and the real detector (Platform 0.15, checklist DT-04, DS-01) resolves each
//! builder's order plus system buildpacks on its sample app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use cnb_acceptance::harness::{workspace_dir, ContainerRoot};
use cnb_spec::platform::{Order, RunToml, SystemToml};

/// `(id, version)` of every buildpack (or extension) descriptor under `samples/<dir>/*/`.
fn descriptors(dir: &str, file: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir(workspace_dir().join("samples").join(dir)).unwrap() {
        let p = e.unwrap().path().join(file);
        if !p.is_file() {
            continue;
        }
        let t: toml::Table = toml::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        let table = t
            .get("buildpack")
            .or_else(|| t.get("extension"))
            .unwrap_or_else(|| panic!("{}: no [buildpack]/[extension]", p.display()));
        out.push((
            table["id"].as_str().unwrap().to_string(),
            table["version"].as_str().unwrap().to_string(),
        ));
    }
    out
}

fn builders() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = fs::read_dir(workspace_dir().join("samples/builders"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 2, "{dirs:?}");
    dirs
}

#[test]
fn builder_definitions_parse_and_name_existing_samples() {
    let buildpacks = descriptors("buildpacks", "buildpack.toml");
    let extensions = descriptors("extensions", "extension.toml");
    for dir in builders() {
        let order = Order::read(dir.join("order.toml")).unwrap();
        let run = RunToml::read(dir.join("run.toml")).unwrap();
        let system = SystemToml::read(dir.join("system.toml")).unwrap();
        assert!(
            !run.images.is_empty() && !run.images[0].image.is_empty(),
            "{dir:?}"
        );
        let named_bps = order
            .order
            .iter()
            .flat_map(|g| g.group.iter())
            .chain(system.system.pre.buildpacks.iter())
            .chain(system.system.post.buildpacks.iter());
        for e in named_bps {
            assert!(
                buildpacks.contains(&(e.id.clone(), e.version.clone())),
                "{}: buildpack {}@{} is not in samples/buildpacks",
                dir.display(),
                e.id,
                e.version
            );
        }
        for e in order.order_extensions.iter().flat_map(|g| g.group.iter()) {
            assert!(
                extensions.contains(&(e.id.clone(), e.version.clone())),
                "{}: extension {}@{} is not in samples/extensions",
                dir.display(),
                e.id,
                e.version
            );
        }
    }
}

/// Lays out `samples/<kind>/<name>` as `cnb/<kind>/<escaped id>/<version>/` in `root`.
fn install(root: &ContainerRoot, kind: &str, descriptor: &str) {
    for (name, (id, version)) in fs::read_dir(workspace_dir().join("samples").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(descriptor).is_file())
        .map(|p| {
            let t: toml::Table =
                toml::from_str(&fs::read_to_string(p.join(descriptor)).unwrap()).unwrap();
            let table = t
                .get("buildpack")
                .or_else(|| t.get("extension"))
                .unwrap()
                .clone();
            (
                p,
                (
                    table["id"].as_str().unwrap().to_string(),
                    table["version"].as_str().unwrap().to_string(),
                ),
            )
        })
    {
        root.copy_dir(
            &name,
            Path::new("cnb")
                .join(kind)
                .join(id.replace('/', "_"))
                .join(version),
        );
    }
}

/// The detector with a builder's `order.toml` and `system.toml` on the sample app; returns group.toml.
fn detect(builder: &str, app: &str) -> toml::Table {
    let ws = workspace_dir();
    let root = ContainerRoot::new();
    install(&root, "buildpacks", "buildpack.toml");
    install(&root, "extensions", "extension.toml");
    root.copy_dir(ws.join("samples/apps").join(app), "workspace");
    for f in ["order.toml", "run.toml", "system.toml"] {
        root.write(
            Path::new("cnb").join(f),
            fs::read(ws.join("samples/builders").join(builder).join(f)).unwrap(),
        );
    }
    let out = root
        .phase("detector")
        .platform_api("0.15")
        .env(
            "CNB_SYSTEM_PATH",
            root.join("cnb/system.toml").display().to_string(),
        )
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .run();
    out.assert_code(0);
    toml::from_str(&root.read("layers/group.toml")).unwrap()
}

fn ids(group: &toml::Table, key: &str) -> Vec<String> {
    group
        .get(key)
        .and_then(|g| g.as_array())
        .map(|a| {
            a.iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn shell_builder_detects_with_the_system_buildpack_appended() {
    let group = detect("shell", "hello");
    assert_eq!(
        ids(&group, "group"),
        ["samples/runtime", "samples/app-deps", "samples/build-info"]
    );
}

#[test]
fn python_builder_detects_extensions_and_the_system_buildpack() {
    if !Path::new("/usr/bin/python3").exists() {
        println!("SKIPPED: the python buildpack's detect needs /usr/bin/python3");
        return;
    }
    let group = detect("python", "python");
    // samples/curl provides the curl the Python buildpack asks for; samples/run-tools only detects for
    // apps with a run-tools.txt.
    assert_eq!(ids(&group, "group-extensions"), ["samples/curl"]);
    assert_eq!(
        ids(&group, "group"),
        ["samples/python", "samples/build-info"]
    );
}
