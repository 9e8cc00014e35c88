//! The checks every region and every address range gets before anything
//! is touched: lengths that do not wrap past 2^64, canonical addresses in
//! one half, alignment, MAXPHYADDR, and flags that make sense together.

use crate::{AddressKind, AspaceError, Characteristics, Protection, Region, VirtAddr, VirtWidth};

/// Checks the virtual byte range `[start, start + len)` and returns its last
/// byte: the length is not zero, the range does not run past 2^64, and it
/// starts and ends at canonical addresses of the same canonical half, so it
/// neither wraps to address 0 nor crosses the non-canonical hole.
///
/// These are the virtual-address checks of [`crate::Region::validate`], in
/// the same order, with the same errors; every `start + len` that the kernel
/// or the shell computes from numbers it was given goes through here (or
/// through `validate`) before anything is touched.
///
/// ```
/// use aspace::{check_virt_range, AspaceError, VirtWidth};
/// let w = VirtWidth::Bits48;
/// assert_eq!(check_virt_range(0x1000, 0x1000, w), Ok(0x1fff));
/// assert!(matches!(check_virt_range(u64::MAX - 3, 8, w), Err(AspaceError::LengthOverflow { .. })));
/// assert!(matches!(check_virt_range(0x7fff_ffff_fffc, 8, w), Err(AspaceError::CrossesCanonicalHole { .. })));
/// ```
pub fn check_virt_range(start: u64, len: u64, width: VirtWidth) -> Result<u64, AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    let last =
        start.checked_add(len - 1).ok_or(AspaceError::LengthOverflow { start, len, kind: AddressKind::Virtual })?;
    if !VirtAddr(start).is_canonical(width) {
        return Err(AspaceError::NonCanonical { addr: start });
    }
    if !VirtAddr(last).is_canonical(width) || (start < width.lower_half_end()) != (last < width.lower_half_end()) {
        return Err(AspaceError::CrossesCanonicalHole { start, len });
    }
    Ok(last)
}

impl Region {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhysAddr;

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
