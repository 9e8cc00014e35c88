//! Robustness and hardening: probes that must fault (W^X, guard pages,
//! SMAP/SMEP), bad input to every shell verb, memory exhaustion with the
//! frame allocator capped, and a short soak.

use crate::address_space::{self, KernelMachine, Space};
use crate::arch::cpu;
use crate::arch::frame::TrapFrame;
use crate::arch::trap::write_fault_report;
use crate::hardening;
use crate::mem::frames;
use crate::probe::{probe_execute, probe_read, probe_write, ProbeError, Width, RET_INSTRUCTION};
use crate::shell::Session;
use crate::thread::{self, stack};
use crate::{check, check_eq, kernel_test};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AspaceError, Fault, PageFaultCode, Protection, Region, UnhandledFault};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use paging::{MappingRun, PagingAspace};

const GIB: u64 = 1 << 30;
const PAGE: u64 = 4096;
/// In no region of any space made here; canonical with 4- and 5-level paging.
const OUTSIDE: u64 = 0x5dea_d000_0000;

/// A lone `ret` in rodata.
static RET_IN_RODATA: [u8; 1] = [RET_INSTRUCTION];
/// A lone `ret` in .data (an atomic, so the compiler keeps it writable).
static RET_IN_DATA: AtomicU8 = AtomicU8::new(RET_INSTRUCTION);

/// A function that returns at once: something in the kernel text.
extern "C" fn return_at_once() {}

fn text_address() -> u64 {
    return_at_once as extern "C" fn() as usize as u64
}

/// A `paging` address space for one test, left and destroyed on drop.
struct ScratchSpace {
    space: Arc<Space>,
}

static SPACES_MADE: AtomicU32 = AtomicU32::new(0);

impl ScratchSpace {
    fn new() -> Result<ScratchSpace, String> {
        let name = format!("robust-{}", SPACES_MADE.fetch_add(1, Ordering::Relaxed));
        let space = address_space::create("paging", &name).map_err(|e| format!("create: {e}"))?;
        Ok(ScratchSpace { space })
    }

    /// A new space holding the hardened identity map of 0-4 GiB.
    fn hardened() -> Result<ScratchSpace, String> {
        let scratch = ScratchSpace::new()?;
        address_space::harden::harden(&scratch.space, 4 * GIB).map_err(|e| format!("harden: {e}"))?;
        Ok(scratch)
    }

    fn enter(&self) -> Result<(), String> {
        address_space::move_current_thread(Some(&self.space)).map_err(|e| format!("entering: {e}"))
    }

    fn with_paging<R>(&self, f: impl FnOnce(&mut PagingAspace<KernelMachine>) -> R) -> R {
        f(address_space::paging_of_mut(&mut self.space.lock()).expect("a paging space"))
    }
}

impl Drop for ScratchSpace {
    fn drop(&mut self) {
        if address_space::current().is_some_and(|current| current.id() == self.space.id()) {
            let _ = address_space::move_current_thread(None);
        }
        let _ = address_space::destroy(self.space.name());
    }
}

/// Checks that `result` is a page fault at `addr` whose error code holds `code`.
fn expect_page_fault<T: core::fmt::Debug>(
    what: &str,
    result: Result<T, impl Into<ProbeError>>,
    addr: u64,
    code: PageFaultCode,
) -> Result<(), String> {
    let fault = match result {
        Ok(value) => return Err(format!("{what}: did not fault (got {value:?})")),
        Err(error) => match error.into() {
            ProbeError::Fault(fault) => fault,
            refused => return Err(format!("{what}: no access was made: {refused}")),
        },
    };
    let found = fault.page_fault_code().ok_or_else(|| format!("{what}: not a page fault: {fault}"))?;
    check!(found.contains(code), "{what}: error code {found:?}, expected {code:?} in it");
    check_eq!(fault.address, addr);
    Ok(())
}

