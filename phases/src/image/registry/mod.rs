//! Registry client on oci-client + tokio; async is confined to this module (checklist G-16…G-18, G-23).
