//! [`TableRef`]: one page table in physical memory, and the only place
//! that computes where its entries are (`table + 8 * index`), reads them or
//! writes them.

use crate::entry::{Level, PageTableEntry, ENTRIES_PER_TABLE, TABLE_BYTES};
use crate::machine::Machine;
use aspace::PhysAddr;
use core::fmt;

/// A page table in physical memory: 512 eight-byte entries at a 4 KiB-aligned
/// physical address, at whatever level it is used.
///
/// Holding a `TableRef` means the table may be *read*: it is a page table
/// that the machine it is read with reaches, and so are the tables its
/// present entries point at (see [`TableRef::new`]). Every entry the crate
/// reads or writes goes through here. Writing is for the crate alone: it
/// writes only the tables of trees a [`crate::PageTables`] built, adopted
/// ([`crate::PageTables::from_root`]) or shares ([`crate::KernelHalf`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct TableRef(PhysAddr);

impl TableRef {
    /// The page table at `table`.
    ///
    /// # Panics
    /// When `table` is not 4 KiB-aligned.
    ///
    /// # Safety
    /// `table` is a page table that the machine it will be read with
    /// reaches (see [`Machine::read_u64`]), and so is every table its
    /// present entries point at, for as long as this `TableRef`, or one
    /// derived from it by a walk, is used.
    pub const unsafe fn new(table: PhysAddr) -> Self {
        assert!(table.0 & (TABLE_BYTES - 1) == 0, "a page table is 4 KiB-aligned");
        TableRef(table)
    }

    /// The root table the calling CPU is using (CR3), which `machine`
    /// promises is a live tree of page tables ([`Machine::current_root`]).
    pub fn current<M: Machine + ?Sized>(machine: &M) -> Self {
        let root = machine.current_root();
        debug_assert!(root.is_aligned(TABLE_BYTES), "CR3 holds a 4 KiB-aligned root");
        TableRef(PhysAddr(root.0 & !(TABLE_BYTES - 1)))
    }

    /// A frame the crate owns and uses as a page table: one from
    /// [`Machine::alloc_frame`], or the root of a tree it adopted.
    pub(crate) const fn owned(frame: PhysAddr) -> Self {
        debug_assert!(frame.0 & (TABLE_BYTES - 1) == 0, "a page table is 4 KiB-aligned");
        TableRef(frame)
    }

    /// The table that `entry`, an entry of a table at `level` read through
    /// a `TableRef`, points at: `None` when it is not present or maps a page.
    #[inline(always)]
    pub(crate) const fn below(entry: PageTableEntry, level: Level) -> Option<TableRef> {
        if entry.is_present() && !entry.is_leaf(level) {
            Some(TableRef(entry.address(level)))
        } else {
            None
        }
    }

    /// The table's physical address.
    pub const fn addr(self) -> PhysAddr {
        self.0
    }

    /// The physical address of entry `index`: the one place it is computed.
    /// The crate's indices are below 512 by construction ([`Level::index`]
    /// masks; loops run over a table's entries), so it checks them in debug
    /// builds only: a check on every entry cost the range edits 6% more
    /// instructions.
    #[inline(always)]
    const fn entry_address(self, index: usize) -> PhysAddr {
        debug_assert!(index < ENTRIES_PER_TABLE, "a table has 512 entries");
        PhysAddr(self.0 .0 + 8 * index as u64)
    }

    /// The physical address of entry `index`.
    ///
    /// # Panics
    /// When `index` is not below 512.
    pub const fn slot(self, index: usize) -> PhysAddr {
        assert!(index < ENTRIES_PER_TABLE, "a table has 512 entries");
        self.entry_address(index)
    }

    /// Entry `index`.
    ///
    /// # Panics
    /// When `index` is not below 512.
    pub fn read<M: Machine + ?Sized>(self, machine: &M, index: usize) -> PageTableEntry {
        assert!(index < ENTRIES_PER_TABLE, "a table has 512 entries");
        self.get(machine, index)
    }

