//! Image references with the reference lifecycle's weak validation (checklist G-21): `busybox` means
//! `index.docker.io/library/busybox:latest`; a first component with a `.` or `:` (or `localhost`) is a
//! registry (`127.0.0.1:5000/app`); `@sha256:…` pins a digest.

use std::fmt;
use std::str::FromStr;

use super::error::RegistryError;

/// The registry assumed when a reference names none (Docker Hub).
pub const DEFAULT_REGISTRY: &str = "index.docker.io";
/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses `input` like the reference lifecycle (`name.ParseReference` with weak validation).
    pub fn parse(input: &str) -> Result<ImageRef, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        if let Some(d) = digest {
            validate_digest(d).map_err(|r| invalid(&r))?;
        }
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|s| colon > s) => {
                (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
            }
            _ => (name_and_tag, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|r| invalid(&r))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (normalise_registry(first), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        validate_registry(&registry).map_err(|r| invalid(&r))?;
        validate_repository(&repository).map_err(|r| invalid(&r))?;
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// The registry host (with port), normalised: `docker.io` becomes `index.docker.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository` without tag or digest (the reference's `Context().Name()`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, RegistryError> {
        validate_tag(tag).map_err(|reason| RegistryError::InvalidReference {
            reference: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest` (and no tag).
    pub fn with_digest(&self, digest: &str) -> Result<ImageRef, RegistryError> {
        validate_digest(digest).map_err(|reason| RegistryError::InvalidReference {
            reference: format!("{}@{digest}", self.name()),
            reason,
        })?;
        Ok(ImageRef {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        })
    }

    /// The tag or digest this reference resolves through (digest wins).
    pub fn identifier(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (Some(t), None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
            ),
            (None, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                DEFAULT_TAG.to_string(),
            ),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Checks that all references name one registry (checklist G-21: "writing to multiple registries is
/// unsupported" when exporting to a registry with extra tags).
pub fn ensure_same_registry(refs: &[ImageRef]) -> Result<(), RegistryError> {
    match refs.split_first() {
        Some((first, rest)) => match rest.iter().find(|r| r.registry() != first.registry()) {
            Some(other) => Err(RegistryError::MultipleRegistries {
                first: first.to_string(),
                other: other.to_string(),
            }),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// Normalises a registry host as a keychain key or reference registry: strips `http(s)://` and any path,
/// lowercases, and maps Docker Hub's aliases to [`DEFAULT_REGISTRY`].
pub fn normalise_registry(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host);
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DEFAULT_REGISTRY.to_string(),
        _ => host,
    }
}

fn validate_digest(d: &str) -> Result<(), String> {
    let (algo, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("digest '{d}' is not of the form algorithm:hex"))?;
    let ok = match algo {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => return Err(format!("unsupported digest algorithm '{algo}'")),
    };
    if !ok
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("digest '{d}' has a malformed hex part"));
    }
    Ok(())
}

fn validate_tag(t: &str) -> Result<(), String> {
    let mut bytes = t.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || t.len() > 128
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!(
            "tag '{t}' is invalid (allowed: [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
        ));
    }
    Ok(())
}

fn validate_repository(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("repository name is empty".into());
    }
    if r.len() > 255 {
        return Err("repository name is longer than 255 characters".into());
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-./".contains(&b);
    if !r.bytes().all(allowed) {
        return Err(format!(
            "repository '{r}' may contain only lowercase letters, digits and _-./"
        ));
    }
    if r.split('/').any(str::is_empty) {
        return Err(format!("repository '{r}' has an empty path component"));
    }
    Ok(())
}

fn validate_registry(reg: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b);
    if reg.is_empty() || !reg.bytes().all(allowed) {
        return Err(format!("registry '{reg}' is not a valid host[:port]"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn s(r: &str) -> String {
        ImageRef::parse(r).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_are_expanded_g21() {
        assert_eq!(s("busybox"), "index.docker.io/library/busybox:latest");
        assert_eq!(s("busybox:1.36"), "index.docker.io/library/busybox:1.36");
        assert_eq!(
            s("docker.io/busybox"),
            "index.docker.io/library/busybox:latest"
        );
        assert_eq!(s("cnbs/sample"), "index.docker.io/cnbs/sample:latest");
        assert_eq!(
            s("index.docker.io/cnbs/sample:v1"),
            "index.docker.io/cnbs/sample:v1"
        );
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = ImageRef::parse("127.0.0.1:5000/app/web:v2").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "app/web");
        assert_eq!(r.tag(), Some("v2"));
        let r = ImageRef::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.identifier(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/app@{D}"));
        let r = ImageRef::parse(&format!("gcr.io/p/app:v1@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(D)));
        assert_eq!(r.identifier(), D);
        let r = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.with_tag("v9").unwrap().to_string(), "localhost/app:v9");
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "a//b",
            "reg.io/",
            "bad host/x",
        ] {
            let err = ImageRef::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains(&format!("'{bad}'")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn registry_keys_are_normalised() {
        assert_eq!(
            normalise_registry("https://index.docker.io/v1/"),
            DEFAULT_REGISTRY
        );
        assert_eq!(normalise_registry("docker.io"), DEFAULT_REGISTRY);
        assert_eq!(
            normalise_registry("http://Example.com:5000/some/path"),
            "example.com:5000"
        );
        assert_eq!(normalise_registry("gcr.io"), "gcr.io");
    }

    #[test]
    fn multiple_registries_are_refused_g21() {
        let a = ImageRef::parse("reg.io/a:1").unwrap();
        let b = ImageRef::parse("reg.io/b:2").unwrap();
        let c = ImageRef::parse("other.io/a:1").unwrap();
        assert!(ensure_same_registry(&[a.clone(), b]).is_ok());
        let err = ensure_same_registry(&[a, c]).unwrap_err();
        assert!(err
            .to_string()
            .contains("writing to multiple registries is unsupported"));
    }
}
