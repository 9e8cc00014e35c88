//! The tree against `BTreeMap` as a model, with the structural invariants
//! checked after every operation.
//!
//! Small node sizes (4 and 5) make a few hundred keys a tree of five or six
//! levels, so the sequences split, borrow, merge, grow and shrink the root
//! many times; the production sizes are run too.

use super::BPlusTree;
use crate::region_set::{INNER_FANOUT, LEAF_CAPACITY};
use crate::{Protection, Region};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// A region starting at `key`, with `tag` in its other fields so that a
/// replaced or misplaced region shows.
fn region(key: u64, tag: u64) -> Region {
    Region::new(key, tag, 1 + tag, Protection::READ)
}

#[derive(Clone, Debug)]
enum Operation {
    Insert(u64, u64),
    /// Remove a key that is in the tree, picked by rank.
    RemoveExisting(Index),
    /// Remove any key (usually absent).
    Remove(u64),
    Get(u64),
    /// Change the region at a key in place.
    Update(u64, u64),
    LastAtOrBelow(u64),
    /// The region containing a key (the regions here may overlap: see `run`).
    Containing(u64),
    Neighbours(u64),
    IterFrom(u64),
    IterFromLastAtOrBelow(u64),
    Clear,
}

/// Keys mostly in `0..space`, sometimes at the very top (`u64::MAX` is the
/// padding value, so it must work as a key too).
fn key(space: u64) -> impl Strategy<Value = u64> {
    prop_oneof![12 => 0..space, 1 => (0u64..4).prop_map(|below_top| u64::MAX - below_top)]
}

fn operation(space: u64) -> impl Strategy<Value = Operation> {
    prop_oneof![
        40 => (key(space), 0u64..1000).prop_map(|(key, tag)| Operation::Insert(key, tag)),
        30 => any::<Index>().prop_map(Operation::RemoveExisting),
        4 => key(space).prop_map(Operation::Remove),
        4 => key(space).prop_map(Operation::Get),
        4 => (key(space), 0u64..1000).prop_map(|(key, tag)| Operation::Update(key, tag)),
        8 => key(space).prop_map(Operation::LastAtOrBelow),
        8 => key(space).prop_map(Operation::Containing),
        4 => key(space).prop_map(Operation::Neighbours),
        4 => key(space).prop_map(Operation::IterFrom),
        4 => key(space).prop_map(Operation::IterFromLastAtOrBelow),
        // Rare: most sequences should grow a deep tree.
        1 => Just(Operation::Clear),
    ]
}

/// Sequences long enough to grow a tree of hundreds of keys and shrink it.
fn operations() -> impl Strategy<Value = Vec<Operation>> {
    prop_oneof![Just(64u64), Just(1024u64), Just(1 << 20)]
        .prop_flat_map(|space| prop::collection::vec(operation(space), 1..1500))
}