    /// Entry `index`, for the crate, whose indices are below 512.
    #[inline(always)]
    pub(crate) fn get<M: Machine + ?Sized>(self, machine: &M, index: usize) -> PageTableEntry {
        // SAFETY: a `TableRef` is a page table the machine reaches and that
        // may be read (`new`'s contract, `current`'s machine promise, or a
        // table the crate owns), and with `index` below 512 (the crate's
        // indices are) the word is an aligned one inside it.
        PageTableEntry(unsafe { machine.read_u64(self.entry_address(index)) })
    }

    /// Writes entry `index`, for the crate, whose indices are below 512.
    #[inline(always)]
    pub(crate) fn set<M: Machine + ?Sized>(self, machine: &M, index: usize, entry: PageTableEntry) {
        // SAFETY: the crate writes only the tables of a tree a `PageTables`
        // built from its own frames, adopted under `from_root`'s contract,
        // or shares through a `KernelHalf`, and orders its writes so that a
        // CPU walking the tree always finds it well formed (break before
        // make, invalidation before a table is reused); with `index` below
        // 512 the word is an aligned one inside the table.
        unsafe { machine.write_u64(self.entry_address(index), entry.bits()) }
    }

    /// The one place a table's present-entry count changes.
    ///
    /// Entry `index` of this table, read as `pointer`, points at a table
    /// that gained or lost `change` present entries: the count in its
    /// ignored bits ([`PageTableEntry::PRESENT_COUNT`]) moves by `change`.
    /// If that leaves the table below empty, the entry is cleared instead
    /// and the table below returned: the caller hands it to a flush batch,
    /// to be freed once no TLB can walk through it. A table this tree does
    /// not own ([`PageTableEntry::KEEP_TABLE`]) keeps no count and is never
    /// freed: nothing is written and `None` returned. `change` is not 0.
    #[inline(always)]
    pub(crate) fn move_present_count<M: Machine + ?Sized>(
        self,
        machine: &M,
        index: usize,
        pointer: PageTableEntry,
        change: i32,
    ) -> Option<TableRef> {
        debug_assert!(change != 0, "callers skip a change of nothing");
        if pointer.has(PageTableEntry::KEEP_TABLE) {
            return None;
        }
        let counted = pointer.with_present_count_moved(change);
        // A table that gained entries is not empty (known at compile time
        // on the fault path, which only adds).
        if change > 0 || counted.present_count() > 0 {
            self.set(machine, index, counted);
            return None;
        }
        self.set(machine, index, PageTableEntry::EMPTY);
        // A table pointer (never a leaf, whatever its level): its address field.
        Some(TableRef(PhysAddr(pointer.bits() & PageTableEntry::ADDRESS)))
    }
}

impl fmt::Debug for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableRef({:#x})", self.0 .0)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0 .0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_eight_bytes_apart_inside_the_table() {
        let table = TableRef::owned(PhysAddr(0x5000));
        assert_eq!(table.slot(0), PhysAddr(0x5000));
        assert_eq!(table.slot(1), PhysAddr(0x5008));
        assert_eq!(table.slot(511), PhysAddr(0x5ff8));
        assert_eq!(table.addr(), PhysAddr(0x5000));
    }

    #[test]
    fn only_present_table_pointers_lead_below() {
        let pointer = PageTableEntry::table(PhysAddr(0x9000), false).with_present_count(3);
        assert_eq!(TableRef::below(pointer, Level::Pd), Some(TableRef::owned(PhysAddr(0x9000))));
        assert_eq!(
            TableRef::below(pointer.with(PageTableEntry::KEEP_TABLE, true), Level::Pml4).map(TableRef::addr),
            Some(PhysAddr(0x9000))
        );
        assert_eq!(TableRef::below(PageTableEntry::EMPTY, Level::Pd), None);
        let leaf = PageTableEntry(0x20_0000 | PageTableEntry::PRESENT | PageTableEntry::HUGE_PAGE);
        assert_eq!(TableRef::below(leaf, Level::Pd), None);
        assert_eq!(TableRef::below(PageTableEntry(0x1000 | PageTableEntry::PRESENT), Level::Pt), None);
    }

    #[test]
    #[should_panic(expected = "4 KiB-aligned")]
    fn a_misaligned_table_is_refused() {
        // SAFETY: never read: the constructor panics first.
        let _ = unsafe { TableRef::new(PhysAddr(0x5008)) };
    }
}
