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
use inkwell::llvm_sys::{LLVMLinkage, LLVMOpcode, LLVMTypeKind};

/// External functions that take a struct by value keep that ABI for other
/// translation units, but their body moves to an internal function
/// (`f.hc.local`) that this file's own calls go to, so the rewrites below
/// give it the struct by address on every ISA; `f` itself becomes a
/// wrapper that calls it (and is what other files call and what `&f`
/// names, one address in every file). Without this, only functions with
/// internal linkage agreed: dc's `dc_push(dc_data)` reached the IR as
/// (i32, ptr) on x86_64 and [2 x i64] on aarch64, and the three functions
/// of bc's `dc/stack.c` that inline it folded a type check on one ISA
/// only; lz4's `LZ4F_createCDict_advanced(LZ4F_CustomMem, ...)` loaded its
/// allocator once from x86_64's byval copy but after every call from
/// aarch64's pointer. Functions other files may replace (weak, inline
/// definitions) keep their calls: those must reach the replacement.
pub fn split_external(cx: &Ctx, layouts: &StructLayouts) {
    let b = Builder::new(cx);
    for f in cx.functions() {
        // Which functions, the primary ISA decides for all (`layouts`): an
        // aarch64 `va_list` is a struct passed by address, x86_64's a
        // pointer, and gnulib's `version_etc_va` was split on one ISA only.
        let Some(sizes) = layouts.get(&f.name()) else {
            continue;
        };
        if f.is_declaration()
            || f.function_type().is_vararg_fn()
            || f.uses().iter().any(|(u, _)| u.is_call() && u.is_musttail())
        {
            continue;
        }
        let ty = f.function_type();
        let nparams = f.params().len() as u32;
        let body = cx.function_like(f, &format!("{}.hc.local", f.name()), ty, nparams);
        body.set_linkage(LLVMLinkage::LLVMInternalLinkage);
        cx.move_blocks(f, body);
        for (old, new) in f.params().into_iter().zip(body.params()) {
            old.replace_all_uses_with(new);
        }
        f.move_subprogram_to(body);
        // This file's calls (the body's own recursion too) go to the body;
        // other uses (its address) keep naming `f`.
        for (user, idx) in f.uses() {
            if user.is_call() && user.called_operand() == f && idx >= user.num_args() {
                user.set_operand(idx, body);
            }
        }
        let entry = cx.append_block(f, "entry");
        b.at_end(entry);
        let call = b.call(ty, body, &f.params(), "");
        call.set_call_conv(f.function_call_conv());
        for i in 0..nparams {
            for a in f.attributes_at(param_index(i)) {
                call.add_call_site_attribute(param_index(i), crate::ir::Attr(a));
            }
        }
        // The return first: the copies' lifetimes end between it and the call.
        if ty.return_type().is_void() {
            b.ret_void();
        } else {
            b.ret(call);
        }
        // The body gets its structs in a slot of the wrapper's frame, on
        // every ISA: x86_64's `byval` argument lies in the caller's native
        // frame, which a pointer to would outlive on the other ISA (after a
        // migration in the body, a restore on aarch64 read it at random, or
        // crashed); aarch64's is the address of the caller's copy, copied
        // too so both wrappers have the slot. In bytes, as aarch64's copy
        // must be (its pointer has no type): slots of one shape. Volatile:
        // MemCpyOpt would otherwise pass the original on to a body that
        // only reads it.
        let copy_in = |i: u32, size: u64, align: u32| {
            let bytes = crate::ir::array_type(cx.i8(), size);
            let copy = slot_around(cx, &b, call, bytes, align, "hc.byval");
            volatile_memcpy(cx, &b, copy, call.operand(i), size);
            call.set_operand(i, copy);
        };
        let (dead, byval) = (Ctx::enum_kind("dead_on_return"), Ctx::enum_kind("byval"));
        for i in 0..nparams {
            if let Some(ty) = f.type_attr_at(param_index(i), byval) {
                copy_in(i, cx.abi_size(ty), param_align(cx, f, i, ty));
            }
        }
        let indirect: Vec<u32> = (0..nparams)
            .filter(|&i| f.enum_attr_value(param_index(i), dead).is_some())
            .collect();
        // The primary ISA's `byval` types say how large each struct is: an
        // address does not. (A count that differs, such as a struct one ABI
        // passes in memory and the other in registers, leaves them as they
        // are: the wrapper then differs, not the body.)
        if sizes.len() == indirect.len() {
            for (&i, &(size, align)) in indirect.iter().zip(sizes) {
                copy_in(i, size, align);
            }
        }
        // Inlined, the wrapper would hold the body in each ISA's own shape.
        call.add_call_site_attribute(crate::ir::FUNCTION_INDEX, cx.enum_attr("noinline"));
        call.set_notail();
    }
}

