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
//! process (most), ignore (`SIGCHLD`, `SIGCONT`, `SIGURG`, `SIGWINCH`),
//! stop the process (`SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`: see
//! `user::jobs`; `SIGCONT` continues it when sent). The init (pid 1) gets no
//! signal whose action is the default, as Linux shields its init.
//!
//! `sigaltstack` sets an alternate stack; a handler installed with
//! `SA_ONSTACK` runs on it (unless the program is on it already), as
//! Linux's `get_sigframe` places the frame: at the stack's top, without a red
//! zone, and a frame that would not fit ends the program with `SIGSEGV`.
//! `SS_AUTODISARM` disables the stack while the handler runs; `rt_sigreturn`
//! restores it from `uc_stack`.
//!
//! Signals are delivered when the program returns to ring 3: at the end of
//! a system call, after a fault, and at the end of an interrupt that came
//! from ring 3 (so that a program spinning in a loop is reached: see
//! `user::mod`). A system call that blocks ([`interrupting`]) gives up when a
//! signal would be delivered: `EINTR`, or, for the calls Linux restarts
//! (`ERESTARTSYS`), a restart after a handler installed with `SA_RESTART`
//! ([`deliver_after_interrupted_call`]).
//!
//! Each process is its own process group and session leader when the shell
//! starts it; a forked child joins its parent's group ([`SignalExtras`]).
//! `kill` reaches a process, a group, the caller's group, or every process
//! but the caller and the init, among them only those the caller may
//! signal (`creds::may_signal`).

use super::copy;
use super::creds;
use super::errno::{Errno, SysResult};
use super::jobs;
use super::process::{self, Process};
pub use super::sigstate::*;
use super::sigstate::{
    bit, default_action, DefaultAction, StackT, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_RESTORER, SIG_DFL,
    SIG_IGN, SS_AUTODISARM, SS_DISABLE, STOP_SIGNALS, UNCATCHABLE,
};
use crate::arch::frame::TrapFrame;
use crate::arch::gdt::{USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use crate::arch::sse::{self, FxSaveArea};
use crate::arch::syscall::SYSCALL_VECTOR;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

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
            // An ignored signal pending now is discarded, as Linux does.
            if new.ignores(Signal(signal as u32)) {
                state.discard_pending(bit(signal as u32));
            }
        }
        previous
    };
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
}

/// Makes `signal` pending for `target`, sent with `si_code` `code` by
/// process `sender` (0: the kernel). It is delivered when `target` next
/// returns to ring 3, and interrupts a blocked system call. As Linux's
/// `prepare_signal`: `SIGCONT` continues a stopped process and discards its
/// pending stop signals, a stop signal discards a pending `SIGCONT`, and
/// the init does not get a signal whose action is the default (except the
/// kernel's own `SIGKILL`).
pub fn send(target: &Process, signal: Signal, code: i32, sender: u32) {
    send_to(target, None, signal, code, sender);
}

/// [`send`], to one thread of `target` (`thread`: its tid) or to the
/// process (`None`). Only that thread takes a signal sent to it, when it
/// does not block it; `SIGKILL` always goes to the process, which it ends.
fn send_to(target: &Process, thread: Option<u32>, signal: Signal, code: i32, sender: u32) {
    if signal.0 == 0 || signal.0 > NSIG {
        return;
    }
    if process::is_init(target) {
        let action = target.state.lock().actions[signal.0 as usize - 1];
        let forced = signal == Signal::SIGKILL && sender == 0 && code == code::SI_KERNEL;
        if action.handler == SIG_DFL && !forced {
            return;
        }
    }
    if signal == Signal::SIGCONT {
        jobs::continue_process(target);
    } else if STOP_SIGNALS & bit(signal.0) != 0 {
        jobs::before_stop_signal(target);
    }
    let thread = thread.filter(|_| signal != Signal::SIGKILL);
    // A thread asleep in a futex wait or a `wait4`, or stopped, looks again.
    process::post(target, thread, signal.0, Sent { code, sender, status: 0 });
}

