//! Time and timers of user programs: `alarm`, `setitimer`/`getitimer`,
//! the POSIX timers (`timer_create` and the rest), `times` and
//! `getrusage`.
//!
//! - Interval timers, one of each kind per process (kept in its state, see
//!   the `timerstate` module): `ITIMER_REAL` (and `alarm`) counts on the
//!   boot clock and sends `SIGALRM`; `ITIMER_VIRTUAL` counts the process's
//!   user CPU time and sends `SIGVTALRM`; `ITIMER_PROF` its user and system
//!   CPU time and sends `SIGPROF`; each with `si_code` `SI_KERNEL`. An
//!   interval re-arms the timer when it fires (periods missed meanwhile are
//!   skipped: one signal, as Linux coalesces them). Validation in Linux's
//!   order (`kernel/time/itimer.c`): the new value is read (`EFAULT`; a null
//!   one disarms), its two `timeval`s checked (`EINVAL`: a negative second,
//!   microseconds outside `0..10^6`), then `which` (`EINVAL`); the old value
//!   is written after the timer is set (`EFAULT` then, with the timer set,
//!   as on Linux).
//! - POSIX timers, any number per process up to [`MAX_POSIX_TIMERS`], on
//!   the boot clock (`CLOCK_REALTIME` and `CLOCK_MONOTONIC` both count from
//!   boot here): `SIGEV_SIGNAL` (and `SIGEV_THREAD`, `SIGEV_THREAD_ID`,
//!   which the kernel sees as a signal too) sends the chosen signal to the
//!   process with `si_code` `SI_TIMER` and `si_timerid`; `SIGEV_NONE`
//!   sends nothing, and `timer_gettime` sees its expiry. `TIMER_ABSTIME`,
//!   intervals and `timer_getoverrun` (the expirations while the signal
//!   was still pending, counted when the timer fires and kept as they were
//!   when the signal was delivered) work; the siginfo's `si_overrun` is 0 and
//!   `si_value` is not filled in.
//! - Expiry: every timer tick of every CPU compares the boot clock with
//!   the earliest deadline ([`NEXT`], one atomic: the tick hook takes no
//!   lock) and, when it has passed, wakes the kernel thread "timers", which
//!   fires what expired and makes the signals pending with `signal::send`.
//!   A program computing in ring 3 gets the signal at the end of a later
//!   interrupt (see `user::mod`), one blocked in a call sees it when the call
//!   next looks (`EINTR`, or a restart after an `SA_RESTART` handler). The
//!   resolution is the tick (10 ms): a timer fires up to a tick or two late,
//!   never early. While a CPU-time timer is armed the thread looks at every
//!   tick. The thread starts when a program first arms a timer, and moves
//!   to the kernel's own address space.
//! - CPU time is sampled as Linux's tick accounting samples it: each timer
//!   tick counts one tick to the thread it finds running, as user time
//!   when it interrupted ring 3, else as system time
//!   ([`crate::thread::Thread::cpu_time`]).
//! - `times` returns the clock ticks (`USER_HZ`, 100 a second) since boot and
//!   fills `struct tms`; `getrusage` fills `struct rusage` for
//!   `RUSAGE_SELF`, `RUSAGE_CHILDREN` (the children waited for, with
//!   theirs) and `RUSAGE_THREAD`: the CPU times and `ru_minflt` (the same
//!   code as `wait4`'s: `process::Rusage`); the other fields are 0.
//! - Timers are dropped when the process ends; the interval timers are kept
//!   across `execve`, the POSIX timers are not; a forked child starts
//!   without any (Linux's rules).

