//! The system-call table: Linux x86-64 numbers, arguments in RDI, RSI, RDX,
//! R10, R8, R9, the result or `-errno` in RAX. A number not listed here
//! returns `ENOSYS`, which C libraries expect and handle (`rseq`, `clone3`).
//!
//! Each call validates its arguments in Linux's order and copies user
//! memory only through [`super::copy`]. Calls that end the program
//! (`exit`, `exit_group`) drop everything they hold before leaving.

use super::copy;
use super::errno::{Errno, SysResult};
use super::files::{self, Backing, OpenFile};
use super::memory;
use super::misc;
use super::proc;
use super::process::{self, ExitStatus, Process, RLimit, RLIMIT_COUNT};
use super::signal;
use crate::arch::frame::TrapFrame;
use crate::fs;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The system calls, by number.
#[allow(missing_docs)]
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const SCHED_YIELD: u64 = 24;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const EXIT: u64 = 60;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const GETCWD: u64 = 79;
    pub const READLINK: u64 = 89;
    pub const GETRLIMIT: u64 = 97;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const GETPPID: u64 = 110;
    pub const ARCH_PRCTL: u64 = 158;
    pub const GETTID: u64 = 186;
    pub const TKILL: u64 = 200;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const OPENAT: u64 = 257;
    pub const NEWFSTATAT: u64 = 262;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const PRLIMIT64: u64 = 302;
    pub const GETRANDOM: u64 = 318;
    pub const FACCESSAT2: u64 = 439;
}

