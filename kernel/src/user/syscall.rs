//! The system-call table: Linux x86-64 numbers, arguments in RDI, RSI, RDX,
//! R10, R8, R9, the result or `-errno` in RAX. A number not listed here
//! goes to the tables of `memory`, `files`, `timers` and `misc`; one none of them
//! serves returns `ENOSYS` (counted: the shell's `syscalls`), which C
//! libraries expect and handle (`rseq`, `clone3`).
//!
//! Each call validates its arguments in Linux's order and copies user
//! memory only through [`super::copy`]. Calls that end the program
//! (`exit`, `exit_group`) drop everything they hold before leaving.

use super::copy;
use super::errno::{Errno, SysResult};
use super::files;
use super::jobs;
use super::memory;
use super::misc;
use super::process::{self, ExitStatus, Process, RLimit, RLIMIT_COUNT};
use super::signal;
use super::timers;
use crate::arch::frame::TrapFrame;
use alloc::sync::Arc;

/// The system calls, by number.
#[allow(missing_docs)]
pub mod nr {
    pub const CLOSE: u64 = 3;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const SCHED_YIELD: u64 = 24;
    pub const GETPID: u64 = 39;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const WAIT4: u64 = 61;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const GETRLIMIT: u64 = 97;
    pub const GETPPID: u64 = 110;
    pub const ARCH_PRCTL: u64 = 158;
    pub const GETTID: u64 = 186;
    pub const FUTEX: u64 = 202;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_GETRES: u64 = 229;
    pub const SYSINFO: u64 = 99;
    pub const EXIT_GROUP: u64 = 231;
    pub const WAITID: u64 = 247;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const PRLIMIT64: u64 = 302;
    pub const GETRANDOM: u64 = 318;
}

/// Runs the system call in `frame` for the running process.
pub fn dispatch(frame: &mut TrapFrame) {
    let number = frame.rax;
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    // Nothing is held here: leave_user abandons this stack.
    if number == nr::EXIT {
        process::exit_thread(args[0] as u8);
    }
    if number == nr::EXIT_GROUP {
        process::exit_current(ExitStatus::Exited(args[0] as u8));
    }
    let Some(process) = process::current() else {
        frame.rax = Errno::ENOSYS.to_return();
        return;
    };
    if matches!(number, nr::FORK | nr::VFORK | nr::CLONE) {
        // The child starts from this frame: the call needs all of it.
        let (flags, stack, parent_tid, child_tid, tls) = match number {
            nr::CLONE => (args[0], args[1], args[2], args[3], args[4]),
            _ => (17, 0, 0, 0, 0), // SIGCHLD
        };
        const CLONE_VM: u64 = 0x100;
        let result = if number == nr::CLONE && flags & CLONE_VM != 0 {
            process::spawn_thread(&process, frame, flags, stack, parent_tid, child_tid, tls)
        } else {
            process::fork(&process, frame, flags, stack, parent_tid, child_tid, tls, memory::forget_locks)
        };
        frame.rax = result.unwrap_or_else(Errno::to_return);
        drop(process);
        return;
    }
    if number == nr::EXECVE {
        // On success the frame is the new program's: no return value.
        let result = process::execve(&process, frame, args[0], args[1], args[2]);
        drop(process);
        match result {
            Ok(true) => {}
            Ok(false) => {
                let info = signal::SignalInfo { signal: signal::Signal::SIGSEGV, code: 0, addr: 0 };
                process::exit_current(ExitStatus::Killed { info, rip: frame.rip });
            }
            Err(errno) => frame.rax = errno.to_return(),
        }
        return;
    }
    if number == nr::RT_SIGRETURN {
        // The whole frame is the saved one now: no return value.
        let outcome = match signal::sigreturn(&process, frame) {
            Ok(()) => signal::Outcome::Resume,
            // A frame that cannot be returned to: the #GP the return would
            // raise, as a signal the program may catch (Linux does the same).
            Err(info) => signal::deliver(&process, frame, info, true),
        };
        drop(process);
        if let signal::Outcome::Terminate(info) = outcome {
            process::exit_current(ExitStatus::Killed { info, rip: frame.rip });
        }
        return;
    }
    let result = call(&process, number, args);
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.to_return(),
    };
    let outcome = signal::deliver_pending(&process, frame);
    drop(process);
    if let signal::Outcome::Terminate(info) = outcome {
        process::exit_current(ExitStatus::Killed { info, rip: frame.rip });
    }
}

