//! Address ranges at the edges of the 64-bit space: near 0, near the
//! non-canonical hole (48-bit: 0x0000_8000_0000_0000 / 0xffff_8000_0000_0000;
//! 57-bit: 0x0100_0000_0000_0000 / 0xff00_0000_0000_0000) and near 2^64.
//!
//! Every `start + len` must be overflow-checked, and a range that would pass
//! 2^64 or cross the hole must be refused with a typed error before anything
//! is touched. These properties hold [`check_virt_range`], [`Region::validate`]
//! and every operation of [`RegionSet`] to a reference written here apart
//! from them: interval arithmetic in `u128` (a range may end exactly at
//! 2^64, which a `u64` cannot hold), the canonical halves as plain intervals,
//! linear scans for the set.
//!
//! Starts are an anchor plus or minus a few pages (wrapping, so "near 0"
//! below 0 is "near 2^64"), mostly page-aligned but sometimes not. Lengths
//! are 0, 1, a page, a few pages, 2^63, `u64::MAX` minus a little, and the
//! lengths that make the range end exactly on 2^64 or on a canonical
//! boundary, and one byte or page before or past it.
//!
//! The case counts keep this file well under a few seconds in a debug build.

mod common;

use aspace::{
    check_virt_range, AddressKind, AspaceError, Characteristics, PhysAddr, Protection, Region, RegionSet, VirtAddr,
    VirtWidth,
};
use common::Model;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

const PAGE: u64 = 4096;
/// One past the last byte of the 64-bit space.
const TOP: u128 = 1 << 64;

/// The addresses every range is drawn near: 0 (and, wrapping below it,
/// 2^64), and both edges of the hole for 48-bit and for 57-bit addresses.
const ANCHORS: [u64; 5] =
    [0, 0x0000_8000_0000_0000, 0xffff_8000_0000_0000, 0x0100_0000_0000_0000, 0xff00_0000_0000_0000];

const RW: Protection = Protection::READ.union(Protection::WRITE);
const BYTES: Characteristics = Characteristics { granularity: 1, alignment: 1 };
const PAGES: Characteristics = Characteristics { granularity: PAGE, alignment: PAGE };

// ---------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------

/// One past the last byte of the lower canonical half, restated.
fn lower_end(width: VirtWidth) -> u128 {
    match width {
        VirtWidth::Bits48 => 0x0000_8000_0000_0000,
        VirtWidth::Bits57 => 0x0100_0000_0000_0000,
    }
}

/// The first byte of the upper canonical half, restated.
fn upper_start(width: VirtWidth) -> u128 {
    TOP - lower_end(width)
}

/// `[start, start + len)` as exact `u128` bounds.
fn extent(start: u64, len: u64) -> (u128, u128) {
    (u128::from(start), u128::from(start) + u128::from(len))
}

/// What `check_virt_range` must answer: the range is valid when it is not
/// empty, ends at or below 2^64, and lies wholly inside the lower half
/// `[0, lower_end)` or wholly inside the upper half `[upper_start, 2^64)`.
/// A refusal is, in order: empty, past 2^64, a start in the hole, else a
/// range that runs out of its half.
fn reference(start: u64, len: u64, width: VirtWidth) -> Result<u64, AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    let (first, end) = extent(start, len);
    if end > TOP {
        return Err(AspaceError::LengthOverflow { start, len, kind: AddressKind::Virtual });
    }
    let in_hole = |a: u128| lower_end(width) <= a && a < upper_start(width);
    if in_hole(first) {
        return Err(AspaceError::NonCanonical { addr: start });
    }
    let inside_a_half = end <= lower_end(width) || first >= upper_start(width);
    if !inside_a_half {
        return Err(AspaceError::CrossesCanonicalHole { start, len });
    }
    Ok((end - 1) as u64)
}

// ---------------------------------------------------------------------------
// Ranges near the anchors
// ---------------------------------------------------------------------------

