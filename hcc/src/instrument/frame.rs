//! Stack slots whose type differs between ISAs (DESIGN.md 3.4).
//!
//! The shadow stack migrates byte for byte, so every variant must lay a
//! function's static allocas out alike. Most allocas have one LP64 type on
//! every ISA; a few do not — `struct stat` (144 bytes on x86_64, 128 on
//! aarch64), `va_list`, `long double`. Consensus gives such a slot the
//! larger size and alignment in every variant, so the offsets agree, and then
//! lets the function migrate only at sites where the slot's contents are dead
//! (nothing reads them before they are written anew): bytes one ISA wrote
//! mean nothing to the other, but bytes nobody reads do no harm. bzip2's
//! `compress` stats its input before the long `compressStream` call and never
//! looks at the buffer again.

use crate::ir::{Block, Ctx, Ty, Val};
use inkwell::llvm_sys::{LLVMOpcode, LLVMTypeKind};
use std::collections::{HashMap, HashSet};

/// One static alloca as one variant lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotShape {
    pub size: u64,
    pub align: u64,
    /// The allocated type, spelled out structurally (struct names differ
    /// less than their bodies do).
    pub ty: String,
}

/// What consensus decided for a function whose slots differ between ISAs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgreedFrame {
    /// (size, alignment) of every static slot, the largest over the ISAs.
    pub slots: Vec<(u64, u64)>,
    /// Slots whose type differs: their contents must be dead at every site.
    pub differing: Vec<usize>,
}

/// The allocas the shadow stack lays out statically, in layout order.
pub fn static_allocas(f: Val) -> Vec<Val> {
    static_allocas_in(f.entry())
}

/// The allocas of constant size in block `entry`.
pub fn static_allocas_in(entry: crate::ir::Block) -> Vec<Val> {
    entry
        .instructions()
        .into_iter()
        .filter(|a| a.is_alloca() && a.operand(0).const_int_value().is_some())
        .collect()
}

/// Size and alignment of a static alloca in this variant. Alignment is at
/// least 16: front ends align arrays per ISA (x86_64 gives arrays of 16+
/// bytes 16, aarch64 their element's), and the slots must agree.
pub fn own_size_align(cx: &Ctx, a: Val) -> (u64, u64) {
    let ty = a.allocated_type();
    let count = a.operand(0).const_int_value().unwrap_or(1);
    let size = cx.abi_size(ty) * count;
    let align = (a.alignment() as u64).max(cx.abi_align(ty) as u64).max(16);
    (size, align)
}

pub fn shape(cx: &Ctx, a: Val) -> SlotShape {
    let (size, align) = own_size_align(cx, a);
    let count = a.operand(0).const_int_value().unwrap_or(1);
    let mut ty = structural(a.allocated_type(), 0);
    if count != 1 {
        ty = format!("{count} x {ty}");
    }
    SlotShape { size, align, ty }
}

/// `ty` with every named struct replaced by its body.
fn structural(ty: Ty, depth: u32) -> String {
    use LLVMTypeKind::*;
    match ty.kind() {
        LLVMStructTypeKind if depth < 8 => {
            let body: Vec<String> = ty
                .struct_elements()
                .into_iter()
                .map(|e| structural(e, depth + 1))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        LLVMArrayTypeKind => format!("[{} x {}]", ty.array_len(), structural(ty.element(), depth)),
        _ => ty.print(),
    }
}

/// A readable name for the slot's type in diagnostics: `struct stat`.
pub fn describe(a: Val) -> String {
    let ty = a.allocated_type();
    match ty.struct_name() {
        Some(name) => {
            // LLVM numbers same-named struct types apart: `struct.stat.1`.
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            let name = name.strip_prefix("struct.").unwrap_or(name);
            format!("struct {name}")
        }
        None => ty.print(),
    }
}

/// How an instruction touches a slot's contents.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Touch {
    Read,
    /// lifetime.start/end: the contents before it are dead after it.
    Kill,
}

