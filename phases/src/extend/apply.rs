//! Applying extension Dockerfiles to a root filesystem (checklist EX-02…EX-05): walks the steps,
//! tracks the image config they change (env, user, workdir, labels, shell), runs `RUN` in the sandbox,
//! performs `COPY`/`ADD`/`WORKDIR` on the root, snapshots after each file-system step into a layer and
//! consults the step cache first.
//!
//! Everything here runs inside the namespaced worker ([`super::sandbox::in_user_namespace`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cache::StepCache;
use super::dockerfile::{expand, expand_plain, CopySource, Dockerfile, RunCommand, StepKind};
use super::fsutil;
use super::sandbox::{self, Isolation, StepSpec};
use super::snapshot::{self, Ignore, LayerBlob};
use crate::archive::{Compression, Ownership};

/// One extension's Dockerfile with its build context and `extend-config.toml` args.
#[derive(Debug, Clone)]
pub struct ExtensionInput {
    /// The parsed Dockerfile.
    pub dockerfile: Dockerfile,
    /// Build context directory.
    pub context: PathBuf,
    /// `[[<kind>.args]]` from `extend-config.toml`, in order.
    pub args: Vec<(String, String)>,
}

/// The parts of an image config that Dockerfile steps change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageState {
    /// `Env` (`KEY=VALUE`, in order).
    pub env: Vec<String>,
    /// `User` (empty = root).
    pub user: String,
    /// `WorkingDir` (empty = `/`).
    pub workdir: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// The `SHELL` (not persisted in OCI configs; starts as `/bin/sh -c`).
    pub shell: Vec<String>,
}

impl ImageState {
    fn env_map(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }
    fn set_env(&mut self, k: &str, v: &str) {
        let entry = format!("{k}={v}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
        {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }
}

/// One history entry (one per instruction that produced a layer or changed the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `Layer: '<instruction>', Created by extension: <id>`.
    pub created_by: String,
    /// `true` when the step produced no layer.
    pub empty_layer: bool,
}

/// A layer produced by a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedLayer {
    /// The blob in the output blobs directory.
    pub blob: LayerBlob,
    /// The extension that produced it.
    pub extension: String,
    /// The instruction.
    pub instruction: String,
}

/// What applying all Dockerfiles produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// New layers in order.
    pub layers: Vec<AppliedLayer>,
    /// History entries in order.
    pub history: Vec<HistoryEntry>,
    /// The final config state.
    pub state: ImageState,
    /// Steps served from the cache.
    pub cache_hits: usize,
    /// `RUN` steps executed.
    pub runs: usize,
    /// AND of `io.buildpacks.rebasable == "true"` over the Dockerfiles (EX-05).
    pub rebasable: bool,
    /// Whether the root reflects every step (false: the base was never unpacked or cached layers were
    /// never applied, because nothing needed them).
    #[serde(default)]
    pub root_current: bool,
}

impl Outcome {
    /// Records a step's layer and its history entry.
    fn push_layer(
        &mut self,
        blob: LayerBlob,
        extension: &str,
        instruction: &str,
        created_by: String,
    ) {
        self.layers.push(AppliedLayer {
            blob,
            extension: extension.to_string(),
            instruction: instruction.to_string(),
        });
        self.history.push(HistoryEntry {
            created_by,
            empty_layer: false,
        });
    }
}

/// Everything [`apply`] needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// Root filesystem to change in place.
    pub root: PathBuf,
    /// Dockerfiles in group order.
    pub extensions: Vec<ExtensionInput>,
    /// Config of the image being extended.
    pub base: ImageState,
    /// Reference given to the Dockerfiles as `base_image`.
    pub base_image: String,
    /// Identity of the base (digest) for cache keys.
    pub base_digest: String,
    /// Where new layer blobs are written (`<hex>` files).
    pub blobs_dir: PathBuf,
    /// Step cache, if any.
    pub cache: Option<StepCache>,
    /// Paths not snapshotted.
    pub ignore: Ignore,
    /// `Some(layers)`: `root` is still empty and these base layer blobs must be unpacked into it before
    /// anything needs it (nothing does when every step is served from the cache). `None`: `root` is
    /// already populated.
    pub unpack_base: Option<Vec<PathBuf>>,
    /// Whether `root` must reflect every step when [`apply`] returns (kind build: the buildpacks run
    /// on it). When false, layers served from the cache are applied only if a later step needs the
    /// root (kind run: only the layers matter).
    pub materialize: bool,
    /// How new layers are compressed: gzip for a run image (they become image layers), none for the
    /// build image (they only serve the step cache, and a plain tar applies several times faster).
    pub compression: Compression,
    /// How `RUN` steps are isolated ([`super::Executor::isolation`]). With [`Isolation::Direct`] the
    /// root is live (the container's `/`): cached layers that would touch an ignored path are not
    /// applied (the step runs instead), and `COPY` into one is refused.
    pub isolation: Isolation,
    /// Owners when unpacking the base or a cached layer ([`super::Executor::ownership`]).
    pub ownership: Ownership,
}

