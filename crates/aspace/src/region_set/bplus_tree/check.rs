//! The tree's structural invariants, checked by the tests after every
//! operation.

use super::{BPlusTree, NodeIndex, NO_LEAF, PADDING};
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};

/// What the walk from the root has seen so far.
struct Walk {
    /// Leaves in the order an in-order walk meets them.
    leaves_in_order: Vec<NodeIndex>,
    leaf_reached: Vec<bool>,
    inner_reached: Vec<bool>,
    regions: usize,
}

/// Fails the check with a message built like `format!`.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

impl<const LEAF: usize, const FANOUT: usize> BPlusTree<LEAF, FANOUT> {
    /// Checks every invariant of the tree:
    /// - every node slot is either reached exactly once from the root or
    ///   on its free list, never both; since a node's kind follows from its
    ///   level (`height` inner levels, then leaves), every leaf reached is at
    ///   the same depth;
    /// - keys are strictly increasing, leaf keys are their regions' starts,
    ///   and unused key slots hold the padding;
    /// - each separator is exactly the smallest key of the subtree to its
    ///   right, and every key lies between the separators around it;
    /// - every node but the root is at least half full, an inner root has
    ///   at least two children;
    /// - the leaf links visit the leaves in key order and end at the last;
    /// - `len` is the number of regions;
    /// - a freed leaf is empty.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if self.leaves.is_empty() {
            ensure!(self.len == 0 && self.height == 0, "no leaves but len {} height {}", self.len, self.height);
            ensure!(self.inners.is_empty(), "inner nodes without leaves");
            return Ok(());
        }
        let mut walk = Walk {
            leaves_in_order: Vec::new(),
            leaf_reached: vec![false; self.leaves.len()],
            inner_reached: vec![false; self.inners.len()],
            regions: 0,
        };
        self.check_subtree(self.root, self.height, true, (None, None), &mut walk)?;
        ensure!(walk.regions == self.len, "len is {} but the leaves hold {}", self.len, walk.regions);

        for pair in walk.leaves_in_order.windows(2) {
            let next = self.leaves[pair[0] as usize].next;
            ensure!(next == pair[1], "leaf {} links to {} instead of {}", pair[0], next, pair[1]);
        }
        let last = *walk.leaves_in_order.last().expect("the root is reached");
        ensure!(self.leaves[last as usize].next == NO_LEAF, "the last leaf {last} links on");

        check_free_list("leaf", &self.free_leaves, &walk.leaf_reached)?;
        for &freed in &self.free_leaves {
            let leaf = self.leaves.get(freed as usize);
            ensure!(leaf.is_none_or(|leaf| leaf.len() == 0), "freed leaf {freed} holds regions");
        }
        check_free_list("inner", &self.free_inners, &walk.inner_reached)
    }

    /// Checks the subtree at `node`, `height` levels above the leaves, whose
    /// keys must lie in `[lower, upper)` (`None`: unbounded), and returns its
    /// smallest key (`None` only for an empty root leaf).
    fn check_subtree(
        &self,
        node: NodeIndex,
        height: u32,
        is_root: bool,
        (lower, upper): (Option<u64>, Option<u64>),
        walk: &mut Walk,
    ) -> Result<Option<u64>, String> {
        let in_bounds = |key: u64| lower.is_none_or(|lower| key >= lower) && upper.is_none_or(|upper| key < upper);
        if height == 0 {
            ensure!((node as usize) < self.leaves.len(), "leaf {node} out of the arena");
            ensure!(!walk.leaf_reached[node as usize], "leaf {node} reached twice");
            walk.leaf_reached[node as usize] = true;
            walk.leaves_in_order.push(node);
            let leaf = &self.leaves[node as usize];
            let len = leaf.len();
            ensure!(len <= LEAF, "leaf {node} holds {len} of {LEAF}");
            ensure!(is_root || len >= LEAF / 2, "leaf {node} holds {len}, under half of {LEAF}");
            for position in 0..len {
                let key = leaf.key(position);
                ensure!(in_bounds(key), "leaf {node} key {key:#x} outside [{lower:x?}, {upper:x?})");
                ensure!(position == 0 || leaf.key(position - 1) < key, "leaf {node} keys out of order at {position}");
            }
            ensure!(leaf.regions[len..].iter().all(|r| r.va.0 == PADDING), "leaf {node} has unpadded free slots");
            walk.regions += len;
            return Ok((len > 0).then(|| leaf.key(0)));
        }

        ensure!((node as usize) < self.inners.len(), "inner node {node} out of the arena");
        ensure!(!walk.inner_reached[node as usize], "inner node {node} reached twice");
        walk.inner_reached[node as usize] = true;
        let inner = &self.inners[node as usize];
        let count = inner.count();
        ensure!(count <= FANOUT, "inner node {node} has {count} of {FANOUT} children");
        let least = if is_root { 2 } else { FANOUT / 2 };
        ensure!(count >= least, "inner node {node} has {count} children, fewer than {least}");
        ensure!(
            inner.entries[count..].iter().all(|entry| entry.separator == PADDING),
            "inner node {node} has unpadded free slots"
        );
        let mut smallest = None;
        for position in 0..count {
            let child_lower = if position == 0 { lower } else { Some(inner.separator(position)) };
            let child_upper = if position + 1 < count { Some(inner.separator(position + 1)) } else { upper };
            let child = inner.child(position);
            let child_smallest = self.check_subtree(child, height - 1, false, (child_lower, child_upper), walk)?;
            if position == 0 {
                smallest = child_smallest;
            } else {
                ensure!(
                    child_smallest == Some(inner.separator(position)),
                    "inner node {node} separator {position} is {:#x}, but its subtree starts at {child_smallest:x?}",
                    inner.separator(position)
                );
            }
        }
        Ok(smallest)
    }
}

/// Checks that the free slots of an arena are exactly those not reached.
fn check_free_list(kind: &str, free: &[NodeIndex], reached: &[bool]) -> Result<(), String> {
    let mut is_free = vec![false; reached.len()];
    for &slot in free {
        ensure!((slot as usize) < reached.len(), "free {kind} slot {slot} out of the arena");
        ensure!(!is_free[slot as usize], "{kind} slot {slot} freed twice");
        ensure!(!reached[slot as usize], "{kind} slot {slot} is free but in the tree");
        is_free[slot as usize] = true;
    }
    let lost = (0..reached.len()).find(|&slot| !reached[slot] && !is_free[slot]);
    ensure!(lost.is_none(), "{kind} slot {lost:?} is neither in the tree nor free");
    Ok(())
}
