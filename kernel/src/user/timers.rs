//! Time and timers of user programs: `alarm`, `setitimer`/`getitimer`,
//! `times` and `getrusage`.
//!
//! - Interval timers, one of each kind per process (kept in its state, see
//!   the `timerstate` module): `ITIMER_REAL` (and `alarm`) counts on the
//!   boot clock and sends `SIGALRM`; `ITIMER_VIRTUAL` counts the process's
//!   user CPU time and sends `SIGVTALRM`; `ITIMER_PROF` its user and system
//!   CPU time and sends `SIGPROF`. An interval re-arms the timer when it
//!   fires (periods missed meanwhile are skipped: one signal, as Linux
//!   coalesces them). Validation in Linux's order (`kernel/time/itimer.c`):
//!   the new value is read (`EFAULT`; a null one disarms), its two
//!   `timeval`s checked (`EINVAL`: a negative second, microseconds outside
//!   `0..10^6`), then `which` (`EINVAL`); the old value is written after the
//!   timer is set (`EFAULT` then, with the timer set, as on Linux).
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
//! - Timers are dropped when the process ends, kept across `execve`, and a
//!   forked child starts without any (Linux's rules).
//! - Not done: the POSIX timers (`timer_create` and the rest) answer
//!   `ENOSYS`.

use super::copy;
use super::errno::{Errno, SysResult};
use super::process::{self, Process, Rusage};
use super::signal::{self, code, Signal};
use super::timerstate::{Interval, Timers, Usage};
use crate::arch::tsc::nanos_since_boot;
use crate::thread::WaitQueue;
use core::sync::atomic::{AtomicU64, Ordering};

/// The system calls this module serves, by number.
mod nr {
    pub const GETITIMER: u64 = 36;
    pub const ALARM: u64 = 37;
    pub const SETITIMER: u64 = 38;
    pub const GETRUSAGE: u64 = 98;
    pub const TIMES: u64 = 100;
}

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::ALARM => Ok(alarm(process, a[0] as u32)),
        nr::SETITIMER => setitimer(process, a[0] as i32, a[1], a[2]),
        nr::GETITIMER => getitimer(process, a[0] as i32, a[1]),
        nr::TIMES => times(process, a[0]),
        nr::GETRUSAGE => getrusage(process, a[0] as i32, a[1]),
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
        let timers = process.state.lock().timers;
        if timers == Timers::default() {
            continue;
        }
        let cpu_time = (timers.virtual_time.armed() || timers.prof.armed()).then(|| process::usage(&process));
        let now = nanos_since_boot();
        let mut fired = [None; 3];
        {
            let mut state = process.state.lock();
            if state.ended {
                continue;
            }
            let timers = &mut state.timers;
            fired[0] = expire(&mut timers.real, now).then_some(Signal(14)); // SIGALRM
            if let Some(Usage { user, system, .. }) = cpu_time {
                fired[1] = expire(&mut timers.virtual_time, user).then_some(Signal(26)); // SIGVTALRM
                fired[2] = expire(&mut timers.prof, user + system).then_some(Signal(27));
                // SIGPROF
            }
            if timers.real.armed() {
                NEXT.fetch_min(timers.real.deadline, Ordering::SeqCst);
            }
            if timers.virtual_time.armed() || timers.prof.armed() {
                NEXT.fetch_min(now.saturating_add(crate::thread::scheduler::tick_nanos()), Ordering::SeqCst);
            }
        }
        for signal in fired.into_iter().flatten() {
            signal::send(&process, signal, code::SI_KERNEL, 0);
        }
    }
}

/// True when `timer` expired by `now` (on its clock); it is re-armed for
/// the first period after `now`, or disarmed.
fn expire(timer: &mut Interval, now: u64) -> bool {
    if !timer.armed() || now < timer.deadline {
        return false;
    }
    timer.deadline = match timer.interval {
        0 => 0,
        interval => {
            let periods = (now - timer.deadline) / interval + 1;
            timer.deadline.saturating_add(periods.saturating_mul(interval))
        }
    };
    true
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
