//! A real OCI registry (Debian `docker-registry`, CNCF distribution 2.8) on 127.0.0.1 with a free port:
//! plain HTTP, basic auth (bcrypt htpasswd) and TLS with a separate CA and leaf certificate.
//!
//! ```no_run
//! use cnb_acceptance::registry::{Registry, RegistryOptions};
//! let reg = Registry::start(RegistryOptions::default().basic_auth().tls());
//! println!("{} {:?}", reg.host(), reg.ca_cert_path());
//! ```
//!
//! The registry's stderr (its log) and stdout (the access log, when enabled) go to files in the registry's
//! temp dir; [`Registry::access_log`] returns the request lines so tests can count requests.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// User name of the basic-auth registry.
pub const USERNAME: &str = "cnb-user";
/// Password of the basic-auth registry.
pub const PASSWORD: &str = "cnb-secret";

/// How to start a [`Registry`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    auth: bool,
    tls: bool,
    access_log: bool,
    password: Option<String>,
}

impl RegistryOptions {
    /// Plain HTTP, anonymous access, no access log.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Require basic auth with [`USERNAME`]/[`PASSWORD`] (bcrypt htpasswd).
    pub fn basic_auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// Require basic auth with [`USERNAME`] and this password (a unique secret tests can grep for).
    pub fn basic_auth_password(mut self, password: &str) -> Self {
        self.auth = true;
        self.password = Some(password.to_string());
        self
    }

    /// Serve HTTPS with a leaf certificate signed by a fresh test CA ([`Registry::ca_cert_path`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Enable the registry's access log (one line per request, see [`Registry::access_log`]).
    pub fn access_log(mut self) -> Self {
        self.access_log = true;
        self
    }
}

/// A running loopback registry; killed (and its storage removed) on drop.
pub struct Registry {
    child: Child,
    dir: TempDir,
    port: u16,
    opts: RegistryOptions,
}

