//! Paging on the real (emulated) MMU: NK's pagingTest, lazy faults,
//! refused faults, the fault report, thread moves, destroy and frame
//! accounting.

use crate::address_space::{self, Space};
use crate::arch::cpu;
use crate::arch::frame::TrapFrame;
use crate::arch::trap::write_fault_report;
use crate::labs::paging_test::with_paging;
use crate::mem::frames;
use crate::probe::{probe_execute, probe_read, probe_write, ProbeAccess, Width};
use crate::thread;
use crate::{check, check_eq, kernel_test};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use aspace::{AspaceError, Fault, FaultAccess, FaultOutcome, PageFaultCode, Protection, Region, UnhandledFault};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use paging::{PageSize, PagingCounters};

const GIB: u64 = 1 << 30;
const PAGE: u64 = 4096;
/// A lazy alias of physical 0..4 GiB (NK's address).
const LAZY_ALIAS: u64 = 0xffff_8000_0000_0000;
/// In no region of any test space, canonical with 4- and 5-level paging.
const OUTSIDE: u64 = 0x5dea_d000_0000;
/// NK's flags for the kernel's regions.
const KERNEL: Protection =
    Protection::READ.union(Protection::WRITE).union(Protection::EXEC).union(Protection::PIN).union(Protection::KERN);

/// The identity region 0..4 GiB of the lab's spaces; a test space made with
/// it gets the kernel half too ([`TestSpace::new`]), which it needs to be
/// entered.
const IDENTITY: Region = Region::new(0, 0, 4 * GIB, KERNEL.union(Protection::EAGER));

/// A `paging` address space for one test, left and destroyed on drop (so
/// that a failed check does not leave the thread inside).
struct TestSpace {
    space: Arc<Space>,
}

static SPACES_MADE: AtomicU32 = AtomicU32::new(0);

impl TestSpace {
    /// A fresh space holding `regions`, and the kernel half
    /// ([`crate::hardening::kernel_regions`]) when they hold [`IDENTITY`].
    fn new(regions: &[Region]) -> Result<TestSpace, String> {
        let name = format!("ktest-{}", SPACES_MADE.fetch_add(1, Ordering::Relaxed));
        let space = address_space::create("paging", &name).map_err(|e| format!("create: {e}"))?;
        let test_space = TestSpace { space };
        let kernel_half = crate::hardening::kernel_regions(address_space::kernel_map_len());
        let kernel_half = kernel_half.iter().map(|(_, region)| region).filter(|_| regions.contains(&IDENTITY));
        for region in regions.iter().chain(kernel_half) {
            test_space.space.lock().add_region(*region).map_err(|e| format!("adding {region}: {e}"))?;
        }
        Ok(test_space)
    }

    fn enter(&self) -> Result<(), String> {
        address_space::move_current_thread(Some(&self.space)).map_err(|e| format!("entering: {e}"))
    }

    fn counters(&self) -> PagingCounters {
        let object = self.space.lock();
        object.paging().expect("a paging space").counters()
    }
}

impl Drop for TestSpace {
    fn drop(&mut self) {
        if address_space::current().is_some_and(|current| current.id() == self.space.id()) {
            let _ = address_space::move_current_thread(None);
        }
        let _ = address_space::destroy(self.space.name());
    }
}

/// The physical address of a heap block (the heap is in the direct map).
fn phys<T>(pointer: *const T) -> u64 {
    crate::direct_map::direct_phys(pointer as u64)
}

/// A fresh heap buffer of `len` bytes filled with distinct words (its
/// physical address: [`phys`]).
fn heap_buffer(len: usize) -> vec::Vec<u64> {
    (0..len as u64 / 8).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect()
}

/// CR3 without PCID and flag bits.
fn cr3_root() -> u64 {
    cpu::read_cr3() & 0x000f_ffff_ffff_f000
}

fn base_root() -> u64 {
    let base = address_space::base();
    let object = base.lock();
    match &*object {
        address_space::SpaceObject::Base(base) => base.root().as_u64(),
        _ => panic!("the default space is base"),
    }
}