/// Sends `signal` to every process of group `pgid`; how many there were.
pub fn send_to_group(pgid: u32, signal: Signal, code: i32, sender: u32) -> usize {
    let members: Vec<Arc<Process>> =
        process::all().into_iter().filter(|process| process.state.lock().signal_extras.pgid == pgid).collect();
    for member in &members {
        send(member, signal, code, sender);
    }
    members.len()
}

/// Continues the stopped processes of group `pgid` (`SIGCONT`, sent by
/// the kernel), leaving the others alone; how many there were.
pub fn continue_stopped_in_group(pgid: u32) -> usize {
    let stopped: Vec<Arc<Process>> = process::all()
        .into_iter()
        .filter(|process| {
            let state = process.state.lock();
            state.signal_extras.pgid == pgid && state.job.stopped && !state.ended
        })
        .collect();
    for process in &stopped {
        send(process, Signal::SIGCONT, code::SI_KERNEL, 0);
    }
    stopped.len()
}

/// `kill(pid, signal)`: a process (`pid` > 0), the caller's group (0), a
/// group (`-pgid`), or every process but the caller and the init (-1).
/// Linux's order: `ESRCH` when nobody matches, then `EINVAL` for a bad
/// signal; the processes the caller may not signal (`creds::may_signal`)
/// are passed over, and `EPERM` comes when there is none it may signal,
/// except for -1, which succeeds then (Linux's `kill_something_info`
/// counts an `EPERM` as no error).
pub fn kill(process: &Process, pid: i64, signal: u64) -> SysResult {
    let own_group = process.state.lock().signal_extras.pgid;
    let targets: Vec<Arc<Process>> = process::all()
        .into_iter()
        .filter(|target| match pid {
            1.. => target.pid as i64 == pid,
            0 => target.state.lock().signal_extras.pgid == own_group,
            -1 => target.pid != process.pid && target.pid != process::INIT_PID,
            _ => target.state.lock().signal_extras.pgid as i64 == -pid,
        })
        .collect();
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    if signal > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    // Only the processes the caller may signal.
    let sender = creds::credentials(process);
    let allowed: Vec<&Arc<Process>> =
        targets.iter().filter(|target| creds::may_signal(&sender, &creds::credentials(target))).collect();
    if allowed.is_empty() && pid != -1 {
        return Err(Errno::EPERM);
    }
    if signal != 0 {
        for target in allowed {
            send(target, Signal(signal as u32), code::SI_USER, process.pid);
        }
    }
    Ok(0)
}

/// `tkill(tid, signal)` and `tgkill(tgid, tid, signal)` (`tgid` `None` for
/// `tkill`): the signal goes to thread `tid` (of process `tgid`), which
/// alone takes it. Linux's order: `EINVAL` for an id that is not
/// positive, `ESRCH` when no such thread is (in that process), then
/// `EINVAL` for a bad signal and `EPERM`.
pub fn tkill(process: &Process, tgid: Option<i64>, tid: i64, signal: u64) -> SysResult {
    if tid <= 0 || tgid.is_some_and(|tgid| tgid <= 0) {
        return Err(Errno::EINVAL);
    }
    // The first thread's id is the pid, found while the process is (as a
    // zombie too, as Linux finds its group leader until it is reaped).
    let holds = |target: &Arc<Process>| {
        target.pid as i64 == tid || u32::try_from(tid).is_ok_and(|tid| target.state.lock().threads.contains_key(&tid))
    };
    let target = process::all().into_iter().find(holds).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|tgid| tgid != target.pid as i64) {
        return Err(Errno::ESRCH);
    }
    if signal > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if !creds::may_signal(&creds::credentials(process), &creds::credentials(&target)) {
        return Err(Errno::EPERM);
    }
    if signal != 0 {
        send_to(&target, Some(tid as u32), Signal(signal as u32), code::SI_TKILL, process.pid);
    }
    Ok(0)
}

/// `rt_sigpending(set, sigsetsize)`: the pending signals that are blocked.
pub fn sigpending(process: &Process, set: u64, size: u64) -> SysResult {
    if size > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = {
        let state = process.state.lock();
        state.pending_here() & state.mask()
    };
    copy::write(set, &pending.to_le_bytes()[..size as usize])?;
    Ok(0)
}

