//! The process, time and scheduling calls not in the main table
//! (`syscall::call`), and the count of the system calls nobody serves.
//!
//! - Time: `nanosleep`, `clock_nanosleep` and `pause` wait until the time
//!   comes or a signal would be delivered (`EINTR`, with the time left);
//!   `gettimeofday` and `time` read the clock `clock_gettime` reads (the
//!   wall clock starts at the epoch when the kernel boots). `alarm`, the
//!   interval and POSIX timers, `times` and `getrusage` are the `timers`
//!   module's.
//! - Limits: `setrlimit` (as `prlimit64` sets them; `RLIMIT_NOFILE` no
//!   higher than `fs.nr_open`).
//! - CPUs: `sched_getaffinity` is the set of online CPUs, narrowed by what
//!   `sched_setaffinity` recorded for the thread; a thread that leaves out
//!   the CPU it runs on moves to the lowest CPU of its mask at once
//!   ([`crate::thread::migrate_current`]) and stays there. A new thread or a
//!   forked child inherits its creator's mask, as on Linux, and starts on
//!   the least loaded of its CPUs (the masks: [`super::affinity`]).
//!   `getcpu` names the CPU the call runs on.
//! - Groups and sessions: a process the shell starts leads a group and a
//!   session of its own; a forked child is in its parent's; `setpgid` and
//!   `setsid` follow Linux's rules.
//! - Signals sent to threads: `tkill`, `tgkill` (one thread per process: the
//!   thread id is the pid), and `rt_sigpending`.
//! - Capabilities: `capget`, `capset` and the capability options of
//!   `prctl` (`PR_CAPBSET_*`, keep-caps, securebits, `PR_CAP_AMBIENT`),
//!   with Linux 6.1's checks and errors, over the credentials `creds.rs`
//!   keeps (where [`super::creds::capable`] answers for the rest of the
//!   kernel).
//! - The other `prctl` options served: the name (`PR_SET_NAME`,
//!   `PR_GET_NAME`), the parent-death signal, dumpable, child subreaper and
//!   no-new-privs, kept in the process's `options`.
//! - Every number no table serves is counted ([`unsupported`]); the shell's
//!   `syscalls` lists them with their names.

use super::affinity;
use super::copy;
use super::creds::{cap, credentials, securebits, set_credentials, Credentials, CAP_FULL_SET};
use super::errno::{Errno, SysResult};
use super::fdtable::NR_OPEN;
use super::process::{self, Process, RLimit, RLIMIT_COUNT, RLIMIT_NOFILE};
use super::signal;
use crate::arch::tsc::nanos_since_boot;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// The system calls this module serves, by number.
mod nr {
    pub const PAUSE: u64 = 34;
    pub const NANOSLEEP: u64 = 35;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const SETPGID: u64 = 109;
    pub const GETPGRP: u64 = 111;
    pub const SETSID: u64 = 112;
    pub const GETPGID: u64 = 121;
    pub const GETSID: u64 = 124;
    pub const RT_SIGPENDING: u64 = 127;
    pub const SETRLIMIT: u64 = 160;
    pub const TKILL: u64 = 200;
    pub const TIME: u64 = 201;
    pub const SCHED_SETAFFINITY: u64 = 203;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const TGKILL: u64 = 234;
    pub const GETCPU: u64 = 309;
    pub const CAPGET: u64 = 125;
    pub const CAPSET: u64 = 126;
    pub const PRCTL: u64 = 157;
}

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::NANOSLEEP => nanosleep(process, a[0], a[1]),
        nr::CLOCK_NANOSLEEP => clock_nanosleep(process, a[0], a[1], a[2], a[3]),
        nr::PAUSE => pause(process),
        nr::GETTIMEOFDAY => gettimeofday(a[0], a[1]),
        nr::TIME => time(a[0]),
        nr::SETRLIMIT => setrlimit(process, a[0], a[1]),
        nr::SCHED_GETAFFINITY => sched_getaffinity(process, a[0], a[1], a[2]),
        nr::SCHED_SETAFFINITY => sched_setaffinity(process, a[0], a[1], a[2]),
        nr::GETCPU => getcpu(a[0], a[1]),
        nr::GETPGRP => Ok(process.state.lock().signal_extras.pgid as u64),
        nr::GETPGID => group_of(process, a[0], false),
        nr::GETSID => group_of(process, a[0], true),
        nr::SETPGID => setpgid(process, a[0], a[1]),
        nr::SETSID => setsid(process),
        nr::TKILL => signal::tkill(process, None, a[0] as i32 as i64, a[1]),
        nr::TGKILL => signal::tkill(process, Some(a[0] as i32 as i64), a[1] as i32 as i64, a[2]),
        nr::RT_SIGPENDING => signal::sigpending(process, a[0], a[1]),
        nr::CAPGET => capget(process, a[0], a[1]),
        nr::CAPSET => capset(process, a[0], a[1]),
        nr::PRCTL => prctl(process, a[0] as i32, a[1], a[2], a[3], a[4]),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Time

