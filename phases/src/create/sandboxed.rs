//! `creator -build-image`: detect and build run **inside the build image's root filesystem** (issue 8
//! item 2), so a build does not depend on what the host has installed.
//!
//! The whole pipeline runs in one worker forked into a user + mount namespace
//! ([`sandbox::in_user_namespace`]: identity id map as root, the caller's subordinate ranges rootless).
//! There the worker
//! 1. opens the build image ([`super::build_image`]) and unpacks it once per manifest digest into a cache;
//! 2. mounts an overlay of that tree (upper dir in a scratch dir), so the cache stays clean (a fresh
//!    private unpack when overlayfs is unavailable);
//! 3. bind-mounts our lifecycle binaries at `/cnb/lifecycle`, the buildpacks at `/cnb/buildpacks`, the
//!    extensions at `/cnb/extensions`, `order.toml`/`run.toml`/`system.toml` under `/cnb`, `<layers>` at
//!    `/layers`, the app at `/workspace` and the platform dir at `/platform`;
//! 4. hands the volumes to the build image's `CNB_USER_ID`/`CNB_GROUP_ID` and switches its effective ids
//!    to them: analyze and restore run in this process as that user, exactly as without a build image,
//!    and export runs as that user chrooted in the build root (`export_root`), so the image holds the
//!    paths the buildpacks saw;
//! 5. runs `/cnb/lifecycle/detector` and `/cnb/lifecycle/builder` through [`sandbox::run_step`] (mount +
//!    pid namespaces, chroot into the overlay, fully dropped to the build user) with the build image's
//!    config `Env`; with `build.Dockerfile`s the extender library first applies them to the overlay
//!    (never to the cached tree) and the extended `Env` is the builder's.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{Gid, Uid};
use tracing::{info, warn};

use super::build_image::{self, BuildImage, Source};
use crate::cli::{table, Inputs, LogLevel, Phase};
use crate::extend::sandbox::{self, IdMapping, SandboxError, StepSpec};
use crate::Failure;

const SEP: char = '\u{1f}';

pub(super) fn encode(f: &Failure) -> String {
    format!("{}{SEP}{}{SEP}{}", f.code, f.action, f.cause)
}

pub(super) fn decode(msg: &str) -> Failure {
    let mut it = msg.splitn(3, SEP);
    match (it.next(), it.next(), it.next()) {
        (Some(code), Some(action), Some(cause)) => match code.parse::<u8>() {
            Ok(code) => Failure::msg(code, action, cause),
            Err(_) => Failure::msg(cnb_spec::exit::FAILED, "run in the build image", msg),
        },
        _ => Failure::msg(
            cnb_spec::exit::FAILED,
            "run in the build image",
            msg.to_string(),
        ),
    }
}

/// The directory holding our own `detector` and `builder` (the creator's own directory, as
/// `/cnb/lifecycle` in a builder image).
fn lifecycle_dir() -> Result<PathBuf, Failure> {
    let fail = |m: String| Failure::msg(cnb_spec::exit::FAILED, "find the lifecycle binaries", m);
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| fail(format!("{} has no parent directory", exe.display())))?;
    for b in ["detector", "builder"] {
        if !dir.join(b).is_file() {
            return Err(fail(format!(
                "{} is missing: -build-image runs the lifecycle's own detector and builder inside the build image",
                dir.join(b).display()
            )));
        }
    }
    Ok(dir)
}

/// Runs the creator's pipeline with detect and build inside build image `name`.
pub fn run(inputs: &Inputs, name: &str) -> Result<(), Failure> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let source = build_image::source(inputs, name, &cwd)?;
    let lifecycle = lifecycle_dir()?;
    let mapping = IdMapping::detect().map_err(|e| {
        Failure::new(
            cnb_spec::exit::FAILED,
            "set up a user namespace for the build image",
            &e,
        )
    })?;
    let cache = build_image::cache_root();
    let r = sandbox::in_user_namespace(&mapping, || {
        worker(inputs, name, &source, &lifecycle, &cache).map_err(|f| encode(&f))
    });
    match r {
        Ok(()) => Ok(()),
        Err(SandboxError::Worker(msg)) => Err(decode(&msg)),
        Err(e) => Err(Failure::new(
            cnb_spec::exit::FAILED,
            "run in the build image (user namespace)",
            &e,
        )),
    }
}