/// The external functions of a translation unit that take a struct by
/// value on the primary ISA, each with the size and alignment of the ones
/// it takes `byval`, in order (`split_external` copies aarch64's alike).
pub type StructLayouts = std::collections::BTreeMap<String, Vec<(u64, u32)>>;

/// `StructLayouts` from the primary ISA's bitcode.
pub fn struct_layouts(bitcode: &[u8]) -> Result<StructLayouts, String> {
    let ctx = inkwell::context::Context::create();
    let buf =
        inkwell::memory_buffer::MemoryBuffer::create_from_memory_range_copy(bitcode, "layouts");
    let module = inkwell::module::Module::parse_bitcode_from_buffer(&buf, &ctx)
        .map_err(|e| e.to_string())?;
    let cx = Ctx::new(&module);
    let byval = Ctx::enum_kind("byval");
    let mut out = StructLayouts::new();
    for f in cx.functions() {
        if f.is_declaration() || f.linkage() != LLVMLinkage::LLVMExternalLinkage {
            continue;
        }
        let list: Vec<(u64, u32)> = (0..f.params().len() as u32)
            .filter_map(|i| {
                let ty = f.type_attr_at(param_index(i), byval)?;
                Some((cx.abi_size(ty), param_align(&cx, f, i, ty)))
            })
            .collect();
        if !list.is_empty() || !coerced_params(&cx, f).is_empty() {
            out.insert(f.name(), list);
        }
    }
    Ok(out)
}

/// The alignment of a struct of type `ty` passed with `align` attribute
/// `attr` (ABI for `byval`: it places the copy): at least the type's.
fn struct_align(cx: &Ctx, attr: Option<u64>, ty: Ty) -> u32 {
    attr.unwrap_or(0).max(cx.abi_align(ty) as u64) as u32
}

/// The alignment of `f`'s struct parameter `i` of type `ty`.
fn param_align(cx: &Ctx, f: Val, i: u32, ty: Ty) -> u32 {
    struct_align(
        cx,
        f.enum_attr_value(param_index(i), Ctx::enum_kind("align")),
        ty,
    )
}

/// Rewrites the byval parameters of `cx`'s internal functions, and their
/// calls, to pointers to the caller's copy.
pub fn pass_by_pointer(cx: &Ctx) {
    let byval = Ctx::enum_kind("byval");
    let b = Builder::new(cx);
    for f in cx.functions() {
        let params: Vec<(u32, Ty)> = (0..f.params().len() as u32)
            .filter_map(|i| f.type_attr_at(param_index(i), byval).map(|t| (i, t)))
            .collect();
        if params.is_empty() {
            continue;
        }
        let Some(calls) = rewritable_calls(f) else {
            continue;
        };
        for call in calls {
            copy_arguments(cx, &b, call, &params);
        }
        for &(i, _) in &params {
            f.remove_enum_attr_at(param_index(i), byval);
            f.add_attribute_at(param_index(i), cx.enum_attr("dead_on_return"));
        }
    }
}

/// Calls that keep passing a struct `byval` (to another file's function,
/// or through a pointer) get it from a copy in the caller's frame, as
/// aarch64's calls do (the address of a copy the caller makes): x86_64's
/// caller had one stack slot fewer per such call and consensus gave it up
/// ("optimization left 1 stack slots for x86_64 and 2 for aarch64"). The
/// callee still gets its own copy, from that one; the ABI is the same.
pub fn copy_before_byval_calls(cx: &Ctx) {
    let byval = Ctx::enum_kind("byval");
    let b = Builder::new(cx);
    for f in cx.functions() {
        for call in f.blocks().iter().flat_map(|blk| blk.instructions()) {
            if !call.is_call() || call.is_musttail() {
                continue;
            }
            for i in 0..call.num_args() {
                if let Some(ty) = call.call_site_type_attr(param_index(i), byval) {
                    copy_argument(cx, &b, call, i, ty);
                }
            }
        }
    }
}

