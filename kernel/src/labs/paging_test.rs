//! NK's paging lab `pagingTest`, step by step, on the real (emulated) MMU,
//! extended with fault and TLB checks.
//!
//! The steps are NK's (see `nk-reference.md`), on a fresh `paging` address
//! space made through the generic layer, with the running thread moved in
//! for steps 4 to 8 and back out in step 9. The lettered steps go further
//! than NK: a write to a read-only page, a fetch from a non-executable page
//! and an access outside every region must each fault with the right error
//! code, and after every remove, move and protect a probe must see the new
//! mapping at once (the TLB test: read through the mapping first so that the
//! TLB holds it, edit, read again).
//!
//! Everything compared or written is RAM the test owns: a buffer of frames
//! filled with a pattern through the direct map. NK's step 8 maps
//! physical 1 GiB, which is not RAM on a 512 MiB machine (writes there
//! vanish), so the protect region maps the buffer instead. Regions that map
//! physical memory beyond RAM (8 GiB → 8 GiB) are only read, where the test
//! needs memory that differs from the buffer.

use crate::address_space::{self, KernelMachine, Space};
use crate::arch::cpu;
use crate::mem::frames::{self, FRAME_SIZE};
use crate::probe::{probe_execute, probe_read, probe_write, ProbeError, Width, RET_INSTRUCTION};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AddressSpace, AspaceError, FaultOutcome, PageFaultCode, PhysAddr, Protection, Region, UnhandledFault};
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use paging::{PageSize, PagingAspace, PagingCounters};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// NK's flags for the kernel's own regions: RWX, pinned, kernel only.
const KERNEL: Protection =
    Protection::READ.union(Protection::WRITE).union(Protection::EXEC).union(Protection::PIN).union(Protection::KERN);
/// Read and write, kernel only, not pinned.
const DATA: Protection = Protection::READ.union(Protection::WRITE).union(Protection::KERN);

/// Step 2's eager alias of physical 0..4 GiB.
const EAGER_ALIAS: u64 = 4 * GIB;
/// Step 2's lazy alias of physical 0..4 GiB (NK's 0xffff800000000000).
const LAZY_ALIAS: u64 = 0xffff_8000_0000_0000;
/// Step 3's sixteen small regions start right above the lazy alias.
const OVERLAP_BASE: u64 = LAZY_ALIAS + 4 * GIB;
/// Step 6: the pinned region and the one that is moved.
const MOVE_PINNED: u64 = 8 * GIB;
const MOVE_TARGET: u64 = 12 * GIB;
/// Step 8's protect region.
const PROTECT_VA: u64 = 16 * GIB;
/// Step 8a's fetch page.
const FETCH_VA: u64 = 20 * GIB;
/// Step 8c's multi-page move.
const SHIFT_VA: u64 = 24 * GIB;
/// Step 8b: canonical with 4- and 5-level paging, in no region.
const OUTSIDE: u64 = 0x5dea_d000_0000;

/// The RAM the test owns: 6 MiB, 2 MiB-aligned.
const BUFFER_LEN: u64 = 6 * MIB;
/// NK's comparison length.
const COMPARE_LEN: u64 = 4 * MIB;
/// Where in the buffer step 8a puts its `ret`.
const FETCH_OFFSET: u64 = 5 * MIB;

/// How many times the test has run (each run names its address space anew,
/// so that a run that failed to destroy its space does not block the next).
static RUNS: AtomicU32 = AtomicU32::new(0);

/// Runs every step, printing one line per step and a closing
/// `N passed, N failed` line; `Err` when any step failed.
pub fn run(out: &mut dyn Write) -> Result<(), String> {
    let baseline = frames::stats().free;
    let Some(buffer) = frames::alloc_contiguous((BUFFER_LEN / FRAME_SIZE) as usize, 2 * MIB) else {
        let _ = writeln!(out, "pagingTest: no {} MiB of contiguous RAM for the test buffer", BUFFER_LEN / MIB);
        let _ = writeln!(out, "0 passed, 1 failed");
        return Err("no RAM for the test buffer".into());
    };
    let mut lab = Lab { space: None, previous: None, buffer: buffer.as_u64(), entered: false, baseline };
    lab.fill_buffer();

    let (mut passed, mut failed) = (0, 0);
    for step in STEPS {
        let mut notes = Vec::new();
        let result = if step.needs_inside && !lab.entered {
            Err(String::from("not run: the thread is not inside the test address space"))
        } else {
            (step.run)(&mut lab, &mut notes)
        };
        match &result {
            Ok(()) => {
                passed += 1;
                let _ = writeln!(out, "step {}: {} ... ok", step.number, step.what);
            }
            Err(why) => {
                failed += 1;
                let _ = writeln!(out, "step {}: {} ... FAILED: {why}", step.number, step.what);
            }
        }
        for note in notes {
            let _ = writeln!(out, "    {note}");
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} of {} steps failed", passed + failed))
    }
}

