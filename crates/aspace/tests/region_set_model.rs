//! Random operation sequences run against [`RegionSet`] and against a naive
//! model (a vector of regions searched linearly), comparing every answer.
//!
//! The model does its interval arithmetic in `u128`, so a region ending at
//! 2^64 needs no special case there and the model shares no code with the
//! set (not even [`Region::last`] or [`Region::overlaps`]).
//!
//! Addresses are drawn mostly from a tiny space (0..64 or 0..1024 units) so
//! that overlaps, adjacency and exact matches are common, with some draws at
//! the very top of the address space (regions ending at 2^64, ranges that
//! wrap) and a few anywhere at all. The unit is a byte (regions start and end
//! inside pages, which the set's page index leaves to its tree) or a page,
//! 2 MiB or 1 GiB (whole pages, which the page index records itself).

use aspace::region_set::PAGE_INDEX_FROM;
use aspace::{PhysAddr, Protection, Region, RegionSet, VirtAddr};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

/// Each case runs up to this many operations on one set.
const MAX_OPERATIONS: usize = 160;
/// Random sequences per test run (chosen to keep the debug-build run to a few seconds).
const CASES: u32 = 3000;

mod common;

use common::{extent, Model, TOP};

/// One call on the set.
#[derive(Clone, Debug)]
enum Operation {
    Insert(Region),
    /// Remove at an arbitrary address (usually not a region start).
    Remove(u64),
    /// Remove the region that is `index`-th in address order, if any.
    RemoveExisting(Index),
    /// Update with an arbitrary region.
    Update(Region),
    /// Update the `index`-th region (by address) with a new physical start
    /// and protections, keeping its extent: the update that succeeds.
    UpdateExisting(Index, u64, Protection),
    /// Replace the `index`-th region (by address) by pieces.
    Replace(Index, Pieces),
    Find(u64),
    /// Find at one of the four bytes that matter around the `index`-th
    /// region: one before its start, its start, its last byte, one past it.
    FindAtEdge(Index, Edge),
    Get(u64),
    Overlapping(u64, u64),
    FirstOverlap(u64, u64),
    NextAtOrAfter(u64),
    PreviousBefore(u64),
    Iterate,
    Clear,
}

/// The pieces a region is replaced by, in units of `unit` bytes.
#[derive(Clone, Debug)]
enum Pieces {
    /// What an edit leaves: the parts before and after a cut of `len` units
    /// at `offset` units into the region (each taken modulo what fits), and
    /// if `middle`, the cut part itself with other protections.
    Cut { offset: u64, len: u64, middle: bool, unit: u64 },
    /// What a growing stack leaves: the region longer by `units` units at
    /// its start or its end (colliding, at times, with a neighbour).
    Grow { units: u64, at_end: bool, unit: u64 },
    /// Anything at all: mostly refused.
    Arbitrary(Vec<Region>),
}

impl Pieces {
    fn of(&self, old: &Region) -> Vec<Region> {
        match *self {
            Pieces::Cut { offset, len, middle, unit } => {
                let units = (old.len / unit).max(1);
                let offset = offset % units * unit;
                let len = (1 + len % (units - offset / unit).max(1)) * unit;
                let len = len.min(old.len - offset.min(old.len - 1));
                let offset = offset.min(old.len - len);
                let cut = old.va.0 + offset;
                let before = (offset > 0).then(|| Region::new(old.va.0, old.pa.0, offset, old.prot));
                let changed = middle.then(|| Region::new(cut, old.pa.0 + offset, len, Protection::READ));
                let after_len = old.len - offset - len;
                let after =
                    (after_len > 0).then(|| Region::new(cut + len, old.pa.0 + offset + len, after_len, old.prot));
                [before, changed, after].into_iter().flatten().collect()
            }
            Pieces::Grow { units, at_end, unit } => {
                let by = units * unit;
                let grown = if at_end {
                    Region { len: old.len.wrapping_add(by), ..*old }
                } else {
                    Region { va: VirtAddr(old.va.0.wrapping_sub(by)), len: old.len.wrapping_add(by), ..*old }
                };
                vec![grown]
            }
            Pieces::Arbitrary(ref pieces) => pieces.clone(),
        }
    }
}

fn pieces(space: u64, unit: u64) -> impl Strategy<Value = Pieces> {
    prop_oneof![
        3 => (any::<u64>(), any::<u64>(), any::<bool>())
            .prop_map(move |(offset, len, middle)| Pieces::Cut { offset, len, middle, unit }),
        2 => (1u64..4, any::<bool>()).prop_map(move |(units, at_end)| Pieces::Grow { units, at_end, unit }),
        1 => prop::collection::vec(region(space, unit), 0..3).prop_map(Pieces::Arbitrary),
    ]
}

/// A byte at or beside a region's boundary.
#[derive(Clone, Copy, Debug)]
enum Edge {
    BeforeStart,
    Start,
    Last,
    PastLast,
}