/// The calls of `f`, when it has no ABI to keep: defined here with
/// internal linkage, every use a direct call, and none a guaranteed tail
/// call (`musttail`), which cannot pass the address of a slot in its
/// caller's frame as both rewrites here make calls do (the frame is gone
/// when the callee runs: a large struct's tail recursion computed garbage,
/// a small one's ran out of stack, and at -O0 the IR was invalid).
fn rewritable_calls(f: Val) -> Option<Vec<Val>> {
    if f.is_declaration()
        || !matches!(
            f.linkage(),
            LLVMLinkage::LLVMInternalLinkage | LLVMLinkage::LLVMPrivateLinkage
        )
    {
        return None;
    }
    let mut calls = Vec::new();
    for (user, idx) in f.uses() {
        let direct = user.is_call() && user.called_operand() == f && idx >= user.num_args();
        if !direct || user.is_musttail() {
            return None;
        }
        calls.push(user);
    }
    Some(calls)
}

/// At `call`, passes each of `params` as the address of a fresh copy in
/// the caller's frame, with the lifetime markers clang gives such a copy.
fn copy_arguments(cx: &Ctx, b: &Builder, call: Val, params: &[(u32, Ty)]) {
    let byval = Ctx::enum_kind("byval");
    for &(i, ty) in params {
        if !filled_for(call.operand(i), call) {
            copy_argument(cx, b, call, i, ty);
        }
        call.remove_call_site_enum_attr(param_index(i), byval);
        call.add_call_site_attribute(param_index(i), cx.enum_attr("dead_on_return"));
    }
}

/// Argument `i` of `call`, a struct of type `ty`, becomes a fresh copy of
/// it in the caller's frame (`slot_around`).
fn copy_argument(cx: &Ctx, b: &Builder, call: Val, i: u32, ty: Ty) {
    let attr = call.call_site_enum_attr_value(param_index(i), Ctx::enum_kind("align"));
    let copy = slot_around(cx, b, call, ty, struct_align(cx, attr, ty), "hc.byval");
    memcpy(cx, b, copy, call.operand(i), cx.abi_size(ty));
    call.set_operand(i, copy);
}

/// Whether `arg` is a slot filled only to be passed to `call` (a wrapper's
/// copy, `split_external`): its own copy already, which needs no other.
fn filled_for(arg: Val, call: Val) -> bool {
    arg.is_alloca()
        && arg.uses().iter().all(|&(user, idx)| {
            user == call
                || super::shadow::is_lifetime_marker(user)
                || (user.is_call()
                    && user.called_operand().name().starts_with("llvm.memcpy")
                    && idx == 0)
        })
}

/// A fresh slot of type `ty` in `call`'s caller (placed by
/// `slot_position`), alive from just before `call` to just after it, with
/// the lifetime markers clang gives such a copy; the builder is left
/// before `call`, where the slot is to be filled.
fn slot_around(cx: &Ctx, b: &Builder, call: Val, ty: Ty, align: u32, name: &str) -> Val {
    let caller = call.block().parent();
    let ptr = cx.ptr();
    let start = cx.intrinsic("llvm.lifetime.start", &[ptr]);
    let end = cx.intrinsic("llvm.lifetime.end", &[ptr]);
    match slot_position(caller, call) {
        Some(next) => b.before(next),
        None => b.at_end(caller.entry()),
    };
    let slot = b.alloca(ty, name);
    slot.set_alignment(align);
    if let Some(next) = call.next() {
        b.before(next);
        b.call(end.function_type(), end, &[slot], "");
    }
    b.before(call);
    b.call(start.function_type(), start, &[slot], "");
    slot
}

/// `size` bytes from `from` to `to`, at the builder.
fn memcpy(cx: &Ctx, b: &Builder, to: Val, from: Val, size: u64) {
    copy_bytes(cx, b, to, from, size, false);
}

/// `memcpy` that no optimization removes or forwards.
fn volatile_memcpy(cx: &Ctx, b: &Builder, to: Val, from: Val, size: u64) {
    copy_bytes(cx, b, to, from, size, true);
}

