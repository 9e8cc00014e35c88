//! Growing regions ([`Protection::GROW_DOWN`], [`Protection::GROW_UP`]):
//! when a fault asks one to grow, what it grows into, and the guard gap it
//! keeps clear.
//!
//! For a grow-down region `[S, E)` and limits (maximum size `M`, guard gap `G`):
//! - a fault at an address `A` that no region holds is a **growth request**
//!   when the grow-down region is the first region above `A` and
//!   `S - A <= G`: the guard gap doubles as the reach of one growth step;
//! - the region would become `[P, E)`, `P` the start of `A`'s 4 KiB page;
//! - it grows when `E - P <= M` and the region below (if any) ends at
//!   least `G` bytes below `P`, so one whole guard gap stays clear;
//! - otherwise the request is refused as a **stack overflow**.
//!
//! A fault farther than `G` below the region is not a growth request at all
//! (a wild access: no region). Grow-up regions are the mirror image: a
//! fault at most `G` bytes above the region's last byte, the region below
//! `A` being the grow-up one, and the region above keeping `G` clear.
//! When a fault lies in the reach of both a grow-down region above it and a
//! grow-up region below it, the grow-down region is asked (it could not
//! grow up there anyway without entering the other's guard gap).
//!
//! A growing region also **reserves** its guard gap: no region may be added
//! inside `[S - G, S)` of a grow-down region or `[E, E + G)` of a grow-up
//! one, and a growing region may not be added with another region inside
//! its own guard gap.

use aspace::{AddressKind, AspaceError, Protection, Region, RegionSet};

use crate::entry::PAGE;

/// How far growing regions may grow, and the gap they keep from their
/// neighbour on the growing side. Both are multiples of 4 KiB and non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrowthLimits {
    /// The largest size, in bytes, a growing region may reach by growing.
    pub max_size: u64,
    /// The gap, in bytes, kept clear on a growing region's growing side;
    /// also how far from the region a fault may be and still grow it.
    pub guard_gap: u64,
}

impl GrowthLimits {
    /// 8 MiB (a common default stack limit) and 64 KiB (sixteen pages: one
    /// step of a deep call chain that skips pages, e.g. a large local
    /// array, still lands in the window).
    pub const DEFAULT: GrowthLimits = GrowthLimits { max_size: 8 << 20, guard_gap: 64 << 10 };

    /// Limits with these values: refused with [`AspaceError::ZeroLength`]
    /// or [`AspaceError::Misaligned`] unless both are non-zero multiples of 4 KiB.
    pub fn new(max_size: u64, guard_gap: u64) -> Result<Self, AspaceError> {
        for value in [max_size, guard_gap] {
            if value == 0 {
                return Err(AspaceError::ZeroLength);
            }
            if !value.is_multiple_of(PAGE) {
                return Err(AspaceError::Misaligned { kind: AddressKind::Length, value, required: PAGE });
            }
        }
        Ok(GrowthLimits { max_size, guard_gap })
    }
}

impl Default for GrowthLimits {
    fn default() -> Self {
        GrowthLimits::DEFAULT
    }
}

/// What a fault outside every region asks of the growing regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrowthRequest {
    /// No growing region is near enough: not a growth request.
    None,
    /// `region` may grow into `grown` (same kind and rights).
    Grow {
        /// The region as it is.
        region: Region,
        /// The region it becomes.
        grown: Region,
    },
    /// `region` was asked to grow past its maximum size or guard gap.
    Overflow {
        /// The region as it is.
        region: Region,
    },
}

