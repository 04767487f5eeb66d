//! One connection to a root-owned unix socket, opened while the process is root and kept for every
//! request after privileges are dropped (as the reference's `priv.DockerClient`): HTTP/1.1 requests
//! go one after another over it.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use bollard::{BollardRequest, Docker};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// Whether `path` is a unix socket owned by root.
pub(super) fn root_owned(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.uid() == 0)
}

/// A client whose every request goes over one connection to the socket at `path`, made now.
pub(super) fn preconnected(path: &str, rt: &Runtime) -> Result<Docker, String> {
    let stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("{path}: {e}"))?;
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("{path}: {e}"))?;
    let sender: SendRequest<_> = rt.block_on(async {
        let stream =
            tokio::net::UnixStream::from_std(stream).map_err(|e| format!("{path}: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok::<_, String>(sender)
    })?;
    let sender = Arc::new(Mutex::new(sender));
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let sender = sender.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                // Origin-form request target and a Host header, as over any unix socket.
                if let Some(pq) = parts.uri.path_and_query() {
                    parts.uri =
                        pq.as_str()
                            .parse()
                            .map_err(|e: hyper::http::uri::InvalidUri| {
                                bollard::errors::Error::from(e)
                            })?;
                }
                parts
                    .headers
                    .entry(hyper::header::HOST)
                    .or_insert(hyper::header::HeaderValue::from_static("docker"));
                let mut s = sender.lock().await;
                s.ready().await?;
                Ok(s.send_request(hyper::Request::from_parts(parts, body))
                    .await?)
            }
        },
        Some("http://docker"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}