/// The root filesystem as [`apply`] keeps it: base possibly not unpacked yet, cached layers possibly
/// not applied yet. [`LazyRoot::ensure`] brings it up to date before anything reads or runs on it.
struct LazyRoot<'a> {
    path: &'a Path,
    unpack_base: Option<Vec<PathBuf>>,
    pending: Vec<PathBuf>,
    ownership: Ownership,
}

impl LazyRoot<'_> {
    fn is_current(&self) -> bool {
        self.unpack_base.is_none() && self.pending.is_empty()
    }

    fn ensure(&mut self) -> Result<(), String> {
        if let Some(layers) = self.unpack_base.take() {
            let t = std::time::Instant::now();
            std::fs::create_dir_all(self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            for l in &layers {
                fsutil::apply_layer(self.path, l, self.ownership)
                    .map_err(|e| format!("unpacking base layer {}: {e}", l.display()))?;
            }
            tracing::debug!("unpacked the base image in {:?}", t.elapsed());
        }
        for l in std::mem::take(&mut self.pending) {
            let t = std::time::Instant::now();
            fsutil::apply_layer(self.path, &l, self.ownership)
                .map_err(|e| format!("applying cached layer {}: {e}", l.display()))?;
            tracing::debug!("applied cached layer {} in {:?}", l.display(), t.elapsed());
        }
        Ok(())
    }
}

/// `uid[:gid]` with a numeric uid: resolvable without the root's `/etc/passwd`.
pub(crate) fn numeric_uid(user: &str) -> Option<u32> {
    if user.is_empty() {
        return Some(0);
    }
    user.split(':').next().and_then(|u| u.parse().ok())
}

fn fresh_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:x}", std::process::id()))
}

fn hash_file_into(h: &mut Sha256, p: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(p)?;
    h.update(format!(
        "{:o}\0",
        std::os::unix::fs::PermissionsExt::mode(&m.permissions())
    ));
    if m.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            h.update(n.as_encoded_bytes());
            h.update([0]);
            hash_file_into(h, &p.join(n))?;
        }
    } else if m.file_type().is_symlink() {
        h.update(std::fs::read_link(p)?.as_os_str().as_encoded_bytes());
    } else {
        let mut f = std::fs::File::open(p)?;
        std::io::copy(&mut f, h)?;
    }
    Ok(())
}

