//! Aggregates built for a call are built again right before it.
//!
//! A struct passed by value in registers is an `insertvalue` chain on some
//! ISAs (aarch64's `[2 x i64]` for a `struct timespec`) and separate scalar
//! arguments on others (x86_64's `i64, i64`). The optimizer hoists the
//! chain's first links to where their fields are known (GNU tar's
//! `check_time`: `insertvalue [2 x i64] poison, i64 %sec, 0` at the top, the
//! call after `gettime`), so a partly built aggregate is live across a call
//! site on aarch64 while x86_64 keeps only the fields: the sites' live
//! values differ and the function cannot migrate. The fields are live on
//! both ISAs anyway; rebuilding each chain where it is used leaves only
//! them live, the same on every ISA.

use crate::ir::{Block, Builder, Ctx, Val};
use inkwell::llvm_sys::LLVMOpcode;

/// The links of the `insertvalue` chain ending in `top`, first link first,
/// when it starts from a constant and each inner link has one use (the
/// next link): such a chain is nothing but its fields.
fn chain(top: Val) -> Option<Vec<Val>> {
    let mut links = vec![top];
    let mut at = top;
    loop {
        let base = at.operand(0);
        if base.is_constant() {
            links.reverse();
            return Some(links);
        }
        if base.opcode() != Some(LLVMOpcode::LLVMInsertValue) || base.uses().len() != 1 {
            return None;
        }
        links.push(base);
        at = base;
    }
}

/// Whether a call may come between `def` and the point before `at` (None:
/// the block's end) in `block`: they are in different blocks, or a call is
/// between them. Given a chain's first link, this covers every link: all of
/// them lie between it and their use when it is in the use's block.
fn apart(def: Val, at: Option<Val>, block: Block) -> bool {
    if def.block() != block {
        return true;
    }
    let mut i = def.next();
    while let Some(x) = i {
        if Some(x) == at {
            return false;
        }
        if x.is_call() {
            return true;
        }
        i = x.next();
    }
    false
}

/// Rebuilds every constant-based `insertvalue` chain before each of its
/// users (for a phi: at the end of the incoming block) when a call may lie
/// between, and drops the original.
pub fn rebuild_at_uses(cx: &Ctx) {
    let b = Builder::new(cx);
    for f in cx.functions() {
        if f.is_declaration() {
            continue;
        }
        let tops: Vec<Val> = f
            .blocks()
            .into_iter()
            .flat_map(|bl| bl.instructions())
            .filter(|i| i.opcode() == Some(LLVMOpcode::LLVMInsertValue))
            .filter(|i| {
                i.uses()
                    .iter()
                    .any(|(u, _)| u.opcode() != Some(LLVMOpcode::LLVMInsertValue))
            })
            .collect();
        for top in tops {
            let Some(links) = chain(top) else { continue };
            let mut rebuilt = false;
            for (user, k) in top.uses() {
                if user.opcode() == Some(LLVMOpcode::LLVMInsertValue) {
                    continue;
                }
                if user.is_phi() {
                    let from = user.incoming()[k as usize].1;
                    if !apart(links[0], None, from) {
                        continue;
                    }
                    b.before(
                        from.terminator()
                            .expect("a block with a successor ends in one"),
                    );
                } else {
                    if !apart(links[0], Some(user), user.block()) {
                        continue;
                    }
                    b.before(user);
                }
                let mut agg = links[0].operand(0);
                for link in &links {
                    let copy = link.clone_inst();
                    b.insert(copy);
                    copy.set_operand(0, agg);
                    agg = copy;
                }
                user.set_operand(k, agg);
                rebuilt = true;
            }
            if rebuilt && top.uses().is_empty() {
                for link in links.iter().rev() {
                    link.erase();
                }
            }
        }
    }
}
