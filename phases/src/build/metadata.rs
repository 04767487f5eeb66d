//! `<layers>/config/metadata.toml`, which the exporter and launcher read (platform spec "metadata.toml";
//! checklist BD-12, BD-14, F-META).
//!
//! TODO(integration): serialise through the cnb-spec `metadata.toml` type once it is in main; the
//! aggregation logic ([`ProcessMap`]) stays here.

use std::collections::BTreeMap;

use cnb_spec::PlatformApi;
use serde::Serialize;

use super::outputs::Process;
use crate::detect::model::GroupMember;

/// Process aggregation across buildpacks (BD-12): later buildpacks override earlier ones by type;
/// the last `default = true` wins; redefining the default type without `default` clears it.
#[derive(Debug, Default, Clone)]
pub struct ProcessMap {
    by_type: BTreeMap<String, Process>,
    /// The buildpack-default process type, if any.
    pub default_type: Option<String>,
}

impl ProcessMap {
    /// Adds one buildpack's processes; returns a warning when a default was redefined as non-default.
    pub fn add(&mut self, processes: Vec<Process>) -> Option<String> {
        let mut warning = None;
        for p in processes {
            if p.default {
                self.default_type = Some(p.r#type.clone());
                warning = None;
            } else if self.default_type.as_deref() == Some(p.r#type.as_str()) {
                self.default_type = None;
                warning = Some(format!(
                    "Warning: redefining the following default process type with a process not marked as default: {}",
                    p.r#type
                ));
            }
            self.by_type.insert(p.r#type.clone(), p);
        }
        warning
    }

    /// Processes sorted by type.
    pub fn list(&self) -> Vec<Process> {
        self.by_type.values().cloned().collect()
    }
}

/// Everything the builder records for later phases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildMetadata {
    /// The group's buildpacks.
    pub buildpacks: Vec<GroupMember>,
    /// The group's extensions.
    pub extensions: Vec<GroupMember>,
    /// Labels from every buildpack, in order.
    pub labels: Vec<(String, String)>,
    /// Processes, sorted by type.
    pub processes: Vec<Process>,
    /// Slices, concatenated in buildpack order.
    pub slices: Vec<Vec<String>>,
    /// `buildpack-default-process-type`.
    pub default_process_type: Option<String>,
    /// Legacy launch BOM (`[P<0.9]` only).
    pub bom: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct Doc<'a> {
    #[serde(
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    default_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bom: Vec<toml::Value>,
    buildpacks: Vec<Member<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<Member<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<Label<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    processes: Vec<Proc<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slices: Vec<Slice<'a>>,
}

#[derive(Serialize)]
struct Member<'a> {
    id: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    homepage: Option<&'a str>,
}

#[derive(Serialize)]
struct Label<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Command<'a> {
    One(&'a str),
    Many(&'a [String]),
}

#[derive(Serialize)]
struct Proc<'a> {
    r#type: &'a str,
    command: Command<'a>,
    args: Vec<String>,
    direct: bool,
    #[serde(rename = "buildpack-id")]
    buildpack_id: &'a str,
    #[serde(rename = "working-dir", skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(rename = "exec-env", skip_serializing_if = "<[String]>::is_empty")]
    exec_env: &'a [String],
}

#[derive(Serialize)]
struct Slice<'a> {
    paths: &'a [String],
}

fn member(m: &GroupMember) -> Member<'_> {
    Member {
        id: &m.module.id,
        version: &m.module.version,
        api: &m.api,
        homepage: m.homepage.as_deref(),
    }
}

impl BuildMetadata {
    /// Renders `metadata.toml` for `api`: command arrays `[P≥0.10]`, else the first command entry as a
    /// string with the rest moved to the front of `args` (BD-14).
    pub fn to_toml(&self, api: PlatformApi) -> Result<String, toml::ser::Error> {
        let array = api.at_least(0, 10);
        let doc = Doc {
            default_type: self.default_process_type.as_deref(),
            bom: self
                .bom
                .iter()
                .filter_map(|v| serde_json::from_value::<toml::Value>(v.clone()).ok())
                .collect(),
            buildpacks: self.buildpacks.iter().map(member).collect(),
            extensions: self.extensions.iter().map(member).collect(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| Label { key: k, value: v })
                .collect(),
            processes: self
                .processes
                .iter()
                .map(|p| {
                    let (command, args) = if array || p.command.len() <= 1 {
                        let c = if array {
                            Command::Many(&p.command)
                        } else {
                            Command::One(p.command.first().map(String::as_str).unwrap_or(""))
                        };
                        (c, p.args.clone())
                    } else {
                        let mut args: Vec<String> = p.command[1..].to_vec();
                        args.extend(p.args.iter().cloned());
                        (Command::One(&p.command[0]), args)
                    };
                    Proc {
                        r#type: &p.r#type,
                        command,
                        args,
                        direct: p.direct,
                        buildpack_id: &p.buildpack_id,
                        working_dir: p.working_dir.as_deref(),
                        exec_env: &p.exec_env,
                    }
                })
                .collect(),
            slices: self.slices.iter().map(|s| Slice { paths: s }).collect(),
        };
        toml::to_string(&doc)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn proc(t: &str, default: bool, bp: &str) -> Process {
        Process {
            r#type: t.into(),
            command: vec!["run".into(), "--fast".into()],
            args: vec!["x".into()],
            direct: true,
            default,
            buildpack_id: bp.into(),
            working_dir: None,
            exec_env: vec![],
        }
    }

    #[test]
    fn bd_12_later_overrides_and_default_handling() {
        let mut m = ProcessMap::default();
        assert!(m
            .add(vec![proc("web", true, "a"), proc("worker", false, "a")])
            .is_none());
        assert_eq!(m.default_type.as_deref(), Some("web"));
        let w = m.add(vec![proc("web", false, "b")]).unwrap();
        assert!(w.contains("redefining the following default process type"));
        assert_eq!(m.default_type, None);
        let l = m.list();
        assert_eq!(l[0].buildpack_id, "b");
        assert_eq!(l[1].r#type, "worker");
    }

    #[test]
    fn bd_14_command_form_per_platform_api() {
        let md = BuildMetadata {
            processes: vec![proc("web", false, "a")],
            default_process_type: Some("web".into()),
            ..BuildMetadata::default()
        };
        let new = md.to_toml(PlatformApi::new(0, 10)).unwrap();
        assert!(new.contains("[[processes]]"), "{new}");
        assert!(new.contains("command = [\"run\", \"--fast\"]"), "{new}");
        assert!(new.contains("buildpack-default-process-type = \"web\""));
        let old = md.to_toml(PlatformApi::new(0, 9)).unwrap();
        assert!(old.contains("command = \"run\""), "{old}");
        assert!(old.contains("args = [\"--fast\", \"x\"]"), "{old}");
        let v: toml::Table = toml::from_str(&new).unwrap();
        assert!(v["processes"].as_array().is_some());
    }
}
