//! The trap path: handlers by vector, frames written back, SSE state kept.

use crate::arch::frame::TrapFrame;
use crate::arch::trap::{register_handler, unregister_handler, RegisterError};
use crate::{check, check_eq, kernel_test};
use alloc::string::String;
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

static LAST_VECTOR: AtomicU64 = AtomicU64::new(0);

fn record_vector(frame: &mut TrapFrame) {
    LAST_VECTOR.store(frame.vector, Ordering::Relaxed);
}

fn breakpoint_and_software_interrupt_reach_their_handlers() -> Result<(), String> {
    register_handler(3, record_vector).map_err(|e| alloc::format!("{e:?}"))?;
    register_handler(0x40, record_vector).map_err(|e| alloc::format!("{e:?}"))?;
    check_eq!(register_handler(0x40, record_vector), Err(RegisterError::Taken(0x40)));
    // SAFETY: a handler for vector 3 is registered; int3 returns after it.
    unsafe { asm!("int3") };
    let after_breakpoint = LAST_VECTOR.load(Ordering::Relaxed);
    // SAFETY: a handler for vector 0x40 is registered.
    unsafe { asm!("int 0x40") };
    let after_interrupt = LAST_VECTOR.load(Ordering::Relaxed);
    unregister_handler(3);
    unregister_handler(0x40);
    check_eq!(after_breakpoint, 3);
    check_eq!(after_interrupt, 0x40);
    check_eq!(register_handler(14, record_vector), Err(RegisterError::Reserved(14)));
    check_eq!(register_handler(8, record_vector), Err(RegisterError::Reserved(8)));
    Ok(())
}
kernel_test!(breakpoint_and_software_interrupt_reach_their_handlers);

/// Changes the interrupted code's registers through the frame, and clobbers
/// xmm0 and r12 in the handler itself.
fn edit_frame(frame: &mut TrapFrame) {
    frame.rax += 1;
    frame.r15 = frame.r14 * 2;
    // SAFETY: xmm0 and r12 are declared clobbered; the trap path must
    // restore the interrupted code's values anyway.
    unsafe { asm!("xorps xmm0, xmm0", "mov r12, 0", out("xmm0") _, out("r12") _) };
}

fn frames_are_written_back_and_sse_state_survives() -> Result<(), String> {
    register_handler(0x41, edit_frame).map_err(|e| alloc::format!("{e:?}"))?;
    let (rax, r15, xmm, r12): (u64, u64, u64, u64);
    // SAFETY: a handler for 0x41 is registered; every register the asm
    // touches is declared.
    unsafe {
        asm!(
            "movq xmm0, {seed}",
            "int 0x41",
            "movq {xmm}, xmm0",
            seed = in(reg) 0x5555_aaaa_u64,
            xmm = out(reg) xmm,
            inout("r12") 0x1234u64 => r12,
            inout("rax") 41u64 => rax,
            in("r14") 21u64,
            out("r15") r15,
            out("xmm0") _,
        )
    };
    unregister_handler(0x41);
    check_eq!(rax, 42);
    check_eq!(r15, 42);
    check_eq!(xmm, 0x5555_aaaa);
    check_eq!(r12, 0x1234);
    Ok(())
}
kernel_test!(frames_are_written_back_and_sse_state_survives);

fn time_stamp_counter_was_calibrated() -> Result<(), String> {
    let per_ms = crate::arch::tsc::ticks_per_ms();
    check!(per_ms > 100_000, "TSC at {per_ms} ticks per ms (below 100 MHz)");
    let since_boot = crate::arch::tsc::nanos_since_boot();
    check!(since_boot > 0 && since_boot < 60_000_000_000, "{since_boot} ns since boot");
    Ok(())
}
kernel_test!(time_stamp_counter_was_calibrated);
