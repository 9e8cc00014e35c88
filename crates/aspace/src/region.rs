//! Regions and the characteristics an implementation imposes on them.

use crate::{AddressKind, AspaceError, PhysAddr, Protection, VirtAddr, VirtWidth};
use core::fmt;

/// What an implementation requires of every region: addresses and lengths
/// are multiples of these. Both are powers of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Characteristics {
    /// The smallest unit of mapping, in bytes (4096 for paging).
    pub granularity: u64,
    /// The alignment of virtual and physical starts, in bytes (4096 for paging).
    pub alignment: u64,
}

/// A linear mapping of `len` bytes from virtual address `va` onto physical
/// address `pa`, with protections `prot`.
///
/// An *anonymous* region ([`Protection::ANON`]) maps no caller-given
/// physical memory: the address space provides a frame for each page, and
/// `pa` is always 0 (any other value is refused with
/// [`AspaceError::InvalidFlags`]). Its parts keep `pa` 0 too.
///
/// The region covers the half-open interval `[va, va + len)`. A region may
/// end exactly at the top of the address space (its end, 2^64, does not fit
/// in a `u64`), so comparisons use the inclusive [`Region::last`] byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// First virtual byte.
    pub va: VirtAddr,
    /// First physical byte.
    pub pa: PhysAddr,
    /// Length in bytes; never zero in a valid region.
    pub len: u64,
    /// Protections.
    pub prot: Protection,
}

impl Region {
    /// Builds a region from raw numbers.
    pub const fn new(va: u64, pa: u64, len: u64, prot: Protection) -> Self {
        Region { va: VirtAddr(va), pa: PhysAddr(pa), len, prot }
    }

    /// An anonymous region (`prot` gets [`Protection::ANON`]; `pa` is 0).
    pub const fn anonymous(va: u64, len: u64, prot: Protection) -> Self {
        Region::new(va, 0, len, prot.union(Protection::ANON))
    }

    /// True when the address space provides the region's memory ([`Protection::ANON`]).
    pub const fn is_anonymous(&self) -> bool {
        self.prot.contains(Protection::ANON)
    }

    /// The last virtual byte of the region (inclusive). Only meaningful for a
    /// region whose length is non-zero and does not wrap.
    pub const fn last(&self) -> u64 {
        self.va.0.wrapping_add(self.len).wrapping_sub(1)
    }

    /// The last physical byte of the region (inclusive).
    pub const fn last_pa(&self) -> u64 {
        self.pa.0.wrapping_add(self.len).wrapping_sub(1)
    }

    /// True when virtual address `va` lies inside the region.
    pub const fn contains(&self, va: u64) -> bool {
        va >= self.va.0 && va <= self.last()
    }

    /// True when the region and `[va, last]` (inclusive) share a byte.
    pub const fn overlaps_range(&self, va: u64, last: u64) -> bool {
        self.va.0 <= last && va <= self.last()
    }