/// `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl Timespec {
    fn from_nanos(nanos: u64) -> Timespec {
        Timespec { sec: (nanos / NANOS_PER_SECOND) as i64, nsec: (nanos % NANOS_PER_SECOND) as i64 }
    }

    /// Reads one (`EFAULT`) and checks it (`EINVAL`: a negative second or
    /// nanoseconds outside `0..10^9`).
    fn read(addr: u64) -> Result<Timespec, Errno> {
        let time: Timespec = copy::read_value(addr)?;
        if time.sec < 0 || !(0..NANOS_PER_SECOND as i64).contains(&time.nsec) {
            return Err(Errno::EINVAL);
        }
        Ok(time)
    }

    fn nanos(&self) -> u64 {
        (self.sec as u64).saturating_mul(NANOS_PER_SECOND).saturating_add(self.nsec as u64)
    }
}

/// The longest a sleeping program goes without looking at its signals.
const SLEEP_SLICE_MS: u64 = 10;

/// Sleeps until the boot clock reads `deadline` (nanoseconds); `EINTR` as
/// soon as a signal would be delivered.
fn sleep_until(process: &Process, deadline: u64) -> Result<(), Errno> {
    loop {
        let now = nanos_since_boot();
        if now >= deadline {
            return Ok(());
        }
        signal::settle_stops(process);
        if signal::interrupting(process) {
            return Err(Errno::EINTR);
        }
        crate::thread::sleep_ms((deadline - now).div_ceil(1_000_000).min(SLEEP_SLICE_MS));
    }
}

/// Sleeps for the relative `request`; when a signal cuts it short, writes
/// the time left to `remaining` (unless 0) and fails with `EINTR`.
fn sleep_relative(process: &Process, request: Timespec, remaining: u64) -> SysResult {
    let deadline = nanos_since_boot().saturating_add(request.nanos());
    match sleep_until(process, deadline) {
        Ok(()) => Ok(0),
        Err(error) => {
            if remaining != 0 {
                let left = deadline.saturating_sub(nanos_since_boot());
                copy::write_value(remaining, &Timespec::from_nanos(left))?;
            }
            Err(error)
        }
    }
}

/// `nanosleep(request, remaining)`.
fn nanosleep(process: &Process, request: u64, remaining: u64) -> SysResult {
    let request = Timespec::read(request)?;
    sleep_relative(process, request, remaining)
}

/// `clock_nanosleep(clock, flags, request, remaining)`: every clock here
/// counts from boot, so an absolute time is one on that count.
fn clock_nanosleep(process: &Process, clock: u64, flags: u64, request: u64, remaining: u64) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    match clock as i32 {
        // REALTIME, MONOTONIC, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM, TAI.
        0 | 1 | 7 | 8 | 9 | 11 => {}
        // MONOTONIC_RAW and the coarse clocks cannot be slept on.
        4..=6 => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    }
    let request = Timespec::read(request)?;
    if flags & TIMER_ABSTIME != 0 {
        sleep_until(process, request.nanos())?;
        return Ok(0);
    }
    sleep_relative(process, request, remaining)
}