use super::copy;
use super::errno::{Errno, SysResult};
use super::process::{self, Process, Rusage};
use super::signal::{self, code, Signal};
use super::timerstate::{Interval, PosixTimer, Timers, Usage};
use crate::arch::tsc::nanos_since_boot;
use crate::thread::WaitQueue;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// The system calls this module serves, by number.
mod nr {
    pub const GETITIMER: u64 = 36;
    pub const ALARM: u64 = 37;
    pub const SETITIMER: u64 = 38;
    pub const GETRUSAGE: u64 = 98;
    pub const TIMES: u64 = 100;
    pub const TIMER_CREATE: u64 = 222;
    pub const TIMER_SETTIME: u64 = 223;
    pub const TIMER_GETTIME: u64 = 224;
    pub const TIMER_GETOVERRUN: u64 = 225;
    pub const TIMER_DELETE: u64 = 226;
}

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::ALARM => Ok(alarm(process, a[0] as u32)),
        nr::SETITIMER => setitimer(process, a[0] as i32, a[1], a[2]),
        nr::GETITIMER => getitimer(process, a[0] as i32, a[1]),
        nr::TIMES => times(process, a[0]),
        nr::GETRUSAGE => getrusage(process, a[0] as i32, a[1]),
        nr::TIMER_CREATE => timer_create(process, a[0] as i32, a[1], a[2]),
        nr::TIMER_SETTIME => timer_settime(process, a[0] as i32, a[1] as i32, a[2], a[3]),
        nr::TIMER_GETTIME => timer_gettime(process, a[0] as i32, a[1]),
        nr::TIMER_GETOVERRUN => timer_getoverrun(process, a[0] as i32),
        nr::TIMER_DELETE => timer_delete(process, a[0] as i32),
        _ => return None,
    })
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;

/// `struct timeval`.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Timeval {
    sec: i64,
    usec: i64,
}

impl Timeval {
    /// Linux's check: no negative second, microseconds in `0..10^6`.
    fn valid(&self) -> bool {
        self.sec >= 0 && (0..1_000_000).contains(&self.usec)
    }

    /// The nanoseconds of a valid one (saturating).
    fn nanos(&self) -> u64 {
        (self.sec as u64).saturating_mul(NANOS_PER_SECOND).saturating_add(self.usec as u64 * NANOS_PER_MICRO)
    }

    fn from_nanos(nanos: u64) -> Timeval {
        Timeval { sec: (nanos / NANOS_PER_SECOND) as i64, usec: (nanos % NANOS_PER_SECOND / NANOS_PER_MICRO) as i64 }
    }
}

/// `struct itimerval`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Itimerval {
    interval: Timeval,
    value: Timeval,
}

/// The kinds of interval timer (`which`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Real,
    Virtual,
    Prof,
}

impl Which {
    fn from_raw(which: i32) -> Result<Which, Errno> {
        match which {
            0 => Ok(Which::Real),
            1 => Ok(Which::Virtual),
            2 => Ok(Which::Prof),
            _ => Err(Errno::EINVAL),
        }
    }

    fn slot(self, timers: &mut Timers) -> &mut Interval {
        match self {
            Which::Real => &mut timers.real,
            Which::Virtual => &mut timers.virtual_time,
            Which::Prof => &mut timers.prof,
        }
    }

    /// The timer's clock now, for `process`: the boot clock, or its CPU time.
    fn now(self, process: &Process) -> u64 {
        match self {
            Which::Real => nanos_since_boot(),
            Which::Virtual => process::usage(process).user,
            Which::Prof => {
                let usage = process::usage(process);
                usage.user + usage.system
            }
        }
    }
}

/// What `getitimer` reports of `timer` when its clock reads `now`: an
/// armed timer whose time has come but which has not fired yet has a
/// microsecond left (`ITIMER_REAL`) or a tick (the CPU-time ones), as on
/// Linux.
fn report(which: Which, timer: Interval, now: u64) -> Itimerval {
    let left = match timer.deadline {
        0 => 0,
        deadline if deadline > now => deadline - now,
        _ if which == Which::Real => NANOS_PER_MICRO,
        _ => crate::thread::scheduler::tick_nanos(),
    };
    Itimerval { interval: Timeval::from_nanos(timer.interval), value: Timeval::from_nanos(left) }
}