    /// True when the two regions share a virtual byte (touching is fine).
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.overlaps_range(other.va.0, other.last())
    }

    /// The physical address that virtual address `va` (inside the region) maps to.
    pub const fn translate(&self, va: u64) -> PhysAddr {
        PhysAddr(self.pa.0.wrapping_add(va.wrapping_sub(self.va.0)))
    }

    /// True when `[va, va+len)` lies wholly inside the region.
    pub const fn covers(&self, va: u64, len: u64) -> bool {
        len > 0 && va >= self.va.0 && va.wrapping_add(len - 1) <= self.last() && va.checked_add(len - 1).is_some()
    }

    /// The part `[va, va+len)` of this region, as a region of its own (same
    /// linear offset, same protections; an anonymous part keeps `pa` 0).
    /// The caller ensures [`Region::covers`].
    pub const fn sub_region(&self, va: u64, len: u64) -> Region {
        let pa = if self.is_anonymous() { PhysAddr(0) } else { self.translate(va) };
        Region { va: VirtAddr(va), pa, len, prot: self.prot }
    }

    /// Checks everything about the region that does not depend on other
    /// regions: non-zero length that does not wrap, canonical start and end
    /// in one canonical half, alignment of both starts and of the length,
    /// physical end below `2^phys_bits`, and flags that make sense together.
    /// An anonymous region has no physical range to check; its `pa` must be 0.
    ///
    /// The order of the checks is fixed so that the same bad input always
    /// gets the same error.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub fn validate(&self, ch: Characteristics, width: VirtWidth, phys_bits: u32) -> Result<(), AspaceError> {
        if self.len == 0 {
            return Err(AspaceError::ZeroLength);
        }
        if self.va.0.checked_add(self.len - 1).is_none() {
            return Err(AspaceError::LengthOverflow { start: self.va.0, len: self.len, kind: AddressKind::Virtual });
        }
        let physical = !self.is_anonymous();
        if physical && self.pa.0.checked_add(self.len - 1).is_none() {
            return Err(AspaceError::LengthOverflow { start: self.pa.0, len: self.len, kind: AddressKind::Physical });
        }
        if !self.va.is_canonical(width) {
            return Err(AspaceError::NonCanonical { addr: self.va.0 });
        }
        let last = VirtAddr(self.last());
        if !last.is_canonical(width) || (self.va.0 < width.lower_half_end()) != (last.0 < width.lower_half_end()) {
            return Err(AspaceError::CrossesCanonicalHole { start: self.va.0, len: self.len });
        }
        if !self.va.is_aligned(ch.alignment) {
            return Err(AspaceError::Misaligned {
                kind: AddressKind::Virtual,
                value: self.va.0,
                required: ch.alignment,
            });
        }
        if physical && !self.pa.is_aligned(ch.alignment) {
            return Err(AspaceError::Misaligned {
                kind: AddressKind::Physical,
                value: self.pa.0,
                required: ch.alignment,
            });
        }
        if !self.len.is_multiple_of(ch.granularity) {
            return Err(AspaceError::Misaligned {
                kind: AddressKind::Length,
                value: self.len,
                required: ch.granularity,
            });
        }
        if physical && phys_bits < 64 && self.last_pa() >> phys_bits != 0 {
            return Err(AspaceError::PhysTooWide { addr: self.last_pa(), phys_bits });
        }
        self.prot.validate()?;
        if !physical && self.pa.0 != 0 {
            return Err(AspaceError::InvalidFlags {
                flags: self.prot.bits(),
                reason: "an anonymous region takes no physical address: pa must be 0",
            });
        }
        Ok(())
    }
}

