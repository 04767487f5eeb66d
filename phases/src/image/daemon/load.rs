//! Writing an image into a daemon (`POST /images/load`): one docker-archive stream — the
//! configuration, a `manifest.json` naming it, its tag and the layer files — that both the classic and
//! the containerd image store accept; the image ID is read back from the daemon by inspecting the
//! tag (never a registry digest).
//!
//! Layers the daemon already has are not sent where the Engine allows it: with the classic store the
//! leading layers that form a chain of an image in the daemon (the run image, the unchanged bottom
//! of the previous image) go as empty entries, which the daemon resolves by chain ID. If that load
//! fails, or with the containerd store, every layer is sent (read from the daemon if needed), as the
//! reference does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use tracing::debug;

use super::blobs::{copy_to_file, is_gzip, source_of};
use super::Daemon;
use crate::cache::{Cache, VolumeCache};
use crate::image::layout::WriteStats;
use crate::image::store::{ImageWriter, LayerEncoding, SavedImage};
use crate::image::{Digest, Image, ImageError, LayerRef};

/// Where the bytes of one layer of the new image come from.
#[derive(Clone)]
enum Source {
    /// An uncompressed tar on this machine.
    File(PathBuf),
    /// A layer of an image in the daemon (its diffIDs, for chain matching).
    Daemon(Box<Image>),
}

/// Writes one image into the daemon under one name (`repo:tag`).
pub struct DaemonWriter {
    daemon: Arc<Daemon>,
    name: String,
    scratch: tempfile::TempDir,
    sources: Mutex<HashMap<Digest, Source>>,
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    omitted: AtomicU64,
    launch_cache: Option<Mutex<VolumeCache>>,
}

impl DaemonWriter {
    pub(super) fn new(
        daemon: Arc<Daemon>,
        name: String,
        launch_cache: Option<&Path>,
    ) -> Result<Self, ImageError> {
        let launch_cache = launch_cache
            .map(|dir| {
                VolumeCache::open(dir)
                    .map(Mutex::new)
                    .map_err(|e| ImageError::Invalid {
                        image: name.clone(),
                        reason: format!("launch cache: {}", crate::error::chain(&e)),
                    })
            })
            .transpose()?;
        let scratch = tempfile::Builder::new()
            .prefix("cnb-daemon-export-")
            .tempdir()
            .map_err(|source| ImageError::Io {
                image: name.clone(),
                what: "temp dir".into(),
                source,
            })?;
        Ok(Self {
            daemon,
            name,
            scratch,
            sources: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            omitted: AtomicU64::new(0),
            launch_cache,
        })
    }

    fn io(&self, what: String, source: io::Error) -> ImageError {
        ImageError::Io {
            image: self.name.clone(),
            what,
            source,
        }
    }

    fn record(&self, diff_id: &Digest, source: Source) {
        if let Ok(mut m) = self.sources.lock() {
            m.insert(diff_id.clone(), source);
        }
    }

    fn source(&self, diff_id: &Digest) -> Option<Source> {
        self.sources.lock().ok()?.get(diff_id).cloned()
    }

    /// An uncompressed tar of `layer` at a path in the scratch dir (gzip blobs are decompressed).
    fn as_tar(&self, path: &Path, layer: &LayerRef) -> Result<PathBuf, ImageError> {
        if !layer.descriptor.media_type.ends_with("gzip") {
            return Ok(path.to_path_buf());
        }
        let out = self
            .scratch
            .path()
            .join(format!("{}.tar", layer.diff_id.hex()));
        let f = File::open(path).map_err(|e| self.io(format!("layer {}", layer.diff_id), e))?;
        copy_to_file(flate2::read::MultiGzDecoder::new(f), &out)
            .map_err(|e| self.io(format!("layer {}", layer.diff_id), e))?;
        let _ = std::fs::remove_file(path);
        Ok(out)
    }

    /// How many leading layers can go as empty entries: the longest prefix that is the bottom of an
    /// image in the daemon (0 with the containerd store).
    fn omittable(&self, layers: &[LayerRef]) -> usize {
        if self.daemon.containerd {
            return 0;
        }
        let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        let mut best = 0;
        for (i, l) in layers.iter().enumerate() {
            let Some(Source::Daemon(img)) = self.source(&l.diff_id) else {
                break;
            };
            let chain = img.diff_ids();
            if chain.len() > i && chain[..=i].iter().zip(&diff_ids).all(|(a, b)| a == *b) {
                best = i + 1;
            } else {
                break;
            }
        }
        best
    }

