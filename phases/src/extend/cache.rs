//! The extender's step cache (checklist EX-04, EX-I2; what kaniko's `/kaniko/cache/layers` did): a
//! layer per file-system step, keyed by the chain of base digest + instructions + args + env + context
//! file content, expiring after the TTL (`-kaniko-cache-ttl`, `CNB_KANIKO_CACHE_TTL`, default 336h).
//!
//! Layout: `<dir>/keys/<key>.json` (`{blob, created}`) and `<dir>/blobs/<hex>` (the layer blob:
//! gzip for run images, plain tar for the build image). Expired entries are ignored by
//! [`StepCache::lookup`] and deleted with their blobs by [`StepCache::prune`], which the extender
//! runs after every extension.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::snapshot::LayerBlob;

/// A step cache directory with a time to live.
#[derive(Debug, Clone)]
pub struct StepCache {
    /// Cache root.
    pub dir: PathBuf,
    /// Entries older than this are ignored.
    pub ttl: Duration,
}

/// How long an unreferenced blob is kept by [`StepCache::prune`] (it may be a concurrent store).
pub const PRUNE_GRACE: Duration = Duration::from_secs(600);

/// What [`StepCache::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Expired or unreadable entries.
    pub entries: usize,
    /// Blobs no live entry refers to.
    pub blobs: usize,
    /// Bytes of those blobs.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    blob: LayerBlob,
    created: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl StepCache {
    /// A cache rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>, ttl: Duration) -> Self {
        StepCache {
            dir: dir.into(),
            ttl,
        }
    }

    fn key_path(&self, key: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{key}.json"))
    }

    /// The cached layer for `key`, if present, intact-looking and not expired.
    pub fn lookup(&self, key: &str) -> Option<(PathBuf, LayerBlob)> {
        let text = std::fs::read(self.key_path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        if now().saturating_sub(entry.created) > self.ttl.as_secs() {
            return None;
        }
        let path = self
            .dir
            .join("blobs")
            .join(entry.blob.digest.trim_start_matches("sha256:"));
        let size = std::fs::metadata(&path).ok()?.len();
        (size == entry.blob.size).then_some((path, entry.blob))
    }

    /// Removes expired entries (older than the TTL, or unreadable) and the blobs no entry refers to
    /// any more. A blob younger than [`PRUNE_GRACE`] is kept even when unreferenced: another extender
    /// sharing the cache may have stored it and not yet written its key.
    pub fn prune(&self) -> std::io::Result<PruneStats> {
        let mut stats = PruneStats::default();
        let keys = self.dir.join("keys");
        let blobs = self.dir.join("blobs");
        let mut live = std::collections::BTreeSet::new();
        let rd = match std::fs::read_dir(&keys) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stats),
            Err(e) => return Err(e),
        };
        let now = now();
        for e in rd {
            let path = e?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let entry = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            match entry {
                Some(en) if now.saturating_sub(en.created) <= self.ttl.as_secs() => {
                    live.insert(en.blob.digest.trim_start_matches("sha256:").to_string());
                }
                _ => {
                    std::fs::remove_file(&path)?;
                    stats.entries += 1;
                }
            }
        }
        let Ok(rd) = std::fs::read_dir(&blobs) else {
            return Ok(stats);
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if live.contains(&name) {
                continue;
            }
            let young = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < PRUNE_GRACE);
            if !young {
                stats.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(e.path())?;
                stats.blobs += 1;
            }
        }
        Ok(stats)
    }

    /// Stores the layer at `blob_path` under `key` (blob first, then the key, each atomically).
    pub fn store(&self, key: &str, blob_path: &Path, blob: &LayerBlob) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        let keys = self.dir.join("keys");
        cnb_spec::io::create_dirs(&blobs)?;
        cnb_spec::io::create_dirs(&keys)?;
        let dest = blobs.join(blob.digest.trim_start_matches("sha256:"));
        if !dest.exists() {
            let mut tmp = cnb_spec::io::AtomicFile::create(&dest, cnb_spec::io::FILE_MODE)?;
            std::io::copy(&mut std::fs::File::open(blob_path)?, &mut tmp)?;
            tmp.commit()?;
        }
        let entry = Entry {
            blob: blob.clone(),
            created: now(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let mut tmp =
            cnb_spec::io::AtomicFile::create(&self.key_path(key), cnb_spec::io::FILE_MODE)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.commit()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn blob(hex: &str) -> LayerBlob {
        LayerBlob {
            diff_id: format!("sha256:{hex}"),
            digest: format!("sha256:{hex}"),
            size: 3,
            media_type: None,
        }
    }

    /// EX-I2: entries older than the TTL are pruned with their blobs; live ones and young
    /// unreferenced blobs stay.
    #[test]
    fn prune_removes_expired_entries_and_their_blobs() {
        let t = tempfile::tempdir().unwrap();
        let c = StepCache::new(t.path(), Duration::from_secs(3600));
        let src = t.path().join("src");
        std::fs::write(&src, "abc").unwrap();
        c.store("live", &src, &blob("aa")).unwrap();
        c.store("old", &src, &blob("bb")).unwrap();
        // Age the "old" entry and its blob past the TTL and the grace period.
        let old = Entry {
            blob: blob("bb"),
            created: now() - 7200,
        };
        std::fs::write(c.key_path("old"), serde_json::to_vec(&old).unwrap()).unwrap();
        let past = std::time::SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(t.path().join("blobs/bb"))
            .unwrap()
            .set_modified(past)
            .unwrap();
        std::fs::write(t.path().join("blobs/cc"), "young orphan").unwrap();
        std::fs::write(c.key_path("garbage"), "not json").unwrap();
        assert!(c.lookup("old").is_none());
        let stats = c.prune().unwrap();
        assert_eq!((stats.entries, stats.blobs, stats.bytes), (2, 1, 3));
        assert!(c.lookup("live").is_some());
        assert!(!c.key_path("old").exists());
        assert!(!t.path().join("blobs/bb").exists());
        assert!(t.path().join("blobs/cc").exists());
        assert_eq!(c.prune().unwrap(), PruneStats::default());
    }
}
