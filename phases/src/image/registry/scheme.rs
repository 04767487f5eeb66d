//! How a registry is reached: HTTPS, or plain HTTP for local registries (platform spec "Registry
//! Authentication"; checklist G-18), decided once per registry and client exactly as the reference's
//! registry library does it (go-containerregistry `name.Registry.Scheme` and `transport.Ping`):
//!
//! - Every registry is tried over HTTPS first.
//! - A **local** registry may fall back to plain HTTP: a name that is `localhost` or starts with
//!   `localhost:`, ends with `.localhost` (optionally `:port`), is `127.0.0.1[:port]`, `::1` or
//!   `[::1][:port]`, or whose host part is an RFC 1918 address (10/8, 172.16/12, 192.168/16). Nothing else
//!   qualifies (not `127.0.0.2`, not `.local`).
//! - A registry named by `-insecure-registry` / `CNB_INSECURE_REGISTRIES` is tried over HTTPS without
//!   certificate verification, then plain HTTP.
//! - The ping is `GET <scheme>://<registry>/v2/`; `200` or `401` is an answer. The HTTPS ping starts
//!   first; the HTTP one when the HTTPS one has failed (any error, including another status) or after
//!   300 ms, and the first answer wins. The winner's scheme is then used for every request to that
//!   registry (manifests, blobs, uploads, the open-registry shortcut); token services keep their own URLs.
//! - Any other registry is HTTPS only: a TLS failure stays an error (never a silent downgrade).
//!
//! The same ping tells how the registry authenticates ([`Challenge`]: open, Basic or Bearer; see the
//! `open` module). It is retried like any request when it fails transiently on every transport.

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;

use oci_client::errors::OciDistributionError;

use super::open::{answer_error, Challenge, DirectError};
use super::retry::{Class, RetryPolicy, Retryable, MAX_RETRY_AFTER};

/// How long the HTTPS ping runs alone before the HTTP fallback starts (the reference's 300 ms).
const FALLBACK_DELAY: Duration = Duration::from_millis(300);

/// One way of talking to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// HTTPS with certificate verification.
    Https,
    /// HTTPS accepting any certificate (insecure registries only).
    HttpsUnverified,
    /// Plain HTTP.
    Http,
}

impl Transport {
    /// The URL scheme.
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Transport::Https | Transport::HttpsUnverified => "https",
            Transport::Http => "http",
        }
    }
}

/// Whether `registry` (`host[:port]`) is local in the reference's sense (see the module docs).
pub(crate) fn is_local(registry: &str) -> bool {
    let with_port = |rest: &str| rest.is_empty() || valid_port_suffix(rest);
    if is_rfc1918(registry)
        || registry == "localhost"
        || registry.starts_with("localhost:")
        || registry == "::1"
    {
        return true;
    }
    if let Some(rest) = registry.strip_prefix("127.0.0.1") {
        return with_port(rest);
    }
    if let Some(rest) = registry.strip_prefix("[::1]") {
        return with_port(rest);
    }
    // `.*\.localhost(:\d{1,5})?$`
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if valid_port_suffix(&format!(":{port}")) => h,
        _ => registry,
    };
    host.ends_with(".localhost")
}

/// `:` followed by 1 to 5 digits.
fn valid_port_suffix(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|d| (1..=5).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The host part before the first `:` is an RFC 1918 IPv4 address.
fn is_rfc1918(registry: &str) -> bool {
    let host = registry.split(':').next().unwrap_or(registry);
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_private(),
        Err(_) => false,
    }
}

/// The transports to try for a registry, in order.
pub(crate) fn candidates(registry: &str, insecure: bool) -> &'static [Transport] {
    if insecure {
        &[Transport::HttpsUnverified, Transport::Http]
    } else if is_local(registry) {
        &[Transport::Https, Transport::Http]
    } else {
        &[Transport::Https]
    }
}

/// What the ping decided for a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// How to reach it.
    pub(crate) transport: Transport,
    /// How it authenticates, as its `GET /v2/` answer said.
    pub(crate) challenge: Challenge,
}

/// One failed ping.
#[derive(Debug)]
struct PingFailure {
    transport: Transport,
    error: DirectError,
}

/// `GET <scheme>://<host>/v2/`: `200` or `401` is an answer, which tells how the registry authenticates
/// (a `WWW-Authenticate: Bearer` challenge, any other challenge or a bare 401 as Basic, `200` without a
/// challenge as open).
async fn ping(
    http: &reqwest::Client,
    transport: Transport,
    host: &str,
) -> Result<Challenge, PingFailure> {
    let url = format!("{}://{host}/v2/", transport.scheme());
    let fail = |error| PingFailure { transport, error };
    let res = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(DirectError::from(e)))?;
    let status = res.status();
    if status != StatusCode::OK && status != StatusCode::UNAUTHORIZED {
        return Err(fail(answer_error(res, &url).await));
    }
    let header = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    Ok(match header {
        Some(h) if h.starts_with("bearer") => Challenge::Bearer,
        Some(_) => Challenge::Basic,
        None if status == StatusCode::OK => Challenge::None,
        None => Challenge::Basic,
    })
}