    /// The file of a layer that must be sent.
    fn file_of(&self, layer: &LayerRef) -> Result<PathBuf, ImageError> {
        match self.source(&layer.diff_id) {
            Some(Source::File(p)) => Ok(p),
            Some(Source::Daemon(img)) => {
                let blobs = source_of(&self.daemon, &img).ok_or_else(|| ImageError::Invalid {
                    image: self.name.clone(),
                    reason: "layer source is not an image of this daemon".into(),
                })?;
                let p = blobs.layer_file(&layer.diff_id)?;
                if !is_gzip(&p) {
                    return Ok(p);
                }
                // A compressed saved layer (containerd store) is decompressed once.
                let out = self
                    .scratch
                    .path()
                    .join(format!("{}.tar", layer.diff_id.hex()));
                if !out.exists() {
                    copy_to_file(img.open_blob(&layer.diff_id)?, &out)
                        .map_err(|e| self.io(format!("layer {}", layer.diff_id), e))?;
                }
                Ok(out)
            }
            None => Err(ImageError::LayerNotFound {
                image: self.name.clone(),
                diff_id: layer.diff_id.clone(),
            }),
        }
    }

    /// Keeps every layer of the new image whose tar is at hand in the launch cache (new layers,
    /// layers already cached) and commits it; a failure only warns, the image is saved.
    fn commit_launch_cache(&self, layers: &[LayerRef]) {
        let Some(cache) = &self.launch_cache else {
            return;
        };
        let Ok(mut cache) = cache.lock() else {
            return;
        };
        let dir = cache.dir().to_path_buf();
        let mut result = Ok(());
        for l in layers {
            let d = l.diff_id.as_str();
            let r = match self.source(&l.diff_id) {
                Some(Source::File(p)) => cache.add_layer_file(&p, d),
                _ if VolumeCache::committed_layer(&dir, d).is_some() => cache.reuse_layer(d),
                _ => Ok(()),
            };
            if r.is_err() {
                result = r;
                break;
            }
        }
        if let Err(e) = result.and_then(|()| cache.commit()) {
            tracing::warn!("Failed to update the launch cache {}: {e}", dir.display());
        }
    }

    /// One load with the first `omit` layers as empty entries.
    fn load(&self, config: &[u8], layers: &[LayerRef], omit: usize) -> Result<(), ImageError> {
        let mut files = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate() {
            files.push(if i < omit {
                None
            } else {
                Some(self.file_of(l)?)
            });
        }
        let id = Digest::sha256_of(config);
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let config = config.to_vec();
        let name = self.name.clone();
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let producer = std::thread::spawn(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let r = write_archive(&mut w, &id, &config, &name, &diff_ids, &files)
                .and_then(|sent| w.flush().map(|()| sent));
            if let Err(e) = &r {
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            r
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let opts = bollard::query_parameters::ImportImageOptionsBuilder::new()
            .quiet(true)
            .build();
        let daemon_result = self.daemon.block_on(async {
            let mut s = self.daemon.docker.import_image_stream(opts, stream, None);
            while let Some(item) = s.next().await {
                let info =
                    item.map_err(|e| self.daemon.err(format!("loading image '{}'", self.name), e))?;
                if let Some(d) = info.error_detail {
                    return Err(self.daemon.err(
                        format!("loading image '{}'", self.name),
                        d.message.unwrap_or_default(),
                    ));
                }
            }
            Ok(())
        });
        let produced = producer.join();
        daemon_result?;
        let (count, bytes) = match produced {
            Ok(Ok(sent)) => sent,
            Ok(Err(e)) => return Err(self.io("load stream".into(), e)),
            Err(_) => {
                return Err(ImageError::Invalid {
                    image: self.name.clone(),
                    reason: "the load stream thread panicked".into(),
                })
            }
        };
        self.sent.fetch_add(count, Ordering::Relaxed);
        self.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.omitted.fetch_add(omit as u64, Ordering::Relaxed);
        Ok(())
    }
}

const CHUNK: usize = 1 << 20;

/// Sends what is written as chunks into the load request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon closed the load request",
            )
        })
    }
}

