//! The daemon backend of the image interface (platform spec "Outputs" / `-daemon`, `CNB_USE_DAEMON`;
//! checklist IM-30): a Docker Engine — or Podman's Docker-compatible API — reached through
//! `DOCKER_HOST` (`unix://`, default `/var/run/docker.sock`; `tcp://` with `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`), with the API version negotiated against the daemon.
//!
//! [`DaemonStore`] opens images by inspecting them (labels, configuration, rootfs diffIDs, `Id`) and
//! writes them with [`DaemonWriter`] as one docker-archive load stream (`POST /images/load`). Layers are
//! read from the daemon (`GET /images/{id}/get`) only when a load must carry them. tokio stays inside
//! this module: the phases call it synchronously.
//!
//! As the reference (`priv.DockerClient`), a root-owned unix socket is connected once while the
//! process is still root and that one connection serves every request after privileges are dropped.

mod blobs;
mod load;
mod transport;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tokio::runtime::Runtime;

use super::{Image, ImageError, ImageStore, ImageWriter, StoreKind};
pub use load::DaemonWriter;

/// The `DOCKER_HOST` used when none is set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// A connected daemon (shared by the store, its images and writers).
pub(crate) struct Daemon {
    docker: Docker,
    rt: Runtime,
    host: String,
    /// The containerd image store: a load must carry every layer (no omitted base layers).
    containerd: bool,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Daemon({})", self.host)
    }
}

impl Daemon {
    pub(crate) fn err(
        &self,
        what: impl std::fmt::Display,
        cause: impl std::fmt::Display,
    ) -> ImageError {
        ImageError::Daemon {
            host: self.host.clone(),
            message: format!("{what}: {cause}"),
        }
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Inspects `reference` (a name or an image ID); `Ok(None)` when the daemon has no such image.
    pub(crate) fn inspect(
        &self,
        reference: &str,
    ) -> Result<Option<bollard::models::ImageInspect>, ImageError> {
        match self.block_on(self.docker.inspect_image(reference)) {
            Ok(i) => Ok(Some(i)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err(format!("inspecting image '{reference}'"), e)),
        }
    }
}

/// Images in one Docker Engine.
#[derive(Debug, Clone)]
pub struct DaemonStore {
    daemon: Arc<Daemon>,
    launch_cache: Option<PathBuf>,
}

impl DaemonStore {
    /// Connects to the daemon `DOCKER_HOST` names (default [`DEFAULT_DOCKER_HOST`]) and negotiates
    /// the API version. Call it before dropping privileges: a root-owned socket is connected now.
    /// The connection is made once per process and shared (the creator connects before it drops
    /// privileges; its analyzer and exporter steps then use that connection).
    pub fn connect() -> Result<Self, ImageError> {
        static SHARED: std::sync::Mutex<Option<DaemonStore>> = std::sync::Mutex::new(None);
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let mut shared = SHARED.lock().map_err(|_| ImageError::Daemon {
            host: host.clone(),
            message: "daemon connection lock poisoned".into(),
        })?;
        if let Some(s) = shared.as_ref().filter(|s| s.host() == host) {
            return Ok(s.clone());
        }
        let s = Self::connect_to(&host)?;
        *shared = Some(s.clone());
        Ok(s)
    }

    /// Connects to the daemon at `host` (`unix:///path`, `tcp://host:port`).
    pub fn connect_to(host: &str) -> Result<Self, ImageError> {
        let fail = |message: String| ImageError::Daemon {
            host: host.to_string(),
            message,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cnb-daemon")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the daemon client runtime: {e}")))?;
        let docker = match host.strip_prefix("unix://") {
            Some(path) if transport::root_owned(path) => transport::preconnected(path, &rt)
                .map_err(|e| fail(format!("cannot connect to the Docker daemon socket: {e}")))?,
            _ => Docker::connect_with_host(host)
                .map_err(|e| fail(format!("cannot connect to the Docker daemon: {e}")))?,
        };
        let docker = docker.with_timeout(Duration::from_secs(3600));
        let docker = rt
            .block_on(docker.negotiate_version())
            .map_err(|e| fail(format!("cannot connect to the Docker daemon: {e}")))?;
        let info = rt
            .block_on(docker.info())
            .map_err(|e| fail(format!("cannot read the daemon's info: {e}")))?;
        let containerd = info.driver_status.unwrap_or_default().iter().any(|kv| {
            kv.first().map(String::as_str) == Some("driver-type")
                && kv.get(1).map(String::as_str) == Some("io.containerd.snapshotter.v1")
        });
        Ok(Self {
            launch_cache: None,
            daemon: Arc::new(Daemon {
                docker,
                rt,
                host: host.to_string(),
                containerd,
            }),
        })
    }

    /// Uses `dir` (`-launch-cache`) as the launch cache: a volume cache of the uncompressed launch
    /// layers the exporter sent or reused, keyed by diffID, read instead of saving images from the
    /// daemon (the reference's `cache.NewCachingImage`).
    pub fn with_launch_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.launch_cache = dir;
        self
    }

    /// The daemon address (`DOCKER_HOST`).
    pub fn host(&self) -> &str {
        &self.daemon.host
    }

    /// Whether the daemon uses the containerd image store.
    pub fn uses_containerd_store(&self) -> bool {
        self.daemon.containerd
    }

    /// Tags the image `id` as `reference` (`repo[:tag]`, default tag `latest`).
    pub fn tag(&self, id: &str, reference: &str) -> Result<(), ImageError> {
        let full = with_tag(reference);
        let (repo, tag) = split_tag(&full);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(tag)
            .build();
        self.daemon
            .block_on(self.daemon.docker.tag_image(id, Some(opts)))
            .map_err(|e| self.daemon.err(format!("tagging '{full}'"), e))
    }
}

impl ImageStore for DaemonStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Daemon
    }

    /// A name or an image ID (`analyzed.toml` records IDs in daemon mode).
    fn open(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let Some(inspect) = self.daemon.inspect(reference)? else {
            return Ok(None);
        };
        blobs::image_from_inspect(&self.daemon, reference, inspect, self.launch_cache.clone())
            .map(Some)
    }

    fn writer(&self, reference: &str) -> Result<Box<dyn ImageWriter>, ImageError> {
        Ok(Box::new(DaemonWriter::new(
            self.daemon.clone(),
            with_tag(reference),
            self.launch_cache.as_deref(),
        )?))
    }

    fn tag_existing(&self, source: &Image, reference: &str) -> Option<Result<(), ImageError>> {
        if !blobs::is_in(&self.daemon, source) {
            return None;
        }
        Some(self.tag(source.image_id().as_str(), reference))
    }
}

/// `reference` with `:latest` when it names no tag or digest (the reference's `tryNormalizing`).
pub fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names() {
        assert_eq!(with_tag("app"), "app:latest");
        assert_eq!(with_tag("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(with_tag("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app:v1");
        assert_eq!(
            split_tag("127.0.0.1:5000/app:v1"),
            ("127.0.0.1:5000/app", "v1")
        );
        assert_eq!(split_tag("app"), ("app", "latest"));
    }

    #[test]
    fn no_daemon_names_the_socket() {
        let e = DaemonStore::connect_to("unix:///nonexistent/docker.sock").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("unix:///nonexistent/docker.sock"), "{m}");
    }
}
