//! A B+-tree of regions keyed by their virtual start.
//!
//! Two kinds of node live in two arenas (`Vec`s) and name each other by
//! `u32` index, never by pointer:
//!
//! - An **inner node** holds only separator keys and child indices, each
//!   key beside its child in one 16-byte entry. Keeping the regions out of
//!   it makes it small (a few cache lines), so the upper levels of even a
//!   million-region tree stay in the cache and a lookup misses memory only
//!   at the bottom. Like a leaf, it is searched by cache line: the first
//!   key of every line at once, then inside the line picked, which also
//!   holds the child to descend into.
//! - A **leaf** holds up to `LEAF` regions sorted by start; the keys are
//!   the regions' own starts, not a separate array. A lookup reads the start
//!   of the first region in each of the leaf's cache lines at once, then
//!   one more in the line it picks, which holds the region sought: a leaf
//!   costs one round trip to memory, not two (keys, then region). Leaves
//!   are linked in key order (`next`) for iteration.
//!
//! Lookups search inside a node without branches: each step is a
//! comparison counted or a conditional move, over the node's whole capacity
//! (the root's: over its children, whose number seldom changes), so the
//! number of steps does not vary from lookup to lookup. There is then no
//! branch to mispredict, and the processor can run ahead into the next
//! independent lookup while this one waits for memory. Unused key slots
//! hold [`PADDING`] (`u64::MAX`) so the search can run over the whole,
//! fixed-size array without reading the node's count.
//!
//! Invariants (checked after every operation by the tests):
//! - every leaf is at the same depth, `height` inner levels below the root;
//! - keys are strictly increasing, within a leaf and from leaf to leaf;
//! - separator `i` (`i >= 1`) of an inner node is *exactly* the smallest
//!   key under child `i`, so the leaf reached for a key `k` holds the
//!   greatest key `<= k` (if any is in the tree) and `find` needs no
//!   second leaf;
//! - every node but the root is at least half full (`LEAF / 2` keys,
//!   `FANOUT / 2` children); an inner root has at least two children;
//! - a freed leaf is empty.
//!
//! [`BPlusTree::containing`] first tries the slot of its last answer (a
//! fault's next page is most often in the same region): that slot is only
//! a hint, checked against the tree before it is used. Any region a leaf
//! holds (the first `len` of its slots; a freed leaf holds none) is in the
//! tree, and regions never overlap, so a region there that contains the
//! key is the answer, however the tree changed since.
//!
//! Insert walks down once, making room in each full node before stepping
//! into it: it moves entries into the node's left sibling if that has room
//! (as B*-trees do), else splits the node in two halves. Regions added in
//! address order so fill the nodes instead of leaving every split one half
//! empty. Remove refills a node that falls below half by evening it out
//! with a sibling that can spare entries, or else merges the two (dropping
//! the root when it is left with one child). So the depth stays at most
//! `log(n) / log(FANOUT / 2) + 2`, whatever sequence of operations built the
//! tree, and insert and remove are O(log n) (each node touched moves at most
//! one node's worth of entries). Freed node slots are reused before an
//! arena grows.

use crate::{Protection, Region};
use alloc::vec::Vec;
use core::cell::Cell;
use core::hint::select_unpredictable;

/// The index of a node in its arena.
type NodeIndex = u32;

/// The `next` of the last leaf.
const NO_LEAF: NodeIndex = NodeIndex::MAX;

/// The key in every unused slot: not smaller than any key, so a count of the
/// keys `<= k` over the whole array counts only real keys (except for
/// `k == u64::MAX`, which the searches answer without counting: the last
/// child, all the keys of a leaf).
const PADDING: u64 = u64::MAX;

/// What fills unused region slots. Never read as a region.
const UNUSED: Region = Region::new(PADDING, 0, 0, Protection::empty());