/// A start: an anchor, plus or minus up to 8 pages (wrapping), usually
/// page-aligned, sometimes a byte or half a page off.
fn start() -> impl Strategy<Value = u64> {
    let misalign = prop_oneof![
        12 => Just(0u64),
        1 => Just(1u64),
        1 => Just(PAGE - 1),
        1 => Just(PAGE / 2),
        1 => Just(u64::MAX), // one byte below
        1 => 1u64..PAGE,
    ];
    (0..ANCHORS.len(), -8i64..=8, misalign).prop_map(|(anchor, pages, misalign)| {
        ANCHORS[anchor].wrapping_add((pages * PAGE as i64) as u64).wrapping_add(misalign)
    })
}

/// How a length is chosen, some relative to the start it goes with.
#[derive(Clone, Copy, Debug)]
enum LenSpec {
    Fixed(u64),
    /// Ends `delta` bytes past 2^64 (0: exactly at 2^64; 1: one byte past).
    ToTop(i64),
    /// Ends `delta` bytes past the lower half's end for this width.
    ToLowerEnd(VirtWidth, i64),
    /// Ends `delta` bytes past the upper half's start for this width.
    ToUpperStart(VirtWidth, i64),
}

impl LenSpec {
    fn resolve(self, start: u64) -> u64 {
        let to = |end: u128, delta: i64| (end as u64).wrapping_sub(start).wrapping_add(delta as u64);
        match self {
            LenSpec::Fixed(len) => len,
            LenSpec::ToTop(delta) => to(TOP, delta),
            LenSpec::ToLowerEnd(width, delta) => to(lower_end(width), delta),
            LenSpec::ToUpperStart(width, delta) => to(upper_start(width), delta),
        }
    }
}

fn width() -> impl Strategy<Value = VirtWidth> {
    prop_oneof![Just(VirtWidth::Bits48), Just(VirtWidth::Bits57)]
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        2 => Just(1i64),
        2 => Just(-1i64),
        2 => Just(PAGE as i64),
        2 => Just(-(PAGE as i64)),
        1 => -3 * PAGE as i64..=3 * PAGE as i64,
    ]
}

fn len_spec() -> impl Strategy<Value = LenSpec> {
    prop_oneof![
        2 => Just(LenSpec::Fixed(0)),
        2 => Just(LenSpec::Fixed(1)),
        3 => Just(LenSpec::Fixed(PAGE)),
        3 => (2u64..8).prop_map(|pages| LenSpec::Fixed(pages * PAGE)),
        1 => Just(LenSpec::Fixed(1 << 63)),
        1 => Just(LenSpec::Fixed(u64::MAX)),
        1 => (1u64..=2 * PAGE).prop_map(|small| LenSpec::Fixed(u64::MAX - small)),
        1 => (1u64..=3).prop_map(|pages| LenSpec::Fixed(u64::MAX - pages * PAGE + 1)),
        4 => delta().prop_map(LenSpec::ToTop),
        2 => (width(), delta()).prop_map(|(w, d)| LenSpec::ToLowerEnd(w, d)),
        2 => (width(), delta()).prop_map(|(w, d)| LenSpec::ToUpperStart(w, d)),
        1 => any::<u64>().prop_map(LenSpec::Fixed),
    ]
}

/// A `(start, len)` pair near the anchors.
fn range() -> impl Strategy<Value = (u64, u64)> {
    (start(), len_spec()).prop_map(|(start, spec)| (start, spec.resolve(start)))
}

/// An address to look up: an anchor plus or minus a few pages and bytes.
fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => start(),
        1 => (0..ANCHORS.len(), -2i64..=2).prop_map(|(a, d)| ANCHORS[a].wrapping_add(d as u64)),
        1 => any::<u64>(),
    ]
}

