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
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cnb_lifecycle::archive::{self, Compression, ExtractOptions, LayerBuilder, Meta, Sink, Source};
use cnb_lifecycle::image::layout::{Layout, Selector};
use cnb_lifecycle::image::oci::Platform;
use cnb_lifecycle::image::{Image, ImageBuilder};
use sha2::{Digest as _, Sha256};

/// Bump when the recipe changes (invalidates cached images).
const RECIPE: &str = "busybox-v1";
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
    if let Ok(md) = fs::metadata(BUSYBOX) {
        h.update(md.len().to_le_bytes());
        if let Ok(t) = md.modified() {
            h.update(format!("{t:?}"));
        }
    }
    hex::encode(&h.finalize()[..8])
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
    let layout =
        Layout::create(dir).unwrap_or_else(|e| panic!("create layout {}: {e}", dir.display()));
    let info = b
        .write(
            Compression::Gzip { level: 6 },
            Sink::BlobDir(layout.blob_dir()),
        )
        .unwrap_or_else(|e| panic!("busybox layer: {e}"));
    let mut img = ImageBuilder::empty(&Platform::current());
    img.add_layer(
        &info,
        Some("busybox-static root filesystem (cnb-acceptance)".into()),
    )
    .unwrap();
    img.set_env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    img.set_env("CNB_USER_ID", &opts.uid.to_string());
    img.set_env("CNB_GROUP_ID", &opts.gid.to_string());
    img.set_user(&format!("{}:{}", opts.uid, opts.gid));
    img.set_working_dir("/");
    img.set_cmd(Some(vec!["/bin/sh".into()]));
    let version = "1.35.0";
    for (k, v) in [
        ("io.buildpacks.stack.id", opts.stack_id.as_str()),
        ("io.buildpacks.base.id", opts.stack_id.as_str()),
        ("io.buildpacks.base.distro.name", "busybox"),
        ("io.buildpacks.base.distro.version", version),
        ("io.buildpacks.base.maintainer", "cnb-lifecycle tests"),
        ("io.buildpacks.base.homepage", "https://busybox.net"),
        ("io.buildpacks.base.released", "1980-01-01T00:00:01Z"),
        (
            "io.buildpacks.base.description",
            "busybox-static build/run image for tests",
        ),
        ("io.buildpacks.base.metadata", "{}"),
        ("io.buildpacks.rebasable", "true"),
    ] {
        img.set_label(k, v);
    }
    for (k, v) in &opts.labels {
        img.set_label(k, v);
    }
    img.set_created(archive::NORMALIZED_MTIME);
    let report = img
        .save_to_layout(&layout, std::slice::from_ref(&opts.tag))
        .unwrap_or_else(|e| panic!("save busybox image: {e}"));
    BaseImage {
        layout: dir.to_path_buf(),
        tag: opts.tag.clone(),
        manifest_digest: report.manifest_digest.to_string(),
        image_id: report.image_id.to_string(),
        diff_id: info.diff_id.to_string(),
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
