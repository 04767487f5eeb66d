//! Checks of exported images with independent tools, shared by the `export_*` acceptance tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use crate::common::tool;

/// `oci-image-tool validate --type image <dir>`: schemas, blob presence and sizes.
pub fn validate_layout(dir: &Path) {
    tool(
        "oci-image-tool",
        &["validate", "--type", "image", dir.to_str().unwrap()],
    );
}

/// `umoci unpack --rootless` of `<dir>:latest` into `bundle` (verifies diffIDs, really extracts);
/// returns the unpacked root filesystem.
pub fn unpack(dir: &Path, bundle: &Path) -> PathBuf {
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest", dir.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}
