//! The range cursor: one edit of the tables over a virtual range.
//!
//! An edit (map, unmap, protect, re-point) descends the tree once, visiting
//! each table that covers part of the range exactly once and working on its
//! entries in order, instead of walking from the root for every page.
//!
//! Each edit runs twice over the same code:
//! 1. the **plan** pass writes nothing; it only counts the frames the edit
//!    will need (new tables, tables for splitting large pages), seeing tables
//!    it would create as empty and tables it would split as the split result;
//! 2. those frames are allocated up front; if one is missing, the frames
//!    already taken go back and the edit fails with nothing changed;
//! 3. the **apply** pass does the edit, taking frames from that reserve, so
//!    it cannot fail half-way.
//!
//! Splitting a large page that the range covers only in part installs the
//! new table in place of the large leaf in one write, then invalidates the
//! large page at once: the table maps the same memory with the same
//! attributes, so there is never a moment without a translation (another
//! CPU may be running on that memory: its stack, its code), and a TLB that
//! briefly holds both sizes holds the same translation twice, which the SDM
//! allows (§4.10.2.3: only translations that differ in frame or attributes
//! are a problem). Only then does the edit change the small entries.
//!
//! Two shortcuts keep short edits and long runs of 4 KiB pages cheap:
//! - an edit whose range lies in one page table that already exists (a
//!   fault, a one-page protect) needs no frame, so it skips the plan: one
//!   walk down to that table, then its entries ([`edit_in_one_page_table`]);
//! - the entries of a page table are edited by one loop per operation
//!   ([`edit_page_table`]), without the per-entry dispatch of the general
//!   cursor (a 4 KiB leaf is never split and has no table below).

use crate::entry::{LeafPermissions, Level, PageSize, PageTableEntry, ENTRIES_PER_TABLE, TABLE_BYTES};
use crate::flush::FlushBatch;
use crate::machine::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
use crate::table::TableRef;
use crate::walk::descend;
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};
use core::ops::ControlFlow;

/// What an edit does to every page of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Map the range linearly with these rights, with the largest pages the
    /// alignment allows, replacing whatever leaf is there. Existing tables
    /// are kept (smaller pages are not merged into a large one).
    Map(LeafPermissions),
    /// Remove every translation; tables that become empty are freed.
    Unmap,
    /// Give every existing translation these rights; holes stay holes.
    Protect(LeafPermissions),
    /// Point every existing translation at the new physical range; holes stay holes.
    Repoint,
}

impl Operation {
    /// True when the leaves written grant user access, so the tables above
    /// them must too.
    fn grants_user(self) -> bool {
        matches!(self, Operation::Map(p) | Operation::Protect(p) if p.user)
    }

    /// True when the operation gives pages a physical address (which must
    /// keep a large page's alignment for it to stay large).
    fn sets_address(self) -> bool {
        matches!(self, Operation::Map(_) | Operation::Repoint)
    }
}

/// One edit: an operation over `[start, end)`, virtual addresses reduced to
/// the translated bits (no sign extension), so the range never wraps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edit {
    pub op: Operation,
    pub start: u64,
    pub end: u64,
    /// The physical address `start` maps to (for Map and Repoint).
    pub pa_start: u64,
}

impl Edit {
    fn pa_at(&self, va: u64) -> u64 {
        self.pa_start.wrapping_add(va.wrapping_sub(self.start))
    }
}

/// Statistics of applied edits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EditCounters {
    /// Leaves made present where nothing was, by page size ([`crate::PageSize::index`]).
    pub pages_mapped: [u64; 3],
    /// Large pages split into a table of smaller ones.
    pub splits: u64,
    /// Immediate invalidations made by break-before-make during splits.
    pub split_invalidations: u64,
    /// Page-table frames taken by edits.
    pub tables_allocated: u64,
    /// Page-table frames freed by edits (handed to flush batches).
    pub tables_freed: u64,
}

impl EditCounters {
    pub(crate) fn add(&mut self, other: &EditCounters) {
        for (mine, theirs) in self.pages_mapped.iter_mut().zip(other.pages_mapped) {
            *mine += theirs;
        }
        self.splits += other.splits;
        self.split_invalidations += other.split_invalidations;
        self.tables_allocated += other.tables_allocated;
        self.tables_freed += other.tables_freed;
    }
}