/// The prepared build root and what runs in it.
pub struct BuildRoot {
    /// `-build-image` as given.
    pub name: String,
    /// The root filesystem steps chroot into (the overlay).
    pub root: PathBuf,
    /// Manifest and config of the build image as a small layout (for the extender).
    pub base_layout: PathBuf,
    /// Manifest digest of the build image.
    pub digest: String,
    /// The environment of detect (the build image's `Env`).
    pub env: Vec<String>,
    /// The environment of build (the extended image's `Env` after build extensions).
    pub build_env: Vec<String>,
    /// The build user.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Scratch space (overlay upper dir, extender work dir).
    pub scratch: PathBuf,
    /// Where the extender's step cache lives.
    pub step_cache: PathBuf,
}

fn io_fail(what: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure::msg(cnb_spec::exit::FAILED, what, e.to_string())
}

pub(super) fn sys_fail(what: String) -> impl FnOnce(nix::Error) -> Failure {
    move |e| Failure::msg(cnb_spec::exit::FAILED, what, e.to_string())
}

/// Inside the namespace: prepare the root, switch ids, run the pipeline, clean up.
fn worker(
    inputs: &Inputs,
    name: &str,
    source: &Source,
    lifecycle: &Path,
    cache: &Path,
) -> Result<(), Failure> {
    let t = std::time::Instant::now();
    let image = build_image::open(inputs, name, source)?;
    let (rootfs, reused) = build_image::cached_rootfs(&image.image, cache).map_err(|m| {
        Failure::msg(
            cnb_spec::exit::FAILED,
            format!("unpack build image {name}"),
            m,
        )
    })?;
    info!(
        "Build image {name} ({}): root filesystem {} in {:.2}s",
        image.image.manifest_digest(),
        if reused {
            "reused from cache"
        } else {
            "unpacked"
        },
        t.elapsed().as_secs_f64()
    );
    let scratch_dir = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(cache)
        .map_err(io_fail(format!(
            "create a scratch dir in {}",
            cache.display()
        )))?;
    let scratch = scratch_dir.path().to_path_buf();
    let merged = scratch.join("root");
    prepare_root(&image, &rootfs, &scratch, &merged)?;
    let base_layout = scratch.join("base");
    write_base_layout(&image, &base_layout)
        .map_err(io_fail(format!("write {}", base_layout.display())))?;

    let mut inputs = inputs.clone();
    if (inputs.uid, inputs.gid) != (0, 0) && (inputs.uid, inputs.gid) != (image.uid, image.gid) {
        warn!(
            "using the build image's user {}:{} instead of -uid/-gid {}:{}",
            image.uid, image.gid, inputs.uid, inputs.gid
        );
    }
    inputs.uid = image.uid;
    inputs.gid = image.gid;
    let mut b = BuildRoot {
        name: name.to_string(),
        root: merged.clone(),
        base_layout,
        digest: image.image.manifest_digest().to_string(),
        env: image.env.clone(),
        build_env: image.env.clone(),
        uid: image.uid,
        gid: image.gid,
        scratch: scratch.clone(),
        step_cache: cache.join(".extend-cache"),
    };
    drop(image);
    bind_volumes(&inputs, lifecycle, &merged)?;

    let code = cnb_spec::exit::FAILED;
    let mut volumes = crate::privilege::volumes_for(Phase::Creator, &inputs);
    // The layout dir is read (run and previous image) and written by the build user here; rootless, the
    // platform cannot have handed it to a subordinate id itself.
    if inputs.use_layout {
        volumes.extend(inputs.layout_dir.iter().cloned());
    }
    crate::privilege::chown_volumes(b.uid, b.gid, &volumes)
        .map_err(|e| Failure::new(code, "chown volumes", &e))?;
    become_user(b.uid, b.gid)?;
    if let Err(e) = crate::privilege::set_environment_for_user(b.uid) {
        warn!("keeping HOME and USER: {e}");
    }
    let result = super::pipeline(&inputs, &mut super::Place::Image(&mut b));
    // Clean up as namespace root: the overlay's upper dir holds files of the build user.
    let _ = regain_root();
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    drop(scratch_dir);
    result
}