fn run<const LEAF: usize, const FANOUT: usize>(operations: &[Operation]) -> Result<(), TestCaseError> {
    let mut tree = BPlusTree::<LEAF, FANOUT>::new();
    let mut model = BTreeMap::<u64, Region>::new();
    for operation in operations {
        match *operation {
            Operation::Insert(key, tag) => {
                prop_assert_eq!(tree.insert(region(key, tag)), model.insert(key, region(key, tag)))
            }
            Operation::RemoveExisting(ref index) => {
                if let Some(&key) = (!model.is_empty()).then(|| model.keys().nth(index.index(model.len()))).flatten() {
                    prop_assert_eq!(tree.remove(key), model.remove(&key));
                }
            }
            Operation::Remove(key) => prop_assert_eq!(tree.remove(key), model.remove(&key)),
            Operation::Get(key) => prop_assert_eq!(tree.get(key), model.get(&key)),
            Operation::Update(key, tag) => {
                let new = region(key, tag);
                let old = tree.get_mut(key).map(|slot| core::mem::replace(slot, new));
                prop_assert_eq!(old, model.get_mut(&key).map(|slot| core::mem::replace(slot, new)));
            }
            Operation::LastAtOrBelow(key) => {
                prop_assert_eq!(tree.last_at_or_below(key), model.range(..=key).next_back().map(|(_, r)| r))
            }
            Operation::Containing(key) => {
                // The regions of these sequences overlap, where a region set's
                // never do. Still: an answer is a region the tree holds now,
                // never one its last answer left behind, and there is one
                // whenever the last region at or below the key holds it.
                let found = tree.containing(key);
                if let Some(found) = found {
                    prop_assert!(found.contains(key), "containing({:#x}) gave {:?}", key, found);
                    prop_assert_eq!(model.get(&found.va.0), Some(found), "containing({:#x}): not in the tree", key);
                }
                let last = model.range(..=key).next_back().map(|(_, r)| r);
                if last.is_some_and(|r| r.contains(key)) {
                    prop_assert!(found.is_some(), "containing({:#x}) found nothing", key);
                }
            }
            Operation::Neighbours(key) => {
                let before = model.range(..key).next_back().map(|(_, r)| r);
                let after = model.range(key..).next().map(|(_, r)| r);
                prop_assert_eq!(tree.neighbours(key), (before, after), "neighbours({:#x})", key);
            }
            Operation::IterFrom(key) => {
                prop_assert!(tree.iter_from(key).eq(model.range(key..).map(|(_, r)| r)), "iter_from({:#x})", key)
            }
            Operation::IterFromLastAtOrBelow(key) => {
                // From the last start <= key, or from the first start when none is.
                let from = model.range(..=key).next_back().map_or(0, |(&start, _)| start);
                let want = model.range(from..).map(|(_, r)| r);
                prop_assert!(tree.iter_from_last_at_or_below(key).eq(want), "iter_from_last_at_or_below({:#x})", key)
            }
            Operation::Clear => {
                tree = BPlusTree::new();
                model.clear();
            }
        }
        if let Err(broken) = tree.check_invariants() {
            return Err(TestCaseError::fail(alloc::format!("after {operation:?}: {broken}")));
        }
        prop_assert_eq!(tree.len(), model.len());
        prop_assert!(tree.iter().eq(model.values()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn smallest_nodes_match_the_model(operations in operations()) {
        run::<4, 4>(&operations)?;
    }

    #[test]
    fn odd_sized_nodes_match_the_model(operations in operations()) {
        run::<5, 7>(&operations)?;
    }

    #[test]
    fn production_sized_nodes_match_the_model(operations in operations()) {
        run::<LEAF_CAPACITY, INNER_FANOUT>(&operations)?;
    }
}

/// A xorshift generator, for the deterministic large sequences below.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Fills a tree in random order, then empties it in another random order,
/// checking every invariant at each step: the root grows to full height and
/// collapses back to one empty leaf, whose slot is reused.
fn fill_and_empty<const LEAF: usize, const FANOUT: usize>(count: u64) {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut keys: Vec<u64> = (0..count).map(|i| i * 0x1000).collect();
    for i in (1..keys.len()).rev() {
        keys.swap(i, random.below(i as u64 + 1) as usize);
    }
    let mut tree = BPlusTree::<LEAF, FANOUT>::new();
    let mut tallest = 0;
    for &key in &keys {
        assert_eq!(tree.insert(region(key, key)), None);
        tree.check_invariants().unwrap();
        tallest = tallest.max(tree.height);
    }
    assert_eq!(tree.len() as u64, count);
    assert!(tree.iter().map(|r| r.va.0).eq((0..count).map(|i| i * 0x1000)));
    for i in (1..keys.len()).rev() {
        keys.swap(i, random.below(i as u64 + 1) as usize);
    }
    for &key in &keys {
        assert_eq!(tree.remove(key), Some(region(key, key)));
        assert_eq!(tree.remove(key), None);
        tree.check_invariants().unwrap();
    }
    assert_eq!((tree.len(), tree.height), (0, 0));
    assert_eq!(tree.iter().next(), None);
    assert_eq!(tree.last_at_or_below(u64::MAX), None);
    // Emptying freed every node but the root leaf.
    assert_eq!(tree.leaves.len() - tree.free_leaves.len(), 1);
    assert_eq!(tree.inners.len(), tree.free_inners.len());
    // A tree of `count` keys with at least half-full nodes of these sizes
    // is this tall at most.
    let (least_leaf, least_fanout) = ((LEAF / 2) as f64, (FANOUT / 2) as f64);
    let leaves = (count as f64 / least_leaf).ceil();
    let bound = (leaves.ln() / least_fanout.ln()).ceil() as u32 + 1;
    assert!(tallest <= bound, "height {tallest} for {count} keys, bound {bound}");
}

#[test]
fn small_nodes_grow_and_collapse_the_root() {
    fill_and_empty::<4, 4>(3000);
}

#[test]
fn production_nodes_grow_and_collapse_the_root() {
    fill_and_empty::<LEAF_CAPACITY, INNER_FANOUT>(30_000);
}

#[test]
fn freed_nodes_are_reused_before_the_arenas_grow() {
    let mut tree = BPlusTree::<4, 4>::new();
    for key in 0..200 {
        tree.insert(region(key, 0));
    }
    for key in 0..150 {
        tree.remove(key);
    }
    assert!(!tree.free_leaves.is_empty() && !tree.free_inners.is_empty());
    let mut reused = 0;
    for key in (0..150).rev() {
        let (leaves, inners) = (tree.leaves.len(), tree.inners.len());
        let (free_leaves, free_inners) = (tree.free_leaves.len(), tree.free_inners.len());
        tree.insert(region(key, 0));
        assert!(tree.leaves.len() == leaves || free_leaves == 0, "leaf arena grew with free slots");
        assert!(tree.inners.len() == inners || free_inners == 0, "inner arena grew with free slots");
        reused += free_leaves - tree.free_leaves.len().min(free_leaves);
    }
    tree.check_invariants().unwrap();
    assert!(reused > 0);
}

#[test]
fn appending_in_order_keeps_lookups_exact() {
    // The pattern of the benchmark and of most address spaces: regions
    // added in address order.
    let mut tree = BPlusTree::<LEAF_CAPACITY, INNER_FANOUT>::new();
    for key in 0..5000u64 {
        tree.insert(region(key * 2, key));
    }
    tree.check_invariants().unwrap();
    for key in 0..10_000u64 {
        assert_eq!(tree.last_at_or_below(key).map(|r| r.va.0), Some(key & !1));
    }
}
