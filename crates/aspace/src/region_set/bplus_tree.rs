//! A B+-tree of regions keyed by their virtual start.
//!
//! Two kinds of node live in two arenas (`Vec`s) and name each other by
//! `u32` index, never by pointer:
//!
//! - An **inner node** holds only separator keys and child indices. Keeping
//!   the regions out of it makes it small (a few cache lines), so the upper
//!   levels of even a million-region tree stay in the cache and a lookup
//!   misses memory only at the bottom.
//! - A **leaf** holds up to `LEAF` sorted keys and, in a parallel array, the
//!   regions they start. A lookup scans the keys, then touches exactly one
//!   region. Leaves are linked in key order (`next`) for iteration.
//!
//! Every search inside a node is branch-free: it counts the keys `<=` the
//! one sought instead of stopping at the first larger one. There is then no
//! branch to mispredict, so the processor can run ahead into the next
//! independent lookup while this one waits for memory. Unused key slots
//! hold [`PADDING`] (`u64::MAX`) so the count can run over the whole,
//! fixed-size array.
//!
//! Invariants (checked after every operation by the tests):
//! - every leaf is at the same depth, `height` inner levels below the root;
//! - keys are strictly increasing, within a leaf and from leaf to leaf;
//! - separator `keys[i]` (`i >= 1`) of an inner node is *exactly* the
//!   smallest key under `children[i]`, so the leaf reached for a key `k`
//!   holds the greatest key `<= k` (if any is in the tree) and `find` needs no
//!   second leaf;
//! - every node but the root is at least half full (`LEAF / 2` keys,
//!   `FANOUT / 2` children); an inner root has at least two children.
//!
//! Insert splits a full node in two halves and adds a separator to its
//! parent (a new root when the root splits). Remove refills a node that
//! falls below half by borrowing one entry from a sibling that can spare it,
//! or else merges it with a sibling (dropping the root when it is left with
//! one child). So the depth stays at most `log(n) / log(FANOUT / 2) + 1`,
//! whatever sequence of operations built the tree. Freed node slots are
//! reused before an arena grows.

use crate::{Protection, Region};
use alloc::vec::Vec;

/// The index of a node in its arena.
type NodeIndex = u32;

/// The `next` of the last leaf.
const NO_LEAF: NodeIndex = NodeIndex::MAX;

/// The key in every unused slot: not smaller than any key, so a count of the
/// keys `<= k` over the whole array counts only real keys (except for
/// `k == u64::MAX`, which the searches clamp to the number of real keys).
const PADDING: u64 = u64::MAX;

/// What fills unused region slots. Never read as a region.
const UNUSED: Region = Region::new(0, 0, 0, Protection::empty());

/// An inner node: `count` children and the separators between them.
///
/// Aligned to a cache line so its keys start on one.
#[derive(Clone)]
#[repr(C, align(64))]
struct Inner<const FANOUT: usize> {
    /// `keys[i]`, for `1 <= i < count`, is the smallest key under
    /// `children[i]`. `keys[0]` is not used (its subtree's lower bound is
    /// the parent's business); slots from `count` on hold [`PADDING`].
    keys: [u64; FANOUT],
    /// The children's indices: leaves when this node is on the lowest inner
    /// level, inner nodes otherwise.
    children: [NodeIndex; FANOUT],
    /// The number of children.
    count: u32,
}

impl<const FANOUT: usize> Inner<FANOUT> {
    const EMPTY: Self = Inner { keys: [PADDING; FANOUT], children: [0; FANOUT], count: 0 };

    fn count(&self) -> usize {
        self.count as usize
    }

    /// The position of the child whose subtree holds `key` (or would).
    fn position_for(&self, key: u64) -> usize {
        // Separators <= key, over the whole array (branch-free); padding
        // only counts when key is u64::MAX, hence the clamp.
        let at_or_below = self.keys[1..].iter().map(|&separator| usize::from(separator <= key)).sum::<usize>();
        at_or_below.min(self.count() - 1)
    }

    /// Puts `child`, whose smallest key is `key`, at `position`, shifting
    /// the later children right. The node must not be full.
    fn insert_at(&mut self, position: usize, key: u64, child: NodeIndex) {
        let count = self.count();
        self.keys.copy_within(position..count, position + 1);
        self.children.copy_within(position..count, position + 1);
        self.keys[position] = key;
        self.children[position] = child;
        self.count += 1;
    }

    /// Takes out the child at `position` with its separator, shifting the
    /// later children left.
    fn remove_at(&mut self, position: usize) -> NodeIndex {
        let count = self.count();
        let child = self.children[position];
        self.keys.copy_within(position + 1..count, position);
        self.children.copy_within(position + 1..count, position);
        self.keys[count - 1] = PADDING;
        self.count -= 1;
        child
    }

