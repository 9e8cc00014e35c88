//! The reference region set shared by the region-set tests: regions in a
//! vector, ends in `u128`, linear scans. Every answer and error of
//! `RegionSet` is compared with it.
#![allow(dead_code)]

use aspace::{AddressKind, AspaceError, Region};

/// The reference implementation: regions in insertion order, linear scans.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The regions, in insertion order.
    pub regions: Vec<Region>,
}

/// The half-open extent `[start, end)` of `va`/`len`, exact in `u128`.
pub fn extent(va: u64, len: u64) -> (u128, u128) {
    (u128::from(va), u128::from(va) + u128::from(len))
}

/// True when two half-open extents share a byte.
pub fn extents_overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The top of the 64-bit address space, one past the last byte.
pub const TOP: u128 = 1 << 64;

impl Model {
    pub fn sorted(&self) -> Vec<Region> {
        let mut regions = self.regions.clone();
        regions.sort_by_key(|r| r.va.0);
        regions
    }

    pub fn check_range(va: u64, len: u64) -> Result<(), AspaceError> {
        if len == 0 {
            return Err(AspaceError::ZeroLength);
        }
        if extent(va, len).1 > TOP {
            return Err(AspaceError::LengthOverflow { start: va, len, kind: AddressKind::Virtual });
        }
        Ok(())
    }

    pub fn overlapping(&self, va: u64, len: u64) -> Vec<Region> {
        if Model::check_range(va, len).is_err() {
            return Vec::new();
        }
        self.sorted().into_iter().filter(|r| extents_overlap(extent(r.va.0, r.len), extent(va, len))).collect()
    }

    pub fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        Model::check_range(region.va.0, region.len)?;
        if let Some(&existing) = self.overlapping(region.va.0, region.len).first() {
            return Err(AspaceError::Overlap { existing });
        }
        self.regions.push(region);
        Ok(())
    }

    pub fn find(&self, va: u64) -> Option<Region> {
        let at = u128::from(va);
        self.regions.iter().copied().find(|r| {
            let (start, end) = extent(r.va.0, r.len);
            start <= at && at < end
        })
    }

    pub fn get(&self, va: u64) -> Option<Region> {
        self.regions.iter().copied().find(|r| r.va.0 == va)
    }

    pub fn remove(&mut self, va: u64) -> Option<Region> {
        let position = self.regions.iter().position(|r| r.va.0 == va)?;
        Some(self.regions.swap_remove(position))
    }

    pub fn update(&mut self, region: Region) -> Result<Region, AspaceError> {
        let Some(position) = self.regions.iter().position(|r| r.va.0 == region.va.0) else {
            return Err(match self.find(region.va.0) {
                Some(existing) => AspaceError::RegionMismatch { requested: region, existing },
                None => AspaceError::NoSuchRegion { va: region.va.0 },
            });
        };
        let existing = self.regions[position];
        if existing.len != region.len {
            return Err(AspaceError::RegionMismatch { requested: region, existing });
        }
        self.regions[position] = region;
        Ok(existing)
    }

    pub fn replace(&mut self, va: u64, pieces: &[Region]) -> Result<Region, AspaceError> {
        let old = self.get(va).ok_or(AspaceError::NoSuchRegion { va })?;
        let others: Vec<Region> = self.sorted().into_iter().filter(|r| r.va.0 != va).collect();
        for (position, piece) in pieces.iter().enumerate() {
            Model::check_range(piece.va.0, piece.len)?;
            if position > 0 {
                let previous = pieces[position - 1];
                // Each piece must start past the previous one's end.
                if u128::from(piece.va.0) < extent(previous.va.0, previous.len).1 {
                    return Err(AspaceError::Overlap { existing: previous });
                }
            }
            let piece_extent = extent(piece.va.0, piece.len);
            if let Some(&existing) = others.iter().find(|r| extents_overlap(extent(r.va.0, r.len), piece_extent)) {
                return Err(AspaceError::Overlap { existing });
            }
        }
        self.remove(va);
        self.regions.extend_from_slice(pieces);
        Ok(old)
    }

    pub fn next_at_or_after(&self, va: u64) -> Option<Region> {
        self.regions.iter().copied().filter(|r| r.va.0 >= va).min_by_key(|r| r.va.0)
    }

    pub fn previous_before(&self, va: u64) -> Option<Region> {
        self.regions.iter().copied().filter(|r| r.va.0 < va).max_by_key(|r| r.va.0)
    }
}