/// True when a signal would be delivered now (pending, not blocked, not
/// ignored): a blocked system call gives up. Pending signals that are
/// ignored are discarded on the way, as Linux never queues them.
/// A stopped process interrupts too: its blocked calls leave to stop.
pub fn interrupting(process: &Process) -> bool {
    process.state.lock().interrupted()
}

/// True when a signal is pending and not blocked, or the process is
/// stopped: the program should go through [`deliver_pending`] before it
/// runs again.
pub fn has_ready(process: &Process) -> bool {
    // Nothing pending and no stop (the common case): no lock.
    if !process.signal_hint.load(Ordering::Acquire) {
        return false;
    }
    let state = process.state.lock();
    state.job.stopped || state.pending_here() & !state.mask() != 0
}

/// Carries out the stops before the program runs again: while the process
/// is stopped (by another thread) the running thread waits, and while the
/// first ready signal is a stop signal whose action is the default, it is
/// taken and stops the process ([`jobs::stop`]). Returns when the process
/// runs on, or when `SIGKILL` or its end is coming. A sleep (`nanosleep`,
/// `pause`) calls it as it waits, so that a stop and a continue do not cut
/// it short: Linux restarts those calls when no handler ran.
pub fn settle_stops(process: &Process) {
    loop {
        let stop = {
            let mut state = process.state.lock();
            if process.exiting() || state.pending & bit(Signal::SIGKILL.0) != 0 {
                return;
            }
            if state.job.stopped {
                None
            } else {
                // Nothing pending (the common case): no mask to look up.
                let pending = state.pending_here();
                if pending == 0 {
                    return;
                }
                let ready = pending & !state.mask();
                if ready == 0 {
                    return;
                }
                let signal = ready.trailing_zeros() + 1;
                let action = state.actions[signal as usize - 1];
                if action.handler != SIG_DFL || default_action(Signal(signal)) != DefaultAction::Stop {
                    return;
                }
                state.take_pending(signal);
                Some(signal)
            }
        };
        match stop {
            // The init is not stopped (a stop signal that reached it came from the kernel).
            Some(_) if process::is_init(process) => {}
            Some(signal) => jobs::stop(process, signal),
            None => jobs::wait_while_stopped(process),
        }
    }
}

/// How long a blocked system call sleeps between two looks at what it
/// waits for and at the pending signals.
pub const WAIT_POLL_MS: u64 = 1;

/// What became of a signal: the program goes on (in its handler, or where
/// it was), or it ends.
pub enum Outcome {
    /// Resume the program with the frame as it now is.
    Resume,
    /// End the process with this signal.
    Terminate(SignalInfo),
}

/// True when `frame` holds a system call that returned `ERESTARTSYS`: the
/// caller of the table decides (see [`deliver_after_interrupted_call`]).
// Inlined: on the path of every system call (DESIGN.md, "Inlining").
#[inline(always)]
fn interrupted_call(frame: &TrapFrame) -> bool {
    frame.vector == SYSCALL_VECTOR && frame.rax == Errno::ERESTARTSYS.to_return()
}

/// Delivers the first pending signal that is not blocked, if any, by
/// changing `frame` (the program's state on return to ring 3). A system
/// call that returned `ERESTARTSYS` is left to
/// [`deliver_after_interrupted_call`].
// Inlined: on the path of every system call (DESIGN.md, "Inlining");
// the rest is `deliver_hinted`, out of line.
#[inline(always)]
pub fn deliver_pending(process: &Process, frame: &mut TrapFrame) -> Outcome {
    if interrupted_call(frame) {
        return Outcome::Resume;
    }
    // Nothing pending and no stop (the common case): no lock at all.
    if !process.signal_hint.load(Ordering::Acquire) {
        return Outcome::Resume;
    }
    deliver_hinted(process, frame)
}

