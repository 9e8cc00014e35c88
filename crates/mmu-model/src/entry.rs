//! The bits of a paging-structure entry and the page sizes they map
//! (Intel SDM vol. 3 §4.5, tables 4-15 to 4-20).

/// P: the entry is present (bit 0).
pub(crate) const PRESENT: u64 = 1 << 0;
/// R/W: writes allowed through this entry (bit 1).
pub(crate) const WRITABLE: u64 = 1 << 1;
/// U/S: user-mode accesses allowed through this entry (bit 2).
pub(crate) const USER: u64 = 1 << 2;
/// A: set by the processor when the entry is used for a translation (bit 5).
pub(crate) const ACCESSED: u64 = 1 << 5;
/// D: set by the processor in a leaf entry when the page is written (bit 6).
pub(crate) const DIRTY: u64 = 1 << 6;
/// PS: in a PDPTE or PDE, the entry maps a 1 GiB or 2 MiB page (bit 7).
pub(crate) const PAGE_SIZE: u64 = 1 << 7;
/// G: in a leaf entry, the translation is global (bit 8; needs CR4.PGE).
pub(crate) const GLOBAL: u64 = 1 << 8;
/// XD/NX: instruction fetches not allowed (bit 63; reserved without EFER.NXE).
pub(crate) const NO_EXECUTE: u64 = 1 << 63;

/// Bits 51:12: where the physical-address field of an entry can lie.
const ADDRESS_FIELD: u64 = 0x000f_ffff_ffff_f000;

/// The size of a page, and so of the region one TLB entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB, mapped by a PTE.
    Size4K,
    /// 2 MiB, mapped by a PDE with PS=1.
    Size2M,
    /// 1 GiB, mapped by a PDPTE with PS=1.
    Size1G,
}

impl PageSize {
    /// Every page size, smallest first.
    pub const ALL: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G];

    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// The first address of the page of this size that contains `addr`.
    pub const fn base_of(self, addr: u64) -> u64 {
        addr & !(self.bytes() - 1)
    }

    /// The page size a leaf entry at `level` maps (1 = PTE, 2 = PDE, 3 = PDPTE).
    pub(crate) const fn at_level(level: u8) -> PageSize {
        match level {
            1 => PageSize::Size4K,
            2 => PageSize::Size2M,
            _ => PageSize::Size1G,
        }
    }
}

/// Bits of the address field that lie at or above MAXPHYADDR (reserved).
pub(crate) const fn above_max_phys_addr(phys_bits: u32) -> u64 {
    ADDRESS_FIELD & !((1u64 << phys_bits) - 1)
}

/// The physical address an entry holds, for a table or a page of `size`.
pub(crate) const fn address_of(entry: u64, size: PageSize) -> u64 {
    entry & ADDRESS_FIELD & !(size.bytes() - 1)
}

/// The reserved bits of an entry at `level` (5 = PML5E ... 1 = PTE),
/// SDM §4.5.4 and tables 4-14 to 4-20, for a present entry: the bits that
/// are set and must not be.
pub(crate) fn reserved_bits(entry: u64, level: u8, phys_bits: u32, nxe: bool, huge_1g: bool) -> u64 {
    let mut reserved = above_max_phys_addr(phys_bits);
    if !nxe {
        reserved |= NO_EXECUTE;
    }
    let large = entry & PAGE_SIZE != 0;
    match level {
        // PS is reserved in PML5Es and PML4Es.
        4 | 5 => reserved |= PAGE_SIZE,
        // A 1 GiB page: bits 29:13 of the address field are reserved (bit 12
        // is PAT); without 1 GiB page support PS itself is reserved.
        3 if large => {
            reserved |= if huge_1g { bits(13, 29) } else { PAGE_SIZE };
        }
        // A 2 MiB page: bits 20:13 are reserved (bit 12 is PAT).
        2 if large => reserved |= bits(13, 20),
        _ => {}
    }
    entry & reserved
}

/// A mask of bits `low` to `high`, inclusive.
const fn bits(low: u32, high: u32) -> u64 {
    ((1u64 << (high - low + 1)) - 1) << low
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(bits(13, 20), 0x1f_e000);
        assert_eq!(bits(13, 29), 0x3fff_e000);
        assert_eq!(above_max_phys_addr(46), 0x000f_c000_0000_0000);
        assert_eq!(above_max_phys_addr(52), 0);
        assert_eq!(address_of(0x8000_0000_4020_1fe3 | 1 << 12, PageSize::Size2M), 0x4020_0000);
        assert_eq!(address_of(0x8000_0000_4020_1fe3, PageSize::Size4K), 0x4020_1000);
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::Size2M.base_of(0x1234_5678), 0x1220_0000);
        assert_eq!(PageSize::at_level(3), PageSize::Size1G);
        assert_eq!(PageSize::Size1G.bytes(), 1 << 30);
    }
}
