//! The per-translation-unit site table hcc writes into section `.hcontainer.sites`
//! of every object it produces, and hld reads back to build the binary's
//! metadata (see docs/FORMATS.md, "TU site table").
//!
//! ```text
//! +----------------+---------+-------------+--------------------------------+
//! | "HCSITES\0" 8B | ver u32 | source str  | nfuncs u32 | FunctionSites... |
//! +----------------+---------+-------------+--------------------------------+
//! FunctionSites: symbol str | section str | flags u32 | reason str
//!                | nframe u32 | (offset u64, size u64)... | nsites u32 | Site...
//! Site:          kind u8 | callee str | nvalues u32 | type u8 ...
//! ```

use crate::types::ValueType;
use crate::wire::{Reader, Result, Writer};

pub const SECTION: &str = ".hcontainer.sites";
const MAGIC: &[u8; 8] = b"HCSITES\0";
pub const VERSION: u32 = 1;

/// What kind of code a site is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SiteKind {
    /// The poll at function entry (its slow path calls the migration point).
    EntryPoll = 1,
    /// The poll at a loop header.
    LoopPoll = 2,
    /// A call that may reach a migration point.
    Call = 3,
}

impl SiteKind {
    pub fn from_u8(v: u8) -> Option<SiteKind> {
        [SiteKind::EntryPoll, SiteKind::LoopPoll, SiteKind::Call]
            .into_iter()
            .find(|k| *k as u8 == v)
    }
    pub fn is_poll(self) -> bool {
        self != SiteKind::Call
    }
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Site {
    pub kind: SiteKind,
    /// Direct callee's symbol, empty for polls and indirect calls.
    pub callee: String,
    /// Types of the live values, in the canonical order of the frame record.
    pub values: Vec<ValueType>,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct FunctionSites {
    pub symbol: String,
    /// The function's own section in the object (`.text.<symbol>`), which is how
    /// hld finds its final address even for static functions whose names repeat
    /// across translation units.
    pub section: String,
    /// Instrumented functions have polls, statepoints and a resume path.
    pub instrumented: bool,
    /// Why a function with calls or loops was left uninstrumented.
    pub reason: String,
    /// (offset, size) of each shadow-stack slot; must agree across ISAs.
    pub frame: Vec<(u64, u64)>,
    pub sites: Vec<Site>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct SiteTable {
    /// The source file the translation unit came from.
    pub source: String,
    pub functions: Vec<FunctionSites>,
}

impl SiteTable {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.str(&self.source);
        w.u32(self.functions.len() as u32);
        for f in &self.functions {
            w.str(&f.symbol);
            w.str(&f.section);
            w.u32(f.instrumented as u32);
            w.str(&f.reason);
            w.u32(f.frame.len() as u32);
            for (o, n) in &f.frame {
                w.u64(*o);
                w.u64(*n);
            }
            w.u32(f.sites.len() as u32);
            for s in &f.sites {
                w.u8(s.kind as u8);
                w.str(&s.callee);
                w.u32(s.values.len() as u32);
                for t in &s.values {
                    w.u8(*t as u8);
                }
            }
        }
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<SiteTable> {
        let mut r = Reader::new(data, "TU site table");
        r.magic(MAGIC)?;
        r.version(VERSION)?;
        let source = r.str()?.to_string();
        let nf = r.count(20)?;
        let mut functions = Vec::with_capacity(nf);
        for _ in 0..nf {
            let symbol = r.str()?.to_string();
            let section = r.str()?.to_string();
            let instrumented = r.u32()? != 0;
            let reason = r.str()?.to_string();
            let nfr = r.count(16)?;
            let mut frame = Vec::with_capacity(nfr);
            for _ in 0..nfr {
                frame.push((r.u64()?, r.u64()?));
            }
            let ns = r.count(9)?;
            let mut sites = Vec::with_capacity(ns);
            for _ in 0..ns {
                let at = r.pos();
                let kind = SiteKind::from_u8(r.u8()?)
                    .ok_or_else(|| r.invalid_at(at, "unknown site kind"))?;
                let callee = r.str()?.to_string();
                let nv = r.count(1)?;
                let mut values = Vec::with_capacity(nv);
                for _ in 0..nv {
                    let at = r.pos();
                    values.push(
                        ValueType::from_u8(r.u8()?)
                            .ok_or_else(|| r.invalid_at(at, "unknown value type"))?,
                    );
                }
                sites.push(Site {
                    kind,
                    callee,
                    values,
                });
            }
            functions.push(FunctionSites {
                symbol,
                section,
                instrumented,
                reason,
                frame,
                sites,
            });
        }
        Ok(SiteTable { source, functions })
    }
}