/// What the steps share.
struct Lab {
    /// The test address space, from step 1 until it is destroyed in step 9.
    space: Option<Arc<Space>>,
    /// The address space the thread was in before step 4 (`None`: the
    /// default one); step 9 moves it back there.
    previous: Option<Arc<Space>>,
    /// Physical start of the buffer (also its virtual start through the
    /// test space's identity region, which the comparisons read).
    buffer: u64,
    /// True while the running thread is inside the test address space.
    entered: bool,
    /// Free frames before the test took any.
    baseline: usize,
}

impl Lab {
    fn space(&self) -> Result<&Arc<Space>, String> {
        self.space.as_ref().ok_or_else(|| String::from("no test address space (step 1 failed)"))
    }

    /// Runs one region operation on the test address space.
    fn edit<R>(&self, edit: impl FnOnce(&mut dyn AddressSpace) -> R) -> Result<R, String> {
        let space = self.space()?;
        let mut object = space.lock();
        Ok(edit(&mut **object))
    }

    /// The paging counters of the test address space.
    fn counters(&self) -> Result<PagingCounters, String> {
        let space = self.space()?;
        let object = space.lock();
        let paging = object.paging().ok_or("not a paging space")?;
        Ok(paging.counters())
    }

    /// Checks the page tables against the region set.
    fn verify(&self) -> Result<(), String> {
        let space = self.space()?;
        let object = space.lock();
        let paging = object.paging().ok_or("not a paging space")?;
        paging.verify().map_err(|errors| format!("tables disagree with the regions: {:?}", errors.first()))
    }

    /// The pattern word at byte `offset` of the buffer.
    fn pattern(&self, offset: u64) -> u64 {
        let word = (self.buffer + offset) / 8;
        word.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) | 1
    }

    /// Writes the pattern over the whole buffer, through the direct map.
    fn fill_buffer(&self) {
        for offset in (0..BUFFER_LEN).step_by(8) {
            let word = crate::direct_map::phys_to_virt(self.buffer + offset) as *mut u64;
            // SAFETY: the buffer is RAM this test allocated, in the direct
            // map of every space the kernel runs in.
            unsafe { word.write_volatile(self.pattern(offset)) };
        }
    }
}

/// One step of the test.
struct Step {
    number: &'static str,
    what: &'static str,
    /// The step acts through the test address space's mappings.
    needs_inside: bool,
    run: fn(&mut Lab, &mut Vec<String>) -> Result<(), String>,
}

const STEPS: &[Step] = &[
    Step { number: "1", what: "create a paging address space", needs_inside: false, run: create },
    Step {
        number: "2",
        what: "add the eager 0-4 GiB, eager alias and lazy alias regions",
        needs_inside: false,
        run: add_regions,
    },
    Step { number: "3", what: "overlapping regions are refused", needs_inside: false, run: overlaps },
    Step { number: "4", what: "move the thread in; CR0.WP on", needs_inside: false, run: enter },
    Step {
        number: "5",
        what: "memcmp 4 MiB eager vs lazy and eager vs eager alias",
        needs_inside: true,
        run: compare_aliases,
    },
    Step { number: "6", what: "move a region to new physical memory", needs_inside: true, run: move_region },
    Step { number: "7", what: "remove the moved region", needs_inside: true, run: remove_region },
    Step {
        number: "8",
        what: "protect a pinned lazy region, then write 1 KiB",
        needs_inside: true,
        run: protect_region,
    },
    Step { number: "8a", what: "a fetch from a non-executable page faults", needs_inside: true, run: fetch_faults },
    Step { number: "8b", what: "an access outside every region faults", needs_inside: true, run: outside_faults },
    Step {
        number: "8c",
        what: "multi-page moves onto overlapping physical memory",
        needs_inside: true,
        run: shifting_move,
    },
    Step {
        number: "8d",
        what: "the region holding the running code cannot be removed",
        needs_inside: true,
        run: remove_running_code,
    },
    Step {
        number: "9",
        what: "move the thread back out and destroy the address space",
        needs_inside: false,
        run: leave_and_destroy,
    },
];