/// What a fault at `addr`, which no region holds, asks of the growing regions.
pub(crate) fn growth_request(regions: &RegionSet, addr: u64, limits: GrowthLimits) -> GrowthRequest {
    // lab:begin extra-grow growth_request: does a fault outside every region grow a stack, or overflow it?
    let page = addr & !(PAGE - 1);
    let above = regions.next_at_or_after(addr).copied();
    let below = regions.previous_before(addr).copied();
    if let Some(region) = above.filter(|r| r.prot.contains(Protection::GROW_DOWN)) {
        if region.va.0 - addr <= limits.guard_gap {
            // A region that would cover all 2^64 bytes is past any maximum size.
            let Some(len) = region.len.checked_add(region.va.0 - page) else {
                return GrowthRequest::Overflow { region };
            };
            let grown = Region { va: aspace::VirtAddr(page), len, ..region };
            // The extended region must stay a whole guard gap above its new neighbour.
            let clear = below.is_none_or(|b| page - b.last() > limits.guard_gap);
            return decide(region, grown, clear, limits);
        }
    }
    if let Some(region) = below.filter(|r| r.prot.contains(Protection::GROW_UP)) {
        if addr - region.last() <= limits.guard_gap {
            let page_last = page + (PAGE - 1);
            let Some(len) = region.len.checked_add(page_last - region.last()) else {
                return GrowthRequest::Overflow { region };
            };
            let grown = Region { len, ..region };
            let clear = above.is_none_or(|a| a.va.0 - page_last > limits.guard_gap);
            return decide(region, grown, clear, limits);
        }
    }
    GrowthRequest::None
    // lab:end
}

fn decide(region: Region, grown: Region, clear: bool, limits: GrowthLimits) -> GrowthRequest {
    if clear && grown.len <= limits.max_size {
        GrowthRequest::Grow { region, grown }
    } else {
        GrowthRequest::Overflow { region }
    }
}

/// The guard gap a region reserves, as an inclusive range `(first, last)`,
/// clipped at the ends of the address space; `None` for a region that
/// does not grow (or whose gap would lie wholly past an end).
pub(crate) fn reserved_gap(region: &Region, limits: GrowthLimits) -> Option<(u64, u64)> {
    if region.prot.contains(Protection::GROW_DOWN) {
        let last = region.va.0.checked_sub(1)?;
        Some((region.va.0.saturating_sub(limits.guard_gap), last))
    } else if region.prot.contains(Protection::GROW_UP) {
        let first = region.last().checked_add(1)?;
        Some((first, region.last().saturating_add(limits.guard_gap)))
    } else {
        None
    }
}

/// Why `region` may not be added to `regions` (it is known not to overlap
/// any of them) because of guard gaps: it lies in the guard gap of its
/// nearest neighbour, which grows towards it (the error names that growing
/// region), or, growing itself, it has a region inside its own guard gap
/// (the error names that region). Only the nearest neighbours are asked: a
/// farther growing region cannot grow past them anyway.
pub(crate) fn guard_conflict(regions: &RegionSet, region: &Region, limits: GrowthLimits) -> Option<AspaceError> {
    let overlaps = |gap: Option<(u64, u64)>, r: &Region| gap.is_some_and(|(first, last)| r.overlaps_range(first, last));
    // Nothing starts inside `region`: the first region starting at or
    // after its start lies above it.
    let (below, above) = regions.neighbours(region.va.0);
    for neighbour in above.into_iter().chain(below) {
        if overlaps(reserved_gap(neighbour, limits), region) {
            return Some(AspaceError::Overlap { existing: *neighbour });
        }
    }
    let (first, last) = reserved_gap(region, limits)?;
    regions.first_overlap(first, last - first + 1).map(|existing| AspaceError::Overlap { existing: *existing })
}