/// Applies every Dockerfile of `req` in order; errors name extension, file and line.
pub fn apply(req: &Request) -> Result<Outcome, String> {
    let root = &req.root;
    let mut state = req.base.clone();
    if state.shell.is_empty() {
        state.shell = vec!["/bin/sh".into(), "-c".into()];
    }
    let mut out = Outcome {
        rebasable: true,
        ..Outcome::default()
    };
    // The layer format is part of every key: entries of another compression are never mixed in.
    let mut key = hex::encode(Sha256::digest(
        format!("{}\0{:?}", req.base_digest, req.compression).as_bytes(),
    ));
    let mut lazy = LazyRoot {
        path: root,
        unpack_base: req.unpack_base.clone(),
        pending: Vec::new(),
        ownership: req.ownership,
    };
    // The snapshot the next executed step is compared with; taken only when a step is executed (a
    // run served entirely from the cache walks nothing).
    let mut before: Option<snapshot::Snapshot> = None;
    let mut base_image = req.base_image.clone();

    for ext in &req.extensions {
        let df = &ext.dockerfile;
        let id = &df.extension;
        let at = |line: usize, msg: String| {
            format!("extension '{id}': {}:{line}: {msg}", df.path.display())
        };
        // EX-03: provided args, then the extension's own.
        let (user_id, group_id) = match state.user.split_once(':') {
            Some((u, g)) => (u.to_string(), g.to_string()),
            None => (state.user.clone(), String::new()),
        };
        let mut build_args: BTreeMap<String, String> = BTreeMap::new();
        build_args.insert("build_id".into(), fresh_uuid());
        build_args.insert("user_id".into(), user_id);
        build_args.insert("group_id".into(), group_id);
        for (k, v) in &ext.args {
            build_args.insert(k.clone(), v.clone());
        }
        build_args.insert("base_image".into(), base_image.clone());
        let mut stage_args: BTreeMap<String, String> = BTreeMap::new();
        let mut labels_rebasable: Option<String> = None;

        for step in &df.steps {
            let vars = {
                let mut v = stage_args.clone();
                v.extend(state.env_map());
                v
            };
            let x = |word: &str| expand(word, &vars).map_err(|m| at(step.line, m));
            let created_by = format!("Layer: '{}', Created by extension: {id}", step.text);
            // The cache key covers the instruction and everything it can observe.
            let mut h = Sha256::new();
            h.update(key.as_bytes());
            h.update(step.text.as_bytes());
            h.update(format!(
                "{:?}{:?}{}{}",
                stage_args, state.env, state.user, state.workdir
            ));
            h.update(state.shell.join("\0").as_bytes());
            let mut fs_step = false;
            match &step.kind {
                StepKind::Arg { name, default } => {
                    let value = match (build_args.get(name), default) {
                        (Some(v), _) => v.clone(),
                        (None, Some(d)) => x(d)?,
                        (None, None) => String::new(),
                    };
                    stage_args.insert(name.clone(), value);
                }
                StepKind::Env(pairs) => {
                    for (k, v) in pairs {
                        let k = x(k)?;
                        let v = x(v)?;
                        state.set_env(&k, &v);
                    }
                }
                StepKind::Label(pairs) => {
                    for (k, v) in pairs {
                        let k = x(k)?;
                        let v = x(v)?;
                        if k == "io.buildpacks.rebasable" {
                            labels_rebasable = Some(v.clone());
                        }
                        state.labels.insert(k, v);
                    }
                }
                StepKind::User(u) => state.user = x(u)?,
                StepKind::Shell(argv) => state.shell = argv.clone(),
                StepKind::Workdir(w) => {
                    let w = x(w)?;
                    let cur = if state.workdir.is_empty() {
                        "/"
                    } else {
                        &state.workdir
                    };
                    state.workdir = if w.starts_with('/') {
                        w
                    } else {
                        format!("{}/{w}", cur.trim_end_matches('/'))
                    };
                    fs_step = true;
                }
                StepKind::Run(_) | StepKind::Copy { .. } => fs_step = true,
            }
            if !fs_step {
                out.history.push(HistoryEntry {
                    created_by,
                    empty_layer: true,
                });
                continue;
            }
            // Context content is part of a COPY's identity.
            // (index into the step's sources, host path for a context source; a pattern expands to
            // every match).
            let mut copy_sources: Vec<(usize, Option<PathBuf>)> = Vec::new();
            if let StepKind::Copy { sources, .. } = &step.kind {
                for (i, s) in sources.iter().enumerate() {
                    match s {
                        CopySource::Path(raw) => {
                            let p = x(raw)?;
                            for (name, src) in
                                context_sources(&ext.context, &p).map_err(|m| at(step.line, m))?
                            {
                                h.update(name.as_bytes());
                                h.update([0]);
                                hash_file_into(&mut h, &src).map_err(|e| {
                                    at(step.line, format!("reading COPY source '{name}': {e}"))
                                })?;
                                copy_sources.push((i, Some(src)));
                            }
                        }
                        CopySource::Inline { content, .. } => {
                            h.update(content.as_bytes());
                            copy_sources.push((i, None));
                        }
                    }
                }
            }
            key = hex::encode(h.finalize());

            if let Some(cache) = &req.cache {
                let hit = cache.lookup(&key).filter(|(layer_path, _)| {
                    req.isolation != Isolation::Direct || applies_safely(layer_path, &req.ignore)
                });
                if let Some((layer_path, blob)) = hit {
                    let dest = req
                        .blobs_dir
                        .join(blob.digest.trim_start_matches("sha256:"));
                    std::fs::create_dir_all(&req.blobs_dir)
                        .and_then(|_| link_or_copy(&layer_path, &dest))
                        .map_err(|e| at(step.line, format!("copying cached layer: {e}")))?;
                    // Applied when something needs the root; the root changed, so the snapshot too.
                    lazy.pending.push(layer_path);
                    before = None;
                    tracing::debug!("cache hit: {}", blob.digest);
                    out.cache_hits += 1;
                    out.push_layer(blob, id, &step.text, created_by);
                    continue;
                }
            }

            lazy.ensure().map_err(|m| at(step.line, m))?;
            let before_snap = match before.take() {
                Some(b) => b,
                None => {
                    let t = std::time::Instant::now();
                    let b = snapshot::take(root, &req.ignore)
                        .map_err(|e| at(step.line, format!("snapshotting: {e}")))?;
                    tracing::debug!("snapshot: {} entries in {:?}", b.entries.len(), t.elapsed());
                    b
                }
            };
            match &step.kind {
                StepKind::Workdir(_) => {
                    let host = fsutil::resolve_in_root(root, &state.workdir, true)
                        .map_err(|e| at(step.line, format!("WORKDIR: {e}")))?;
                    fsutil::mkdir_all(&host)
                        .map_err(|e| at(step.line, format!("WORKDIR {}: {e}", state.workdir)))?;
                }
                StepKind::Run(cmd) => {
                    run(root, &state, &stage_args, cmd, req.isolation)
                        .map_err(|m| at(step.line, m))?;
                    out.runs += 1;
                }
                StepKind::Copy {
                    sources,
                    dest,
                    chown,
                    chmod,
                } => {
                    copy(
                        root,
                        &req.ignore,
                        &state,
                        &vars,
                        sources,
                        &copy_sources,
                        dest,
                        chown,
                        chmod,
                    )
                    .map_err(|m| at(step.line, m))?;
                }
                _ => {}
            }
            let after = snapshot::take(root, &req.ignore)
                .map_err(|e| at(step.line, format!("snapshotting: {e}")))?;
            let changes = snapshot::diff(&before_snap, &after);
            let blob =
                snapshot::write_layer(root, &after, &changes, &req.blobs_dir, req.compression)
                    .map_err(|e| at(step.line, format!("writing layer: {e}")))?;
            before = Some(after);
            match blob {
                Some(blob) => {
                    if let Some(cache) = &req.cache {
                        let path = req
                            .blobs_dir
                            .join(blob.digest.trim_start_matches("sha256:"));
                        // A cache write failure only costs a future rebuild.
                        if let Err(e) = cache.store(&key, &path, &blob) {
                            tracing::warn!("extender step cache: {e}");
                        }
                    }
                    out.push_layer(blob, id, &step.text, created_by);
                }
                None => out.history.push(HistoryEntry {
                    created_by,
                    empty_layer: true,
                }),
            }
        }
        out.rebasable &= labels_rebasable.as_deref() == Some("true");
        base_image = format!("{base_image}+{id}");
    }
    // Kind build runs buildpacks on the root; a user name can only be checked against its passwd.
    if req.materialize
        || numeric_uid(&state.user).is_none()
        || numeric_uid(&req.base.user).is_none()
    {
        lazy.ensure()?;
    }
    out.root_current = lazy.is_current();
    out.state = state;
    Ok(out)
}

