//! Layer metadata shared by the cache metadata (checklist CA-01, label
//! `io.buildpacks.lifecycle.cache.metadata`) and the `buildpacks` part of the app image's
//! `io.buildpacks.lifecycle.metadata` label: the `cnb-spec` label types plus lookups.

pub use cnb_spec::buildpack::StoreToml;
pub use cnb_spec::labels::{
    BuildpackLayerMetadata, BuildpackLayersMetadata, CacheMetadata, LayerSha,
};

/// The metadata of layer `name` of buildpack `id` in a `buildpacks` list.
pub fn find_layer<'a>(
    buildpacks: &'a [BuildpackLayersMetadata],
    id: &str,
    name: &str,
) -> Option<&'a BuildpackLayerMetadata> {
    buildpacks
        .iter()
        .find(|b| b.key == id)
        .and_then(|b| b.layers.get(name))
}

/// A layer SHA, `None` when empty.
pub fn sha_of(l: &LayerSha) -> Option<&str> {
    (!l.sha.is_empty()).then_some(l.sha.as_str())
}

/// Decodes cache metadata JSON; anything undecodable is an empty cache (CA-03: invalid → empty).
pub fn cache_metadata_lenient(s: &str) -> CacheMetadata {
    CacheMetadata::from_json(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ca01_round_trips_reference_json() {
        let json = r#"{"sbom":{"sha":"sha256:aa"},"buildpacks":[{"key":"bp/a","version":"1.0","layers":{"deps":{"sha":"sha256:bb","data":{"k":"v"},"build":false,"launch":true,"cache":true}},"store":{"metadata":{"x":1}}}]}"#;
        let m = cache_metadata_lenient(json);
        assert_eq!(sha_of(&m.sbom), Some("sha256:aa"));
        let l = find_layer(&m.buildpacks, "bp/a", "deps").unwrap();
        assert!(l.launch && l.cache && !l.build);
        assert_eq!(cache_metadata_lenient(&m.to_json().unwrap()), m);
    }

    #[test]
    fn ca03_invalid_metadata_is_empty() {
        assert_eq!(
            cache_metadata_lenient("{not json"),
            CacheMetadata::default()
        );
        assert_eq!(cache_metadata_lenient(""), CacheMetadata::default());
    }
}