    /// Moves the upper half of the children of this full node into `right`
    /// (empty) and returns the separator between the two halves: the
    /// smallest key under `right`.
    fn split_into(&mut self, right: &mut Self) -> u64 {
        let middle = FANOUT / 2;
        let moved = FANOUT - middle;
        right.keys[..moved].copy_from_slice(&self.keys[middle..]);
        right.children[..moved].copy_from_slice(&self.children[middle..]);
        right.count = moved as u32;
        let separator = right.keys[0];
        right.keys[0] = PADDING;
        self.keys[middle..].fill(PADDING);
        self.count = middle as u32;
        separator
    }
}

/// A leaf: `len` regions sorted by start, and their starts as keys.
#[derive(Clone)]
#[repr(C, align(64))]
struct Leaf<const LEAF: usize> {
    /// `keys[i]` is `regions[i].va`; slots from `len` on hold [`PADDING`].
    keys: [u64; LEAF],
    regions: [Region; LEAF],
    /// The number of regions.
    len: u32,
    /// The leaf with the next larger keys, or [`NO_LEAF`].
    next: NodeIndex,
}

impl<const LEAF: usize> Leaf<LEAF> {
    const EMPTY: Self = Leaf { keys: [PADDING; LEAF], regions: [UNUSED; LEAF], len: 0, next: NO_LEAF };

    fn len(&self) -> usize {
        self.len as usize
    }

    /// How many keys are `<= key` (branch-free, as [`Inner::position_for`]).
    fn count_at_or_below(&self, key: u64) -> usize {
        let at_or_below = self.keys.iter().map(|&k| usize::from(k <= key)).sum::<usize>();
        at_or_below.min(self.len())
    }

    /// How many keys are `< key`: the position where `key` is or would go.
    fn count_below(&self, key: u64) -> usize {
        self.keys.iter().map(|&k| usize::from(k < key)).sum::<usize>()
    }

    /// The position of `key`, if this leaf holds it.
    fn position_of(&self, key: u64) -> Option<usize> {
        let position = self.count_below(key);
        (position < self.len() && self.keys[position] == key).then_some(position)
    }

    /// Puts `region` at `position`, shifting the later ones right. The leaf
    /// must not be full.
    fn insert_at(&mut self, position: usize, region: Region) {
        let len = self.len();
        self.keys.copy_within(position..len, position + 1);
        self.regions.copy_within(position..len, position + 1);
        self.keys[position] = region.va.0;
        self.regions[position] = region;
        self.len += 1;
    }

    /// Takes out the region at `position`, shifting the later ones left.
    fn remove_at(&mut self, position: usize) -> Region {
        let len = self.len();
        let region = self.regions[position];
        self.keys.copy_within(position + 1..len, position);
        self.regions.copy_within(position + 1..len, position);
        self.keys[len - 1] = PADDING;
        self.len -= 1;
        region
    }

    /// Moves the upper half of this full leaf into `right` (empty).
    fn split_into(&mut self, right: &mut Self) {
        let middle = LEAF / 2;
        let moved = LEAF - middle;
        right.keys[..moved].copy_from_slice(&self.keys[middle..]);
        right.regions[..moved].copy_from_slice(&self.regions[middle..]);
        right.len = moved as u32;
        self.keys[middle..].fill(PADDING);
        self.len = middle as u32;
    }

    /// Appends every region of `right`, whose keys are all larger.
    fn append(&mut self, right: &Self) {
        let (len, moved) = (self.len(), right.len());
        self.keys[len..len + moved].copy_from_slice(&right.keys[..moved]);
        self.regions[len..len + moved].copy_from_slice(&right.regions[..moved]);
        self.len += right.len;
    }
}

/// What inserting into a subtree did.
enum Insertion {
    /// A region with the same start was there: it was replaced.
    Replaced(Region),
    /// The region was added and the subtree's root did not split.
    Added,
    /// The region was added and the subtree's root split: `right` is the
    /// new node holding its upper half, whose smallest key is `separator`.
    Split { separator: u64, right: NodeIndex },
}

/// What removing from a subtree did.
struct Removal {
    region: Region,
    /// The subtree's new smallest key, when the removed one was its smallest.
    new_smallest: Option<u64>,
}

