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
            let build = |at: Val| {
                b.before(at);
                let mut agg = links[0].operand(0);
                for link in &links {
                    let copy = link.clone_inst();
                    b.insert(copy);
                    copy.set_operand(0, agg);
                    agg = copy;
                }
                agg
            };
            let mut rebuilt = false;
            // One copy per incoming block: a phi may list a block twice
            // (a switch's cases), and then with one value.
            let mut at_block_end: Vec<(Block, Val)> = Vec::new();
            for (user, k) in top.uses() {
                if user.opcode() == Some(LLVMOpcode::LLVMInsertValue) {
                    continue;
                }
                let agg = if user.is_phi() {
                    let from = user.incoming()[k as usize].1;
                    if !apart(links[0], None, from) {
                        continue;
                    }
                    match at_block_end.iter().find(|(bl, _)| *bl == from) {
                        Some(&(_, agg)) => agg,
                        None => {
                            let end = from.terminator().expect("a predecessor ends in a branch");
                            let agg = build(end);
                            at_block_end.push((from, agg));
                            agg
                        }
                    }
                } else {
                    if !apart(links[0], Some(user), user.block()) {
                        continue;
                    }
                    build(user)
                };
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

#[cfg(test)]
mod tests {
    use super::*;
    use inkwell::context::Context;
    use inkwell::memory_buffer::MemoryBuffer;

    /// Runs the rewrite on `ir` and returns the module's text; panics if the
    /// result does not verify.
    fn rebuilt(ir: &str) -> String {
        let ctx = Context::create();
        let buf = MemoryBuffer::create_from_memory_range_copy(ir.as_bytes(), "t");
        let m = ctx.create_module_from_ir(buf).expect("test IR parses");
        rebuild_at_uses(&Ctx::new(&m));
        m.verify()
            .unwrap_or_else(|e| panic!("{}\n{}", e, m.print_to_string()));
        m.print_to_string().to_string()
    }

    /// The lines of function `f`'s body from `text`, trimmed.
    fn body(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|l| !l.starts_with("define"))
            .skip(1)
            .take_while(|l| *l != "}")
            .map(str::trim)
            .collect()
    }

    #[test]
    fn a_chain_hoisted_above_a_call_is_built_after_it() {
        let text = rebuilt(
            r#"
declare void @now(ptr)
declare ptr @show([2 x i64])
define ptr @f(i64 %sec, ptr %p, ptr %n) {
  %half = insertvalue [2 x i64] poison, i64 %sec, 0
  call void @now(ptr %n)
  %nsec = load i64, ptr %p
  %t = insertvalue [2 x i64] %half, i64 %nsec, 1
  %s = call ptr @show([2 x i64] %t)
  ret ptr %s
}
"#,
        );
        let lines = body(&text);
        let now = lines.iter().position(|l| l.contains("@now")).unwrap();
        let first = lines
            .iter()
            .position(|l| l.contains("insertvalue"))
            .unwrap();
        assert!(first > now, "{text}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("insertvalue")).count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn a_chain_next_to_its_use_stays() {
        let ir = r#"
declare ptr @show([2 x i64])
define ptr @f(i64 %sec, i64 %nsec) {
  %half = insertvalue [2 x i64] poison, i64 %sec, 0
  %t = insertvalue [2 x i64] %half, i64 %nsec, 1
  %s = call ptr @show([2 x i64] %t)
  ret ptr %s
}
"#;
        let text = rebuilt(ir);
        assert!(
            text.contains("%half = insertvalue") && text.contains("%t = insertvalue"),
            "{text}"
        );
    }

    #[test]
    fn a_phi_listing_a_block_twice_gets_one_value_from_it() {
        // A switch whose two cases go to `join`: the phi names `entry`
        // twice, and both entries must stay the same value.
        let text = rebuilt(
            r#"
declare void @g()
declare void @use([2 x i64])
define void @f(i32 %k, i64 %a, i64 %b) {
entry:
  %half = insertvalue [2 x i64] poison, i64 %a, 0
  %t = insertvalue [2 x i64] %half, i64 %b, 1
  call void @g()
  switch i32 %k, label %other [ i32 1, label %join
                                i32 2, label %join ]
other:
  br label %join
join:
  %v = phi [2 x i64] [ %t, %entry ], [ %t, %entry ], [ zeroinitializer, %other ]
  call void @use([2 x i64] %v)
  ret void
}
"#,
        );
        let lines = body(&text);
        let g = lines.iter().position(|l| l.contains("@g()")).unwrap();
        let first = lines
            .iter()
            .position(|l| l.contains("insertvalue"))
            .unwrap();
        assert!(first > g, "{text}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("insertvalue")).count(),
            2,
            "{text}"
        );
    }
}
