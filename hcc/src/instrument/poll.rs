//! One-instruction polls (DESIGN-NOTES "Polls are a patched no-op";
//! FORMATS §5 "Polls").
//!
//! Instrumentation writes a poll as a volatile load of the poll word, a
//! compare and a branch to the slow path; liveness, resume paths and SSA
//! repair all see that ordinary shape. Last, each one becomes `asm goto` of
//! the ISA's no-op, listed in `__hc_polls` with its slow path, and the
//! runtime patches every listed no-op into a jump there while the poll word
//! is set (runtime/native/hcrt.c, `polls_patch`). The code that runs pays one
//! instruction per poll instead of three (a load and compare, a branch).

use super::abi;
use crate::ir::{Builder, Ctx, Val};
use hc_metadata::isa::{EntryRedirect, ENTRY_PREFIX, ENTRY_SECTION, POLL_SECTION, TABLE_SECTION};
use hc_metadata::Isa;
use inkwell::llvm_sys::{LLVMIntPredicate, LLVMOpcode};

/// The asm statement of a poll in function `f`: the no-op, then its entry
/// in the table (offset of the no-op from the entry, offset of the slow path
/// from the no-op). `${:uid}` is unique per emitted statement, so the code
/// generator may duplicate a poll. The entry goes into a table section
/// linked to `f`'s (SHF_LINK_ORDER): `--gc-sections` keeps it exactly when
/// it keeps `f`, in both of hld's passes.
fn template(isa: Isa, f: &str) -> String {
    format!(
        ".Lhc.poll${{:uid}}:\n\t{nop}\n\t.pushsection {POLL_SECTION},\"ao\",%progbits,{f}\n\t\
         .balign 4\n\t.long .Lhc.poll${{:uid}} - .\n\t.long ${{0:l}} - .Lhc.poll${{:uid}}\n\t\
         .popsection",
        nop = isa.info().poll_nop,
        f = asm_symbol(f),
    )
}

/// A symbol as inline asm text: quoted unless plain, `$` doubled (inline
/// asm's escape).
fn asm_symbol(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let s = if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    };
    s.replace('$', "$$")
}

/// Makes `--gc-sections` keep `copy`, the resume copy of `f`, exactly when
/// it keeps `f`: only the runtime's tables lead to a copy, so `f` gets a
/// relocation to it that emits no code (`.reloc ., BFD_RELOC_NONE`). (A
/// redirected entry's listing, kept with `f`, refers to the copy itself.)
pub fn keep_with(cx: &Ctx, f: Val, copy: Val) {
    asm_at_start(
        cx,
        f,
        &format!(".reloc ., BFD_RELOC_NONE, {}", asm_symbol(&copy.name())),
    );
}

/// Lists label table `table` of `f` (FORMATS §5 "Label tables"): where it
/// is, its contents to restore (`plain`), the trampolines' table the
/// runtime copies over it while a migration is requested (`poll`), and its
/// length. In a section linked to `f`'s, like polls.
pub fn list_table(cx: &Ctx, f: Val, table: Val, plain: Val, poll: Val, len: usize) {
    let [fs, ts, ps, qs] = [f, table, plain, poll].map(|v| asm_symbol(&v.name()));
    asm_at_start(
        cx,
        f,
        &format!(
            ".pushsection {TABLE_SECTION},\"ao\",%progbits,{fs}\n\t.balign 4\n\t\
             .long {ts} - .\n\t.long {ps} - .\n\t.long {qs} - .\n\t.long {len}\n\t\
             .popsection"
        ),
    );
}

/// Puts an asm statement that emits no instruction of `f` (directives) at
/// the start of its entry block.
fn asm_at_start(cx: &Ctx, f: Val, asm: &str) {
    let Some(first) = f
        .blocks()
        .first()
        .and_then(|b| b.instructions().first().copied())
    else {
        return;
    };
    let b = Builder::new(cx);
    b.before(first);
    b.asm(cx, asm);
}

/// Whether `br` is a poll: `br (icmp ne (load volatile @__hc_poll), 0), slow, go`.
fn is_poll(br: Val, word: Val) -> bool {
    if br.opcode() != Some(LLVMOpcode::LLVMBr) || br.num_operands() != 3 {
        return false;
    }
    let c = br.operand(0);
    if c.opcode() != Some(LLVMOpcode::LLVMICmp)
        || c.icmp_predicate() != Some(LLVMIntPredicate::LLVMIntNE)
        || c.operand(1).const_int_value() != Some(0)
    {
        return false;
    }
    let load = c.operand(0);
    load.opcode() == Some(LLVMOpcode::LLVMLoad) && load.operand(0) == word && load.is_volatile()
}

