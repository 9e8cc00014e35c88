//! The trap dispatcher: where every exception and interrupt arrives.
//!
//! The entry stubs ([`super::idt`]) build a [`TrapFrame`] and call
//! [`trap_dispatch`], which routes by vector:
//!
//! * #PF (14) and #GP (13) take the fault path: first the page-fault hook
//!   (the address-space layer: it may map the page and ask for a retry), then
//!   the exception table (a fault probe's fixup), then the recovery hook (it
//!   may send the faulting thread elsewhere), else the fault report and stop.
//! * #DF (8) and NMI (2) always report and stop.
//! * Any vector with a handler registered by [`register_handler`] runs it.
//! * Any other exception reports and stops; any other interrupt is logged.

use super::cpu::{read_cr0, read_cr2, read_cr3, read_cr4};
use super::gdt::IstStack;
use super::idt::ist_stack_for;
use super::sse::SseRegisters;
use crate::percpu;
use crate::qemu::{self, ExitStatus};
use crate::serial::UnlockedWriter;
use aspace::{Fault, FaultOutcome, PageFaultCode, UnhandledFault};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Everything the entry stub saved, lowest address first: the interrupted
/// code's SSE registers (see [`super::sse`] for why not the x87 state), its
/// general registers, the vector and error code,
/// and the frame the CPU pushed.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// SSE registers of the interrupted code.
    pub sse: SseRegisters,
    /// r15.
    pub r15: u64,
    /// r14.
    pub r14: u64,
    /// r13.
    pub r13: u64,
    /// r12.
    pub r12: u64,
    /// r11.
    pub r11: u64,
    /// r10.
    pub r10: u64,
    /// r9.
    pub r9: u64,
    /// r8.
    pub r8: u64,
    /// rbp.
    pub rbp: u64,
    /// rdi.
    pub rdi: u64,
    /// rsi.
    pub rsi: u64,
    /// rdx.
    pub rdx: u64,
    /// rcx.
    pub rcx: u64,
    /// rbx.
    pub rbx: u64,
    /// rax.
    pub rax: u64,
    /// The vector (0..=255).
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Where the interrupted code resumes (for a fault: the faulting instruction).
    pub rip: u64,
    /// Its code segment.
    pub cs: u64,
    /// Its flags.
    pub rflags: u64,
    /// Its stack pointer.
    pub rsp: u64,
    /// Its stack segment.
    pub ss: u64,
}

impl TrapFrame {
    /// A frame as the entry stub would build it for a #PF with error code
    /// `code` at `rip`: for testing the fault report with a made-up fault.
    #[cfg(feature = "ktest")]
    pub fn page_fault(code: PageFaultCode, rip: u64) -> TrapFrame {
        TrapFrame {
            sse: SseRegisters::new(),
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: Fault::PAGE_FAULT as u64,
            error_code: code.bits() as u64,
            rip,
            cs: 0x8,
            rflags: 0x2,
            rsp: 0,
            ss: 0x10,
        }
    }

    /// The vector as a byte.
    pub fn vector(&self) -> u8 {
        self.vector as u8
    }
}

/// A handler for one vector, run on the vector's IST stack with interrupts off.
pub type TrapHandler = fn(&mut TrapFrame);

/// The address-space layer's answer to a fault it is offered.
pub type PageFaultHook = fn(&Fault) -> FaultOutcome;

/// Writes the address-space part of a fault report (the region containing
/// the address and the page-table walk).
pub type FaultReportHook = fn(&Fault, &mut dyn Write);

/// Offered a fault that nothing handled (neither the address-space layer
/// nor a probe's fixup), before the report: it may rewrite `frame` so that
/// the trap returns somewhere safe instead of stopping the kernel, and
/// says so by returning true. The grow-down stacks of
/// [`crate::growing_stack`] use it to stop a thread whose stack overflowed.
pub type FaultRecoveryHook = fn(&mut TrapFrame, &Fault, &UnhandledFault) -> bool;

/// Why [`register_handler`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The kernel itself owns this vector (#DF, #GP, #PF: see the hooks).
    Reserved(u8),
    /// Another handler is registered for the vector.
    Taken(u8),
}

/// Function pointers stored as integers (0 = none), one per vector.
static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static PAGE_FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);
static FAULT_REPORT_HOOK: AtomicUsize = AtomicUsize::new(0);
static FAULT_RECOVERY_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Vectors the kernel handles itself.
fn is_reserved(vector: u8) -> bool {
    matches!(vector, 8 | 13 | 14)
}