fn show(error: AspaceError) -> String {
    format!("{error}")
}

/// Reads the u64 at `addr` through a probe; a fault is an error.
fn read(addr: u64) -> Result<u64, String> {
    probe_read(addr, Width::U64).map_err(|fault| format!("reading {addr:#x}: {fault}"))
}

/// Checks that `result` is a page fault at `addr` with exactly `code`, and
/// describes it.
fn expect_fault<T>(
    what: &str,
    result: Result<T, impl Into<ProbeError>>,
    addr: u64,
    code: PageFaultCode,
) -> Result<String, String> {
    let fault = match result {
        Ok(_) => return Err(format!("{what} at {addr:#x} did not fault")),
        Err(error) => match error.into() {
            ProbeError::Fault(fault) => fault,
            refused => return Err(format!("{what}: no access was made: {refused}")),
        },
    };
    if fault.page_fault_code() != Some(code) || fault.address != addr {
        return Err(format!("{what}: expected a page fault at {addr:#x} with code {code}, got {fault}"));
    }
    Ok(format!("{what} faults: {fault}"))
}

/// `memcmp` of `len` bytes at two virtual addresses.
fn memcmp(a: u64, b: u64, len: u64) -> i32 {
    // SAFETY: the callers pass addresses mapped in the running address
    // space for `len` bytes; lazy pages are mapped by the fault handler.
    unsafe { crate::memfuncs::memcmp(a as *const u8, b as *const u8, len as usize) }
}

/// Expects a refusal and describes it.
fn expect_refusal(
    what: &str,
    result: Result<(), AspaceError>,
    expected: impl Fn(&AspaceError) -> bool,
) -> Result<String, String> {
    match result {
        Ok(()) => Err(format!("{what} was accepted")),
        Err(error) if expected(&error) => Ok(format!("{what} refused: {error}")),
        Err(error) => Err(format!("{what} refused for the wrong reason: {error}")),
    }
}

/// Runs `edit` on the `paging` object behind `space` (to reach what only
/// `paging` offers, such as the fault page size); `None` for another
/// implementation.
pub fn with_paging<R>(space: &Space, edit: impl FnOnce(&mut PagingAspace<KernelMachine>) -> R) -> Option<R> {
    address_space::paging_of_mut(&mut space.lock()).map(edit)
}

fn create(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let run = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    let name = if run == 1 { String::from("pagingTest") } else { format!("pagingTest-{run}") };
    let space = address_space::create("paging", &name).map_err(show)?;
    // As NK: every lazy fault maps one 4 KiB page.
    with_paging(&space, |paging| paging.set_fault_page_limit(PageSize::Size4K)).ok_or("not a paging space")?;
    notes.push(format!("address space '{name}'; lazy faults map 4 KiB pages"));
    lab.space = Some(space);
    Ok(())
}

fn add_regions(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let before = lab.counters()?;
    let identity = Region::new(0, 0, 4 * GIB, KERNEL | Protection::EAGER);
    let alias = Region::new(EAGER_ALIAS, 0, 4 * GIB, KERNEL | Protection::EAGER);
    let lazy = Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL);
    for region in [identity, alias, lazy] {
        lab.edit(|space| space.add_region(region))?.map_err(|e| format!("adding {region}: {e}"))?;
    }
    let after = lab.counters()?;
    let mapped = |size: PageSize| after.pages_mapped[size.index()] - before.pages_mapped[size.index()];
    notes.push(format!(
        "eager regions mapped with {} 1G, {} 2M, {} 4K pages; {} page-table frames",
        mapped(PageSize::Size1G),
        mapped(PageSize::Size2M),
        mapped(PageSize::Size4K),
        after.table_frames
    ));
    if mapped(PageSize::Size4K) != 0 {
        return Err(String::from("the 1 GiB-aligned eager regions used 4 KiB pages"));
    }
    // The kernel half, which the kernel runs on (step 4 enters the space):
    // the image where it is linked (by sections, so with 4 KiB pages) and
    // the direct map of all RAM.
    for (_, region) in crate::hardening::kernel_regions(address_space::kernel_map_len()) {
        lab.edit(|space| space.add_region(region))?.map_err(|e| format!("adding {region}: {e}"))?;
    }
    lab.verify()
}