/// `pause()`: until a signal is delivered; then `EINTR`. A stop and a
/// continue do not end it ([`signal::settle_stops`]).
fn pause(process: &Process) -> SysResult {
    loop {
        signal::settle_stops(process);
        if signal::interrupting(process) {
            return Err(Errno::EINTR);
        }
        crate::thread::sleep_ms(SLEEP_SLICE_MS);
    }
}

/// `gettimeofday(tv, tz)`: the time, and the time zone (UTC, no daylight
/// saving time); each only where asked.
fn gettimeofday(tv: u64, tz: u64) -> SysResult {
    if tv != 0 {
        let now = Timespec::from_nanos(nanos_since_boot());
        copy::write_value(tv, &[now.sec, now.nsec / 1000])?;
    }
    if tz != 0 {
        copy::write_value(tz, &[0i32, 0i32])?;
    }
    Ok(0)
}

/// `time(tloc)`: the seconds, also at `tloc` unless it is 0.
fn time(tloc: u64) -> SysResult {
    let seconds = nanos_since_boot() / NANOS_PER_SECOND;
    if tloc != 0 {
        copy::write_value(tloc, &seconds)?;
    }
    Ok(seconds)
}

// ---------------------------------------------------------------------------
// Limits

/// `setrlimit(resource, rlim)`: Linux's order: the structure (`EFAULT`),
/// the resource and soft above hard (`EINVAL`), `RLIMIT_NOFILE` above
/// `fs.nr_open` (`EPERM`). The process is root: raising a hard limit is
/// allowed.
fn setrlimit(process: &Process, resource: u64, limit: u64) -> SysResult {
    let wanted: RLimit = copy::read_value(limit)?;
    let index = (resource as u32 as usize).min(RLIMIT_COUNT);
    if index >= RLIMIT_COUNT || wanted.cur > wanted.max {
        return Err(Errno::EINVAL);
    }
    if index == RLIMIT_NOFILE && wanted.max > NR_OPEN {
        return Err(Errno::EPERM);
    }
    process.state.lock().rlimits[index] = wanted;
    Ok(0)
}

// ---------------------------------------------------------------------------
// CPUs

/// The online CPUs, one bit each.
fn online_cpus() -> u64 {
    crate::percpu::all_cpus().fold(0, |mask, cpu| mask | 1u64 << cpu.id)
}

/// The size of a CPU mask here: one `unsigned long` (64 CPUs at most).
const CPUMASK_SIZE: u64 = 8;

/// The process `pid` names (0: the caller), or `ESRCH`.
fn process_named(process: &Process, pid: u64) -> Result<Option<Arc<Process>>, Errno> {
    let pid = pid as i32;
    if pid == 0 || pid as u32 == process.pid {
        return Ok(None);
    }
    let target = process::all().into_iter().find(|target| pid > 0 && target.pid == pid as u32);
    target.map(Some).ok_or(Errno::ESRCH)
}

/// `sched_getaffinity(pid, len, mask)`: the bytes written (Linux's
/// `cpumask_size()`, 8 here).
fn sched_getaffinity(process: &Process, pid: u64, len: u64, mask: u64) -> SysResult {
    let len = len as u32 as u64;
    let cpu_ids = crate::percpu::all_cpus().map(|cpu| cpu.id as u64 + 1).max().unwrap_or(1);
    if len * 8 < cpu_ids || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let target = thread_named(process, pid)?;
    let recorded = affinity::recorded(target).unwrap_or(u64::MAX);
    let count = len.min(CPUMASK_SIZE) as usize;
    copy::write(mask, &(recorded & online_cpus()).to_le_bytes()[..count])?;
    Ok(count as u64)
}

/// The thread `pid` names for the affinity calls: the caller for 0, a
/// thread of any process by its id (a process's id is its first thread's).
fn thread_named(process: &Process, pid: u64) -> Result<u32, Errno> {
    let pid = pid as i32;
    if pid == 0 {
        return Ok(process::current_tid().unwrap_or(process.pid));
    }
    let exists = pid > 0
        && process::all()
            .iter()
            .any(|target| target.pid == pid as u32 || target.state.lock().threads.contains_key(&(pid as u32)));
    if exists {
        Ok(pid as u32)
    } else {
        Err(Errno::ESRCH)
    }
}

