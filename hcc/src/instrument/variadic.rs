//! The program's own variadic functions, made migratable (DESIGN-NOTES
//! "Variadic functions").
//!
//! A `va_list` points at registers its function saved in its native frame
//! and at its caller's native stack: nothing there migrates. So, before
//! optimization, each variadic function `f` defined in the module becomes
//!
//! ```text
//!   f.hc.v(fixed..., ptr ap_in)   f's body; each va_start is va_copy(ap, ap_in)
//!   f(fixed..., ...)              va_start(ap); f.hc.v(fixed..., &ap); va_end(ap)
//! ```
//!
//! and every direct call of `f` whose variable arguments are all `int`,
//! `long`, pointers or `double` stores them in an area of 8-byte slots in
//! the caller's frame (the shadow stack, which migrates), builds a
//! `va_list` in the everything on the stack form pointing at it
//! (`IsaInfo::va_list`) and calls `f.hc.v`. Such a `va_list` is one pointer
//! on every ISA: frame records carry it (`ValueType::VaList`) and resume
//! paths write it back in the destination's layout. Calls of `f` from
//! other files go to `f.hc.v` when the link defines it (a weak reference);
//! calls through pointers still enter `f`, whose frame cannot migrate.
//!
//! An ISA whose `va_list` is a struct passed by value (aarch64) hands the
//! callee a pointer to a copy; the copy is elided, as C leaves the caller's
//! `va_list` indeterminate after such a call, so every ISA passes the object
//! itself and frames keep the same stack slots.

use crate::ir::{self, Builder, Ctx, Ty, Val};
use hc_metadata::isa::{VaField, VaListAbi};
use inkwell::llvm_sys::{LLVMOpcode, LLVMTypeKind};
use std::collections::HashMap;

/// Suffix of a variadic function's body that takes its `va_list`.
pub const BODY_SUFFIX: &str = ".hc.v";

/// String attribute of a body's `va_list` parameter: frame records carry
/// the object it points to while it is live (`ValueType::VaList`).
pub const VA_LIST_PARAM: &str = "hc-va-list";

/// Whether `v` is `f`'s `va_list` parameter (`VA_LIST_PARAM`).
pub fn is_va_list_param(f: Val, v: Val) -> bool {
    v.is_argument()
        && f.params()
            .iter()
            .position(|p| *p == v)
            .is_some_and(|i| f.has_string_attr_at(ir::param_index(i as u32), VA_LIST_PARAM))
}

/// Bytes of the largest `va_list` of any ISA: the object a caller builds
/// for a body is this size on every ISA, so its frame agrees and a resume
/// can write any ISA's form into it.
fn neutral_size() -> u64 {
    hc_metadata::Isa::ALL
        .iter()
        .map(|i| i.info().va_list.size())
        .max()
        .unwrap_or(32)
}

/// The IR type of `abi`'s `va_list` object.
pub fn va_list_type(cx: &Ctx, abi: &VaListAbi) -> Ty {
    let fields: Vec<Ty> = abi
        .fields
        .iter()
        .map(|f| match f {
            VaField::I32 => cx.i32(),
            VaField::Ptr => cx.ptr(),
        })
        .collect();
    let s = cx.struct_type(&fields);
    if abi.in_array {
        ir::array_type(s, 1)
    } else {
        s
    }
}

/// Name of the module's function that writes a `va_list` in the
/// everything on the stack form.
const VA_START_FN: &str = "__hc_va_start";