// ---------------------------------------------------------------------------
// check_virt_range and Region::validate
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    /// `check_virt_range` gives exactly the `u128` reference's answer (the
    /// last byte, or the same typed error with the same numbers) for ranges
    /// near 0, near both canonical boundaries of both widths and near 2^64,
    /// and never panics.
    #[test]
    fn check_virt_range_matches_the_u128_reference((start, len) in range(), width in width()) {
        prop_assert_eq!(check_virt_range(start, len, width), reference(start, len, width), "{:#x} + {:#x}", start, len);
    }

    /// `Region::validate` makes the same virtual checks as
    /// `check_virt_range`, in the same order: for an anonymous region (no
    /// physical range) with byte granularity it answers exactly as
    /// `check_virt_range` does; with 4 KiB pages a range `check_virt_range`
    /// refuses gets the same error, and one it accepts is refused only for
    /// its alignment (`Misaligned`), exactly when start or length is not a
    /// whole number of pages. A linear region mapped from physical 0 on a
    /// machine with 64 physical bits agrees too.
    #[test]
    fn validate_agrees_with_check_virt_range((start, len) in range(), width in width(), phys_bits in prop_oneof![Just(46u32), Just(52), Just(64)]) {
        let checked = check_virt_range(start, len, width).map(|_| ());
        let anonymous = Region::anonymous(start, len, RW);
        prop_assert_eq!(anonymous.validate(BYTES, width, phys_bits), checked.clone());
        prop_assert_eq!(Region::new(start, 0, len, RW).validate(BYTES, width, 64), checked.clone());
        let paged = anonymous.validate(PAGES, width, phys_bits);
        match checked {
            Err(error) => prop_assert_eq!(paged, Err(error)),
            Ok(()) => {
                let aligned = start.is_multiple_of(PAGE) && len.is_multiple_of(PAGE);
                match paged {
                    Ok(()) => prop_assert!(aligned),
                    Err(AspaceError::Misaligned { kind: AddressKind::Virtual | AddressKind::Length, .. }) => {
                        prop_assert!(!aligned)
                    }
                    Err(other) => prop_assert!(false, "an accepted range refused with {:?}", other),
                }
            }
        }
    }
}

/// The edges written out: the cases a reader checks by eye, each against
/// `check_virt_range` and the reference.
#[test]
fn check_virt_range_at_each_edge() {
    use AspaceError::*;
    let w48 = VirtWidth::Bits48;
    let w57 = VirtWidth::Bits57;
    let cases: &[(u64, u64, VirtWidth, Result<u64, AspaceError>)] = &[
        (0, 0, w48, Err(ZeroLength)),
        (0, 1, w48, Ok(0)),
        (0xffff_ffff_ffff_f000, 0x1000, w48, Ok(u64::MAX)),
        (
            0xffff_ffff_ffff_f000,
            0x1001,
            w48,
            Err(LengthOverflow { start: 0xffff_ffff_ffff_f000, len: 0x1001, kind: AddressKind::Virtual }),
        ),
        (1, u64::MAX, w48, Err(CrossesCanonicalHole { start: 1, len: u64::MAX })),
        (2, u64::MAX, w48, Err(LengthOverflow { start: 2, len: u64::MAX, kind: AddressKind::Virtual })),
        (0x0000_7fff_ffff_f000, 0x1000, w48, Ok(0x0000_7fff_ffff_ffff)),
        (0x0000_7fff_ffff_f000, 0x1001, w48, Err(CrossesCanonicalHole { start: 0x0000_7fff_ffff_f000, len: 0x1001 })),
        (0x0000_8000_0000_0000, 0x1000, w48, Err(NonCanonical { addr: 0x0000_8000_0000_0000 })),
        (0x0000_8000_0000_0000, 0x1000, w57, Ok(0x0000_8000_0000_0fff)),
        (0xffff_7fff_ffff_f000, 0x1000, w48, Err(NonCanonical { addr: 0xffff_7fff_ffff_f000 })),
        (0xffff_7fff_ffff_f000, 0x1000, w57, Ok(0xffff_7fff_ffff_ffff)),
        (0xffff_8000_0000_0000, 1 << 47, w48, Ok(u64::MAX)),
        (
            0xffff_8000_0000_0000,
            (1 << 47) + 1,
            w48,
            Err(LengthOverflow { start: 0xffff_8000_0000_0000, len: (1 << 47) + 1, kind: AddressKind::Virtual }),
        ),
        (0x00ff_ffff_ffff_f000, 0x1000, w57, Ok(0x00ff_ffff_ffff_ffff)),
        (0x00ff_ffff_ffff_f000, 0x2000, w57, Err(CrossesCanonicalHole { start: 0x00ff_ffff_ffff_f000, len: 0x2000 })),
        (0x0100_0000_0000_0000, 0x1000, w57, Err(NonCanonical { addr: 0x0100_0000_0000_0000 })),
        (0xfeff_ffff_ffff_f000, 0x2000, w57, Err(NonCanonical { addr: 0xfeff_ffff_ffff_f000 })),
        (0xff00_0000_0000_0000, 1 << 56, w57, Ok(u64::MAX)),
        (0, 1 << 63, w48, Err(CrossesCanonicalHole { start: 0, len: 1 << 63 })),
        (1 << 63, 1 << 63, w57, Err(NonCanonical { addr: 1 << 63 })),
    ];
    for &(start, len, width, ref expected) in cases {
        assert_eq!(&check_virt_range(start, len, width), expected, "{start:#x} + {len:#x} ({width:?})");
        assert_eq!(&reference(start, len, width), expected, "reference: {start:#x} + {len:#x} ({width:?})");
    }
}