/// Every W^X probe in the address space this thread runs in: writes to
/// text and rodata, fetches from rodata, data, heap and stack, and a read
/// of the running stack's guard page, all must fault; text still executes
/// and data is still writable.
fn w_xor_x_probes(where_: &str) -> Result<(), String> {
    let present_write = PageFaultCode::PRESENT | PageFaultCode::WRITE;
    let present_fetch = PageFaultCode::PRESENT | PageFaultCode::FETCH;
    // Text: executes, refuses writes (the byte written is the byte there,
    // so nothing would change even if the write went through).
    let text = text_address();
    // SAFETY: the function takes nothing and returns at once.
    unsafe { probe_execute(text) }.map_err(|f| format!("{where_}: executing the text: {f}"))?;
    let byte = probe_read(text, Width::U8).map_err(|f| format!("{where_}: reading the text: {f}"))?;
    // SAFETY: the value written is the one there; the write must fault anyway.
    let write = unsafe { probe_write(text, byte, Width::U8) };
    expect_page_fault(&format!("{where_}: write to the text"), write, text, present_write)?;
    // Rodata: readable, neither writable nor executable.
    let rodata = RET_IN_RODATA.as_ptr() as u64;
    check_eq!(probe_read(rodata, Width::U8), Ok(RET_INSTRUCTION as u64));
    // SAFETY: as for the text.
    let write = unsafe { probe_write(rodata, RET_INSTRUCTION as u64, Width::U8) };
    expect_page_fault(&format!("{where_}: write to rodata"), write, rodata, present_write)?;
    // SAFETY: the byte is a `ret`; the fetch must fault.
    let fetch = unsafe { probe_execute(rodata) };
    expect_page_fault(&format!("{where_}: execute from rodata"), fetch, rodata, present_fetch)?;
    // Data: writable, not executable.
    let data = RET_IN_DATA.as_ptr() as u64;
    // SAFETY: the byte is ours; the value written is the one there.
    unsafe { probe_write(data, RET_INSTRUCTION as u64, Width::U8) }.map_err(|f| format!("{where_}: data: {f}"))?;
    // SAFETY: the byte is a `ret`; the fetch must fault.
    let fetch = unsafe { probe_execute(data) };
    expect_page_fault(&format!("{where_}: execute from data"), fetch, data, present_fetch)?;
    // Heap and stack: not executable.
    let heap_code: Box<[u8; 1]> = Box::new([RET_INSTRUCTION]);
    let heap_address = heap_code.as_ptr() as u64;
    // SAFETY: the byte is a `ret`; the fetch must fault.
    let fetch = unsafe { probe_execute(heap_address) };
    expect_page_fault(&format!("{where_}: execute from the heap"), fetch, heap_address, present_fetch)?;
    let stack_code = [RET_INSTRUCTION; 1];
    let stack_address = core::hint::black_box(&stack_code).as_ptr() as u64;
    // SAFETY: the byte is a `ret`; the fetch must fault.
    let fetch = unsafe { probe_execute(stack_address) };
    expect_page_fault(&format!("{where_}: execute from the stack"), fetch, stack_address, present_fetch)?;
    // The guard page below the running stack: not mapped at all.
    let guard = thread::current().canary_address() - stack::GUARD_SIZE as u64;
    check!(
        crate::mem::guard::guard_page_containing(guard) == Some(guard),
        "{where_}: {guard:#x} is not a recorded guard page"
    );
    let read = probe_read(guard + PAGE - 8, Width::U64);
    expect_page_fault(&format!("{where_}: read of the guard page"), read, guard + PAGE - 8, PageFaultCode::empty())?;
    // SAFETY: the page is unmapped; the write must fault.
    let write = unsafe { probe_write(guard + PAGE - 8, 0, Width::U64) };
    expect_page_fault(&format!("{where_}: write to the guard page"), write, guard + PAGE - 8, PageFaultCode::WRITE)?;
    // The guard pages below every CPU's interrupt (IST) stacks.
    for cpu in crate::percpu::all_cpus() {
        for guard in crate::percpu::ist_guard_pages(cpu) {
            check!(
                crate::mem::guard::guard_page_containing(guard) == Some(guard),
                "{where_}: IST guard {guard:#x} not recorded"
            );
            let read = probe_read(guard + PAGE - 8, Width::U64);
            let what = format!("{where_}: read of cpu {}'s IST guard page", cpu.id);
            expect_page_fault(&what, read, guard + PAGE - 8, PageFaultCode::empty())?;
        }
    }
    Ok(())
}

fn cpu_protections_are_on() -> Result<(), String> {
    let features = cpu::features();
    let on = hardening::cpu_protections();
    check!(on.write_protect, "CR0.WP is off");
    check_eq!(on.no_execute, features.nx);
    check_eq!(on.smep, features.smep);
    check_eq!(on.smap, features.smap);
    // The same on every other CPU: read there by a thread pinned to it.
    for other in crate::percpu::all_cpus().map(|cpu| cpu.id) {
        let seen = thread::spawn_pinned("cr-reader", other, || {
            let on = hardening::cpu_protections();
            on.write_protect as u64 | (on.no_execute as u64) << 1 | (on.smep as u64) << 2 | (on.smap as u64) << 3
        })
        .join();
        let expected = 1 | (features.nx as u64) << 1 | (features.smep as u64) << 2 | (features.smap as u64) << 3;
        check!(seen == expected, "CPU {other}: protections {seen:#b}, expected {expected:#b}");
    }
    Ok(())
}
kernel_test!(cpu_protections_are_on);

/// No page of `runs` is both writable and executable; the text is
/// executable and read-only.
fn check_w_xor_x(runs: impl Iterator<Item = MappingRun>) -> Result<(), String> {
    let [text, rodata, data] = hardening::image_sections();
    let mut text_bytes = 0;
    for run in runs {
        let rights = run.effective;
        check!(!(rights.writable && rights.executable), "run {run} is writable and executable");
        let (start, end) = (run.start.as_u64(), run.last.as_u64() + 1);
        let overlaps = |section: &hardening::ImageSection| start < section.end && section.start < end;
        if overlaps(&text) {
            check!(rights.executable && !rights.writable, "text run {run} is not r-x");
            text_bytes += end.min(text.end) - start.max(text.start);
        }
        if overlaps(&rodata) {
            check!(!rights.executable && !rights.writable, "rodata run {run} is not r--");
        }
        if overlaps(&data) {
            check!(!rights.executable && rights.writable, "data run {run} is not rw-");
        }
    }
    check_eq!(text_bytes, text.end - text.start);
    Ok(())
}

fn default_map_is_w_xor_x_with_guard_pages_unmapped() -> Result<(), String> {
    let base = address_space::base();
    let object = base.lock();
    let address_space::SpaceObject::Base(base) = &*object else { return Err("the default space is not base".into()) };
    let paging = base.paging();
    check_w_xor_x(paging.mappings().ok_or("destroyed")?)?;
    paging.verify().map_err(|errors| format!("verify: {errors:?}"))?;
    for page in crate::mem::guard::guard_pages() {
        check!(paging.walk(aspace::VirtAddr::new(page)).and_then(|w| w.translation()).is_none(), "{page:#x} mapped");
        let region = object.regions().find(page).ok_or_else(|| format!("no region holds guard page {page:#x}"))?;
        check_eq!(region.prot, hardening::GUARD);
    }
    Ok(())
}
kernel_test!(default_map_is_w_xor_x_with_guard_pages_unmapped);

