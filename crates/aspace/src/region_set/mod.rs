//! The memory map: a set of non-overlapping regions, ordered by virtual start.
//!
//! Stored in a B+-tree keyed by each region's first virtual byte (see
//! `bplus_tree.rs`). Because the regions never overlap, the only region that
//! can contain an address `va` is the one with the greatest start `<= va`:
//! one ordered search finds it. Every operation is O(log n); iteration is in
//! address order.
//!
//! Beside the tree, a page index (`page_index.rs`, a radix tree shaped like
//! a page table) answers `find` without comparing addresses: the page
//! number picks one entry per level, six levels at most, whatever the number
//! of regions. The tree remains the authority; the index only says, page by
//! page, which region holds every byte of it, and sends lookups in a page
//! that a region starting or ending inside it shares back to the tree.

mod bplus_tree;
mod page_index;

use crate::{AspaceError, Region, VirtAddr};
use alloc::boxed::Box;
use bplus_tree::BPlusTree;
use page_index::{PageIndex, PageLookup};

/// Regions per leaf: 512 bytes, eight cache lines, all fetched at once by a
/// lookup that misses the cache. Measured against 8 and 32: fewer levels
/// than 8, fewer lines per lookup than 32.
const LEAF_CAPACITY: usize = 16;
/// Children per inner node: 32 entries of key and child (eight cache lines),
/// searched by line. Measured against 16 and 64, which were slower.
const INNER_FANOUT: usize = 32;
/// The number of regions from which a set keeps its page index (it drops
/// it again below a quarter of that). Below it the tree is one or two
/// nodes, whose search costs no more than the index's walk, and keeping
/// the index up to date would only slow every edit: by 18–41% for the
/// one-page edits of the kernel's `bench`, measured with the index kept at
/// every size (docs/region-set.md).
pub const PAGE_INDEX_FROM: usize = 64;

/// A set of regions that do not overlap in virtual addresses.
///
/// Physical aliasing (two regions mapping the same physical memory) and
/// adjacency (one region ending where the next starts) are allowed.
#[derive(Clone)]
pub struct RegionSet {
    /// Every region, ordered by start: answers every question.
    by_start: BPlusTree<LEAF_CAPACITY, INNER_FANOUT>,
    /// Which region holds each page: answers `find` in one walk. Kept
    /// from the moment the set holds `index_from` regions until it holds
    /// fewer than a quarter of that; boxed, so that the many small sets
    /// that never keep one stay small.
    by_page: Option<Box<PageIndex>>,
    /// See [`PAGE_INDEX_FROM`].
    index_from: usize,
}

impl RegionSet {
    /// An empty set, which keeps a page index from [`PAGE_INDEX_FROM`] regions.
    pub const fn new() -> Self {
        RegionSet::with_page_index_from(PAGE_INDEX_FROM)
    }

    /// An empty set that keeps a page index once it holds `regions` regions
    /// (0: always; `usize::MAX`: never, every lookup searches the tree).
    /// The answers are the same either way; only their cost differs.
    pub const fn with_page_index_from(regions: usize) -> Self {
        RegionSet { by_start: BPlusTree::new(), by_page: None, index_from: regions }
    }

    /// A set holding `regions`, which must be in address order, each
    /// starting after the one before ends (adjacent is fine): a memory map
    /// known whole at once, such as a kernel's boot identity map. Built
    /// without [`Self::insert`] (the order is checked once, then each
    /// region goes into the tree, and the page index is built if the set is
    /// large enough), so that a kernel's own map does not depend on the
    /// operations the paging lab has students write (`insert`, `find`,
    /// `remove`, `first_overlap`).
    ///
    /// Refused, building nothing, with [`AspaceError::ZeroLength`] /
    /// [`AspaceError::LengthOverflow`] for a region that is empty or wraps,
    /// and with [`AspaceError::Overlap`] naming the region before for one
    /// that does not start after it ends (out of order or overlapping).
    pub fn from_sorted(regions: &[Region]) -> Result<RegionSet, AspaceError> {
        let mut previous: Option<&Region> = None;
        for region in regions {
            check_extent(region.va.0, region.len)?;
            if let Some(before) = previous.filter(|before| region.va.0 <= before.last()) {
                return Err(AspaceError::Overlap { existing: *before });
            }
            previous = Some(region);
        }
        let mut set = RegionSet::new();
        for region in regions {
            let replaced = set.by_start.insert(*region);
            debug_assert!(replaced.is_none(), "the starts were checked to increase");
        }
        set.start_or_stop_the_index();
        Ok(set)
    }

