//! OCI image layout store (OCI image-layout spec; platform spec "Map an image reference to a path in the layout directory").
