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
//! A user access to a kernel page (`k`) is `SEGV_MAPERR`, as on Linux,
//! where no mapping of the program's is there; the page-table entry is
//! present, supervisor-only, and the CPU's error code says "protection".
//!
//! Delivery, as Linux's `arch/x86/kernel/signal.c`: a handler installed with
//! `rt_sigaction` (and `SA_RESTORER`, which every C library passes) runs on
//! the program's stack, below the 128-byte red zone, with a `struct
//! rt_sigframe`: the restorer's address, the `ucontext` (the interrupted
//! registers in `uc_mcontext`, the blocked signals before delivery in
//! `uc_sigmask`, `fpstate` pointing at the `fxsave` image of the x87/SSE
//! state, 64-byte aligned, above the frame), then the `siginfo`. At entry
//! RDI is the signal, RSI the `siginfo`, RDX the `ucontext`, and RSP + 8 a
//! multiple of 16. `rt_sigreturn` restores all of it, keeping the segment
//! selectors and the privileged flags the kernel's own. A signal raised by
//! the program's own fault while blocked or ignored takes the default
//! action, as Linux's `force_sig_fault` does. Default actions: end the
//! process (most), ignore (`SIGCHLD`, `SIGCONT`, `SIGURG`, `SIGWINCH`); the
//! stop signals are ignored too (there is no job control yet). There is no
//! alternate signal stack (`sigaltstack` answers `ENOSYS`).