fn overlaps(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let small = |index: u64| Region::new(OVERLAP_BASE + index * MIB, index * MIB, 512 * KIB, DATA);
    for index in 0..16 {
        lab.edit(|space| space.add_region(small(index)))?.map_err(|e| format!("adding {}: {e}", small(index)))?;
    }
    let inside = Region::new(OVERLAP_BASE + 5 * MIB + 128 * KIB, 0, 256 * KIB, DATA);
    let result = lab.edit(|space| space.add_region(inside))?;
    notes.push(expect_refusal(
        "256 KiB inside region 5",
        result,
        |e| matches!(e, AspaceError::Overlap { existing } if *existing == small(5)),
    )?);
    let straddling = Region::new(OVERLAP_BASE + 5 * MIB + 512 * KIB, 0, 768 * KIB, DATA);
    let result = lab.edit(|space| space.add_region(straddling))?;
    notes.push(expect_refusal(
        "768 KiB from the gap into region 6",
        result,
        |e| matches!(e, AspaceError::Overlap { existing } if *existing == small(6)),
    )?);
    // Half-open intervals: a region filling the gap exactly touches both
    // neighbours and is accepted.
    let gap = Region::new(OVERLAP_BASE + 5 * MIB + 512 * KIB, 0, 512 * KIB, DATA);
    lab.edit(|space| space.add_region(gap))?.map_err(|e| format!("the exact gap was refused: {e}"))?;
    lab.edit(|space| space.remove_region(gap))?.map_err(|e| format!("removing the gap region: {e}"))?;
    notes.push(String::from("a 512 KiB region filling a gap exactly is accepted"));
    Ok(())
}

fn enter(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let space = lab.space()?.clone();
    lab.previous = address_space::current();
    address_space::move_current_thread(Some(&space)).map_err(show)?;
    lab.entered = true;
    let root = with_paging(&space, |paging| paging.root()).flatten().ok_or("the space has no root table")?;
    let cr3 = cpu::read_cr3() & 0x000f_ffff_ffff_f000;
    if cr3 != root.as_u64() {
        return Err(format!("CR3 holds {cr3:#x}, not the space's root {:#x}", root.as_u64()));
    }
    if address_space::current().map(|current| current.id()) != Some(space.id()) {
        return Err(String::from("the thread's address-space slot does not name the test space"));
    }
    let write_protect = cpu::read_cr0() & cpu::CR0_WRITE_PROTECT != 0;
    notes.push(format!(
        "CR3 {cr3:#x}; CR0.WP {}; EFER.NXE {}",
        if write_protect { "on" } else { "off" },
        if cpu::nx_enabled() { "on" } else { "off" }
    ));
    if !write_protect {
        return Err(String::from("CR0.WP is off: supervisor writes to read-only pages would not fault"));
    }
    Ok(())
}

fn compare_aliases(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let buffer = lab.buffer;
    let before = lab.counters()?;
    if memcmp(buffer, LAZY_ALIAS + buffer, COMPARE_LEN) != 0 {
        return Err(String::from("eager and lazy mappings differ"));
    }
    let after = lab.counters()?;
    if memcmp(buffer, EAGER_ALIAS + buffer, COMPARE_LEN) != 0 {
        return Err(String::from("the two eager mappings differ"));
    }
    let faults = after.faults_handled - before.faults_handled;
    let pages = after.pages_mapped[PageSize::Size4K.index()] - before.pages_mapped[PageSize::Size4K.index()];
    notes.push(format!("lazy comparison took {faults} faults, mapped {pages} 4 KiB pages"));
    let expected = COMPARE_LEN / FRAME_SIZE;
    if faults != expected || pages != expected {
        return Err(format!("expected {expected} lazy faults and pages, got {faults} and {pages}"));
    }
    // The aliases are one memory: a store through one shows through the others.
    // SAFETY: the buffer is ours and the alias maps it writable.
    unsafe { probe_write(EAGER_ALIAS + buffer, 0x5a5a_5a5a, Width::U64) }.map_err(|f| format!("{f}"))?;
    let seen = read(LAZY_ALIAS + buffer)?;
    // SAFETY: as above; puts the pattern back.
    unsafe { probe_write(buffer, lab.pattern(0), Width::U64) }.map_err(|f| format!("{f}"))?;
    if seen != 0x5a5a_5a5a {
        return Err(format!("a store through the eager alias read back as {seen:#x} through the lazy one"));
    }
    lab.verify()
}

