//! Which functions need their entry poll (DESIGN-NOTES "Entry polls only on
//! cycles").
//!
//! An entry poll keeps a running process from going long without a
//! migration point when it recurses without loops; loops poll at their
//! headers. A function whose calls all go to known functions of this module
//! and that lies on no cycle of those calls runs for a bounded time before it
//! returns or enters a callee that polls itself, so its poll buys nothing
//! and costs a load and a branch per call. Every cycle a run can take has a
//! function that keeps its poll: a cycle within the module is found here,
//! and one that leaves the module (an indirect call, a call to another
//! translation unit or to an uninstrumented variadic function) passes
//! through a call this analysis cannot follow, whose caller keeps its poll.
//!
//! Restores do not need the poll: they enter the resume copy directly
//! (frame records name it, `__hc_resume_take` returns it).

use super::{classify_call, function_cfg, CallClass};
use crate::ir::{Ctx, Val};
use inkwell::llvm_sys::{LLVMLinkage, LLVMOpcode};
use std::collections::{HashMap, HashSet};

/// The module's defined functions, and each one's position among them.
fn defined(cx: &Ctx) -> (Vec<Val>, HashMap<Val, usize>) {
    let funcs: Vec<Val> = cx
        .functions()
        .into_iter()
        .filter(|f| !f.is_declaration())
        .collect();
    let index = funcs.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    (funcs, index)
}

/// The calls of `f` that may run the program's code: `None` for an invoke
/// or callbr (never followed), else the call with its class (not `NotSite`
/// or `Setjmp`).
fn program_calls(f: Val) -> Vec<Option<(Val, CallClass)>> {
    let mut out = Vec::new();
    for b in f.blocks() {
        for c in b.instructions() {
            match c.opcode() {
                Some(LLVMOpcode::LLVMCall) => match classify_call(c) {
                    CallClass::NotSite | CallClass::Setjmp => {}
                    class => out.push(Some((c, class))),
                },
                Some(LLVMOpcode::LLVMInvoke | LLVMOpcode::LLVMCallBr) => out.push(None),
                _ => {}
            }
        }
    }
    out
}

/// The defined functions of the module that need an entry poll.
pub fn needing_entry_polls(cx: &Ctx) -> HashSet<Val> {
    let (funcs, index) = defined(cx);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); funcs.len()];
    let mut needs: HashSet<Val> = HashSet::new();
    for (i, &f) in funcs.iter().enumerate() {
        if f.name() == "main" {
            // libc enters it: a restore starts there.
            needs.insert(f);
        }
        for call in program_calls(f) {
            let callee = call.map(|(c, _)| c.called_operand());
            match callee.and_then(|c| index.get(&c).map(|&j| (c, j))) {
                Some((c, j)) if c.is_function() && resolved_here(c) => edges[i].push(j),
                _ => {
                    needs.insert(f);
                }
            }
        }
    }
    for scc in cycles(&edges) {
        needs.extend(scc.into_iter().map(|i| funcs[i]));
    }
    needs
}

/// The defined functions that can never reach a migration point: no loop,
/// no entry poll (`polled`), and every call either no site or to another
/// such function. A call to one is no site: its frame, and so its caller's
/// frame at that call, is never on the stack when a migration point runs,
/// and the call needs no statepoint, site record or resume path.
pub fn point_free(cx: &Ctx, polled: &HashSet<Val>) -> HashSet<Val> {
    let (funcs, index) = defined(cx);
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); funcs.len()];
    let mut reaches: Vec<bool> = funcs
        .iter()
        .map(|&f| polled.contains(&f) || !resolved_here(f) || has_cycles(f))
        .collect();
    for (i, &f) in funcs.iter().enumerate() {
        for call in program_calls(f) {
            // Invokes, calls that cannot be statepoints, calls of unknown
            // targets: anything may run.
            let targets = match call {
                Some((c, CallClass::Site)) => call_targets(c),
                _ => None,
            };
            let Some(targets) = targets else {
                reaches[i] = true;
                continue;
            };
            for callee in targets {
                match index.get(&callee) {
                    Some(&j) => callers[j].push(i),
                    None => reaches[i] = true,
                }
            }
        }
    }
    // What reaches a point makes its callers reach one.
    let mut work: Vec<usize> = (0..funcs.len()).filter(|&i| reaches[i]).collect();
    while let Some(j) = work.pop() {
        for &i in &callers[j] {
            if !reaches[i] {
                reaches[i] = true;
                work.push(i);
            }
        }
    }
    funcs
        .iter()
        .zip(reaches)
        .filter(|(_, r)| !r)
        .map(|(f, _)| *f)
        .collect()
}