fn probes_fault_in_the_default_map() -> Result<(), String> {
    check!(address_space::current().is_none(), "the tests run in the default space");
    w_xor_x_probes("default map")
}
kernel_test!(probes_fault_in_the_default_map);

fn probes_fault_in_a_hardened_space() -> Result<(), String> {
    let scratch = ScratchSpace::hardened()?;
    scratch.with_paging(|paging| {
        check_w_xor_x(paging.mappings().ok_or("destroyed")?)?;
        paging.verify().map_err(|errors| format!("verify: {errors:?}"))
    })?;
    scratch.enter()?;
    let outcome = w_xor_x_probes("hardened space");
    address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
    outcome
}
kernel_test!(probes_fault_in_a_hardened_space);

/// A stack made after a space was hardened has its guard page unmapped
/// there too, and a thread of it entering the space can read its own stack
/// but not the guard page.
fn guard_pages_of_later_stacks_are_unmapped_in_hardened_spaces() -> Result<(), String> {
    let scratch = ScratchSpace::hardened()?;
    let guards_before = crate::mem::guard::guard_pages().len();
    // Enough threads alive at once that at least one needs a new block.
    let spares = stack::spare_count();
    let space = scratch.space.clone();
    // Each thread stays until all are made (however slowly the host runs
    // this CPU), so no stack is freed and reused meanwhile.
    static ALL_MADE: AtomicBool = AtomicBool::new(false);
    ALL_MADE.store(false, Ordering::SeqCst);
    let results: Vec<_> = (0..spares + 2)
        .map(|_| {
            let space = space.clone();
            thread::spawn("guarded", move || {
                let stack_bottom = thread::current().canary_address();
                let guard = stack_bottom - stack::GUARD_SIZE as u64;
                if address_space::move_current_thread(Some(&space)).is_err() {
                    return 1;
                }
                let own = probe_read(stack_bottom, Width::U64).is_ok();
                let guard_faults = probe_read(guard, Width::U64).is_err();
                let _ = address_space::move_current_thread(None);
                while !ALL_MADE.load(Ordering::SeqCst) {
                    thread::sleep_ms(5);
                }
                if own && guard_faults {
                    0
                } else {
                    2
                }
            })
        })
        .collect();
    ALL_MADE.store(true, Ordering::SeqCst);
    for (index, handle) in results.into_iter().enumerate() {
        check_eq!((index, handle.join()), (index, 0));
    }
    check!(crate::mem::guard::guard_pages().len() > guards_before, "no new stack block was made");
    scratch.with_paging(|paging| paging.verify().map_err(|errors| format!("verify: {errors:?}")))?;
    Ok(())
}
kernel_test!(guard_pages_of_later_stacks_are_unmapped_in_hardened_spaces);

/// Exited threads' stacks are reused: many short threads make no new block.
fn stacks_are_reused() -> Result<(), String> {
    check_eq!(thread::spawn("warm-up", || 1).join(), 1);
    let guards = crate::mem::guard::guard_pages().len();
    for round in 0..20u64 {
        check_eq!(thread::spawn("short", move || round).join(), round);
    }
    check_eq!(crate::mem::guard::guard_pages().len(), guards);
    Ok(())
}
kernel_test!(stacks_are_reused);

/// The report of a write to the running thread's guard page says "stack
/// overflow in thread T"; one in another thread's guard page says so.
fn fault_on_a_guard_page_is_reported_as_a_stack_overflow() -> Result<(), String> {
    let me = thread::current();
    let guard = me.canary_address() - stack::GUARD_SIZE as u64;
    let addr = guard + PAGE - 8;
    let fault = Fault::page_fault(addr, PageFaultCode::WRITE, text_address());
    let report = unhandled_fault_report(&fault)?;
    let expected = format!("stack overflow in thread {} '{}'", me.id(), me.name());
    check!(report.contains(&expected), "expected {expected:?} in:\n{report}");
    let other =
        crate::mem::guard::guard_pages().into_iter().find(|&page| page != guard).ok_or("only one guard page")?;
    let fault = Fault::page_fault(other, PageFaultCode::empty(), text_address());
    let report = unhandled_fault_report(&fault)?;
    check!(report.contains("below another thread's stack"), "{report}");
    Ok(())
}
kernel_test!(fault_on_a_guard_page_is_reported_as_a_stack_overflow);

/// The fault report the kernel prints for `fault` when nothing handles it.
fn unhandled_fault_report(fault: &Fault) -> Result<String, String> {
    let mut report = String::new();
    let frame = TrapFrame::page_fault(fault.code, fault.rip);
    write_fault_report(&mut report, &frame, fault, &UnhandledFault::NotHandledHere)
        .map_err(|_| String::from("formatting failed"))?;
    Ok(report)
}

