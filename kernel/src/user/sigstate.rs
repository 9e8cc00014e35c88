//! Signals' data: the numbers, `si_code`s, what a trap raises, the
//! actions and the per-process extras, kept below the process records that
//! hold them (`process.rs`); delivery and the system calls are `signal.rs`.

use super::errno::Errno;
use aspace::{Fault, PageFaultCode, Protection, UnhandledFault};
use core::fmt;

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
    /// Write to a pipe with no reader.
    pub const SIGPIPE: Signal = Signal(13);
    /// Termination request.
    pub const SIGTERM: Signal = Signal(15);
    /// A child stopped, continued or ended.
    pub const SIGCHLD: Signal = Signal(17);
    /// Continue if stopped.
    pub const SIGCONT: Signal = Signal(18);
    /// Stop (cannot be caught).
    pub const SIGSTOP: Signal = Signal(19);

    /// The name, `"SIGSEGV"`; `"SIG?"` for a number outside 1..=64.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 31] = [
            "SIGHUP",
            "SIGINT",
            "SIGQUIT",
            "SIGILL",
            "SIGTRAP",
            "SIGABRT",
            "SIGBUS",
            "SIGFPE",
            "SIGKILL",
            "SIGUSR1",
            "SIGSEGV",
            "SIGUSR2",
            "SIGPIPE",
            "SIGALRM",
            "SIGTERM",
            "SIGSTKFLT",
            "SIGCHLD",
            "SIGCONT",
            "SIGSTOP",
            "SIGTSTP",
            "SIGTTIN",
            "SIGTTOU",
            "SIGURG",
            "SIGXCPU",
            "SIGXFSZ",
            "SIGVTALRM",
            "SIGPROF",
            "SIGWINCH",
            "SIGIO",
            "SIGPWR",
            "SIGSYS",
        ];
        match self.0 {
            1..=31 => NAMES[self.0 as usize - 1],
            // The real-time signals (glibc keeps 32 and 33 for itself).
            32..=64 => "SIGRT",
            _ => "SIG?",
        }
    }
}

/// `si_code` values (`asm-generic/siginfo.h`).
pub mod code {
    /// Sent by `kill` (or by the kernel on a process's behalf, as `SIGPIPE`).
    pub const SI_USER: i32 = 0;
    /// Sent by `tkill` or `tgkill` (`raise`).
    pub const SI_TKILL: i32 = -6;
    /// Sent by a POSIX timer's expiry (`timer_create`).
    pub const SI_TIMER: i32 = -2;
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
    /// SIGCHLD: the child exited.
    pub const CLD_EXITED: i32 = 1;
    /// SIGCHLD: a signal killed the child.
    pub const CLD_KILLED: i32 = 2;
    /// SIGCHLD: the child stopped.
    pub const CLD_STOPPED: i32 = 5;
    /// SIGCHLD: the stopped child continued.
    pub const CLD_CONTINUED: i32 = 6;
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
            (_, code::SI_USER) => "SI_USER",
            (_, code::SI_TKILL) => "SI_TKILL",
            (_, code::SI_TIMER) => "SI_TIMER",
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
            UnhandledFault::Forbidden { region, .. } if region.prot.contains(Protection::KERN) => {
                info(Signal::SIGSEGV, code::SEGV_MAPERR, fault.addr)
            }
            // BUS_ADRERR: past the end of a mapped file.
            UnhandledFault::PastEndOfObject { .. } => info(Signal::SIGBUS, 2, fault.addr),
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

/// The number of signals (1..=64).
pub const NSIG: u32 = 64;
/// `SA_NOCLDSTOP`: no `SIGCHLD` when a child stops or continues.
pub(super) const SA_NOCLDSTOP: u64 = 0x1;
/// `SA_NOCLDWAIT`: children that end are reaped at once (no zombie).
pub(super) const SA_NOCLDWAIT: u64 = 0x2;
/// `SA_NODEFER`: the signal is not blocked while its handler runs.
pub(super) const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`: back to the default action once delivered.
pub(super) const SA_RESETHAND: u64 = 0x8000_0000;
/// `SA_RESTORER`: `restorer` holds the return trampoline (calls `rt_sigreturn`).
pub(super) const SA_RESTORER: u64 = 0x0400_0000;
/// `SA_ONSTACK`: the handler runs on the alternate signal stack.
pub(super) const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTART`: a system call the signal interrupts starts again after the handler.
pub(super) const SA_RESTART: u64 = 0x1000_0000;
/// `SIG_DFL`.
pub(super) const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
pub(super) const SIG_IGN: u64 = 1;

/// `sigaltstack`: the program runs on the alternate stack.
pub(super) const SS_ONSTACK: u32 = 1;
/// `sigaltstack`: no alternate stack.
pub(super) const SS_DISABLE: u32 = 2;
/// `sigaltstack`: the stack is disabled while a handler runs on it.
pub(super) const SS_AUTODISARM: u32 = 1 << 31;
/// The smallest alternate stack `sigaltstack` accepts: the kernel's
/// `MINSIGSTKSZ` for x86 (not the C library's `sysconf` value).
pub(super) const MINSIGSTKSZ: u64 = 2048;

/// One signal's action: the kernel's `struct sigaction` on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// The return trampoline (`SA_RESTORER`).
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

impl SigAction {
    /// True when delivering `signal` with this action does nothing.
    pub(super) fn ignores(&self, signal: Signal) -> bool {
        self.handler == SIG_IGN || (self.handler == SIG_DFL && default_action(signal) == DefaultAction::Ignore)
    }
}

/// The signals whose action cannot be changed nor blocked.
pub(super) const UNCATCHABLE: u64 = bit(9) | bit(19);

pub(super) const fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

/// The stop signals: `SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`.
pub(super) const STOP_SIGNALS: u64 = bit(19) | bit(20) | bit(21) | bit(22);

/// What a signal's default action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DefaultAction {
    Terminate,
    Ignore,
    /// Stop the whole process until `SIGCONT` (the stop signals).
    Stop,
}