// Inlined into its one caller: on the path of every system call
// (DESIGN.md, "Inlining").
#[inline(always)]
fn call(process: &Arc<Process>, number: u64, a: [u64; 6]) -> SysResult {
    match number {
        nr::CLOSE => process.state.lock().files.close(a[0]),
        nr::LSEEK => files::seek(&process.state.lock().files.get(a[0])?, a[1] as i64, a[2] as u32),
        nr::MMAP => memory::mmap(process, a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::MPROTECT => memory::mprotect(process, a[0], a[1], a[2]),
        nr::MUNMAP => memory::munmap(process, a[0], a[1]),
        nr::BRK => memory::brk(process, a[0]),
        nr::RT_SIGPROCMASK => sigprocmask(process, a[0], a[1], a[2], a[3]),
        nr::RT_SIGACTION => signal::sigaction(process, a[0], a[1], a[2], a[3]),
        nr::KILL => signal::kill(process, a[0] as i32 as i64, a[1]),
        nr::SCHED_YIELD => {
            crate::thread::yield_now();
            Ok(0)
        }
        nr::CLOCK_GETTIME => clock_gettime(a[0], a[1]),
        nr::CLOCK_GETRES => clock_getres(a[0], a[1]),
        nr::SYSINFO => sysinfo(a[0]),
        nr::GETPID => Ok(process.pid as u64),
        nr::GETTID => Ok(process::current_tid().unwrap_or(process.pid) as u64),
        nr::FUTEX => {
            let interrupted = || process.exiting() || signal::interrupting(process);
            let shared_word = |address: u64| memory::shared_word(process, address);
            super::futex::futex(process.space.id(), a[0], a[1], a[2], a[3], a[4], a[5], &shared_word, &interrupted)
        }
        nr::GETPPID => Ok(process::parent_of(process) as u64),
        nr::WAIT4 => jobs::wait4(process, a[0] as i32 as i64, a[1], a[2], a[3]),
        nr::WAITID => jobs::waitid(process, a[0], a[1], a[2], a[3], a[4]),
        nr::UNAME => uname(a[0]),
        nr::ARCH_PRCTL => arch_prctl(a[0], a[1]),
        nr::SET_TID_ADDRESS => Ok(process::set_tid_address(process, a[0])),
        nr::SET_ROBUST_LIST => {
            // Linux checks only the length: the head is read at exit.
            if a[1] != 24 {
                return Err(Errno::EINVAL);
            }
            process.state.lock().robust_list = (a[0], a[1]);
            Ok(0)
        }
        nr::GETRLIMIT => prlimit(process, 0, a[0], 0, a[1]),
        nr::PRLIMIT64 => prlimit(process, a[0], a[1], a[2], a[3]),
        nr::GETRANDOM => getrandom(a[0], a[1], a[2]),
        // The rest of the memory calls, then the rest of the file and
        // process calls; a number none of them knows is ENOSYS (counted).
        _ => memory::call(process, number, a)
            .or_else(|| files::call(process, number, a))
            .or_else(|| super::dirs::call(process, number, a))
            .or_else(|| super::creds::call(process, number, a))
            .or_else(|| timers::call(process, number, a))
            .or_else(|| super::mount::call(process, number, a))
            .or_else(|| super::reboot::call(process, number, a))
            .or_else(|| misc::call(process, number, a))
            .unwrap_or_else(|| misc::unsupported(number)),
    }
}

fn sigprocmask(process: &Process, how: u64, set: u64, old: u64, size: u64) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    const UNBLOCKABLE: u64 = 1 << (9 - 1) | 1 << (19 - 1); // SIGKILL, SIGSTOP
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let current = process.state.lock().mask();
    if old != 0 {
        copy::write_value(old, &current)?;
    }
    if set != 0 {
        let new: u64 = copy::read_value(set)?;
        let mask = match how {
            SIG_BLOCK => current | new,
            SIG_UNBLOCK => current & !new,
            SIG_SETMASK => new,
            _ => return Err(Errno::EINVAL),
        };
        *process.state.lock().mask_mut() = mask & !UNBLOCKABLE;
    }
    Ok(0)
}

