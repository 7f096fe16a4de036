//! Shadow stack for allocas that survive optimization (DESIGN.md 3.4).
//!
//! ```text
//!   __hc_ssp (thread-local) ──► next free byte
//!   ┌──────────────────────┐ ◄── frame = __hc_ssp at entry (16-aligned;
//!   │ alloca 0 @ offset 0  │      over-aligned frames round it up)
//!   │ alloca 1 @ offset 16 │
//!   │ ...                  │
//!   └──────────────────────┘ ◄── __hc_ssp while the function runs
//!   dynamic allocas (VLAs) bump __hc_ssp further; `ret` restores the base.
//! ```
//! The region has the same layout in every variant (same IR allocas, same
//! LP64 little-endian layout), so it migrates byte for byte and pointers into
//! it stay valid.

use super::frame::{self, AgreedFrame, SlotShape};
use super::Runtime;
use crate::ir::{Builder, Ctx, Val};
use inkwell::llvm_sys::LLVMOpcode;
use std::collections::HashMap;

/// What the shadow-stack rewrite left in a function.
#[derive(Default)]
pub struct ShadowFrame {
    /// The frame's base pointer (what `ret` restores `__hc_ssp` to).
    pub base: Option<Val>,
    /// The pointer the static allocas are offsets from.
    pub frame: Option<Val>,
    /// Each former static alloca: its replacement `gep frame, offset`.
    pub slots: HashMap<Val, u64>,
    /// (offset, size) of every static alloca, for the cross-ISA layout check.
    pub layout: Vec<(u64, u64)>,
    /// Every static alloca as this variant has it (before any widening).
    pub shapes: Vec<SlotShape>,
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Rewrites `f`'s allocas onto the shadow stack; `agreed` widens slots to
/// what consensus decided (see `frame`).
pub fn apply(cx: &Ctx, rt: &Runtime, f: Val, agreed: Option<&AgreedFrame>) -> ShadowFrame {
    let mut out = ShadowFrame::default();
    let entry = f.entry();
    let insts: Vec<Val> = f.blocks().iter().flat_map(|b| b.instructions()).collect();
    let allocas: Vec<Val> = insts.iter().copied().filter(|i| i.is_alloca()).collect();
    // Lifetime markers must name allocas; with the allocas gone they go too.
    for &i in &insts {
        if i.is_call() && i.called_operand().name().starts_with("llvm.lifetime.") {
            i.erase();
        }
    }
    let stack_ops: Vec<Val> = insts
        .iter()
        .copied()
        .filter(|i| {
            i.is_call() && {
                let n = i.called_operand().name();
                n.starts_with("llvm.stacksave") || n.starts_with("llvm.stackrestore")
            }
        })
        .collect();
    if allocas.is_empty() && stack_ops.is_empty() {
        return out;
    }
    let b = Builder::new(cx);
    let i64t = cx.i64();
    let statics = frame::static_allocas(f);
    let dynamics: Vec<Val> = allocas
        .iter()
        .copied()
        .filter(|a| !statics.contains(a))
        .collect();
    out.shapes = statics.iter().map(|a| frame::shape(cx, *a)).collect();
    let agreed = agreed.filter(|g| g.slots.len() == statics.len());

    // Layout of the static part.
    let mut off = 0u64;
    let mut max_align = 16u64;
    let mut offsets = Vec::new();
    for (k, a) in statics.iter().enumerate() {
        let (mut size, mut align) = frame::own_size_align(cx, *a);
        if let Some(g) = agreed {
            size = size.max(g.slots[k].0);
            align = align.max(g.slots[k].1);
        }
        max_align = max_align.max(align);
        off = align_up(off, align);
        offsets.push(off);
        out.layout.push((off, size));
        off += size.max(1);
    }
    let frame_size = align_up(off, 16);

    // Before the first instruction that stays: the allocas are erased below.
    let anchor = entry
        .instructions()
        .into_iter()
        .find(|i| !i.is_alloca())
        .expect("the entry block ends in a terminator");
    b.before(anchor);
    let base = b.load(cx.ptr(), rt.ssp, "hc.ssp.base");
    let frame = if max_align > 16 {
        let p = b.ptr_to_int(base, i64t, "");
        let p = b.add(p, cx.const_int(i64t, max_align - 1), "");
        let p = b.and(p, cx.const_int(i64t, !(max_align - 1)), "");
        b.int_to_ptr(p, cx.ptr(), "hc.frame")
    } else {
        base
    };
    if frame_size > 0 || max_align > 16 {
        let top = b.gep_i8(cx, frame, cx.const_int(i64t, frame_size), "hc.ssp.top");
        b.store(top, rt.ssp);
    }
    for (a, o) in statics.iter().zip(offsets) {
        let name = a.name();
        let g = b.gep_i8(cx, frame, cx.const_int(i64t, o), &name);
        a.replace_all_uses_with(g);
        a.erase();
        out.slots.insert(g, o);
    }
    for a in dynamics {
        b.before(a);
        let ty = a.allocated_type();
        let elem = cx.const_int(i64t, cx.abi_size(ty));
        let count = b.zext(a.operand(0), i64t, "");
        let size = b.mul(count, elem, "");
        let size = b.add(size, cx.const_int(i64t, 15), "");
        let size = b.and(size, cx.const_int(i64t, !15), "");
        let align = (a.alignment() as u64).max(16);
        let cur = b.load(cx.ptr(), rt.ssp, "");
        let p = b.ptr_to_int(cur, i64t, "");
        let p = b.add(p, cx.const_int(i64t, align - 1), "");
        let p = b.and(p, cx.const_int(i64t, !(align - 1)), "");
        let p = b.int_to_ptr(p, cx.ptr(), "hc.vla");
        let top = b.gep_i8(cx, p, size, "");
        b.store(top, rt.ssp);
        let name = a.name();
        a.replace_all_uses_with(p);
        a.erase();
        p.set_name(&name);
    }
    for op in stack_ops {
        b.before(op);
        if op.called_operand().name().starts_with("llvm.stacksave") {
            let v = b.load(cx.ptr(), rt.ssp, "hc.stacksave");
            op.replace_all_uses_with(v);
        } else {
            b.store(op.operand(0), rt.ssp);
        }
        op.erase();
    }
    for blk in f.blocks() {
        if let Some(t) = blk.terminator() {
            if t.opcode() == Some(LLVMOpcode::LLVMRet) {
                b.before(t).store(base, rt.ssp);
            }
        }
    }
    out.base = Some(base);
    out.frame = Some(frame);
    out
}
