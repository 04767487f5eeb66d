//! Identity tokens (`X-Identity` in CNB_REGISTRY_AUTH, checklist G-16) are exchanged at the registry's
//! token service (`grant_type=refresh_token`) for bearer tokens. Debian's docker-registry needs an
//! external token server for this flow, so a small fake registry + token service stands in (the logic
//! under test is our side of the OAuth2 exchange).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cnb_lifecycle::image::registry::{
    ImageRef, Keychain, KeychainSource, RegistryClient, RegistryOptions,
};

/// `(request line, authorization, body)` of every request.
type RequestLog = Arc<Mutex<Vec<(String, String, String)>>>;

/// Returns the address and the request log.
fn fake_token_registry() -> (String, RequestLog) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log2, addr2) = (log.clone(), addr.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let (mut auth, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
                if lower.starts_with("content-length:") {
                    len = line["content-length:".len()..].trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body).into_owned();
            log2.lock()
                .unwrap()
                .push((first.trim().to_string(), auth.clone(), body.clone()));
            let challenge =
                format!(r#"WWW-Authenticate: Bearer realm="http://{addr2}/token",service="fake""#);
            let (status, headers, payload) = if first.starts_with("POST /token") {
                if body.contains("grant_type=refresh_token") && body.contains("refresh_token=GOOD")
                {
                    (
                        200,
                        String::new(),
                        r#"{"access_token":"ACCESS"}"#.to_string(),
                    )
                } else {
                    (
                        401,
                        String::new(),
                        r#"{"details":"bad refresh token"}"#.to_string(),
                    )
                }
            } else if auth == "Bearer ACCESS" {
                (200, String::new(), String::new())
            } else {
                (401, challenge, String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\n{headers}{}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                if headers.is_empty() { "" } else { "\r\n" },
                payload.len()
            );
        }
    });
    (addr, log)
}

fn client(addr: &str, header: &str) -> RegistryClient {
    let keychain = Keychain::new(&KeychainSource {
        registry_auth: Some(format!(r#"{{"{addr}": "{header}"}}"#)),
        ..Default::default()
    })
    .unwrap();
    RegistryClient::new(
        Arc::new(keychain),
        RegistryOptions::default().insecure(addr),
    )
    .unwrap()
}

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn identity_token_is_exchanged_for_a_bearer_token_g16() {
    let (addr, log) = fake_token_registry();
    let c = client(&addr, "X-Identity GOOD");
    let image = ImageRef::parse(&format!("{addr}/team/app:v1")).unwrap();
    assert!(c.blob_exists(&image, D).unwrap());
    let log = log.lock().unwrap();
    let token_req = log
        .iter()
        .find(|(l, _, _)| l.starts_with("POST /token"))
        .unwrap();
    assert!(
        token_req.2.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{}",
        token_req.2
    );
    assert!(token_req.2.contains("service=fake"), "{}", token_req.2);
    let head = log
        .iter()
        .find(|(l, _, _)| l.starts_with("HEAD /v2/team/app/blobs/"))
        .unwrap();
    assert_eq!(head.1, "Bearer ACCESS");
}

#[test]
fn a_rejected_identity_token_is_a_clear_unauthorized_error() {
    let (addr, _log) = fake_token_registry();
    let c = client(&addr, "x-identity BAD");
    let image = ImageRef::parse(&format!("{addr}/team/app:v1")).unwrap();
    let err = c.blob_exists(&image, D).unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("check credentials for {addr}")),
        "{msg}"
    );
    assert!(msg.contains("bad refresh token"), "{msg}");
}
