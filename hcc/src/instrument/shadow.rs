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
use std::collections::{HashMap, HashSet};

/// What the shadow-stack rewrite left in a function.
#[derive(Default)]
pub struct ShadowFrame {
    /// Each frame's base (what leaving it restores `__hc_ssp` to): the
    /// entry's, or one per lifetime episode (see `episodes`).
    pub frames: Vec<Val>,
    /// Each former static alloca's replacement `gep frame, offset`: its
    /// frame and offset.
    pub slots: HashMap<Val, (Val, u64)>,
    /// Each replacement `gep`'s static alloca, by its index in layout order.
    pub index: HashMap<Val, usize>,
    /// (offset, size) of every static alloca, for the cross-ISA layout check.
    pub layout: Vec<(u64, u64)>,
    /// Every static alloca as this variant has it (before any widening).
    pub shapes: Vec<SlotShape>,
}

/// A static alloca left in the native frame, in `ShadowFrame::layout`.
const NATIVE_SLOT: (u64, u64) = (u64::MAX, 0);

/// Static allocas no migration can find alive, which stay in the native
/// frame like plain clang's (no `__hc_ssp` traffic, addresses from the
/// stack pointer). A migration happens at a site — a call in `sites`, or a
/// loop poll at a header or irreducible entry (the entry poll comes before
/// any use) — so an object needs a shadow slot only if some site lies on a
/// path from an access to another access (its contents or address are
/// used after the site); when its address escapes (passed to a call,
/// stored, compared through a phi), if any site can follow an access at
/// all (the site's callee, or code after it, may use the address). Pointers
/// into such an object are then never live at a site, and a resume path
/// finds it as dead as the source left it. (The rewriter refuses a record
/// holding a native stack address, should one ever be carried.)
///
/// Not in a function that calls setjmp: a longjmp returns to what follows
/// it from any later call, an edge this walk does not see (a `noreturn`
/// thrower's site has nothing after it in the IR), and objects such a
/// function reads after the longjmp must migrate.
fn dead_at_sites(f: Val, statics: &[Val], sites: &[Val]) -> HashSet<Val> {
    let mut out = HashSet::new();
    if statics.is_empty() || !super::setjmp::returns_twice_calls(f).is_empty() {
        return out;
    }
    let UsePlaces {
        blocks,
        block_of,
        cfg,
    } = UsePlaces::new(f);
    let mut pos: HashMap<Val, usize> = HashMap::new();
    for b in &blocks {
        for (k, i) in b.instructions().into_iter().enumerate() {
            pos.insert(i, k);
        }
    }
    let at = |i: Val| (block_of[&i.block()], pos[&i]);
    let mut points: Vec<(usize, usize)> = sites.iter().map(|s| at(*s)).collect();
    // A loop poll runs before anything of its block that is no phi.
    let loops = cfg.loops();
    points.extend(cfg.poll_blocks(&loops).into_iter().map(|h| (h, 0)));
    // A dispatch loop's trampolines poll after its header, on the way to
    // each label (dispatch.rs): as if before the header's `indirectbr`.
    if !super::ablated("table-polls") {
        for l in &loops {
            let h = blocks[l.header];
            if super::dispatch::table_of(f, h).is_some() {
                points.push((l.header, h.instructions().len() - 1));
            }
        }
    }
    // Blocks reachable from each block by at least one edge, on demand.
    let mut reach: HashMap<usize, Vec<bool>> = HashMap::new();
    let mut reachable = |from: usize, to: usize| -> bool {
        reach.entry(from).or_insert_with(|| {
            let mut seen = vec![false; blocks.len()];
            let mut work: Vec<usize> = cfg.succs[from].clone();
            while let Some(x) = work.pop() {
                if !seen[x] {
                    seen[x] = true;
                    work.extend(cfg.succs[x].iter().copied());
                }
            }
            seen
        })[to]
    };
    for &a in statics {
        let (accesses, escapes) = accesses(a);
        let places: Vec<(usize, usize)> = accesses.iter().map(|i| at(*i)).collect();
        let needed = points.iter().any(|&(sb, si)| {
            let before = places
                .iter()
                .any(|&(ub, ui)| (ub == sb && ui <= si) || reachable(ub, sb));
            if escapes {
                return before;
            }
            before
                && places
                    .iter()
                    .any(|&(ub, ui)| (ub == sb && ui > si) || reachable(sb, ub))
        });
        if !needed {
            out.insert(a);
        }
    }
    out
}

