//! [`RegistryClient`]: a synchronous facade over oci-client running on a private, lazily created tokio
//! runtime (never started before a phase needs a registry, so the extender can fork first).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::RegistryTokenType;
use oci_client::RegistryOperation;
use sha2::{Digest as _, Sha256};
use tokio::runtime::Runtime;

use super::blob::{reader_stream, BlobPushOutcome, BlobUpload};
use super::error::RegistryError;
use super::identity::{IdentityExchange, TokenMap};
use super::keychain::{Credential, Keychain};
use super::media_types::{detect_media_type, Manifest, Platform, ResolvedManifest};
use super::open::{self, BlobBody, Challenge, DirectError};
use super::reference::{normalise_registry, ImageRef};
use super::retry::{classify, with_retry, Class, RetryPolicy, Retryable};
use super::scheme::{self, Endpoints, Transport};
use super::tls::{build_oci_client, load_ca_certs, TlsRoots};

/// Environment variable naming extra CA certificates trusted for registries: a `:`-separated list of PEM
/// files or directories (every `*.crt`/`*.pem` inside). They are added to the system roots; when the
/// image has no system roots, to the bundled Mozilla roots.
pub const REGISTRY_CA_CERTS_ENV: &str = "CNB_REGISTRY_CA_CERTS";

/// How a [`RegistryClient`] talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Insecure registries (checklist G-18), as `host[:port]`: tried over HTTPS without certificate
    /// verification, then plain HTTP (local registries get the HTTP fallback without being listed).
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM files or directories of them).
    pub ca_certs: Vec<PathBuf>,
    /// Retry schedule for transient errors (G-23).
    pub retry: RetryPolicy,
    /// Blobs uploaded at once by [`RegistryClient::push_blobs`].
    pub max_concurrent_uploads: usize,
    /// The platform picked from multi-platform indexes.
    pub platform: Platform,
    /// How long a response may stay silent (no byte read) before the request fails as a transient
    /// error (and is retried); [`DEFAULT_READ_TIMEOUT`], or [`REGISTRY_READ_TIMEOUT_ENV`] seconds.
    pub read_timeout: Duration,
}

/// The default [`RegistryOptions::read_timeout`]: a stalled registry fails the request instead of
/// hanging the phase forever (issue 14; the reference sets no such timeout). It bounds silence, not a
/// transfer: a large blob that keeps streaming never hits it.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Overrides [`DEFAULT_READ_TIMEOUT`] (seconds, fractions allowed; a lifecycle extension, not a
/// platform-spec variable).
pub const REGISTRY_READ_TIMEOUT_ENV: &str = "CNB_REGISTRY_READ_TIMEOUT";

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            ca_certs: Vec::new(),
            retry: RetryPolicy::default(),
            max_concurrent_uploads: 4,
            platform: Platform::current(),
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

impl RegistryOptions {
    /// Defaults plus `CNB_INSECURE_REGISTRIES` (comma-separated) and [`REGISTRY_CA_CERTS_ENV`].
    pub fn from_env() -> RegistryOptions {
        let mut opts = RegistryOptions::default();
        if let Ok(list) = std::env::var(cnb_spec::env::INSECURE_REGISTRIES) {
            opts.insecure_registries.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(list) = std::env::var_os(REGISTRY_CA_CERTS_ENV) {
            opts.ca_certs
                .extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Ok(v) = std::env::var(REGISTRY_READ_TIMEOUT_ENV) {
            match parse_timeout(&v) {
                Some(t) => opts.read_timeout = t,
                None => tracing::warn!(
                    "ignoring {REGISTRY_READ_TIMEOUT_ENV}={v:?}: not a positive number of seconds"
                ),
            }
        }
        opts
    }

    /// Adds an insecure registry (`-insecure-registry`): HTTPS without verification, then plain HTTP.
    pub fn insecure(mut self, registry: &str) -> Self {
        self.insecure_registries.push(registry.to_string());
        self
    }

    /// Trusts the CA certificates in `path` (a PEM file or a directory of them).
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certs.push(path.into());
        self
    }

    /// Replaces the retry schedule.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the [`RegistryOptions::read_timeout`].
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }
}