fn move_region(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let buffer = lab.buffer;
    let pinned = Region::new(MOVE_PINNED, 8 * GIB, 4 * GIB, KERNEL | Protection::EAGER);
    let movable = Region::new(MOVE_TARGET, 8 * GIB, 4 * GIB, DATA | Protection::EXEC | Protection::EAGER);
    for region in [pinned, movable] {
        lab.edit(|space| space.add_region(region))?.map_err(|e| format!("adding {region}: {e}"))?;
    }
    // Both map physical 8 GiB + buffer (not RAM): the same value. The
    // moved one is read last, so that its translation is the freshest in
    // the TLB when the move happens.
    let pattern = read(buffer)?;
    let beside = read(MOVE_PINNED + buffer)?;
    let old = read(MOVE_TARGET + buffer)?;
    if old != beside || old == pattern {
        return Err(format!("before the move: {old:#x} at 12 GiB, {beside:#x} at 8 GiB, pattern {pattern:#x}"));
    }
    let before = lab.counters()?;
    lab.edit(|space| space.move_region(movable, PhysAddr::new(0)))?.map_err(show)?;
    let after = lab.counters()?;
    let now = read(MOVE_TARGET + buffer)?;
    notes.push(format!(
        "VA 12 GiB + buffer read {old:#x} before the move, {now:#x} right after; {} invlpg, {} full flushes",
        after.page_invalidations - before.page_invalidations,
        after.full_flushes - before.full_flushes
    ));
    if now != pattern {
        return Err(format!("after the move VA 12 GiB reads {now:#x}, not the buffer's {pattern:#x} (stale TLB?)"));
    }
    if memcmp(MOVE_TARGET + buffer, buffer, COMPARE_LEN) != 0 {
        return Err(String::from("after the move VA 12 GiB differs from VA 0"));
    }
    if memcmp(MOVE_TARGET + buffer, MOVE_PINNED + buffer, COMPARE_LEN) == 0 {
        return Err(String::from("after the move VA 12 GiB still equals VA 8 GiB"));
    }
    let result = lab.edit(|space| space.move_region(pinned, PhysAddr::new(0)))?;
    notes.push(expect_refusal("moving the pinned 8 GiB region", result, |e| matches!(e, AspaceError::Pinned { .. }))?);
    lab.verify()
}

fn remove_region(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let buffer = lab.buffer;
    let moved = Region::new(MOVE_TARGET, 0, 4 * GIB, DATA | Protection::EXEC | Protection::EAGER);
    let result = lab.edit(|space| space.add_region(moved))?;
    notes.push(expect_refusal("adding the moved region again", result, |e| matches!(e, AspaceError::Overlap { .. }))?);
    let by_old_address = Region::new(MOVE_TARGET, 8 * GIB, 4 * GIB, DATA);
    let result = lab.edit(|space| space.remove_region(by_old_address))?;
    notes.push(expect_refusal("removing it by its old physical address", result, |e| {
        matches!(e, AspaceError::RegionMismatch { .. })
    })?);
    // The TLB holds the translation now; after the remove it must be gone.
    let pattern = read(MOVE_TARGET + buffer)?;
    lab.edit(|space| space.remove_region(moved))?.map_err(show)?;
    let probe = probe_read(MOVE_TARGET + buffer, Width::U64);
    notes.push(expect_fault("read of the removed region", probe, MOVE_TARGET + buffer, PageFaultCode::empty())?);
    lab.edit(|space| space.add_region(moved))?.map_err(|e| format!("adding it again: {e}"))?;
    let again = read(MOVE_TARGET + buffer)?;
    if again != pattern {
        return Err(format!("re-added region reads {again:#x}, not {pattern:#x}"));
    }
    notes.push(String::from("adding it again succeeds and reads the buffer"));
    lab.verify()
}

