//! setjmp across a migration (issue 4).
//!
//! A `jmp_buf` holds one ISA's registers and native stack addresses, so a
//! buffer armed before a migration is useless after it. A function's frame
//! that armed one re-arms it on its resume path: the resume block calls the
//! same setjmp on the same buffer, then goes on to the site when it returns
//! 0; when a later longjmp returns there, it continues after the original
//! setjmp with that value (`hc.setjmp.cont`), as the original would have.
//! Values live after the setjmp are carried at every site it arms, so they
//! exist on that path (the longjmp edge, which the IR does not show).
//!
//! hcc also makes `jmp_buf` one size on every ISA (`include/bits/setjmp.h`),
//! so structs holding one lay out alike in the shadow stack.
//!
//! Armed on some paths: a setjmp inside a loop (`for (;;) { if
//! (sigsetjmp(env, 1)) recover(); work(); }`) leaves points that run both
//! before the frame first armed the buffer and after (the loop's header,
//! calls before the setjmp in its body). The frame then keeps a flag in a
//! stack slot, 0 at entry and 1 once the setjmp returned, which every
//! record carries; a resume path at such a point re-arms only when the
//! flag is set. Values live after the setjmp that do not exist at every
//! such point (defined in the loop before the setjmp: the saved shadow
//! stack pointer, a value the recovery reads) live in slots of their own,
//! carried by every record the same way. Re-arming once is right only
//! when every arming targets the same buffer: the setjmp's operands must
//! not change while the frame lives (defined outside every loop around
//! it); a frame arming several buffers (mujs's try stack) keeps its sites
//! out, as before.

use super::cfg::{Cfg, Loop};
use super::liveness::Liveness;
use super::Runtime;
use crate::ir::{self, Block, Builder, Ctx, Val};
use std::collections::{HashMap, HashSet};

/// setjmp functions whose call can be repeated on the resume path (vfork and
/// other returns-twice functions cannot).
const REARMABLE: &[&str] = &["__sigsetjmp", "_setjmp", "setjmp", "sigsetjmp"];

pub fn is_rearmable(name: &str) -> bool {
    REARMABLE.contains(&name)
}

/// Every setjmp gives the shadow stack back when a longjmp returns to it:
/// the frames a longjmp skips never reach their `ret`, which is where they
/// give theirs back, so a function that catches errors in a loop without
/// returning (a server's or a REPL's `setjmp` before its main loop) would
/// leak the thrower's frames until the shadow stack overflowed. hcc loads
/// `__hc_ssp` right before the call and stores it back right after it,
/// which the second return also runs; on the first, it stores what is
/// there. The saved value is live after the setjmp, so sites it arms carry
/// it (a pointer into the shadow stack, the same on every ISA) and a resume
/// path's re-armed setjmp restores it from there.
///
/// `__hc_unmigratable` likewise: a longjmp past a function that cannot
/// migrate skips the store that names the function's caller again there
/// (`mark_calls_out`), which would have kept every later migration out.
pub fn keep_shadow_stack(cx: &Ctx, rt: &Runtime) {
    let b = Builder::new(cx);
    for f in cx.functions().into_iter().filter(|f| !f.is_declaration()) {
        for call in returns_twice_calls(f) {
            if is_rearmable(&call.called_operand().name()) {
                b.before(call);
                let saved = b.load(cx.ptr(), rt.ssp, "hc.ssp.setjmp");
                let marked = b.load(cx.ptr(), rt.unmigratable, "hc.unmigratable.setjmp");
                b.after(call).store(saved, rt.ssp);
                b.after(call).store(marked, rt.unmigratable);
            }
        }
    }
}

/// `f`'s calls that return twice (setjmp, vfork, ...). After one, control
/// can come back from any later call (a longjmp), an edge the IR does not
/// show.
pub fn returns_twice_calls(f: Val) -> Vec<Val> {
    let returns_twice = Ctx::enum_kind("returns_twice");
    f.blocks()
        .iter()
        .flat_map(|blk| blk.instructions())
        .filter(|i| {
            i.is_call() && {
                let callee = i.called_operand();
                i.has_call_site_enum_attr(ir::FUNCTION_INDEX, returns_twice)
                    || (callee.is_function() && callee.has_fn_enum_attr(returns_twice))
            }
        })
        .collect()
}