/// With SMAP and SMEP on, the kernel may neither read nor run a user page:
/// both fault (and are not retried for ever as stale TLB entries).
fn smap_and_smep_stop_the_kernel_at_user_pages() -> Result<(), String> {
    let on = hardening::cpu_protections();
    if !on.smap && !on.smep {
        return Ok(()); // the CPU has neither: nothing to show
    }
    let frame = frames::alloc_zeroed().ok_or("out of frames")?;
    // SAFETY: the frame is ours, in the direct map.
    unsafe { crate::direct_map::phys_to_virt(frame.as_u64()).write_volatile(RET_INSTRUCTION) };
    let outcome = (|| {
        let scratch = ScratchSpace::hardened()?;
        let user = Region::new(OUTSIDE, frame.as_u64(), PAGE, Protection::READ | Protection::EXEC | Protection::EAGER);
        scratch.space.lock().add_region(user).map_err(|e| format!("{e}"))?;
        scratch.enter()?;
        let read = probe_read(OUTSIDE, Width::U8);
        // SAFETY: the page holds a `ret`.
        let fetch = unsafe { probe_execute(OUTSIDE) };
        address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
        if on.smap {
            expect_page_fault("SMAP: read of a user page", read, OUTSIDE, PageFaultCode::PRESENT)?;
        }
        if on.smep {
            let code = PageFaultCode::PRESENT | PageFaultCode::FETCH;
            expect_page_fault("SMEP: fetch from a user page", fetch, OUTSIDE, code)?;
        }
        Ok(())
    })();
    frames::free(frame).map_err(|e| format!("{e}"))?;
    outcome
}
kernel_test!(smap_and_smep_stop_the_kernel_at_user_pages);

/// Everything a refused shell command must leave as it was: every address
/// space's regions and translations, and the frames in use.
#[derive(Debug, PartialEq, Eq)]
struct SystemSnapshot {
    spaces: Vec<(String, Vec<Region>, Vec<MappingRun>)>,
    frames_free: usize,
}

fn system_snapshot() -> SystemSnapshot {
    let spaces = address_space::all()
        .iter()
        .map(|space| {
            let object = space.lock();
            let regions = object.regions().iter().copied().collect();
            let runs = address_space::paging_of(&object)
                .and_then(|paging| paging.mappings().map(|runs| runs.collect()))
                .unwrap_or_default();
            (String::from(space.name()), regions, runs)
        })
        .collect();
    SystemSnapshot { spaces, frames_free: frames::stats().free }
}

/// Runs `command` in a shell session; it must fail, print `expected`, and
/// change nothing (no space, region, translation or frame).
fn refused_without_change(
    shell: &mut shell::Shell<Session>,
    session: &mut Session,
    command: &str,
    expected: &str,
) -> Result<(), String> {
    let before = system_snapshot();
    let mut out = String::new();
    let status = shell.run_command(session, command, &mut out);
    check!(status == shell::Status::Failed, "'{command}' did not fail ({status:?}): {out:?}");
    check!(out.contains(expected), "'{command}' printed {out:?}, without {expected:?}");
    let after = system_snapshot();
    check!(after == before, "'{command}' changed the system:\nbefore {before:?}\nafter {after:?}");
    Ok(())
}

