//! Retries with backoff on transient registry errors (checklist G-23): delays 100ms, 200ms, 500ms, 1s, 2s;
//! never on HTTP 400/401/403/405 (nor on any other 4xx except 408 and 429).
//!
//! Deliberately unlike the reference (which does not retry 429): a `429 Too Many Requests` is retried on
//! the same schedule, waiting at least its `Retry-After` (capped at [`MAX_RETRY_AFTER`]) where the
//! answer's headers are visible (requests this client makes itself: the `/v2/` probe, blob `HEAD` and
//! `GET`, manifests of open registries). Issue 14: a single 429 used to fail the phase.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// How often and how long to wait between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before each retry; its length is the number of retries.
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    /// The reference's schedule: 100ms, 200ms, 500ms, 1s, 2s.
    fn default() -> Self {
        RetryPolicy {
            delays: [100, 200, 500, 1000, 2000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy { delays: Vec::new() }
    }
}

/// The longest `Retry-After` honoured; a registry asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// An error [`with_retry`] can classify; `retry_after` is the registry's `Retry-After`, when known.
pub(crate) trait Retryable: std::fmt::Display {
    fn class(&self) -> Class;
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl Retryable for OciDistributionError {
    fn class(&self) -> Class {
        classify(self)
    }
}

/// A `Retry-After` header value (delay seconds; HTTP dates are not used by registries and are ignored).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What an error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// 401.
    Unauthorized,
    /// 403.
    Denied,
    /// 404 / unknown manifest, blob or repository.
    NotFound,
    /// Worth retrying: connection failures, timeouts, 408, 5xx.
    Transient(Option<u16>),
    /// Not worth retrying.
    Permanent(Option<u16>),
}

impl Class {
    pub(crate) fn status(self) -> Option<u16> {
        match self {
            Class::Unauthorized => Some(401),
            Class::Denied => Some(403),
            Class::NotFound => Some(404),
            Class::Transient(s) | Class::Permanent(s) => s,
        }
    }
}

/// Classifies an HTTP status code.
pub(crate) fn classify_status(code: u16) -> Class {
    match code {
        401 => Class::Unauthorized,
        403 => Class::Denied,
        404 => Class::NotFound,
        408 | 429 | 500 | 502 | 503 | 504 => Class::Transient(Some(code)),
        _ => Class::Permanent(Some(code)),
    }
}

/// Classifies an oci-client error.
pub(crate) fn classify(err: &OciDistributionError) -> Class {
    match err {
        OciDistributionError::UnauthorizedError { .. } => Class::Unauthorized,
        OciDistributionError::AuthenticationFailure(_) => Class::Unauthorized,
        OciDistributionError::ServerError { code, .. } => classify_status(*code),
        OciDistributionError::ImageManifestNotFoundError(_) => Class::NotFound,
        OciDistributionError::RegistryError { envelope, .. } => {
            match envelope.errors.first().map(|e| &e.code) {
                Some(OciErrorCode::Unauthorized) => Class::Unauthorized,
                Some(OciErrorCode::Denied) => Class::Denied,
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound,
                ) => Class::NotFound,
                Some(OciErrorCode::Toomanyrequests) => Class::Transient(Some(429)),
                Some(OciErrorCode::Unsupported) => Class::Permanent(Some(405)),
                _ => Class::Permanent(Some(400)),
            }
        }
        OciDistributionError::RequestError(e) => match e.status() {
            Some(s) => classify_status(s.as_u16()),
            None if e.is_builder() || is_tls_verification(e) => Class::Permanent(None),
            None => Class::Transient(None),
        },
        _ => Class::Permanent(None),
    }
}

