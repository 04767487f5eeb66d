//! The creator: all phases in one process (platform spec "creator"; checklist §9).
//!
//! It runs analyze → detect → restore → extend/build → export on one set of resolved inputs, writing the
//! same intermediate files the separate phases write (`analyzed.toml`, `group.toml`, `plan.toml`,
//! `<layers>/config/metadata.toml`, `report.toml`), so a failed build can be inspected. Like the
//! reference it starts as any user, hands the volumes to the build user and drops privileges once, before
//! any buildpack runs. It prints the familiar `===> ANALYZING` … `===> EXPORTING` sections and a timing
//! summary.

use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::cli::{ExtendKind, Inputs, Phase};
use crate::Failure;

pub mod build_image;
mod export_root;
pub mod sandboxed;

/// The steps the creator runs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `analyzer`.
    Analyze,
    /// `detector` (with generation when extensions pass).
    Detect,
    /// `restorer`.
    Restore,
    /// `extender -kind=build`: applies `build.Dockerfile`s to the build image.
    ExtendBuild,
    /// `builder`.
    Build,
    /// `extender -kind=run`.
    ExtendRun,
    /// `exporter`.
    Export,
}

impl Step {
    /// The section header the reference prints.
    pub fn header(self) -> &'static str {
        match self {
            Step::Analyze => "ANALYZING",
            Step::Detect => "DETECTING",
            Step::Restore => "RESTORING",
            Step::ExtendBuild => "EXTENDING (BUILD)",
            Step::Build => "BUILDING",
            Step::ExtendRun => "EXTENDING (RUN)",
            Step::Export => "EXPORTING",
        }
    }
}

/// Which Dockerfiles the detector's generation step produced under `<generated>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// At least one `build.Dockerfile`.
    pub build: bool,
    /// At least one `run.Dockerfile`.
    pub run: bool,
}

impl Generated {
    /// Which of `extension_ids` (the group's extensions) have a build or run Dockerfile under
    /// `generated`, at the path the extender reads (flat layout for Platform API ≥ 0.13).
    pub fn find(generated: &Path, extension_ids: &[String], flat: bool) -> Self {
        let has = |kind| {
            extension_ids.iter().any(|id| {
                crate::extend::inputs::dockerfile_path(generated, id, kind, flat).is_file()
            })
        };
        Generated {
            build: has(crate::extend::Kind::Build),
            run: has(crate::extend::Kind::Run),
        }
    }

    /// What generation produced for the group at `inputs.group_path` (none when it has no extensions).
    pub fn of(inputs: &Inputs) -> Self {
        let ids: Vec<String> = cnb_spec::platform::Group::read(&inputs.group_path)
            .map(|g| g.group_extensions.into_iter().map(|e| e.id).collect())
            .unwrap_or_default();
        Self::find(
            &inputs.generated_dir,
            &ids,
            inputs.platform_api.generated_flat_layout(),
        )
    }
}

/// The steps to run after detection, given what generation produced and whether restore is skipped.
pub fn plan_after_detect(generated: Generated, skip_restore: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if !skip_restore {
        steps.push(Step::Restore);
    }
    if generated.build {
        steps.push(Step::ExtendBuild);
    }
    steps.push(Step::Build);
    if generated.run {
        steps.push(Step::ExtendRun);
    }
    steps.push(Step::Export);
    steps
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    if crate::privilege::is_root() {
        pin_credentials(inputs);
    }
    if let Some(name) = build_image_flag(inputs) {
        return sandboxed::run(inputs, &name);
    }
    if inputs.use_daemon {
        // As root: a root-owned socket is connected now and that connection kept (priv.DockerClient).
        crate::image::daemon::DaemonStore::connect()
            .map_err(|e| Failure::new(cnb_spec::exit::FAILED, "initialize docker client", &e))?;
    }
    drop_privileges(inputs)?;
    pipeline(inputs, &mut Place::Host)
}

/// `-build-image`, only when given as a flag: the reference creator has no such input, so a
/// `CNB_BUILD_IMAGE` that a platform sets for its restorer must not change what the creator does.
fn build_image_flag(inputs: &Inputs) -> Option<String> {
    let given = std::env::args().skip(1).any(|a| {
        let a = a.trim_start_matches('-');
        a == "build-image" || a.starts_with("build-image=")
    });
    inputs.build_image.clone().filter(|_| given)
}

/// Where detect and build run.
pub enum Place<'a> {
    /// On this machine, as the build user (buildpacks use the host's tools).
    Host,
    /// Inside the build image's root filesystem (`-build-image`).
    Image(&'a mut sandboxed::BuildRoot),
}

