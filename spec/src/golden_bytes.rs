//! Golden tests of exact bytes (issue 13) at the API boundaries where the reference's formats change:
//! `plan.toml` entries without metadata, `metadata.toml` processes (string command + `args` list before
//! Platform 0.10, array command with absent `args` from 0.10), and the `io.buildpacks.build.metadata`
//! label (legacy `bom` before 0.9, `args` `[]` before 0.10 and `null` from 0.10). Differences from the
//! reference's bytes that are deliberate are listed in [`crate::parity::DEVIATIONS`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::api::PlatformApi;
use crate::buildpack::{BomEntry, GroupElement, Process, Require};
use crate::labels::{BuildMetadataLabel, GitMetadata, LauncherMetadata, SourceMetadata};
use crate::platform::{BuildMetadata, Plan, PlanEntry};

fn web(args: &[&str]) -> Process {
    Process {
        r#type: "web".into(),
        command: vec!["node".into(), "server.js".into()],
        args: args.iter().map(|s| s.to_string()).collect(),
        direct: true,
        buildpack_id: "A".into(),
        ..Process::default()
    }
}

fn worker() -> Process {
    Process {
        r#type: "worker".into(),
        command: vec!["worker".into()],
        direct: true,
        buildpack_id: "A".into(),
        ..Process::default()
    }
}

fn md() -> BuildMetadata {
    BuildMetadata {
        buildpacks: vec![GroupElement {
            api: Some("0.10".into()),
            ..GroupElement::new("A", "v1")
        }],
        processes: vec![web(&["--port", "80"]), worker()],
        bom: vec![BomEntry {
            name: "dep".into(),
            buildpack: GroupElement::new("A", "v1"),
            ..BomEntry::default()
        }],
        ..BuildMetadata::default()
    }
}

fn launcher() -> LauncherMetadata {
    LauncherMetadata {
        version: "0.20.0".into(),
        source: SourceMetadata {
            git: GitMetadata {
                repository: "github.com/buildpacks/lifecycle".into(),
                commit: "abc1234".into(),
            },
        },
    }
}

#[test]
fn plan_toml_omits_empty_metadata() {
    let plan = Plan {
        entries: vec![PlanEntry {
            providers: vec![GroupElement::new("A", "v1")],
            requires: vec![Require::new("node")],
        }],
    };
    assert_eq!(
        plan.to_toml_string().unwrap(),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"A\"\n    version = \"v1\"\n\n  [[entries.requires]]\n    name = \"node\"\n"
    );
}

#[test]
fn metadata_toml_processes_per_platform_api() {
    // P0.9: string command, extra command entries first in `args`, `args` always present.
    assert_eq!(
        md().to_toml_string(PlatformApi::new(0, 9)).unwrap(),
        "[[buildpacks]]\n  id = \"A\"\n  version = \"v1\"\n  api = \"0.10\"\n\n\
         [[processes]]\n  type = \"web\"\n  command = \"node\"\n  args = [\"server.js\", \"--port\", \"80\"]\n  direct = true\n  buildpack-id = \"A\"\n\n\
         [[processes]]\n  type = \"worker\"\n  command = \"worker\"\n  args = []\n  direct = true\n  buildpack-id = \"A\"\n"
    );
    // P0.10+: array command; no `args` key for a process without arguments; `[[bom]]` only P<0.9.
    assert_eq!(
        md().to_toml_string(PlatformApi::new(0, 10)).unwrap(),
        "[[buildpacks]]\n  id = \"A\"\n  version = \"v1\"\n  api = \"0.10\"\n\n\
         [[processes]]\n  type = \"web\"\n  command = [\"node\", \"server.js\"]\n  args = [\"--port\", \"80\"]\n  direct = true\n  buildpack-id = \"A\"\n\n\
         [[processes]]\n  type = \"worker\"\n  command = [\"worker\"]\n  direct = true\n  buildpack-id = \"A\"\n"
    );
    assert_eq!(
        md().to_toml_string(PlatformApi::new(0, 15)).unwrap(),
        md().to_toml_string(PlatformApi::new(0, 10)).unwrap()
    );
    assert!(md()
        .to_toml_string(PlatformApi::new(0, 8))
        .unwrap()
        .contains("[[bom]]\n  name = \"dep\"\n"));
}

#[test]
fn build_metadata_label_per_platform_api() {
    let label = |api| {
        BuildMetadataLabel::from_build_metadata(&md(), launcher())
            .to_json(PlatformApi::new(0, api))
            .unwrap()
    };
    let launcher_json = r#""launcher":{"version":"0.20.0","source":{"git":{"repository":"github.com/buildpacks/lifecycle","commit":"abc1234"}}}"#;
    // P0.8: legacy `bom` first.
    assert_eq!(
        label(8),
        format!(
            r#"{{"bom":[{{"name":"dep","metadata":null,"buildpack":{{"id":"A","version":"v1"}}}}],"buildpacks":[{{"id":"A","version":"v1","api":"0.10"}}],{launcher_json},"processes":[{{"type":"web","command":"node","args":["server.js","--port","80"],"direct":true,"buildpackID":"A"}},{{"type":"worker","command":"worker","args":[],"direct":true,"buildpackID":"A"}}]}}"#
        )
    );
    // P0.9: no `bom`; still string commands with `args` lists.
    assert!(label(9).starts_with(r#"{"buildpacks":"#), "{}", label(9));
    // P0.10+: array commands; a process without arguments has `"args":null` (the reference's nil slice).
    assert_eq!(
        label(10),
        format!(
            r#"{{"buildpacks":[{{"id":"A","version":"v1","api":"0.10"}}],{launcher_json},"processes":[{{"type":"web","command":["node","server.js"],"args":["--port","80"],"direct":true,"buildpackID":"A"}},{{"type":"worker","command":["worker"],"args":null,"direct":true,"buildpackID":"A"}}]}}"#
        )
    );
    assert_eq!(label(15), label(10));
    // Read back: `null` args are no args.
    let back = BuildMetadataLabel::from_json(&label(15)).unwrap();
    assert!(back.processes[1].args.is_empty());
}

#[test]
fn labels_escape_html_characters_as_go_json_marshal() {
    // Go's json.Marshal (the reference's labels) writes `<`, `>`, `&` as \u003c \u003e \u0026 and
    // U+2028/U+2029 escaped; the bytes of the label change with it, so the image digest does too.
    let mut m = md();
    m.processes[0].command = vec![
        "sh".into(),
        "-c".into(),
        "a && b > /dev/null <in\u{2028}".into(),
    ];
    let label = BuildMetadataLabel::from_build_metadata(&m, launcher())
        .to_json(PlatformApi::new(0, 15))
        .unwrap();
    assert!(
        label.contains(
            r#""command":["sh","-c","a \u0026\u0026 b \u003e /dev/null \u003cin\u2028"]"#
        ),
        "{label}"
    );
    // And reads back to the same strings.
    let back = BuildMetadataLabel::from_json(&label).unwrap();
    assert_eq!(back.processes[0].command, m.processes[0].command);
    assert_eq!(
        crate::io::go_json_escape(r#"{"k":"<&>"}"#.to_string()),
        r#"{"k":"\u003c\u0026\u003e"}"#
    );
}