/// Where `alloca`'s contents are read and killed, or `None` when its address
/// escapes where this cannot follow it (stored, converted to an integer,
/// handed to a call that may keep it).
fn touches(alloca: Val) -> Option<HashMap<Val, Touch>> {
    let mut out = HashMap::new();
    let mut seen = HashSet::from([alloca]);
    let mut work = vec![alloca];
    while let Some(p) = work.pop() {
        for (user, idx) in p.uses() {
            match user.opcode() {
                Some(
                    LLVMOpcode::LLVMGetElementPtr
                    | LLVMOpcode::LLVMBitCast
                    | LLVMOpcode::LLVMAddrSpaceCast
                    | LLVMOpcode::LLVMPHI
                    | LLVMOpcode::LLVMSelect,
                ) => {
                    if seen.insert(user) {
                        work.push(user);
                    }
                }
                Some(LLVMOpcode::LLVMLoad) => {
                    out.insert(user, Touch::Read);
                }
                // Storing into the slot is no read; storing its address is an escape.
                Some(LLVMOpcode::LLVMStore) if idx == 1 => {}
                Some(LLVMOpcode::LLVMICmp) => {}
                Some(LLVMOpcode::LLVMCall) => {
                    let name = user.called_operand().name();
                    // va_start and va_copy fill a `va_list` whole; va_end
                    // does nothing with it.
                    let starts = idx == 0
                        && (name.starts_with("llvm.va_start") || name.starts_with("llvm.va_copy"));
                    if name.starts_with("llvm.lifetime.") || starts || fills(&name, idx) {
                        out.insert(user, Touch::Kill);
                        continue;
                    }
                    if name.starts_with("llvm.va_end") {
                        continue;
                    }
                    if name.starts_with("llvm.va_copy") {
                        out.insert(user, Touch::Read);
                        continue;
                    }
                    // A write-only intrinsic destination is no read.
                    let writes_only = idx == 0
                        && (name.starts_with("llvm.memset.")
                            || name.starts_with("llvm.memcpy.")
                            || name.starts_with("llvm.memmove."));
                    if idx >= user.num_args() || !captures_nothing(user, idx) {
                        return None;
                    }
                    if !writes_only {
                        out.insert(user, Touch::Read);
                    }
                }
                _ => return None,
            }
        }
    }
    Some(out)
}

/// Whether libc function `name` fills its argument `i` (an ISA-specific
/// struct) whole without reading it or keeping its address.
fn fills(name: &str, i: u32) -> bool {
    let name = super::neutral::wrapper(name).unwrap_or(name);
    matches!(
        (name, i),
        ("__hc_stat" | "__hc_lstat" | "__hc_fstat", 1) | ("__hc_fstatat", 2)
    )
}

/// libc functions that call back into the program (so LLVM does not mark
/// their pointers `captures(none)`) but keep no pointer after they return.
const NOCAPTURE_LIBC: &[&str] = &["bsearch", "qsort", "qsort_r"];

/// Whether call `c` is known not to keep argument `i` (LLVM's
/// `captures(none)`, which it infers for libc functions such as stat).
fn captures_nothing(c: Val, i: u32) -> bool {
    let callee = c.called_operand();
    if callee.is_function()
        && callee.is_declaration()
        && NOCAPTURE_LIBC.contains(&callee.name().as_str())
    {
        return true;
    }
    let kind = Ctx::enum_kind("captures");
    let at = crate::ir::param_index(i);
    c.call_site_enum_attr_value(at, kind)
        .or_else(|| {
            let callee = c.called_operand();
            callee
                .is_function()
                .then(|| callee.enum_attr_value(at, kind))
                .flatten()
        })
        .is_some_and(|v| v == 0)
}

/// The first of `points` after which `alloca`'s contents may still be read
/// (a read reachable from the point, the point itself included, without a
/// lifetime marker in between), or `None` when they are dead at all of them.
/// An escaping slot is read everywhere.
pub fn read_after(alloca: Val, points: &[Val], blocks: &[Block]) -> Option<Val> {
    let Some(touch) = touches(alloca) else {
        return points.first().copied();
    };
    let index: HashMap<Block, usize> = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    // Per block: the first touch from its top, if any.
    let first_touch = |b: Block| -> Option<Touch> {
        b.instructions()
            .into_iter()
            .find_map(|i| touch.get(&i).copied())
    };
    let mut from_top: HashMap<usize, Option<Touch>> = HashMap::new();
    for &p in points {
        // The rest of p's own block, p included.
        let mut cur = Some(p);
        let mut verdict = None;
        while let Some(i) = cur {
            if let Some(t) = touch.get(&i) {
                verdict = Some(*t);
                break;
            }
            cur = i.next();
        }
        let read = match verdict {
            Some(Touch::Read) => true,
            Some(Touch::Kill) => false,
            None => {
                // Breadth-first over the blocks after it.
                let mut seen = HashSet::new();
                let mut work: Vec<usize> =
                    p.block().successors().iter().map(|s| index[s]).collect();
                let mut found = false;
                while let Some(b) = work.pop() {
                    if !seen.insert(b) {
                        continue;
                    }
                    let t = *from_top.entry(b).or_insert_with(|| first_touch(blocks[b]));
                    match t {
                        Some(Touch::Read) => {
                            found = true;
                            break;
                        }
                        Some(Touch::Kill) => {}
                        None => work.extend(blocks[b].successors().iter().map(|s| index[s])),
                    }
                }
                found
            }
        };
        if read {
            return Some(p);
        }
    }
    None
}
