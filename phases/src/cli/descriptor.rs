//! The lifecycle descriptor `lifecycle.toml` (shipped next to the binaries as
//! `/cnb/lifecycle/lifecycle.toml`; buildpacks RFC 0011 and 0049), generated from the one list of
//! supported and deprecated APIs in [`cnb_spec::api`] (through
//! [`cnb_spec::platform::LifecycleDescriptor::current`]) so that it can never disagree with the binaries.
//! pack and kpack read `[apis.platform].supported` to negotiate `CNB_PLATFORM_API`.

use cnb_spec::platform::LifecycleDescriptor;

use crate::Failure;

/// The descriptor of this build: `[lifecycle] version` is the plain version, as the reference's
/// `lifecycle.toml` (the commit is in `-version` and the launcher label).
pub fn descriptor() -> LifecycleDescriptor {
    LifecycleDescriptor::current(crate::build_info::VERSION)
}

/// The descriptor as TOML text.
pub fn descriptor_toml() -> Result<String, Failure> {
    descriptor()
        .to_toml_string()
        .map_err(|e| Failure::new(cnb_spec::exit::FAILED, "write lifecycle descriptor", &e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use cnb_spec::api::{SUPPORTED_BUILDPACK_APIS, SUPPORTED_PLATFORM_APIS};

    #[test]
    fn descriptor_matches_the_api_lists() {
        let text = descriptor_toml().unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        let strings = |t: &toml::Value| -> Vec<String> {
            t.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let want: Vec<String> = SUPPORTED_PLATFORM_APIS
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(strings(&v["apis"]["platform"]["supported"]), want);
        let want: Vec<String> = SUPPORTED_BUILDPACK_APIS
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(strings(&v["apis"]["buildpack"]["supported"]), want);
        assert_eq!(v["api"]["platform"].as_str(), Some("0.7"));
        assert_eq!(
            v["lifecycle"]["version"].as_str(),
            Some(crate::build_info::VERSION)
        );
        assert_eq!(strings(&v["lifecycle"]["sbom-formats"]).len(), 3);
    }
}