/// Sets timer `which` of `process` to `value` (nanoseconds from now on its
/// clock; 0 disarms) and `interval`; returns what it was.
fn set(process: &Process, which: Which, value: u64, interval: u64) -> Itimerval {
    let now = which.now(process);
    let previous = {
        let mut state = process.state.lock();
        let slot = which.slot(&mut state.timers);
        let previous = *slot;
        *slot = match value {
            // Linux keeps a CPU-time timer's interval even when disarmed.
            0 if which != Which::Real => Interval { deadline: 0, interval },
            0 => Interval::default(),
            _ => Interval { deadline: now.saturating_add(value).max(1), interval },
        };
        previous
    };
    if value != 0 {
        armed(which, now.saturating_add(value));
    }
    report(which, previous, now)
}

/// `setitimer(which, new, old)`.
fn setitimer(process: &Process, which: i32, new: u64, old: u64) -> SysResult {
    let wanted = if new != 0 { copy::read_value::<Itimerval>(new)? } else { Itimerval::default() };
    if !wanted.value.valid() || !wanted.interval.valid() {
        return Err(Errno::EINVAL);
    }
    let which = Which::from_raw(which)?;
    let previous = set(process, which, wanted.value.nanos(), wanted.interval.nanos());
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
}

/// `getitimer(which, value)`.
fn getitimer(process: &Process, which: i32, value: u64) -> SysResult {
    let which = Which::from_raw(which)?;
    let now = which.now(process);
    let timer = *which.slot(&mut process.state.lock().timers);
    copy::write_value(value, &report(which, timer, now))?;
    Ok(0)
}

/// `alarm(seconds)`: `ITIMER_REAL` set to `seconds` (0: cancelled), no
/// interval; the seconds that were left of the previous one, rounded as
/// Linux rounds them (never 0 for an armed one; up from half a second).
fn alarm(process: &Process, seconds: u32) -> u64 {
    let previous = set(process, Which::Real, seconds as u64 * NANOS_PER_SECOND, 0).value;
    let round_up = (previous.sec == 0 && previous.usec != 0) || previous.usec >= 500_000;
    previous.sec as u64 + round_up as u64
}

// ---------------------------------------------------------------------------
// Expiry

/// The earliest time, on the boot clock, at which a timer may need firing
/// (`u64::MAX`: none): the deadline of the first `ITIMER_REAL`, or the next
/// tick while a CPU-time timer is armed. Read by every timer tick.
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Where the thread "timers" waits for [`NEXT`].
static DUE: WaitQueue = WaitQueue::new();

/// True when [`NEXT`] has come.
fn due() -> bool {
    nanos_since_boot() >= NEXT.load(Ordering::SeqCst)
}

/// The timer tick's hook (every CPU, interrupts off): wakes the thread
/// "timers" when a deadline has passed. One atomic read and the clock.
fn on_tick() {
    if due() {
        DUE.wake_all();
    }
}

/// A timer of kind `which` was armed, expiring at `deadline` on its clock:
/// the tick looks for it from then on (from the next tick for CPU time).
fn armed(which: Which, deadline: u64) {
    start_thread();
    let at = match which {
        Which::Real => deadline,
        _ => nanos_since_boot().saturating_add(crate::thread::scheduler::tick_nanos()),
    };
    NEXT.fetch_min(at, Ordering::SeqCst);
}

/// Starts the thread "timers" and installs the tick hook, once.
fn start_thread() {
    static STARTED: spin::Once<()> = spin::Once::new();
    STARTED.call_once(|| {
        let _ = crate::thread::spawn("timers", fire_forever);
        crate::thread::scheduler::install_tick_hook(on_tick);
    });
}

/// The thread "timers": waits until a deadline passes, then fires what
/// expired.
fn fire_forever() -> u64 {
    // A new thread starts in its creator's space: the program's, which must
    // be free to go when the program ends.
    if crate::address_space::move_current_thread(None).is_err() {
        crate::println!("timers: cannot leave the program's address space");
    }
    loop {
        DUE.wait_until(|| due().then_some(()));
        fire_expired();
    }
}

