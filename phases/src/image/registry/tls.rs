//! TLS trust for registries: system roots (rustls-native-certs: `SSL_CERT_FILE`, `SSL_CERT_DIR` or the
//! distribution's bundle) plus extra CA certificates, and the bundled Mozilla roots when an image has no
//! system roots at all — without ever reaching oci-client's panicking default client.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};

use super::client::{error_chain, RegistryOptions};
use super::error::RegistryError;
use super::scheme::Transport;

pub(crate) const USER_AGENT: &str = concat!("cnb-lifecycle/", env!("CARGO_PKG_VERSION"));

/// What the TLS stack trusts: system roots (when present) or the bundled ones, plus extra CAs.
pub(crate) struct TlsRoots {
    pub(crate) system_roots: bool,
    pub(crate) extra: Vec<Certificate>,
    /// [`RegistryOptions::read_timeout`].
    pub(crate) read_timeout: Duration,
}

impl TlsRoots {
    /// A plain reqwest client trusting the same roots (for pings, the open-registry manifest requests and
    /// the identity-token exchange); `unverified` accepts any certificate (insecure registries).
    pub(crate) fn http_client(&self, unverified: bool) -> Result<reqwest::Client, RegistryError> {
        let to_reqwest = |c: &Certificate| match c.encoding {
            CertificateEncoding::Der => reqwest::Certificate::from_der(&c.data),
            CertificateEncoding::Pem => reqwest::Certificate::from_pem(&c.data),
        };
        let setup =
            |e: reqwest::Error| RegistryError::Setup(format!("identity token HTTP client: {e}"));
        let extra = self
            .extra
            .iter()
            .map(to_reqwest)
            .collect::<Result<Vec<_>, _>>()
            .map_err(setup)?;
        let builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(self.read_timeout)
            .tls_danger_accept_invalid_certs(unverified);
        let builder = if self.system_roots {
            builder.tls_certs_merge(extra)
        } else {
            let bundled = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| reqwest::Certificate::from_der(c.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(setup)?;
            builder.tls_certs_only(bundled.into_iter().chain(extra))
        };
        builder.build().map_err(setup)
    }
}

/// Reads PEM certificates from files and directories (`*.crt`, `*.pem`, `*.cert`).
pub(crate) fn load_ca_certs(paths: &[PathBuf]) -> Result<Vec<Certificate>, RegistryError> {
    let mut certs = Vec::new();
    for path in paths {
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| {
                    RegistryError::Setup(format!(
                        "cannot read CA directory {}: {e}",
                        path.display()
                    ))
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| matches!(x, "crt" | "pem" | "cert"))
                })
                .collect();
            v.sort();
            v
        } else {
            vec![path.clone()]
        };
        for file in files {
            certs.extend(read_pem_file(&file)?);
        }
    }
    Ok(certs)
}

fn read_pem_file(file: &Path) -> Result<Vec<Certificate>, RegistryError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        RegistryError::Setup(format!(
            "cannot read CA certificate file {}: {e}",
            file.display()
        ))
    })?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + end + END.len()];
        out.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: format!("{block}\n").into_bytes(),
        });
        rest = &rest[start + end + END.len()..];
    }
    if out.is_empty() {
        return Err(RegistryError::Setup(format!(
            "no PEM certificate found in CA certificate file {}",
            file.display()
        )));
    }
    Ok(out)
}

/// The oci-client configuration for one transport (the `scheme` module decides which registry uses which).
pub(crate) fn oci_config(options: &RegistryOptions, transport: Transport) -> ClientConfig {
    let unverified = transport == Transport::HttpsUnverified;
    ClientConfig {
        protocol: match transport {
            Transport::Http => ClientProtocol::Http,
            Transport::Https | Transport::HttpsUnverified => ClientProtocol::Https,
        },
        accept_invalid_certificates: unverified,
        use_monolithic_push: true,
        max_concurrent_upload: options.max_concurrent_uploads.max(1),
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(options.read_timeout),
        user_agent: USER_AGENT,
        platform_resolver: None,
        ..ClientConfig::default()
    }
}

