//! Buildpack- and extension-side file formats (buildpack spec, image extension spec).
