//! Fewer loop polls (issue 5: a poll in a hot inner loop costs it two
//! instructions an iteration, 8–16% of a vectorized body).
//!
//! Innermost loops without calls are transformed before their polls go in:
//!
//! * **Versioned**, when the trip count is known on entry: the preheader
//!   takes a poll-free copy when the count is at most `MAX_UNPOLLED`.
//!
//!   ```text
//!     preheader:  small = (bound - start) <=u MAX_UNPOLLED * |step|
//!                 br small, header.nopoll, header
//!     header ...  (the loop as it was: polled, its sites unchanged)
//!     header.nopoll ... (a copy: no poll, no site)  ─┐
//!     exit:       phis take either copy's values  ◄──┘
//!   ```
//!
//! * **Unrolled** by `UNROLL` otherwise (a small body only): the header,
//!   which polls, is followed by `UNROLL - 1` poll-free copies of the body,
//!   each exiting where the original does; one poll per `UNROLL` iterations.
//!
//! A migration requested meanwhile happens at the next poll or call: after
//! at most `MAX_UNPOLLED` (or `UNROLL`) iterations of a call-free body.
//! Sites and their live values do not change: the polled header is the
//! original, and values leaving the loop reach later sites through phis in
//! the exit.

use super::function_cfg;
use crate::ir::{Block, Builder, Ctx, Val};
use inkwell::llvm_sys::{LLVMIntPredicate, LLVMOpcode, LLVMTypeKind};
use std::collections::{HashMap, HashSet};

/// Iterations a poll-free copy may run: bounds how long a migration waits
/// for such a loop (tens of instructions an iteration: about a millisecond).
const MAX_UNPOLLED: u64 = 1 << 16;

/// Iterations per poll in an unrolled loop.
const UNROLL: usize = 4;

/// Iterations per poll in an unrolled loop that makes calls (to functions
/// that cannot reach a migration point): the call dominates an iteration,
/// so eight still bound the wait, and the poll costs half as much (an
/// interpreter's dispatch: +3.3% -> +1.7%). Call-free loops keep four:
/// eight made bzip2's hot loops spill (+2 points).
const UNROLL_CALLS: usize = 8;

/// Instructions a loop body may have to be unrolled (the copies are code
/// size; the poll matters little against a larger body).
const UNROLL_MAX_BODY: usize = 24;

/// Transforms every eligible loop of `f`; returns the headers of poll-free
/// copies, which get no poll. `sites` are `f`'s calls that may reach a
/// migration point; a loop may make other calls (to functions that cannot
/// reach one, `recursion::point_free`), and is then unrolled, never
/// versioned: a poll every `UNROLL_CALLS` calls, not every `MAX_UNPOLLED`.
pub fn version_loops(cx: &Ctx, f: Val, unroll: bool, sites: &HashSet<Val>) -> HashSet<Block> {
    let (blocks, cfg) = function_cfg(f);
    let loops = cfg.loops();
    // A loop around the entry of an irreducible cycle keeps its shape: the
    // cycle polls there, and a copy would not.
    let irreducible = cfg.irreducible_entries();
    let mut copies = HashSet::new();
    for (i, l) in loops.iter().enumerate() {
        if irreducible
            .iter()
            .any(|x| l.blocks.binary_search(x).is_ok())
        {
            continue;
        }
        let innermost = !loops.iter().any(|o| o.parent == Some(i));
        let own_header = loops
            .iter()
            .enumerate()
            .all(|(j, o)| j == i || o.header != l.header);
        if !innermost || !own_header {
            continue;
        }
        let header = blocks[l.header];
        let body: Vec<Block> = l.blocks.iter().map(|&b| blocks[b]).collect();
        let Some(shape) = shape(f, header, &body, sites) else {
            continue;
        };
        let countable = if shape.calls {
            None
        } else {
            countable(&shape, header, &body)
        };
        if let Some(c) = countable {
            copies.insert(version(cx, f, &shape, &c, header, &body));
        } else if unroll
            && body.iter().map(|b| b.instructions().len()).sum::<usize>() <= UNROLL_MAX_BODY
        {
            let n = if shape.calls { UNROLL_CALLS } else { UNROLL };
            copies.extend(unroll_loop(cx, f, &shape, header, &body, n));
        }
    }
    copies
}

