//! Moving the 4 KiB leaves of a range to another range of the same tree
//! ([`crate::PageTables`]'s `move_into`), as `mremap` moves a mapping's
//! page-table entries: the pages keep their frames, rights and
//! accessed/dirty bits and need no fault at their new place.
//!
//! The move runs in two passes, as the range cursor's edits do
//! (see the `edit` module):
//! 1. the **plan** pass writes nothing: it checks that the move can be done
//!    (no large page in either range, no present entry where a leaf goes)
//!    and counts the tables the target range lacks;
//! 2. those frames are allocated up front; if one is missing, the frames
//!    already taken go back and the move fails with nothing changed;
//! 3. the **apply** pass moves the entries, taking tables from that
//!    reserve, so it cannot fail half-way.
//!
//! Where both ranges cover a whole 2 MiB block at the same offset in it (the
//! source, the target and the distance between them 2 MiB-aligned) and the
//! target has no page table there yet, the page table itself moves: one
//! directory entry is written and one cleared, whatever the table holds.
//! Everything else moves entry by entry. Each source entry is cleared before
//! its copy is written at the target, and the old pages go into the flush
//! batch; a source table left empty is freed through it, as an unmap's.

use crate::edit::{canonical, EditCounters};
use crate::entry::{Level, PageTableEntry, ENTRIES_PER_TABLE, TABLE_BYTES};
use crate::error::PagingError;
use crate::flush::{FlushBatch, SINGLE_PAGE_FLUSH_CEILING};
use crate::machine::{Machine, PagingFeatures};
use crate::table::TableRef;
use alloc::vec::Vec;
use aspace::PhysAddr;

/// Why a move of entries ([`crate::PageTables::move_entries`]) was
/// refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveRefused {
    /// A range is not one a region could hold (see [`PagingError`]).
    Range(PagingError),
    /// A frame for a target table could not be allocated.
    OutOfMemory,
    /// The ranges overlap, a large page lies in either range, or a target
    /// entry is present already.
    NotMovable,
}

/// The bytes one page table covers.
const PT_SPAN: u64 = ENTRIES_PER_TABLE as u64 * TABLE_BYTES;

/// The entries walked through, from the root's down: the table holding
/// each, its index and its value. At most four above a page table.
type Path = [(TableRef, usize, PageTableEntry); 4];

/// One move: `[from, from+len)` to `[to, to+len)`, virtual addresses
/// reduced to the translated bits (no sign extension).
struct Mover<'m, M: Machine + ?Sized> {
    machine: &'m M,
    features: PagingFeatures,
    root: TableRef,
    from: u64,
    to: u64,
    len: u64,
}

/// Moves the leaves of `[from, from+len)` to `[to, to+len)` in the tree
/// under `root` (built for `features`), reduced addresses, 4 KiB-aligned,
/// `len` not zero: see the module documentation. The old pages and the
/// freed tables go into `batch`, what was done into `counters`. On an
/// error nothing changed, `batch` and the counters included.
pub(crate) fn move_leaves<M: Machine + ?Sized>(
    machine: &M,
    features: PagingFeatures,
    root: TableRef,
    (from, to, len): (u64, u64, u64),
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) -> Result<(), MoveRefused> {
    if from < to.saturating_add(len) && to < from.saturating_add(len) {
        return Err(MoveRefused::NotMovable);
    }
    let mover = Mover { machine, features, root, from, to, len };
    let needed = mover.plan()?;
    let mut reserve = Vec::with_capacity(needed);
    for _ in 0..needed {
        match machine.alloc_frame() {
            Some(frame) => reserve.push(frame),
            None => {
                for frame in reserve {
                    // SAFETY: allocated just now and never linked into any
                    // table, so nothing can reach it.
                    unsafe { machine.free_frame(frame) };
                }
                return Err(MoveRefused::OutOfMemory);
            }
        }
    }
    let mut done = EditCounters::default();
    mover.apply(&mut reserve, &mut done, batch);
    debug_assert!(reserve.is_empty(), "the plan pass counted more tables than the move used");
    for frame in reserve {
        // SAFETY: reserved for the move and not used by it: never linked.
        unsafe { machine.free_frame(frame) };
    }
    counters.add(&done);
    Ok(())
}