/// The x86_64 prefix of a redirected entry up to its `rel32`: `int3`
/// padding, then `jmp rel32`'s opcode; the `rel32` ends at the entry.
const X86_PREFIX_HEAD: [u8; ENTRY_PREFIX as usize - 4] = [0xcc, 0xcc, 0xcc, 0xe9];

/// Makes `f`'s entry poll a redirected entry (FORMATS §5 "Entries"): the
/// code that runs has no poll at its entry; while a migration is requested
/// the runtime makes the entry a jump to `copy`, whose own entry poll then
/// restores or migrates — what the poll's slow path did with a tail call.
/// The entry is listed in a table section linked to `f`'s, like polls
/// (the code generator may duplicate the listing: the runtime patches an
/// entry once).
pub fn redirect_entry(cx: &Ctx, isa: Isa, f: Val, copy: Val) {
    // ENTRY_PREFIX bytes before the entry on every ISA, so the function is
    // at the same offset in its section, and at the same address, in every
    // variant.
    let byte = |v| cx.const_int(cx.i8(), v);
    let prefix: Vec<Val> = match isa.info().entry_redirect {
        // `jmp rel32` to the copy ends at the entry: rel32 = copy - f.
        EntryRedirect::PrefixJump => {
            cx.set_fn_string_attr(f, "patchable-function", "prologue-short-redirect");
            let mut p: Vec<Val> = X86_PREFIX_HEAD.iter().map(|&b| byte(b.into())).collect();
            p.push(cx.const_rel32(copy, f));
            p
        }
        EntryRedirect::Branch => vec![byte(0); ENTRY_PREFIX as usize],
    };
    f.set_prefix_data(cx.const_packed_struct(&prefix));
    // The entry goes into the copy's code: module-level asm comes before
    // the functions, where `f` is not yet defined to link the section to.
    let (fs, cs) = (asm_symbol(&f.name()), asm_symbol(&copy.name()));
    asm_at_start(
        cx,
        copy,
        &format!(
            ".pushsection {ENTRY_SECTION},\"ao\",%progbits,{fs}\n\t.balign 4\n\t\
             .long {fs} - .\n\t.long {cs} - .\n\t.popsection"
        ),
    );
}

/// Turns the module's polls into patchable no-ops, except where a load and
/// a branch costs less (`returns_early`).
pub fn make_patchable(cx: &Ctx, isa: Isa) {
    let Some(word) = cx.global(abi::POLL) else {
        return;
    };
    let b = Builder::new(cx);
    for f in cx.functions() {
        if !super::ablated("leaf-branch-polls") && calls_only_polls(f) && returns_early(f) {
            continue;
        }
        let asm = template(isa, &f.name());
        for blk in f.blocks() {
            let Some(br) = blk.terminator() else { continue };
            if !is_poll(br, word) {
                continue;
            }
            let succ = blk.successors();
            let (slow, go) = (succ[0], succ[1]);
            b.before(br);
            let poll = b.callbr_asm(cx, &asm, go, slow);
            poll.copy_debug_loc(br);
            let c = br.operand(0);
            br.erase();
            if c.uses().is_empty() {
                let load = c.operand(0);
                c.erase();
                if load.uses().is_empty() {
                    load.erase();
                }
            }
        }
    }
}

/// Whether a poll whose values take `words` record words writes them into
/// the runtime's buffer on its slow path (few values), or passes them as
/// deopt operands that the stack map locates (many). A slow path that
/// stores many values needs a register for each one the allocator has
/// spilled, and around a patched no-op it cannot split a live range
/// between the `asm goto` and its label (a block ending in one has its
/// last split point before it): such loops stored registers on the hot
/// path. Those polls used to stay a load and a branch (more than 20
/// stores); as deopt operands a spilled value is named where it is, and
/// the poll is a no-op like any other. Callgrind against that: bzip2
/// (1 MiB of C text) 359.40 M -> 355.23 M, sqlite3 (`queries.sql`)
/// 324.08 M -> 322.26 M, Lua unchanged (454.04 M). Every poll as deopt
/// operands: bzip2 355.48 M, but sqlite3 329.32 M (`sqlite3VdbeExec`'s
/// dispatch poll) and Lua 455.11 M.
pub fn buffered(words: usize) -> bool {
    words < MAX_BUFFERED_WORDS
}

/// Record words (plus the busy mark: 20 stores) a buffered poll may write.
const MAX_BUFFERED_WORDS: usize = 20;

