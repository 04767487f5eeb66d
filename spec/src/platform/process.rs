//! Process rules shared by builder, exporter and launcher: aggregation of buildpack processes into
//! `metadata.toml` (checklist BD-12), default process choice (EP-14), eligible process lookup (LN-03) and
//! user-argument handling (LN-04).

use std::collections::BTreeMap;

use super::metadata::BuildMetadata;
use crate::api::{BuildpackApi, PlatformApi};
use crate::buildpack::Process;

/// The result of [`aggregate_processes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregatedProcesses {
    /// One process per type, sorted by type, `default` cleared.
    pub processes: Vec<Process>,
    /// The buildpack-default process type, if any.
    pub default_type: Option<String>,
    /// Warnings to log (without the `Warning: ` prefix).
    pub warnings: Vec<String>,
}

/// Merges the processes of each buildpack, in group order (BD-12): a later definition of a type replaces
/// an earlier one; `default = true` makes the type the buildpack default (last wins); a later non-default
/// redefinition of the current default type clears the default with a warning. `buildpack_id` is set from
/// the pairs' first element. `web` is not implicitly the default.
pub fn aggregate_processes<'a, I>(per_buildpack: I) -> AggregatedProcesses
where
    I: IntoIterator<Item = (&'a str, &'a [Process])>,
{
    let mut by_type: BTreeMap<String, Process> = BTreeMap::new();
    let mut default_type: Option<String> = None;
    let mut warnings = Vec::new();
    for (bp_id, processes) in per_buildpack {
        for p in processes {
            let mut p = p.clone();
            p.buildpack_id = bp_id.to_string();
            if p.default {
                default_type = Some(p.r#type.clone());
            } else if default_type.as_deref() == Some(p.r#type.as_str()) {
                warnings.push(format!(
                    "redefining the following default process type with a process not marked as default: {}",
                    p.r#type
                ));
                default_type = None;
            }
            p.default = false;
            by_type.insert(p.r#type.clone(), p);
        }
    }
    AggregatedProcesses {
        processes: by_type.into_values().collect(),
        default_type,
        warnings,
    }
}

impl BuildMetadata {
    /// The image's default process type (EP-14): the requested one (`-process-type`), which must exist
    /// (`Err` with the reference message otherwise), else the buildpack default, else none (the
    /// entrypoint is then the bare launcher).
    pub fn default_process_type(&self, requested: Option<&str>) -> Result<Option<String>, String> {
        match requested.filter(|r| !r.is_empty()) {
            Some(t) if self.find_process(t).is_some() => Ok(Some(t.to_string())),
            Some(t) => Err(format!("tried to set {t} to default but it doesn't exist")),
            None => Ok(self
                .buildpack_default_process_type
                .clone()
                .filter(|t| !t.is_empty())),
        }
    }

    /// The process of type `t` the launcher may run (LN-03): for P≥0.15 only processes eligible for
    /// `exec_env` count (no `exec-env`, or one containing `*` or `exec_env`).
    pub fn find_eligible_process(
        &self,
        t: &str,
        platform: PlatformApi,
        exec_env: &str,
    ) -> Option<&Process> {
        self.processes.iter().find(|p| {
            p.r#type == t && (!platform.supports_exec_env() || p.applies_to_exec_env(exec_env))
        })
    }
}

impl Process {
    /// The process to execute when the user passed `user_args` (LN-04). `buildpack_api` is the API of
    /// the buildpack that contributed the process.
    ///
    /// - P<0.10: user args are appended to `args`.
    /// - P≥0.10 and `command` has several entries: `command[1..]` are always-provided args, followed by
    ///   the user args if any, else by the overridable `args`; `command` is reduced to its first entry.
    /// - P≥0.10 otherwise: no user args → unchanged; BP<0.9 → appended; BP≥0.9 → user args replace `args`.
    pub fn with_user_args(
        &self,
        user_args: &[String],
        platform: PlatformApi,
        buildpack_api: BuildpackApi,
    ) -> Process {
        let mut p = self.clone();
        if !platform.process_args_overridable() {
            p.args.extend(user_args.iter().cloned());
            return p;
        }
        if p.command.len() > 1 {
            let mut args: Vec<String> = p.command.split_off(1);
            if user_args.is_empty() {
                args.extend(self.args.iter().cloned());
            } else {
                args.extend(user_args.iter().cloned());
            }
            p.args = args;
        } else if user_args.is_empty() {
        } else if buildpack_api.user_args_replace_process_args() {
            p.args = user_args.to_vec();
        } else {
            p.args.extend(user_args.iter().cloned());
        }
        p
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn proc(t: &str, cmd: &[&str], args: &[&str], default: bool) -> Process {
        Process {
            r#type: t.into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            direct: true,
            default,
            ..Process::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn aggregation_overrides_sorts_and_tracks_default() {
        // BD-12
        let a = [
            proc("web", &["a"], &[], true),
            proc("worker", &["w"], &[], false),
        ];
        let b = [proc("cli", &["c"], &[], false)];
        let out = aggregate_processes([("A", &a[..]), ("B", &b[..])]);
        let types: Vec<_> = out.processes.iter().map(|p| p.r#type.as_str()).collect();
        assert_eq!(types, vec!["cli", "web", "worker"]);
        assert_eq!(out.default_type.as_deref(), Some("web"));
        assert!(out.processes.iter().all(|p| !p.default));
        assert_eq!(out.processes[1].buildpack_id, "A");
        assert!(out.warnings.is_empty());

        let c = [proc("web", &["b"], &[], false)];
        let out = aggregate_processes([("A", &a[..]), ("C", &c[..])]);
        assert_eq!(out.default_type, None);
        assert_eq!(out.processes[0].buildpack_id, "C");
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].ends_with("not marked as default: web"));

        // `web` is not implicitly the default.
        let w = [proc("web", &["a"], &[], false)];
        assert_eq!(aggregate_processes([("A", &w[..])]).default_type, None);
    }

    #[test]
    fn default_process_type_choice() {
        // EP-14
        let md = BuildMetadata {
            processes: vec![
                proc("web", &["a"], &[], false),
                proc("worker", &["b"], &[], false),
            ],
            buildpack_default_process_type: Some("web".into()),
            ..BuildMetadata::default()
        };
        assert_eq!(
            md.default_process_type(None).unwrap().as_deref(),
            Some("web")
        );
        assert_eq!(
            md.default_process_type(Some("worker")).unwrap().as_deref(),
            Some("worker")
        );
        assert_eq!(
            md.default_process_type(Some("nope")).unwrap_err(),
            "tried to set nope to default but it doesn't exist"
        );
        assert_eq!(
            BuildMetadata::default().default_process_type(None).unwrap(),
            None
        );
    }

    #[test]
    fn eligible_process_by_exec_env() {
        // LN-03
        let mut test_only = proc("web", &["a"], &[], false);
        test_only.exec_env = s(&["test"]);
        let md = BuildMetadata {
            processes: vec![test_only],
            ..BuildMetadata::default()
        };
        assert!(md
            .find_eligible_process("web", PlatformApi::new(0, 15), "production")
            .is_none());
        assert!(md
            .find_eligible_process("web", PlatformApi::new(0, 15), "test")
            .is_some());
        assert!(md
            .find_eligible_process("web", PlatformApi::new(0, 14), "production")
            .is_some());
    }

    #[test]
    fn user_args_rules() {
        // LN-04
        let p15 = PlatformApi::new(0, 15);
        let bp9 = BuildpackApi::new(0, 9);
        let bp8 = BuildpackApi::new(0, 8);
        let multi = proc("web", &["node", "server.js"], &["--port", "80"], false);
        let r = multi.with_user_args(&[], p15, bp9);
        assert_eq!(
            (r.command, r.args),
            (s(&["node"]), s(&["server.js", "--port", "80"]))
        );
        let r = multi.with_user_args(&s(&["--x"]), p15, bp9);
        assert_eq!(r.args, s(&["server.js", "--x"]));

        let single = proc("web", &["node"], &["a"], false);
        assert_eq!(single.with_user_args(&[], p15, bp9).args, s(&["a"]));
        assert_eq!(single.with_user_args(&s(&["b"]), p15, bp9).args, s(&["b"]));
        assert_eq!(
            single.with_user_args(&s(&["b"]), p15, bp8).args,
            s(&["a", "b"])
        );

        // P<0.10: appended, command untouched.
        let r = multi.with_user_args(&s(&["u"]), PlatformApi::new(0, 9), bp9);
        assert_eq!(r.command, s(&["node", "server.js"]));
        assert_eq!(r.args, s(&["--port", "80", "u"]));
    }
}
