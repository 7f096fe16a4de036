//! SSA liveness: which values are live right after a given call.
//!
//! Values are numbered in the canonical order frame records use: arguments
//! first (by position), then instruction results in block order and
//! instruction order. Phi operands are uses at the end of the incoming block.

use super::cfg::Cfg;
use crate::ir::{Block, Val};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union_with(&mut self, o: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

pub struct Liveness {
    values: Vec<Val>,
    index: HashMap<Val, usize>,
    block_index: HashMap<Block, usize>,
    live_out: Vec<BitSet>,
}

impl Liveness {
    /// `blocks` in function order with `cfg` built over the same indices.
    pub fn compute(f: Val, blocks: &[Block], cfg: &Cfg) -> Liveness {
        Self::compute_ordered(f, blocks, cfg, |_| ())
    }

    /// As `compute`, with each block's phis in the order of `phi_key`
    /// (stable) in the canonical order values take (`position`): the
    /// optimizer orders phis by its own bookkeeping, which differs between
    /// ISAs, and moving the phis themselves would change code generation.
    pub fn compute_ordered<K: Ord>(
        f: Val,
        blocks: &[Block],
        cfg: &Cfg,
        phi_key: impl Fn(Val) -> K,
    ) -> Liveness {
        let mut values = Vec::new();
        let mut index = HashMap::new();
        for p in f.params() {
            index.insert(p, values.len());
            values.push(p);
        }
        let insts: Vec<Vec<Val>> = blocks.iter().map(|b| b.instructions()).collect();
        for bi in &insts {
            let phis = bi.iter().take_while(|i| i.is_phi()).count();
            let mut ordered: Vec<Val> = bi[..phis].to_vec();
            ordered.sort_by_key(|p| phi_key(*p));
            ordered.extend_from_slice(&bi[phis..]);
            for i in ordered {
                // A static alloca is an address in the frame it is in: the
                // same value wherever the function runs, never carried
                // (those left after the shadow-stack rewrite are dead at
                // every site: shadow::dead_at_sites).
                let static_alloca = i.is_alloca() && i.operand(0).is_constant();
                if i.is_register() && !static_alloca {
                    index.insert(i, values.len());
                    values.push(i);
                }
            }
        }
        let n = values.len();
        let block_index: HashMap<Block, usize> =
            blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
        let nb = blocks.len();
        // gen: upward-exposed non-phi uses; kill: definitions (phis included);
        // phi_uses[b]: (succ-side) values flowing out of b into successors' phis.
        let mut gen = vec![BitSet::new(n); nb];
        let mut kill = vec![BitSet::new(n); nb];
        let mut phi_out = vec![BitSet::new(n); nb];
        for (b, bi) in insts.iter().enumerate() {
            for &i in bi.iter().rev() {
                if let Some(&d) = index.get(&i) {
                    kill[b].insert(d);
                    gen[b].remove(d);
                }
                if i.is_phi() {
                    for (v, from) in i.incoming() {
                        if let (Some(&vi), Some(&fi)) = (index.get(&v), block_index.get(&from)) {
                            phi_out[fi].insert(vi);
                        }
                    }
                } else {
                    for o in i.operands() {
                        if let Some(&oi) = index.get(&o) {
                            gen[b].insert(oi);
                        }
                    }
                }
            }
        }
        let mut live_in = vec![BitSet::new(n); nb];
        let mut live_out = vec![BitSet::new(n); nb];
        let mut changed = true;
        while changed {
            changed = false;
            for &b in cfg.rpo.iter().rev() {
                let mut out = phi_out[b].clone();
                for &s in &cfg.succs[b] {
                    out.union_with(&live_in[s]);
                }
                let mut inn = out.clone();
                for (w, k) in inn.0.iter_mut().zip(&kill[b].0) {
                    *w &= !k;
                }
                inn.union_with(&gen[b]);
                if inn != live_in[b] || out != live_out[b] {
                    live_in[b] = inn;
                    live_out[b] = out;
                    changed = true;
                }
            }
        }
        Liveness {
            values,
            index,
            block_index,
            live_out,
        }
    }

    /// Values live immediately after instruction `at` (its own result
    /// excluded), in canonical order.
    pub fn live_after(&self, at: Val) -> Vec<Val> {
        let b = self.block_index[&at.block()];
        let mut live = self.live_out[b].clone();
        let mut cur = at.block().last();
        while let Some(i) = cur {
            if i == at {
                break;
            }
            if let Some(&d) = self.index.get(&i) {
                live.remove(d);
            }
            if !i.is_phi() {
                for o in i.operands() {
                    if let Some(&oi) = self.index.get(&o) {
                        live.insert(oi);
                    }
                }
            }
            cur = i.prev();
        }
        if let Some(&d) = self.index.get(&at) {
            live.remove(d);
        }
        live.iter().map(|i| self.values[i]).collect()
    }

    /// Values live on entry to block `b`'s first non-phi instruction (phis of
    /// `b` that are used later included), in canonical order.
    pub fn live_at_start(&self, b: Block) -> Vec<Val> {
        match b.first_non_phi() {
            Some(first) => {
                let mut v = self.live_after(first);
                // live_after excluded `first`'s result but included its operands
                // only if used later; add `first`'s operands, which are live before it.
                for o in first.operands() {
                    if self.index.contains_key(&o) && !v.contains(&o) {
                        v.push(o);
                    }
                }
                v.sort_by_key(|x| self.index[x]);
                v
            }
            None => Vec::new(),
        }
    }

    /// Canonical position of a value (for ordering).
    pub fn position(&self, v: Val) -> Option<usize> {
        self.index.get(&v).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::function_cfg;
    use inkwell::context::Context;
    use inkwell::memory_buffer::MemoryBuffer;
    use inkwell::values::AsValueRef;

    fn with_fn(ir: &str, name: &str, check: impl FnOnce(Val)) {
        let ctx = Context::create();
        let buf = MemoryBuffer::create_from_memory_range_copy(ir.as_bytes(), "t");
        let m = ctx.create_module_from_ir(buf).expect("test IR parses");
        let f = m.get_function(name).unwrap();
        check(Val(f.as_value_ref()));
    }

    fn names(v: &[Val]) -> Vec<String> {
        v.iter().map(|x| x.name()).collect()
    }

    fn call_named(f: Val, callee: &str) -> Val {
        f.blocks()
            .iter()
            .flat_map(|b| b.instructions())
            .find(|i| i.is_call() && i.called_operand().name() == callee)
            .unwrap()
    }

    const STRAIGHT: &str = r#"
declare i32 @g(i32)
declare void @h()
define i32 @f(i32 %a, i32 %b, ptr %p) {
entry:
  %x = add i32 %a, 1
  %r = call i32 @g(i32 %x)
  %y = add i32 %r, %b
  call void @h()
  %z = add i32 %y, %x
  ret i32 %z
}
"#;

    #[test]
    fn straight_line() {
        with_fn(STRAIGHT, "f", |f| {
            let (blocks, cfg) = function_cfg(f);
            let l = Liveness::compute(f, &blocks, &cfg);
            // After g: b (used by y), x (used by z); not a (dead), not r (the call's own result), not p (unused).
            assert_eq!(names(&l.live_after(call_named(f, "g"))), ["b", "x"]);
            // After h: x and y.
            assert_eq!(names(&l.live_after(call_named(f, "h"))), ["x", "y"]);
        });
    }

    const LOOP: &str = r#"
declare void @work(i64)
define i64 @f(i64 %n, i64 %k) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %body ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %body ]
  %done = icmp eq i64 %i, %n
  br i1 %done, label %exit, label %body
body:
  call void @work(i64 %i)
  %acc.next = add i64 %acc, %k
  %i.next = add i64 %i, 1
  br label %loop
exit:
  ret i64 %acc
}
"#;

    #[test]
    fn loop_carried_values() {
        with_fn(LOOP, "f", |f| {
            let (blocks, cfg) = function_cfg(f);
            let l = Liveness::compute(f, &blocks, &cfg);
            // Across the call in the loop: n and k (loop invariant, used next
            // iteration), i and acc (used after the call).
            assert_eq!(
                names(&l.live_after(call_named(f, "work"))),
                ["n", "k", "i", "acc"]
            );
            // At the loop header after its phis: n, k, i, acc; not done (defined later).
            let header = blocks[1];
            assert_eq!(names(&l.live_at_start(header)), ["n", "k", "i", "acc"]);
        });
    }

    const PHI_EDGE: &str = r#"
declare void @g()
define i32 @f(i1 %c, i32 %a, i32 %b) {
entry:
  call void @g()
  br i1 %c, label %l, label %r
l:
  br label %join
r:
  br label %join
join:
  %v = phi i32 [ %a, %l ], [ %b, %r ]
  ret i32 %v
}
"#;

    #[test]
    fn phi_operands_are_live_on_their_edges() {
        with_fn(PHI_EDGE, "f", |f| {
            let (blocks, cfg) = function_cfg(f);
            let l = Liveness::compute(f, &blocks, &cfg);
            // Both a and b are live after g (each along one edge), and c for the branch.
            assert_eq!(names(&l.live_after(call_named(f, "g"))), ["c", "a", "b"]);
        });
    }
}
