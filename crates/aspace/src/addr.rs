//! Typed virtual and physical addresses.

use core::fmt;

/// How many bits of a virtual address the paging hardware translates:
/// 48 with 4-level paging, 57 with 5-level paging (LA57).
///
/// A virtual address is *canonical* when every bit above the top translated
/// bit is a copy of that bit; any other address faults (#GP) before the
/// page tables are even consulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VirtWidth {
    /// 4-level paging: 48-bit virtual addresses.
    Bits48,
    /// 5-level paging: 57-bit virtual addresses.
    Bits57,
}

impl VirtWidth {
    /// The number of translated bits (48 or 57).
    pub const fn bits(self) -> u32 {
        match self {
            VirtWidth::Bits48 => 48,
            VirtWidth::Bits57 => 57,
        }
    }

    /// The lowest address of the upper canonical half
    /// (0xffff_8000_0000_0000 for 48 bits).
    pub const fn upper_half_start(self) -> u64 {
        !((1u64 << (self.bits() - 1)) - 1)
    }

    /// One past the highest address of the lower canonical half
    /// (0x0000_8000_0000_0000 for 48 bits).
    pub const fn lower_half_end(self) -> u64 {
        1u64 << (self.bits() - 1)
    }
}

/// A virtual address. Any 64-bit value can be held; whether it is canonical
/// depends on the [`VirtWidth`] in force and is checked by [`VirtAddr::is_canonical`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u64);

impl VirtAddr {
    /// Wraps a raw address.
    pub const fn new(raw: u64) -> Self {
        VirtAddr(raw)
    }

    /// The raw 64-bit value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// True when the address is canonical for `width`: bits 63 down to the
    /// top translated bit are all equal.
    pub const fn is_canonical(self, width: VirtWidth) -> bool {
        let shift = 64 - width.bits() + 1;
        // Sign-extend from the top translated bit and compare.
        (((self.0 << (shift - 1)) as i64) >> (shift - 1)) as u64 == self.0
    }

    /// True when `self` is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VA {:#x}", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// Wraps a raw address.
    pub const fn new(raw: u64) -> Self {
        PhysAddr(raw)
    }

    /// The raw 64-bit value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// True when `self` is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PA {:#x}", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_48() {
        let w = VirtWidth::Bits48;
        assert!(VirtAddr(0).is_canonical(w));
        assert!(VirtAddr(0x0000_7fff_ffff_ffff).is_canonical(w));
        assert!(!VirtAddr(0x0000_8000_0000_0000).is_canonical(w));
        assert!(!VirtAddr(0xffff_7fff_ffff_ffff).is_canonical(w));
        assert!(VirtAddr(0xffff_8000_0000_0000).is_canonical(w));
        assert!(VirtAddr(u64::MAX).is_canonical(w));
        assert_eq!(w.upper_half_start(), 0xffff_8000_0000_0000);
        assert_eq!(w.lower_half_end(), 0x0000_8000_0000_0000);
    }

    #[test]
    fn canonical_57() {
        let w = VirtWidth::Bits57;
        assert!(VirtAddr(0x0000_8000_0000_0000).is_canonical(w));
        assert!(VirtAddr(0x00ff_ffff_ffff_ffff).is_canonical(w));
        assert!(!VirtAddr(0x0100_0000_0000_0000).is_canonical(w));
        assert!(VirtAddr(0xff00_0000_0000_0000).is_canonical(w));
        assert!(!VirtAddr(0xfe00_0000_0000_0000).is_canonical(w));
    }
}
