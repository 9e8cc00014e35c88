//! Where things go in a process's address space.
//!
//! ```text
//! 0 .. user_bottom (64 KiB)      never mapped: a NULL pointer faults
//! user_bottom .. ET_DYN_BASE     free; a non-PIE program (`gcc -static`,
//!                                linked at 0x400000) loads where it is linked
//! 0x5555_5555_4000               a static PIE's first page
//!   ... its segments, then the program break (brk)
//! ... mmap_top                   mmap hands out addresses downwards from here
//! stack_top - 8 MiB .. stack_top the stack (grows down, 64 KiB guard gap)
//! user_top = 2^47 - 4096         the end of user space (Linux's TASK_SIZE_MAX)
//!   (the upper half)             the kernel half: the kernel image and the
//!                                direct map of RAM and low MMIO
//!                                (supervisor-only, `k`): one set of tables
//!                                every process space shares
//! ```
//!
//! The lower half holds nothing of the kernel: user space begins at
//! Linux's default `vm.mmap_min_addr`, 64 KiB, and ends where Linux's
//! does. `/proc/sys/vm/mmap_min_addr` shows the bottom, and a fixed mapping
//! below it is `EPERM`, as Linux answers below its `mmap_min_addr` (Linux
//! lets a holder of `CAP_SYS_RAWIO` map lower; Nacre never does).

use crate::address_space::KernelMachine;
use paging::PagingAspace;

/// The lowest address a user mapping may use: Linux's default
/// `vm.mmap_min_addr` (64 KiB).
pub fn user_bottom() -> u64 {
    exec::MMAP_MIN_ADDR
}

/// The end of user space (exclusive): the last page below the canonical top
/// of the lower half, as Linux's `TASK_SIZE_MAX`.
pub fn user_top() -> u64 {
    crate::arch::syscall::user_space_top()
}

/// The end of the default user mappings (exclusive): 2^47 - 4096 under both
/// 4- and 5-level paging, as on Linux, which hands out addresses above 2^47
/// only to a program that asks for them.
pub const DEFAULT_TOP: u64 = (1 << 47) - 4096;

/// The stack's top (exclusive; 16-byte aligned).
pub const STACK_TOP: u64 = DEFAULT_TOP;

/// The stack's size when the program starts; it grows down from there on
/// faults, up to [`STACK_MAX`].
pub const STACK_INITIAL: u64 = 128 << 10;

/// The largest the stack grows to (the `RLIMIT_STACK` programs are told).
pub const STACK_MAX: u64 = 8 << 20;

/// The gap kept clear below the stack, which is also how far below it a
/// fault may land and still grow it: Linux's `stack_guard_gap` (256 pages).
pub const STACK_GUARD_GAP: u64 = 1 << 20;

/// The most regions a process's address space holds (the kernel half
/// included): `mmap` answers `ENOMEM` beyond it, as Linux does past
/// `vm.max_map_count` (65530 there; the region set lives in the kernel's
/// heap here, which holds fewer).
pub const MAX_MAP_COUNT: usize = 2048;

/// The first address above every `mmap` placement the kernel chooses: the
/// stack's largest extent and 128 MiB of room below it (Linux keeps at
/// least 128 MiB between the stack and the mmap base).
pub const MMAP_TOP: u64 = STACK_TOP - STACK_MAX - (128 << 20);

/// Marks a region the program may write or run but did not ask to read
/// (`PROT_WRITE` or `PROT_EXEC` without `PROT_READ`: Linux's mapping has no
/// `VM_READ`). The pages are readable all the same (x86 cannot map a page
/// it cannot read, and Linux's cannot either); a flag with no other use in
/// a process's space (NK's swap flag).
pub const UNREAD: aspace::Protection = aspace::Protection::SWAP;

/// True when the program asked to read `region` (`PROT_READ`).
pub fn readable(region_prot: aspace::Protection) -> bool {
    region_prot.contains(aspace::Protection::READ) && !region_prot.contains(UNREAD)
}

/// True for a region the program has (not the kernel half).
pub fn is_user(region: &aspace::Region) -> bool {
    region.va.as_u64() >= user_bottom() && !region.prot.contains(aspace::Protection::KERN)
}

/// Whether two adjacent user regions, `lower` ending where `upper` begins,
/// would be one mapping (VMA) on Linux: the same rights, lock and kind,
/// and, for file pages, the file's bytes continuing; the pages past the end
/// of a file belong to the mapping below them. A grow-down region is always
/// the bottom of its mapping. Regions are not merged again after a split,
/// so `mremap`, `mprotect(PROT_GROWSDOWN)` and `/proc/self/maps` look at
/// runs of such regions.
pub fn same_mapping(paging: &PagingAspace<KernelMachine>, lower: &aspace::Region, upper: &aspace::Region) -> bool {
    use aspace::Protection;
    if lower.va.as_u64().saturating_add(lower.len) != upper.va.as_u64() || !is_user(lower) || !is_user(upper) {
        return false;
    }
    let backing_at =
        |va: u64| paging.file_backing(aspace::VirtAddr::new(va)).map(|b| b.source.as_u64() + (va - b.va.as_u64()));
    if upper.prot.grows() {
        return false;
    }
    if lower.prot - Protection::GROW_DOWN != upper.prot {
        return false;
    }
    // A memory object's pages: the same object, shared or not alike, its
    // pages continuing.
    let object_at = |va: u64| {
        paging
            .object_backing(aspace::VirtAddr::new(va))
            .map(|b| (b.object.key(), b.shared, b.index_of(va & !(PAGE - 1))))
    };
    match (object_at(lower.last()), object_at(upper.va.as_u64())) {
        (None, None) => {}
        (Some((below, shared, index)), Some(above)) if above == (below, shared, index + 1) => {}
        _ => return false,
    }
    match (backing_at(lower.last()), backing_at(upper.va.as_u64())) {
        (None, None) => true,
        (Some(below), Some(above)) => below + 1 == above,
        _ => false,
    }
}

/// The page size.
pub const PAGE: u64 = 4096;

/// `n` rounded up to a page, or `None` past 2^64.
pub fn page_up(n: u64) -> Option<u64> {
    n.checked_add(PAGE - 1).map(|end| end & !(PAGE - 1))
}