impl Edge {
    /// The address of this edge of `region` (wrapping at either end of the address space).
    fn of(self, region: &Region) -> u64 {
        let last = region.va.0 + (region.len - 1);
        match self {
            Edge::BeforeStart => region.va.0.wrapping_sub(1),
            Edge::Start => region.va.0,
            Edge::Last => last,
            Edge::PastLast => last.wrapping_add(1),
        }
    }
}

fn edge() -> impl Strategy<Value = Edge> {
    prop_oneof![Just(Edge::BeforeStart), Just(Edge::Start), Just(Edge::Last), Just(Edge::PastLast)]
}

/// An address: mostly in `0..space` units, some at the top of the address
/// space, a few anywhere.
fn address(space: u64, unit: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..space * unit,
        2 => (0u64..64 * unit).prop_map(|below_top| u64::MAX - below_top),
        1 => any::<u64>(),
    ]
}

/// A `(start, length)` pair in whole `unit`s, biased toward short ranges in
/// `0..space` units that collide, ranges ending exactly at 2^64, and ranges
/// that wrap past it; with a unit of a page or more, also some that start or
/// end inside a unit.
fn range(space: u64, unit: u64) -> impl Strategy<Value = (u64, u64)> {
    let units = move |count: u64| count * unit;
    prop_oneof![
        6 => (0..space, 1u64..6).prop_map(move |(va, len)| (units(va), units(len))),
        3 => (0..space, 6u64..24).prop_map(move |(va, len)| (units(va), units(len))),
        1 => (0..space, Just(0u64)).prop_map(move |(va, len)| (units(va), len)),
        // Ends exactly at the top of the address space (last byte u64::MAX).
        2 => (1u64..=64).prop_map(move |count| (units(count).wrapping_neg(), units(count))),
        // Near the top: may end below it, at it, or wrap past it.
        2 => (1u64..=64, 1u64..80).prop_map(move |(count, len)| (units(count).wrapping_neg(), units(len))),
        // Anywhere inside the units, of any length: not whole units.
        1 => (0..space * unit, 1..8 * unit),
        1 => (address(space, unit), any::<u64>()),
        1 => (0u64..4, Just(u64::MAX)),
    ]
}

fn protection() -> impl Strategy<Value = Protection> {
    (0u32..128).prop_map(Protection::from_bits_truncate)
}

fn region(space: u64, unit: u64) -> impl Strategy<Value = Region> {
    (range(space, unit), 0u64..8, protection()).prop_map(|((va, len), pa, prot)| Region::new(va, pa, len, prot))
}

fn operation(space: u64, unit: u64) -> impl Strategy<Value = Operation> {
    prop_oneof![
        24 => region(space, unit).prop_map(Operation::Insert),
        2 => address(space, unit).prop_map(Operation::Remove),
        3 => any::<Index>().prop_map(Operation::RemoveExisting),
        2 => region(space, unit).prop_map(Operation::Update),
        3 => (any::<Index>(), 0u64..8, protection()).prop_map(|(i, pa, prot)| Operation::UpdateExisting(i, pa, prot)),
        4 => (any::<Index>(), pieces(space, unit)).prop_map(|(i, pieces)| Operation::Replace(i, pieces)),
        5 => address(space, unit).prop_map(Operation::Find),
        4 => (any::<Index>(), edge()).prop_map(|(i, edge)| Operation::FindAtEdge(i, edge)),
        2 => address(space, unit).prop_map(Operation::Get),
        3 => range(space, unit).prop_map(|(va, len)| Operation::Overlapping(va, len)),
        3 => range(space, unit).prop_map(|(va, len)| Operation::FirstOverlap(va, len)),
        2 => address(space, unit).prop_map(Operation::NextAtOrAfter),
        2 => address(space, unit).prop_map(Operation::PreviousBefore),
        1 => Just(Operation::Iterate),
        // Rare, so that most sequences grow a populated set.
        1 => Just(Operation::Clear),
    ]
}

/// The start of the `index`-th region in address order, or an address no
/// region starts at when the set is empty.
fn start_of(model: &Model, index: &Index) -> Option<u64> {
    let sorted = model.sorted();
    (!sorted.is_empty()).then(|| sorted[index.index(sorted.len())].va.0)
}

