//! The memory map: a set of non-overlapping regions, ordered by virtual start.
//!
//! Stored in a B-tree keyed by each region's first virtual byte. Because the
//! regions never overlap, the only region that can contain an address `va`
//! is the one with the greatest start `<= va`: one ordered search finds it.
//! Every operation is O(log n); iteration is in address order.

use crate::{AspaceError, Region, VirtAddr};
use alloc::collections::BTreeMap;

/// A set of regions that do not overlap in virtual addresses.
///
/// Physical aliasing (two regions mapping the same physical memory) and
/// adjacency (one region ending where the next starts) are allowed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegionSet {
    by_start: BTreeMap<u64, Region>,
}

impl RegionSet {
    /// An empty set.
    pub const fn new() -> Self {
        RegionSet { by_start: BTreeMap::new() }
    }

    /// The number of regions.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// True when there are no regions.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// Adds `region`. Refused with [`AspaceError::Overlap`] (naming the
    /// lowest region it collides with) when it shares a virtual byte with
    /// one, and with [`AspaceError::ZeroLength`] / [`AspaceError::LengthOverflow`]
    /// when it is empty or wraps.
    pub fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        check_extent(region.va.0, region.len)?;
        if let Some(existing) = self.first_overlap(region.va.0, region.len) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        self.by_start.insert(region.va.0, region);
        Ok(())
    }

    /// The region containing virtual address `va`, if any.
    pub fn find(&self, va: u64) -> Option<&Region> {
        self.by_start.range(..=va).next_back().map(|(_, r)| r).filter(|r| r.contains(va))
    }

    /// The region starting exactly at `va`, if any.
    pub fn get(&self, va: VirtAddr) -> Option<&Region> {
        self.by_start.get(&va.0)
    }

    /// Removes and returns the region starting exactly at `va`.
    pub fn remove(&mut self, va: VirtAddr) -> Option<Region> {
        self.by_start.remove(&va.0)
    }

    /// Replaces the region that starts at `region.va` and has the same
    /// length with `region` (new physical start or protections).
    /// Refused with [`AspaceError::NoSuchRegion`] or
    /// [`AspaceError::RegionMismatch`]; returns the old region.
    pub fn update(&mut self, region: Region) -> Result<Region, AspaceError> {
        let slot = self.by_start.get_mut(&region.va.0).ok_or(AspaceError::NoSuchRegion { va: region.va.0 })?;
        if slot.len != region.len {
            return Err(AspaceError::RegionMismatch { requested: region, existing: *slot });
        }
        Ok(core::mem::replace(slot, region))
    }

    /// The lowest region sharing a byte with `[va, va+len)`.
    pub fn first_overlap(&self, va: u64, len: u64) -> Option<&Region> {
        self.overlapping(va, len).next()
    }

    /// Every region sharing a byte with `[va, va+len)`, in address order.
    /// An empty or wrapping range overlaps nothing.
    pub fn overlapping(&self, va: u64, len: u64) -> impl Iterator<Item = &Region> + '_ {
        check_extent(va, len).ok().into_iter().flat_map(move |last| {
            // The region just before `va` may reach into the range.
            let from = self.previous_before(va).filter(|r| r.last() >= va).map_or(va, |r| r.va.0);
            self.by_start.range(from..).map(|(_, r)| r).take_while(move |r| r.va.0 <= last)
        })
    }

    /// The first region starting at or after `va` (for grow-down stacks:
    /// the region a fault just below would grow).
    pub fn next_at_or_after(&self, va: u64) -> Option<&Region> {
        self.by_start.range(va..).next().map(|(_, r)| r)
    }

    /// The last region starting before `va`.
    pub fn previous_before(&self, va: u64) -> Option<&Region> {
        self.by_start.range(..va).next_back().map(|(_, r)| r)
    }

    /// Every region, in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Region> + '_ {
        self.by_start.values()
    }

    /// Removes every region.
    pub fn clear(&mut self) {
        self.by_start.clear();
    }
}

impl core::fmt::Debug for RegionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The inclusive last byte of `[va, va+len)`, or why there is none.
fn check_extent(va: u64, len: u64) -> Result<u64, AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    va.checked_add(len - 1).ok_or(AspaceError::LengthOverflow { start: va, len, kind: crate::AddressKind::Virtual })
}
