//! Group verdicts and build-plan resolution (buildpack spec "Phase #1: Detection"; checklist DS-09,
//! DS-11, BPL-01…BPL-07).
//!
//! Given the modules of one expanded group and their detect outcomes, decide whether the group passes
//! and, if so, find the first trial (one `provides`/`requires` option per module, left to right,
//! depth-first) in which every require has an earlier-or-same provider and every provide is required.
//! Optional modules (and extensions) that break a trial are dropped and the trial retried.

use std::collections::{BTreeMap, HashMap};

use super::log::LogBuf;
use super::model::{
    DetectOutcome, DetectStatus, GroupMember, Kind, PlanEntry, PlanSections, Provider, Require,
};

/// Why a group did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFailure {
    /// Every reason was an ordinary detect failure (exit 100) or an unresolvable plan.
    Failed,
    /// At least one non-optional module errored.
    BuildpackError,
}

/// A passing group: its participating members (in order) and the resolved plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Participating modules, in group order, with `optional` cleared.
    pub group: Vec<GroupMember>,
    /// Plan entries, sorted by dependency name.
    pub plan: Vec<PlanEntry>,
}

/// Decides one group: logs each module's output and verdict, then resolves the plan.
pub fn resolve(
    done: &[GroupMember],
    runs: &HashMap<String, DetectOutcome>,
    log: &mut LogBuf,
) -> Result<Resolved, GroupFailure> {
    let missing = DetectOutcome::error("missing detection result");
    let outcomes: Vec<&DetectOutcome> = done
        .iter()
        .map(|m| runs.get(&m.module.key()).unwrap_or(&missing))
        .collect();

    for (m, run) in done.iter().zip(&outcomes) {
        let loud = !matches!(run.status, DetectStatus::Pass | DetectStatus::Fail);
        let mut emit = |s: String| {
            if loud {
                log.info(s)
            } else {
                log.debug(s)
            }
        };
        if !run.output.is_empty() {
            emit(format!("======== Output: {} ========", m.module));
            emit(String::from_utf8_lossy(&run.output).trim_end().to_string());
        }
        if let DetectStatus::Error(e) = &run.status {
            emit(format!("======== Error: {} ========", m.module));
            emit(e.clone());
        }
    }

    log.debug("======== Results ========");
    let mut detected = true;
    let mut any_buildpack = false;
    let mut buildpack_err = false;
    let mut passed: Vec<(usize, &DetectOutcome)> = Vec::new();
    for (i, (m, run)) in done.iter().zip(&outcomes).enumerate() {
        match &run.status {
            DetectStatus::Pass => {
                log.debug(format!("pass: {}", m.module));
                passed.push((i, run));
                if m.module.kind == Kind::Buildpack {
                    any_buildpack = true;
                }
            }
            DetectStatus::Fail => {
                if m.module.optional {
                    log.debug(format!("skip: {}", m.module));
                } else {
                    log.debug(format!("fail: {}", m.module));
                }
                detected &= m.module.optional;
            }
            DetectStatus::Error(_) => {
                log.info(format!("err:  {}", m.module));
                buildpack_err = true;
                detected &= m.module.optional;
            }
            DetectStatus::ExitCode(code) => {
                log.info(format!("err:  {} ({code})", m.module));
                buildpack_err = true;
                detected &= m.module.optional;
            }
        }
    }
    if !detected {
        return Err(if buildpack_err {
            GroupFailure::BuildpackError
        } else {
            GroupFailure::Failed
        });
    }
    if !any_buildpack {
        log.debug("fail: no viable buildpacks in group");
        return Err(GroupFailure::Failed);
    }

    // One list of options per passing module (BPL-01).
    let owned: Vec<(usize, Vec<PlanSections>)> = passed
        .iter()
        .map(|(i, run)| (*i, run.plan.options()))
        .collect();
    let options: Vec<Vec<TrialOption>> = owned
        .iter()
        .map(|(i, all)| {
            let last = all.len().saturating_sub(1);
            all.iter()
                .enumerate()
                .map(|(n, sections)| TrialOption {
                    member: *i,
                    optional: done[*i].module.optional && n == last,
                    sections,
                })
                .collect()
        })
        .collect();

    let mut tries = 0usize;
    let mut prefix = Vec::new();
    let (deps, trial) = run_trials(&options, &mut prefix, &mut |trial| {
        tries += 1;
        run_trial(tries, trial, done, log)
    })
    .ok_or(GroupFailure::Failed)?;

    if done.len() != trial.len() {
        log.info(format!(
            "{} of {} buildpacks participating",
            trial.len(),
            done.len()
        ));
    }
    let width = trial
        .iter()
        .map(|o| done[o.member].module.id.len())
        .max()
        .unwrap_or(0);
    for o in &trial {
        let m = &done[o.member].module;
        log.info(format!("{:<width$} {}", m.id, m.version));
    }

    let group = trial
        .iter()
        .map(|o| {
            let mut g = done[o.member].clone();
            g.module.optional = false;
            g
        })
        .collect();
    let plan = deps
        .into_values()
        .map(|d| PlanEntry {
            providers: d
                .providers
                .iter()
                .map(|&i| Provider {
                    id: done[i].module.id.clone(),
                    version: done[i].module.version.clone(),
                    extension: done[i].module.kind == Kind::Extension,
                })
                .collect(),
            requires: d.requires,
        })
        .collect();
    Ok(Resolved { group, plan })
}