impl Registry {
    /// Starts a registry and waits until it answers. Panics (test helper) when it cannot start.
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("cnb-registry-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("storage")).expect("storage dir");
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: {}\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:0\n",
            !opts.access_log,
            root.join("storage").display()
        );
        if opts.tls {
            make_certs(root);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                root.join("leaf.crt").display(),
                root.join("leaf.key").display()
            ));
        }
        if opts.auth {
            let out = Command::new("htpasswd")
                .args([
                    "-Bbn",
                    USERNAME,
                    opts.password.as_deref().unwrap_or(PASSWORD),
                ])
                .output()
                .expect("run htpasswd (apache2-utils)");
            assert!(
                out.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            fs::write(root.join("htpasswd"), &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                root.join("htpasswd").display()
            ));
        }
        fs::write(root.join("config.yml"), config).expect("write config");
        let stdout = fs::File::create(root.join("access.log")).expect("access log file");
        let stderr = fs::File::create(root.join("registry.log")).expect("log file");
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(root.join("config.yml"));
        // Keep a developer's environment from reconfiguring the test registry.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start docker-registry (Debian package docker-registry)");
        let mut reg = Registry {
            child,
            dir,
            port: 0,
            opts,
        };
        reg.port = reg.wait_listening();
        reg.wait_ready();
        reg
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_listening(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log_text();
            if let Some(port) = parse_listening_port(&log) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                if self.opts.tls {
                    return; // the listener is up; a TLS handshake needs a client we don't have here
                }
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
                let mut head = [0u8; 12];
                if stream.write_all(req.as_bytes()).is_ok() && stream.read_exact(&mut head).is_ok()
                {
                    let status = String::from_utf8_lossy(&head[9..12]).into_owned();
                    if status == "200" || status == "401" {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "registry never answered /v2/:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `127.0.0.1:PORT/<repo>` — an image name in this registry.
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{}", self.host(), repo_and_tag)
    }

    /// Whether the registry serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.opts.tls
    }

    /// The PEM file of the CA that signed the registry's certificate (TLS registries only).
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("ca.crt"))
    }

    /// A directory holding only `ca.crt`, as `skopeo --cert-dir` and docker's `certs.d` expect.
    pub fn ca_cert_dir(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("certs.d"))
    }

    /// `(username, password)` for basic-auth registries.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.opts
            .auth
            .then(|| (USERNAME, self.opts.password.as_deref().unwrap_or(PASSWORD)))
    }

    /// The value of an `Authorization: Basic ...` header for this registry's credentials.
    pub fn basic_auth_header(&self) -> Option<String> {
        self.credentials()
            .map(|(u, p)| format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes())))
    }

    /// A `CNB_REGISTRY_AUTH` value granting this registry's credentials (`{}` when anonymous).
    pub fn registry_auth_env(&self) -> String {
        match self.basic_auth_header() {
            Some(h) => format!(r#"{{"{}": "{h}"}}"#, self.host()),
            None => "{}".to_string(),
        }
    }

    /// Writes a docker `config.json` for this registry into `dir` with the real `docker login` (no daemon
    /// needed); use it as `DOCKER_CONFIG`. Anonymous registries get an empty config.
    pub fn docker_login(&self, dir: &Path) {
        fs::create_dir_all(dir).expect("docker config dir");
        let Some((user, pass)) = self.credentials() else {
            fs::write(dir.join("config.json"), "{}").expect("write config.json");
            return;
        };
        let spawned = Command::new("docker")
            .arg("--config")
            .arg(dir)
            .args(["login", "-u", user, "--password-stdin", &self.host()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No docker client on this machine: write what `docker login` writes.
                println!("docker client not found; writing config.json as `docker login` would");
                let header = self.basic_auth_header().expect("basic auth header");
                let b64 = header.trim_start_matches("Basic ").to_string();
                let json = format!(r#"{{"auths": {{"{}": {{"auth": "{b64}"}}}}}}"#, self.host());
                fs::write(dir.join("config.json"), json).expect("write config.json");
                return;
            }
            Err(e) => panic!("run docker (client only): {e}"),
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(pass.as_bytes())
            .expect("write password");
        let out = child.wait_with_output().expect("docker login");
        assert!(
            out.status.success(),
            "docker login {} failed:\n{}",
            self.host(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The registry's storage root (the distribution filesystem driver's tree).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log so far.
    pub fn log(&self) -> String {
        self.log_text()
    }

    /// Access-log request lines so far (`"METHOD /path HTTP/1.1" STATUS`, one per request); needs
    /// [`RegistryOptions::access_log`].
    pub fn access_log(&self) -> Vec<String> {
        let text = fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let start = line.find('"')?;
                let rest = &line[start + 1..];
                let end = rest.find('"')?;
                let status = rest[end + 1..].split_whitespace().next().unwrap_or("");
                Some(format!("{} {}", &rest[..end], status))
            })
            .collect()
    }

    /// Transport flags for skopeo for `docker://` references into this registry (`prefix` is `src` or
    /// `dest`).
    fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        let mut flags = Vec::new();
        match self.ca_cert_dir() {
            Some(dir) => flags.push(format!("--{prefix}-cert-dir={}", dir.display())),
            None => flags.push(format!("--{prefix}-tls-verify=false")),
        }
        match self.credentials() {
            Some((u, p)) => flags.push(format!("--{prefix}-creds={u}:{p}")),
            None => flags.push(format!("--{prefix}-no-creds")),
        }
        flags
    }

    /// `skopeo copy FROM TO` with the right TLS/credential flags for any `docker://` side in this
    /// registry. Panics with skopeo's output when it fails.
    pub fn skopeo_copy(&self, from: &str, to: &str) {
        let out = self.skopeo_copy_output(from, to, &[]);
        assert!(
            out.status.success(),
            "skopeo copy {from} {to} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Like [`Registry::skopeo_copy`] with extra skopeo flags, returning skopeo's output.
    pub fn skopeo_copy_output(&self, from: &str, to: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--quiet"]);
        if from.starts_with("docker://") {
            cmd.args(self.skopeo_flags("src"));
        }
        if to.starts_with("docker://") {
            cmd.args(self.skopeo_flags("dest"));
        }
        cmd.args(extra).arg(from).arg(to);
        cmd.output().expect("run skopeo")
    }

    /// `skopeo inspect --raw docker://HOST/<repo_and_ref>`: the manifest bytes exactly as stored.
    pub fn skopeo_inspect_raw(&self, repo_and_ref: &str) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "inspect", "--raw"]);
        for flag in self.skopeo_flags("src") {
            cmd.arg(flag.replacen("--src-", "--", 1));
        }
        cmd.arg(format!("docker://{}", self.image(repo_and_ref)));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo inspect {repo_and_ref} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `GET <path>` against the registry with curl-free plain HTTP (non-TLS registries only), returning
    /// `(status, body)`; sends the basic-auth header when the registry has credentials.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        assert!(
            !self.opts.tls,
            "http_get only supports plain-HTTP registries"
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect(addr).expect("connect registry");
        let auth = self
            .basic_auth_header()
            .map(|h| format!("Authorization: {h}\r\n"))
            .unwrap_or_default();
        let req = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n{auth}\r\n", self.host());
        stream.write_all(req.as_bytes()).expect("send request");
        let mut resp = String::new();
        stream.read_to_string(&mut resp).expect("read response");
        let status = resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_listening_port(log: &str) -> Option<u16> {
    let idx = log.find("listening on 127.0.0.1:")?;
    let rest = &log[idx + "listening on 127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`/`ca.key`) and a leaf (`leaf.crt`/`leaf.key`, SAN IP:127.0.0.1 + DNS:localhost, CA:FALSE,
/// serverAuth) signed by it, plus `certs.d/ca.crt`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=cnb-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write leaf.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.crt",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
    fs::create_dir_all(dir.join("certs.d")).expect("certs.d");
    fs::copy(dir.join("ca.crt"), dir.join("certs.d/ca.crt")).expect("copy ca.crt");
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_from_log() {
        let log = "time=\"x\" level=info msg=\"listening on 127.0.0.1:39421\" go.version=go1.19";
        assert_eq!(parse_listening_port(log), Some(39421));
        assert_eq!(parse_listening_port("nothing"), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }
}
