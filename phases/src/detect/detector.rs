//! Order expansion and group detection (buildpack spec "Order Resolution"; checklist DS-01…DS-14).
//!
//! Groups are tried in order; composite buildpacks are expanded depth-first with the rest of the
//! enclosing group appended; ids already in the group are skipped; optional composites and the
//! extension order fall back to the enclosing group without them. The detects of one group run in
//! parallel and are memoised across groups; their output is logged in group order.

use std::collections::HashMap;

use cnb_spec::{BuildpackApi, PlatformApi};

use super::log::LogBuf;
use super::model::{DetectOutcome, GroupMember, Kind, Order, OrderElement, PlanEntry};
use super::resolve::{resolve, GroupFailure};
use super::store::{Descriptor, DescriptorStore, StoreError};
use super::target::RunTarget;

/// Runs one module's `bin/detect` (the process seam; the real one is [`super::exec::ProcessRunner`]).
pub trait DetectRunner: Sync {
    /// Runs detection for `descriptor` and reports its outcome. Never panics; failures are outcomes.
    fn detect(&self, descriptor: &Descriptor) -> DetectOutcome;
}

/// The detector: order in, group and plan out.
pub struct Detector<'a> {
    /// Where descriptors come from.
    pub store: &'a dyn DescriptorStore,
    /// How `bin/detect` is run.
    pub runner: &'a dyn DetectRunner,
    /// The platform's API (gates target checks and exec-env filtering).
    pub platform_api: PlatformApi,
    /// The run image's target (already completed from os-release), for the target check.
    pub run_target: RunTarget,
    /// `CNB_EXEC_ENV` (empty disables the filter).
    pub exec_env: String,
}

/// A passing group and its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// Participating buildpacks, in order (`[[group]]`).
    pub buildpacks: Vec<GroupMember>,
    /// Participating extensions, in order (`[[group-extensions]]`).
    pub extensions: Vec<GroupMember>,
    /// The resolved plan.
    pub plan: Vec<PlanEntry>,
}

/// Why detection did not produce a group.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// No group passed and nothing errored (exit 20).
    #[error("no buildpacks participating")]
    NoGroupPassed,
    /// No group passed and at least one module errored (exit 21).
    #[error("buildpack(s) failed with err")]
    BuildpackErrored,
    /// A descriptor could not be found, read or accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Flow {
    Fail(GroupFailure),
    Fatal(StoreError),
}

struct State {
    runs: HashMap<String, DetectOutcome>,
    log: LogBuf,
}

type GroupResult = Result<(Vec<GroupMember>, Vec<PlanEntry>), Flow>;

