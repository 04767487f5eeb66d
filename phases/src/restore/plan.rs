//! Which layers the restorer brings back (checklist RS-10, RS-11, LY-05): metadata from the previous
//! image or the cache, data only for cache layers whose SHA agrees. Layer names from either source are
//! untrusted: one that is not a single path component ([`LayerName`]) is skipped with a warning.

use cnb_spec::buildpack::LayerName;

use crate::cache::{find_layer, BuildpackLayerMetadata, CacheMetadata};
use crate::export::metadata::LifecycleMetadata;
use crate::export::plan::GroupBuildpack;

/// Where a layer's restored metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// The previous app image's label.
    AppImage,
    /// The cache's metadata.
    Cache,
}

/// One layer to restore.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRestore {
    /// Index of the buildpack in the group.
    pub buildpack: usize,
    /// Layer name.
    pub name: LayerName,
    /// Where the metadata comes from.
    pub source: MetadataSource,
    /// The recorded metadata (its `data` becomes `<layer>.toml`'s `[metadata]`).
    pub metadata: BuildpackLayerMetadata,
    /// The diffID the restored metadata belongs to (kept in memory, RS-10).
    pub expected_sha: String,
    /// Whether the cache holds this layer's data (`cache = true` in the cache metadata).
    pub cached_sha: Option<String>,
}

impl LayerRestore {
    /// RS-11: restore data from the cache only when the cache has it with the same SHA as the
    /// restored metadata.
    pub fn restore_data(&self) -> bool {
        self.cached_sha.as_deref() == Some(self.expected_sha.as_str())
    }

    /// A cache layer whose SHA disagrees with the app image's: metadata must be removed again
    /// (`Removing "<id>", wrong sha`).
    pub fn wrong_sha(&self) -> bool {
        self.cached_sha.is_some() && !self.restore_data()
    }
}