/// After a growing region has been cut into `pieces` (in address order),
/// only the piece holding its growing edge keeps growing: the lowest piece
/// of a grow-down region, the highest of a grow-up one. The others become
/// plain anonymous regions, so no piece has a neighbour inside its guard gap.
// Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
#[inline(always)]
pub(crate) fn keep_growth_at_the_edge(pieces: &mut [Option<Region>], grows: Protection) {
    let flag = grows.intersection(Protection::GROW_DOWN | Protection::GROW_UP);
    if flag.is_empty() {
        return;
    }
    let edge = if flag == Protection::GROW_DOWN {
        pieces.iter().position(Option::is_some)
    } else {
        pieces.iter().rposition(Option::is_some)
    };
    for (index, piece) in pieces.iter_mut().enumerate() {
        if let Some(piece) = piece {
            piece.prot.set(flag, Some(index) == edge);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: Protection = Protection::READ.union(Protection::WRITE).union(Protection::ANON);
    const LIMITS: GrowthLimits = GrowthLimits { max_size: 0x8000, guard_gap: 0x2000 };

    fn set(regions: &[Region]) -> RegionSet {
        let mut set = RegionSet::new();
        for r in regions {
            set.insert(*r).unwrap();
        }
        set
    }

    #[test]
    fn limits_must_be_whole_pages() {
        assert_eq!(GrowthLimits::new(0x8000, 0x2000), Ok(LIMITS));
        assert_eq!(GrowthLimits::new(0, 0x2000), Err(AspaceError::ZeroLength));
        assert!(matches!(GrowthLimits::new(0x8000, 0x2001), Err(AspaceError::Misaligned { .. })));
        assert_eq!(GrowthLimits::default(), GrowthLimits::DEFAULT);
    }

    #[test]
    fn grow_down_window_maximum_and_gap() {
        let stack = Region::anonymous(0x20000, 0x1000, STACK | Protection::GROW_DOWN);
        let regions = set(&[Region::new(0x10000, 0, 0x1000, Protection::READ), stack]);
        let grown = |va: u64| Region { va: aspace::VirtAddr(va), len: 0x21000 - va, ..stack };
        // One byte below, and exactly one gap below: growth to the page.
        assert_eq!(
            growth_request(&regions, 0x1ffff, LIMITS),
            GrowthRequest::Grow { region: stack, grown: grown(0x1f000) }
        );
        assert_eq!(
            growth_request(&regions, 0x1e000, LIMITS),
            GrowthRequest::Grow { region: stack, grown: grown(0x1e000) }
        );
        // One byte farther: not a request.
        assert_eq!(growth_request(&regions, 0x1dfff, LIMITS), GrowthRequest::None);
        // Near the maximum: a region of 0x7000 may take one more page, not two.
        let big = Region { va: aspace::VirtAddr(0x19000), len: 0x8000, ..stack };
        let regions = set(&[big]);
        assert!(matches!(growth_request(&regions, 0x18ff8, LIMITS), GrowthRequest::Overflow { .. }));
        let almost = Region { va: aspace::VirtAddr(0x1a000), len: 0x7000, ..stack };
        let regions = set(&[almost]);
        assert!(matches!(growth_request(&regions, 0x19000, LIMITS), GrowthRequest::Grow { .. }));
        assert_eq!(growth_request(&regions, 0x18000, LIMITS), GrowthRequest::Overflow { region: almost });
        // The neighbour below ends at 0x10fff: growing to 0x13000 leaves
        // 0x2000 clear, to 0x12000 only 0x1000.
        let low = Region::anonymous(0x14000, 0x1000, STACK | Protection::GROW_DOWN);
        let regions = set(&[Region::new(0x10000, 0, 0x1000, Protection::READ), low]);
        assert!(matches!(growth_request(&regions, 0x13000, LIMITS), GrowthRequest::Grow { .. }));
        assert_eq!(growth_request(&regions, 0x12fff, LIMITS), GrowthRequest::Overflow { region: low });
    }

    #[test]
    fn grow_up_is_the_mirror() {
        let heap = Region::anonymous(0x10000, 0x1000, STACK | Protection::GROW_UP);
        let regions = set(&[heap, Region::new(0x16000, 0, 0x1000, Protection::READ)]);
        let grown = |last: u64| Region { len: last + 1 - 0x10000, ..heap };
        assert_eq!(
            growth_request(&regions, 0x11000, LIMITS),
            GrowthRequest::Grow { region: heap, grown: grown(0x11fff) }
        );
        assert_eq!(
            growth_request(&regions, 0x12fff, LIMITS),
            GrowthRequest::Grow { region: heap, grown: grown(0x12fff) }
        );
        assert_eq!(growth_request(&regions, 0x13000, LIMITS), GrowthRequest::None);
        // Growing to 0x13fff keeps 0x2000 clear below 0x16000; the next page would not.
        let regions = set(&[Region { len: 0x3000, ..heap }, Region::new(0x16000, 0, 0x1000, Protection::READ)]);
        assert!(matches!(growth_request(&regions, 0x13000, LIMITS), GrowthRequest::Grow { .. }));
        let regions = set(&[Region { len: 0x4000, ..heap }, Region::new(0x16000, 0, 0x1000, Protection::READ)]);
        assert!(matches!(growth_request(&regions, 0x14000, LIMITS), GrowthRequest::Overflow { .. }));
    }

    #[test]
    fn guards_are_reserved() {
        let stack = Region::anonymous(0x20000, 0x1000, STACK | Protection::GROW_DOWN);
        let regions = set(&[stack]);
        let plain = |va| Region::new(va, 0, 0x1000, Protection::READ);
        assert_eq!(guard_conflict(&regions, &plain(0x1f000), LIMITS), Some(AspaceError::Overlap { existing: stack }));
        assert_eq!(guard_conflict(&regions, &plain(0x1e000), LIMITS), Some(AspaceError::Overlap { existing: stack }));
        assert_eq!(guard_conflict(&regions, &plain(0x1d000), LIMITS), None);
        assert_eq!(guard_conflict(&regions, &plain(0x21000), LIMITS), None, "above a grow-down region is free");
        // A grow-up region below it: the two gaps may overlap each other.
        let heap = Region::anonymous(0x1d000, 0x1000, STACK | Protection::GROW_UP);
        assert_eq!(guard_conflict(&regions, &heap, LIMITS), None);
        // A new growing region may not have a region inside its own gap.
        let other = Region::anonymous(0x1c000, 0x1000, STACK | Protection::GROW_UP);
        let regions = set(&[plain(0x1e000)]);
        assert_eq!(guard_conflict(&regions, &other, LIMITS), Some(AspaceError::Overlap { existing: plain(0x1e000) }));
        let other = Region::anonymous(0x1b000, 0x1000, STACK | Protection::GROW_UP);
        assert_eq!(guard_conflict(&regions, &other, LIMITS), None);
        // The bottom of the address space clips the gap.
        assert_eq!(reserved_gap(&Region::anonymous(0, 0x1000, STACK | Protection::GROW_DOWN), LIMITS), None);
        assert_eq!(
            reserved_gap(&Region::anonymous(0x1000, 0x1000, STACK | Protection::GROW_DOWN), LIMITS),
            Some((0, 0xfff))
        );
    }

    #[test]
    fn only_the_edge_piece_keeps_growing() {
        let piece = |va| Some(Region::anonymous(va, 0x1000, STACK | Protection::GROW_DOWN));
        let mut pieces = [None, piece(0x2000), piece(0x3000)];
        keep_growth_at_the_edge(&mut pieces, Protection::GROW_DOWN);
        assert!(pieces[1].unwrap().prot.contains(Protection::GROW_DOWN));
        assert_eq!(pieces[2].unwrap().prot, STACK);
        let up = |va| Some(Region::anonymous(va, 0x1000, STACK | Protection::GROW_UP));
        let mut pieces = [up(0x1000), up(0x2000), None];
        keep_growth_at_the_edge(&mut pieces, Protection::GROW_UP | Protection::ANON);
        assert_eq!(pieces[0].unwrap().prot, STACK);
        assert!(pieces[1].unwrap().prot.contains(Protection::GROW_UP));
    }
}
