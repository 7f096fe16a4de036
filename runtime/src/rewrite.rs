//! Dump → snapshot (DESIGN.md 3.2): unwind the dumped stack with the source
//! variant's CFI, look each return address up in the source's stack maps,
//! read every live value, and write ISA-neutral frame records.

use crate::binary::{self, Binary};
use crate::unwind::{Memory, RegState, UnwindError, Unwinder, MAX_DWARF_REG};
use hc_metadata::image::{Frame, Image, Region, RegionKind};
use hc_metadata::stackmap::Location;
use hc_metadata::types::{record_layout, x87_to_quad, LongDouble, ValueType};
use hc_metadata::{DecodeError, Isa};

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("cannot read the dump: {0}")]
    Decode(#[from] DecodeError),
    #[error("the dump was made by another build of this program (dump build id {dump}, binary {binary}); use the binary the process runs")]
    ForeignDump { dump: String, binary: String },
    #[error("{0}")]
    Binary(#[from] binary::BinaryError),
    #[error("frame {depth} stopped at {pc:#x} ({place}), which is not a migration site: {why}")]
    NoSite {
        depth: usize,
        pc: u64,
        place: String,
        why: String,
    },
    #[error("frame {depth} ({function}): {why}")]
    Value {
        depth: usize,
        function: String,
        why: String,
    },
    #[error("unwinding frame {depth}: {error}")]
    Unwind { depth: usize, error: UnwindError },
    #[error("more than {0} frames: the stack looks corrupted")]
    TooDeep(usize),
}

const MAX_FRAMES: usize = 1 << 20;

/// Reads one live value into its record slot.
fn read_value(
    loc: &Location,
    ty: ValueType,
    st: &RegState,
    mem: &Memory,
    out: &mut [u8],
) -> Result<(), String> {
    let size = ty.size();
    let bytes: Vec<u8> = match *loc {
        Location::Register { reg, .. } => {
            let v = st.get(reg).ok_or_else(|| {
                format!("value in DWARF register {reg}, which the unwinder could not recover")
            })?;
            v.to_le_bytes()[..size].to_vec()
        }
        Location::Indirect {
            reg,
            offset,
            size: loc_size,
        } => {
            let base = st.get64(reg).ok_or_else(|| {
                format!("value addressed from DWARF register {reg}, which has no value")
            })?;
            let n = size.min(loc_size.max(1) as usize);
            let mut b = mem
                .read(base.wrapping_add(offset as i64 as u64), n)
                .map_err(|e| e.to_string())?
                .to_vec();
            b.resize(size, 0);
            b
        }
        Location::Constant(c) => c.to_le_bytes()[..size.min(8)]
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(size)
            .collect(),
        // hcc passes a resume copy's stack slot itself to the statepoint:
        // the value is in memory at the slot's address.
        Location::Direct { reg, offset } => {
            let base = st.get64(reg).ok_or_else(|| {
                format!("value in a slot addressed from DWARF register {reg}, which has no value")
            })?;
            mem.read(base.wrapping_add(offset as i64 as u64), size)
                .map_err(|e| e.to_string())?
                .to_vec()
        }
    };
    out[..size].copy_from_slice(&bytes);
    if ty == ValueType::I1 {
        out[0] &= 1;
    }
    Ok(())
}

/// A snapshot holds every `long double` as IEEE binary128 (types.rs): the
/// x87 values of a record captured on such an ISA are converted in place.
fn x87_to_snapshot(types: &[ValueType], offsets: &[usize], values: &mut [u8]) {
    let word = |v: &[u8], at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
    for (i, pair) in types.windows(2).enumerate() {
        if pair != [ValueType::LongDoubleLo, ValueType::LongDoubleHi] {
            continue;
        }
        let (lo_at, hi_at) = (offsets[i], offsets[i + 1]);
        let (lo, hi) = x87_to_quad(word(values, lo_at), word(values, hi_at));
        values[lo_at..lo_at + 8].copy_from_slice(&lo.to_le_bytes());
        values[hi_at..hi_at + 8].copy_from_slice(&hi.to_le_bytes());
    }
}

/// Replaces the address of each `va_list` live at a site (`slots`) with
/// the address of its next argument, the snapshot's ISA-neutral form
/// (`ValueType::VaList`). An object not in the everything on the stack form
/// has not been started (its contents are not read before `va_start`): 0.
fn va_lists_to_snapshot(
    isa: Isa,
    types: &[ValueType],
    offsets: &[usize],
    slots: &[u32],
    values: &mut [u8],
    mem: &Memory,
    native_stacks: &[(u64, u64)],
) -> Result<(), String> {
    let abi = &isa.info().va_list;
    for &slot in slots {
        if types[slot as usize] != ValueType::VaList {
            continue;
        }
        let at = offsets[slot as usize];
        let addr = u64::from_le_bytes(values[at..at + 8].try_into().unwrap());
        let object = mem
            .read(addr, abi.size() as usize)
            .map_err(|e| format!("its va_list at {addr:#x}: {e}"))?;
        let next = abi.next_arg(&object).unwrap_or(0);
        if native_stacks
            .iter()
            .any(|&(lo, hi)| next >= lo && next < hi)
        {
            return Err(format!(
                "its va_list at {addr:#x} reads arguments from the native stack: the variadic \
                 call did not go through hcc's argument area (it came through a function \
                 pointer, or passed a struct or long double); migrate once the program has \
                 left that call"
            ));
        }
        values[at..at + 8].copy_from_slice(&next.to_le_bytes());
    }
    Ok(())
}

/// Turns a dump into a snapshot for `bin`.
pub fn rewrite<'a>(bin: &Binary, dump: &Image<'a>) -> Result<Image<'a>, RewriteError> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if dump.build_id != bin.meta.build_id {
        return Err(RewriteError::ForeignDump {
            dump: hex(&dump.build_id),
            binary: hex(&bin.meta.build_id),
        });
    }
    let isa = dump.isa;
    let exe = bin.variant(isa)?;
    let regs = dump.regs.as_ref().ok_or(DecodeError::Invalid {
        what: "dump",
        offset: 0,
        message: "no registers".into(),
    })?;
    let variant = bin
        .meta
        .variant(isa)
        .ok_or_else(|| binary::BinaryError::NoVariant {
            path: bin.path.clone(),
            isa,
            have: String::new(),
        })?;
    let sites = variant.by_return_address();
    let (eh_addr, eh) = binary::section(exe, ".eh_frame").ok_or(RewriteError::Unwind {
        depth: 0,
        error: UnwindError::NoEhFrame,
    })?;
    let text_addr = binary::section(exe, ".text").map(|s| s.0).unwrap_or(0);
    let unwinder = Unwinder::new(isa, eh_addr, eh, text_addr)
        .map_err(|error| RewriteError::Unwind { depth: 0, error })?;
    let mem = Memory::new(&dump.regions);
    let native_stacks: Vec<(u64, u64)> = dump
        .regions
        .iter()
        .filter(|r| r.kind == RegionKind::Stack)
        .map(|r| (r.addr, r.addr + r.map_len))
        .collect();
    let mut st = initial_state(isa, regs);
    let mut frames = Vec::new();
    loop {
        let depth = frames.len();
        if depth >= MAX_FRAMES {
            return Err(RewriteError::TooDeep(MAX_FRAMES));
        }
        let place = || binary::symbolize(exe, st.pc).unwrap_or_else(|| "unknown code".into());
        let Some(site) = sites.get(&st.pc) else {
            let why = match bin.meta.functions.iter().rev().find(|f| f.addr <= st.pc) {
                Some(f) if !f.instrumented && !f.reason.is_empty() => {
                    format!("{} is not migratable: {}", f.name, f.reason)
                }
                _ => "it is library code or an uninstrumented function (e.g. a libc callback or a signal handler)"
                    .to_string(),
            };
            return Err(RewriteError::NoSite {
                depth,
                pc: st.pc,
                place: place(),
                why,
            });
        };
        let func = bin
            .meta
            .function(site.function)
            .ok_or_else(|| RewriteError::Value {
                depth,
                function: format!("{:#x}", site.function),
                why: "no such function in the metadata".into(),
            })?;
        // One record layout per function; this site fills the slots of the
        // values live at it, the others stay zero.
        let (offsets, size) = record_layout(&func.record);
        let mut values = vec![0u8; size];
        let fsite = &func.sites[site.index as usize];
        if fsite.kind.is_poll() && depth != 0 {
            return Err(RewriteError::Value {
                depth,
                function: func.name.clone(),
                why: "a migration-point call is not the innermost frame".into(),
            });
        }
        // The innermost frame: a poll with few values handed its record to
        // the migration point in a buffer (first argument register); one
        // with many has them located like a call's, in the registers the
        // migration point saved or in its frame.
        // A poll without values has no record to read either way (a resume
        // copy's polls all pass deopt operands: its entry poll, say).
        let buffered = fsite.kind.is_poll() && site.locations.is_empty() && !fsite.slots.is_empty();
        if buffered {
            let addr = st.get64(isa.info().dwarf_arg0).unwrap_or(0);
            let bytes = mem.read(addr, size).map_err(|e| RewriteError::Value {
                depth,
                function: func.name.clone(),
                why: format!("its frame record: {e}"),
            })?;
            values.copy_from_slice(&bytes);
            // Only the site's own values are meaningful; keep the rest zero.
            let mut keep = vec![0u8; size];
            for &slot in &fsite.slots {
                let (ty, off) = (func.record[slot as usize], offsets[slot as usize]);
                keep[off..off + ty.size()].copy_from_slice(&values[off..off + ty.size()]);
                if ty == ValueType::I1 {
                    keep[off] &= 1;
                }
            }
            values = keep;
        }
        let slots = if buffered { &[][..] } else { &fsite.slots[..] };
        for (loc, &slot) in site.locations.iter().zip(slots) {
            let (ty, off) = (func.record[slot as usize], offsets[slot as usize]);
            read_value(loc, ty, &st, &mem, &mut values[off..off + ty.slot_size()]).map_err(
                |why| RewriteError::Value {
                    depth,
                    function: func.name.clone(),
                    why,
                },
            )?;
        }
        if isa.info().long_double == LongDouble::X87 {
            x87_to_snapshot(&func.record, &offsets, &mut values);
        }
        va_lists_to_snapshot(
            isa,
            &func.record,
            &offsets,
            &fsite.slots,
            &mut values,
            &mem,
            &native_stacks,
        )
        .map_err(|why| RewriteError::Value {
            depth,
            function: func.name.clone(),
            why,
        })?;
        // A restore enters the function's resume copy directly (its code
        // without one), so that is what the record names.
        let entry = if func.resume != 0 {
            func.resume
        } else {
            func.addr
        };
        frames.push(Frame {
            function: entry,
            site: site.index,
            values,
        });
        if site.function == bin.meta.layout.main {
            break;
        }
        st = unwinder
            .step(&st, &mem)
            .map_err(|error| RewriteError::Unwind { depth, error })?;
    }
    frames.reverse();
    Ok(Image {
        snapshot: true,
        isa,
        build_id: dump.build_id,
        regs: None,
        regions: snapshot_regions(dump),
        tls: dump.tls,
        fds: dump.fds.clone(),
        misc: dump.misc.clone(),
        signals: dump.signals.clone(),
        frames,
        memory: None,
    })
}