/// Certificate problems do not heal by waiting.
fn is_tls_verification(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("certificate")
            || text.contains("Certificate")
            || text.contains("UnknownIssuer")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Runs `op` until it succeeds, fails permanently or the policy's retries are used up. A retry waits
/// the schedule's delay, or the error's `Retry-After` (capped) when that is longer.
pub(crate) async fn with_retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delays = policy.delays.iter();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => match (e.class(), delays.next()) {
                (Class::Transient(_), Some(delay)) => {
                    let delay = e
                        .retry_after()
                        .map(|r| r.min(MAX_RETRY_AFTER))
                        .map_or(*delay, |r| r.max(*delay));
                    tracing::debug!("{what}: transient error, retrying in {delay:?}: {e}");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://r/v2/".into(),
            message: String::new(),
        }
    }

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://r/v2/".into(),
        }
    }

    #[test]
    fn status_classification_g23() {
        for code in [400, 405, 409, 413] {
            assert_eq!(
                classify(&server(code)),
                Class::Permanent(Some(code)),
                "{code}"
            );
        }
        assert_eq!(classify(&server(401)), Class::Unauthorized);
        assert_eq!(classify(&server(403)), Class::Denied);
        assert_eq!(classify(&server(404)), Class::NotFound);
        for code in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                classify(&server(code)),
                Class::Transient(Some(code)),
                "{code}"
            );
        }
        let unauth = OciDistributionError::UnauthorizedError { url: "u".into() };
        assert_eq!(classify(&unauth), Class::Unauthorized);
        assert_eq!(
            classify(&envelope(OciErrorCode::Toomanyrequests)),
            Class::Transient(Some(429))
        );
        assert_eq!(classify(&envelope(OciErrorCode::Denied)), Class::Denied);
        assert_eq!(
            classify(&envelope(OciErrorCode::ManifestUnknown)),
            Class::NotFound
        );
        assert_eq!(
            classify(&envelope(OciErrorCode::ManifestInvalid)),
            Class::Permanent(Some(400))
        );
        assert_eq!(
            classify(&envelope(OciErrorCode::Unsupported)),
            Class::Permanent(Some(405))
        );
        assert_eq!(
            classify(&OciDistributionError::PushNoDataError),
            Class::Permanent(None)
        );
    }

    #[test]
    fn default_schedule_is_the_references() {
        let ms: Vec<u128> = RetryPolicy::default()
            .delays
            .iter()
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, [100, 200, 500, 1000, 2000]);
    }

    fn run<T>(
        policy: RetryPolicy,
        errors: Vec<OciDistributionError>,
        ok: T,
    ) -> (Result<T, OciDistributionError>, usize) {
        let calls = AtomicUsize::new(0);
        let errors = std::sync::Mutex::new(errors);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let ok = std::sync::Mutex::new(Some(ok));
        let res = rt.block_on(with_retry(&policy, "test", || {
            calls.fetch_add(1, Ordering::SeqCst);
            let next = {
                let mut e = errors.lock().unwrap();
                if e.is_empty() {
                    None
                } else {
                    Some(e.remove(0))
                }
            };
            let ok = match next {
                None => ok.lock().unwrap().take(),
                Some(_) => None,
            };
            async move {
                match (next, ok) {
                    (Some(e), _) => Err(e),
                    (None, Some(v)) => Ok(v),
                    (None, None) => Err(OciDistributionError::GenericError(None)),
                }
            }
        }));
        (res, calls.load(Ordering::SeqCst))
    }

    fn fast(n: usize) -> RetryPolicy {
        RetryPolicy {
            delays: vec![Duration::from_millis(1); n],
        }
    }

    #[test]
    fn transient_errors_are_retried_until_success() {
        let (res, calls) = run(fast(5), vec![server(503), server(500), server(502)], 7);
        assert_eq!(res.unwrap(), 7);
        assert_eq!(calls, 4);
    }

    #[test]
    fn retries_are_bounded() {
        let errs = (0..10).map(|_| server(503)).collect();
        let (res, calls) = run(fast(5), errs, 7);
        assert!(res.is_err());
        assert_eq!(calls, 6);
    }

    #[test]
    fn permanent_errors_are_not_retried_g23() {
        for code in [400, 401, 403, 404, 405] {
            let (res, calls) = run(fast(5), vec![server(code)], 7);
            assert!(res.is_err());
            assert_eq!(calls, 1, "{code} must not be retried");
        }
    }
}
