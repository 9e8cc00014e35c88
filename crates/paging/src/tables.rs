//! [`PageTables`]: one tree of x86-64 page tables and the range operations on it.

use crate::dump::MappingRuns;
use crate::edit::{self, Edit, EditCounters, Operation};
use crate::entry::{LeafPermissions, Level, PageSize, PageTableEntry, ENTRIES_PER_TABLE, TABLE_BYTES};
use crate::flush::FlushBatch;
use crate::machine::{Machine, PagingFeatures, SpaceId};
use crate::walk::{walk, Walk};
use alloc::vec::Vec;
use aspace::{AspaceError, Characteristics, FaultAccess, PhysAddr, Protection, Region, VirtAddr};

/// What every range given to [`PageTables`] must respect: 4 KiB pages.
pub const PAGE_GRANULARITY: Characteristics = Characteristics { granularity: TABLE_BYTES, alignment: TABLE_BYTES };

/// What one walk for a faulting address found ([`PageTables::probe_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultProbe {
    /// A leaf that allows the access: the fault came from a stale TLB entry.
    Allows {
        /// The virtual start of the page (of whatever size) holding the address.
        page_va: VirtAddr,
    },
    /// A leaf that does not allow the access.
    Denies,
    /// The entry for the address in `table`, at `level`, is not present.
    Missing {
        /// The table holding the missing entry.
        table: PhysAddr,
        /// Where the entry pointing at `table` is (`None` for the root),
        /// which counts `table`'s present entries.
        pointer: Option<PhysAddr>,
        /// Its level.
        level: Level,
        /// Every entry above grants user access.
        user_path: bool,
    },
}

/// A table a fault's leaves can be written into directly ([`FaultProbe::hole_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hole {
    /// The table at the leaves' level.
    table: PhysAddr,
    /// Where the entry pointing at it is (`None` for the root).
    pointer: Option<PhysAddr>,
}

impl FaultProbe {
    /// The table a leaf of `size` with `perms` can be written into directly:
    /// the walk stopped at that leaf's level on a missing entry, and every
    /// entry above already grants user access if the leaf does.
    pub(crate) fn hole_for(self, size: PageSize, perms: LeafPermissions) -> Option<Hole> {
        match self {
            FaultProbe::Missing { table, pointer, level, user_path }
                if level == size.level() && (user_path || !perms.user) =>
            {
                Some(Hole { table, pointer })
            }
            _ => None,
        }
    }
}

/// A tree of page tables: the root, and the operations that edit it over
/// page-aligned ranges.
///
/// The tree does not know about regions: it maps what it is told. Every
/// edit returns a [`FlushBatch`] that must be applied (to invalidate the
/// TLBs and release the freed tables) before the caller relies on the
/// change. An edit that cannot get a frame returns
/// [`AspaceError::OutOfMemory`] and leaves the tree exactly as it was.
///
/// Intermediate entries (those pointing at tables) are always present and
/// writable and never NX, and have U set when some leaf below was given
/// user access: the leaves alone decide what is allowed, since the CPU
/// combines the rights of every level. The global bit is never set.
///
/// `PageTables` holds no machine; the owner passes the same machine to
/// every call and calls [`PageTables::destroy`] to free the frames.
#[derive(Debug)]
pub struct PageTables {
    space: SpaceId,
    features: PagingFeatures,
    counters: EditCounters,
}

impl PageTables {
    /// An empty tree: allocates the root table. `pcid` is the PCID the
    /// address space will run under (it names the space for invalidations).
    pub fn new<M: Machine + ?Sized>(machine: &M, pcid: Option<u16>) -> Result<Self, AspaceError> {
        let root = machine.alloc_frame().ok_or(AspaceError::OutOfMemory)?;
        Ok(PageTables {
            space: SpaceId { root, pcid },
            features: machine.features(),
            counters: EditCounters::default(),
        })
    }

    /// The physical address of the root table (PML4, or PML5 with LA57).
    pub fn root(&self) -> PhysAddr {
        self.space.root
    }

    /// The root and PCID, as TLB operations name the space.
    pub fn space_id(&self) -> SpaceId {
        self.space
    }

    /// The features the tree was built for.
    pub fn features(&self) -> PagingFeatures {
        self.features
    }

    /// What the edits so far have done.
    pub fn counters(&self) -> EditCounters {
        self.counters
    }

    /// Page-table frames in the tree, the root included.
    pub fn table_frames(&self) -> u64 {
        1 + self.counters.tables_allocated - self.counters.tables_freed
    }