fn paging_test_passes() -> Result<(), String> {
    let mut output = String::new();
    let result = crate::labs::paging_test::run(&mut output);
    check!(result.is_ok(), "pagingTest: {result:?}\n{output}");
    check!(output.contains("13 passed, 0 failed"), "pagingTest's closing line is missing:\n{output}");
    Ok(())
}
kernel_test!(paging_test_passes);

fn lazy_fault_maps_the_page_and_retries() -> Result<(), String> {
    let data = heap_buffer(64);
    let addr = phys(data.as_ptr());
    let space = TestSpace::new(&[IDENTITY, Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL)])?;
    space.enter()?;
    let before = space.counters();
    let first = probe_read(LAZY_ALIAS + addr, Width::U64).map_err(|f| format!("{f}"))?;
    let after_first = space.counters();
    let second = probe_read(LAZY_ALIAS + addr + 8, Width::U64).map_err(|f| format!("{f}"))?;
    let after_second = space.counters();
    check_eq!(first, data[0]);
    check_eq!(second, data[1]);
    check_eq!(after_first.faults_handled - before.faults_handled, 1);
    // By default a fault maps the largest page the region allows: the
    // alias and its physical start are 1 GiB-aligned.
    let size = if cpu::features().huge_1g { PageSize::Size1G } else { PageSize::Size2M };
    check_eq!(after_first.pages_mapped[size.index()] - before.pages_mapped[size.index()], 1);
    check_eq!(after_second.faults_handled, after_first.faults_handled);
    Ok(())
}
kernel_test!(lazy_fault_maps_the_page_and_retries);

/// The trap entry saves only xmm0-15 and MXCSR (see arch::sse): a handled
/// page fault, whose handler runs Rust code that uses SSE registers, must
/// give the interrupted code all sixteen back as they were.
fn sse_registers_survive_a_handled_page_fault() -> Result<(), String> {
    let data = heap_buffer(64);
    let target = LAZY_ALIAS + phys(data.as_ptr());
    let space = TestSpace::new(&[IDENTITY, Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL)])?;
    space.enter()?;
    let before = space.counters();
    let (value, differing): (u64, u64);
    // SAFETY: `target` is in a lazy region of the space this thread runs
    // in, so the read faults once and is retried; only the registers the
    // macro and these operands declare are touched.
    unsafe {
        with_xmm_pattern!(
            0x0123_4567_89ab_cd00_u64,
            differing,
            ["mov {value}, qword ptr [{target}]"],
            target = in(reg) target,
            value = out(reg) value,
        );
    }
    let after = space.counters();
    check_eq!(value, data[0]);
    check_eq!(after.faults_handled - before.faults_handled, 1);
    check_eq!(differing, 0);
    Ok(())
}
kernel_test!(sse_registers_survive_a_handled_page_fault);

fn four_kib_fault_size_takes_one_fault_per_page() -> Result<(), String> {
    let data = heap_buffer(64 * PAGE as usize);
    let start = phys(data.as_ptr()).next_multiple_of(PAGE);
    let space = TestSpace::new(&[IDENTITY, Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL)])?;
    with_paging(&space.space, |paging| paging.set_fault_page_limit(PageSize::Size4K)).ok_or("not paging")?;
    space.enter()?;
    let before = space.counters();
    // Every other page, twice: the second round finds them mapped.
    for _round in 0..2 {
        for page in (0..32).map(|i| start + 2 * i * PAGE) {
            probe_read(LAZY_ALIAS + page + 16, Width::U64).map_err(|f| format!("{f}"))?;
        }
    }
    let after = space.counters();
    check_eq!(after.faults_handled - before.faults_handled, 32);
    check_eq!(after.pages_mapped[PageSize::Size4K.index()] - before.pages_mapped[PageSize::Size4K.index()], 32);
    check_eq!(after.pages_mapped[PageSize::Size2M.index()], before.pages_mapped[PageSize::Size2M.index()]);
    Ok(())
}
kernel_test!(four_kib_fault_size_takes_one_fault_per_page);

