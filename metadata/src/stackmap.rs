//! Parser for LLVM stack maps, version 3 (section `.llvm_stackmaps`).
//! A linked executable holds one blob per object file, concatenated; each
//! blob starts with its own header.
//!
//! ```text
//! header:    version u8 (=3) | reserved u8 | reserved u16 | nfuncs u32 | nconsts u32 | nrecords u32
//! functions: addr u64 | stack_size u64 | record_count u64          (nfuncs times)
//! constants: u64                                                   (nconsts times)
//! records:   id u64 | offset u32 | reserved u16 | nlocs u16
//!            location: kind u8 | reserved u8 | size u16 | dwarf_reg u16 | reserved u16 | offset_or_const i32
//!            pad to 8 | reserved u16 | nliveouts u16 | liveout (reg u16, reserved u8, size u8)... | pad to 8
//! ```
//! Statepoint records start with three constant locations (calling convention,
//! flags, number of deopt operands) before the deopt operands.

use crate::wire::{Reader, Result};

/// Where a value lives at a call's return address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Location {
    /// In a register (DWARF number), `size` bytes.
    Register {
        reg: u16,
        size: u16,
    },
    /// In LLVM's terms the value *is* the address reg + offset; hcc passes
    /// only stack slots so (resume copies), and the value is in memory there.
    Direct {
        reg: u16,
        offset: i32,
    },
    /// In memory at reg + offset.
    Indirect {
        reg: u16,
        offset: i32,
        size: u16,
    },
    Constant(i64),
}

#[derive(Clone, Debug)]
pub struct Record {
    pub id: u64,
    /// Absolute address of the return address (function address + offset).
    pub address: u64,
    pub locations: Vec<Location>,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub address: u64,
    pub stack_size: u64,
    pub records: Vec<Record>,
}

const WHAT: &str = "LLVM stack map";

/// Parses every blob in a `.llvm_stackmaps` section's bytes.
pub fn parse(section: &[u8]) -> Result<Vec<Function>> {
    let mut r = Reader::new(section, WHAT);
    let mut out = Vec::new();
    while r.remaining() >= 16 {
        // The linker may pad between blobs with zeros to keep 8-byte alignment.
        let start = r.pos();
        if r.clone().u8()? == 0 {
            r.bytes(1)?;
            continue;
        }
        let version = r.u8()?;
        if version != 3 {
            return Err(r.invalid_at(start, &format!("stack map version {version}, expected 3")));
        }
        r.bytes(3)?;
        let nfuncs = r.count(24)?;
        let nconsts = r.u32()? as usize;
        let nrecords = r.u32()? as usize;
        let mut funcs = Vec::with_capacity(nfuncs);
        for _ in 0..nfuncs {
            let address = r.u64()?;
            let stack_size = r.u64()?;
            let count = r.u64()?;
            funcs.push((address, stack_size, count));
        }
        let mut consts = Vec::with_capacity(nconsts.min(r.remaining() / 8));
        for _ in 0..nconsts {
            consts.push(r.u64()? as i64);
        }
        let mut records = Vec::with_capacity(nrecords.min(r.remaining() / 16));
        for _ in 0..nrecords {
            let id = r.u64()?;
            let offset = r.u32()?;
            r.u16()?;
            let nlocs = r.u16()? as usize;
            let mut locations = Vec::with_capacity(nlocs);
            for _ in 0..nlocs {
                let at = r.pos();
                let kind = r.u8()?;
                r.u8()?;
                let size = r.u16()?;
                let reg = r.u16()?;
                r.u16()?;
                let off = r.i32()?;
                locations.push(match kind {
                    1 => Location::Register { reg, size },
                    2 => Location::Direct { reg, offset: off },
                    3 => Location::Indirect {
                        reg,
                        offset: off,
                        size,
                    },
                    4 => Location::Constant(off as i64),
                    5 => Location::Constant(
                        *consts
                            .get(off as usize)
                            .ok_or_else(|| r.invalid_at(at, "constant index out of range"))?,
                    ),
                    k => return Err(r.invalid_at(at, &format!("unknown location kind {k}"))),
                });
            }
            r.skip_to_align(8)?;
            r.u16()?;
            let nlive = r.u16()? as usize;
            r.bytes(nlive * 4)?;
            r.skip_to_align(8)?;
            records.push((id, offset, locations));
        }
        let mut recs = records.into_iter();
        for (address, stack_size, count) in funcs {
            let mut f = Function {
                address,
                stack_size,
                records: Vec::new(),
            };
            for _ in 0..count {
                let (id, offset, locations) = recs
                    .next()
                    .ok_or_else(|| r.invalid_at(start, "function record counts exceed records"))?;
                f.records.push(Record {
                    id,
                    address: address + offset as u64,
                    locations,
                });
            }
            out.push(f);
        }
    }
    Ok(out)
}
