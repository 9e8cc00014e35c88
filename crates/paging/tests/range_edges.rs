//! Address ranges at the edges of the 64-bit space, given to every operation
//! of the `paging` address space and of its page tables, on the MMU model
//! with 4-level and 5-level paging.
//!
//! Ranges start near 0, near both edges of the non-canonical hole (48-bit:
//! 0x0000_8000_0000_0000 / 0xffff_8000_0000_0000; 57-bit:
//! 0x0100_0000_0000_0000 / 0xff00_0000_0000_0000) and near 2^64: an anchor
//! plus or minus a few pages (wrapping), mostly page-aligned, sometimes
//! not. Lengths are 0, 1, a page, a few pages, 2^63, `u64::MAX` minus a
//! little, and the lengths that end exactly on 2^64 or on a canonical
//! boundary, or a byte or a page either side of it. The spaces already hold
//! regions near each anchor (the very last page, 0xffff_ffff_ffff_f000, and
//! the last page of the lower half among them), some with pages touched;
//! some spaces hold growing regions at the edges instead.
//!
//! Each operation's result is held to a reference written here apart from
//! the implementation: interval arithmetic in `u128`, the canonical halves
//! as plain intervals, linear scans over the regions, and the documented
//! rules of each operation restated (the order of the checks included, so
//! that a refusal is compared error for error). After every step:
//!
//! - the result is `Ok` exactly when the reference accepts, and then the
//!   regions are exactly what the reference says; a refusal is the
//!   reference's typed error and leaves the regions, every translation, the
//!   anonymous frames, the file backings, the growth limits, the frames in
//!   use and the table frames as they were;
//! - `verify()` passes;
//! - every translation (`mappings()`) lies inside the regions, at canonical
//!   addresses of one half;
//! - a page fault (`exception`) is handled exactly when the reference says
//!   the access is allowed or grows a growing region into a valid range;
//!   otherwise, non-canonical addresses included, it is `Unhandled` and
//!   changes nothing.
//!
//! Eager edits of valid huge ranges would map (or walk) billions of pages:
//! such adds and protects are made lazy, and a fault that would grow an
//! eager region by more than 64 pages is skipped (see [`EXPENSIVE_LEAVES`]).
//!
//! Bugs found are pinned down as plain tests at the end of the file.

mod common;

use aspace::{
    AddressKind, AspaceError, Fault, FaultOutcome, PageFaultCode, PhysAddr, Protection, Region, UnhandledFault,
    VirtAddr, VirtWidth,
};
use common::{read, setup, snapshot, write, Snapshot, Space, G, K4, M2};
use mmu_model::{SimConfig, SimMachine};
use paging::{FileBacking, GrowthLimits, LeafPermissions, MappingRun, PageSize, PageTables};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use aspace::AddressSpace as _;
use paging::Machine as _;

const PAGE: u64 = K4;
/// One past the last byte of the 64-bit space.
const TOP: u128 = 1 << 64;

/// 0 (and, wrapping below it, 2^64), and both edges of the hole for 48-bit
/// and for 57-bit addresses.
const ANCHORS: [u64; 5] =
    [0, 0x0000_8000_0000_0000, 0xffff_8000_0000_0000, 0x0100_0000_0000_0000, 0xff00_0000_0000_0000];

const R: Protection = Protection::READ;
const W: Protection = Protection::WRITE;
const X: Protection = Protection::EXEC;
const KERN: Protection = Protection::KERN;
const EAGER: Protection = Protection::EAGER;
const ANON: Protection = Protection::ANON;
const PIN: Protection = Protection::PIN;
const DOWN: Protection = Protection::GROW_DOWN;
const UP: Protection = Protection::GROW_UP;
const RO_BACKING: Protection = Protection::READ_ONLY_BACKING;
const RWK: Protection = R.union(W).union(KERN);

/// Where linear regions map: `PA_BASE` plus the virtual address modulo
/// 1 GiB, so that large pages fit where the virtual alignment allows them,
/// below both machines' MAXPHYADDR and away from the model's frame pool.
const PA_BASE: u64 = 0x40_0000_0000;

/// An eager edit that would write more leaves than this (or an anonymous
/// one more pages than [`EXPENSIVE_PAGES`]) is made lazy or skipped.
const EXPENSIVE_LEAVES: u64 = 4096;
const EXPENSIVE_PAGES: u64 = 64;

fn pa_for(va: u64) -> u64 {
    PA_BASE + va % G
}

// ---------------------------------------------------------------------------
// Machines
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Levels {
    Four,
    Five,
}

impl Levels {
    fn config(self) -> SimConfig {
        match self {
            Levels::Four => SimConfig::four_level(),
            Levels::Five => SimConfig::five_level(),
        }
    }

    fn width(self) -> VirtWidth {
        match self {
            Levels::Four => VirtWidth::Bits48,
            Levels::Five => VirtWidth::Bits57,
        }
    }

    /// MAXPHYADDR of `SimConfig::four_level` / `five_level`.
    fn phys_bits(self) -> u32 {
        match self {
            Levels::Four => 46,
            Levels::Five => 52,
        }
    }

    /// One past the lower half's last byte, restated.
    fn lower_end(self) -> u128 {
        match self {
            Levels::Four => 0x0000_8000_0000_0000,
            Levels::Five => 0x0100_0000_0000_0000,
        }
    }

    /// The upper half's first byte.
    fn upper_start(self) -> u128 {
        TOP - self.lower_end()
    }
}

fn levels() -> impl Strategy<Value = Levels> {
    prop_oneof![Just(Levels::Four), Just(Levels::Five)]
}

// ---------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------

fn extent(start: u64, len: u64) -> (u128, u128) {
    (u128::from(start), u128::from(start) + u128::from(len))
}

fn end_of(region: &Region) -> u128 {
    extent(region.va.0, region.len).1
}

fn overlaps(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// True when `[first, end)` is not empty and lies inside one canonical half.
fn in_one_half(levels: Levels, first: u128, end: u128) -> bool {
    first < end && end <= TOP && (end <= levels.lower_end() || first >= levels.upper_start())
}

/// What `Region::validate` says about the numbers of a range with 4 KiB
/// pages, in its documented order (the physical checks only for a
/// `physical` range).
fn numbers(levels: Levels, va: u64, pa: u64, len: u64, physical: bool) -> Result<(), AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    let (first, end) = extent(va, len);
    if end > TOP {
        return Err(AspaceError::LengthOverflow { start: va, len, kind: AddressKind::Virtual });
    }
    let physical_end = extent(pa, len).1;
    if physical && physical_end > TOP {
        return Err(AspaceError::LengthOverflow { start: pa, len, kind: AddressKind::Physical });
    }
    if levels.lower_end() <= first && first < levels.upper_start() {
        return Err(AspaceError::NonCanonical { addr: va });
    }
    if !in_one_half(levels, first, end) {
        return Err(AspaceError::CrossesCanonicalHole { start: va, len });
    }
    if !va.is_multiple_of(PAGE) {
        return Err(AspaceError::Misaligned { kind: AddressKind::Virtual, value: va, required: PAGE });
    }
    if physical && !pa.is_multiple_of(PAGE) {
        return Err(AspaceError::Misaligned { kind: AddressKind::Physical, value: pa, required: PAGE });
    }
    if !len.is_multiple_of(PAGE) {
        return Err(AspaceError::Misaligned { kind: AddressKind::Length, value: len, required: PAGE });
    }
    if physical && physical_end > 1u128 << levels.phys_bits() {
        return Err(AspaceError::PhysTooWide { addr: (physical_end - 1) as u64, phys_bits: levels.phys_bits() });
    }
    Ok(())
}

/// Flags that contradict each other, restated: unknown bits, write or
/// execute without read, growing both ways, writable with a read-only
/// backing, growing without being anonymous.
fn contradicts(prot: Protection) -> bool {
    let bits = prot.bits();
    let known = Protection::all().bits();
    bits & !known != 0
        || (prot.intersects(W | X) && !prot.contains(R))
        || prot.contains(DOWN | UP)
        || prot.contains(W | RO_BACKING)
        || (prot.intersects(DOWN | UP) && !prot.contains(ANON))
}

