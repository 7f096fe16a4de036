//! Walking a *dumped* stack: CFI from the source variant's `.eh_frame`
//! (gimli), every memory read bounds-checked against the dump.
//!
//! ```text
//!   higher addresses
//!   ┌─────────────────┐
//!   │ caller frame    │  ← CFA of the callee = caller's sp after the call returns
//!   │ return address  │  (x86_64: pushed by call; aarch64: saved x30)
//!   │ callee frame    │  saved callee-saved registers at CFA + offset (CFI rules)
//!   └─────────────────┘ ← sp
//! ```
//! Each step turns the register state at one site's return address into the
//! state at the caller's: CFA from the CFA rule, callee-saved registers from
//! their rules, pc from the return-address column, sp = CFA.

use gimli::{
    BaseAddresses, CfaRule, EhFrame, LittleEndian, Register, RegisterRule, UnwindContext,
    UnwindSection,
};
use hc_metadata::image::{Region, RegionKind};
use hc_metadata::Isa;
use std::borrow::Cow;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnwindError {
    #[error("reading {len} bytes at {addr:#x}: not in the dump")]
    Memory { addr: u64, len: usize },
    #[error("no unwind information for pc {pc:#x}")]
    NoCfi { pc: u64 },
    #[error("unwind information for pc {pc:#x} uses {what}, which hcontainer does not evaluate")]
    Unsupported { pc: u64, what: &'static str },
    #[error("the source variant has no .eh_frame")]
    NoEhFrame,
    #[error("malformed .eh_frame: {0}")]
    Gimli(String),
}

/// Dumped memory, read with bounds checks.
pub struct Memory<'a> {
    regions: Vec<(u64, &'a [u8])>,
}

impl<'a> Memory<'a> {
    pub fn new(regions: &[Region<'a>]) -> Memory<'a> {
        // A file region's data names the file, it is not memory.
        let mut v: Vec<(u64, &[u8])> = regions
            .iter()
            .filter(|r| !matches!(r.kind, RegionKind::File | RegionKind::SharedFd))
            .map(|r| (r.addr, r.data))
            .collect();
        v.sort_by_key(|r| r.0);
        Memory { regions: v }
    }

    /// `len` bytes at `addr`; a range over adjacent regions is joined (the
    /// dump cuts one mapping's worth of memory where the kernel's mappings
    /// end, e.g. between a page of `.data` and the `.bss` after it).
    pub fn read(&self, addr: u64, len: usize) -> Result<Cow<'a, [u8]>, UnwindError> {
        let err = || UnwindError::Memory { addr, len };
        let end = addr.checked_add(len as u64).ok_or_else(err)?;
        let first = self
            .regions
            .partition_point(|r| r.0 <= addr)
            .checked_sub(1)
            .ok_or_else(err)?;
        let (base, data) = self.regions[first];
        let off = (addr - base) as usize;
        if let Some(b) = data.get(off..off + len) {
            return Ok(Cow::Borrowed(b));
        }
        let mut out = Vec::with_capacity(len);
        let mut at = addr;
        for &(base, data) in &self.regions[first..] {
            if base > at || base + data.len() as u64 <= at {
                return Err(err());
            }
            let from = (at - base) as usize;
            let take = data.len().min(from + (end - at) as usize);
            out.extend_from_slice(&data[from..take]);
            at = base + take as u64;
            if at == end {
                return Ok(Cow::Owned(out));
            }
        }
        Err(err())
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, UnwindError> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_le_bytes((*b).try_into().expect("8 bytes")))
    }
}

/// Register values by DWARF number; 128-bit so vector registers fit.
#[derive(Clone, Debug)]
pub struct RegState {
    pub regs: Vec<Option<u128>>,
    pub pc: u64,
    pub sp: u64,
}

pub const MAX_DWARF_REG: usize = 128;

impl RegState {
    pub fn get(&self, reg: u16) -> Option<u128> {
        self.regs.get(reg as usize).copied().flatten()
    }
    pub fn get64(&self, reg: u16) -> Option<u64> {
        self.get(reg).map(|v| v as u64)
    }
}

pub struct Unwinder {
    isa: Isa,
    eh: Vec<u8>,
    bases: BaseAddresses,
    /// (start, end, offset) of every FDE, sorted, for binary search.
    fdes: Vec<(u64, u64, usize)>,
}

impl Unwinder {
    pub fn new(
        isa: Isa,
        eh_frame_addr: u64,
        eh_frame: Vec<u8>,
        text_addr: u64,
    ) -> Result<Unwinder, UnwindError> {
        let bases = BaseAddresses::default()
            .set_eh_frame(eh_frame_addr)
            .set_text(text_addr);
        let mut fdes = Vec::new();
        {
            let eh = EhFrame::new(&eh_frame, LittleEndian);
            let mut entries = eh.entries(&bases);
            while let Some(e) = entries
                .next()
                .map_err(|e| UnwindError::Gimli(e.to_string()))?
            {
                if let gimli::CieOrFde::Fde(partial) = e {
                    let fde = partial
                        .parse(EhFrame::cie_from_offset)
                        .map_err(|e| UnwindError::Gimli(e.to_string()))?;
                    fdes.push((fde.initial_address(), fde.end_address(), fde.offset()));
                }
            }
        }
        fdes.sort_unstable();
        Ok(Unwinder {
            isa,
            eh: eh_frame,
            bases,
            fdes,
        })
    }

    /// The caller's register state, from the state at a return address.
    pub fn step(&self, st: &RegState, mem: &Memory) -> Result<RegState, UnwindError> {
        // A return address may be the first byte after the caller's FDE (a
        // call that never returns ends the function): look up pc - 1.
        let pc = st.pc.wrapping_sub(1);
        let i = self.fdes.partition_point(|f| f.0 <= pc);
        let &(start, end, offset) = i
            .checked_sub(1)
            .and_then(|i| self.fdes.get(i))
            .filter(|f| pc < f.1)
            .ok_or(UnwindError::NoCfi { pc: st.pc })?;
        debug_assert!(start <= pc && pc < end);
        let eh = EhFrame::new(&self.eh, LittleEndian);
        let fde = eh
            .fde_from_offset(
                &self.bases,
                gimli::EhFrameOffset(offset),
                EhFrame::cie_from_offset,
            )
            .map_err(|e| UnwindError::Gimli(e.to_string()))?;
        let mut ctx = UnwindContext::new();
        let row = fde
            .unwind_info_for_address(&eh, &self.bases, &mut ctx, pc)
            .map_err(|e| UnwindError::Gimli(e.to_string()))?;
        let cfa = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                let base = st.get64(register.0).ok_or(UnwindError::Unsupported {
                    pc: st.pc,
                    what: "a CFA register the dump has no value for",
                })?;
                base.wrapping_add(*offset as u64)
            }
            CfaRule::Expression(_) => {
                return Err(UnwindError::Unsupported {
                    pc: st.pc,
                    what: "a CFA expression",
                })
            }
        };
        let info = self.isa.info();
        let mut next = st.clone();
        for (reg, rule) in row.registers() {
            let v = self.rule_value(st, mem, cfa, *reg, rule)?;
            if let Some(slot) = next.regs.get_mut(reg.0 as usize) {
                *slot = v;
            }
        }
        let ra = match row.register(Register(info.dwarf_ra)) {
            RegisterRule::Undefined => None,
            rule => self.rule_value(st, mem, cfa, Register(info.dwarf_ra), &rule)?,
        };
        next.pc = ra.ok_or(UnwindError::Unsupported {
            pc: st.pc,
            what: "an undefined return address (outermost frame)",
        })? as u64;
        next.sp = cfa;
        next.regs[info.dwarf_sp as usize] = Some(cfa as u128);
        Ok(next)
    }

    fn rule_value(
        &self,
        st: &RegState,
        mem: &Memory,
        cfa: u64,
        reg: Register,
        rule: &RegisterRule<usize>,
    ) -> Result<Option<u128>, UnwindError> {
        Ok(match rule {
            RegisterRule::Undefined => None,
            RegisterRule::SameValue => st.get(reg.0),
            RegisterRule::Offset(n) => Some(mem.read_u64(cfa.wrapping_add(*n as u64))? as u128),
            RegisterRule::ValOffset(n) => Some(cfa.wrapping_add(*n as u64) as u128),
            RegisterRule::Register(r) => st.get(r.0),
            RegisterRule::Constant(c) => Some(*c as u128),
            _ => {
                return Err(UnwindError::Unsupported {
                    pc: st.pc,
                    what: "a register rule expression",
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_metadata::image::{Region, RegionKind};

    fn region(addr: u64, data: &[u8]) -> Region<'_> {
        Region {
            addr,
            map_len: data.len() as u64,
            prot: 3,
            kind: RegionKind::Anon,
            data,
        }
    }

    #[test]
    fn reads_join_adjacent_regions_and_refuse_gaps() {
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        // 0x1000..0x1010 and 0x1010..0x1020 touch; 0x1030.. is apart.
        let regions = [region(0x1000, &a), region(0x1010, &b), region(0x1030, &c)];
        let mem = Memory::new(&regions);
        assert!(matches!(mem.read(0x1004, 8).unwrap(), Cow::Borrowed(_)));
        let joined = mem.read(0x100c, 8).unwrap();
        assert_eq!(&*joined, &[1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(mem.read(0x1000, 32).unwrap().len(), 32);
        assert!(
            mem.read(0x101c, 8).is_err(),
            "0x1020..0x1030 was not dumped"
        );
        assert!(mem.read(0x0ff8, 16).is_err());
        assert!(mem.read(u64::MAX - 2, 8).is_err());
    }
}