/// A B+-tree mapping each region's virtual start to the region, with
/// leaves of up to `LEAF` regions and inner nodes of up to `FANOUT`
/// children (both at least 4, so halves are at least 2).
#[derive(Clone)]
pub(crate) struct BPlusTree<const LEAF: usize, const FANOUT: usize> {
    leaves: Vec<Leaf<LEAF>>,
    inners: Vec<Inner<FANOUT>>,
    /// Leaf slots no longer in the tree, reused first.
    free_leaves: Vec<NodeIndex>,
    /// Inner slots no longer in the tree, reused first.
    free_inners: Vec<NodeIndex>,
    /// The root: a leaf when `height` is 0, an inner node otherwise.
    /// Meaningless while `leaves` is empty.
    root: NodeIndex,
    /// The number of inner levels above the leaves.
    height: u32,
    /// The number of regions.
    len: usize,
}

impl<const LEAF: usize, const FANOUT: usize> BPlusTree<LEAF, FANOUT> {
    /// An empty tree; allocates nothing.
    pub(crate) const fn new() -> Self {
        const { assert!(LEAF >= 4 && FANOUT >= 4, "half a node must hold at least two entries") };
        BPlusTree {
            leaves: Vec::new(),
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: 0,
            height: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The leaf whose key range holds `key`. The tree must not be empty.
    fn leaf_for(&self, key: u64) -> NodeIndex {
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = &self.inners[node as usize];
            node = inner.children[inner.position_for(key)];
        }
        node
    }

    /// The region with the greatest start `<= key`.
    pub(crate) fn last_at_or_below(&self, key: u64) -> Option<&Region> {
        if self.len == 0 {
            return None;
        }
        let leaf = &self.leaves[self.leaf_for(key) as usize];
        // Separators are exact smallest keys, so if any key <= `key` exists,
        // this leaf's first one is: no need to look at the previous leaf.
        let count = leaf.count_at_or_below(key);
        count.checked_sub(1).map(|position| &leaf.regions[position])
    }

    /// The region starting exactly at `key`.
    pub(crate) fn get(&self, key: u64) -> Option<&Region> {
        if self.len == 0 {
            return None;
        }
        let leaf = &self.leaves[self.leaf_for(key) as usize];
        leaf.position_of(key).map(|position| &leaf.regions[position])
    }

    /// The region starting exactly at `key`, to change in place. Changing
    /// its `va` would break the tree: callers keep it.
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut Region> {
        if self.len == 0 {
            return None;
        }
        let leaf = self.leaf_for(key);
        let leaf = &mut self.leaves[leaf as usize];
        leaf.position_of(key).map(|position| &mut leaf.regions[position])
    }

    /// Every region in start order.
    pub(crate) fn iter(&self) -> Iter<'_, LEAF> {
        self.iter_from(0)
    }