fn copy_bytes(cx: &Ctx, b: &Builder, to: Val, from: Val, size: u64, volatile: bool) {
    let ptr = cx.ptr();
    let f = cx.intrinsic("llvm.memcpy", &[ptr, ptr, cx.i64()]);
    let n = cx.const_int(cx.i64(), size);
    let volatile = cx.const_int(cx.i1(), volatile as u64);
    b.call(f.function_type(), f, &[to, from, n, volatile], "");
}

/// Where the copy for `call` goes among the caller's stack slots: after
/// the last one clang created before emitting the call (its first use comes
/// before it), as clang places the copy on aarch64. The variants' slots
/// pair up in this order, so a copy placed elsewhere would pair one
/// variant's slot with another slot of the other. (Not "before the first
/// slot used after the call": clang makes the return value's slot first
/// and uses it last, and libyaml's scanner had its `yaml_mark_t` copies
/// before all its locals on x86_64, after them on aarch64.)
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
    let slots: Vec<Val> = entry
        .iter()
        .copied()
        .take_while(|i| i.is_alloca())
        .collect();
    let used_before = |slot: &Val| {
        slot.uses()
            .iter()
            .filter_map(|(user, _)| order.get(user))
            .min()
            .is_some_and(|&first| first < at)
    };
    match slots.iter().rposition(used_before) {
        Some(last) => slots.get(last + 1).copied(),
        None => slots.first().copied(),
    }
    .or_else(|| entry.iter().copied().find(|i| !i.is_alloca()))
}

/// A struct parameter as one ISA's calling convention split it: the
/// parameters the callee's prologue stores into one stack slot.
struct Coerced {
    /// The callee's slot (an alloca of the struct's type).
    slot: Val,
    /// Parameter indices, in order, each with its prologue store.
    parts: Vec<(u32, Val)>,
}

/// Small structs passed by value travel alike on every ISA too.
///
/// Passed in registers, a struct reaches the IR in each ISA's shape:
/// `struct { size_t i; unsigned c; }` is two parameters (i64, i32) on
/// x86_64 and one [2 x i64] on aarch64, whose second element the callee
/// truncates — and where the callee is inlined, the caller loads and
/// stores the struct as those pieces. Sites after it carried an i64 on one
/// ISA and an i32 on the other, and consensus gave the function up
/// (sqlite3's `Token`, sed's `position`). Like large structs above, a
/// function only its translation unit calls takes such a struct as the
/// address of a copy in the caller's frame, on every ISA: the prologue's
/// slot becomes the parameter, and each caller copies the struct it had
/// loaded (or, when the pieces come from elsewhere, stores them as the
/// prologue did). Both ISAs then see the struct as its fields' own types.
pub fn coerced_by_pointer(cx: &Ctx) {
    let b = Builder::new(cx);
    for f in cx.functions() {
        if f.function_type().is_vararg_fn() {
            continue;
        }
        let Some(calls) = rewritable_calls(f) else {
            continue;
        };
        let groups = coerced_params(cx, f);
        if calls.is_empty() || groups.is_empty() {
            continue;
        }
        let (g, origin) = declare_retyped(cx, f, &groups);
        for call in calls {
            rewrite_call(cx, &b, call, g, &origin, &groups);
        }
        move_body(cx, f, g, &origin, &groups);
    }
}

/// The struct parameters of `f` its prologue reassembles from pieces: each
/// piece a parameter whose one use is a store into (a constant offset of)
/// an entry-block alloca of struct type. One-piece structs included (an
/// aarch64 [2 x i64] is one parameter).
fn coerced_params(cx: &Ctx, f: Val) -> Vec<Coerced> {
    let mut groups: Vec<Coerced> = Vec::new();
    let entry = f.entry();
    for (i, p) in f.params().into_iter().enumerate() {
        let uses = p.uses();
        let [(store, 0)] = uses[..] else { continue };
        if store.opcode() != Some(LLVMOpcode::LLVMStore) || store.block() != entry {
            continue;
        }
        let Some(slot) = slot_of(store.operand(1)) else {
            continue;
        };
        if slot.block() != entry
            || slot.allocated_type().kind() != LLVMTypeKind::LLVMStructTypeKind
            || !slot.operand(0).is_constant()
        {
            continue;
        }
        match groups.iter_mut().find(|g| g.slot == slot) {
            Some(g) => g.parts.push((i as u32, store)),
            None => groups.push(Coerced {
                slot,
                parts: vec![(i as u32, store)],
            }),
        }
    }
    // Only structs every ISA here passes as whole registers' worth of
    // pieces stored straight into the slot (8 or 16 bytes): a 12-byte
    // struct is (i64, i32) on x86_64 but goes through a 16-byte temporary
    // on aarch64, and a rewrite on one ISA only would part the frames.
    groups.retain(|g| {
        let size = cx.abi_size(g.slot.allocated_type());
        (size == 8 || size == 16)
            && g.parts
                .iter()
                .all(|&(_, s)| cx.abi_size(s.operand(0).ty()) <= size)
    });
    groups
}