/// Every `as` verb (and `ptdump`) with bad input: the typed error is
/// printed, the command fails, nothing changes, nothing panics. The live
/// cases run with this thread inside a hardened space.
fn shell_verbs_refuse_bad_input() -> Result<(), String> {
    let mut shell = crate::shell::table();
    let mut session = Session::new("robust", false);
    let dead = ScratchSpace::new()?;
    let dead_name = String::from(dead.space.name());
    drop(dead);
    let scratch = ScratchSpace::new()?;
    let name = String::from(scratch.space.name());
    let rwk = Protection::READ | Protection::WRITE | Protection::KERN;
    scratch
        .space
        .lock()
        .add_region(Region::new(0x5000_0000_0000, 0x20_0000, 0x4000, rwk))
        .map_err(|e| format!("{e}"))?;
    let pinned = Region::new(0x5100_0000_0000, 0x20_0000, 0x2000, rwk | Protection::PIN | Protection::EAGER);
    scratch.space.lock().add_region(pinned).map_err(|e| format!("{e}"))?;
    let live = ScratchSpace::hardened()?;
    let live_name = String::from(live.space.name());
    let text = text_address() & !(PAGE - 1);
    let data = hardening::image_sections()[2].start;
    let n = &name;
    // The last page of the lower canonical half (4- or 5-level paging).
    let last_low_page = cpu::virt_width().lower_half_end() - PAGE;
    let table: Vec<(String, &str)> = alloc::vec![
        // Numbers that are not numbers.
        (format!("as add {n} zz 0 4k rwk"), "not a valid virtual address"),
        (format!("as add {n} 0x10000000000000000 0 4k rwk"), "not a valid virtual address"),
        (format!("as add {n} 0x600000000000 0 4k rwq"), "unknown flag 'q'"),
        (format!("as add {n} 0x600000000000 0 4k rwkk"), "given twice"),
        (format!("as add {n} 0x600000000000 0"), "usage: as add"),
        // Misaligned, empty, wrapping, non-canonical, across the hole, too wide.
        (format!("as add {n} 0x600000000001 0 4k rwk"), "virtual address 0x600000000001 is not a multiple of 0x1000"),
        (format!("as add {n} 0x600000000000 0x10 4k rwk"), "physical address 0x10 is not a multiple of 0x1000"),
        (format!("as add {n} 0x600000000000 0 0x1800 rwk"), "length 0x1800 is not a multiple of 0x1000"),
        (format!("as add {n} 0x600000000000 0 0 rwk"), "length is zero"),
        (format!("as add {n} 0xfffffffffffff000 0 8k rwk"), "runs past the top"),
        (format!("as add {n} 0x600000000000 0xfffffffffffff000 8k rwk"), "runs past the top"),
        (format!("as add {n} 0x100000000000000 0 4k rwk"), "is not canonical"),
        (format!("as add {n} {last_low_page:#x} 0 8k rwk"), "crosses the non-canonical hole"),
        (format!("as add {n} 0x600000000000 0x10000000000000 4k rwk"), "physical address width"),
        // Overlaps.
        (format!("as add {n} 0x500000000000 0 4k rwk"), "overlaps existing region"),
        (format!("as add {n} 0x4ffffffff000 0 8k rwk"), "overlaps existing region"),
        (format!("as add {n} 0x500000003000 0 8k rwk"), "overlaps existing region"),
        (format!("as add {n} 0x4ffffffff000 0 0x10000000000 rwk"), "overlaps existing region"),
        // Flags that contradict each other.
        (format!("as add {n} 0x600000000000 0 4k wk"), "writable or executable but not readable"),
        (format!("as add {n} 0x600000000000 0 4k xk"), "writable or executable but not readable"),
        (format!("as add {n} 0x600000000000 0 4k rwkadu"), "grows down or up, not both"),
        (format!("as add {n} 0x600000000000 0 4k rwkd"), "only anonymous regions grow"),
        (format!("as add {n} 0x600000000000 0x1000 4k rwka"), "pa must be 0"),
        // Edits that name no region, or the wrong one.
        (format!("as rm {n} 0x5dead0000000"), "no region contains 0x5dead0000000"),
        (format!("as rm {n} 0x500000000000 0x1800"), "is not a multiple of 0x1000"),
        (format!("as rm {n} 0x500000000000 0x100000"), "does not match the region there"),
        (format!("as rm {n} 0x510000000000"), "is pinned"),
        (format!("as move {n} 0x500000000000 0x123"), "is not a multiple of 0x1000"),
        (format!("as move {n} 0x500000000000 0x10000000000000"), "physical address width"),
        (format!("as move {n} 0x510000000000 0x400000"), "is pinned"),
        (format!("as move {n} 0x5dead0000000 0x400000"), "no region contains"),
        (format!("as protect {n} 0x500000000000 wk"), "writable or executable but not readable"),
        (format!("as protect {n} 0x500000000000 rwka"), "cannot change a region's kind"),
        (format!("as protect {n} 0x500000000000 rwk 0x100000"), "does not match the region there"),
        (format!("as faultsize {n} 3m"), "4k"),
        // Lengths that run past 2^64 or across the hole, for every verb that
        // takes an address and a length.
        (format!("as rm {n} 0x500000000000 0xfffffffffffff000"), "runs past the top"),
        (format!("as move {n} 0x500000000000 0x400000 0xfffffffffffff000"), "runs past the top"),
        (format!("as protect {n} 0x500000000000 rk 0xfffffffffffff000"), "runs past the top"),
        (format!("ptdump {n} 0xfffffffffffff000 0x2000"), "runs past the top"),
        (format!("ptdump {n} {:#x} 8k", last_low_page), "crosses the non-canonical hole"),
        (format!("mmap {n} numbers.txt 0xfffffffffffff000"), "runs past the top"),
        (format!("mmap {n} numbers.txt {last_low_page:#x}"), "crosses the non-canonical hole"),
        (String::from("peek 0xfffffffffffffff8 16"), "runs past the top"),
        (format!("peek {:#x} 8", last_low_page + PAGE - 4), "crosses the non-canonical hole"),
        (String::from("touch 0xfffffffffffffffc"), "runs past the top"),
        // Counts whose arithmetic would overflow (a deadline in nanoseconds).
        (String::from("soak 18446744073709551615"), "a soak lasts 1 to"),
        (String::from("soak 0"), "a soak lasts 1 to"),
        (String::from("shootdownTest 99999999999"), "from 1 to"),
        // Unknown names and operations on a destroyed space.
        (String::from("as add nosuch 0 0 4k rk"), "no address space named 'nosuch'"),
        (format!("as add {dead_name} 0 0 4k rk"), "no address space named"),
        (format!("as rm {dead_name} 0"), "no address space named"),
        (format!("as protect {dead_name} 0 rk"), "no address space named"),
        (format!("as move {dead_name} 0 0"), "no address space named"),
        (format!("as enter {dead_name}"), "no address space named"),
        (format!("as destroy {dead_name}"), "no address space named"),
        (format!("as verify {dead_name}"), "no address space named"),
        (format!("ptdump {dead_name}"), "no address space named"),
        (String::from("as new nosuchimpl x"), "no address-space implementation named 'nosuchimpl'"),
        (format!("as new paging {n}"), "exists already"),
        (String::from("as nosuchverb"), "no such verb"),
        // The default map and spaces the kernel runs in.
        (String::from("as add base 0x500000000000 0 4k rwk"), "does not support adding regions"),
        (format!("as rm base {text:#x}"), "does not support removing regions"),
        (String::from("as destroy base"), "does not support"),
        (format!("as enter {n}"), "must stay mapped to its own memory"),
        (format!("as destroy {live_name}"), "threads are still inside"),
        (format!("as rm {live_name} {data:#x}"), "is pinned"),
        (format!("as protect {live_name} {text:#x} rpk"), "must stay mapped to its own memory"),
        (format!("as protect {live_name} {data:#x} rpk"), "must stay mapped to its own memory"),
        (format!("as move {live_name} {data:#x} 0x400000"), "is pinned"),
    ];
    live.enter()?;
    let outcome = table
        .iter()
        .try_for_each(|(command, expected)| refused_without_change(&mut shell, &mut session, command, expected));
    address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
    outcome?;
    for space in [&scratch, &live] {
        space.with_paging(|paging| paging.verify().map_err(|errors| format!("verify: {errors:?}")))?;
    }
    Ok(())
}
kernel_test!(shell_verbs_refuse_bad_input);

