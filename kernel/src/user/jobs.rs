//! Job control: stopping and continuing a process, and the waits that see
//! it (`wait4`, `waitid`).
//!
//! A stop signal (`SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`) whose action
//! is the default stops the whole process when a thread takes it on its way
//! back to ring 3 ([`stop`]): the process is marked stopped, its parent
//! hears of it (`SIGCHLD` with `CLD_STOPPED`, unless its `SIGCHLD` action
//! has `SA_NOCLDSTOP` or is ignored, and a wake of its `wait4`), and the
//! thread waits on the process event queue without using the CPU. Every
//! other thread of the process waits at its next way back to ring 3, and a
//! thread blocked in a call leaves it (`ERESTARTSYS`) to wait there, the
//! call starting again once the process continues. `SIGCONT`, whenever it
//! is sent ([`continue_process`]), discards the pending stop signals and
//! continues a stopped process (whatever its action or mask), which its
//! parent hears of with `CLD_CONTINUED`; a stop signal sent discards a
//! pending `SIGCONT`. `SIGKILL` ends a stopped process: its threads leave
//! the wait and die.
//!
//! The waits ([`wait4`], [`waitid`]) are Linux's `do_wait` with its
//! validation order (`kernel/exit.c`): they report an ended child, a stopped
//! one (`WUNTRACED`/`WSTOPPED`, once) and a continued one (`WCONTINUED`,
//! once), and give up with `ERESTARTSYS` when a signal comes while they
//! block (so `EINTR`, or a restart after an `SA_RESTART` handler).
//!
//! Not done: a group stop is not reported to the parent only once every
//! thread has stopped (it is reported when the first thread stops);
//! `SIGTSTP`, `SIGTTIN` and `SIGTTOU` still stop a process in an orphaned
//! process group (Linux discards them); `__WCLONE` and `__WALL` are
//! accepted and do not change which children a wait sees.

use super::copy;
use super::creds;
use super::errno::{Errno, SysResult};
use super::process::{self, Process, Rusage, WaitEvent, WaitOptions, WaitTarget, Waited};
use super::sigstate::{bit, code, JobReport, Sent, Signal, STOP_SIGNALS};

const WNOHANG: u64 = 0x1;
const WUNTRACED: u64 = 0x2;
const WSTOPPED: u64 = WUNTRACED;
const WEXITED: u64 = 0x4;
const WCONTINUED: u64 = 0x8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// The status `wait4` writes for `event` (`<sys/wait.h>`'s encoding).
fn wait_status(event: WaitEvent) -> u32 {
    match event {
        WaitEvent::Ended(status) => status.wait_status(),
        WaitEvent::Stopped(signal) => (signal << 8) | 0x7f,
        WaitEvent::Continued => 0xffff,
    }
}

/// `wait4(pid, status, options, rusage)`: a child (`pid` > 0), any (-1),
/// one of the caller's group (0) or of group `-pid`; `WNOHANG`, `WUNTRACED`,
/// `WCONTINUED`. Returns the child's pid (0: `WNOHANG` and none ready).
pub fn wait4(process: &Process, pid: i64, status: u64, options: u64, rusage: u64) -> SysResult {
    let options = options as u32 as u64; // an `int`
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN as i64 {
        return Err(Errno::ESRCH);
    }
    let target = match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Group(process.state.lock().signal_extras.pgid),
        1.. => WaitTarget::Pid(pid as u32),
        _ => WaitTarget::Group((-pid) as u32),
    };
    let wanted = WaitOptions {
        exited: true,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        no_hang: options & WNOHANG != 0,
        no_wait: false,
    };
    let Some(waited) = process::wait_child(process, target, wanted)? else { return Ok(0) };
    if status != 0 {
        copy::write_value(status, &wait_status(waited.event))?;
    }
    if rusage != 0 {
        copy::write_value(rusage, &Rusage::from(waited.used))?;
    }
    Ok(waited.pid as u64)
}

/// The part of `siginfo_t` `waitid` fills: number, errno, code, then the
/// child's pid, uid and status (the rest of the 128 bytes is left as it is).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct WaitInfo {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    pid: i32,
    uid: u32,
    status: i32,
}