/// Fires every timer that expired, re-arms those with an interval, and
/// sets [`NEXT`] again. A timer armed meanwhile is not lost: [`NEXT`] is
/// reset before the processes are looked at, and arming lowers it after.
fn fire_expired() {
    NEXT.store(u64::MAX, Ordering::SeqCst);
    for process in process::all() {
        let (timers, posix) = {
            let state = process.state.lock();
            (state.timers, state.posix_timers.values().any(|timer| timer.signal.is_some() && timer.timer.armed()))
        };
        if timers == Timers::default() && !posix {
            continue;
        }
        let cpu_time = (timers.virtual_time.armed() || timers.prof.armed()).then(|| process::usage(&process));
        let now = nanos_since_boot();
        // The signals to send: (signal, si_code, the timer's id for si_timerid).
        let mut fired: Vec<(u32, i32, u32)> = Vec::new();
        {
            let mut state = process.state.lock();
            if state.ended {
                continue;
            }
            let pending = state.pending;
            let timers = &mut state.timers;
            if expire(&mut timers.real, now).is_some() {
                fired.push((14, code::SI_KERNEL, 0)); // SIGALRM
            }
            if let Some(Usage { user, system, .. }) = cpu_time {
                if expire(&mut timers.virtual_time, user).is_some() {
                    fired.push((26, code::SI_KERNEL, 0)); // SIGVTALRM
                }
                if expire(&mut timers.prof, user + system).is_some() {
                    fired.push((27, code::SI_KERNEL, 0)); // SIGPROF
                }
            }
            if timers.real.armed() {
                NEXT.fetch_min(timers.real.deadline, Ordering::SeqCst);
            }
            if timers.virtual_time.armed() || timers.prof.armed() {
                NEXT.fetch_min(now.saturating_add(crate::thread::scheduler::tick_nanos()), Ordering::SeqCst);
            }
            for (&id, posix) in state.posix_timers.iter_mut() {
                let Some(signal) = posix.signal else { continue };
                if let Some(expirations) = expire(&mut posix.timer, now) {
                    // Linux counts the expirations while the signal waits
                    // as overruns; a delivered signal starts a new count.
                    let still_pending = pending & 1 << (signal - 1) != 0;
                    posix.overrun = if still_pending { posix.overrun + expirations } else { expirations - 1 };
                    fired.push((signal, code::SI_TIMER, id as u32));
                }
                if posix.timer.armed() {
                    NEXT.fetch_min(posix.timer.deadline, Ordering::SeqCst);
                }
            }
        }
        for (signal, code, id) in fired {
            // For a POSIX timer the "sender" is the timer's id: it lands
            // where siginfo's si_timerid is.
            signal::send(&process, Signal(signal), code, id);
        }
    }
}

/// When `timer` expired by `now` (on its clock), how many times (1, or
/// more when periods of its interval went by unseen); it is re-armed for
/// the first period after `now`, or disarmed. `None`: not expired.
fn expire(timer: &mut Interval, now: u64) -> Option<u64> {
    if !timer.armed() || now < timer.deadline {
        return None;
    }
    let mut expirations = 1;
    timer.deadline = match timer.interval {
        0 => 0,
        interval => {
            expirations += (now - timer.deadline) / interval;
            timer.deadline.saturating_add(expirations.saturating_mul(interval))
        }
    };
    Some(expirations)
}

// ---------------------------------------------------------------------------
// POSIX timers

/// `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

impl Timespec {
    fn valid(&self) -> bool {
        self.sec >= 0 && (0..NANOS_PER_SECOND as i64).contains(&self.nsec)
    }

    fn nanos(&self) -> u64 {
        (self.sec as u64).saturating_mul(NANOS_PER_SECOND).saturating_add(self.nsec as u64)
    }

    fn from_nanos(nanos: u64) -> Timespec {
        Timespec { sec: (nanos / NANOS_PER_SECOND) as i64, nsec: (nanos % NANOS_PER_SECOND) as i64 }
    }
}

/// `struct itimerspec`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Itimerspec {
    interval: Timespec,
    value: Timespec,
}

/// `struct sigevent` (64 bytes): the value, the signal, how to notify,
/// and the thread for `SIGEV_THREAD_ID`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    thread_id: i32,
    rest: [u32; 11],
}

/// How many POSIX timers a process may have (Linux's limit is the pending
/// signals' rlimit; `EAGAIN` past it).
const MAX_POSIX_TIMERS: usize = 1024;