fn protect_region(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let buffer = lab.buffer;
    let read_exec = Protection::READ | Protection::EXEC | Protection::KERN;
    let region = Region::new(PROTECT_VA, buffer, BUFFER_LEN, read_exec | Protection::PIN);
    lab.edit(|space| space.add_region(region))?.map_err(show)?;
    // A lazy read fault maps the page read-only; the write then finds it
    // present and read-only.
    if read(PROTECT_VA)? != lab.pattern(0) {
        return Err(String::from("the lazy protect region does not read the buffer"));
    }
    // SAFETY: the region is read-only; a write that went through would only
    // change the test's own buffer.
    let write = unsafe { probe_write(PROTECT_VA, 1, Width::U64) };
    notes.push(expect_fault(
        "write to the read-only page",
        write,
        PROTECT_VA,
        PageFaultCode::PRESENT | PageFaultCode::WRITE,
    )?);
    let missing = Region::new(OUTSIDE, buffer, BUFFER_LEN, read_exec);
    let result = lab.edit(|space| space.protect_region(missing, read_exec | Protection::WRITE))?;
    notes.push(expect_refusal(
        "protecting a region that does not exist",
        result,
        |e| matches!(e, AspaceError::NoSuchRegion { va } if *va == OUTSIDE),
    )?);
    let result = lab.edit(|space| space.remove_region(region))?;
    notes.push(expect_refusal("removing it (pinned)", result, |e| matches!(e, AspaceError::Pinned { .. }))?);
    let result = lab.edit(|space| space.move_region(region, PhysAddr::new(0)))?;
    notes.push(expect_refusal("moving it (pinned)", result, |e| matches!(e, AspaceError::Pinned { .. }))?);

    let before = lab.counters()?;
    lab.edit(|space| space.protect_region(region, read_exec | Protection::WRITE))?.map_err(show)?;
    for offset in (0..KIB).step_by(8) {
        // SAFETY: the region maps the test's buffer, now writable.
        unsafe { probe_write(PROTECT_VA + offset, !lab.pattern(offset), Width::U64) }
            .map_err(|fault| format!("the 1 KiB write after protect faulted: {fault}"))?;
    }
    let after = lab.counters()?;
    for offset in (0..KIB).step_by(8) {
        let word = crate::direct_map::phys_to_virt(buffer + offset) as *const u64;
        // SAFETY: the buffer is ours, in the direct map.
        let value = unsafe { word.read_volatile() };
        if value != !lab.pattern(offset) {
            return Err(format!("the 1 KiB write did not reach the buffer at +{offset:#x}"));
        }
    }
    // A permission increase is not flushed (flush.rs): a CPU still holding
    // the read-only entry takes one spurious fault, which the handler
    // recognises and retries. QEMU re-walks on the write and takes none.
    let spurious = after.spurious_faults - before.spurious_faults;
    let faults = after.faults_handled - before.faults_handled;
    notes.push(format!(
        "1 KiB written after protect: {faults} lazy faults, {spurious} spurious (stale read-only) faults"
    ));
    if spurious > 1 {
        return Err(format!("{spurious} spurious faults for one page"));
    }
    // Protect back down: the writable translation just used must be gone at once.
    lab.edit(|space| space.protect_region(region, read_exec))?.map_err(show)?;
    // SAFETY: as for the first write.
    let write = unsafe { probe_write(PROTECT_VA + 8, 1, Width::U64) };
    notes.push(expect_fault(
        "write after protecting back to read-only",
        write,
        PROTECT_VA + 8,
        PageFaultCode::PRESENT | PageFaultCode::WRITE,
    )?);
    lab.fill_buffer();
    lab.verify()
}

fn fetch_faults(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    if !cpu::nx_enabled() {
        return Err(String::from("EFER.NXE is off: no page can be non-executable"));
    }
    let target = lab.buffer + FETCH_OFFSET;
    // SAFETY: the byte is in the test's buffer, in the direct map.
    unsafe { crate::direct_map::phys_to_virt(target).write_volatile(RET_INSTRUCTION) };
    let page = Region::new(FETCH_VA, target, FRAME_SIZE, DATA | Protection::EXEC | Protection::EAGER);
    lab.edit(|space| space.add_region(page))?.map_err(show)?;
    // SAFETY: the page holds a lone `ret`.
    unsafe { probe_execute(FETCH_VA) }.map_err(|fault| format!("calling the executable page: {fault}"))?;
    notes.push(String::from("a call to the executable page returns"));
    // The translation is in the TLB, executable; after the protect it must not be.
    lab.edit(|space| space.protect_region(page, DATA | Protection::EAGER))?.map_err(show)?;
    // SAFETY: as above.
    let fetch = unsafe { probe_execute(FETCH_VA) };
    notes.push(expect_fault(
        "fetch from the non-executable page",
        fetch,
        FETCH_VA,
        PageFaultCode::PRESENT | PageFaultCode::FETCH,
    )?);
    // A lazy region without EXEC: the fault handler refuses the fetch.
    let lazy = Region::new(FETCH_VA + FRAME_SIZE, target, FRAME_SIZE, DATA);
    lab.edit(|space| space.add_region(lazy))?.map_err(show)?;
    // SAFETY: as above.
    let fetch = unsafe { probe_execute(lazy.va.0) };
    notes.push(expect_fault("fetch from a lazy non-executable page", fetch, lazy.va.0, PageFaultCode::FETCH)?);
    lab.verify()
}

