//! The shell test at startup, after NK's paging lab: every shell builds an
//! address space of its own, moves into it, and reads 1 GiB through an
//! eager and a lazy mapping of the same memory.
//!
//! The steps:
//! 1. create a `paging` address space named after the shell;
//! 2. add the kernel half (the image where it is linked and the direct map
//!    of all RAM, which the kernel runs on) and, as the lab's content, the
//!    hardened identity map of 0–4 GiB ([`crate::hardening`]): EAGER, PIN,
//!    KERN regions built at once with the largest pages that fit, the
//!    kernel text read-only and executable, its rodata read-only,
//!    everything else writable and non-executable, and the guard page below
//!    every kernel stack unmapped (in the direct map, where the stacks are);
//! 3. add a LAZY region at 0xffff_8000_0000_0000 mapping physical 0 for
//!    4 GiB, READ|WRITE|PIN|KERN (not executable: no page is both);
//! 4. move the shell's thread in: refused, with the reason, when the space
//!    does not map everything the kernel touches (more than 4 GiB of RAM);
//! 5. compare 1 GiB (or 4 MiB, see below) of physical memory from 1 MiB
//!    through the direct map and through the lazy alias with `memcmp`:
//!    every page of the lazy alias faults in on first touch. Guard pages
//!    are skipped: unmapped in the direct map, they would fault (as a stack
//!    overflow).
//!
//! The kernel option `shelltest=` chooses how much of it runs:
//! - `4k`: NK's test exactly: 1 GiB compared, each lazy fault mapping one
//!   4 KiB page (262,144 faults);
//! - `large`: 1 GiB compared, each fault mapping the largest page the region
//!   allows (a 1 GiB page when the CPU has them: two faults);
//! - `quick`, the default: the same steps, comparing 4 MiB with 4 KiB faults
//!   (1,024 faults). Under QEMU's software emulation, reading 1 GiB takes
//!   seconds (tens of seconds where there is no RAM behind the addresses),
//!   which every scripted boot would pay;
//! - `off`: no test; the shell stays in its creator's address space.
//!
//! The test runs the paging lab's code ([`NEEDS`]). In a student kit
//! where some of it is still a `todo!` ([`crate::lab_todo`]), it is
//! skipped, naming each unwritten body as its `todo!` would ("not yet
//! implemented: Task 1: ..."), and the shell starts in its creator's
//! address space: the kernel comes up to the prompt whatever is left to
//! write. Not a failure of the script: `shelltest=off` would do the same.

