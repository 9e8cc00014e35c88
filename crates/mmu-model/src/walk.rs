//! The page walk (SDM §4.5), the access-rights rules (§4.6), the fault
//! error code (§4.7) and the accessed/dirty updates (§4.8).

use crate::entry::{self, PageSize};
use crate::memory::PhysicalMemory;
use crate::Mode;
use aspace::{FaultAccess, PageFaultCode};
use paging::PagingFeatures;

/// The per-CPU control bits that change how a walk or a check turns out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Controls {
    /// CR0.WP: supervisor writes honour R/W.
    pub(crate) write_protect: bool,
    /// CR4.SMEP: supervisor fetches from user pages fault.
    pub(crate) smep: bool,
    /// CR4.SMAP: supervisor data accesses to user pages fault unless AC.
    pub(crate) smap: bool,
    /// RFLAGS.AC: lifts SMAP for explicit supervisor data accesses.
    pub(crate) alignment_check: bool,
    /// IA32_EFER.NXE: bit 63 of entries means execute-disable.
    pub(crate) nxe: bool,
    /// CR4.PGE: the G bit makes translations global.
    pub(crate) pge: bool,
}

/// The access rights of a translation, combined over every level (§4.6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rights {
    /// R/W=1 at every level.
    pub(crate) writable: bool,
    /// U/S=1 at every level: a user-mode address.
    pub(crate) user: bool,
    /// XD=0 at every level (or NXE off).
    pub(crate) executable: bool,
}

/// The page-table frames a walk read, root first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WalkedTables {
    frames: [u64; 5],
    len: u8,
}

impl WalkedTables {
    fn push(&mut self, frame: u64) {
        self.frames[usize::from(self.len)] = frame;
        self.len += 1;
    }

    /// The frames, root first.
    pub(crate) fn frames(&self) -> &[u64] {
        &self.frames[..usize::from(self.len)]
    }
}

/// A successful translation: what a TLB entry is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Translation {
    pub(crate) size: PageSize,
    /// The first virtual address of the page.
    pub(crate) virt_base: u64,
    /// The first physical address of the page.
    pub(crate) phys_base: u64,
    pub(crate) rights: Rights,
    /// G=1 in the leaf entry and CR4.PGE on.
    pub(crate) global: bool,
    /// D=1 in the leaf entry (after this access).
    pub(crate) dirty: bool,
    pub(crate) tables: WalkedTables,
}

/// Why a translation failed, before it is turned into an error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// P=0 in some entry.
    NotPresent,
    /// A reserved bit was set in some present entry.
    ReservedBit,
    /// The access rights do not allow the access.
    Protection,
}

/// The outcome of a walk: the tables read (even when it failed) and the
/// translation or the reason it failed.
pub(crate) struct Walk {
    pub(crate) tables: WalkedTables,
    pub(crate) result: Result<Translation, FaultKind>,
}

/// Translates `va` by walking the tables under `root`, checks the access,
/// and on success sets the accessed flags on every entry used and the dirty
/// flag on the leaf for a write (written back to memory, as the processor
/// does with locked read-modify-writes).
///
/// `va` must be canonical.
pub(crate) fn walk(
    memory: &mut PhysicalMemory,
    features: &PagingFeatures,
    controls: Controls,
    root: u64,
    va: u64,
    access: FaultAccess,
    mode: Mode,
) -> Walk {
    let mut tables = WalkedTables::default();
    // The address and value of each entry used, to set A and D in.
    let mut used = [(0u64, 0u64); 5];
    let mut rights = Rights { writable: true, user: true, executable: true };
    let mut table = root;
    let mut level = features.levels();
    loop {
        tables.push(table);
        let index = (va >> (12 + 9 * u32::from(level - 1))) & 0x1ff;
        let entry_addr = table + index * 8;
        let entry = memory.read(entry_addr);
        used[usize::from(tables.len - 1)] = (entry_addr, entry);
        if entry & entry::PRESENT == 0 {
            return Walk { tables, result: Err(FaultKind::NotPresent) };
        }
        if entry::reserved_bits(entry, level, features.phys_bits, controls.nxe, features.huge_1g) != 0 {
            return Walk { tables, result: Err(FaultKind::ReservedBit) };
        }
        rights.writable &= entry & entry::WRITABLE != 0;
        rights.user &= entry & entry::USER != 0;
        rights.executable &= !(controls.nxe && entry & entry::NO_EXECUTE != 0);

        let is_leaf = level == 1 || (level <= 3 && entry & entry::PAGE_SIZE != 0);
        if !is_leaf {
            table = entry::address_of(entry, PageSize::Size4K);
            level -= 1;
            continue;
        }

        if !allowed(rights, access, mode, controls) {
            return Walk { tables, result: Err(FaultKind::Protection) };
        }
        // §4.8: A on every entry used, D on the leaf for a write.
        let dirty = entry & entry::DIRTY != 0 || access == FaultAccess::Write;
        let (used, leaf) = used[..usize::from(tables.len)].split_at(usize::from(tables.len) - 1);
        for &(addr, value) in used {
            if value & entry::ACCESSED == 0 {
                memory.write(addr, value | entry::ACCESSED);
            }
        }
        let (leaf_addr, _) = leaf[0];
        let updated_leaf = entry | entry::ACCESSED | if dirty { entry::DIRTY } else { 0 };
        if updated_leaf != entry {
            memory.write(leaf_addr, updated_leaf);
        }
        let size = PageSize::at_level(level);
        let translation = Translation {
            size,
            virt_base: size.base_of(va),
            phys_base: entry::address_of(entry, size),
            rights,
            global: controls.pge && entry & entry::GLOBAL != 0,
            dirty,
            tables,
        };
        return Walk { tables, result: Ok(translation) };
    }
}

/// Whether `rights` allow `access` in `mode` (SDM §4.6.1).
pub(crate) fn allowed(rights: Rights, access: FaultAccess, mode: Mode, controls: Controls) -> bool {
    match mode {
        Mode::User => {
            rights.user
                && match access {
                    FaultAccess::Read => true,
                    FaultAccess::Write => rights.writable,
                    FaultAccess::Execute => rights.executable,
                }
        }
        Mode::Supervisor => match access {
            FaultAccess::Read => !smap_blocks(rights, controls),
            FaultAccess::Write => !smap_blocks(rights, controls) && (rights.writable || !controls.write_protect),
            FaultAccess::Execute => rights.executable && !(rights.user && controls.smep),
        },
    }
}

/// SMAP: an explicit supervisor data access to a user-mode address faults
/// unless RFLAGS.AC is set.
fn smap_blocks(rights: Rights, controls: Controls) -> bool {
    rights.user && controls.smap && !controls.alignment_check
}

/// The page-fault error code (SDM §4.7).
pub(crate) fn error_code(kind: FaultKind, access: FaultAccess, mode: Mode, controls: Controls) -> PageFaultCode {
    let mut code = PageFaultCode::empty();
    if kind != FaultKind::NotPresent {
        code |= PageFaultCode::PRESENT;
    }
    if kind == FaultKind::ReservedBit {
        code |= PageFaultCode::RESERVED;
    }
    if access == FaultAccess::Write {
        code |= PageFaultCode::WRITE;
    }
    if mode == Mode::User {
        code |= PageFaultCode::USER;
    }
    // I/D is reported only when fetches can be told apart: NXE or SMEP on.
    if access == FaultAccess::Execute && (controls.nxe || controls.smep) {
        code |= PageFaultCode::FETCH;
    }
    code
}
