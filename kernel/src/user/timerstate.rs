//! What a process keeps of its interval timers and of the resources it
//! used: the types a process's state holds; the calls that read and change
//! them are in the `timers` module.
//!
//! Linux's rules for what survives what: the interval timers (`alarm`,
//! `setitimer`) are kept across `execve` and not inherited by a forked
//! child; the POSIX timers (`timer_create`) are neither kept across
//! `execve` nor inherited; a process's usage counts from its start, across
//! `execve`.

/// One interval timer: when it expires next (0: disarmed) and the interval
/// it is armed again with (0: once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interval {
    /// When it expires, in nanoseconds of its clock (the boot clock for
    /// `ITIMER_REAL`, the process's CPU time for the others); 0: disarmed.
    pub deadline: u64,
    /// The interval, in nanoseconds (0: the timer fires once).
    pub interval: u64,
}

impl Interval {
    /// True when the timer is armed.
    pub fn armed(&self) -> bool {
        self.deadline != 0
    }
}

/// The three interval timers of a process (`ITIMER_REAL`,
/// `ITIMER_VIRTUAL`, `ITIMER_PROF`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    /// `ITIMER_REAL` (and `alarm`): the boot clock; `SIGALRM`.
    pub real: Interval,
    /// `ITIMER_VIRTUAL`: the process's user CPU time; `SIGVTALRM`.
    pub virtual_time: Interval,
    /// `ITIMER_PROF`: the process's user and system CPU time; `SIGPROF`.
    pub prof: Interval,
}

/// One POSIX timer (`timer_create`), on the boot clock (`CLOCK_REALTIME`
/// and `CLOCK_MONOTONIC` both count from boot here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosixTimer {
    /// The clock it was created on (reported by nothing yet).
    pub clock: i32,
    /// The signal its expiry sends; `None`: none (`SIGEV_NONE`).
    pub signal: Option<u32>,
    /// When it expires, and its interval.
    pub timer: Interval,
    /// Expirations beyond the first while its signal was pending, or missed
    /// between two looks: counted as the timer fires.
    pub overrun: u64,
    /// [`PosixTimer::overrun`] as it was when the timer's last signal was
    /// delivered: what `timer_getoverrun` returns, as Linux's
    /// `it_overrun_last` (later expirations do not change it).
    pub overrun_last: u64,
}

/// Resources used: CPU time (nanoseconds, sampled by the timer tick) and
/// the faults handled for the process's accesses (`ru_minflt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time in ring 3.
    pub user: u64,
    /// CPU time in the kernel on the process's behalf.
    pub system: u64,
    /// Minor faults (every fault handled here is one: there is no swap).
    pub minor_faults: u64,
    /// The most pages resident at once (`ru_maxrss`, in pages).
    pub peak_pages: u64,
}

impl Usage {
    /// Two usages together: the sums of the times and faults, the larger
    /// high-water mark (as Linux's `ru_maxrss`, the largest, not a sum).
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            user: self.user + other.user,
            system: self.system + other.system,
            minor_faults: self.minor_faults + other.minor_faults,
            peak_pages: self.peak_pages.max(other.peak_pages),
        }
    }
}