fn invalid_flags(prot: Protection) -> AspaceError {
    AspaceError::InvalidFlags { flags: prot.bits(), reason: "" }
}

/// True when both are the same refusal (the reason of an `InvalidFlags`
/// and the operation of an `Unsupported` are prose, not compared).
fn same_refusal(actual: &AspaceError, expected: &AspaceError) -> bool {
    match (actual, expected) {
        (AspaceError::InvalidFlags { flags: a, .. }, AspaceError::InvalidFlags { flags: b, .. }) => a == b,
        (AspaceError::Unsupported { .. }, AspaceError::Unsupported { .. }) => true,
        _ => actual == expected,
    }
}

/// True when a region with `prot` lets `access` (from user mode if `user`) through.
fn allows(prot: Protection, access: Access, user: bool) -> bool {
    prot.contains(R)
        && !(user && prot.contains(KERN))
        && match access {
            Access::Read => true,
            Access::Write => prot.contains(W),
            Access::Execute => prot.contains(X),
        }
}

/// The regions of a space before an operation, and what the operation
/// must make of them.
struct Reference {
    levels: Levels,
    /// Sorted by start.
    regions: Vec<Region>,
    max_size: u128,
    guard_gap: u128,
}

impl Reference {
    fn of(space: &Space, levels: Levels) -> Reference {
        let limits = space.growth_limits();
        Reference {
            levels,
            regions: space.region_set().iter().copied().collect(),
            max_size: limits.max_size.into(),
            guard_gap: limits.guard_gap.into(),
        }
    }

    fn find(&self, va: u64) -> Option<Region> {
        let at = u128::from(va);
        self.regions.iter().copied().find(|r| u128::from(r.va.0) <= at && at < end_of(r))
    }

    fn lowest_overlap(&self, first: u128, end: u128) -> Option<Region> {
        self.regions.iter().copied().find(|r| overlaps((u128::from(r.va.0), end_of(r)), (first, end)))
    }

    /// The guard gap `region` keeps, as `[first, end)` (empty at the ends of the space).
    fn gap_of(&self, region: &Region) -> (u128, u128) {
        let (first, end) = (u128::from(region.va.0), end_of(region));
        if region.prot.contains(DOWN) {
            (first.saturating_sub(self.guard_gap), first)
        } else if region.prot.contains(UP) {
            (end, (end + self.guard_gap).min(TOP))
        } else {
            (0, 0)
        }
    }

    fn add(&self, region: Region) -> Result<Vec<Region>, AspaceError> {
        let anonymous = region.prot.contains(ANON);
        numbers(self.levels, region.va.0, region.pa.0, region.len, !anonymous)?;
        if contradicts(region.prot) || (anonymous && region.pa.0 != 0) {
            return Err(invalid_flags(region.prot));
        }
        let (first, end) = (u128::from(region.va.0), end_of(&region));
        if let Some(existing) = self.lowest_overlap(first, end) {
            return Err(AspaceError::Overlap { existing });
        }
        // The nearest neighbours, above then below, may not have the new
        // region in their guard gap; a growing one may not have a region in its own.
        let above = self.regions.iter().copied().find(|r| u128::from(r.va.0) >= end);
        let below = self.regions.iter().copied().rev().find(|r| u128::from(r.va.0) < first);
        for neighbour in above.into_iter().chain(below) {
            if overlaps(self.gap_of(&neighbour), (first, end)) {
                return Err(AspaceError::Overlap { existing: neighbour });
            }
        }
        let (gap_first, gap_end) = self.gap_of(&region);
        if let Some(existing) = self.lowest_overlap(gap_first, gap_end) {
            return Err(AspaceError::Overlap { existing });
        }
        let mut after = self.regions.clone();
        after.push(region);
        after.sort_by_key(|r| r.va.0);
        Ok(after)
    }

    /// The region `part` names: the one holding its start, holding all of
    /// it, mapping its start to `part.pa` (0 for anonymous memory).
    fn resolve(&self, part: Region) -> Result<Region, AspaceError> {
        numbers(self.levels, part.va.0, part.pa.0, part.len, true)?;
        let existing = self.find(part.va.0).ok_or(AspaceError::NoSuchRegion { va: part.va.0 })?;
        let inside = end_of(&part) <= end_of(&existing);
        let memory = if existing.prot.contains(ANON) {
            0
        } else {
            u128::from(existing.pa.0) + u128::from(part.va.0 - existing.va.0)
        };
        if inside && u128::from(part.pa.0) == memory {
            Ok(existing)
        } else {
            Err(AspaceError::RegionMismatch { requested: part, existing })
        }
    }