/// The position of the last of `N` sorted keys that is `<= key`, taking
/// the first key to be, without reading it; `key_at(i)` reads key `i`, and
/// `PER_LINE` keys share a 64-byte cache line. In two steps:
///
/// 1. Count the cache lines whose first key is `<= key`. These loads do
///    not depend on each other, so when the node is not in the cache all
///    its lines are fetched at once rather than one after another.
/// 2. [`search_within`] that line.
#[inline(always)]
fn last_at_or_below<const N: usize, const PER_LINE: usize>(key_at: impl Fn(usize) -> u64, key: u64) -> usize {
    let lines = N.div_ceil(PER_LINE);
    // A plain loop: the `map(..).sum()` it replaces was left as a call
    // (a `fold`) in the kernel's one-page edits (DESIGN.md, "Inlining").
    let mut line = 0;
    for next in 1..lines {
        line += usize::from(key_at(next * PER_LINE) <= key);
    }
    let base = line * PER_LINE;
    search_within(key_at, base, PER_LINE.min(N - base), key)
}

/// The position of the last of the sorted keys `base..base + size` that is
/// `<= key`, taking key `base` to be, without reading it: a binary search
/// whose every halving is a conditional move, not a branch.
///
/// The number of steps depends only on `size`, so when `size` is fixed no
/// branch can be mispredicted and the processor can run on into the next,
/// independent lookup while this one waits for memory.
#[inline(always)]
fn search_within(key_at: impl Fn(usize) -> u64, mut base: usize, mut size: usize, key: u64) -> usize {
    while size > 1 {
        let half = size / 2;
        base = select_unpredictable(key_at(base + half) <= key, base + half, base);
        size -= half;
    }
    base
}

/// One child of an inner node beside its separator.
///
/// Side by side, so that the line where an inner node's search ends also
/// holds the index of the child to descend into: one round trip to memory
/// per node, not one for the keys and another for the children.
#[derive(Clone, Copy)]
struct Entry {
    /// The smallest key under `child` ([`PADDING`] in unused slots and in
    /// slot 0, whose lower bound is the parent's business).
    separator: u64,
    /// A leaf when the node is on the lowest inner level, an inner node
    /// otherwise.
    child: NodeIndex,
}

impl Entry {
    const UNUSED: Entry = Entry { separator: PADDING, child: 0 };
}

/// Entries in one 64-byte cache line.
const ENTRIES_PER_LINE: usize = 64 / core::mem::size_of::<Entry>();

/// An inner node: `count` children and the separators between them.
///
/// Aligned to a cache line so its entries start on one.
#[derive(Clone)]
#[repr(C, align(64))]
struct Inner<const FANOUT: usize> {
    /// `entries[i].separator`, for `1 <= i < count`, is the smallest key
    /// under `entries[i].child`; slots from `count` on are [`Entry::UNUSED`].
    entries: [Entry; FANOUT],
    /// The number of children.
    count: u32,
}

impl<const FANOUT: usize> Inner<FANOUT> {
    const EMPTY: Self = Inner { entries: [Entry::UNUSED; FANOUT], count: 0 };

    fn count(&self) -> usize {
        self.count as usize
    }

    /// The separator before child `position`.
    fn separator(&self, position: usize) -> u64 {
        self.entries[position].separator
    }

    fn set_separator(&mut self, position: usize, key: u64) {
        self.entries[position].separator = key;
    }

    fn child(&self, position: usize) -> NodeIndex {
        self.entries[position].child
    }

    /// The position of the child whose subtree holds `key` (or would).
    fn position_for(&self, key: u64) -> usize {
        if key == PADDING {
            // Padding compares <= u64::MAX too: the last child, without a
            // search. Any other key stops at the real separators, so the
            // search needs no clamp to the count (a load from another line).
            return self.count() - 1;
        }
        // Over the whole array, so the number of steps never varies.
        last_at_or_below::<FANOUT, ENTRIES_PER_LINE>(|i| self.separator(i), key)
    }

