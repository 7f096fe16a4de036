//! hcc: a gcc-compatible C compiler driver that builds multi-ISA objects
//! whose variants can hand a running process to each other.

pub mod args;
pub mod driver;
pub mod frontend;
pub mod instrument;
pub mod ir;
pub mod pipeline;
