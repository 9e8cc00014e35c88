//! Fault probes: faults come back decoded instead of stopping the kernel.

use super::test_page::{TestPage, TEST_PAGE};
use crate::probe::{probe_read, probe_write, ProbeAccess, Width};
use crate::{check, check_eq, kernel_test};
use alloc::format;
use alloc::string::String;
use aspace::{Fault, FaultOutcome, PageFaultCode, UnhandledFault};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Canonical with 4- and 5-level paging, and mapped by no space.
const UNMAPPED: u64 = 0x5dea_d000_0000;

fn read_of_unmapped_memory_is_not_present_read_supervisor() -> Result<(), String> {
    let fault = probe_read(UNMAPPED + 0x10, Width::U32)
        .err()
        .and_then(|error| error.fault())
        .ok_or("the read did not fault")?;
    check_eq!(fault.vector, 14);
    check_eq!(fault.page_fault_code(), Some(PageFaultCode::empty()));
    check_eq!(fault.address, UNMAPPED + 0x10);
    check_eq!(fault.access, ProbeAccess::Read);
    let text = format!("{fault}");
    check!(text.contains("not-present read supervisor"), "decoded as {text:?}");
    Ok(())
}
kernel_test!(read_of_unmapped_memory_is_not_present_read_supervisor);

fn write_of_unmapped_memory_is_not_present_write() -> Result<(), String> {
    // SAFETY: the address is unmapped; the write can only fault.
    let fault = unsafe { probe_write(UNMAPPED, 1, Width::U8) }
        .err()
        .and_then(|error| error.fault())
        .ok_or("the write did not fault")?;
    check_eq!(fault.page_fault_code(), Some(PageFaultCode::WRITE));
    check!(format!("{fault}").contains("not-present write supervisor"));
    Ok(())
}
kernel_test!(write_of_unmapped_memory_is_not_present_write);

fn write_to_read_only_page_is_protection_violation_write() -> Result<(), String> {
    let page = TestPage::map(false)?;
    // SAFETY: the test page's frame is ours, in the direct map.
    unsafe { (crate::direct_map::phys_to_virt(page.frame.as_u64()) as *mut u64).write_volatile(0x1122_3344_5566_7788) };
    check_eq!(probe_read(TEST_PAGE, Width::U64), Ok(0x1122_3344_5566_7788));
    // SAFETY: the page is read-only (CR0.WP is set), so the write faults.
    let fault = unsafe { probe_write(TEST_PAGE + 8, 5, Width::U64) }
        .err()
        .and_then(|error| error.fault())
        .ok_or("the write did not fault")?;
    check_eq!(fault.page_fault_code(), Some(PageFaultCode::PRESENT | PageFaultCode::WRITE));
    check_eq!(fault.address, TEST_PAGE + 8);
    check!(format!("{fault}").contains("protection-violation write supervisor"));
    page.set_writable(true);
    // SAFETY: the page is ours and now writable.
    check_eq!(unsafe { probe_write(TEST_PAGE + 8, 5, Width::U64) }, Ok(()));
    let second_word = crate::direct_map::phys_to_virt(page.frame.as_u64() + 8) as *const u64;
    // SAFETY: the page's frame is ours, in the direct map.
    check_eq!(unsafe { second_word.read_volatile() }, 5);
    Ok(())
}
kernel_test!(write_to_read_only_page_is_protection_violation_write);

fn non_canonical_address_is_general_protection() -> Result<(), String> {
    let fault = probe_read(0x8000_0000_0000_0000, Width::U64)
        .err()
        .and_then(|error| error.fault())
        .ok_or("the read did not fault")?;
    check_eq!(fault.vector, 13);
    check_eq!(fault.address, 0x8000_0000_0000_0000);
    let text = format!("{fault}");
    check!(text.contains("non-canonical"), "decoded as {text:?}");
    Ok(())
}
kernel_test!(non_canonical_address_is_general_protection);

fn probes_of_mapped_memory_see_every_width() -> Result<(), String> {
    let mut word: u64 = 0x0102_0304_0506_0708;
    let addr = &mut word as *mut u64 as u64;
    check_eq!(probe_read(addr, Width::U8), Ok(0x08));
    check_eq!(probe_read(addr, Width::U16), Ok(0x0708));
    check_eq!(probe_read(addr, Width::U32), Ok(0x0506_0708));
    check_eq!(probe_read(addr, Width::U64), Ok(0x0102_0304_0506_0708));
    // SAFETY: `word` is a local of ours.
    unsafe {
        probe_write(addr, 0xff, Width::U8).map_err(|f| format!("{f}"))?;
        probe_write(addr + 2, 0xeeee, Width::U16).map_err(|f| format!("{f}"))?;
        probe_write(addr + 4, 0xdddd_dddd, Width::U32).map_err(|f| format!("{f}"))?;
    }
    // SAFETY: as above; read back through a volatile read, past the probes' asm.
    check_eq!(unsafe { core::ptr::read_volatile(&word) }, 0xdddd_dddd_eeee_07ff);
    Ok(())
}
kernel_test!(probes_of_mapped_memory_see_every_width);

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
static HOOK_PTE: AtomicU64 = AtomicU64::new(0);

/// A stand-in for the address-space layer: makes the test page writable on
/// a write fault there, and declines everything else.
fn make_test_page_writable(fault: &Fault) -> FaultOutcome {
    HOOK_CALLS.fetch_add(1, Ordering::Relaxed);
    let pte = HOOK_PTE.load(Ordering::Relaxed) as *mut u64;
    if fault.addr & !0xfff == TEST_PAGE && fault.code.contains(PageFaultCode::WRITE) && !pte.is_null() {
        // SAFETY: the test stored the address of the test page's PTE.
        unsafe { pte.write_volatile(pte.read_volatile() | 2) };
        crate::arch::cpu::invlpg(TEST_PAGE);
        return FaultOutcome::Handled;
    }
    FaultOutcome::Unhandled(UnhandledFault::NoRegion)
}

fn page_fault_hook_comes_before_the_fixup() -> Result<(), String> {
    let page = TestPage::map(false)?;
    HOOK_PTE.store(page.pte as u64, Ordering::Relaxed);
    HOOK_CALLS.store(0, Ordering::Relaxed);
    let (write, calls_after_write, read, calls_after_read) =
        crate::arch::trap::with_page_fault_override(make_test_page_writable, || {
            // The hook fixes the write fault: the write is retried and succeeds.
            // SAFETY: the test page is ours.
            let write = unsafe { probe_write(TEST_PAGE, 0x77, Width::U8) };
            let calls_after_write = HOOK_CALLS.load(Ordering::Relaxed);
            // The hook declines a fault elsewhere: the probe's fixup catches it.
            let read = probe_read(UNMAPPED, Width::U8);
            (write, calls_after_write, read, HOOK_CALLS.load(Ordering::Relaxed))
        });
    HOOK_PTE.store(0, Ordering::Relaxed);
    check_eq!(write, Ok(()));
    check_eq!(calls_after_write, 1);
    // SAFETY: the frame is ours.
    check_eq!(unsafe { (crate::direct_map::phys_to_virt(page.frame.as_u64()) as *const u8).read_volatile() }, 0x77);
    check!(read.is_err(), "the read of unmapped memory did not fault");
    check_eq!(calls_after_read, 2);
    Ok(())
}
kernel_test!(page_fault_hook_comes_before_the_fixup);