    /// [`Self::position_for`] over the children only: fewer steps when the
    /// node is far from full, but as many as the node has children. Used
    /// for the root, whose count seldom changes (so the number of steps is
    /// still predicted), and when inserting or removing, which change nodes
    /// and so are not lookups whose misses overlap.
    fn position_among_children(&self, key: u64) -> usize {
        search_within(|i| self.separator(i), 0, self.count(), key)
    }

    /// Puts `child`, whose smallest key is `key`, at `position`, shifting
    /// the later children right. The node must not be full.
    fn insert_at(&mut self, position: usize, key: u64, child: NodeIndex) {
        let count = self.count();
        self.entries.copy_within(position..count, position + 1);
        self.entries[position] = Entry { separator: key, child };
        self.count += 1;
    }

    /// Takes out the child at `position` with its separator, shifting the
    /// later children left.
    fn remove_at(&mut self, position: usize) -> NodeIndex {
        let count = self.count();
        let child = self.child(position);
        self.entries.copy_within(position + 1..count, position);
        self.entries[count - 1] = Entry::UNUSED;
        self.count -= 1;
        child
    }

    /// Takes out the first `count` children (and their separators).
    fn remove_first(&mut self, count: usize) {
        let old = self.count();
        self.entries.copy_within(count..old, 0);
        self.entries[old - count..old].fill(Entry::UNUSED);
        self.count -= count as u32;
    }

    /// Moves the upper half of the children of this full node into `right`
    /// (empty) and returns the separator between the two halves: the
    /// smallest key under `right`.
    fn split_into(&mut self, right: &mut Self) -> u64 {
        let middle = FANOUT / 2;
        let moved = FANOUT - middle;
        right.entries[..moved].copy_from_slice(&self.entries[middle..]);
        right.count = moved as u32;
        let separator = right.separator(0);
        right.set_separator(0, PADDING);
        self.entries[middle..].fill(Entry::UNUSED);
        self.count = middle as u32;
        separator
    }
}

/// A leaf: `len` regions sorted by start, their starts the keys.
///
/// The keys are not kept apart: a lookup reads the start of every other
/// region (the first in each cache line) at once, and the line it lands in
/// holds the region itself, so a leaf costs one round trip to memory.
#[derive(Clone)]
#[repr(C, align(64))]
struct Leaf<const LEAF: usize> {
    /// Slots from `len` on hold [`UNUSED`], whose start is [`PADDING`].
    regions: [Region; LEAF],
    /// The number of regions.
    len: u32,
    /// The leaf with the next larger keys, or [`NO_LEAF`].
    next: NodeIndex,
}

/// Regions in one 64-byte cache line.
const REGIONS_PER_LINE: usize = 64 / core::mem::size_of::<Region>();

impl<const LEAF: usize> Leaf<LEAF> {
    const EMPTY: Self = Leaf { regions: [UNUSED; LEAF], len: 0, next: NO_LEAF };

    fn len(&self) -> usize {
        self.len as usize
    }

    /// The key at `position`: that region's start.
    fn key(&self, position: usize) -> u64 {
        self.regions[position].va.0
    }

