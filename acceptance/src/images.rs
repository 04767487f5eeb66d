//! Small base images for tests, built with the project's own layer builder and OCI layout writer (dogfood):
//! a busybox-static root filesystem with a build user, usable as build and run image.
//!
//! The image: one layer with `bin/busybox` and a symlink per applet (`busybox --list-full`, pointing to
//! `/bin/busybox`), `etc/passwd` and `etc/group` with `root` and `cnb` (1000:1000 by default), `etc/hosts`,
//! `home/cnb` owned by the user, `tmp` (1777), `workspace`, `layers`, `cnb` dirs; config `User` =
//! `<uid>:<gid>`, env `PATH`, `CNB_USER_ID`, `CNB_GROUP_ID`, and the `io.buildpacks.*` labels the platform
//! spec asks of build and run images (`io.buildpacks.base.*`, `io.buildpacks.stack.id`, `io.buildpacks.rebasable`).
//!
//! [`busybox`] builds it once per machine state (cached under the system temp dir, keyed by the recipe, the
//! options and the busybox binary), so every test process gets it in milliseconds. Tests that write into a
//! layout must use [`busybox_copy`] (a fresh layout whose blobs are hard links).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cnb_lifecycle::archive::{self, Compression, ExtractOptions, LayerBuilder, Meta, Sink, Source};
use cnb_lifecycle::image::layout::{Layout, Selector};
use cnb_lifecycle::image::oci::Platform;
use cnb_lifecycle::image::{Image, ImageBuilder};
use sha2::{Digest as _, Sha256};

/// Bump when the recipe changes (invalidates cached images).
const RECIPE: &str = "busybox-v2";
/// Where the host's busybox-static lives.
pub const BUSYBOX: &str = "/bin/busybox";
/// The stack/target id the labels carry.
pub const STACK_ID: &str = "io.buildpacks.stacks.busybox";

/// Knobs for [`busybox_with`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseImageOptions {
    /// Build user id.
    pub uid: u32,
    /// Build group id.
    pub gid: u32,
    /// Build user name.
    pub user: String,
    /// `io.buildpacks.stack.id` / `io.buildpacks.base.id`.
    pub stack_id: String,
    /// Tag in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// Extra labels.
    pub labels: Vec<(String, String)>,
}

impl Default for BaseImageOptions {
    fn default() -> Self {
        Self {
            uid: 1000,
            gid: 1000,
            user: "cnb".into(),
            stack_id: STACK_ID.into(),
            tag: "latest".into(),
            labels: Vec::new(),
        }
    }
}

/// A built base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The OCI layout directory.
    pub layout: PathBuf,
    /// Its tag in `index.json`.
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// `sha256:…` of the config (image ID).
    pub image_id: String,
    /// diffID of the single layer.
    pub diff_id: String,
    /// Options it was built with.
    pub options: BaseImageOptions,
}

impl BaseImage {
    /// `<layout>:<tag>`, as skopeo/umoci name it (`oci:` prefix not included).
    pub fn layout_ref(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }
}