/// The alloca a store's address is, directly or through a GEP with
/// constant indices.
fn slot_of(addr: Val) -> Option<Val> {
    if addr.is_alloca() {
        return Some(addr);
    }
    if addr.opcode() == Some(LLVMOpcode::LLVMGetElementPtr)
        && addr.operands().skip(1).all(|i| i.is_constant())
        && addr.operand(0).is_alloca()
    {
        return Some(addr.operand(0));
    }
    None
}

/// For each parameter of the retyped function: the old parameter it
/// keeps, or the group of pieces it stands for.
type Origin = Vec<Result<u32, usize>>;

/// A function like `f` with each group's pieces one pointer parameter
/// (where its first piece was), standing for the slot.
fn declare_retyped(cx: &Ctx, f: Val, groups: &[Coerced]) -> (Val, Origin) {
    let fty = f.function_type();
    let mut params = Vec::new();
    let mut origin = Origin::new();
    for (i, ty) in fty.param_types().into_iter().enumerate() {
        let i = i as u32;
        match groups
            .iter()
            .position(|g| g.parts.iter().any(|&(k, _)| k == i))
        {
            Some(gi) if groups[gi].parts[0].0 == i => {
                params.push(cx.ptr());
                origin.push(Err(gi));
            }
            Some(_) => {}
            None => {
                params.push(ty);
                origin.push(Ok(i));
            }
        }
    }
    let gty = cx.fn_type(fty.return_type(), &params, false);
    let g = cx.function_like(f, &format!("{}.hc.coerced", f.name()), gty, 0);
    for (n, o) in origin.iter().enumerate() {
        let at = param_index(n as u32);
        match *o {
            Ok(i) => {
                for a in f.attributes_at(param_index(i)) {
                    g.add_attribute_at(at, crate::ir::Attr(a));
                }
            }
            Err(gi) => {
                let slot = groups[gi].slot;
                for a in ["noalias", "noundef", "nonnull", "dead_on_return"] {
                    g.add_attribute_at(at, cx.enum_attr(a));
                }
                g.add_attribute_at(at, cx.int_attr("align", slot.alignment().max(1) as u64));
                let size = cx.abi_size(slot.allocated_type());
                g.add_attribute_at(at, cx.int_attr("dereferenceable", size));
            }
        }
    }
    (g, origin)
}

/// `f`'s body, parameters and debug information go to `g`, each group's
/// slot becoming its pointer parameter; `f` goes and `g` takes its name.
fn move_body(cx: &Ctx, f: Val, g: Val, origin: &Origin, groups: &[Coerced]) {
    cx.move_blocks(f, g);
    let (old, new) = (f.params(), g.params());
    for (n, o) in origin.iter().enumerate() {
        match *o {
            Ok(i) => old[i as usize].replace_all_uses_with(new[n]),
            Err(gi) => {
                let group = &groups[gi];
                for &(_, store) in &group.parts {
                    let addr = store.operand(1);
                    store.erase();
                    if addr != group.slot && addr.uses().is_empty() {
                        addr.erase();
                    }
                }
                group.slot.replace_all_uses_with(new[n]);
                group.slot.erase();
            }
        }
    }
    let name = f.name();
    f.move_subprogram_to(g);
    f.delete_function();
    g.set_name(&name);
}