/// The defined functions whose entry poll would be a redirected entry (no
/// instruction: `transform`), which reach a migration point without one:
/// those with loops that can return before entering one or calling
/// (`poll::returns_early`). Not variadic ones, whose entry poll is a real
/// one (they have no resume copy).
pub fn redirectable(cx: &Ctx) -> Vec<Val> {
    defined(cx)
        .0
        .into_iter()
        .filter(|&f| {
            !f.function_type().is_vararg_fn() && has_cycles(f) && super::poll::returns_early(f)
        })
        .collect()
}

/// Whether `f` has a loop or another cycle (irreducible control flow):
/// somewhere to poll.
fn has_cycles(f: Val) -> bool {
    let cfg = function_cfg(f).1;
    !cfg.poll_blocks(&cfg.loops()).is_empty()
}

/// The functions `call` can run: its callee, or every entry of the constant
/// table of this module it loads its callee from (`ops[op](vm)`, the
/// dispatch of an interpreter). None when that is not known.
pub fn call_targets(call: Val) -> Option<Vec<Val>> {
    let callee = call.called_operand();
    if callee.is_function() {
        return Some(vec![callee]);
    }
    if callee.opcode()? != LLVMOpcode::LLVMLoad {
        return None;
    }
    let mut table = callee.operand(0);
    if table.any_opcode() == Some(LLVMOpcode::LLVMGetElementPtr) {
        table = table.operand(0);
    }
    if !table.is_global_variable() || !resolved_here(table) {
        return None;
    }
    let entries = table.constant_array_entries()?;
    entries.iter().all(|e| e.is_function()).then_some(entries)
}

/// Whether a call to this definition runs this definition (not one another
/// translation unit may supply instead).
fn resolved_here(f: Val) -> bool {
    use LLVMLinkage::*;
    matches!(
        f.linkage(),
        LLVMExternalLinkage
            | LLVMInternalLinkage
            | LLVMPrivateLinkage
            | LLVMLinkOnceODRLinkage
            | LLVMWeakODRLinkage
    )
}

/// The nodes on cycles: strongly connected components with more than one
/// node or a self edge (Tarjan's algorithm, iterative: call chains of big
/// programs are deep).
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let (mut index, mut low) = (vec![NONE; n], vec![0; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut out, mut next) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(v, pos)) = work.last() {
            if let Some(&w) = edges[v].get(pos) {
                work.last_mut().expect("not empty").1 += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 || edges[v].contains(&v) {
                    out.push(scc);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cycles;

    fn sorted(mut c: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        for s in &mut c {
            s.sort();
        }
        c.sort();
        c
    }

    #[test]
    fn finds_self_loops_and_mutual_recursion_only() {
        // 0 -> 1 -> 2 -> 1, 3 -> 3, 4 -> 0, 5 alone
        let e = vec![vec![1], vec![2], vec![1], vec![3], vec![0], vec![]];
        assert_eq!(sorted(cycles(&e)), vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn a_long_chain_into_a_cycle() {
        let n = 100_000;
        let mut e: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        e[n - 1] = vec![n - 3];
        assert_eq!(sorted(cycles(&e)), vec![vec![n - 3, n - 2, n - 1]]);
    }
}
