//! Identity tokens (`X-Identity` in `CNB_REGISTRY_AUTH`, `identitytoken` in docker config, `<token>`
//! user of credential helpers): OAuth2 refresh tokens exchanged at the registry's token service
//! (distribution "token authentication", `grant_type=refresh_token`) for a bearer token per repository
//! and operation. oci-client has no such flow, so the access token is placed in its token cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_client::token_cache::{RegistryToken, RegistryTokenType};
use oci_client::RegistryOperation;
use serde::Deserialize;

use super::error::RegistryError;
use super::reference::ImageRef;

/// Tokens are exchanged again after this long (oci-client keeps opaque tokens for 60 s by default).
const REFRESH_AFTER: Duration = Duration::from_secs(45);

/// A `WWW-Authenticate: Bearer realm=...,service=...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
}

/// Parses the first Bearer challenge of a `WWW-Authenticate` value.
pub(crate) fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string()
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some(BearerChallenge {
        realm: params.remove("realm")?,
        service: params.remove("service"),
    })
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Bearer tokens by (registry, repository, push) with when they were fetched.
pub(crate) type TokenMap = HashMap<(String, String, bool), (Instant, String)>;

/// Exchanges identity tokens and remembers when each (registry, repository, operation) was done.
pub(crate) struct IdentityExchange {
    http: reqwest::Client,
    fetched: Mutex<TokenMap>,
}

impl IdentityExchange {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        IdentityExchange {
            http,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// Makes sure `client`'s token cache holds a fresh bearer token for `image`'s repository and `op`
    /// (push tokens also cover pulling from `mount_sources`); returns it (for requests made directly).
    pub(crate) async fn ensure(
        &self,
        client: &oci_client::Client,
        scheme: &str,
        image: &ImageRef,
        op: RegistryOperation,
        refresh_token: &str,
        mount_sources: &[ImageRef],
    ) -> Result<String, RegistryError> {
        let push = op == RegistryOperation::Push;
        let key = (
            image.registry().to_string(),
            image.repository().to_string(),
            push,
        );
        let fresh = self.fetched.lock().ok().and_then(|m| {
            m.get(&key)
                .filter(|(t, _)| t.elapsed() < REFRESH_AFTER)
                .map(|(_, token)| token.clone())
        });
        if let Some(token) = fresh {
            return Ok(token);
        }
        let mut scopes = vec![format!(
            "repository:{}:{}",
            image.repository(),
            if push { "pull,push" } else { "pull" }
        )];
        if push {
            scopes.extend(
                mount_sources
                    .iter()
                    .filter(|s| {
                        s.registry() == image.registry() && s.repository() != image.repository()
                    })
                    .map(|s| format!("repository:{}:pull", s.repository())),
            );
        }
        let token = self.exchange(scheme, image, refresh_token, &scopes).await?;
        client
            .tokens
            .insert(
                &image.to_oci(),
                op,
                RegistryTokenType::Bearer(RegistryToken::Token {
                    token: token.clone(),
                }),
            )
            .await;
        if let Ok(mut m) = self.fetched.lock() {
            m.insert(key, (Instant::now(), token.clone()));
        }
        Ok(token)
    }

    async fn exchange(
        &self,
        scheme: &str,
        image: &ImageRef,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let fail = |detail: String| RegistryError::Unauthorized {
            action: "exchange the identity token for".into(),
            image: image.to_string(),
            registry: image.registry().to_string(),
            detail,
        };
        let ping = format!("{scheme}://{}/v2/", image.registry());
        let resp = self
            .http
            .get(&ping)
            .send()
            .await
            .map_err(|e| RegistryError::Request {
                action: "contact the registry of".into(),
                image: image.to_string(),
                status: None,
                transient: true,
                detail: e.to_string(),
            })?;
        let challenge = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_bearer_challenge)
            .ok_or_else(|| {
                fail("the registry offers no Bearer token service for identity tokens".into())
            })?;
        let mut pairs: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "cnb-lifecycle"),
        ];
        if let Some(s) = &challenge.service {
            pairs.push(("service", s));
        }
        for s in scopes {
            pairs.push(("scope", s));
        }
        let resp = self
            .http
            .post(&challenge.realm)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_encode(&pairs))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!(
                "token service {} answered {status}: {}",
                challenge.realm,
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("invalid token response: {e}")))?;
        parsed
            .access_token
            .or(parsed.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("token response has no access_token".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://auth.io/token",service="registry.io",scope="a:b:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.io"));
        let c = parse_bearer_challenge("bearer realm=http://x/t").unwrap();
        assert_eq!((c.realm.as_str(), c.service), ("http://x/t", None));
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_bearer_challenge("Bearer service=x").is_none());
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form_encode(&[("scope", "repository:a/b:pull,push"), ("x", "a b&c")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&x=a+b%26c"
        );
    }
}