/// `call` of the old function becomes a call of `g`: each group's pieces
/// go into a fresh slot of the caller's (`slot_around`, as byval copies),
/// whose address is passed.
fn rewrite_call(cx: &Ctx, b: &Builder, call: Val, g: Val, origin: &Origin, groups: &[Coerced]) {
    // Decided before anything is inserted between the loads and the call.
    let bases: Vec<Option<Val>> = groups
        .iter()
        .map(|grp| loaded_from(cx, call, grp, cx.abi_size(grp.slot.allocated_type())))
        .collect();
    let mut args = Vec::new();
    for o in origin {
        match *o {
            Ok(i) => args.push(call.operand(i)),
            Err(gi) => {
                let group = &groups[gi];
                let (ty, align) = (group.slot.allocated_type(), group.slot.alignment());
                let copy = slot_around(cx, b, call, ty, align, "hc.coerced");
                fill_copy(cx, b, call, group, copy, bases[gi]);
                args.push(copy);
            }
        }
    }
    b.before(call);
    let new = b.call(g.function_type(), g, &args, "");
    new.set_call_conv(call.call_conv());
    new.copy_debug_loc(call);
    for idx in [crate::ir::FUNCTION_INDEX, 0] {
        for a in call.call_site_attributes(idx) {
            new.add_call_site_attribute(idx, a);
        }
    }
    for (n, o) in origin.iter().enumerate() {
        if let Ok(i) = *o {
            for a in call.call_site_attributes(param_index(i)) {
                new.add_call_site_attribute(param_index(n as u32), a);
            }
        }
    }
    let pieces: Vec<Val> = groups
        .iter()
        .flat_map(|grp| grp.parts.iter().map(|&(k, _)| call.operand(k)))
        .collect();
    if !call.ty().is_void() {
        call.replace_all_uses_with(new);
    }
    call.erase();
    // The pieces' loads, when the struct was copied whole instead.
    for p in pieces {
        if p.opcode() == Some(LLVMOpcode::LLVMLoad) && p.uses().is_empty() {
            p.erase();
        }
    }
}

/// Fills the caller's copy: with the whole struct the pieces were loaded
/// from, when the caller loaded them right before the call from one
/// struct, at the offsets the prologue stores them (so both ISAs copy the
/// struct alike); else with the pieces, stored as the prologue stored them.
fn fill_copy(cx: &Ctx, b: &Builder, call: Val, group: &Coerced, copy: Val, base: Option<Val>) {
    if let Some(base) = base {
        memcpy(cx, b, copy, base, cx.abi_size(group.slot.allocated_type()));
        return;
    }
    for &(k, store) in &group.parts {
        let addr = store.operand(1);
        let at = if addr == group.slot {
            copy
        } else {
            let gep = addr.clone_inst();
            gep.set_operand(0, copy);
            b.insert(gep);
            gep
        };
        let s = b.store(call.operand(k), at);
        s.set_alignment(store.alignment());
    }
}

/// The struct `call`'s pieces of `group` were all loaded from, if they
/// were loaded in the call's block with nothing between the first load
/// and the call that writes memory, each at the address shape (direct, or
/// the same GEP) the prologue stores its piece at.
fn loaded_from(cx: &Ctx, call: Val, group: &Coerced, size: u64) -> Option<Val> {
    let mut base = None;
    let mut loads = Vec::new();
    for &(k, store) in &group.parts {
        let l = call.operand(k);
        if l.opcode() != Some(LLVMOpcode::LLVMLoad)
            || l.is_volatile()
            || l.is_atomic()
            || l.block() != call.block()
        {
            return None;
        }
        let (from, at) = (l.operand(0), store.operand(1));
        let b = if at == group.slot {
            from
        } else {
            let same_gep = from.opcode() == Some(LLVMOpcode::LLVMGetElementPtr)
                && from.gep_source_type() == at.gep_source_type()
                && from.num_operands() == at.num_operands()
                && (1..at.num_operands()).all(|j| from.operand(j) == at.operand(j));
            if !same_gep {
                return None;
            }
            from.operand(0)
        };
        if *base.get_or_insert(b) != b {
            return None;
        }
        loads.push(l);
    }
    let base = base?;
    // A temporary the caller loaded from must hold the whole struct.
    if base.is_alloca() && cx.abi_size(base.allocated_type()) < size {
        return None;
    }
    let mut i = call.block().first()?;
    while !loads.contains(&i) {
        i = i.next()?;
    }
    while i != call {
        let writes = matches!(
            i.opcode(),
            Some(
                LLVMOpcode::LLVMStore
                    | LLVMOpcode::LLVMCall
                    | LLVMOpcode::LLVMFence
                    | LLVMOpcode::LLVMAtomicRMW
                    | LLVMOpcode::LLVMAtomicCmpXchg
            )
        );
        if writes {
            return None;
        }
        i = i.next()?;
    }
    Some(base)
}

