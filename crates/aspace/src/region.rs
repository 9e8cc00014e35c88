//! Regions and the characteristics an implementation imposes on them.

use crate::{PhysAddr, Protection, VirtAddr};
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