/// A map large enough that its region set keeps a page index (from 64
/// regions): lazy faults find their region through the index, in the
/// kernel as on the host, and a removed region's pages fault unhandled.
fn lazy_faults_in_a_map_of_many_regions_go_through_the_page_index() -> Result<(), String> {
    const REGIONS: u64 = 2 * aspace::region_set::PAGE_INDEX_FROM as u64;
    let data = heap_buffer(((REGIONS + 1) * PAGE) as usize);
    let start = phys(data.as_ptr()).next_multiple_of(PAGE);
    let word = |va: u64| data[((va - phys(data.as_ptr())) / 8) as usize];
    // One-page regions side by side, each aliasing its own page of the
    // buffer; not pinned, so that they can be removed.
    let flags = Protection::READ | Protection::KERN;
    let pages: vec::Vec<Region> =
        (0..REGIONS).map(|i| Region::new(LAZY_ALIAS + start + i * PAGE, start + i * PAGE, PAGE, flags)).collect();
    let space = TestSpace::new(&[IDENTITY])?;
    for region in &pages {
        space.space.lock().add_region(*region).map_err(|e| format!("adding {region}: {e}"))?;
    }
    space.enter()?;
    let before = space.counters();
    for (i, region) in pages.iter().enumerate() {
        let offset = 8 * (i as u64 % 512);
        check_eq!(probe_read(region.va.0 + offset, Width::U64), Ok(word(region.pa.0 + offset)));
    }
    check_eq!(space.counters().faults_handled - before.faults_handled, REGIONS);
    // Past the last region: no region, the fault is not handled.
    let past = LAZY_ALIAS + start + REGIONS * PAGE;
    check!(probe_read(past, Width::U64).is_err(), "a read past the last region did not fault");
    // Remove every other region: their pages fault unhandled, the others still read.
    for region in pages.iter().step_by(2) {
        space.space.lock().remove_region(*region).map_err(|e| format!("removing {region}: {e}"))?;
    }
    for (i, region) in pages.iter().enumerate() {
        let read = probe_read(region.va.0, Width::U64);
        if i % 2 == 0 {
            check!(read.is_err(), "region {i} was removed, yet its page read {read:?}");
        } else {
            check_eq!(read, Ok(word(region.pa.0)));
        }
    }
    Ok(())
}
kernel_test!(lazy_faults_in_a_map_of_many_regions_go_through_the_page_index);

fn write_to_region_without_write_is_refused() -> Result<(), String> {
    let data = heap_buffer(64);
    let addr = phys(data.as_ptr());
    let read_only = Region::new(LAZY_ALIAS, 0, 4 * GIB, Protection::READ | Protection::KERN);
    let space = TestSpace::new(&[IDENTITY, read_only])?;
    space.enter()?;
    let before = space.counters();
    // SAFETY: the region is read-only; a write that went through would only
    // change this test's buffer.
    let fault = unsafe { probe_write(LAZY_ALIAS + addr, 7, Width::U64) }
        .err()
        .and_then(|error| error.fault())
        .ok_or("the write did not fault")?;
    let after = space.counters();
    check_eq!(fault.page_fault_code(), Some(PageFaultCode::WRITE));
    check_eq!(fault.address, LAZY_ALIAS + addr);
    check_eq!(fault.access, ProbeAccess::Write);
    check_eq!(after.faults_handled, before.faults_handled);
    check_eq!(data[0], heap_buffer(64)[0]);
    // What the handler answered for that fault: refused, naming the region.
    let replay = Fault::page_fault(fault.address, PageFaultCode::WRITE, 0);
    let outcome = space.space.lock().exception(&replay);
    check_eq!(
        outcome,
        FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: read_only, access: FaultAccess::Write })
    );
    let FaultOutcome::Unhandled(reason) = outcome else { unreachable!() };
    check!(format!("{reason}").contains(&format!("{read_only}")), "{reason} does not name the region");
    // A read of the same page is allowed and maps it.
    check_eq!(probe_read(LAZY_ALIAS + addr, Width::U64), Ok(data[0]));
    Ok(())
}
kernel_test!(write_to_region_without_write_is_refused);

