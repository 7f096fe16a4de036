//! Dispatch loops of computed-goto interpreters poll through their label
//! table (DESIGN-NOTES "Dispatch loops poll through their label table";
//! FORMATS §5 "Label tables").
//!
//! `goto *table[op]` is a loop whose header loads the next label and jumps
//! there, on every instruction the interpreter runs. A poll in that header
//! cost Lua more than the no-op itself: LLVM duplicates no block ending in
//! an `asm goto`, so every handler went back through one shared jump, and
//! values the slow path needs stayed in memory. Here the header keeps no
//! poll. Each label gets a trampoline, a block with a poll that goes on to
//! the label, and a second table of the trampolines' addresses; while a
//! migration is requested the runtime copies that table over the one the
//! header loads from, so the next dispatch goes through a poll. The table
//! becomes writable data that each variant keeps for itself (its own code
//! addresses), next to a constant copy of its contents to restore.

use crate::ir::{Block, Builder, Ctx, Val};
use hc_metadata::isa::LOCAL_DATA_PREFIX;
use inkwell::llvm_sys::LLVMOpcode;

/// A loop header that dispatches through a label table, with its
/// trampolines.
pub struct Dispatch {
    pub header: Block,
    pub table: Val,
    /// (label, its trampoline), in the table's order of first appearance.
    pub trampolines: Vec<(Block, Block)>,
}

/// The label table loop header `h` of `f` dispatches through: `h` ends in
/// `indirectbr` on a label it loads from a constant table of `f`'s block
/// addresses (and nulls), which nothing else uses, and calls and writes
/// nothing (a poll on the way to each label is one at the end of `h`, and
/// the values it finds there are those of `h`'s start and what `h`
/// computed from them; shadow.rs counts it there).
pub fn table_of(f: Val, h: Block) -> Option<Val> {
    let br = h.terminator()?;
    if br.opcode() != Some(LLVMOpcode::LLVMIndirectBr) {
        return None;
    }
    let load = br.operand(0);
    if load.opcode() != Some(LLVMOpcode::LLVMLoad) || load.block() != h || load.is_volatile() {
        return None;
    }
    let addr = load.operand(0);
    let (table, gep) = if addr.opcode() == Some(LLVMOpcode::LLVMGetElementPtr) {
        (addr.operand(0), Some(addr))
    } else {
        (addr, None)
    };
    let entries = table.constant_array_entries()?;
    if !entries
        .iter()
        .all(|e| e.block_address_in(f).is_some() || e.is_null_constant())
    {
        return None;
    }
    // The header's load is the table's only reader.
    let only_here = table
        .uses()
        .into_iter()
        .all(|(u, _)| Some(u) == gep && u.uses().into_iter().all(|(l, _)| l == load) || u == load);
    if !only_here || gep.is_some_and(|g| g.block() != h) {
        return None;
    }
    let pure = h.instructions().into_iter().all(|i| {
        i == br
            || i.is_phi()
            || (i.opcode() == Some(LLVMOpcode::LLVMLoad) && !i.is_volatile() && !i.is_atomic())
            || matches!(
                i.opcode(),
                Some(
                    LLVMOpcode::LLVMAdd
                        | LLVMOpcode::LLVMSub
                        | LLVMOpcode::LLVMMul
                        | LLVMOpcode::LLVMAnd
                        | LLVMOpcode::LLVMOr
                        | LLVMOpcode::LLVMXor
                        | LLVMOpcode::LLVMShl
                        | LLVMOpcode::LLVMLShr
                        | LLVMOpcode::LLVMAShr
                        | LLVMOpcode::LLVMZExt
                        | LLVMOpcode::LLVMSExt
                        | LLVMOpcode::LLVMTrunc
                        | LLVMOpcode::LLVMGetElementPtr
                        | LLVMOpcode::LLVMICmp
                        | LLVMOpcode::LLVMSelect
                        | LLVMOpcode::LLVMFreeze
                )
            )
    });
    pure.then_some(table)
}

/// Gives each label of `table` a trampoline: a block before it that goes
/// on to it, one more destination of `h`'s `indirectbr` (the label's phis
/// take the trampoline's entry from `h`'s). Instrumentation puts a poll
/// in each, as in a loop header; `f` and its resume copy get the same ones,
/// so they have the same sites.
pub fn add_trampolines(cx: &Ctx, f: Val, h: Block, table: Val) -> Dispatch {
    let br = h.terminator().expect("table_of checked the header");
    let mut labels: Vec<Block> = Vec::new();
    for e in table.constant_array_entries().expect("table_of checked it") {
        if let Some(b) = e.block_address_in(f) {
            if !labels.contains(&b) {
                labels.push(b);
            }
        }
    }
    let b = Builder::new(cx);
    let trampolines = labels
        .into_iter()
        .map(|label| {
            let t = cx.insert_block_before(label, "hc.dispatch.poll");
            b.at_end(t).br(label);
            for phi in label.phis() {
                let from_h = phi
                    .incoming()
                    .into_iter()
                    .find(|&(_, bb)| bb == h)
                    .map(|(v, _)| v);
                phi.add_incoming(from_h.unwrap_or_else(|| cx.poison(phi.ty())), t);
            }
            (label, t)
        })
        .collect::<Vec<_>>();
    let mut dests = h.successors();
    dests.extend(trampolines.iter().map(|t| t.1));
    b.before(br);
    b.indirect_br(br.operand(0), &dests).copy_debug_loc(br);
    br.erase();
    Dispatch {
        header: h,
        table,
        trampolines,
    }
}

/// In `f` itself (its copy keeps the poll in the header): the table becomes
/// writable data of each variant's own, and two constant tables, of the
/// trampolines' addresses and of the labels', are what the runtime copies
/// over it while a migration is requested and after (listed in
/// `__hc_tables`).
pub fn poll_tables(cx: &Ctx, f: Val, d: &Dispatch) {
    let entries = d
        .table
        .constant_array_entries()
        .expect("table_of checked it");
    let polled: Vec<Val> = entries
        .iter()
        .map(|e| match e.block_address_in(f) {
            Some(label) => {
                let t = d
                    .trampolines
                    .iter()
                    .find(|(l, _)| *l == label)
                    .expect("every label has a trampoline")
                    .1;
                cx.block_address(f, t)
            }
            None => *e,
        })
        .collect();
    let name = d.table.name();
    let align = d.table.alignment();
    let poll = cx.constant_table(&format!("{name}.hc.poll"), cx.ptr(), &polled, align);
    let plain = cx.constant_table(&format!("{name}.hc.plain"), cx.ptr(), &entries, align);
    d.table.set_global_constant(false);
    d.table.set_section(&format!("{LOCAL_DATA_PREFIX}{name}"));
    super::poll::list_table(cx, f, d.table, plain, poll, entries.len());
}
