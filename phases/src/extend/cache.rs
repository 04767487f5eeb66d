//! The extender's step cache (checklist EX-04, EX-I2; what kaniko's `/kaniko/cache/layers` did): a
//! layer per file-system step, keyed by the chain of base digest + instructions + args + env + context
//! file content, expiring after the TTL (`-kaniko-cache-ttl`, `CNB_KANIKO_CACHE_TTL`, default 336h).
//!
//! Layout: `<dir>/keys/<key>.json` (`{blob, created}`) and `<dir>/blobs/<hex>` (gzip layer).

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

    /// Stores the layer at `blob_path` under `key` (blob first, then the key, each atomically).
    pub fn store(&self, key: &str, blob_path: &Path, blob: &LayerBlob) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        let keys = self.dir.join("keys");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&keys)?;
        let dest = blobs.join(blob.digest.trim_start_matches("sha256:"));
        if !dest.exists() {
            let tmp = tempfile::NamedTempFile::new_in(&blobs)?;
            std::fs::copy(blob_path, tmp.path())?;
            tmp.persist(&dest).map_err(|e| e.error)?;
        }
        let entry = Entry {
            blob: blob.clone(),
            created: now(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let tmp = tempfile::NamedTempFile::new_in(&keys)?;
        std::fs::write(tmp.path(), bytes)?;
        tmp.persist(self.key_path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}
