//! Page-table entries, table levels and page sizes of x86-64 long mode.
//!
//! Every table holds 512 eight-byte entries. An entry either points at the
//! table one level down, maps a page (a *leaf*: any present entry in a page
//! table, or a present entry with PS set in a page directory or PDPT), or
//! is not present. The bit layout is Intel SDM vol. 3 §4.5, tables 4-15 to 4-20.

use aspace::{PhysAddr, Protection};
use core::fmt;

/// How many entries a table holds.
pub const ENTRIES_PER_TABLE: usize = 512;

/// The size of a table, and of the smallest page.
pub const TABLE_BYTES: u64 = 4096;

/// The smallest page (4 KiB): every anonymous page, the unit of growth and
/// of file backings.
pub(crate) const PAGE: u64 = TABLE_BYTES;

/// One 64-bit page-table entry, at any level.
///
/// The constructors and accessors only name bits; what a bit means at a
/// given level (bit 7 is PS in a directory, PAT in a page table) is for the
/// caller to say through [`PageTableEntry::is_leaf`] and friends.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageTableEntry(pub u64);

impl PageTableEntry {
    /// P: the entry is in use. When clear, the CPU ignores every other bit.
    pub const PRESENT: u64 = 1 << 0;
    /// R/W: writes are allowed (subject to every level allowing them, and to CR0.WP for supervisor writes).
    pub const WRITABLE: u64 = 1 << 1;
    /// U/S: user-mode (CPL 3) accesses are allowed (subject to every level allowing them).
    pub const USER: u64 = 1 << 2;
    /// PWT: page-level write-through (a PAT index bit).
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// PCD: page-level cache disable (a PAT index bit).
    pub const CACHE_DISABLE: u64 = 1 << 4;
    /// A: set by the CPU when the entry is used for a translation.
    pub const ACCESSED: u64 = 1 << 5;
    /// D: set by the CPU on the first write through a leaf.
    pub const DIRTY: u64 = 1 << 6;
    /// PS: in a PDPT or page-directory entry, the entry maps a 1 GiB or 2 MiB page.
    pub const HUGE_PAGE: u64 = 1 << 7;
    /// PAT index bit of a 4 KiB leaf (the same bit 7 as PS, read in a page table).
    pub const PAT_4K: u64 = 1 << 7;
    /// G: the translation survives CR3 loads (only with CR4.PGE).
    ///
    /// Nacre never sets it: global pages would be shared by every address
    /// space, and which kernel mappings to share that way is a later choice.
    pub const GLOBAL: u64 = 1 << 8;
    /// PAT index bit of a 2 MiB or 1 GiB leaf.
    pub const PAT_LARGE: u64 = 1 << 12;
    /// Protection-key bits 62:59 (with CR4.PKE). Unused by Nacre: always zero.
    pub const PROTECTION_KEY: u64 = 0xf << 59;
    /// XD/NX: instruction fetches are not allowed (only with EFER.NXE; reserved otherwise).
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// The physical-address field (bits 51:12) at the architectural maximum
    /// MAXPHYADDR of 52; [`address_mask`] narrows it to the CPU's width.
    pub const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

    /// Bits 61:52 of an entry that points at a table, which the CPU ignores
    /// (SDM tables 4-15 to 4-18; AMD calls them available to software):
    /// Nacre keeps there how many entries of that table are present, so
    /// that an unmap knows a table became empty without reading its 512
    /// entries. Leaves never carry it (their bits 62:59 are the protection
    /// key). The root has no entry above it and no count.
    pub const PRESENT_COUNT: u64 = 0x3ff << 52;
    const PRESENT_COUNT_SHIFT: u32 = 52;

    /// Bit 62 of an entry that points at a table, which the CPU ignores
    /// like bits 61:52: the table below is not this tree's to free. It
    /// belongs to the shared kernel half ([`crate::KernelHalf`]) or to
    /// whoever built a tree adopted with [`crate::TableOwnership::Borrowed`].
    /// Edits leave such a table linked when it becomes empty,
    /// [`crate::PageTables::destroy`] does not free it, and its entry keeps
    /// no present count (a shared table is pointed at from many roots, whose
    /// counts could not agree). Leaves never carry it (bit 62 of a leaf is a
    /// protection-key bit).
    pub const KEEP_TABLE: u64 = 1 << 62;