/// [`deliver_pending`] once the process's hint says a signal or a stop may
/// be waiting.
#[inline(never)]
fn deliver_hinted(process: &Process, frame: &mut TrapFrame) -> Outcome {
    {
        let state = process.state.lock();
        if !state.any_pending() && !state.job.stopped && !process.exiting() {
            // Cleared under the lock that every setter holds.
            process.signal_hint.store(false, Ordering::Release);
            return Outcome::Resume;
        }
    }
    settle_stops(process);
    let (signal, sent) = {
        let mut state = process.state.lock();
        // Nothing pending (the common case): the thread's mask is not looked up.
        let pending = state.pending_here();
        if pending == 0 {
            return Outcome::Resume;
        }
        let ready = pending & !state.mask();
        if ready == 0 {
            return Outcome::Resume;
        }
        let signal = ready.trailing_zeros() + 1;
        state.take_pending(signal);
        let sent = state.signal_extras.sent[signal as usize - 1];
        if sent.code == code::SI_TIMER {
            // Its overrun, as `timer_getoverrun` reports it from now on
            // (the sender of a timer's signal is the timer's id).
            if let Some(timer) = state.posix_timers.get_mut(&(sent.sender as i32)) {
                timer.overrun_last = timer.overrun;
            }
        }
        (signal, sent)
    };
    let info = SignalInfo { signal: Signal(signal), code: sent.code, addr: 0 };
    deliver_from(process, frame, info, false, sent)
}

/// After system call `number` returned `ERESTARTSYS` (it blocked, and a
/// signal came): the signal is delivered, and the call returns `EINTR` to
/// a handler without `SA_RESTART`, or starts again (after the handler, or
/// at once when nothing is delivered), as Linux's `handle_signal` and
/// `arch_do_signal_or_restart` do.
pub fn deliver_after_interrupted_call(process: &Process, frame: &mut TrapFrame, number: u64) -> Outcome {
    // The `syscall` instruction is two bytes long.
    let restart = |frame: &mut TrapFrame| {
        frame.rax = number;
        frame.rip = frame.rip.wrapping_sub(2);
    };
    // A stop first: the call starts again once the process continues,
    // unless a signal with a handler comes meanwhile.
    settle_stops(process);
    if !interrupting(process) {
        restart(frame);
        return Outcome::Resume;
    }
    let action = {
        let state = process.state.lock();
        let ready = state.pending_here() & !state.mask();
        if ready == 0 {
            drop(state);
            restart(frame);
            return Outcome::Resume;
        }
        state.actions[ready.trailing_zeros() as usize]
    };
    if action.handler == SIG_DFL || action.handler == SIG_IGN {
        // The default action ends the process (ignored ones were discarded).
        frame.rax = Errno::EINTR.to_return();
    } else if action.flags & SA_RESTART != 0 {
        restart(frame);
    } else {
        frame.rax = Errno::EINTR.to_return();
    }
    deliver_pending(process, frame)
}

/// Delivers `info` to the program whose state is `frame`: runs its handler
/// (changing `frame`), ignores it, or says the process ends. `forced`: the
/// program's own fault raised it, so being blocked or ignored does not save
/// it (Linux's `force_sig_fault`).
pub fn deliver(process: &Process, frame: &mut TrapFrame, info: SignalInfo, forced: bool) -> Outcome {
    deliver_from(process, frame, info, forced, Sent::default())
}

