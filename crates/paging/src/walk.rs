//! Walking the tables for one virtual address, as the CPU does, and
//! reporting every step (for fault reports and tests).
//!
//! `descend` is the one walker of the crate: every lookup of one address
//! goes through it — [`walk`] (fault reports, tests, [`crate::PageTables::walk`]),
//! the fault handler's probe (`PageTables::probe_fault`) and the edit of a
//! range inside one page table (`edit::edit_in_one_page_table`). Visits of
//! every table of a tree (the listing in [`crate::dump`], `verify`,
//! `destroy`, adoption) are not lookups of one address and walk the tree
//! themselves, through [`TableRef`] like everything else.

use crate::entry::{Level, PageSize, PageTableEntry};
use crate::machine::Machine;
use crate::table::TableRef;
use aspace::{FaultAccess, PhysAddr, VirtAddr};
use core::fmt;
use core::ops::ControlFlow;

/// One table visited by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The level of the table.
    pub level: Level,
    /// The table.
    pub table: TableRef,
    /// The index of the entry used.
    pub index: usize,
    /// The entry, as read.
    pub entry: PageTableEntry,
}

impl WalkStep {
    /// What fills the steps a walk did not take (never read).
    const UNUSED: WalkStep =
        WalkStep { level: Level::Pt, table: TableRef::owned(PhysAddr(0)), index: 0, entry: PageTableEntry::EMPTY };

    /// The physical address of the entry used.
    pub fn slot(&self) -> PhysAddr {
        self.table.slot(self.index)
    }

    /// The table the entry points at, if it points at one (present, not a leaf).
    pub fn next_table(&self) -> Option<TableRef> {
        TableRef::below(self.entry, self.level)
    }
}

/// The one walker: the entries the CPU reads to translate `va` (any form:
/// only its index bits are used, no canonical check), from `root`, a table
/// at `root_level`, down, each given to `visit` as a step, root first.
/// `visit` ends the walk by breaking with its result, and must break at an
/// entry that is not present or maps a page (a PS entry in a PML4 or PML5,
/// reserved, counts as one): there is no table below it to go on to. Reads
/// nothing it does not give to `visit`; sets no accessed or dirty bit and
/// consults no TLB.
///
/// Internal iteration, not an iterator: inlined, the walk compiles to the
/// plain loop of one fault's lookup, its checks shared with the visitor's
/// (an iterator's state between steps cost the fault path 24 instructions).
// Inlined: one walk per page fault (DESIGN.md, "Inlining").
#[inline(always)]
pub(crate) fn descend<M: Machine + ?Sized, R>(
    machine: &M,
    root: TableRef,
    root_level: Level,
    va: u64,
    mut visit: impl FnMut(WalkStep) -> ControlFlow<R>,
) -> R {
    let (mut table, mut level) = (root, root_level);
    loop {
        let index = level.index(va);
        let step = WalkStep { level, table, index, entry: table.get(machine, index) };
        if let ControlFlow::Break(result) = visit(step) {
            return result;
        }
        match (step.next_table(), level.lower()) {
            (Some(below), Some(lower)) => (table, level) = (below, lower),
            _ => unreachable!("the walk's visitor goes on past {step:?}, which leads to no table"),
        }
    }
}

/// A complete translation found by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the byte asked for.
    pub pa: PhysAddr,
    /// The virtual start of the page holding it.
    pub page_va: VirtAddr,
    /// The physical start of that page.
    pub page_pa: PhysAddr,
    /// The size of that page.
    pub page_size: PageSize,
    /// Every level allows writes (R/W set all the way down; CR0.WP is not considered).
    pub writable: bool,
    /// Every level allows user-mode access.
    pub user: bool,
    /// No level has NX set.
    pub executable: bool,
}

impl Translation {
    /// True when the entries allow `access` (in user mode if `user_mode`),
    /// counting supervisor writes to read-only pages as forbidden (CR0.WP on,
    /// as Nacre runs) and ignoring SMEP/SMAP.
    pub fn allows(&self, access: FaultAccess, user_mode: bool) -> bool {
        (!user_mode || self.user)
            && match access {
                FaultAccess::Read => true,
                FaultAccess::Write => self.writable,
                FaultAccess::Execute => self.executable,
            }
    }
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkOutcome {
    /// The address translates.
    Mapped(Translation),
    /// The entry at this level is not present.
    NotPresent {
        /// Where the walk stopped.
        level: Level,
    },
    /// The entry at this level has reserved bits set (the CPU would raise a
    /// page fault with RSVD).
    ReservedBits {
        /// Where the walk stopped.
        level: Level,
        /// The offending bits.
        bits: u64,
    },
    /// The address is not canonical: the CPU would raise #GP without walking.
    NonCanonical,
}

/// The full path of a walk: each table visited, and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The address walked.
    pub va: VirtAddr,
    /// The root table it started from.
    pub root: TableRef,
    /// How it ended.
    pub outcome: WalkOutcome,
    steps: [WalkStep; 5],
    depth: usize,
}

