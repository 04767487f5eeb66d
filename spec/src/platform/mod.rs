//! Platform-side file formats (platform spec "Data Format").