/// `sched_setaffinity(pid, len, mask)`: recorded for the thread; the
/// calling thread, when the mask leaves out the CPU it runs on, moves at
/// once to the lowest CPU of the mask. Linux's order: the mask (`EFAULT`),
/// the thread (`ESRCH`), no online CPU in it (`EINVAL`).
fn sched_setaffinity(process: &Process, pid: u64, len: u64, mask: u64) -> SysResult {
    let len = (len as u32 as u64).min(CPUMASK_SIZE) as usize;
    let mut bytes = [0u8; 8];
    copy::read(mask, &mut bytes[..len])?;
    let target = thread_named(process, pid)?;
    let wanted = u64::from_le_bytes(bytes) & online_cpus();
    if wanted == 0 {
        return Err(Errno::EINVAL);
    }
    {
        let living: Vec<u32> = process::all()
            .iter()
            .flat_map(|process| {
                let mut ids: Vec<u32> = process.state.lock().threads.keys().copied().collect();
                ids.push(process.pid);
                ids
            })
            .collect();
        affinity::record(target, wanted, &living);
    }
    let here = crate::percpu::current().id;
    if Some(target) == process::current_tid().or(Some(process.pid)) && wanted & (1 << here) == 0 {
        crate::thread::migrate_current(wanted.trailing_zeros());
    }
    Ok(0)
}