/// `timer_create(clock, event, id)`, in Linux's order: the event is read
/// (`EFAULT`), the clock checked (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME`, `CLOCK_TAI`, all the boot clock here; `EOPNOTSUPP`
/// for `CLOCK_MONOTONIC_RAW` and the coarse clocks, as on Linux; `EINVAL`
/// for the rest, where Linux also has CPU-time and alarm clocks), then
/// the event (`EINVAL`: an unknown
/// notification, a signal outside `1..=64`, a `SIGEV_THREAD_ID` thread not
/// of the process); the id is written last (`EFAULT`, and no timer).
/// `SIGEV_SIGNAL`, `SIGEV_THREAD` (to the kernel, a signal too) and
/// `SIGEV_THREAD_ID` send the signal to the process (signals are pending
/// per process here); `SIGEV_NONE` sends nothing. No event: `SIGALRM`.
fn timer_create(process: &Process, clock: i32, event: u64, id: u64) -> SysResult {
    const SIGEV_SIGNAL: i32 = 0;
    const SIGEV_NONE: i32 = 1;
    const SIGEV_THREAD: i32 = 2;
    const SIGEV_THREAD_ID: i32 = 4;
    let event = if event != 0 { Some(copy::read_value::<SigEvent>(event)?) } else { None };
    match clock {
        // REALTIME, MONOTONIC, BOOTTIME, TAI: all count from boot here.
        0 | 1 | 7 | 11 => {}
        // MONOTONIC_RAW and the coarse clocks have no timers on Linux.
        4..=6 => return Err(Errno::EOPNOTSUPP),
        // The CPU-time clocks, the alarm clocks: not here.
        _ => return Err(Errno::EINVAL),
    }
    let signal = match event {
        None => Some(14), // SIGALRM
        Some(event) => {
            if event.notify == SIGEV_THREAD_ID | SIGEV_SIGNAL
                && !process.state.lock().threads.contains_key(&(event.thread_id as u32))
            {
                return Err(Errno::EINVAL);
            }
            match event.notify {
                SIGEV_NONE => None,
                SIGEV_SIGNAL | SIGEV_THREAD | SIGEV_THREAD_ID if (1..=64).contains(&event.signo) => {
                    Some(event.signo as u32)
                }
                _ => return Err(Errno::EINVAL),
            }
        }
    };
    let new = {
        let mut state = process.state.lock();
        if state.posix_timers.len() >= MAX_POSIX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        // The id after the last one, or the first free one once they ran out.
        let after_last = state.posix_timers.keys().next_back().map_or(Some(0), |last| last.checked_add(1));
        let new = after_last.unwrap_or_else(|| (0..).find(|id| !state.posix_timers.contains_key(id)).unwrap_or(0));
        state.posix_timers.insert(new, PosixTimer { clock, signal, ..PosixTimer::default() });
        new
    };
    if let Err(error) = copy::write_value(id, &new) {
        process.state.lock().posix_timers.remove(&new);
        return Err(error);
    }
    Ok(0)
}

/// The time left of `timer` at `now` and its interval, as
/// `timer_gettime` reports them. A timer that sends nothing (`SIGEV_NONE`)
/// never fires: its expiry is seen here (an expired one-shot reads 0, a
/// periodic one its next period). One with a signal, expired and not fired
/// yet, has a nanosecond left, as on Linux.
fn posix_report(timer: &PosixTimer, now: u64) -> Itimerspec {
    let Interval { deadline, interval } = timer.timer;
    let left = match deadline {
        0 => 0,
        deadline if deadline > now => deadline - now,
        _ if timer.signal.is_some() => 1,
        _ if interval == 0 => 0,
        deadline => interval - (now - deadline) % interval,
    };
    Itimerspec { interval: Timespec::from_nanos(interval), value: Timespec::from_nanos(left) }
}