    /// The regions once `existing` is replaced by its parts outside `part`
    /// and `middle`: each part keeps the linear offset (pa 0 when
    /// anonymous) and flags, and of a growing region only the piece at the
    /// growing edge keeps growing.
    fn cut(&self, existing: Region, part: Region, middle: Option<Region>) -> Vec<Region> {
        let piece = |va: u64, len: u64| {
            let pa = if existing.prot.contains(ANON) { 0 } else { existing.pa.0 + (va - existing.va.0) };
            Region::new(va, pa, len, existing.prot)
        };
        let before = part.va.0 - existing.va.0;
        let after = (end_of(&existing) - end_of(&part)) as u64;
        let mut pieces: Vec<Region> = [
            (before > 0).then(|| piece(existing.va.0, before)),
            middle,
            (after > 0).then(|| piece(part.va.0 + part.len, after)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let grows = existing.prot & (DOWN | UP);
        if !grows.is_empty() && !pieces.is_empty() {
            let edge = if grows == DOWN { 0 } else { pieces.len() - 1 };
            for (index, piece) in pieces.iter_mut().enumerate() {
                piece.prot.set(grows, index == edge);
            }
        }
        let mut regions: Vec<Region> = self.regions.iter().copied().filter(|r| r.va != existing.va).collect();
        regions.extend(pieces);
        regions.sort_by_key(|r| r.va.0);
        regions
    }

    fn remove(&self, part: Region) -> Result<Vec<Region>, AspaceError> {
        let existing = self.resolve(part)?;
        if existing.prot.contains(PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        Ok(self.cut(existing, part, None))
    }

    fn move_to(&self, part: Region, new_pa: u64) -> Result<Vec<Region>, AspaceError> {
        let existing = self.resolve(part)?;
        if existing.prot.contains(ANON) {
            return Err(AspaceError::Unsupported { implementation: "paging", operation: "" });
        }
        if existing.prot.contains(PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        numbers(self.levels, part.va.0, new_pa, part.len, true)?;
        Ok(self.cut(existing, part, Some(Region::new(part.va.0, new_pa, part.len, existing.prot))))
    }

    fn protect(&self, part: Region, prot: Protection) -> Result<Vec<Region>, AspaceError> {
        let existing = self.resolve(part)?;
        if prot.contains(W) && existing.prot.contains(RO_BACKING) {
            return Err(AspaceError::ReadOnlyBacking { region: existing });
        }
        if contradicts(prot) || prot.kind() != existing.prot.kind() {
            return Err(invalid_flags(prot));
        }
        let pa = if existing.prot.contains(ANON) { 0 } else { part.pa.0 };
        Ok(self.cut(existing, part, Some(Region::new(part.va.0, pa, part.len, prot))))
    }

    fn add_file(&self, region: Region, source: u64, source_len: u64) -> Result<Vec<Region>, AspaceError> {
        if !region.prot.contains(ANON) || region.prot.intersects(DOWN | UP) {
            return Err(invalid_flags(region.prot));
        }
        if source_len == 0 {
            return Err(AspaceError::ZeroLength);
        }
        if source_len > region.len {
            return Err(AspaceError::LengthOverflow { start: source, len: source_len, kind: AddressKind::Length });
        }
        let end = extent(source, source_len).1;
        // (A source ending exactly at 2^64 is refused as an overflow: it
        // would be beyond MAXPHYADDR anyway.)
        if end >= TOP {
            return Err(AspaceError::LengthOverflow { start: source, len: source_len, kind: AddressKind::Physical });
        }
        if end > 1u128 << self.levels.phys_bits() {
            return Err(AspaceError::PhysTooWide { addr: (end - 1) as u64, phys_bits: self.levels.phys_bits() });
        }
        self.add(region)
    }

    fn growth_limits(max_size: u64, guard_gap: u64) -> Result<(), AspaceError> {
        for value in [max_size, guard_gap] {
            if value == 0 {
                return Err(AspaceError::ZeroLength);
            }
            if !value.is_multiple_of(PAGE) {
                return Err(AspaceError::Misaligned { kind: AddressKind::Length, value, required: PAGE });
            }
        }
        Ok(())
    }

    /// What a page fault at `addr` must do: `Ok(regions after)` when it is
    /// handled (the access is allowed by the region holding `addr`, or a
    /// growing neighbour grows to take its page in), `Err(())` when it is
    /// not. With the grown region, when it grows.
    fn fault(&self, addr: u64, access: Access, user: bool) -> Result<(Vec<Region>, Option<Region>), ()> {
        if let Some(region) = self.find(addr) {
            return if allows(region.prot, access, user) { Ok((self.regions.clone(), None)) } else { Err(()) };
        }
        let at = u128::from(addr);
        let page = at & !u128::from(PAGE - 1);
        let above = self.regions.iter().copied().find(|r| u128::from(r.va.0) >= at);
        let below = self.regions.iter().copied().rev().find(|r| u128::from(r.va.0) < at);
        // The grow-down region above is asked first, when the fault is within its reach.
        let request = match (above, below) {
            (Some(a), _) if a.prot.contains(DOWN) && u128::from(a.va.0) - at <= self.guard_gap => {
                let clear = below.is_none_or(|b| page - (end_of(&b) - 1) > self.guard_gap);
                Some((a, page, end_of(&a), clear))
            }
            (_, Some(b)) if b.prot.contains(UP) && at - (end_of(&b) - 1) <= self.guard_gap => {
                let page_end = page + u128::from(PAGE);
                let clear = above.is_none_or(|a| u128::from(a.va.0) - (page_end - 1) > self.guard_gap);
                Some((b, u128::from(b.va.0), page_end, clear))
            }
            _ => None,
        };
        let Some((region, first, end, clear)) = request else { return Err(()) };
        let grows = clear
            && end - first <= self.max_size
            && allows(region.prot, access, user)
            && in_one_half(self.levels, first, end);
        if !grows {
            return Err(());
        }
        let grown = Region::new(first as u64, 0, (end - first) as u64, region.prot);
        let mut after: Vec<Region> = self.regions.iter().copied().filter(|r| r.va != region.va).collect();
        after.push(grown);
        after.sort_by_key(|r| r.va.0);
        Ok((after, Some(grown)))
    }
}

/// The leaves a linear map of `[va, va+len)` onto `pa` writes with the
/// largest pages that fit, counted up to a little past `limit`.
fn leaves(va: u64, pa: u64, len: u64, limit: u64) -> u64 {
    let (mut v, mut p, mut left) = (u128::from(va), u128::from(pa), u128::from(len));
    let mut count = 0;
    while left > 0 && count <= limit {
        let size = [G, M2, PAGE]
            .into_iter()
            .map(u128::from)
            .find(|&size| v % size == 0 && p % size == 0 && left >= size)
            .unwrap_or(u128::from(PAGE));
        v += size;
        p += size;
        left = left.saturating_sub(size);
        count += 1;
    }
    count
}

/// True when making `[va, va+len)` present now (an eager add or protect)
/// would write too many leaves or take too many frames for a test.
fn expensive(prot: Protection, va: u64, pa: u64, len: u64) -> bool {
    if prot.contains(ANON) {
        len / PAGE > EXPENSIVE_PAGES
    } else {
        leaves(va, pa, len, EXPENSIVE_LEAVES) > EXPENSIVE_LEAVES
    }
}

// ---------------------------------------------------------------------------
// What every step must leave
// ---------------------------------------------------------------------------

/// Everything a refused operation or an unhandled fault must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    base: Snapshot,
    anonymous: Vec<(VirtAddr, PhysAddr)>,
    files: Vec<FileBacking>,
    limits: GrowthLimits,
}

fn state(machine: &SimMachine, space: &Space) -> State {
    State {
        base: snapshot(machine, space),
        anonymous: space.anonymous_frames().collect(),
        files: space.file_backings().collect(),
        limits: space.growth_limits(),
    }
}

/// True when the regions (sorted) hold every byte of `[first, end)`.
fn covered(regions: &[Region], first: u128, end: u128) -> bool {
    let mut next = first;
    for r in regions {
        let (start, stop) = (u128::from(r.va.0), end_of(r));
        if start <= next && next < stop {
            next = stop;
        }
        if next >= end {
            return true;
        }
    }
    next >= end
}

/// `verify()` passes, every region is a valid range of one canonical half,
/// and every translation lies inside the regions, at canonical addresses
/// of one half.
fn check_space(space: &Space, levels: Levels) -> Result<(), TestCaseError> {
    prop_assert_eq!(space.verify(), Ok(()));
    let regions: Vec<Region> = space.region_set().iter().copied().collect();
    for r in &regions {
        let (first, end) = extent(r.va.0, r.len);
        prop_assert!(in_one_half(levels, first, end), "region {:?} is not in one canonical half", r);
    }
    let runs: Vec<MappingRun> = space.mappings().expect("live").collect();
    for run in &runs {
        let (first, end) = (u128::from(run.start.0), u128::from(run.last.0) + 1);
        prop_assert!(in_one_half(levels, first, end), "translation {} is not canonical", run);
        prop_assert!(covered(&regions, first, end), "translation {} lies outside the regions", run);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Populated spaces
// ---------------------------------------------------------------------------

/// How a test space is populated.
#[derive(Clone, Debug)]
enum Layout {
    /// Plain regions near every anchor (those `keep` selects).
    Plain(Vec<bool>),
    /// Growing regions at the edges of both halves (those `keep` selects).
    Growing(Vec<bool>),
    /// One growing region (down if `down`) at one of the edge slots.
    Lone { slot: usize, down: bool },
}

/// A region of a layout and the addresses touched in it once all are added.
struct Placed {
    region: Region,
    touch: Vec<(u64, bool)>,
}

fn linear(va: u64, len: u64, prot: Protection) -> Region {
    Region::new(va, pa_for(va), len, prot)
}

fn placed(region: Region, touch: &[(u64, bool)]) -> Placed {
    Placed { region, touch: touch.to_vec() }
}

/// The k-th page below 2^64.
fn from_top(pages: u64) -> u64 {
    0u64.wrapping_sub(pages * PAGE)
}

fn plain_candidates(levels: Levels) -> Vec<Placed> {
    let lower_end = levels.lower_end() as u64;
    let upper = levels.upper_start() as u64;
    let mut all = vec![
        placed(linear(0x1000, 0x2000, RWK | EAGER), &[]),
        placed(Region::anonymous(0x8000, 0x4000, RWK), &[(0x9000, true)]),
        // The last page of the lower half, touched at its last word.
        placed(linear(lower_end - PAGE, PAGE, RWK), &[(lower_end - 8, false)]),
        placed(Region::anonymous(lower_end - 0x6000, 0x2000, RWK | EAGER), &[]),
        placed(linear(upper, 0x2000, RWK | EAGER), &[]),
        placed(Region::anonymous(upper + 0x4000, 0x4000, RWK), &[(upper + 0x5000, true)]),
        // The very last page of the 64-bit space, touched at its last word.
        placed(linear(from_top(1), PAGE, RWK), &[(u64::MAX - 7, false)]),
        placed(linear(from_top(4), 0x2000, R | KERN), &[(from_top(3), false)]),
        placed(linear(from_top(6), PAGE, RWK | PIN | EAGER), &[]),
        // Lazy, 1 GiB-aligned: faults map 1 GiB pages.
        placed(linear(0x4000_0000, 4 * G, RWK), &[(0x8000_0000, false)]),
    ];
    if levels == Levels::Five {
        // Across the 48-bit edges: valid with 57 bits.
        all.push(placed(linear(0x0000_7fff_ffff_f000, 0x2000, RWK), &[(0x0000_8000_0000_0000, false)]));
        all.push(placed(Region::anonymous(0xffff_7fff_ffff_f000, 0x2000, RWK), &[(0xffff_8000_0000_0000, true)]));
    }
    all
}

/// Growing regions at the edges, clear of each other's guard gaps (with the
/// default limits): a grow-down region whose gap reaches 0, a grow-up one
/// ending at the lower half's end, a grow-down one starting at the upper
/// half's start, a grow-up one ending at 2^64.
fn growing_candidates(levels: Levels) -> Vec<Placed> {
    let lower_end = levels.lower_end() as u64;
    let upper = levels.upper_start() as u64;
    let anon = |va, len, prot| Region::anonymous(va, len, RWK | prot);
    vec![
        placed(anon(0x1_0000, 0x2000, DOWN), &[(0x1_1000, true)]),
        placed(anon(0x100_0000, PAGE, UP), &[]),
        placed(anon(lower_end - 0x2000, 0x2000, UP), &[(lower_end - 8, true)]),
        placed(anon(upper, 0x2000, DOWN), &[(upper, true)]),
        placed(anon(upper + 0x100_0000, PAGE, DOWN | EAGER), &[]),
        placed(anon(from_top(0x100), PAGE, DOWN), &[]),
        placed(anon(from_top(2), 0x2000, UP), &[(u64::MAX - 7, true)]),
        placed(linear(0x4000_0000, M2, RWK | EAGER), &[]),
    ]
}

/// The slots of a lone growing region: at 0, ending at the lower half's
/// end, starting at the upper half's start, ending at 2^64, and inside the
/// lower half.
fn lone_slots(levels: Levels) -> [u64; 5] {
    [0, levels.lower_end() as u64 - 0x2000, levels.upper_start() as u64, from_top(2), 0x2000_0000]
}

fn layout() -> impl Strategy<Value = Layout> {
    let keep = |n| prop::collection::vec(prop::bool::weighted(0.7), n);
    prop_oneof![
        3 => keep(12).prop_map(Layout::Plain),
        2 => keep(8).prop_map(Layout::Growing),
        2 => (0usize..5, any::<bool>()).prop_map(|(slot, down)| Layout::Lone { slot, down }),
    ]
}

/// A machine and a space holding `layout`'s regions, with their pages
/// touched, loaded in CR3; `verify` passes.
fn populate(levels: Levels, layout: &Layout) -> (SimMachine, Space) {
    let (machine, mut space) = setup(levels.config());
    assert_eq!(machine.features().virt_width(), levels.width());
    assert_eq!(machine.features().phys_bits, levels.phys_bits());
    let chosen: Vec<Placed> = match layout {
        Layout::Plain(keep) => {
            plain_candidates(levels).into_iter().zip(keep).filter(|(_, k)| **k).map(|(p, _)| p).collect()
        }
        Layout::Growing(keep) => {
            growing_candidates(levels).into_iter().zip(keep).filter(|(_, k)| **k).map(|(p, _)| p).collect()
        }
        Layout::Lone { slot, down } => {
            let prot = RWK | if *down { DOWN } else { UP };
            vec![placed(Region::anonymous(lone_slots(levels)[*slot], 0x2000, prot), &[])]
        }
    };
    for p in &chosen {
        space.add_region(p.region).unwrap_or_else(|e| panic!("populating with {}: {e}", p.region));
    }
    space.switch_to();
    for p in &chosen {
        for &(va, is_write) in &p.touch {
            let result =
                if is_write { write(&mut space, &machine, va, va) } else { read(&mut space, &machine, va).map(|_| ()) };
            result.unwrap_or_else(|e| panic!("touching {va:#x}: {e:?}"));
        }
    }
    assert_eq!(space.verify(), Ok(()));
    (machine, space)
}

// ---------------------------------------------------------------------------
// Operations near the anchors
// ---------------------------------------------------------------------------

/// A start near an anchor: plus or minus up to 8 pages (wrapping), usually
/// page-aligned.
fn start() -> impl Strategy<Value = u64> {
    let misalign = prop_oneof![12 => Just(0u64), 1 => Just(1u64), 1 => Just(PAGE / 2), 1 => Just(u64::MAX)];
    (0..ANCHORS.len(), -8i64..=8, misalign).prop_map(|(anchor, pages, misalign)| {
        ANCHORS[anchor].wrapping_add((pages * PAGE as i64) as u64).wrapping_add(misalign)
    })
}

/// A length, some relative to the start it goes with.
#[derive(Clone, Copy, Debug)]
enum LenSpec {
    Fixed(u64),
    /// Ends `delta` bytes past 2^64.
    ToTop(i64),
    /// Ends `delta` bytes past this lower half's end (48 or 57 bits).
    ToLowerEnd(bool, i64),
    /// Ends `delta` bytes past this upper half's start.
    ToUpperStart(bool, i64),
}

impl LenSpec {
    fn resolve(self, start: u64) -> u64 {
        let to = |end: u128, delta: i64| (end as u64).wrapping_sub(start).wrapping_add(delta as u64);
        let lower = |five: bool| if five { Levels::Five.lower_end() } else { Levels::Four.lower_end() };
        match self {
            LenSpec::Fixed(len) => len,
            LenSpec::ToTop(delta) => to(TOP, delta),
            LenSpec::ToLowerEnd(five, delta) => to(lower(five), delta),
            LenSpec::ToUpperStart(five, delta) => to(TOP - lower(five), delta),
        }
    }
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 1 => Just(1i64), 1 => Just(-1i64), 2 => Just(PAGE as i64), 2 => Just(-(PAGE as i64))]
}

fn len_spec() -> impl Strategy<Value = LenSpec> {
    prop_oneof![
        1 => Just(LenSpec::Fixed(0)),
        1 => Just(LenSpec::Fixed(1)),
        4 => Just(LenSpec::Fixed(PAGE)),
        3 => (2u64..8).prop_map(|pages| LenSpec::Fixed(pages * PAGE)),
        1 => Just(LenSpec::Fixed(1 << 63)),
        1 => Just(LenSpec::Fixed(u64::MAX)),
        1 => (1u64..=3).prop_map(|pages| LenSpec::Fixed(u64::MAX - pages * PAGE + 1)),
        4 => delta().prop_map(LenSpec::ToTop),
        2 => (any::<bool>(), delta()).prop_map(|(five, d)| LenSpec::ToLowerEnd(five, d)),
        2 => (any::<bool>(), delta()).prop_map(|(five, d)| LenSpec::ToUpperStart(five, d)),
    ]
}

/// A page-aligned range of a few pages beside an anchor, either side: most
/// are valid in one of the machines.
fn fitting() -> impl Strategy<Value = (u64, u64)> {
    (0..ANCHORS.len(), -24i64..=24, 1u64..=4)
        .prop_map(|(anchor, pages, len)| (ANCHORS[anchor].wrapping_add((pages * PAGE as i64) as u64), len * PAGE))
}

fn range() -> impl Strategy<Value = (u64, u64)> {
    (start(), len_spec()).prop_map(|(start, spec)| (start, spec.resolve(start)))
}

/// A physical address for a range starting at `va` of `len` bytes.
#[derive(Clone, Copy, Debug)]
enum PaSpec {
    /// `pa_for(va)`: large pages fit.
    Congruent,
    /// Half a page off.
    Misaligned,
    /// The last `pages` pages below 2^64 (`len` past them wraps).
    NearTop(u64),
    /// Ending `delta` pages past MAXPHYADDR (46 or 52 bits).
    AtPhysLimit(bool, i64),
    Zero,
}

impl PaSpec {
    fn resolve(self, va: u64, len: u64) -> u64 {
        match self {
            PaSpec::Congruent => pa_for(va),
            PaSpec::Misaligned => pa_for(va) + PAGE / 2,
            PaSpec::NearTop(pages) => from_top(pages),
            PaSpec::AtPhysLimit(five, delta) => {
                let limit = 1u64 << if five { 52 } else { 46 };
                limit.wrapping_sub(len).wrapping_add((delta * PAGE as i64) as u64)
            }
            PaSpec::Zero => 0,
        }
    }
}

fn pa_spec() -> impl Strategy<Value = PaSpec> {
    prop_oneof![
        8 => Just(PaSpec::Congruent),
        1 => Just(PaSpec::Misaligned),
        1 => (1u64..4).prop_map(PaSpec::NearTop),
        2 => (any::<bool>(), -1i64..=1).prop_map(|(five, d)| PaSpec::AtPhysLimit(five, d)),
        1 => Just(PaSpec::Zero),
    ]
}

/// The kind of region an add makes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Linear,
    LinearEager,
    Anonymous,
    AnonymousEager,
    GrowsDown,
    GrowsUp,
    ReadOnlyBacking,
    /// Any flags at all (mostly contradicting).
    Flags(u32),
}

impl Kind {
    fn prot(self) -> Protection {
        match self {
            Kind::Linear => RWK,
            Kind::LinearEager => RWK | EAGER,
            Kind::Anonymous => RWK | ANON,
            Kind::AnonymousEager => RWK | ANON | EAGER,
            Kind::GrowsDown => RWK | ANON | DOWN,
            Kind::GrowsUp => RWK | ANON | UP,
            Kind::ReadOnlyBacking => R | KERN | RO_BACKING,
            Kind::Flags(bits) => Protection::from_bits_retain(bits),
        }
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Linear),
        3 => Just(Kind::LinearEager),
        2 => Just(Kind::Anonymous),
        2 => Just(Kind::AnonymousEager),
        2 => Just(Kind::GrowsDown),
        2 => Just(Kind::GrowsUp),
        1 => Just(Kind::ReadOnlyBacking),
        1 => prop_oneof![0u32..(1 << 11), Just(1u32 << 20 | 1)].prop_map(Kind::Flags),
    ]
}

/// A part of the space to name in remove, move and protect.
#[derive(Clone, Debug)]
enum PartSpec {
    /// Anything near the anchors.
    Near { va: u64, len: u64, pa: PaSpec },
    /// Of an existing region (the `index`-th by address): from `offset`
    /// pages into it (modulo its length), `len` long, named with the right
    /// physical address or not.
    Of { index: Index, offset: u64, len: PartLen, right_memory: bool },
}

#[derive(Clone, Copy, Debug)]
enum PartLen {
    /// To the region's end.
    Rest,
    OnePage,
    /// The whole region (the offset is ignored).
    Whole,
    /// `pages` past the region's end.
    PastEnd(u64),
    /// To 2^64, plus `delta` bytes.
    ToTop(i64),
    Fixed(u64),
}

fn part_len() -> impl Strategy<Value = PartLen> {
    prop_oneof![
        3 => Just(PartLen::Rest),
        3 => Just(PartLen::OnePage),
        3 => Just(PartLen::Whole),
        1 => (1u64..3).prop_map(PartLen::PastEnd),
        2 => delta().prop_map(PartLen::ToTop),
        1 => prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(1 << 63)].prop_map(PartLen::Fixed),
    ]
}

fn part() -> impl Strategy<Value = PartSpec> {
    prop_oneof![
        1 => (range(), pa_spec()).prop_map(|((va, len), pa)| PartSpec::Near { va, len, pa }),
        3 => (any::<Index>(), 0u64..8, part_len(), prop::bool::weighted(0.85))
            .prop_map(|(index, offset, len, right_memory)| PartSpec::Of { index, offset, len, right_memory }),
    ]
}

impl PartSpec {
    fn resolve(&self, regions: &[Region]) -> Region {
        match *self {
            PartSpec::Near { va, len, pa } => Region::new(va, pa.resolve(va, len), len, R),
            PartSpec::Of { ref index, offset, len, right_memory } => {
                if regions.is_empty() {
                    return Region::new(0x5000_0000, 0, PAGE, R);
                }
                let r = regions[index.index(regions.len())];
                let offset = (offset * PAGE) % r.len;
                let va = if matches!(len, PartLen::Whole) { r.va.0 } else { r.va.0 + offset };
                let len = match len {
                    PartLen::Rest => r.len - (va - r.va.0),
                    PartLen::OnePage => PAGE,
                    PartLen::Whole => r.len,
                    PartLen::PastEnd(pages) => (r.len - (va - r.va.0)).wrapping_add(pages * PAGE),
                    PartLen::ToTop(delta) => 0u64.wrapping_sub(va).wrapping_add(delta as u64),
                    PartLen::Fixed(len) => len,
                };
                let right = if r.prot.contains(ANON) { 0 } else { r.pa.0 + (va - r.va.0) };
                let pa = if right_memory { right } else { right.wrapping_add(PAGE) };
                Region::new(va, pa, len, R)
            }
        }
    }
}

/// The flags a protect asks for.
#[derive(Clone, Copy, Debug)]
enum ProtSpec {
    /// The region's kind with these rights (R, W, X, KERN bits) and maybe EAGER.
    SameKind(u8, bool),
    Any(u32),
}

fn prot_spec() -> impl Strategy<Value = ProtSpec> {
    prop_oneof![
        5 => (0u8..16, any::<bool>()).prop_map(|(rights, eager)| ProtSpec::SameKind(rights, eager)),
        1 => (0u32..(1 << 11)).prop_map(ProtSpec::Any),
    ]
}

impl ProtSpec {
    fn resolve(self, existing: Option<Region>) -> Protection {
        match self {
            ProtSpec::SameKind(rights, eager) => {
                let kind = existing.map_or(Protection::empty(), |r| r.prot.kind());
                let mut prot = kind | Protection::from_bits_truncate(u32::from(rights)) & (R | W | X | KERN);
                prot.set(EAGER, eager);
                prot
            }
            ProtSpec::Any(bits) => Protection::from_bits_retain(bits),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Execute,
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![3 => Just(Access::Read), 3 => Just(Access::Write), 1 => Just(Access::Execute)]
}

/// How far beside a region a fault lands.
#[derive(Clone, Copy, Debug)]
enum Distance {
    Bytes(u64),
    /// The space's guard gap plus `delta` bytes.
    Gap(i64),
}

fn distance() -> impl Strategy<Value = Distance> {
    prop_oneof![
        3 => prop_oneof![Just(1u64), Just(8), Just(PAGE), Just(PAGE + 1), Just(2 * PAGE)].prop_map(Distance::Bytes),
        3 => prop_oneof![Just(0i64), Just(-1), Just(1), Just(-(PAGE as i64)), Just(PAGE as i64)].prop_map(Distance::Gap),
        1 => prop_oneof![Just(1u64 << 47), Just(1 << 56), Just(1 << 63), Just(u64::MAX)].prop_map(Distance::Bytes),
    ]
}

/// A growth limit: small, default-sized, and huge (past the halves, to
/// 2^64 minus a page), and bad ones (0, not a page multiple, `u64::MAX`).
fn limit() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(PAGE),
        2 => Just(16 * PAGE),
        2 => Just(8u64 << 20),
        1 => Just(1u64 << 47),
        1 => Just(1u64 << 63),
        3 => Just(u64::MAX - (PAGE - 1)),
        1 => Just(u64::MAX),
        1 => Just(0u64),
        1 => Just(PAGE + 1),
    ]
}

/// One step on a space.
#[derive(Clone, Debug)]
enum Op {
    Add { va: u64, len: u64, pa: PaSpec, kind: Kind },
    AddFile { va: u64, len: u64, source: u64, source_len: LenSpec, eager: bool },
    Remove(PartSpec),
    Move(PartSpec, PaSpec),
    Protect(PartSpec, ProtSpec),
    Limits(u64, u64),
    Fault { addr: u64, access: Access, user: bool },
    FaultBeside { index: Index, above: bool, distance: Distance, access: Access },
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => start(),
        1 => (0..ANCHORS.len(), -16i64..=16).prop_map(|(a, d)| ANCHORS[a].wrapping_add(d as u64)),
        1 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (range(), pa_spec(), kind()).prop_map(|((va, len), pa, kind)| Op::Add { va, len, pa, kind }),
        4 => (fitting(), pa_spec(), kind()).prop_map(|((va, len), pa, kind)| Op::Add { va, len, pa, kind }),
        2 => (range(), prop_oneof![Just(0u64), Just(0x1234_5678), (1u64..4).prop_map(from_top), Just((1 << 46) - 0x800)], len_spec(), any::<bool>())
            .prop_map(|((va, len), source, source_len, eager)| Op::AddFile { va, len, source, source_len, eager }),
        3 => part().prop_map(Op::Remove),
        2 => (part(), pa_spec()).prop_map(|(p, pa)| Op::Move(p, pa)),
        3 => (part(), prot_spec()).prop_map(|(p, prot)| Op::Protect(p, prot)),
        1 => (limit(), limit()).prop_map(|(max, gap)| Op::Limits(max, gap)),
        4 => (address(), access(), prop::bool::weighted(0.2)).prop_map(|(addr, access, user)| Op::Fault { addr, access, user }),
        5 => (any::<Index>(), any::<bool>(), distance(), access())
            .prop_map(|(index, above, distance, access)| Op::FaultBeside { index, above, distance, access }),
    ]
}

