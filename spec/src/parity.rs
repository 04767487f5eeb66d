//! Byte parity with the reference lifecycle (issue 13): the deliberate differences between the bytes we
//! write and the reference's, each with its reason. Everything not listed here is meant to be the same
//! (golden byte tests in `golden_bytes.rs` and the acceptance tests pin the formats at the API boundaries
//! where they change). Keep this list short and every entry harmless to consumers.

/// One deliberate difference from the reference's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    /// What differs (file or label, and how).
    pub what: &'static str,
    /// Why we differ, and why it is harmless.
    pub why: &'static str,
}

/// The deliberate differences.
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        what: "image manifests (registry and OCI layout) carry a top-level `mediaType`; the reference's \
               (go-containerregistry) omit it",
        why: "image-spec 1.1 recommends it; every reader (registries, skopeo, umoci, docker, the \
              reference) accepts both, and it makes the manifest self-describing",
    },
    Deviation {
        what: "integers in layer metadata read back from an image label or cache (`analyzed.toml` \
               `[metadata]`, restored `<layer>.toml`) stay integers (`runs = 2`); the reference decodes \
               the label's JSON into Go `interface{}` values, so they come back as float64 and its \
               encoder writes `runs = 2.0`",
        why: "the buildpack wrote an integer and reads an integer back (a buildpack decoding the \
              reference's `2.0` into an integer field fails); no platform reads these values",
    },
    Deviation {
        what: "`io.buildpacks.build.metadata` lists each buildpack's `api`; the reference omits it \
               (`json:\"-\"`)",
        why: "the platform spec lists `api` for that label (checklist D-08); readers ignore unknown keys",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deviations_are_few_and_explained() {
        assert!(DEVIATIONS.len() <= 5);
        for d in DEVIATIONS {
            assert!(!d.what.is_empty() && !d.why.is_empty());
        }
    }
}