/// Small structs returned by value travel alike on every ISA too.
///
/// A struct returned in registers leaves the callee as each ISA's calling
/// convention shapes it — `struct { uint64_t f; int e; }` as `{ i64, i32 }`
/// on x86_64 and `[2 x i64]` on aarch64 — and the caller stores those
/// pieces into a temporary; inlined, the caller carried the 64-bit element
/// on one ISA and the field on the other, and consensus gave the function
/// up (mujs's `js_grisu2`: `diy_fp_t` from `multiply`, `minus` and
/// `normalize_boundary`). Like parameters (`coerced_by_pointer`), a
/// function only its translation unit calls instead writes the struct
/// into the caller's temporary, whose address comes first: the slot it
/// returned from becomes that parameter. Only 8- and 16-byte structs, and
/// only when every caller stores the whole result straight into a slot of
/// its own, as clang emits it.
pub fn returned_by_pointer(cx: &Ctx) {
    let b = Builder::new(cx);
    for f in cx.functions() {
        if f.function_type().is_vararg_fn() || f.function_type().return_type().is_void() {
            continue;
        }
        let Some(calls) = rewritable_calls(f).filter(|c| !c.is_empty()) else {
            continue;
        };
        let Some((slot, rets)) = returned_slot(cx, f) else {
            continue;
        };
        let size = cx.abi_size(slot.allocated_type());
        let Some(dests) = calls
            .iter()
            .map(|&c| result_destination(cx, c, size))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let fty = f.function_type();
        let params: Vec<Ty> = std::iter::once(cx.ptr()).chain(fty.param_types()).collect();
        let g = cx.function_like(
            f,
            &format!("{}.hc.returned", f.name()),
            cx.fn_type(cx.void(), &params, false),
            0,
        );
        for a in g.attributes_at(0) {
            if let Some(k) = crate::ir::Attr(a).kind() {
                g.remove_enum_attr_at(0, k);
            }
        }
        for a in ["noalias", "noundef", "nonnull"] {
            g.add_attribute_at(param_index(0), cx.enum_attr(a));
        }
        g.add_attribute_at(
            param_index(0),
            cx.int_attr("align", slot.alignment().max(1) as u64),
        );
        g.add_attribute_at(param_index(0), cx.int_attr("dereferenceable", size));
        for i in 0..fty.param_types().len() as u32 {
            for a in f.attributes_at(param_index(i)) {
                g.add_attribute_at(param_index(i + 1), crate::ir::Attr(a));
            }
        }
        for (call, (dest, pieces)) in calls.into_iter().zip(dests) {
            b.before(call);
            let args: Vec<Val> = std::iter::once(dest)
                .chain((0..call.num_args()).map(|j| call.operand(j)))
                .collect();
            let new = b.call(g.function_type(), g, &args, "");
            new.set_call_conv(call.call_conv());
            new.copy_debug_loc(call);
            for a in call.call_site_attributes(crate::ir::FUNCTION_INDEX) {
                new.add_call_site_attribute(crate::ir::FUNCTION_INDEX, a);
            }
            for j in 0..call.num_args() {
                for a in call.call_site_attributes(param_index(j)) {
                    new.add_call_site_attribute(param_index(j + 1), a);
                }
            }
            // The stores of the result (and the extractvalues and address
            // computations only they used) go with the call.
            for store in pieces {
                let (v, at) = (store.operand(0), store.operand(1));
                store.erase();
                if v != call && v.uses().is_empty() {
                    v.erase();
                }
                if at != dest && at.uses().is_empty() {
                    at.erase();
                }
            }
            call.erase();
        }
        cx.move_blocks(f, g);
        let (old, new) = (f.params(), g.params());
        for (i, p) in old.iter().enumerate() {
            p.replace_all_uses_with(new[i + 1]);
        }
        for (ret, load) in rets {
            b.before(ret);
            b.ret_void();
            ret.erase();
            load.erase();
        }
        // Lifetime markers apply to allocas only: the caller's slot has its own.
        for (user, _) in slot.uses() {
            if super::shadow::is_lifetime_marker(user) {
                user.erase();
            }
        }
        slot.replace_all_uses_with(new[0]);
        slot.erase();
        let name = f.name();
        f.move_subprogram_to(g);
        f.delete_function();
        g.set_name(&name);
    }
}

