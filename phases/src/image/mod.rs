//! Images: OCI image layouts on disk ([`layout`]) and registry images ([`registry`]), behind one
//! abstraction the phases use.

pub mod digest;
pub mod layout;
pub mod registry;

pub use digest::Digest;