fn fault_code(access: Access, user: bool) -> PageFaultCode {
    let mut code = match access {
        Access::Read => PageFaultCode::empty(),
        Access::Write => PageFaultCode::WRITE,
        Access::Execute => PageFaultCode::FETCH,
    };
    code.set(PageFaultCode::USER, user);
    code
}

/// Runs `op` on the space and holds the result to the reference.
fn step(machine: &SimMachine, space: &mut Space, levels: Levels, op: &Op) -> Result<(), TestCaseError> {
    let reference = Reference::of(space, levels);
    let before = state(machine, space);
    // (the result, what the reference says) of an edit; faults return early.
    let (result, expected): (Result<(), AspaceError>, Result<Vec<Region>, AspaceError>) = match *op {
        Op::Add { va, len, pa, kind } => {
            let mut prot = kind.prot();
            let pa = if prot.contains(ANON) && !matches!(pa, PaSpec::NearTop(_)) { 0 } else { pa.resolve(va, len) };
            if prot.contains(EAGER) && expensive(prot, va, pa, len) {
                prot.remove(EAGER);
            }
            let region = Region::new(va, pa, len, prot);
            (space.add_region(region), reference.add(region))
        }
        Op::AddFile { va, len, source, source_len, eager } => {
            let mut prot = RWK | ANON;
            prot.set(EAGER, eager && !expensive(prot, va, 0, len));
            let region = Region::new(va, 0, len, prot);
            let source_len = source_len.resolve(source);
            let result = space.add_file_region(region, PhysAddr(source), source_len);
            let expected = reference.add_file(region, source, source_len);
            if result.is_ok() {
                let backing = FileBacking { va: region.va, len, source: PhysAddr(source), source_len };
                prop_assert_eq!(space.file_backing(region.va), Some(backing));
            }
            (result, expected)
        }
        Op::Remove(ref spec) => {
            let part = spec.resolve(&reference.regions);
            (space.remove_region(part), reference.remove(part))
        }
        Op::Move(ref spec, pa) => {
            let part = spec.resolve(&reference.regions);
            let new_pa = pa.resolve(part.va.0, part.len);
            (space.move_region(part, PhysAddr(new_pa)), reference.move_to(part, new_pa))
        }
        Op::Protect(ref spec, prot) => {
            let part = spec.resolve(&reference.regions);
            let existing = reference.find(part.va.0);
            let mut prot = prot.resolve(existing);
            if let Some(existing) = existing {
                let pa = if existing.prot.contains(ANON) { 0 } else { part.pa.0 };
                if prot.contains(EAGER) && expensive(existing.prot, part.va.0, pa, part.len) {
                    prot.remove(EAGER);
                }
            }
            (space.protect_region(part, prot), reference.protect(part, prot))
        }
        Op::Limits(max, gap) => {
            let result = space.set_growth_limits(max, gap);
            let expected = Reference::growth_limits(max, gap).map(|()| reference.regions.clone());
            if result.is_ok() {
                prop_assert_eq!(space.growth_limits(), GrowthLimits { max_size: max, guard_gap: gap });
            }
            (result, expected)
        }
        Op::Fault { addr, access, user } => {
            return fault(machine, space, levels, &reference, before, addr, access, user)
        }
        Op::FaultBeside { ref index, above, distance, access } => {
            if reference.regions.is_empty() {
                return Ok(());
            }
            let r = reference.regions[index.index(reference.regions.len())];
            let distance = match distance {
                Distance::Bytes(bytes) => bytes,
                Distance::Gap(delta) => (reference.guard_gap as u64).wrapping_add(delta as u64),
            };
            let last = r.va.0.wrapping_add(r.len - 1);
            let addr = if above { last.wrapping_add(distance) } else { r.va.0.wrapping_sub(distance) };
            return fault(machine, space, levels, &reference, before, addr, access, false);
        }
    };
    match (&result, &expected) {
        (Ok(()), Ok(regions)) => {
            let actual: Vec<Region> = space.region_set().iter().copied().collect();
            prop_assert_eq!(&actual, regions, "{:?} left other regions than the reference", op);
        }
        (Err(error), Err(refusal)) => {
            prop_assert!(
                same_refusal(error, refusal),
                "{:?} refused with {:?}, the reference says {:?}",
                op,
                error,
                refusal
            );
            prop_assert_eq!(state(machine, space), before, "{:?} was refused ({:?}) and changed the space", op, error);
        }
        (Ok(()), Err(refusal)) => {
            return Err(TestCaseError::fail(format!("{op:?} was accepted, the reference refuses it: {refusal:?}")))
        }
        (Err(error), Ok(_)) => {
            return Err(TestCaseError::fail(format!("{op:?} was refused ({error:?}), the reference accepts it")))
        }
    }
    check_space(space, levels)
}