/// A table as an edit sees it.
#[derive(Clone, Copy)]
enum TableView {
    /// A table in memory.
    Real(TableRef),
    /// A table the plan pass would create: all entries empty.
    Fresh,
    /// The table the plan pass would make by splitting this large leaf at this level.
    Split(PageTableEntry, Level),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Plan,
    Apply,
}

/// The state of one pass of an edit.
pub(crate) struct Editor<'m, 'b, M: Machine + ?Sized> {
    machine: &'m M,
    features: PagingFeatures,
    space: SpaceId,
    pass: Pass,
    /// Plan pass: frames the edit will need.
    frames_needed: usize,
    /// Apply pass: the frames allocated for it.
    reserve: Vec<PhysAddr>,
    /// Apply pass: where the invalidations and freed tables go.
    batch: &'b mut FlushBatch,
    counters: EditCounters,
}

/// Runs `edit` on the tables under `space.root`, built for `features`:
/// plans, reserves the frames, applies, adds the invalidations and freed
/// tables to `batch` and what it did to `counters`. On `Err(())` (a frame
/// could not be allocated) nothing changed, `batch` and the counters
/// included.
pub(crate) fn run<M: Machine + ?Sized>(
    machine: &M,
    features: PagingFeatures,
    space: SpaceId,
    edit: Edit,
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) -> Result<(), ()> {
    let root = TableRef::owned(space.root);
    if edit_in_one_page_table(machine, features, root, &edit, counters, batch) {
        return Ok(());
    }
    let root_level = Level::root(features.la57);

    // The plan pass adds nothing to its batch: it writes nothing.
    let mut unused = FlushBatch::new();
    let mut plan = Editor::new(machine, features, space, Pass::Plan, Vec::new(), &mut unused);
    plan.edit_table(&edit, TableView::Real(root), root_level, 0);

    let mut reserve = Vec::with_capacity(plan.frames_needed);
    for _ in 0..plan.frames_needed {
        match machine.alloc_frame() {
            Some(frame) => reserve.push(frame),
            None => {
                for frame in reserve {
                    // SAFETY: allocated just now and never linked into any
                    // table, so nothing can reach it.
                    unsafe { machine.free_frame(frame) };
                }
                return Err(());
            }
        }
    }

    let mut apply = Editor::new(machine, features, space, Pass::Apply, reserve, batch);
    apply.edit_table(&edit, TableView::Real(root), root_level, 0);
    debug_assert!(apply.reserve.is_empty(), "the plan pass counted more frames than the edit used");
    for frame in apply.reserve.drain(..) {
        // SAFETY: reserved for the edit and not used by it: never linked.
        unsafe { machine.free_frame(frame) };
    }
    counters.add(&apply.counters);
    Ok(())
}

/// The shortcut for an edit whose range lies in one page table (one 2 MiB
/// slot) that exists: one walk down to it, then its entries, with no plan
/// pass, since no frame can be needed. Returns false, having changed
/// nothing, when the general cursor must do the edit: a large page is on
/// the way (it may need splitting), or a Map needs a table or a user bit
/// on the way. An Unmap that empties the page table frees it, and the
/// tables above that it leaves empty.
fn edit_in_one_page_table<M: Machine + ?Sized>(
    machine: &M,
    features: PagingFeatures,
    root: TableRef,
    edit: &Edit,
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) -> bool {
    let pt_span = Level::Pd.entry_span();
    if edit.start / pt_span != (edit.end - 1) / pt_span {
        return false;
    }
    // The entries walked through, from the root's down: the table holding
    // each, its index, and its value.
    let mut path = [(root, 0, PageTableEntry::EMPTY); 4];
    let mut depth = 0;
    descend(machine, root, Level::root(features.la57), edit.start, |step| {
        let entry = step.entry;
        if !entry.is_present() {
            // The whole range is a hole: nothing to protect, unmap or re-point.
            return ControlFlow::Break(!matches!(edit.op, Operation::Map(_)));
        }
        if entry.is_leaf(step.level) || (edit.op.grants_user() && !entry.is_user()) {
            return ControlFlow::Break(false);
        }
        path[depth] = (step.table, step.index, entry);
        depth += 1;
        if step.level != Level::Pd {
            return ControlFlow::Continue(());
        }
        // The page table: its entries are edited in one loop, not read one
        // by one through the walk.
        let table = step.next_table().expect("a present directory entry that is no leaf points at a table");
        let base = edit.start & !(pt_span - 1);
        let present_change = edit_page_table(machine, features, edit, table, base, counters, batch);
        // A protect changes no count: no call (DESIGN.md, "Inlining").
        if present_change != 0 {
            record_present_change(machine, &path[..depth], present_change, counters, batch);
        }
        ControlFlow::Break(true)
    })
}

