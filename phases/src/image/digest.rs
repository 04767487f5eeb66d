//! Content digests (`<algorithm>:<hex>`) as the OCI image-spec defines them ("Digests"). Only `sha256` is
//! produced; `sha512` is accepted when reading.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A validated content digest such as `sha256:0123…` (lower-case hex).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// A string that is not a valid `<algorithm>:<hex>` digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256:<64 lower-case hex> or sha512:<128 lower-case hex>")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// A sha256 digest from its 32 raw bytes.
    pub fn from_sha256(raw: [u8; 32]) -> Self {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }

    /// The algorithm part (`sha256`).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or("")
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or("")
    }

    /// The whole digest string, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidDigest(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        Ok(Digest(s.to_string()))
    }
}

impl TryFrom<&str> for Digest {
    type Error = InvalidDigest;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>().ok(), Some(d.clone()));
        assert_eq!(d.hex().len(), 64);
        for bad in [
            "sha256:abc",
            "md5:00",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "nocolon",
            "sha256:../../etc/passwd",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