impl Protection {
    /// Refuses flag combinations that contradict each other or that no
    /// implementation understands (unknown bits).
    pub fn validate(self) -> Result<(), AspaceError> {
        if Protection::from_bits(self.bits()).is_none() {
            return Err(AspaceError::InvalidFlags { flags: self.bits(), reason: "unknown flag bits" });
        }
        if self.intersects(Protection::WRITE | Protection::EXEC) && !self.contains(Protection::READ) {
            return Err(AspaceError::InvalidFlags {
                flags: self.bits(),
                reason: "x86-64 cannot map a page that is writable or executable but not readable",
            });
        }
        if self.contains(Protection::GROW_DOWN | Protection::GROW_UP) {
            return Err(AspaceError::InvalidFlags {
                flags: self.bits(),
                reason: "a region grows down or up, not both",
            });
        }
        if self.contains(Protection::WRITE | Protection::READ_ONLY_BACKING) {
            return Err(AspaceError::InvalidFlags {
                flags: self.bits(),
                reason: "a region with a read-only backing (o) cannot be writable (w)",
            });
        }
        if self.grows() && !self.contains(Protection::ANON) {
            return Err(AspaceError::InvalidFlags {
                flags: self.bits(),
                reason: "only anonymous regions grow: growth maps memory the address space provides",
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Region {
    /// `[va, va+len) -> pa (len bytes) flags`, the end written inclusively
    /// when it is the top of the address space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}-{:#018x} -> {:#x} ({:#x} bytes) {}", self.va.0, self.last(), self.pa.0, self.len, self.prot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Characteristics = Characteristics { granularity: 4096, alignment: 4096 };
    const RW: Protection = Protection::READ.union(Protection::WRITE);

    fn check(r: Region) -> Result<(), AspaceError> {
        r.validate(PAGE, VirtWidth::Bits48, 52)
    }

    #[test]
    fn valid_regions() {
        assert_eq!(check(Region::new(0, 0, 4096, RW)), Ok(()));
        // The very last page of the address space.
        assert_eq!(check(Region::new(0xffff_ffff_ffff_f000, 0, 4096, RW)), Ok(()));
        // The last page of the lower half.
        assert_eq!(check(Region::new(0x0000_7fff_ffff_f000, 0, 4096, RW)), Ok(()));
    }

    #[test]
    fn every_refusal() {
        assert_eq!(check(Region::new(0, 0, 0, RW)), Err(AspaceError::ZeroLength));
        assert!(matches!(
            check(Region::new(0xffff_ffff_ffff_f000, 0, 0x2000, RW)),
            Err(AspaceError::LengthOverflow { kind: AddressKind::Virtual, .. })
        ));
        assert!(matches!(
            check(Region::new(0, u64::MAX - 0xfff, 0x2000, RW)),
            Err(AspaceError::LengthOverflow { kind: AddressKind::Physical, .. })
        ));
        assert_eq!(
            check(Region::new(0x0000_8000_0000_0000, 0, 4096, RW)),
            Err(AspaceError::NonCanonical { addr: 0x0000_8000_0000_0000 })
        );
        assert!(matches!(
            check(Region::new(0x0000_7fff_ffff_f000, 0, 0x2000, RW)),
            Err(AspaceError::CrossesCanonicalHole { .. })
        ));
        assert!(matches!(
            check(Region::new(0x1001, 0, 4096, RW)),
            Err(AspaceError::Misaligned { kind: AddressKind::Virtual, .. })
        ));
        assert!(matches!(
            check(Region::new(0x1000, 0x10, 4096, RW)),
            Err(AspaceError::Misaligned { kind: AddressKind::Physical, .. })
        ));
        assert!(matches!(
            check(Region::new(0x1000, 0, 4097, RW)),
            Err(AspaceError::Misaligned { kind: AddressKind::Length, .. })
        ));
        assert!(matches!(check(Region::new(0x1000, 1 << 52, 4096, RW)), Err(AspaceError::PhysTooWide { .. })));
        assert!(matches!(
            check(Region::new(0x1000, 0, 4096, Protection::WRITE)),
            Err(AspaceError::InvalidFlags { .. })
        ));
        assert!(matches!(
            check(Region::new(0x1000, 0, 4096, Protection::from_bits_retain(1 << 30))),
            Err(AspaceError::InvalidFlags { .. })
        ));
    }

    #[test]
    fn anonymous_and_growing_flags() {
        let anon = |pa, prot| check(Region::new(0x1000, pa, 0x2000, prot | Protection::ANON));
        assert_eq!(anon(0, RW), Ok(()));
        assert_eq!(Region::anonymous(0x1000, 0x2000, RW), Region::new(0x1000, 0, 0x2000, RW | Protection::ANON));
        assert!(matches!(anon(0x5000, RW), Err(AspaceError::InvalidFlags { .. })));
        // Not even a misaligned or too-wide address gets past: it is refused as a flag error.
        assert!(matches!(anon(0x10, RW), Err(AspaceError::InvalidFlags { .. })));
        // No physical range to overflow or exceed MAXPHYADDR.
        assert_eq!(check(Region::anonymous(0, 1 << 46, RW)), Ok(()));
        assert_eq!(anon(0, RW | Protection::GROW_DOWN), Ok(()));
        assert_eq!(anon(0, RW | Protection::GROW_UP), Ok(()));
        assert!(matches!(
            anon(0, RW | Protection::GROW_DOWN | Protection::GROW_UP),
            Err(AspaceError::InvalidFlags { reason: "a region grows down or up, not both", .. })
        ));
        for grow in [Protection::GROW_DOWN, Protection::GROW_UP] {
            assert!(matches!(check(Region::new(0x1000, 0, 0x1000, RW | grow)), Err(AspaceError::InvalidFlags { .. })));
        }
        // Parts of an anonymous region keep pa 0; parts of a linear one keep the offset.
        let whole = Region::anonymous(0x1000, 0x3000, RW);
        assert_eq!(whole.sub_region(0x2000, 0x1000), Region::anonymous(0x2000, 0x1000, RW));
        assert!(whole.is_anonymous() && !Region::new(0, 0, 1, RW).is_anonymous());
    }

    #[test]
    fn geometry() {
        let r = Region::new(0x1000, 0x5000, 0x2000, RW);
        assert_eq!(r.last(), 0x2fff);
        assert!(r.contains(0x1000) && r.contains(0x2fff) && !r.contains(0x3000) && !r.contains(0xfff));
        assert!(r.overlaps(&Region::new(0x2fff, 0, 1, RW)));
        assert!(!r.overlaps(&Region::new(0x3000, 0, 0x1000, RW)));
        assert_eq!(r.translate(0x2345), PhysAddr(0x6345));
        assert!(r.covers(0x2000, 0x1000) && !r.covers(0x2000, 0x1001));
        assert_eq!(r.sub_region(0x2000, 0x1000), Region::new(0x2000, 0x6000, 0x1000, RW));
    }
}
