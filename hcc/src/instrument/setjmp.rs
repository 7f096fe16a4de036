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

use super::cfg::Cfg;
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
pub fn keep_shadow_stack(cx: &Ctx, rt: &Runtime) {
    let b = Builder::new(cx);
    for f in cx.functions().into_iter().filter(|f| !f.is_declaration()) {
        for call in returns_twice_calls(f) {
            if is_rearmable(&call.called_operand().name()) {
                b.before(call);
                let saved = b.load(cx.ptr(), rt.ssp, "hc.ssp.setjmp");
                b.after(call).store(saved, rt.ssp);
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