/// Offers a page fault at `addr` to the space and holds the outcome to the
/// reference: handled exactly when the reference allows it (then the page
/// is mapped, and a growing region grew as the reference says); otherwise
/// `Unhandled`, with nothing changed.
#[allow(clippy::too_many_arguments)]
fn fault(
    machine: &SimMachine,
    space: &mut Space,
    levels: Levels,
    reference: &Reference,
    before: State,
    addr: u64,
    access: Access,
    user: bool,
) -> Result<(), TestCaseError> {
    let expected = reference.fault(addr, access, user);
    if let Ok((_, Some(grown))) = &expected {
        let old = reference.regions.iter().find(|r| r.prot.kind() == grown.prot.kind() && r.overlaps(grown));
        if grown.prot.contains(EAGER) && old.is_some_and(|old| (grown.len - old.len) / PAGE > EXPENSIVE_PAGES) {
            return Ok(());
        }
    }
    let outcome = space.exception(&Fault::page_fault(addr, fault_code(access, user), 0));
    match (&outcome, expected) {
        (FaultOutcome::Handled | FaultOutcome::Spurious, Ok((regions, _))) => {
            let actual: Vec<Region> = space.region_set().iter().copied().collect();
            prop_assert_eq!(&actual, &regions, "the fault at {:#x} left other regions than the reference", addr);
            let walk = space.walk(VirtAddr(addr)).expect("live");
            prop_assert!(walk.translation().is_some(), "the fault at {:#x} was handled and maps nothing", addr);
        }
        (FaultOutcome::Unhandled(reason), Err(())) => {
            prop_assert!(!matches!(reason, UnhandledFault::OutOfMemory { .. }), "out of memory at {:#x}", addr);
            prop_assert_eq!(state(machine, space), before, "the unhandled fault at {:#x} changed the space", addr);
        }
        (outcome, expected) => {
            let expected = expected.map(|(_, grown)| grown);
            return Err(TestCaseError::fail(format!(
                "a {access:?} fault at {addr:#x} (user {user}): {outcome:?}, the reference says {expected:?}"
            )));
        }
    }
    check_space(space, levels)
}