/// Records that the table below the last entry of `path` (the entries from
/// the root's down, each as its table, its index and its value as read)
/// gained or lost `change` present entries: updates the count in that
/// entry; if the table became empty (an unmap), frees it, and so on up for
/// the tables this leaves empty, the root excepted. The unmapped leaves are
/// in `batch`: invalidating any of them also drops the paging-structure
/// caches that point at the freed tables.
pub(crate) fn record_present_change<M: Machine + ?Sized>(
    machine: &M,
    path: &[(TableRef, usize, PageTableEntry)],
    mut change: i32,
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) {
    for &(table, index, pointer) in path.iter().rev() {
        if change == 0 {
            return;
        }
        let Some(emptied) = table.move_present_count(machine, index, pointer, change) else { return };
        // SAFETY: a table of this tree, now unlinked; the batch frees it
        // after the invalidation of the leaves unmapped from it.
        unsafe { batch.free_after_flush(emptied.addr()) };
        counters.tables_freed += 1;
        // The table holding the entry lost an entry in turn.
        change = -1;
    }
}

/// Applies `edit` to the entries of page table `table` (whose first entry
/// maps `base`) that its range covers: one loop per operation, each entry
/// read once and written only when it changes. Every 4 KiB slot is whole,
/// so nothing here splits or needs a frame. Returns the change in the
/// number of present entries.
///
/// Kept out of line: inlined into the general cursor, its loops made the
/// cursor's own loop over directory entries spill registers (a 2 MiB-page
/// map of a gigabyte went from 4.3 to 6.8 µs on the host).
#[inline(never)]
fn edit_page_table<M: Machine + ?Sized>(
    machine: &M,
    features: PagingFeatures,
    edit: &Edit,
    table: TableRef,
    base: u64,
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) -> i32 {
    const PAGE: u64 = TABLE_BYTES;
    let first = ((edit.start.max(base) - base) / PAGE) as usize;
    let last = ((edit.end.min(base + PAGE * ENTRIES_PER_TABLE as u64) - base) / PAGE) as usize;
    let bits = features.virt_width().bits();
    let va = |index: usize| canonical(base + index as u64 * PAGE, bits);
    let mut present_change = 0;
    match edit.op {
        Operation::Protect(perms) => {
            let rights = PageTableEntry::WRITABLE | PageTableEntry::USER | PageTableEntry::NO_EXECUTE;
            let granted = PageTableEntry::EMPTY.with_permissions(perms, features.nx).bits();
            for_each_entry(first..last, batch, va, |index| {
                let old = table.get(machine, index).bits();
                let new = (old & !rights) | granted;
                if old & PageTableEntry::PRESENT == 0 || new == old {
                    return false;
                }
                table.set(machine, index, PageTableEntry(new));
                // Losing write, gaining NX or any change of U (see `needs_invalidation`).
                let reduced = (old & !new & PageTableEntry::WRITABLE)
                    | (new & !old & PageTableEntry::NO_EXECUTE)
                    | ((old ^ new) & PageTableEntry::USER);
                reduced != 0
            });
        }
        Operation::Unmap => {
            for_each_entry(first..last, batch, va, |index| {
                if !table.get(machine, index).is_present() {
                    return false;
                }
                table.set(machine, index, PageTableEntry::EMPTY);
                present_change -= 1;
                true
            });
        }
        Operation::Repoint => {
            for_each_entry(first..last, batch, va, |index| {
                let old = table.get(machine, index);
                if !old.is_present() {
                    return false;
                }
                let pa = PhysAddr(edit.pa_at(base + index as u64 * PAGE));
                let new = old.with_address(pa, Level::Pt).with(PageTableEntry::ACCESSED | PageTableEntry::DIRTY, false);
                if new == old {
                    return false;
                }
                table.set(machine, index, new);
                needs_invalidation(old, new)
            });
        }
        Operation::Map(perms) => {
            // Same page: keep what the CPU recorded about it.
            let kept = PageTableEntry::ACCESSED | PageTableEntry::DIRTY;
            // A plain loop: a map mostly fills empty entries, which record
            // nothing, so the second loop of `for_each_entry` would seldom
            // run, and its first loop compiles to slower code for this step
            // (a 512-page map on the host: 1.7 µs against 1.0).
            for index in first..last {
                let old = table.get(machine, index);
                let pa = PhysAddr(edit.pa_at(base + index as u64 * PAGE));
                let fresh = PageTableEntry::leaf(pa, PageSize::Size4K, perms, features.nx);
                if !old.is_present() {
                    table.set(machine, index, fresh);
                    present_change += 1;
                    continue;
                }
                let new = if old.address(Level::Pt) == pa {
                    PageTableEntry(fresh.bits() | (old.bits() & kept))
                } else {
                    fresh
                };
                if new == old {
                    continue;
                }
                table.set(machine, index, new);
                if needs_invalidation(old, new) {
                    batch.add_page(va(index));
                }
            }
            // Counted once, not per entry: each was a store on the loop's path.
            counters.pages_mapped[PageSize::Size4K.index()] += present_change as u64;
        }
    }
    present_change
}

