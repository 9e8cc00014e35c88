//! [`PagingError`]: why an operation on page tables was refused.

use crate::entry::{Level, PageTableEntry};
use aspace::{AddressKind, AspaceError, PhysAddr, VirtAddr};
use core::fmt;

/// The implementation's name, as the registry lists it.
pub const IMPLEMENTATION_NAME: &str = "paging";

/// Every way an operation of [`crate::PageTables`] or [`crate::KernelHalf`]
/// can be refused. A refused operation changes nothing.
///
/// The range errors are those of [`aspace::Region::validate`], checked in
/// the same order, so that [`From<PagingError>`](#impl-From<PagingError>-for-AspaceError)
/// turns each into the [`AspaceError`] a region with the same numbers gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// A frame for a page table could not be allocated.
    OutOfMemory,
    /// The length is zero.
    ZeroLength,
    /// `start + len` runs past the top of the 64-bit space (virtual or
    /// physical).
    LengthOverflow {
        /// The start that overflows.
        start: u64,
        /// The length.
        len: u64,
        /// Virtual or physical.
        kind: AddressKind,
    },
    /// The virtual start is not canonical.
    NonCanonical {
        /// The address.
        addr: u64,
    },
    /// A virtual range starts in one canonical half and ends in the other,
    /// or in the non-canonical hole between them.
    CrossesCanonicalHole {
        /// Start of the range.
        start: u64,
        /// Its length.
        len: u64,
    },
    /// A start or length is not a multiple of 4 KiB (or a root table is not
    /// 4 KiB-aligned).
    Misaligned {
        /// Which number.
        kind: AddressKind,
        /// Its value.
        value: u64,
        /// The alignment required.
        required: u64,
    },
    /// A physical address is at or beyond 2^MAXPHYADDR.
    PhysTooWide {
        /// The highest physical byte asked for.
        addr: u64,
        /// The CPU's physical address width.
        phys_bits: u32,
    },
    /// A tree offered for adoption has an entry with reserved bits set.
    ReservedBits {
        /// The level of the table holding the entry.
        level: Level,
        /// The first virtual address the entry covers.
        va: VirtAddr,
        /// The entry.
        entry: PageTableEntry,
    },
    /// A tree offered for adoption has an entry pointing at a table that
    /// takes away a right some leaf below it grants (R/W or U/S clear, or
    /// NX set, above a leaf that has the right). This crate's trees let the
    /// leaves alone decide, so the tree cannot be adopted as it is.
    HiddenRights {
        /// The level of the table holding the entry.
        level: Level,
        /// The first virtual address the entry covers.
        va: VirtAddr,
        /// The entry.
        entry: PageTableEntry,
    },
    /// A tree offered for adoption reaches the same table twice (two entries
    /// point at it, or an entry points back up the tree, as a recursive
    /// mapping does): it is not a tree.
    AliasedTable {
        /// The level the table is reached at the second time.
        level: Level,
        /// The table.
        table: PhysAddr,
        /// The first virtual address it covers there.
        va: VirtAddr,
    },
    /// A kernel half was made for 4-level paging and the machine uses 5,
    /// or the other way round.
    KernelHalfLevels {
        /// The levels of the machine's tables.
        machine: u8,
        /// The levels the kernel half was made for.
        kernel_half: u8,
    },
}

impl PagingError {
    /// The error of a range that [`aspace::Region::validate`] refused.
    pub(crate) fn from_range_check(error: AspaceError) -> Self {
        match error {
            AspaceError::ZeroLength => PagingError::ZeroLength,
            AspaceError::LengthOverflow { start, len, kind } => PagingError::LengthOverflow { start, len, kind },
            AspaceError::NonCanonical { addr } => PagingError::NonCanonical { addr },
            AspaceError::CrossesCanonicalHole { start, len } => PagingError::CrossesCanonicalHole { start, len },
            AspaceError::Misaligned { kind, value, required } => PagingError::Misaligned { kind, value, required },
            AspaceError::PhysTooWide { addr, phys_bits } => PagingError::PhysTooWide { addr, phys_bits },
            other => unreachable!("the range check of a readable, non-anonymous range refused it with {other:?}"),
        }
    }
}