/// The instructions that use `a`'s address or one derived from it, and
/// whether the address escapes (goes anywhere but loads, stores to it,
/// address arithmetic, comparisons and the memory intrinsics).
fn accesses(a: Val) -> (Vec<Val>, bool) {
    let mut out = Vec::new();
    let mut escapes = false;
    let mut work = vec![a];
    while let Some(p) = work.pop() {
        for (u, idx) in p.uses() {
            out.push(u);
            match u.opcode() {
                Some(LLVMOpcode::LLVMLoad | LLVMOpcode::LLVMICmp) => {}
                Some(LLVMOpcode::LLVMStore) => escapes |= idx == 0,
                Some(LLVMOpcode::LLVMGetElementPtr) if idx == 0 => work.push(u),
                Some(LLVMOpcode::LLVMCall) => {
                    let n = u.called_operand().name();
                    escapes |= !(n.starts_with("llvm.lifetime.")
                        || n.starts_with("llvm.memset")
                        || n.starts_with("llvm.memcpy")
                        || n.starts_with("llvm.memmove"));
                }
                _ => escapes = true,
            }
        }
    }
    (out, escapes)
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Whether `i` is an `llvm.lifetime.start`/`end` call.
pub(super) fn is_lifetime_marker(i: Val) -> bool {
    i.is_call() && i.called_operand().name().starts_with("llvm.lifetime.")
}

/// Rewrites `f`'s allocas onto the shadow stack, but for those no
/// migration can find alive (`dead_at_sites`; `sites` are `f`'s calls that
/// may reach a migration point); `agreed` widens slots to what consensus
/// decided (see `frame`).
pub fn apply(
    cx: &Ctx,
    rt: &Runtime,
    f: Val,
    sites: &[Val],
    agreed: Option<&AgreedFrame>,
) -> ShadowFrame {
    let native = if super::ablated("native-stack-objects") {
        HashSet::new()
    } else {
        dead_at_sites(f, &frame::static_allocas(f), sites)
    };
    let markers: Vec<Val> = f
        .blocks()
        .iter()
        .flat_map(|b| b.instructions())
        .filter(|&i| is_lifetime_marker(i) && !native.contains(&i.operand(0)))
        .collect();
    let out = place(cx, rt, f, agreed, &native);
    // Lifetime markers must name allocas; with the allocas gone they go too
    // (after `episodes` has read them and `place` put code before them).
    for m in markers {
        m.erase();
    }
    out
}

fn place(
    cx: &Ctx,
    rt: &Runtime,
    f: Val,
    agreed: Option<&AgreedFrame>,
    native: &HashSet<Val>,
) -> ShadowFrame {
    let mut out = ShadowFrame::default();
    let entry = f.entry();
    let insts: Vec<Val> = f.blocks().iter().flat_map(|b| b.instructions()).collect();
    let allocas: Vec<Val> = insts
        .iter()
        .copied()
        .filter(|i| i.is_alloca() && !native.contains(i))
        .collect();
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
    // Every static alloca is listed (shapes, layout), native ones too, so
    // the variants compare the same lists: a slot native on one ISA and
    // not on the other makes their frames differ.
    let all = frame::static_allocas(f);
    out.shapes = all.iter().map(|a| frame::shape(cx, *a)).collect();
    if allocas.is_empty() && stack_ops.is_empty() {
        out.layout = vec![NATIVE_SLOT; all.len()];
        return out;
    }
    let b = Builder::new(cx);
    let i64t = cx.i64();
    let statics: Vec<Val> = all
        .iter()
        .copied()
        .filter(|a| !native.contains(a))
        .collect();
    // Each shadow slot's index in `all` (the layout's order).
    let index: HashMap<Val, usize> = all.iter().enumerate().map(|(k, a)| (*a, k)).collect();
    let dynamics: Vec<Val> = allocas
        .iter()
        .copied()
        .filter(|a| !statics.contains(a))
        .collect();
    let agreed = agreed.filter(|g| g.slots.len() == all.len());

    // Layout of the static part.
    let mut off = 0u64;
    let mut max_align = 16u64;
    let mut offsets = Vec::new();
    for (k, a) in all.iter().enumerate() {
        if native.contains(a) {
            out.layout.push(NATIVE_SLOT);
            continue;
        }
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

    if dynamics.is_empty()
        && stack_ops.is_empty()
        && max_align == 16
        && !super::ablated("lazy-shadow-frames")
    {
        if let Some(eps) = episodes(f, &statics) {
            let offset: HashMap<Val, u64> = statics.iter().copied().zip(offsets).collect();
            for ep in eps {
                b.before(ep.start);
                let base = b.load(cx.ptr(), rt.ssp, "hc.ssp.base");
                let top = b.gep_i8(cx, base, cx.const_int(i64t, frame_size), "hc.ssp.top");
                b.store(top, rt.ssp);
                let mut geps: HashMap<Val, Val> = HashMap::new();
                for (user, idx, a) in ep.uses {
                    let g = *geps.entry(a).or_insert_with(|| {
                        let g = b.gep_i8(cx, base, cx.const_int(i64t, offset[&a]), &a.name());
                        out.slots.insert(g, (base, offset[&a]));
                        out.index.insert(g, index[&a]);
                        g
                    });
                    user.set_operand(idx, g);
                }
                b.before(ep.end).store(base, rt.ssp);
                out.frames.push(base);
            }
            for a in statics {
                a.erase();
            }
            return out;
        }
    }
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
    // Each slot's address is computed where its uses meet: right before
    // the first of them in their nearest common dominator, not at the
    // entry. There it was a value live through the whole function, which
    // the register allocator kept in a spill slot and reloaded at each use;
    // near its uses it lives no longer than they need it (DESIGN-NOTES
    // "Slot addresses where their uses meet"). A `va_list` keeps its
    // address at the entry: sites carry the object through it
    // (`transform`'s `va_lists`).
    let near = (!super::ablated("slot-addresses-near-uses")).then(|| UsePlaces::new(f));
    // Field addresses LICM hoisted to the entry (`&aux.tt_`) pin their
    // slot's address there; in a function with few stack objects they go
    // down to their uses first (Lua's `luaV_execute`: 7 objects, used by
    // slow paths). With many, the function's allocation got worse
    // (`sqlite3VdbeExec`, over a hundred: +13 M instructions).
    let sink_fields =
        statics.len() <= MAX_SLOTS_SINKING_FIELDS && !super::ablated("field-addresses-near-uses");
    for (a, o) in statics.iter().zip(offsets) {
        let k = index[a];
        let name = a.name();
        match &near {
            Some(places) if !rt.is_va_list(&out.shapes[k]) => {
                if sink_fields {
                    for (u, _) in a.uses() {
                        places.sink_field_address(&b, u, *a);
                    }
                }
                b.before(places.address_point(*a).unwrap_or(anchor));
            }
            _ => {
                b.before(anchor);
            }
        }
        let g = b.gep_i8(cx, frame, cx.const_int(i64t, o), &name);
        a.replace_all_uses_with(g);
        a.erase();
        out.slots.insert(g, (frame, o));
        out.index.insert(g, k);
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
    out.frames.push(frame);
    out
}

/// Stack objects a function may have for `place` to move the field
/// addresses of its slots to their uses (DESIGN-NOTES "Slot addresses where
/// their uses meet").
const MAX_SLOTS_SINKING_FIELDS: usize = 16;

/// A function's blocks, their index and dominators: to place addresses
/// near their uses, and to find what reaches what (`dead_at_sites`).
struct UsePlaces {
    blocks: Vec<crate::ir::Block>,
    block_of: HashMap<crate::ir::Block, usize>,
    cfg: super::cfg::Cfg,
}

impl UsePlaces {
    fn new(f: Val) -> UsePlaces {
        let (blocks, cfg) = super::function_cfg(f);
        let block_of = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
        UsePlaces {
            blocks,
            block_of,
            cfg,
        }
    }

    /// Moves `g`, when it is a constant offset from `from` (a
    /// `getelementptr` with constant indices), to where its uses meet
    /// (`address_point`), its own such offsets first.
    fn sink_field_address(&self, b: &Builder, g: Val, from: Val) {
        let constant_offset = g.opcode() == Some(LLVMOpcode::LLVMGetElementPtr)
            && g.operand(0) == from
            && (1..g.num_operands()).all(|i| g.operand(i).is_constant());
        if !constant_offset {
            return;
        }
        for (u, _) in g.uses() {
            self.sink_field_address(b, u, g);
        }
        if let Some(p) = self.address_point(g) {
            if p != g {
                g.remove_from_parent();
                b.before(p);
                b.insert(g);
            }
        }
    }

    /// Where `a`'s address goes: before its first use in the nearest
    /// common dominator of its uses' blocks (a phi uses it at the end of the
    /// incoming block), or before that block's terminator when no use is in
    /// it. Lifetime markers do not count (`apply` erases them). None: no
    /// reachable use.
    fn address_point(&self, a: Val) -> Option<Val> {
        let cfg = &self.cfg;
        let mut at: Option<usize> = None;
        for (user, idx) in a.uses() {
            if is_lifetime_marker(user) {
                continue;
            }
            let x = self.block_of[&crate::ir::use_point(user, idx).block()];
            if cfg.reachable(x) {
                at = Some(at.map_or(x, |d| cfg.common_dominator(d, x)));
            }
        }
        let d = self.blocks[at?];
        d.instructions()
            .into_iter()
            .find(|i| {
                !i.is_phi()
                    && (0..i.num_operands()).any(|j| i.operand(j) == a)
                    && !is_lifetime_marker(*i)
            })
            .or_else(|| d.terminator())
    }
}

/// A stretch of one block from a lifetime start that opens the first of the
/// frame's objects to the lifetime end that closes the last, and the uses of
/// the objects inside it.
struct Episode {
    start: Val,
    end: Val,
    /// (user, operand index, alloca)
    uses: Vec<(Val, u32, Val)>,
}

/// The function's frame as lifetime episodes, when every use of every
/// static alloca lies inside one (and none spans blocks). Then the frame is
/// taken at each episode's start and given back at its end, instead of on
/// every call at entry and return: a slow path's temporary (Lua's
/// `lua_geti` and its `TValue aux`) costs the fast path nothing. Accesses
/// outside an object's lifetime are undefined, so pointers that escaped
/// into callees cannot be used after the end.
fn episodes(f: Val, statics: &[Val]) -> Option<Vec<Episode>> {
    use std::collections::HashSet;
    let is_static = |v: Val| statics.contains(&v);
    let mut out = Vec::new();
    let mut claimed = 0usize;
    for blk in f.blocks() {
        let mut open: HashSet<Val> = HashSet::new();
        let mut cur: Option<Episode> = None;
        for i in blk.instructions() {
            if is_lifetime_marker(i) {
                let a = i.operand(0);
                if !is_static(a) {
                    continue;
                }
                if i.called_operand().name().starts_with("llvm.lifetime.start") {
                    if open.is_empty() {
                        cur = Some(Episode {
                            start: i,
                            end: i,
                            uses: Vec::new(),
                        });
                    }
                    open.insert(a);
                } else if open.remove(&a) && open.is_empty() {
                    let mut ep = cur.take()?;
                    ep.end = i;
                    out.push(ep);
                }
                continue;
            }
            for k in 0..i.num_operands() {
                let a = i.operand(k);
                if !is_static(a) {
                    continue;
                }
                if i.is_phi() || !open.contains(&a) {
                    return None;
                }
                cur.as_mut()?.uses.push((i, k, a));
                claimed += 1;
            }
        }
        if !open.is_empty() {
            return None;
        }
    }
    // Every use is in some episode (uses outside any block walked above,
    // e.g. in constant expressions, do not exist for allocas).
    let total: usize = statics
        .iter()
        .map(|a| {
            a.uses()
                .iter()
                .filter(|(u, _)| !is_lifetime_marker(*u))
                .count()
        })
        .sum();
    (claimed == total && !out.is_empty()).then_some(out)
}
