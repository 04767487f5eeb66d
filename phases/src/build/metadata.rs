//! `<layers>/config/metadata.toml`, which the exporter and launcher read (platform spec "metadata.toml";
//! checklist BD-12, BD-14, F-META). Encoded by the cnb-spec [`BuildMetadata`] type; processes are merged
//! with the spec's [`aggregate_processes`].

use cnb_spec::buildpack::{BomEntry, Label, Process, Slice};
use cnb_spec::platform::aggregate_processes;

pub use cnb_spec::platform::BuildMetadata;

use crate::detect::files::element;
use crate::detect::model::GroupMember;

/// What the builder gathered across buildpacks, before aggregation.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Labels, all buildpacks in order.
    pub labels: Vec<Label>,
    /// Slices, concatenated in buildpack order.
    pub slices: Vec<Slice>,
    /// `(buildpack id, its processes)` in group order.
    pub processes: Vec<(String, Vec<Process>)>,
    /// Legacy launch BOM.
    pub launch_bom: Vec<BomEntry>,
}

/// Builds `metadata.toml`'s content (BD-12, BD-14): group members without `optional`/`extension`,
/// processes aggregated (later buildpack wins, last default wins; warnings are logged).
pub fn build_metadata(
    buildpacks: &[GroupMember],
    extensions: &[GroupMember],
    collected: Collected,
) -> BuildMetadata {
    let agg = aggregate_processes(
        collected
            .processes
            .iter()
            .map(|(id, ps)| (id.as_str(), ps.as_slice())),
    );
    for w in &agg.warnings {
        tracing::warn!("Warning: {w}");
    }
    BuildMetadata {
        bom: collected.launch_bom,
        buildpacks: buildpacks.iter().map(element).collect(),
        extensions: extensions.iter().map(element).collect(),
        labels: collected.labels,
        processes: agg.processes,
        slices: collected.slices,
        buildpack_default_process_type: agg.default_type,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use cnb_spec::PlatformApi;

    use super::*;

    fn proc(t: &str, default: bool) -> Process {
        Process {
            r#type: t.into(),
            command: vec!["run".into(), "--fast".into()],
            args: vec!["x".into()],
            direct: true,
            default,
            ..Process::default()
        }
    }

    #[test]
    fn bd_12_bd_14_aggregation_and_command_form_per_platform_api() {
        let md = build_metadata(
            &[],
            &[],
            Collected {
                processes: vec![
                    ("a".into(), vec![proc("web", true), proc("worker", false)]),
                    ("b".into(), vec![proc("worker", false)]),
                ],
                ..Collected::default()
            },
        );
        assert_eq!(md.buildpack_default_process_type.as_deref(), Some("web"));
        assert_eq!(md.processes[1].buildpack_id, "b");
        let new = md.to_toml_string(PlatformApi::new(0, 10)).unwrap();
        assert!(new.contains("[[processes]]"), "{new}");
        assert!(new.contains("\"--fast\""), "{new}");
        let old = md.to_toml_string(PlatformApi::new(0, 9)).unwrap();
        assert!(old.contains("command = \"run\""), "{old}");
    }
}