fn applets() -> Vec<String> {
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {BUSYBOX} --list-full (apt-get install busybox-static): {e}")
        });
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "bin/busybox" && !l.contains(".."))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn cache_key(opts: &BaseImageOptions) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE);
    h.update(format!("{opts:?}"));
    h.update(compression_fingerprint());
    if let Ok(md) = fs::metadata(BUSYBOX) {
        h.update(md.len().to_le_bytes());
        if let Ok(t) = md.modified() {
            h.update(format!("{t:?}"));
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// What this build's layer compressor makes of a fixed sample, and its block size: a cached image made
/// by a build that compresses differently (another worktree, an older commit) has other layer digests
/// and must not be reused.
fn compression_fingerprint() -> Vec<u8> {
    let sample: Vec<u8> = (0..65_536u32)
        .map(|i| ((i % 251) ^ (i / 256)) as u8)
        .collect();
    let mut w =
        archive::LayerWriter::new(Compression::default(), Sink::Writer(Box::new(io::sink())))
            .expect("layer writer to a sink");
    w.write_all(&sample).expect("write to a sink");
    let info = w.finish().expect("finish a sink layer");
    let mut v = info.digest.to_string().into_bytes();
    v.extend_from_slice(&archive::GZIP_BLOCK.to_le_bytes());
    v
}

/// Builds the image into a new layout at `dir` (which must not exist or be empty).
pub fn build_busybox(dir: &Path, opts: &BaseImageOptions) -> BaseImage {
    let (uid, gid) = (u64::from(opts.uid), u64::from(opts.gid));
    let mut b = LayerBuilder::new();
    b.absolute_names(false);
    let root = |m| Meta::root(m);
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n{u}:x:{uid}:{gid}:{u}:/home/{u}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        u = opts.user,
        uid = opts.uid,
        gid = opts.gid
    );
    let group = format!(
        "root:x:0:\n{u}:x:{gid}:\nnogroup:x:65534:\n",
        u = opts.user,
        gid = opts.gid
    );
    let mut entries: Vec<(String, Source)> = vec![
        (
            "bin".into(),
            Source::Dir {
                path: "bin".into(),
                meta: root(0o755),
            },
        ),
        (
            "bin/busybox".into(),
            Source::File {
                path: "bin/busybox".into(),
                host: BUSYBOX.into(),
                meta: root(0o755),
            },
        ),
        (
            "cnb".into(),
            Source::Dir {
                path: "cnb".into(),
                meta: root(0o755),
            },
        ),
        (
            "etc".into(),
            Source::Dir {
                path: "etc".into(),
                meta: root(0o755),
            },
        ),
        (
            "etc/group".into(),
            Source::Bytes {
                path: "etc/group".into(),
                data: group.into_bytes(),
                meta: root(0o644),
            },
        ),
        (
            "etc/hosts".into(),
            Source::Bytes {
                path: "etc/hosts".into(),
                data: b"127.0.0.1 localhost\n::1 localhost\n".to_vec(),
                meta: root(0o644),
            },
        ),
        (
            "etc/passwd".into(),
            Source::Bytes {
                path: "etc/passwd".into(),
                data: passwd.into_bytes(),
                meta: root(0o644),
            },
        ),
        (
            "home".into(),
            Source::Dir {
                path: "home".into(),
                meta: root(0o755),
            },
        ),
        (
            format!("home/{}", opts.user),
            Source::Dir {
                path: format!("home/{}", opts.user),
                meta: Meta::new(0o755, uid, gid),
            },
        ),
        (
            "layers".into(),
            Source::Dir {
                path: "layers".into(),
                meta: Meta::new(0o755, uid, gid),
            },
        ),
        (
            "root".into(),
            Source::Dir {
                path: "root".into(),
                meta: root(0o700),
            },
        ),
        (
            "tmp".into(),
            Source::Dir {
                path: "tmp".into(),
                meta: root(0o1777),
            },
        ),
        (
            "workspace".into(),
            Source::Dir {
                path: "workspace".into(),
                meta: Meta::new(0o755, uid, gid),
            },
        ),
    ];
    for a in applets() {
        entries.push((
            a.clone(),
            Source::Symlink {
                path: a,
                target: "/bin/busybox".into(),
                meta: root(0o777),
            },
        ));
    }
    entries.sort_by(|x, y| x.0.cmp(&y.0));
    for (_, s) in entries {
        b.add(s);
    }
    let mut spec = ImageSpec {
        tag: opts.tag.clone(),
        ..ImageSpec::default()
    };
    spec.build_user(opts.uid, opts.gid);
    spec.env.insert(
        0,
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
    );
    spec.working_dir = Some("/".into());
    spec.cmd = Some(vec!["/bin/sh".into()]);
    spec.base_labels(&BaseLabels {
        id: &opts.stack_id,
        distro_name: "busybox",
        distro_version: "1.35.0",
        description: "busybox-static build/run image for tests",
        homepage: "https://busybox.net",
    });
    spec.labels.extend(opts.labels.iter().cloned());
    let report = write_image(
        dir,
        vec![ImageLayer {
            layer: b,
            created_by: "busybox-static root filesystem (cnb-acceptance)".into(),
        }],
        &spec,
    )
    .unwrap_or_else(|e| panic!("save busybox image: {e}"));
    let info = report.diff_ids.last().cloned().unwrap_or_default();
    BaseImage {
        layout: dir.to_path_buf(),
        tag: opts.tag.clone(),
        manifest_digest: report.manifest_digest,
        image_id: report.image_id,
        diff_id: info,
        options: opts.clone(),
    }
}

/// The default busybox image (uid/gid 1000 `cnb`), built once and cached; treat the layout as read-only.
pub fn busybox() -> &'static BaseImage {
    static IMG: OnceLock<BaseImage> = OnceLock::new();
    IMG.get_or_init(|| busybox_with(&BaseImageOptions::default()))
}

