//! Registry credentials (checklist G-16, G-17), in order of precedence:
//! 1. `CNB_REGISTRY_AUTH`: a JSON object `{"<registry>": "<Authorization header value>"}` with schemes
//!    `Basic <base64 user:pass>`, `Bearer <token>` or `X-Identity <identity token>` (case-insensitive); keys
//!    may carry `http(s)://` and a path, both ignored.
//! 2. docker's `config.json` in `$DOCKER_CONFIG` or `~/.docker`: `credHelpers[<registry>]`, then
//!    `credsStore` (both run `docker-credential-<name> get`), then `auths[<registry>]` (`auth`,
//!    `username`/`password`, `identitytoken`, `registrytoken`).
//! 3. containers `auth.json` (podman, skopeo, buildah), when docker's config has nothing for the registry:
//!    `$REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`, then
//!    `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`; the first file with `credHelpers` or `auths` for
//!    the registry wins (same entry formats as docker's; `auths` keys may name a repository, reduced to
//!    the host).
//! 4. Anonymous.
//!
//! Platforms build the keychain **before dropping privileges** (the docker config may be readable only by
//! root): [`Keychain::from_env`] reads the files at once and [`Keychain::resolve_now`] runs credential
//! helpers for the registries a phase will use, caching the results.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use base64::Engine as _;
use serde::Deserialize;

use super::error::KeychainError;
use super::reference::{normalise_registry, ImageRef, DEFAULT_REGISTRY};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials.
    Anonymous,
    /// User name and password (HTTP basic, or exchanged for a bearer token by the registry's token service).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A registry bearer token used as is.
    Bearer(String),
    /// An OAuth2 refresh token ("identity token") exchanged at the registry's token service.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => write!(f, "Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            Credential::Bearer(_) => write!(f, "Bearer(***)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

impl Credential {
    /// Parses an `Authorization` header value as `CNB_REGISTRY_AUTH` carries it.
    pub fn from_header(registry: &str, header: &str) -> Result<Credential, KeychainError> {
        let err = |reason: &str| KeychainError::Header {
            registry: registry.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, value) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| err("unknown auth type from header"))?;
        let value = value.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => decode_basic(value)
                .ok_or_else(|| err("Basic value is not base64 of 'user:password'")),
            "bearer" => Ok(Credential::Bearer(value.to_string())),
            "x-identity" => Ok(Credential::IdentityToken(value.to_string())),
            _ => Err(err("unknown auth type from header")),
        }
    }

    /// The header form (`Basic …`, `Bearer …`, `X-Identity …`) used by `CNB_REGISTRY_AUTH`; `None` for
    /// anonymous.
    pub fn to_header(&self) -> Option<String> {
        match self {
            Credential::Anonymous => None,
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credential::Bearer(t) => Some(format!("Bearer {t}")),
            Credential::IdentityToken(t) => Some(format!("X-Identity {t}")),
        }
    }
}