    /// The bits that describe access rights and caching of a leaf (what the
    /// page-table dump compares): everything but the address, A and D.
    pub const ATTRIBUTE_BITS: u64 = Self::WRITABLE
        | Self::USER
        | Self::WRITE_THROUGH
        | Self::CACHE_DISABLE
        | Self::HUGE_PAGE
        | Self::GLOBAL
        | Self::PAT_LARGE
        | Self::PROTECTION_KEY
        | Self::NO_EXECUTE;

    /// The attribute bits of this leaf at `level` (see
    /// [`PageTableEntry::ATTRIBUTE_BITS`]); bit 12 counts only for large
    /// pages, where it is PAT rather than part of the address.
    pub const fn attributes(self, level: Level) -> u64 {
        let address_bit_12 = if matches!(level, Level::Pt) { Self::PAT_LARGE } else { 0 };
        self.0 & Self::ATTRIBUTE_BITS & !address_bit_12
    }

    /// A not-present entry.
    pub const EMPTY: PageTableEntry = PageTableEntry(0);

    /// An entry pointing at the table at `table`: present and writable, user
    /// if `user`, never NX (the leaves decide; see the crate docs).
    pub const fn table(table: PhysAddr, user: bool) -> Self {
        let user_bit = if user { Self::USER } else { 0 };
        PageTableEntry((table.0 & Self::ADDRESS) | Self::PRESENT | Self::WRITABLE | user_bit)
    }

    /// A leaf mapping the page of size `size` at `frame` (aligned to `size`)
    /// with permissions `perms`. NX is only used when `nx_enabled`.
    pub const fn leaf(frame: PhysAddr, size: PageSize, perms: LeafPermissions, nx_enabled: bool) -> Self {
        let mut bits = (frame.0 & Self::ADDRESS & !(size.bytes() - 1)) | Self::PRESENT;
        if perms.writable {
            bits |= Self::WRITABLE;
        }
        if perms.user {
            bits |= Self::USER;
        }
        if !perms.executable && nx_enabled {
            bits |= Self::NO_EXECUTE;
        }
        if !matches!(size, PageSize::Size4K) {
            bits |= Self::HUGE_PAGE;
        }
        PageTableEntry(bits)
    }

    /// The raw value.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// True when every bit of `mask` is set.
    pub const fn has(self, mask: u64) -> bool {
        self.0 & mask == mask
    }

    /// P.
    pub const fn is_present(self) -> bool {
        self.has(Self::PRESENT)
    }

    /// R/W.
    pub const fn is_writable(self) -> bool {
        self.has(Self::WRITABLE)
    }

    /// U/S.
    pub const fn is_user(self) -> bool {
        self.has(Self::USER)
    }

    /// NX.
    pub const fn is_no_execute(self) -> bool {
        self.has(Self::NO_EXECUTE)
    }

    /// A.
    pub const fn is_accessed(self) -> bool {
        self.has(Self::ACCESSED)
    }

    /// D.
    pub const fn is_dirty(self) -> bool {
        self.has(Self::DIRTY)
    }

    /// G.
    pub const fn is_global(self) -> bool {
        self.has(Self::GLOBAL)
    }

    /// True when this present entry at `level` maps a page rather than
    /// pointing at a table: every present page-table entry, and PS entries
    /// in a page directory or PDPT. (PS in a PML4 or PML5 is reserved; the
    /// walker reports it.)
    pub const fn is_leaf(self, level: Level) -> bool {
        self.is_present() && (matches!(level, Level::Pt) || self.has(Self::HUGE_PAGE))
    }

    /// The physical address in the entry (the table it points at, or the
    /// page it maps, for a leaf of the size of `level`'s pages), with the
    /// low flag bits, PAT and the high bits removed.
    pub const fn address(self, level: Level) -> PhysAddr {
        let low_mask = if self.is_leaf(level) { level.entry_span() - 1 } else { TABLE_BYTES - 1 };
        PhysAddr(self.0 & Self::ADDRESS & !low_mask)
    }

    /// The PAT bit of a leaf at `level` (bit 7 for 4 KiB pages, bit 12 for large pages).
    pub const fn pat_bit(level: Level) -> u64 {
        if matches!(level, Level::Pt) {
            Self::PAT_4K
        } else {
            Self::PAT_LARGE
        }
    }

    /// The same entry with `mask` set or cleared.
    pub const fn with(self, mask: u64, set: bool) -> Self {
        if set {
            PageTableEntry(self.0 | mask)
        } else {
            PageTableEntry(self.0 & !mask)
        }
    }

