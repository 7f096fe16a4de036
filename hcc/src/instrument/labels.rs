//! Label addresses that leave their `goto *` (DESIGN-NOTES "Label
//! addresses kept in memory are the same on every ISA").
//!
//! `&&label` is a code address, and code differs between variants (and
//! between a function and its resume copy). While a label address only
//! goes from a table or a constant to the function's own `goto *`, each
//! variant computes its own and nothing migrates one. Direct-threaded
//! interpreters keep them in memory instead — `code[i] = labels[op]` when a
//! program is loaded, then `goto *code[pc++]`, or offsets `&&op - &&base`
//! — and after a migration those would send the new ISA's code to the old
//! one's addresses. In such a function every label address becomes an
//! address in a byte array of its own (`<f>.hc.labels`, one byte per
//! label, at the same address in every variant like any global), and every
//! `goto *` a `switch` on the offset into it, which each variant compiles
//! to a jump table of its own code. Label arithmetic keeps working: the
//! byte addresses are in the labels' order.
//!
//! Runs on the module as clang produced it, before optimization: labels
//! are then numbered in source order on every ISA alike.

use crate::ir::{Block, Builder, Ctx, Val};
use inkwell::llvm_sys::{LLVMOpcode, LLVMTypeKind};
use std::collections::{HashMap, HashSet};

/// Gives every function whose label addresses can reach memory (or
/// anything but its own `goto *`) ISA-neutral label addresses.
pub fn neutralize(cx: &Ctx) {
    // Each function's label tables: the globals whose initializers name its
    // blocks, found in one walk over every initializer.
    let mut tables: HashMap<Val, (Vec<Val>, HashSet<Block>)> = HashMap::new();
    for g in cx.globals() {
        let Some(init) = g.initializer() else {
            continue;
        };
        let mut named = Vec::new();
        collect(init, &mut named, 0);
        let mut seen = HashSet::new();
        for (f, b) in named {
            let (globals, blocks) = tables.entry(f).or_default();
            if seen.insert(f) {
                globals.push(g);
            }
            blocks.insert(b);
        }
    }
    for f in cx.functions().into_iter().filter(|f| !f.is_declaration()) {
        let (globals, in_tables) = tables.remove(&f).unwrap_or_default();
        let labels = address_taken(f, in_tables);
        if labels.is_empty() || !escape(f, &globals) {
            continue;
        }
        rewrite(cx, f, &labels);
    }
}

/// `f`'s blocks whose address is taken, in `f`'s block order: the
/// destinations of its `indirectbr`s and the blocks named by its
/// `blockaddress` constants, in its code or (`in_tables`) in global
/// initializers.
fn address_taken(f: Val, mut found: HashSet<Block>) -> Vec<Block> {
    for blk in f.blocks() {
        for i in blk.instructions() {
            if i.opcode() == Some(LLVMOpcode::LLVMIndirectBr) {
                found.extend(blk.successors());
            }
            let mut named = Vec::new();
            for op in i.operands() {
                collect(op, &mut named, 0);
            }
            found.extend(named.into_iter().filter(|(g, _)| *g == f).map(|(_, b)| b));
        }
    }
    f.blocks()
        .into_iter()
        .filter(|b| found.contains(b))
        .collect()
}

/// The (function, block) pairs constant `c` names, at any depth.
fn collect(c: Val, named: &mut Vec<(Val, Block)>, depth: u32) {
    if !c.is_constant() || c.is_function() || c.is_global_variable() || depth > 16 {
        return;
    }
    if let Some(fb) = c.block_address() {
        named.push(fb);
        return;
    }
    for op in c.operands() {
        collect(op, named, depth + 1);
    }
}

/// Whether constant `c` holds a label address of `f` inside another
/// constant (arithmetic, a struct): anywhere but as itself or as an
/// element of an array.
fn nested_label(f: Val, c: Val) -> bool {
    let mut named = Vec::new();
    collect(c, &mut named, 0);
    named.iter().any(|(g, _)| *g == f) && c.block_address_in(f).is_none()
}

/// Whether a label address of `f` can get anywhere but an `indirectbr` of
/// `f` (or a comparison): stored outside a local variable, passed to a
/// call, returned, turned into an integer, computed with. `tables`: the
/// globals whose initializers name `f`'s blocks.
fn escape(f: Val, tables: &[Val]) -> bool {
    // Values that hold a label address, to follow to their users.
    let mut values: Vec<Val> = Vec::new();
    for &g in tables {
        let Some(init) = g.initializer() else {
            continue;
        };
        // A plain array of labels (and nulls), only ever read.
        let plain = init.ty().kind() == LLVMTypeKind::LLVMArrayTypeKind
            && init
                .operands()
                .all(|e| e.block_address_in(f).is_some() || e.is_null_constant());
        if !plain && init.block_address_in(f).is_none() {
            return true;
        }
        for (u, idx) in g.uses() {
            match reads(u, idx) {
                Some(loads) => values.extend(loads),
                None => return true,
            }
        }
    }
    // Label addresses written into `f`'s code.
    for blk in f.blocks() {
        for i in blk.instructions() {
            for (k, op) in i.operands().enumerate() {
                if op.block_address_in(f).is_some() {
                    if !harmless_use(i, k as u32, &mut values) {
                        return true;
                    }
                } else if nested_label(f, op) {
                    return true;
                }
            }
        }
    }
    let mut seen: HashSet<Val> = HashSet::new();
    while let Some(v) = values.pop() {
        if !seen.insert(v) {
            continue;
        }
        for (u, k) in v.uses() {
            if !harmless_use(u, k, &mut values) {
                return true;
            }
        }
    }
    false
}