impl Detector<'_> {
    /// Detects the first passing group of `order` and resolves its plan. Buffered log entries are
    /// emitted before returning (debug entries at info when detection failed, checklist DT-09).
    pub fn detect(&self, order: &Order) -> Result<Detected, DetectError> {
        let (result, mut log) = self.detect_with_log(order);
        log.flush(result.is_err());
        result
    }

    /// Like [`Detector::detect`], but returns the log buffer instead of emitting it.
    pub fn detect_with_log(&self, order: &Order) -> (Result<Detected, DetectError>, LogBuf) {
        let mut st = State {
            runs: HashMap::new(),
            log: LogBuf::default(),
        };
        let r = self.detect_order(&mut st, order, &[], &[], false);
        let result = match r {
            Ok((members, plan)) => {
                let (mut buildpacks, mut extensions) = (Vec::new(), Vec::new());
                for m in members {
                    match m.module.kind {
                        Kind::Buildpack => buildpacks.push(m),
                        Kind::Extension => extensions.push(m),
                    }
                }
                for m in buildpacks.iter_mut().chain(extensions.iter_mut()) {
                    m.module.optional = false;
                }
                Ok(Detected {
                    buildpacks,
                    extensions,
                    plan,
                })
            }
            Err(Flow::Fail(GroupFailure::Failed)) => Err(DetectError::NoGroupPassed),
            Err(Flow::Fail(GroupFailure::BuildpackError)) => Err(DetectError::BuildpackErrored),
            Err(Flow::Fatal(e)) => Err(DetectError::Store(e)),
        };
        (result, st.log)
    }

    fn detect_order(
        &self,
        st: &mut State,
        order: &Order,
        done: &[GroupMember],
        next: &[OrderElement],
        optional: bool,
    ) -> GroupResult {
        let mut buildpack_err = false;
        for group in order {
            let mut g = group.clone();
            g.extend_from_slice(next);
            match self.detect_group(st, &g, done.to_vec()) {
                Err(Flow::Fail(f)) => {
                    buildpack_err |= f == GroupFailure::BuildpackError;
                }
                other => return other,
            }
        }
        if optional {
            return self.detect_group(st, next, done.to_vec());
        }
        Err(Flow::Fail(if buildpack_err {
            GroupFailure::BuildpackError
        } else {
            GroupFailure::Failed
        }))
    }

    fn detect_group(
        &self,
        st: &mut State,
        group: &[OrderElement],
        mut done: Vec<GroupMember>,
    ) -> GroupResult {
        let mut pending: Vec<(String, Descriptor)> = Vec::new();
        for (i, el) in group.iter().enumerate() {
            let m = match el {
                OrderElement::Extensions(order) => {
                    self.run_pending(st, pending);
                    return self.detect_order(st, order, &done, &group[i + 1..], true);
                }
                OrderElement::Module(m) => m,
            };
            // DS-06: first occurrence of an id (per kind) wins.
            if done
                .iter()
                .any(|d| d.module.kind == m.kind && d.module.id == m.id)
            {
                continue;
            }
            let d = self
                .store
                .lookup(m.kind, &m.id, &m.version)
                .map_err(Flow::Fatal)?;
            if m.kind == Kind::Buildpack && !d.order.is_empty() {
                // DS-03/DS-04: expand the composite with the rest of this group appended.
                self.run_pending(st, pending);
                return self.detect_order(st, &d.order, &done, &group[i + 1..], m.optional);
            }
            let member = GroupMember {
                module: m.clone(),
                api: d.api.to_string(),
                homepage: d.homepage.clone(),
            };
            // DS-12: target compatibility.
            if self.platform_api.at_least(0, 12)
                && !d.targets.is_empty()
                && !d.targets.iter().any(|t| self.run_target.satisfies(t))
                && !m.optional
            {
                let run = serde_json::to_string(&self.run_target).unwrap_or_default();
                let bp = serde_json::to_string(&d.targets).unwrap_or_default();
                st.runs.insert(
                    m.key(),
                    DetectOutcome::error(format!(
                        "unable to satisfy target os/arch constraints; run image: {run}, buildpack: {bp}"
                    )),
                );
                done.push(member);
                continue;
            }
            // DS-13: execution-environment filter.
            if self.platform_api.at_least(0, 15)
                && !self.exec_env.is_empty()
                && d.api >= BuildpackApi::new(0, 12)
                && !d.exec_env.is_empty()
                && !d.exec_env.iter().any(|e| e == "*" || *e == self.exec_env)
            {
                st.log.debug(format!(
                    "Skipping {m} due to execution environment mismatch; current: {}, buildpack supports: {:?}",
                    self.exec_env, d.exec_env
                ));
                continue;
            }
            done.push(member);
            let key = m.key();
            if !st.runs.contains_key(&key) && !pending.iter().any(|(k, _)| *k == key) {
                pending.push((key, d));
            }
        }
        self.run_pending(st, pending);
        resolve(&done, &st.runs, &mut st.log)
            .map(|r| (r.group, r.plan))
            .map_err(Flow::Fail)
    }

    /// Runs the detects not yet memoised, in parallel (DS-07).
    fn run_pending(&self, st: &mut State, pending: Vec<(String, Descriptor)>) {
        if pending.is_empty() {
            return;
        }
        let runner = self.runner;
        let results: Vec<(String, DetectOutcome)> = std::thread::scope(|s| {
            let handles: Vec<_> = pending
                .iter()
                .map(|(k, d)| (k.clone(), s.spawn(move || runner.detect(d))))
                .collect();
            handles
                .into_iter()
                .map(|(k, h)| {
                    let o = h.join().unwrap_or_else(|_| {
                        DetectOutcome::error("detect runner thread panicked".to_string())
                    });
                    (k, o)
                })
                .collect()
        });
        st.runs.extend(results);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::super::model::{prepend_extensions, DetectPlan, DetectStatus, ModuleRef, Require};
    use super::super::store::Target;
    use super::*;

    /// A fake store: composite orders by id, everything else a component buildpack/extension.
    struct FakeStore {
        composites: HashMap<String, Order>,
        targets: HashMap<String, Vec<Target>>,
    }

    impl DescriptorStore for FakeStore {
        fn lookup(&self, kind: Kind, id: &str, version: &str) -> Result<Descriptor, StoreError> {
            if id == "missing" {
                return Err(StoreError::Read {
                    kind,
                    id: id.into(),
                    version: version.into(),
                    path: PathBuf::from("/nowhere"),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            Ok(Descriptor {
                kind,
                id: id.into(),
                version: version.into(),
                api: BuildpackApi::new(0, 10),
                homepage: None,
                clear_env: false,
                order: self.composites.get(id).cloned().unwrap_or_default(),
                targets: self.targets.get(id).cloned().unwrap_or_default(),
                exec_env: vec![],
                sbom_formats: vec![],
                root: PathBuf::new(),
                path: PathBuf::new(),
            })
        }
    }

    /// A fake runner: outcome by `id@version` (default: pass with empty plan); records calls.
    struct FakeRunner {
        outcomes: HashMap<String, DetectOutcome>,
        calls: Mutex<Vec<String>>,
    }

    impl DetectRunner for FakeRunner {
        fn detect(&self, d: &Descriptor) -> DetectOutcome {
            let k = format!("{}@{}", d.id, d.version);
            self.calls.lock().unwrap().push(k.clone());
            self.outcomes.get(&k).cloned().unwrap_or(DetectOutcome {
                status: DetectStatus::Pass,
                plan: DetectPlan::default(),
                output: Vec::new(),
            })
        }
    }

    fn fail() -> DetectOutcome {
        DetectOutcome {
            status: DetectStatus::Fail,
            plan: DetectPlan::default(),
            output: Vec::new(),
        }
    }

    fn bp(id: &str, v: &str) -> OrderElement {
        OrderElement::Module(ModuleRef::buildpack(id, v))
    }
    fn opt(id: &str, v: &str) -> OrderElement {
        OrderElement::Module(ModuleRef::buildpack(id, v).optional())
    }

    fn detect(
        store: &FakeStore,
        runner: &FakeRunner,
        order: &Order,
    ) -> (Result<Detected, DetectError>, LogBuf) {
        let d = Detector {
            store,
            runner,
            platform_api: PlatformApi::new(0, 15),
            run_target: RunTarget {
                os: "linux".into(),
                arch: "amd64".into(),
                ..RunTarget::default()
            },
            exec_env: "production".into(),
        };
        d.detect_with_log(order)
    }

    fn ids(v: &[GroupMember]) -> Vec<String> {
        v.iter().map(|m| m.module.to_string()).collect()
    }

    fn runner(outcomes: Vec<(&str, DetectOutcome)>) -> FakeRunner {
        FakeRunner {
            outcomes: outcomes
                .into_iter()
                .map(|(k, o)| (k.to_string(), o))
                .collect(),
            calls: Mutex::new(vec![]),
        }
    }

    fn store(composites: Vec<(&str, Order)>) -> FakeStore {
        FakeStore {
            composites: composites
                .into_iter()
                .map(|(k, o)| (k.to_string(), o))
                .collect(),
            targets: HashMap::new(),
        }
    }

    #[test]
    fn ds_02_first_passing_group_wins_and_later_groups_are_not_run() {
        let s = store(vec![]);
        let r = runner(vec![("A@1", fail())]);
        let order = vec![vec![bp("A", "1")], vec![bp("B", "1")], vec![bp("C", "1")]];
        let (res, _) = detect(&s, &r, &order);
        assert_eq!(ids(&res.unwrap().buildpacks), ["B@1"]);
        let calls = r.calls.lock().unwrap().clone();
        assert!(!calls.contains(&"C@1".to_string()));
    }

    #[test]
    fn ds_03_composite_expands_with_rest_of_group_appended() {
        // order: [C (composite: [[X], [Y]]), Z]; X fails so [Y, Z] passes.
        let s = store(vec![("C", vec![vec![bp("X", "1")], vec![bp("Y", "1")]])]);
        let r = runner(vec![("X@1", fail())]);
        let (res, _) = detect(&s, &r, &vec![vec![bp("C", "1"), bp("Z", "1")]]);
        assert_eq!(ids(&res.unwrap().buildpacks), ["Y@1", "Z@1"]);
    }

    #[test]
    fn ds_04_optional_composite_falls_back_to_group_without_it() {
        let s = store(vec![("C", vec![vec![bp("X", "1")], vec![bp("Y", "1")]])]);
        let r = runner(vec![("X@1", fail()), ("Y@1", fail())]);
        let order = vec![vec![
            OrderElement::Module(ModuleRef::buildpack("C", "1").optional()),
            bp("Z", "1"),
        ]];
        let (res, _) = detect(&s, &r, &order);
        assert_eq!(ids(&res.unwrap().buildpacks), ["Z@1"]);

        // Non-optional: the whole order fails.
        let order = vec![vec![bp("C", "1"), bp("Z", "1")]];
        let (res, _) = detect(&s, &r, &order);
        assert!(matches!(res, Err(DetectError::NoGroupPassed)));
    }

    #[test]
    fn ds_05_optional_component_failing_is_skipped() {
        let s = store(vec![]);
        let r = runner(vec![("B@1", fail())]);
        let (res, log) = detect(&s, &r, &vec![vec![bp("A", "1"), opt("B", "1")]]);
        assert_eq!(ids(&res.unwrap().buildpacks), ["A@1"]);
        assert!(log.entries().iter().any(|(_, m)| m == "skip: B@1"));
    }

    #[test]
    fn ds_06_duplicate_ids_first_occurrence_wins() {
        // E=[A v1, G], G=[A v2, B v2] => [A v1, B v2]
        let s = store(vec![("G", vec![vec![bp("A", "2"), bp("B", "2")]])]);
        let r = runner(vec![]);
        let (res, _) = detect(&s, &r, &vec![vec![bp("A", "1"), bp("G", "1")]]);
        assert_eq!(ids(&res.unwrap().buildpacks), ["A@1", "B@2"]);
    }

    #[test]
    fn ds_07_detect_results_are_memoised_across_groups() {
        let s = store(vec![]);
        let r = runner(vec![("B@1", fail())]);
        let order = vec![vec![bp("A", "1"), bp("B", "1")], vec![bp("A", "1")]];
        let (res, _) = detect(&s, &r, &order);
        assert_eq!(ids(&res.unwrap().buildpacks), ["A@1"]);
        let calls = r.calls.lock().unwrap().clone();
        assert_eq!(calls.iter().filter(|c| *c == "A@1").count(), 1);
    }

    #[test]
    fn ds_01_extensions_prefix_every_group_and_are_optional() {
        let s = store(vec![]);
        let r = runner(vec![("E2@1", fail())]);
        let order = prepend_extensions(
            vec![vec![ModuleRef::buildpack("A", "1")]],
            vec![vec![
                ModuleRef::buildpack("E1", "1"),
                ModuleRef::buildpack("E2", "1"),
            ]],
        );
        let (res, _) = detect(&s, &r, &order);
        let det = res.unwrap();
        assert_eq!(ids(&det.extensions), ["E1@1"]);
        assert_eq!(ids(&det.buildpacks), ["A@1"]);
        assert!(!det.extensions[0].module.optional);
    }

    #[test]
    fn dt_08_error_codes_distinguish_failure_and_error() {
        let s = store(vec![]);
        let mut err = fail();
        err.status = DetectStatus::ExitCode(1);
        let r = runner(vec![("A@1", err), ("B@1", fail())]);
        let (res, _) = detect(&s, &r, &vec![vec![bp("A", "1")], vec![bp("B", "1")]]);
        assert!(matches!(res, Err(DetectError::BuildpackErrored)));
        let (res, _) = detect(&s, &r, &vec![vec![bp("B", "1")]]);
        assert!(matches!(res, Err(DetectError::NoGroupPassed)));
        let (res, _) = detect(&s, &r, &vec![vec![bp("missing", "1")]]);
        assert!(matches!(res, Err(DetectError::Store(_))));
    }

    #[test]
    fn ds_12_target_mismatch_is_an_error_unless_optional() {
        let mut s = store(vec![]);
        s.targets.insert(
            "A".into(),
            vec![Target {
                os: "linux".into(),
                arch: "arm64".into(),
                ..Target::default()
            }],
        );
        let r = runner(vec![]);
        let (res, log) = detect(&s, &r, &vec![vec![bp("A", "1")]]);
        assert!(matches!(res, Err(DetectError::BuildpackErrored)));
        assert!(log
            .entries()
            .iter()
            .any(|(_, m)| m.contains("unable to satisfy target os/arch constraints")));
        assert!(r.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn plan_flows_from_detect_outputs() {
        let s = store(vec![]);
        let provide = DetectOutcome {
            status: DetectStatus::Pass,
            plan: DetectPlan {
                provides: vec![super::super::model::Provide { name: "x".into() }],
                ..DetectPlan::default()
            },
            output: b"hello\n".to_vec(),
        };
        let require = DetectOutcome {
            status: DetectStatus::Pass,
            plan: DetectPlan {
                requires: vec![Require::new("x")],
                ..DetectPlan::default()
            },
            output: vec![],
        };
        let r = runner(vec![("A@1", provide), ("B@1", require)]);
        let (res, _) = detect(&s, &r, &vec![vec![bp("A", "1"), bp("B", "1")]]);
        let det = res.unwrap();
        assert_eq!(det.plan.len(), 1);
        assert_eq!(det.plan[0].providers[0].id, "A");
    }
}