// ---------------------------------------------------------------------------
// The region set
// ---------------------------------------------------------------------------

/// The regions a set may start with, near every anchor `A` (wrapping):
/// `[A-3p, A-2p)`, `[A-p, A)` (for A = 0: the very last page, ending at
/// 2^64), `[A, A+2p)`, a byte-granular one at `A+4p+0x10`; and two long
/// ones: an anonymous one ending 16 pages below the 48-bit lower half's
/// end, and 2^62 bytes from 2^63 (in the hole of both widths: the set does
/// not care). They are pairwise disjoint.
fn candidates() -> Vec<Region> {
    let mut regions = Vec::new();
    for (i, &a) in ANCHORS.iter().enumerate() {
        let at = |pages: i64| a.wrapping_add((pages * PAGE as i64) as u64);
        let pa = 0x10_0000 * (i as u64 + 1);
        regions.push(Region::new(at(-3), pa, PAGE, RW));
        regions.push(Region::new(at(-1), pa + PAGE, PAGE, RW | Protection::EAGER));
        regions.push(Region::new(at(0), pa + 2 * PAGE, 2 * PAGE, Protection::READ));
        regions.push(Region::new(at(4) + 0x10, pa + 5 * PAGE, 0x10, RW));
    }
    regions.push(Region::anonymous(0x0000_1000_0000_0000, 0x0000_7000_0000_0000 - 16 * PAGE, RW));
    regions.push(Region::new(0x8000_0000_0000_0000, 0, 1 << 62, Protection::READ));
    regions
}

/// How the pieces a region is replaced by are made from it.
#[derive(Clone, Debug)]
enum Pieces {
    /// The region cut at `at` pages (taken modulo its length), each side
    /// kept or dropped, the last piece then longer by `grow` pages (which
    /// may make it reach a neighbour or run past 2^64).
    Cut { at: u64, keep_left: bool, keep_right: bool, grow: u64 },
    /// The region moved down by `by` pages (wrapping below 0).
    Lower { by: u64 },
    /// Pieces near the anchors, of any length: mostly refused.
    Arbitrary(Vec<(u64, u64)>),
}