use super::session::paging_mut;
use crate::address_space::{self, Space};
use crate::arch::tsc;
use crate::cmdline::ShellTest;
use alloc::sync::Arc;
use aspace::{Protection, Region};
use core::fmt::Write;
use paging::{PageSize, PagingCounters};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Where the lazy alias of physical memory starts (the bottom of the upper
/// canonical half with 4-level paging).
pub const LAZY_ALIAS: u64 = 0xffff_8000_0000_0000;
/// What both regions map: the first 4 GiB of physical memory.
pub const MAPPED_LEN: u64 = 4 * GIB;
/// Where the comparison starts.
pub const COMPARED_START: u64 = MIB;
/// How many bytes NK's test compares.
pub const LAB_COMPARED_LEN: u64 = GIB;
/// How many bytes the quick test compares.
pub const QUICK_COMPARED_LEN: u64 = 4 * MIB;

/// The lab's tasks whose bodies the test runs, by the start of their
/// `todo!` messages: `add_region` and the region set (harden), the guard
/// pages' `protect_region`, the lazy faults (with `fault_page`) and the
/// flushes of every edit.
pub const NEEDS: &[&str] =
    &["Task 1", "Task 2", "Task 3", "Task 4", "Extra credit (shootdown)", "Extra credit (large-pages)"];

/// What the startup test left behind.
pub struct StartupOutcome {
    /// The address space it made (`None` when it made none).
    pub space: Option<Arc<Space>>,
    /// Whether something went wrong that should not have (an operation
    /// refused, the two mappings reading differently). Not being able to
    /// enter the space is reported but is not a failure: the shell carries
    /// on where it is.
    pub failed: bool,
}

/// Runs the startup test for the shell called `name`, reporting each step
/// to `out`.
pub fn run(name: &str, mode: ShellTest, out: &mut dyn Write) -> StartupOutcome {
    let (fault_limit, compared_len, option) = match mode {
        ShellTest::Off => {
            let _ = writeln!(out, "{name}: startup test off (shelltest=off); staying in this address space");
            return StartupOutcome { space: None, failed: false };
        }
        ShellTest::Quick => (PageSize::Size4K, QUICK_COMPARED_LEN, "quick"),
        ShellTest::Large => (PageSize::Size1G, LAB_COMPARED_LEN, "large"),
        ShellTest::Small4K => (PageSize::Size4K, LAB_COMPARED_LEN, "4k"),
    };
    let mut unwritten = crate::lab_todo::unwritten_of(NEEDS).peekable();
    if unwritten.peek().is_some() {
        let _ = writeln!(out, "{name}: startup test skipped: the paging lab's code it runs is not all written yet:");
        for message in unwritten {
            let _ = writeln!(out, "  not yet implemented: {message}");
        }
        let _ = writeln!(out, "  staying in the current address space (the kernel itself runs none of that code)");
        return StartupOutcome { space: None, failed: false };
    }
    let started = tsc::nanos_since_boot();
    let _ = writeln!(
        out,
        "{name}: startup test shelltest={option} (of quick|large|4k|off): {} MiB compared, lazy faults map up to {}",
        compared_len / MIB,
        page_size_name(fault_limit)
    );
    let space = match address_space::create(paging::IMPLEMENTATION_NAME, name) {
        Ok(space) => space,
        Err(error) => {
            let _ = writeln!(out, "  create paging address space '{name}': refused: {error}");
            return StartupOutcome { space: None, failed: true };
        }
    };
    let _ = writeln!(out, "  created paging address space '{name}'");
    let failed = !steps(&space, fault_limit, compared_len, out);
    let elapsed = tsc::nanos_since_boot() - started;
    let _ = writeln!(out, "  startup test {} in {}", if failed { "FAILED" } else { "done" }, Millis(elapsed));
    StartupOutcome { space: Some(space), failed }
}

/// Steps 2 to 5; false when one of them failed.
fn steps(space: &Arc<Space>, fault_limit: PageSize, compared_len: u64, out: &mut dyn Write) -> bool {
    let data = Protection::READ | Protection::WRITE | Protection::PIN | Protection::KERN;
    let lazy = Region::new(LAZY_ALIAS, 0, MAPPED_LEN, data);

    if let Some(paging) = paging_mut(&mut space.lock()) {
        paging.set_fault_page_limit(fault_limit);
    }
    let before = counters(space);
    let started = tsc::nanos_since_boot();
    let added = crate::address_space::harden::harden(space, MAPPED_LEN);
    let elapsed = tsc::nanos_since_boot() - started;
    let hardened = match added {
        Ok(hardened) => hardened,
        Err(error) => {
            let _ = writeln!(
                out,
                "  add the kernel half and the hardened identity map of 0-{MAPPED_LEN:#x}: refused: {error}"
            );
            return false;
        }
    };
    let after = counters(space);
    let _ = writeln!(
        out,
        "  added the kernel half and the hardened identity map of 0-{:#x} (eager: text r-x, rodata r--, the rest rw-; {} regions, \
         {} guard pages unmapped): {} in {}, {} page-table frames",
        MAPPED_LEN - 1,
        hardened.regions,
        hardened.guard_pages,
        PagesMapped(&before, &after),
        Millis(elapsed),
        after.table_frames
    );

    if let Err(error) = space.lock().add_region(lazy) {
        let _ = writeln!(out, "  add lazy region {lazy}: refused: {error}");
        return false;
    }
    let _ = writeln!(out, "  added lazy region {lazy}");

    if let Err(error) = address_space::move_current_thread(Some(space)) {
        let _ = writeln!(out, "  enter '{}': refused: {error}", space.name());
        let _ = writeln!(out, "  staying in the current address space; the comparison needs the lazy alias, skipped");
        return true;
    }
    let _ = writeln!(out, "  moved this thread into '{}'", space.name());

    let before = counters(space);
    let started = tsc::nanos_since_boot();
    let (equal, guard_pages_skipped) = compare_around_guard_pages(compared_len);
    let elapsed = tsc::nanos_since_boot() - started;
    let after = counters(space);
    let _ = writeln!(
        out,
        "  memcmp {} MiB at {COMPARED_START:#x} and {:#x}: {} ({guard_pages_skipped} guard pages skipped); \
         {} faults handled, {} in {}",
        compared_len / MIB,
        LAZY_ALIAS + COMPARED_START,
        if equal { "equal" } else { "DIFFERENT" },
        after.faults_handled - before.faults_handled,
        PagesMapped(&before, &after),
        Millis(elapsed)
    );
    equal
}

/// Compares `len` bytes of physical memory from [`COMPARED_START`] through
/// the kernel's direct map and through the lazy alias, piece by piece
/// between the guard pages (the direct map has them unmapped). Returns
/// whether all pieces were equal and how many guard pages were skipped.
fn compare_around_guard_pages(len: u64) -> (bool, usize) {
    let end = COMPARED_START + len;
    let guards: alloc::vec::Vec<u64> = direct_map_guard_pages(COMPARED_START, end);
    let mut equal = true;
    let mut piece_start = COMPARED_START;
    for piece_end in guards.iter().copied().chain(core::iter::once(end)) {
        if piece_end > piece_start {
            // SAFETY: the piece holds no guard page, so it is mapped in the
            // address space this thread now runs in (the direct map
            // eagerly, the lazy alias on demand, by the fault handler), and
            // memcmp only reads.
            let difference = unsafe {
                crate::memfuncs::memcmp(
                    crate::direct_map::phys_to_virt(piece_start),
                    (LAZY_ALIAS + piece_start) as *const u8,
                    (piece_end - piece_start) as usize,
                )
            };
            equal &= difference == 0;
        }
        piece_start = piece_end + crate::thread::stack::GUARD_SIZE as u64;
    }
    (equal, guards.len())
}

/// The space's paging counters (zero for another implementation).
fn counters(space: &Space) -> PagingCounters {
    super::session::with_paging(&space.lock(), |paging| paging.counters()).unwrap_or_default()
}

fn page_size_name(size: PageSize) -> &'static str {
    match size {
        PageSize::Size4K => "4 KiB",
        PageSize::Size2M => "2 MiB",
        PageSize::Size1G => "1 GiB",
    }
}

