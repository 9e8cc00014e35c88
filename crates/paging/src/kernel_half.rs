//! [`KernelHalf`]: the upper half of the address space, shared by every
//! tree made with it.

use crate::entry::{Level, PageTableEntry, ENTRIES_PER_TABLE};
use crate::error::PagingError;
use crate::machine::Machine;
use crate::table::TableRef;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// The upper half of the address space (the top-level entries 256 to 511:
/// of the PML4, or of the PML5 with LA57), shared by every tree made with
/// [`crate::PageTables::new_with_kernel_half`], as most kernels share their
/// own half with every process.
///
/// ## How it is shared
/// All 256 tables just below the root are allocated when the kernel half
/// is made, and every tree made with it points its upper-half entries at
/// them. So the roots never differ in the upper half, and nothing has to be
/// copied or kept in step: a map, unmap or protect in the upper half,
/// through any tree, edits tables all of them reach, and no new top-level
/// entry ever appears in the upper half (the cost: 1 MiB of tables, empty
/// until used). The entries pointing at the shared tables are marked
/// [`PageTableEntry::KEEP_TABLE`]: an edit that leaves one empty does not
/// unlink or free it, a tree's [`crate::PageTables::destroy`] leaves them
/// (and everything below) alone, and they keep no present count (each root
/// has its own entry, so the counts could not agree). They are user
/// entries (U set, writable, no NX), so that the leaves alone decide the
/// rights, for every tree at once. The tables below the shared ones belong
/// to the kernel half too, whichever tree's edit allocated them
/// ([`KernelHalf::table_frames`]).
///
/// ## What the caller must do
/// - Serialize the edits of the upper half: they write tables that every
///   tree shares, so two edits through two trees must not run at once (one
///   lock for the kernel half, beside each space's own).
/// - Invalidate in every space: the TLBs cache the upper half's
///   translations per space (the global bit is never set), so the batch of
///   an edit of the upper half is applied to every space made with the
///   kernel half ([`crate::FlushBatch::apply_to_each`]), not only to the
///   one edited through.
///
/// ## Lifetime
/// `KernelHalf` is a handle: clones share the same tables, and each tree
/// made with it holds one until [`crate::PageTables::destroy`].
/// [`KernelHalf::destroy`] frees the tables once no other handle is left.
#[derive(Clone)]
pub struct KernelHalf {
    shared: Arc<Shared>,
}

struct Shared {
    /// The level of the roots that link to the tables.
    root_level: Level,
    /// The tables below root entries 256 to 511, in order.
    tables: Vec<TableRef>,
    /// Page-table frames of the kernel half: the shared tables and those
    /// edits allocated below them.
    frames: AtomicU64,
}

impl KernelHalf {
    /// The first root entry of the upper half.
    pub const FIRST_INDEX: usize = ENTRIES_PER_TABLE / 2;

    /// Allocates the 256 tables of an empty upper half, for trees of the
    /// machine's number of levels. All or nothing: on
    /// [`PagingError::OutOfMemory`] the frames taken go back.
    pub fn new<M: Machine + ?Sized>(machine: &M) -> Result<Self, PagingError> {
        let root_level = Level::root(machine.features().la57);
        let mut tables = Vec::with_capacity(ENTRIES_PER_TABLE - Self::FIRST_INDEX);
        for _ in Self::FIRST_INDEX..ENTRIES_PER_TABLE {
            match machine.alloc_frame() {
                Some(frame) => tables.push(TableRef::owned(frame)),
                None => {
                    for table in tables {
                        // SAFETY: allocated just now and never linked into
                        // any table, so nothing can reach it.
                        unsafe { machine.free_frame(table.addr()) };
                    }
                    return Err(PagingError::OutOfMemory);
                }
            }
        }
        let frames = AtomicU64::new(tables.len() as u64);
        Ok(KernelHalf { shared: Arc::new(Shared { root_level, tables, frames }) })
    }

    /// The level of the roots it is shared by (PML4, or PML5 with LA57).
    pub fn root_level(&self) -> Level {
        self.shared.root_level
    }

    /// The table below root entry `index` (256 to 511).
    pub fn table(&self, index: usize) -> TableRef {
        self.shared.tables[index - Self::FIRST_INDEX]
    }

    /// Page-table frames of the kernel half: its 256 tables and those that
    /// edits of the upper half allocated below them and did not free.
    pub fn table_frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// How many handles share it (this one, its clones, and one per tree
    /// made with it and not destroyed).
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.shared)
    }

    /// The root entry pointing at the shared table `index`.
    fn entry(&self, index: usize) -> PageTableEntry {
        PageTableEntry::table(self.table(index).addr(), true).with(PageTableEntry::KEEP_TABLE, true)
    }

    /// Points the upper-half entries of `root`, a fresh (zeroed) root, at
    /// the shared tables.
    pub(crate) fn link_into<M: Machine + ?Sized>(&self, machine: &M, root: TableRef) {
        for index in Self::FIRST_INDEX..ENTRIES_PER_TABLE {
            root.set(machine, index, self.entry(index));
        }
    }

    /// Counts the tables an edit of the upper half allocated and freed.
    pub(crate) fn count_tables(&self, allocated: u64, freed: u64) {
        if allocated != freed {
            self.shared.frames.fetch_add(allocated.wrapping_sub(freed), Ordering::Relaxed);
        }
    }

    /// Frees every table of the kernel half: the 256 shared ones and all
    /// below them. Refused, with the handle given back, while another
    /// handle exists: a clone, or a tree made with it that was not
    /// destroyed (a tree dropped without `destroy` keeps its handle for
    /// good, as a CPU may still walk its tables). Returns how many frames
    /// were freed.
    ///
    /// No TLB can hold a translation through these tables by then: each
    /// tree that linked them was destroyed, and its destroy batch flushes
    /// its whole space before it frees the tree's root.
    pub fn destroy<M: Machine + ?Sized>(self, machine: &M) -> Result<u64, KernelHalf> {
        let shared = Arc::try_unwrap(self.shared).map_err(|shared| KernelHalf { shared })?;
        let lower = shared.root_level.lower().expect("a root has a level below it");
        let mut stack: Vec<(TableRef, Level)> = shared.tables.iter().map(|&table| (table, lower)).collect();
        let mut freed = 0;
        while let Some((table, level)) = stack.pop() {
            if let Some(below) = level.lower() {
                for index in 0..ENTRIES_PER_TABLE {
                    if let Some(child) = TableRef::below(table.get(machine, index), level) {
                        stack.push((child, below));
                    }
                }
            }
            // SAFETY: a table of the kernel half, which owns it: no tree
            // links to it any more (each held a handle until destroyed),
            // and the trees' destroy batches flushed their spaces.
            unsafe { machine.free_frame(table.addr()) };
            freed += 1;
        }
        Ok(freed)
    }
}

impl fmt::Debug for KernelHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelHalf")
            .field("root_level", &self.shared.root_level)
            .field("first_table", &self.shared.tables.first())
            .field("table_frames", &self.table_frames())
            .field("handles", &self.handles())
            .finish()
    }
}
