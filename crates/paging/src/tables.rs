//! [`PageTables`]: one tree of x86-64 page tables and the range operations on it.

use crate::adopt::{self, TableOwnership};
use crate::dump::MappingRuns;
use crate::edit::{self, Edit, EditCounters, Operation};
use crate::entry::{LeafPermissions, Level, PageSize, PageTableEntry, ENTRIES_PER_TABLE, TABLE_BYTES};
use crate::error::PagingError;
use crate::flush::FlushBatch;
use crate::kernel_half::KernelHalf;
use crate::machine::{Machine, PagingFeatures, SpaceId};
use crate::relocate::{self, MoveRefused};
use crate::table::TableRef;
use crate::walk::{descend, walk, Walk, WalkStep};
use alloc::vec::Vec;
use aspace::{AddressKind, Characteristics, FaultAccess, PhysAddr, Protection, Region, VirtAddr};
use core::ops::ControlFlow;

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
        table: TableRef,
        /// The entry pointing at `table`, as (its table, its index); `None`
        /// for the root. It counts `table`'s present entries.
        pointer: Option<(TableRef, usize)>,
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
    table: TableRef,
    /// The entry pointing at it, as (its table, its index); `None` for the root.
    pointer: Option<(TableRef, usize)>,
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
/// [`PagingError::OutOfMemory`] and leaves the tree exactly as it was.
///
/// Intermediate entries (those pointing at tables) are always present and
/// writable and never NX, and have U set when some leaf below was given
/// user access: the leaves alone decide what is allowed, since the CPU
/// combines the rights of every level. The global bit is never set.
///
/// `PageTables` holds no machine; the owner passes the same machine to
/// every call and calls [`PageTables::destroy`] to free the frames.
///
/// A tree is made empty ([`PageTables::new`]), around a root built by
/// someone else ([`PageTables::from_root`]), or with the upper half shared
/// with other trees ([`PageTables::new_with_kernel_half`]).
#[derive(Debug)]
pub struct PageTables {
    space: SpaceId,
    features: PagingFeatures,
    counters: EditCounters,
    /// The tables the tree held when it was made, the root included: 1 for
    /// a new tree, what the walk of an adopted one counted.
    initial_tables: u64,
    /// The root is this tree's to free (not when adopted borrowed).
    owns_root: bool,
    /// The shared upper half, if the tree was made with one. Released by
    /// [`PageTables::destroy`] only: a tree dropped without being destroyed
    /// keeps it from being destroyed for good (see `Drop`).
    kernel_half: Option<KernelHalf>,
}

impl PageTables {
    /// An empty tree: allocates the root table. `pcid` is the PCID the
    /// address space will run under (it names the space for invalidations).
    pub fn new<M: Machine + ?Sized>(machine: &M, pcid: Option<u16>) -> Result<Self, PagingError> {
        let root = machine.alloc_frame().ok_or(PagingError::OutOfMemory)?;
        Ok(PageTables::around(machine, root, pcid, 1, true, None))
    }

    fn around<M: Machine + ?Sized>(
        machine: &M,
        root: PhysAddr,
        pcid: Option<u16>,
        initial_tables: u64,
        owns_root: bool,
        kernel_half: Option<KernelHalf>,
    ) -> Self {
        PageTables {
            space: SpaceId { root, pcid },
            features: machine.features(),
            counters: EditCounters::default(),
            initial_tables,
            owns_root,
            kernel_half,
        }
    }

