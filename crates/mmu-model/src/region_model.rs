//! The regions an address space must hold after each edit, as a plain
//! sorted list: the reference that the model-based tests of `paging` and the
//! `paging_model` fuzz target hold the real address space to.
//!
//! It is written apart from the implementation on purpose. Interval
//! arithmetic is done in `u128` (a region may end at 2^64), the lookups are
//! linear scans, and the rules are restated here rather than called: which
//! flags contradict each other, which part of a region an edit names, what
//! a part left over keeps. Code shared with `aspace` or `paging` would agree
//! with them by construction and prove nothing.
//!
//! The rules, those of the `paging` implementation (docs/DESIGN.md):
//! - `add` refuses contradicting flags and any overlap, naming the lowest
//!   region it collides with;
//! - `remove`, `move_to` and `protect` take a *part*: a range inside one
//!   region, named with the physical address that region maps its start to
//!   (0 for anonymous memory). The part is cut out of the region, and what
//!   is left on either side stays as it was;
//! - pinned regions are neither removed nor moved, anonymous ones are not
//!   moved, and `protect` may change the rights but not the kind (anonymous,
//!   growing) of a region.

use aspace::{AspaceError, Protection, Region};

/// An address space's regions as the model sees them, sorted by start.
#[derive(Clone, Debug, Default)]
pub struct RegionModel {
    regions: Vec<Region>,
}

/// One past the last byte of `region`.
fn end(region: &Region) -> u128 {
    u128::from(region.va.0) + u128::from(region.len)
}

/// The refusal for flags that contradict each other: unknown bits, write or
/// execute without read (x86-64 cannot map that), growing both ways, or
/// growing without being anonymous. The reason is left empty: callers
/// compare refusals by kind and flags, not by wording.
fn contradiction(prot: Protection) -> Option<AspaceError> {
    let unknown = prot.bits() & !Protection::all().bits() != 0;
    let unreadable = prot.intersects(Protection::WRITE | Protection::EXEC) && !prot.contains(Protection::READ);
    let both_ways = prot.contains(Protection::GROW_DOWN | Protection::GROW_UP);
    let grows = prot.intersects(Protection::GROW_DOWN | Protection::GROW_UP);
    let grows_without_anon = grows && !prot.contains(Protection::ANON);
    (unknown || unreadable || both_ways || grows_without_anon)
        .then_some(AspaceError::InvalidFlags { flags: prot.bits(), reason: "" })
}

/// The part `[va, va + len)` of `region`: the same linear offset (physical
/// address 0 for anonymous memory) and the same flags.
fn part_of(region: &Region, va: u64, len: u64) -> Region {
    let anonymous = region.prot.contains(Protection::ANON);
    let pa = if anonymous { 0 } else { region.pa.0.wrapping_add(va - region.va.0) };
    Region::new(va, pa, len, region.prot)
}

