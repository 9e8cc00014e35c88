//! Adopting a tree built by someone else ([`crate::PageTables::from_root`]):
//! one walk that checks it, one that takes it over.

use crate::edit::canonical;
use crate::entry::{Level, PageTableEntry, ENTRIES_PER_TABLE};
use crate::error::PagingError;
use crate::machine::{Machine, PagingFeatures};
use crate::table::TableRef;
use alloc::collections::BTreeSet;

/// Who frees the tables of a tree adopted with [`crate::PageTables::from_root`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOwnership {
    /// The tables found at adoption, the root included, stay their
    /// builder's: the tree never frees them, not when an edit leaves one
    /// empty (it stays linked, empty) and not in [`crate::PageTables::destroy`],
    /// which frees only the tables the tree allocated itself. Adoption
    /// marks the entries pointing at them with
    /// [`crate::PageTableEntry::KEEP_TABLE`].
    Borrowed,
    /// The tables found at adoption become the tree's, as if it had
    /// allocated them: each came from the machine's
    /// [`crate::Machine::alloc_frame`], and is freed to it when an edit empties it
    /// or the tree is destroyed (the root included). Adoption writes each
    /// table's present count into the entry pointing at it.
    Owned,
}

/// What lies below an entry pointing at a table.
#[derive(Clone, Copy, Default)]
struct Below {
    /// Present entries of the table itself.
    present: u32,
    /// Some leaf below has R/W set.
    writable: bool,
    /// Some leaf below has U/S set.
    user: bool,
    /// Some leaf below may be executed (NX clear, with NX enabled).
    executable: bool,
}

struct Adopter<'m, M: Machine + ?Sized> {
    machine: &'m M,
    features: PagingFeatures,
    ownership: TableOwnership,
    /// Write pass (the check pass writes nothing).
    writing: bool,
    /// The tables seen, to refuse a table reached twice.
    seen: BTreeSet<u64>,
}

/// Checks the tree under `root` and takes it over (see
/// [`crate::PageTables::from_root`]): returns how many tables it holds, the
/// root included. On an error nothing was written.
pub(crate) fn adopt<M: Machine + ?Sized>(
    machine: &M,
    root: TableRef,
    features: PagingFeatures,
    ownership: TableOwnership,
) -> Result<u64, PagingError> {
    let mut adopter = Adopter { machine, features, ownership, writing: false, seen: BTreeSet::new() };
    let level = Level::root(features.la57);
    adopter.seen.insert(root.addr().0);
    adopter.visit(root, level, 0)?;
    let tables = adopter.seen.len() as u64;
    adopter.writing = true;
    adopter.visit(root, level, 0).expect("the check pass accepted the tree");
    Ok(tables)
}

impl<M: Machine + ?Sized> Adopter<'_, M> {
    /// Visits `table`, at `level`, whose first entry maps `base` (reduced to
    /// the translated bits).
    fn visit(&mut self, table: TableRef, level: Level, base: u64) -> Result<Below, PagingError> {
        let PagingFeatures { phys_bits, nx, huge_1g, .. } = self.features;
        let mut summary = Below::default();
        for index in 0..ENTRIES_PER_TABLE {
            let entry = table.get(self.machine, index);
            if !entry.is_present() {
                continue;
            }
            summary.present += 1;
            let reduced = base + index as u64 * level.entry_span();
            let va = canonical(reduced, self.features.virt_width().bits());
            let unsupported_1g = level == Level::Pdpt && entry.is_leaf(level) && !huge_1g;
            if entry.reserved_bits(level, phys_bits, nx) != 0 || unsupported_1g {
                return Err(PagingError::ReservedBits { level, va, entry });
            }
            let Some(child) = TableRef::below(entry, level) else {
                summary.writable |= entry.is_writable();
                summary.user |= entry.is_user();
                summary.executable |= !entry.is_no_execute();
                continue;
            };
            let lower = level.lower().expect("page-table entries are leaves");
            if !self.writing && !self.seen.insert(child.addr().0) {
                return Err(PagingError::AliasedTable { level: lower, table: child.addr(), va });
            }
            let below = self.visit(child, lower, reduced)?;
            let hides = (below.writable && !entry.is_writable())
                || (below.user && !entry.is_user())
                || (below.executable && entry.is_no_execute());
            if hides {
                return Err(PagingError::HiddenRights { level, va, entry });
            }
            if self.writing {
                // Only what no leaf depends on: no leaf below has a right
                // that W, no NX or no G would add (checked above).
                let permissive = entry
                    .with(PageTableEntry::WRITABLE, true)
                    .with(PageTableEntry::NO_EXECUTE | PageTableEntry::GLOBAL, false);
                let adopted = match self.ownership {
                    TableOwnership::Owned => {
                        permissive.with(PageTableEntry::KEEP_TABLE, false).with_present_count(below.present)
                    }
                    TableOwnership::Borrowed => permissive.with(PageTableEntry::KEEP_TABLE, true),
                };
                if adopted != entry {
                    table.set(self.machine, index, adopted);
                }
            }
            summary.writable |= below.writable;
            summary.user |= below.user;
            summary.executable |= below.executable;
        }
        Ok(summary)
    }
}
