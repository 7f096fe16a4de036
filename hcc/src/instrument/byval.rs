//! Large structs passed by value travel alike on every ISA (DESIGN.md 3.1:
//! the variants' frames must agree).
//!
//! x86_64's C ABI copies such a struct into the callee's argument area
//! (`byval`); aarch64's passes a pointer to a copy the caller makes in its
//! own frame. So the caller had a stack slot more per such call on aarch64,
//! and consensus gave up on it ("optimization left 1 stack slots for x86_64
//! and 3 for aarch64"): lz4's `LZ4IO_compressFilename`, which passes its
//! resources struct by value and is on the stack for the whole run, could
//! not migrate at all. A function only its own translation unit calls
//! (internal linkage, every use a direct call) has no ABI to keep, so its
//! byval parameters take aarch64's form, as clang writes it there: the
//! caller copies the struct into a slot of its own, live around the call,
//! and passes its address. On aarch64 nothing is byval and nothing changes.

use crate::ir::{param_index, Builder, Ctx, Ty, Val};
use inkwell::llvm_sys::LLVMLinkage;

/// Rewrites the byval parameters of `cx`'s internal functions, and their
/// calls, to pointers to the caller's copy.
pub fn pass_by_pointer(cx: &Ctx) {
    let byval = Ctx::enum_kind("byval");
    let b = Builder::new(cx);
    for f in cx.functions() {
        if f.is_declaration()
            || !matches!(
                f.linkage(),
                LLVMLinkage::LLVMInternalLinkage | LLVMLinkage::LLVMPrivateLinkage
            )
        {
            continue;
        }
        let params: Vec<(u32, Ty)> = (0..f.params().len() as u32)
            .filter_map(|i| f.type_attr_at(param_index(i), byval).map(|t| (i, t)))
            .collect();
        if params.is_empty() {
            continue;
        }
        let uses = f.uses();
        let direct = |&(user, idx): &(Val, u32)| {
            user.is_call() && user.called_operand() == f && idx >= user.num_args()
        };
        if !uses.iter().all(direct) {
            continue;
        }
        for (call, _) in uses {
            copy_arguments(cx, &b, call, &params);
        }
        for &(i, _) in &params {
            f.remove_enum_attr_at(param_index(i), byval);
            f.add_attribute_at(param_index(i), cx.enum_attr("dead_on_return"));
        }
    }
}

/// At `call`, passes each of `params` as the address of a fresh copy in
/// the caller's frame, with the lifetime markers clang gives such a copy.
fn copy_arguments(cx: &Ctx, b: &Builder, call: Val, params: &[(u32, Ty)]) {
    let byval = Ctx::enum_kind("byval");
    let caller = call.block().parent();
    let ptr = cx.ptr();
    let memcpy = cx.intrinsic("llvm.memcpy", &[ptr, ptr, cx.i64()]);
    let start = cx.intrinsic("llvm.lifetime.start", &[ptr]);
    let end = cx.intrinsic("llvm.lifetime.end", &[ptr]);
    for &(i, ty) in params {
        let arg = call.operand(i);
        match slot_position(caller, call) {
            Some(next) => b.before(next),
            None => b.at_end(caller.entry()),
        };
        let copy = b.alloca(ty, "hc.byval");
        let align = call
            .call_site_enum_attr_value(param_index(i), Ctx::enum_kind("align"))
            .unwrap_or(0)
            .max(cx.abi_align(ty) as u64) as u32;
        copy.set_alignment(align);
        b.before(call);
        b.call(start.function_type(), start, &[copy], "");
        let size = cx.const_int(cx.i64(), cx.abi_size(ty));
        let volatile = cx.const_int(cx.i1(), 0);
        b.call(
            memcpy.function_type(),
            memcpy,
            &[copy, arg, size, volatile],
            "",
        );
        call.set_operand(i, copy);
        call.remove_call_site_enum_attr(param_index(i), byval);
        call.add_call_site_attribute(param_index(i), cx.enum_attr("dead_on_return"));
        if let Some(next) = call.next() {
            b.before(next);
            b.call(end.function_type(), end, &[copy], "");
        }
    }
}

/// Where the copy for `call` goes among the caller's stack slots: before
/// the first one clang created after emitting the call (its first use comes
/// later in the function), as clang places the copy on aarch64. The
/// variants' slots pair up in this order, so a copy placed elsewhere would
/// pair one variant's slot with another slot of the other.
fn slot_position(caller: Val, call: Val) -> Option<Val> {
    let order: std::collections::HashMap<Val, usize> = caller
        .blocks()
        .iter()
        .flat_map(|blk| blk.instructions())
        .enumerate()
        .map(|(n, i)| (i, n))
        .collect();
    let at = order[&call];
    let entry = caller.entry().instructions();
    let slots = entry.iter().take_while(|i| i.is_alloca());
    slots
        .copied()
        .find(|slot| {
            slot.uses()
                .iter()
                .filter_map(|(user, _)| order.get(user))
                .min()
                .is_some_and(|&first| first > at)
        })
        .or_else(|| entry.iter().copied().find(|i| !i.is_alloca()))
}
