//! Control-flow analyses over block indices: reverse post-order, dominators
//! (Cooper, Harvey and Kennedy's iterative algorithm) and natural loops.
//! LLVM-C exposes neither dominator trees nor loop info, and these are small.

/// A CFG over blocks `0..n`, block 0 the entry.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub succs: Vec<Vec<usize>>,
    pub preds: Vec<Vec<usize>>,
    /// Reachable blocks in reverse post-order.
    pub rpo: Vec<usize>,
    /// Position of each block in `rpo` (usize::MAX when unreachable).
    pub rpo_index: Vec<usize>,
    /// Immediate dominator (the entry's is itself; unreachable: usize::MAX).
    pub idom: Vec<usize>,
}

/// A natural loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    pub header: usize,
    /// Every block of the loop, header included, sorted.
    pub blocks: Vec<usize>,
    /// Index of the innermost enclosing loop in the loop list.
    pub parent: Option<usize>,
}

impl Cfg {
    pub fn new(succs: Vec<Vec<usize>>) -> Cfg {
        let n = succs.len();
        let mut preds = vec![Vec::new(); n];
        for (b, ss) in succs.iter().enumerate() {
            for &s in ss {
                if !preds[s].contains(&b) {
                    preds[s].push(b);
                }
            }
        }
        // Iterative DFS for post-order.
        let mut post = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        if n > 0 {
            seen[0] = true;
            stack.push((0, 0));
        }
        while let Some((b, i)) = stack.pop() {
            if i < succs[b].len() {
                stack.push((b, i + 1));
                let s = succs[b][i];
                if !seen[s] {
                    seen[s] = true;
                    stack.push((s, 0));
                }
            } else {
                post.push(b);
            }
        }
        let rpo: Vec<usize> = post.into_iter().rev().collect();
        let mut rpo_index = vec![usize::MAX; n];
        for (i, &b) in rpo.iter().enumerate() {
            rpo_index[b] = i;
        }
        let mut idom = vec![usize::MAX; n];
        if n > 0 {
            idom[0] = 0;
        }
        let mut changed = true;
        while changed {
            changed = false;
            for &b in rpo.iter().skip(1) {
                let mut new = usize::MAX;
                for &p in &preds[b] {
                    if idom[p] == usize::MAX {
                        continue;
                    }
                    new = if new == usize::MAX {
                        p
                    } else {
                        intersect(&idom, &rpo_index, p, new)
                    };
                }
                if new != idom[b] {
                    idom[b] = new;
                    changed = true;
                }
            }
        }
        Cfg {
            succs,
            preds,
            rpo,
            rpo_index,
            idom,
        }
    }

    pub fn reachable(&self, b: usize) -> bool {
        self.rpo_index[b] != usize::MAX
    }

    /// Whether `a` dominates `b`.
    pub fn dominates(&self, a: usize, mut b: usize) -> bool {
        if !self.reachable(a) || !self.reachable(b) {
            return false;
        }
        loop {
            if a == b {
                return true;
            }
            if b == 0 {
                return false;
            }
            b = self.idom[b];
        }
    }

    /// The nearest block that dominates both `a` and `b` (both reachable).
    pub fn common_dominator(&self, a: usize, b: usize) -> usize {
        intersect(&self.idom, &self.rpo_index, a, b)
    }

    /// Natural loops, outermost first, with their nesting. Cycles with more
    /// than one entry (irreducible control flow: a retreating edge whose
    /// target does not dominate its source) are not loops, as in LLVM's
    /// LoopInfo: they get no header (see `irreducible_entries`).
    pub fn loops(&self) -> Vec<Loop> {
        let mut by_header: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for &b in &self.rpo {
            for &s in &self.succs[b] {
                if self.rpo_index[s] <= self.rpo_index[b] && self.dominates(s, b) {
                    by_header.entry(s).or_default().push(b);
                }
            }
        }
        let mut loops: Vec<Loop> = by_header
            .into_iter()
            .map(|(h, latches)| {
                let mut body = vec![false; self.succs.len()];
                body[h] = true;
                let mut work = latches;
                while let Some(x) = work.pop() {
                    if !body[x] {
                        body[x] = true;
                        work.extend(self.preds[x].iter().copied().filter(|p| self.reachable(*p)));
                    }
                }
                let blocks = (0..body.len()).filter(|&i| body[i]).collect();
                Loop {
                    header: h,
                    blocks,
                    parent: None,
                }
            })
            .collect();
        // Outermost first: larger loops contain smaller ones.
        loops.sort_by_key(|l| (std::cmp::Reverse(l.blocks.len()), self.rpo_index[l.header]));
        for i in 0..loops.len() {
            let h = loops[i].header;
            // The innermost enclosing loop is the smallest earlier loop containing h.
            let parent = (0..i)
                .rev()
                .find(|&j| loops[j].blocks.binary_search(&h).is_ok() && loops[j].header != h);
            loops[i].parent = parent;
        }
        loops
    }