#[derive(Debug, Clone, Copy)]
struct TrialOption<'a> {
    member: usize,
    optional: bool,
    sections: &'a PlanSections,
}

#[derive(Debug, Default)]
struct DepEntry {
    providers: Vec<usize>,
    requires: Vec<Require>,
    early_requires: Vec<usize>,
    extra_provides: Vec<usize>,
}

type DepMap = BTreeMap<String, DepEntry>;

/// Depth-first over the cartesian product of options (BPL-02); returns the first success.
fn run_trials<'a>(
    options: &[Vec<TrialOption<'a>>],
    prefix: &mut Vec<TrialOption<'a>>,
    f: &mut dyn FnMut(Vec<TrialOption<'a>>) -> Option<(DepMap, Vec<TrialOption<'a>>)>,
) -> Option<(DepMap, Vec<TrialOption<'a>>)> {
    let Some((first, rest)) = options.split_first() else {
        return f(prefix.clone());
    };
    for option in first {
        prefix.push(*option);
        let found = run_trials(rest, prefix, f);
        prefix.pop();
        if found.is_some() {
            return found;
        }
    }
    None
}

fn dep_map(trial: &[TrialOption<'_>]) -> DepMap {
    let mut m = DepMap::new();
    for o in trial {
        for p in &o.sections.provides {
            m.entry(p.name.clone())
                .or_default()
                .extra_provides
                .push(o.member);
        }
        for r in &o.sections.requires {
            let e = m.entry(r.name.clone()).or_default();
            let extra = std::mem::take(&mut e.extra_provides);
            e.providers.extend(extra);
            if e.providers.is_empty() {
                e.early_requires.push(o.member);
            } else {
                e.requires.push(r.clone());
            }
        }
    }
    m
}

/// One trial, iterated to a fixpoint (BPL-03…BPL-06).
fn run_trial<'a>(
    n: usize,
    mut trial: Vec<TrialOption<'a>>,
    done: &[GroupMember],
    log: &mut LogBuf,
) -> Option<(DepMap, Vec<TrialOption<'a>>)> {
    log.debug(format!("Resolving plan... (try #{n})"));
    loop {
        let deps = dep_map(&trial);
        let mut retry = false;
        let mut drop = Vec::new();
        for (name, e) in &deps {
            for &i in &e.early_requires {
                retry = true;
                let optional = trial.iter().any(|o| o.member == i && o.optional);
                if !optional {
                    log.debug(format!("fail: {} requires {name}", done[i].module));
                    return None;
                }
                log.debug(format!("skip: {} requires {name}", done[i].module));
                drop.push(i);
            }
        }
        for (name, e) in &deps {
            for &i in &e.extra_provides {
                retry = true;
                let optional =
                    trial.iter().any(|o| o.member == i && o.optional) || drop.contains(&i);
                if !optional {
                    log.debug(format!("fail: {} provides unused {name}", done[i].module));
                    return None;
                }
                log.debug(format!("skip: {} provides unused {name}", done[i].module));
                drop.push(i);
            }
        }
        trial.retain(|o| !drop.contains(&o.member));
        if !retry {
            if trial.is_empty() {
                log.debug("fail: no viable buildpacks in group");
                return None;
            }
            return Some((deps, trial));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::model::{DetectPlan, ModuleRef};
    use super::*;

    fn member(m: ModuleRef) -> GroupMember {
        GroupMember {
            module: m,
            api: "0.10".into(),
            homepage: None,
        }
    }

    fn req(name: &str) -> Require {
        Require::new(name)
    }

    fn sections(provides: &[&str], requires: &[&str]) -> PlanSections {
        PlanSections {
            provides: provides
                .iter()
                .map(|s| super::super::model::Provide {
                    name: s.to_string(),
                })
                .collect(),
            requires: requires.iter().map(|s| req(s)).collect(),
        }
    }

    fn pass(top: PlanSections, or: Vec<PlanSections>) -> DetectOutcome {
        DetectOutcome {
            status: DetectStatus::Pass,
            plan: DetectPlan {
                provides: top.provides,
                requires: top.requires,
                or,
            },
            output: Vec::new(),
        }
    }

    fn fail() -> DetectOutcome {
        DetectOutcome {
            status: DetectStatus::Fail,
            plan: DetectPlan::default(),
            output: Vec::new(),
        }
    }

    fn run(
        members: &[GroupMember],
        outcomes: Vec<DetectOutcome>,
    ) -> (Result<Resolved, GroupFailure>, LogBuf) {
        let runs = members
            .iter()
            .zip(outcomes)
            .map(|(m, o)| (m.module.key(), o))
            .collect();
        let mut log = LogBuf::default();
        (resolve(members, &runs, &mut log), log)
    }

    fn ids(r: &Resolved) -> Vec<String> {
        r.group.iter().map(|g| g.module.id.clone()).collect()
    }

    #[test]
    fn bpl_03_provider_then_requirer_resolves() {
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1")),
        ];
        let (r, _) = run(
            &ms,
            vec![
                pass(sections(&["node"], &[]), vec![]),
                pass(sections(&[], &["node"]), vec![]),
            ],
        );
        let r = r.unwrap();
        assert_eq!(ids(&r), ["A", "B"]);
        assert_eq!(r.plan.len(), 1);
        assert_eq!(r.plan[0].providers[0].id, "A");
        assert_eq!(r.plan[0].requires, vec![req("node")]);
    }

    #[test]
    fn bpl_04_require_before_provide_fails_group() {
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1")),
        ];
        let (r, log) = run(
            &ms,
            vec![
                pass(sections(&[], &["node"]), vec![]),
                pass(sections(&["node"], &[]), vec![]),
            ],
        );
        assert_eq!(r.unwrap_err(), GroupFailure::Failed);
        assert!(log
            .entries()
            .iter()
            .any(|(_, m)| m == "fail: A@1 requires node"));
    }

    #[test]
    fn bpl_05_unused_provide_fails_but_optional_is_dropped() {
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1").optional()),
        ];
        let (r, log) = run(
            &ms,
            vec![
                pass(sections(&[], &[]), vec![]),
                pass(sections(&["unused"], &[]), vec![]),
            ],
        );
        let r = r.unwrap();
        assert_eq!(ids(&r), ["A"]);
        assert!(log
            .entries()
            .iter()
            .any(|(_, m)| m == "1 of 2 buildpacks participating"));

        let ms = [member(ModuleRef::buildpack("A", "1"))];
        let (r, _) = run(&ms, vec![pass(sections(&["unused"], &[]), vec![])]);
        assert_eq!(r.unwrap_err(), GroupFailure::Failed);
    }

    #[test]
    fn bpl_02_or_alternatives_are_tried_in_order() {
        // A offers "x" first, then "y"; B requires "y": the second trial wins.
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1")),
        ];
        let (r, log) = run(
            &ms,
            vec![
                pass(sections(&["x"], &[]), vec![sections(&["y"], &[])]),
                pass(sections(&[], &["y"]), vec![]),
            ],
        );
        let r = r.unwrap();
        assert_eq!(r.plan.len(), 1);
        assert_eq!(r.plan[0].name(), "y");
        let tries: Vec<_> = log
            .entries()
            .iter()
            .filter(|(_, m)| m.starts_with("Resolving plan"))
            .collect();
        assert_eq!(tries.len(), 2);
    }

    #[test]
    fn bpl_05_extension_provides_are_optional() {
        let ms = [
            member(ModuleRef::extension("E", "1")),
            member(ModuleRef::buildpack("A", "1")),
        ];
        let (r, _) = run(
            &ms,
            vec![
                pass(sections(&["tool"], &[]), vec![]),
                pass(sections(&[], &[]), vec![]),
            ],
        );
        assert_eq!(ids(&r.unwrap()), ["A"]);

        let (r, _) = run(
            &ms,
            vec![
                pass(sections(&["tool"], &[]), vec![]),
                pass(sections(&[], &["tool"]), vec![]),
            ],
        );
        let r = r.unwrap();
        assert_eq!(ids(&r), ["E", "A"]);
        assert!(r.plan[0].providers[0].extension);
    }

    #[test]
    fn ds_11_non_optional_fail_and_errors() {
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1")),
        ];
        let (r, _) = run(&ms, vec![pass(PlanSections::default(), vec![]), fail()]);
        assert_eq!(r.unwrap_err(), GroupFailure::Failed);
        let mut err = fail();
        err.status = DetectStatus::ExitCode(3);
        let (r, log) = run(&ms, vec![pass(PlanSections::default(), vec![]), err]);
        assert_eq!(r.unwrap_err(), GroupFailure::BuildpackError);
        assert!(log.entries().iter().any(|(_, m)| m == "err:  B@1 (3)"));
    }

    #[test]
    fn ds_11_only_extensions_passing_is_a_failure() {
        let ms = [
            member(ModuleRef::extension("E", "1")),
            member(ModuleRef::buildpack("A", "1").optional()),
        ];
        let (r, _) = run(&ms, vec![pass(PlanSections::default(), vec![]), fail()]);
        assert_eq!(r.unwrap_err(), GroupFailure::Failed);
    }

    #[test]
    fn bpl_07_requires_collected_from_all_requirers() {
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1")),
            member(ModuleRef::buildpack("C", "1")),
        ];
        let (r, _) = run(
            &ms,
            vec![
                pass(sections(&["n"], &["n"]), vec![]),
                pass(sections(&["n"], &[]), vec![]),
                pass(sections(&[], &["n"]), vec![]),
            ],
        );
        let r = r.unwrap();
        let e = &r.plan[0];
        assert_eq!(
            e.providers
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert_eq!(e.requires.len(), 2);
    }

    #[test]
    fn bpl_01_optional_module_dropped_only_after_all_alternatives() {
        // Optional B: top-level requires "missing" (unmet), or-alternative requires nothing.
        // The alternative is tried before B is dropped, so B participates.
        let ms = [
            member(ModuleRef::buildpack("A", "1")),
            member(ModuleRef::buildpack("B", "1").optional()),
        ];
        let (r, _) = run(
            &ms,
            vec![
                pass(PlanSections::default(), vec![]),
                pass(sections(&[], &["missing"]), vec![sections(&[], &[])]),
            ],
        );
        assert_eq!(ids(&r.unwrap()), ["A", "B"]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 3] = ["a", "b", "c"];

        fn sections_strategy() -> impl Strategy<Value = PlanSections> {
            (0u8..8, 0u8..8).prop_map(|(p, r)| {
                let pick = |mask: u8| -> Vec<&str> {
                    NAMES
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, n)| *n)
                        .collect()
                };
                sections(&pick(p), &pick(r))
            })
        }

        fn module_strategy() -> impl Strategy<Value = (bool, PlanSections, Vec<PlanSections>)> {
            (
                any::<bool>(),
                sections_strategy(),
                proptest::collection::vec(sections_strategy(), 0..2),
            )
        }

        proptest! {
            // BPL-03..BPL-07: whatever the plans, a resolved group keeps every non-optional module, in
            // order, and every plan entry has providers and requirers that are participating modules.
            #[test]
            fn resolution_invariants(mods in proptest::collection::vec(module_strategy(), 1..5)) {
                let members: Vec<GroupMember> = mods
                    .iter()
                    .enumerate()
                    .map(|(i, (opt, _, _))| {
                        let m = ModuleRef::buildpack(format!("m{i}"), "1");
                        member(if *opt { m.optional() } else { m })
                    })
                    .collect();
                let outcomes = mods
                    .iter()
                    .map(|(_, top, or)| pass(top.clone(), or.clone()))
                    .collect();
                let (r, _) = run(&members, outcomes);
                match r {
                    Ok(r) => {
                        let ids = ids(&r);
                        let mut last = None;
                        for id in &ids {
                            let pos = members.iter().position(|m| &m.module.id == id).unwrap();
                            prop_assert!(last.is_none_or(|l| pos > l));
                            last = Some(pos);
                        }
                        for m in &members {
                            if !m.module.optional {
                                prop_assert!(ids.contains(&m.module.id));
                            }
                        }
                        for e in &r.plan {
                            prop_assert!(!e.providers.is_empty() && !e.requires.is_empty());
                            for p in &e.providers {
                                prop_assert!(ids.contains(&p.id));
                            }
                        }
                        prop_assert!(r.group.iter().all(|g| !g.module.optional));
                    }
                    Err(f) => prop_assert_eq!(f, GroupFailure::Failed),
                }
            }
        }
    }
}
