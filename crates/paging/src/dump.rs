//! Listing what a tree maps, for the shell's `ptdump` and for checks: every
//! leaf in address order, and runs of leaves with equal attributes (in the
//! style of Linux's page-table dump).

use crate::edit::canonical;
use crate::entry::{LeafPermissions, Level, PageSize, PageTableEntry, ENTRIES_PER_TABLE};
use crate::machine::Machine;
use crate::table::TableRef;
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};
use core::fmt;

/// One leaf of the tree: a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedPage {
    /// Virtual start of the page (canonical).
    pub va: VirtAddr,
    /// Physical start of the page.
    pub pa: PhysAddr,
    /// Its size.
    pub size: PageSize,
    /// The leaf entry.
    pub entry: PageTableEntry,
    /// The rights of the whole path (every level's W and U, any level's NX).
    pub effective: LeafPermissions,
}

#[derive(Clone, Copy)]
struct Position {
    table: TableRef,
    level: Level,
    /// Virtual address of entry 0, reduced to the translated bits.
    base: u64,
    next_index: usize,
    /// Rights granted by the entries above this table.
    above: LeafPermissions,
}

/// Every leaf under a root, in address order (lower canonical half first).
pub struct MappedPages<'m, M: Machine + ?Sized> {
    machine: &'m M,
    virt_bits: u32,
    stack: Vec<Position>,
}

impl<'m, M: Machine + ?Sized> MappedPages<'m, M> {
    /// Starts at the root table `root`.
    pub fn new(machine: &'m M, root: TableRef) -> Self {
        let features = machine.features();
        let all = LeafPermissions { writable: true, user: true, executable: true };
        let start = Position { table: root, level: Level::root(features.la57), base: 0, next_index: 0, above: all };
        MappedPages { machine, virt_bits: features.virt_width().bits(), stack: Vec::from([start]) }
    }
}

impl<M: Machine + ?Sized> Iterator for MappedPages<'_, M> {
    type Item = MappedPage;

    fn next(&mut self) -> Option<MappedPage> {
        loop {
            let top = self.stack.last_mut()?;
            if top.next_index == ENTRIES_PER_TABLE {
                self.stack.pop();
                continue;
            }
            let index = top.next_index;
            top.next_index += 1;
            let here = *top;
            let entry = here.table.get(self.machine, index);
            if !entry.is_present() {
                continue;
            }
            let va = here.base + index as u64 * here.level.entry_span();
            let rights = LeafPermissions {
                writable: here.above.writable && entry.is_writable(),
                user: here.above.user && entry.is_user(),
                executable: here.above.executable && !entry.is_no_execute(),
            };
            match here.level.page_size() {
                Some(size) if entry.is_leaf(here.level) => {
                    return Some(MappedPage {
                        va: canonical(va, self.virt_bits),
                        pa: entry.address(here.level),
                        size,
                        entry,
                        effective: rights,
                    });
                }
                _ => {
                    let lower = here.level.lower().expect("page-table entries are leaves");
                    let Some(table) = TableRef::below(entry, here.level) else {
                        // A PS entry in a PML4 or PML5 (reserved): no page, no table.
                        continue;
                    };
                    self.stack.push(Position { table, level: lower, base: va, next_index: 0, above: rights });
                }
            }
        }
    }
}

/// Consecutive pages of one size with the same rights and attributes,
/// mapping consecutive physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingRun {
    /// First virtual byte.
    pub start: VirtAddr,
    /// Last virtual byte (inclusive, so a run may end at the top of memory).
    pub last: VirtAddr,
    /// First physical byte.
    pub pa: PhysAddr,
    /// The size of every page in the run.
    pub page_size: PageSize,
    /// How many pages.
    pub pages: u64,
    /// The rights of the whole path.
    pub effective: LeafPermissions,
    /// The leaves' attribute bits ([`PageTableEntry::attributes`]), all equal.
    pub attributes: u64,
}

impl MappingRun {
    /// The length in bytes.
    pub fn len(&self) -> u64 {
        self.pages * self.page_size.bytes()
    }

    /// Never true: a run holds at least one page.
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    fn from_page(page: &MappedPage) -> Self {
        MappingRun {
            start: page.va,
            last: VirtAddr(page.va.0 + (page.size.bytes() - 1)),
            pa: page.pa,
            page_size: page.size,
            pages: 1,
            effective: page.effective,
            attributes: page.entry.attributes(page.size.level()),
        }
    }

    /// Takes `page` into the run if it continues it.
    fn extend(&mut self, page: &MappedPage) -> bool {
        let continues = page.size == self.page_size
            && page.effective == self.effective
            && page.entry.attributes(page.size.level()) == self.attributes
            && Some(page.va.0) == self.last.0.checked_add(1)
            && page.pa.0 == self.pa.0 + self.len();
        if continues {
            self.pages += 1;
            self.last = VirtAddr(page.va.0 + (page.size.bytes() - 1));
        }
        continues
    }
}

impl fmt::Display for MappingRun {
    /// `0x0000000000000000-0x00000000ffffffff      4 x 1G rwx kernel -> 0x0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#018x}-{:#018x} {:>6} x {} r{}{} {} -> {:#x}",
            self.start.0,
            self.last.0,
            self.pages,
            self.page_size,
            if self.effective.writable { 'w' } else { '-' },
            if self.effective.executable { 'x' } else { '-' },
            if self.effective.user { "user  " } else { "kernel" },
            self.pa.0,
        )?;
        if self.attributes & PageTableEntry::GLOBAL != 0 {
            f.write_str(" global")?;
        }
        if self.attributes & (PageTableEntry::CACHE_DISABLE | PageTableEntry::WRITE_THROUGH) != 0 {
            f.write_str(" uncached/write-through")?;
        }
        Ok(())
    }
}

/// The runs of a tree, in address order.
pub struct MappingRuns<'m, M: Machine + ?Sized> {
    pages: MappedPages<'m, M>,
    pending: Option<MappingRun>,
}

impl<'m, M: Machine + ?Sized> MappingRuns<'m, M> {
    /// Starts at the root table `root`.
    pub fn new(machine: &'m M, root: TableRef) -> Self {
        MappingRuns { pages: MappedPages::new(machine, root), pending: None }
    }
}

impl<M: Machine + ?Sized> Iterator for MappingRuns<'_, M> {
    type Item = MappingRun;

    fn next(&mut self) -> Option<MappingRun> {
        for page in self.pages.by_ref() {
            let extended = self.pending.as_mut().is_some_and(|run| run.extend(&page));
            if !extended {
                if let Some(done) = self.pending.replace(MappingRun::from_page(&page)) {
                    return Some(done);
                }
            }
        }
        self.pending.take()
    }
}