/// A call-free innermost loop in loop-simplify form.
struct Shape {
    preheader: Block,
    latch: Block,
    exit: Block,
    /// Calls that are no sites (of functions that cannot reach a point).
    calls: bool,
}

fn shape(f: Val, header: Block, body: &[Block], sites: &HashSet<Val>) -> Option<Shape> {
    let inside: HashSet<Block> = body.iter().copied().collect();
    let returns_twice = Ctx::enum_kind("returns_twice");
    let mut calls = false;
    for b in body {
        for i in b.instructions() {
            match i.opcode()? {
                // A site is a migration point's way in; other calls are
                // copied like any instruction (not asm, whose labels would
                // repeat, nor setjmp).
                LLVMOpcode::LLVMCall => {
                    let c = i.called_operand();
                    if c.is_function() && c.name().starts_with("llvm.") {
                        continue;
                    }
                    if sites.contains(&i)
                        || c.is_inline_asm()
                        || i.has_call_site_enum_attr(crate::ir::FUNCTION_INDEX, returns_twice)
                        || (c.is_function() && c.has_fn_enum_attr(returns_twice))
                    {
                        return None;
                    }
                    calls = true;
                }
                LLVMOpcode::LLVMInvoke
                | LLVMOpcode::LLVMCallBr
                | LLVMOpcode::LLVMIndirectBr
                | LLVMOpcode::LLVMAlloca => return None,
                _ => {}
            }
        }
    }
    let all = f.blocks();
    let preds = |t: Block| -> Vec<Block> {
        all.iter()
            .filter(|b| b.successors().contains(&t))
            .copied()
            .collect()
    };
    let (outside, latches): (Vec<Block>, Vec<Block>) =
        preds(header).into_iter().partition(|b| !inside.contains(b));
    let ([preheader], [latch]) = (outside.as_slice(), latches.as_slice()) else {
        return None;
    };
    let pt = preheader.terminator()?;
    if pt.opcode()? != LLVMOpcode::LLVMBr || pt.num_operands() != 1 {
        return None;
    }
    let exits: HashSet<Block> = body
        .iter()
        .flat_map(|b| b.successors())
        .filter(|s| !inside.contains(s))
        .collect();
    let [exit] = exits.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if preds(exit).iter().any(|p| !inside.contains(p)) {
        return None;
    }
    Some(Shape {
        preheader: *preheader,
        latch: *latch,
        exit,
        calls,
    })
}

/// A trip count known on entry: `iv` from `start` by `step` against `bound`.
struct Countable {
    start: Val,
    bound: Val,
    step: i64,
    width: u32,
}