    /// How many entries of the table this entry points at are present (see
    /// [`PageTableEntry::PRESENT_COUNT`]).
    pub const fn present_count(self) -> u32 {
        ((self.0 & Self::PRESENT_COUNT) >> Self::PRESENT_COUNT_SHIFT) as u32
    }

    /// The same table pointer with its table's present-entry count set to `count` (at most 512).
    pub const fn with_present_count(self, count: u32) -> Self {
        PageTableEntry((self.0 & !Self::PRESENT_COUNT) | ((count as u64) << Self::PRESENT_COUNT_SHIFT))
    }

    /// The same table pointer with its count moved by `change` (see
    /// [`PageTableEntry::with_present_count`]).
    pub const fn with_present_count_moved(self, change: i32) -> Self {
        self.with_present_count(self.present_count().wrapping_add_signed(change))
    }

    /// The same entry pointing at `frame` instead (leaf at `level`, or table).
    pub const fn with_address(self, frame: PhysAddr, level: Level) -> Self {
        let field = if self.is_leaf(level) { Self::ADDRESS & !(level.entry_span() - 1) } else { Self::ADDRESS };
        PageTableEntry((self.0 & !field) | (frame.0 & field))
    }

    /// The same leaf with access rights `perms` (W, U, NX); every other bit kept.
    pub const fn with_permissions(self, perms: LeafPermissions, nx_enabled: bool) -> Self {
        self.with(Self::WRITABLE, perms.writable)
            .with(Self::USER, perms.user)
            .with(Self::NO_EXECUTE, !perms.executable && nx_enabled)
    }

    /// The bits of this entry at `level` that must be zero and are not,
    /// for a CPU with `phys_bits` of physical address and NX enabled or not
    /// (SDM §4.5: address bits at and above MAXPHYADDR, PS in a PML4/PML5,
    /// the low address bits of a large page, NX without EFER.NXE).
    /// Zero for a valid entry; not-present entries have no reserved bits.
    pub const fn reserved_bits(self, level: Level, phys_bits: u32, nx_enabled: bool) -> u64 {
        if !self.is_present() {
            return 0;
        }
        let mut reserved = Self::ADDRESS & !address_mask(phys_bits);
        if !nx_enabled {
            reserved |= Self::NO_EXECUTE;
        }
        match level {
            Level::Pml5 | Level::Pml4 => reserved |= Self::HUGE_PAGE,
            Level::Pdpt | Level::Pd if self.has(Self::HUGE_PAGE) => {
                // Between the PAT bit (12) and the page address.
                reserved |= (level.entry_span() - 1) & !(TABLE_BYTES - 1) & !Self::PAT_LARGE;
            }
            _ => {}
        }
        self.0 & reserved
    }
}

/// The physical-address field of an entry for a CPU with `phys_bits` of
/// physical address (MAXPHYADDR): bits `phys_bits-1 .. 12`.
pub const fn address_mask(phys_bits: u32) -> u64 {
    let bits = if phys_bits > 52 { 52 } else { phys_bits };
    ((1u64 << bits) - 1) & PageTableEntry::ADDRESS
}

impl fmt::Debug for PageTableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageTableEntry({self})")
    }
}

impl fmt::Display for PageTableEntry {
    /// The raw value and the names of the bits set: `0x1003 [P W]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x} [", self.0)?;
        if !self.is_present() {
            return f.write_str("not present]");
        }
        let names = [
            (Self::PRESENT, "P"),
            (Self::WRITABLE, "W"),
            (Self::USER, "U"),
            (Self::WRITE_THROUGH, "PWT"),
            (Self::CACHE_DISABLE, "PCD"),
            (Self::ACCESSED, "A"),
            (Self::DIRTY, "D"),
            (Self::HUGE_PAGE, "PS/PAT"),
            (Self::GLOBAL, "G"),
            (Self::PAT_LARGE, "PAT/addr12"),
            (Self::NO_EXECUTE, "NX"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str("]")
    }
}

/// The access rights a leaf grants, as the region's protections ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeafPermissions {
    /// R/W set.
    pub writable: bool,
    /// U/S set: user mode may access the page.
    pub user: bool,
    /// NX clear (with NX enabled; without it every page is executable).
    pub executable: bool,
}

impl LeafPermissions {
    /// The same rights without write access (the mapping of a frame shared
    /// copy-on-write).
    pub const fn read_only(self) -> Self {
        LeafPermissions { writable: false, ..self }
    }

