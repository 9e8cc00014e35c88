//! The trap dispatcher: where every exception and interrupt arrives.
//!
//! The entry stubs ([`super::idt`]) build a [`TrapFrame`] and call
//! [`trap_dispatch`], which routes by vector:
//!
//! * #PF (14) and #GP (13) take the fault path: first the [`FaultHandler`]
//!   the address-space layer installed at boot (it may map the page and ask
//!   for a retry), then the exception table (a fault probe's fixup), then the
//!   handler's `recover` (it may send the faulting thread elsewhere), else the
//!   fault report and stop.
//!   A fault from ring 3 that the address-space layer does not handle goes
//!   to the [`UserTrapHandler`] instead (a signal), never to the report.
//! * #DF (8), NMI (2) and #MC (18) always report and stop.
//! * Any other exception from ring 3 goes to the [`UserTrapHandler`].
//! * Any vector with a handler registered by [`register_handler`] runs it.
//! * Any other exception reports and stops; any other interrupt is logged.
//!
//! Last, a frame that goes back to ring 3 is offered to the
//! [`UserTrapHandler`]'s `returning_to_user` (pending signals).

use super::cpu::{read_cr0, read_cr2, read_cr3, read_cr4};
use super::frame::{vector_name, SelectorErrorCode, TrapFrame};
use super::gdt::IstStack;
use super::idt::ist_stack_for;
use crate::percpu;
use crate::qemu::{self, ExitStatus};
use crate::serial::UnlockedWriter;
use crate::sync::SetOnce;
use aspace::{Fault, FaultOutcome, PageFaultCode, UnhandledFault};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, Ordering};

/// A handler for one vector, run on the vector's IST stack with interrupts off.
pub type TrapHandler = fn(&mut TrapFrame);

/// What the kernel above the CPU does with faults. The address-space layer
/// installs one at boot ([`install_fault_handler`]); until then every fault
/// is unhandled and reported.
pub trait FaultHandler: Sync {
    /// Offered every #PF and #GP first: it may map the page and ask for a
    /// retry (`Handled`), recognise a stale entry (`Spurious`), or decline.
    fn page_fault(&self, fault: &Fault) -> FaultOutcome;
    /// Offered a fault that nothing handled (neither `page_fault` nor a
    /// probe's fixup), before the report: it may rewrite `frame` so that the
    /// trap returns somewhere safe instead of stopping the kernel, and says
    /// so by returning true (the grow-down stacks stop a thread whose stack
    /// overflowed this way).
    fn recover(&self, frame: &mut TrapFrame, fault: &Fault, reason: &UnhandledFault) -> bool;
    /// Writes the thread that trapped, for the report (its locks only tried).
    fn write_thread(&self, out: &mut dyn Write) -> fmt::Result;
    /// Writes the address-space part of a page fault's report: the region
    /// containing the address and the page-table walk.
    fn describe(&self, fault: &Fault, out: &mut dyn Write);
}

static FAULT_HANDLER: SetOnce<&'static dyn FaultHandler> = SetOnce::new();

/// What the kernel does with an exception from ring 3 that nothing below
/// handled: the user-mode layer installs one at boot
/// ([`install_user_trap_handler`]).
pub trait UserTrapHandler: Sync {
    /// `frame` came from ring 3 and raised an exception the kernel does not
    /// fix: for a #PF or #GP, `fault` holds it and the address space's answer.
    /// The handler rewrites `frame` so that the trap's return goes on
    /// sensibly: into the program's signal handler, or into the kernel to
    /// end the process (see `syscall::redirect_with_frame`).
    fn user_trap(&self, frame: &mut TrapFrame, fault: Option<(&Fault, &UnhandledFault)>);

    /// Offered every trap whose frame goes back to ring 3 (an interrupt, or
    /// a fault the kernel fixed) while the running thread's attention flag
    /// is raised ([`PerCpu::user_attention_raised`](crate::percpu::PerCpu::user_attention_raised)),
    /// last, still on the IST stack with interrupts off: it may rewrite `frame` (with
    /// `syscall::redirect_with_frame`) so that the program first passes
    /// through the kernel, e.g. to take a pending signal. It must neither
    /// fault nor sleep here.
    fn returning_to_user(&self, frame: &mut TrapFrame) {
        let _ = frame;
    }
}