impl From<PagingError> for AspaceError {
    /// The range errors and `OutOfMemory` become the `AspaceError` of the
    /// same name and fields; the errors of adoption and of the kernel half,
    /// which no address-space operation meets, become
    /// [`AspaceError::Unsupported`].
    fn from(error: PagingError) -> Self {
        match error {
            PagingError::OutOfMemory => AspaceError::OutOfMemory,
            PagingError::ZeroLength => AspaceError::ZeroLength,
            PagingError::LengthOverflow { start, len, kind } => AspaceError::LengthOverflow { start, len, kind },
            PagingError::NonCanonical { addr } => AspaceError::NonCanonical { addr },
            PagingError::CrossesCanonicalHole { start, len } => AspaceError::CrossesCanonicalHole { start, len },
            PagingError::Misaligned { kind, value, required } => AspaceError::Misaligned { kind, value, required },
            PagingError::PhysTooWide { addr, phys_bits } => AspaceError::PhysTooWide { addr, phys_bits },
            PagingError::ReservedBits { .. } | PagingError::HiddenRights { .. } | PagingError::AliasedTable { .. } => {
                AspaceError::Unsupported {
                    implementation: IMPLEMENTATION_NAME,
                    operation: "adopting a tree of page tables that breaks this crate's rules",
                }
            }
            PagingError::KernelHalfLevels { .. } => AspaceError::Unsupported {
                implementation: IMPLEMENTATION_NAME,
                operation: "a kernel half made for another number of paging levels",
            },
        }
    }
}

impl PartialEq<AspaceError> for PagingError {
    /// Equal when the error converts into `other` (so that a test can hold
    /// the tables' answer to the address space's reference).
    // The conversion builds no `String` (no variant it makes holds one).
    #[allow(clippy::cmp_owned)]
    fn eq(&self, other: &AspaceError) -> bool {
        AspaceError::from(*self) == *other
    }
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PagingError::ReservedBits { level, va, entry } => {
                write!(f, "{level} entry covering {va} has reserved bits: {entry}")
            }
            PagingError::HiddenRights { level, va, entry } => {
                write!(f, "{level} entry covering {va} is {entry}, which takes away rights a leaf below grants")
            }
            PagingError::AliasedTable { level, table, va } => {
                write!(f, "the table at {table} is reached a second time, as the {level} covering {va}")
            }
            PagingError::KernelHalfLevels { machine, kernel_half } => {
                write!(f, "the kernel half was made for {kernel_half}-level paging, the machine uses {machine} levels")
            }
            // The others read as the address-space errors they become.
            other => write!(f, "{}", AspaceError::from(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn range_errors_become_the_same_aspace_errors() {
        let cases = [
            (PagingError::OutOfMemory, AspaceError::OutOfMemory),
            (PagingError::ZeroLength, AspaceError::ZeroLength),
            (
                PagingError::LengthOverflow { start: 1, len: 2, kind: AddressKind::Physical },
                AspaceError::LengthOverflow { start: 1, len: 2, kind: AddressKind::Physical },
            ),
            (PagingError::NonCanonical { addr: 3 }, AspaceError::NonCanonical { addr: 3 }),
            (
                PagingError::CrossesCanonicalHole { start: 4, len: 5 },
                AspaceError::CrossesCanonicalHole { start: 4, len: 5 },
            ),
            (
                PagingError::Misaligned { kind: AddressKind::Length, value: 6, required: 4096 },
                AspaceError::Misaligned { kind: AddressKind::Length, value: 6, required: 4096 },
            ),
            (PagingError::PhysTooWide { addr: 7, phys_bits: 46 }, AspaceError::PhysTooWide { addr: 7, phys_bits: 46 }),
        ];
        for (paging, aspace) in cases {
            assert_eq!(AspaceError::from(paging), aspace);
            assert_eq!(paging, aspace);
            assert_eq!(paging.to_string(), aspace.to_string());
            if paging != PagingError::OutOfMemory {
                assert_eq!(PagingError::from_range_check(aspace), paging);
            }
        }
        let adoption = PagingError::AliasedTable { level: Level::Pdpt, table: PhysAddr(0x1000), va: VirtAddr(0) };
        assert!(matches!(AspaceError::from(adoption), AspaceError::Unsupported { .. }));
    }
}