/// An 8-byte `poke` at `0xffff_ffff_ffff_fffc` would wrap and write the
/// bytes at address 0: it is refused, and nothing at 0 changes; a `peek`
/// that would run past 2^64 prints no value before its error.
fn accesses_that_wrap_past_the_top_touch_nothing() -> Result<(), String> {
    let shell = crate::shell::table();
    let mut session = Session::new("wrap", false);
    let at_zero = probe_read(0, Width::U64).map_err(|e| format!("reading 0: {e}"))?;
    let mut out = String::new();
    let status = shell.run_command(&mut session, "poke 0xfffffffffffffffc 0x1122334455667788 8", &mut out);
    check!(status == shell::Status::Failed, "the wrapping poke was not refused: {out:?}");
    check!(out.contains("runs past the top") && !out.contains("<-"), "{out:?}");
    check_eq!(probe_read(0, Width::U64), Ok(at_zero));
    // The probes themselves refuse it too, whoever calls them.
    // SAFETY: refused before any access.
    let direct = unsafe { probe_write(u64::MAX - 3, 0, Width::U64) };
    check!(matches!(direct, Err(ProbeError::Range(AspaceError::LengthOverflow { .. }))), "{direct:?}");
    check_eq!(probe_read(0, Width::U64), Ok(at_zero));
    out.clear();
    let status = shell.run_command(&mut session, "peek 0xfffffffffffffff0 32", &mut out);
    check!(status == shell::Status::Failed, "the wrapping peek was not refused: {out:?}");
    check!(!out.contains("0xfffffffffffffff0:"), "a value was printed before the refusal: {out:?}");
    Ok(())
}
kernel_test!(accesses_that_wrap_past_the_top_touch_nothing);

/// A shared mapping of an initrd file can never be made writable (so the
/// archive is never written), and a private one made writable writes its
/// own copies, never the file.
fn file_mappings_never_write_the_initrd() -> Result<(), String> {
    use crate::mmap::{self, MmapRequest, Sharing};
    let mut shell = crate::shell::table();
    let mut session = Session::new("files", false);
    let scratch = ScratchSpace::hardened()?;
    let n = String::from(scratch.space.name());
    let file = crate::fs::find("numbers.txt").map_err(|e| format!("{e}"))?;
    let original: Vec<u8> = file.data().to_vec();
    let (shared_va, private_va) = (0x7000_0000_0000, 0x7100_0000_0000);
    let request = |va, sharing| MmapRequest {
        space: &n,
        file: "numbers.txt",
        va,
        offset: 0,
        len: None,
        prot: Protection::READ,
        sharing,
    };
    mmap::mmap(&request(shared_va, Sharing::Shared)).map_err(|e| format!("shared: {e}"))?;
    mmap::mmap(&request(private_va, Sharing::Private)).map_err(|e| format!("private: {e}"))?;
    for command in [
        format!("as protect {n} {shared_va:#x} rwk"),
        format!("as protect {n} {shared_va:#x} rwko"),
        format!("as protect {n} {shared_va:#x} rwk 4k"),
        format!("as protect {n} {:#x} rwka", shared_va + (original.len() as u64 & !(PAGE - 1))),
    ] {
        refused_without_change(&mut shell, &mut session, &command, "read-only backing")?;
    }
    // Protect keeps what it may: execute can be added, and the kind stays.
    let mut out = String::new();
    let status = shell.run_command(&mut session, &format!("as protect {n} {shared_va:#x} rxko 4k"), &mut out);
    check!(status == shell::Status::Succeeded, "{out:?}");
    // The private mapping, read-only at first, made writable: its pages are copies.
    let status = shell.run_command(&mut session, &format!("as protect {n} {private_va:#x} rwka"), &mut out);
    check!(status == shell::Status::Succeeded, "{out:?}");
    scratch.enter()?;
    let writes = (|| -> Result<(), String> {
        for at in (0..original.len() as u64).step_by(1000) {
            let flipped = u64::from(!original[at as usize]);
            // SAFETY: a private, writable mapping of this space, which this thread is in.
            unsafe { probe_write(private_va + at, flipped, Width::U8) }.map_err(|e| format!("{e}"))?;
            check_eq!(probe_read(private_va + at, Width::U8), Ok(flipped));
            check_eq!(probe_read(shared_va + at, Width::U8), Ok(u64::from(original[at as usize])));
            // SAFETY: a read-only mapping: the write must fault and change nothing.
            let write = unsafe { probe_write(shared_va + at, flipped, Width::U8) };
            check!(write.is_err(), "a write through the shared mapping at +{at:#x} went through");
        }
        Ok(())
    })();
    address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
    writes?;
    check!(file.data() == &original[..], "the initrd's file changed");
    scratch.with_paging(|paging| paging.verify().map_err(|errors| format!("verify: {errors:?}")))?;
    Ok(())
}
kernel_test!(file_mappings_never_write_the_initrd);

/// Entering a space whose kernel memory is mapped lazily would fault where
/// the CPU cannot take a fault (QEMU reset or hung before): `as enter` and
/// every move into a space refuse it, for the kernel half and for the
/// region that holds the running stack alone.
fn spaces_that_map_the_kernel_lazily_cannot_be_entered() -> Result<(), String> {
    // In a thread of its own: the test runner's thread runs on the boot stack.
    static OUTCOME: crate::sync::IrqMutex<Option<Result<(), String>>> = crate::sync::IrqMutex::new(None);
    thread::spawn("lazy-enter", || {
        *OUTCOME.lock() = Some(lazy_spaces_refused());
        0
    })
    .join();
    OUTCOME.lock().take().unwrap_or_else(|| Err(String::from("the test thread left no outcome")))
}
kernel_test!(spaces_that_map_the_kernel_lazily_cannot_be_entered);

