//! `growTest`: anonymous memory and grow-down thread stacks in the kernel.
//!
//! In an address space of its own (the kernel half and the hardened
//! identity map, growth
//! limits of [`MAX_STACK`] and [`GUARD_GAP`]):
//! 1. an anonymous region, entered by the calling thread: every page reads
//!    zero first and keeps what is written; removing it returns its frames;
//! 2. a thread on a grow-down stack recurses [`DEPTH`] levels: the stack
//!    grows one page per fault, exactly as far as the recursion went;
//! 3. a thread on a grow-down stack recurses without end: its stack grows
//!    to the maximum, the overflow is reported ("stack overflow in thread
//!    T") and the thread is stopped with [`STACK_OVERFLOW_EXIT`], while the
//!    kernel goes on;
//! 4. the stacks are gone with their threads: the space's anonymous frames
//!    and page-table frames are back at their baseline.

use crate::address_space::{self, Space};
use crate::growing_stack::{self, STACK_OVERFLOW_EXIT};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use aspace::{Protection, Region};
use core::fmt::Write;
use paging::PagingCounters;

/// The test's address space.
const SPACE: &str = "growTest";
/// How much of physical memory the identity map covers.
const IDENTITY_LEN: u64 = 4 << 30;
/// The largest a stack may grow in the test's space (64 pages).
pub const MAX_STACK: u64 = 256 << 10;
/// The guard gap (and reach of one growth step) in the test's space.
pub const GUARD_GAP: u64 = 64 << 10;
/// The top of the deep recursion's stack.
const DEEP_TOP: u64 = 0x7000_0000_0000;
/// The top of the runaway recursion's stack (far from the other one).
const RUNAWAY_TOP: u64 = 0x7100_0000_0000;
/// Where the anonymous region goes.
const ANON_BASE: u64 = 0x7200_0000_0000;
/// Pages in the anonymous region.
const ANON_PAGES: u64 = 16;
/// How deep the bounded recursion goes.
pub const DEPTH: u64 = 100;
/// Bytes each level of recursion keeps on the stack (at least).
const FRAME_BYTES: usize = 512;
const PAGE: u64 = 4096;

/// Runs the test, reporting each step to `out`.
pub fn run(out: &mut dyn Write) -> Result<(), String> {
    let space = address_space::create(paging::IMPLEMENTATION_NAME, SPACE).map_err(|e| format!("create: {e}"))?;
    let result = crate::address_space::harden::harden(&space, IDENTITY_LEN)
        .map_err(|e| format!("harden: {e}"))
        .and_then(|_| steps(&space, out));
    let destroyed = address_space::destroy(SPACE);
    result?;
    destroyed.map_err(|e| format!("destroy: {e}"))?;
    writeln!(out, "growTest: passed").ok();
    Ok(())
}

fn counters(space: &Space) -> PagingCounters {
    address_space::paging_of(&space.lock()).map(|p| p.counters()).unwrap_or_default()
}

fn steps(space: &Arc<Space>, out: &mut dyn Write) -> Result<(), String> {
    {
        let mut object = space.lock();
        let paging = address_space::paging_of_mut(&mut object).ok_or("not a paging space")?;
        paging.set_growth_limits(MAX_STACK, GUARD_GAP).map_err(|e| format!("growth limits: {e}"))?;
    }
    let baseline = counters(space);

    // 1. Anonymous pages read zero first, and are freed on remove.
    anonymous_pages(space, out)?;
    let after = counters(space);
    if after.anonymous_frames != 0 || after.table_frames != baseline.table_frames {
        return Err(format!(
            "after removing the anonymous region: {} anonymous frames, {} table frames (baseline {})",
            after.anonymous_frames, after.table_frames, baseline.table_frames
        ));
    }

    // 2. A bounded recursion grows its stack page by page.
    let before = counters(space);
    let deep = growing_stack::spawn("growTest-deep", space, DEEP_TOP, deep_recursion, DEPTH)
        .map_err(|e| format!("spawn on a grow-down stack: {e}"))?;
    let lowest = deep.join();
    if !(DEEP_TOP - MAX_STACK..DEEP_TOP).contains(&lowest) {
        return Err(format!("the deep recursion ended with {lowest:#x}, not a stack pointer on its stack"));
    }
    let used = DEEP_TOP - lowest;
    let after = counters(space);
    let growths = after.growths - before.growths;
    let faults = after.faults_handled - before.faults_handled;
    // The first page faults in on the first push (a page of the region);
    // each page below it takes one fault, which grows the region by it.
    let pages_below_first = (DEEP_TOP - PAGE - (lowest & !(PAGE - 1))) / PAGE;
    if used < DEPTH * FRAME_BYTES as u64 {
        return Err(format!("{DEPTH} levels used only {used:#x} bytes of stack"));
    }
    if growths < pages_below_first || growths > pages_below_first + 1 || faults != growths + 1 {
        return Err(format!(
            "the stack went {used:#x} bytes deep ({pages_below_first} pages below the first) but grew {growths} \
             times in {faults} faults"
        ));
    }
    writeln!(
        out,
        "growTest: {DEPTH} levels of recursion used {used:#x} bytes of stack: it grew {growths} times, one page per \
         fault ({faults} faults, the first for the stack's first page)"
    )
    .ok();

    // 3. A runaway recursion overflows at the maximum and only its thread stops.
    let before = counters(space);
    let runaway = growing_stack::spawn("growTest-runaway", space, RUNAWAY_TOP, runaway_recursion, 0)
        .map_err(|e| format!("spawn on a grow-down stack: {e}"))?;
    let runaway_id = runaway.thread().id();
    let exit = runaway.join();
    if exit != STACK_OVERFLOW_EXIT {
        return Err(format!("the runaway recursion exited with {exit:#x}, not the stack-overflow value"));
    }
    let report = growing_stack::overflows()
        .into_iter()
        .rev()
        .find(|report| report.thread == runaway_id)
        .ok_or("no stack overflow report for the runaway thread")?;
    if report.region.len != MAX_STACK || report.region.va.as_u64() + report.region.len != RUNAWAY_TOP {
        return Err(format!("the overflow was reported for {}, not a {MAX_STACK:#x}-byte stack", report.region));
    }
    let growths = counters(space).growths - before.growths;
    if growths != MAX_STACK / PAGE - 1 {
        return Err(format!("the runaway stack grew {growths} times, expected {}", MAX_STACK / PAGE - 1));
    }
    writeln!(out, "growTest: runaway recursion grew its stack {growths} times to {} KiB, then:", MAX_STACK >> 10).ok();
    writeln!(out, "growTest: {report}").ok();

    // 4. The stacks went with their threads. A thread made with a new
    // kernel stack has that stack's guard page unmapped in every hardened
    // space, this one too, which may split a large page: each split adds
    // one table frame, so the tables are compared net of splits.
    let after = counters(space);
    let regions = space.lock().regions().len();
    let stacks_left = space.lock().regions().iter().filter(|r| r.prot.contains(Protection::GROW_DOWN)).count();
    let tables = |c: &PagingCounters| c.table_frames - c.splits;
    if after.anonymous_frames != 0 || tables(&after) != tables(&baseline) || stacks_left != 0 {
        return Err(format!(
            "after both threads: {} anonymous frames, {} table frames ({} splits; baseline {}, {} splits),              {stacks_left} stacks left",
            after.anonymous_frames, after.table_frames, after.splits, baseline.table_frames, baseline.splits
        ));
    }
    writeln!(
        out,
        "growTest: stacks removed with their threads: 0 anonymous frames, page-table frames as before ({} \
         splits for new guard pages), {regions} regions",
        after.splits - baseline.splits
    )
    .ok();
    Ok(())
}