impl Pieces {
    fn of(&self, old: &Region) -> Vec<Region> {
        match *self {
            Pieces::Cut { at, keep_left, keep_right, grow } => {
                let cut = if old.len > 1 { 1 + (at * PAGE) % (old.len - 1) } else { 1 };
                let mut pieces = Vec::new();
                if keep_left || cut == old.len {
                    pieces.push(Region::new(old.va.0, old.pa.0, cut.min(old.len), old.prot));
                }
                if keep_right && cut < old.len {
                    pieces.push(Region::new(old.va.0.wrapping_add(cut), old.pa.0, old.len - cut, old.prot));
                }
                if let Some(last) = pieces.last_mut() {
                    last.len = last.len.wrapping_add(grow * PAGE);
                }
                pieces
            }
            Pieces::Lower { by } => {
                let by = by * PAGE;
                vec![Region { va: VirtAddr(old.va.0.wrapping_sub(by)), len: old.len.wrapping_add(by), ..*old }]
            }
            Pieces::Arbitrary(ref pieces) => pieces.iter().map(|&(va, len)| Region::new(va, 0, len, RW)).collect(),
        }
    }
}

/// One call on the set.
#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    RemoveExisting(Index),
    Update(u64, u64),
    UpdateExisting(Index, u64),
    Replace(u64, Pieces),
    ReplaceExisting(Index, Pieces),
    FirstOverlap(u64, u64),
    Overlapping(u64, u64),
    Find(u64),
    FindBeside(Index, u8),
    Get(u64),
    NextAtOrAfter(u64),
    PreviousBefore(u64),
}

fn pieces() -> impl Strategy<Value = Pieces> {
    prop_oneof![
        3 => (0u64..64, any::<bool>(), any::<bool>(), prop_oneof![3 => Just(0u64), 1 => 1u64..4, 1 => Just(u64::MAX / PAGE)])
            .prop_map(|(at, keep_left, keep_right, grow)| Pieces::Cut { at, keep_left, keep_right, grow }),
        1 => (1u64..4).prop_map(|by| Pieces::Lower { by }),
        2 => prop::collection::vec(range(), 0..3).prop_map(Pieces::Arbitrary),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => range().prop_map(|(va, len)| Op::Insert(va, len)),
        2 => address().prop_map(Op::Remove),
        2 => any::<Index>().prop_map(Op::RemoveExisting),
        2 => range().prop_map(|(va, len)| Op::Update(va, len)),
        2 => (any::<Index>(), 0u64..4).prop_map(|(i, pa)| Op::UpdateExisting(i, pa)),
        2 => (address(), pieces()).prop_map(|(va, p)| Op::Replace(va, p)),
        4 => (any::<Index>(), pieces()).prop_map(|(i, p)| Op::ReplaceExisting(i, p)),
        3 => range().prop_map(|(va, len)| Op::FirstOverlap(va, len)),
        2 => range().prop_map(|(va, len)| Op::Overlapping(va, len)),
        3 => address().prop_map(Op::Find),
        3 => (any::<Index>(), 0u8..4).prop_map(|(i, edge)| Op::FindBeside(i, edge)),
        1 => address().prop_map(Op::Get),
        2 => address().prop_map(Op::NextAtOrAfter),
        2 => address().prop_map(Op::PreviousBefore),
    ]
}

fn existing(model: &Model, index: &Index) -> Option<Region> {
    let sorted = model.sorted();
    (!sorted.is_empty()).then(|| sorted[index.index(sorted.len())])
}

