//! Registries that answer `GET /v2/` without an authentication challenge ("open" registries: a local
//! `registry:2`, an in-cluster registry, zot without auth), and the requests the client makes itself.
//!
//! oci-client discovers a registry's auth scheme with a `GET /v2/` and caches the token it gets; when the
//! registry issues no challenge there is no token to cache, so it probes again before *every* request,
//! doubling the request count. The client's one ping per registry (the `scheme` module, retried like
//! any request) chooses the transport and tells how the registry authenticates ([`Challenge`]); for
//! open ones the client then never registers credentials with oci-client (so its blob and upload calls
//! send no probe and no `Authorization` header — the same as oci-client would do after its probe), and
//! manifests are fetched here, because oci-client's manifest calls always register credentials first.
//!
//! Blob `HEAD` and `GET` are made here too, with the `Authorization` the client worked out, so their
//! `Retry-After` is visible and a download cut mid-stream can resume with a `Range` request.

use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::{ACCEPT, AUTHORIZATION, RANGE, RETRY_AFTER};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::reference::ImageRef;
use super::retry::{parse_retry_after, Class, Retryable};

/// How a registry answered `GET /v2/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Success without a challenge: an open registry.
    None,
    /// `WWW-Authenticate: Basic` (or a 401 without a usable challenge).
    Basic,
    /// `WWW-Authenticate: Bearer`: tokens from a token service.
    Bearer,
    /// Anything else (e.g. 404): left to oci-client.
    Unknown,
}

/// An error of a request made here: the oci-client error it maps to (same classification and messages
/// as oci-client's own calls) plus the answer's `Retry-After`.
#[derive(Debug)]
pub(crate) struct DirectError {
    pub(crate) error: OciDistributionError,
    pub(crate) retry_after: Option<Duration>,
    /// Overrides the classification (e.g. a cut download is transient whatever reqwest says).
    pub(crate) class: Option<Class>,
}

impl DirectError {
    pub(crate) fn transient(error: OciDistributionError) -> Self {
        DirectError {
            error,
            retry_after: None,
            class: Some(Class::Transient(None)),
        }
    }
}