use super::copy;
use super::errno::{Errno, SysResult};
use super::process::Process;
use crate::arch::frame::TrapFrame;
use crate::arch::gdt::{USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use crate::arch::sse::{self, FxSaveArea};
use aspace::{Fault, Protection, UnhandledFault};

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
            UnhandledFault::Forbidden { region, .. } if region.prot.contains(Protection::KERN) => {
                info(Signal::SIGSEGV, code::SEGV_MAPERR, fault.addr)
            }
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
/// `SA_SIGINFO`: the handler takes three arguments (always passed here).
const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`: back to the default action once delivered.
const SA_RESETHAND: u64 = 0x8000_0000;
/// `SA_RESTORER`: `restorer` holds the return trampoline (calls `rt_sigreturn`).
const SA_RESTORER: u64 = 0x0400_0000;
/// `SIG_DFL`.
const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
const SIG_IGN: u64 = 1;

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

/// The signals whose action cannot be changed nor blocked.
const UNCATCHABLE: u64 = bit(9) | bit(19);

const fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

/// What a signal's default action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultAction {
    Terminate,
    Ignore,
}

fn default_action(signal: Signal) -> DefaultAction {
    match signal.0 {
        // SIGCHLD, SIGCONT, SIGURG, SIGWINCH; and the stop signals SIGSTOP,
        // SIGTSTP, SIGTTIN, SIGTTOU (no job control: not stopped).
        17 | 18 | 23 | 28 | 19 | 20 | 21 | 22 => DefaultAction::Ignore,
        _ => DefaultAction::Terminate,
    }
}

/// `rt_sigaction(signal, act, oldact, sigsetsize)`.
pub fn sigaction(process: &Process, signal: u64, act: u64, old: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    if signal == 0 || signal > NSIG as u64 || (act != 0 && UNCATCHABLE & bit(signal as u32) != 0) {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 { Some(copy::read_value::<SigAction>(act)?) } else { None };
    let previous = {
        let mut state = process.state.lock();
        let slot = &mut state.actions[signal as usize - 1];
        let previous = *slot;
        if let Some(mut new) = new {
            new.mask &= !UNCATCHABLE;
            *slot = new;
        }
        previous
    };
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
}

/// `kill(pid, signal)` and `tgkill`: only the calling process can be
/// reached (there is one process per program, and no process groups yet).
pub fn kill(process: &Process, pid: i64, signal: u64) -> SysResult {
    if signal > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if pid != process.pid as i64 && pid != 0 && pid != -1 && pid != -(process.pid as i64) {
        return Err(Errno::ESRCH);
    }
    if signal != 0 {
        process.state.lock().pending |= bit(signal as u32);
    }
    Ok(0)
}

/// What became of a signal: the program goes on (in its handler, or where
/// it was), or it ends.
pub enum Outcome {
    /// Resume the program with the frame as it now is.
    Resume,
    /// End the process with this signal.
    Terminate(SignalInfo),
}

/// Delivers the first pending signal that is not blocked, if any, by
/// changing `frame` (the program's state on return from a system call).
pub fn deliver_pending(process: &Process, frame: &mut TrapFrame) -> Outcome {
    let signal = {
        let mut state = process.state.lock();
        let ready = state.pending & !state.signal_mask;
        if ready == 0 {
            return Outcome::Resume;
        }
        let signal = ready.trailing_zeros() + 1;
        state.pending &= !bit(signal);
        signal
    };
    let info = SignalInfo { signal: Signal(signal), code: 0, addr: 0 }; // SI_USER
    deliver(process, frame, info, false)
}

/// Delivers `info` to the program whose state is `frame`: runs its handler
/// (changing `frame`), ignores it, or says the process ends. `forced`: the
/// program's own fault raised it, so being blocked or ignored does not save
/// it (Linux's `force_sig_fault`).
pub fn deliver(process: &Process, frame: &mut TrapFrame, info: SignalInfo, forced: bool) -> Outcome {
    let index = info.signal.0 as usize - 1;
    let (action, mask) = {
        let mut state = process.state.lock();
        let blocked = state.signal_mask & bit(info.signal.0) != 0;
        if forced && (blocked || state.actions[index].handler == SIG_IGN) {
            state.actions[index].handler = SIG_DFL;
            state.signal_mask &= !bit(info.signal.0);
        }
        (state.actions[index], state.signal_mask)
    };
    match action.handler {
        SIG_DFL => match default_action(info.signal) {
            DefaultAction::Terminate => Outcome::Terminate(info),
            DefaultAction::Ignore => Outcome::Resume,
        },
        SIG_IGN => Outcome::Resume,
        handler => {
            if action.flags & SA_RESTORER == 0 || push_frame(frame, &info, &action, handler, mask).is_err() {
                // No way back from the handler, or no room for its frame:
                // Linux sends SIGSEGV, which ends the process here.
                return Outcome::Terminate(SignalInfo { signal: Signal::SIGSEGV, code: code::SI_KERNEL, addr: 0 });
            }
            let mut state = process.state.lock();
            state.signal_mask |= action.mask | if action.flags & SA_NODEFER == 0 { bit(info.signal.0) } else { 0 };
            state.signal_mask &= !UNCATCHABLE;
            if action.flags & SA_RESETHAND != 0 {
                state.actions[index] = SigAction::default();
            }
            Outcome::Resume
        }
    }
}

/// `struct sigcontext` of x86-64 (256 bytes with the reserved words).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}

/// `struct ucontext` (x86-64): flags, link, the signal stack, the
/// registers, the signal mask.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UContext {
    flags: u64,
    link: u64,
    stack_sp: u64,
    stack_flags: u64,
    stack_size: u64,
    mcontext: SigContext,
    sigmask: u64,
}

/// `siginfo_t` for the signals sent here: number, errno, code, then the
/// address (faults) in the union.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigInfo {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    addr: u64,
    rest: [u64; 13],
}

/// `struct rt_sigframe`: the return address, the context, the information.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RtSigFrame {
    restorer: u64,
    context: UContext,
    info: SigInfo,
}

const _: () = assert!(core::mem::size_of::<SigContext>() == 256);
const _: () = assert!(core::mem::size_of::<SigInfo>() == 128);
const _: () = assert!(core::mem::size_of::<UContext>() == 304);

/// `UC_FP_XSTATE` is not set: the FPU image is `fxsave`'s. These two say the
/// saved SS is meaningful and restored strictly, as Linux sets them.
const UC_SIGCONTEXT_SS: u64 = 0x2;
const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// The x87/SSE state of the interrupted program: the live x87 part, and the
/// SSE registers the trap saved in `frame`.
fn fpu_image(frame: &TrapFrame) -> FxSaveArea {
    let mut area = FxSaveArea::new();
    sse::save_fpu(&mut area);
    area.0[24..28].copy_from_slice(&frame.sse.mxcsr.to_le_bytes());
    for (index, register) in frame.sse.xmm.iter().enumerate() {
        area.0[160 + index * 16..176 + index * 16].copy_from_slice(register);
    }
    area
}

fn push_frame(
    frame: &mut TrapFrame,
    info: &SignalInfo,
    action: &SigAction,
    handler: u64,
    mask: u64,
) -> Result<(), Errno> {
    const RED_ZONE: u64 = 128;
    let fpstate = (frame.rsp.checked_sub(RED_ZONE + 512).ok_or(Errno::EFAULT)?) & !63;
    let size = core::mem::size_of::<RtSigFrame>() as u64;
    let sigframe = ((fpstate.checked_sub(size).ok_or(Errno::EFAULT)?) & !15) - 8;
    let context = SigContext {
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rdi: frame.rdi,
        rsi: frame.rsi,
        rbp: frame.rbp,
        rbx: frame.rbx,
        rdx: frame.rdx,
        rax: frame.rax,
        rcx: frame.rcx,
        rsp: frame.rsp,
        rip: frame.rip,
        eflags: frame.rflags,
        cs: frame.cs as u16,
        gs: 0,
        fs: 0,
        ss: frame.ss as u16,
        err: if frame.vector < 32 { frame.error_code } else { 0 },
        trapno: if frame.vector < 32 { frame.vector } else { 0 },
        oldmask: mask,
        cr2: info.addr,
        fpstate,
        reserved: [0; 8],
    };
    let image = RtSigFrame {
        restorer: action.restorer,
        context: UContext {
            flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            link: 0,
            stack_sp: 0,
            stack_flags: 2, // SS_DISABLE: no alternate stack
            stack_size: 0,
            mcontext: context,
            sigmask: mask,
        },
        info: SigInfo {
            signo: info.signal.0 as i32,
            errno: 0,
            code: info.code,
            pad: 0,
            addr: info.addr,
            rest: [0; 13],
        },
    };
    copy::write(fpstate, &fpu_image(frame).0)?;
    copy::write_value(sigframe, &image)?;
    frame.rdi = info.signal.0 as u64;
    frame.rsi = sigframe + core::mem::offset_of!(RtSigFrame, info) as u64;
    frame.rdx = sigframe + core::mem::offset_of!(RtSigFrame, context) as u64;
    frame.rax = 0;
    frame.rsp = sigframe;
    frame.rip = handler;
    frame.cs = USER_CODE_SELECTOR as u64;
    frame.ss = USER_DATA_SELECTOR as u64;
    // DF and TF clear in the handler, as the ABI and Linux want.
    frame.rflags &= !(1 << 10 | 1 << 8);
    frame.sse.mxcsr = 0x1f80;
    Ok(())
}

/// `rt_sigreturn`: restores the state the frame at the program's stack
/// pointer saved (`frame.rsp - 8`: the handler's `ret` popped the
/// restorer). A frame that cannot be read, or that names a return address
/// outside user space, ends the process with SIGSEGV.
pub fn sigreturn(process: &Process, frame: &mut TrapFrame) -> Result<(), SignalInfo> {
    let segv = SignalInfo { signal: Signal::SIGSEGV, code: code::SI_KERNEL, addr: 0 };
    let address = frame.rsp.wrapping_sub(8);
    let saved: RtSigFrame = copy::read_value(address).map_err(|_| segv)?;
    let context = saved.context.mcontext;
    if context.rip >= super::layout::user_top() {
        return Err(segv);
    }
    let mut fpu = FxSaveArea::new();
    if context.fpstate != 0 {
        copy::read(context.fpstate, &mut fpu.0).map_err(|_| segv)?;
        sse::restore_fpu(&mut fpu);
        frame.sse.mxcsr = u32::from_le_bytes([fpu.0[24], fpu.0[25], fpu.0[26], fpu.0[27]]);
        for (index, register) in frame.sse.xmm.iter_mut().enumerate() {
            register.copy_from_slice(&fpu.0[160 + index * 16..176 + index * 16]);
        }
    }
    frame.r8 = context.r8;
    frame.r9 = context.r9;
    frame.r10 = context.r10;
    frame.r11 = context.r11;
    frame.r12 = context.r12;
    frame.r13 = context.r13;
    frame.r14 = context.r14;
    frame.r15 = context.r15;
    frame.rdi = context.rdi;
    frame.rsi = context.rsi;
    frame.rbp = context.rbp;
    frame.rbx = context.rbx;
    frame.rdx = context.rdx;
    frame.rax = context.rax;
    frame.rcx = context.rcx;
    frame.rsp = context.rsp;
    frame.rip = context.rip;
    frame.rflags = crate::arch::syscall::user_rflags(context.eflags);
    frame.cs = USER_CODE_SELECTOR as u64;
    frame.ss = USER_DATA_SELECTOR as u64;
    process.state.lock().signal_mask = saved.context.sigmask & !UNCATCHABLE;
    Ok(())
}