    /// The number of regions.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// True when there are no regions.
    pub fn is_empty(&self) -> bool {
        self.by_start.len() == 0
    }

    /// Adds `region`. Refused with [`AspaceError::Overlap`] (naming the
    /// lowest region it collides with) when it shares a virtual byte with
    /// one, and with [`AspaceError::ZeroLength`] / [`AspaceError::LengthOverflow`]
    /// when it is empty or wraps.
    pub fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        // lab:begin task2 RegionSet::insert: refuse an empty, wrapping or overlapping region, else add it
        let last = check_extent(region.va.0, region.len)?;
        // Only the neighbours can collide: the region before may reach
        // into the new one (and is then the lowest collision), the one
        // after may start by its last byte.
        let (before, after) = self.by_start.neighbours(region.va.0);
        let before = before.filter(|before| before.last() >= region.va.0);
        if let Some(existing) = before.or(after.filter(|after| after.va.0 <= last)) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        self.by_start.insert(region);
        if let Some(index) = &mut self.by_page {
            index.insert(region);
        }
        self.start_or_stop_the_index();
        Ok(())
        // lab:end
    }

    /// The region containing virtual address `va`, if any.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub fn find(&self, va: u64) -> Option<&Region> {
        // lab:begin task2 RegionSet::find: the region containing va, if any
        let Some(index) = &self.by_page else {
            return self.find_in_tree(va);
        };
        match index.find(va) {
            PageLookup::Found(region) => Some(region),
            PageLookup::Absent => None,
            PageLookup::AskTheTree => self.find_in_tree(va),
        }
        // lab:end
    }

    /// [`Self::find`] by searching the tree: while the set keeps no index,
    /// and for the pages a region that starts or ends inside a page shares.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn find_in_tree(&self, va: u64) -> Option<&Region> {
        self.by_start.containing(va)
    }

    /// The region starting exactly at `va`, if any.
    pub fn get(&self, va: VirtAddr) -> Option<&Region> {
        self.by_start.get(va.0)
    }

    /// Removes and returns the region starting exactly at `va`.
    pub fn remove(&mut self, va: VirtAddr) -> Option<Region> {
        // lab:begin task2 RegionSet::remove: remove and return the region starting exactly at va
        let removed = self.by_start.remove(va.0)?;
        if let Some(index) = &mut self.by_page {
            let tree = &self.by_start;
            index.remove(&removed, |first, last| touched(tree, first, last));
        }
        self.start_or_stop_the_index();
        Some(removed)
        // lab:end
    }

    /// Replaces the region that starts exactly at `va` by `pieces`, in one
    /// step, and returns it: how an edit cuts a region into parts or a
    /// stack grows one. The pieces must be in address order, each starting
    /// after the one before ends, and may overlap no region but the one
    /// replaced.
    ///
    /// Refused, changing nothing, with [`AspaceError::NoSuchRegion`] when no
    /// region starts at `va`, [`AspaceError::ZeroLength`] /
    /// [`AspaceError::LengthOverflow`] for a piece that is empty or wraps, and
    /// [`AspaceError::Overlap`] naming the region (or the earlier piece) a
    /// piece collides with or does not come after.
    ///
    /// The same as [`Self::remove`] then [`Self::insert`] of each piece, but
    /// cheaper for the page index when the pieces keep most of the region.
    pub fn replace(&mut self, va: VirtAddr, pieces: &[Region]) -> Result<Region, AspaceError> {
        let Some(&old) = self.by_start.get(va.0) else {
            return Err(AspaceError::NoSuchRegion { va: va.0 });
        };
        for (position, piece) in pieces.iter().enumerate() {
            check_extent(piece.va.0, piece.len)?;
            if let Some(previous) = position.checked_sub(1).map(|before| pieces[before]) {
                if piece.va.0 <= previous.last() {
                    return Err(AspaceError::Overlap { existing: previous });
                }
            }
            // A piece inside the region replaced can collide with no other:
            // only a piece that reaches beyond it needs a search.
            let inside = old.va.0 <= piece.va.0 && piece.last() <= old.last();
            if !inside {
                let mut others = self.overlapping(piece.va.0, piece.len).filter(|other| other.va != old.va);
                if let Some(existing) = others.next() {
                    return Err(AspaceError::Overlap { existing: *existing });
                }
            }
        }
        self.by_start.remove(va.0);
        for piece in pieces {
            self.by_start.insert(*piece);
        }
        if let Some(index) = &mut self.by_page {
            let tree = &self.by_start;
            index.replace(&old, pieces, |first, last| touched(tree, first, last));
        }
        self.start_or_stop_the_index();
        Ok(old)
    }

    /// Replaces the region that starts at `region.va` and has the same
    /// length with `region` (new physical start or protections), and
    /// returns the old region.
    ///
    /// Refused with [`AspaceError::RegionMismatch`] when the region that
    /// contains `region.va` starts elsewhere or has another length, and with
    /// [`AspaceError::NoSuchRegion`] when no region contains `region.va`.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub fn update(&mut self, region: Region) -> Result<Region, AspaceError> {
        let Some(slot) = self.by_start.get_mut(region.va.0) else {
            return Err(match self.find(region.va.0) {
                Some(existing) => AspaceError::RegionMismatch { requested: region, existing: *existing },
                None => AspaceError::NoSuchRegion { va: region.va.0 },
            });
        };
        if slot.len != region.len {
            return Err(AspaceError::RegionMismatch { requested: region, existing: *slot });
        }
        // Same start, so the slot's key stays right.
        let old = core::mem::replace(slot, region);
        if let Some(index) = &mut self.by_page {
            index.update(region);
        }
        Ok(old)
    }

    /// The lowest region sharing a byte with `[va, va+len)`.
    pub fn first_overlap(&self, va: u64, len: u64) -> Option<&Region> {
        // lab:begin task2 RegionSet::first_overlap: the lowest region sharing a byte with [va, va+len)
        self.overlapping(va, len).next()
        // lab:end
    }

    /// Every region sharing a byte with `[va, va+len)`, in address order.
    /// An empty or wrapping range overlaps nothing.
    pub fn overlapping(&self, va: u64, len: u64) -> impl Iterator<Item = &Region> + '_ {
        check_extent(va, len).ok().into_iter().flat_map(move |last| {
            // From the last region starting at or below `va`, which may
            // reach into the range (regions do not overlap: only that one
            // can end before `va`), in one descent.
            self.by_start
                .iter_from_last_at_or_below(va)
                .skip_while(move |r| r.last() < va)
                .take_while(move |r| r.va.0 <= last)
        })
    }

    /// The first region starting at or after `va` (for grow-down stacks:
    /// the region a fault just below would grow).
    pub fn next_at_or_after(&self, va: u64) -> Option<&Region> {
        self.by_start.iter_from(va).next()
    }

    /// The last region starting before `va` and the first starting at or
    /// after it, found in one descent.
    pub fn neighbours(&self, va: u64) -> (Option<&Region>, Option<&Region>) {
        self.by_start.neighbours(va)
    }

    /// The last region starting before `va`.
    pub fn previous_before(&self, va: u64) -> Option<&Region> {
        // Starts are integers: "before va" is "at or below va - 1".
        va.checked_sub(1).and_then(|below| self.by_start.last_at_or_below(below))
    }

    /// Every region, in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Region> + '_ {
        self.by_start.iter()
    }

    /// Removes every region.
    pub fn clear(&mut self) {
        self.by_start = BPlusTree::new();
        self.by_page = None;
    }

    /// Builds the page index when the set has grown to `index_from`
    /// regions, drops it when it has shrunk below a quarter of that: far
    /// enough apart that a set going back and forth does not rebuild it
    /// on every edit.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining");
    // the rare work is in `build_or_drop_the_index`.
    #[inline(always)]
    fn start_or_stop_the_index(&mut self) {
        let len = self.len();
        let indexed = self.by_page.is_some();
        let start = !indexed && len >= self.index_from;
        let stop = indexed && len < self.index_from / 4;
        if start || stop {
            self.build_or_drop_the_index();
        }
    }

    /// Builds the page index if the set keeps none, else drops it.
    fn build_or_drop_the_index(&mut self) {
        if self.by_page.is_some() {
            self.by_page = None;
        } else {
            let mut index = Box::new(PageIndex::new());
            for region in self.by_start.iter() {
                index.insert(*region);
            }
            self.by_page = Some(index);
        }
    }
}