/// `AT_FDCWD`: a path relative to the working directory.
const AT_FDCWD: u64 = (-100i64) as u64;
/// `AT_EMPTY_PATH`.
const AT_EMPTY_PATH: u64 = 0x1000;
/// `AT_SYMLINK_NOFOLLOW`.
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// Runs the system call in `frame` for the running process.
pub fn dispatch(frame: &mut TrapFrame) {
    let number = frame.rax;
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    if number == nr::EXIT || number == nr::EXIT_GROUP {
        // Nothing is held here: leave_user abandons this stack.
        process::exit_current(ExitStatus::Exited(args[0] as u8));
    }
    let Some(process) = process::current() else {
        frame.rax = Errno::ENOSYS.to_return();
        return;
    };
    if number == nr::RT_SIGRETURN {
        // The whole frame is the saved one now: no return value.
        let restored = signal::sigreturn(&process, frame);
        drop(process);
        if let Err(info) = restored {
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

fn call(process: &Arc<Process>, number: u64, a: [u64; 6]) -> SysResult {
    match number {
        nr::READ => files::read(&process.state.lock().files.get(a[0])?, a[1], a[2]),
        nr::WRITE => files::write(&process.state.lock().files.get(a[0])?, a[1], a[2]),
        nr::READV => vectored(process, a[0], a[1], a[2], false),
        nr::WRITEV => vectored(process, a[0], a[1], a[2], true),
        nr::PREAD64 => pread(process, a[0], a[1], a[2], a[3]),
        nr::OPEN => open(process, AT_FDCWD, a[0], a[1]),
        nr::OPENAT => open(process, a[0], a[1], a[2]),
        nr::CLOSE => process.state.lock().files.close(a[0]),
        nr::LSEEK => files::seek(&process.state.lock().files.get(a[0])?, a[1] as i64, a[2] as u32),
        nr::STAT => stat_path(process, AT_FDCWD, a[0], a[1], 0),
        nr::LSTAT => stat_path(process, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW),
        nr::FSTAT => stat_fd(process, a[0], a[1]),
        nr::NEWFSTATAT => stat_path(process, a[0], a[1], a[2], a[3]),
        nr::ACCESS => access(process, AT_FDCWD, a[0], a[1], 0),
        nr::FACCESSAT => access(process, a[0], a[1], a[2], 0),
        nr::FACCESSAT2 => access(process, a[0], a[1], a[2], a[3]),
        nr::READLINK => readlink(process, AT_FDCWD, a[0], a[1], a[2]),
        nr::READLINKAT => readlink(process, a[0], a[1], a[2], a[3]),
        nr::GETCWD => getcwd(a[0], a[1]),
        nr::IOCTL => ioctl(process, a[0]),
        nr::MMAP => memory::mmap(process, a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::MPROTECT => memory::mprotect(process, a[0], a[1], a[2]),
        nr::MUNMAP => memory::munmap(process, a[0], a[1]),
        nr::BRK => memory::brk(process, a[0]),
        nr::RT_SIGPROCMASK => sigprocmask(process, a[0], a[1], a[2], a[3]),
        nr::RT_SIGACTION => signal::sigaction(process, a[0], a[1], a[2], a[3]),
        nr::KILL => signal::kill(process, a[0] as i32 as i64, a[1]),
        nr::TKILL => {
            if (a[0] as i32) <= 0 {
                return Err(Errno::EINVAL);
            }
            signal::kill(process, a[0] as i32 as i64, a[1])
        }
        nr::TGKILL => {
            if (a[0] as i32) <= 0 || (a[1] as i32) <= 0 {
                return Err(Errno::EINVAL);
            }
            if a[0] != a[1] {
                return Err(Errno::ESRCH);
            }
            signal::kill(process, a[1] as i32 as i64, a[2])
        }
        nr::SCHED_YIELD => {
            crate::thread::yield_now();
            Ok(0)
        }
        nr::NANOSLEEP => nanosleep(a[0], a[1]),
        nr::CLOCK_NANOSLEEP => clock_nanosleep(a[0], a[1], a[2], a[3]),
        nr::CLOCK_GETTIME => clock_gettime(a[0], a[1]),
        nr::GETPID | nr::GETTID => Ok(process.pid as u64),
        nr::GETPPID => Ok(0),
        nr::GETUID | nr::GETGID | nr::GETEUID | nr::GETEGID => Ok(0),
        nr::UNAME => uname(a[0]),
        nr::ARCH_PRCTL => arch_prctl(a[0], a[1]),
        nr::SET_TID_ADDRESS => {
            process.state.lock().clear_child_tid = a[0];
            Ok(process.pid as u64)
        }
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
        // process calls; a number none of them knows is ENOSYS.
        _ => memory::call(process, number, a)
            .or_else(|| files::call(process, number, a))
            .or_else(|| misc::call(process, number, a))
            .unwrap_or(Err(Errno::ENOSYS)),
    }
}

/// `readv` and `writev`: each `struct iovec { base, len }` in turn; stops
/// at the first short transfer, as Linux does for files.
fn vectored(process: &Process, fd: u64, iov: u64, count: u64, writing: bool) -> SysResult {
    const IOV_MAX: u64 = 1024;
    let file = process.state.lock().files.get(fd)?;
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut vectors = Vec::with_capacity(count as usize);
    for index in 0..count {
        let base = copy::read_value::<u64>(iov + index * 16)?;
        let len = copy::read_value::<u64>(iov + index * 16 + 8)?;
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        vectors.push((base, len));
    }
    let mut total = 0u64;
    for (base, len) in vectors {
        let done = match if writing { files::write(&file, base, len) } else { files::read(&file, base, len) } {
            Ok(done) => done,
            Err(error) if total == 0 => return Err(error),
            Err(_) => break,
        };
        total += done;
        if done < len {
            break;
        }
    }
    Ok(total)
}

fn pread(process: &Process, fd: u64, buf: u64, len: u64, offset: u64) -> SysResult {
    let file = process.state.lock().files.get(fd)?;
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = {
        let open = file.lock();
        let Some(bytes) = open.bytes() else { return Err(Errno::ESPIPE) };
        let start = (offset.min(bytes.len() as u64)) as usize;
        let count = (len.min(u32::MAX as u64) as usize).min(bytes.len() - start);
        bytes[start..start + count].to_vec()
    };
    copy::write(buf, &bytes)?;
    Ok(bytes.len() as u64)
}

/// What a path names.
enum Node {
    /// An initrd file.
    File(&'static fs::File),
    /// A directory: the root or a prefix of initrd paths, or `/proc`.
    Directory,
    /// A `/proc` file, made when opened.
    Proc(&'static str),
}

/// Reads the path argument and resolves it (the working directory is `/`;
/// a relative path with a directory descriptor other than `AT_FDCWD`
/// is `ENOTDIR`, as no descriptor here is a directory).
fn path_arg(process: &Process, dirfd: u64, addr: u64) -> Result<String, Errno> {
    let bytes = copy::read_string(addr, PATH_MAX - 1)?;
    let path = String::from_utf8(bytes).map_err(|_| Errno::ENOENT)?;
    if !path.starts_with('/') && dirfd != AT_FDCWD && !path.is_empty() {
        process.state.lock().files.get(dirfd)?;
        return Err(Errno::ENOTDIR);
    }
    Ok(path)
}

/// Resolves `path` (absolute, or relative to `/`), folding `.` and `..`.
fn lookup(path: &str) -> Result<Node, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let name = parts.join("/");
    match name.as_str() {
        "" | "proc" | "proc/self" => return Ok(Node::Directory),
        "proc/self/maps" => return Ok(Node::Proc("maps")),
        "proc/self/status" => return Ok(Node::Proc("status")),
        "proc/meminfo" => return Ok(Node::Proc("meminfo")),
        "proc/self/exe" => return Ok(Node::Proc("exe")),
        _ => {}
    }
    if let Ok(file) = fs::find(&name) {
        return Ok(Node::File(file));
    }
    let prefix = alloc::format!("{name}/");
    if fs::files().iter().any(|file| file.name().starts_with(&prefix)) {
        return Ok(Node::Directory);
    }
    Err(Errno::ENOENT)
}

fn open(process: &Process, dirfd: u64, path: u64, flags: u64) -> SysResult {
    const O_ACCMODE: u64 = 3;
    const O_CREAT: u64 = 0o100;
    const O_DIRECTORY: u64 = 0o200000;
    let path = path_arg(process, dirfd, path)?;
    let node = match lookup(&path) {
        Err(Errno::ENOENT) if flags & O_CREAT != 0 => return Err(Errno::EROFS),
        other => other?,
    };
    if flags & O_DIRECTORY != 0 && !matches!(node, Node::Directory) {
        return Err(Errno::ENOTDIR);
    }
    let writing = flags & O_ACCMODE != 0;
    let backing = match node {
        Node::Directory if writing => return Err(Errno::EISDIR),
        Node::Directory => Backing::Generated(Vec::new()),
        _ if writing => return Err(Errno::EROFS),
        Node::File(file) => Backing::Initrd(file),
        Node::Proc("maps") => Backing::Generated(proc::maps(process)),
        Node::Proc("status") => Backing::Generated(proc::status(process)),
        Node::Proc("meminfo") => Backing::Generated(proc::meminfo()),
        // The program's own file, as Linux opens the link's target.
        Node::Proc("exe") => Backing::Initrd(process::find_program(&process.path).map_err(|_| Errno::ENOENT)?.0),
        Node::Proc(_) => return Err(Errno::EACCES),
    };
    process.state.lock().files.add(OpenFile { backing, offset: 0 })
}

/// `struct stat` of x86-64 Linux (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Stat {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    pad0: u32,
    rdev: u64,
    size: i64,
    blksize: i64,
    blocks: i64,
    times: [i64; 6],
    unused: [i64; 3],
}

const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

fn stat_of(node: &Node) -> Stat {
    let mut stat = Stat { dev: 1, nlink: 1, blksize: 4096, ..Stat::default() };
    match node {
        Node::File(file) => {
            let executable = file.name().starts_with("bin/");
            stat.mode = S_IFREG | if executable { 0o555 } else { 0o444 };
            stat.ino = proc::inode_of(file.name());
            stat.size = file.size() as i64;
            stat.blocks = file.size().div_ceil(512) as i64;
        }
        Node::Directory => {
            stat.mode = S_IFDIR | 0o555;
            stat.nlink = 2;
        }
        Node::Proc(name) => {
            stat.dev = 2;
            stat.mode = if *name == "exe" { 0o120777 } else { S_IFREG | 0o444 };
        }
    }
    stat
}

fn stat_fd(process: &Process, fd: u64, buf: u64) -> SysResult {
    let file = process.state.lock().files.get(fd)?;
    let stat = match &file.lock().backing {
        // The serial console, as Linux shows /dev/ttyS0: a character device.
        Backing::Console => Stat {
            dev: 5,
            ino: 3,
            nlink: 1,
            mode: S_IFCHR | 0o620,
            rdev: 4 << 8 | 64,
            blksize: 1024,
            ..Stat::default()
        },
        Backing::Initrd(data) => stat_of(&Node::File(data)),
        // As Linux's /proc files: size 0, whatever reading them gives.
        Backing::Generated(_) => Stat { dev: 2, nlink: 1, mode: S_IFREG | 0o444, blksize: 1024, ..Stat::default() },
    };
    copy::write_value(buf, &stat)?;
    Ok(0)
}

fn stat_path(process: &Process, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | 0x800) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = copy::read_string(path, PATH_MAX - 1)?;
    if name.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            return stat_node(&Node::Directory, buf);
        }
        return stat_fd(process, dirfd, buf);
    }
    let path = path_arg(process, dirfd, path)?;
    let node = lookup(&path)?;
    stat_node(&node, buf)
}

fn stat_node(node: &Node, buf: u64) -> SysResult {
    copy::write_value(buf, &stat_of(node))?;
    Ok(0)
}

fn access(process: &Process, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    const W_OK: u64 = 2;
    if mode & !7 != 0 || flags & !(0x200 | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(process, dirfd, path)?;
    let node = lookup(&path)?;
    if mode & W_OK != 0 {
        return Err(Errno::EROFS);
    }
    let _ = node;
    Ok(0)
}

fn readlink(process: &Process, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(process, dirfd, path)?;
    match lookup(&path)? {
        Node::Proc("exe") => {
            let target = process.path.as_bytes();
            let count = target.len().min(size as usize);
            copy::write(buf, &target[..count])?;
            Ok(count as u64)
        }
        _ => Err(Errno::EINVAL), // not a symbolic link
    }
}

fn getcwd(buf: u64, size: u64) -> SysResult {
    if size < 2 {
        return Err(Errno::ERANGE);
    }
    copy::write(buf, b"/\0")?;
    Ok(2)
}

fn ioctl(process: &Process, fd: u64) -> SysResult {
    // The console is a serial line without a terminal driver: every
    // terminal request fails as on a pipe.
    process.state.lock().files.get(fd)?;
    Err(Errno::ENOTTY)
}

fn sigprocmask(process: &Process, how: u64, set: u64, old: u64, size: u64) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    const UNBLOCKABLE: u64 = 1 << (9 - 1) | 1 << (19 - 1); // SIGKILL, SIGSTOP
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let current = process.state.lock().signal_mask;
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
        process.state.lock().signal_mask = mask & !UNBLOCKABLE;
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

fn sleep_for(request: u64) -> SysResult {
    let time: Timespec = copy::read_value(request)?;
    if time.sec < 0 || !(0..1_000_000_000).contains(&time.nsec) {
        return Err(Errno::EINVAL);
    }
    let ms = (time.sec as u64).saturating_mul(1000).saturating_add((time.nsec as u64).div_ceil(1_000_000));
    crate::thread::sleep_ms(ms);
    Ok(0)
}

fn nanosleep(request: u64, _remaining: u64) -> SysResult {
    sleep_for(request)
}

fn clock_nanosleep(clock: u64, flags: u64, request: u64, _remaining: u64) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    if !matches!(clock, 0 | 1 | 7) {
        return Err(Errno::EINVAL);
    }
    if flags & TIMER_ABSTIME != 0 {
        let time: Timespec = copy::read_value(request)?;
        let target = (time.sec as u64).saturating_mul(1_000_000_000).saturating_add(time.nsec as u64);
        let now = crate::arch::tsc::nanos_since_boot();
        crate::thread::sleep_ms(target.saturating_sub(now).div_ceil(1_000_000));
        return Ok(0);
    }
    sleep_for(request)
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