static USER_TRAP_HANDLER: SetOnce<&'static dyn UserTrapHandler> = SetOnce::new();

/// Installs the user-trap handler; refused (false) when one is installed.
pub fn install_user_trap_handler(handler: &'static dyn UserTrapHandler) -> bool {
    USER_TRAP_HANDLER.set(handler)
}

/// True when `frame` was saved in ring 3 (its CS's privilege level).
pub fn from_user(frame: &TrapFrame) -> bool {
    frame.cs & 3 == 3
}

/// Installs the fault handler; refused (false) when one is installed
/// already: it is set once, at boot, and read without a lock by every fault.
pub fn install_fault_handler(handler: &'static dyn FaultHandler) -> bool {
    FAULT_HANDLER.set(handler)
}

/// The installed fault handler, if any.
pub fn fault_handler() -> Option<&'static dyn FaultHandler> {
    FAULT_HANDLER.get().copied()
}

/// A page-fault function tried before the installed handler, for the
/// in-kernel tests of the trap path only (never in the kernel `run` boots).
#[cfg(feature = "ktest")]
static TEST_OVERRIDE: spin::Mutex<Option<PageFaultFn>> = spin::Mutex::new(None);

/// A page-fault function of the tests' override.
#[cfg(feature = "ktest")]
pub type PageFaultFn = fn(&Fault) -> FaultOutcome;

/// Runs `body` with `hook` offered every #PF and #GP before the installed
/// handler (only where `hook` declines does the handler see the fault).
#[cfg(feature = "ktest")]
pub fn with_page_fault_override<R>(hook: PageFaultFn, body: impl FnOnce() -> R) -> R {
    *super::cpu::without_interrupts(|| TEST_OVERRIDE.lock()) = Some(hook);
    let result = body();
    *super::cpu::without_interrupts(|| TEST_OVERRIDE.lock()) = None;
    result
}

fn offer_page_fault(fault: &Fault) -> FaultOutcome {
    #[cfg(feature = "ktest")]
    if let Some(hook) = *TEST_OVERRIDE.lock() {
        if let outcome @ (FaultOutcome::Handled | FaultOutcome::Spurious) = hook(fault) {
            return outcome;
        }
    }
    match fault_handler() {
        Some(handler) => handler.page_fault(fault),
        None => FaultOutcome::Unhandled(UnhandledFault::NotHandledHere),
    }
}

/// Why [`register_handler`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The kernel itself owns this vector (#DF, #GP, #PF: see the hooks).
    Reserved(u8),
    /// Another handler is registered for the vector.
    Taken(u8),
}

/// Each vector's handler, boxed once and never freed (null = none): a
/// pointer to a function pointer, so that it can be swapped atomically
/// without turning integers back into functions.
static HANDLERS: [AtomicPtr<TrapHandler>; 256] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 256];

/// Vectors the kernel handles itself.
fn is_reserved(vector: u8) -> bool {
    matches!(vector, 8 | 13 | 14)
}

/// Registers `handler` for `vector`.
pub fn register_handler(vector: u8, handler: TrapHandler) -> Result<(), RegisterError> {
    if is_reserved(vector) {
        return Err(RegisterError::Reserved(vector));
    }
    let boxed = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(handler));
    match HANDLERS[vector as usize].compare_exchange(core::ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => Ok(()),
        Err(_) => {
            // SAFETY: `boxed` was made just above and never shared.
            drop(unsafe { alloc::boxed::Box::from_raw(boxed) });
            Err(RegisterError::Taken(vector))
        }
    }
}

/// Removes the handler of `vector`, if any.
#[cfg(feature = "ktest")]
pub fn unregister_handler(vector: u8) {
    // The box is left behind: a CPU may be reading it right now.
    HANDLERS[vector as usize].store(core::ptr::null_mut(), Ordering::Release);
}

fn handler(vector: u8) -> Option<TrapHandler> {
    let pointer = HANDLERS[vector as usize].load(Ordering::Acquire);
    // SAFETY: non-null entries point to boxes that `register_handler` made
    // and that are never freed.
    (!pointer.is_null()).then(|| unsafe { *pointer })
}

