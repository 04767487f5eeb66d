//! The app image's `io.buildpacks.lifecycle.metadata` label (checklist L-LIFECYCLE), as the exporter
//! writes it and the analyzer, restorer and rebaser read it: the `cnb-spec` label types plus lookups.

pub use cnb_spec::labels::{
    LifecycleMetadata, RunImageForRebase, StackMetadata, BUILD_METADATA as BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA as LIFECYCLE_METADATA_LABEL, PROJECT_METADATA as PROJECT_METADATA_LABEL,
    REBASABLE as REBASABLE_LABEL,
};
pub use cnb_spec::platform::RunImageForExport;

use crate::cache::sha_of;

/// Decodes the label; missing or undecodable → empty (AN-04).
pub fn metadata_from_label(label: Option<&str>) -> LifecycleMetadata {
    label
        .and_then(|s| LifecycleMetadata::from_json(s).ok())
        .unwrap_or_default()
}

/// Every diffID a label records (for blob reuse lookups).
pub fn all_diff_ids(m: &LifecycleMetadata) -> Vec<&str> {
    let mut out: Vec<&str> = m.app.iter().filter_map(sha_of).collect();
    out.extend(m.sbom.as_ref().and_then(sha_of));
    out.extend(sha_of(&m.config));
    out.extend(sha_of(&m.launcher));
    out.extend(sha_of(&m.process_types));
    for b in &m.buildpacks {
        out.extend(
            b.layers
                .values()
                .map(|l| l.sha.as_str())
                .filter(|s| !s.is_empty()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cache::find_layer;

    #[test]
    fn l_lifecycle_reads_reference_label() {
        let label = r#"{"app":[{"sha":"sha256:a1"}],"config":{"sha":"sha256:c"},"launcher":{"sha":"sha256:l"},"buildpacks":[{"key":"bp","version":"1","layers":{"web":{"sha":"sha256:w","data":{},"build":false,"launch":true,"cache":false}}}],"runImage":{"topLayer":"sha256:t","reference":"reg/run@sha256:x","image":"reg/run"},"stack":{"runImage":{"image":"reg/run"}}}"#;
        let m = metadata_from_label(Some(label));
        assert_eq!(m.run_image.top_layer, "sha256:t");
        assert_eq!(m.run_image.image, "reg/run");
        assert_eq!(
            find_layer(&m.buildpacks, "bp", "web").unwrap().sha,
            "sha256:w"
        );
        assert!(m.sbom.is_none());
        let mut ids = all_diff_ids(&m);
        ids.sort();
        assert_eq!(ids, vec!["sha256:a1", "sha256:c", "sha256:l", "sha256:w"]);
        assert_eq!(
            metadata_from_label(Some("nope")),
            LifecycleMetadata::default()
        );
    }
}