/// The fault page limit and fault-around window of a case.
fn fault_settings() -> impl Strategy<Value = (PageSize, u64)> {
    (
        prop_oneof![Just(PageSize::Size4K), Just(PageSize::Size2M), Just(PageSize::Size1G)],
        prop_oneof![Just(1u64), Just(16)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// On 4- and 5-level machines, in a space holding regions near every
    /// anchor (plain, growing, or a lone growing region at an edge), every
    /// operation with ranges near 0, the holes and 2^64 — add (linear and
    /// anonymous, eager and lazy, growing, read-only backed, any flags),
    /// add_file_region (sources near 0, near 2^64 and at MAXPHYADDR),
    /// remove, move and protect (of parts named right and wrong),
    /// set_growth_limits (huge ones too) and page faults near the anchors
    /// and beside every region (non-canonical addresses included, with
    /// fault-around and 2 MiB / 1 GiB fault pages) — is accepted exactly
    /// when the `u128` reference accepts it, with the regions it says; a
    /// refusal is its typed error and changes nothing; `verify` passes and
    /// every translation lies in the regions, in one canonical half.
    #[test]
    fn every_operation_at_the_edges_matches_the_reference(
        levels in levels(),
        layout in layout(),
        (fault_page, fault_around) in fault_settings(),
        ops in prop::collection::vec(op(), 1..16),
    ) {
        let (machine, mut space) = populate(levels, &layout);
        space.set_fault_page_limit(fault_page);
        space.set_fault_around(fault_around);
        check_space(&space, levels)?;
        for op in &ops {
            step(&machine, &mut space, levels, op)?;
        }
        prop_assert!(machine.violations().is_empty(), "{:?}", machine.violations());
    }
}

proptest! {
    // More cases than above, as each is short: a lone growing region at an
    // edge with a huge guard gap, faulted just beside across 0 or 2^64, is
    // a few cases in a thousand.
    #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

    /// Faults only, beside growing regions at the edges (and a lone one),
    /// under growth limits from one page to 2^64 minus a page: handled
    /// exactly when the reference grows the region into a valid range of
    /// one half, otherwise `Unhandled` with nothing changed; never a panic,
    /// never a page outside the regions. With 4 KiB, 2 MiB or 1 GiB fault
    /// pages, and fault-around on or off.
    #[test]
    fn faults_beside_growing_regions_at_the_edges(
        levels in levels(),
        (fault_page, fault_around) in fault_settings(),
        layout in prop_oneof![
            1 => prop::collection::vec(prop::bool::weighted(0.7), 8).prop_map(Layout::Growing),
            2 => (0usize..5, any::<bool>()).prop_map(|(slot, down)| Layout::Lone { slot, down }),
        ],
        (max, gap) in (limit(), limit()),
        faults in prop::collection::vec(
            prop_oneof![
                3 => (any::<Index>(), any::<bool>(), distance(), access())
                    .prop_map(|(index, above, distance, access)| Op::FaultBeside { index, above, distance, access }),
                1 => (address(), access()).prop_map(|(addr, access)| Op::Fault { addr, access, user: false }),
            ],
            1..12,
        ),
    ) {
        let (machine, mut space) = populate(levels, &layout);
        space.set_fault_page_limit(fault_page);
        space.set_fault_around(fault_around);
        // Refused when either is 0 or not whole pages: the defaults stay.
        let _ = space.set_growth_limits(max, gap);
        for op in &faults {
            step(&machine, &mut space, levels, op)?;
        }
    }
}

// ---------------------------------------------------------------------------
// The page tables' own range API
// ---------------------------------------------------------------------------

/// A mapped range of the reference: `[start, end)` onto `pa` with `perms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapped {
    start: u128,
    end: u128,
    pa: u128,
    perms: LeafPermissions,
}

/// The reference for a bare tree: what is mapped, as disjoint ranges.
#[derive(Clone, Debug, Default)]
struct TableModel {
    mapped: Vec<Mapped>,
}

impl TableModel {
    /// Splits the ranges at `first` and `end`, and hands each piece inside
    /// `[first, end)` to `edit` (which may drop it by returning `None`).
    fn edit(&mut self, first: u128, end: u128, mut edit: impl FnMut(Mapped) -> Option<Mapped>) {
        let mut out = Vec::new();
        for m in self.mapped.drain(..) {
            let cuts = [m.start, first.clamp(m.start, m.end), end.clamp(m.start, m.end), m.end];
            for pair in cuts.windows(2) {
                if pair[0] == pair[1] {
                    continue;
                }
                let piece = Mapped { start: pair[0], end: pair[1], pa: m.pa + (pair[0] - m.start), perms: m.perms };
                if pair[0] >= first && pair[1] <= end {
                    out.extend(edit(piece));
                } else {
                    out.push(piece);
                }
            }
        }
        out.sort_by_key(|m| m.start);
        self.mapped = out;
    }

    /// Adjacent ranges that continue each other, joined.
    fn normalized(mut ranges: Vec<Mapped>) -> Vec<Mapped> {
        ranges.sort_by_key(|m| m.start);
        let mut out: Vec<Mapped> = Vec::new();
        for m in ranges {
            match out.last_mut() {
                Some(last)
                    if last.end == m.start && last.pa + (last.end - last.start) == m.pa && last.perms == m.perms =>
                {
                    last.end = m.end;
                }
                _ => out.push(m),
            }
        }
        out
    }
}

/// What the tree maps, as normalized ranges.
fn mapped(tables: &PageTables, machine: &SimMachine) -> Vec<Mapped> {
    let ranges = tables
        .mappings(machine)
        .map(|run| Mapped {
            start: run.start.0.into(),
            end: u128::from(run.last.0) + 1,
            pa: run.pa.0.into(),
            perms: run.effective,
        })
        .collect();
    TableModel::normalized(ranges)
}

#[derive(Clone, Copy, Debug)]
enum TableOp {
    Map { va: u64, len: u64, pa: PaSpec, perms: u8 },
    Unmap { va: u64, len: u64 },
    Protect { va: u64, len: u64, perms: u8 },
    Remap { va: u64, len: u64, pa: PaSpec },
}

fn perms(bits: u8) -> LeafPermissions {
    LeafPermissions { writable: bits & 1 != 0, user: bits & 2 != 0, executable: bits & 4 != 0 }
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        4 => (range(), pa_spec(), 0u8..8).prop_map(|((va, len), pa, perms)| TableOp::Map { va, len, pa, perms }),
        2 => range().prop_map(|(va, len)| TableOp::Unmap { va, len }),
        2 => (range(), 0u8..8).prop_map(|((va, len), perms)| TableOp::Protect { va, len, perms }),
        2 => (range(), pa_spec()).prop_map(|((va, len), pa)| TableOp::Remap { va, len, pa }),
    ]
}