/// Registers `handler` for `vector`.
pub fn register_handler(vector: u8, handler: TrapHandler) -> Result<(), RegisterError> {
    if is_reserved(vector) {
        return Err(RegisterError::Reserved(vector));
    }
    HANDLERS[vector as usize]
        .compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| ())
        .map_err(|_| RegisterError::Taken(vector))
}

/// Removes the handler of `vector`, if any.
#[cfg(feature = "ktest")]
pub fn unregister_handler(vector: u8) {
    HANDLERS[vector as usize].store(0, Ordering::Release);
}

fn handler(vector: u8) -> Option<TrapHandler> {
    match HANDLERS[vector as usize].load(Ordering::Acquire) {
        0 => None,
        // SAFETY: only `register_handler` stores non-zero values, and it
        // stores `TrapHandler` function pointers.
        pointer => Some(unsafe { core::mem::transmute::<usize, TrapHandler>(pointer) }),
    }
}

/// Installs the hook that page faults (and general-protection faults) are
/// offered to first. The address-space layer installs it.
pub fn set_page_fault_hook(hook: PageFaultHook) {
    replace_page_fault_hook(Some(hook));
}

/// Installs `hook` (or none: faults are then unhandled by default) and
/// returns the previous one, so that a test can put it back.
pub fn replace_page_fault_hook(hook: Option<PageFaultHook>) -> Option<PageFaultHook> {
    match PAGE_FAULT_HOOK.swap(hook.map_or(0, |hook| hook as usize), Ordering::AcqRel) {
        0 => None,
        // SAFETY: only this function stores non-zero values, and it stores
        // `PageFaultHook` function pointers.
        pointer => Some(unsafe { core::mem::transmute::<usize, PageFaultHook>(pointer) }),
    }
}

/// Installs the hook that adds region and page-table details to fault reports.
pub fn set_fault_report_hook(hook: FaultReportHook) {
    FAULT_REPORT_HOOK.store(hook as usize, Ordering::Release);
}

/// Installs the hook offered every fault that nothing handled, before the report.
pub fn set_fault_recovery_hook(hook: FaultRecoveryHook) {
    FAULT_RECOVERY_HOOK.store(hook as usize, Ordering::Release);
}

fn offer_to_recovery_hook(frame: &mut TrapFrame, fault: &Fault, reason: &UnhandledFault) -> bool {
    match FAULT_RECOVERY_HOOK.load(Ordering::Acquire) {
        0 => false,
        pointer => {
            // SAFETY: only `set_fault_recovery_hook` stores non-zero values,
            // and it stores `FaultRecoveryHook` function pointers.
            let hook = unsafe { core::mem::transmute::<usize, FaultRecoveryHook>(pointer) };
            hook(frame, fault, reason)
        }
    }
}

fn offer_to_page_fault_hook(fault: &Fault) -> FaultOutcome {
    match PAGE_FAULT_HOOK.load(Ordering::Acquire) {
        0 => FaultOutcome::Unhandled(UnhandledFault::NotHandledHere),
        pointer => {
            // SAFETY: only `replace_page_fault_hook` stores non-zero values,
            // and it stores `PageFaultHook` function pointers.
            let hook = unsafe { core::mem::transmute::<usize, PageFaultHook>(pointer) };
            hook(fault)
        }
    }
}