/// Runs `step` on the entries `indices` of one page table, in order, and
/// adds to `batch` the page (`page_of`) of each entry whose step says it
/// must be invalidated. Once the batch has switched to flushing
/// everything it records no page, so the rest of the table runs a second
/// loop that does not ask: inlined, the step's answer there is dead code,
/// and an edit of a whole table costs the entry edits alone.
#[inline(always)]
fn for_each_entry(
    indices: core::ops::Range<usize>,
    batch: &mut FlushBatch,
    page_of: impl Fn(usize) -> VirtAddr,
    mut step: impl FnMut(usize) -> bool,
) {
    let mut index = indices.start;
    while index < indices.end && !batch.flushes_everything() {
        if step(index) {
            batch.add_page(page_of(index));
        }
        index += 1;
    }
    for index in index..indices.end {
        step(index);
    }
}

/// The canonical (sign-extended) form of a virtual address reduced to `bits` bits.
pub(crate) fn canonical(reduced: u64, bits: u32) -> VirtAddr {
    let shift = 64 - bits;
    VirtAddr((((reduced << shift) as i64) >> shift) as u64)
}

/// The entry `index` of the table made by splitting `leaf`, a large leaf at `level`.
pub(crate) fn split_entry(leaf: PageTableEntry, level: Level, index: usize) -> PageTableEntry {
    let lower = level.lower().expect("only large pages are split");
    let frame = leaf.address(level).0 + index as u64 * lower.entry_span();
    let mut flags = leaf.bits() & !PageTableEntry::ADDRESS & !PageTableEntry::HUGE_PAGE;
    if lower != Level::Pt {
        flags |= PageTableEntry::HUGE_PAGE;
    }
    if leaf.has(PageTableEntry::PAT_LARGE) {
        flags |= PageTableEntry::pat_bit(lower);
    }
    PageTableEntry(frame | flags)
}

/// True when replacing present leaf `old` by `new` requires invalidating the
/// page: unmap, new address, new size or caching, a change of the user bit,
/// losing write or gaining NX. Gaining write or losing NX alone does not.
pub(crate) fn needs_invalidation(old: PageTableEntry, new: PageTableEntry) -> bool {
    if !new.is_present() {
        return true;
    }
    let ignored =
        PageTableEntry::ACCESSED | PageTableEntry::DIRTY | PageTableEntry::WRITABLE | PageTableEntry::NO_EXECUTE;
    let lost_write = old.is_writable() && !new.is_writable();
    let gained_nx = !old.is_no_execute() && new.is_no_execute();
    (old.bits() ^ new.bits()) & !ignored != 0 || lost_write || gained_nx
}