/// `waitid(idtype, id, infop, options, rusage)`: `P_ALL`, `P_PID`, `P_PGID`
/// (id 0: the caller's group); `WEXITED`, `WSTOPPED`, `WCONTINUED`,
/// `WNOHANG`, `WNOWAIT`. Returns 0; `infop` (when given) holds `SIGCHLD`,
/// the `CLD_*` code, the child's pid, uid and status, or zeros when
/// `WNOHANG` found none ready. `P_PIDFD` is `EBADF`: there are no pidfds.
pub fn waitid(process: &Process, idtype: u64, id: u64, infop: u64, options: u64, rusage: u64) -> SysResult {
    let options = options as u32 as u64; // an `int`
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    const P_PIDFD: u64 = 3;
    let allowed = WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | WNOTHREAD | WCLONE | WALL;
    if options & !allowed != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let id = id as i32;
    let target = match idtype as u32 as u64 {
        P_ALL => WaitTarget::Any,
        P_PID if id <= 0 => return Err(Errno::EINVAL),
        P_PID => WaitTarget::Pid(id as u32),
        P_PGID if id < 0 => return Err(Errno::EINVAL),
        P_PGID if id == 0 => WaitTarget::Group(process.state.lock().signal_extras.pgid),
        P_PGID => WaitTarget::Group(id as u32),
        P_PIDFD if id < 0 => return Err(Errno::EINVAL),
        P_PIDFD => return Err(Errno::EBADF),
        _ => return Err(Errno::EINVAL),
    };
    let wanted = WaitOptions {
        exited: options & WEXITED != 0,
        stopped: options & WSTOPPED != 0,
        continued: options & WCONTINUED != 0,
        no_hang: options & WNOHANG != 0,
        no_wait: options & WNOWAIT != 0,
    };
    let waited = process::wait_child(process, target, wanted)?;
    if let (Some(waited), true) = (&waited, rusage != 0) {
        copy::write_value(rusage, &Rusage::from(waited.used))?;
    }
    if infop != 0 {
        copy::write_value(infop, &waitid_info(waited.as_ref()))?;
    }
    Ok(0)
}

/// What `waitid` writes for `waited` (zeros for none), as Linux's
/// `wait_task_zombie`, `wait_task_stopped` and `wait_task_continued` fill it.
fn waitid_info(waited: Option<&Waited>) -> WaitInfo {
    let Some(waited) = waited else { return WaitInfo::default() };
    let (code, status) = match waited.event {
        WaitEvent::Ended(process::ExitStatus::Exited(status)) => (code::CLD_EXITED, status as i32),
        // No core is dumped (`RLIMIT_CORE` is 0): never `CLD_DUMPED`.
        WaitEvent::Ended(process::ExitStatus::Killed { info, .. }) => (code::CLD_KILLED, info.signal.0 as i32),
        WaitEvent::Stopped(signal) => (code::CLD_STOPPED, signal as i32),
        WaitEvent::Continued => (code::CLD_CONTINUED, Signal::SIGCONT.0 as i32),
    };
    WaitInfo {
        signo: Signal::SIGCHLD.0 as i32,
        errno: 0,
        code,
        pad: 0,
        pid: waited.pid as i32,
        uid: creds::credentials(&waited.child).uid[0],
        status,
    }
}

/// Stops `process` for stop signal `signal`, which the running thread took
/// (its action is the default), tells the parent (`CLD_STOPPED`), and waits
/// until the process continues or is killed ([`wait_while_stopped`]).
pub fn stop(process: &Process, signal: u32) {
    let notice = Sent { code: code::CLD_STOPPED, sender: process.pid, status: signal as i32 };
    let stop = |state: &mut process::ProcessState| {
        state.job.stopped = true;
        state.job.report = Some(JobReport::Stopped(signal));
        true
    };
    process::job_change(process, stop, notice);
    wait_while_stopped(process);
}

/// True when `process` is stopped and nothing ends it: its threads wait.
fn held(process: &Process) -> bool {
    let state = process.state.lock();
    state.job.stopped && state.pending & bit(Signal::SIGKILL.0) == 0 && !process.exiting()
}

/// Waits, without using the CPU, while `process` is stopped: until
/// `SIGCONT` continues it, or `SIGKILL` or the end of the process comes.
pub fn wait_while_stopped(process: &Process) {
    process::wait_for_event(|| (!held(process)).then_some(()));
}

/// `SIGCONT` is being sent to `process` (before it is made pending): the
/// pending stop signals are discarded, and a stopped process continues,
/// which its parent hears of (Linux's `prepare_signal`).
pub fn continue_process(process: &Process) {
    let notice = Sent { code: code::CLD_CONTINUED, sender: process.pid, status: Signal::SIGCONT.0 as i32 };
    let resume = |state: &mut process::ProcessState| {
        state.discard_pending(STOP_SIGNALS);
        let stopped = state.job.stopped;
        if stopped {
            state.job.stopped = false;
            state.job.report = Some(JobReport::Continued);
        }
        stopped
    };
    process::job_change(process, resume, notice);
}

/// A stop signal is being sent to `process`: a pending `SIGCONT` is
/// discarded, as Linux's `prepare_signal` does.
pub fn before_stop_signal(process: &Process) {
    process.state.lock().discard_pending(bit(Signal::SIGCONT.0));
}