fn fault_in_default_space_is_unhandled() -> Result<(), String> {
    check!(address_space::current().is_none(), "the test thread is not in the default address space");
    // The layer's page-fault hook, called directly with a made-up fault
    // (NK dereferences a null address-space pointer here).
    let handler = crate::arch::trap::fault_handler().ok_or("no fault handler installed")?;
    let fault = Fault::page_fault(OUTSIDE, PageFaultCode::empty(), 0);
    check_eq!(handler.page_fault(&fault), FaultOutcome::Unhandled(UnhandledFault::NotHandledHere));
    // And a real one: the probe gets it back.
    let fault = probe_read(OUTSIDE, Width::U8).err().and_then(|error| error.fault()).ok_or("the read did not fault")?;
    check_eq!(fault.page_fault_code(), Some(PageFaultCode::empty()));
    Ok(())
}
kernel_test!(fault_in_default_space_is_unhandled);

fn fault_report_names_address_code_region_rip_and_walk() -> Result<(), String> {
    let read_only = Region::new(LAZY_ALIAS, 0, 4 * GIB, Protection::READ | Protection::KERN);
    let space = TestSpace::new(&[IDENTITY, read_only])?;
    space.enter()?;
    let rip = fault_report_names_address_code_region_rip_and_walk as *const () as u64;
    let code = PageFaultCode::WRITE;
    let addr = LAZY_ALIAS + 0x1234_5000;
    let fault = Fault::page_fault(addr, code, rip);
    let reason = UnhandledFault::Forbidden { region: read_only, access: FaultAccess::Write };
    let mut report = String::new();
    write_fault_report(&mut report, &TrapFrame::page_fault(code, rip), &fault, &reason)
        .map_err(|_| "formatting the report failed")?;
    let me = thread::current();
    let expected = [
        String::from("*** page fault (#PF) (vector 14)"),
        String::from("error code 0x2 [not-present write supervisor]"),
        format!("CR2 {addr:#018x} (the faulting address)"),
        format!("RIP {rip:#018x}"),
        format!("thread: {} '{}'", me.id(), me.name()),
        format!("address space: {reason}"),
        format!("address space: {} (paging)", space.space.name()),
        format!("region: {read_only}"),
        format!("page-table walk:\nwalk of {addr:#x} from root {:#x}", cr3_root()),
        String::from("=> not present at"),
        String::from("backtrace:"),
    ];
    for text in &expected {
        check!(report.contains(text.as_str()), "the report lacks {text:?}:\n{report}");
    }
    // Outside every region.
    let fault = Fault::page_fault(OUTSIDE, PageFaultCode::empty(), rip);
    let mut report = String::new();
    write_fault_report(
        &mut report,
        &TrapFrame::page_fault(PageFaultCode::empty(), rip),
        &fault,
        &UnhandledFault::NoRegion,
    )
    .map_err(|_| "formatting the report failed")?;
    for text in
        ["error code 0x0 [not-present read supervisor]", "address space: no region", "region: no region contains"]
    {
        check!(report.contains(text), "the report lacks {text:?}:\n{report}");
    }
    Ok(())
}
kernel_test!(fault_report_names_address_code_region_rip_and_walk);

fn thread_moves_back_to_the_default_space() -> Result<(), String> {
    let space = TestSpace::new(&[IDENTITY])?;
    let root = with_paging(&space.space, |paging| paging.root()).flatten().ok_or("no root")?;
    for _round in 0..2 {
        space.enter()?;
        check_eq!(cr3_root(), root.as_u64());
        check_eq!(space.space.lock().thread_count(), 1);
        check_eq!(address_space::current().map(|s| s.id()), Some(space.space.id()));
        address_space::move_current_thread(None).map_err(|e| format!("moving back: {e}"))?;
        check!(address_space::current().is_none(), "the thread is not back in the default space");
        check_eq!(cr3_root(), base_root());
        check_eq!(space.space.lock().thread_count(), 0);
    }
    Ok(())
}
kernel_test!(thread_moves_back_to_the_default_space);

static RELEASE_CHILD: AtomicBool = AtomicBool::new(false);

