//! Reading the exported image's digest from `report.toml` (platform spec "report.toml"; checklist
//! EP-16): a registry export records `[image] digest`; a layout export records the layout paths as
//! `tags` and no digest (as the reference), so the digest is the one in that layout's `index.json`.

use std::path::Path;

/// The app image's manifest digest: `[image] digest`, else (layout mode) the first manifest of the
/// `index.json` at the first tag's layout path. A tag path written by a phase inside a chroot is looked
/// up under `root` when it does not exist as is.
pub fn image_digest(report_file: &Path, root: &Path) -> String {
    let text = std::fs::read_to_string(report_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", report_file.display()));
    let v: toml::Table = text.parse().unwrap();
    let image = &v["image"];
    if let Some(d) = image.get("digest").and_then(|d| d.as_str()) {
        return d.to_string();
    }
    let tag = image["tags"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no digest and no tags in {text}"));
    assert!(
        tag.starts_with('/'),
        "a report without digest names layout paths, got {tag:?}"
    );
    let direct = Path::new(tag).join("index.json");
    let index_file = if direct.is_file() {
        direct
    } else {
        root.join(tag.trim_start_matches('/')).join("index.json")
    };
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&index_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", index_file.display())),
    )
    .unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no manifest in {}", index_file.display()))
        .to_string()
}