impl<'m, 'b, M: Machine + ?Sized> Editor<'m, 'b, M> {
    fn new(
        machine: &'m M,
        features: PagingFeatures,
        space: SpaceId,
        pass: Pass,
        reserve: Vec<PhysAddr>,
        batch: &'b mut FlushBatch,
    ) -> Self {
        Editor { machine, features, space, pass, frames_needed: 0, reserve, batch, counters: EditCounters::default() }
    }

    fn applying(&self) -> bool {
        self.pass == Pass::Apply
    }

    fn read(&self, table: TableView, index: usize) -> PageTableEntry {
        match table {
            TableView::Real(table) => table.get(self.machine, index),
            TableView::Fresh => PageTableEntry::EMPTY,
            TableView::Split(leaf, level) => split_entry(leaf, level, index),
        }
    }

    /// Writes an entry (apply pass only; the plan pass writes nothing).
    fn write(&self, table: TableView, index: usize, entry: PageTableEntry) {
        if let (Pass::Apply, TableView::Real(table)) = (self.pass, table) {
            table.set(self.machine, index, entry);
        }
    }

    fn take_frame(&mut self) -> TableRef {
        self.counters.tables_allocated += 1;
        TableRef::owned(self.reserve.pop().expect("the plan pass counts every frame the apply pass takes"))
    }

    /// Records that the table below `table[index]` (whose entry is
    /// `pointer`) gained or lost `change` present entries (apply pass):
    /// frees it if that left it empty. Returns -1 if it freed it, the
    /// change in `table`'s own present entries.
    fn record_change(&mut self, table: TableView, index: usize, pointer: PageTableEntry, change: i32) -> i32 {
        let TableView::Real(table) = table else { unreachable!("the apply pass sees only real tables") };
        let Some(emptied) = table.move_present_count(self.machine, index, pointer, change) else { return 0 };
        // The unmapped leaves below are in the batch; invalidating any of
        // them also drops the paging-structure caches that point here.
        // SAFETY: a table of this tree, now unlinked; the batch frees it
        // after that invalidation.
        unsafe { self.batch.free_after_flush(emptied.addr()) };
        self.counters.tables_freed += 1;
        -1
    }

    fn va(&self, reduced: u64) -> VirtAddr {
        canonical(reduced, self.features.virt_width().bits())
    }

    fn leaf_allowed(&self, level: Level) -> bool {
        match level {
            Level::Pt | Level::Pd => true,
            Level::Pdpt => self.features.huge_1g,
            Level::Pml4 | Level::Pml5 => false,
        }
    }

    /// Applies `edit` to the part of its range covered by `table`, a table at
    /// `level` whose first entry maps virtual address `base`.
    /// Returns the change in the number of present entries of `table`
    /// (apply pass; the plan pass returns 0).
    fn edit_table(&mut self, edit: &Edit, table: TableView, level: Level, base: u64) -> i32 {
        if level == Level::Pt {
            // Nothing in a page table needs a frame: 4 KiB leaves are never
            // split and no table lies below. The plan skips its entries; the
            // apply pass, which sees only real tables, edits them in one loop.
            return match (self.pass, table) {
                (Pass::Apply, TableView::Real(frame)) => {
                    edit_page_table(self.machine, self.features, edit, frame, base, &mut self.counters, self.batch)
                }
                _ => 0,
            };
        }
        let span = level.entry_span();
        let from = edit.start.max(base);
        let to = edit.end.min(base + span * ENTRIES_PER_TABLE as u64);
        let mut slot = base + (from - base) / span * span;
        let mut present_change = 0;
        while slot < to {
            let index = ((slot - base) / span) as usize;
            let whole_slot = from <= slot && slot + span <= to;
            let entry = self.read(table, index);
            present_change += if !entry.is_present() {
                self.fill_hole(edit, table, index, level, slot, whole_slot)
            } else if entry.is_leaf(level) {
                self.edit_leaf(edit, table, index, entry, level, slot, whole_slot)
            } else {
                self.descend(edit, table, index, entry, level, slot)
            };
            slot += span;
        }
        if self.applying() {
            present_change
        } else {
            0
        }
    }