fn run(set: &mut RegionSet, model: &mut Model, operation: &Operation) -> Result<(), TestCaseError> {
    match *operation {
        Operation::Insert(region) => prop_assert_eq!(set.insert(region), model.insert(region)),
        Operation::Remove(va) => prop_assert_eq!(set.remove(VirtAddr(va)), model.remove(va)),
        Operation::RemoveExisting(ref index) => {
            if let Some(va) = start_of(model, index) {
                let removed = set.remove(VirtAddr(va));
                prop_assert!(removed.is_some());
                prop_assert_eq!(removed, model.remove(va));
            }
        }
        Operation::Update(region) => prop_assert_eq!(set.update(region), model.update(region)),
        Operation::UpdateExisting(ref index, pa, prot) => {
            if let Some(va) = start_of(model, index) {
                let len = model.get(va).unwrap().len;
                let replacement = Region { va: VirtAddr(va), pa: PhysAddr(pa), len, prot };
                let result = set.update(replacement);
                prop_assert!(result.is_ok());
                prop_assert_eq!(result, model.update(replacement));
            }
        }
        Operation::Replace(ref index, ref pieces) => {
            if let Some(va) = start_of(model, index) {
                let pieces = pieces.of(&model.get(va).unwrap());
                prop_assert_eq!(set.replace(VirtAddr(va), &pieces), model.replace(va, &pieces));
            }
        }
        Operation::Find(va) => prop_assert_eq!(set.find(va).copied(), model.find(va)),
        Operation::FindAtEdge(ref index, edge) => {
            if let Some(va) = start_of(model, index) {
                let at = edge.of(&model.get(va).unwrap());
                prop_assert_eq!(set.find(at).copied(), model.find(at), "at {:#x}", at);
            }
        }
        Operation::Get(va) => prop_assert_eq!(set.get(VirtAddr(va)).copied(), model.get(va)),
        Operation::Overlapping(va, len) => {
            prop_assert_eq!(set.overlapping(va, len).copied().collect::<Vec<_>>(), model.overlapping(va, len))
        }
        Operation::FirstOverlap(va, len) => {
            prop_assert_eq!(set.first_overlap(va, len).copied(), model.overlapping(va, len).first().copied())
        }
        Operation::NextAtOrAfter(va) => prop_assert_eq!(set.next_at_or_after(va).copied(), model.next_at_or_after(va)),
        Operation::PreviousBefore(va) => prop_assert_eq!(set.previous_before(va).copied(), model.previous_before(va)),
        Operation::Iterate => prop_assert_eq!(set.iter().copied().collect::<Vec<_>>(), model.sorted()),
        Operation::Clear => {
            set.clear();
            model.regions.clear();
        }
    }
    Ok(())
}

/// What must hold after every operation, whatever it was.
fn check_invariants(set: &RegionSet, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(set.len(), model.regions.len());
    prop_assert_eq!(set.is_empty(), model.regions.is_empty());
    let regions: Vec<Region> = set.iter().copied().collect();
    prop_assert_eq!(&regions, &model.sorted());
    for pair in regions.windows(2) {
        let (lower, upper) = (extent(pair[0].va.0, pair[0].len), extent(pair[1].va.0, pair[1].len));
        prop_assert!(lower.1 <= upper.0, "regions overlap: {:?} and {:?}", pair[0], pair[1]);
    }
    for region in &regions {
        prop_assert!(region.len > 0 && extent(region.va.0, region.len).1 <= TOP, "invalid region {:?}", region);
    }
    Ok(())
}

/// A 4 KiB page, 2 MiB and 1 GiB: the runs the set's page index records in
/// one entry at levels 0, 1 and 2.
const PAGE: u64 = 1 << 12;
const LARGE_PAGE: u64 = 1 << 21;
const GIB: u64 = 1 << 30;

/// The operation sequences: in a space of 64 units (few regions, many
/// collisions) or 1024 (a few dozen regions, so the tree has more than one
/// node). A unit of one byte makes nearly every region start or end inside
/// a page; units of a page, 2 MiB and 1 GiB make regions of whole pages,
/// which the page index records exactly, at each of its levels.
fn operations() -> impl Strategy<Value = Vec<Operation>> {
    let space = prop_oneof![3 => Just(64u64), 1 => Just(1024u64)];
    let unit = prop_oneof![3 => Just(1u64), 2 => Just(PAGE), 1 => Just(LARGE_PAGE), 1 => Just(GIB)];
    (space, unit).prop_flat_map(|(space, unit)| prop::collection::vec(operation(space, unit), 1..MAX_OPERATIONS))
}

/// The number of regions from which the set keeps its page index: always,
/// from a few (so that it is built and dropped again during a sequence),
/// the default, and never.
fn page_index_from() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0), 2 => 1usize..12, 1 => Just(PAGE_INDEX_FROM), 1 => Just(usize::MAX)]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Integration tests have no lib.rs beside them: keep failing seeds next to this file.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn region_set_matches_the_linear_model(index_from in page_index_from(), operations in operations()) {
        let mut set = RegionSet::with_page_index_from(index_from);
        let mut model = Model::default();
        for operation in &operations {
            run(&mut set, &mut model, operation)?;
            check_invariants(&set, &model)?;
        }
    }

    /// Every byte of every region, and the bytes just outside, are found
    /// where the model says, after a burst of inserts.
    #[test]
    fn find_agrees_at_every_boundary(
        regions in prop_oneof![Just(1u64), Just(PAGE), Just(GIB)]
            .prop_flat_map(|unit| prop::collection::vec(region(64, unit), 1..40))
    ) {
        let mut set = RegionSet::with_page_index_from(0);
        let mut model = Model::default();
        for region in regions {
            prop_assert_eq!(set.insert(region), model.insert(region));
        }
        for region in model.sorted() {
            for va in [Edge::BeforeStart, Edge::Start, Edge::Last, Edge::PastLast].map(|edge| edge.of(&region)) {
                prop_assert_eq!(set.find(va).copied(), model.find(va), "at {:#x}", va);
            }
        }
    }
}