/// `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

fn clock_gettime(clock: u64, buf: u64) -> SysResult {
    let nanos = match clock {
        // REALTIME and its coarse variant: there is no RTC reading yet, so
        // the wall clock starts at the epoch when the kernel boots.
        0..=7 => crate::arch::tsc::nanos_since_boot(),
        _ => return Err(Errno::EINVAL),
    };
    let time = Timespec { sec: (nanos / 1_000_000_000) as i64, nsec: (nanos % 1_000_000_000) as i64 };
    copy::write_value(buf, &time)?;
    Ok(0)
}

/// `clock_getres(clock, res)`: the clocks `clock_gettime` reads, each to
/// the nanosecond (they all read the time-stamp counter); a null `res` is
/// allowed.
fn clock_getres(clock: u64, res: u64) -> SysResult {
    if clock > 7 {
        return Err(Errno::EINVAL);
    }
    if res != 0 {
        copy::write_value(res, &Timespec { sec: 0, nsec: 1 })?;
    }
    Ok(0)
}

/// `struct sysinfo` of x86-64 Linux (112 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Sysinfo {
    uptime: i64,
    loads: [u64; 3],
    total_ram: u64,
    free_ram: u64,
    shared_ram: u64,
    buffer_ram: u64,
    total_swap: u64,
    free_swap: u64,
    procs: u16,
    pad: u16,
    pad2: u32,
    total_high: u64,
    free_high: u64,
    mem_unit: u32,
    padding: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<Sysinfo>() == 112);

/// `sysinfo(info)`: the seconds since boot, the frames managed and free
/// (in bytes, `mem_unit` 1), the processes; no load average (0), no swap,
/// no high memory.
fn sysinfo(info: u64) -> SysResult {
    let frames = crate::mem::frames::stats();
    let out = Sysinfo {
        uptime: (crate::arch::tsc::nanos_since_boot() / 1_000_000_000) as i64,
        total_ram: frames.managed as u64 * 4096,
        free_ram: frames.free as u64 * 4096,
        procs: process::all().len().min(u16::MAX as usize) as u16,
        mem_unit: 1,
        ..Sysinfo::default()
    };
    copy::write_value(info, &out)?;
    Ok(0)
}

fn uname(buf: u64) -> SysResult {
    let mut uts = [0u8; 6 * 65];
    let fields: [&[u8]; 6] = [b"Nacre", b"nacre", b"6.1.0-nacre", b"#1 SMP", b"x86_64", b"(none)"];
    for (index, field) in fields.iter().enumerate() {
        uts[index * 65..index * 65 + field.len()].copy_from_slice(field);
    }
    copy::write(buf, &uts)?;
    Ok(0)
}

fn arch_prctl(code: u64, addr: u64) -> SysResult {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match code {
        ARCH_SET_FS => {
            if addr >= super::layout::user_top() {
                return Err(Errno::EPERM);
            }
            crate::thread::set_user_fs_base(addr);
            Ok(0)
        }
        ARCH_GET_FS => {
            copy::write_value(addr, &crate::thread::user_fs_base())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn prlimit(process: &Process, pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    if pid != 0 && pid != process.pid as u64 {
        return Err(Errno::ESRCH);
    }
    let index = usize::try_from(resource).ok().filter(|&index| index < RLIMIT_COUNT).ok_or(Errno::EINVAL)?;
    let wanted = if new != 0 {
        let limit: RLimit = copy::read_value(new)?;
        if limit.cur > limit.max {
            return Err(Errno::EINVAL);
        }
        Some(limit)
    } else {
        None
    };
    let previous = {
        let mut state = process.state.lock();
        let previous = state.rlimits[index];
        if let Some(limit) = wanted {
            state.rlimits[index] = limit; // root may raise the hard limit
        }
        previous
    };
    if wanted.is_some() && index == process::RLIMIT_STACK {
        memory::stack_limit_changed(process);
    }
    if old != 0 {
        copy::write_value(old, &previous)?;
    }
    Ok(0)
}

fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(i32::MAX as u64);
    copy::check_range(buf, len)?;
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        super::random::fill(&mut chunk[..n]);
        if let Err(error) = copy::write(buf + done, &chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(error) };
        }
        done += n as u64;
    }
    Ok(done)
}