    /// Adopts the live tree under `root`, built by someone else (a boot
    /// loader, the kernel's early code, another page-table library):
    /// allocates nothing, and from now on edits it like a tree of its own.
    ///
    /// One walk of the whole tree checks it and counts its tables
    /// ([`PageTables::table_frames`]). Refused, with the tree untouched,
    /// when `root` is not 4 KiB-aligned ([`PagingError::Misaligned`]), an
    /// entry has reserved bits ([`PagingError::ReservedBits`]; a 1 GiB leaf
    /// without 1 GiB pages counts), a table is reached twice
    /// ([`PagingError::AliasedTable`]: recursive mappings are not trees), or
    /// an entry pointing at a table takes away a right some leaf below has
    /// ([`PagingError::HiddenRights`]). Accepted, it then rewrites, in every
    /// entry pointing at a table, only what no leaf's access depends on:
    /// such entries become writable, without NX and without G (as the
    /// tree's own are: the leaves alone decide, and no leaf below gains a
    /// right, as checked), and bits 62:52, which the CPU ignores, take the
    /// tree's bookkeeping: the table's present count ([`TableOwnership::Owned`])
    /// or [`PageTableEntry::KEEP_TABLE`] ([`TableOwnership::Borrowed`]).
    /// Leaves are not touched. Which tables the tree may free is `ownership`.
    ///
    /// # Safety
    /// - `root` is the root table (PML4, or PML5 when `machine.features()`
    ///   says LA57) of a tree of page tables built for `machine.features()`,
    ///   in memory that `machine` reaches (its reads and writes are allowed,
    ///   see [`Machine::write_u64`]);
    /// - from now on only this `PageTables` edits the tree: its builder
    ///   writes none of its entries any more, and does not rely on bits
    ///   62:52 of entries that point at tables;
    /// - with [`TableOwnership::Owned`], every table of the tree came from
    ///   `machine.alloc_frame` and nothing else will free it; with
    ///   [`TableOwnership::Borrowed`], the tables stay where they are (not
    ///   freed or reused) for as long as the tree is in use.
    pub unsafe fn from_root<M: Machine + ?Sized>(
        machine: &M,
        root: PhysAddr,
        pcid: Option<u16>,
        ownership: TableOwnership,
    ) -> Result<Self, PagingError> {
        if !root.is_aligned(TABLE_BYTES) {
            return Err(PagingError::Misaligned { kind: AddressKind::Physical, value: root.0, required: TABLE_BYTES });
        }
        let features = machine.features();
        let tables = adopt::adopt(machine, TableRef::owned(root), features, ownership)?;
        let owns_root = ownership == TableOwnership::Owned;
        Ok(PageTables::around(machine, root, pcid, tables, owns_root, None))
    }

    /// An empty lower half with `kernel`'s upper half: allocates the root
    /// and points its upper-half entries (PML4 256 to 511, or PML5 256 to
    /// 511 with LA57) at the kernel half's tables, which every tree made
    /// with it shares. A map in the upper half through any of them is seen
    /// through all of them; their lower halves are their own. See
    /// [`KernelHalf`] for what the sharing asks of the caller (one lock for
    /// edits of the upper half, and invalidations in every space sharing
    /// it). Refused when the kernel half was made for another number of
    /// levels ([`PagingError::KernelHalfLevels`]).
    pub fn new_with_kernel_half<M: Machine + ?Sized>(
        machine: &M,
        kernel: &KernelHalf,
        pcid: Option<u16>,
    ) -> Result<Self, PagingError> {
        let root_level = Level::root(machine.features().la57);
        if kernel.root_level() != root_level {
            return Err(PagingError::KernelHalfLevels {
                machine: root_level.number() as u8,
                kernel_half: kernel.root_level().number() as u8,
            });
        }
        let root = machine.alloc_frame().ok_or(PagingError::OutOfMemory)?;
        kernel.link_into(machine, TableRef::owned(root));
        Ok(PageTables::around(machine, root, pcid, 1, true, Some(kernel.clone())))
    }

    /// The physical address of the root table (PML4, or PML5 with LA57).
    pub fn root(&self) -> PhysAddr {
        self.space.root
    }

    /// The root table, to read it.
    pub fn root_table(&self) -> TableRef {
        TableRef::owned(self.space.root)
    }