    /// The regions starting at or after `key`, in start order.
    pub(crate) fn iter_from(&self, key: u64) -> Iter<'_, LEAF> {
        if self.len == 0 {
            return Iter { leaves: &self.leaves, leaf: NO_LEAF, position: 0 };
        }
        let leaf = self.leaf_for(key);
        // Past the leaf's last key, the iterator moves on to the next leaf,
        // whose keys are all larger than `key`.
        let position = self.leaves[leaf as usize].count_below(key);
        Iter { leaves: &self.leaves, leaf, position }
    }

    /// Adds `region` under its start, or replaces (and returns) the region
    /// already starting there.
    pub(crate) fn insert(&mut self, region: Region) -> Option<Region> {
        if self.leaves.is_empty() {
            self.root = self.new_leaf();
            self.height = 0;
        }
        match self.insert_below(self.root, self.height, region) {
            Insertion::Replaced(old) => return Some(old),
            Insertion::Added => {}
            Insertion::Split { separator, right } => {
                // The root split: a new root above the two halves.
                let left = self.root;
                let root = self.new_inner();
                let node = &mut self.inners[root as usize];
                node.children[0] = left;
                node.count = 1;
                node.insert_at(1, separator, right);
                self.root = root;
                self.height += 1;
            }
        }
        self.len += 1;
        None
    }

    /// Inserts `region` into the subtree rooted at `node`, `height` levels
    /// above the leaves.
    fn insert_below(&mut self, node: NodeIndex, height: u32, region: Region) -> Insertion {
        if height == 0 {
            return self.insert_into_leaf(node, region);
        }
        let position = self.inners[node as usize].position_for(region.va.0);
        let child = self.inners[node as usize].children[position];
        match self.insert_below(child, height - 1, region) {
            Insertion::Split { separator, right } => self.insert_child(node, position + 1, separator, right),
            done => done,
        }
    }

    fn insert_into_leaf(&mut self, node: NodeIndex, region: Region) -> Insertion {
        let leaf = &mut self.leaves[node as usize];
        let position = leaf.count_below(region.va.0);
        if position < leaf.len() && leaf.keys[position] == region.va.0 {
            return Insertion::Replaced(core::mem::replace(&mut leaf.regions[position], region));
        }
        if leaf.len() < LEAF {
            leaf.insert_at(position, region);
            return Insertion::Added;
        }
        let right = self.new_leaf();
        let [left_leaf, right_leaf] = self.leaves.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
        left_leaf.split_into(right_leaf);
        right_leaf.next = left_leaf.next;
        left_leaf.next = right;
        if position <= LEAF / 2 {
            left_leaf.insert_at(position, region);
        } else {
            right_leaf.insert_at(position - LEAF / 2, region);
        }
        Insertion::Split { separator: right_leaf.keys[0], right }
    }

    /// Adds `child`, whose smallest key is `separator`, at `position` of
    /// inner node `node`, splitting the node if it is full.
    fn insert_child(&mut self, node: NodeIndex, position: usize, separator: u64, child: NodeIndex) -> Insertion {
        if self.inners[node as usize].count() < FANOUT {
            self.inners[node as usize].insert_at(position, separator, child);
            return Insertion::Added;
        }
        let right = self.new_inner();
        let [left_node, right_node] = self.inners.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
        let middle_separator = left_node.split_into(right_node);
        // `position` is at least 1, so the new child never becomes the right
        // half's first child, whose smallest key is `middle_separator`.
        if position <= FANOUT / 2 {
            left_node.insert_at(position, separator, child);
        } else {
            right_node.insert_at(position - FANOUT / 2, separator, child);
        }
        Insertion::Split { separator: middle_separator, right }
    }

    /// Removes and returns the region starting exactly at `key`.
    pub(crate) fn remove(&mut self, key: u64) -> Option<Region> {
        if self.len == 0 {
            return None;
        }
        let removal = self.remove_below(self.root, self.height, key)?;
        self.len -= 1;
        if self.height > 0 && self.inners[self.root as usize].count == 1 {
            // The root's last two children merged: the merged one is the root.
            let old_root = self.root;
            self.root = self.inners[old_root as usize].children[0];
            self.free_inners.push(old_root);
            self.height -= 1;
        }
        Some(removal.region)
    }

    /// Removes `key` from the subtree rooted at `node`, `height` levels
    /// above the leaves, and refills whichever child fell below half.
    fn remove_below(&mut self, node: NodeIndex, height: u32, key: u64) -> Option<Removal> {
        if height == 0 {
            let leaf = &mut self.leaves[node as usize];
            let position = leaf.position_of(key)?;
            let region = leaf.remove_at(position);
            // Only the root leaf can be left empty, and it has no separator.
            let new_smallest = (position == 0 && leaf.len > 0).then(|| leaf.keys[0]);
            return Some(Removal { region, new_smallest });
        }
        let position = self.inners[node as usize].position_for(key);
        let child = self.inners[node as usize].children[position];
        let mut removal = self.remove_below(child, height - 1, key)?;
        if let Some(smallest) = removal.new_smallest {
            if position > 0 {
                // The separator of the child is its smallest key: keep it exact.
                self.inners[node as usize].keys[position] = smallest;
                removal.new_smallest = None;
            }
            // Else the child is this node's first: its smallest key is this
            // node's, and the separator to update is further up.
        }
        if self.is_below_half(child, height - 1) {
            self.refill(node, position, height - 1);
        }
        Some(removal)
    }

    fn is_below_half(&self, node: NodeIndex, height: u32) -> bool {
        if height == 0 {
            self.leaves[node as usize].len() < LEAF / 2
        } else {
            self.inners[node as usize].count() < FANOUT / 2
        }
    }

    /// True when `node` can give an entry away and stay at least half full.
    fn can_lend(&self, node: NodeIndex, height: u32) -> bool {
        if height == 0 {
            self.leaves[node as usize].len() > LEAF / 2
        } else {
            self.inners[node as usize].count() > FANOUT / 2
        }
    }

    /// Brings child `position` of `parent` (`height` levels above the
    /// leaves, below half full) back to half: borrows from a sibling that
    /// can lend, or else merges with one.
    fn refill(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let siblings = &self.inners[parent as usize];
        let has_left = position > 0;
        let has_right = position + 1 < siblings.count();
        if has_left && self.can_lend(siblings.children[position - 1], height) {
            self.borrow_from_left(parent, position, height);
        } else if has_right && self.can_lend(siblings.children[position + 1], height) {
            self.borrow_from_right(parent, position, height);
        } else if has_left {
            self.merge_with_next(parent, position - 1, height);
        } else {
            // An inner node has at least two children: a right sibling exists.
            self.merge_with_next(parent, position, height);
        }
    }

    /// Moves the last entry of child `position - 1` to the front of child
    /// `position`.
    fn borrow_from_left(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let parent_node = &self.inners[parent as usize];
        let (left, node) = (parent_node.children[position - 1], parent_node.children[position]);
        let node_separator = parent_node.keys[position];
        let new_separator = if height == 0 {
            let [left, node] = self.leaves.get_disjoint_mut([left as usize, node as usize]).expect("two slots");
            let region = left.remove_at(left.len() - 1);
            node.insert_at(0, region);
            region.va.0
        } else {
            let [left, node] = self.inners.get_disjoint_mut([left as usize, node as usize]).expect("two slots");
            let last = left.count() - 1;
            let moved_smallest = left.keys[last];
            let moved = left.remove_at(last);
            node.insert_at(0, PADDING, moved);
            // The node's former first child now needs a separator: its
            // smallest key, which was the node's, which the parent held.
            node.keys[1] = node_separator;
            moved_smallest
        };
        self.inners[parent as usize].keys[position] = new_separator;
    }

    /// Moves the first entry of child `position + 1` to the end of child
    /// `position`.
    fn borrow_from_right(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let parent_node = &self.inners[parent as usize];
        let (node, right) = (parent_node.children[position], parent_node.children[position + 1]);
        let right_separator = parent_node.keys[position + 1];
        let new_separator = if height == 0 {
            let [node, right] = self.leaves.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
            let region = right.remove_at(0);
            node.insert_at(node.len(), region);
            right.keys[0]
        } else {
            let [node, right] = self.inners.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
            // The right node's second child becomes its first: its separator
            // is the right node's new smallest key.
            let right_second_smallest = right.keys[1];
            let moved = right.remove_at(0);
            node.insert_at(node.count(), right_separator, moved);
            right_second_smallest
        };
        self.inners[parent as usize].keys[position + 1] = new_separator;
    }

    /// Merges child `position + 1` into child `position` and frees it.
    fn merge_with_next(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let parent_node = &self.inners[parent as usize];
        let (left, right) = (parent_node.children[position], parent_node.children[position + 1]);
        let right_separator = parent_node.keys[position + 1];
        if height == 0 {
            let [left, right] = self.leaves.get_disjoint_mut([left as usize, right as usize]).expect("two slots");
            left.append(right);
            left.next = right.next;
        } else {
            let [left, right] = self.inners.get_disjoint_mut([left as usize, right as usize]).expect("two slots");
            // The right node's first child is separated by the parent's key.
            left.insert_at(left.count(), right_separator, right.children[0]);
            for position in 1..right.count() {
                left.insert_at(left.count(), right.keys[position], right.children[position]);
            }
        }
        let freed = self.inners[parent as usize].remove_at(position + 1);
        if height == 0 {
            self.free_leaves.push(freed);
        } else {
            self.free_inners.push(freed);
        }
    }

    /// A fresh empty leaf, in a freed slot if there is one.
    fn new_leaf(&mut self) -> NodeIndex {
        if let Some(index) = self.free_leaves.pop() {
            self.leaves[index as usize] = Leaf::EMPTY;
            return index;
        }
        self.leaves.push(Leaf::EMPTY);
        NodeIndex::try_from(self.leaves.len() - 1).expect("fewer than 2^32 leaves")
    }

    /// A fresh empty inner node, in a freed slot if there is one.
    fn new_inner(&mut self) -> NodeIndex {
        if let Some(index) = self.free_inners.pop() {
            self.inners[index as usize] = Inner::EMPTY;
            return index;
        }
        self.inners.push(Inner::EMPTY);
        NodeIndex::try_from(self.inners.len() - 1).expect("fewer than 2^32 inner nodes")
    }
}

/// The regions of a [`BPlusTree`] in start order, from some point on.
pub(crate) struct Iter<'a, const LEAF: usize> {
    leaves: &'a [Leaf<LEAF>],
    /// The leaf holding the next region, or [`NO_LEAF`] at the end.
    leaf: NodeIndex,
    /// The next region's position in `leaf` (may be past its end).
    position: usize,
}

impl<'a, const LEAF: usize> Iterator for Iter<'a, LEAF> {
    type Item = &'a Region;

    fn next(&mut self) -> Option<&'a Region> {
        while self.leaf != NO_LEAF {
            let leaf = &self.leaves[self.leaf as usize];
            if self.position < leaf.len() {
                self.position += 1;
                return Some(&leaf.regions[self.position - 1]);
            }
            self.leaf = leaf.next;
            self.position = 0;
        }
        None
    }
}

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;