/// [`deliver`], for a signal sent as `sent` says (`si_pid`, `si_status`).
fn deliver_from(process: &Process, frame: &mut TrapFrame, info: SignalInfo, forced: bool, sent: Sent) -> Outcome {
    let index = info.signal.0 as usize - 1;
    let (action, mask, alt_stack) = {
        let mut state = process.state.lock();
        let blocked = state.mask() & bit(info.signal.0) != 0;
        if forced && (blocked || state.actions[index].handler == SIG_IGN) {
            state.actions[index].handler = SIG_DFL;
            *state.mask_mut() &= !bit(info.signal.0);
        }
        (state.actions[index], state.mask(), state.signal_extras.alt_stack)
    };
    match action.handler {
        // The init is shielded from the default actions (Linux's
        // SIGNAL_UNKILLABLE), but not from its own faults.
        SIG_DFL if !forced && info.signal != Signal::SIGKILL && process::is_init(process) => Outcome::Resume,
        SIG_DFL => match default_action(info.signal) {
            DefaultAction::Terminate => Outcome::Terminate(info),
            DefaultAction::Ignore => Outcome::Resume,
            DefaultAction::Stop if forced || process::is_init(process) => Outcome::Resume,
            DefaultAction::Stop => {
                jobs::stop(process, info.signal.0);
                Outcome::Resume
            }
        },
        SIG_IGN => Outcome::Resume,
        handler => {
            let place = Placement { action: &action, handler, mask, alt_stack: &alt_stack, sent };
            if action.flags & SA_RESTORER == 0 || push_frame(frame, &info, &place).is_err() {
                // No way back from the handler, or no room for its frame:
                // Linux sends SIGSEGV, which ends the process here.
                return Outcome::Terminate(SignalInfo { signal: Signal::SIGSEGV, code: code::SI_KERNEL, addr: 0 });
            }
            let mut state = process.state.lock();
            let mask = state.mask_mut();
            *mask |= action.mask | if action.flags & SA_NODEFER == 0 { bit(info.signal.0) } else { 0 };
            *mask &= !UNCATCHABLE;
            if action.flags & SA_RESETHAND != 0 {
                state.actions[index] = SigAction::default();
            }
            if alt_stack.flags & SS_AUTODISARM != 0 {
                // Until the handler returns (rt_sigreturn restores it).
                state.signal_extras.alt_stack = AltStack { sp: 0, size: 0, flags: SS_DISABLE };
            }
            Outcome::Resume
        }
    }
}

/// `sigaltstack(new, old)` for a program whose stack pointer is `sp`.
pub fn sigaltstack(process: &Process, new: u64, old: u64, sp: u64) -> SysResult {
    let wanted = if new != 0 { Some(copy::read_value::<StackT>(new)?) } else { None };
    let previous = {
        let mut state = process.state.lock();
        let alt = &mut state.signal_extras.alt_stack;
        let previous =
            StackT { sp: alt.sp, flags: alt.state_at(sp) | (alt.flags & SS_AUTODISARM), pad: 0, size: alt.size };
        if let Some(wanted) = wanted {
            alt.change(wanted, sp)?;
        }
        previous
    };
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
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

/// `struct ucontext` (x86-64): flags, link, the signal stack (`stack_t`),
/// the registers, the signal mask.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UContext {
    flags: u64,
    link: u64,
    stack: StackT,
    mcontext: SigContext,
    sigmask: u64,
}

/// `siginfo_t` for the signals sent here: number, errno, code, then the
/// union: the address (faults), or the sender's pid and uid.
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

/// The x87/SSE state of the interrupted program: the live x87 part and
/// MXCSR (unless `frame` asks for another), and the xmm registers the trap
/// saved in `frame`.
fn fpu_image(frame: &TrapFrame) -> FxSaveArea {
    let mut area = FxSaveArea::new();
    sse::save_fpu(&mut area);
    area.0[24..28].copy_from_slice(&sse::mxcsr_after(frame.sse.mxcsr).to_le_bytes());
    for (index, register) in frame.sse.xmm.iter().enumerate() {
        area.0[160 + index * 16..176 + index * 16].copy_from_slice(register);
    }
    area
}

/// What a handler's frame needs besides the program's state.
struct Placement<'a> {
    action: &'a SigAction,
    handler: u64,
    /// The blocked signals before delivery (saved in `uc_sigmask`).
    mask: u64,
    alt_stack: &'a AltStack,
    /// The sender's pid for a signal a process sent, and a child's status
    /// for `SIGCHLD`.
    sent: Sent,
}

