//! The cache directory (`-cache-dir`; checklist CA-03, CA-04).
//!
//! Layout (compatible with the reference lifecycle, so a platform can switch lifecycles on one volume):
//! `<dir>/committed/` holds the live cache: one uncompressed layer tar per diffID named
//! `sha256:<hex>.tar` and the metadata file `io.buildpacks.lifecycle.cache.metadata`.
//! A new cache is assembled in `<dir>/staging/` and committed atomically: `committed` → `committed-backup`,
//! `staging` → `committed`, then the backup is deleted (rolled back if the second rename fails).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cnb_spec::io::{create_dirs, AtomicFile, FILE_MODE};
use sha2::{Digest, Sha256};

use super::{Cache, CacheError, CacheMetadata, METADATA_LABEL};

/// A cache directory opened for one phase run.
#[derive(Debug)]
pub struct VolumeCache {
    dir: PathBuf,
    committed_dir: PathBuf,
    staging_dir: PathBuf,
    backup_dir: PathBuf,
    committed: bool,
}

impl VolumeCache {
    /// Opens the cache at `dir` (which must exist): removes a leftover backup and recreates an empty
    /// staging directory.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        if !dir.is_dir() {
            return Err(CacheError::MissingDir(dir.to_path_buf()));
        }
        let cache = Self {
            dir: dir.to_path_buf(),
            committed_dir: dir.join("committed"),
            staging_dir: dir.join("staging"),
            backup_dir: dir.join("committed-backup"),
            committed: false,
        };
        remove_dir_if_exists(&cache.backup_dir)?;
        remove_dir_if_exists(&cache.staging_dir)?;
        create_dirs(&cache.staging_dir).map_err(|e| CacheError::io(&cache.staging_dir, e))?;
        create_dirs(&cache.committed_dir).map_err(|e| CacheError::io(&cache.committed_dir, e))?;
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The committed tar of layer `diff_id` in the volume cache at `dir`, if there is one (the
    /// daemon's launch cache is read this way without opening, and so resetting, its staging dir).
    pub fn committed_layer(dir: &Path, diff_id: &str) -> Option<PathBuf> {
        Self::layer_file(&dir.join("committed"), diff_id)
            .ok()
            .filter(|p| p.is_file())
    }

    fn layer_file(dir: &Path, diff_id: &str) -> Result<PathBuf, CacheError> {
        validate_diff_id(diff_id)?;
        Ok(dir.join(format!("{diff_id}.tar")))
    }

    fn ensure_open(&self) -> Result<(), CacheError> {
        if self.committed {
            return Err(CacheError::AlreadyCommitted(self.dir.clone()));
        }
        Ok(())
    }
}

impl Cache for VolumeCache {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn retrieve_metadata(&self) -> Result<CacheMetadata, CacheError> {
        let path = self.committed_dir.join(METADATA_LABEL);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(super::cache_metadata_lenient(&s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CacheMetadata::default()),
            Err(e) => Err(CacheError::io(&path, e)),
        }
    }

    fn retrieve_layer(&self, diff_id: &str) -> Result<Box<dyn Read + Send + '_>, CacheError> {
        let path = Self::layer_file(&self.committed_dir, diff_id)?;
        let f = File::open(&path).map_err(|e| CacheError::io(&path, e))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }

    fn verify_layer(&self, diff_id: &str) -> Result<(), CacheError> {
        let path = Self::layer_file(&self.committed_dir, diff_id)?;
        let found = sha256_file(&path)?;
        if found != diff_id {
            return Err(CacheError::WrongSha {
                path,
                expected: diff_id.to_string(),
                found,
            });
        }
        Ok(())
    }

    fn add_layer_file(&mut self, tar: &Path, diff_id: &str) -> Result<(), CacheError> {
        self.ensure_open()?;
        let dst = Self::layer_file(&self.staging_dir, diff_id)?;
        if dst.exists() {
            return Ok(());
        }
        // Hard link when the tar lives on the same filesystem (no copy), else copy via a temp file.
        if fs::hard_link(tar, &dst).is_ok() {
            return Ok(());
        }
        let mut out = AtomicFile::create(&dst, FILE_MODE).map_err(|e| CacheError::io(&dst, e))?;
        let mut src = File::open(tar).map_err(|e| CacheError::io(tar, e))?;
        io::copy(&mut src, &mut out).map_err(|e| CacheError::io(tar, e))?;
        out.commit().map_err(|e| CacheError::io(&dst, e))
    }

    fn reuse_layer(&mut self, diff_id: &str) -> Result<(), CacheError> {
        self.ensure_open()?;
        let src = Self::layer_file(&self.committed_dir, diff_id)?;
        let dst = Self::layer_file(&self.staging_dir, diff_id)?;
        if dst.exists() {
            return Ok(());
        }
        fs::hard_link(&src, &dst)
            .or_else(|_| fs::copy(&src, &dst).map(|_| ()))
            .map_err(|e| CacheError::io(&src, e))
    }

    fn set_metadata(&mut self, metadata: &CacheMetadata) -> Result<(), CacheError> {
        self.ensure_open()?;
        let path = self.staging_dir.join(METADATA_LABEL);
        let json = serde_json::to_string(metadata)
            .map(cnb_spec::io::go_json_escape)
            .map_err(CacheError::Encode)?;
        let mut f = AtomicFile::create(&path, FILE_MODE)
            .map_err(|e| CacheError::io(&path, e))?
            .durable();
        f.write_all(json.as_bytes())
            .map_err(|e| CacheError::io(&path, e))?;
        f.commit().map_err(|e| CacheError::io(&path, e))
    }

    fn commit(&mut self) -> Result<(), CacheError> {
        self.ensure_open()?;
        self.committed = true;
        fs::rename(&self.committed_dir, &self.backup_dir)
            .map_err(|e| CacheError::io(&self.committed_dir, e))?;
        if let Err(e) = fs::rename(&self.staging_dir, &self.committed_dir) {
            // Roll back: the previous cache stays live.
            let _ = fs::rename(&self.backup_dir, &self.committed_dir);
            return Err(CacheError::io(&self.staging_dir, e));
        }
        remove_dir_if_exists(&self.backup_dir)
    }
}

