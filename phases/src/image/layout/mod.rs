//! OCI image layout store (image-spec "OCI Image Layout": `oci-layout`, `index.json`, `blobs/<alg>/<hex>`;
//! platform spec "Map an image reference to a path in the layout directory", checklist IM-30, IM-31).
//!
//! - Reading accepts OCI and Docker v2 media types, indexes / manifest lists (a platform is selected), tags
//!   through `org.opencontainers.image.ref.name`, and untagged single-manifest layouts (skopeo, the reference's
//!   fixtures).
//! - Writing is crash-safe: blobs are written under a temporary name and renamed to their digest; `index.json`
//!   is replaced atomically (temp file, fsync, rename, directory fsync) under an exclusive `flock` of the
//!   layout directory, so a killed writer leaves the previous `index.json` intact.
//! - Blobs are shared by every image in the layout: writing a blob that exists copies nothing.

mod reference;
mod store;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use cnb_spec::io::{AtomicFile, FILE_MODE};

use sha2::{Digest as _, Sha256};

pub use reference::{path_for_reference, LayoutReference};
pub use store::{tag_of, IndexUpdate, LayoutStore, LayoutWriter};

use super::oci::{self, Descriptor, ImageConfig, Index, Manifest, Platform};
use super::Digest;

/// The `oci-layout` file content this store writes.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Errors of the layout store; each names the layout directory, file or digest.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Filesystem error on a layout file.
    #[error("OCI layout {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `path` is not an OCI layout (no `index.json` or `oci-layout`).
    #[error("{0} is not an OCI image layout (missing index.json or oci-layout)")]
    NotALayout(PathBuf),
    /// A JSON document could not be parsed.
    #[error("invalid {what} in OCI layout {layout}")]
    Json {
        /// The layout directory.
        layout: PathBuf,
        /// What was parsed, e.g. `index.json` or `manifest sha256:…`.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A referenced blob is absent.
    #[error("blob {digest} is missing from OCI layout {layout}")]
    MissingBlob {
        /// The layout directory.
        layout: PathBuf,
        /// The missing digest.
        digest: Digest,
    },
    /// A blob's content does not match its digest.
    #[error("blob {digest} in OCI layout {layout} is corrupt (content hashes to {actual})")]
    Corrupt {
        /// The layout directory.
        layout: PathBuf,
        /// Expected digest.
        digest: Digest,
        /// Actual digest.
        actual: Digest,
    },
    /// No manifest matches the requested tag/digest/platform.
    #[error("no image {selector} in OCI layout {layout} (available: {available})")]
    NotFound {
        /// The layout directory.
        layout: PathBuf,
        /// What was asked for.
        selector: String,
        /// What the index lists.
        available: String,
    },
    /// The index lists several images and no tag was given.
    #[error("OCI layout {layout} holds {count} images; name one by tag or digest")]
    Ambiguous {
        /// The layout directory.
        layout: PathBuf,
        /// How many manifests `index.json` lists.
        count: usize,
    },
    /// A descriptor has a media type this store cannot read as an image.
    #[error("unsupported media type {media_type} for {digest} in OCI layout {layout}")]
    MediaType {
        /// The layout directory.
        layout: PathBuf,
        /// The descriptor's digest.
        digest: Digest,
        /// The media type.
        media_type: String,
    },
    /// An image reference could not be mapped to a layout path.
    #[error("invalid image reference {0:?}")]
    Reference(String),
}

/// Which image of a layout to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The only image in the layout (tagged or not).
    Only,
    /// The first image `index.json` lists (how the exporter reads a previous image).
    First,
    /// The image tagged with this `org.opencontainers.image.ref.name`.
    Tag(String),
    /// The manifest or index with this digest.
    Digest(Digest),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Only => f.write_str("(the only one)"),
            Selector::First => f.write_str("(the first one)"),
            Selector::Tag(t) => write!(f, "tagged {t:?}"),
            Selector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A manifest read from a layout, with its exact bytes and configuration.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Descriptor of the manifest (its digest is the image's manifest digest).
    pub descriptor: Descriptor,
    /// The manifest bytes as stored.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The configuration bytes as stored.
    pub config_bytes: Vec<u8>,
    /// The parsed configuration.
    pub config: ImageConfig,
}

/// What a blob write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Blobs written.
    pub blobs_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Blobs that already existed (nothing copied), mounted ones included.
    pub blobs_reused: u64,
    /// Of the reused blobs, those a registry mounted from another repository.
    pub blobs_mounted: u64,
}