    /// How many keys are `<= key`.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn count_at_or_below(&self, key: u64) -> usize {
        if key == PADDING {
            // Padding compares <= u64::MAX too. Any other key stops at the
            // real keys, so the search below needs no clamp to `len`, whose
            // line a lookup then never reads.
            return self.len();
        }
        let last = last_at_or_below::<LEAF, REGIONS_PER_LINE>(|position| self.key(position), key);
        // `last` is 0 also when no key is <= key: look at that key itself.
        last + usize::from(self.key(last) <= key)
    }

    /// How many keys are `< key`: the position where `key` is or would go.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn count_below(&self, key: u64) -> usize {
        match key.checked_sub(1) {
            Some(below) => self.count_at_or_below(below),
            None => 0,
        }
    }

    /// The position of `key`, if this leaf holds it.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn position_of(&self, key: u64) -> Option<usize> {
        let position = self.count_below(key);
        (position < self.len() && self.key(position) == key).then_some(position)
    }

    /// Puts `region` at `position`, shifting the later ones right. The leaf
    /// must not be full.
    fn insert_at(&mut self, position: usize, region: Region) {
        let len = self.len();
        self.regions.copy_within(position..len, position + 1);
        self.regions[position] = region;
        self.len += 1;
    }

    /// Takes out the region at `position`, shifting the later ones left.
    fn remove_at(&mut self, position: usize) -> Region {
        let len = self.len();
        let region = self.regions[position];
        self.regions.copy_within(position + 1..len, position);
        self.regions[len - 1] = UNUSED;
        self.len -= 1;
        region
    }

    /// Takes out the first `count` regions.
    fn remove_first(&mut self, count: usize) {
        let len = self.len();
        self.regions.copy_within(count..len, 0);
        self.regions[len - count..len].fill(UNUSED);
        self.len -= count as u32;
    }

    /// Moves the upper half of this full leaf into `right` (empty).
    fn split_into(&mut self, right: &mut Self) {
        let middle = LEAF / 2;
        let moved = LEAF - middle;
        right.regions[..moved].copy_from_slice(&self.regions[middle..]);
        right.len = moved as u32;
        self.regions[middle..].fill(UNUSED);
        self.len = middle as u32;
    }

    /// Moves the last `count` regions of `left`, whose keys are all smaller,
    /// to the front of this leaf.
    fn prepend_last_of(&mut self, left: &mut Self, count: usize) {
        let (len, from) = (self.len(), left.len() - count);
        self.regions.copy_within(0..len, count);
        self.regions[..count].copy_from_slice(&left.regions[from..from + count]);
        self.len += count as u32;
        left.regions[from..from + count].fill(UNUSED);
        left.len -= count as u32;
    }

    /// Appends the first `count` regions of `right`, whose keys are all larger.
    fn append_from(&mut self, right: &Self, count: usize) {
        let len = self.len();
        self.regions[len..len + count].copy_from_slice(&right.regions[..count]);
        self.len += count as u32;
    }
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
    /// The leaf and position of [`Self::containing`]'s last answer: a hint.
    last_hit: Cell<(NodeIndex, u32)>,
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
            last_hit: Cell::new((0, 0)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The leaf whose key range holds `key`. The tree must not be empty.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn leaf_for(&self, key: u64) -> NodeIndex {
        if self.height == 0 {
            return self.root;
        }
        let root = &self.inners[self.root as usize];
        let mut node = root.child(root.position_among_children(key));
        for _ in 1..self.height {
            let inner = &self.inners[node as usize];
            node = inner.child(inner.position_for(key));
        }
        node
    }

    /// The region containing `key`, if any: the region of the last answer
    /// when it still holds `key` (see the module's documentation), else
    /// [`Self::last_at_or_below`]'s if it holds `key`.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn containing(&self, key: u64) -> Option<&Region> {
        let (hinted_leaf, hinted_position) = self.last_hit.get();
        if let Some(leaf) = self.leaves.get(hinted_leaf as usize) {
            let position = hinted_position as usize;
            if position < leaf.len() && leaf.regions[position].contains(key) {
                return Some(&leaf.regions[position]);
            }
        }
        if self.len == 0 {
            return None;
        }
        let leaf_index = self.leaf_for(key);
        let leaf = &self.leaves[leaf_index as usize];
        let position = leaf.count_at_or_below(key).checked_sub(1)?;
        let region = &leaf.regions[position];
        if !region.contains(key) {
            return None;
        }
        self.last_hit.set((leaf_index, position as u32));
        Some(region)
    }

    /// The region with the greatest start `<= key`.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
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

    /// The region with the greatest start `< key` and the one with the
    /// least start `>= key`, found in one descent.
    pub(crate) fn neighbours(&self, key: u64) -> (Option<&Region>, Option<&Region>) {
        if self.len == 0 {
            return (None, None);
        }
        let Some(below) = key.checked_sub(1) else {
            return (None, self.iter().next());
        };
        // The leaf holding the greatest start <= key - 1 (if there is one)...
        let leaf_index = self.leaf_for(below);
        let leaf = &self.leaves[leaf_index as usize];
        let position = leaf.count_at_or_below(below);
        let before = position.checked_sub(1).map(|last| &leaf.regions[last]);
        // ...and just after it, in this leaf or at the start of the next.
        let after = Iter { leaves: &self.leaves, leaf: leaf_index, position }.next();
        (before, after)
    }

    /// The region starting exactly at `key`.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn get(&self, key: u64) -> Option<&Region> {
        if self.len == 0 {
            return None;
        }
        let leaf = &self.leaves[self.leaf_for(key) as usize];
        leaf.position_of(key).map(|position| &leaf.regions[position])
    }

    /// The region starting exactly at `key`, to change in place. Changing
    /// its `va` would break the tree: callers keep it.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
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

    /// The regions from the one with the greatest start `<= key` on (from
    /// the first when no start is `<= key`), in start order: in one descent,
    /// the regions that may hold `key` or lie above it.
    pub(crate) fn iter_from_last_at_or_below(&self, key: u64) -> Iter<'_, LEAF> {
        if self.len == 0 {
            return Iter { leaves: &self.leaves, leaf: NO_LEAF, position: 0 };
        }
        let leaf = self.leaf_for(key);
        // As in `last_at_or_below`: with no start <= key in this leaf there
        // is none in the tree, and this leaf is the first.
        let position = self.leaves[leaf as usize].count_at_or_below(key).saturating_sub(1);
        Iter { leaves: &self.leaves, leaf, position }
    }

    /// Adds `region` under its start, or replaces (and returns) the region
    /// already starting there.
    ///
    /// One pass from the root down: before stepping into a full child, the
    /// child is given room (see [`Self::make_room`]), so the leaf reached
    /// can take the region and no split has to travel back up.
    pub(crate) fn insert(&mut self, region: Region) -> Option<Region> {
        let key = region.va.0;
        if self.leaves.is_empty() {
            self.root = self.new_leaf();
            self.height = 0;
        }
        if self.is_full(self.root, self.height) {
            // A new root above the old one, which the walk below splits.
            let old_root = self.root;
            self.root = self.new_inner();
            let root = &mut self.inners[self.root as usize];
            root.insert_at(0, PADDING, old_root);
            self.height += 1;
        }
        let mut node = self.root;
        for height in (1..=self.height).rev() {
            let mut position = self.inners[node as usize].position_among_children(key);
            if self.is_full(self.inners[node as usize].child(position), height - 1) {
                self.make_room(node, position, height - 1, key);
                position = self.inners[node as usize].position_among_children(key);
            }
            node = self.inners[node as usize].child(position);
        }
        let leaf = &mut self.leaves[node as usize];
        let position = leaf.count_below(key);
        if position < leaf.len() && leaf.key(position) == key {
            return Some(core::mem::replace(&mut leaf.regions[position], region));
        }
        // Not at position 0 unless this is the first leaf (see make_room):
        // the separators stay exact.
        leaf.insert_at(position, region);
        self.len += 1;
        None
    }

    fn is_full(&self, node: NodeIndex, height: u32) -> bool {
        if height == 0 {
            self.leaves[node as usize].len() == LEAF
        } else {
            self.inners[node as usize].count() == FANOUT
        }
    }

    /// Makes room in the full child `position` of `parent` (not full), on
    /// the way to inserting `key`, whose own place stays in that child.
    ///
    /// If the left sibling has room, the child's entries before `key`'s
    /// place move into it (a rotation, as in B*-trees); only when the
    /// sibling is full too does the child split in two halves. Regions
    /// added in address order (the usual way an address space grows) so
    /// fill each node before the next is started, instead of leaving every
    /// split node half empty.
    fn make_room(&mut self, parent: NodeIndex, position: usize, height: u32, key: u64) {
        let parent_node = &self.inners[parent as usize];
        let child = parent_node.child(position);
        if position > 0 {
            let left = parent_node.child(position - 1);
            let (room, before_key) = if height == 0 {
                // Keep at least one region before `key`, so it does not
                // become the child's smallest and need a new separator.
                (
                    LEAF - self.leaves[left as usize].len(),
                    self.leaves[child as usize].count_below(key).saturating_sub(1),
                )
            } else {
                (FANOUT - self.inners[left as usize].count(), self.inners[child as usize].position_among_children(key))
            };
            let moved = room.min(before_key);
            if moved > 0 {
                self.rotate_left(parent, position, height, moved);
                return;
            }
        }
        self.split_child(parent, position, height);
    }

    /// Moves the first `moved` entries of child `position` of `parent` to
    /// the end of its left sibling.
    fn rotate_left(&mut self, parent: NodeIndex, position: usize, height: u32, moved: usize) {
        let parent_node = &self.inners[parent as usize];
        let (left, child) = (parent_node.child(position - 1), parent_node.child(position));
        let child_smallest = parent_node.separator(position);
        let new_separator = if height == 0 {
            let [left, child] = self.leaves.get_disjoint_mut([left as usize, child as usize]).expect("two slots");
            left.append_from(child, moved);
            child.remove_first(moved);
            child.key(0)
        } else {
            let [left, child] = self.inners.get_disjoint_mut([left as usize, child as usize]).expect("two slots");
            // The child's first entry has no separator of its own: its
            // smallest key is the child's, which the parent holds.
            left.insert_at(left.count(), child_smallest, child.child(0));
            for from in 1..moved {
                left.insert_at(left.count(), child.separator(from), child.child(from));
            }
            let new_smallest = child.separator(moved);
            child.remove_first(moved);
            new_smallest
        };
        self.inners[parent as usize].set_separator(position, new_separator);
    }

    /// Splits the full child `position` of `parent` in two halves, the
    /// upper one a new child at `position + 1`.
    fn split_child(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let child = self.inners[parent as usize].child(position);
        let (right, separator) = if height == 0 {
            let right = self.new_leaf();
            let [child, right_leaf] =
                self.leaves.get_disjoint_mut([child as usize, right as usize]).expect("two slots");
            child.split_into(right_leaf);
            right_leaf.next = child.next;
            child.next = right;
            (right, right_leaf.key(0))
        } else {
            let right = self.new_inner();
            let [child, right_node] =
                self.inners.get_disjoint_mut([child as usize, right as usize]).expect("two slots");
            (right, child.split_into(right_node))
        };
        self.inners[parent as usize].insert_at(position + 1, separator, right);
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
            self.root = self.inners[old_root as usize].child(0);
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
            let new_smallest = (position == 0 && leaf.len > 0).then(|| leaf.key(0));
            return Some(Removal { region, new_smallest });
        }
        let position = self.inners[node as usize].position_among_children(key);
        let child = self.inners[node as usize].child(position);
        let mut removal = self.remove_below(child, height - 1, key)?;
        if let Some(smallest) = removal.new_smallest {
            if position > 0 {
                // The separator of the child is its smallest key: keep it exact.
                self.inners[node as usize].set_separator(position, smallest);
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

    /// The number of entries of `node`: regions or children.
    fn size(&self, node: NodeIndex, height: u32) -> usize {
        if height == 0 {
            self.leaves[node as usize].len()
        } else {
            self.inners[node as usize].count()
        }
    }

    /// Brings child `position` of `parent` (`height` levels above the
    /// leaves, below half full) back to half: borrows from a sibling that
    /// can lend, or else merges with one.
    ///
    /// A borrow evens the two siblings out rather than taking just one
    /// entry, so that the next removals from this node do not each need
    /// another borrow.
    fn refill(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let siblings = &self.inners[parent as usize];
        let size = self.size(siblings.child(position), height);
        let left_size = (position > 0).then(|| self.size(siblings.child(position - 1), height));
        let right_size = (position + 1 < siblings.count()).then(|| self.size(siblings.child(position + 1), height));
        let half = if height == 0 { LEAF / 2 } else { FANOUT / 2 };
        match (left_size, right_size) {
            (Some(left), _) if left > half => {
                self.borrow_from_left(parent, position, height, (left - size) / 2);
            }
            (_, Some(right)) if right > half => {
                self.borrow_from_right(parent, position, height, (right - size) / 2);
            }
            (Some(_), _) => self.merge_with_next(parent, position - 1, height),
            // An inner node has at least two children: a right sibling exists.
            _ => self.merge_with_next(parent, position, height),
        }
    }

    /// Moves the last `count` entries of child `position - 1` to the front
    /// of child `position`.
    fn borrow_from_left(&mut self, parent: NodeIndex, position: usize, height: u32, count: usize) {
        let parent_node = &self.inners[parent as usize];
        let (left, node) = (parent_node.child(position - 1), parent_node.child(position));
        let mut node_separator = parent_node.separator(position);
        if height == 0 {
            let [left, node] = self.leaves.get_disjoint_mut([left as usize, node as usize]).expect("two slots");
            node.prepend_last_of(left, count);
            node_separator = node.key(0);
        } else {
            let [left, node] = self.inners.get_disjoint_mut([left as usize, node as usize]).expect("two slots");
            for _ in 0..count {
                let last = left.count() - 1;
                let moved_smallest = left.separator(last);
                let moved = left.remove_at(last);
                node.insert_at(0, PADDING, moved);
                // The node's former first child now needs a separator: its
                // smallest key, which was the node's, which the parent held.
                node.set_separator(1, node_separator);
                node_separator = moved_smallest;
            }
        }
        self.inners[parent as usize].set_separator(position, node_separator);
    }

    /// Moves the first `count` entries of child `position + 1` to the end
    /// of child `position`.
    fn borrow_from_right(&mut self, parent: NodeIndex, position: usize, height: u32, count: usize) {
        let parent_node = &self.inners[parent as usize];
        let (node, right) = (parent_node.child(position), parent_node.child(position + 1));
        let mut right_separator = parent_node.separator(position + 1);
        if height == 0 {
            let [node, right] = self.leaves.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
            node.append_from(right, count);
            right.remove_first(count);
            right_separator = right.key(0);
        } else {
            let [node, right] = self.inners.get_disjoint_mut([node as usize, right as usize]).expect("two slots");
            for _ in 0..count {
                // The right node's second child becomes its first: its
                // separator is the right node's new smallest key.
                let right_second_smallest = right.separator(1);
                let moved = right.remove_at(0);
                node.insert_at(node.count(), right_separator, moved);
                right_separator = right_second_smallest;
            }
        }
        self.inners[parent as usize].set_separator(position + 1, right_separator);
    }

    /// Merges child `position + 1` into child `position` and frees it.
    fn merge_with_next(&mut self, parent: NodeIndex, position: usize, height: u32) {
        let parent_node = &self.inners[parent as usize];
        let (left, right) = (parent_node.child(position), parent_node.child(position + 1));
        let right_separator = parent_node.separator(position + 1);
        if height == 0 {
            let [left, right] = self.leaves.get_disjoint_mut([left as usize, right as usize]).expect("two slots");
            left.append_from(right, right.len());
            left.next = right.next;
        } else {
            let [left, right] = self.inners.get_disjoint_mut([left as usize, right as usize]).expect("two slots");
            // The right node's first child is separated by the parent's key.
            left.insert_at(left.count(), right_separator, right.child(0));
            for position in 1..right.count() {
                left.insert_at(left.count(), right.separator(position), right.child(position));
            }
        }
        let freed = self.inners[parent as usize].remove_at(position + 1);
        if height == 0 {
            // Empty, so that no lookup takes its old regions for the tree's.
            self.leaves[freed as usize] = Leaf::EMPTY;
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
