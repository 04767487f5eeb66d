//! Retries on transient errors through the real client and HTTP stack (checklist G-23), against a tiny
//! scripted HTTP server (a fake is fine here: the logic under test is the retry classification and
//! schedule, not registry behaviour).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cnb_lifecycle::image::registry::{
    ImageRef, Keychain, RegistryClient, RegistryOptions, RetryPolicy,
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
    for status in [400, 401, 403, 405, 429] {
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