/// Mounts the overlay of the cached tree at `merged`; without overlayfs, unpacks a private copy there.
fn prepare_root(
    image: &BuildImage,
    rootfs: &Path,
    scratch: &Path,
    merged: &Path,
) -> Result<(), Failure> {
    let (upper, work) = (scratch.join("upper"), scratch.join("work"));
    for d in [&upper, &work, &merged.to_path_buf()] {
        std::fs::create_dir_all(d).map_err(io_fail(format!("create {}", d.display())))?;
    }
    let base = format!(
        "lowerdir={},upperdir={},workdir={}",
        rootfs.display(),
        upper.display(),
        work.display()
    );
    for opts in [format!("{base},userxattr"), base] {
        if mount(
            Some("overlay"),
            merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .is_ok()
        {
            return Ok(());
        }
    }
    warn!("overlayfs is not available here: unpacking a private copy of the build image");
    build_image::unpack(&image.image, merged).map_err(|m| {
        Failure::msg(
            cnb_spec::exit::FAILED,
            format!("unpack build image {}", image.name),
            m,
        )
    })
}

/// A minimal OCI layout with the build image's manifest and config (what the extender reads).
fn write_base_layout(image: &BuildImage, dir: &Path) -> std::io::Result<()> {
    use crate::image::layout::Layout;
    let layout_err = |e: crate::image::layout::LayoutError| std::io::Error::other(e.to_string());
    let i = &image.image;
    let layout = Layout::create(dir).map_err(layout_err)?;
    let (manifest_digest, _) = layout.write_blob(i.manifest_bytes()).map_err(layout_err)?;
    layout.write_blob(i.config_bytes()).map_err(layout_err)?;
    layout
        .add_manifest(
            &crate::image::oci::Descriptor::new(
                i.manifest_media_type().to_string(),
                manifest_digest,
                i.manifest_bytes().len() as u64,
            ),
            &[],
        )
        .map(|_| ())
        .map_err(layout_err)
}

/// Where each volume appears inside the build root.
fn volume_mounts(inputs: &Inputs, lifecycle: &Path) -> Vec<(PathBuf, &'static str, bool)> {
    let mut v: Vec<(PathBuf, &'static str, bool)> = vec![
        (lifecycle.to_path_buf(), "cnb/lifecycle", true),
        (inputs.buildpacks_dir.clone(), "cnb/buildpacks", true),
        (inputs.extensions_dir.clone(), "cnb/extensions", true),
        (inputs.build_config_dir.clone(), "cnb/build-config", true),
        (inputs.order_path.clone(), "cnb/order.toml", true),
        (inputs.run_path.clone(), "cnb/run.toml", true),
        (inputs.system_path.clone(), "cnb/system.toml", true),
        (inputs.layers_dir.clone(), "layers", false),
        (inputs.app_dir.clone(), "workspace", false),
        (inputs.platform_dir.clone(), "platform", true),
    ];
    v.retain(|(host, _, _)| host.exists());
    v
}

fn bind_volumes(inputs: &Inputs, lifecycle: &Path, root: &Path) -> Result<(), Failure> {
    for (host, inside, read_only) in volume_mounts(inputs, lifecycle) {
        let target = root.join(inside);
        let what = || format!("mount {} at /{inside} in the build image", host.display());
        if host.is_dir() {
            std::fs::create_dir_all(&target).map_err(io_fail(what()))?;
        } else {
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(io_fail(what()))?;
            }
            std::fs::write(&target, b"").map_err(io_fail(what()))?;
        }
        mount(
            Some(host.as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys_fail(what()))?;
        if read_only {
            // Best effort: buildpacks must not change the lifecycle, buildpacks or platform inputs.
            let _ = mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None::<&str>,
            );
        }
    }
    Ok(())
}

