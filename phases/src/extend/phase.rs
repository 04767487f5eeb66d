//! The `extender` phase (platform spec "extender"; checklist §6 EX-*): reads `analyzed.toml`,
//! `group.toml`, the generated Dockerfiles and `extend-config.toml`, picks the executor
//! ([`Executor::detect`]) and the root to change, finds the base image (the restorer's sparse layout
//! at `<kaniko>/cache/base/<digest>`, the layout a `-layout` reference names, else the registry), and
//! extends. Kind `build` then drops to the build user and builds in this process on the extended
//! filesystem; kind `run` leaves `<extended>/run/<digest>/` for the exporter.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::inputs::{self, Plan};
use super::oci::{self, BaseImage};
use super::{Executor, ExtendError, Extender, Kind, StepCache};
use crate::cli::Inputs;
use crate::image::registry::ImageRef;
use crate::Failure;

/// Copies the manifest and config (and the layers when `with_layers`) of registry image `reference`
/// into `layout` (what the restorer normally does for the manifest and config).
fn fetch_base(
    inputs: &Inputs,
    reference: &str,
    layout: &Path,
    with_layers: bool,
) -> Result<(), ExtendError> {
    let oci_err = |message: String| {
        ExtendError::Oci(oci::OciError::Format {
            path: layout.to_path_buf(),
            message,
        })
    };
    let name = reference.split('@').next().unwrap_or(reference);
    if Path::new(name).is_absolute() {
        return Err(oci_err(format!(
            "base image {reference}: no OCI layout at {name} and none restored here (run the restorer with the same -layout-dir, or mount it)"
        )));
    }
    let image = ImageRef::parse(reference).map_err(|e| oci_err(format!("{reference}: {e}")))?;
    let client = crate::export::access::ImageAccess::registry_client(inputs)
        .map_err(|e| oci_err(e.to_string()))?;
    // The client's runtime is dropped before any fork.
    oci::fetch_to_layout(&client, &image, layout, with_layers)?;
    Ok(())
}

/// The layout to read the base image from; with `need_layers` (a private copy is unpacked) one that
/// holds every layer blob, fetched from the registry into the restorer's sparse layout if needed.
fn base_layout(inputs: &Inputs, plan: &Plan, need_layers: bool) -> Result<PathBuf, ExtendError> {
    let complete = |p: &Path| {
        BaseImage::read(p, plan.base_digest.as_deref()).is_ok_and(|b| b.has_all_layers())
    };
    if need_layers {
        if let Some(p) = plan.layout_path.as_ref().filter(|p| complete(p)) {
            return Ok(p.clone());
        }
        if !complete(&plan.base_layout) {
            fetch_base(inputs, &plan.base_ref, &plan.base_layout, true)?;
        }
        return Ok(plan.base_layout.clone());
    }
    if plan.base_layout.join("index.json").is_file() {
        return Ok(plan.base_layout.clone());
    }
    if let Some(p) = &plan.layout_path {
        return Ok(p.clone());
    }
    // No restorer left the base for us (e.g. local use): read it from the registry.
    fetch_base(inputs, &plan.base_ref, &plan.base_layout, false)?;
    Ok(plan.base_layout.clone())
}

/// The root the Dockerfiles change: `root` itself, or `None` (a private copy of the base) when an
/// unprivileged extender cannot write it — fine for a run image, whose layers are all that matter;
/// a build image must be changed where the build runs.
fn target_root(
    executor: &Executor,
    kind: Kind,
    root: &Path,
) -> Result<Option<PathBuf>, ExtendError> {
    let uid = nix::unistd::Uid::effective().as_raw();
    let owner = std::fs::metadata(root)
        .map_err(|source| ExtendError::Io {
            what: format!("reading the root {}", root.display()),
            source,
        })?
        .uid();
    let rootless = !matches!(executor, Executor::InPlace) && uid != 0;
    if !rootless || owner == uid {
        if root == Path::new("/") && !running_in_container() {
            return Err(ExtendError::NotInContainer);
        }
        return Ok(Some(root.to_path_buf()));
    }
    match kind {
        Kind::Run => {
            tracing::info!(
                "uid {uid} cannot change {} (owned by uid {owner}): extending a private copy of the run image",
                root.display()
            );
            Ok(None)
        }
        Kind::Build => Err(ExtendError::RootNotWritable {
            root: root.to_path_buf(),
            uid,
            owner,
        }),
    }
}