    /// A not-present entry: only Map has work here. Returns 1 if it made
    /// the entry present.
    fn fill_hole(&mut self, edit: &Edit, table: TableView, index: usize, level: Level, slot: u64, whole: bool) -> i32 {
        let Operation::Map(perms) = edit.op else { return 0 };
        let pa = edit.pa_at(slot);
        let span = level.entry_span();
        if whole && self.leaf_allowed(level) && pa.is_multiple_of(span) {
            let size = level.page_size().expect("leaf_allowed is true only where leaves exist");
            self.write(table, index, PageTableEntry::leaf(PhysAddr(pa), size, perms, self.features.nx));
            self.counters.pages_mapped[size.index()] += 1;
            return 1;
        }
        let lower = level.lower().expect("a 4 KiB slot of a page-aligned range is always whole");
        let child = match self.pass {
            Pass::Plan => {
                self.frames_needed += 1;
                TableView::Fresh
            }
            Pass::Apply => TableView::Real(self.take_frame()),
        };
        let filled = self.edit_table(edit, child, lower, slot);
        if let TableView::Real(frame) = child {
            // Linked once filled, with the count of what it holds.
            let count = u32::try_from(filled).expect("a new table only gains entries");
            self.write(table, index, PageTableEntry::table(frame.addr(), perms.user).with_present_count(count));
        }
        1
    }

    /// A present leaf: rewrite it if the range covers it whole (and, for a
    /// new address, keeps its alignment), else split it and edit the parts.
    /// Returns -1 if it unmapped the leaf.
    #[allow(clippy::too_many_arguments)]
    fn edit_leaf(
        &mut self,
        edit: &Edit,
        table: TableView,
        index: usize,
        old: PageTableEntry,
        level: Level,
        slot: u64,
        whole: bool,
    ) -> i32 {
        let pa = PhysAddr(edit.pa_at(slot));
        let keeps_alignment = !edit.op.sets_address() || pa.is_aligned(level.entry_span());
        if !(whole && keeps_alignment) {
            let child = self.split(table, index, old, level, slot, edit.op.grants_user());
            let lower = level.lower().expect("a 4 KiB leaf is always whole");
            let change = self.edit_table(edit, child, lower, slot);
            if change == 0 {
                // A leaf became a table: still one present entry.
                return 0;
            }
            // The split table was linked full; record what the edit took
            // (never all of it: a range that covers a leaf whole splits nothing).
            let pointer = self.read(table, index);
            return self.record_change(table, index, pointer, change);
        }
        let nx = self.features.nx;
        let new = match edit.op {
            Operation::Unmap => PageTableEntry::EMPTY,
            Operation::Protect(perms) => old.with_permissions(perms, nx),
            Operation::Repoint => {
                old.with_address(pa, level).with(PageTableEntry::ACCESSED | PageTableEntry::DIRTY, false)
            }
            Operation::Map(perms) => {
                let size = level.page_size().expect("leaves exist only where pages have a size");
                let fresh = PageTableEntry::leaf(pa, size, perms, nx);
                // Same page: keep what the CPU recorded about it.
                let kept = PageTableEntry::ACCESSED | PageTableEntry::DIRTY;
                if old.address(level) == pa {
                    PageTableEntry(fresh.bits() | (old.bits() & kept))
                } else {
                    fresh
                }
            }
        };
        if new == old || !self.applying() {
            return 0;
        }
        self.write(table, index, new);
        if needs_invalidation(old, new) {
            self.batch.add_page(self.va(slot));
        }
        if new.is_present() {
            0
        } else {
            -1
        }
    }

    /// A pointer to a lower table: edit it, then record its new count, or
    /// free it if it became empty. Returns -1 if it freed it.
    fn descend(
        &mut self,
        edit: &Edit,
        table: TableView,
        index: usize,
        mut entry: PageTableEntry,
        level: Level,
        slot: u64,
    ) -> i32 {
        let child = TableRef::below(entry, level).expect("descend is called for entries pointing at tables");
        if edit.op.grants_user() && !entry.is_user() {
            // A permission increase on the path: no invalidation needed.
            entry = entry.with(PageTableEntry::USER, true);
            self.write(table, index, entry);
        }
        let lower = level.lower().expect("page tables hold only leaves");
        let change = self.edit_table(edit, TableView::Real(child), lower, slot);
        if change == 0 || !self.applying() {
            return 0;
        }
        self.record_change(table, index, entry, change)
    }