impl WriteStats {
    /// Adds another write's counts.
    pub fn add(&mut self, o: WriteStats) {
        self.blobs_written += o.blobs_written;
        self.bytes_written += o.bytes_written;
        self.blobs_reused += o.blobs_reused;
        self.blobs_mounted += o.blobs_mounted;
    }
}

/// What [`Layout::gc`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcStats {
    /// Blobs deleted.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_removed: u64,
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive `flock` on the layout directory, released on drop.
struct Lock(File);

impl Lock {
    fn take(dir: &Path) -> Result<Self, LayoutError> {
        let f = File::open(dir).map_err(io_err(dir))?;
        // SAFETY: flock on a valid descriptor we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if r != 0 {
            return Err(io_err(dir)(io::Error::last_os_error()));
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above; errors only mean the lock goes away with the descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename, fsync dir.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let mut f = AtomicFile::create(path, FILE_MODE)
        .map_err(io_err(path))?
        .durable();
    f.write_all(bytes).map_err(io_err(path))?;
    f.commit().map_err(io_err(path))
}

impl Layout {
    /// Opens an existing layout (`index.json` and `oci-layout` must exist).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let root = root.into();
        if !root.join("index.json").is_file() || !root.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout(root));
        }
        Ok(Self { root })
    }

    /// Opens a layout, creating the directory, `oci-layout`, `blobs/sha256` and an empty `index.json` as needed.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        cnb_spec::io::create_dirs(&blobs).map_err(io_err(&blobs))?;
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            write_atomic(&marker, OCI_LAYOUT_FILE.as_bytes())?;
        }
        let index = root.join("index.json");
        if !index.is_file() {
            let _lock = Lock::take(&root)?;
            if !index.is_file() {
                let bytes =
                    serde_json::to_vec(&Index::default()).map_err(|source| LayoutError::Json {
                        layout: root.clone(),
                        what: "index.json".into(),
                        source,
                    })?;
                write_atomic(&index, &bytes)?;
            }
        }
        Ok(Self { root })
    }

    /// Whether `path` looks like a layout.
    pub fn exists(path: &Path) -> bool {
        path.join("index.json").is_file() && path.join("oci-layout").is_file()
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory holding `sha256` blobs (usable as an [`crate::archive::Sink::BlobDir`]).
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// Whether the blob exists.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, LayoutError> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                LayoutError::MissingBlob {
                    layout: self.root.clone(),
                    digest: digest.clone(),
                }
            } else {
                io_err(&p)(e)
            }
        })
    }

    /// Reads a (small) blob and verifies its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let mut bytes = Vec::new();
        let p = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_err(&p))?;
        let actual = Digest::sha256_of(&bytes);
        if digest.algorithm() == "sha256" && actual != *digest {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                digest: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` as a blob (nothing is written when it exists); returns its digest and the stats.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, WriteStats), LayoutError> {
        let digest = Digest::sha256_of(bytes);
        if self.has_blob(&digest) {
            return Ok((
                digest,
                WriteStats {
                    blobs_reused: 1,
                    ..WriteStats::default()
                },
            ));
        }
        let dir = self.blob_dir();
        cnb_spec::io::create_dirs(&dir).map_err(io_err(&dir))?;
        let dest = self.blob_path(&digest);
        let mut tmp = AtomicFile::create(&dest, FILE_MODE).map_err(io_err(&dir))?;
        tmp.write_all(bytes).map_err(io_err(&dir))?;
        tmp.commit().map_err(io_err(&dest))?;
        Ok((
            digest,
            WriteStats {
                blobs_written: 1,
                bytes_written: bytes.len() as u64,
                ..WriteStats::default()
            },
        ))
    }

    /// Streams a blob into the layout, hashing as it goes; when `expected` is given and already present,
    /// nothing is read or written. A stream whose digest differs from `expected` is discarded with an error.
    pub fn write_blob_from(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, WriteStats), LayoutError> {
        if let Some(d) = expected {
            if self.has_blob(d) {
                return Ok((
                    d.clone(),
                    WriteStats {
                        blobs_reused: 1,
                        ..WriteStats::default()
                    },
                ));
            }
        }
        let dir = self.blob_dir();
        cnb_spec::io::create_dirs(&dir).map_err(io_err(&dir))?;
        let tmp = AtomicFile::create(&dir.join("incoming"), FILE_MODE).map_err(io_err(&dir))?;
        let mut w = HashingWriter {
            inner: io::BufWriter::with_capacity(256 << 10, tmp),
            hash: Sha256::new(),
            n: 0,
        };
        io::copy(&mut reader, &mut w).map_err(io_err(&dir))?;
        let digest = Digest::from_sha256(w.hash.finalize().into());
        let n = w.n;
        let tmp = w
            .inner
            .into_inner()
            .map_err(|e| io_err(&dir)(e.into_error()))?;
        if let Some(e) = expected {
            if e.algorithm() == "sha256" && *e != digest {
                return Err(LayoutError::Corrupt {
                    layout: self.root.clone(),
                    digest: e.clone(),
                    actual: digest,
                });
            }
        }
        if self.has_blob(&digest) {
            return Ok((
                digest,
                WriteStats {
                    blobs_reused: 1,
                    ..WriteStats::default()
                },
            ));
        }
        let dest = self.blob_path(&digest);
        tmp.commit_as(&dest).map_err(io_err(&dest))?;
        Ok((
            digest,
            WriteStats {
                blobs_written: 1,
                bytes_written: n,
                ..WriteStats::default()
            },
        ))
    }

    /// Reads and parses `index.json`.
    pub fn index(&self) -> Result<Index, LayoutError> {
        let p = self.root.join("index.json");
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                LayoutError::NotALayout(self.root.clone())
            } else {
                io_err(&p)(e)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
            layout: self.root.clone(),
            what: "index.json".into(),
            source,
        })
    }

    /// Replaces `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<(), LayoutError> {
        let bytes = serde_json::to_vec(index).map_err(|source| LayoutError::Json {
            layout: self.root.clone(),
            what: "index.json".into(),
            source,
        })?;
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Adds `manifest` to `index.json` under each of `tags` (moving a tag that pointed elsewhere). With no
    /// tags the descriptor is added untagged unless an identical one is listed. Returns the new index.
    pub fn add_manifest(
        &self,
        manifest: &Descriptor,
        tags: &[String],
    ) -> Result<Index, LayoutError> {
        let _lock = Lock::take(&self.root)?;
        let mut index = self.index()?;
        let mut base = manifest.clone();
        if let Some(a) = base.annotations.as_mut() {
            a.remove(oci::REF_NAME);
            if a.is_empty() {
                base.annotations = None;
            }
        }
        for tag in tags {
            index
                .manifests
                .retain(|d| d.ref_name() != Some(tag.as_str()));
            let mut d = base.clone();
            d.annotations
                .get_or_insert_with(Default::default)
                .insert(oci::REF_NAME.into(), tag.clone());
            index.manifests.push(d);
        }
        if tags.is_empty()
            && !index
                .manifests
                .iter()
                .any(|d| d.digest == base.digest && d.ref_name().is_none())
        {
            index.manifests.push(base);
        }
        self.write_index(&index)?;
        Ok(index)
    }

    /// Removes a tag from `index.json` (blobs stay until [`Layout::gc`]). Returns whether it existed.
    pub fn untag(&self, tag: &str) -> Result<bool, LayoutError> {
        let _lock = Lock::take(&self.root)?;
        let mut index = self.index()?;
        let before = index.manifests.len();
        index.manifests.retain(|d| d.ref_name() != Some(tag));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// The tags listed in `index.json`, in order.
    pub fn tags(&self) -> Result<Vec<String>, LayoutError> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|d| d.ref_name().map(str::to_string))
            .collect())
    }

    /// Finds the manifest for `selector`, descending into an index / manifest list for `platform`
    /// (default: this machine's).
    pub fn resolve(
        &self,
        selector: &Selector,
        platform: Option<&Platform>,
    ) -> Result<ResolvedImage, LayoutError> {
        let index = self.index()?;
        let available = || {
            let v: Vec<String> = index
                .manifests
                .iter()
                .map(|d| match d.ref_name() {
                    Some(t) => format!("{t} ({})", d.digest),
                    None => d.digest.to_string(),
                })
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let not_found = || LayoutError::NotFound {
            layout: self.root.clone(),
            selector: selector.to_string(),
            available: available(),
        };
        let desc = match selector {
            Selector::Only => {
                // Several entries for one digest (several tags) still count as one image.
                let first = index.manifests.first().ok_or_else(not_found)?;
                if index.manifests.iter().any(|d| d.digest != first.digest) {
                    return Err(LayoutError::Ambiguous {
                        layout: self.root.clone(),
                        count: index.manifests.len(),
                    });
                }
                first.clone()
            }
            Selector::First => index.manifests.first().cloned().ok_or_else(not_found)?,
            Selector::Tag(t) => index
                .manifests
                .iter()
                .find(|d| d.ref_name() == Some(t.as_str()))
                .cloned()
                .ok_or_else(not_found)?,
            Selector::Digest(dg) => index
                .manifests
                .iter()
                .find(|d| d.digest == *dg)
                .cloned()
                .unwrap_or_else(|| Descriptor::new(oci::OCI_MANIFEST, dg.clone(), 0)),
        };
        let want = platform.cloned().unwrap_or_else(Platform::current);
        self.resolve_descriptor(desc, &want, 0)
    }

    fn resolve_descriptor(
        &self,
        desc: Descriptor,
        platform: &Platform,
        depth: usize,
    ) -> Result<ResolvedImage, LayoutError> {
        let bytes = self.read_blob(&desc.digest)?;
        let json = |what: String, source| LayoutError::Json {
            layout: self.root.clone(),
            what,
            source,
        };
        // The descriptor's media type may be missing or generic; the document's own says what it is.
        let probe: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| json(format!("manifest {}", desc.digest), e))?;
        let mt = probe
            .get("mediaType")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                if probe.get("manifests").is_some() {
                    oci::OCI_INDEX.to_string()
                } else {
                    desc.media_type.clone()
                }
            });
        if oci::is_index(&mt) && depth < 4 {
            let idx: Index = serde_json::from_slice(&bytes)
                .map_err(|e| json(format!("index {}", desc.digest), e))?;
            let pick = idx
                .manifests
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
                .or_else(|| {
                    if idx.manifests.len() == 1 {
                        idx.manifests.first()
                    } else {
                        None
                    }
                })
                .cloned()
                .ok_or_else(|| LayoutError::NotFound {
                    layout: self.root.clone(),
                    selector: format!(
                        "for platform {}/{} in index {}",
                        platform.os, platform.architecture, desc.digest
                    ),
                    available: idx
                        .manifests
                        .iter()
                        .filter_map(|d| {
                            d.platform
                                .as_ref()
                                .map(|p| format!("{}/{}", p.os, p.architecture))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            return self.resolve_descriptor(pick, platform, depth + 1);
        }
        if !oci::is_manifest(&mt) && probe.get("config").is_none() {
            return Err(LayoutError::MediaType {
                layout: self.root.clone(),
                digest: desc.digest,
                media_type: mt,
            });
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| json(format!("manifest {}", desc.digest), e))?;
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| json(format!("config {}", manifest.config.digest), e))?;
        let mut descriptor = desc;
        descriptor.media_type = mt;
        descriptor.size = bytes.len() as u64;
        Ok(ResolvedImage {
            descriptor,
            manifest_bytes: bytes,
            manifest,
            config_bytes,
            config,
        })
    }

    /// Deletes blobs no manifest in `index.json` (transitively: indexes, manifests, configs, layers) refers
    /// to, and stale temporary files.
    pub fn gc(&self) -> Result<GcStats, LayoutError> {
        let _lock = Lock::take(&self.root)?;
        let index = self.index()?;
        let mut live = std::collections::HashSet::new();
        let mut todo: Vec<Descriptor> = index.manifests.clone();
        while let Some(d) = todo.pop() {
            if !live.insert(d.digest.clone()) || !self.has_blob(&d.digest) {
                continue;
            }
            if oci::is_index(&d.media_type) || oci::is_manifest(&d.media_type) {
                let bytes = self.read_blob(&d.digest)?;
                if let Ok(i) = serde_json::from_slice::<Index>(&bytes) {
                    todo.extend(i.manifests);
                }
                if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                    todo.push(m.config);
                    todo.extend(m.layers);
                }
            }
        }
        let mut stats = GcStats::default();
        let blobs = self.root.join("blobs");
        let algs = match fs::read_dir(&blobs) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stats),
            Err(e) => return Err(io_err(&blobs)(e)),
        };
        for alg in algs {
            let alg = alg.map_err(io_err(&blobs))?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            for b in fs::read_dir(alg.path()).map_err(io_err(&alg.path()))? {
                let b = b.map_err(io_err(&alg.path()))?;
                let name = b.file_name().to_string_lossy().into_owned();
                let keep = format!("{alg_name}:{name}")
                    .parse::<Digest>()
                    .map(|d| live.contains(&d))
                    .unwrap_or(false);
                // A temporary file younger than an hour may belong to a writer still running.
                let fresh_tmp = name.starts_with(".tmp")
                    && b.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() < 3600);
                if !keep && !fresh_tmp {
                    let len = b.metadata().map(|m| m.len()).unwrap_or(0);
                    fs::remove_file(b.path()).map_err(io_err(&b.path()))?;
                    stats.blobs_removed += 1;
                    stats.bytes_removed += len;
                }
            }
        }
        Ok(stats)
    }
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