/// Runs `op` on both. A call that changes the set and is refused must leave
/// it equal to a copy taken before.
fn run(set: &mut RegionSet, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let before = set.clone();
    let refused = match *op {
        Op::Insert(va, len) => {
            let region = Region::new(va, 0x1000, len, RW);
            let result = set.insert(region);
            prop_assert_eq!(&result, &model.insert(region), "insert {:?}", region);
            result.is_err()
        }
        Op::Remove(va) => {
            prop_assert_eq!(set.remove(VirtAddr(va)), model.remove(va));
            false
        }
        Op::RemoveExisting(ref index) => {
            if let Some(region) = existing(model, index) {
                prop_assert_eq!(set.remove(region.va), model.remove(region.va.0));
            }
            false
        }
        Op::Update(va, len) => {
            let region = Region::new(va, 0x5000, len, Protection::READ);
            let result = set.update(region);
            prop_assert_eq!(&result, &model.update(region), "update {:?}", region);
            result.is_err()
        }
        Op::UpdateExisting(ref index, pa) => {
            let Some(old) = existing(model, index) else { return Ok(()) };
            let region = Region { pa: PhysAddr(pa * PAGE), prot: Protection::READ | Protection::EXEC, ..old };
            let result = set.update(region);
            prop_assert_eq!(&result, &Ok(old));
            prop_assert_eq!(&result, &model.update(region));
            false
        }
        Op::Replace(va, ref pieces) => {
            let old = model.find(va).unwrap_or(Region::new(va, 0, PAGE, RW));
            let pieces = pieces.of(&old);
            let result = set.replace(VirtAddr(va), &pieces);
            prop_assert_eq!(&result, &model.replace(va, &pieces), "replace at {:#x} by {:?}", va, pieces);
            result.is_err()
        }
        Op::ReplaceExisting(ref index, ref pieces) => {
            let Some(old) = existing(model, index) else { return Ok(()) };
            let pieces = pieces.of(&old);
            let result = set.replace(old.va, &pieces);
            prop_assert_eq!(&result, &model.replace(old.va.0, &pieces), "replace {:?} by {:?}", old, pieces);
            result.is_err()
        }
        Op::FirstOverlap(va, len) => {
            prop_assert_eq!(set.first_overlap(va, len).copied(), model.overlapping(va, len).first().copied());
            false
        }
        Op::Overlapping(va, len) => {
            prop_assert_eq!(set.overlapping(va, len).copied().collect::<Vec<_>>(), model.overlapping(va, len));
            false
        }
        Op::Find(va) => {
            prop_assert_eq!(set.find(va).copied(), model.find(va), "find {:#x}", va);
            false
        }
        Op::FindBeside(ref index, edge) => {
            let Some(region) = existing(model, index) else { return Ok(()) };
            let last = region.va.0.wrapping_add(region.len - 1);
            let at = [region.va.0.wrapping_sub(1), region.va.0, last, last.wrapping_add(1)][usize::from(edge)];
            prop_assert_eq!(set.find(at).copied(), model.find(at), "find {:#x}", at);
            false
        }
        Op::Get(va) => {
            prop_assert_eq!(set.get(VirtAddr(va)).copied(), model.get(va));
            false
        }
        Op::NextAtOrAfter(va) => {
            prop_assert_eq!(set.next_at_or_after(va).copied(), model.next_at_or_after(va));
            false
        }
        Op::PreviousBefore(va) => {
            prop_assert_eq!(set.previous_before(va).copied(), model.previous_before(va));
            false
        }
    };
    if refused {
        prop_assert_eq!(&*set, &before, "a refused {:?} changed the set", op);
    }
    Ok(())
}

/// The addresses probed after every call: each anchor and one byte and one
/// page to either side, and both ends of every region.
fn probes(model: &Model) -> Vec<u64> {
    let mut probes: Vec<u64> = ANCHORS
        .iter()
        .flat_map(|&a| [0, 1, PAGE, PAGE - 1].into_iter().flat_map(move |d| [a.wrapping_add(d), a.wrapping_sub(d)]))
        .collect();
    for r in &model.regions {
        let last = r.va.0.wrapping_add(r.len - 1);
        probes.extend([r.va.0.wrapping_sub(1), r.va.0, last, last.wrapping_add(1)]);
    }
    probes
}