impl<M: Machine + ?Sized> Mover<'_, M> {
    fn root_level(&self) -> Level {
        Level::root(self.features.la57)
    }

    /// The target address of source address `va`.
    fn target(&self, va: u64) -> u64 {
        va - self.from + self.to
    }

    /// True when the source block holding `start` (which begins at `start`
    /// and runs to `next`) moves as a whole page table.
    fn whole_block(&self, start: u64, next: u64) -> bool {
        start.is_multiple_of(PT_SPAN)
            && next - start == PT_SPAN
            && self.to.wrapping_sub(self.from).is_multiple_of(PT_SPAN)
    }

    /// The page table mapping `va`, with the entries leading to it: `None`
    /// when there is none (a hole above it). A large page on the way is
    /// [`MoveRefused::NotMovable`].
    fn page_table(&self, va: u64) -> Result<Option<(Path, usize, TableRef)>, MoveRefused> {
        let mut path = [(self.root, 0, PageTableEntry::EMPTY); 4];
        let (mut table, mut level, mut depth) = (self.root, self.root_level(), 0);
        while level != Level::Pt {
            let index = level.index(va);
            let entry = table.get(self.machine, index);
            if !entry.is_present() {
                return Ok(None);
            }
            let below = TableRef::below(entry, level).ok_or(MoveRefused::NotMovable)?;
            path[depth] = (table, index, entry);
            depth += 1;
            table = below;
            level = level.lower().ok_or(MoveRefused::NotMovable)?;
        }
        Ok(Some((path, depth, table)))
    }

    /// Plan pass for the target table at `stop` (the directory or the page
    /// table) holding `va`: the table if it exists; else `None`, and the
    /// tables to make for it are counted in `needed`, each once
    /// (`planned` holds, by level, the last one counted).
    fn plan_table(
        &self,
        va: u64,
        stop: Level,
        planned: &mut [u64; 6],
        needed: &mut usize,
    ) -> Result<Option<TableRef>, MoveRefused> {
        let (mut table, mut level) = (self.root, self.root_level());
        while level != stop {
            let entry = table.get(self.machine, level.index(va));
            if !entry.is_present() {
                let mut missing = Some(level);
                while let Some(at) = missing.filter(|&at| at != stop) {
                    let key = va / at.entry_span();
                    if planned[at.number() as usize] != key {
                        planned[at.number() as usize] = key;
                        *needed += 1;
                    }
                    missing = at.lower();
                }
                return Ok(None);
            }
            table = TableRef::below(entry, level).ok_or(MoveRefused::NotMovable)?;
            level = level.lower().ok_or(MoveRefused::NotMovable)?;
        }
        Ok(Some(table))
    }

    /// The source range cut at page-table boundaries: each piece as
    /// (start, end), in address order.
    fn blocks(&self) -> impl Iterator<Item = (u64, u64)> {
        let end = self.from + self.len;
        let next = move |start: u64| ((start / PT_SPAN) + 1).saturating_mul(PT_SPAN).min(end);
        core::iter::successors(Some(self.from), move |&start| Some(next(start)).filter(|&at| at < end))
            .map(move |start| (start, next(start)))
    }

    /// The plan pass: checks the move and returns how many tables it needs.
    fn plan(&self) -> Result<usize, MoveRefused> {
        let (mut needed, mut planned) = (0, [u64::MAX; 6]);
        for (block, next) in self.blocks() {
            let Some((_, _, source)) = self.page_table(block)? else { continue };
            let target = self.target(block);
            if self.whole_block(block, next) {
                match self.plan_table(target, Level::Pd, &mut planned, &mut needed)? {
                    None => continue,
                    Some(directory) => {
                        let entry = directory.get(self.machine, Level::Pd.index(target));
                        if !entry.is_present() {
                            continue;
                        }
                        if entry.is_leaf(Level::Pd) {
                            return Err(MoveRefused::NotMovable);
                        }
                        // A page table is there already: entry by entry.
                    }
                }
            }
            let mut checked: Option<(u64, Option<TableRef>)> = None;
            let (mut index, end) =
                (Level::Pt.index(block), Level::Pt.index(block) + ((next - block) / TABLE_BYTES) as usize);
            while index < end {
                if !source.get(self.machine, index).is_present() {
                    index += 1;
                    continue;
                }
                let va = self.target((block & !(PT_SPAN - 1)) + index as u64 * TABLE_BYTES);
                let table = match checked {
                    Some((key, table)) if key == va / PT_SPAN => table,
                    _ => {
                        let table = self.plan_table(va, Level::Pt, &mut planned, &mut needed)?;
                        checked = Some((va / PT_SPAN, table));
                        table
                    }
                };
                match table {
                    // The target table is to be made (counted once): nothing
                    // in it to run into, so the rest of the entries landing
                    // in it need no look.
                    None => index += ((PT_SPAN - va % PT_SPAN) / TABLE_BYTES) as usize,
                    Some(table) if table.get(self.machine, Level::Pt.index(va)).is_present() => {
                        return Err(MoveRefused::NotMovable)
                    }
                    Some(_) => index += 1,
                }
            }
        }
        Ok(needed)
    }

    /// Apply pass: the target table at `stop` holding `va`, with the
    /// entries leading to it, made from `reserve` where missing (user
    /// access on the way with `user`).
    fn make_table(
        &self,
        va: u64,
        stop: Level,
        user: bool,
        reserve: &mut Vec<PhysAddr>,
        counters: &mut EditCounters,
    ) -> (Path, usize, TableRef) {
        let mut path = [(self.root, 0, PageTableEntry::EMPTY); 4];
        let (mut table, mut level, mut depth) = (self.root, self.root_level(), 0usize);
        while level != stop {
            let index = level.index(va);
            let mut entry = table.get(self.machine, index);
            if !entry.is_present() {
                let frame = reserve.pop().expect("the plan pass counts every table the move makes");
                counters.tables_allocated += 1;
                // Linked empty; the entries moved in are counted after.
                entry = PageTableEntry::table(frame, user).with_present_count(0);
                table.set(self.machine, index, entry);
                if let Some((above, above_index, pointer)) = depth.checked_sub(1).map(|at| path[at]) {
                    let emptied = above.move_present_count(self.machine, above_index, pointer, 1);
                    debug_assert!(emptied.is_none(), "a table that gained an entry is not empty");
                    path[depth - 1].2 = above.get(self.machine, above_index);
                }
            } else if user && !entry.is_user() {
                // A permission increase on the path: no invalidation needed.
                entry = entry.with(PageTableEntry::USER, true);
                table.set(self.machine, index, entry);
            }
            path[depth] = (table, index, entry);
            depth += 1;
            table = TableRef::below(entry, level).expect("the plan pass found no large page on the way");
            level = level.lower().expect("stops above the leaves");
        }
        (path, depth, table)
    }

    /// The apply pass: moves, taking tables from `reserve`.
    fn apply(&self, reserve: &mut Vec<PhysAddr>, counters: &mut EditCounters, batch: &mut FlushBatch) {
        let bits = self.features.virt_width().bits();
        for (block, next) in self.blocks() {
            let Ok(Some((path, depth, source))) = self.page_table(block) else { continue };
            let (directory, directory_index, pointer) = path[depth - 1];
            let user = pointer.is_user();
            let target = self.target(block);
            if self.whole_block(block, next) {
                let (to_path, to_depth, to_directory) = self.make_table(target, Level::Pd, user, reserve, counters);
                let to_index = Level::Pd.index(target);
                if !to_directory.get(self.machine, to_index).is_present() {
                    // The whole page table: out of the source directory, into the target's.
                    directory.set(self.machine, directory_index, PageTableEntry::EMPTY);
                    to_directory.set(self.machine, to_index, pointer);
                    if pointer.present_count() as usize > SINGLE_PAGE_FLUSH_CEILING {
                        batch.flush_everything();
                    } else {
                        for index in 0..ENTRIES_PER_TABLE {
                            if source.get(self.machine, index).is_present() {
                                batch.add_page(canonical(block + index as u64 * TABLE_BYTES, bits));
                            }
                        }
                    }
                    record(self.machine, &to_path[..to_depth], 1, counters, batch);
                    // The source path, read again: the target's tables may share it.
                    self.record_source_block(block, -1, counters, batch);
                    continue;
                }
            }
            // Entry by entry, into the one or two target page tables.
            let first = Level::Pt.index(block);
            let count = ((next - block) / TABLE_BYTES) as usize;
            let mut moved = 0;
            let mut index = first;
            while index < first + count {
                let va = (block & !(PT_SPAN - 1)) + index as u64 * TABLE_BYTES;
                let to_va = self.target(va);
                // The entries that land in the same target page table as this one.
                let run = ((PT_SPAN - to_va % PT_SPAN) / TABLE_BYTES) as usize;
                let stop = (index + run).min(first + count);
                if (index..stop).any(|at| source.get(self.machine, at).is_present()) {
                    let (to_path, to_depth, to_table) = self.make_table(to_va, Level::Pt, user, reserve, counters);
                    let mut landed = 0;
                    for at in index..stop {
                        let entry = source.get(self.machine, at);
                        if !entry.is_present() {
                            continue;
                        }
                        source.set(self.machine, at, PageTableEntry::EMPTY);
                        let offset = (at - index) as u64 * TABLE_BYTES;
                        to_table.set(self.machine, Level::Pt.index(to_va + offset), entry);
                        batch.add_page(canonical(va + offset, bits));
                        landed += 1;
                    }
                    record(self.machine, &to_path[..to_depth], landed, counters, batch);
                    moved += landed;
                }
                index = stop;
            }
            if moved > 0 {
                self.record_page_table(block, -moved, counters, batch);
            }
        }
    }

    /// The source page table holding `va` lost `change` entries: walks to
    /// it again (a target table made since may have changed a count on the
    /// way) and records it, freeing what it leaves empty.
    fn record_page_table(&self, va: u64, change: i32, counters: &mut EditCounters, batch: &mut FlushBatch) {
        if let Ok(Some((path, depth, _))) = self.page_table(va) {
            record(self.machine, &path[..depth], change, counters, batch);
        }
    }

    /// The source directory holding `va` lost the entry of its page table
    /// (`change` is -1): walks to it again and records it.
    fn record_source_block(&self, va: u64, change: i32, counters: &mut EditCounters, batch: &mut FlushBatch) {
        let mut path = [(self.root, 0, PageTableEntry::EMPTY); 4];
        let (mut table, mut level, mut depth) = (self.root, self.root_level(), 0);
        while level != Level::Pd {
            let index = level.index(va);
            let entry = table.get(self.machine, index);
            let Some(below) = TableRef::below(entry, level) else { return };
            path[depth] = (table, index, entry);
            depth += 1;
            table = below;
            level = level.lower().expect("stops above the leaves");
        }
        record(self.machine, &path[..depth], change, counters, batch);
    }
}

/// Records that the table below the last entry of `path` gained or lost
/// `change` entries (see the `edit` module's `record_present_change`).
fn record<M: Machine + ?Sized>(
    machine: &M,
    path: &[(TableRef, usize, PageTableEntry)],
    change: i32,
    counters: &mut EditCounters,
    batch: &mut FlushBatch,
) {
    crate::edit::record_present_change(machine, path, change, counters, batch);
}
