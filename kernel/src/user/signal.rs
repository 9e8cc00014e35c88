//! Signals: Linux's numbers, and the signal a trap from ring 3 raises.
//!
//! A program's own faults and traps raise the signal Linux raises, with
//! Linux's `si_code`: a fault where no region is is `SIGSEGV`/`SEGV_MAPERR`,
//! a region that forbids the access (a user touching a `k` page, a write
//! to a read-only page) is `SIGSEGV`/`SEGV_ACCERR`, `ud2` is
//! `SIGILL`/`ILL_ILLOPN`, a division by zero `SIGFPE`/`FPE_INTDIV`, `int3`
//! `SIGTRAP`, a #GP (a privileged instruction, a non-canonical address)
//! `SIGSEGV` with `SI_KERNEL` and address 0.
//!
//! Delivery: these signals' default action ends the process ("killed by
//! SIGSEGV"), which is what happens today for every signal; a program's
//! own handlers (`rt_sigaction`) are not run yet (`rt_sigaction` answers
//! `ENOSYS`, so a program knows).

use aspace::{Fault, UnhandledFault};

/// A signal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub u32);

// Linux's numbers, whether or not something raises each yet.
#[allow(dead_code)]
impl Signal {
    /// Hangup.
    pub const SIGHUP: Signal = Signal(1);
    /// Interrupt.
    pub const SIGINT: Signal = Signal(2);
    /// Illegal instruction.
    pub const SIGILL: Signal = Signal(4);
    /// Trace or breakpoint trap.
    pub const SIGTRAP: Signal = Signal(5);
    /// Abort.
    pub const SIGABRT: Signal = Signal(6);
    /// Bus error.
    pub const SIGBUS: Signal = Signal(7);
    /// Arithmetic exception.
    pub const SIGFPE: Signal = Signal(8);
    /// Kill (cannot be caught).
    pub const SIGKILL: Signal = Signal(9);
    /// Invalid memory reference.
    pub const SIGSEGV: Signal = Signal(11);
    /// Termination request.
    pub const SIGTERM: Signal = Signal(15);

    /// The name, `"SIGSEGV"`; `"SIG?"` for one not listed.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "SIGHUP",
            2 => "SIGINT",
            4 => "SIGILL",
            5 => "SIGTRAP",
            6 => "SIGABRT",
            7 => "SIGBUS",
            8 => "SIGFPE",
            9 => "SIGKILL",
            11 => "SIGSEGV",
            15 => "SIGTERM",
            _ => "SIG?",
        }
    }
}

/// `si_code` values (`asm-generic/siginfo.h`).
pub mod code {
    /// Sent by the kernel.
    pub const SI_KERNEL: i32 = 0x80;
    /// SIGSEGV: address not mapped.
    pub const SEGV_MAPERR: i32 = 1;
    /// SIGSEGV: mapped, but the access is not allowed.
    pub const SEGV_ACCERR: i32 = 2;
    /// SIGILL: illegal opcode.
    pub const ILL_ILLOPN: i32 = 2;
    /// SIGFPE: integer divide by zero.
    pub const FPE_INTDIV: i32 = 1;
    /// SIGFPE: floating-point exception (x87 or SSE).
    pub const FPE_FLTINV: i32 = 7;
    /// SIGBUS: invalid address alignment.
    pub const BUS_ADRALN: i32 = 1;
    /// SIGTRAP: process breakpoint.
    pub const TRAP_BRKPT: i32 = 1;
}

/// What a trap from ring 3 raises: the signal, its `si_code` and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// Its `si_code`.
    pub code: i32,
    /// Its `si_addr` (the faulting address, 0 where there is none).
    pub addr: u64,
}

impl SignalInfo {
    /// The `si_code`'s name for the signals raised by traps.
    pub fn code_name(&self) -> &'static str {
        match (self.signal, self.code) {
            (_, code::SI_KERNEL) => "SI_KERNEL",
            (Signal::SIGSEGV, code::SEGV_MAPERR) => "SEGV_MAPERR",
            (Signal::SIGSEGV, code::SEGV_ACCERR) => "SEGV_ACCERR",
            (Signal::SIGILL, code::ILL_ILLOPN) => "ILL_ILLOPN",
            (Signal::SIGFPE, code::FPE_INTDIV) => "FPE_INTDIV",
            (Signal::SIGFPE, code::FPE_FLTINV) => "FPE_FLTINV",
            (Signal::SIGBUS, code::BUS_ADRALN) => "BUS_ADRALN",
            (Signal::SIGTRAP, code::TRAP_BRKPT) => "TRAP_BRKPT",
            _ => "?",
        }
    }
}

/// The signal raised by exception `vector` from ring 3 at instruction
/// `rip`; for a page fault or #GP, with the fault and the address space's
/// answer. As on Linux, `si_addr` is the faulting address for a page fault
/// and the instruction for #DE, #UD, #MF, #XM and #AC.
pub fn for_trap(vector: u8, rip: u64, fault: Option<(&Fault, &UnhandledFault)>) -> SignalInfo {
    let info = |signal, code, addr| SignalInfo { signal, code, addr };
    match (vector, fault) {
        (Fault::PAGE_FAULT, Some((fault, reason))) => match reason {
            UnhandledFault::Forbidden { .. } => info(Signal::SIGSEGV, code::SEGV_ACCERR, fault.addr),
            UnhandledFault::OutOfMemory { .. } | UnhandledFault::ReservedBit => info(Signal::SIGKILL, 0, 0),
            UnhandledFault::NoRegion | UnhandledFault::StackOverflow { .. } | UnhandledFault::NotHandledHere => {
                info(Signal::SIGSEGV, code::SEGV_MAPERR, fault.addr)
            }
        },
        (0, _) => info(Signal::SIGFPE, code::FPE_INTDIV, rip),
        (1 | 3, _) => info(Signal::SIGTRAP, code::SI_KERNEL, 0),
        (6, _) => info(Signal::SIGILL, code::ILL_ILLOPN, rip),
        (16 | 19, _) => info(Signal::SIGFPE, code::FPE_FLTINV, rip),
        (17, _) => info(Signal::SIGBUS, code::BUS_ADRALN, rip),
        // #GP, #SS, #NP, #TS and the rest: what Linux's do_general_protection
        // and friends send.
        _ => info(Signal::SIGSEGV, code::SI_KERNEL, 0),
    }
}