/// Whether this process runs in a container or a chroot rather than directly on a machine's own `/`
/// (the reference's kaniko refuses to run outside a container, for the same reason: the Dockerfiles
/// change `/`). A machine is recognised by pid 1 being `systemd`/`init` with our root, and no
/// container marker (`/.dockerenv`, `/run/.containerenv`, `$container`, `$KUBERNETES_SERVICE_HOST`, a
/// container cgroup of pid 1).
pub fn running_in_container() -> bool {
    let markers = Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if markers {
        return true;
    }
    let cgroup = std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
    if ["docker", "kubepods", "containerd", "libpod", "lxc"]
        .iter()
        .any(|m| cgroup.contains(m))
    {
        return true;
    }
    let same_root = match (std::fs::metadata("/proc/1/root/"), std::fs::metadata("/")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        // No /proc or no access to pid 1: a chroot or a sandbox, not the machine's init namespace.
        _ => false,
    };
    let init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    !(same_root && matches!(init.trim(), "systemd" | "init"))
}

/// Runs the phase on resolved inputs.
pub fn run(inputs: &Inputs) -> Result<(), Failure> {
    let fail = |e: ExtendError| {
        Failure::new(
            cnb_spec::exit::EXTEND_ERROR,
            "extend",
            &e as &(dyn std::error::Error + 'static),
        )
    };
    let kind = Kind::of(inputs);
    let root = inputs.extender_root.clone();
    // With an explicit root, the default kaniko dir is the one inside that root.
    let kaniko_dir = if root != Path::new("/")
        && inputs.kaniko_dir == Path::new(cnb_spec::env::defaults::KANIKO_DIR)
    {
        root.join("kaniko")
    } else {
        inputs.kaniko_dir.clone()
    };
    let plan = inputs::resolve(inputs, kind, &kaniko_dir).map_err(|e| fail(e.into()))?;
    if plan.extensions.is_empty() {
        tracing::info!("no Dockerfiles to apply");
    } else {
        let executor = Executor::detect().map_err(|e| fail(e.into()))?;
        let target = target_root(&executor, kind, &root).map_err(fail)?;
        let base_layout = base_layout(inputs, &plan, target.is_none()).map_err(fail)?;
        tracing::debug!(
            "extending {} ({}) {}",
            plan.base_ref,
            base_layout.display(),
            executor.describe()
        );
        let extender = Extender {
            kind,
            base_layout,
            base_digest: plan.base_digest,
            base_ref: plan.base_ref,
            root: target,
            extensions: plan.extensions,
            extended_dir: inputs.extended_dir.clone(),
            cache: Some(StepCache::new(
                kaniko_dir.join("cache").join("layers"),
                inputs.kaniko_cache_ttl,
            )),
            // Its scratch dir (`extend-*`) is removed afterwards, whatever happens.
            work_dir: kaniko_dir.clone(),
            executor,
            ignore: vec![
                inputs.layers_dir.clone(),
                inputs.app_dir.clone(),
                inputs.platform_dir.clone(),
                kaniko_dir.clone(),
            ],
        };
        let extended = extender.extend().map_err(fail)?;
        tracing::info!(
            "applied {} Dockerfile(s): {} layer(s), {} RUN step(s) executed, {} step(s) from cache",
            extender.extensions.len(),
            extended.outcome.layers.len(),
            extended.outcome.runs,
            extended.outcome.cache_hits
        );
        if kind == Kind::Build {
            // EX-06: the extended image's env is the builder's env.
            for e in &extended.outcome.state.env {
                if let Some((k, v)) = e.split_once('=') {
                    // The phase is single-threaded here (no runtime started).
                    std::env::set_var(k, v);
                }
            }
        }
    }
    if kind == Kind::Build {
        // EX-06: hand <layers> to the build user, drop privileges, then build in this process.
        let (uid, gid) = (inputs.uid, inputs.gid);
        let code = cnb_spec::exit::FAILED;
        crate::privilege::reach::check_reachable(crate::cli::Phase::Extender, inputs)?;
        crate::privilege::chown_volumes(uid, gid, std::slice::from_ref(&inputs.layers_dir))
            .map_err(|e| Failure::new(code, "chown volumes", &e))?;
        crate::privilege::drop_to(uid, gid)
            .map_err(|e| Failure::new(code, format!("exec as user {uid}:{gid}"), &e))?;
        crate::privilege::set_environment_for_user(uid)
            .map_err(|e| Failure::new(code, format!("set environment for user {uid}"), &e))?;
        return crate::build::run(inputs);
    }
    Ok(())
}
