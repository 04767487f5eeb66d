//! Layer names (buildpack spec "Layers": a layer is `<layers>/<escaped id>/<name>` with metadata in
//! `<name>.toml`). A name read from anywhere but the buildpack's own directory listing — the cache
//! metadata, the previous image's `io.buildpacks.lifecycle.metadata` label — is untrusted input that is
//! joined to a path, so it must be exactly one path component.

use std::fmt;
use std::path::Path;

/// A validated layer name: one path component, so `<bp dir>/<name>` and `<bp dir>/<name>.toml` never
/// leave the buildpack's layers directory.
///
/// ```
/// use cnb_spec::buildpack::LayerName;
///
/// assert_eq!(LayerName::new("deps").unwrap().as_str(), "deps");
/// for bad in ["", ".", "..", "a/b", "../../victim-dir/evil", "/victim-dir/evil", "x\0y"] {
///     assert!(LayerName::new(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerName(String);

/// Why a string is not a [`LayerName`]; the message quotes the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid layer name {name:?}: {reason}")]
pub struct InvalidLayerName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl LayerName {
    /// Validates `name`: not empty, not `.` or `..`, no `/`, no NUL.
    pub fn new(name: &str) -> Result<Self, InvalidLayerName> {
        let reason = if name.is_empty() {
            Some("empty")
        } else if name == "." || name == ".." {
            Some("'.' and '..' are not names")
        } else if name.contains('/') {
            Some("contains '/'")
        } else if name.contains('\0') {
            Some("contains NUL")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidLayerName {
                name: name.to_string(),
                reason,
            }),
            None => Ok(Self(name.to_string())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<name>.toml`.
    pub fn toml_file(&self) -> String {
        format!("{}.toml", self.0)
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LayerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for LayerName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl std::str::FromStr for LayerName {
    type Err = InvalidLayerName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl PartialEq<str> for LayerName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}