/// `__hc_va_start(ptr va, ptr next)`: writes the everything on the stack form
/// of a `va_list` whose next argument is at `next` into the object at `va`,
/// in this ISA's layout (defined in the module on first use). A call, not
/// inline stores, so every ISA's IR has the same shape around it: x86_64's
/// field stores took address computations the optimizer hoisted out of
/// loops, which made x86_64 carry a frame base at sites where aarch64 did
/// not (sqlite3 lost 400 sites to that).
pub fn va_start_fn(cx: &Ctx, abi: &VaListAbi) -> Val {
    if let Some(f) = cx.function(VA_START_FN) {
        return f;
    }
    let ptr = cx.ptr();
    let ty = cx.fn_type(cx.void(), &[ptr, ptr], false);
    let f = cx.declare(VA_START_FN, ty);
    f.set_linkage(inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
    for a in ["noinline", "nounwind", "willreturn", "nosync", "nofree"] {
        f.add_fn_attribute(cx.enum_attr(a));
    }
    let (va, next) = (f.params()[0], f.params()[1]);
    let b = Builder::new(cx);
    b.at_end(cx.append_block(f, "entry"));
    let memset = cx.intrinsic("llvm.memset", &[ptr, cx.i64()]);
    b.call(
        memset.function_type(),
        memset,
        &[
            va,
            cx.const_int(cx.i8(), 0),
            cx.const_int(cx.i64(), abi.size()),
            cx.const_int(cx.i1(), 0),
        ],
        "",
    );
    let offsets = abi.offsets();
    for &(field, min) in abi.regs_used_up {
        let at = b.gep_i8(cx, va, cx.const_int(cx.i64(), offsets[field]), "");
        b.store(cx.const_int(cx.i32(), min as u32 as u64), at);
    }
    let at = b.gep_i8(
        cx,
        va,
        cx.const_int(cx.i64(), offsets[abi.next_stack_arg]),
        "",
    );
    b.store(next, at);
    b.ret_void();
    f
}

/// Calls `__hc_va_start(va, next)` at the builder.
pub fn write_stack_form(cx: &Ctx, b: &Builder, abi: &VaListAbi, va: Val, next: Val) {
    let f = va_start_fn(cx, abi);
    b.call(f.function_type(), f, &[va, next], "");
}

/// Whether `ty` can travel in the argument area: one 8-byte slot read alike
/// by every ISA's `va_arg` (C promotes smaller integers and `float`).
fn slot_type(ty: Ty) -> bool {
    use LLVMTypeKind::*;
    match ty.kind() {
        LLVMIntegerTypeKind => matches!(ty.int_width(), 32 | 64),
        LLVMPointerTypeKind | LLVMDoubleTypeKind => true,
        _ => false,
    }
}

fn calls_named(f: Val, prefix: &str) -> Vec<Val> {
    f.blocks()
        .iter()
        .flat_map(|b| b.instructions())
        .filter(|i| {
            i.is_call() && {
                let c = i.called_operand();
                c.is_function() && c.name().starts_with(prefix)
            }
        })
        .collect()
}

/// Splits `f` into its shim and its body (`f.hc.v`); returns the body.
fn split(cx: &Ctx, abi: &VaListAbi, f: Val) -> Val {
    let fty = f.function_type();
    let fixed = fty.param_types();
    let mut params = fixed.clone();
    params.push(cx.ptr());
    let ret = fty.return_type();
    let gty = cx.fn_type(ret, &params, false);
    let g = cx.function_like(
        f,
        &format!("{}{BODY_SUFFIX}", f.name()),
        gty,
        fixed.len() as u32,
    );
    let ap_in = g.params()[fixed.len()];
    let at = ir::param_index(fixed.len() as u32);
    for a in ["noundef", "nonnull", "readonly"] {
        g.add_attribute_at(at, cx.enum_attr(a));
    }
    // captures(none): the body only copies the object it points to.
    g.add_attribute_at(at, cx.enum_attr("captures"));
    g.add_attribute_at(at, cx.string_attr(VA_LIST_PARAM));
    // Inlined, the caller's object would be read after sites of the caller,
    // which cannot carry it (it has no `va_list` type there).
    g.remove_fn_enum_attr(Ctx::enum_kind("alwaysinline"));
    g.add_fn_attribute(cx.enum_attr("noinline"));
    // The body moves, with its debug information.
    cx.move_blocks(f, g);
    for (old, new) in f.params().into_iter().zip(g.params()) {
        old.replace_all_uses_with(new);
    }
    f.move_subprogram_to(g);
    let va_copy = cx.intrinsic("llvm.va_copy", &[cx.ptr()]);
    let b = Builder::new(cx);
    for start in calls_named(g, "llvm.va_start") {
        b.before(start);
        let c = b.call(
            va_copy.function_type(),
            va_copy,
            &[start.operand(0), ap_in],
            "",
        );
        c.copy_debug_loc(start);
        start.erase();
    }
    // The shim: what calls through pointers enter.
    let entry = cx.append_block(f, "entry");
    b.at_end(entry);
    let ap = b.alloca(va_list_type(cx, abi), "ap");
    ap.set_alignment(16);
    let va_start = cx.intrinsic("llvm.va_start", &[cx.ptr()]);
    let va_end = cx.intrinsic("llvm.va_end", &[cx.ptr()]);
    b.call(va_start.function_type(), va_start, &[ap], "");
    let mut args = f.params();
    args.push(ap);
    let r = b.call(gty, g, &args, "");
    r.set_call_conv(g.function_call_conv());
    // One copy of the body: the shim keeps its call.
    r.add_call_site_attribute(ir::FUNCTION_INDEX, cx.enum_attr("noinline"));
    b.call(va_end.function_type(), va_end, &[ap], "");
    if ret.is_void() {
        b.ret_void();
    } else {
        b.ret(r);
    }
    g
}

/// Whether direct call `call` of variadic type `fty` can be routed: every
/// variable argument fits the area.
fn routable(call: Val, fty: Ty) -> bool {
    let nfixed = fty.param_types().len() as u32;
    call.called_type() == fty
        && call.num_bundles() == 0
        && !call.is_musttail()
        && (nfixed..call.num_args()).all(|j| slot_type(call.operand(j).ty()))
}

/// Emits, before `at`, a call of body `g` with `call`'s fixed arguments and
/// its variable ones in an area of the caller's frame; returns the new call.
fn emit_routed(cx: &Ctx, abi: &VaListAbi, call: Val, g: Val, at: Val) -> Val {
    let nfixed = g.function_type().param_types().len() as u32 - 1;
    let varargs: Vec<Val> = (nfixed..call.num_args()).map(|j| call.operand(j)).collect();
    let caller = call.block().parent();
    let b = Builder::new(cx);
    b.at_start(caller.entry());
    let n = varargs.len().max(1) as u64;
    let area = b.alloca(ir::array_type(cx.i64(), n), "hc.va.area");
    area.set_alignment(16);
    let va = b.alloca(ir::array_type(cx.i8(), neutral_size()), "hc.va");
    va.set_alignment(16);
    // Lifetime markers, as clang puts around a temporary: before them the
    // slots hold nothing a migration must carry.
    let start = cx.intrinsic("llvm.lifetime.start", &[cx.ptr()]);
    let end = cx.intrinsic("llvm.lifetime.end", &[cx.ptr()]);
    b.before(at);
    for p in [area, va] {
        b.call(start.function_type(), start, &[p], "");
    }
    for (i, v) in varargs.iter().enumerate() {
        let slot = b.gep_i8(cx, area, cx.const_int(cx.i64(), 8 * i as u64), "");
        // An `int` fills its slot zero-extended, as a 32-bit register write
        // does on both ISAs: programs pass 0 where the callee reads a
        // pointer (sqlite3's shell does), and natively that reads NULL.
        let word = if v.ty().kind() == LLVMTypeKind::LLVMIntegerTypeKind && v.ty().int_width() < 64
        {
            b.zext(*v, cx.i64(), "")
        } else {
            *v
        };
        b.store(word, slot).set_alignment(8);
    }
    write_stack_form(cx, &b, abi, va, area);
    let mut args: Vec<Val> = (0..nfixed).map(|j| call.operand(j)).collect();
    args.push(va);
    let new = b.call(g.function_type(), g, &args, &call.name());
    new.set_call_conv(call.call_conv());
    new.copy_debug_loc(call);
    // A program's own variadic functions are mostly diagnostics (error
    // messages, logging): their calls are marked cold, so the paths to them
    // are laid out and register-allocated as the rare paths they are. Without
    // it sqlite3's 36 calls inlined into sqlite3VdbeExec, now sites, cost
    // +26 M instructions on queries.sql (spills in hot code); with it the
    // shell runs 2% fewer than before calls were routed at all.
    if !crate::instrument::ablated("cold-variadic-calls") {
        new.add_call_site_attribute(ir::FUNCTION_INDEX, cx.enum_attr("cold"));
    }
    new.copy_call_site_attributes(call, nfixed);
    b.after(new);
    for p in [area, va] {
        b.call(end.function_type(), end, &[p], "");
    }
    new
}

/// Replaces direct call `call` of split function `f` by a call of its body
/// `g` (`emit_routed`). False when some argument cannot travel in the area
/// (the call stays).
fn route_call(cx: &Ctx, abi: &VaListAbi, call: Val, f: Val, g: Val) -> bool {
    if !routable(call, f.function_type()) {
        return false;
    }
    let new = emit_routed(cx, abi, call, g, call);
    replace_call(call, new);
    true
}

/// `new` takes `call`'s place: its uses, then its spot (erased).
fn replace_call(call: Val, new: Val) {
    if !call.ty().is_void() {
        call.replace_all_uses_with(new);
    }
    call.erase();
}

/// Thunks for calls of variadic functions defined in other files, by
/// callee and argument types.
type Thunks = HashMap<(Val, Vec<Ty>), Val>;

/// A call of variadic `f` defined in another file (or in a library) becomes
/// a call of a thunk taking the same arguments as fixed ones:
///
/// ```text
///   f.hc.w.N(fixed..., varargs...):
///     if (@f.hc.v != null)  return f.hc.v(fixed..., va)   (area, as above)
///     else                  return f(fixed..., varargs...)
/// ```
///
/// `f.hc.v` is a weak reference: the link finds it when the program defines
/// `f` (libc's variadic functions have none). Out of line and not inlined,
/// so the caller's code is the call it had: with both paths inline, Lua's
/// functions grew and inlining changed (+1.3 points of instructions).
fn route_call_weak(cx: &Ctx, abi: &VaListAbi, call: Val, f: Val, thunks: &mut Thunks) -> bool {
    let fty = f.function_type();
    if !routable(call, fty) {
        return false;
    }
    let tys: Vec<Ty> = (0..call.num_args()).map(|j| call.operand(j).ty()).collect();
    let ret = fty.return_type();
    let n = thunks.len();
    let thunk = *thunks.entry((f, tys.clone())).or_insert_with(|| {
        let name = format!("{}{BODY_SUFFIX}", f.name());
        let g = cx.function(&name).unwrap_or_else(|| {
            let mut params = fty.param_types();
            params.push(cx.ptr());
            let g = cx.declare(&name, cx.fn_type(ret, &params, false));
            g.set_linkage(inkwell::llvm_sys::LLVMLinkage::LLVMExternalWeakLinkage);
            g
        });
        let t = cx.declare(
            &format!("{}.hc.w.{n}", f.name()),
            cx.fn_type(ret, &tys, false),
        );
        t.set_linkage(inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
        for a in ["noinline", "nounwind"] {
            t.add_fn_attribute(cx.enum_attr(a));
        }
        let b = Builder::new(cx);
        let entry = cx.append_block(t, "entry");
        let routed = cx.append_block(t, "routed");
        let plain = cx.append_block(t, "plain");
        b.at_end(entry);
        let has_body = b.icmp(
            inkwell::llvm_sys::LLVMIntPredicate::LLVMIntNE,
            g,
            cx.null(cx.ptr()),
            "hc.va.has_body",
        );
        b.cond_br(has_body, routed, plain);
        b.at_end(plain);
        let direct = b.call(fty, f, &t.params(), "");
        direct.set_call_conv(call.call_conv());
        if ret.is_void() {
            b.ret_void();
        } else {
            b.ret(direct);
        }
        b.at_end(routed);
        let placeholder = b.unreachable();
        let r = emit_routed(cx, abi, direct, g, placeholder);
        b.before(placeholder);
        if ret.is_void() {
            b.ret_void();
        } else {
            b.ret(r);
        }
        placeholder.erase();
        t
    });
    let b = Builder::new(cx);
    b.before(call);
    let args: Vec<Val> = (0..call.num_args()).map(|j| call.operand(j)).collect();
    let new = b.call(thunk.function_type(), thunk, &args, &call.name());
    new.copy_debug_loc(call);
    new.copy_call_site_attributes(call, call.num_args());
    replace_call(call, new);
    true
}

/// Calls of functions declared without a prototype (`char f();`, old C and
/// autoconf's link tests), and calls without arguments through a pointer
/// so declared (`void (*fini_func)();`, gawk's extension list), become
/// calls of the argument types they pass.
/// x86_64 makes such a call variadic (its ABI sets `%al` in case the callee
/// is), aarch64 does not, so the variants disagreed: on x86_64 the call
/// was no site and went through a thunk, on aarch64 a site, and the caller
/// could not migrate. Only calls whose arguments are all integers or
/// pointers: for those `%al` tells the callee nothing (a variadic callee
/// saves its vector registers or not, and reads none), while one passing
/// a `double` to a variadic callee so declared (`int printf();`) needs it.
pub fn prototype_calls(cx: &Ctx) {
    let mut calls = Vec::new();
    for f in cx.functions() {
        for b in f.blocks() {
            for i in b.instructions() {
                if i.opcode() != Some(LLVMOpcode::LLVMCall) {
                    continue;
                }
                let callee = i.called_operand();
                let unprototyped = |t: Ty| t.is_vararg_fn() && t.param_types().is_empty();
                // A function must be declared so. A pointer's call type
                // tells only when nothing is passed: x86_64 gives a call
                // through `long (*p)();` the arguments as named parameters
                // (`(i64, ptr, ...)`), as a variadic pointer's call with no
                // variable arguments, but `(...)` called with none can only
                // be such a pointer (before C23 a variadic function has a
                // named parameter, and a C23 one called so agrees anyway).
                let declared = if callee.is_function() {
                    unprototyped(callee.function_type())
                } else {
                    !callee.is_inline_asm() && unprototyped(i.called_type()) && i.num_args() == 0
                };
                if declared && i.called_type().is_vararg_fn() && !i.is_musttail() {
                    calls.push(i);
                }
            }
        }
    }
    let b = Builder::new(cx);
    for call in calls {
        let args: Vec<Val> = (0..call.num_args()).map(|j| call.operand(j)).collect();
        let integral = args.iter().all(|a| {
            matches!(
                a.ty().kind(),
                LLVMTypeKind::LLVMIntegerTypeKind | LLVMTypeKind::LLVMPointerTypeKind
            )
        });
        if !integral {
            continue;
        }
        let tys: Vec<Ty> = args.iter().map(|a| a.ty()).collect();
        let fty = cx.fn_type(call.called_type().return_type(), &tys, false);
        b.before(call);
        let new = b.call(fty, call.called_operand(), &args, &call.name());
        new.set_call_conv(call.call_conv());
        new.copy_debug_loc(call);
        if call.is_tail() {
            new.set_tail();
        }
        new.copy_call_site_attributes(call, call.num_args());
        replace_call(call, new);
    }
}

/// Hands a callee taking a `va_list` by value the caller's object instead
/// of a copy (aarch64's `va_list` is a struct passed as a pointer to a
/// temporary): `memcpy(tmp, ap); g(..., tmp)` becomes `g(..., ap)`. x86_64
/// passes the object's address already, so nothing matches there.
fn elide_va_list_copies(cx: &Ctx, abi: &VaListAbi, f: Val) {
    let dead_on_return = Ctx::enum_kind("dead_on_return");
    let want = abi.ir_type();
    let mut elided: Vec<Val> = Vec::new();
    for blk in f.blocks() {
        let insts = blk.instructions();
        // The most recent full-size copy into each slot, in this block.
        let mut copied_from: HashMap<Val, Val> = HashMap::new();
        for &i in &insts {
            if !i.is_call() {
                continue;
            }
            let callee = i.called_operand();
            if callee.is_function() && callee.name().starts_with("llvm.memcpy") {
                let (dst, src, len) = (i.operand(0), i.operand(1), i.operand(2));
                if dst.is_alloca()
                    && super::frame::shape(cx, dst).ty == want
                    && len.const_int_value() == Some(abi.size())
                {
                    copied_from.insert(dst, src);
                }
                continue;
            }
            for j in 0..i.num_args() {
                let at = ir::param_index(j);
                if !i.has_call_site_enum_attr(at, dead_on_return) {
                    continue;
                }
                if let Some(&src) = copied_from.get(&i.operand(j)) {
                    let tmp = i.operand(j);
                    i.set_operand(j, src);
                    i.remove_call_site_enum_attr(at, dead_on_return);
                    elided.push(tmp);
                }
            }
        }
    }
    // The temporaries nothing reads now go (at -O0 no optimizer removes
    // them, and aarch64's frame had a slot more than x86_64's).
    let mut seen = std::collections::HashSet::new();
    elided.retain(|t| seen.insert(*t));
    for tmp in elided {
        let uses = tmp.uses();
        let only_filled = uses.iter().all(|(u, idx)| {
            super::shadow::is_lifetime_marker(*u)
                || (u.is_call()
                    && u.called_operand().name().starts_with("llvm.memcpy")
                    && *idx == 0)
        });
        if only_filled {
            for (u, _) in uses {
                u.erase();
            }
            tmp.erase();
        }
    }
}

/// Makes every access to a `va_list`'s fields volatile (clang's `va_arg`
/// code reaches them through GEPs of its `va_list` struct). Otherwise the
/// optimizer keeps a loop's `gp_offset` or `__stack` in a register, and a
/// frame record would carry ISA-specific fields as values.
fn keep_va_list_in_memory(f: Val) {
    for blk in f.blocks() {
        for i in blk.instructions() {
            if i.opcode() != Some(LLVMOpcode::LLVMGetElementPtr) {
                continue;
            }
            let named = i
                .gep_source_type()
                .struct_name()
                .is_some_and(|n| n.starts_with("struct.__va_list"));
            if !named {
                continue;
            }
            for (user, idx) in i.uses() {
                let is_ptr_operand = match user.opcode() {
                    Some(LLVMOpcode::LLVMLoad) => idx == 0,
                    Some(LLVMOpcode::LLVMStore) => idx == 1,
                    _ => false,
                };
                if is_ptr_operand {
                    user.set_volatile();
                }
            }
        }
    }
}

/// Runs on an unoptimized module (see the module docs). `abi`: this ISA's
/// `va_list`. Err names a function the rewrite left invalid (a bug of hcc's).
pub fn lower(module: &inkwell::module::Module, abi: &VaListAbi) -> Result<(), String> {
    let cx = Ctx::new(module);
    let defined: Vec<Val> = cx
        .functions()
        .into_iter()
        .filter(|f| !f.is_declaration())
        .collect();
    for &f in &defined {
        elide_va_list_copies(&cx, abi, f);
        keep_va_list_in_memory(f);
    }
    let mut bodies: HashMap<Val, Val> = HashMap::new();
    for &f in &defined {
        let forwards = f
            .blocks()
            .iter()
            .flat_map(|b| b.instructions())
            .any(|i| i.is_call() && i.is_musttail());
        let naked = f.has_fn_enum_attr(Ctx::enum_kind("naked"));
        if f.function_type().is_vararg_fn() && !forwards && !naked {
            bodies.insert(f, split(&cx, abi, f));
        }
    }
    let mut changed: Vec<Val> = bodies.iter().flat_map(|(f, g)| [*f, *g]).collect();
    let mut thunks = Thunks::new();
    for caller in cx.functions() {
        if caller.is_declaration() || bodies.contains_key(&caller) {
            continue;
        }
        // Calls of this file's variadic functions go to their bodies; calls
        // of other files' (not libc's), through a thunk the link decides.
        let calls: Vec<Val> = caller
            .blocks()
            .iter()
            .flat_map(|b| b.instructions())
            .filter(|i| i.opcode() == Some(LLVMOpcode::LLVMCall))
            .collect();
        let mut routed = false;
        for call in calls {
            let f = call.called_operand();
            if let Some(&g) = bodies.get(&f) {
                routed |= route_call(&cx, abi, call, f, g);
            } else if f.is_function()
                && f.is_declaration()
                && f.intrinsic_id() == 0
                && f.function_type().is_vararg_fn()
                && !super::is_libc_variadic(&f.name())
            {
                routed |= route_call_weak(&cx, abi, call, f, &mut thunks);
            }
        }
        if routed {
            changed.push(caller);
        }
    }
    changed.extend(thunks.into_values());
    match changed.into_iter().find(|f| !f.verifies()) {
        Some(f) => Err(format!(
            "internal error: routing variadic calls left '{}' invalid (please report this with the source file)",
            f.name()
        )),
        None => Ok(()),
    }
}