/// Pings with the first transport, starting the second one (if any) when the first failed or after
/// [`FALLBACK_DELAY`]; the first answer wins.
async fn race<F, Fut>(ping_with: F, transports: &[Transport]) -> Result<Endpoint, Vec<PingFailure>>
where
    F: Fn(Transport) -> Fut,
    Fut: Future<Output = Result<Challenge, PingFailure>>,
{
    let found = |transport, challenge| Endpoint {
        transport,
        challenge,
    };
    let (primary_t, fallback_t) = match transports {
        [] => return Err(Vec::new()),
        [one] => {
            return ping_with(*one)
                .await
                .map(|c| found(*one, c))
                .map_err(|e| vec![e])
        }
        [a, b, ..] => (*a, *b),
    };
    let primary = ping_with(primary_t);
    tokio::pin!(primary);
    let alone = tokio::select! {
        r = &mut primary => Some(r),
        _ = tokio::time::sleep(FALLBACK_DELAY) => None,
    };
    match alone {
        Some(Ok(c)) => return Ok(found(primary_t, c)),
        Some(Err(e)) => {
            return match ping_with(fallback_t).await {
                Ok(c) => Ok(found(fallback_t, c)),
                Err(e2) => Err(vec![e, e2]),
            };
        }
        None => {}
    }
    let fallback = ping_with(fallback_t);
    tokio::pin!(fallback);
    let (mut first_err, mut second_err) = (None, None);
    loop {
        tokio::select! {
            r = &mut primary, if first_err.is_none() => match r {
                Ok(c) => return Ok(found(primary_t, c)),
                Err(e) => first_err = Some(e),
            },
            r = &mut fallback, if second_err.is_none() => match r {
                Ok(c) => return Ok(found(fallback_t, c)),
                Err(e) => second_err = Some(e),
            },
        }
        if let (Some(_), Some(_)) = (&first_err, &second_err) {
            return Err(first_err.into_iter().chain(second_err).collect());
        }
    }
}

/// The per-client memory of how each registry is reached.
#[derive(Debug, Default)]
pub(crate) struct Endpoints {
    known: tokio::sync::Mutex<HashMap<String, Endpoint>>,
}

impl Endpoints {
    /// How to reach `registry` (its URL host is `host`), pinging it the first time; concurrent first
    /// calls wait for the one ping. `client_for` gives the HTTP client of a transport.
    ///
    /// A ping that failed transiently on every transport (a refused connection, a reset, 5xx, 429) is
    /// retried on `retry`'s schedule, waiting at least the answer's `Retry-After`; when the retries are
    /// used up the error is returned: the phase must not go on as if the registry needed no
    /// credentials (issue 14). When the failures are not transient (a certificate problem, a 404 on
    /// `/v2/`) nothing is remembered and the first candidate (HTTPS) is used with an unknown challenge,
    /// so that the real request reports the real error.
    pub(crate) async fn resolve<C>(
        &self,
        registry: &str,
        host: &str,
        insecure: bool,
        retry: &RetryPolicy,
        client_for: C,
    ) -> Result<Endpoint, DirectError>
    where
        C: Fn(Transport) -> Option<reqwest::Client>,
    {
        let mut known = self.known.lock().await;
        if let Some(e) = known.get(registry) {
            return Ok(*e);
        }
        let transports = candidates(registry, insecure);
        let ping_with = |t: Transport| {
            let http = client_for(t);
            async move {
                match http {
                    Some(http) => ping(&http, t, host).await,
                    None => Err(PingFailure {
                        transport: t,
                        error: DirectError {
                            error: OciDistributionError::GenericError(Some(
                                "no HTTP client".into(),
                            )),
                            retry_after: None,
                            class: Some(Class::Permanent(None)),
                        },
                    }),
                }
            }
        };
        let mut delays = retry.delays.iter();
        loop {
            let failures = match race(&ping_with, transports).await {
                Ok(e) => {
                    tracing::debug!(
                        registry,
                        scheme = e.transport.scheme(),
                        challenge = ?e.challenge,
                        "pinged registry"
                    );
                    known.insert(registry.to_string(), e);
                    return Ok(e);
                }
                Err(failures) => failures,
            };
            for f in &failures {
                tracing::debug!(registry, scheme = f.transport.scheme(), error = %f.error, "registry ping failed");
            }
            // An answer (a 503 over HTTP) says more than a failed handshake on the other transport.
            let mut transient: Vec<PingFailure> = failures
                .into_iter()
                .filter(|f| matches!(f.error.class(), Class::Transient(_)))
                .collect();
            transient.sort_by_key(|f| !matches!(f.error.class(), Class::Transient(Some(_))));
            let transient = transient.into_iter().next();
            let Some(failure) = transient else {
                return Ok(Endpoint {
                    transport: transports.first().copied().unwrap_or(Transport::Https),
                    challenge: Challenge::Unknown,
                });
            };
            let Some(delay) = delays.next() else {
                return Err(failure.error);
            };
            let delay = failure
                .error
                .retry_after()
                .map(|r| r.min(MAX_RETRY_AFTER))
                .map_or(*delay, |r| r.max(*delay));
            tracing::debug!(registry, "ping failed transiently, retrying in {delay:?}");
            tokio::time::sleep(delay).await;
        }
    }
}