/// Builds the handler's `rt_sigframe` where Linux's `get_sigframe` puts it
/// (below the red zone, or at the top of the alternate stack) and points
/// `frame` at the handler.
fn push_frame(frame: &mut TrapFrame, info: &SignalInfo, place: &Placement<'_>) -> Result<(), Errno> {
    const RED_ZONE: u64 = 128;
    let alt = place.alt_stack;
    let nested = alt.is_on(frame.rsp);
    let mut top = frame.rsp.checked_sub(RED_ZONE).ok_or(Errno::EFAULT)?;
    let mut entering = false;
    if place.action.flags & SA_ONSTACK != 0 && alt.state_at(top) == 0 {
        top = alt.sp.wrapping_add(alt.size);
        entering = true;
    }
    let fpstate = (top.checked_sub(512).ok_or(Errno::EFAULT)?) & !63;
    let size = core::mem::size_of::<RtSigFrame>() as u64;
    let sigframe = ((fpstate.checked_sub(size).ok_or(Errno::EFAULT)?) & !15) - 8;
    if (nested || entering) && !alt.contains(sigframe) {
        // The frame would overflow the alternate stack.
        return Err(Errno::EFAULT);
    }
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
        oldmask: place.mask,
        cr2: info.addr,
        fpstate,
        reserved: [0; 8],
    };
    // A signal a process sent carries its pid (and uid 0) where a fault's
    // carries the address; a child's SIGCHLD its pid and status.
    let chld = info.signal == Signal::SIGCHLD && info.code > 0;
    let union = if info.code <= 0 || chld { place.sent.sender as u64 } else { info.addr };
    let mut rest = [0; 13];
    if chld {
        rest[0] = place.sent.status as u32 as u64;
    }
    let image = RtSigFrame {
        restorer: place.action.restorer,
        context: UContext {
            flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            link: 0,
            stack: StackT { sp: alt.sp, flags: alt.flags, pad: 0, size: alt.size },
            mcontext: context,
            sigmask: place.mask,
        },
        info: SigInfo { signo: info.signal.0 as i32, errno: 0, code: info.code, pad: 0, addr: union, rest },
    };
    copy::write(fpstate, &fpu_image(frame).0)?;
    copy::write_value(sigframe, &image)?;
    frame.rdi = info.signal.0 as u64;
    frame.rsi = sigframe + core::mem::offset_of!(RtSigFrame, info) as u64;
    frame.rdx = sigframe + core::mem::offset_of!(RtSigFrame, context) as u64;
    frame.rax = 0;
    frame.rsp = sigframe;
    frame.rip = place.handler;
    frame.cs = USER_CODE_SELECTOR as u64;
    frame.ss = USER_DATA_SELECTOR as u64;
    // DF and TF clear in the handler, as the ABI and Linux want.
    frame.rflags &= !(1 << 10 | 1 << 8 | 1 << 16);
    frame.sse.mxcsr = 0x1f80;
    Ok(())
}

/// `rt_sigreturn`: restores the state the frame at the program's stack
/// pointer saved (`frame.rsp - 8`: the handler's `ret` popped the
/// restorer), then the alternate stack from `uc_stack` (as Linux's
/// `restore_altstack`: refused silently while the restored program is on
/// it). A frame that cannot be read, or that names a return address
/// outside user space, ends the process with SIGSEGV.
pub fn sigreturn(process: &Process, frame: &mut TrapFrame) -> Result<(), SignalInfo> {
    let segv = SignalInfo { signal: Signal::SIGSEGV, code: code::SI_KERNEL, addr: 0 };
    let address = frame.rsp.wrapping_sub(8);
    let saved: RtSigFrame = copy::read_value(address).map_err(|_| segv)?;
    let context = saved.context.mcontext;
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
    // The flags the program may set come from the context; the others (NT
    // included) stay as they were at the call, as Linux's FIX_EFLAGS does.
    frame.rflags = crate::arch::syscall::restore_user_rflags(frame.rflags, context.eflags);
    frame.cs = USER_CODE_SELECTOR as u64;
    frame.ss = USER_DATA_SELECTOR as u64;
    {
        let mut state = process.state.lock();
        *state.mask_mut() = saved.context.sigmask & !UNCATCHABLE;
        let _ = state.signal_extras.alt_stack.change(saved.context.stack, frame.rsp);
    }
    // A RIP the return cannot reach (past user space, or not canonical):
    // `iretq` would fault in the kernel; the program gets that fault's
    // SIGSEGV instead, with this frame as its context.
    if frame.rip >= super::layout::user_top() {
        return Err(segv);
    }
    Ok(())
}