fn destroy_is_refused_while_a_thread_is_inside() -> Result<(), String> {
    let space = TestSpace::new(&[IDENTITY])?;
    let name = String::from(space.space.name());
    space.enter()?;
    // Loaded on this CPU: refused by the generic layer.
    check!(matches!(address_space::destroy(&name), Err(AspaceError::Busy { .. })), "destroy while loaded");
    RELEASE_CHILD.store(false, Ordering::SeqCst);
    // Created from inside, the child joins the space.
    let child = thread::spawn("paging-child", || {
        while !RELEASE_CHILD.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        address_space::current().map_or(0, |space| space.id() as u64)
    });
    address_space::move_current_thread(None).map_err(|e| format!("{e}"))?;
    let while_child_inside = address_space::destroy(&name);
    let threads_inside = space.space.lock().thread_count();
    RELEASE_CHILD.store(true, Ordering::SeqCst);
    let child_space = child.join();
    check!(
        matches!(while_child_inside, Err(AspaceError::Busy { reason }) if reason.contains("threads")),
        "destroy with a thread inside: {while_child_inside:?}"
    );
    check_eq!(threads_inside, 1);
    check_eq!(child_space, space.space.id() as u64);
    check_eq!(space.space.lock().thread_count(), 0);
    // The child's CPU may still be switching away from the space it exited
    // in ("a CPU has it loaded"): wait for that, then destroy.
    crate::labs::shootdown::destroy_when_unloaded(&space.space)
        .map_err(|e| format!("destroy after the child left: {e}"))?;
    check!(address_space::find(&name).is_err(), "the destroyed space is still listed");
    Ok(())
}
kernel_test!(destroy_is_refused_while_a_thread_is_inside);

fn entering_a_space_without_the_kernel_image_is_refused() -> Result<(), String> {
    let lazy_only = TestSpace::new(&[Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL)])?;
    let refused = address_space::move_current_thread(Some(&lazy_only.space));
    check!(
        matches!(refused, Err(AspaceError::WouldUnmapRunning { what: "kernel image", .. })),
        "entering a space without the kernel: {refused:?}"
    );
    check!(address_space::current().is_none(), "the thread moved anyway");
    check_eq!(cr3_root(), base_root());
    // A read-only kernel half is not enough either: the kernel writes its data.
    let read_only_half: vec::Vec<Region> = crate::hardening::kernel_regions(address_space::kernel_map_len())
        .into_iter()
        .map(|(_, region)| Region { prot: Protection::READ | Protection::EXEC | Protection::EAGER, ..region })
        .collect();
    let read_only = TestSpace::new(&read_only_half)?;
    let refused = address_space::check_can_enter(&**read_only.space.lock());
    check!(
        matches!(refused, Err(AspaceError::WouldUnmapRunning { .. })),
        "a read-only kernel half accepted: {refused:?}"
    );
    // The identity map of low memory is not what the kernel runs on.
    let identity_only = TestSpace::new(&[])?;
    identity_only.space.lock().add_region(IDENTITY).map_err(|e| format!("adding {IDENTITY}: {e}"))?;
    let refused = address_space::check_can_enter(&**identity_only.space.lock());
    check!(
        matches!(refused, Err(AspaceError::WouldUnmapRunning { what: "kernel image", .. })),
        "a space with only the identity map accepted: {refused:?}"
    );
    Ok(())
}
kernel_test!(entering_a_space_without_the_kernel_image_is_refused);

fn frames_return_to_the_baseline_after_destroy() -> Result<(), String> {
    let data = heap_buffer(16 * PAGE as usize);
    let baseline = frames::stats().free;
    let populated;
    {
        let space = TestSpace::new(&[IDENTITY, Region::new(LAZY_ALIAS, 0, 4 * GIB, KERNEL)])?;
        with_paging(&space.space, |paging| paging.set_fault_page_limit(PageSize::Size4K)).ok_or("not paging")?;
        space.enter()?;
        // Pages in many 2 MiB ranges, so that the lazy faults build page tables.
        let start = phys(data.as_ptr());
        for page in (0..64).map(|i| i * (2 << 20) + start) {
            probe_read(LAZY_ALIAS + page, Width::U8).map_err(|f| format!("{f}"))?;
        }
        populated = space.counters().table_frames;
        check!(frames::stats().free < baseline, "populating took no frames");
    }
    check!(populated > 64, "expected more than 64 page-table frames, found {populated}");
    check_eq!(frames::stats().free, baseline);
    Ok(())
}
kernel_test!(frames_return_to_the_baseline_after_destroy);