    /// Replaces large leaf `leaf` at `table[index]` by a table of smaller
    /// pages mapping the same memory with the same attributes.
    fn split(
        &mut self,
        table: TableView,
        index: usize,
        leaf: PageTableEntry,
        level: Level,
        slot: u64,
        grants_user: bool,
    ) -> TableView {
        if self.pass == Pass::Plan {
            self.frames_needed += 1;
            return TableView::Split(leaf, level);
        }
        let frame = self.take_frame();
        for i in 0..ENTRIES_PER_TABLE {
            self.write(TableView::Real(frame), i, split_entry(leaf, level, i));
        }
        // The same translations, in one write (see the module documentation),
        // then the large page out of every TLB before anything changes.
        let pointer = PageTableEntry::table(frame.addr(), leaf.is_user() || grants_user);
        self.write(table, index, pointer.with_present_count(ENTRIES_PER_TABLE as u32));
        let page = [self.va(slot)];
        self.machine.invalidate(self.space, TlbInvalidation::Pages(&page));
        self.counters.split_invalidations += 1;
        self.counters.splits += 1;
        TableView::Real(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_entries_keep_attributes_and_move_pat() {
        let big = PageTableEntry(
            0x4000_0000
                | PageTableEntry::PRESENT
                | PageTableEntry::HUGE_PAGE
                | PageTableEntry::PAT_LARGE
                | PageTableEntry::NO_EXECUTE
                | PageTableEntry::USER,
        );
        let e = split_entry(big, Level::Pdpt, 3);
        assert_eq!(e.address(Level::Pd), PhysAddr(0x4000_0000 + 3 * (2 << 20)));
        assert!(e.is_leaf(Level::Pd) && e.has(PageTableEntry::PAT_LARGE) && e.is_no_execute() && e.is_user());
        let small = split_entry(e, Level::Pd, 511);
        assert_eq!(small.address(Level::Pt), PhysAddr(0x4000_0000 + 3 * (2 << 20) + 511 * 4096));
        assert!(small.has(PageTableEntry::PAT_4K) && small.is_no_execute() && small.is_user());
        let plain = split_entry(big.with(PageTableEntry::PAT_LARGE, false), Level::Pd, 1);
        assert!(!plain.has(PageTableEntry::PAT_4K), "no PAT in, no PAT out (bit 7 is not PS in a PT)");
    }

    #[test]
    fn invalidation_rules() {
        let rw = LeafPermissions { writable: true, user: false, executable: true };
        let ro = LeafPermissions { writable: false, user: false, executable: true };
        let rwnx = LeafPermissions { writable: true, user: false, executable: false };
        let e = |p, a| PageTableEntry::leaf(PhysAddr(a), crate::PageSize::Size4K, p, true);
        assert!(!needs_invalidation(e(ro, 0x1000), e(rw, 0x1000)), "gaining write is an increase");
        assert!(!needs_invalidation(e(rwnx, 0x1000), e(rw, 0x1000)), "losing NX is an increase");
        assert!(needs_invalidation(e(rw, 0x1000), e(ro, 0x1000)));
        assert!(needs_invalidation(e(rw, 0x1000), e(rwnx, 0x1000)));
        assert!(needs_invalidation(e(rw, 0x1000), e(rw, 0x2000)));
        assert!(needs_invalidation(e(rw, 0x1000), PageTableEntry::EMPTY));
        let user = LeafPermissions { user: true, ..rw };
        assert!(needs_invalidation(e(rw, 0x1000), e(user, 0x1000)), "U changes either way are flushed");
        assert!(!needs_invalidation(e(rw, 0x1000), e(rw, 0x1000).with(PageTableEntry::DIRTY, true)));
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canonical(0x8000_0000_0000, 48), VirtAddr(0xffff_8000_0000_0000));
        assert_eq!(canonical(0x7fff_ffff_f000, 48), VirtAddr(0x7fff_ffff_f000));
        assert_eq!(canonical(0x1ff_ffff_ffff_f000, 57), VirtAddr(0xffff_ffff_ffff_f000));
        assert_eq!(canonical(0xff_ffff_ffff_f000, 57), VirtAddr(0xff_ffff_ffff_f000));
    }
}