fn remove_dir_if_exists(dir: &Path) -> Result<(), CacheError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CacheError::io(dir, e)),
    }
}

/// Rejects diffIDs that could name a path outside the cache (`sha256:<64 hex>` only).
fn validate_diff_id(diff_id: &str) -> Result<(), CacheError> {
    let ok = diff_id
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(CacheError::InvalidDiffId(diff_id.to_string()))
    }
}

/// `sha256:<hex>` of a file's bytes, streamed (the diffID of an uncompressed layer tar).
pub fn sha256_file(path: &Path) -> Result<String, CacheError> {
    let mut f = File::open(path).map_err(|e| CacheError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| CacheError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::cache::LayerSha;

    fn write_tar(dir: &Path, content: &[u8]) -> (PathBuf, String) {
        let p = dir.join("layer.tar");
        fs::write(&p, content).unwrap();
        let sha = sha256_file(&p).unwrap();
        (p, sha)
    }

    #[test]
    fn ca03_commit_replaces_committed_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let cache_dir = tmp.path().join("cache");
        fs::create_dir(&cache_dir).unwrap();
        let (tar, sha) = write_tar(tmp.path(), b"layer-one");

        let mut c = VolumeCache::open(&cache_dir).unwrap();
        assert_eq!(c.retrieve_metadata().unwrap(), CacheMetadata::default());
        c.add_layer_file(&tar, &sha).unwrap();
        let meta = CacheMetadata {
            sbom: LayerSha::new(sha.clone()),
            buildpacks: vec![],
        };
        c.set_metadata(&meta).unwrap();
        c.commit().unwrap();
        assert!(
            c.add_layer_file(&tar, &sha).is_err(),
            "mutation after commit"
        );

        let mut c2 = VolumeCache::open(&cache_dir).unwrap();
        assert_eq!(c2.retrieve_metadata().unwrap(), meta);
        c2.verify_layer(&sha).unwrap();
        let mut s = String::new();
        c2.retrieve_layer(&sha)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "layer-one");
        // Second export reuses nothing: the layer disappears after commit.
        c2.set_metadata(&CacheMetadata::default()).unwrap();
        c2.commit().unwrap();
        let c3 = VolumeCache::open(&cache_dir).unwrap();
        assert!(c3.retrieve_layer(&sha).is_err());
        assert!(!cache_dir.join("committed-backup").exists());
    }

    #[test]
    fn ca03_reuse_links_committed_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let (tar, sha) = write_tar(tmp.path(), b"abc");
        let mut c = VolumeCache::open(tmp.path()).unwrap();
        c.add_layer_file(&tar, &sha).unwrap();
        c.commit().unwrap();
        let mut c = VolumeCache::open(tmp.path()).unwrap();
        c.reuse_layer(&sha).unwrap();
        c.commit().unwrap();
        VolumeCache::open(tmp.path())
            .unwrap()
            .verify_layer(&sha)
            .unwrap();
    }

    #[test]
    fn ca04_verify_detects_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let (tar, sha) = write_tar(tmp.path(), b"abc");
        let mut c = VolumeCache::open(tmp.path()).unwrap();
        c.add_layer_file(&tar, &sha).unwrap();
        c.commit().unwrap();
        let stored = tmp.path().join("committed").join(format!("{sha}.tar"));
        fs::remove_file(&stored).unwrap();
        fs::write(&stored, b"corrupt").unwrap();
        let c = VolumeCache::open(tmp.path()).unwrap();
        let err = c.verify_layer(&sha).unwrap_err().to_string();
        assert!(
            err.contains(&format!("expected layer contents to have SHA '{sha}'")),
            "{err}"
        );
    }

    #[test]
    fn invalid_metadata_and_bad_diff_ids() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("committed")).unwrap();
        fs::write(tmp.path().join("committed").join(METADATA_LABEL), "garbage").unwrap();
        let c = VolumeCache::open(tmp.path()).unwrap();
        assert_eq!(c.retrieve_metadata().unwrap(), CacheMetadata::default());
        assert!(c.retrieve_layer("sha256:../../etc/passwd").is_err());
        assert!(VolumeCache::open(&tmp.path().join("missing")).is_err());
    }
}