/// Whether a cached layer may be applied to a live root: it must not touch an ignored path (a
/// platform volume or a mounted file); otherwise the step runs again.
fn applies_safely(layer: &Path, ignore: &Ignore) -> bool {
    match fsutil::layer_touches(layer, ignore) {
        Ok(false) => true,
        Ok(true) => {
            tracing::warn!(
                "cached layer {} touches an ignored path (a volume or mount here): running the step instead",
                layer.display()
            );
            false
        }
        Err(e) => {
            tracing::warn!(
                "cached layer {}: {e}: running the step instead",
                layer.display()
            );
            false
        }
    }
}

/// Hard-links `src` to `dest` (same file system), else copies it.
fn link_or_copy(src: &Path, dest: &Path) -> std::io::Result<()> {
    if dest.exists() || std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dest).map(|_| ())
}

/// The context paths a COPY source names: itself, or every match of a pattern (`*`, `?`, `[...]`,
/// matched per path component like Docker's `filepath.Match`), each as (name, host path).
fn context_sources(context: &Path, src: &str) -> Result<Vec<(String, PathBuf)>, String> {
    if !src.contains(['*', '?', '[']) {
        return Ok(vec![(src.to_string(), context_path(context, src)?)]);
    }
    if src.split('/').any(|c| c == "..") {
        return Err(format!(
            "COPY source '{src}' is outside the build context {}",
            context.display()
        ));
    }
    let matches = fsutil::glob_in(context, src.trim_start_matches('/'))
        .map_err(|e| format!("COPY source '{src}': {e}"))?;
    if matches.is_empty() {
        return Err(format!(
            "COPY source '{src}': no files in the build context {} match",
            context.display()
        ));
    }
    matches
        .into_iter()
        .map(|rel| {
            let name = rel.to_string_lossy().into_owned();
            context_path(context, &name).map(|p| (name, p))
        })
        .collect()
}