    /// The rights of a region with protections `prot`: WRITE gives writable,
    /// EXEC gives executable, KERN keeps user mode out.
    pub const fn from_protection(prot: Protection) -> Self {
        LeafPermissions {
            writable: prot.contains(Protection::WRITE),
            user: !prot.contains(Protection::KERN),
            executable: prot.contains(Protection::EXEC),
        }
    }
}

/// A level of the page-table tree, named after the table at that level.
///
/// An entry of a level-`n` table covers `2^(12 + 9(n-1))` bytes of virtual
/// addresses: 4 KiB in a page table, 2 MiB in a page directory, 1 GiB in a
/// PDPT, 512 GiB in a PML4, 256 TiB in a PML5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table: its entries map 4 KiB pages.
    Pt = 1,
    /// Page directory: entries map 2 MiB pages or point at page tables.
    Pd = 2,
    /// Page-directory-pointer table: entries map 1 GiB pages or point at directories.
    Pdpt = 3,
    /// Page-map level 4: the root with 4-level paging.
    Pml4 = 4,
    /// Page-map level 5: the root with 5-level paging (LA57).
    Pml5 = 5,
}

impl Level {
    /// The root level for 4 (`la57` false) or 5 levels.
    pub const fn root(la57: bool) -> Level {
        if la57 {
            Level::Pml5
        } else {
            Level::Pml4
        }
    }

    /// The level number, 1 (page table) to 5 (PML5).
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The lowest virtual-address bit this level indexes with.
    pub const fn shift(self) -> u32 {
        12 + 9 * (self.number() - 1)
    }

    /// The bytes of virtual addresses one entry of this level covers.
    pub const fn entry_span(self) -> u64 {
        1 << self.shift()
    }

    /// The index of `va`'s entry in a table of this level.
    pub const fn index(self, va: u64) -> usize {
        ((va >> self.shift()) & (ENTRIES_PER_TABLE as u64 - 1)) as usize
    }

    /// The level below, or `None` for a page table.
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pml5 => Some(Level::Pml4),
            Level::Pml4 => Some(Level::Pdpt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pd => Some(Level::Pt),
            Level::Pt => None,
        }
    }

    /// The size of the page a leaf at this level maps, if leaves are
    /// allowed here at all.
    pub const fn page_size(self) -> Option<PageSize> {
        match self {
            Level::Pt => Some(PageSize::Size4K),
            Level::Pd => Some(PageSize::Size2M),
            Level::Pdpt => Some(PageSize::Size1G),
            Level::Pml4 | Level::Pml5 => None,
        }
    }

    /// The conventional short name (`PML4`, `PD`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Level::Pml5 => "PML5",
            Level::Pml4 => "PML4",
            Level::Pdpt => "PDPT",
            Level::Pd => "PD",
            Level::Pt => "PT",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sizes of page x86-64 long mode maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a page-table entry.
    Size4K,
    /// 2 MiB, a page-directory entry with PS.
    Size2M,
    /// 1 GiB, a PDPT entry with PS (only when the CPU has 1 GiB pages).
    Size1G,
}