fn outside_faults(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    notes.push(expect_fault(
        "read outside every region",
        probe_read(OUTSIDE, Width::U64),
        OUTSIDE,
        PageFaultCode::empty(),
    )?);
    // SAFETY: nothing is mapped there; the write can only fault.
    let write = unsafe { probe_write(OUTSIDE + 8, 1, Width::U64) };
    notes.push(expect_fault("write outside every region", write, OUTSIDE + 8, PageFaultCode::WRITE)?);
    // SAFETY: nothing is mapped there; the fetch can only fault.
    let fetch = unsafe { probe_execute(OUTSIDE + 16) };
    notes.push(expect_fault("fetch outside every region", fetch, OUTSIDE + 16, PageFaultCode::FETCH)?);
    // The fault handler's own verdict on such a fault.
    let fault = aspace::Fault::page_fault(OUTSIDE, PageFaultCode::empty(), 0);
    let outcome = lab.edit(|space| space.exception(&fault))?;
    if outcome != FaultOutcome::Unhandled(UnhandledFault::NoRegion) {
        return Err(format!("the fault handler answered {outcome:?}, not 'no region'"));
    }
    Ok(())
}

fn shifting_move(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let buffer = lab.buffer;
    let page = |index: u64| SHIFT_VA + index * FRAME_SIZE;
    let region = Region::new(SHIFT_VA, buffer, 4 * FRAME_SIZE, DATA | Protection::EAGER);
    lab.edit(|space| space.add_region(region))?.map_err(show)?;
    for index in 0..4 {
        read(page(index))?; // into the TLB
    }
    // Four pages onto physical memory shifted by one page: the old and new
    // physical ranges overlap; every page must show its new frame at once.
    lab.edit(|space| space.move_region(region, PhysAddr::new(buffer + FRAME_SIZE)))?.map_err(show)?;
    for index in 0..4 {
        let expected = lab.pattern((index + 1) * FRAME_SIZE);
        let value = read(page(index))?;
        if value != expected {
            return Err(format!("page {index} reads {value:#x} after the shift, not {expected:#x}"));
        }
    }
    notes
        .push(String::from("4 pages moved by +1 page (old and new physical ranges overlap): each reads its new frame"));
    // Part of the region: the middle two pages elsewhere; the region splits in three.
    let middle = Region::new(page(1), buffer + 2 * FRAME_SIZE, 2 * FRAME_SIZE, DATA);
    lab.edit(|space| space.move_region(middle, PhysAddr::new(buffer + 2 * MIB)))?.map_err(show)?;
    let expected =
        [lab.pattern(FRAME_SIZE), lab.pattern(2 * MIB), lab.pattern(2 * MIB + FRAME_SIZE), lab.pattern(4 * FRAME_SIZE)];
    for (index, expected) in expected.into_iter().enumerate() {
        let value = read(page(index as u64))?;
        if value != expected {
            return Err(format!("page {index} reads {value:#x} after the sub-range move, not {expected:#x}"));
        }
    }
    let pieces = lab.edit(|space| space.regions().iter().filter(|r| r.va.0 >= SHIFT_VA && r.va.0 < page(4)).count())?;
    notes.push(format!("the middle 2 pages moved alone: the region is now {pieces} regions"));
    if pieces != 3 {
        return Err(format!("expected 3 regions after the sub-range move, found {pieces}"));
    }
    // Naming all four pages by the old numbers now spans pieces with
    // different offsets: refused, nothing changes.
    let result = lab.edit(|space| {
        space.move_region(Region::new(SHIFT_VA, buffer + FRAME_SIZE, 4 * FRAME_SIZE, DATA), PhysAddr::new(buffer))
    })?;
    notes.push(expect_refusal("moving the 4 pages as one region again", result, |e| {
        matches!(e, AspaceError::RegionMismatch { .. })
    })?);
    lab.verify()
}