/// The set holds exactly the model's regions, in order, and finds what the
/// model finds at every probe (which also checks the page index, which
/// equality of the sets does not compare).
fn check(set: &RegionSet, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(set.iter().copied().collect::<Vec<_>>(), model.sorted());
    prop_assert_eq!(set.len(), model.regions.len());
    for va in probes(model) {
        prop_assert_eq!(set.find(va).copied(), model.find(va), "find {:#x}", va);
        prop_assert_eq!(set.next_at_or_after(va).copied(), model.next_at_or_after(va), "next at or after {:#x}", va);
        prop_assert_eq!(set.previous_before(va).copied(), model.previous_before(va), "previous before {:#x}", va);
    }
    Ok(())
}

/// An empty set: default (page index from 64 regions), with the index
/// always (from 0 regions), or from a few.
fn new_set(kind: u8) -> RegionSet {
    match kind {
        0 => RegionSet::default(),
        1 => RegionSet::with_page_index_from(0),
        _ => RegionSet::with_page_index_from(4),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// On a set already holding regions near every anchor (a random subset
    /// of [`candidates`], the last page of the 64-bit space among them),
    /// with and without its page index, every operation (insert, remove,
    /// update, replace, first_overlap, overlapping, find, get,
    /// next_at_or_after, previous_before) with ranges near 0, the holes and
    /// 2^64 never panics, gives the `u128` model's answer (a refusal exactly
    /// when the model finds the range empty, past 2^64 or overlapping, with
    /// the same error), and a refusal leaves the set equal to what it was.
    #[test]
    fn region_set_at_the_edges_matches_the_u128_model(
        kind in 0u8..3,
        keep in prop::collection::vec(prop::bool::weighted(0.75), candidates().len()),
        ops in prop::collection::vec(op(), 1..48),
    ) {
        let mut set = new_set(kind);
        let mut model = Model::default();
        for (region, keep) in candidates().into_iter().zip(keep) {
            if keep {
                prop_assert_eq!(set.insert(region), Ok(()), "preloading {:?}", region);
                model.regions.push(region);
            }
        }
        check(&set, &model)?;
        for op in &ops {
            run(&mut set, &mut model, op)?;
            check(&set, &model)?;
        }
    }
}

/// Every candidate region fits, and the set answers at 2^64 - 1, 0 and the
/// hole edges as expected once they are all in (the fixture of the property
/// above is what it claims to be), for each kind of set.
#[test]
fn candidates_are_disjoint_and_found_at_their_edges() {
    for kind in 0..3 {
        let mut set = new_set(kind);
        for region in candidates() {
            assert_eq!(set.insert(region), Ok(()), "{region:?}");
        }
        assert_eq!(set.find(u64::MAX).map(|r| r.va.0), Some(0xffff_ffff_ffff_f000));
        assert_eq!(set.find(0).map(|r| r.va.0), Some(0));
        assert_eq!(set.find(0x0000_7fff_ffff_ffff).map(|r| r.va.0), Some(0x0000_7fff_ffff_f000));
        assert_eq!(set.find(0x0000_8000_0000_0000).map(|r| r.va.0), Some(0x0000_8000_0000_0000));
        assert_eq!(set.find(0xffff_7fff_ffff_ffff).map(|r| r.va.0), Some(0xffff_7fff_ffff_f000));
        assert_eq!(set.find(0xfeff_ffff_ffff_e000), None);
        // A range from the last page that wraps is refused, and changes nothing.
        let before = set.clone();
        assert!(matches!(
            set.insert(Region::new(0xffff_ffff_ffff_f000, 0, 0x2000, RW)),
            Err(AspaceError::LengthOverflow { .. })
        ));
        assert_eq!(set.first_overlap(0xffff_ffff_ffff_f000, 0x2000), None);
        assert_eq!(set, before);
    }
}