impl RegionModel {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }

    /// The regions, sorted by start.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region holding `va`.
    pub fn find(&self, va: u64) -> Option<Region> {
        self.regions.iter().copied().find(|r| u128::from(r.va.0) <= u128::from(va) && u128::from(va) < end(r))
    }

    /// Adds `region`, or refuses contradicting flags or an overlap (naming
    /// the lowest region overlapped).
    pub fn add(&mut self, region: Region) -> Result<(), AspaceError> {
        if let Some(refusal) = contradiction(region.prot) {
            return Err(refusal);
        }
        let (start, stop) = (u128::from(region.va.0), end(&region));
        if let Some(existing) = self.regions.iter().find(|r| u128::from(r.va.0) < stop && start < end(r)) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        self.regions.push(region);
        self.regions.sort_by_key(|r| r.va.0);
        Ok(())
    }

    /// The region that `part` names: the one holding its start, if it holds
    /// all of it and maps its start to `part.pa` (0 for anonymous memory).
    pub fn resolve(&self, part: Region) -> Result<Region, AspaceError> {
        let existing = self.find(part.va.0).ok_or(AspaceError::NoSuchRegion { va: part.va.0 })?;
        let inside = end(&part) <= end(&existing);
        let same_memory = part.pa == part_of(&existing, part.va.0, 1).pa;
        if inside && same_memory {
            Ok(existing)
        } else {
            Err(AspaceError::RegionMismatch { requested: part, existing })
        }
    }

    /// Removes `part` (a region or a part of one), unless it is pinned.
    pub fn remove(&mut self, part: Region) -> Result<(), AspaceError> {
        let existing = self.resolve(part)?;
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        self.cut(existing, part, None);
        Ok(())
    }

    /// Maps `part` to physical memory from `new_pa` on, unless its region is
    /// anonymous (the space owns that memory) or pinned.
    pub fn move_to(&mut self, part: Region, new_pa: u64) -> Result<(), AspaceError> {
        let existing = self.resolve(part)?;
        if existing.prot.contains(Protection::ANON) {
            return Err(AspaceError::Unsupported { implementation: "paging", operation: "" });
        }
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        self.cut(existing, part, Some(Region::new(part.va.0, new_pa, part.len, existing.prot)));
        Ok(())
    }

    /// Gives `part` the flags `prot`, which must not contradict each other
    /// nor change the region's kind.
    pub fn protect(&mut self, part: Region, prot: Protection) -> Result<(), AspaceError> {
        let existing = self.resolve(part)?;
        if let Some(refusal) = contradiction(prot) {
            return Err(refusal);
        }
        if prot.kind() != existing.prot.kind() {
            return Err(AspaceError::InvalidFlags { flags: prot.bits(), reason: "" });
        }
        let protected = Region { prot, ..part_of(&existing, part.va.0, part.len) };
        self.cut(existing, part, Some(protected));
        Ok(())
    }

    /// Puts the pieces of `existing` before and after `part`, and
    /// `replacement`, in its place.
    fn cut(&mut self, existing: Region, part: Region, replacement: Option<Region>) {
        self.regions.retain(|r| r.va != existing.va);
        let before = part.va.0 - existing.va.0;
        let after = (end(&existing) - end(&part)) as u64;
        if before > 0 {
            self.regions.push(part_of(&existing, existing.va.0, before));
        }
        if after > 0 {
            self.regions.push(part_of(&existing, part.va.0 + part.len, after));
        }
        self.regions.extend(replacement);
        self.regions.sort_by_key(|r| r.va.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: Protection = Protection::READ.union(Protection::WRITE);

    #[test]
    fn a_part_cut_from_the_middle_leaves_both_sides_as_they_were() {
        let mut model = RegionModel::new();
        model.add(Region::new(0x10000, 0x90000, 0x4000, RW)).unwrap();
        model.protect(Region::new(0x11000, 0x91000, 0x1000, Protection::READ), Protection::READ).unwrap();
        assert_eq!(
            model.regions(),
            [
                Region::new(0x10000, 0x90000, 0x1000, RW),
                Region::new(0x11000, 0x91000, 0x1000, Protection::READ),
                Region::new(0x12000, 0x92000, 0x2000, RW),
            ]
        );
    }

    #[test]
    fn a_part_named_with_the_wrong_memory_is_refused_and_changes_nothing() {
        let mut model = RegionModel::new();
        let region = Region::new(0x10000, 0x90000, 0x4000, RW);
        model.add(region).unwrap();
        let wrong = Region::new(0x11000, 0x90000, 0x1000, RW);
        assert_eq!(model.remove(wrong), Err(AspaceError::RegionMismatch { requested: wrong, existing: region }));
        assert_eq!(model.regions(), [region]);
    }

    #[test]
    fn overlaps_name_the_lowest_region_and_touching_is_fine() {
        let mut model = RegionModel::new();
        let low = Region::new(0x10000, 0, 0x1000, RW);
        let high = Region::new(0x12000, 0, 0x1000, RW);
        model.add(high).unwrap();
        model.add(low).unwrap();
        let across = Region::new(0x10000, 0, 0x3000, RW);
        assert_eq!(model.add(across), Err(AspaceError::Overlap { existing: low }));
        model.add(Region::new(0x11000, 0, 0x1000, RW)).unwrap();
        assert_eq!(model.regions().len(), 3);
    }

    #[test]
    fn a_region_may_end_at_the_top_of_the_address_space() {
        let mut model = RegionModel::new();
        let top = Region::new(0u64.wrapping_sub(0x2000), 0, 0x2000, RW);
        model.add(top).unwrap();
        assert_eq!(model.find(u64::MAX), Some(top));
        model.remove(Region::new(0u64.wrapping_sub(0x1000), 0x1000, 0x1000, RW)).unwrap();
        assert_eq!(model.regions(), [Region::new(0u64.wrapping_sub(0x2000), 0, 0x1000, RW)]);
    }

    #[test]
    fn contradicting_flags_and_kind_changes_are_refused() {
        let mut model = RegionModel::new();
        assert!(matches!(
            model.add(Region::new(0, 0, 0x1000, Protection::WRITE)),
            Err(AspaceError::InvalidFlags { .. })
        ));
        let anon = Region::anonymous(0x10000, 0x1000, RW);
        model.add(anon).unwrap();
        assert!(matches!(model.protect(anon, RW), Err(AspaceError::InvalidFlags { .. })));
        assert!(matches!(model.move_to(anon, 0x5000), Err(AspaceError::Unsupported { .. })));
        model.protect(anon, Protection::READ | Protection::ANON).unwrap();
    }
}