fn decode_basic(b64: &str) -> Option<Credential> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credential::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl DockerAuth {
    fn credential(&self) -> Option<Credential> {
        if let Some(t) = self.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Some(Credential::Bearer(t.to_string()));
        }
        if let Some(t) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Some(Credential::IdentityToken(t.to_string()));
        }
        if let Some(c) = self
            .auth
            .as_deref()
            .filter(|a| !a.is_empty())
            .and_then(decode_basic)
        {
            return Some(c);
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Where a [`Keychain`] reads credentials from (explicit, so tests need no process environment).
#[derive(Debug, Clone, Default)]
pub struct KeychainSource {
    /// The `CNB_REGISTRY_AUTH` JSON, if set.
    pub registry_auth: Option<String>,
    /// The docker config directory (`$DOCKER_CONFIG` or `~/.docker`), if known.
    pub docker_config_dir: Option<PathBuf>,
    /// Extra directories searched for `docker-credential-*` helpers before `PATH`.
    pub helper_path: Vec<PathBuf>,
    /// containers `auth.json` files consulted after the docker config, in order.
    pub containers_auth_files: Vec<PathBuf>,
}

/// The containers `auth.json` files podman and skopeo read, in their order: `$REGISTRY_AUTH_FILE`, then
/// `$XDG_RUNTIME_DIR/containers/auth.json`, then `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json`.
fn containers_auth_files_from_env() -> Vec<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    files.extend(var("REGISTRY_AUTH_FILE"));
    files.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.extend(
        var("XDG_CONFIG_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".config")))
            .map(|d| d.join("containers/auth.json")),
    );
    files
}

impl KeychainSource {
    /// Reads `CNB_REGISTRY_AUTH` (as [`crate::privilege::secrets::registry_auth`] keeps it), `DOCKER_CONFIG`
    /// and `HOME` from the process environment.
    pub fn from_env() -> KeychainSource {
        let docker_config_dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
        KeychainSource {
            // Taken out of the environment at start-up (privilege::secrets).
            registry_auth: crate::privilege::secrets::registry_auth(),
            docker_config_dir,
            helper_path: Vec::new(),
            containers_auth_files: containers_auth_files_from_env(),
        }
    }
}

/// Registry credentials from `CNB_REGISTRY_AUTH`, docker config and credential helpers (G-16).
#[derive(Debug, Default)]
pub struct Keychain {
    env: BTreeMap<String, Credential>,
    docker: DockerConfigFile,
    containers: Vec<DockerConfigFile>,
    helper_path: Vec<PathBuf>,
    resolved: Mutex<BTreeMap<String, Credential>>,
}

impl Keychain {
    /// A keychain that always answers anonymous.
    pub fn anonymous() -> Keychain {
        Keychain::default()
    }

    /// Builds the keychain from the process environment (see [`KeychainSource::from_env`]).
    pub fn from_env() -> Result<Keychain, KeychainError> {
        Keychain::new(&KeychainSource::from_env())
    }

    /// Builds the keychain: parses `CNB_REGISTRY_AUTH` and reads the docker config file now.
    pub fn new(source: &KeychainSource) -> Result<Keychain, KeychainError> {
        let mut env = BTreeMap::new();
        if let Some(json) = &source.registry_auth {
            let map: BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|e| KeychainError::EnvJson(e.to_string()))?;
            for (key, header) in map {
                let registry = normalise_registry(&key);
                let cred = Credential::from_header(&key, &header)?;
                env.insert(registry, cred);
            }
        }
        let docker = match &source.docker_config_dir {
            Some(dir) => read_docker_config(&dir.join("config.json"))?,
            None => DockerConfigFile::default(),
        };
        let containers = source
            .containers_auth_files
            .iter()
            .map(|p| read_docker_config(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keychain {
            env,
            docker,
            containers,
            helper_path: source.helper_path.clone(),
            resolved: Mutex::new(BTreeMap::new()),
        })
    }

    /// Resolves (and caches) credentials for the registries of `images` now — call this before dropping
    /// privileges so credential helpers run with the original user's access (G-17). Helper failures are
    /// logged and leave that registry anonymous, as in the reference.
    pub fn resolve_now(&self, images: &[ImageRef]) {
        for image in images {
            if let Err(e) = self.resolve(image.registry()) {
                tracing::warn!(
                    "registry credentials for {} unavailable: {e}",
                    image.registry()
                );
            }
        }
    }

    /// The credential for `registry` (a host, normalised like the reference: `docker.io` is
    /// `index.docker.io`).
    pub fn resolve(&self, registry: &str) -> Result<Credential, KeychainError> {
        let registry = normalise_registry(registry);
        if let Some(c) = self.env.get(&registry) {
            return Ok(c.clone());
        }
        if let Some(c) = self
            .resolved
            .lock()
            .ok()
            .and_then(|m| m.get(&registry).cloned())
        {
            return Ok(c);
        }
        let cred = self.resolve_docker(&registry)?;
        if let Ok(mut m) = self.resolved.lock() {
            m.insert(registry, cred.clone());
        }
        Ok(cred)
    }

    fn resolve_docker(&self, registry: &str) -> Result<Credential, KeychainError> {
        for file in std::iter::once(&self.docker).chain(&self.containers) {
            if let Some(c) = self.resolve_in(file, registry)? {
                return Ok(c);
            }
        }
        Ok(Credential::Anonymous)
    }

    /// One docker-format file: `credHelpers[<registry>]`, then `credsStore`, then `auths[<registry>]`.
    fn resolve_in(
        &self,
        file: &DockerConfigFile,
        registry: &str,
    ) -> Result<Option<Credential>, KeychainError> {
        let helper = file
            .cred_helpers
            .iter()
            .find(|(k, _)| normalise_registry(k) == registry)
            .map(|(_, v)| v.clone())
            .or_else(|| file.creds_store.clone().filter(|s| !s.is_empty()));
        if let Some(helper) = helper {
            if let Some(c) = self.run_helper(&helper, registry)? {
                return Ok(Some(c));
            }
        }
        Ok(file
            .auths
            .iter()
            .filter(|(k, _)| normalise_registry(k) == registry)
            .find_map(|(_, a)| a.credential()))
    }

    /// Runs `docker-credential-<helper> get` with the registry's server URL on stdin.
    fn run_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, KeychainError> {
        let err = |reason: String| KeychainError::Helper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            reason,
        };
        let exe = format!("docker-credential-{helper}");
        let program = self
            .helper_path
            .iter()
            .map(|d| d.join(&exe))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(&exe));
        let server = if registry == DEFAULT_REGISTRY {
            "https://index.docker.io/v1/".to_string()
        } else {
            registry.to_string()
        };
        let spawn = || {
            Command::new(&program)
                .arg("get")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        };
        // ETXTBSY: a just-written helper may still be open for writing in a concurrently forked child.
        let mut child = spawn();
        for _ in 0..5 {
            match &child {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    child = spawn();
                }
                _ => break,
            }
        }
        let mut child = child.map_err(|e| err(format!("cannot run {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that ignores stdin may exit before reading it (EPIPE): not an error.
            let _ = stdin.write_all(server.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if text.contains("credentials not found") {
                return Ok(None);
            }
            return Err(err(format!("{}: {}", out.status, text.trim())));
        }
        let parsed: HelperOutput = serde_json::from_slice(&out.stdout)
            .map_err(|e| err(format!("invalid JSON output: {e}")))?;
        if parsed.username == "<token>" {
            return Ok(Some(Credential::IdentityToken(parsed.secret)));
        }
        if parsed.username.is_empty() && parsed.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential::Basic {
            username: parsed.username,
            password: parsed.secret,
        }))
    }
}

