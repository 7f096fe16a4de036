//! The per-translation-unit site table hcc writes into section `.hcontainer.sites`
//! of every object it produces, and hld reads back to build the binary's
//! metadata (see docs/FORMATS.md, "TU site table").
//!
//! ```text
//! +----------------+---------+-------------+--------------------------------+
//! | "HCSITES\0" 8B | ver u32 | source str  | nfuncs u32 | FunctionSites... |
//! +----------------+---------+-------------+--------------------------------+
//! FunctionSites: symbol str | section str | resume section str | flags u32 | reason str
//!                | nframe u32 | (offset u64, size u64)...
//!                | nrecord u32 | type u8...            frame-record value types
//!                | nsites u32 | Site...
//!                | nlost u32 | (category str, count u32)...
//! Site:          kind u8 | callee str | nslots u32 | slot u32 ...   indices into the record
//! ```

use crate::types::ValueType;
use crate::wire::{Reader, Result, Writer};

pub const SECTION: &str = ".hcontainer.sites";
const MAGIC: &[u8; 8] = b"HCSITES\0";
pub const VERSION: u32 = 2;

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
    /// The values live at the site: indices into the function's `record`,
    /// ascending — also the order of the statepoint's deopt operands.
    pub slots: Vec<u32>,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct FunctionSites {
    pub symbol: String,
    /// The function's own section in the object (`.text.<symbol>`), which is how
    /// hld finds its final address even for static functions whose names repeat
    /// across translation units.
    pub section: String,
    /// Section of the function's resume copy (empty: its resume paths are
    /// in the function itself). The copy's frames are the function's frames.
    pub resume_section: String,
    /// Instrumented functions have polls, statepoints and a resume path.
    pub instrumented: bool,
    /// Why a function with calls or loops was left uninstrumented.
    pub reason: String,
    /// (offset, size) of each shadow-stack slot; must agree across ISAs.
    pub frame: Vec<(u64, u64)>,
    /// Types of the values a frame record of this function holds, in order
    /// (one layout for every site; types::record_layout gives the offsets).
    pub record: Vec<ValueType>,
    pub sites: Vec<Site>,
    /// Places that may reach a migration point but cannot migrate, counted
    /// by reason category (`setjmp`, `variadic`, `varargs-callee`, ...).
    pub lost: Vec<(String, u32)>,
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
            w.str(&f.resume_section);
            w.u32(f.instrumented as u32);
            w.str(&f.reason);
            w.u32(f.frame.len() as u32);
            for (o, n) in &f.frame {
                w.u64(*o);
                w.u64(*n);
            }
            encode_types(&mut w, &f.record);
            encode_sites(&mut w, &f.sites);
            encode_lost(&mut w, &f.lost);
        }
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<SiteTable> {
        let mut r = Reader::new(data, "TU site table");
        r.magic(MAGIC)?;
        r.version(VERSION)?;
        let source = r.str()?.to_string();
        let nf = r.count(24)?;
        let mut functions = Vec::with_capacity(nf);
        for _ in 0..nf {
            let symbol = r.str()?.to_string();
            let section = r.str()?.to_string();
            let resume_section = r.str()?.to_string();
            let instrumented = r.u32()? != 0;
            let reason = r.str()?.to_string();
            let nfr = r.count(16)?;
            let mut frame = Vec::with_capacity(nfr);
            for _ in 0..nfr {
                frame.push((r.u64()?, r.u64()?));
            }
            let record = decode_types(&mut r)?;
            let sites = decode_sites(&mut r)?;
            let lost = decode_lost(&mut r)?;
            functions.push(FunctionSites {
                symbol,
                section,
                resume_section,
                instrumented,
                reason,
                frame,
                record,
                sites,
                lost,
            });
        }
        Ok(SiteTable { source, functions })
    }
}

/// Value types: `n u32 | type u8...`.
pub fn encode_types(w: &mut Writer, types: &[ValueType]) {
    w.u32(types.len() as u32);
    for t in types {
        w.u8(*t as u8);
    }
}

pub fn decode_types(r: &mut Reader) -> Result<Vec<ValueType>> {
    let n = r.count(1)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.pos();
        out.push(
            ValueType::from_u8(r.u8()?).ok_or_else(|| r.invalid_at(at, "unknown value type"))?,
        );
    }
    Ok(out)
}

/// Sites: `n u32 | (kind u8 | callee str | nslots u32 | slot u32...)...`.
pub fn encode_sites(w: &mut Writer, sites: &[Site]) {
    w.u32(sites.len() as u32);
    for s in sites {
        w.u8(s.kind as u8);
        w.str(&s.callee);
        w.u32(s.slots.len() as u32);
        for i in &s.slots {
            w.u32(*i);
        }
    }
}

pub fn decode_sites(r: &mut Reader) -> Result<Vec<Site>> {
    let n = r.count(9)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.pos();
        let kind =
            SiteKind::from_u8(r.u8()?).ok_or_else(|| r.invalid_at(at, "unknown site kind"))?;
        let callee = r.str()?.to_string();
        let ns = r.count(4)?;
        let mut slots = Vec::with_capacity(ns);
        for _ in 0..ns {
            slots.push(r.u32()?);
        }
        out.push(Site {
            kind,
            callee,
            slots,
        });
    }
    Ok(out)
}

/// Lost-site counts: `n u32 | (category str | count u32)...`.
pub fn encode_lost(w: &mut Writer, lost: &[(String, u32)]) {
    w.u32(lost.len() as u32);
    for (c, n) in lost {
        w.str(c);
        w.u32(*n);
    }
}

pub fn decode_lost(r: &mut Reader) -> Result<Vec<(String, u32)>> {
    let n = r.count(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.str()?.to_string(), r.u32()?));
    }
    Ok(out)
}