/// `getcpu(cpu, node, cache)`: the CPU this call runs on, node 0.
fn getcpu(cpu: u64, node: u64) -> SysResult {
    if cpu != 0 {
        copy::write_value(cpu, &crate::percpu::current().id)?;
    }
    if node != 0 {
        copy::write_value(node, &0u32)?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// Process groups and sessions

/// `getpgid(pid)` (`session` false) and `getsid(pid)`.
fn group_of(process: &Process, pid: u64, session: bool) -> SysResult {
    let extras = |target: &Process| {
        let state = target.state.lock();
        if session {
            state.signal_extras.sid
        } else {
            state.signal_extras.pgid
        }
    };
    Ok(match process_named(process, pid)? {
        None => extras(process),
        Some(target) => extras(&target),
    } as u64)
}

/// `setpgid(pid, pgid)`: the caller or a child of its in the same session
/// joins group `pgid` (one of the session's) or starts its own; a session
/// leader cannot move.
fn setpgid(process: &Process, pid: u64, pgid: u64) -> SysResult {
    let pid = if pid as i32 == 0 { process.pid } else { pid as i32 as u32 };
    let pgid = if pgid as i32 == 0 { pid as i32 } else { pgid as i32 };
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let all = process::all();
    let target = all.iter().find(|target| target.pid == pid).ok_or(Errno::ESRCH)?;
    let own_sid = process.state.lock().signal_extras.sid;
    let (target_sid, target_is_leader) = {
        let state = target.state.lock();
        (state.signal_extras.sid, state.signal_extras.sid == target.pid)
    };
    if target.pid != process.pid {
        if process::parent_of(target) != process.pid {
            return Err(Errno::ESRCH);
        }
        if target_sid != own_sid {
            return Err(Errno::EPERM);
        }
    }
    if target_is_leader {
        return Err(Errno::EPERM);
    }
    if pgid as u32 != pid {
        let group_in_session = all.iter().any(|other| {
            other.state.lock().signal_extras.pgid == pgid as u32 && other.state.lock().signal_extras.sid == own_sid
        });
        if !group_in_session {
            return Err(Errno::EPERM);
        }
    }
    target.state.lock().signal_extras.pgid = pgid as u32;
    Ok(0)
}

/// `setsid()`: a new session and group led by the caller, unless a group
/// already has its pid (`EPERM`: it leads one).
fn setsid(process: &Process) -> SysResult {
    let taken = process::all().iter().any(|other| other.state.lock().signal_extras.pgid == process.pid);
    if taken {
        return Err(Errno::EPERM);
    }
    let mut state = process.state.lock();
    state.signal_extras.pgid = process.pid;
    state.signal_extras.sid = process.pid;
    Ok(process.pid as u64)
}

// ---------------------------------------------------------------------------
// Capabilities

/// `_LINUX_CAPABILITY_VERSION_1`, `_2` (deprecated) and `_3`.
const CAP_VERSION_1: u32 = 0x1998_0330;
const CAP_VERSION_2: u32 = 0x2007_1026;
const CAP_VERSION_3: u32 = 0x2008_0522;

/// Linux's `cap_validate_magic`: the number of 32-bit words in each set
/// for the header's version (`EFAULT`); for an unknown version the
/// kernel's own is written back (`EFAULT` if it cannot be) and the answer
/// is `EINVAL`.
fn capability_words(header: u64) -> Result<usize, Errno> {
    let version: u32 = copy::read_value(header)?;
    match version {
        CAP_VERSION_1 => Ok(1),
        CAP_VERSION_2 | CAP_VERSION_3 => Ok(2),
        _ => {
            copy::write_value(header, &CAP_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

/// True when `pid` (from a header) names the caller: 0, its pid, or the
/// calling thread's id.
fn is_caller(process: &Process, pid: i32) -> bool {
    pid == 0 || pid as u32 == process.pid || process::current_tid() == Some(pid as u32)
}

/// `capget(header, data)`: Linux's order: the version (a null `data`
/// with an unknown version is 0: the caller asked for the version), the
/// pid (`EFAULT`, `EINVAL` below 0, `ESRCH` for no such process), then the
/// sets, as many words as the version has.
fn capget(process: &Process, header: u64, data: u64) -> SysResult {
    let words = capability_words(header);
    if data == 0 || words.is_err() {
        return match words {
            Err(Errno::EINVAL) if data == 0 => Ok(0),
            other => other.map(|_| 0),
        };
    }
    let words = words?;
    let pid: i32 = copy::read_value(header + 4)?;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let sets = if is_caller(process, pid) {
        credentials(process)
    } else {
        let target = process::all()
            .into_iter()
            .find(|target| target.pid == pid as u32 || target.state.lock().threads.contains_key(&(pid as u32)));
        credentials(&*target.ok_or(Errno::ESRCH)?)
    };
    // A `struct __user_cap_data_struct` a word: its effective, permitted and
    // inheritable 32 bits. Version 1 gets the low words only (Linux drops
    // the upper capabilities).
    let mut out = Vec::new();
    for shift in (0..words).map(|index| 32 * index) {
        for set in [sets.effective, sets.permitted, sets.inheritable] {
            out.extend_from_slice(&((set >> shift) as u32).to_ne_bytes());
        }
    }
    copy::write(data, &out)?;
    Ok(0)
}

/// `capset(header, data)`: the caller's own sets only (`EPERM` for
/// another pid), in Linux's order and with its rules (`cap_capset`): no
/// new inheritable capability outside the permitted set (unless the caller
/// has `CAP_SETPCAP`) or outside the bounding set, no new permitted one,
/// effective within permitted; ambient ones not both permitted and
/// inheritable are dropped.
fn capset(process: &Process, header: u64, data: u64) -> SysResult {
    let words = capability_words(header)?;
    let pid: i32 = copy::read_value(header + 4)?;
    if !is_caller(process, pid) {
        return Err(Errno::EPERM);
    }
    // One read of the words the version has (Linux's copy_from_user); the
    // sets' missing upper words are 0.
    let mut bytes = [0u8; 24];
    copy::read(data, &mut bytes[..words * 12])?;
    let word = |index: usize| u32::from_ne_bytes([bytes[index], bytes[index + 1], bytes[index + 2], bytes[index + 3]]);
    // Each 12-byte struct holds effective, permitted, inheritable.
    let set = |which: usize| (word(which * 4) as u64 | (word(12 + which * 4) as u64) << 32) & CAP_FULL_SET;
    let (effective, permitted, inheritable) = (set(0), set(1), set(2));
    let old = credentials(process);
    let within = |new: u64, allowed: u64| new & !allowed == 0;
    if !old.has(cap::SETPCAP) && !within(inheritable, old.inheritable | old.permitted) {
        return Err(Errno::EPERM);
    }
    if !within(inheritable, old.inheritable | old.bounding)
        || !within(permitted, old.permitted)
        || !within(effective, permitted)
    {
        return Err(Errno::EPERM);
    }
    let ambient = old.ambient & permitted & inheritable;
    set_credentials(process, Credentials { effective, permitted, inheritable, ambient, ..old });
    Ok(0)
}

/// `prctl` options served (`linux/prctl.h`).
mod pr {
    pub const SET_PDEATHSIG: i32 = 1;
    pub const GET_PDEATHSIG: i32 = 2;
    pub const GET_DUMPABLE: i32 = 3;
    pub const SET_DUMPABLE: i32 = 4;
    pub const SET_NAME: i32 = 15;
    pub const GET_NAME: i32 = 16;
    pub const SET_CHILD_SUBREAPER: i32 = 36;
    pub const GET_CHILD_SUBREAPER: i32 = 37;
    pub const SET_NO_NEW_PRIVS: i32 = 38;
    pub const GET_NO_NEW_PRIVS: i32 = 39;
    pub const CAPBSET_READ: i32 = 23;
    pub const CAPBSET_DROP: i32 = 24;
    pub const GET_KEEPCAPS: i32 = 7;
    pub const SET_KEEPCAPS: i32 = 8;
    pub const GET_SECUREBITS: i32 = 27;
    pub const SET_SECUREBITS: i32 = 28;
    pub const CAP_AMBIENT: i32 = 47;
    pub const CAP_AMBIENT_IS_SET: u64 = 1;
    pub const CAP_AMBIENT_RAISE: u64 = 2;
    pub const CAP_AMBIENT_LOWER: u64 = 3;
    pub const CAP_AMBIENT_CLEAR_ALL: u64 = 4;
}

/// `prctl(option, ...)`: the capability options (Linux's
/// `cap_task_prctl`): reading and dropping the bounding set, securebits and
/// keep-caps, the ambient set; then the process options of Linux's
/// `sys_prctl` ([`process_prctl`]). Any other option is `EINVAL`, Linux's
/// answer for an option it does not know.
fn prctl(process: &Process, option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> SysResult {
    let old = credentials(process);
    let valid = |capability: u64| capability <= cap::LAST as u64;
    let bit = |capability: u64| 1u64 << capability;
    match option {
        pr::CAPBSET_READ => {
            if !valid(arg2) {
                return Err(Errno::EINVAL);
            }
            Ok((old.bounding & bit(arg2) != 0) as u64)
        }
        pr::CAPBSET_DROP => {
            if !old.has(cap::SETPCAP) {
                return Err(Errno::EPERM);
            }
            if !valid(arg2) {
                return Err(Errno::EINVAL);
            }
            set_credentials(process, Credentials { bounding: old.bounding & !bit(arg2), ..old });
            Ok(0)
        }
        pr::GET_SECUREBITS => Ok(old.securebits as u64),
        pr::SET_SECUREBITS => {
            let locked = old.securebits & securebits::ALL_LOCKS;
            if (locked >> 1) & (old.securebits ^ arg2 as u32) != 0
                || locked & !(arg2 as u32) != 0
                || arg2 & !((securebits::ALL_LOCKS | securebits::ALL_BITS) as u64) != 0
                || !old.has(cap::SETPCAP)
            {
                return Err(Errno::EPERM);
            }
            set_credentials(process, Credentials { securebits: arg2 as u32, ..old });
            Ok(0)
        }
        pr::GET_KEEPCAPS => Ok((old.securebits & securebits::KEEP_CAPS != 0) as u64),
        pr::SET_KEEPCAPS => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            if old.securebits & securebits::KEEP_CAPS_LOCKED != 0 {
                return Err(Errno::EPERM);
            }
            let securebits = if arg2 == 1 {
                old.securebits | securebits::KEEP_CAPS
            } else {
                old.securebits & !securebits::KEEP_CAPS
            };
            set_credentials(process, Credentials { securebits, ..old });
            Ok(0)
        }
        pr::CAP_AMBIENT => {
            if arg2 == pr::CAP_AMBIENT_CLEAR_ALL {
                if arg3 | arg4 | arg5 != 0 {
                    return Err(Errno::EINVAL);
                }
                set_credentials(process, Credentials { ambient: 0, ..old });
                return Ok(0);
            }
            if !valid(arg3) || arg4 | arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            match arg2 {
                pr::CAP_AMBIENT_IS_SET => Ok((old.ambient & bit(arg3) != 0) as u64),
                pr::CAP_AMBIENT_RAISE => {
                    if old.permitted & old.inheritable & bit(arg3) == 0
                        || old.securebits & securebits::NO_CAP_AMBIENT_RAISE != 0
                    {
                        return Err(Errno::EPERM);
                    }
                    set_credentials(process, Credentials { ambient: old.ambient | bit(arg3), ..old });
                    Ok(0)
                }
                pr::CAP_AMBIENT_LOWER => {
                    set_credentials(process, Credentials { ambient: old.ambient & !bit(arg3), ..old });
                    Ok(0)
                }
                _ => Err(Errno::EINVAL),
            }
        }
        _ => process_prctl(process, option, [arg2, arg3, arg4, arg5]),
    }
}

/// The `prctl` options of Linux's `sys_prctl` (`kernel/sys.c`) served here,
/// with its checks: the parent-death signal (a signal number up to 64, 0
/// for none), dumpable (0 or 1), the name (`comm`: at most 15 bytes read,
/// 16 written with the NUL), child subreaper, no-new-privs (only 1, and the
/// other arguments 0). `EINVAL` for any other option.
fn process_prctl(process: &Process, option: i32, args: [u64; 4]) -> SysResult {
    let [arg2, arg3, arg4, arg5] = args;
    let options = process.state.lock().options;
    let set = |change: &dyn Fn(&mut super::sigstate::ProcessOptions)| change(&mut process.state.lock().options);
    match option {
        pr::SET_PDEATHSIG => {
            if arg2 > signal::NSIG as u64 {
                return Err(Errno::EINVAL);
            }
            set(&|options| options.pdeath_signal = arg2 as u32);
            Ok(0)
        }
        pr::GET_PDEATHSIG => {
            copy::write_value(arg2, &(options.pdeath_signal as i32))?;
            Ok(0)
        }
        pr::GET_DUMPABLE => Ok(options.dumpable as u64),
        pr::SET_DUMPABLE => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            set(&|options| options.dumpable = arg2 as u32);
            Ok(0)
        }
        pr::SET_NAME => {
            // strncpy_from_user of at most 15 bytes: up to the NUL.
            let mut name = [0u8; 16];
            for (index, byte) in name.iter_mut().take(15).enumerate() {
                let mut one = [0u8];
                copy::read(arg2.wrapping_add(index as u64), &mut one)?;
                if one[0] == 0 {
                    break;
                }
                *byte = one[0];
            }
            set(&|options| options.comm = Some(name));
            Ok(0)
        }
        pr::GET_NAME => {
            let mut name = [0u8; 16];
            let comm = process::comm(process);
            name[..comm.len().min(15)].copy_from_slice(&comm[..comm.len().min(15)]);
            copy::write(arg2, &name)?;
            Ok(0)
        }
        pr::SET_CHILD_SUBREAPER => {
            set(&|options| options.child_subreaper = arg2 != 0);
            Ok(0)
        }
        pr::GET_CHILD_SUBREAPER => {
            copy::write_value(arg2, &(options.child_subreaper as i32))?;
            Ok(0)
        }
        pr::SET_NO_NEW_PRIVS => {
            if arg2 != 1 || arg3 | arg4 | arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            set(&|options| options.no_new_privs = true);
            Ok(0)
        }
        pr::GET_NO_NEW_PRIVS => {
            if arg2 | arg3 | arg4 | arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(options.no_new_privs as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

// ---------------------------------------------------------------------------
// The system calls nobody serves

/// The numbers counted one by one; the rest (an x32 number, or past the
/// table) share the last counter.
const COUNTED: usize = 512;

/// How often each number no table serves was asked for since boot.
static UNSUPPORTED: [AtomicU64; COUNTED + 1] = [const { AtomicU64::new(0) }; COUNTED + 1];

/// Counts a call of `number`, which nothing serves, and answers `ENOSYS`.
pub fn unsupported(number: u64) -> SysResult {
    let index = usize::try_from(number).ok().filter(|&index| index < COUNTED).unwrap_or(COUNTED);
    UNSUPPORTED[index].fetch_add(1, Ordering::Relaxed);
    Err(Errno::ENOSYS)
}

/// The numbers asked for and not served, with their counts, by number;
/// `None` for the shared counter of numbers past the table.
pub fn unsupported_calls() -> Vec<(Option<u64>, u64)> {
    UNSUPPORTED
        .iter()
        .enumerate()
        .filter_map(|(index, count)| {
            let count = count.load(Ordering::Relaxed);
            (count > 0).then_some(((index < COUNTED).then_some(index as u64), count))
        })
        .collect()
}

/// Linux's x86-64 system-call names by number (`-` for an unused number),
/// from `asm/unistd_64.h` of Linux 6.1.
const NAMES: &str = concat!(
    "read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction ",
    "rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield ",
    "mremap msync mincore madvise shmget shmat shmctl dup dup2 pause nanosleep getitimer alarm setitimer ",
    "getpid sendfile socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen ",
    "getsockname getpeername socketpair setsockopt getsockopt clone fork vfork execve exit wait4 kill ",
    "uname semget semop semctl shmdt msgget msgsnd msgrcv msgctl fcntl flock fsync fdatasync truncate ",
    "ftruncate getdents getcwd chdir fchdir rename mkdir rmdir creat link unlink symlink readlink chmod ",
    "fchmod chown fchown lchown umask gettimeofday getrlimit getrusage sysinfo times ptrace getuid ",
    "syslog getgid setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid ",
    "getgroups setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget ",
    "capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib ",
    "personality ustat statfs fstatfs sysfs getpriority setpriority sched_setparam sched_getparam ",
    "sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min ",
    "sched_rr_get_interval mlock munlock mlockall munlockall vhangup modify_ldt pivot_root _sysctl prctl ",
    "arch_prctl adjtimex setrlimit chroot sync acct settimeofday mount umount2 swapon swapoff reboot ",
    "sethostname setdomainname iopl ioperm create_module init_module delete_module get_kernel_syms ",
    "query_module quotactl nfsservctl getpmsg putpmsg afs_syscall tuxcall security gettid readahead ",
    "setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr ",
    "removexattr lremovexattr fremovexattr tkill time futex sched_setaffinity sched_getaffinity ",
    "set_thread_area io_setup io_destroy io_getevents io_submit io_cancel get_thread_area lookup_dcookie ",
    "epoll_create epoll_ctl_old epoll_wait_old remap_file_pages getdents64 set_tid_address ",
    "restart_syscall semtimedop fadvise64 timer_create timer_settime timer_gettime timer_getoverrun ",
    "timer_delete clock_settime clock_gettime clock_getres clock_nanosleep exit_group epoll_wait ",
    "epoll_ctl tgkill utimes vserver mbind set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend ",
    "mq_timedreceive mq_notify mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set ",
    "ioprio_get inotify_init inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat mknodat ",
    "fchownat futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat ",
    "pselect6 ppoll unshare set_robust_list get_robust_list splice tee sync_file_range vmsplice ",
    "move_pages utimensat epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime ",
    "timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev ",
    "rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 name_to_handle_at ",
    "open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv process_vm_writev ",
    "kcmp finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create ",
    "kexec_file_load bpf execveat userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 ",
    "pkey_mprotect pkey_alloc pkey_free statx io_pgetevents rseq - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - - - - - - pidfd_send_signal io_uring_setup io_uring_enter ",
    "io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 close_range ",
    "openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr quotactl_fd ",
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret process_mrelease ",
    "futex_waitv set_mempolicy_home_node",
);

/// The name of system call `number` ("clone3"), if it has one.
pub fn syscall_name(number: u64) -> Option<&'static str> {
    NAMES.split(' ').nth(usize::try_from(number).ok()?).filter(|name| *name != "-" && !name.is_empty())
}