/// Step 1: an anonymous region, entered by this thread.
fn anonymous_pages(space: &Arc<Space>, out: &mut dyn Write) -> Result<(), String> {
    let flags = Protection::READ | Protection::WRITE | Protection::KERN | Protection::ANON;
    let region = Region::anonymous(ANON_BASE, ANON_PAGES * PAGE, flags);
    space.lock().add_region(region).map_err(|e| format!("add {region}: {e}"))?;
    let came_from = address_space::current();
    address_space::move_current_thread(Some(space)).map_err(|e| format!("enter: {e}"))?;
    let mut result = Ok(());
    for page in 0..ANON_PAGES {
        let va = (ANON_BASE + page * PAGE) as *mut u64;
        // SAFETY: the page lies in the anonymous region of the address
        // space this thread is in; the fault handler provides its frame.
        let (first, last) = unsafe { (va.read_volatile(), va.add(511).read_volatile()) };
        if first != 0 || last != 0 {
            result = Err(format!("anonymous page {page} did not read zero first"));
            break;
        }
        // SAFETY: as above; the region is writable.
        unsafe { va.add(page as usize).write_volatile(0xa000 + page) };
    }
    for page in 0..ANON_PAGES {
        let va = (ANON_BASE + page * PAGE) as *const u64;
        // SAFETY: as above.
        let value = unsafe { va.add(page as usize).read_volatile() };
        if result.is_ok() && value != 0xa000 + page {
            result = Err(format!("anonymous page {page} reads {value:#x}, not what was written"));
        }
    }
    let provided = counters(space).anonymous_frames;
    let back = address_space::move_current_thread(came_from.as_ref());
    let removed = space.remove_region(region);
    result?;
    back.map_err(|e| format!("moving back: {e}"))?;
    removed.map_err(|e| format!("remove {region}: {e}"))?;
    if provided != ANON_PAGES {
        return Err(format!("{provided} anonymous frames for {ANON_PAGES} pages touched"));
    }
    writeln!(
        out,
        "growTest: {ANON_PAGES} anonymous pages read zero first, kept their writes, and went back with the region"
    )
    .ok();
    Ok(())
}

/// The current stack pointer.
fn stack_pointer() -> u64 {
    let rsp: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    rsp
}

/// Recurses `depth` levels, each with a frame of at least 512 bytes, and
/// returns the lowest stack pointer seen.
#[inline(never)]
fn deep_recursion(depth: u64) -> u64 {
    let mut frame = [0u8; FRAME_BYTES];
    frame[depth as usize % FRAME_BYTES] = depth as u8;
    core::hint::black_box(&mut frame);
    let lowest = if depth == 0 { stack_pointer() } else { deep_recursion(depth - 1) };
    core::hint::black_box(&frame);
    lowest
}

/// Recurses until the stack overflows (its return is never reached).
#[inline(never)]
fn runaway_recursion(depth: u64) -> u64 {
    let mut frame = [0u8; FRAME_BYTES];
    frame[depth as usize % FRAME_BYTES] = depth as u8;
    core::hint::black_box(&mut frame);
    let deeper = if core::hint::black_box(true) { runaway_recursion(depth + 1) } else { depth };
    core::hint::black_box(&frame);
    deeper
}
