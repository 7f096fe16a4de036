//! Alignments the ISAs' front ends choose differently, made one.
//!
//! clang aligns a variable of array type of 16 bytes or more to 16 bytes
//! on x86_64 (its psABI asks it of locals; clang does it for globals too)
//! and to its element's alignment on aarch64. The optimizer's folds read
//! alignment — `strcmp(buf, "abc") == 0` becomes one 4-byte compare only
//! where `buf` is known to be aligned, a `bcmp` call where not — so the
//! variants' call sites differed and consensus gave such functions up.
//! Every module gets every ISA's rule (`IsaInfo::large_array_align`)
//! before it is optimized. Raising an alignment never breaks a program,
//! except where padding would: globals in a section of the program's own
//! (linker sets, walked as one array) keep theirs.

use crate::ir::{Ctx, Ty};
use hc_metadata::Isa;
use inkwell::llvm_sys::LLVMTypeKind;

/// Raises the alignment of array allocas and array globals defined here
/// to the largest any ISA's front end would give them.
pub fn large_arrays(cx: &Ctx) {
    let rules: Vec<(u64, u32)> = Isa::ALL
        .iter()
        .filter_map(|i| i.info().large_array_align)
        .collect();
    let wanted = |ty: Ty| -> Option<u32> {
        if ty.kind() != LLVMTypeKind::LLVMArrayTypeKind {
            return None;
        }
        let size = cx.abi_size(ty);
        rules
            .iter()
            .filter(|(min, _)| size >= *min)
            .map(|(_, align)| *align)
            .max()
    };
    for f in cx.functions() {
        for b in f.blocks() {
            for i in b.instructions() {
                if !i.is_alloca() {
                    continue;
                }
                if let Some(a) = wanted(i.allocated_type()) {
                    if i.alignment() < a {
                        i.set_alignment(a);
                    }
                }
            }
        }
    }
    for g in cx.globals() {
        // String literals and other unnamed constants get no rule on any ISA.
        if g.initializer().is_none() || g.section().is_some() || g.is_unnamed_addr() {
            continue;
        }
        if let Some(a) = wanted(g.value_type()) {
            if g.alignment() < a {
                g.set_alignment(a);
            }
        }
    }
}
