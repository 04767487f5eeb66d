//! The lifecycle descriptor `lifecycle.toml` (shipped next to the binaries as
//! `/cnb/lifecycle/lifecycle.toml`; buildpacks RFC 0011 and 0049), generated from the one list of
//! supported and deprecated APIs in [`cnb_spec::api`] so that it can never disagree with the binaries.
//!
//! pack and kpack read `[apis.platform].supported` to negotiate `CNB_PLATFORM_API`.

use cnb_spec::api::{
    DEPRECATED_BUILDPACK_APIS, DEPRECATED_PLATFORM_APIS, SUPPORTED_BUILDPACK_APIS,
    SUPPORTED_PLATFORM_APIS,
};

/// SBOM media types the lifecycle understands (`[lifecycle].sbom-formats`).
pub const SBOM_FORMATS: [&str; 3] = [
    "application/vnd.cyclonedx+json",
    "application/spdx+json",
    "application/vnd.syft+json",
];

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The descriptor text, in the reference's layout: `[apis.buildpack]`/`[apis.platform]` with
/// `supported`/`deprecated`, the RFC 0011 minimum `[api]` table, and `[lifecycle]` version and SBOM
/// formats.
pub fn descriptor_toml() -> String {
    let min_platform = SUPPORTED_PLATFORM_APIS
        .first()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let min_buildpack = SUPPORTED_BUILDPACK_APIS
        .first()
        .map(|v| v.to_string())
        .unwrap_or_default();
    format!(
        "[apis]\n[apis.buildpack]\n  deprecated = {}\n  supported = {}\n[apis.platform]\n  deprecated = {}\n  supported = {}\n\n\
         # For backwards compatibility the minimum supported APIs are provided in RFC-0011 format\n\
         [api]\n  platform = \"{}\"\n  buildpack = \"{}\"\n\n\
         [lifecycle]\n  version = \"{}\"\n  sbom-formats = {}\n",
        list(DEPRECATED_BUILDPACK_APIS),
        list(SUPPORTED_BUILDPACK_APIS),
        list(DEPRECATED_PLATFORM_APIS),
        list(SUPPORTED_PLATFORM_APIS),
        min_platform,
        min_buildpack,
        super::version(),
        list(&SBOM_FORMATS),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_matches_the_api_lists() {
        let v: toml::Value = toml::from_str(&descriptor_toml()).unwrap();
        let strings = |path: &[&str]| -> Vec<String> {
            let mut cur = &v;
            for p in path {
                cur = &cur[*p];
            }
            cur.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let want: Vec<String> = SUPPORTED_PLATFORM_APIS
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(strings(&["apis", "platform", "supported"]), want);
        assert_eq!(
            strings(&["apis", "platform", "supported"])
                .last()
                .map(String::as_str),
            Some("0.15")
        );
        let want: Vec<String> = SUPPORTED_BUILDPACK_APIS
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(strings(&["apis", "buildpack", "supported"]), want);
        assert!(strings(&["apis", "platform", "deprecated"]).is_empty());
        assert_eq!(v["api"]["platform"].as_str(), Some("0.7"));
        assert_eq!(
            v["lifecycle"]["version"].as_str(),
            Some(crate::cli::version().as_str())
        );
        assert_eq!(strings(&["lifecycle", "sbom-formats"]).len(), 3);
    }
}