pub(super) fn default_action(signal: Signal) -> DefaultAction {
    match signal.0 {
        // SIGCHLD, SIGCONT (whose continuing happens when it is sent),
        // SIGURG, SIGWINCH.
        17 | 18 | 23 | 28 => DefaultAction::Ignore,
        19..=22 => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// What a process's parent may learn of it by `wait4`/`waitid` besides its
/// end: that it stopped (and by which signal) or continued. Each is
/// reported once (unless `WNOWAIT`); a later event replaces an unreported
/// one, as Linux keeps only the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobReport {
    /// Stopped by this signal.
    Stopped(u32),
    /// Continued by `SIGCONT`.
    Continued,
}

/// A process's job-control state (`ProcessState::job`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    /// True while the process is stopped: each of its threads waits at its
    /// next way back to ring 3 (or leaves a blocking call to wait there).
    pub stopped: bool,
    /// The stop or continue its parent has not waited for yet.
    pub report: Option<JobReport>,
}

/// What `prctl` keeps for a process (`ProcessState::options`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessOptions {
    /// `PR_SET_NAME`: the command name (`comm`), NUL-padded; `None`: the
    /// program's file name, as `execve` sets it.
    pub comm: Option<[u8; 16]>,
    /// `PR_SET_PDEATHSIG`: the signal sent when the parent ends (0: none).
    pub pdeath_signal: u32,
    /// `PR_SET_DUMPABLE`: 0 or 1.
    pub dumpable: u32,
    /// `PR_SET_NO_NEW_PRIVS`: once set, never cleared.
    pub no_new_privs: bool,
    /// `PR_SET_CHILD_SUBREAPER`: orphaned descendants come to this process
    /// rather than to the init.
    pub child_subreaper: bool,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions { comm: None, pdeath_signal: 0, dumpable: 1, no_new_privs: false, child_subreaper: false }
    }
}

impl ProcessOptions {
    /// A forked child's (Linux's `copy_process`): the name, dumpable and
    /// no-new-privs kept; no parent-death signal, not a subreaper.
    pub fn for_child(&self) -> ProcessOptions {
        ProcessOptions { pdeath_signal: 0, child_subreaper: false, ..*self }
    }

    /// After `execve`: the new program's name, dumpable again (the ids
    /// do not change here), the rest kept.
    pub fn for_exec(&self) -> ProcessOptions {
        ProcessOptions { comm: None, dumpable: 1, ..*self }
    }
}

/// An alternate signal stack, as the kernel keeps it: where, how large, and
/// the flags `sigaltstack` was given (`uc_stack` shows them as they are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    /// The lowest address (`ss_sp`).
    pub sp: u64,
    /// The size (0: none).
    pub size: u64,
    /// `ss_flags` as given (`SS_DISABLE`, `SS_AUTODISARM`, ...).
    pub flags: u32,
}