/// The name of an exception vector (or "interrupt" above 31).
pub fn vector_name(vector: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error (#DE)",
        "debug (#DB)",
        "non-maskable interrupt (NMI)",
        "breakpoint (#BP)",
        "overflow (#OF)",
        "bound range exceeded (#BR)",
        "invalid opcode (#UD)",
        "device not available (#NM)",
        "double fault (#DF)",
        "coprocessor segment overrun",
        "invalid TSS (#TS)",
        "segment not present (#NP)",
        "stack-segment fault (#SS)",
        "general-protection fault (#GP)",
        "page fault (#PF)",
        "reserved (15)",
        "x87 floating-point error (#MF)",
        "alignment check (#AC)",
        "machine check (#MC)",
        "SIMD floating-point exception (#XM)",
        "virtualization exception (#VE)",
        "control protection exception (#CP)",
        "reserved (22)",
        "reserved (23)",
        "reserved (24)",
        "reserved (25)",
        "reserved (26)",
        "reserved (27)",
        "hypervisor injection exception (#HV)",
        "VMM communication exception (#VC)",
        "security exception (#SX)",
        "reserved (31)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// Decodes a selector error code (#TS, #NP, #SS, #GP): which descriptor
/// table entry was at fault, if any.
pub struct SelectorErrorCode(pub u64);

impl fmt::Display for SelectorErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        if code == 0 {
            return write!(f, "0x0 [no selector]");
        }
        let table = if code & 0b10 != 0 {
            "IDT"
        } else if code & 0b100 != 0 {
            "LDT"
        } else {
            "GDT"
        };
        write!(f, "{code:#x} [{table} entry {}", (code >> 3) & 0x1fff)?;
        if code & 1 != 0 {
            f.write_str(", external event")?;
        }
        f.write_str("]")
    }
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
        2 | 8 => report_and_stop(frame, &Detail::None),
        _ => match handler(vector) {
            Some(handler) => handler(frame),
            None if vector < 32 => report_and_stop(frame, &Detail::None),
            None => log::warn!("interrupt on vector {vector} with no handler (RIP {:#x})", frame.rip),
        },
    }
    cpu.leave_ist(stack);
    frame as *mut TrapFrame
}

/// A #PF or #GP: the address-space layer, then the probes' fixups, else stop.
fn handle_fault(frame: &mut TrapFrame) {
    let vector = frame.vector();
    let addr = if vector == Fault::PAGE_FAULT { read_cr2() } else { 0 };
    let fault = Fault { vector, addr, code: PageFaultCode::from_bits_retain(frame.error_code as u32), rip: frame.rip };
    let reason = match offer_to_page_fault_hook(&fault) {
        FaultOutcome::Handled | FaultOutcome::Spurious => return,
        FaultOutcome::Unhandled(reason) => reason,
    };
    if crate::probe::apply_fixup(frame, &fault) {
        return;
    }
    if offer_to_recovery_hook(frame, &fault, &reason) {
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
    write_thread(out)?;
    match detail {
        Detail::Unhandled(fault, reason) => {
            writeln!(out, "    address space: {reason}")?;
            match FAULT_REPORT_HOOK.load(Ordering::Acquire) {
                // A #GP reports no address: no region or walk to show.
                _ if fault.vector != Fault::PAGE_FAULT => {
                    writeln!(out, "    region and page-table walk: none (the CPU reports no address)")?
                }
                0 => writeln!(out, "    region and page-table walk: no address-space layer")?,
                pointer => {
                    // SAFETY: only `set_fault_report_hook` stores non-zero
                    // values, and it stores `FaultReportHook` pointers.
                    let hook = unsafe { core::mem::transmute::<usize, FaultReportHook>(pointer) };
                    hook(fault, out);
                }
            }
        }
        Detail::None | Detail::NestedTrap(_) => {}
    }
    write_backtrace(out, frame.rip, frame.rbp)
}

/// The thread that trapped. Its lock is only tried: the trap may have hit
/// while this CPU held it.
fn write_thread(out: &mut dyn Write) -> fmt::Result {
    let cpu = percpu::current();
    let Some(current) = cpu.current.try_lock() else {
        return writeln!(out, "    thread: (busy; not inspected)");
    };
    match current.as_ref() {
        Some(thread) => writeln!(out, "    thread: {} '{}'", thread.id(), thread.name()),
        None => writeln!(out, "    thread: none (before threads started)"),
    }
}

/// Follows the frame-pointer chain (the kernel is built with frame
/// pointers). Each link is read with a fault probe, so a broken chain ends
/// the walk instead of faulting; non-canonical links end it before they can
/// raise a #GP. While the page-fault stack is in use (the report of a page
/// fault) a probe's own page fault would land on it, so the walk then reads
/// directly and only below 4 GiB, which every address space maps.
fn write_backtrace(out: &mut dyn Write, rip: u64, mut rbp: u64) -> fmt::Result {
    use crate::probe::{probe_read, Width};
    const ALWAYS_MAPPED_END: u64 = 4 << 30;
    write!(out, "    backtrace: {rip:#x}")?;
    let direct = percpu::current().is_ist_in_use(IstStack::PageFault);
    let width = super::cpu::virt_width();
    let read = |addr: u64| -> Option<u64> {
        if direct {
            // SAFETY: below 4 GiB, 8-aligned: mapped in every address space.
            (addr <= ALWAYS_MAPPED_END - 8).then(|| unsafe { (addr as *const u64).read_volatile() })
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