/// Pages mapped between two readings of the counters, by size.
struct PagesMapped<'a>(&'a PagingCounters, &'a PagingCounters);

impl core::fmt::Display for PagesMapped<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [small, large, huge] = core::array::from_fn(|size| self.1.pages_mapped[size] - self.0.pages_mapped[size]);
        write!(f, "{huge} x 1 GiB + {large} x 2 MiB + {small} x 4 KiB pages mapped")
    }
}

/// A duration in nanoseconds, shown in milliseconds.
pub struct Millis(pub u64);

impl core::fmt::Display for Millis {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let micros = self.0 / 1000;
        write!(f, "{}.{:03} ms", micros / 1000, micros % 1000)
    }
}

/// The physical addresses in `[start, end)` of the guard pages the direct
/// map has unmapped (the kernel's stacks are there; the boot stack's guard
/// page is in the image, where the image is linked, and not among them), in
/// address order.
pub fn direct_map_guard_pages(start: u64, end: u64) -> alloc::vec::Vec<u64> {
    use crate::direct_map::{direct_phys, KERNEL_OFFSET, PHYS_OFFSET};
    let mut pages: alloc::vec::Vec<u64> = crate::mem::guard::guard_pages()
        .into_iter()
        .filter(|&page| (PHYS_OFFSET..KERNEL_OFFSET).contains(&page))
        .map(direct_phys)
        .filter(|&page| page >= start && page < end)
        .collect();
    pages.sort_unstable();
    pages
}
