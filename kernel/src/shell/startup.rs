//! The shell test at startup, after NK's paging lab: every shell builds an
//! address space of its own, moves into it, and reads 1 GiB through an
//! eager and a lazy mapping of the same memory.
//!
//! The steps:
//! 1. create a `paging` address space named after the shell;
//! 2. add an EAGER identity region over 0–4 GiB (READ|WRITE|EXEC|PIN|KERN),
//!    built at once with the largest pages that fit;
//! 3. add a LAZY region at 0xffff_8000_0000_0000 mapping physical 0 for
//!    4 GiB, the same flags without EAGER;
//! 4. move the shell's thread in: refused, with the reason, when the space
//!    does not map everything the kernel touches (more than 4 GiB of RAM);
//! 5. compare 1 GiB (or 4 MiB, see below) from 1 MiB through both mappings
//!    with `memcmp`: every page of the lazy alias faults in on first touch.
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

use super::paging_mut;
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
    let everything = Protection::READ | Protection::WRITE | Protection::EXEC | Protection::PIN | Protection::KERN;
    let eager = Region::new(0, 0, MAPPED_LEN, everything | Protection::EAGER);
    let lazy = Region::new(LAZY_ALIAS, 0, MAPPED_LEN, everything);

    let before = counters(space);
    let started = tsc::nanos_since_boot();
    let added = {
        let mut object = space.lock();
        if let Some(paging) = paging_mut(&mut **object) {
            paging.set_fault_page_limit(fault_limit);
        }
        object.add_region(eager)
    };
    let elapsed = tsc::nanos_since_boot() - started;
    if let Err(error) = added {
        let _ = writeln!(out, "  add eager region {eager}: refused: {error}");
        return false;
    }
    let after = counters(space);
    let _ = writeln!(
        out,
        "  added eager region {eager}: {} in {}, {} page-table frames",
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
    // SAFETY: both ranges are mapped in the address space this thread now
    // runs in (the eager region eagerly, the lazy alias on demand, by the
    // fault handler), and memcmp only reads.
    let difference = unsafe {
        crate::memfuncs::memcmp(
            COMPARED_START as *const u8,
            (LAZY_ALIAS + COMPARED_START) as *const u8,
            compared_len as usize,
        )
    };
    let elapsed = tsc::nanos_since_boot() - started;
    let after = counters(space);
    let _ = writeln!(
        out,
        "  memcmp {} MiB at {COMPARED_START:#x} and {:#x}: {}; {} faults handled, {} in {}",
        compared_len / MIB,
        LAZY_ALIAS + COMPARED_START,
        if difference == 0 { "equal" } else { "DIFFERENT" },
        after.faults_handled - before.faults_handled,
        PagesMapped(&before, &after),
        Millis(elapsed)
    );
    difference == 0
}

/// The space's paging counters (zero for another implementation).
fn counters(space: &Space) -> PagingCounters {
    super::with_paging(&**space.lock(), |paging| paging.counters()).unwrap_or_default()
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