    /// Maps `[va, va+len)` onto `[pa, pa+len)` with rights `perms`, using at
    /// each step the largest page (1 GiB only with `huge_1g`) that the
    /// virtual and physical alignment and the remaining length allow.
    /// Translations already there are replaced; existing tables are kept.
    pub fn map<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
        perms: LeafPermissions,
    ) -> Result<FlushBatch, AspaceError> {
        self.run(machine, Operation::Map(perms), va, pa, len)
    }

    /// [`PageTables::map`], adding to `batch` (nothing is added on an
    /// error), for a range the caller has validated (see [`PageTables::run_into`]).
    pub(crate) fn map_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
        perms: LeafPermissions,
        batch: &mut FlushBatch,
    ) -> Result<(), AspaceError> {
        self.run_into(machine, Operation::Map(perms), va, pa, len, batch)
    }

    /// Removes every translation in `[va, va+len)`, splitting large pages
    /// that stick out of the range, and frees tables that become empty
    /// (through the batch).
    pub fn unmap<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
    ) -> Result<FlushBatch, AspaceError> {
        self.run(machine, Operation::Unmap, va, PhysAddr(0), len)
    }

    /// [`PageTables::unmap`], adding to `batch` (nothing is added on an
    /// error), for a range the caller has validated (see [`PageTables::run_into`]).
    pub(crate) fn unmap_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        batch: &mut FlushBatch,
    ) -> Result<(), AspaceError> {
        self.run_into(machine, Operation::Unmap, va, PhysAddr(0), len, batch)
    }

    /// Gives every translation in `[va, va+len)` the rights `perms`
    /// (splitting large pages that stick out); holes stay holes.
    pub fn protect<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        perms: LeafPermissions,
    ) -> Result<FlushBatch, AspaceError> {
        self.run(machine, Operation::Protect(perms), va, PhysAddr(0), len)
    }

    /// [`PageTables::protect`], adding to `batch` (nothing is added on an
    /// error), for a range the caller has validated (see [`PageTables::run_into`]).
    pub(crate) fn protect_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        perms: LeafPermissions,
        batch: &mut FlushBatch,
    ) -> Result<(), AspaceError> {
        self.run_into(machine, Operation::Protect(perms), va, PhysAddr(0), len, batch)
    }

    /// Points every translation in `[va, va+len)` at `new_pa` plus its
    /// offset in the range, keeping rights; holes stay holes. Large pages
    /// that stick out of the range, or whose new address loses their
    /// alignment, are split.
    pub fn remap<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        new_pa: PhysAddr,
    ) -> Result<FlushBatch, AspaceError> {
        self.run(machine, Operation::Repoint, va, new_pa, len)
    }

    /// [`PageTables::remap`], adding to `batch` (nothing is added on an
    /// error), for a range the caller has validated (see [`PageTables::run_into`]).
    pub(crate) fn remap_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        new_pa: PhysAddr,
        batch: &mut FlushBatch,
    ) -> Result<(), AspaceError> {
        self.run_into(machine, Operation::Repoint, va, new_pa, len, batch)
    }

    /// One walk for a page fault at `va`: stops at the first entry that is
    /// not present or is a leaf. The fault handler uses it twice over: to
    /// recognise a stale TLB entry (the leaf allows the access) and to find
    /// the table where the new leaf goes, so that the common fault needs no
    /// second walk from the root.
    pub(crate) fn probe_fault<M: Machine + ?Sized>(
        &self,
        machine: &M,
        va: VirtAddr,
        access: FaultAccess,
        user_mode: bool,
    ) -> FaultProbe {
        let (mut writable, mut user, mut executable) = (true, true, true);
        let mut table = self.space.root;
        let mut pointer = None;
        let mut level = Level::root(self.features.la57);
        loop {
            let slot = PhysAddr(table.0 + 8 * level.index(va.0) as u64);
            let entry = PageTableEntry(machine.read_u64(slot));
            if !entry.is_present() {
                return FaultProbe::Missing { table, pointer, level, user_path: user };
            }
            writable &= entry.is_writable();
            user &= entry.is_user();
            executable &= !entry.is_no_execute();
            if entry.is_leaf(level) {
                let allowed = (!user_mode || user)
                    && match access {
                        FaultAccess::Read => true,
                        FaultAccess::Write => writable,
                        FaultAccess::Execute => executable,
                    };
                let span = level.entry_span();
                return if allowed {
                    FaultProbe::Allows { page_va: VirtAddr(va.0 & !(span - 1)) }
                } else {
                    FaultProbe::Denies
                };
            }
            table = entry.address(level);
            pointer = Some(slot);
            level = level.lower().expect("a page-table entry is always a leaf");
        }
    }

    /// Writes leaves of `size` for the `count` pages from `va` (mapping
    /// `pa` onward) into `hole`, the table at the leaves' level that
    /// [`PageTables::probe_fault`] found, skipping entries already present,
    /// and counts them in the entry above. Not present to present needs no
    /// invalidation. The pages must lie in the table and the path above
    /// must already grant what `perms` needs (user access). Returns how
    /// many leaves it wrote.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fill_holes<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        hole: Hole,
        va: VirtAddr,
        pa: PhysAddr,
        count: u64,
        size: PageSize,
        perms: LeafPermissions,
    ) -> u64 {
        let level = size.level();
        let first = level.index(va.0);
        debug_assert!(first + count as usize <= ENTRIES_PER_TABLE, "the pages lie in one table");
        let mut written = 0;
        for page in 0..count {
            let slot = PhysAddr(hole.table.0 + 8 * (first as u64 + page));
            if PageTableEntry(machine.read_u64(slot)).is_present() {
                continue;
            }
            let leaf = PageTableEntry::leaf(PhysAddr(pa.0 + page * size.bytes()), size, perms, self.features.nx);
            machine.write_u64(slot, leaf.bits());
            written += 1;
        }
        if let Some(pointer) = hole.pointer.filter(|_| written > 0) {
            let counted = PageTableEntry(machine.read_u64(pointer)).with_present_count_moved(written as i32);
            machine.write_u64(pointer, counted.bits());
        }
        self.counters.pages_mapped[size.index()] += written;
        written
    }

    /// Walks the tree for `va` (see [`walk`]).
    pub fn walk<M: Machine + ?Sized>(&self, machine: &M, va: VirtAddr) -> Walk {
        walk(machine, self.space.root, va)
    }

    /// Every translation in the tree, in address order, compressed into runs.
    pub fn mappings<'m, M: Machine + ?Sized>(&self, machine: &'m M) -> MappingRuns<'m, M> {
        MappingRuns::new(machine, self.space.root)
    }

    /// Frees the whole tree: the returned batch flushes everything and then
    /// frees every table, the root included.
    pub fn destroy<M: Machine + ?Sized>(self, machine: &M) -> FlushBatch {
        let mut batch = FlushBatch::new();
        batch.flush_everything();
        let mut stack = Vec::from([(self.space.root, Level::root(self.features.la57))]);
        while let Some((table, level)) = stack.pop() {
            if let Some(lower) = level.lower() {
                for index in 0..ENTRIES_PER_TABLE {
                    let entry = PageTableEntry(machine.read_u64(PhysAddr(table.0 + 8 * index as u64)));
                    if entry.is_present() && !entry.is_leaf(level) {
                        stack.push((entry.address(level), lower));
                    }
                }
            }
            batch.free_after_flush(table);
        }
        batch
    }

    fn run<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        op: Operation,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
    ) -> Result<FlushBatch, AspaceError> {
        // The checks a region gets, on this range (flags are not the tree's business).
        Region { va, pa, len, prot: Protection::READ }.validate(
            PAGE_GRANULARITY,
            self.features.virt_width(),
            self.features.phys_bits,
        )?;
        let mut batch = FlushBatch::new();
        self.run_into(machine, op, va, pa, len, &mut batch)?;
        Ok(batch)
    }

    /// Runs one edit on a range that `Region::validate` accepts with this
    /// tree's width and page granularity. The public operations check it in
    /// [`PageTables::run`]; the address space's own edits pass ranges
    /// inside regions of its set, checked when they were added or named,
    /// and do not pay for the checks twice (debug builds still check).
    fn run_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        op: Operation,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
        batch: &mut FlushBatch,
    ) -> Result<(), AspaceError> {
        let width = self.features.virt_width();
        debug_assert_eq!(
            Region { va, pa, len, prot: Protection::READ }.validate(PAGE_GRANULARITY, width, self.features.phys_bits),
            Ok(()),
            "an edit of a range no region could hold"
        );
        let mask = (1u64 << width.bits()) - 1;
        let start = va.0 & mask;
        let edit = Edit { op, start, end: start + len, pa_start: pa.0 };
        edit::run(machine, self.features, self.space, edit, &mut self.counters, batch)
            .map_err(|()| AspaceError::OutOfMemory)
    }
}