fn entry(name: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

/// Writes the docker-archive: `<id>.json`, the layers (`<diffID hex>/layer.tar`, or an empty
/// `blank_<n>` for an omitted one), `manifest.json`. Returns the layers sent with content and their
/// bytes.
fn write_archive(
    w: &mut dyn Write,
    id: &Digest,
    config: &[u8],
    name: &str,
    diff_ids: &[Digest],
    files: &[Option<PathBuf>],
) -> io::Result<(u64, u64)> {
    let mut t = tar::Builder::new(w);
    let config_name = format!("{}.json", id.hex());
    t.append(&entry(&config_name, config.len() as u64)?, config)?;
    let mut layer_names = Vec::with_capacity(files.len());
    let (mut count, mut bytes) = (0u64, 0u64);
    for (i, (d, f)) in diff_ids.iter().zip(files).enumerate() {
        match f {
            None => {
                let n = format!("blank_{i}");
                t.append(&entry(&n, 0)?, io::empty())?;
                layer_names.push(n);
            }
            Some(p) => {
                let n = format!("{}/layer.tar", d.hex());
                let file = File::open(p)?;
                let size = file.metadata()?.len();
                t.append(&entry(&n, size)?, file)?;
                layer_names.push(n);
                count += 1;
                bytes += size;
            }
        }
    }
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [name],
        "Layers": layer_names,
    }]))
    .map_err(io::Error::other)?;
    t.append(
        &entry("manifest.json", manifest.len() as u64)?,
        manifest.as_slice(),
    )?;
    t.into_inner()?;
    Ok((count, bytes))
}

impl ImageWriter for DaemonWriter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn layer_encoding(&self) -> LayerEncoding {
        LayerEncoding::Tar
    }

    fn scratch_dir(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    fn has_layer(&self, _layer: &LayerRef) -> Result<bool, ImageError> {
        Ok(false)
    }

    fn put_layer_file(&self, path: &Path, layer: &LayerRef) -> Result<(), ImageError> {
        let tar = self.as_tar(path, layer)?;
        self.record(&layer.diff_id, Source::File(tar));
        Ok(())
    }

    fn copy_layer(&self, from: &Image, layer: &LayerRef) -> Result<(), ImageError> {
        if self.source(&layer.diff_id).is_some() {
            return Ok(());
        }
        if source_of(&self.daemon, from).is_some() {
            self.record(&layer.diff_id, Source::Daemon(Box::new(from.clone())));
            return Ok(());
        }
        // A layer of a layout or registry image: its uncompressed tar.
        let out = self
            .scratch
            .path()
            .join(format!("{}.in", layer.descriptor.digest.hex()));
        let r = from.open_blob(&layer.descriptor.digest)?;
        copy_to_file(r, &out).map_err(|e| self.io(format!("layer {}", layer.diff_id), e))?;
        self.put_layer_file(&out, layer)
    }

    fn commit(
        &self,
        config: &[u8],
        _manifest: &[u8],
        _manifest_media_type: &str,
        layers: &[LayerRef],
    ) -> Result<SavedImage, ImageError> {
        let omit = self.omittable(layers);
        debug!(
            "Loading {} into the daemon: {} of {} layers already there",
            self.name,
            omit,
            layers.len()
        );
        if let Err(e) = self.load(config, layers, omit) {
            if omit == 0 {
                return Err(e);
            }
            debug!("Load with omitted layers failed ({e}); sending every layer");
            self.load(config, layers, 0)?;
        }
        self.commit_launch_cache(layers);
        let inspect = self
            .daemon
            .inspect(&self.name)?
            .ok_or_else(|| ImageError::Invalid {
                image: self.name.clone(),
                reason: "not found in the daemon after loading it".into(),
            })?;
        let id = inspect.id.unwrap_or_default();
        let image_id: Digest = id.parse().map_err(|_| ImageError::Invalid {
            image: self.name.clone(),
            reason: format!("the daemon reported image ID {id:?}"),
        })?;
        Ok(SavedImage {
            manifest_digest: None,
            manifest_size: 0,
            image_id,
            stats: WriteStats::default(),
        })
    }

    fn stats(&self) -> WriteStats {
        WriteStats {
            blobs_written: self.sent.load(Ordering::Relaxed),
            bytes_written: self.sent_bytes.load(Ordering::Relaxed),
            blobs_reused: self.omitted.load(Ordering::Relaxed),
            blobs_mounted: 0,
        }
    }
}