/// Whether `f` can return without calling anything or entering a loop:
/// then many of its calls are short, and what runs at its entry counts.
/// `mod.rs` redirects such a function's entry (no instruction at all) even
/// when it has loops. And one that calls nothing but its polls' slow paths
/// keeps its polls a load of `__hc_poll` and a branch (`make_patchable`):
/// LLVM's shrink-wrapping, which saves callee-saved registers only on the
/// paths that need them, gives up on a function with an `asm goto` target.
/// bzip2's `mainGtU`, which mostly returns after its first byte
/// comparisons and needs `rbx` only in its loop, pushed and popped it on
/// every call for its loop's patched poll: 1.4 M instructions on 1 MiB of
/// text, 0.46 M with the poll a load and a branch. (In a function that
/// also calls, load-and-branch polls let LLVM shrink-wrap too, but Lua lost
/// as much in loops that now ran two instructions a poll as it gained.) A
/// leaf whose returns are all inside loops gains nothing (Lua's
/// `luaH_getshortstr` keeps a frame for the slow path's call either way).
pub fn returns_early(f: Val) -> bool {
    if f.blocks().is_empty() {
        return false;
    }
    let (blocks, cfg) = super::function_cfg(f);
    let headers: std::collections::HashSet<usize> =
        cfg.poll_blocks(&cfg.loops()).into_iter().collect();
    let calls = |b: crate::ir::Block| {
        b.instructions().into_iter().any(|i| {
            if i.opcode() != Some(LLVMOpcode::LLVMCall) {
                return false;
            }
            let c = i.called_operand();
            // Intrinsics are no calls, but for statepoints and the ones
            // that may become library calls.
            let intrinsic = c.is_function() && {
                let n = c.name();
                n.starts_with("llvm.") && !n.starts_with("llvm.mem") && !is_statepoint(c)
            };
            !(c.is_inline_asm() || intrinsic)
        })
    };
    // From the entry to a return without passing a loop header or a call.
    let mut seen = vec![false; blocks.len()];
    let mut work = vec![0];
    seen[0] = true;
    while let Some(x) = work.pop() {
        if calls(blocks[x]) {
            continue;
        }
        let t = blocks[x].terminator();
        if t.is_some_and(|t| t.opcode() == Some(LLVMOpcode::LLVMRet)) {
            return true;
        }
        for &s in &cfg.succs[x] {
            if !seen[s] && !headers.contains(&s) {
                seen[s] = true;
                work.push(s);
            }
        }
    }
    false
}

/// Whether `f` calls nothing but its polls' slow paths (the migration point).
fn calls_only_polls(f: Val) -> bool {
    f.blocks()
        .into_iter()
        .flat_map(|b| b.instructions())
        .all(|i| {
            if i.opcode() != Some(LLVMOpcode::LLVMCall) {
                return true;
            }
            let c = i.called_operand();
            if c.is_inline_asm() {
                return true;
            }
            if !c.is_function() {
                return false;
            }
            if is_statepoint(c) {
                let target = i.operand(2);
                return target.is_function() && target.name() == abi::MIGRATE_POINT;
            }
            c.name().starts_with("llvm.")
        })
}

fn is_statepoint(c: Val) -> bool {
    c.name().starts_with("llvm.experimental.gc.statepoint")
}

/// x86_64: makes a redirected entry's leading `nop; push %reg` (`66 90 5r`,
/// the 2-byte `nop` "prologue-short-redirect" puts before a 1-byte first
/// instruction) the one 3-byte instruction `push %reg` (`48 ff f0+r`), so
/// the code that runs has no instruction at its entry. The push still ends
/// at byte 3, where the unwind tables say it does. A redirected entry is
/// recognized by its prefix (`X86_PREFIX_HEAD`) at the start of its
/// section.
pub fn widen_entry_pushes(obj: &mut [u8]) -> Result<(), String> {
    use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
    let file = object::File::parse(&*obj).map_err(|e| e.to_string())?;
    let mut at = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.address() != ENTRY_PREFIX {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let Ok(sec) = file.section_by_index(index) else {
            continue;
        };
        let Some((off, size)) = sec.file_range() else {
            continue;
        };
        let (off, size, p) = (off as usize, size as usize, ENTRY_PREFIX as usize);
        if size >= p + 3 && obj[off..off + X86_PREFIX_HEAD.len()] == X86_PREFIX_HEAD {
            let head = &obj[off + p..off + p + 3];
            if head[..2] == [0x66, 0x90] && (0x50..=0x57).contains(&head[2]) {
                at.push(off + p);
            }
        }
    }
    for &i in &at {
        let reg = obj[i + 2] - 0x50;
        obj[i..i + 3].copy_from_slice(&[0x48, 0xff, 0xf0 + reg]);
    }
    Ok(())
}