/// `timer_settime(id, flags, new, old)`, in Linux's order: no new value
/// (`EINVAL`), its reading (`EFAULT`), its two `timespec`s (`EINVAL`), the id
/// (`EINVAL`); the old value is written after the timer is set (`EFAULT`).
/// `TIMER_ABSTIME`: the value is a time on the clock (a past one fires at
/// once); a zero value disarms.
fn timer_settime(process: &Process, id: i32, flags: i32, new: u64, old: u64) -> SysResult {
    const TIMER_ABSTIME: i32 = 1;
    if new == 0 {
        return Err(Errno::EINVAL);
    }
    let wanted: Itimerspec = copy::read_value(new)?;
    if !wanted.value.valid() || !wanted.interval.valid() {
        return Err(Errno::EINVAL);
    }
    let now = nanos_since_boot();
    let value = wanted.value.nanos();
    let deadline = match value {
        0 => 0,
        _ if flags & TIMER_ABSTIME != 0 => value.max(1),
        _ => now.saturating_add(value),
    };
    let (previous, fires) = {
        let mut state = process.state.lock();
        let timer = state.posix_timers.get_mut(&id).ok_or(Errno::EINVAL)?;
        let previous = posix_report(timer, now);
        timer.timer = match deadline {
            0 => Interval::default(),
            _ => Interval { deadline, interval: wanted.interval.nanos() },
        };
        timer.overrun = 0;
        timer.overrun_last = 0;
        (previous, timer.signal.is_some())
    };
    if deadline != 0 && fires {
        start_thread();
        NEXT.fetch_min(deadline, Ordering::SeqCst);
    }
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
}

/// `timer_gettime(id, value)`: `EINVAL` for an unknown id, then the write.
fn timer_gettime(process: &Process, id: i32, value: u64) -> SysResult {
    let now = nanos_since_boot();
    let report = posix_report(process.state.lock().posix_timers.get(&id).ok_or(Errno::EINVAL)?, now);
    copy::write_value(value, &report)?;
    Ok(0)
}

/// `timer_getoverrun(id)`: the overrun of the timer's last delivered
/// signal (see [`PosixTimer::overrun_last`]), at most `i32::MAX`.
fn timer_getoverrun(process: &Process, id: i32) -> SysResult {
    let overrun = process.state.lock().posix_timers.get(&id).ok_or(Errno::EINVAL)?.overrun_last;
    Ok(overrun.min(i32::MAX as u64))
}

/// `timer_delete(id)`: a signal it sent that is still pending stays.
fn timer_delete(process: &Process, id: i32) -> SysResult {
    process.state.lock().posix_timers.remove(&id).ok_or(Errno::EINVAL)?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// Usage

/// Clock ticks a second (`USER_HZ`, `sysconf(_SC_CLK_TCK)`).
const USER_HZ: u64 = 100;

/// `struct tms`, in clock ticks.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Tms {
    utime: i64,
    stime: i64,
    cutime: i64,
    cstime: i64,
}

/// `times(buf)`: the clock ticks since boot; the process's CPU times and
/// those of the children it waited for at `buf` (unless null).
fn times(process: &Process, buf: u64) -> SysResult {
    if buf != 0 {
        let ticks = |nanos: u64| (nanos / (NANOS_PER_SECOND / USER_HZ)) as i64;
        let own = process::usage(process);
        let children = process.state.lock().children_used;
        let tms = Tms {
            utime: ticks(own.user),
            stime: ticks(own.system),
            cutime: ticks(children.user),
            cstime: ticks(children.system),
        };
        copy::write_value(buf, &tms)?;
    }
    Ok(nanos_since_boot() / (NANOS_PER_SECOND / USER_HZ))
}

/// `getrusage(who, usage)`: `RUSAGE_SELF` (0), `RUSAGE_CHILDREN` (-1),
/// `RUSAGE_THREAD` (1); `EINVAL` for another `who`, before the write.
fn getrusage(process: &Process, who: i32, usage: u64) -> SysResult {
    let used = match who {
        0 => process::usage(process),
        -1 => process.state.lock().children_used,
        1 => process::thread_usage(process),
        _ => return Err(Errno::EINVAL),
    };
    copy::write_value(usage, &Rusage::from(used))?;
    Ok(0)
}
