//! Registries that answer `GET /v2/` without an authentication challenge ("open" registries: a local
//! `registry:2`, an in-cluster registry, zot without auth).
//!
//! oci-client discovers a registry's auth scheme with a `GET /v2/` and caches the token it gets; when the
//! registry issues no challenge there is no token to cache, so it probes again before *every* request,
//! doubling the request count. The client's one ping per registry (the `scheme` module) also tells
//! whether the registry is open; for open ones the client then never registers credentials with
//! oci-client (so its blob and upload calls send no probe and no `Authorization` header — the same as
//! oci-client would do after its probe), and manifests are fetched here, because oci-client's manifest
//! calls always register credentials first.

use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::reference::ImageRef;

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
) -> Result<(bytes::Bytes, String), OciDistributionError> {
    let url = manifest_url(scheme, image);
    let res = http
        .get(&url)
        .header(ACCEPT, accepted.join(", "))
        .send()
        .await?;
    let status = res.status();
    let body = res.bytes().await?;
    if status != StatusCode::OK {
        return Err(status_error(status, &body, &url));
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if let Some(want) = image.digest() {
        if want != digest {
            return Err(OciDistributionError::GenericError(Some(format!(
                "manifest {url} has digest {digest}, not the {want} it was asked for"
            ))));
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
) -> Result<(), OciDistributionError> {
    let url = manifest_url(scheme, image);
    let res = http
        .head(&url)
        .header(ACCEPT, accepted.join(", "))
        .send()
        .await?;
    match res.status() {
        StatusCode::OK => Ok(()),
        s => Err(status_error(s, &[], &url)),
    }
}
