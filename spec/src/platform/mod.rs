//! Platform-side file formats (platform spec "Data Format"): the files platforms and phases exchange
//! (`analyzed.toml`, `order.toml`, `group.toml`, `plan.toml`, `<layers>/config/metadata.toml`,
//! `project-metadata.toml`, `report.toml`, `run.toml`, `stack.toml`, `system.toml`) and the lifecycle
//! descriptor `lifecycle.toml`.

mod analyzed;
mod descriptor;
mod group;
mod metadata;
mod order;
mod plan;
mod process;
mod project;
mod report;
mod run;
mod system;
mod target;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_p2;

pub use analyzed::{Analyzed, ImageIdentifier, RunImage};
pub use descriptor::{
    ApiList, Apis, LifecycleDescriptor, LifecycleInfo, MinimumApis, SBOM_FORMATS,
};
pub use group::Group;
pub use metadata::{BuildMetadata, METADATA_PATH};
pub use order::Order;
pub use plan::{Plan, PlanEntry};
pub use process::{aggregate_processes, AggregatedProcesses};
pub use project::{ProjectMetadata, ProjectSource};
pub use report::{BuildReport, ImageReport, Report};
pub use run::{RunImageForExport, RunToml, StackToml};
pub use system::{System, SystemBuildpacks, SystemToml};
pub use target::{OsDistro, TargetMetadata};