/// The ranges mapped first, near every anchor that is canonical: the last
/// page of each half, the first of the upper half, pages at 0, and a
/// 1 GiB page below 2^64.
fn table_fixture(levels: Levels) -> Vec<(u64, u64)> {
    let lower_end = levels.lower_end() as u64;
    let upper = levels.upper_start() as u64;
    vec![
        (0, 2 * PAGE),
        (lower_end - 2 * PAGE, 2 * PAGE),
        (upper, 3 * PAGE),
        (from_top(2), 2 * PAGE),
        (0u64.wrapping_sub(2 * G), G),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// `PageTables::map`, `unmap`, `protect` and `remap` on a tree built
    /// directly on the MMU model (4- and 5-level) that already maps pages
    /// near every canonical anchor: with ranges near 0, the holes and 2^64,
    /// each succeeds exactly when the `u128` reference finds the virtual
    /// and physical ranges valid (the same typed error otherwise), a
    /// refusal leaves every translation, the frames in use and the table
    /// frames as they were, and the translations are always exactly the
    /// reference's (so none outside what was mapped, none non-canonical).
    /// Destroying the tree gives every frame back.
    #[test]
    fn page_table_range_api_at_the_edges(levels in levels(), ops in prop::collection::vec(table_op(), 1..24)) {
        let machine = SimMachine::new(levels.config());
        let mut tables = PageTables::new(&machine, None).expect("a root");
        let space = tables.space_id();
        let mut model = TableModel::default();
        let rw = perms(1);
        for (va, len) in table_fixture(levels) {
            tables.map(&machine, VirtAddr(va), PhysAddr(pa_for(va)), len, rw).expect("fixture").apply(&machine, space);
            let (first, end) = extent(va, len);
            model.edit(first, end, |_| None);
            model.mapped.push(Mapped { start: first, end, pa: pa_for(va).into(), perms: rw });
            model.mapped.sort_by_key(|m| m.start);
        }
        prop_assert_eq!(mapped(&tables, &machine), TableModel::normalized(model.mapped.clone()));
        for op in &ops {
            let (va, len, pa) = match *op {
                TableOp::Map { va, len, pa, .. } | TableOp::Remap { va, len, pa } => (va, len, pa.resolve(va, len)),
                TableOp::Unmap { va, len } | TableOp::Protect { va, len, .. } => (va, len, 0),
            };
            let expected = numbers(levels, va, pa, len, true);
            let (first, end) = extent(va, len);
            if expected.is_ok() {
                // Skip what would write too many leaves: a large map, or a
                // remap that splits large pages into 4 KiB ones.
                let costly = match *op {
                    TableOp::Map { .. } => leaves(va, pa, len, EXPENSIVE_LEAVES) > EXPENSIVE_LEAVES,
                    TableOp::Remap { .. } => model.mapped.iter().any(|m| {
                        let (s, e) = (m.start.max(first), m.end.min(end));
                        s < e && leaves(s as u64, (u128::from(pa) + (s - first)) as u64, (e - s) as u64, EXPENSIVE_LEAVES) > EXPENSIVE_LEAVES
                    }),
                    _ => false,
                };
                if costly {
                    continue;
                }
            }
            let before = (mapped(&tables, &machine), machine.frames_in_use(), tables.table_frames());
            let result = match *op {
                TableOp::Map { perms: p, .. } => tables.map(&machine, VirtAddr(va), PhysAddr(pa), len, perms(p)),
                TableOp::Unmap { .. } => tables.unmap(&machine, VirtAddr(va), len),
                TableOp::Protect { perms: p, .. } => tables.protect(&machine, VirtAddr(va), len, perms(p)),
                TableOp::Remap { .. } => tables.remap(&machine, VirtAddr(va), len, PhysAddr(pa)),
            };
            match (result, expected) {
                (Ok(batch), Ok(())) => {
                    batch.apply(&machine, space);
                    match *op {
                        TableOp::Map { perms: p, .. } => {
                            model.edit(first, end, |_| None);
                            model.mapped.push(Mapped { start: first, end, pa: pa.into(), perms: perms(p) });
                            model.mapped.sort_by_key(|m| m.start);
                        }
                        TableOp::Unmap { .. } => model.edit(first, end, |_| None),
                        TableOp::Protect { perms: p, .. } => model.edit(first, end, |m| Some(Mapped { perms: perms(p), ..m })),
                        TableOp::Remap { .. } => {
                            model.edit(first, end, |m| Some(Mapped { pa: u128::from(pa) + (m.start - first), ..m }))
                        }
                    }
                }
                (Err(error), Err(refusal)) => {
                    prop_assert_eq!(&error, &refusal, "{:?}", op);
                    let after = (mapped(&tables, &machine), machine.frames_in_use(), tables.table_frames());
                    prop_assert_eq!(after, before, "the refused {:?} changed the tree", op);
                }
                (Ok(_), Err(refusal)) => {
                    return Err(TestCaseError::fail(format!("{op:?} was accepted, the reference refuses it: {refusal:?}")));
                }
                (Err(error), Ok(())) => {
                    return Err(TestCaseError::fail(format!("{op:?} was refused ({error:?}), the reference accepts it")));
                }
            }
            prop_assert_eq!(mapped(&tables, &machine), TableModel::normalized(model.mapped.clone()), "after {:?}", op);
        }
        tables.destroy(&machine).apply(&machine, space);
        prop_assert_eq!(machine.frames_in_use(), 0);
        prop_assert!(machine.violations().is_empty(), "{:?}", machine.violations());
    }
}

// ---------------------------------------------------------------------------
// Bugs found by the properties above, minimised
// ---------------------------------------------------------------------------

/// Growth limits as large as `set_growth_limits` accepts: 2^64 minus a page.
const HUGE: u64 = u64::MAX - (PAGE - 1);

/// A fault that asks a growing region to grow to 2^64 bytes (its request
/// is within the guard gap, its page on the far side of the space) must be
/// refused as a stack overflow, the space unchanged.
fn assert_refused_as_overflow(machine: &SimMachine, space: &mut Space, addr: u64, region: Region) {
    let before = state(machine, space);
    let outcome = space.exception(&Fault::page_fault(addr, PageFaultCode::WRITE, 0));
    assert_eq!(outcome, FaultOutcome::Unhandled(UnhandledFault::StackOverflow { region }));
    assert_eq!(state(machine, space), before);
    assert_eq!(space.verify(), Ok(()));
}

/// Found by `faults_beside_growing_regions_at_the_edges`. A grow-down
/// region holding the last page of the 64-bit space is the first region
/// above address 0x10; with a guard gap of 2^64 - 4 KiB the fault there is
/// a growth request, and `growth_request` (crates/paging/src/grow.rs:95)
/// computes the grown length `region.len + (region.va - page)` =
/// 0x1000 + 0xffff_ffff_ffff_f000 = 2^64: "attempt to add with overflow"
/// in a debug build. (A release build wraps to 0, which `validate` then
/// refuses, so the outcome is right there by luck.)
#[test]
fn growth_down_to_page_0_from_a_region_ending_at_2_64_overflows() {
    for levels in [Levels::Four, Levels::Five] {
        let (machine, mut space) = setup(levels.config());
        let stack = Region::anonymous(from_top(1), PAGE, RWK | DOWN);
        space.add_region(stack).unwrap();
        space.set_growth_limits(HUGE, HUGE).unwrap();
        assert_refused_as_overflow(&machine, &mut space, 0x10, stack);
    }
}

/// Found by `faults_beside_growing_regions_at_the_edges` (shrunk to a
/// grow-up region at [0, 0x2000), guard gap 2^64 - 4 KiB, a read fault at
/// `u64::MAX`): the mirror image. The grow-up region at 0 is the last
/// region below the fault, which is within the gap, and `growth_request`
/// (crates/paging/src/grow.rs:104) computes `region.len + (page_last -
/// region.last())` = 0x2000 + (0xffff_ffff_ffff_ffff - 0x1fff) = 2^64:
/// "attempt to add with overflow".
#[test]
fn growth_up_to_the_last_page_from_a_region_at_0_overflows() {
    for levels in [Levels::Four, Levels::Five] {
        let (machine, mut space) = setup(levels.config());
        let heap = Region::anonymous(0, 0x2000, RWK | UP);
        space.add_region(heap).unwrap();
        space.set_growth_limits(HUGE, HUGE).unwrap();
        assert_refused_as_overflow(&machine, &mut space, u64::MAX, heap);
    }
}
