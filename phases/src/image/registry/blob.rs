//! Blob sources for uploads and the bounded reader → stream bridge (no whole-blob buffering).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use oci_client::errors::OciDistributionError;

use super::reference::ImageRef;

const READ_CHUNK: usize = 1 << 20;

/// Where the bytes of a blob to push come from. Sources can be reopened, so uploads can be retried.
#[derive(Clone)]
pub enum BlobSource {
    /// A file (e.g. a blob in an OCI layout).
    Path(PathBuf),
    /// Bytes in memory (configs, manifests, small blobs).
    Bytes(Arc<Vec<u8>>),
    /// Any reader; called once per attempt.
    Open(Arc<dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync>),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobSource::Path(p) => write!(f, "Path({})", p.display()),
            BlobSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            BlobSource::Open(_) => write!(f, "Open(..)"),
        }
    }
}

impl BlobSource {
    pub(crate) fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            BlobSource::Path(p) => Ok(Box::new(std::fs::File::open(p)?)),
            BlobSource::Bytes(b) => Ok(Box::new(std::io::Cursor::new(ArcBytes(b.clone())))),
            BlobSource::Open(f) => f(),
        }
    }
}

struct ArcBytes(Arc<Vec<u8>>);
impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One blob for [`RegistryClient::push_blob`].
#[derive(Debug, Clone)]
pub struct BlobUpload {
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes come from.
    pub source: BlobSource,
    /// Repositories (in the same registry) that may hold the blob already: tried as cross-repository mounts.
    pub mount_from: Vec<ImageRef>,
}

/// What [`RegistryClient::push_blob`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPushOutcome {
    /// The repository had the blob (HEAD answered 200); nothing was sent.
    Exists,
    /// The registry mounted it from the named repository.
    Mounted(String),
    /// The bytes were uploaded.
    Uploaded,
}

/// Streams a reader in 1 MiB chunks from a helper thread (bounded: at most a few chunks in flight).
pub(crate) fn reader_stream(
    mut reader: Box<dyn Read + Send>,
) -> Result<
    impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static,
    OciDistributionError,
> {
    let (tx, rx) = tokio::sync::mpsc::channel::<oci_client::errors::Result<bytes::Bytes>>(4);
    std::thread::Builder::new()
        .name("cnb-blob-reader".into())
        .spawn(move || loop {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut filled = 0;
            let res = loop {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match res {
                Err(e) => {
                    let _ = tx.blocking_send(Err(OciDistributionError::IoError(e)));
                    return;
                }
                Ok(()) if filled == 0 => return,
                Ok(()) => {
                    buf.truncate(filled);
                    let last = filled < READ_CHUNK;
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() || last {
                        return;
                    }
                }
            }
        })
        .map_err(OciDistributionError::IoError)?;
    Ok(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn reader_stream_chunks_everything() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let data: Vec<u8> = (0..(READ_CHUNK * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let src = BlobSource::Bytes(Arc::new(data.clone()));
        let got = rt.block_on(async {
            let s = reader_stream(src.open().unwrap()).unwrap();
            let chunks: Vec<_> = s.collect().await;
            chunks
                .into_iter()
                .flat_map(|c| c.unwrap().to_vec())
                .collect::<Vec<u8>>()
        });
        assert_eq!(got, data);
    }
}
