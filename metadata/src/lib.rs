//! hcontainer's on-disk formats. Every format starts with a magic and a version
//! and is described in docs/FORMATS.md; writers and readers live side by side.

pub mod container;
pub mod image;
pub mod isa;
pub mod meta;
pub mod sites;
pub mod stackmap;
pub mod types;
pub mod wire;

pub use isa::Isa;
pub use wire::DecodeError;
