//! Retries on transient errors through the real client and HTTP stack (checklist G-23), against a tiny
//! scripted HTTP server (a fake is fine here: the logic under test is the retry classification and
//! schedule, not registry behaviour).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cnb_lifecycle::image::registry::{
    ImageRef, Keychain, KeychainSource, RegistryClient, RegistryError, RegistryOptions, RetryPolicy,
};

/// Serves `GET /v2/` with 200 and answers every other request with the next status of `script` (the
/// last one repeats). Returns the address and the log of non-`/v2/` request lines.
fn scripted(script: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        let mut i = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let status = if first.starts_with("GET /v2/ ") {
                200
            } else {
                log2.lock().unwrap().push(first.trim().to_string());
                let s = script[i.min(script.len() - 1)];
                i += 1;
                s
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\nDocker-Distribution-API-Version: registry/2.0\r\n\r\n"
            );
        }
    });
    (addr, log)
}

fn client(addr: &str, delays_ms: &[u64]) -> RegistryClient {
    let retry = RetryPolicy {
        delays: delays_ms
            .iter()
            .map(|d| Duration::from_millis(*d))
            .collect(),
    };
    RegistryClient::new(
        Arc::new(Keychain::anonymous()),
        RegistryOptions::default().insecure(addr).retry(retry),
    )
    .unwrap()
}

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn transient_5xx_are_retried_with_backoff_g23() {
    let (addr, log) = scripted(vec![503, 502, 200]);
    let c = client(&addr, &[100, 200, 500, 1000, 2000]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let start = Instant::now();
    assert!(c.blob_exists(&image, D).unwrap());
    assert_eq!(log.lock().unwrap().len(), 3);
    // 100 ms + 200 ms of backoff happened.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn retries_give_up_after_the_schedule() {
    let (addr, log) = scripted(vec![500]);
    let c = client(&addr, &[1, 1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let err = c.blob_exists(&image, D).unwrap_err();
    assert_eq!(log.lock().unwrap().len(), 4);
    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("app:v1"), "{err}");
}

#[test]
fn client_errors_are_not_retried_g23() {
    // 429 is retried (issue 14; see `rate_limited_requests_are_retried_honouring_retry_after`).
    for status in [400, 401, 403, 405] {
        let (addr, log) = scripted(vec![status, 200]);
        let c = client(&addr, &[1, 1, 1, 1, 1]);
        let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
        let err = c.blob_exists(&image, D).unwrap_err();
        assert_eq!(log.lock().unwrap().len(), 1, "{status} was retried");
        assert_eq!(err.status(), Some(status), "{err:?}");
    }
}

#[test]
fn connection_refused_is_transient() {
    // A port nobody listens on (bound, then closed).
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let c = client(&addr, &[1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    match c.blob_exists(&image, D).unwrap_err() {
        cnb_lifecycle::image::registry::RegistryError::Request { transient, .. } => {
            assert!(transient)
        }
        other => panic!("{other:?}"),
    }
}

// ---- Issue 14: the auth probe, 429 + Retry-After, blobs cut mid-download -------------------------------

/// One parsed request: the request line and the headers (lower-cased names).
#[derive(Debug, Clone)]
struct Req {
    line: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fault server does with one request.
enum Reply {
    /// A complete answer.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers announcing `len` bytes, then only `body`, then the connection is closed.
    Cut(u16, Vec<(String, String)>, usize, Vec<u8>),
    /// The connection is closed without an answer.
    Reset,
    /// Nothing is answered; the connection stays open (on its own thread) for this long.
    Stall(Duration),
}

/// A loopback HTTP/1.1 server answering each request with `handler(request, n)`, `n` counting the
/// requests with the same first line. Returns the address and the log of every request.
fn fault_server(
    handler: impl Fn(&Req, usize) -> Reply + Send + 'static,
) -> (String, Arc<Mutex<Vec<Req>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Arc<Mutex<Vec<Req>>> = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let req = Req {
                line: line.trim().to_string(),
                headers,
            };
            let n = {
                let mut l = log2.lock().unwrap();
                let n = l.iter().filter(|r| r.line == req.line).count();
                l.push(req.clone());
                n
            };
            let head = |status: u16, hs: &[(String, String)], len: usize| {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\nDocker-Distribution-API-Version: registry/2.0\r\n"
                );
                for (k, v) in hs {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out
            };
            let head_only = req.line.starts_with("HEAD ");
            match handler(&req, n) {
                Reply::Full(status, hs, body) => {
                    let _ = stream.write_all(head(status, &hs, body.len()).as_bytes());
                    if !head_only {
                        let _ = stream.write_all(&body);
                    }
                }
                Reply::Cut(status, hs, len, body) => {
                    let _ = stream.write_all(head(status, &hs, len).as_bytes());
                    let _ = stream.write_all(&body);
                    let _ = stream.flush();
                }
                Reply::Reset => {}
                Reply::Stall(d) => {
                    std::thread::spawn(move || {
                        std::thread::sleep(d);
                        drop(stream);
                    });
                    continue;
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (addr, log)
}

fn ok(body: &[u8]) -> Reply {
    Reply::Full(200, Vec::new(), body.to_vec())
}

fn status(code: u16) -> Reply {
    Reply::Full(code, Vec::new(), Vec::new())
}

fn hdr(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn basic_client(addr: &str, delays_ms: &[u64]) -> RegistryClient {
    let keychain = Keychain::new(&KeychainSource {
        registry_auth: Some(format!(
            r#"{{"{addr}":"Basic dXNlcjpzM2NyZXQ="}}"# // user:s3cret
        )),
        ..KeychainSource::default()
    })
    .unwrap();
    let retry = RetryPolicy {
        delays: delays_ms
            .iter()
            .map(|d| Duration::from_millis(*d))
            .collect(),
    };
    RegistryClient::new(
        Arc::new(keychain),
        RegistryOptions::default().insecure(addr).retry(retry),
    )
    .unwrap()
}

/// Issue 14: a 503, 429 or reset on the `GET /v2/` probe made the client go on without credentials and
/// fail with `unauthorized … check credentials`; now the probe (and oci-client's own token fetch) is
/// retried and the request carries the credentials.
#[test]
fn failed_auth_probes_are_retried_not_skipped() {
    for (label, bearer) in [("basic", false), ("bearer", true)] {
        let (addr, log) = fault_server(move |req, n| {
            let challenge = |addr: &str| {
                if bearer {
                    hdr(
                        "WWW-Authenticate",
                        &format!("Bearer realm=\"http://{addr}/token\",service=\"test\""),
                    )
                } else {
                    hdr("WWW-Authenticate", "Basic realm=\"test\"")
                }
            };
            let host = req.header("host").unwrap_or("").to_string();
            if req.line.starts_with("GET /v2/ ") {
                return match n {
                    0 => status(503),
                    1 => Reply::Full(429, vec![hdr("Retry-After", "0")], Vec::new()),
                    2 => Reply::Reset,
                    _ => Reply::Full(401, vec![challenge(&host)], Vec::new()),
                };
            }
            if req.line.starts_with("GET /token") {
                return ok(br#"{"token":"T0KEN"}"#);
            }
            let want = if bearer {
                "Bearer T0KEN"
            } else {
                "Basic dXNlcjpzM2NyZXQ="
            };
            if req.header("authorization") == Some(want) {
                ok(b"")
            } else {
                Reply::Full(401, vec![challenge(&host)], Vec::new())
            }
        });
        let c = basic_client(&addr, &[1, 1, 1, 1, 1]);
        let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
        assert!(c.blob_exists(&image, D).unwrap(), "{label}");
        let log = log.lock().unwrap();
        let probes = log
            .iter()
            .filter(|r| r.line.starts_with("GET /v2/ "))
            .count();
        assert!(probes >= 4, "{label}: the probe was retried: {log:?}");
        assert!(
            log.iter().any(|r| r.line.starts_with("HEAD /v2/app/blobs/")
                && r.header("authorization").is_some()),
            "{label}: {log:?}"
        );
    }
}

/// A registry that keeps failing its probe: the error names the registry and what was being done, and
/// says it was transient (not a misleading "check credentials").
#[test]
fn a_registry_that_never_answers_the_probe_is_named() {
    let (addr, log) = fault_server(|_, _| status(503));
    let c = basic_client(&addr, &[1, 1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let err = c.blob_exists(&image, D).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&addr) && msg.contains("reach the registry") && !msg.contains("credentials"),
        "{msg}"
    );
    assert!(
        matches!(
            err,
            RegistryError::Request {
                transient: true,
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 4, "1 + 3 retries");
}

/// Issue 14: a 429 with `Retry-After: 1` on a blob HEAD was not retried. It is retried, waiting at least
/// the second the registry asked for (the schedule here is 1 ms).
#[test]
fn rate_limited_requests_are_retried_honouring_retry_after() {
    let (addr, log) = fault_server(|req, n| {
        if req.line.starts_with("GET /v2/ ") {
            return ok(b"");
        }
        if n == 0 {
            Reply::Full(429, vec![hdr("Retry-After", "1")], Vec::new())
        } else {
            ok(b"")
        }
    });
    let c = client(&addr, &[1, 1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let start = Instant::now();
    assert!(c.blob_exists(&image, D).unwrap());
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let heads = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.line.starts_with("HEAD "))
        .count();
    assert_eq!(heads, 2);
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Issue 14: a blob cut or reset mid-download was reported as a failure (the restorer then skipped the
/// layer as a cache miss). It is resumed from where it stopped with a `Range` request — or, when the
/// registry ignores ranges, restarted with the delivered prefix skipped — and verified against its digest.
#[test]
fn blobs_cut_mid_download_are_resumed_and_verified() {
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = sha(&blob);
    for (label, honour_range) in [("range", true), ("restart", false)] {
        let b = blob.clone();
        let (addr, log) = fault_server(move |req, n| {
            if req.line.starts_with("GET /v2/ ") {
                return ok(b"");
            }
            match (n, req.header("range")) {
                (0, _) => Reply::Cut(200, Vec::new(), b.len(), b[..70_000].to_vec()),
                (1, _) => Reply::Reset,
                (_, Some(r)) if honour_range => {
                    let from: usize = r
                        .trim_start_matches("bytes=")
                        .trim_end_matches('-')
                        .parse()
                        .unwrap();
                    Reply::Full(
                        206,
                        vec![hdr(
                            "Content-Range",
                            &format!("bytes {from}-{}/{}", b.len() - 1, b.len()),
                        )],
                        b[from..].to_vec(),
                    )
                }
                _ => ok(&b),
            }
        });
        let c = client(&addr, &[1, 1, 1, 1]);
        let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
        let mut out = Vec::new();
        let n = c.pull_blob_to(&image, &digest, &mut out).unwrap();
        assert_eq!(n as usize, blob.len(), "{label}");
        assert!(out == blob, "{label}: content differs");
        let log = log.lock().unwrap();
        let gets: Vec<&Req> = log
            .iter()
            .filter(|r| r.line.starts_with("GET /v2/app/blobs/"))
            .collect();
        assert_eq!(gets.len(), 3, "{label}: {gets:?}");
        assert_eq!(gets[2].header("range"), Some("bytes=70000-"), "{label}");
    }
}

/// A blob whose content does not match its digest (or that stays short) fails after the retries,
/// naming the blob and the image, instead of being handed over as good data.
#[test]
fn blobs_that_do_not_match_their_digest_fail_clearly() {
    let blob = b"the real content".to_vec();
    let digest = sha(&blob);
    let (addr, _) = fault_server(|req, _| {
        if req.line.starts_with("GET /v2/ ") {
            return ok(b"");
        }
        if req.header("range").is_some() {
            return status(416);
        }
        ok(b"tampered content")
    });
    let c = client(&addr, &[1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let err = c
        .pull_blob_to(&image, &digest, &mut Vec::new())
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&digest) && msg.contains("app:v1"), "{msg}");
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    // Always cut: the retries run out and the error says where it stopped.
    let (addr, _) = fault_server(move |req, _| {
        if req.line.starts_with("GET /v2/ ") {
            return ok(b"");
        }
        Reply::Cut(200, Vec::new(), 16, b"the ".to_vec())
    });
    let c = client(&addr, &[1, 1]);
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let msg = c
        .pull_blob_to(&image, &digest, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&digest) && msg.contains(&addr) && msg.contains("pull"),
        "{msg}"
    );
}

/// Issue 14: the client had a connect timeout only, so a registry that accepts a request and never
/// answers hung the phase forever. A silent response now fails after the read timeout as a transient
/// error and is retried.
#[test]
fn a_stalled_response_times_out_and_is_retried() {
    let (addr, log) = fault_server(|req, n| {
        if req.line.starts_with("GET /v2/ ") {
            return ok(b"");
        }
        if n == 0 {
            Reply::Stall(Duration::from_secs(600))
        } else {
            ok(b"")
        }
    });
    let retry = RetryPolicy {
        delays: vec![Duration::from_millis(1); 3],
    };
    let options = RegistryOptions::default()
        .insecure(&addr)
        .retry(retry)
        .read_timeout(Duration::from_millis(500));
    let c = RegistryClient::new(Arc::new(Keychain::anonymous()), options).unwrap();
    let image = ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.blob_exists(&image, D).map_err(|e| e.to_string()));
    });
    // Generous: without a read timeout the call never returns (the stall lasts 600 s).
    let res = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("blob HEAD against a stalled registry hung");
    assert!(res.unwrap());
    let heads = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.line.starts_with("HEAD "))
        .count();
    assert_eq!(heads, 2);
}