/// Switches to the build user for everything this process does itself; the saved ids stay root so
/// the sandboxed steps can still be set up ([`regain_root`]).
fn become_user(uid: u32, gid: u32) -> Result<(), Failure> {
    let code = cnb_spec::exit::FAILED;
    let f = |what: String| move |e: nix::Error| Failure::msg(code, what, e.to_string());
    nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(f("setgroups".into()))?;
    nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(0))
        .map_err(f(format!("set group {gid}")))?;
    nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(0))
        .map_err(f(format!("set user {uid}")))?;
    Ok(())
}

pub(super) fn regain_root() -> Result<(), nix::Error> {
    nix::unistd::seteuid(Uid::from_raw(0))?;
    nix::unistd::setegid(Gid::from_raw(0))
}

pub(super) fn back_to_user(uid: u32, gid: u32) -> Result<(), nix::Error> {
    nix::unistd::setegid(Gid::from_raw(gid))?;
    nix::unistd::seteuid(Uid::from_raw(uid))
}

/// Runs `f` with the effective ids of namespace root, then switches back to the build user.
fn as_root<T>(b: &BuildRoot, f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    regain_root().map_err(sys_fail("regain namespace root".into()))?;
    let r = f();
    back_to_user(b.uid, b.gid).map_err(sys_fail(format!("switch back to user {}", b.uid)))?;
    r
}