/// Resolves a COPY source inside the build context, refusing anything outside it.
fn context_path(context: &Path, src: &str) -> Result<PathBuf, String> {
    let ctx = context
        .canonicalize()
        .map_err(|e| format!("build context {}: {e}", context.display()))?;
    // Lexically first: `..` must not climb out of the context even if the target does not exist.
    let mut lexical = PathBuf::new();
    for c in Path::new(src.trim_start_matches('/')).components() {
        match c {
            std::path::Component::Normal(n) => lexical.push(n),
            std::path::Component::ParentDir if !lexical.pop() => {
                return Err(format!(
                    "COPY source '{src}' is outside the build context {}",
                    context.display()
                ));
            }
            _ => {}
        }
    }
    let joined = ctx.join(lexical);
    let real = joined
        .canonicalize()
        .map_err(|e| format!("COPY source '{src}' not found in the build context: {e}"))?;
    if !real.starts_with(&ctx) {
        return Err(format!(
            "COPY source '{src}' is outside the build context {}",
            context.display()
        ));
    }
    Ok(real)
}

#[allow(clippy::too_many_arguments)]
fn copy(
    root: &Path,
    ignore: &Ignore,
    state: &ImageState,
    vars: &BTreeMap<String, String>,
    sources: &[CopySource],
    resolved: &[(usize, Option<PathBuf>)],
    dest: &str,
    chown: &Option<String>,
    chmod: &Option<String>,
) -> Result<(), String> {
    let dest = expand(dest, vars)?;
    let cwd = if state.workdir.is_empty() {
        "/"
    } else {
        &state.workdir
    };
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        format!("{}/{dest}", cwd.trim_end_matches('/'))
    };
    let (uid, gid) = match chown {
        Some(c) => {
            let c = expand(c, vars)?;
            let (u, g, _) = sandbox::resolve_user(root, &c)?;
            (u, g)
        }
        None => (0, 0),
    };
    let mode = match chmod {
        Some(m) => Some(
            u32::from_str_radix(&expand(m, vars)?, 8)
                .map_err(|_| format!("--chmod={m}: expected an octal mode"))?,
        ),
        None => None,
    };
    let host_dest = fsutil::resolve_in_root(root, &dest_abs, true).map_err(|e| e.to_string())?;
    // The extender never writes into a platform volume or a mounted file (they are not the image's).
    if let Ok(rel) = host_dest.strip_prefix(root) {
        if !rel.as_os_str().is_empty() && ignore.covers(rel) {
            return Err(format!(
                "COPY destination {dest} is a path the extender does not snapshot (a volume, mount or \
                 lifecycle directory): {}",
                host_dest.display()
            ));
        }
    }
    let into_dir = dest.ends_with('/') || resolved.len() > 1 || host_dest.is_dir();
    if into_dir {
        fsutil::mkdir_all(&host_dest).map_err(|e| format!("creating {dest}: {e}"))?;
    } else if let Some(parent) = host_dest.parent() {
        fsutil::mkdir_all(parent).map_err(|e| format!("creating {dest}: {e}"))?;
    }
    for (i, r) in resolved {
        let Some(s) = sources.get(*i) else {
            return Err("COPY source could not be resolved".into());
        };
        match (s, r) {
            (CopySource::Path(_), Some(src)) => {
                let target = if into_dir && !src.is_dir() {
                    host_dest.join(src.file_name().unwrap_or_default())
                } else {
                    host_dest.clone()
                };
                fsutil::copy_tree(src, &target, uid, gid, mode)
                    .map_err(|e| format!("COPY {} to {dest}: {e}", src.display()))?;
            }
            (
                CopySource::Inline {
                    name,
                    content,
                    expand: ex,
                },
                _,
            ) => {
                let content = if *ex {
                    expand_plain(content, vars)?
                } else {
                    content.clone()
                };
                let target = if into_dir {
                    host_dest.join(name)
                } else {
                    host_dest.clone()
                };
                std::fs::write(&target, content).map_err(|e| format!("COPY to {dest}: {e}"))?;
                fsutil::set_owner_mode(&target, uid, gid, Some(mode.unwrap_or(0o644)))
                    .map_err(|e| format!("COPY to {dest}: {e}"))?;
            }
            _ => return Err("COPY source could not be resolved".into()),
        }
    }
    Ok(())
}