fn countable(s: &Shape, header: Block, body: &[Block]) -> Option<Countable> {
    let inside: HashSet<Block> = body.iter().copied().collect();
    // The latch leaves or repeats on `icmp iv, bound`.
    let lt = s.latch.terminator()?;
    if lt.opcode()? != LLVMOpcode::LLVMBr || lt.num_operands() != 3 {
        return None;
    }
    let cond = lt.operand(0);
    cond.icmp_predicate()?;
    let defined_inside = |v: Val| v.is_instruction() && inside.contains(&v.block());
    let (a, b) = (cond.operand(0), cond.operand(1));
    let (iv, bound) = match (defined_inside(a), defined_inside(b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    let phi = if iv.is_phi() {
        iv
    } else if iv.opcode()? == LLVMOpcode::LLVMAdd {
        [iv.operand(0), iv.operand(1)]
            .into_iter()
            .find(|v| v.is_phi())?
    } else {
        return None;
    };
    if phi.block() != header {
        return None;
    }
    let incoming = phi.incoming();
    let start = incoming.iter().find(|(_, b)| *b == s.preheader)?.0;
    let next = incoming.iter().find(|(_, b)| *b == s.latch)?.0;
    if next.opcode()? != LLVMOpcode::LLVMAdd || (iv != phi && iv != next) {
        return None;
    }
    let step = if next.operand(0) == phi {
        next.operand(1)
    } else if next.operand(1) == phi {
        next.operand(0)
    } else {
        return None;
    }
    .const_int_sext()?;
    let ty = phi.ty();
    if step == 0 || ty.kind() != LLVMTypeKind::LLVMIntegerTypeKind || ty.int_width() > 64 {
        return None;
    }
    Some(Countable {
        start,
        bound,
        step,
        width: ty.int_width(),
    })
}

/// Routes every use of a loop value after the loop through a phi in the
/// exit (every path out passes it), so the exit can merge copies' values.
fn close_loop(cx: &Ctx, s: &Shape, body: &[Block]) {
    let inside: HashSet<Block> = body.iter().copied().collect();
    let b = Builder::new(cx);
    // One entry per edge: a block may reach the exit by two (a switch, or
    // a branch with both targets the same).
    let exit_preds: Vec<Block> = body
        .iter()
        .flat_map(|x| {
            let n = x.successors().iter().filter(|t| **t == s.exit).count();
            std::iter::repeat_n(*x, n)
        })
        .collect();
    for bb in body {
        for v in bb.instructions() {
            let mut through: Option<Val> = None;
            for (user, idx) in v.uses() {
                let at = user.block();
                if inside.contains(&at) || (at == s.exit && user.is_phi()) {
                    continue;
                }
                let p = *through.get_or_insert_with(|| {
                    b.at_start(s.exit);
                    let p = b.phi(v.ty(), "hc.lcssa");
                    for &from in &exit_preds {
                        p.add_incoming(v, from);
                    }
                    p
                });
                user.set_operand(idx, p);
            }
        }
    }
}

/// A copy of the loop's blocks at the end of the function: values and
/// blocks mapped, phis created empty (returned with their originals).
struct Copy {
    map: HashMap<Val, Val>,
    blocks: HashMap<Block, Block>,
    phis: Vec<(Val, Val)>,
}

impl Copy {
    fn new(cx: &Ctx, f: Val, body: &[Block]) -> Copy {
        let b = Builder::new(cx);
        let mut map = HashMap::new();
        let mut blocks = HashMap::new();
        for &bb in body {
            let nb = cx.append_block(f, "hc.nopoll");
            blocks.insert(bb, nb);
            map.insert(bb.as_value(), nb.as_value());
        }
        let mut phis = Vec::new();
        for &bb in body {
            b.at_end(blocks[&bb]);
            for i in bb.instructions() {
                let copy = if i.is_phi() {
                    let p = b.phi(i.ty(), "");
                    phis.push((i, p));
                    p
                } else {
                    let x = i.clone_inst();
                    b.insert(x);
                    x
                };
                map.insert(i, copy);
            }
        }
        for &bb in body {
            for i in blocks[&bb].instructions() {
                if i.is_phi() {
                    continue;
                }
                for k in 0..i.num_operands() {
                    if let Some(&m) = map.get(&i.operand(k)) {
                        i.set_operand(k, m);
                    }
                }
            }
        }
        Copy { map, blocks, phis }
    }

    fn val(&self, v: Val) -> Val {
        self.map.get(&v).copied().unwrap_or(v)
    }

    fn block(&self, b: Block) -> Block {
        self.blocks.get(&b).copied().unwrap_or(b)
    }

    /// The copy's exits join the exit's phis.
    fn join_exit(&self, exit: Block) {
        for p in exit.phis() {
            for (v, from) in p.incoming() {
                if let Some(&from2) = self.blocks.get(&from) {
                    p.add_incoming(self.val(v), from2);
                }
            }
        }
    }
}

/// Versions one countable loop; returns the copy's header.
fn version(cx: &Ctx, f: Val, s: &Shape, c: &Countable, header: Block, body: &[Block]) -> Block {
    close_loop(cx, s, body);
    let copy = Copy::new(cx, f, body);
    for (orig, p) in &copy.phis {
        for (v, from) in orig.incoming() {
            p.add_incoming(copy.val(v), copy.block(from));
        }
    }
    copy.join_exit(s.exit);
    // The preheader chooses.
    let b = Builder::new(cx);
    let pt = s.preheader.terminator().expect("checked by shape()");
    b.before(pt);
    let (hi, lo) = if c.step > 0 {
        (c.bound, c.start)
    } else {
        (c.start, c.bound)
    };
    let d = b.sub(hi, lo, "hc.trip");
    let d = if c.width < 64 {
        b.zext(d, cx.i64(), "")
    } else {
        d
    };
    let limit = MAX_UNPOLLED.saturating_mul(c.step.unsigned_abs());
    let small = b.icmp(
        LLVMIntPredicate::LLVMIntULE,
        d,
        cx.const_int(cx.i64(), limit),
        "hc.small",
    );
    // Erased first, then replaced at the end of the block: debug records
    // attached to the old branch move to the new one (erasing it after
    // inserting the new one left them trailing, which the verifier rejects).
    pt.erase();
    b.at_end(s.preheader);
    b.cond_br(small, copy.block(header), header);
    copy.block(header)
}

/// Unrolls one loop: `n - 1` poll-free copies follow the original
/// body, the last one branching back to the header. Returns their headers.
fn unroll_loop(cx: &Ctx, f: Val, s: &Shape, header: Block, body: &[Block], n: usize) -> Vec<Block> {
    close_loop(cx, s, body);
    let copies: Vec<Copy> = (1..n).map(|_| Copy::new(cx, f, body)).collect();
    // Copy j's header takes what the previous body passes back; its other
    // phis (inside the body) map like any value.
    for (j, copy) in copies.iter().enumerate() {
        for (orig, p) in &copy.phis {
            for (v, from) in orig.incoming() {
                if orig.block() == header {
                    if from != s.latch {
                        continue; // from the preheader: only the original is entered
                    }
                    let (pv, pl) = match j {
                        0 => (v, s.latch),
                        _ => (copies[j - 1].val(v), copies[j - 1].block(s.latch)),
                    };
                    p.add_incoming(pv, pl);
                } else {
                    p.add_incoming(copy.val(v), copy.block(from));
                }
            }
        }
        copy.join_exit(s.exit);
    }
    // Back edges: the original's to the first copy, each copy's to the next,
    // the last's to the header.
    let mut heads: Vec<Block> = copies.iter().map(|c| c.block(header)).collect();
    heads.push(header);
    let latches: Vec<Block> = std::iter::once(s.latch)
        .chain(copies.iter().map(|c| c.block(s.latch)))
        .collect();
    for (k, latch) in latches.iter().enumerate() {
        let t = latch.terminator().expect("a latch ends in a branch");
        let from = if k == 0 {
            header
        } else {
            copies[k - 1].block(header)
        };
        for i in 0..t.num_operands() {
            if t.operand(i) == from.as_value() {
                t.set_operand(i, heads[k].as_value());
            }
        }
    }
    // The header's phis now come back from the last copy: rebuilt (LLVM-C
    // cannot change a phi's incoming block).
    // All built before any is replaced: a phi passed back as another's
    // value must still be found in the copy's map.
    let last = copies.last().expect("n > 1");
    let b = Builder::new(cx);
    let rebuilt: Vec<(Val, Val)> = header
        .phis()
        .into_iter()
        .map(|phi| {
            b.before(phi);
            let np = b.phi(phi.ty(), "");
            for (v, from) in phi.incoming() {
                if from == s.latch {
                    np.add_incoming(last.val(v), last.block(s.latch));
                } else {
                    np.add_incoming(v, from);
                }
            }
            (phi, np)
        })
        .collect();
    for (phi, np) in rebuilt {
        phi.replace_all_uses_with(np);
        phi.erase();
    }
    heads.pop();
    heads
}