impl Walk {
    /// The tables visited, root first.
    pub fn steps(&self) -> &[WalkStep] {
        &self.steps[..self.depth]
    }

    /// The translation, if the address is mapped.
    pub fn translation(&self) -> Option<Translation> {
        match self.outcome {
            WalkOutcome::Mapped(t) => Some(t),
            _ => None,
        }
    }
}

/// Walks the tables under `root` for `va`, as the CPU would, and reports
/// every entry read. Large pages end the walk at their level. Does not set
/// accessed or dirty bits and does not consult any TLB.
///
/// In a kernel, the tables the CPU is using are `TableRef::current(machine)`.
pub fn walk<M: Machine + ?Sized>(machine: &M, root: TableRef, va: VirtAddr) -> Walk {
    let features = machine.features();
    let mut walk = Walk { va, root, outcome: WalkOutcome::NonCanonical, steps: [WalkStep::UNUSED; 5], depth: 0 };
    if !va.is_canonical(features.virt_width()) {
        return walk;
    }
    let (mut writable, mut user, mut executable) = (true, true, true);
    walk.outcome = descend(machine, root, Level::root(features.la57), va.0, |step| {
        let WalkStep { level, entry, .. } = step;
        walk.steps[walk.depth] = step;
        walk.depth += 1;
        if !entry.is_present() {
            return ControlFlow::Break(WalkOutcome::NotPresent { level });
        }
        let reserved = entry.reserved_bits(level, features.phys_bits, features.nx);
        if reserved != 0 {
            return ControlFlow::Break(WalkOutcome::ReservedBits { level, bits: reserved });
        }
        writable &= entry.is_writable();
        user &= entry.is_user();
        executable &= !entry.is_no_execute();
        if !entry.is_leaf(level) {
            return ControlFlow::Continue(());
        }
        let page_size = level.page_size().expect("leaves only exist at PT, PD and PDPT");
        let offset = va.0 & (page_size.bytes() - 1);
        let page_pa = entry.address(level);
        ControlFlow::Break(WalkOutcome::Mapped(Translation {
            pa: PhysAddr(page_pa.0 + offset),
            page_va: VirtAddr(va.0 - offset),
            page_pa,
            page_size,
            writable,
            user,
            executable,
        }))
    });
    walk
}

impl fmt::Display for Translation {
    /// `PA 0x1234 (4K page 0x1000 -> 0x1000, rw- user)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PA {:#x} ({} page {:#x} -> {:#x}, r{}{} {})",
            self.pa.0,
            self.page_size,
            self.page_va.0,
            self.page_pa.0,
            if self.writable { 'w' } else { '-' },
            if self.executable { 'x' } else { '-' },
            if self.user { "user" } else { "supervisor" },
        )
    }
}

impl fmt::Display for Walk {
    /// One line per table visited, then the outcome:
    ///
    /// ```text
    /// walk of 0x401000 from root 0x1000
    ///   PML4[0] @ 0x1000 = 0x0000000000002007 [P W U]
    ///   ...
    ///   => PA 0x401000 (4K page 0x401000 -> 0x401000, rw- user)
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "walk of {:#x} from root {:#x}", self.va.0, self.root.addr().0)?;
        for step in self.steps() {
            writeln!(f, "  {}[{}] @ {:#x} = {}", step.level, step.index, step.table.addr().0, step.entry)?;
        }
        match self.outcome {
            WalkOutcome::Mapped(t) => write!(f, "  => {t}"),
            WalkOutcome::NotPresent { level } => write!(f, "  => not present at {level}"),
            WalkOutcome::ReservedBits { level, bits } => write!(f, "  => reserved bits {bits:#x} set at {level}"),
            WalkOutcome::NonCanonical => write!(f, "  => not canonical"),
        }
    }
}