    /// The shared upper half, if the tree was made with one.
    pub fn kernel_half(&self) -> Option<&KernelHalf> {
        self.kernel_half.as_ref()
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

    /// Page-table frames in the tree, the root included: those it was made
    /// with (an adopted tree's, borrowed or owned), and those its edits
    /// allocated and did not free. The tables of a shared kernel half are
    /// the kernel half's ([`KernelHalf::table_frames`]), whichever tree's
    /// edit allocated them.
    pub fn table_frames(&self) -> u64 {
        self.initial_tables + self.counters.tables_allocated - self.counters.tables_freed
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
    ) -> Result<FlushBatch, PagingError> {
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
    ) -> Result<(), PagingError> {
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
    ) -> Result<FlushBatch, PagingError> {
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
    ) -> Result<(), PagingError> {
        self.run_into(machine, Operation::Unmap, va, PhysAddr(0), len, batch)
    }

    /// Moves the 4 KiB leaves of `[from, from+len)` to `[to, to+len)`, as
    /// `mremap` moves a mapping's entries: each present leaf goes, as it is
    /// (frame, rights, accessed and dirty bits), to the entry at the same
    /// offset from `to`; the old pages are unmapped (the batch returned holds
    /// their invalidations and the source tables the move leaves empty). Target
    /// tables are made as needed; where `from`, `to` and a whole 2 MiB
    /// block of the range are 2 MiB-aligned and the target has no page
    /// table there, the page table itself moves (one directory entry).
    ///
    /// All or nothing: refused with nothing changed, `batch` included, when
    /// a target table cannot be had ([`MoveRefused::OutOfMemory`]), or when
    /// the ranges overlap, a large page lies in either range, a target
    /// entry is present, or a range lies in a shared kernel half
    /// ([`MoveRefused::NotMovable`]). The ranges are 4 KiB-aligned, `len`
    /// is not zero, and both lie in one half of the address space, as a
    /// region's do: checked here ([`MoveRefused::Range`]).
    pub fn move_entries<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        from: VirtAddr,
        to: VirtAddr,
        len: u64,
    ) -> Result<FlushBatch, MoveRefused> {
        for va in [from, to] {
            Region { va, pa: PhysAddr(0), len, prot: Protection::READ }
                .validate(PAGE_GRANULARITY, self.features.virt_width(), self.features.phys_bits)
                .map_err(|error| MoveRefused::Range(PagingError::from_range_check(error)))?;
        }
        let mut batch = FlushBatch::new();
        self.move_into(machine, from, to, len, &mut batch)?;
        Ok(batch)
    }