/// A cached image with custom options; treat the layout as read-only.
pub fn busybox_with(opts: &BaseImageOptions) -> BaseImage {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("cnb-acceptance-{}", cache_key(opts)));
    if let Ok(img) = read_cached(&dir, opts) {
        return img;
    }
    let tmp = tempfile::Builder::new()
        .prefix(".cnb-acceptance-build-")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir for base image");
    let built = build_busybox(&tmp.path().join("layout"), opts);
    match fs::rename(tmp.path().join("layout"), &dir) {
        Ok(()) => BaseImage {
            layout: dir,
            ..built
        },
        // Another process won the race: use its (identical) image.
        Err(_) => read_cached(&dir, opts)
            .unwrap_or_else(|e| panic!("cached base image {}: {e}", dir.display())),
    }
}

fn read_cached(dir: &Path, opts: &BaseImageOptions) -> Result<BaseImage, String> {
    let img = Image::from_layout(dir, &Selector::Tag(opts.tag.clone()), None)
        .map_err(|e| e.to_string())?;
    // Every blob must be present (a half-deleted cache is rebuilt).
    let layout = img.layout().ok_or("not a layout")?;
    for l in &img.manifest().layers {
        if !layout.has_blob(&l.digest) {
            return Err(format!("missing blob {}", l.digest));
        }
    }
    Ok(BaseImage {
        layout: dir.to_path_buf(),
        tag: opts.tag.clone(),
        manifest_digest: img.manifest_digest().to_string(),
        image_id: img.image_id().to_string(),
        diff_id: img.top_layer().map(|d| d.to_string()).unwrap_or_default(),
        options: opts.clone(),
    })
}

/// Copies the default image into a fresh layout at `dest` (blobs hard-linked when possible) for tests that
/// write into it.
pub fn busybox_copy(dest: &Path) -> BaseImage {
    copy_layout(busybox(), dest)
}