fn remove_running_code(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let code = remove_running_code as *const () as u64;
    let identity = Region::new(0, 0, 4 * GIB, KERNEL);
    let result = lab.edit(|space| space.remove_region(identity))?;
    notes.push(expect_refusal("removing the 0-4 GiB region", result, |e| matches!(e, AspaceError::Pinned { .. }))?);
    // This code runs where the kernel image is linked, in the kernel half.
    let code_page = code & !(FRAME_SIZE - 1);
    let code_region = Region::new(code_page, crate::direct_map::image_phys(code_page), FRAME_SIZE, KERNEL);
    let result = lab.edit(|space| space.remove_region(code_region))?;
    notes.push(expect_refusal(&format!("removing the page of this code ({code_page:#x})"), result, |e| {
        matches!(e, AspaceError::Pinned { .. })
    })?);
    // PIN does not stop a protect. The generic layer refuses, on a live
    // space, a protect that would take the kernel's write access away: the
    // direct map of RAM (its heap, stacks and page tables) is such a region.
    let kernel_half = crate::hardening::kernel_regions(address_space::kernel_map_len());
    let (_, ram) = *kernel_half
        .iter()
        .find(|(_, region)| region.prot.contains(Protection::WRITE) && region.len > 4 * MIB)
        .ok_or("no direct map of RAM in the kernel half")?;
    let read_only = Protection::READ | Protection::PIN | Protection::KERN;
    let result = lab.space()?.protect_region(ram, read_only);
    notes.push(expect_refusal("making the kernel's direct map of RAM read-only while inside", result, |e| {
        matches!(e, AspaceError::WouldUnmapRunning { .. })
    })?);
    // The generic layer's entry check accepts the space, and would refuse it
    // without the kernel image (shown on a copy of the kernel half, unpinned,
    // in a space not loaded).
    address_space::check_can_enter(&**lab.space()?.lock()).map_err(show)?;
    let name = format!("{}-unpinned", lab.space()?.name());
    let probe_space = address_space::create("paging", &name).map_err(show)?;
    let unpinned: Vec<Region> =
        kernel_half.iter().map(|(_, region)| Region { prot: region.prot - Protection::PIN, ..*region }).collect();
    let text = *unpinned.iter().find(|region| region.prot.contains(Protection::EXEC)).ok_or("no kernel text")?;
    let outcome = (|| {
        let mut object = probe_space.lock();
        for region in &unpinned {
            object.add_region(*region).map_err(show)?;
        }
        address_space::check_can_enter(&**object).map_err(|e| format!("with the regions: {e}"))?;
        object.remove_region(text).map_err(|e| format!("removing the unpinned kernel text: {e}"))?;
        match address_space::check_can_enter(&**object) {
            Err(AspaceError::WouldUnmapRunning { what, addr }) => Ok(format!(
                "unpinned, the remove is accepted (the space is not loaded); entering is then refused: {what} at {addr:#x}"
            )),
            other => Err(format!("entering a space without the kernel was not refused: {other:?}")),
        }
    })();
    let destroyed = address_space::destroy(&name).map_err(show);
    notes.push(outcome?);
    destroyed
}

/// The root table of a `paging` or `base` address space.
fn root_of(space: &Space) -> Option<u64> {
    address_space::paging_of(&space.lock()).and_then(|paging| paging.root()).map(|root| root.as_u64())
}

fn leave_and_destroy(lab: &mut Lab, notes: &mut Vec<String>) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Some(space) = lab.space.clone() {
        if lab.entered {
            match address_space::destroy(space.name()) {
                Err(AspaceError::Busy { reason }) => {
                    notes.push(format!("destroy while inside refused: busy: {reason}"))
                }
                other => problems.push(format!("destroy while inside: {other:?}")),
            }
            match address_space::move_current_thread(lab.previous.as_ref()) {
                Ok(()) => lab.entered = false,
                Err(error) => problems.push(format!("moving back to the previous address space: {error}")),
            }
        }
        let previous = lab.previous.clone().unwrap_or_else(address_space::base);
        let expected_root = root_of(&previous);
        let cr3 = cpu::read_cr3() & 0x000f_ffff_ffff_f000;
        let slot = address_space::current().map(|current| current.id());
        if slot != lab.previous.as_ref().map(|space| space.id()) || expected_root != Some(cr3) {
            problems.push(format!("after moving out, CR3 is {cr3:#x}, not the root of '{}'", previous.name()));
        } else {
            notes.push(format!("back in '{}' (CR3 {cr3:#x})", previous.name()));
        }
        match address_space::destroy(space.name()) {
            Ok(()) => {
                lab.space = None;
                if address_space::find(space.name()).is_ok() {
                    problems.push(String::from("the destroyed space can still be found"));
                }
            }
            Err(error) => problems.push(format!("destroy: {error}")),
        }
    }
    let freed = frames::free_contiguous(PhysAddr::new(lab.buffer), (BUFFER_LEN / FRAME_SIZE) as usize);
    if let Err(error) = freed {
        problems.push(format!("freeing the buffer: {error}"));
    }
    let free = frames::stats().free;
    notes.push(format!("free frames: {} before the test, {free} after", lab.baseline));
    if free != lab.baseline && problems.is_empty() {
        problems.push(format!("{} frames not returned", lab.baseline as i64 - free as i64));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