    /// [`PageTables::move_entries`], adding to `batch` (nothing is added on
    /// an error), for ranges the caller has validated (4 KiB-aligned, `len`
    /// not zero, each in one half of the address space).
    pub(crate) fn move_into<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        from: VirtAddr,
        to: VirtAddr,
        len: u64,
        batch: &mut FlushBatch,
    ) -> Result<(), MoveRefused> {
        let width = self.features.virt_width();
        let mask = (1u64 << width.bits()) - 1;
        let (from, to) = (from.0 & mask, to.0 & mask);
        let upper = |va: u64| va >> (width.bits() - 1) != 0;
        if self.kernel_half.is_some() && (upper(from) || upper(to)) {
            return Err(MoveRefused::NotMovable);
        }
        if len == 0
            || from.checked_add(len).is_none_or(|end| end > mask + 1)
            || to.checked_add(len).is_none_or(|end| end > mask + 1)
        {
            return Err(MoveRefused::NotMovable);
        }
        relocate::move_leaves(machine, self.features, self.root_table(), (from, to, len), &mut self.counters, batch)
    }

    /// Gives every translation in `[va, va+len)` the rights `perms`
    /// (splitting large pages that stick out); holes stay holes.
    pub fn protect<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        va: VirtAddr,
        len: u64,
        perms: LeafPermissions,
    ) -> Result<FlushBatch, PagingError> {
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
    ) -> Result<(), PagingError> {
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
    ) -> Result<FlushBatch, PagingError> {
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
    ) -> Result<(), PagingError> {
        self.run_into(machine, Operation::Repoint, va, new_pa, len, batch)
    }

    /// One walk for a page fault at `va`: stops at the first entry that is
    /// not present or is a leaf. The fault handler uses it twice over: to
    /// recognise a stale TLB entry (the leaf allows the access) and to find
    /// the table where the new leaf goes, so that the common fault needs no
    /// second walk from the root.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn probe_fault<M: Machine + ?Sized>(
        &self,
        machine: &M,
        va: VirtAddr,
        access: FaultAccess,
        user_mode: bool,
    ) -> FaultProbe {
        let (mut writable, mut user, mut executable) = (true, true, true);
        let mut pointer = None;
        descend(machine, self.root_table(), Level::root(self.features.la57), va.0, |step| {
            let WalkStep { level, table, index, entry } = step;
            if !entry.is_present() {
                return ControlFlow::Break(FaultProbe::Missing { table, pointer, level, user_path: user });
            }
            writable &= entry.is_writable();
            user &= entry.is_user();
            executable &= !entry.is_no_execute();
            if !entry.is_leaf(level) {
                pointer = Some((table, index));
                return ControlFlow::Continue(());
            }
            let allowed = (!user_mode || user)
                && match access {
                    FaultAccess::Read => true,
                    FaultAccess::Write => writable,
                    FaultAccess::Execute => executable,
                };
            let span = level.entry_span();
            ControlFlow::Break(if allowed {
                FaultProbe::Allows { page_va: VirtAddr(va.0 & !(span - 1)) }
            } else {
                FaultProbe::Denies
            })
        })
    }

    /// Writes leaves of `size` for the `count` pages from `va` (mapping
    /// `pa` onward) into `hole`, the table at the leaves' level that
    /// [`PageTables::probe_fault`] found, skipping entries already present,
    /// and counts them in the entry above. Not present to present needs no
    /// invalidation. The pages must lie in the table and the path above
    /// must already grant what `perms` needs (user access). Returns how
    /// many leaves it wrote.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
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
            let index = first + page as usize;
            if hole.table.get(machine, index).is_present() {
                continue;
            }
            let leaf = PageTableEntry::leaf(PhysAddr(pa.0 + page * size.bytes()), size, perms, self.features.nx);
            hole.table.set(machine, index, leaf);
            written += 1;
        }
        if let Some((parent, index)) = hole.pointer.filter(|_| written > 0) {
            let emptied = parent.move_present_count(machine, index, parent.get(machine, index), written as i32);
            debug_assert!(emptied.is_none(), "a table that gained entries is not empty");
        }
        self.counters.pages_mapped[size.index()] += written;
        written
    }

    /// Writes 4 KiB leaves for the (page, frame) pairs of `pages`, each
    /// with the rights `rights` gives it, into `hole`, the last-level table
    /// that [`PageTables::probe_fault`] found for one of them, skipping
    /// entries already present, and counts them in the entry above, as
    /// [`PageTables::fill_holes`] does for a contiguous run. Every page must
    /// lie in that table and the path above must already grant what the
    /// rights need (user access). Returns how many leaves it wrote.
    pub(crate) fn fill_scattered<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        hole: Hole,
        pages: &[(u64, PhysAddr)],
        rights: impl Fn(u64, PhysAddr) -> LeafPermissions,
    ) -> u64 {
        let level = PageSize::Size4K.level();
        let mut written = 0;
        for &(va, pa) in pages {
            let index = level.index(va);
            if hole.table.get(machine, index).is_present() {
                continue;
            }
            let leaf = PageTableEntry::leaf(pa, PageSize::Size4K, rights(va, pa), self.features.nx);
            hole.table.set(machine, index, leaf);
            written += 1;
        }
        if let Some((parent, index)) = hole.pointer.filter(|_| written > 0) {
            let emptied = parent.move_present_count(machine, index, parent.get(machine, index), written as i32);
            debug_assert!(emptied.is_none(), "a table that gained entries is not empty");
        }
        self.counters.pages_mapped[PageSize::Size4K.index()] += written;
        written
    }

    /// Walks the tree for `va` (see [`walk`]).
    pub fn walk<M: Machine + ?Sized>(&self, machine: &M, va: VirtAddr) -> Walk {
        walk(machine, self.root_table(), va)
    }

    /// Every translation in the tree, in address order, compressed into runs.
    pub fn mappings<'m, M: Machine + ?Sized>(&self, machine: &'m M) -> MappingRuns<'m, M> {
        MappingRuns::new(machine, self.root_table())
    }

    /// Frees the whole tree: the returned batch flushes everything and then
    /// frees every table the tree owns, the root included. Tables it does
    /// not own are left where they are: a shared kernel half's (they are
    /// the [`KernelHalf`]'s), and those of a tree adopted with
    /// [`TableOwnership::Borrowed`] (the root included), though the tables
    /// the tree allocated below them are freed.
    pub fn destroy<M: Machine + ?Sized>(mut self, machine: &M) -> FlushBatch {
        let mut batch = FlushBatch::new();
        batch.flush_everything();
        let root_level = Level::root(self.features.la57);
        // The kernel half's entries of the root lead to tables it owns.
        let own_entries = if self.kernel_half.is_some() { KernelHalf::FIRST_INDEX } else { ENTRIES_PER_TABLE };
        let mut stack = Vec::from([(self.root_table(), root_level, self.owns_root)]);
        while let Some((table, level, owned)) = stack.pop() {
            if let Some(lower) = level.lower() {
                let entries = if level == root_level { own_entries } else { ENTRIES_PER_TABLE };
                for index in 0..entries {
                    let entry = table.get(machine, index);
                    if let Some(below) = TableRef::below(entry, level) {
                        stack.push((below, lower, !entry.has(PageTableEntry::KEEP_TABLE)));
                    }
                }
            }
            if owned {
                // SAFETY: a table of this tree that it owns (allocated by
                // its edits, or adopted as owned); the tree is being
                // destroyed, and the batch flushes the whole space first.
                unsafe { batch.free_after_flush(table.addr()) };
            }
        }
        // Released: the kernel half may be destroyed once no tree uses it.
        drop(self.kernel_half.take());
        batch
    }

    fn run<M: Machine + ?Sized>(
        &mut self,
        machine: &M,
        op: Operation,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
    ) -> Result<FlushBatch, PagingError> {
        // The checks a region gets, on this range (flags are not the tree's business).
        Region { va, pa, len, prot: Protection::READ }
            .validate(PAGE_GRANULARITY, self.features.virt_width(), self.features.phys_bits)
            .map_err(PagingError::from_range_check)?;
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
    ) -> Result<(), PagingError> {
        let width = self.features.virt_width();
        debug_assert_eq!(
            Region { va, pa, len, prot: Protection::READ }.validate(PAGE_GRANULARITY, width, self.features.phys_bits),
            Ok(()),
            "an edit of a range no region could hold"
        );
        let mask = (1u64 << width.bits()) - 1;
        let start = va.0 & mask;
        let edit = Edit { op, start, end: start + len, pa_start: pa.0 };
        let result = match &self.kernel_half {
            // Edits never cross the canonical hole: this one lies in the
            // shared upper half, whose tables the kernel half counts.
            Some(half) if start >> (width.bits() - 1) != 0 => {
                let mut counters = EditCounters::default();
                let result = edit::run(machine, self.features, self.space, edit, &mut counters, batch);
                half.count_tables(counters.tables_allocated, counters.tables_freed);
                counters.tables_allocated = 0;
                counters.tables_freed = 0;
                self.counters.add(&counters);
                result
            }
            _ => edit::run(machine, self.features, self.space, edit, &mut self.counters, batch),
        };
        result.map_err(|()| PagingError::OutOfMemory)
    }
}

impl Drop for PageTables {
    /// A tree dropped without [`PageTables::destroy`] leaks its tables (a
    /// CPU may still be using them), and so keeps its hold on the kernel
    /// half, whose tables it links to: the kernel half then cannot be
    /// destroyed.
    fn drop(&mut self) {
        if let Some(half) = self.kernel_half.take() {
            core::mem::forget(half);
        }
    }
}