impl From<reqwest::Error> for DirectError {
    fn from(e: reqwest::Error) -> Self {
        DirectError {
            error: e.into(),
            retry_after: None,
            class: None,
        }
    }
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl Retryable for DirectError {
    fn class(&self) -> Class {
        self.class
            .unwrap_or_else(|| super::retry::classify(&self.error))
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

pub(crate) fn retry_after_of(res: &reqwest::Response) -> Option<Duration> {
    res.headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A non-success answer as a [`DirectError`] (body read for the registry's error envelope).
pub(crate) async fn answer_error(res: reqwest::Response, url: &str) -> DirectError {
    let status = res.status();
    let retry_after = retry_after_of(&res);
    let body = res.bytes().await.unwrap_or_default();
    DirectError {
        error: status_error(status, &body, url),
        retry_after,
        class: None,
    }
}

fn manifest_url(scheme: &str, image: &ImageRef) -> String {
    let oci = image.to_oci();
    let reference = oci
        .digest()
        .or_else(|| oci.tag())
        .unwrap_or(super::reference::DEFAULT_TAG);
    format!(
        "{scheme}://{}/v2/{}/manifests/{reference}",
        oci.resolve_registry(),
        oci.repository()
    )
}

/// Maps a non-200 answer the way oci-client does, so retry classification and error messages are the
/// same on both paths.
fn status_error(status: StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    match status {
        StatusCode::UNAUTHORIZED => OciDistributionError::UnauthorizedError {
            url: url.to_string(),
        },
        s if s.is_success() => OciDistributionError::SpecViolationError(format!(
            "Expected HTTP Status 200 OK, got {s} instead"
        )),
        s if s.is_client_error() => match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError {
                envelope,
                url: url.to_string(),
            },
            Err(_) => OciDistributionError::ServerError {
                code: s.as_u16(),
                url: url.to_string(),
                message: String::from_utf8_lossy(body).to_string(),
            },
        },
        s => OciDistributionError::ServerError {
            code: s.as_u16(),
            url: url.to_string(),
            message: String::from_utf8_lossy(body).to_string(),
        },
    }
}

/// `GET` of `image`'s manifest with the accepted media types; returns the bytes exactly as served and
/// their digest, verified against the reference's digest when it has one.
pub(crate) async fn get_manifest(
    http: &reqwest::Client,
    scheme: &str,
    image: &ImageRef,
    accepted: &[&str],
) -> Result<(bytes::Bytes, String), DirectError> {
    let url = manifest_url(scheme, image);
    let res = http
        .get(&url)
        .header(ACCEPT, accepted.join(", "))
        .send()
        .await?;
    if res.status() != StatusCode::OK {
        return Err(answer_error(res, &url).await);
    }
    let body = res.bytes().await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if let Some(want) = image.digest() {
        if want != digest {
            return Err(DirectError {
                error: OciDistributionError::GenericError(Some(format!(
                    "manifest {url} has digest {digest}, not the {want} it was asked for"
                ))),
                retry_after: None,
                class: None,
            });
        }
    }
    Ok((body, digest))
}

/// `HEAD` of `image`'s manifest: `Ok(())` when it exists and is readable.
pub(crate) async fn head_manifest(
    http: &reqwest::Client,
    scheme: &str,
    image: &ImageRef,
    accepted: &[&str],
) -> Result<(), DirectError> {
    let url = manifest_url(scheme, image);
    let res = http
        .head(&url)
        .header(ACCEPT, accepted.join(", "))
        .send()
        .await?;
    match res.status() {
        StatusCode::OK => Ok(()),
        _ => Err(answer_error(res, &url).await),
    }
}

fn blob_url(scheme: &str, image: &ImageRef, digest: &str) -> String {
    let oci = image.to_oci();
    format!(
        "{scheme}://{}/v2/{}/blobs/{digest}",
        oci.resolve_registry(),
        oci.repository()
    )
}

fn authorized(
    req: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> reqwest::RequestBuilder {
    match authorization {
        Some(a) => req.header(AUTHORIZATION, a),
        None => req,
    }
}

/// `HEAD` of blob `digest` in `image`'s repository: whether it exists.
pub(crate) async fn head_blob(
    http: &reqwest::Client,
    scheme: &str,
    image: &ImageRef,
    digest: &str,
    authorization: Option<&str>,
) -> Result<bool, DirectError> {
    let url = blob_url(scheme, image, digest);
    let res = authorized(http.head(&url), authorization).send().await?;
    match res.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(answer_error(res, &url).await),
    }
}

/// What a blob `GET` from an offset returned.
pub(crate) enum BlobBody {
    /// The whole blob (`200`): the first `offset` bytes are already known to the caller.
    Full(reqwest::Response),
    /// The bytes from the offset on (`206`).
    Partial(reqwest::Response),
    /// Nothing is left after the offset (`416`).
    End,
}

/// `GET` of blob `digest` from byte `offset` (a `Range` request when `offset > 0`). Redirects (blob
/// storage) are followed by reqwest, which drops `Authorization` when the host changes.
pub(crate) async fn get_blob(
    http: &reqwest::Client,
    scheme: &str,
    image: &ImageRef,
    digest: &str,
    offset: u64,
    authorization: Option<&str>,
) -> Result<BlobBody, DirectError> {
    let url = blob_url(scheme, image, digest);
    let mut req = authorized(http.get(&url), authorization);
    if offset > 0 {
        req = req.header(RANGE, format!("bytes={offset}-"));
    }
    let res = req.send().await?;
    match res.status() {
        StatusCode::OK => Ok(BlobBody::Full(res)),
        StatusCode::PARTIAL_CONTENT => Ok(BlobBody::Partial(res)),
        StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => Ok(BlobBody::End),
        _ => Err(answer_error(res, &url).await),
    }
}