    /// The blocks a poll in each of which leaves no cycle without one: each
    /// natural loop's header (`loops`, from `Self::loops`), then each
    /// irreducible entry.
    pub fn poll_blocks(&self, loops: &[Loop]) -> Vec<usize> {
        let mut out: Vec<usize> = loops.iter().map(|l| l.header).collect();
        out.extend(self.irreducible_entries());
        out
    }

    /// Blocks where control enters a cycle that is no natural loop: the
    /// targets of `irreducible_edges`, in reverse postorder. Every cycle has
    /// a retreating edge (into its block first in reverse postorder), so
    /// with the loops' headers these blocks are on every cycle: polls there
    /// and at the headers leave no way round without one (a `goto` into a
    /// loop, a state machine, Duff's device).
    pub fn irreducible_entries(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.irreducible_edges().iter().map(|e| e.1).collect();
        out.sort_by_key(|&x| self.rpo_index[x]);
        out.dedup();
        out
    }

    /// The retreating edges of irreducible cycles, (source, target), each
    /// once, in reverse postorder of their source. A poll on each of them
    /// runs only when the cycle goes round, not on the way in.
    pub fn irreducible_edges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for &b in &self.rpo {
            for &s in &self.succs[b] {
                if self.rpo_index[s] <= self.rpo_index[b]
                    && !self.dominates(s, b)
                    && !out.contains(&(b, s))
                {
                    out.push((b, s));
                }
            }
        }
        out
    }
}

fn intersect(idom: &[usize], rpo_index: &[usize], mut a: usize, mut b: usize) -> usize {
    while a != b {
        while rpo_index[a] > rpo_index[b] {
            a = idom[a];
        }
        while rpo_index[b] > rpo_index[a] {
            b = idom[b];
        }
    }
    a
}

/// For each block, the innermost loop containing it.
pub fn innermost_loop(loops: &[Loop], nblocks: usize) -> Vec<Option<usize>> {
    let mut out = vec![None; nblocks];
    // Loops are outermost first, so later (inner) loops overwrite.
    for (i, l) in loops.iter().enumerate() {
        for &b in &l.blocks {
            out[b] = Some(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_loops() {
        // 0 -> 1 (outer header) -> 2 (inner header) -> 3 -> 2 ; 3 -> 4 -> 1 ; 1 -> 5
        let cfg = Cfg::new(vec![
            vec![1],
            vec![2, 5],
            vec![3],
            vec![2, 4],
            vec![1],
            vec![],
        ]);
        assert!(cfg.dominates(1, 4));
        assert!(!cfg.dominates(4, 1));
        let loops = cfg.loops();
        assert_eq!(loops.len(), 2);
        assert_eq!(loops[0].header, 1);
        assert_eq!(loops[0].blocks, vec![1, 2, 3, 4]);
        assert_eq!(loops[1].header, 2);
        assert_eq!(loops[1].blocks, vec![2, 3]);
        assert_eq!(loops[1].parent, Some(0));
        assert_eq!(
            innermost_loop(&loops, 6),
            vec![None, Some(0), Some(1), Some(1), Some(0), None]
        );
    }

    #[test]
    fn irreducible_cycles_are_not_loops() {
        // 0 -> 1, 0 -> 2, 1 <-> 2: two entries into the cycle; 2 -> 3 -> 2 is a loop.
        let cfg = Cfg::new(vec![vec![1, 2], vec![2], vec![1, 3], vec![2]]);
        let loops = cfg.loops();
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].header, 2);
        assert_eq!(loops[0].blocks, vec![2, 3]);
        // The cycle 1 <-> 2 is entered at both; its retreating edge in
        // reverse postorder (0, 2, 3, 1 or 0, 1, 2, 3) decides which is
        // polled, and either is on the cycle.
        let entries = cfg.irreducible_entries();
        assert_eq!(entries.len(), 1);
        assert!(entries[0] == 1 || entries[0] == 2);
    }

    #[test]
    fn every_cycle_passes_a_header_or_an_irreducible_entry() {
        // 0 -> 1 | 3; 1 -> 2; 2 -> 3 | 5; 3 -> 4; 4 -> 1 | 4 (self loop); 5 exit.
        // 1 -> 2 -> 3 -> 4 -> 1 is entered at 1 and at 3.
        let cfg = Cfg::new(vec![
            vec![1, 3],
            vec![2],
            vec![3, 5],
            vec![4],
            vec![1, 4],
            vec![],
        ]);
        let mut polled: Vec<usize> = cfg.loops().iter().map(|l| l.header).collect();
        assert_eq!(polled, vec![4]);
        polled.extend(cfg.irreducible_entries());
        // Remove the polled blocks: what is left must have no cycle.
        let n = 6;
        let mut state = vec![0u8; n];
        fn cyclic(cfg: &Cfg, polled: &[usize], x: usize, state: &mut [u8]) -> bool {
            state[x] = 1;
            for &s in &cfg.succs[x] {
                if polled.contains(&s) {
                    continue;
                }
                if state[s] == 1 || (state[s] == 0 && cyclic(cfg, polled, s, state)) {
                    return true;
                }
            }
            state[x] = 2;
            false
        }
        assert!(!(0..n).any(|x| state[x] == 0 && cyclic(&cfg, &polled, x, &mut state)));
    }
}
