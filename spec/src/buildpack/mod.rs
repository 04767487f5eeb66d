//! Buildpack- and extension-side file formats (buildpack spec, image extension spec): descriptors,
//! build plans, `launch.toml`, `build.toml`, `store.toml` and `<layer>.toml`.

mod bom;
mod build;
mod descriptor;
mod element;
mod extend;
mod launch;
mod layer;
mod layer_name;
mod plan;
mod sbom;
mod store;
#[cfg(test)]
mod tests;

pub(crate) use element::is_false;
pub(crate) use launch::{args_for, encode_command, RawCommand, RawProcess};

pub use bom::BomEntry;
pub use build::{BuildToml, Unmet};
pub use descriptor::{
    BuildpackDescriptor, BuildpackInfo, Distro, ExtensionDescriptor, ExtensionInfo, License, Stack,
    Target, BIONIC_STACK_ID,
};
pub use element::{GroupElement, OrderGroup};
pub use extend::{
    parse_exec_d_output, parse_exec_d_output_str, ExtendArg, ExtendArgs, ExtendConfig,
};
pub use launch::{Label, LaunchToml, Process, Slice};
pub use layer::{LayerMetadataFile, LayerTypes};
pub use layer_name::{InvalidLayerName, LayerName};
pub use plan::{BuildpackPlan, DetectPlan, PlanRuleError, PlanSections, Provide, Require};
pub use sbom::{SbomFileName, SbomFormat};
pub use store::StoreToml;

/// IDs reserved for lifecycle directories under `<layers>`: a buildpack ID "MUST NOT be `app`, `config`,
/// `generated`, or `sbom`".
pub const RESERVED_IDS: &[&str] = &["app", "config", "generated", "sbom"];

/// The ID with every `/` replaced by `_` (the directory name under `<layers>`, `<generated>`, ...).
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

/// Checks a buildpack or extension ID against the spec: it "MUST only contain numbers, letters, and the
/// characters `.`, `/`, and `-`" and "MUST NOT be `app`, `config`, `generated`, or `sbom`". The reference
/// does not validate; callers decide whether to warn or fail.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-')))
    {
        return Err(format!(
            "id '{id}' contains '{c}': only letters, numbers, '.', '/' and '-' are allowed"
        ));
    }
    if RESERVED_IDS.iter().any(|r| r.eq_ignore_ascii_case(id)) {
        return Err(format!("id '{id}' is reserved"));
    }
    Ok(())
}

/// Checks a process type: it "MUST only contain numbers, letters, and the characters `.`, `_`, and `-`".
pub fn validate_process_type(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("process type is empty".into());
    }
    match t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "process type '{t}' contains '{c}': only letters, numbers, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}
