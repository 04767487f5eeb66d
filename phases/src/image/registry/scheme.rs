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
//! The same ping tells whether the registry is *open* (`200` without a `WWW-Authenticate` challenge; see
//! the `open` module).

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;

use super::client::error_chain;

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
    /// `GET /v2/` answered 200 without an authentication challenge.
    pub(crate) open: bool,
}

/// One failed ping.
#[derive(Debug)]
struct PingFailure {
    transport: Transport,
    detail: String,
}

async fn ping(
    http: &reqwest::Client,
    transport: Transport,
    host: &str,
) -> Result<bool, PingFailure> {
    let url = format!("{}://{host}/v2/", transport.scheme());
    let fail = |detail| PingFailure { transport, detail };
    let res = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(format!("GET {url}: {}", error_chain(&e))))?;
    match res.status() {
        StatusCode::OK => Ok(!res.headers().contains_key(WWW_AUTHENTICATE)),
        StatusCode::UNAUTHORIZED => Ok(false),
        s => Err(fail(format!("GET {url}: unexpected status {s}"))),
    }
}

/// Pings with the first transport, starting the second one (if any) when the first failed or after
/// [`FALLBACK_DELAY`]; the first answer wins.
async fn race<F, Fut>(ping_with: F, transports: &[Transport]) -> Result<Endpoint, Vec<PingFailure>>
where
    F: Fn(Transport) -> Fut,
    Fut: Future<Output = Result<bool, PingFailure>>,
{
    let found = |transport, open| Endpoint { transport, open };
    let (primary_t, fallback_t) = match transports {
        [] => return Err(Vec::new()),
        [one] => {
            return ping_with(*one)
                .await
                .map(|o| found(*one, o))
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
        Some(Ok(open)) => return Ok(found(primary_t, open)),
        Some(Err(e)) => {
            return match ping_with(fallback_t).await {
                Ok(open) => Ok(found(fallback_t, open)),
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
                Ok(open) => return Ok(found(primary_t, open)),
                Err(e) => first_err = Some(e),
            },
            r = &mut fallback, if second_err.is_none() => match r {
                Ok(open) => return Ok(found(fallback_t, open)),
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
    /// When no ping is answered the decision is not remembered and the first candidate (HTTPS) is used
    /// for this request, so that the real request reports the real error (a certificate problem, a
    /// refused connection) and is retried when transient.
    pub(crate) async fn resolve<C>(
        &self,
        registry: &str,
        host: &str,
        insecure: bool,
        client_for: C,
    ) -> Endpoint
    where
        C: Fn(Transport) -> Option<reqwest::Client>,
    {
        let mut known = self.known.lock().await;
        if let Some(e) = known.get(registry) {
            return *e;
        }
        let transports = candidates(registry, insecure);
        let ping_with = |t: Transport| {
            let http = client_for(t);
            async move {
                match http {
                    Some(http) => ping(&http, t, host).await,
                    None => Err(PingFailure {
                        transport: t,
                        detail: "no HTTP client".into(),
                    }),
                }
            }
        };
        match race(ping_with, transports).await {
            Ok(e) => {
                tracing::debug!(
                    registry,
                    scheme = e.transport.scheme(),
                    open = e.open,
                    "pinged registry"
                );
                known.insert(registry.to_string(), e);
                e
            }
            Err(failures) => {
                for f in &failures {
                    tracing::debug!(registry, scheme = f.transport.scheme(), detail = %f.detail, "registry ping failed");
                }
                let transport = transports.first().copied().unwrap_or(Transport::Https);
                Endpoint {
                    transport,
                    open: false,
                }
            }
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
            detail: "refused".into(),
        }
    }

    #[test]
    fn https_failure_falls_back_at_once() {
        let e = rt().block_on(race(
            |t| async move {
                match t {
                    Transport::Http => Ok(true),
                    _ => Err(fail(t)),
                }
            },
            &[Transport::Https, Transport::Http],
        ));
        assert_eq!(
            e.unwrap(),
            Endpoint {
                transport: Transport::Http,
                open: true
            }
        );
    }

    #[test]
    fn https_answer_wins_and_both_failures_are_reported() {
        let e = rt().block_on(race(
            |_| async move { Ok(false) },
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
                Ok(true)
            },
            &[Transport::Https, Transport::Http],
        ));
        assert_eq!(e.unwrap().transport, Transport::Http);
    }
}