fn lazy_spaces_refused() -> Result<(), String> {
    let mut shell = crate::shell::table();
    let mut session = Session::new("lazy", false);
    // The whole kernel half lazy.
    let lazy = ScratchSpace::new()?;
    let kernel_half: Vec<Region> = crate::hardening::kernel_regions(address_space::kernel_map_len())
        .into_iter()
        .map(|(_, region)| Region { prot: region.prot - Protection::PIN, ..region })
        .collect();
    for region in &kernel_half {
        let lazy_region = Region { prot: region.prot - Protection::EAGER, ..*region };
        lazy.space.lock().add_region(lazy_region).map_err(|e| format!("{e}"))?;
    }
    let command = format!("as enter {}", lazy.space.name());
    refused_without_change(&mut shell, &mut session, &command, "eagerly (e)")?;
    // Everything eager but the pages of the running stack (in the direct map).
    let (bottom, top) = thread::current().stack_range().ok_or("this thread has no stack of its own")?;
    let (bottom, top) = (bottom & !(PAGE - 1), top.next_multiple_of(PAGE));
    let stack_lazy = ScratchSpace::new()?;
    let mut stack_region = None;
    for region in &kernel_half {
        let (start, end) = (region.va.as_u64(), region.va.as_u64() + region.len);
        let pieces = if start <= bottom && top <= end {
            let at = |va: u64| region.translate(va).as_u64();
            let stack = Region::new(bottom, at(bottom), top - bottom, region.prot - Protection::EAGER);
            stack_region = Some(stack);
            [
                (start < bottom).then(|| Region::new(start, region.pa.as_u64(), bottom - start, region.prot)),
                Some(stack),
                (top < end).then(|| Region::new(top, at(top), end - top, region.prot)),
            ]
        } else {
            [Some(*region), None, None]
        };
        for piece in pieces.into_iter().flatten() {
            stack_lazy.space.lock().add_region(piece).map_err(|e| format!("adding {piece}: {e}"))?;
        }
    }
    let stack_region = stack_region.ok_or("the running stack is not in the direct map")?;
    let refused = address_space::move_current_thread(Some(&stack_lazy.space));
    check!(
        matches!(refused, Err(AspaceError::WouldUnmapRunning { what: "running stack", .. })),
        "a lazy running stack was accepted: {refused:?}"
    );
    let command = format!("as enter {}", stack_lazy.space.name());
    refused_without_change(&mut shell, &mut session, &command, "running stack")?;
    // The same map with the stack eager too is entered and left.
    stack_lazy
        .space
        .protect_region(stack_region, stack_region.prot | Protection::EAGER)
        .map_err(|e| format!("making the stack eager: {e}"))?;
    stack_lazy.enter()?;
    address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
    Ok(())
}

/// One space's state, for the exhaustion cases.
#[derive(Debug, PartialEq, Eq)]
struct SpaceSnapshot {
    regions: Vec<Region>,
    runs: Vec<MappingRun>,
}

fn space_snapshot(scratch: &ScratchSpace) -> SpaceSnapshot {
    scratch.with_paging(|paging| SpaceSnapshot {
        regions: paging.region_set().iter().copied().collect(),
        runs: paging.mappings().map(|runs| runs.collect()).unwrap_or_default(),
    })
}

/// Runs `operation` on a fresh space prepared by `prepare`, with the frame
/// allocator capped at 0, 1, 2, ... frames, until it succeeds. Every capped
/// failure must be `refused` (out of memory), change nothing in the space,
/// and give every frame back; after each attempt the frames and the heap
/// are at their baseline again once the space is gone. Returns the frames
/// the operation needed.
fn fails_cleanly_until_it_fits(
    what: &str,
    prepare: impl Fn(&ScratchSpace) -> Result<(), String>,
    operation: impl Fn(&ScratchSpace) -> Result<(), String>,
    refused: impl Fn(&str) -> bool,
) -> Result<usize, String> {
    // Once without a cap first: what the first run of a path allocates for
    // good (a per-CPU buffer growing, say) is not a leak of each run.
    {
        let scratch = ScratchSpace::new()?;
        prepare(&scratch)?;
        operation(&scratch).map_err(|e| format!("{what} without a cap: {e}"))?;
    }
    let frames_baseline = frames::stats().free;
    let heap_baseline = crate::mem::heap::stats().used;
    for cap in 0..64 {
        {
            let scratch = ScratchSpace::new()?;
            prepare(&scratch)?;
            let before = space_snapshot(&scratch);
            let free_before = frames::stats().free;
            let outcome = {
                let _cap = frames::cap_free_frames(cap);
                operation(&scratch)
            };
            match outcome {
                Ok(()) => {
                    scratch.with_paging(|paging| paging.verify().map_err(|e| format!("{what}: verify: {e:?}")))?;
                    drop((before, scratch));
                    check_eq!((what, frames::stats().free), (what, frames_baseline));
                    check_eq!((what, crate::mem::heap::stats().used), (what, heap_baseline));
                    return Ok(cap);
                }
                Err(error) => {
                    check!(refused(&error), "{what} with {cap} frames: {error}");
                    check!(space_snapshot(&scratch) == before, "{what} with {cap} frames changed the space");
                    check_eq!((what, cap, frames::stats().free), (what, cap, free_before));
                    scratch.with_paging(|paging| paging.verify().map_err(|e| format!("{what}: verify: {e:?}")))?;
                }
            }
        }
        check_eq!((what, cap, frames::stats().free), (what, cap, frames_baseline));
        check_eq!((what, cap, crate::mem::heap::stats().used), (what, cap, heap_baseline));
    }
    Err(format!("{what} still failed with 64 frames"))
}