/// A positive number of seconds (`30`, `0.5`).
fn parse_timeout(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// The process's registry runtime, made on first use. A process forked after that (the creator's
/// user-namespace worker, the extender's) inherits the runtime without its worker threads, so anything
/// driven by its I/O or timer drivers would wait forever: a child makes its own, and the inherited one
/// is never used or dropped (dropping would wait for threads that do not exist here).
fn shared_runtime() -> Result<Arc<Runtime>, RegistryError> {
    static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);
    let mut guard = RUNTIME
        .lock()
        .map_err(|_| RegistryError::Setup("registry runtime lock poisoned".into()))?;
    let pid = std::process::id();
    match guard.take() {
        Some((owner, rt)) if owner == pid => {
            *guard = Some((owner, rt.clone()));
            return Ok(rt);
        }
        Some((_, inherited)) => std::mem::forget(inherited),
        None => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cnb-registry")
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Setup(format!("cannot start the registry runtime: {e}")))?;
    let rt = Arc::new(rt);
    *guard = Some((pid, rt.clone()));
    Ok(rt)
}

/// A registry client: pull/push manifests and blobs with credentials from a [`Keychain`].
///
/// Cheap to clone; usable from several threads at once.
#[derive(Clone)]
pub struct RegistryClient {
    /// One oci-client per transport (the HTTPS one built eagerly, the others when a registry needs them);
    /// each registry always goes through the one its ping chose (the `scheme` module).
    oci: Arc<Mutex<HashMap<Transport, oci_client::Client>>>,
    keychain: Arc<Keychain>,
    runtime: Arc<Runtime>,
    options: Arc<RegistryOptions>,
    tls: Arc<TlsRoots>,
    identity: Arc<Mutex<Option<Arc<IdentityExchange>>>>,
    /// Plain reqwest clients: verifying (`false`) and, for insecure registries, unverified (`true`).
    http: Arc<Mutex<HashMap<bool, reqwest::Client>>>,
    endpoints: Arc<Endpoints>,
    /// Bearer tokens fetched through oci-client, for the requests made directly; refetched after
    /// [`BEARER_REFRESH`].
    bearer: Arc<Mutex<TokenMap>>,
}

/// How a request reaches its registry: the chosen transport's clients and the authentication decided by
/// [`RegistryClient::ensure_auth_for`].
struct Access {
    /// The oci-client of the registry's transport.
    oci: oci_client::Client,
    /// The plain HTTP client of the registry's transport.
    http: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
    auth: Auth,
}

/// How long a fetched bearer token is reused (oci-client keeps opaque tokens for 60 s by default).
const BEARER_REFRESH: std::time::Duration = std::time::Duration::from_secs(45);

/// What [`RegistryClient::ensure_auth_for`] decided for a request.
enum Auth {
    /// The registry needs no authentication: nothing is registered with oci-client, manifests are fetched
    /// directly (see the `open` module).
    Open,
    /// oci-client does the authentication with these credentials; `header` is the `Authorization` for
    /// requests made directly (blob `HEAD`/`GET`), when there is one.
    Oci {
        auth: RegistryAuth,
        header: Option<String>,
    },
}

impl Auth {
    fn header(&self) -> Option<&str> {
        match self {
            Auth::Open => None,
            Auth::Oci { header, .. } => header.as_deref(),
        }
    }
}