/// The entry-block slot of struct type (8 or 16 bytes) every `ret` of `f`
/// returns a load of, with each (ret, load).
fn returned_slot(cx: &Ctx, f: Val) -> Option<(Val, Vec<(Val, Val)>)> {
    let entry = f.entry();
    let mut slot = None;
    let mut rets = Vec::new();
    for bb in f.blocks() {
        let t = bb.terminator()?;
        if t.opcode() != Some(LLVMOpcode::LLVMRet) {
            continue;
        }
        let load = t.operand(0);
        if load.opcode() != Some(LLVMOpcode::LLVMLoad)
            || load.is_volatile()
            || load.uses().len() != 1
            || !load.operand(0).is_alloca()
        {
            return None;
        }
        let s = load.operand(0);
        if *slot.get_or_insert(s) != s {
            return None;
        }
        rets.push((t, load));
    }
    let slot = slot?;
    let size = cx.abi_size(slot.allocated_type());
    let fits = rets.iter().all(|(_, l)| cx.abi_size(l.ty()) <= size);
    (slot.block() == entry
        && slot.allocated_type().kind() == LLVMTypeKind::LLVMStructTypeKind
        && (size == 8 || size == 16)
        && fits)
        .then_some((slot, rets))
}

/// Where `call` stores its whole result, if it does so right after the
/// call into a slot of the caller's of at least `size` bytes: the result
/// itself (`store [2 x i64] %r, ptr %tmp`) or each of its elements at its
/// offset in the result's type (`extractvalue`, `store` to `gep {i64, i32},
/// %tmp, 0, k`). Returns the slot and the stores.
fn result_destination(cx: &Ctx, call: Val, size: u64) -> Option<(Val, Vec<Val>)> {
    let ty = call.ty();
    let is_dest = |a: Val| a.is_alloca() && cx.abi_size(a.allocated_type()) >= size;
    let uses = call.uses();
    let (dest, stores) = match uses[..] {
        [(store, 0)]
            if store.opcode() == Some(LLVMOpcode::LLVMStore) && is_dest(store.operand(1)) =>
        {
            (store.operand(1), vec![store])
        }
        _ => {
            if ty.kind() != LLVMTypeKind::LLVMStructTypeKind {
                return None;
            }
            let mut dest = None;
            let mut stores = Vec::new();
            let mut seen = Vec::new();
            for (x, _) in uses {
                let k = (x.opcode() == Some(LLVMOpcode::LLVMExtractValue))
                    .then(|| x.extract_index())
                    .flatten()?;
                let [(store, 0)] = x.uses()[..] else {
                    return None;
                };
                let at = store.operand(1);
                let gep_ok = store.opcode() == Some(LLVMOpcode::LLVMStore)
                    && at.opcode() == Some(LLVMOpcode::LLVMGetElementPtr)
                    && at.gep_source_type() == ty
                    && at.num_operands() == 3
                    && at.operand(1).const_int_value() == Some(0)
                    && at.operand(2).const_int_value() == Some(k as u64);
                if !gep_ok || seen.contains(&k) {
                    return None;
                }
                let base = at.operand(0);
                if !is_dest(base) || *dest.get_or_insert(base) != base {
                    return None;
                }
                seen.push(k);
                stores.push(store);
            }
            if seen.len() != ty.struct_field_count() as usize {
                return None;
            }
            (dest?, stores)
        }
    };
    // Right after the call: nothing in between may touch memory (the end
    // of the argument copies' lifetimes, `rewrite_call`'s, may come first).
    let mut left = stores.clone();
    let mut i = call;
    while !left.is_empty() {
        i = i.next()?;
        match i.opcode() {
            Some(LLVMOpcode::LLVMStore) if left.contains(&i) => left.retain(|s| *s != i),
            Some(LLVMOpcode::LLVMExtractValue | LLVMOpcode::LLVMGetElementPtr) => {}
            Some(LLVMOpcode::LLVMCall) if super::shadow::is_lifetime_marker(i) => {}
            _ => return None,
        }
    }
    Some((dest, stores))
}