/// A hint for an HTTPS failure of a registry that gets no HTTP fallback.
pub(crate) fn https_only_hint(registry: &str) -> String {
    format!(
        "{registry} is reached over HTTPS only: plain HTTP is used for local registries (localhost, \
         127.0.0.1, ::1, private 10/172.16/192.168 addresses) and for registries named in \
         CNB_INSECURE_REGISTRIES (or -insecure-registry, Platform API 0.13+)"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn local_names_follow_the_reference_heuristic() {
        // G-18: go-containerregistry `Registry.Scheme()` without the insecure option.
        for local in [
            "localhost",
            "localhost:5000",
            "registry.localhost",
            "a.b.localhost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "::1",
            "[::1]",
            "[::1]:5000",
            "10.1.2.3:5000",
            "172.16.0.1",
            "172.31.255.255:443",
            "192.168.1.10:5000",
        ] {
            assert!(is_local(local), "{local} should be local");
        }
        for remote in [
            "index.docker.io",
            "registry.example.test:5000",
            "registry.local:5000",
            "localhost.example.com",
            "127.0.0.2:5000",
            "127.0.0.1.nip.io",
            "172.32.0.1",
            "192.169.0.1",
            "8.8.8.8:5000",
            "[::2]:5000",
            "registry.localhost:123456",
        ] {
            assert!(!is_local(remote), "{remote} should not be local");
        }
    }

    #[test]
    fn candidates_per_kind() {
        assert_eq!(candidates("gcr.io", false), [Transport::Https]);
        assert_eq!(
            candidates("localhost:5000", false),
            [Transport::Https, Transport::Http]
        );
        assert_eq!(
            candidates("gcr.io", true),
            [Transport::HttpsUnverified, Transport::Http]
        );
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn fail(t: Transport) -> PingFailure {
        PingFailure {
            transport: t,
            error: DirectError::transient(OciDistributionError::GenericError(Some(
                "refused".into(),
            ))),
        }
    }

    #[test]
    fn https_failure_falls_back_at_once() {
        let e = rt().block_on(race(
            |t| async move {
                match t {
                    Transport::Http => Ok(Challenge::None),
                    _ => Err(fail(t)),
                }
            },
            &[Transport::Https, Transport::Http],
        ));
        assert_eq!(
            e.unwrap(),
            Endpoint {
                transport: Transport::Http,
                challenge: Challenge::None
            }
        );
    }

    #[test]
    fn https_answer_wins_and_both_failures_are_reported() {
        let e = rt().block_on(race(
            |_| async move { Ok(Challenge::Basic) },
            &[Transport::Https, Transport::Http],
        ));
        assert_eq!(e.unwrap().transport, Transport::Https);
        let errs = rt()
            .block_on(race(
                |t| async move { Err(fail(t)) },
                &[Transport::Https, Transport::Http],
            ))
            .unwrap_err();
        assert_eq!(errs.len(), 2);
        let only = rt()
            .block_on(race(|t| async move { Err(fail(t)) }, &[Transport::Https]))
            .unwrap_err();
        assert_eq!(only[0].transport, Transport::Https);
    }

    #[test]
    fn slow_https_lets_http_start() {
        // HTTPS never answers: the fallback starts after the delay and wins.
        let e = rt().block_on(race(
            |t| async move {
                if t == Transport::Https {
                    std::future::pending::<()>().await;
                }
                Ok(Challenge::None)
            },
            &[Transport::Https, Transport::Http],
        ));
        assert_eq!(e.unwrap().transport, Transport::Http);
    }
}