/// Copies `img`'s layout to `dest` (blobs hard-linked when possible, else copied).
pub fn copy_layout(img: &BaseImage, dest: &Path) -> BaseImage {
    fs::create_dir_all(dest.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(img.layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let to = dest.join("blobs/sha256").join(e.file_name());
        if fs::hard_link(e.path(), &to).is_err() {
            fs::copy(e.path(), &to).unwrap();
        }
    }
    for f in ["index.json", "oci-layout"] {
        fs::copy(img.layout.join(f), dest.join(f)).unwrap();
    }
    BaseImage {
        layout: dest.to_path_buf(),
        ..img.clone()
    }
}

/// Extracts the default image's root filesystem into `dest` (created if needed); ownership is kept when
/// running as root.
pub fn busybox_rootfs(dest: &Path) {
    let img = busybox();
    fs::create_dir_all(dest).unwrap();
    let image = Image::from_layout(&img.layout, &Selector::Tag(img.tag.clone()), None).unwrap();
    for l in image.layers().unwrap() {
        let r = image.open_blob(&l.descriptor.digest).unwrap();
        archive::extract(r, dest, &ExtractOptions::default()).unwrap();
    }
}

// ---- The shared image writer (used by `busybox` above and by the `cnb-mkimage` developer tool) ----------

/// The configuration of an image written by [`write_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Tag in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// `Env`, in order (a later key replaces an earlier one).
    pub env: Vec<(String, String)>,
    /// `User` (`uid:gid` or a name).
    pub user: Option<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Labels`, in order (a later key replaces an earlier one).
    pub labels: Vec<(String, String)>,
    /// `created` (seconds since the epoch); 1980-01-01T00:00:01Z by default, for reproducible digests.
    pub created: i64,
    /// Layer compression.
    pub compression: Compression,
    /// OCI architecture of the image (`amd64`, `arm64`); `None`: this machine's.
    pub architecture: Option<String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            tag: "latest".into(),
            env: Vec::new(),
            user: None,
            working_dir: None,
            entrypoint: None,
            cmd: None,
            labels: Vec::new(),
            created: archive::NORMALIZED_MTIME,
            compression: Compression::Gzip { level: 6 },
            architecture: None,
        }
    }
}

/// The `io.buildpacks.*` labels a CNB build or run image carries (platform spec, "Build image" /
/// "Run image"), set by [`ImageSpec::base_labels`].
#[derive(Debug, Clone, Copy)]
pub struct BaseLabels<'a> {
    /// `io.buildpacks.base.id` and the deprecated `io.buildpacks.stack.id`.
    pub id: &'a str,
    /// `io.buildpacks.base.distro.name`.
    pub distro_name: &'a str,
    /// `io.buildpacks.base.distro.version`.
    pub distro_version: &'a str,
    /// `io.buildpacks.base.description`.
    pub description: &'a str,
    /// `io.buildpacks.base.homepage`.
    pub homepage: &'a str,
}

impl ImageSpec {
    /// The build user: `User uid:gid` and `CNB_USER_ID`/`CNB_GROUP_ID` in `Env`.
    pub fn build_user(&mut self, uid: u32, gid: u32) {
        self.user = Some(format!("{uid}:{gid}"));
        self.env.push(("CNB_USER_ID".into(), uid.to_string()));
        self.env.push(("CNB_GROUP_ID".into(), gid.to_string()));
    }

    /// The base-image labels (stack id, `io.buildpacks.base.*`, `io.buildpacks.rebasable=true`).
    pub fn base_labels(&mut self, l: &BaseLabels<'_>) {
        for (k, v) in [
            ("io.buildpacks.stack.id", l.id),
            ("io.buildpacks.base.id", l.id),
            ("io.buildpacks.base.distro.name", l.distro_name),
            ("io.buildpacks.base.distro.version", l.distro_version),
            ("io.buildpacks.base.maintainer", "cnb-lifecycle samples"),
            ("io.buildpacks.base.homepage", l.homepage),
            ("io.buildpacks.base.released", "1980-01-01T00:00:01Z"),
            ("io.buildpacks.base.description", l.description),
            ("io.buildpacks.base.metadata", "{}"),
            ("io.buildpacks.rebasable", "true"),
        ] {
            self.labels.push((k.into(), v.into()));
        }
    }
}

/// One layer of an image written by [`write_image`].
#[derive(Debug, Clone)]
pub struct ImageLayer {
    /// Its content.
    pub layer: LayerBuilder,
    /// The history entry's `created_by`.
    pub created_by: String,
}

/// What [`write_image`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenImage {
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// `sha256:…` of the config (image ID).
    pub image_id: String,
    /// The layers' diffIDs, bottom first.
    pub diff_ids: Vec<String>,
}

/// Writes an image of `layers` (bottom first) with `spec`'s configuration into the OCI layout `dir`
/// (created when missing; other images in it are kept), OCI media types, platform of this machine.
pub fn write_image(
    dir: &Path,
    layers: Vec<ImageLayer>,
    spec: &ImageSpec,
) -> Result<WrittenImage, String> {
    let layout = Layout::create(dir).map_err(|e| format!("layout {}: {e}", dir.display()))?;
    let mut platform = Platform::current();
    if let Some(arch) = &spec.architecture {
        platform.architecture = arch.clone();
    }
    let mut img = ImageBuilder::empty(&platform);
    let mut diff_ids = Vec::new();
    for l in layers {
        let info = l
            .layer
            .write(spec.compression, Sink::BlobDir(layout.blob_dir()))
            .map_err(|e| format!("layer '{}': {e}", l.created_by))?;
        img.add_layer(&info, Some(l.created_by.clone()))
            .map_err(|e| format!("layer '{}': {e}", l.created_by))?;
        diff_ids.push(info.diff_id.to_string());
    }
    for (k, v) in &spec.env {
        img.set_env(k, v);
    }
    if let Some(u) = &spec.user {
        img.set_user(u);
    }
    if let Some(w) = &spec.working_dir {
        img.set_working_dir(w);
    }
    img.set_entrypoint(spec.entrypoint.clone());
    img.set_cmd(spec.cmd.clone());
    for (k, v) in &spec.labels {
        img.set_label(k, v);
    }
    img.set_created(spec.created);
    let report = img
        .save_to_layout(&layout, std::slice::from_ref(&spec.tag))
        .map_err(|e| format!("save image to {}: {e}", dir.display()))?;
    Ok(WrittenImage {
        manifest_digest: report.manifest_digest.to_string(),
        image_id: report.image_id.to_string(),
        diff_ids,
    })
}

/// What [`rootfs_layer`] left out of a root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Device nodes, fifos and sockets (a runtime provides `/dev`); image paths.
    pub special: Vec<String>,
}

/// A layer holding the root filesystem `rootfs` (its children at `/`), entries sorted, mtimes normalised.
///
/// With `owner`, every entry gets that owner. Without it each entry keeps its owner on the host: a
/// subtree whose entries all share one owner is added as one tree (hard links kept), other entries one
/// by one (hard links there are stored as copies). Device nodes, fifos and sockets are left out and
/// listed in [`Skipped`].
pub fn rootfs_layer(
    rootfs: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(LayerBuilder, Skipped), String> {
    let mut b = LayerBuilder::new();
    b.absolute_names(false);
    let mut skipped = Skipped::default();
    let md = fs::symlink_metadata(rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
    if !md.is_dir() {
        return Err(format!("{}: not a directory", rootfs.display()));
    }
    if let Some((uid, gid)) = owner {
        b.add(Source::Tree(archive::TreeSource {
            host: rootfs.to_path_buf(),
            path: "/".into(),
            uid: uid.into(),
            gid: gid.into(),
            parents: archive::Parents::Omit,
        }));
        return Ok((b, skipped));
    }
    let mut uniform = std::collections::HashMap::new();
    scan_uniform(rootfs, &mut uniform)?;
    add_children(&mut b, rootfs, "", &uniform, &mut skipped)?;
    Ok((b, skipped))
}

/// Records, for every directory below `dir` (and `dir`), the single owner of its whole subtree, or `None`
/// when owners differ or a device node, fifo or socket is inside. Returns the subtree's.
fn scan_uniform(
    dir: &Path,
    out: &mut std::collections::HashMap<PathBuf, Option<(u32, u32)>>,
) -> Result<Option<(u32, u32)>, String> {
    use std::os::unix::fs::MetadataExt as _;
    let md = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut own = Some((md.uid(), md.gid()));
    for e in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let p = e.path();
        let cmd = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let ft = cmd.file_type();
        let child = if ft.is_dir() {
            scan_uniform(&p, out)?
        } else if ft.is_file() || ft.is_symlink() {
            Some((cmd.uid(), cmd.gid()))
        } else {
            None
        };
        if child != own {
            own = None;
        }
    }
    out.insert(dir.to_path_buf(), own);
    Ok(own)
}

fn add_children(
    b: &mut LayerBuilder,
    dir: &Path,
    image_dir: &str,
    uniform: &std::collections::HashMap<PathBuf, Option<(u32, u32)>>,
    skipped: &mut Skipped,
) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::MetadataExt as _;
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let host = dir.join(&n);
        let name = n
            .to_str()
            .ok_or_else(|| format!("{}: file name is not UTF-8", host.display()))?;
        let path = if image_dir.is_empty() {
            name.to_string()
        } else {
            format!("{image_dir}/{name}")
        };
        let md = fs::symlink_metadata(&host).map_err(|e| format!("{}: {e}", host.display()))?;
        let meta = Meta::new(md.mode() & 0o7777, md.uid().into(), md.gid().into());
        let ft = md.file_type();
        if ft.is_dir() {
            if let Some(Some((uid, gid))) = uniform.get(&host) {
                b.add(Source::Tree(archive::TreeSource {
                    host,
                    path,
                    uid: (*uid).into(),
                    gid: (*gid).into(),
                    parents: archive::Parents::Omit,
                }));
            } else {
                b.add(Source::Dir {
                    path: path.clone(),
                    meta,
                });
                add_children(b, &host, &path, uniform, skipped)?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| format!("{}: {e}", host.display()))?;
            let target = target
                .to_str()
                .ok_or_else(|| format!("{}: link target is not UTF-8", host.display()))?
                .to_string();
            b.add(Source::Symlink { path, target, meta });
        } else if ft.is_file() {
            b.add(Source::File { path, host, meta });
        } else {
            skipped.special.push(path);
        }
    }
    Ok(())
}

/// The labels and working directory the reference gives its lifecycle image (`buildpacksio/lifecycle`),
/// derived from `lifecycle.toml`: `io.buildpacks.lifecycle.version`, `io.buildpacks.lifecycle.apis`
/// (`{"buildpack":{"deprecated":[…],"supported":[…]},"platform":{…}}`) and the legacy
/// `io.buildpacks.builder.metadata` (`{"lifecycle":{"version":…},"api":{"buildpack":…,"platform":…}}`,
/// the first supported version of each); `WorkingDir` `/layers`.
pub fn apply_lifecycle_descriptor(
    spec: &mut ImageSpec,
    descriptor_toml: &str,
) -> Result<(), String> {
    let t: toml::Table = descriptor_toml
        .parse()
        .map_err(|e| format!("lifecycle.toml: {e}"))?;
    let version = t
        .get("lifecycle")
        .and_then(|l| l.get("version"))
        .and_then(|v| v.as_str())
        .ok_or("lifecycle.toml: no [lifecycle] version")?
        .to_string();
    let set = |kind: &str| -> Result<(Vec<String>, Vec<String>), String> {
        let s = t
            .get("apis")
            .and_then(|a| a.get(kind))
            .ok_or_else(|| format!("lifecycle.toml: no [apis.{kind}]"))?;
        let list = |k: &str| -> Vec<String> {
            s.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok((list("deprecated"), list("supported")))
    };
    let (bp_dep, bp_sup) = set("buildpack")?;
    let (pl_dep, pl_sup) = set("platform")?;
    let apis = serde_json::json!({
        "buildpack": {"deprecated": bp_dep, "supported": bp_sup},
        "platform": {"deprecated": pl_dep, "supported": pl_sup},
    });
    let legacy = serde_json::json!({
        "lifecycle": {"version": version},
        "api": {
            "buildpack": bp_sup.first().cloned().unwrap_or_default(),
            "platform": pl_sup.first().cloned().unwrap_or_default(),
        },
    });
    spec.labels
        .push(("io.buildpacks.lifecycle.version".into(), version.clone()));
    spec.labels
        .push(("io.buildpacks.lifecycle.apis".into(), apis.to_string()));
    spec.labels
        .push(("io.buildpacks.builder.metadata".into(), legacy.to_string()));
    spec.working_dir = Some("/layers".into());
    Ok(())
}