/// Runs the steps and prints the timing summary.
pub(crate) fn pipeline(inputs: &Inputs, place: &mut Place<'_>) -> Result<(), Failure> {
    let mut timings: Vec<(Step, Duration)> = Vec::new();
    let result = run_steps(inputs, place, &mut timings);
    print_summary(&timings, result.is_ok());
    result
}

/// Hands the volumes to the build user and drops to it once (G-19), so every phase, and every
/// buildpack, runs unprivileged. `HOME`/`USER` come from `/etc/passwd` when the user is listed there.
fn drop_privileges(inputs: &Inputs) -> Result<(), Failure> {
    let (uid, gid) = (inputs.uid, inputs.gid);
    let code = cnb_spec::exit::FAILED;
    crate::privilege::reach::check_reachable(Phase::Creator, inputs)?;
    let volumes = crate::privilege::volumes_for(Phase::Creator, inputs);
    crate::privilege::chown_volumes(uid, gid, &volumes)
        .map_err(|e| Failure::new(code, "chown volumes", &e))?;
    crate::privilege::drop_to(uid, gid)
        .map_err(|e| Failure::new(code, format!("exec as user {uid}:{gid}"), &e))?;
    if let Err(e) = crate::privilege::set_environment_for_user(uid) {
        warn!("keeping HOME and USER: {e}");
    }
    Ok(())
}

/// Reads registry credentials while still privileged (G-17): a docker `config.json` or credential helper
/// may be readable by root only. The resolved credentials of every registry the build will touch are
/// added to the in-memory `CNB_REGISTRY_AUTH` ([`crate::privilege::secrets`]; entries the platform
/// already set win), which the phases read after the drop — never to the process environment, where a
/// buildpack of the same uid could read them through `/proc`. `DOCKER_CONFIG` is then unset. Buildpacks'
/// environment is built from an allow-list.
fn pin_credentials(inputs: &Inputs) {
    use crate::image::registry::{ImageRef, Keychain};

    let mut names: Vec<String> = inputs.output_images.clone();
    names.extend(inputs.additional_tags.iter().cloned());
    names.extend(inputs.previous_image.iter().cloned());
    names.extend(inputs.run_image.iter().cloned());
    names.extend(inputs.cache_image.iter().cloned());
    names.extend(
        inputs
            .build_image
            .iter()
            .filter(|n| !build_image::is_path(n))
            .cloned(),
    );
    if let Ok(c) = crate::analyze::run_image_candidates(inputs) {
        names.push(c.image);
        names.extend(c.mirrors);
    }
    let refs: Vec<ImageRef> = names
        .iter()
        .filter(|n| !n.is_empty())
        .filter_map(|n| ImageRef::parse(n).ok())
        .collect();
    if refs.is_empty() {
        return;
    }
    let keychain = match Keychain::from_env() {
        Ok(k) => k,
        Err(e) => {
            warn!("reading registry credentials: {e}");
            return;
        }
    };
    let mut auth: serde_json::Map<String, serde_json::Value> =
        crate::privilege::secrets::registry_auth()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
    let before = auth.len();
    for r in &refs {
        let registry = r.registry().to_string();
        if auth.contains_key(&registry) {
            continue;
        }
        let header = match keychain.resolve(&registry).map(|c| c.to_header()) {
            Ok(Some(header)) => header,
            Ok(None) => continue,
            Err(e) => {
                warn!("reading credentials for {registry}: {e}");
                continue;
            }
        };
        auth.insert(registry, serde_json::Value::String(header));
    }
    if auth.len() > before {
        crate::privilege::secrets::set_registry_auth(serde_json::Value::Object(auth).to_string());
    }
    // The phases must not try to re-read a config the build user cannot open: what it grants for the
    // registries of this build is pinned above.
    std::env::remove_var("DOCKER_CONFIG");
}