/// The register state at the innermost site: the migration-point stub saved
/// every register, and preserves them all, so they are the site's values.
fn initial_state(isa: Isa, regs: &hc_metadata::image::Regs) -> RegState {
    let info = isa.info();
    let mut r = vec![None; MAX_DWARF_REG];
    let ngpr = if info.return_address_on_stack { 16 } else { 32 };
    for (i, v) in regs.gpr.iter().take(ngpr).enumerate() {
        r[i] = Some(*v as u128);
    }
    for (i, v) in regs.vec.iter().take(info.vec_count as usize).enumerate() {
        r[info.dwarf_vec_base as usize + i] = Some(u128::from_le_bytes(*v));
    }
    r[info.dwarf_sp as usize] = Some(regs.sp as u128);
    RegState {
        regs: r,
        pc: regs.pc,
        sp: regs.sp,
    }
}

/// Memory to restore: everything but the native stack, of which only the
/// argv/env area (when it is still on this stack) travels, as data.
fn snapshot_regions<'a>(dump: &Image<'a>) -> Vec<Region<'a>> {
    let mut out = Vec::new();
    for r in &dump.regions {
        if r.kind != RegionKind::Stack {
            out.push(r.clone());
            continue;
        }
        let (start, end) = (dump.misc.argv_start, dump.misc.stack_end);
        if start >= r.addr && start < r.addr + r.data.len() as u64 && end > start {
            let page = start & !0xfff;
            let from = page.max(r.addr);
            let off = (from - r.addr) as usize;
            let len = ((end.min(r.addr + r.data.len() as u64)) - from) as usize;
            out.push(Region {
                addr: from,
                map_len: len as u64,
                prot: r.prot,
                kind: RegionKind::Argv,
                data: &r.data[off..off + len],
            });
        }
    }
    out
}
