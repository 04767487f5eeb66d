//! `store.toml` (buildpack spec "store.toml (TOML)"; checklist F-STORE, LY-09): data a buildpack persists
//! between builds through the image label and the cache.

use serde::{Deserialize, Serialize};

use crate::io::toml_file;

/// `<layers>/<escaped id>/store.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreToml {
    /// `[metadata]`: arbitrary buildpack data, preserved unchanged.
    #[serde(default)]
    pub metadata: toml::Table,
}

toml_file!(StoreToml, "a `store.toml`");