/// Whether points that run both with and without `s`'s buffer armed can
/// carry the flag (module docs); Err: why not.
pub fn rearmable_on_some_paths(
    blocks: &[Block],
    cfg: &Cfg,
    loops: &[Loop],
    live: &Liveness,
    s: Val,
) -> Result<(), String> {
    let armed_some = "runs both with and without its setjmp buffer armed";
    if !cfg.irreducible_edges().is_empty() {
        return Err(format!("a loop {armed_some}, in a cycle that is no loop"));
    }
    let index: HashMap<Block, usize> = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let s_block = index[&s.block()];
    for a in operands(s) {
        if a.is_instruction() {
            let d = index[&a.block()];
            let varies = loops.iter().any(|l| {
                l.blocks.binary_search(&s_block).is_ok() && l.blocks.binary_search(&d).is_ok()
            });
            if varies {
                return Err(format!(
                    "a loop {armed_some}, and its setjmp's buffer is computed in the loop"
                ));
            }
        }
    }
    if let Some(v) = live
        .live_after(s)
        .into_iter()
        .chain(operands(s))
        .find(|v| super::value_type(v.ty()).is_none())
    {
        return Err(format!(
            "a loop {armed_some}, and a value of type {} is live after the setjmp",
            v.ty().print()
        ));
    }
    Ok(())
}

/// The register operands of call `s` (its callee aside).
fn operands(s: Val) -> Vec<Val> {
    (0..s.num_args())
        .map(|j| s.operand(j))
        .filter(|a| a.is_register())
        .collect()
}

/// Values live after `s` or operands of it that do not exist at every point
/// of `ambiguous` (their definition does not dominate it): they are
/// carried through slots of their own (module docs).
pub fn memory_carried(
    blocks: &[Block],
    cfg: &Cfg,
    live: &Liveness,
    s: Val,
    ambiguous: &[Val],
) -> Vec<Val> {
    let index: HashMap<Block, usize> = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let dominates = |v: Val, p: Val| {
        if v.is_argument() {
            return true;
        }
        let (dv, dp) = (index[&v.block()], index[&p.block()]);
        if dv != dp {
            return cfg.dominates(dv, dp);
        }
        let mut cur = v.next();
        while let Some(i) = cur {
            if i == p {
                return true;
            }
            cur = i.next();
        }
        false
    };
    let mut out: Vec<Val> = Vec::new();
    for v in live.live_after(s).into_iter().chain(operands(s)) {
        if !out.contains(&v) && ambiguous.iter().any(|p| !dominates(v, *p)) {
            out.push(v);
        }
    }
    out
}

/// Which program points run with the buffer of setjmp call `s` armed by
/// this frame.
pub struct Armed {
    s: Val,
    s_block: usize,
    index: HashMap<Block, usize>,
    /// Blocks reached after `s` (from its block's successors).
    after: HashSet<usize>,
    /// Blocks reached from the entry without passing `s`.
    avoiding: HashSet<usize>,
}

impl Armed {
    pub fn new(blocks: &[Block], cfg: &Cfg, s: Val) -> Armed {
        let index: HashMap<Block, usize> =
            blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
        let s_block = index[&s.block()];
        let reach = |start: Vec<usize>, stop: Option<usize>| {
            let mut seen: HashSet<usize> = HashSet::new();
            let mut work = start;
            while let Some(b) = work.pop() {
                if !seen.insert(b) || Some(b) == stop {
                    continue;
                }
                work.extend(cfg.succs[b].iter().copied());
            }
            seen
        };
        Armed {
            s,
            s_block,
            after: reach(cfg.succs[s_block].clone(), None),
            avoiding: reach(vec![0], Some(s_block)),
            index,
        }
    }

    /// Some(true): `at` runs only after `s`; Some(false): never after it;
    /// None: both (the buffer may or may not be armed there).
    pub fn at(&self, at: Val) -> Option<bool> {
        let b = self.index[&at.block()];
        let (after, avoiding) = if b == self.s_block && self.follows_s(at) {
            (true, false)
        } else {
            (self.after.contains(&b), self.avoiding.contains(&b))
        };
        match (after, avoiding) {
            (false, _) => Some(false),
            (true, false) => Some(true),
            (true, true) => None,
        }
    }

    fn follows_s(&self, at: Val) -> bool {
        let mut cur = self.s.next();
        while let Some(i) = cur {
            if i == at {
                return true;
            }
            cur = i.next();
        }
        false
    }
}