impl AltStack {
    /// True when stack pointer `sp` lies on the stack (Linux's
    /// `__on_sig_stack`: the stack grows down from `sp + size`).
    pub(super) fn contains(&self, sp: u64) -> bool {
        sp > self.sp && sp - self.sp <= self.size
    }

    /// Linux's `on_sig_stack`: never for a stack with `SS_AUTODISARM`.
    pub(super) fn is_on(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0 && self.contains(sp)
    }

    /// What `sigaltstack` reports for a program at `sp` (`sas_ss_flags`).
    pub(super) fn state_at(&self, sp: u64) -> u32 {
        if self.size == 0 {
            SS_DISABLE
        } else if self.is_on(sp) {
            SS_ONSTACK
        } else {
            0
        }
    }

    /// Linux's `do_sigaltstack` change: `EPERM` while the program (at `sp`)
    /// is on the stack, `EINVAL` for an unknown mode, `ENOMEM` below
    /// `MINSIGSTKSZ`.
    pub(super) fn change(&mut self, new: StackT, sp: u64) -> Result<(), Errno> {
        if self.is_on(sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
            return Err(Errno::EINVAL);
        }
        if self.sp == new.sp && self.size == new.size && self.flags == new.flags {
            return Ok(());
        }
        let (start, size) = if mode == SS_DISABLE {
            (0, 0)
        } else if new.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        } else {
            (new.sp, new.size)
        };
        *self = AltStack { sp: start, size, flags: new.flags };
        Ok(())
    }
}

/// `stack_t` in user memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StackT {
    pub(super) sp: u64,
    pub(super) flags: u32,
    pub(super) pad: u32,
    pub(super) size: u64,
}

/// The trap that ended a process, for `run`'s report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// The exception's vector.
    pub vector: u8,
    /// The error code the CPU pushed (a page fault's says what the access was).
    pub error_code: u64,
}

impl fmt::Display for FaultRecord {
    /// A page fault's error code in words, as Linux's `show_fault_oops`
    /// decodes it ("user read of a not-present page"); another exception's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vector != Fault::PAGE_FAULT {
            return write!(f, "{} (error code {:#x})", crate::arch::frame::vector_name(self.vector), self.error_code);
        }
        let code = PageFaultCode::from_bits_retain(self.error_code as u32);
        let who = if code.contains(PageFaultCode::USER) { "user" } else { "supervisor" };
        let access = if code.contains(PageFaultCode::FETCH) {
            "instruction fetch from"
        } else if code.contains(PageFaultCode::WRITE) {
            "write to"
        } else {
            "read of"
        };
        let page = if !code.contains(PageFaultCode::PRESENT) {
            "a not-present page"
        } else if code.contains(PageFaultCode::RESERVED) {
            "a page with a reserved bit set"
        } else if code.contains(PageFaultCode::PROTECTION_KEY) {
            "a page its protection key forbids"
        } else {
            "a present page, a permissions violation"
        };
        write!(f, "{who} {access} {page} (error code {:#x})", self.error_code)
    }
}

/// Where a pending signal came from: its `si_code`, the sending process
/// (`si_pid`, 0: the kernel) and, for `SIGCHLD`, the child's `si_status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// `si_code`.
    pub code: i32,
    /// `si_pid`.
    pub sender: u32,
    /// `si_status` (`SIGCHLD` only).
    pub status: i32,
}

/// What the kernel keeps of a process's signals besides the mask, the
/// pending set and the actions (`ProcessState::signal_extras`).
#[derive(Clone, Debug)]
pub struct SignalExtras {
    /// The alternate signal stack (`sigaltstack`).
    pub alt_stack: AltStack,
    /// Each pending signal's `si_code`, sender and status (signal `n` at `n - 1`).
    pub(super) sent: [Sent; NSIG as usize],
    /// The trap that ended the process, if one did (for `run`'s report).
    pub fault: Option<FaultRecord>,
    /// The process group (`getpgid`).
    pub pgid: u32,
    /// The session (`getsid`).
    pub sid: u32,
}

impl SignalExtras {
    /// A process the shell starts: the leader of a group and a session of
    /// its own, with no alternate stack.
    pub fn leader(pid: u32) -> SignalExtras {
        SignalExtras {
            alt_stack: AltStack::default(),
            sent: [Sent::default(); NSIG as usize],
            fault: None,
            pgid: pid,
            sid: pid,
        }
    }

    /// A forked child's: the parent's alternate stack, group and session,
    /// nothing pending.
    pub fn for_child(&self) -> SignalExtras {
        SignalExtras { fault: None, sent: [Sent::default(); NSIG as usize], ..self.clone() }
    }
}
