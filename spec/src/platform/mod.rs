//! Platform-side file formats (platform spec "Data Format"): `order.toml`, `group.toml`, `plan.toml`,
//! `<layers>/config/metadata.toml` and the other files platforms and phases exchange.

mod group;
mod metadata;
mod order;
mod plan;
#[cfg(test)]
mod tests;

pub use group::Group;
pub use metadata::{BuildMetadata, METADATA_PATH};
pub use order::Order;
pub use plan::{Plan, PlanEntry};