fn read_docker_config(path: &Path) -> Result<DockerConfigFile, KeychainError> {
    let err = |reason: String| KeychainError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfigFile::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    fn keychain(auth: Option<&str>, config: Option<&str>) -> (Keychain, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join("config.json"), c).unwrap();
        }
        let source = KeychainSource {
            registry_auth: auth.map(str::to_string),
            docker_config_dir: Some(dir.path().to_path_buf()),
            helper_path: vec![dir.path().to_path_buf()],
            containers_auth_files: vec![
                dir.path().join("registry-auth-file.json"),
                dir.path().join("xdg-runtime-auth.json"),
            ],
        };
        (Keychain::new(&source).unwrap(), dir)
    }

    #[test]
    fn env_headers_with_all_schemes_g16() {
        let json = r#"{"https://reg.io/v2/": "basic dXNlcjpwYXNz", "gcr.io": "Bearer tok", "docker.io": "X-IDENTITY idt"}"#;
        let (k, _d) = keychain(Some(json), None);
        assert_eq!(k.resolve("reg.io").unwrap(), basic("user", "pass"));
        assert_eq!(
            k.resolve("gcr.io").unwrap(),
            Credential::Bearer("tok".into())
        );
        assert_eq!(
            k.resolve("index.docker.io").unwrap(),
            Credential::IdentityToken("idt".into())
        );
        assert_eq!(k.resolve("other.io").unwrap(), Credential::Anonymous);
    }

    #[test]
    fn bad_env_values_are_errors_g16() {
        let src = |a: &str| KeychainSource {
            registry_auth: Some(a.into()),
            ..Default::default()
        };
        let e = Keychain::new(&src("not json")).unwrap_err();
        assert!(
            e.to_string().contains("failed to parse CNB_REGISTRY_AUTH"),
            "{e}"
        );
        let e = Keychain::new(&src(r#"{"reg.io": "Digest abc"}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown auth type"), "{e}");
        assert!(e.to_string().contains("reg.io"), "{e}");
    }

    #[test]
    fn env_wins_over_docker_config() {
        let cfg = r#"{"auths": {"reg.io": {"auth": "ZG9jazpwdw=="}}}"#;
        let (k, _d) = keychain(Some(r#"{"reg.io": "Bearer env"}"#), Some(cfg));
        assert_eq!(
            k.resolve("reg.io").unwrap(),
            Credential::Bearer("env".into())
        );
    }

    #[test]
    fn docker_config_auths_forms() {
        let cfg = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "ZG9jazpwdw=="},
            "a.io": {"username": "u", "password": "p"},
            "b.io": {"identitytoken": "idt"},
            "c.io": {"registrytoken": "rt"},
            "d.io": {}
        }, "unknownKey": 1}"#;
        let (k, _d) = keychain(None, Some(cfg));
        assert_eq!(k.resolve("docker.io").unwrap(), basic("dock", "pw"));
        assert_eq!(k.resolve("a.io").unwrap(), basic("u", "p"));
        assert_eq!(
            k.resolve("b.io").unwrap(),
            Credential::IdentityToken("idt".into())
        );
        assert_eq!(k.resolve("c.io").unwrap(), Credential::Bearer("rt".into()));
        assert_eq!(k.resolve("d.io").unwrap(), Credential::Anonymous);
    }

    fn helper(dir: &Path, name: &str, script: &str) {
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn cred_helpers_and_store() {
        let cfg = r#"{"credHelpers": {"h.io": "one"}, "credsStore": "store",
                      "auths": {"s.io": {}, "plain.io": {"auth": "YTpi"}}}"#;
        let (k, dir) = keychain(None, Some(cfg));
        // The helper gets the server URL on stdin and prints JSON.
        helper(
            dir.path(),
            "one",
            r#"read url; echo "{\"ServerURL\":\"$url\",\"Username\":\"u-$url\",\"Secret\":\"s\"}""#,
        );
        helper(
            dir.path(),
            "store",
            r#"read url; if [ "$url" = s.io ]; then echo '{"Username":"<token>","Secret":"idt"}'; else echo "credentials not found in native keychain"; exit 1; fi"#,
        );
        assert_eq!(k.resolve("h.io").unwrap(), basic("u-h.io", "s"));
        assert_eq!(
            k.resolve("s.io").unwrap(),
            Credential::IdentityToken("idt".into())
        );
        // Not in the store: falls back to auths, then anonymous.
        assert_eq!(k.resolve("plain.io").unwrap(), basic("a", "b"));
        assert_eq!(k.resolve("none.io").unwrap(), Credential::Anonymous);
    }

    #[test]
    fn resolved_credentials_are_cached_g17() {
        let cfg = r#"{"credsStore": "once"}"#;
        let (k, dir) = keychain(None, Some(cfg));
        helper(
            dir.path(),
            "once",
            r#"echo '{"Username":"u","Secret":"p"}'"#,
        );
        k.resolve_now(&[ImageRef::parse("r.io/app").unwrap()]);
        // The helper disappears (e.g. privileges dropped): the cached answer stays.
        std::fs::remove_file(dir.path().join("docker-credential-once")).unwrap();
        assert_eq!(k.resolve("r.io").unwrap(), basic("u", "p"));
    }

    #[test]
    fn failing_helper_and_bad_config_are_clear_errors() {
        let (k, dir) = keychain(None, Some(r#"{"credsStore": "broken"}"#));
        helper(dir.path(), "broken", "echo boom >&2; exit 3");
        let e = k.resolve("x.io").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-broken") && e.contains("boom"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let e = Keychain::new(&KeychainSource {
            docker_config_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn headers_round_trip_and_debug_hides_secrets() {
        for c in [
            basic("u", "p:w"),
            Credential::Bearer("t".into()),
            Credential::IdentityToken("i".into()),
        ] {
            let h = c.to_header().unwrap();
            assert_eq!(Credential::from_header("r", &h).unwrap(), c);
            assert!(!format!("{c:?}").contains("p:w"));
        }
    }

    /// containers `auth.json` files come after the docker config, in order (`$REGISTRY_AUTH_FILE` before
    /// `$XDG_RUNTIME_DIR/containers/auth.json`); repository-scoped keys count for their host; a file
    /// that is missing is skipped, a malformed one is an error naming it (G-16, issue #4).
    #[test]
    fn containers_auth_json_after_docker_config_g16() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{"docker-wins.io": {{"auth": "{}"}}}}}}"#,
                b64("d:1")
            ),
        )
        .unwrap();
        let first = dir.path().join("registry-auth-file.json");
        let second = dir.path().join("xdg-runtime-auth.json");
        std::fs::write(
            &first,
            format!(
                r#"{{"auths": {{"docker-wins.io": {{"auth": "{}"}}, "quay.example/team/app": {{"auth": "{}"}}}}}}"#,
                b64("x:2"),
                b64("q:3")
            ),
        )
        .unwrap();
        std::fs::write(
            &second,
            format!(
                r#"{{"auths": {{"quay.example": {{"auth": "{}"}}, "only-xdg.io": {{"auth": "{}"}}}}}}"#,
                b64("later:4"),
                b64("o:5")
            ),
        )
        .unwrap();
        let source = |files: Vec<PathBuf>| KeychainSource {
            docker_config_dir: Some(dir.path().to_path_buf()),
            containers_auth_files: files,
            ..Default::default()
        };
        let k = Keychain::new(&source(vec![
            first.clone(),
            dir.path().join("missing.json"),
            second,
        ]))
        .unwrap();
        assert_eq!(k.resolve("docker-wins.io").unwrap(), basic("d", "1"));
        assert_eq!(k.resolve("quay.example").unwrap(), basic("q", "3"));
        assert_eq!(k.resolve("only-xdg.io").unwrap(), basic("o", "5"));
        assert_eq!(k.resolve("nowhere.io").unwrap(), Credential::Anonymous);

        std::fs::write(&first, "{not json").unwrap();
        let e = Keychain::new(&source(vec![first])).unwrap_err().to_string();
        assert!(e.contains("registry-auth-file.json"), "{e}");
    }
}