fn run_steps(
    inputs: &Inputs,
    place: &mut Place<'_>,
    timings: &mut Vec<(Step, Duration)>,
) -> Result<(), Failure> {
    step(Step::Analyze, timings, || crate::analyze::run(inputs))?;
    step(Step::Detect, timings, || match place {
        Place::Host => crate::detect::run(inputs),
        Place::Image(b) => b.run_phase(Phase::Detector, inputs),
    })?;
    let generated = Generated::of(inputs);
    if (generated.build || generated.run)
        && matches!(place, Place::Host)
        && !host_extension_root_given()
    {
        let which = match (generated.build, generated.run) {
            (true, true) => "build.Dockerfiles and run.Dockerfiles",
            (true, false) => "build.Dockerfiles",
            _ => "run.Dockerfiles",
        };
        return Err(Failure::msg(
            cnb_spec::exit::EXTEND_ERROR,
            "extend",
            format!(
                "the group's image extensions generated {which}; without a build image the creator \
                 would apply them to this machine's root filesystem: pass -build-image <OCI layout path \
                 or image reference> to detect, extend and build inside the build image"
            ),
        ));
    }
    // CR-03: from Platform 0.10 -skip-restore still runs the restorer (it then restores store.toml only).
    let skip_restore = inputs.skip_restore && !inputs.platform_api.skip_restore_restores_store();
    for s in plan_after_detect(generated, skip_restore) {
        step(s, timings, || match (s, &mut *place) {
            // The creator prepares the build image itself; the restorer's -build-image pull (for a
            // separate extender) is not wanted.
            (Step::Restore, _) => crate::restore::run(&Inputs {
                build_image: None,
                ..inputs.clone()
            }),
            (Step::ExtendBuild, Place::Host) => {
                crate::extend::run(&with_kind(inputs, ExtendKind::Build))
            }
            (Step::ExtendBuild, Place::Image(b)) => b.extend_build(inputs),
            // The host extender builds right after extending (as `extender -kind=build` does).
            (Step::Build, Place::Host) if generated.build => Ok(()),
            (Step::Build, Place::Host) => crate::build::run(inputs),
            (Step::Build, Place::Image(b)) => b.run_phase(Phase::Builder, inputs),
            (Step::ExtendRun, Place::Host) => {
                crate::extend::run(&with_kind(inputs, ExtendKind::Run))
            }
            (Step::ExtendRun, Place::Image(b)) => b.extend_run(inputs),
            (Step::Export, Place::Host) => crate::export::run(inputs),
            (Step::Export, Place::Image(b)) => b.export(inputs),
            (Step::Analyze | Step::Detect, _) => Ok(()),
        })?;
    }
    Ok(())
}

/// `CNB_EXTENDER_ROOT` names an explicit root for the extender (tests, local use): then the host
/// creator may extend that tree instead of `/`.
fn host_extension_root_given() -> bool {
    std::env::var_os("CNB_EXTENDER_ROOT").is_some_and(|v| !v.is_empty() && v != "/")
}

fn with_kind(inputs: &Inputs, kind: ExtendKind) -> Inputs {
    let mut i = inputs.clone();
    i.extend_kind = kind;
    i
}

fn step(
    s: Step,
    timings: &mut Vec<(Step, Duration)>,
    f: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    info!("===> {}", s.header());
    let start = Instant::now();
    let r = f();
    timings.push((s, start.elapsed()));
    r
}

fn print_summary(timings: &[(Step, Duration)], ok: bool) {
    if timings.is_empty() {
        return;
    }
    let total: Duration = timings.iter().map(|(_, d)| *d).sum();
    let parts: Vec<String> = timings
        .iter()
        .map(|(s, d)| format!("{} {:.2}s", s.header().to_lowercase(), d.as_secs_f64()))
        .collect();
    info!(
        "Timing{}: {} (total {:.2}s)",
        if ok { "" } else { " (failed)" },
        parts.join(", "),
        total.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_both_generated_layouts() {
        let d = tempfile::tempdir().unwrap();
        let ids = ["samples/curl".to_string(), "samples/x".to_string()];
        assert_eq!(
            Generated::find(&d.path().join("missing"), &ids, true),
            Generated::default()
        );
        // Platform API >= 0.13: <generated>/<escaped id>/run.Dockerfile
        std::fs::create_dir_all(d.path().join("samples_curl")).unwrap();
        std::fs::write(d.path().join("samples_curl/run.Dockerfile"), "FROM x\n").unwrap();
        assert_eq!(
            Generated::find(d.path(), &ids, true),
            Generated {
                build: false,
                run: true
            }
        );
        // Platform API < 0.13: <generated>/build/<escaped id>/Dockerfile
        std::fs::create_dir_all(d.path().join("build/samples_x")).unwrap();
        std::fs::write(d.path().join("build/samples_x/Dockerfile"), "FROM x\n").unwrap();
        assert_eq!(
            Generated::find(d.path(), &ids, false),
            Generated {
                build: true,
                run: false
            }
        );
        // A Dockerfile of an extension that is not in the group does not count.
        assert_eq!(
            Generated::find(d.path(), &["other/ext".to_string()], true),
            Generated::default()
        );
    }

    #[test]
    fn step_plan() {
        use Step::*;
        assert_eq!(
            plan_after_detect(Generated::default(), false),
            vec![Restore, Build, Export]
        );
        assert_eq!(
            plan_after_detect(
                Generated {
                    build: true,
                    run: true
                },
                true
            ),
            vec![ExtendBuild, Build, ExtendRun, Export]
        );
    }
}
