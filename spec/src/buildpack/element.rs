//! Group elements: a buildpack or extension reference in `[[order.group]]` (buildpack.toml, order.toml),
//! `[[group]]`/`[[group-extensions]]` (group.toml), plan providers and `metadata.toml` (platform spec
//! "order.toml", "group.toml"; checklist F-ORDER, F-GROUP).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::{ApiError, BuildpackApi};

/// One buildpack or image extension named by id and version.
///
/// Which keys appear depends on the file: `order.toml` has `id`, `version`, `optional`; `group.toml` has
/// `id`, `version`, `api`, `homepage`; plan providers have `id`, `version`, `extension`. Keys that are
/// false or empty are not written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupElement {
    /// The buildpack or extension ID.
    #[serde(default)]
    pub id: String,
    /// The buildpack or extension version.
    #[serde(default)]
    pub version: String,
    /// The Buildpack API the module implements (group.toml), as written. Parse it with
    /// [`GroupElement::buildpack_api`]: an unsupported value must fail with exit code 12, not as a file error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The module's homepage (group.toml, copied from its descriptor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Whether this element is an image extension (plan providers; implied in `[[group-extensions]]` and
    /// `[[order-extensions]]`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub extension: bool,
    /// Whether the element may fail detection without failing its group (order files). Extensions are
    /// always optional.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Execution environments this order entry is restricted to (buildpack.toml `[[order.group]]`, BP≥0.12).
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl GroupElement {
    /// A buildpack reference `id@version`.
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            version: version.into(),
            ..Self::default()
        }
    }
    /// Parses [`GroupElement::api`]: missing, unparsable or unsupported → [`ApiError`] (exit 12).
    pub fn buildpack_api(&self) -> Result<BuildpackApi, ApiError> {
        BuildpackApi::parse_supported(self.api.as_deref().unwrap_or(""))
    }
    /// `"Buildpack"` or `"Extension"`, as used in log messages.
    pub fn kind(&self) -> &'static str {
        if self.extension {
            "Extension"
        } else {
            "Buildpack"
        }
    }
    /// The ID with every `/` replaced by `_`, as used for directory names under `<layers>`.
    pub fn escaped_id(&self) -> String {
        crate::buildpack::escape_id(&self.id)
    }
    /// This element without the `optional` flag.
    pub fn no_opt(mut self) -> Self {
        self.optional = false;
        self
    }
    /// This element reduced to `id`, `version` (and `extension`), as written in plan providers.
    pub fn as_provider(&self) -> Self {
        Self {
            id: self.id.clone(),
            version: self.version.clone(),
            extension: self.extension,
            ..Self::default()
        }
    }
}

impl fmt::Display for GroupElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// One `[[order]]` entry: a group of buildpacks tried together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderGroup {
    /// The `[[order.group]]` elements, in order.
    #[serde(default)]
    pub group: Vec<GroupElement>,
}

impl OrderGroup {
    /// A group of the given elements.
    pub fn new(group: Vec<GroupElement>) -> Self {
        Self { group }
    }
}