fn log_level_name(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// `path` as seen inside the build root: it must lie in `<layers>` (the creator's defaults do).
fn inside_layers(inputs: &Inputs, path: &Path) -> Result<String, Failure> {
    path.strip_prefix(&inputs.layers_dir)
        .map(|rel| format!("/layers/{}", rel.display()))
        .map_err(|_| {
            Failure::msg(
                cnb_spec::exit::INVALID_ARGS,
                "resolve inputs",
                format!(
                    "with -build-image, {} must be inside the layers directory {}",
                    path.display(),
                    inputs.layers_dir.display()
                ),
            )
        })
}

/// The command line of `phase` (detector or builder) inside the build root, with only the flags it
/// accepts at this Platform API.
pub fn phase_args(phase: Phase, inputs: &Inputs, lifecycle: &Path) -> Result<Vec<String>, Failure> {
    let api = inputs.platform_api;
    let mut argv = vec![format!("/cnb/lifecycle/{}", phase.name())];
    let mounted: Vec<&str> = volume_mounts(inputs, lifecycle)
        .into_iter()
        .map(|(_, inside, _)| inside)
        .collect();
    let mut pairs: Vec<(&str, String)> = vec![
        ("app", "/workspace".into()),
        ("layers", "/layers".into()),
        ("log-level", log_level_name(inputs.log_level).into()),
        ("group", inside_layers(inputs, &inputs.group_path)?),
        ("plan", inside_layers(inputs, &inputs.plan_path)?),
        ("analyzed", inside_layers(inputs, &inputs.analyzed_path)?),
        ("generated", inside_layers(inputs, &inputs.generated_dir)?),
    ];
    for (flag, inside) in [
        ("buildpacks", "cnb/buildpacks"),
        ("extensions", "cnb/extensions"),
        ("build-config", "cnb/build-config"),
        ("order", "cnb/order.toml"),
        ("run", "cnb/run.toml"),
        ("system", "cnb/system.toml"),
        ("platform", "platform"),
    ] {
        if mounted.contains(&inside) {
            pairs.push((flag, format!("/{inside}")));
        }
    }
    for (flag, value) in pairs {
        if table::lookup(phase, api, flag).is_some() {
            argv.push(format!("-{flag}={value}"));
        }
    }
    if inputs.no_color {
        argv.push("-no-color".into());
    }
    Ok(argv)
}

fn home_of(root: &Path, uid: u32) -> Option<(String, String)> {
    crate::privilege::passwd::entry_for_uid(&root.join("etc/passwd"), uid).map(|e| (e.home, e.name))
}

impl BuildRoot {
    fn step_env(&self, inputs: &Inputs, base: &[String]) -> Vec<String> {
        let mut env: Vec<String> = base.to_vec();
        let mut set = |k: &str, v: String| {
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
            env.push(format!("{k}={v}"));
        };
        set(cnb_spec::env::PLATFORM_API, inputs.platform_api.to_string());
        let (home, user) =
            home_of(&self.root, self.uid).unwrap_or_else(|| ("/".into(), String::new()));
        set("HOME", home);
        if !user.is_empty() {
            set("USER", user);
        }
        for k in [cnb_spec::env::EXPERIMENTAL_MODE, cnb_spec::env::EXEC_ENV] {
            if let Ok(v) = std::env::var(k) {
                set(k, v);
            }
        }
        if !base.iter().any(|e| e.starts_with("PATH=")) {
            set(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        env
    }

    /// Runs `phase` (detector or builder) in the build root; its exit code becomes ours.
    pub fn run_phase(&self, phase: Phase, inputs: &Inputs) -> Result<(), Failure> {
        let lifecycle = lifecycle_dir()?;
        let argv = phase_args(phase, inputs, &lifecycle)?;
        let env = if phase == Phase::Builder {
            self.step_env(inputs, &self.build_env)
        } else {
            self.step_env(inputs, &self.env)
        };
        let spec = StepSpec {
            root: self.root.clone(),
            argv,
            env,
            uid: self.uid,
            gid: self.gid,
            groups: vec![self.gid],
            workdir: "/workspace".into(),
            binds: ["/etc/resolv.conf", "/etc/hosts"]
                .iter()
                .filter_map(|p| sandbox::host_file(p).map(|h| (h, p.to_string())))
                .collect(),
            isolation: sandbox::Isolation::Sandbox,
        };
        let outcome = as_root(self, || {
            sandbox::run_step(&spec).map_err(|e| {
                Failure::new(
                    cnb_spec::exit::FAILED,
                    format!("run the {} in build image {}", phase.name(), self.name),
                    &e,
                )
            })
        })?;
        match outcome.code {
            0 => Ok(()),
            code => Err(Failure::msg(
                u8::try_from(code).unwrap_or(cnb_spec::exit::FAILED),
                phase.verb(),
                format!(
                    "the {} in build image {} exited with code {code}",
                    phase.name(),
                    self.name
                ),
            )),
        }
    }

    /// Applies the group's `build.Dockerfile`s to the build root (never to the cached tree); the
    /// extended `Env` becomes the builder's (EX-06).
    pub fn extend_build(&mut self, inputs: &Inputs) -> Result<(), Failure> {
        use crate::extend::{inputs as ext_inputs, Extender, Kind, StepCache};
        let fail = |e: &(dyn std::error::Error + 'static)| {
            Failure::new(cnb_spec::exit::EXTEND_ERROR, "extend", e)
        };
        let extensions =
            ext_inputs::group_dockerfiles(inputs, Kind::Build).map_err(|e| fail(&e))?;
        let extender = Extender {
            kind: Kind::Build,
            base_layout: self.base_layout.clone(),
            base_digest: Some(self.digest.clone()),
            base_ref: self.name.clone(),
            root: Some(self.root.clone()),
            extensions,
            extended_dir: inputs.extended_dir.clone(),
            cache: Some(StepCache::new(
                self.step_cache.clone(),
                inputs.kaniko_cache_ttl,
            )),
            work_dir: self.scratch.join("extend"),
            executor: crate::extend::Executor::Current,
            ignore: Vec::new(),
        };
        let extended = as_root(self, || extender.extend().map_err(|e| fail(&e)))?;
        info!(
            "applied {} build Dockerfile(s) to build image {}: {} RUN step(s) executed, {} from cache",
            extender.extensions.len(),
            self.name,
            extended.outcome.runs,
            extended.outcome.cache_hits
        );
        self.build_env = extended.outcome.state.env.clone();
        Ok(())
    }
}

impl BuildRoot {
    /// Applies the group's `run.Dockerfile`s to the run image (unpacked into scratch space, never the
    /// host's `/`) and writes the extended run image to `<extended>/run/<digest>/` for the exporter.
    pub fn extend_run(&self, inputs: &Inputs) -> Result<(), Failure> {
        use crate::extend::{inputs as ext_inputs, Extender, Kind, StepCache};
        let code = cnb_spec::exit::EXTEND_ERROR;
        let fail = |e: &(dyn std::error::Error + 'static)| Failure::new(code, "extend", e);
        let extensions = ext_inputs::group_dockerfiles(inputs, Kind::Run).map_err(|e| fail(&e))?;
        if extensions.is_empty() {
            return Ok(());
        }
        let analyzed = cnb_spec::platform::Analyzed::read_optional(&inputs.analyzed_path)
            .map_err(|e| fail(&e))?
            .unwrap_or_default();
        let (reference, image) = (
            analyzed.run_image_ref().to_string(),
            analyzed.run_image_image().to_string(),
        );
        let (base_layout, base_digest) = as_root(self, || {
            run_base(inputs, &reference, &image, &self.scratch.join("run-base"))
                .map_err(|m| Failure::msg(code, "extend", m))
        })?;
        let extender = Extender {
            kind: Kind::Run,
            base_layout,
            base_digest,
            base_ref: if image.is_empty() {
                reference.clone()
            } else {
                image.clone()
            },
            root: None,
            extensions,
            extended_dir: inputs.extended_dir.clone(),
            cache: Some(StepCache::new(
                self.step_cache.clone(),
                inputs.kaniko_cache_ttl,
            )),
            work_dir: self.scratch.join("extend-run"),
            executor: crate::extend::Executor::Current,
            ignore: Vec::new(),
        };
        let extended = as_root(self, || {
            let r = extender.extend().map_err(|e| fail(&e))?;
            // The exporter reads the result as the build user.
            let mut written = vec![inputs.extended_dir.clone(), inputs.extended_dir.join("run")];
            written.extend(r.output.iter().cloned());
            crate::privilege::chown_volumes(self.uid, self.gid, &written)
                .map_err(|e| Failure::new(cnb_spec::exit::FAILED, "chown volumes", &e))?;
            Ok(r)
        })?;
        info!(
            "applied {} run Dockerfile(s) to run image {}: {} layer(s), {} RUN step(s) executed, {} from cache",
            extender.extensions.len(),
            extender.base_ref,
            extended.outcome.layers.len(),
            extended.outcome.runs,
            extended.outcome.cache_hits
        );
        Ok(())
    }
}

/// The run image as an OCI layout with its layers: the layout `analyzed.toml` names
/// (`<path>@<digest>`), the image under `-layout-dir`, or the registry image copied to `dir`.
fn run_base(
    inputs: &Inputs,
    reference: &str,
    image: &str,
    dir: &Path,
) -> Result<(PathBuf, Option<String>), String> {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference, None),
    };
    if Path::new(name).join("index.json").is_file() {
        return Ok((PathBuf::from(name), digest));
    }
    if inputs.use_layout {
        if let Some(layout_dir) = &inputs.layout_dir {
            for candidate in [image, name] {
                if let Ok(p) = crate::image::layout::path_for_reference(layout_dir, candidate) {
                    if p.join("index.json").is_file() {
                        return Ok((p, digest));
                    }
                }
            }
        }
    }
    let r = crate::image::registry::ImageRef::parse(if reference.is_empty() {
        image
    } else {
        reference
    })
    .map_err(|e| format!("run image {reference:?}: {e}"))?;
    let client = build_image::registry_client(inputs)?;
    let d = crate::extend::oci::fetch_to_layout(&client, &r, dir, true)
        .map_err(|e| crate::error::chain(&e))?;
    Ok((dir.to_path_buf(), Some(d)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failures_cross_the_worker_boundary() {
        let f = decode(&encode(&Failure::msg(20, "detect", "no group: a: b")));
        assert_eq!(
            (f.code, f.action.as_str(), f.cause.as_str()),
            (20, "detect", "no group: a: b")
        );
        let g = decode("unshare(user, mount): EPERM");
        assert_eq!(g.code, cnb_spec::exit::FAILED);
        assert!(g.to_string().contains("EPERM"));
    }
}