impl PageSize {
    /// Every size, smallest first.
    pub const ALL: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G];

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// The level whose leaves have this size.
    pub const fn level(self) -> Level {
        match self {
            PageSize::Size4K => Level::Pt,
            PageSize::Size2M => Level::Pd,
            PageSize::Size1G => Level::Pdpt,
        }
    }

    /// A small index (0, 1, 2) for per-size counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageSize::Size4K => "4K",
            PageSize::Size2M => "2M",
            PageSize::Size1G => "1G",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    const RWX_USER: LeafPermissions = LeafPermissions { writable: true, user: true, executable: true };

    #[test]
    fn every_bit_has_its_architectural_position() {
        assert_eq!(PageTableEntry::PRESENT, 1);
        assert_eq!(PageTableEntry::WRITABLE, 2);
        assert_eq!(PageTableEntry::USER, 4);
        assert_eq!(PageTableEntry::WRITE_THROUGH, 8);
        assert_eq!(PageTableEntry::CACHE_DISABLE, 0x10);
        assert_eq!(PageTableEntry::ACCESSED, 0x20);
        assert_eq!(PageTableEntry::DIRTY, 0x40);
        assert_eq!(PageTableEntry::HUGE_PAGE, 0x80);
        assert_eq!(PageTableEntry::PAT_4K, 0x80);
        assert_eq!(PageTableEntry::GLOBAL, 0x100);
        assert_eq!(PageTableEntry::PAT_LARGE, 0x1000);
        assert_eq!(PageTableEntry::PROTECTION_KEY, 0x7800_0000_0000_0000);
        assert_eq!(PageTableEntry::NO_EXECUTE, 1 << 63);
    }

    #[test]
    fn accessors_read_each_bit() {
        let e = PageTableEntry(
            PageTableEntry::PRESENT
                | PageTableEntry::WRITABLE
                | PageTableEntry::USER
                | PageTableEntry::ACCESSED
                | PageTableEntry::DIRTY
                | PageTableEntry::GLOBAL
                | PageTableEntry::NO_EXECUTE,
        );
        assert!(e.is_present() && e.is_writable() && e.is_user());
        assert!(e.is_accessed() && e.is_dirty() && e.is_global() && e.is_no_execute());
        let none = PageTableEntry(PageTableEntry::PRESENT);
        assert!(!none.is_writable() && !none.is_user() && !none.is_accessed());
        assert!(!none.is_dirty() && !none.is_global() && !none.is_no_execute());
        assert!(!PageTableEntry::EMPTY.is_present());
    }

    #[test]
    fn leaves_of_every_size() {
        let e = PageTableEntry::leaf(PhysAddr(0x1234_5000), PageSize::Size4K, RWX_USER, true);
        assert_eq!(e.bits(), 0x1234_5007);
        assert!(e.is_leaf(Level::Pt));
        assert_eq!(e.address(Level::Pt), PhysAddr(0x1234_5000));

        let ro_kernel = LeafPermissions { writable: false, user: false, executable: false };
        let e = PageTableEntry::leaf(PhysAddr(0x4020_0000), PageSize::Size2M, ro_kernel, true);
        assert_eq!(e.bits(), 0x8000_0000_4020_0081);
        assert!(e.is_leaf(Level::Pd));
        assert_eq!(e.address(Level::Pd), PhysAddr(0x4020_0000));

        let e = PageTableEntry::leaf(PhysAddr(0x1_4000_0000), PageSize::Size1G, ro_kernel, false);
        assert_eq!(e.bits(), 0x1_4000_0081, "no NX when NX is not enabled");
        assert!(e.is_leaf(Level::Pdpt));
        // The PAT bit of a large page is not part of its address.
        assert_eq!(e.with(PageTableEntry::PAT_LARGE, true).address(Level::Pdpt), PhysAddr(0x1_4000_0000));
        // A table pointer in a directory is not a leaf.
        let t = PageTableEntry::table(PhysAddr(0x9000), false);
        assert!(!t.is_leaf(Level::Pd) && t.is_present() && t.is_writable() && !t.is_user());
        assert_eq!(t.address(Level::Pd), PhysAddr(0x9000));
        assert!(PageTableEntry::table(PhysAddr(0x9000), true).is_user());
    }

    #[test]
    fn present_count_lives_in_ignored_bits() {
        let t = PageTableEntry::table(PhysAddr(0xf_ffff_f000), true);
        assert_eq!(t.present_count(), 0);
        let counted = t.with_present_count(512);
        assert_eq!(counted.present_count(), 512);
        assert_eq!(counted.with_present_count_moved(-1).present_count(), 511);
        assert_eq!(counted.with_present_count_moved(-512), t);
        // The address, the flags and the reserved-bit check do not see it.
        assert_eq!(counted.address(Level::Pd), PhysAddr(0xf_ffff_f000));
        assert_eq!(counted.bits() & !PageTableEntry::PRESENT_COUNT, t.bits());
        assert_eq!(counted.reserved_bits(Level::Pml4, 40, false), 0);
        assert_eq!(PageTableEntry::PRESENT_COUNT & (PageTableEntry::ADDRESS | PageTableEntry::NO_EXECUTE), 0);
    }

    #[test]
    fn pat_bit_moves_with_the_page_size() {
        assert_eq!(PageTableEntry::pat_bit(Level::Pt), 1 << 7);
        assert_eq!(PageTableEntry::pat_bit(Level::Pd), 1 << 12);
        assert_eq!(PageTableEntry::pat_bit(Level::Pdpt), 1 << 12);
    }

    #[test]
    fn address_is_masked_to_maxphyaddr() {
        assert_eq!(address_mask(52), 0x000f_ffff_ffff_f000);
        assert_eq!(address_mask(46), 0x0000_3fff_ffff_f000);
        let e = PageTableEntry(PageTableEntry::PRESENT | (1 << 46));
        assert_eq!(e.reserved_bits(Level::Pt, 46, true), 1 << 46);
        assert_eq!(e.reserved_bits(Level::Pt, 52, true), 0);
        // Protection keys and ignored high bits are never part of the address.
        assert_eq!(PageTableEntry(0x7ff0_0000_0000_1001).address(Level::Pt), PhysAddr(0x1000));
    }

    #[test]
    fn reserved_bits_by_level() {
        let ps = PageTableEntry(PageTableEntry::PRESENT | PageTableEntry::HUGE_PAGE);
        assert_eq!(ps.reserved_bits(Level::Pml4, 52, true), PageTableEntry::HUGE_PAGE);
        assert_eq!(ps.reserved_bits(Level::Pml5, 52, true), PageTableEntry::HUGE_PAGE);
        assert_eq!(ps.reserved_bits(Level::Pd, 52, true), 0);
        assert_eq!(ps.with(1 << 13, true).reserved_bits(Level::Pd, 52, true), 1 << 13);
        assert_eq!(ps.with(1 << 21, true).reserved_bits(Level::Pd, 52, true), 0);
        assert_eq!(ps.with(1 << 21, true).reserved_bits(Level::Pdpt, 52, true), 1 << 21);
        assert_eq!(ps.with(PageTableEntry::PAT_LARGE, true).reserved_bits(Level::Pdpt, 52, true), 0);
        let nx = PageTableEntry(PageTableEntry::PRESENT | PageTableEntry::NO_EXECUTE);
        assert_eq!(nx.reserved_bits(Level::Pt, 52, false), PageTableEntry::NO_EXECUTE);
        assert_eq!(nx.reserved_bits(Level::Pt, 52, true), 0);
        assert_eq!(PageTableEntry(PageTableEntry::NO_EXECUTE).reserved_bits(Level::Pt, 52, false), 0);
    }

    #[test]
    fn editing_keeps_other_bits() {
        let e = PageTableEntry::leaf(PhysAddr(0x20_0000), PageSize::Size2M, RWX_USER, true)
            .with(PageTableEntry::DIRTY | PageTableEntry::PAT_LARGE, true);
        let moved = e.with_address(PhysAddr(0x60_0000), Level::Pd);
        assert_eq!(moved.address(Level::Pd), PhysAddr(0x60_0000));
        assert!(moved.has(PageTableEntry::PAT_LARGE | PageTableEntry::DIRTY | PageTableEntry::HUGE_PAGE));
        let ro = LeafPermissions { writable: false, user: false, executable: false };
        let p = e.with_permissions(ro, true);
        assert!(!p.is_writable() && !p.is_user() && p.is_no_execute() && p.has(PageTableEntry::PAT_LARGE));
        assert_eq!(p.address(Level::Pd), PhysAddr(0x20_0000));
    }

    #[test]
    fn levels_and_sizes() {
        assert_eq!(Level::root(false), Level::Pml4);
        assert_eq!(Level::root(true), Level::Pml5);
        assert_eq!(Level::Pt.shift(), 12);
        assert_eq!(Level::Pml5.shift(), 48);
        assert_eq!(Level::Pd.entry_span(), 2 << 20);
        let va = 0x0123_4567_89ab_c000u64;
        assert_eq!(Level::Pml4.index(va), ((va >> 39) & 511) as usize);
        assert_eq!(Level::Pt.index(va), 0xbc);
        assert_eq!(Level::Pml5.lower(), Some(Level::Pml4));
        assert_eq!(Level::Pt.lower(), None);
        for size in PageSize::ALL {
            assert_eq!(size.level().page_size(), Some(size));
            assert_eq!(size.level().entry_span(), size.bytes());
        }
        assert_eq!(Level::Pml4.page_size(), None);
        assert_eq!(format!("{}", PageSize::Size2M), "2M");
        assert_eq!(format!("{}", PageTableEntry(0x8000_0000_0000_0003)), "0x8000000000000003 [P W NX]");
    }

    #[test]
    fn permissions_from_protection() {
        let p = LeafPermissions::from_protection(Protection::READ | Protection::WRITE | Protection::KERN);
        assert_eq!(p, LeafPermissions { writable: true, user: false, executable: false });
        let p = LeafPermissions::from_protection(Protection::READ | Protection::EXEC);
        assert_eq!(p, LeafPermissions { writable: false, user: true, executable: true });
    }
}