impl Default for RegionSet {
    fn default() -> Self {
        RegionSet::new()
    }
}

/// Two sets are equal when they hold the same regions (however their trees
/// are shaped).
impl PartialEq for RegionSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for RegionSet {}

impl core::fmt::Debug for RegionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// True when a region of `tree` has a byte in `[first, last]`: only the
/// last one starting at or below `last` can.
fn touched(tree: &BPlusTree<LEAF_CAPACITY, INNER_FANOUT>, first: u64, last: u64) -> bool {
    tree.last_at_or_below(last).is_some_and(|r| r.last() >= first)
}

/// The inclusive last byte of `[va, va+len)`, or why there is none.
fn check_extent(va: u64, len: u64) -> Result<u64, AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    va.checked_add(len - 1).ok_or(AspaceError::LengthOverflow { start: va, len, kind: crate::AddressKind::Virtual })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddressKind, Protection};
    use alloc::vec;
    use alloc::vec::Vec;

    const RW: Protection = Protection::READ.union(Protection::WRITE);
    const RX: Protection = Protection::READ.union(Protection::EXEC);
    /// The first byte of the last 4 KiB page of the address space.
    const TOP_PAGE: u64 = 0xffff_ffff_ffff_f000;

    fn region(va: u64, len: u64) -> Region {
        Region::new(va, va, len, RW)
    }

    /// A set holding `[0x1000, 0x2000)`, `[0x3000, 0x5000)` and `[0x5000, 0x6000)`.
    fn three_regions() -> RegionSet {
        let mut set = RegionSet::new();
        for r in [region(0x3000, 0x2000), region(0x1000, 0x1000), region(0x5000, 0x1000)] {
            set.insert(r).unwrap();
        }
        set
    }

    fn starts<'a>(regions: impl Iterator<Item = &'a Region>) -> Vec<u64> {
        regions.map(|r| r.va.0).collect()
    }

    fn overlap_with(existing: Region) -> Result<(), AspaceError> {
        Err(AspaceError::Overlap { existing })
    }

    #[test]
    fn replace_cuts_a_region_into_pieces_found_where_they_are() {
        let mut set = three_regions();
        let old = region(0x3000, 0x2000);
        let pieces = [Region::new(0x3000, 0x3000, 0x1000, Protection::READ), region(0x4000, 0x1000)];
        assert_eq!(set.replace(VirtAddr(0x3000), &pieces), Ok(old));
        assert_eq!(starts(set.iter()), [0x1000, 0x3000, 0x4000, 0x5000]);
        assert_eq!(set.find(0x3fff), Some(&pieces[0]));
        assert_eq!(set.find(0x4000), Some(&pieces[1]));
        // A hole where the pieces leave one.
        assert_eq!(set.replace(VirtAddr(0x4000), &[]), Ok(pieces[1]));
        assert_eq!(set.find(0x4000), None);
    }

    #[test]
    fn replace_grows_a_region_into_free_space_only() {
        let mut set = three_regions();
        let grown = region(0x0, 0x2000);
        assert_eq!(set.replace(VirtAddr(0x1000), &[grown]), Ok(region(0x1000, 0x1000)));
        assert_eq!(set.find(0), Some(&grown));
        // Growing into the next region is refused, naming it.
        let too_far = region(0x3000, 0x3000);
        assert_eq!(
            set.replace(VirtAddr(0x3000), &[too_far]),
            Err(AspaceError::Overlap { existing: region(0x5000, 0x1000) })
        );
    }

    #[test]
    fn a_refused_replace_changes_nothing() {
        let mut set = three_regions();
        let before = set.clone();
        let (low, high) = (region(0x3000, 0x1000), region(0x4000, 0x1000));
        let refusals = [
            (0x2000, vec![low], AspaceError::NoSuchRegion { va: 0x2000 }),
            (0x3000, vec![low, region(0x3800, 0x1000)], AspaceError::Overlap { existing: low }),
            // Out of order: each piece must start after the one before.
            (0x3000, vec![high, low], AspaceError::Overlap { existing: high }),
            (0x3000, vec![low, region(0x4000, 0)], AspaceError::ZeroLength),
            (0x3000, vec![region(0x3000, 0x3000)], AspaceError::Overlap { existing: region(0x5000, 0x1000) }),
        ];
        for (va, pieces, error) in refusals {
            assert_eq!(set.replace(VirtAddr(va), &pieces), Err(error), "{pieces:?}");
            assert_eq!(set, before);
            assert_eq!(set.find(0x3000), Some(&region(0x3000, 0x2000)));
        }
    }

    #[test]
    fn the_page_index_is_built_at_its_threshold_and_dropped_below_a_quarter() {
        let mut set = RegionSet::with_page_index_from(8);
        let regions: Vec<Region> = (0..8).map(|i| region(0x1000 + 0x2000 * i, 0x1000)).collect();
        for r in &regions {
            assert!(set.by_page.is_none(), "indexed at {} regions", set.len());
            set.insert(*r).unwrap();
        }
        assert!(set.by_page.is_some());
        for r in &regions[2..] {
            assert_eq!(set.find(r.va.0), Some(r));
            set.remove(r.va).unwrap();
        }
        // Two regions left: still a quarter of eight, still indexed.
        assert!(set.by_page.is_some());
        set.remove(regions[1].va).unwrap();
        assert!(set.by_page.is_none());
        assert_eq!(set.find(regions[0].va.0 + 0xfff), Some(&regions[0]));
        assert_eq!(set.find(regions[1].va.0), None);
    }

    #[test]
    fn from_sorted_holds_the_regions_as_inserting_them_would() {
        let regions = [region(0x1000, 0x1000), region(0x3000, 0x2000), region(0x5000, 0x1000)];
        let set = RegionSet::from_sorted(&regions).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.iter().eq(regions.iter()));
        assert_eq!(set.get(VirtAddr(0x3000)), Some(&regions[1]));
        assert_eq!(starts(set.overlapping(0x1fff, 0x1002)), [0x1000, 0x3000]);
        assert_eq!(set, three_regions());
        assert_eq!(RegionSet::from_sorted(&[]), Ok(RegionSet::new()));
    }

    #[test]
    fn from_sorted_keeps_a_page_index_from_its_threshold() {
        let many: Vec<Region> = (0..PAGE_INDEX_FROM as u64).map(|i| region(0x1000 + 0x2000 * i, 0x1000)).collect();
        let set = RegionSet::from_sorted(&many).unwrap();
        assert!(set.by_page.is_some());
        assert!(RegionSet::from_sorted(&many[1..]).unwrap().by_page.is_none());
        for r in &many {
            assert_eq!(set.overlapping(r.last(), 1).next(), Some(r));
        }
    }

    #[test]
    fn from_sorted_refuses_disorder_overlap_and_bad_extents() {
        let (low, high) = (region(0x1000, 0x2000), region(0x4000, 0x1000));
        let refusals = [
            (vec![high, low], AspaceError::Overlap { existing: high }),
            (vec![low, region(0x2fff, 0x1000)], AspaceError::Overlap { existing: low }),
            (vec![low, low], AspaceError::Overlap { existing: low }),
            (vec![low, region(0x5000, 0)], AspaceError::ZeroLength),
            (
                vec![low, region(u64::MAX, 2)],
                AspaceError::LengthOverflow { start: u64::MAX, len: 2, kind: AddressKind::Virtual },
            ),
        ];
        for (regions, error) in refusals {
            assert_eq!(RegionSet::from_sorted(&regions), Err(error), "{regions:?}");
        }
        // Adjacent regions are fine.
        assert!(RegionSet::from_sorted(&[low, region(0x3000, 0x1000), high]).is_ok());
    }

    #[test]
    fn empty_set_finds_nothing() {
        let set = RegionSet::new();
        assert!(set.is_empty());
        assert_eq!(set.len(), 0);
        assert_eq!(set.find(0), None);
        assert_eq!(set.find(u64::MAX), None);
        assert_eq!(set.first_overlap(0, u64::MAX), None);
        assert_eq!(set.next_at_or_after(0), None);
        assert_eq!(set.previous_before(u64::MAX), None);
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn iteration_is_in_address_order_whatever_the_insertion_order() {
        let set = three_regions();
        assert_eq!(set.len(), 3);
        assert_eq!(starts(set.iter()), [0x1000, 0x3000, 0x5000]);
    }

    #[test]
    fn adjacent_regions_on_both_sides_are_accepted() {
        let mut set = RegionSet::new();
        set.insert(region(0x2000, 0x1000)).unwrap();
        // Ends exactly where the existing one starts.
        assert_eq!(set.insert(region(0x1000, 0x1000)), Ok(()));
        // Starts exactly where the existing one ends.
        assert_eq!(set.insert(region(0x3000, 0x1000)), Ok(()));
        assert_eq!(starts(set.iter()), [0x1000, 0x2000, 0x3000]);
        // Each boundary byte belongs to exactly one region.
        assert_eq!(set.find(0x1fff).map(|r| r.va.0), Some(0x1000));
        assert_eq!(set.find(0x2000).map(|r| r.va.0), Some(0x2000));
        assert_eq!(set.find(0x2fff).map(|r| r.va.0), Some(0x2000));
        assert_eq!(set.find(0x3000).map(|r| r.va.0), Some(0x3000));
    }

    #[test]
    fn overlap_by_one_byte_at_either_end_is_refused() {
        let mut set = RegionSet::new();
        let existing = region(0x2000, 0x1000);
        set.insert(existing).unwrap();
        // Last byte 0x2000 is the existing region's first byte.
        assert_eq!(set.insert(region(0x1001, 0x1000)), overlap_with(existing));
        // First byte 0x2fff is the existing region's last byte.
        assert_eq!(set.insert(region(0x2fff, 0x1000)), overlap_with(existing));
        // One-byte regions on each boundary byte.
        assert_eq!(set.insert(region(0x2000, 1)), overlap_with(existing));
        assert_eq!(set.insert(region(0x2fff, 1)), overlap_with(existing));
        // One byte further out on each side is free.
        assert_eq!(set.insert(region(0x1fff, 1)), Ok(()));
        assert_eq!(set.insert(region(0x3000, 1)), Ok(()));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn nested_identical_and_covering_regions_are_refused() {
        let mut set = RegionSet::new();
        let existing = region(0x4000, 0x4000);
        set.insert(existing).unwrap();
        // Identical.
        assert_eq!(set.insert(existing), overlap_with(existing));
        // Same extent, different physical start and protections.
        assert_eq!(set.insert(Region::new(0x4000, 0x9000, 0x4000, RX)), overlap_with(existing));
        // Nested strictly inside.
        assert_eq!(set.insert(region(0x5000, 0x1000)), overlap_with(existing));
        // Same start, shorter; same end, later start.
        assert_eq!(set.insert(region(0x4000, 0x1000)), overlap_with(existing));
        assert_eq!(set.insert(region(0x7000, 0x1000)), overlap_with(existing));
        // Covering it with room on both sides.
        assert_eq!(set.insert(region(0x3000, 0x6000)), overlap_with(existing));
        // The whole address space.
        assert_eq!(set.insert(region(0, u64::MAX)), overlap_with(existing));
        // A refused insert changes nothing.
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(VirtAddr(0x4000)), Some(&existing));
    }

    #[test]
    fn overlap_error_names_the_lowest_colliding_region() {
        let mut set = three_regions();
        let lowest = *set.get(VirtAddr(0x1000)).unwrap();
        let middle = *set.get(VirtAddr(0x3000)).unwrap();
        // Collides with all three: the one at 0x1000 is named.
        assert_eq!(set.insert(region(0, 0x10000)), overlap_with(lowest));
        // Starts inside the middle region and runs into the last one.
        assert_eq!(set.insert(region(0x4fff, 0x2000)), overlap_with(middle));
        // Starts in the gap and runs into the middle and the last one.
        assert_eq!(set.insert(region(0x2000, 0x3001)), overlap_with(middle));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn zero_length_is_refused() {
        let mut set = RegionSet::new();
        assert_eq!(set.insert(region(0x1000, 0)), Err(AspaceError::ZeroLength));
        assert_eq!(set.insert(region(u64::MAX, 0)), Err(AspaceError::ZeroLength));
        assert!(set.is_empty());
        // An empty range overlaps nothing, even inside a region.
        set.insert(region(0x1000, 0x1000)).unwrap();
        assert_eq!(set.first_overlap(0x1800, 0), None);
        assert_eq!(set.overlapping(0x1800, 0).count(), 0);
    }

    #[test]
    fn a_region_ending_at_the_top_of_the_address_space_is_accepted_and_found() {
        let mut set = RegionSet::new();
        let top = region(TOP_PAGE, 0x1000);
        assert_eq!(top.last(), u64::MAX);
        assert_eq!(set.insert(top), Ok(()));
        assert_eq!(set.find(u64::MAX), Some(&top));
        assert_eq!(set.find(TOP_PAGE), Some(&top));
        assert_eq!(set.find(TOP_PAGE - 1), None);
        assert_eq!(set.first_overlap(u64::MAX, 1), Some(&top));
        assert_eq!(set.next_at_or_after(TOP_PAGE), Some(&top));
        assert_eq!(set.previous_before(u64::MAX), Some(&top));
        // The single last byte, on its own, collides with it.
        assert_eq!(set.insert(region(u64::MAX, 1)), overlap_with(top));
        // The page below is adjacent, and the two are told apart.
        let below = region(TOP_PAGE - 0x1000, 0x1000);
        assert_eq!(set.insert(below), Ok(()));
        assert_eq!(set.find(TOP_PAGE - 1), Some(&below));
        assert_eq!(set.find(u64::MAX), Some(&top));
        // The whole upper half, which ends at 2^64 too.
        let mut other = RegionSet::new();
        let upper_half = region(1 << 63, 1 << 63);
        assert_eq!(other.insert(upper_half), Ok(()));
        assert_eq!(other.find(u64::MAX), Some(&upper_half));
        assert_eq!(other.find((1 << 63) - 1), None);
        // The longest length there is, starting at 1, ends exactly at 2^64 too.
        let mut longest = RegionSet::new();
        assert_eq!(longest.insert(region(1, u64::MAX)), Ok(()));
        assert_eq!(longest.find(u64::MAX).map(|r| r.va.0), Some(1));
        assert_eq!(longest.find(0), None);
    }

    #[test]
    fn a_range_that_wraps_is_refused_with_length_overflow() {
        let mut set = RegionSet::new();
        // One byte too long to end at 2^64.
        assert_eq!(
            set.insert(region(TOP_PAGE, 0x1001)),
            Err(AspaceError::LengthOverflow { start: TOP_PAGE, len: 0x1001, kind: AddressKind::Virtual })
        );
        assert_eq!(
            set.insert(region(u64::MAX, 2)),
            Err(AspaceError::LengthOverflow { start: u64::MAX, len: 2, kind: AddressKind::Virtual })
        );
        assert_eq!(
            set.insert(region(2, u64::MAX)),
            Err(AspaceError::LengthOverflow { start: 2, len: u64::MAX, kind: AddressKind::Virtual })
        );
        assert!(set.is_empty());
        // The largest range that fits does not wrap.
        assert_eq!(set.insert(region(0, u64::MAX)), Ok(()));
        assert_eq!(set.find(u64::MAX - 1).map(|r| r.va.0), Some(0));
        assert_eq!(set.find(u64::MAX), None);
        // A wrapping range overlaps nothing rather than something at the bottom.
        assert_eq!(set.first_overlap(u64::MAX, 2), None);
    }

    #[test]
    fn lookups_at_first_and_last_byte_and_one_past_each_end() {
        let set = three_regions();
        let middle = *set.get(VirtAddr(0x3000)).unwrap();
        assert_eq!(set.find(0x2fff), None, "one before the first byte (a gap)");
        assert_eq!(set.find(0x3000), Some(&middle), "first byte");
        assert_eq!(set.find(0x4000), Some(&middle), "an inner byte");
        assert_eq!(set.find(0x4fff), Some(&middle), "last byte");
        assert_ne!(set.find(0x5000), Some(&middle), "one past the last byte belongs to the next region");
        assert_eq!(set.find(0x6000), None, "one past the end of the last region");
        assert_eq!(set.find(0x0fff), None, "one before the lowest region");
        assert_eq!(set.find(0), None);
    }

    #[test]
    fn get_finds_only_exact_starts() {
        let set = three_regions();
        assert_eq!(set.get(VirtAddr(0x3000)).map(|r| r.len), Some(0x2000));
        assert_eq!(set.get(VirtAddr(0x3001)), None);
        assert_eq!(set.get(VirtAddr(0x2fff)), None);
    }

    #[test]
    fn update_replaces_physical_start_and_protections_of_the_same_extent() {
        let mut set = three_regions();
        let old = *set.get(VirtAddr(0x3000)).unwrap();
        let moved = Region::new(0x3000, 0x8_0000, 0x2000, RX);
        assert_eq!(set.update(moved), Ok(old));
        assert_eq!(set.find(0x4fff), Some(&moved));
        assert_eq!(set.find(0x4fff).unwrap().translate(0x4fff).0, 0x8_1fff);
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn update_with_another_length_or_start_is_refused() {
        let mut set = three_regions();
        let existing = *set.get(VirtAddr(0x3000)).unwrap();
        let mismatch = |requested| Err(AspaceError::RegionMismatch { requested, existing });
        let shorter = Region::new(0x3000, 0, 0x1000, RW);
        assert_eq!(set.update(shorter), mismatch(shorter));
        let longer = Region::new(0x3000, 0, 0x3000, RW);
        assert_eq!(set.update(longer), mismatch(longer));
        // Starts inside the region rather than at its start.
        let inside = Region::new(0x4000, 0, 0x1000, RW);
        assert_eq!(set.update(inside), mismatch(inside));
        // Nothing there at all.
        assert_eq!(set.update(region(0x2000, 0x1000)), Err(AspaceError::NoSuchRegion { va: 0x2000 }));
        assert_eq!(set.update(region(0x9000, 0x1000)), Err(AspaceError::NoSuchRegion { va: 0x9000 }));
        // Nothing changed.
        assert_eq!(set, three_regions());
    }

    #[test]
    fn remove_takes_only_the_region_at_that_exact_start() {
        let mut set = three_regions();
        assert_eq!(set.remove(VirtAddr(0x3001)), None);
        assert_eq!(set.remove(VirtAddr(0x2000)), None);
        assert_eq!(set.len(), 3);
        let removed = set.remove(VirtAddr(0x3000)).unwrap();
        assert_eq!((removed.va.0, removed.len), (0x3000, 0x2000));
        assert_eq!(set.find(0x3000), None);
        assert_eq!(set.find(0x4fff), None);
        assert_eq!(starts(set.iter()), [0x1000, 0x5000]);
        assert_eq!(set.remove(VirtAddr(0x3000)), None, "removed only once");
        // The hole can be refilled, here with a region that touches both neighbours.
        assert_eq!(set.insert(region(0x2000, 0x3000)), Ok(()));
        assert_eq!(starts(set.iter()), [0x1000, 0x2000, 0x5000]);
    }

    #[test]
    fn overlapping_returns_every_colliding_region_in_order() {
        let set = three_regions();
        // Starts inside the first region: that region is included.
        assert_eq!(starts(set.overlapping(0x1fff, 0x1002)), [0x1000, 0x3000]);
        // Covers everything.
        assert_eq!(starts(set.overlapping(0, u64::MAX)), [0x1000, 0x3000, 0x5000]);
        // Exactly one region, ends at the next one's first byte - 1.
        assert_eq!(starts(set.overlapping(0x3000, 0x2000)), [0x3000]);
        // One more byte reaches the adjacent region.
        assert_eq!(starts(set.overlapping(0x3000, 0x2001)), [0x3000, 0x5000]);
        // Inside a gap, touching both sides.
        assert_eq!(starts(set.overlapping(0x2000, 0x1000)), Vec::<u64>::new());
        // Beyond the last region.
        assert_eq!(starts(set.overlapping(0x6000, 0x1000)), Vec::<u64>::new());
        // The last byte of a region alone.
        assert_eq!(starts(set.overlapping(0x4fff, 1)), [0x3000]);
        // first_overlap agrees with the first of them.
        assert_eq!(set.first_overlap(0x1fff, 0x1002).map(|r| r.va.0), Some(0x1000));
        assert_eq!(set.first_overlap(0x2000, 0x1000), None);
    }

    #[test]
    fn neighbours_of_an_address() {
        let set = three_regions();
        assert_eq!(set.next_at_or_after(0x3000).map(|r| r.va.0), Some(0x3000));
        assert_eq!(set.next_at_or_after(0x3001).map(|r| r.va.0), Some(0x5000));
        assert_eq!(set.next_at_or_after(0x5001), None);
        assert_eq!(set.previous_before(0x3000).map(|r| r.va.0), Some(0x1000));
        assert_eq!(set.previous_before(0x3001).map(|r| r.va.0), Some(0x3000));
        assert_eq!(set.previous_before(0x1000), None);
        let starts =
            |(below, above): (Option<&Region>, Option<&Region>)| (below.map(|r| r.va.0), above.map(|r| r.va.0));
        assert_eq!(starts(set.neighbours(0x3000)), (Some(0x1000), Some(0x3000)));
        assert_eq!(starts(set.neighbours(0x3001)), (Some(0x3000), Some(0x5000)));
        assert_eq!(starts(set.neighbours(0x1000)), (None, Some(0x1000)));
        assert_eq!(starts(set.neighbours(0x5001)), (Some(0x5000), None));
    }

    #[test]
    fn physical_aliasing_is_allowed() {
        let mut set = RegionSet::new();
        let low = Region::new(0, 0, 1 << 32, RW);
        let alias = Region::new(1 << 32, 0, 1 << 32, RW);
        let partial_alias = Region::new(0xffff_8000_0000_0000, 0x1000, 0x1000, RX);
        assert_eq!(set.insert(low), Ok(()));
        assert_eq!(set.insert(alias), Ok(()));
        assert_eq!(set.insert(partial_alias), Ok(()));
        assert_eq!(set.find(0x1234).unwrap().translate(0x1234).0, 0x1234);
        assert_eq!(set.find((1 << 32) + 0x1234).unwrap().translate((1 << 32) + 0x1234).0, 0x1234);
        assert_eq!(set.find(0xffff_8000_0000_0234).unwrap().translate(0xffff_8000_0000_0234).0, 0x1234);
    }

    #[test]
    fn clear_empties_the_set() {
        let mut set = three_regions();
        set.clear();
        assert!(set.is_empty());
        assert_eq!(set.find(0x1000), None);
        assert_eq!(set.insert(region(0x1000, 0x1000)), Ok(()));
    }

    #[test]
    fn debug_lists_the_regions_in_order() {
        let text = alloc::format!("{:?}", three_regions());
        let first = text.find("0x0000000000001000").unwrap();
        let second = text.find("0x0000000000003000").unwrap();
        let third = text.find("0x0000000000005000").unwrap();
        assert!(first < second && second < third, "{text}");
    }
}