/// Decides the layers to restore for every group buildpack (RS-10). `cache_launch_layers` is the
/// `[P≥0.14]` behaviour: a cached launch layer missing from the app image is restored from the cache.
pub fn plan_restore(
    group: &[GroupBuildpack],
    app: &LifecycleMetadata,
    cache: &CacheMetadata,
    cache_launch_layers: bool,
) -> Vec<LayerRestore> {
    let mut out: Vec<LayerRestore> = Vec::new();
    for (index, bp) in group.iter().enumerate() {
        let valid = |name: &str, from: &str| match LayerName::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("Skipping layer of buildpack '{}' from {from}: {e}", bp.id);
                None
            }
        };
        let cached = |name: &str| find_layer(&cache.buildpacks, &bp.id, name).filter(|l| l.cache);
        if let Some(b) = app.buildpacks.iter().find(|b| b.key == bp.id) {
            for (name, meta) in &b.layers {
                let wanted = meta.launch
                    && (!meta.build || meta.cache)
                    && (!meta.cache || cached(name).is_some());
                if !wanted {
                    continue;
                }
                let Some(layer) = valid(name, "app image metadata") else {
                    continue;
                };
                out.push(LayerRestore {
                    buildpack: index,
                    name: layer,
                    source: MetadataSource::AppImage,
                    metadata: meta.clone(),
                    expected_sha: meta.sha.clone(),
                    cached_sha: cached(name).map(|c| c.sha.clone()),
                });
            }
        }
        if let Some(b) = cache.buildpack(&bp.id) {
            for (name, meta) in &b.layers {
                if !meta.cache
                    || out
                        .iter()
                        .any(|r| r.buildpack == index && r.name.as_str() == name)
                {
                    continue;
                }
                let in_app = find_layer(&app.buildpacks, &bp.id, name).is_some();
                if meta.launch && (in_app || !cache_launch_layers) {
                    continue;
                }
                let Some(layer) = valid(name, "cache metadata") else {
                    continue;
                };
                out.push(LayerRestore {
                    buildpack: index,
                    name: layer,
                    source: MetadataSource::Cache,
                    metadata: meta.clone(),
                    expected_sha: meta.sha.clone(),
                    cached_sha: Some(meta.sha.clone()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cache::BuildpackLayersMetadata as BuildpackLayers;
    use std::collections::BTreeMap;

    fn l(sha: &str, build: bool, launch: bool, cache: bool) -> BuildpackLayerMetadata {
        BuildpackLayerMetadata {
            sha: sha.into(),
            data: toml::Table::new(),
            build,
            launch,
            cache,
        }
    }

    fn bps(layers: &[(&str, BuildpackLayerMetadata)]) -> Vec<BuildpackLayers> {
        let mut m = BTreeMap::new();
        for (n, x) in layers {
            m.insert(n.to_string(), x.clone());
        }
        vec![BuildpackLayers {
            key: "bp".into(),
            version: "1".into(),
            layers: m,
            store: None,
        }]
    }

    #[test]
    fn rs10_ly05_restore_table() {
        let group = vec![GroupBuildpack {
            id: "bp".into(),
            version: "1".into(),
        }];
        let app = LifecycleMetadata {
            buildpacks: bps(&[
                ("bcl", l("s1", true, true, true)),
                ("bl", l("s2", true, true, false)), // 1/0/1: nothing
                ("cl", l("s3", false, true, true)),
                ("l", l("s4", false, true, false)),
                ("stale", l("s5", false, true, true)), // cache=true but cache lost it
                ("cl-wrong", l("s6", false, true, true)),
            ]),
            ..Default::default()
        };
        let cache = CacheMetadata {
            buildpacks: bps(&[
                ("bcl", l("s1", true, true, true)),
                ("cl", l("s3", false, true, true)),
                ("bc", l("c1", true, false, true)),
                ("c", l("c2", false, false, true)),
                ("cl-wrong", l("other", false, true, true)),
                ("cl-only-cache", l("c3", false, true, true)),
            ]),
            ..Default::default()
        };
        let got = plan_restore(&group, &app, &cache, true);
        let names: Vec<(&str, MetadataSource, bool)> = got
            .iter()
            .map(|r| (r.name.as_str(), r.source, r.restore_data()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("bcl", MetadataSource::AppImage, true),
                ("cl", MetadataSource::AppImage, true),
                ("cl-wrong", MetadataSource::AppImage, false),
                ("l", MetadataSource::AppImage, false),
                ("bc", MetadataSource::Cache, true),
                ("c", MetadataSource::Cache, true),
                ("cl-only-cache", MetadataSource::Cache, true),
            ]
        );
        assert!(got
            .iter()
            .find(|r| r.name.as_str() == "cl-wrong")
            .unwrap()
            .wrong_sha());
        // Before Platform 0.14 a cached launch layer comes back only through the app image.
        let old = plan_restore(&group, &app, &cache, false);
        assert!(!old.iter().any(|r| r.name.as_str() == "cl-only-cache"));
        // Buildpacks not in the group are ignored (LY-10).
        assert!(plan_restore(&[], &app, &cache, true).is_empty());
    }

    /// Issue 14: names that are not one path component never become paths.
    #[test]
    fn invalid_layer_names_are_skipped() {
        let group = vec![GroupBuildpack {
            id: "bp".into(),
            version: "1".into(),
        }];
        let bad = [
            "../../victim-dir/evil",
            "/victim-dir/evil",
            "x/../../../victim-dir/evil",
            "..",
            ".",
            "",
        ];
        let layers: Vec<(&str, BuildpackLayerMetadata)> = bad
            .iter()
            .map(|n| (*n, l("s", false, true, true)))
            .chain([("ok", l("s", false, true, true))])
            .collect();
        let app = LifecycleMetadata {
            buildpacks: bps(&layers),
            ..Default::default()
        };
        let cache = CacheMetadata {
            buildpacks: bps(&layers),
            ..Default::default()
        };
        let got = plan_restore(&group, &app, &cache, true);
        let names: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
        let got = plan_restore(&group, &LifecycleMetadata::default(), &cache, true);
        let names: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
    }
}