/// The Rust half of every trap: called by `trap_common` with the frame it
/// built; returns the frame to resume from.
#[no_mangle]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) -> *mut TrapFrame {
    let vector = frame.vector();
    let stack = ist_stack_for(vector);
    let cpu = percpu::current();
    if !cpu.enter_ist(stack) {
        report_and_stop(frame, &Detail::NestedTrap(stack));
    }
    match vector {
        Fault::PAGE_FAULT | Fault::GENERAL_PROTECTION => handle_fault(frame),
        2 | 8 | 18 => report_and_stop(frame, &Detail::None),
        0..=31 if from_user(frame) => match USER_TRAP_HANDLER.get() {
            Some(handler) => handler.user_trap(frame, None),
            None => report_and_stop(frame, &Detail::None),
        },
        _ => match handler(vector) {
            Some(handler) => handler(frame),
            None if vector < 32 => report_and_stop(frame, &Detail::None),
            None => log::warn!("interrupt on vector {vector} with no handler (RIP {:#x})", frame.rip),
        },
    }
    // Back to ring 3: the user layer looks at the thread's state only when
    // its attention flag says there may be something to do.
    if from_user(frame) && cpu.user_attention_raised() {
        if let Some(handler) = USER_TRAP_HANDLER.get() {
            handler.returning_to_user(frame);
        }
    }
    cpu.leave_ist(stack);
    frame as *mut TrapFrame
}

/// A #PF or #GP: the address-space layer, then the probes' fixups, else stop.
fn handle_fault(frame: &mut TrapFrame) {
    let vector = frame.vector();
    let addr = if vector == Fault::PAGE_FAULT { read_cr2() } else { 0 };
    let fault = Fault { vector, addr, code: PageFaultCode::from_bits_retain(frame.error_code as u32), rip: frame.rip };
    let reason = match offer_page_fault(&fault) {
        FaultOutcome::Handled | FaultOutcome::Spurious => return,
        FaultOutcome::Unhandled(reason) => {
            core::hint::cold_path();
            reason
        }
    };
    if from_user(frame) {
        if let Some(handler) = USER_TRAP_HANDLER.get() {
            handler.user_trap(frame, Some((&fault, &reason)));
            return;
        }
    }
    if crate::probe::apply_fixup(frame, &fault) {
        return;
    }
    if fault_handler().is_some_and(|handler| handler.recover(frame, &fault, &reason)) {
        return;
    }
    report_and_stop(frame, &Detail::Unhandled(fault, reason));
}

/// What the report adds to the frame.
enum Detail {
    None,
    /// A trap arrived on an IST stack still in use by another trap.
    NestedTrap(IstStack),
    /// A fault no one could handle.
    Unhandled(Fault, UnhandledFault),
}

/// Prints the full fault report on the serial console and powers off with
/// failure. Writes without the console lock: the lock holder may be the
/// code that faulted.
fn report_and_stop(frame: &TrapFrame, detail: &Detail) -> ! {
    let out = &mut UnlockedWriter;
    let _ = write_report(out, frame, detail);
    qemu::exit(ExitStatus::Failure)
}

/// Writes the report of a fault no one could handle (what the kernel prints
/// before it stops): the exception and decoded error code, the faulting
/// address, the registers of `frame`, the thread, the address space's
/// answer `reason`, the region and page-table walk, and a backtrace. The
/// faulting address is `fault.addr`, so a test can format the report of a
/// made-up fault into a `String`.
#[cfg(feature = "ktest")]
pub fn write_fault_report(
    out: &mut dyn Write,
    frame: &TrapFrame,
    fault: &Fault,
    reason: &UnhandledFault,
) -> fmt::Result {
    write_report(out, frame, &Detail::Unhandled(*fault, reason.clone()))
}

