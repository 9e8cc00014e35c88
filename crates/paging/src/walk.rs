//! Walking the tables for one virtual address, as the CPU does, and
//! reporting every step (for fault reports and tests).

use crate::entry::{Level, PageSize, PageTableEntry};
use crate::machine::Machine;
use aspace::{FaultAccess, PhysAddr, VirtAddr};
use core::fmt;

/// One table visited by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The level of the table.
    pub level: Level,
    /// The table's physical address.
    pub table: PhysAddr,
    /// The index of the entry used.
    pub index: usize,
    /// The entry, as read.
    pub entry: PageTableEntry,
}

impl WalkStep {
    const UNUSED: WalkStep = WalkStep { level: Level::Pt, table: PhysAddr(0), index: 0, entry: PageTableEntry::EMPTY };
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
    pub root: PhysAddr,
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
pub fn walk<M: Machine + ?Sized>(machine: &M, root: PhysAddr, va: VirtAddr) -> Walk {
    let features = machine.features();
    let mut walk = Walk { va, root, outcome: WalkOutcome::NonCanonical, steps: [WalkStep::UNUSED; 5], depth: 0 };
    if !va.is_canonical(features.virt_width()) {
        return walk;
    }
    let (mut writable, mut user, mut executable) = (true, true, true);
    let mut table = root;
    let mut level = Level::root(features.la57);
    loop {
        let index = level.index(va.0);
        let entry = PageTableEntry(machine.read_u64(PhysAddr(table.0 + 8 * index as u64)));
        walk.steps[walk.depth] = WalkStep { level, table, index, entry };
        walk.depth += 1;
        if !entry.is_present() {
            walk.outcome = WalkOutcome::NotPresent { level };
            return walk;
        }
        let reserved = entry.reserved_bits(level, features.phys_bits, features.nx);
        if reserved != 0 {
            walk.outcome = WalkOutcome::ReservedBits { level, bits: reserved };
            return walk;
        }
        writable &= entry.is_writable();
        user &= entry.is_user();
        executable &= !entry.is_no_execute();
        if entry.is_leaf(level) {
            let page_size = level.page_size().expect("leaves only exist at PT, PD and PDPT");
            let offset = va.0 & (page_size.bytes() - 1);
            let page_pa = entry.address(level);
            walk.outcome = WalkOutcome::Mapped(Translation {
                pa: PhysAddr(page_pa.0 + offset),
                page_va: VirtAddr(va.0 - offset),
                page_pa,
                page_size,
                writable,
                user,
                executable,
            });
            return walk;
        }
        table = entry.address(level);
        level = level.lower().expect("a page-table entry is always a leaf");
    }
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
        writeln!(f, "walk of {:#x} from root {:#x}", self.va.0, self.root.0)?;
        for step in self.steps() {
            writeln!(f, "  {}[{}] @ {:#x} = {}", step.level, step.index, step.table.0, step.entry)?;
        }
        match self.outcome {
            WalkOutcome::Mapped(t) => write!(f, "  => {t}"),
            WalkOutcome::NotPresent { level } => write!(f, "  => not present at {level}"),
            WalkOutcome::ReservedBits { level, bits } => write!(f, "  => reserved bits {bits:#x} set at {level}"),
            WalkOutcome::NonCanonical => write!(f, "  => not canonical"),
        }
    }
}
