//! The region set against a naive list of regions.
//!
//! Addresses and lengths come mostly from a small window of pages, so that
//! overlaps, adjacency and exact starts are common, and now and then from the
//! edges of the 64-bit space (zero lengths, ranges ending at 2^64 or wrapping
//! past it), where the set's inclusive arithmetic must hold.

use crate::input::ByteReader;
use aspace::region_set::PAGE_INDEX_FROM;
use aspace::{AddressKind, AspaceError, Protection, Region, RegionSet, VirtAddr};

const PAGE: u64 = 0x1000;
/// The first byte of the last 4 KiB page of the address space.
const TOP_PAGE: u64 = u64::MAX - (PAGE - 1);
/// How many pages the usual window holds.
const WINDOW_PAGES: u64 = 64;
/// At most this many operations per input: long inputs do not make slow runs.
const MAX_STEPS: usize = 256;

/// The model: regions in a plain list, end computed in `u128` so that no
/// arithmetic is shared with the set.
#[derive(Default)]
struct NaiveSet {
    regions: Vec<Region>,
}

fn end(va: u64, len: u64) -> u128 {
    u128::from(va) + u128::from(len)
}

fn shares_a_byte(region: &Region, va: u64, len: u64) -> bool {
    u128::from(region.va.0) < end(va, len) && u128::from(va) < end(region.va.0, region.len)
}

impl NaiveSet {
    fn sorted(&self) -> Vec<Region> {
        let mut regions = self.regions.clone();
        regions.sort_by_key(|r| r.va.0);
        regions
    }

    fn extent_error(va: u64, len: u64) -> Option<AspaceError> {
        if len == 0 {
            Some(AspaceError::ZeroLength)
        } else if end(va, len) > 1 << 64 {
            Some(AspaceError::LengthOverflow { start: va, len, kind: AddressKind::Virtual })
        } else {
            None
        }
    }

    fn overlapping(&self, va: u64, len: u64) -> Vec<Region> {
        if Self::extent_error(va, len).is_some() {
            return Vec::new();
        }
        self.sorted().into_iter().filter(|r| shares_a_byte(r, va, len)).collect()
    }

    fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        if let Some(error) = Self::extent_error(region.va.0, region.len) {
            return Err(error);
        }
        if let Some(lowest) = self.overlapping(region.va.0, region.len).first() {
            return Err(AspaceError::Overlap { existing: *lowest });
        }
        self.regions.push(region);
        Ok(())
    }

    fn find(&self, va: u64) -> Option<Region> {
        self.regions
            .iter()
            .copied()
            .find(|r| u128::from(r.va.0) <= u128::from(va) && u128::from(va) < end(r.va.0, r.len))
    }

    fn remove(&mut self, va: u64) -> Option<Region> {
        let at = self.regions.iter().position(|r| r.va.0 == va)?;
        Some(self.regions.swap_remove(at))
    }

    fn update(&mut self, region: Region) -> Result<Region, AspaceError> {
        match self.regions.iter_mut().find(|r| r.va == region.va) {
            Some(slot) if slot.len == region.len => Ok(core::mem::replace(slot, region)),
            Some(slot) => Err(AspaceError::RegionMismatch { requested: region, existing: *slot }),
            None => Err(match self.find(region.va.0) {
                Some(existing) => AspaceError::RegionMismatch { requested: region, existing },
                None => AspaceError::NoSuchRegion { va: region.va.0 },
            }),
        }
    }
}

fn address(input: &mut ByteReader) -> u64 {
    match input.byte() % 16 {
        0 => TOP_PAGE - input.below(4) * PAGE,
        1 => u64::MAX - input.below(4),
        2 => input.u64(),
        3 => input.below(WINDOW_PAGES) * PAGE + input.below(PAGE),
        _ => input.below(WINDOW_PAGES) * PAGE,
    }
}

fn length(input: &mut ByteReader) -> u64 {
    match input.byte() % 16 {
        0 => 0,
        1 => u64::MAX - input.below(2),
        2 => 1 << 63,
        3 => input.u64(),
        4 => 1 + input.below(PAGE),
        _ => (1 + input.below(8)) * PAGE,
    }
}

fn protection(input: &mut ByteReader) -> Protection {
    Protection::from_bits_retain(u32::from(input.byte() & 0x7f))
}

/// Decodes `data` into operations on a [`RegionSet`] and a naive model and
/// panics at the first answer on which they differ.
pub fn region_set(data: &[u8]) {
    let mut input = ByteReader::new(data);
    // From how many regions the set keeps its page index: from the first,
    // after a few (so it is built and dropped during a run), the default, never.
    let index_from = match input.byte() % 4 {
        0 => 0,
        1 => usize::from(input.byte() % 16),
        2 => PAGE_INDEX_FROM,
        _ => usize::MAX,
    };
    let mut set = RegionSet::with_page_index_from(index_from);
    let mut model = NaiveSet::default();
    for step in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let op = input.byte() % 8;
        // Half the edits name a region that is there, so that removes and
        // updates find something.
        let existing = model.sorted().get(usize::from(input.byte())).copied();
        let va = match existing {
            Some(region) if op < 3 && input.one_in(2) => region.va.0,
            _ => address(&mut input),
        };
        match op {
            0 | 1 => {
                let region = Region::new(va, input.u64(), length(&mut input), protection(&mut input));
                assert_eq!(set.insert(region), model.insert(region), "step {step}: insert {region:?}");
            }
            2 => {
                assert_eq!(set.remove(VirtAddr(va)), model.remove(va), "step {step}: remove at {va:#x}");
            }
            3 => {
                let len = match existing {
                    Some(region) if input.one_in(2) => region.len,
                    _ => length(&mut input),
                };
                let region = Region::new(va, input.u64(), len, protection(&mut input));
                assert_eq!(set.update(region), model.update(region), "step {step}: update {region:?}");
            }
            4 => {
                assert_eq!(set.find(va).copied(), model.find(va), "step {step}: find {va:#x}");
                assert_eq!(set.get(VirtAddr(va)).copied(), model.regions.iter().copied().find(|r| r.va.0 == va));
            }
            5 | 6 => {
                let len = length(&mut input);
                let found: Vec<Region> = set.overlapping(va, len).copied().collect();
                assert_eq!(found, model.overlapping(va, len), "step {step}: overlapping {va:#x} +{len:#x}");
                assert_eq!(set.first_overlap(va, len).copied(), found.first().copied());
            }
            _ => {
                let sorted = model.sorted();
                let next = sorted.iter().copied().find(|r| r.va.0 >= va);
                let previous = sorted.iter().rev().copied().find(|r| r.va.0 < va);
                assert_eq!(set.next_at_or_after(va).copied(), next, "step {step}: next at or after {va:#x}");
                assert_eq!(set.previous_before(va).copied(), previous, "step {step}: previous before {va:#x}");
            }
        }
        assert_eq!(set.len(), model.regions.len(), "step {step}: count");
        assert!(set.iter().copied().eq(model.sorted()), "step {step}: contents\n{set:?}\n{:?}", model.sorted());
    }
}