fn run(
    root: &Path,
    state: &ImageState,
    stage_args: &BTreeMap<String, String>,
    cmd: &RunCommand,
    isolation: Isolation,
) -> Result<(), String> {
    let argv = match cmd {
        RunCommand::Shell(script) => {
            let mut v = state.shell.clone();
            v.push(script.clone());
            v
        }
        RunCommand::Exec(v) => v.clone(),
    };
    let user = if state.user.is_empty() {
        "0"
    } else {
        &state.user
    };
    let (uid, gid, groups) = sandbox::resolve_user(root, user)?;
    let mut env = state.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(&format!("{k}=")));
    for (k, v) in stage_args {
        if !has(&env, k) {
            env.push(format!("{k}={v}"));
        }
    }
    if !has(&env, "PATH") {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !has(&env, "HOME") {
        let home =
            home_of(root, uid)
                .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
        env.push(format!("HOME={home}"));
    }
    let mut binds = Vec::new();
    let mut created = Vec::new();
    // Creating a missing bind target touches /etc; its times are restored afterwards.
    let etc_times = std::fs::symlink_metadata(root.join("etc")).ok();
    // In place, the step sees the container's own network files.
    if isolation == Isolation::Sandbox && root.join("etc").is_dir() {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            if let Some(host) = sandbox::host_file(f) {
                let inside = root.join(f.trim_start_matches('/'));
                if std::fs::symlink_metadata(&inside).is_err()
                    && std::fs::write(&inside, b"").is_ok()
                {
                    created.push(inside.clone());
                }
                if inside.is_file() {
                    binds.push((host, f.to_string()));
                }
            }
        }
    }
    let workdir = if state.workdir.is_empty() {
        "/".to_string()
    } else {
        state.workdir.clone()
    };
    let spec = StepSpec {
        root: root.to_path_buf(),
        argv,
        env,
        uid,
        gid,
        groups,
        workdir,
        binds,
        isolation,
    };
    let outcome = sandbox::run_step(&spec);
    let touched = !created.is_empty();
    for c in created {
        let _ = std::fs::remove_file(c);
    }
    if let (true, Some(m)) = (touched, etc_times) {
        use std::os::unix::fs::MetadataExt;
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &root.join("etc"),
            &nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec()),
            &nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec()),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    let outcome = outcome.map_err(|e| e.to_string())?;
    if outcome.code != 0 {
        let tail = outcome.tail.trim_end();
        let tail: String = tail
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(format!(
            "RUN failed with exit code {}{}",
            outcome.code,
            if tail.is_empty() {
                String::new()
            } else {
                format!("; output ends with:\n{tail}")
            }
        ));
    }
    Ok(())
}

fn home_of(root: &Path, uid: u32) -> Option<String> {
    crate::privilege::passwd::entry_for_uid(&root.join("etc/passwd"), uid).map(|e| e.home)
}