fn write_report(out: &mut dyn Write, frame: &TrapFrame, detail: &Detail) -> fmt::Result {
    let vector = frame.vector();
    writeln!(out, "\n*** {} (vector {vector}) on CPU {}", vector_name(vector), percpu::current().id)?;
    if let Detail::NestedTrap(stack) = detail {
        writeln!(out, "    nested trap on the {} IST stack: the outer trap's frame was overwritten", stack.name())?;
    }
    match vector {
        14 => writeln!(out, "    error code {}", PageFaultCode::from_bits_retain(frame.error_code as u32))?,
        10..=13 => writeln!(out, "    error code {}", SelectorErrorCode(frame.error_code))?,
        _ => writeln!(out, "    error code {:#x}", frame.error_code)?,
    }
    if vector == 14 {
        let addr = match detail {
            Detail::Unhandled(fault, _) => fault.addr,
            Detail::None | Detail::NestedTrap(_) => read_cr2(),
        };
        writeln!(out, "    CR2 {addr:#018x} (the faulting address)")?;
    }
    writeln!(out, "    RIP {:#018x}  CS {:#06x}  RFLAGS {:#010x}", frame.rip, frame.cs, frame.rflags)?;
    writeln!(out, "    RSP {:#018x}  SS {:#06x}", frame.rsp, frame.ss)?;
    let registers = [
        ("RAX", frame.rax),
        ("RBX", frame.rbx),
        ("RCX", frame.rcx),
        ("RDX", frame.rdx),
        ("RSI", frame.rsi),
        ("RDI", frame.rdi),
        ("RBP", frame.rbp),
        ("R8 ", frame.r8),
        ("R9 ", frame.r9),
        ("R10", frame.r10),
        ("R11", frame.r11),
        ("R12", frame.r12),
        ("R13", frame.r13),
        ("R14", frame.r14),
        ("R15", frame.r15),
    ];
    for row in registers.chunks(3) {
        out.write_str("   ")?;
        for (name, value) in row {
            write!(out, " {name} {value:#018x}")?;
        }
        out.write_str("\n")?;
    }
    writeln!(out, "    CR0 {:#010x}  CR3 {:#018x}  CR4 {:#010x}", read_cr0(), read_cr3(), read_cr4())?;
    match fault_handler() {
        Some(handler) => handler.write_thread(out)?,
        None => writeln!(out, "    thread: none (before threads started)")?,
    }
    match detail {
        Detail::Unhandled(fault, reason) => {
            writeln!(out, "    address space: {reason}")?;
            match fault_handler() {
                // A #GP reports no address: no region or walk to show.
                _ if fault.vector != Fault::PAGE_FAULT => {
                    writeln!(out, "    region and page-table walk: none (the CPU reports no address)")?
                }
                None => writeln!(out, "    region and page-table walk: no address-space layer")?,
                Some(handler) => handler.describe(fault, out),
            }
        }
        Detail::None | Detail::NestedTrap(_) => {}
    }
    write_backtrace(out, frame.rip, frame.rbp)
}

/// Follows the frame-pointer chain (the kernel is built with frame
/// pointers). Each link is read with a fault probe, so a broken chain ends
/// the walk instead of faulting; non-canonical links end it before they can
/// raise a #GP. While the page-fault stack is in use (the report of a page
/// fault) a probe's own page fault would land on it, so the walk then reads
/// directly and only in the kernel image or the direct map of the first
/// 4 GiB, which every address space the kernel runs in maps.
fn write_backtrace(out: &mut dyn Write, rip: u64, mut rbp: u64) -> fmt::Result {
    use crate::probe::{probe_read, Width};
    write!(out, "    backtrace: {rip:#x}")?;
    let direct = percpu::current().is_ist_in_use(IstStack::PageFault);
    let width = super::cpu::virt_width();
    let read = |addr: u64| -> Option<u64> {
        if direct {
            // SAFETY: in the image or the direct map of the first 4 GiB,
            // 8-aligned: mapped in every address space the kernel runs in.
            crate::direct_map::always_mapped_word(addr).then(|| unsafe { (addr as *const u64).read_volatile() })
        } else {
            probe_read(addr, Width::U64).ok()
        }
    };
    for _ in 0..16 {
        // The frame's two words, [rbp, rbp + 16), must not wrap past 2^64
        // or reach the non-canonical hole.
        let Some(return_slot) = rbp.checked_add(8).filter(|&slot| slot.checked_add(7).is_some()) else { break };
        if rbp == 0 || !rbp.is_multiple_of(8) || !aspace::VirtAddr::new(return_slot + 7).is_canonical(width) {
            break;
        }
        let (Some(next), Some(return_address)) = (read(rbp), read(return_slot)) else { break };
        if return_address == 0 {
            break;
        }
        write!(out, " {return_address:#x}")?;
        rbp = next;
    }
    writeln!(out)
}
