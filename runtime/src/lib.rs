//! hcontainer: runs, checks and migrates multi-ISA programs built by hcc.

pub mod binary;
pub mod control;
pub mod forward;
pub mod inspect;
pub mod progress;
pub mod rewrite;
pub mod supervisor;
pub mod unwind;
pub mod verify;