/// Builds the oci-client client without ever reaching its panicking default.
///
/// oci-client 0.18 constructs a default `reqwest::Client` inside `Client::try_from` (struct update
/// syntax), and reqwest's default panics when rustls-native-certs finds no CA certificates. So we first
/// probe for system roots with a builder that fails cleanly; without roots, we point rustls-native-certs
/// at a temporary PEM file holding the bundled Mozilla roots (`SSL_CERT_FILE`, restored right after) while
/// the client is built.
pub(crate) fn build_oci_client(
    options: &RegistryOptions,
    extra: Vec<Certificate>,
    transport: Transport,
) -> Result<(oci_client::Client, bool), RegistryError> {
    static ENV_LOCK: Mutex<()> = Mutex::new(());
    let config = || ClientConfig {
        extra_root_certificates: extra.clone(),
        ..oci_config(options, transport)
    };
    let build = |config: ClientConfig| {
        oci_client::Client::try_from(config).map_err(|e| {
            RegistryError::Setup(format!("invalid TLS configuration: {}", error_chain(&e)))
        })
    };
    // Fails early (before the panicking default) exactly when the system has no usable roots.
    if oci_client::Client::try_from(oci_config(options, transport)).is_ok() {
        return Ok((build(config())?, true));
    }
    tracing::debug!("no system CA certificates; using the bundled Mozilla roots");
    let bundle = bundled_roots_pem()?;
    let _guard = ENV_LOCK
        .lock()
        .map_err(|_| RegistryError::Setup("CA setup lock poisoned".into()))?;
    let previous = std::env::var_os("SSL_CERT_FILE");
    std::env::set_var("SSL_CERT_FILE", bundle.path());
    let probe = oci_client::Client::try_from(oci_config(options, transport)).is_ok();
    let result = if probe {
        build(config())
    } else {
        Err(RegistryError::Setup(
            "no CA certificates could be loaded (system or bundled)".into(),
        ))
    };
    match previous {
        Some(v) => std::env::set_var("SSL_CERT_FILE", v),
        None => std::env::remove_var("SSL_CERT_FILE"),
    }
    Ok((result?, false))
}

/// The bundled Mozilla roots as a PEM file that lives as long as this value.
enum BundledRoots {
    /// A temporary file in the temp dir.
    Temp(tempfile::NamedTempFile),
    /// An anonymous in-memory file, reached through `/proc/self/fd` (images without a writable `/tmp`);
    /// the open file keeps it alive.
    Memory { _file: std::fs::File, path: PathBuf },
}

impl BundledRoots {
    fn path(&self) -> &Path {
        match self {
            BundledRoots::Temp(f) => f.path(),
            BundledRoots::Memory { path, .. } => path,
        }
    }
}

/// Writes the bundled Mozilla roots as PEM: to a temporary file, or, where the image has no writable temp
/// dir, to an in-memory file (`memfd_create`).
fn bundled_roots_pem() -> Result<BundledRoots, RegistryError> {
    use base64::Engine as _;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let temp = || -> std::io::Result<tempfile::NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix("cnb-ca-roots-")
            .suffix(".pem")
            .tempfile()?;
        file.write_all(pem.as_bytes())?;
        file.flush()?;
        Ok(file)
    };
    match temp() {
        Ok(file) => Ok(BundledRoots::Temp(file)),
        Err(temp_err) => memory_file(pem.as_bytes()).map_err(|e| {
            RegistryError::Setup(format!(
                "cannot write the bundled CA roots: {temp_err} (temp dir {}); in memory: {e}",
                std::env::temp_dir().display()
            ))
        }),
    }
}

/// An anonymous in-memory file holding `bytes`, with its `/proc/self/fd` path.
fn memory_file(bytes: &[u8]) -> std::io::Result<BundledRoots> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: memfd_create with a NUL-terminated name; the returned descriptor is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"cnb-ca-roots".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    file.flush()?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    std::fs::metadata(&path)?;
    Ok(BundledRoots::Memory { _file: file, path })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[test]
    fn pem_bundles_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("a.crt"), format!("junk\n{one}{one}")).unwrap();
        std::fs::write(dir.path().join("ignored.txt"), one).unwrap();
        let certs = load_ca_certs(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(certs.len(), 2);
        std::fs::write(dir.path().join("empty.pem"), "nothing").unwrap();
        let err = load_ca_certs(&[dir.path().join("empty.pem")]).unwrap_err();
        assert!(err.to_string().contains("empty.pem"));
    }

    #[test]
    fn env_options() {
        let o = RegistryOptions::default()
            .insecure("127.0.0.1:5000")
            .ca_cert("/x.pem");
        assert_eq!(o.insecure_registries, ["127.0.0.1:5000"]);
        let cfg = oci_config(&o, Transport::Https);
        assert_eq!(cfg.protocol, ClientProtocol::Https);
        assert!(!cfg.accept_invalid_certificates);
        assert!(cfg.use_monolithic_push);
        assert_eq!(
            oci_config(&o, Transport::Http).protocol,
            ClientProtocol::Http
        );
        assert!(oci_config(&o, Transport::HttpsUnverified).accept_invalid_certificates);
    }

    #[test]
    fn bundled_roots_in_memory_are_readable() {
        let roots = memory_file(b"-----BEGIN CERTIFICATE-----\n").unwrap();
        let text = std::fs::read_to_string(roots.path()).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