/// The loads that read a label table through its use `u` (operand `idx`):
/// a load of it, or a `getelementptr` (instruction or constant) into it
/// that only loads read. None: some other use.
fn reads(u: Val, idx: u32) -> Option<Vec<Val>> {
    match u.any_opcode() {
        Some(LLVMOpcode::LLVMLoad) if idx == 0 && !u.is_volatile() => Some(vec![u]),
        Some(LLVMOpcode::LLVMGetElementPtr) if idx == 0 => {
            let mut out = Vec::new();
            for (l, k) in u.uses() {
                out.extend(reads(l, k)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether operand `k` of `u`, a label address, stays within `f`'s
/// jumps; values that then hold it too go to `more`.
fn harmless_use(u: Val, k: u32, more: &mut Vec<Val>) -> bool {
    match u.opcode() {
        Some(LLVMOpcode::LLVMIndirectBr) => k == 0,
        Some(LLVMOpcode::LLVMICmp) => true,
        Some(LLVMOpcode::LLVMPHI) => {
            more.push(u);
            true
        }
        Some(LLVMOpcode::LLVMSelect) if k > 0 => {
            more.push(u);
            true
        }
        // Into a local variable only loaded and stored (clang's `void *p`
        // before mem2reg): what its loads read is a label address too.
        Some(LLVMOpcode::LLVMStore) if k == 0 => {
            let slot = u.operand(1);
            if !private_slot(slot) {
                return false;
            }
            for (l, i) in slot.uses() {
                if l.opcode() == Some(LLVMOpcode::LLVMLoad) && i == 0 {
                    more.push(l);
                }
            }
            true
        }
        _ => false,
    }
}

/// An alloca whose address is only loaded from, stored to, or marked with
/// lifetime intrinsics.
fn private_slot(a: Val) -> bool {
    a.is_alloca()
        && a.uses().into_iter().all(|(u, k)| match u.opcode() {
            Some(LLVMOpcode::LLVMLoad) => k == 0 && !u.is_volatile(),
            Some(LLVMOpcode::LLVMStore) => k == 1 && !u.is_volatile(),
            Some(LLVMOpcode::LLVMCall) => u.called_operand().name().starts_with("llvm.lifetime."),
            _ => false,
        })
}

/// Label `k` of `f` becomes byte `k` of `<f>.hc.labels`; each `indirectbr`
/// a `switch` on the offset from its start.
fn rewrite(cx: &Ctx, f: Val, labels: &[Block]) {
    let array = cx.byte_array(&format!("{}.hc.labels", f.name()), labels.len() as u64);
    let number: HashMap<Block, u64> = labels
        .iter()
        .enumerate()
        .map(|(k, b)| (*b, k as u64))
        .collect();
    for (k, b) in labels.iter().enumerate() {
        let at = cx.const_gep_i8(array, k as u64);
        cx.block_address(f, *b).replace_all_uses_with(at);
    }
    let b = Builder::new(cx);
    let i64t = cx.i64();
    let mut bad: Option<Block> = None;
    let jumps: Vec<Val> = f
        .blocks()
        .into_iter()
        .filter_map(|blk| blk.terminator())
        .filter(|t| t.opcode() == Some(LLVMOpcode::LLVMIndirectBr))
        .collect();
    for jump in jumps {
        let dests = jump.block().successors();
        // A jump to what is no label is undefined, as it was.
        let bad = *bad.get_or_insert_with(|| {
            let blk = cx.append_block(f, "hc.label.bad");
            b.at_end(blk).unreachable();
            blk
        });
        b.before(jump);
        let addr = b.ptr_to_int(jump.operand(0), i64t, "");
        let base = b.ptr_to_int(array, i64t, "");
        let offset = b.sub(addr, base, "hc.label");
        // A destination listed again keeps its edge (the phis there have
        // an entry for each) through an offset past the labels, which no
        // label address has.
        let mut spare = labels.len() as u64;
        let mut taken: HashSet<u64> = HashSet::new();
        let cases: Vec<(Val, Block)> = dests
            .into_iter()
            .map(|d| {
                let mut k = number[&d];
                if !taken.insert(k) {
                    k = spare;
                    spare += 1;
                }
                (cx.const_int(i64t, k), d)
            })
            .collect();
        b.switch(offset, bad, &cases);
        jump.erase();
    }
}