/// A function that returns at once, in the kernel text, for the fetch probe
/// (the default map executes the text only).
extern "C" fn return_at_once() {}

fn execute_probe_in_the_default_space() -> Result<(), String> {
    let text = return_at_once as extern "C" fn() as usize as u64;
    // SAFETY: the function takes nothing and returns at once.
    check_eq!(unsafe { probe_execute(text) }, Ok(()));
    // SAFETY: nothing is mapped there.
    let fault = unsafe { probe_execute(OUTSIDE) }.err().ok_or("the call did not fault")?;
    check_eq!(fault.address, OUTSIDE);
    check_eq!(fault.access, ProbeAccess::Execute);
    if cpu::nx_enabled() {
        check_eq!(fault.page_fault_code(), Some(PageFaultCode::FETCH));
        check!(format!("{fault}").contains("not-present instruction-fetch supervisor"), "{fault}");
    }
    // A non-canonical target: #GP on the call itself.
    // SAFETY: the call cannot reach any code.
    let fault = unsafe { probe_execute(0x8000_0000_0000_0000) }.err().ok_or("the call did not fault")?;
    check_eq!(fault.vector, Fault::GENERAL_PROTECTION);
    check!(format!("{fault}").contains("calling 0x8000000000000000"), "{fault}");
    // The probes still work after all that: the stack was unwound properly.
    // SAFETY: as the first call.
    check_eq!(unsafe { probe_execute(text) }, Ok(()));
    Ok(())
}
kernel_test!(execute_probe_in_the_default_space);

fn small_removes_use_invlpg_and_large_ones_flush_everything() -> Result<(), String> {
    const PAGES: usize = 64;
    let frames_run = frames::alloc_contiguous(PAGES, PAGE).ok_or("out of frames")?;
    let pa = frames_run.as_u64();
    // A virtual start whose offset within 2 MiB differs from the physical
    // one: only 4 KiB pages can map it.
    let va = 20 * GIB + ((pa + PAGE) % (2 << 20));
    let region = Region::new(va, pa, PAGES as u64 * PAGE, KERNEL.difference(Protection::PIN) | Protection::EAGER);
    let outcome = (|| {
        let space = TestSpace::new(&[IDENTITY])?;
        // The kernel half maps its image with 4 KiB pages too.
        let made = space.counters();
        space.space.lock().add_region(region).map_err(|e| format!("adding {region}: {e}"))?;
        space.enter()?;
        let touch_all = || (0..PAGES as u64).try_for_each(|i| probe_read(va + i * PAGE, Width::U8).map(drop));
        touch_all().map_err(|f| format!("{f}"))?;
        let before = space.counters();
        check_eq!(
            before.pages_mapped[PageSize::Size4K.index()] - made.pages_mapped[PageSize::Size4K.index()],
            PAGES as u64
        );
        space.space.lock().remove_region(Region::new(va, pa, 3 * PAGE, region.prot)).map_err(|e| format!("{e}"))?;
        let after_small = space.counters();
        check_eq!(after_small.page_invalidations - before.page_invalidations, 3);
        check_eq!(after_small.full_flushes, before.full_flushes);
        let small = Region::new(va + 3 * PAGE, pa + 3 * PAGE, 40 * PAGE, region.prot);
        space.space.lock().remove_region(small).map_err(|e| format!("{e}"))?;
        let after_large = space.counters();
        check_eq!(after_large.full_flushes - after_small.full_flushes, 1);
        check_eq!(after_large.page_invalidations, after_small.page_invalidations);
        // Whichever way, no removed page is still reachable, and the rest is.
        for page in [0, 2, 3, 20, 42] {
            let fault = probe_read(va + page * PAGE, Width::U8).err();
            check!(fault.is_some(), "removed page {page} still reads");
        }
        check!(probe_read(va + 43 * PAGE, Width::U8).is_ok(), "page 43 was lost");
        Ok(())
    })();
    frames::free_contiguous(frames_run, PAGES).map_err(|e| format!("{e}"))?;
    outcome
}
kernel_test!(small_removes_use_invlpg_and_large_ones_flush_everything);