fn basic_header(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Builds a client. Never panics when the system has no CA certificates: it falls back to bundled
    /// Mozilla roots (plus [`RegistryOptions::ca_certs`]).
    pub fn new(
        keychain: Arc<Keychain>,
        options: RegistryOptions,
    ) -> Result<RegistryClient, RegistryError> {
        let extra = load_ca_certs(&options.ca_certs)?;
        let (https, system_roots) = build_oci_client(&options, extra.clone(), Transport::Https)?;
        let read_timeout = options.read_timeout;
        Ok(RegistryClient {
            oci: Arc::new(Mutex::new(HashMap::from([(Transport::Https, https)]))),
            keychain,
            runtime: shared_runtime()?,
            options: Arc::new(options),
            tls: Arc::new(TlsRoots {
                system_roots,
                extra,
                read_timeout,
            }),
            identity: Arc::new(Mutex::new(None)),
            http: Arc::new(Mutex::new(HashMap::new())),
            endpoints: Arc::new(Endpoints::default()),
            bearer: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The keychain this client uses.
    pub fn keychain(&self) -> &Arc<Keychain> {
        &self.keychain
    }

    /// Whether `image`'s registry is listed as insecure.
    fn is_insecure(&self, image: &ImageRef) -> bool {
        self.options
            .insecure_registries
            .iter()
            .any(|r| normalise_registry(r) == image.registry())
    }

    /// The oci-client of `transport`, built the first time it is needed.
    fn oci_for(&self, transport: Transport) -> Result<oci_client::Client, RegistryError> {
        let mut guard = self
            .oci
            .lock()
            .map_err(|_| RegistryError::Setup("registry client lock poisoned".into()))?;
        if let Some(c) = guard.get(&transport) {
            return Ok(c.clone());
        }
        let (client, _) = build_oci_client(&self.options, self.tls.extra.clone(), transport)?;
        guard.insert(transport, client.clone());
        Ok(client)
    }

    /// How `image`'s registry is reached and how it authenticates (pinged once per registry and
    /// client, retried on transient failures; see the `scheme` module). A registry that never answered
    /// is an error naming it: the phase must not go on as if it needed no credentials.
    async fn endpoint(&self, image: &ImageRef) -> Result<scheme::Endpoint, RegistryError> {
        let host = image.to_oci().resolve_registry().to_string();
        self.endpoints
            .resolve(
                image.registry(),
                &host,
                self.is_insecure(image),
                &self.options.retry,
                |t| self.http(t == Transport::HttpsUnverified).ok(),
            )
            .await
            .map_err(|e| self.map_direct("reach the registry of", "registry", image, e))
    }

    /// The identity-token exchanger, with an HTTP client trusting the same roots as oci-client's.
    fn identity(&self) -> Result<Arc<IdentityExchange>, RegistryError> {
        let mut guard = self
            .identity
            .lock()
            .map_err(|_| RegistryError::Setup("identity token lock poisoned".into()))?;
        if let Some(x) = guard.as_ref() {
            return Ok(x.clone());
        }
        let x = Arc::new(IdentityExchange::new(self.tls.http_client(false)?));
        *guard = Some(x.clone());
        Ok(x)
    }

    /// A plain HTTP client trusting the same roots as oci-client's (for pings, the open-registry
    /// manifest requests and blob `HEAD`/`GET`); `unverified` accepts any certificate (insecure
    /// registries).
    fn http(&self, unverified: bool) -> Result<reqwest::Client, RegistryError> {
        let mut guard = self
            .http
            .lock()
            .map_err(|_| RegistryError::Setup("HTTP client lock poisoned".into()))?;
        if let Some(c) = guard.get(&unverified) {
            return Ok(c.clone());
        }
        let c = self.tls.http_client(unverified)?;
        guard.insert(unverified, c.clone());
        Ok(c)
    }

    /// Registers `image`'s registry credentials with oci-client for `op` and returns how to reach the
    /// registry with the auth to pass to oci-client calls, or [`Auth::Open`] for a registry that needs
    /// none. The registry's ping (`GET /v2/`, once per registry, retried on transient errors) chooses the
    /// transport and tells how it authenticates: basic credentials then go to oci-client's token cache
    /// directly, bearer tokens are fetched here (retried) so a probe that fails inside oci-client cannot
    /// silently leave the request unauthenticated. Identity tokens are exchanged here (push tokens also
    /// cover `mount_sources`).
    async fn ensure_auth_for(
        &self,
        image: &ImageRef,
        op: RegistryOperation,
        mount_sources: &[ImageRef],
    ) -> Result<Access, RegistryError> {
        let credential = self.keychain.resolve(image.registry())?;
        let endpoint = self.endpoint(image).await?;
        let oci = self.oci_for(endpoint.transport)?;
        let http = self.http(endpoint.transport == Transport::HttpsUnverified)?;
        let scheme = endpoint.transport.scheme();
        let access = |auth| Access {
            oci: oci.clone(),
            http: http.clone(),
            scheme,
            auth,
        };
        let auth = match credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => RegistryAuth::Basic(username, password),
            Credential::Bearer(t) => {
                let header = Some(format!("Bearer {t}"));
                let auth = RegistryAuth::Bearer(t);
                oci.store_auth_if_needed(image.registry(), &auth).await;
                return Ok(access(Auth::Oci { auth, header }));
            }
            Credential::IdentityToken(refresh) => {
                oci.store_auth_if_needed(image.registry(), &RegistryAuth::Anonymous)
                    .await;
                let exchange = self.identity()?;
                let token = exchange
                    .ensure(&oci, scheme, image, op, &refresh, mount_sources)
                    .await?;
                return Ok(access(Auth::Oci {
                    auth: RegistryAuth::Anonymous,
                    header: Some(format!("Bearer {token}")),
                }));
            }
        };
        if endpoint.challenge == Challenge::None {
            return Ok(access(Auth::Open));
        }
        oci.store_auth_if_needed(image.registry(), &auth).await;
        let header = match (&auth, endpoint.challenge) {
            (RegistryAuth::Basic(u, p), Challenge::Basic | Challenge::Unknown) => {
                oci.tokens
                    .insert(
                        &image.to_oci(),
                        op,
                        RegistryTokenType::Basic(u.clone(), p.clone()),
                    )
                    .await;
                Some(basic_header(u, p))
            }
            (_, Challenge::Bearer) => Some(format!(
                "Bearer {}",
                self.bearer_token(&oci, image, op, &auth).await?
            )),
            _ => None,
        };
        Ok(access(Auth::Oci { auth, header }))
    }

    /// A bearer token for `image`'s repository and `op` from the registry's token service (through
    /// oci-client, which caches it too), reused for [`BEARER_REFRESH`].
    async fn bearer_token(
        &self,
        inner: &oci_client::Client,
        image: &ImageRef,
        op: RegistryOperation,
        auth: &RegistryAuth,
    ) -> Result<String, RegistryError> {
        let key = (
            image.registry().to_string(),
            image.repository().to_string(),
            op == RegistryOperation::Push,
        );
        let cached = self.bearer.lock().ok().and_then(|m| {
            m.get(&key)
                .filter(|(t, _)| t.elapsed() < BEARER_REFRESH)
                .map(|(_, tok)| tok.clone())
        });
        if let Some(tok) = cached {
            return Ok(tok);
        }
        let oci = image.to_oci();
        let oci_ref = &oci;
        let registry = image.registry();
        let token = with_retry(&self.options.retry, "authenticate", || async move {
            match inner.auth(oci_ref, auth, op).await {
                Ok(Some(t)) => Ok(t),
                // oci-client's own `GET /v2/` saw no challenge (a 503 or a reset there).
                Ok(None) => Err(DirectError::transient(OciDistributionError::GenericError(
                    Some(format!("no Bearer challenge from {registry}/v2/")),
                ))),
                Err(error) => Err(DirectError {
                    error,
                    retry_after: None,
                    class: None,
                }),
            }
        })
        .await
        .map_err(|e| self.map_direct("authenticate to", "token", image, e))?;
        if let Ok(mut m) = self.bearer.lock() {
            m.insert(key, (Instant::now(), token.clone()));
        }
        Ok(token)
    }

    async fn ensure_auth(&self, image: &ImageRef) -> Result<Access, RegistryError> {
        self.ensure_auth_for(image, RegistryOperation::Pull, &[])
            .await
    }

    async fn ensure_push_auth(
        &self,
        image: &ImageRef,
        mount_sources: &[ImageRef],
    ) -> Result<Access, RegistryError> {
        self.ensure_auth_for(image, RegistryOperation::Pull, &[])
            .await?;
        self.ensure_auth_for(image, RegistryOperation::Push, mount_sources)
            .await
    }

    fn map_err(
        &self,
        action: &str,
        what: &str,
        image: &ImageRef,
        e: OciDistributionError,
    ) -> RegistryError {
        let class = classify(&e);
        self.map_class(action, what, image, class, error_chain(&e))
    }

    /// [`RegistryClient::map_err`] for a request made directly (its own classification).
    fn map_direct(
        &self,
        action: &str,
        what: &str,
        image: &ImageRef,
        e: DirectError,
    ) -> RegistryError {
        let class = e.class();
        self.map_class(action, what, image, class, error_chain(&e.error))
    }

    fn map_class(
        &self,
        action: &str,
        what: &str,
        image: &ImageRef,
        class: Class,
        mut detail: String,
    ) -> RegistryError {
        if looks_like_tls_failure(&detail)
            && scheme::candidates(image.registry(), self.is_insecure(image)).len() == 1
        {
            detail = format!("{detail} ({})", scheme::https_only_hint(image.registry()));
        }
        match class {
            Class::Unauthorized => RegistryError::Unauthorized {
                action: action.into(),
                image: image.to_string(),
                registry: image.registry().into(),
                detail,
            },
            Class::Denied => RegistryError::Denied {
                action: action.into(),
                image: image.to_string(),
                registry: image.registry().into(),
                detail,
            },
            Class::NotFound => RegistryError::NotFound {
                what: what.into(),
                image: image.to_string(),
            },
            c @ (Class::Transient(_) | Class::Permanent(_)) => RegistryError::Request {
                action: action.into(),
                image: image.to_string(),
                status: c.status(),
                transient: matches!(c, Class::Transient(_)),
                detail,
            },
        }
    }

    /// Pulls the manifest `image` points to, exactly as stored (OCI or Docker v2 manifest or index).
    pub fn pull_manifest(&self, image: &ImageRef) -> Result<Manifest, RegistryError> {
        self.runtime.block_on(self.pull_manifest_async(image))
    }

    async fn pull_manifest_async(&self, image: &ImageRef) -> Result<Manifest, RegistryError> {
        let accepted = super::media_types::ACCEPTED;
        let access = self.ensure_auth(image).await?;
        let (bytes, digest) = match &access.auth {
            Auth::Open => {
                let (http, scheme) = (&access.http, access.scheme);
                with_retry(&self.options.retry, "pull manifest", || async move {
                    open::get_manifest(http, scheme, image, accepted).await
                })
                .await
                .map_err(|e| self.map_direct("pull", "manifest", image, e))?
            }
            Auth::Oci { auth, .. } => {
                let oci = image.to_oci();
                let (inner, oci_ref, auth_ref) = (&access.oci, &oci, auth);
                with_retry(&self.options.retry, "pull manifest", || async move {
                    inner.pull_manifest_raw(oci_ref, auth_ref, accepted).await
                })
                .await
                .map_err(|e| self.map_err("pull", "manifest", image, e))?
            }
        };
        let media_type =
            detect_media_type(&bytes).map_err(|reason| RegistryError::UnsupportedManifest {
                image: image.to_string(),
                reason,
            })?;
        Ok(Manifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
        })
    }

    /// Pulls the image manifest for `image`, selecting the options' platform when it points to an index.
    pub fn pull_image_manifest(&self, image: &ImageRef) -> Result<ResolvedManifest, RegistryError> {
        self.runtime.block_on(async {
            let top = self.pull_manifest_async(image).await?;
            if !top.is_index() {
                return Ok(ResolvedManifest {
                    manifest: top,
                    index: None,
                });
            }
            let digest = top
                .select_platform(&self.options.platform)
                .map_err(|reason| RegistryError::UnsupportedManifest {
                    image: image.to_string(),
                    reason,
                })?;
            let child = self
                .pull_manifest_async(&image.with_digest(&digest)?)
                .await?;
            if child.is_index() {
                return Err(RegistryError::UnsupportedManifest {
                    image: image.to_string(),
                    reason: format!("index entry {digest} is itself an index"),
                });
            }
            Ok(ResolvedManifest {
                manifest: child,
                index: Some(top),
            })
        })
    }

    /// Streams blob `digest` of `image`'s repository into `writer`, verifying the digest; returns the
    /// number of bytes written. A failed request, or a download cut or reset mid-stream, is retried on the
    /// retry schedule from where it stopped (`Range`; a registry answering with the whole blob has the
    /// delivered prefix skipped); only when the retries are used up does it fail, naming the registry
    /// and the blob. Bytes that reach `writer` are never taken back, and the whole stream must hash to
    /// `digest`.
    pub fn pull_blob_to(
        &self,
        image: &ImageRef,
        digest: &str,
        writer: &mut dyn Write,
    ) -> Result<u64, RegistryError> {
        let what = format!("blob {digest}");
        self.runtime.block_on(async {
            let access = self.ensure_auth(image).await?;
            let (http, scheme) = (&access.http, access.scheme);
            let mut hash = Sha256::new();
            let mut written = 0u64;
            let mut delays = self.options.retry.delays.iter();
            loop {
                let before = written;
                let attempt = pull_blob_attempt(
                    http,
                    scheme,
                    image,
                    digest,
                    access.auth.header(),
                    &mut written,
                    &mut hash,
                    writer,
                )
                .await;
                let e = match attempt {
                    Err(BlobAttemptError::Write(source)) => {
                        return Err(RegistryError::Io {
                            action: format!("write {what}"),
                            image: image.to_string(),
                            source,
                        })
                    }
                    Err(BlobAttemptError::Remote(e)) => e,
                    Ok(()) => {
                        let actual = format!("sha256:{}", hex::encode(hash.clone().finalize()));
                        if actual == digest || !digest.starts_with("sha256:") {
                            writer.flush().map_err(|source| RegistryError::Io {
                                action: format!("write {what}"),
                                image: image.to_string(),
                                source,
                            })?;
                            return Ok(written);
                        }
                        if written == before && before > 0 {
                            // Nothing more to fetch: the content is simply wrong.
                            return Err(RegistryError::DigestMismatch {
                                what,
                                image: image.to_string(),
                                expected: digest.to_string(),
                                actual,
                            });
                        }
                        // A body that ended early without an error: fetch the rest.
                        DirectError::transient(OciDistributionError::GenericError(Some(format!(
                            "blob ended after {written} bytes without matching its digest"
                        ))))
                    }
                };
                match (e.class(), delays.next()) {
                    (Class::Transient(_), Some(delay)) => {
                        let delay = e
                            .retry_after()
                            .map(|r| r.min(super::retry::MAX_RETRY_AFTER))
                            .map_or(*delay, |r| r.max(*delay));
                        tracing::warn!(
                            "Retrying download of {what} from {} ({} after {written} bytes) in {delay:?}: {e}",
                            image.registry(),
                            image.name()
                        );
                        tokio::time::sleep(delay).await;
                    }
                    _ => return Err(self.map_direct(&format!("pull {what} of"), &what, image, e)),
                }
            }
        })
    }

    /// Pulls a (small) blob into memory, e.g. an image config.
    pub fn pull_blob_bytes(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut buf = Vec::new();
        self.pull_blob_to(image, digest, &mut buf)?;
        Ok(buf)
    }

    /// Whether `image`'s repository has blob `digest` (`HEAD`).
    pub fn blob_exists(&self, image: &ImageRef, digest: &str) -> Result<bool, RegistryError> {
        self.runtime.block_on(self.blob_exists_async(image, digest))
    }

    async fn blob_exists_async(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let access = self.ensure_auth(image).await?;
        let (http, scheme, header) = (&access.http, access.scheme, access.auth.header());
        with_retry(&self.options.retry, "check blob", || async move {
            open::head_blob(http, scheme, image, digest, header).await
        })
        .await
        .map_err(|e| self.map_direct("check blob of", &format!("blob {digest}"), image, e))
    }

    /// Asks the registry to mount blob `digest` from `from`'s repository into `image`'s; `Ok(false)` when
    /// the registry declined (the blob then needs uploading).
    pub fn mount_blob(
        &self,
        image: &ImageRef,
        from: &ImageRef,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        self.runtime
            .block_on(self.mount_blob_async(image, from, digest))
    }

    async fn mount_blob_async(
        &self,
        image: &ImageRef,
        from: &ImageRef,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let access = self
            .ensure_push_auth(image, std::slice::from_ref(from))
            .await?;
        let (oci, from_oci) = (image.to_oci(), from.to_oci());
        let (inner, oci_ref, from_ref) = (&access.oci, &oci, &from_oci);
        let res = with_retry(&self.options.retry, "mount blob", || async move {
            inner.mount_blob(oci_ref, from_ref, digest).await
        })
        .await;
        match res {
            Ok(()) => Ok(true),
            // 202 Accepted: the registry started an upload instead of mounting.
            Err(OciDistributionError::SpecViolationError(_)) => Ok(false),
            // Registries may refuse cross-repository mounts (scope, policy): upload instead.
            Err(e) => match classify(&e) {
                Class::NotFound | Class::Unauthorized | Class::Denied => Ok(false),
                _ => Err(self.map_err("mount blob into", &format!("blob {digest}"), image, e)),
            },
        }
    }

    /// Uploads a blob unconditionally: one `POST` and one streamed `PUT` (no whole-blob buffering).
    pub fn upload_blob(&self, image: &ImageRef, upload: &BlobUpload) -> Result<(), RegistryError> {
        self.runtime.block_on(self.upload_blob_async(image, upload))
    }

    async fn upload_blob_async(
        &self,
        image: &ImageRef,
        upload: &BlobUpload,
    ) -> Result<(), RegistryError> {
        let access = self.ensure_push_auth(image, &upload.mount_from).await?;
        let oci = image.to_oci();
        let (inner, oci_ref, up) = (&access.oci, &oci, upload);
        with_retry(&self.options.retry, "upload blob", || async move {
            let reader = up.source.open().map_err(OciDistributionError::IoError)?;
            let stream = reader_stream(reader)?;
            inner
                .push_blob_stream(oci_ref, stream, &up.digest, Some(up.size))
                .await
        })
        .await
        .map(|_| ())
        .map_err(|e| self.map_err("push", &format!("blob {}", upload.digest), image, e))
    }

    /// Pushes a blob the way a careful client does: nothing if the repository has it, a cross-repository
    /// mount if one of `mount_from` has it, else an upload.
    pub fn push_blob(
        &self,
        image: &ImageRef,
        upload: &BlobUpload,
    ) -> Result<BlobPushOutcome, RegistryError> {
        self.runtime.block_on(self.push_blob_async(image, upload))
    }

    async fn push_blob_async(
        &self,
        image: &ImageRef,
        upload: &BlobUpload,
    ) -> Result<BlobPushOutcome, RegistryError> {
        if self.blob_exists_async(image, &upload.digest).await? {
            return Ok(BlobPushOutcome::Exists);
        }
        for from in &upload.mount_from {
            if from.registry() != image.registry() || from.repository() == image.repository() {
                continue;
            }
            if self.mount_blob_async(image, from, &upload.digest).await? {
                return Ok(BlobPushOutcome::Mounted(from.name()));
            }
        }
        self.upload_blob_async(image, upload).await?;
        Ok(BlobPushOutcome::Uploaded)
    }

    /// [`RegistryClient::push_blob`] for many blobs, `max_concurrent_uploads` at a time; outcomes in input
    /// order.
    pub fn push_blobs(
        &self,
        image: &ImageRef,
        uploads: &[BlobUpload],
    ) -> Result<Vec<BlobPushOutcome>, RegistryError> {
        let limit = self.options.max_concurrent_uploads.max(1);
        self.runtime.block_on(async {
            futures_util::stream::iter(uploads.iter().map(|u| self.push_blob_async(image, u)))
                .buffered(limit)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect()
        })
    }

    /// Pushes manifest `bytes` unchanged (so its digest holds) under `image`'s tag (or digest); returns the
    /// manifest digest.
    pub fn push_manifest(
        &self,
        image: &ImageRef,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let content_type = media_type
            .parse()
            .map_err(|_| RegistryError::UnsupportedManifest {
                image: image.to_string(),
                reason: format!("media type '{media_type}' is not a valid header value"),
            })?;
        self.runtime.block_on(async {
            let access = self.ensure_push_auth(image, &[]).await?;
            let oci = image.to_oci();
            let body = bytes::Bytes::copy_from_slice(bytes);
            let (inner, oci_ref, body_ref, ct) = (&access.oci, &oci, &body, &content_type);
            with_retry(&self.options.retry, "push manifest", || async move {
                inner
                    .push_manifest_raw(oci_ref, body_ref.clone(), Clone::clone(ct))
                    .await
            })
            .await
            .map_err(|e| self.map_err("push", "manifest", image, e))
        })?;
        Ok(sha256_digest(bytes))
    }

    /// Pushes the same manifest under each of `tags` in `image`'s repository.
    pub fn tag(
        &self,
        image: &ImageRef,
        tags: &[&str],
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        for t in tags {
            self.push_manifest(&image.with_tag(t)?, bytes, media_type)?;
        }
        Ok(())
    }

    /// Whether the keychain's credentials can read `image` (`HEAD` of the manifest): `Ok(false)` on
    /// 401/403; a missing image is readable (the analyzer treats it as "no previous image").
    pub fn check_read_access(&self, image: &ImageRef) -> Result<bool, RegistryError> {
        self.runtime.block_on(async {
            let access = self.ensure_auth(image).await?;
            let res = match &access.auth {
                Auth::Open => {
                    let (http, scheme) = (&access.http, access.scheme);
                    let accepted = super::media_types::ACCEPTED;
                    with_retry(&self.options.retry, "check read access", || async move {
                        open::head_manifest(http, scheme, image, accepted).await
                    })
                    .await
                    .map_err(|e| e.error)
                }
                Auth::Oci { auth, .. } => {
                    let oci = image.to_oci();
                    let (inner, oci_ref, auth_ref) = (&access.oci, &oci, auth);
                    with_retry(&self.options.retry, "check read access", || async move {
                        inner
                            .fetch_manifest_digest(oci_ref, auth_ref)
                            .await
                            .map(|_| ())
                    })
                    .await
                }
            };
            match res {
                Ok(()) => Ok(true),
                Err(e) => match classify(&e) {
                    Class::Unauthorized | Class::Denied => Ok(false),
                    Class::NotFound | Class::Permanent(Some(_)) | Class::Transient(Some(_)) => {
                        Ok(true)
                    }
                    _ => Err(self.map_err("check read access to", "manifest", image, e)),
                },
            }
        })
    }

    /// Whether the keychain's credentials can push to `image`'s repository: read access plus a blob
    /// upload session the registry accepts (`POST /v2/<repo>/blobs/uploads/`; the unused session expires).
    pub fn check_write_access(&self, image: &ImageRef) -> Result<bool, RegistryError> {
        if !self.check_read_access(image)? {
            return Ok(false);
        }
        self.runtime.block_on(async {
            let access = match self.ensure_push_auth(image, &[]).await {
                Ok(a) => a,
                Err(e) if e.is_auth() => return Ok(false),
                Err(e) => return Err(e),
            };
            let oci = image.to_oci();
            let probe = sha256_digest(b"");
            let (inner, oci_ref, probe_ref) = (&access.oci, &oci, &probe);
            let res = with_retry(&self.options.retry, "check write access", || async move {
                inner.mount_blob(oci_ref, oci_ref, probe_ref).await
            })
            .await;
            match res {
                Ok(()) | Err(OciDistributionError::SpecViolationError(_)) => Ok(true),
                Err(e) => match classify(&e) {
                    Class::Unauthorized | Class::Denied => Ok(false),
                    _ => Err(self.map_err("check write access to", "repository", image, e)),
                },
            }
        })
    }
}

/// Why one blob download attempt stopped.
enum BlobAttemptError {
    /// The registry or the connection failed (maybe worth retrying).
    Remote(DirectError),
    /// The local writer failed (never retried).
    Write(std::io::Error),
}

/// One `GET` of a blob from `*written` on, appending what arrives to `writer` and `hash`.
#[allow(clippy::too_many_arguments)]
async fn pull_blob_attempt(
    http: &reqwest::Client,
    scheme: &str,
    image: &ImageRef,
    digest: &str,
    authorization: Option<&str>,
    written: &mut u64,
    hash: &mut Sha256,
    writer: &mut dyn Write,
) -> Result<(), BlobAttemptError> {
    let remote = BlobAttemptError::Remote;
    let (mut res, mut skip) =
        match open::get_blob(http, scheme, image, digest, *written, authorization)
            .await
            .map_err(remote)?
        {
            BlobBody::End => return Ok(()),
            BlobBody::Partial(r) => (r, 0u64),
            BlobBody::Full(r) => (r, *written),
        };
    loop {
        let chunk = match res.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            // A cut or reset body: whatever reqwest calls it, it is worth resuming.
            Err(e) => return Err(remote(DirectError::transient(e.into()))),
        };
        let mut data = &chunk[..];
        if skip > 0 {
            let n = usize::try_from(skip).unwrap_or(usize::MAX).min(data.len());
            data = &data[n..];
            skip -= n as u64;
        }
        if data.is_empty() {
            continue;
        }
        hash.update(data);
        writer.write_all(data).map_err(BlobAttemptError::Write)?;
        *written += data.len() as u64;
    }
}

/// Whether an error chain reads like a failed TLS handshake (e.g. an HTTPS request to a plain-HTTP server).
fn looks_like_tls_failure(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "tls",
        "certificate",
        "invalidcontenttype",
        "corrupt message",
        "handshake",
        "http response to https",
    ]
    .iter()
    .any(|k| d.contains(k))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