fn out_of_memory(error: &str) -> bool {
    error == format!("{}", AspaceError::OutOfMemory)
}

fn add(scratch: &ScratchSpace, region: Region) -> Result<(), String> {
    scratch.space.lock().add_region(region).map_err(|e| format!("{e}"))
}

/// With the frame allocator capped: eager adds (plain and anonymous), a
/// lazy fault, the split of a 2 MiB and of a 1 GiB page each fail with
/// OutOfMemory while frames are short, change nothing, and leak nothing;
/// each succeeds once it has the frames it needs.
fn exhaustion_fails_cleanly_and_leaks_nothing() -> Result<(), String> {
    let rwk = Protection::READ | Protection::WRITE | Protection::KERN;
    let nothing = |_: &ScratchSpace| Ok(());
    // The tables below the root a fresh 4 KiB mapping needs: PDPT, PD, PT
    // (and a PML4 under 5-level paging).
    let tables = if cpu::la57_enabled() { 4 } else { 3 };
    // 4 KiB pages only (the offsets differ within 2 MiB).
    let eager = Region::new(0x6000_0000_0000 + PAGE, 0x20_0000, 16 * PAGE, rwk | Protection::EAGER);
    let needed = fails_cleanly_until_it_fits("eager add", nothing, |s| add(s, eager), out_of_memory)?;
    check_eq!(needed, tables);
    // Anonymous and eager: the tables and one frame per page.
    let anonymous = Region::anonymous(0x6000_0000_0000, 8 * PAGE, rwk | Protection::EAGER);
    let needed = fails_cleanly_until_it_fits("eager anonymous add", nothing, |s| add(s, anonymous), out_of_memory)?;
    check_eq!(needed, tables + 8);
    // A lazy fault that cannot get a table frame is out of memory, not a
    // protection fault (offered as the trap handler offers it).
    let lazy = Region::new(0x6000_0000_0000, 0x20_0000, 4 * PAGE, rwk);
    let fault_in = |scratch: &ScratchSpace| {
        let fault = Fault::page_fault(lazy.va.as_u64() + PAGE, PageFaultCode::empty(), 0);
        match scratch.space.lock().exception(&fault) {
            aspace::FaultOutcome::Handled => Ok(()),
            aspace::FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }) if region == lazy => {
                Err(String::from("lazy fault: out of memory"))
            }
            other => Err(format!("lazy fault: {other:?}")),
        }
    };
    let needed =
        fails_cleanly_until_it_fits("lazy fault", |s| add(s, lazy), fault_in, |e| e == "lazy fault: out of memory")?;
    check_eq!(needed, tables);
    // Splits: protecting one 4 KiB page of a 2 MiB page needs a page table;
    // of a 1 GiB page, a directory and a table.
    let large = Region::new(0x6000_0000_0000, 0x4000_0000, 2 << 20, rwk | Protection::EAGER);
    let protect_one_page = |region: Region| {
        move |scratch: &ScratchSpace| {
            let page = Region::new(region.va.as_u64() + PAGE, region.pa.as_u64() + PAGE, PAGE, region.prot);
            scratch
                .space
                .lock()
                .protect_region(page, Protection::READ | Protection::KERN | Protection::EAGER)
                .map_err(|e| format!("{e}"))
        }
    };
    let needed = fails_cleanly_until_it_fits("2 MiB split", |s| add(s, large), protect_one_page(large), out_of_memory)?;
    check_eq!(needed, 1);
    if cpu::features().huge_1g {
        let huge = Region::new(0x6000_0000_0000, 0x4000_0000, GIB, rwk | Protection::EAGER);
        let needed =
            fails_cleanly_until_it_fits("1 GiB split", |s| add(s, huge), protect_one_page(huge), out_of_memory)?;
        check_eq!(needed, 2);
    }
    Ok(())
}
kernel_test!(exhaustion_fails_cleanly_and_leaks_nothing);

/// A real lazy fault, taken by the trap handler with no frame to spare,
/// fails the access (the probe sees the fault) instead of stopping the
/// kernel; the same access succeeds once frames are back.
fn lazy_fault_without_frames_fails_the_access_only() -> Result<(), String> {
    let scratch = ScratchSpace::hardened()?;
    let rwk = Protection::READ | Protection::WRITE | Protection::KERN;
    let lazy = Region::new(0x6000_0000_0000, 0x20_0000, 4 * PAGE, rwk);
    add(&scratch, lazy)?;
    scratch.enter()?;
    let capped = {
        let _cap = frames::cap_free_frames(0);
        probe_read(lazy.va.as_u64(), Width::U64)
    };
    let uncapped = probe_read(lazy.va.as_u64(), Width::U64);
    address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
    expect_page_fault("lazy read with no frames", capped, lazy.va.as_u64(), PageFaultCode::empty())?;
    check!(uncapped.is_ok(), "the read failed with frames back: {uncapped:?}");
    Ok(())
}
kernel_test!(lazy_fault_without_frames_fails_the_access_only);
