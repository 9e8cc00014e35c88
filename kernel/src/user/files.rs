//! A process's open files and the file system calls.
//!
//! What a descriptor can name ([`Backing`]): the console (0, 1 and 2, and
//! `/dev/tty`: a terminal to `ioctl`, where writes print and reads see end
//! of file: the shell owns the keyboard while a program runs), an initrd
//! file (read-only: opening one for writing, or creating one, is `EROFS`),
//! a directory (the initrd's, `/dev`, those of `/proc` and `/sys`;
//! `getdents64` lists them), a generated `/proc` or `/sys` file (`maps`,
//! `smaps`, `status`, `meminfo`, the sysctls, made when opened: see
//! [`proc`]; `stat`, `cmdline`, `mounts`, `cpuinfo`, the writable
//! `oom_score_adj`: see [`procinfo`]; `/sys`: see [`sysfs`]; `pagemap`,
//! made as it is read), a device of `/dev` ([`devices`]), a file in RAM
//! (`/tmp`, `/dev/shm`, a memfd: [`ramfs`]; the calls that change the tree
//! are in `dirs.rs`),
//! one end of a pipe, or an `O_PATH` handle. `/proc/self/fd/N` is a link
//! to what descriptor N is.
//!
//! The descriptor table ([`FileTable`]) holds each descriptor's open file
//! description (shared by `dup` and `fork`) and its `FD_CLOEXEC` flag; the
//! description holds the offset and the status flags `fcntl(F_GETFL)`
//! shows. Its size follows `RLIMIT_NOFILE`, up to [`TABLE_MAX`].
//!
//! Pipes ([`Pipe`]) are Linux's: a ring of up to 16 one-page buffers (64
//! KiB), a write of at most `PIPE_BUF` (4096) bytes atomic, small writes
//! merged into the last page, packet mode with `O_DIRECT`. A read of an
//! empty pipe returns end of file when no writer is left, `EAGAIN` with
//! `O_NONBLOCK`, and otherwise waits; a write with no reader left raises
//! `SIGPIPE` and fails with `EPIPE`. A wait ends when the pipe changes or a
//! signal comes (`ERESTARTSYS`: `EINTR`, or a restart with `SA_RESTART`);
//! it looks again every [`signal::WAIT_POLL_MS`].
//!
//! Every call checks its arguments in Linux's order and reaches user memory
//! only through [`super::copy`].

use super::copy;
use super::creds::{self, may};
use super::devices::{self, Device};
use super::errno::{Errno, SysResult};
pub use super::fdtable::{Backing, Directory, FileRef, Node, OpenFile, Pipe, PipeEnd, TABLE_MAX};
use super::fdtable::{DirEntry, PipeBuffer, Ring, Slot, NEXT_PIPE_INO};
use super::objects;
use super::proc;
use super::process::{self, Process, RLIMIT_NOFILE};
use super::procinfo;
use super::signal::{self, code, Signal};
use super::sysfs;
use crate::fs;
use crate::fs::ramfs::{self, mode};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use spin::Mutex;
/// The system calls this module serves, by number.
mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const PIPE: u64 = 22;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SOCKETPAIR: u64 = 53;
    pub const FCNTL: u64 = 72;
    pub const READLINK: u64 = 89;
    pub const UMASK: u64 = 95;
    pub const GETDENTS64: u64 = 217;
    pub const OPENAT: u64 = 257;
    pub const NEWFSTATAT: u64 = 262;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const STATX: u64 = 332;
    pub const FACCESSAT2: u64 = 439;
}

use super::fdtable::flags::*;

/// `AT_FDCWD` (an `int`): a path relative to the working directory.
pub(super) const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_NOFOLLOW`.
pub(super) const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `AT_EACCESS`.
const AT_EACCESS: u64 = 0x200;
/// `AT_NO_AUTOMOUNT`.
const AT_NO_AUTOMOUNT: u64 = 0x800;
/// `AT_EMPTY_PATH`.
pub(super) const AT_EMPTY_PATH: u64 = 0x1000;
/// `AT_STATX_SYNC_TYPE` (both bits set is `EINVAL`).
const AT_STATX_SYNC_TYPE: u64 = 0x6000;
/// `PATH_MAX`.
const PATH_MAX: usize = 4096;
/// `NAME_MAX`: the longest path component.
pub(super) const NAME_MAX: usize = 255;
/// The page size: a pipe buffer's size and `PIPE_BUF`.
const PAGE: usize = 4096;
/// A pipe's buffers to begin with (64 KiB).
const PIPE_SLOTS: usize = 16;
/// The most buffers `F_SETPIPE_SZ` gives a pipe (1 MiB, `pipe-max-size`).
const PIPE_MAX_SLOTS: usize = 256;
/// The most bytes one `read` or `write` moves (`MAX_RW_COUNT`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// The process's descriptor limit (`RLIMIT_NOFILE`'s soft limit).
pub(super) fn nofile_limit(process: &Process) -> u64 {
    process.state.lock().rlimits[RLIMIT_NOFILE].cur
}

/// The file the path calls name (`unsigned int` descriptors).
pub(super) fn file_of(process: &Process, fd: u64) -> Result<FileRef, Errno> {
    process.state.lock().files.get(fd)
}

// ---------------------------------------------------------------------------
// Paths

/// The node called `name` (a canonical path without the leading slash), if any.
fn node_named(process: &Process, name: &str) -> Option<Node> {
    match name {
        "" | "proc" => return Some(Node::Directory(name.to_string())),
        "proc/self" => return Some(Node::SelfLink),
        "proc/meminfo" => return Some(Node::Proc("meminfo")),
        "proc/self/maps" => return Some(Node::Proc("maps")),
        "proc/self/status" => return Some(Node::Proc("status")),
        "proc/self/smaps" => return Some(Node::Proc("smaps")),
        "proc/self/pagemap" => return Some(Node::Proc("pagemap")),
        "proc/self/exe" => return Some(Node::Proc("exe")),
        "proc/sys" | "proc/sys/vm" => return Some(Node::Directory(name.to_string())),
        "proc/sys/vm/mmap_min_addr" => return Some(Node::Proc("mmap_min_addr")),
        "proc/sys/vm/max_map_count" => return Some(Node::Proc("max_map_count")),
        _ => {}
    }
    if let Some(node) = more_node_named(process, name) {
        return Some(node);
    }
    if name.strip_prefix("proc/").is_some_and(|pid| pid == process.pid.to_string()) {
        return Some(Node::Directory("proc/self".to_string()));
    }
    if let Some(node) = other_process_node(process, name) {
        return Some(node);
    }
    if name == "proc" || name.starts_with("proc/") {
        return None;
    }
    for (mount, ram) in ramfs::mounted() {
        if name == mount {
            return Some(Node::Ram(ram.root.clone()));
        }
        if let Some(rest) = name.strip_prefix(mount).and_then(|rest| rest.strip_prefix('/')) {
            let mut inode = ram.root.clone();
            for component in rest.split('/') {
                inode = inode.lookup(component).ok()?;
            }
            return Some(Node::Ram(inode));
        }
    }
    if name == "dev" {
        return Some(Node::Directory(name.to_string()));
    }
    if let Ok(file) = fs::find(name) {
        return Some(Node::File(file));
    }
    let prefix = format!("{name}/");
    fs::files().iter().any(|file| file.name().starts_with(&prefix)).then(|| Node::Directory(name.to_string()))
}

/// The entries of another process's `/proc/PID`.
const OTHER_ENTRIES: [&str; 7] = ["cmdline", "exe", "maps", "oom_score_adj", "smaps", "stat", "status"];

/// The process `pid` names, if it is another live (or not yet reaped) one.
fn other_process(process: &Process, pid: u32) -> Option<Arc<Process>> {
    (pid != process.pid).then(|| process::all().into_iter().find(|other| other.pid == pid)).flatten()
}

/// `proc/PID` and `proc/PID/ENTRY` of another process.
fn other_process_node(process: &Process, name: &str) -> Option<Node> {
    let rest = name.strip_prefix("proc/")?;
    let (pid, entry) = match rest.split_once('/') {
        Some((pid, entry)) => (pid, Some(entry)),
        None => (rest, None),
    };
    if pid.is_empty() || (pid.len() > 1 && pid.starts_with('0')) || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    other_process(process, pid)?;
    match entry {
        None => Some(Node::Directory(format!("proc/{pid}"))),
        Some(entry) => OTHER_ENTRIES.iter().find(|&&known| known == entry).map(|&known| Node::Other(pid, known)),
    }
}

/// The pid of `proc/PID` when `path` is another process's directory.
fn other_process_directory(process: &Process, path: &str) -> Option<u32> {
    let pid: u32 = path.strip_prefix("proc/")?.parse().ok()?;
    (pid != process.pid).then_some(pid)
}

/// The bytes of another process's `/proc/PID` file `entry` (`ENOENT` once
/// it is gone).
fn other_process_file(process: &Process, pid: u32, entry: &str) -> Result<Vec<u8>, Errno> {
    let other = other_process(process, pid).ok_or(Errno::ENOENT)?;
    Ok(match entry {
        "maps" => proc::maps(&other),
        "smaps" => proc::smaps(&other),
        "status" => proc::status(&other),
        "stat" => procinfo::stat(&other),
        "cmdline" => procinfo::cmdline(&other),
        _ => procinfo::oom_score_adj(&other),
    })
}

/// The nodes of `/dev`, `/sys` and the `/proc` files of
/// [`procinfo`] called `name`, if any.
fn more_node_named(process: &Process, name: &str) -> Option<Node> {
    let node = match name {
        "proc/self/stat" => Node::Proc("stat"),
        "proc/self/cmdline" => Node::Proc("cmdline"),
        "proc/self/oom_score_adj" => Node::Proc("oom_score_adj"),
        "proc/self/mounts" | "proc/mounts" => Node::Proc("mounts"),
        "proc/cpuinfo" => Node::Proc("cpuinfo"),
        "proc/version" => Node::Proc("version"),
        "proc/interrupts" => Node::Proc("interrupts"),
        "proc/cmdline" => Node::Proc("kernel_cmdline"),
        "proc/sys/kernel/pid_max" => Node::Proc("pid_max"),
        "proc/sys/kernel/core_pattern" => Node::Proc("core_pattern"),
        "proc/sys/vm/overcommit_memory" => Node::Proc("overcommit_memory"),
        "proc/self/fd" | "proc/sys/kernel" => Node::Directory(name.to_string()),
        _ if sysfs::is_directory(name) => Node::Directory(name.to_string()),
        _ => {
            if let Some(key) = sysfs::file(name) {
                return Some(Node::Sys(key));
            }
            if let Some(device) = name.strip_prefix("dev/").and_then(devices::named) {
                return Some(Node::Device(device));
            }
            let fd = name.strip_prefix("proc/self/fd/")?;
            if fd.len() > 1 && fd.starts_with('0') {
                return None;
            }
            let fd: u32 = fd.parse().ok()?;
            process.state.lock().files.slot(fd as u64)?;
            Node::Fd(fd)
        }
    };
    Some(node)
}

/// The node an open file is, for a `/proc/self/fd` link to be followed
/// (`ENOENT` for a pipe: opening one through its link is not done here).
fn node_of_open(open: &OpenFile) -> Result<Node, Errno> {
    match &open.backing {
        Backing::Console => Ok(Node::Device(Device::TtyS0)),
        Backing::Initrd(file) => Ok(Node::File(file)),
        Backing::Generated { .. } | Backing::Pipe(_) | Backing::Socket(_) => Err(Errno::ENOENT),
        Backing::Directory(Directory { ram: Some(inode), .. }) => Ok(Node::Ram(inode.clone())),
        Backing::Directory(directory) => Ok(Node::Directory(directory.path.clone())),
        Backing::Path(node) => Ok(node.clone()),
        Backing::Ram(inode) => Ok(Node::Ram(inode.clone())),
        Backing::Device(device) => Ok(Node::Device(*device)),
    }
}

/// What the link `node` points at (a node that is not a link is itself).
fn follow(process: &Process, node: Node) -> Result<Node, Errno> {
    match node {
        Node::SelfLink => Ok(Node::Directory("proc/self".to_string())),
        Node::Fd(fd) => {
            let file = process.state.lock().files.get_any(fd as u64).map_err(|_| Errno::ENOENT)?;
            let open = file.lock();
            node_of_open(&open)
        }
        Node::Proc("exe") => {
            let (file, _) = process::find_program(&process.path).map_err(|_| Errno::ENOENT)?;
            Ok(Node::File(file))
        }
        Node::Other(pid, "exe") => {
            let other = other_process(process, pid).ok_or(Errno::ENOENT)?;
            let (file, _) = process::find_program(&other.path).map_err(|_| Errno::ENOENT)?;
            Ok(Node::File(file))
        }
        other => Ok(other),
    }
}

/// Resolves the absolute `path` component by component, as Linux's path
/// walk does: `ENOENT` for a missing component, `ENOTDIR` where a
/// non-directory is walked through (or named with a trailing slash),
/// `ENAMETOOLONG` for a component over `NAME_MAX`. Links are followed
/// except the last component's when `follow_last` is false.
pub(super) fn resolve(process: &Process, path: &str, follow_last: bool) -> Result<Node, Errno> {
    resolve_at_depth(process, path, follow_last, 0)
}

/// The most symbolic links one path walk follows (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// The path of a directory in RAM, from the root, without the leading
/// slash (`ENOENT` once removed; a memfd has none).
pub(super) fn ram_path(inode: &Arc<ramfs::Inode>) -> Result<String, Errno> {
    let (mount, _) = ramfs::mounted().into_iter().find(|(_, ram)| ram.dev == inode.dev).ok_or(Errno::ENOENT)?;
    let below = ramfs::path_below_root(inode).ok_or(Errno::ENOENT)?;
    Ok(if below.is_empty() { mount.to_string() } else { format!("{mount}/{below}") })
}

fn resolve_at_depth(process: &Process, path: &str, follow_last: bool, depth: u32) -> Result<Node, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let follow_last = follow_last || path.ends_with('/');
    let mut parts: Vec<String> = Vec::new();
    let mut node = Node::Directory(String::new());
    for (index, &component) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        if component.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        match component {
            "." => continue,
            ".." => {
                parts.pop();
                let path = parts.join("/");
                node = node_named(process, &path).unwrap_or(Node::Directory(path));
                continue;
            }
            _ => {}
        }
        parts.push(component.to_string());
        // Walking through a directory in RAM needs search permission
        // (`EACCES`); the initrd's, `/proc`'s and `/sys`'s let everyone by.
        if let Node::Ram(directory) = &node {
            ram_permission(process, directory, may::EXEC)?;
        }
        node = node_named(process, &parts.join("/")).ok_or(Errno::ENOENT)?;
        if !last || follow_last {
            if let Node::Ram(inode) = &node {
                if let Some(target) = inode.link_target() {
                    if depth >= MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let directory = parts[..parts.len() - 1].join("/");
                    let target =
                        if target.starts_with('/') { target.to_string() } else { format!("/{directory}/{target}") };
                    node = resolve_at_depth(process, &target, true, depth + 1)?;
                }
            }
            node = follow(process, node)?;
        }
        match &node {
            Node::Directory(canonical) => {
                parts = canonical.split('/').filter(|part| !part.is_empty()).map(String::from).collect();
            }
            Node::Ram(inode) if inode.is_directory() => {
                parts = ram_path(inode)?.split('/').map(String::from).collect();
            }
            _ if !last => return Err(Errno::ENOTDIR),
            _ => {}
        }
    }
    if path.ends_with('/') && !node.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    Ok(node)
}

/// Reads a path argument (`EFAULT`, `ENAMETOOLONG`).
pub(super) fn read_path(addr: u64) -> Result<String, Errno> {
    let bytes = copy::read_string(addr, PATH_MAX - 1)?;
    // No file here has a name that is not UTF-8: such a name matches none.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `name` (not empty) as an absolute path: joined to the directory `dirfd`
/// names when it is relative.
pub(super) fn absolute(process: &Process, dirfd: u64, name: String) -> Result<String, Errno> {
    if name.starts_with('/') {
        return Ok(name);
    }
    if dirfd as i32 == AT_FDCWD {
        let cwd = process.state.lock().files.cwd.clone();
        return Ok(format!("/{}/{name}", directory_path(&cwd)?));
    }
    Ok(format!("/{}/{name}", directory_of(process, dirfd)?))
}

/// The path of directory `node`, without the leading slash (`ENOENT` for
/// a directory in RAM that was removed; `ENOTDIR` for anything else).
pub(super) fn directory_path(node: &Node) -> Result<String, Errno> {
    match node {
        Node::Directory(path) => Ok(path.clone()),
        Node::Ram(inode) if inode.is_directory() => ram_path(inode),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The path of the directory descriptor `dirfd` names.
fn directory_of(process: &Process, dirfd: u64) -> Result<String, Errno> {
    let file = process.state.lock().files.get_any(dirfd)?;
    let open = file.lock();
    match &open.backing {
        Backing::Directory(Directory { ram: Some(inode), .. }) => ram_path(inode),
        Backing::Directory(directory) => Ok(directory.path.clone()),
        Backing::Path(node) => directory_path(node),
        _ => Err(Errno::ENOTDIR),
    }
}

/// What a `*at` call names: the path's node, or with `AT_EMPTY_PATH` and
/// an empty path, the descriptor's file.
pub(super) enum Target {
    /// What the path names.
    Node(Node),
    /// The descriptor's file.
    File(FileRef),
}

/// What `path` (as read, its error kept for after the flags' checks) names
/// relative to `dirfd`.
pub(super) fn target_at(
    process: &Process,
    dirfd: u64,
    path: Result<String, Errno>,
    empty_ok: bool,
    follow_last: bool,
) -> Result<Target, Errno> {
    let path = path?;
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd as i32 == AT_FDCWD {
            return Ok(Target::Node(process.state.lock().files.cwd.clone()));
        }
        return Ok(Target::File(process.state.lock().files.get_any(dirfd)?));
    }
    let path = absolute(process, dirfd, path)?;
    Ok(Target::Node(resolve(process, &path, follow_last)?))
}

// ---------------------------------------------------------------------------
// Directories

/// `d_type` values.
const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// The inode numbers of `/proc`.
const PROC_ROOT_INO: u64 = 1;
const PROC_SELF_LINK_INO: u64 = 2;
const PROC_MEMINFO_INO: u64 = 3;
const PROC_MMAP_MIN_ADDR_INO: u64 = 4;
const PROC_MAX_MAP_COUNT_INO: u64 = 5;
const PROC_CPUINFO_INO: u64 = 6;
const PROC_PID_MAX_INO: u64 = 7;
const PROC_CORE_PATTERN_INO: u64 = 8;
const PROC_OVERCOMMIT_INO: u64 = 9;
const PROC_VERSION_INO: u64 = 10;
const PROC_CMDLINE_INO: u64 = 11;
const PROC_INTERRUPTS_INO: u64 = 12;

/// The entries of `/proc/PID` by their index in [`proc_pid_ino`].
mod pid_entry {
    pub const MAPS: u64 = 1;
    pub const STATUS: u64 = 2;
    pub const EXE: u64 = 3;
    pub const SMAPS: u64 = 4;
    pub const PAGEMAP: u64 = 5;
    pub const STAT: u64 = 6;
    pub const CMDLINE: u64 = 7;
    pub const OOM_SCORE_ADJ: u64 = 8;
    pub const MOUNTS: u64 = 9;
    pub const FD: u64 = 10;
}

/// The inode of a process's `/proc/PID` entry `index` (0: the directory).
fn proc_pid_ino(pid: u32, index: u64) -> u64 {
    0x1000 + pid as u64 * 16 + index
}

/// The inode of the link `/proc/PID/fd/FD`.
fn proc_fd_ino(pid: u32, fd: u32) -> u64 {
    1 << 60 | (pid as u64) << 20 | fd as u64
}

/// The permissions of the `/proc` file with inode `ino`, as Linux's:
/// `pagemap` is the owner's only, the sysctls are writable by root (though
/// read-only here: the file system refuses the open), the rest readable.
fn proc_file_mode(ino: u64) -> u32 {
    match ino {
        PROC_MMAP_MIN_ADDR_INO | PROC_MAX_MAP_COUNT_INO => 0o644,
        PROC_PID_MAX_INO | PROC_CORE_PATTERN_INO | PROC_OVERCOMMIT_INO => 0o644,
        _ if is_pid_entry_ino(ino, pid_entry::OOM_SCORE_ADJ) => 0o644,
        _ if is_pagemap_ino(ino) => 0o400,
        _ => 0o444,
    }
}

/// True for the inode of a `/proc/PID` entry `index`.
fn is_pid_entry_ino(ino: u64, index: u64) -> bool {
    (0x1000..1 << 37).contains(&ino) && (ino - 0x1000) % 16 == index
}

/// True for the inode of a `/proc/PID/pagemap`: read when read, not when
/// opened (its contents cover the whole user space).
fn is_pagemap_ino(ino: u64) -> bool {
    is_pid_entry_ino(ino, pid_entry::PAGEMAP)
}

/// The inode of an initrd directory (a hash of its path, above every
/// file's: those are numbered from 1).
fn directory_ino(path: &str) -> u64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in path.bytes() {
        hash = (hash ^ byte as u32).wrapping_mul(0x0100_0193);
    }
    1 << 32 | hash as u64
}

fn node_ino(process: &Process, node: &Node) -> u64 {
    match node {
        Node::Ram(inode) => inode.ino,
        Node::File(file) => proc::inode_of(file.name()),
        Node::Directory(path) if path == "proc" => PROC_ROOT_INO,
        Node::Directory(path) if path == "proc/self" => proc_pid_ino(process.pid, 0),
        Node::Directory(path) if path == "proc/self/fd" => proc_pid_ino(process.pid, pid_entry::FD),
        Node::Directory(path) if path == "dev" => 1,
        Node::Directory(path) if sysfs::is_directory(path) => sysfs::ino(path),
        Node::Directory(path) => directory_ino(path),
        Node::Device(device) => device.ino(),
        Node::Sys(key) => sysfs::ino(key),
        Node::Fd(fd) => proc_fd_ino(process.pid, *fd),
        Node::Proc("cpuinfo") => PROC_CPUINFO_INO,
        Node::Proc("version") => PROC_VERSION_INO,
        Node::Proc("interrupts") => PROC_INTERRUPTS_INO,
        Node::Proc("kernel_cmdline") => PROC_CMDLINE_INO,
        Node::Proc("pid_max") => PROC_PID_MAX_INO,
        Node::Proc("core_pattern") => PROC_CORE_PATTERN_INO,
        Node::Proc("overcommit_memory") => PROC_OVERCOMMIT_INO,
        Node::Proc("stat") => proc_pid_ino(process.pid, pid_entry::STAT),
        Node::Proc("cmdline") => proc_pid_ino(process.pid, pid_entry::CMDLINE),
        Node::Proc("oom_score_adj") => proc_pid_ino(process.pid, pid_entry::OOM_SCORE_ADJ),
        Node::Proc("mounts") => proc_pid_ino(process.pid, pid_entry::MOUNTS),
        Node::SelfLink => PROC_SELF_LINK_INO,
        Node::Proc("meminfo") => PROC_MEMINFO_INO,
        Node::Proc("mmap_min_addr") => PROC_MMAP_MIN_ADDR_INO,
        Node::Proc("max_map_count") => PROC_MAX_MAP_COUNT_INO,
        Node::Proc("maps") => proc_pid_ino(process.pid, pid_entry::MAPS),
        Node::Proc("status") => proc_pid_ino(process.pid, pid_entry::STATUS),
        Node::Proc("smaps") => proc_pid_ino(process.pid, pid_entry::SMAPS),
        Node::Proc("pagemap") => proc_pid_ino(process.pid, pid_entry::PAGEMAP),
        Node::Proc(_) => proc_pid_ino(process.pid, pid_entry::EXE),
        Node::Other(pid, entry) => proc_pid_ino(
            *pid,
            match *entry {
                "maps" => pid_entry::MAPS,
                "status" => pid_entry::STATUS,
                "smaps" => pid_entry::SMAPS,
                "stat" => pid_entry::STAT,
                "cmdline" => pid_entry::CMDLINE,
                "oom_score_adj" => pid_entry::OOM_SCORE_ADJ,
                _ => pid_entry::EXE,
            },
        ),
    }
}

fn node_kind(node: &Node) -> u8 {
    match node {
        Node::Directory(_) => DT_DIR,
        Node::Ram(inode) if inode.is_directory() => DT_DIR,
        Node::Ram(inode) if inode.link_target().is_some() => DT_LNK,
        Node::SelfLink | Node::Proc("exe") | Node::Fd(_) | Node::Other(_, "exe") => DT_LNK,
        Node::Device(_) => DT_CHR,
        _ => DT_REG,
    }
}

/// The entries of directory `path`, sorted by name after `.` and `..`.
fn list(process: &Process, path: &str) -> Vec<DirEntry> {
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    let mut entries = alloc::vec![
        DirEntry { ino: node_ino(process, &Node::Directory(path.to_string())), kind: DT_DIR, name: ".".to_string() },
        DirEntry { ino: node_ino(process, &Node::Directory(parent.to_string())), kind: DT_DIR, name: "..".to_string() },
    ];
    let mut children: BTreeMap<String, Node> = BTreeMap::new();
    match path {
        "proc" => {
            children.insert("self".to_string(), Node::SelfLink);
            children.insert(process.pid.to_string(), Node::Directory("proc/self".to_string()));
            for other in process::all().iter().filter(|other| other.pid != process.pid) {
                children.insert(other.pid.to_string(), Node::Directory(format!("proc/{}", other.pid)));
            }
            children.insert("meminfo".to_string(), Node::Proc("meminfo"));
            children.insert("sys".to_string(), Node::Directory("proc/sys".to_string()));
            children.insert("cpuinfo".to_string(), Node::Proc("cpuinfo"));
            children.insert("version".to_string(), Node::Proc("version"));
            children.insert("interrupts".to_string(), Node::Proc("interrupts"));
            children.insert("cmdline".to_string(), Node::Proc("kernel_cmdline"));
            children.insert("mounts".to_string(), Node::Proc("mounts"));
        }
        _ if other_process_directory(process, path).is_some() => {
            let pid = other_process_directory(process, path).unwrap_or(0);
            for entry in OTHER_ENTRIES {
                children.insert(entry.to_string(), Node::Other(pid, entry));
            }
        }
        "proc/self" => {
            for name in ["cmdline", "mounts", "oom_score_adj", "stat"] {
                children.insert(name.to_string(), Node::Proc(name));
            }
            children.insert("fd".to_string(), Node::Directory("proc/self/fd".to_string()));
            children.insert("exe".to_string(), Node::Proc("exe"));
            children.insert("maps".to_string(), Node::Proc("maps"));
            children.insert("pagemap".to_string(), Node::Proc("pagemap"));
            children.insert("smaps".to_string(), Node::Proc("smaps"));
            children.insert("status".to_string(), Node::Proc("status"));
        }
        "proc/sys" => {
            children.insert("vm".to_string(), Node::Directory("proc/sys/vm".to_string()));
            children.insert("kernel".to_string(), Node::Directory("proc/sys/kernel".to_string()));
        }
        "proc/sys/vm" => {
            children.insert("max_map_count".to_string(), Node::Proc("max_map_count"));
            children.insert("mmap_min_addr".to_string(), Node::Proc("mmap_min_addr"));
            children.insert("overcommit_memory".to_string(), Node::Proc("overcommit_memory"));
        }
        "proc/sys/kernel" => {
            children.insert("core_pattern".to_string(), Node::Proc("core_pattern"));
            children.insert("pid_max".to_string(), Node::Proc("pid_max"));
        }
        "proc/self/fd" => {
            let state = process.state.lock();
            let open = state.files.slots.iter().enumerate().filter(|(_, slot)| slot.is_some());
            // Listed by number, as Linux lists them (not by name).
            for (fd, _) in open {
                entries.push(DirEntry { ino: proc_fd_ino(process.pid, fd as u32), kind: DT_LNK, name: fd.to_string() });
            }
        }
        _ if sysfs::is_directory(path) => {
            for (name, key) in sysfs::children(path) {
                let node = match key {
                    Some(key) => Node::Sys(key),
                    None => Node::Directory(format!("{path}/{name}")),
                };
                children.insert(name, node);
            }
        }
        _ => {
            let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
            for file in fs::files() {
                let Some(rest) = file.name().strip_prefix(prefix.as_str()) else { continue };
                match rest.split_once('/') {
                    Some((child, _)) if !child.is_empty() => {
                        children.insert(child.to_string(), Node::Directory(format!("{prefix}{child}")));
                    }
                    None if !rest.is_empty() => {
                        children.insert(rest.to_string(), Node::File(file));
                    }
                    _ => {}
                }
            }
            if path.is_empty() {
                children.insert("proc".to_string(), Node::Directory("proc".to_string()));
                children.insert("dev".to_string(), Node::Directory("dev".to_string()));
                children.insert("sys".to_string(), Node::Directory("sys".to_string()));
            }
            if path == "dev" {
                for (name, device) in devices::ALL {
                    children.insert(name.to_string(), Node::Device(device));
                }
            }
            for (mount, ram) in ramfs::mounted() {
                let (parent_of_mount, name) = mount.rsplit_once('/').unwrap_or(("", mount));
                if parent_of_mount == path {
                    children.insert(name.to_string(), Node::Ram(ram.root.clone()));
                }
            }
        }
    }
    for (name, node) in children {
        entries.push(DirEntry { ino: node_ino(process, &node), kind: node_kind(&node), name });
    }
    entries
}

/// The entries of directory `inode` in RAM, `.` and `..` first.
fn list_ram(process: &Process, inode: &Arc<ramfs::Inode>) -> Result<Vec<DirEntry>, Errno> {
    let parent_ino = match inode.parent() {
        Some(parent) => parent.ino,
        // A mount's root: `..` is the directory it is mounted in.
        None => ram_path(inode)
            .ok()
            .and_then(|path| path.rsplit_once('/').map(|(parent, _)| parent.to_string()))
            .map_or_else(
                || node_ino(process, &Node::Directory(String::new())),
                |parent| node_ino(process, &Node::Directory(parent)),
            ),
    };
    let mut entries = alloc::vec![
        DirEntry { ino: inode.ino, kind: DT_DIR, name: ".".to_string() },
        DirEntry { ino: parent_ino, kind: DT_DIR, name: "..".to_string() },
    ];
    for (name, child) in inode.entries().map_err(ram_errno)? {
        let node = Node::Ram(child);
        entries.push(DirEntry { ino: node_ino(process, &node), kind: node_kind(&node), name });
    }
    Ok(entries)
}

/// The errno of a failure of the file systems in RAM.
pub(super) fn ram_errno(error: ramfs::Error) -> Errno {
    match error {
        ramfs::Error::NotFound => Errno::ENOENT,
        ramfs::Error::Exists => Errno::EEXIST,
        ramfs::Error::NotDirectory => Errno::ENOTDIR,
        ramfs::Error::IsDirectory => Errno::EISDIR,
        ramfs::Error::NotEmpty => Errno::ENOTEMPTY,
        ramfs::Error::NoMemory => Errno::ENOSPC,
        ramfs::Error::TooBig => Errno::EFBIG,
        ramfs::Error::Invalid => Errno::EINVAL,
        ramfs::Error::CrossDevice => Errno::EXDEV,
    }
}

/// `getdents64(fd, dirp, count)`: as many `struct linux_dirent64` as fit
/// (`EINVAL` when not even the next one does), 0 at the end.
fn getdents64(process: &Process, fd: u64, buf: u64, count: u64) -> SysResult {
    let file = file_of(process, fd)?;
    let count = count as u32 as usize;
    let (bytes, next) = {
        let open = file.lock();
        let Backing::Directory(directory) = &open.backing else { return Err(Errno::ENOTDIR) };
        let mut bytes = Vec::new();
        let mut index = open.offset;
        while let Some(entry) = usize::try_from(index).ok().and_then(|index| directory.entries.get(index)) {
            // d_ino, d_off, d_reclen, d_type, then the name and its NUL.
            let reclen = (19 + entry.name.len() + 1).next_multiple_of(8);
            if bytes.len() + reclen > count {
                if bytes.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            bytes.extend_from_slice(&entry.ino.to_le_bytes());
            bytes.extend_from_slice(&(index + 1).to_le_bytes());
            bytes.extend_from_slice(&(reclen as u16).to_le_bytes());
            bytes.push(entry.kind);
            bytes.extend_from_slice(entry.name.as_bytes());
            bytes.resize(bytes.len() + reclen - 19 - entry.name.len(), 0);
            index += 1;
        }
        (bytes, index)
    };
    copy::write(buf, &bytes)?;
    file.lock().offset = next;
    Ok(bytes.len() as u64)
}

// ---------------------------------------------------------------------------
// Pipes

/// A new pipe: its read end and write end, with status flags `extra`
/// (`O_NONBLOCK`, `O_DIRECT`).
fn new_pipe(extra: u32) -> (OpenFile, OpenFile) {
    let pipe = Arc::new(Pipe {
        ring: Mutex::new(Ring { buffers: VecDeque::new(), slots: PIPE_SLOTS }),
        readers: AtomicUsize::new(1),
        writers: AtomicUsize::new(1),
        ino: NEXT_PIPE_INO.fetch_add(1, Ordering::Relaxed),
    });
    let reader = OpenFile::new(Backing::Pipe(PipeEnd { pipe: pipe.clone(), writing: false }), extra);
    let writer = OpenFile::new(Backing::Pipe(PipeEnd { pipe, writing: true }), O_WRONLY | extra);
    (reader, writer)
}

/// Waits a moment for a pipe to change; `ERESTARTSYS` when a signal should
/// end the wait instead.
fn wait_for_pipe(process: &Process) -> Result<(), Errno> {
    if signal::interrupting(process) {
        return Err(Errno::ERESTARTSYS);
    }
    crate::thread::sleep_ms(signal::WAIT_POLL_MS);
    Ok(())
}

/// Linux's `pipe_read`: what is there, up to the request (at most one packet
/// in packet mode); end of file when no writer is left; else `EAGAIN` or a
/// wait.
fn pipe_read(process: &Process, pipe: &Pipe, nonblocking: bool, io: &UserIo) -> SysResult {
    let total = io.total as usize;
    if total == 0 {
        return Ok(0);
    }
    loop {
        {
            let mut ring = pipe.ring.lock();
            if !ring.buffers.is_empty() {
                let mut taken = Vec::new();
                for buffer in &ring.buffers {
                    let wanted = (total - taken.len()).min(buffer.unread().len());
                    taken.extend_from_slice(&buffer.unread()[..wanted]);
                    if buffer.packet || taken.len() == total {
                        break;
                    }
                }
                let copied = io.write_at(0, &taken) as usize;
                let mut left = copied;
                while let Some(buffer) = ring.buffers.front_mut() {
                    let take = left.min(buffer.unread().len());
                    buffer.start += take;
                    left -= take;
                    let packet_read = buffer.packet && take > 0;
                    if !buffer.unread().is_empty() && !packet_read {
                        break;
                    }
                    ring.buffers.pop_front();
                    if packet_read || left == 0 {
                        break;
                    }
                }
                return if copied > 0 { Ok(copied as u64) } else { Err(Errno::EFAULT) };
            }
            if pipe.writers.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
        }
        if nonblocking {
            return Err(Errno::EAGAIN);
        }
        wait_for_pipe(process)?;
    }
}

/// Linux's `pipe_write`: `SIGPIPE` (unless `quiet`: `MSG_NOSIGNAL`) and
/// `EPIPE` with no reader; first the
/// part past the last whole page merged into the last buffer when it fits,
/// then a page per free slot; a full pipe is `EAGAIN` or a wait. A write of
/// at most a page is never split; a longer one may return short when
/// `O_NONBLOCK` or a signal stops it.
fn pipe_write(process: &Process, pipe: &Pipe, file_flags: u32, io: &UserIo, quiet: bool) -> SysResult {
    let total = io.total as usize;
    if total == 0 {
        return Ok(0);
    }
    let packet = file_flags & O_DIRECT != 0;
    let short = |done: usize, error: Errno| if done > 0 { Ok(done as u64) } else { Err(error) };
    let mut done = 0;
    let mut first = true;
    loop {
        {
            let mut ring = pipe.ring.lock();
            if pipe.readers.load(Ordering::Acquire) == 0 {
                drop(ring);
                if !quiet {
                    signal::send(process, Signal::SIGPIPE, code::SI_USER, process.pid);
                }
                return short(done, Errno::EPIPE);
            }
            let tail = total % PAGE;
            if first && tail != 0 {
                if let Some(last) =
                    ring.buffers.back_mut().filter(|last| last.mergeable && last.data.len() + tail <= PAGE)
                {
                    let at = last.data.len();
                    last.data.resize(at + tail, 0);
                    if io.read_at(0, &mut last.data[at..]) < tail as u64 {
                        last.data.truncate(at);
                        return Err(Errno::EFAULT);
                    }
                    done = tail;
                }
            }
            first = false;
            while done < total && ring.buffers.len() < ring.slots {
                let count = (total - done).min(PAGE);
                let mut data = Vec::new();
                if data.try_reserve_exact(PAGE).is_err() {
                    return short(done, Errno::ENOMEM);
                }
                data.resize(count, 0);
                if io.read_at(done as u64, &mut data) < count as u64 {
                    return short(done, Errno::EFAULT);
                }
                ring.buffers.push_back(PipeBuffer { data, start: 0, mergeable: !packet, packet });
                done += count;
            }
            if done == total {
                return Ok(done as u64);
            }
        }
        if file_flags & O_NONBLOCK != 0 {
            return short(done, Errno::EAGAIN);
        }
        if let Err(error) = wait_for_pipe(process) {
            return short(done, error);
        }
    }
}

/// `pipe(fds)` and `pipe2(fds, flags)`.
fn pipe2(process: &Process, fds: u64, flags: u64) -> SysResult {
    const O_NOTIFICATION_PIPE: u64 = O_EXCL as u64;
    if flags & !((O_CLOEXEC | O_NONBLOCK | O_DIRECT) as u64 | O_NOTIFICATION_PIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_NOTIFICATION_PIPE != 0 {
        return Err(Errno(65)); // ENOPKG: no watch queues here
    }
    let cloexec = flags as u32 & O_CLOEXEC != 0;
    let (reader, writer) = new_pipe(flags as u32 & (O_NONBLOCK | O_DIRECT));
    let slot = |file: OpenFile| Slot { file: Arc::new(Mutex::new(file)), path_only: false, cloexec };
    let (reader, writer) = (slot(reader), slot(writer));
    let limit = nofile_limit(process);
    let (read_fd, write_fd) = {
        let mut state = process.state.lock();
        let read_fd = state.files.install(reader, 0, limit)?;
        match state.files.install(writer, 0, limit) {
            Ok(write_fd) => (read_fd, write_fd),
            Err(error) => {
                let _ = state.files.close(read_fd);
                return Err(error);
            }
        }
    };
    if let Err(error) = copy::write_value(fds, &[read_fd as i32, write_fd as i32]) {
        let mut state = process.state.lock();
        let _ = state.files.close(read_fd);
        let _ = state.files.close(write_fd);
        return Err(error);
    }
    Ok(0)
}

/// `socketpair(domain, type, protocol, sv)`: two connected `AF_UNIX`
/// sockets, each end two pipe ends ([`super::fdtable::SocketEnd`]).
/// Linux's order: the type's flags (`EINVAL`), two descriptors
/// (`EMFILE`), their numbers written (`EFAULT`), then the socket's family
/// (`EAFNOSUPPORT`; `EOPNOTSUPP` for the Internet ones, which have no
/// pairs), protocol (`EPROTONOSUPPORT`) and type (`ESOCKTNOSUPPORT`).
fn socketpair(process: &Process, domain: u64, kind: u64, protocol: u64, sv: u64) -> SysResult {
    const AF_UNIX: u64 = 1;
    const SOCK_TYPE_MASK: u64 = 0xf;
    const SOCK_STREAM: u64 = 1;
    const SOCK_DGRAM: u64 = 2;
    const SOCK_RAW: u64 = 3;
    const SOCK_SEQPACKET: u64 = 5;
    let (domain, kind, protocol) = (domain as u32 as u64, kind as u32 as u64, protocol as u32 as u64);
    let flags = kind & !SOCK_TYPE_MASK;
    if flags & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = kind & SOCK_TYPE_MASK;
    let limit = nofile_limit(process);
    {
        let state = process.state.lock();
        let first = state.files.lowest_free(0, limit)?;
        state.files.lowest_free(first as u64 + 1, limit)?;
    }
    copy::check_range(sv, 8)?;
    if domain != AF_UNIX {
        return Err(if domain == 2 || domain == 10 { Errno::EOPNOTSUPP } else { Errno::EAFNOSUPPORT });
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let packets = match kind {
        SOCK_STREAM => false,
        SOCK_DGRAM | SOCK_RAW | SOCK_SEQPACKET => true,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let status = flags as u32 & O_NONBLOCK;
    let (a_rx, a_tx) = new_pipe(0);
    let (b_rx, b_tx) = new_pipe(0);
    let end = |rx: OpenFile, tx: OpenFile| {
        let (Backing::Pipe(rx), Backing::Pipe(tx)) = (rx.backing, tx.backing) else {
            unreachable!("new_pipe makes pipes")
        };
        let ino = NEXT_PIPE_INO.fetch_add(1, Ordering::Relaxed);
        let datagram = kind != SOCK_SEQPACKET && packets;
        OpenFile::new(Backing::Socket(super::fdtable::SocketEnd { rx, tx, packets, datagram, ino }), O_RDWR | status)
    };
    // End 0 reads what end 1 writes (pipe a) and writes what end 1 reads (pipe b).
    let cloexec = flags as u32 & O_CLOEXEC != 0;
    let slot = |file: OpenFile| Slot { file: Arc::new(Mutex::new(file)), path_only: false, cloexec };
    let (zero, one) = (slot(end(a_rx, b_tx)), slot(end(b_rx, a_tx)));
    let (fd0, fd1) = {
        let mut state = process.state.lock();
        let fd0 = state.files.install(zero, 0, limit)?;
        match state.files.install(one, 0, limit) {
            Ok(fd1) => (fd0, fd1),
            Err(error) => {
                let _ = state.files.close(fd0);
                return Err(error);
            }
        }
    };
    if let Err(error) = copy::write_value(sv, &[fd0 as i32, fd1 as i32]) {
        let mut state = process.state.lock();
        let _ = state.files.close(fd0);
        let _ = state.files.close(fd1);
        return Err(error);
    }
    Ok(0)
}

/// True for a socket of a `SOCK_DGRAM` (or `SOCK_RAW`) pair.
fn packets_kind_is_datagram(file: &FileRef) -> bool {
    matches!(&file.lock().backing, Backing::Socket(end) if end.datagram)
}

/// `sendto(fd, buf, len, flags, addr, addrlen)` and `recvfrom`, on a
/// socket of a pair: with no address and no flags but `MSG_DONTWAIT` and
/// `MSG_NOSIGNAL`, a write or a read; `ENOTSOCK` for any other file,
/// `EISCONN` for an address (the pair is connected), `EOPNOTSUPP` for
/// other flags.
fn send_receive(process: &Process, fd: u64, buf: u64, len: u64, flags: u64, addr: u64, sending: bool) -> SysResult {
    const MSG_DONTWAIT: u64 = 0x40;
    const MSG_NOSIGNAL: u64 = 0x4000;
    let file = file_of(process, fd)?;
    let packets = match &file.lock().backing {
        Backing::Socket(end) => end.packets,
        _ => return Err(Errno(88)), // ENOTSOCK
    };
    // An address: a stream is connected (EISCONN); a datagram would be
    // sent to a name nobody bound here (ECONNREFUSED); a packet socket
    // ignores it.
    if sending && addr != 0 && packets_kind_is_datagram(&file) {
        return Err(Errno(111)); // ECONNREFUSED
    }
    if sending && addr != 0 && !packets {
        return Err(Errno(106)); // EISCONN
    }
    if flags as u32 as u64 & !(MSG_DONTWAIT | MSG_NOSIGNAL) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let io = UserIo::single(buf, len)?;
    let quiet = flags & MSG_NOSIGNAL != 0;
    if flags & (MSG_DONTWAIT | MSG_NOSIGNAL) != 0 {
        let pipe = {
            let open = file.lock();
            let Backing::Socket(end) = &open.backing else { return Err(Errno(88)) };
            if sending {
                end.tx.pipe.clone()
            } else {
                end.rx.pipe.clone()
            }
        };
        let nonblocking = flags & MSG_DONTWAIT != 0 || file.lock().flags & O_NONBLOCK != 0;
        let status = if nonblocking { O_NONBLOCK } else { 0 } | if packets { O_DIRECT } else { 0 };
        return if sending {
            pipe_write(process, &pipe, status, &io, quiet)
        } else {
            pipe_read(process, &pipe, nonblocking, &io)
        };
    }
    if sending {
        write_file(process, &file, &io)
    } else {
        read_file(process, &file, &io, None)
    }
}

// ---------------------------------------------------------------------------
// Reading and writing

/// The user memory of one transfer: `read`'s and `write`'s buffer, or the
/// vectors of `readv` and `writev`, checked to lie in user space, and the
/// total, at most `MAX_RW_COUNT`.
pub struct UserIo {
    segments: Vec<(u64, u64)>,
    total: u64,
}

impl UserIo {
    /// One buffer (`EFAULT` when it is not in user space).
    fn single(addr: u64, len: u64) -> Result<UserIo, Errno> {
        let len = len.min(MAX_RW_COUNT);
        copy::check_range(addr, len)?;
        Ok(UserIo { segments: alloc::vec![(addr, len)], total: len })
    }

    /// `count` `struct iovec { base, len }` at `iov` (Linux's `import_iovec`:
    /// `EINVAL` for more than 1024 or a negative length, `EFAULT` for a
    /// vector or a buffer outside user space; the total is cut at
    /// `MAX_RW_COUNT`).
    fn vectors(iov: u64, count: u64) -> Result<UserIo, Errno> {
        const IOV_MAX: u64 = 1024;
        if count > IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let mut raw = alloc::vec![[0u64; 2]; count as usize];
        for (index, vector) in raw.iter_mut().enumerate() {
            *vector = copy::read_value::<[u64; 2]>(iov + index as u64 * 16)?;
        }
        let mut segments = Vec::with_capacity(raw.len());
        let mut total = 0u64;
        for [base, len] in raw {
            if (len as i64) < 0 {
                return Err(Errno::EINVAL);
            }
            let len = len.min(MAX_RW_COUNT - total);
            copy::check_range(base, len)?;
            total += len;
            segments.push((base, len));
        }
        Ok(UserIo { segments, total })
    }

    /// The pieces of user memory for bytes `[at, at + len)` of the transfer,
    /// cut at page boundaries (so that a fault is found to the page).
    fn pieces(&self, at: u64, len: u64) -> Vec<(u64, u64, usize)> {
        let mut pieces = Vec::new();
        let (mut position, end) = (0u64, at + len);
        for &(base, seg_len) in &self.segments {
            let (seg_start, seg_end) = (position, position + seg_len);
            position = seg_end;
            let from = at.max(seg_start);
            let to = end.min(seg_end);
            let mut cursor = from;
            while cursor < to {
                let addr = base + (cursor - seg_start);
                let size = (to - cursor).min(4096 - addr % 4096);
                pieces.push((addr, size, (cursor - at) as usize));
                cursor += size;
            }
        }
        pieces
    }

    /// Copies `data` into the transfer's memory from byte `at`; returns how
    /// many bytes were copied before a fault.
    fn write_at(&self, at: u64, data: &[u8]) -> u64 {
        let mut done = 0;
        for (addr, size, offset) in self.pieces(at, data.len() as u64) {
            if copy::write(addr, &data[offset..offset + size as usize]).is_err() {
                break;
            }
            done += size;
        }
        done
    }

    /// Copies the transfer's memory from byte `at` into `buf`; returns how
    /// many bytes were copied before a fault.
    fn read_at(&self, at: u64, buf: &mut [u8]) -> u64 {
        let mut done = 0;
        for (addr, size, offset) in self.pieces(at, buf.len() as u64) {
            if copy::read(addr, &mut buf[offset..offset + size as usize]).is_err() {
                break;
            }
            done += size;
        }
        done
    }
}

/// Reads `file` at `offset` (its own when `None`) into `io`.
fn read_file(process: &Process, file: &FileRef, io: &UserIo, offset: Option<u64>) -> SysResult {
    let mut open = file.lock();
    if !open.readable() {
        return Err(Errno::EBADF);
    }
    let nonblocking = open.flags & O_NONBLOCK != 0;
    match &open.backing {
        Backing::Console => Ok(0),
        Backing::Directory(_) => Err(Errno::EISDIR),
        Backing::Pipe(end) => {
            let pipe = end.pipe.clone();
            drop(open);
            pipe_read(process, &pipe, nonblocking, io)
        }
        Backing::Socket(end) => {
            let pipe = end.rx.pipe.clone();
            drop(open);
            pipe_read(process, &pipe, nonblocking, io)
        }
        Backing::Generated { ino, .. } if is_pagemap_ino(*ino) => {
            let position = offset.unwrap_or(open.offset);
            drop(open);
            let copied = pagemap_read(process, io, position)?;
            if offset.is_none() {
                file.lock().offset = position.saturating_add(copied);
            }
            Ok(copied)
        }
        Backing::Initrd(_) | Backing::Generated { .. } => {
            let position = offset.unwrap_or(open.offset);
            let bytes = open.bytes().unwrap_or(&[]);
            let start = position.min(bytes.len() as u64) as usize;
            let count = (io.total as usize).min(bytes.len() - start);
            let copied = io.write_at(0, &bytes[start..start + count]);
            if copied == 0 && count > 0 {
                return Err(Errno::EFAULT);
            }
            if offset.is_none() {
                open.offset = position + copied;
            }
            Ok(copied)
        }
        Backing::Ram(inode) => {
            let inode = inode.clone();
            let position = offset.unwrap_or(open.offset);
            let copied = read_ram(&inode, position, io)?;
            if offset.is_none() {
                open.offset = position + copied;
            }
            Ok(copied)
        }
        Backing::Device(device) => {
            let device = *device;
            drop(open);
            device.read(io.total, &mut |at, bytes| io.write_at(at, bytes))
        }
        Backing::Path(_) => Err(Errno::EBADF),
    }
}

/// Reads file `inode` in RAM from `position` into `io`: what is there up to
/// its end; `EFAULT` when nothing could be copied of what there was.
fn read_ram(inode: &ramfs::Inode, position: u64, io: &UserIo) -> SysResult {
    let mut done = 0u64;
    let mut faulted = false;
    inode
        .read(position, &mut |bytes| {
            let wanted = (io.total - done).min(bytes.len() as u64) as usize;
            let copied = io.write_at(done, &bytes[..wanted]);
            done += copied;
            faulted = copied < wanted as u64;
            !faulted && done < io.total
        })
        .map_err(ram_errno)?;
    if done == 0 && faulted {
        return Err(Errno::EFAULT);
    }
    Ok(done)
}

/// Writes `io` to file `inode` in RAM at `position`: `EFAULT` when nothing
/// could be copied, `ENOSPC` without memory, `EFBIG` past the largest size.
fn write_ram(inode: &ramfs::Inode, position: u64, io: &UserIo) -> SysResult {
    if io.total == 0 {
        return Ok(0);
    }
    let mut faulted = false;
    let result = inode.write(position, io.total, &mut |at, buf| {
        let copied = io.read_at(at, buf);
        faulted |= copied < buf.len() as u64;
        copied
    });
    match result {
        Err(ramfs::Error::NoMemory) if faulted => Err(Errno::EFAULT),
        other => other.map_err(ram_errno),
    }
}

/// Reads `/proc/self/pagemap` at `position` into `io`, as Linux's
/// `pagemap_read`: `EINVAL` unless the position and the count are whole
/// entries (8 bytes); entries made a page table's worth (512) at a time;
/// nothing past the end of user space; `EFAULT` when the memory cannot take
/// them.
fn pagemap_read(process: &Process, io: &UserIo, position: u64) -> SysResult {
    const ENTRY: u64 = 8;
    const CHUNK: u64 = 512;
    if !position.is_multiple_of(ENTRY) || !io.total.is_multiple_of(ENTRY) {
        return Err(Errno::EINVAL);
    }
    let mut done = 0;
    while done < io.total {
        let first = position.saturating_add(done) / ENTRY;
        let entries = proc::pagemap(process, first, ((io.total - done) / ENTRY).min(CHUNK));
        if entries.is_empty() {
            break;
        }
        let bytes: Vec<u8> = entries.iter().flat_map(|entry| entry.to_ne_bytes()).collect();
        if io.write_at(done, &bytes) < bytes.len() as u64 {
            return Err(Errno::EFAULT);
        }
        done += bytes.len() as u64;
    }
    Ok(done)
}

/// Writes `io` to `file`.
fn write_file(process: &Process, file: &FileRef, io: &UserIo) -> SysResult {
    let open = file.lock();
    if !open.writable() {
        return Err(Errno::EBADF);
    }
    let flags = open.flags;
    match &open.backing {
        Backing::Console => {
            drop(open);
            let mut chunk = [0u8; 512];
            let mut done = 0;
            while done < io.total {
                let n = (io.total - done).min(chunk.len() as u64) as usize;
                let copied = io.read_at(done, &mut chunk[..n]);
                crate::serial::write_bytes(&chunk[..copied as usize]);
                done += copied;
                if copied < n as u64 {
                    // Linux returns what it wrote before the fault, or EFAULT.
                    return if done > 0 { Ok(done) } else { Err(Errno::EFAULT) };
                }
            }
            Ok(done)
        }
        Backing::Pipe(end) => {
            let pipe = end.pipe.clone();
            drop(open);
            pipe_write(process, &pipe, flags, io, false)
        }
        Backing::Socket(end) => {
            let (pipe, packets) = (end.tx.pipe.clone(), end.packets);
            drop(open);
            pipe_write(process, &pipe, if packets { flags | O_DIRECT } else { flags & !O_DIRECT }, io, false)
        }
        Backing::Ram(inode) => {
            let inode = inode.clone();
            drop(open);
            // The offset is taken and moved under the description's lock, so
            // that two writers sharing it (after dup or fork) do not overlap.
            let mut open = file.lock();
            let position = if flags & O_APPEND != 0 { inode.size() } else { open.offset };
            let written = write_ram(&inode, position, io)?;
            open.offset = position + written;
            Ok(written)
        }
        Backing::Device(device) => device.write(io.total),
        Backing::Generated { ino, .. } if is_pid_entry_ino(*ino, pid_entry::OOM_SCORE_ADJ) => {
            drop(open);
            // Linux reads at most 12 bytes (`PROC_NUMBUF` less the NUL).
            let mut bytes = alloc::vec![0u8; io.total.min(12) as usize];
            if io.read_at(0, &mut bytes) < bytes.len() as u64 {
                return Err(Errno::EFAULT);
            }
            procinfo::write_oom_score_adj(process, &bytes)?;
            Ok(bytes.len() as u64)
        }
        Backing::Generated { ino, .. } if sysfs::is_writable_ino(*ino) => {
            let ino = *ino;
            drop(open);
            // One page at most, as sysfs takes one write.
            let mut bytes = alloc::vec![0u8; io.total.min(4096) as usize];
            if io.read_at(0, &mut bytes) < bytes.len() as u64 {
                return Err(Errno::EFAULT);
            }
            sysfs::write(ino, &bytes)?;
            Ok(bytes.len() as u64)
        }
        // Nothing else is ever opened for writing.
        _ => Err(Errno::EBADF),
    }
}

/// `read`, `write`, `readv`, `writev`: the descriptor, then the memory.
fn transfer(process: &Process, fd: u64, buf: u64, len: u64, vectored: bool, writing: bool) -> SysResult {
    let file = file_of(process, fd)?;
    let io = if vectored {
        UserIo::vectors(buf, len)?
    } else {
        let open = file.lock();
        if !(if writing { open.writable() } else { open.readable() }) {
            return Err(Errno::EBADF);
        }
        drop(open);
        UserIo::single(buf, len)?
    };
    if vectored && io.total == 0 {
        // Linux's do_iter_read/write check the mode, then return 0.
        let open = file.lock();
        let allowed = if writing { open.writable() } else { open.readable() };
        return if allowed { Ok(0) } else { Err(Errno::EBADF) };
    }
    if writing {
        write_file(process, &file, &io)
    } else {
        read_file(process, &file, &io, None)
    }
}

/// `pread64` and `pwrite64`: `EINVAL` for a negative offset, `ESPIPE` for a
/// pipe or the console.
fn positional(process: &Process, fd: u64, buf: u64, len: u64, offset: u64, writing: bool) -> SysResult {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let file = file_of(process, fd)?;
    let seekable = !matches!(file.lock().backing, Backing::Console | Backing::Pipe(_) | Backing::Socket(_));
    if !seekable {
        return Err(Errno::ESPIPE);
    }
    if writing {
        let open = file.lock();
        if !open.writable() {
            return Err(Errno::EBADF);
        }
        if let Backing::Device(device) = open.backing {
            drop(open);
            return device.write(UserIo::single(buf, len)?.total);
        }
        let Backing::Ram(inode) = &open.backing else { return Err(Errno::EBADF) };
        let inode = inode.clone();
        // As on Linux, O_APPEND makes pwrite append whatever the offset.
        let append = open.flags & O_APPEND != 0;
        drop(open);
        let io = UserIo::single(buf, len)?;
        let position = if append { inode.size() } else { offset };
        return write_ram(&inode, position, &io);
    }
    if !file.lock().readable() {
        return Err(Errno::EBADF);
    }
    let io = UserIo::single(buf, len)?;
    read_file(process, &file, &io, Some(offset))
}

/// `lseek`.
pub fn seek(file: &FileRef, offset: i64, whence: u32) -> SysResult {
    const SEEK_SET: u32 = 0;
    const SEEK_CUR: u32 = 1;
    const SEEK_END: u32 = 2;
    const SEEK_DATA: u32 = 3;
    const SEEK_HOLE: u32 = 4;
    if whence > SEEK_HOLE {
        return Err(Errno::EINVAL);
    }
    let mut open = file.lock();
    let current = open.offset as i64;
    let (size, whence_ok) = match &open.backing {
        Backing::Console | Backing::Pipe(_) | Backing::Socket(_) => return Err(Errno::ESPIPE),
        Backing::Initrd(data) => (data.size() as i64, true),
        Backing::Ram(inode) => (inode.size() as i64, true),
        // seq_lseek: from the start or from here only.
        Backing::Generated { .. } => (0, whence <= SEEK_CUR),
        // dcache_dir_lseek: likewise.
        Backing::Directory(_) => (0, whence <= SEEK_CUR),
        Backing::Path(_) => return Err(Errno::EBADF),
        // null_lseek, and noop_llseek at offset 0: always 0.
        Backing::Device(_) => {
            open.offset = 0;
            return Ok(0);
        }
    };
    if !whence_ok {
        return Err(Errno::EINVAL);
    }
    let target = match whence {
        SEEK_SET => offset,
        SEEK_CUR => current.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
        SEEK_END => size.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
        // One extent of data, then the hole at the end of the file.
        SEEK_DATA | SEEK_HOLE => {
            if offset < 0 || offset >= size {
                return Err(Errno::ENXIO);
            }
            if whence == SEEK_DATA {
                offset
            } else {
                size
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    if target < 0 {
        return Err(Errno::EINVAL);
    }
    open.offset = target as u64;
    Ok(target as u64)
}

// ---------------------------------------------------------------------------
// open, dup, fcntl

/// `open` and `openat`: Linux's order: the flags, the path, a free
/// descriptor (`EMFILE`), then the lookup. Unknown flags are ignored, as
/// these two calls do; `O_LARGEFILE` is implied.
fn open(process: &Process, dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let mut flags = (flags as u32 | O_LARGEFILE) & VALID;
    if flags & O_PATH != 0 {
        flags &= O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;
    }
    let accmode = flags & O_ACCMODE;
    let wants_write = accmode == O_WRONLY || accmode == O_RDWR || accmode == O_ACCMODE || flags & O_TRUNC != 0;
    if flags & O_TMPFILE_BIT != 0 && (flags & O_DIRECTORY == 0 || !(accmode == O_WRONLY || accmode == O_RDWR)) {
        return Err(Errno::EINVAL);
    }
    let name = read_path(path)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let limit = nofile_limit(process);
    process.state.lock().files.lowest_free(0, limit)?;
    let path = absolute(process, dirfd, name)?;
    let umask = process.state.lock().files.umask;
    let new_mode = mode::REGULAR | (mode as u32 & 0o7777 & !umask);
    if flags & O_TMPFILE_BIT != 0 {
        // An unnamed file in a directory in RAM; elsewhere the file system
        // is read-only.
        let inode = match resolve(process, &path, true)? {
            Node::Ram(directory) if directory.is_directory() => directory,
            Node::Directory(_) => return Err(Errno::EROFS),
            _ => return Err(Errno::ENOTDIR),
        };
        ram_permission(process, &inode, may::WRITE | may::EXEC)?;
        let ram = ramfs::instance(inode.dev).ok_or(Errno::ENOENT)?;
        let who = creds::credentials(process);
        let file = ram.new_inode(new_mode, who.fsuid(), who.fsgid(), ramfs::Body::File(Mutex::default()));
        file.meta.lock().nlink = 0;
        let stored = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC | O_DIRECTORY);
        return install_open(process, Backing::Ram(file), stored, flags, limit);
    }
    let follow_last = flags & O_NOFOLLOW == 0;
    let (node, created) = match resolve(process, &path, follow_last) {
        Err(Errno::ENOENT) if flags & O_CREAT != 0 && flags & O_PATH == 0 => {
            // Creating needs the directory to exist; then the file system
            // must be writable.
            let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
                Some((parent, name)) if !parent.is_empty() => (parent, name),
                Some((_, name)) => ("/", name),
                None => ("/", path.as_str()),
            };
            match resolve(process, parent, true)? {
                _ if path.ends_with('/') => return Err(Errno::EISDIR),
                Node::Ram(directory) if directory.is_directory() => {
                    ram_permission(process, &directory, may::WRITE | may::EXEC)?;
                    let ram = ramfs::instance(directory.dev).ok_or(Errno::ENOENT)?;
                    let who = creds::credentials(process);
                    let file = ram.new_inode(new_mode, who.fsuid(), who.fsgid(), ramfs::Body::File(Mutex::default()));
                    match directory.link(name, &file) {
                        Ok(()) => {
                            file.meta.lock().nlink = 1;
                            (Node::Ram(file), true)
                        }
                        // Made by someone else meanwhile.
                        Err(ramfs::Error::Exists) if flags & O_EXCL == 0 => {
                            (Node::Ram(directory.lookup(name).map_err(ram_errno)?), false)
                        }
                        Err(error) => return Err(ram_errno(error)),
                    }
                }
                Node::Directory(_) => return Err(Errno::EROFS),
                _ => return Err(Errno::ENOTDIR),
            }
        }
        other => (other?, false),
    };
    if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL && !created {
        return Err(Errno::EEXIST);
    }
    if flags & O_DIRECTORY != 0 && !node.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    if node.is_link() && flags & O_PATH == 0 {
        return Err(Errno::ELOOP); // O_NOFOLLOW on a link
    }
    let stored = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    if let (Node::Ram(inode), false, false) = (&node, created, flags & O_PATH != 0) {
        // A file just made may be opened as asked, whatever its mode.
        let reads = accmode != O_WRONLY;
        let want = if reads { may::READ } else { 0 } | if wants_write { may::WRITE } else { 0 };
        ram_permission(process, inode, want)?;
    }
    let backing = if flags & O_PATH != 0 {
        Backing::Path(node)
    } else {
        match node {
            _ if node.is_directory() && (wants_write || flags & O_CREAT != 0) => return Err(Errno::EISDIR),
            Node::Ram(inode) if flags & O_DIRECT != 0 && !inode.is_directory() => return Err(Errno::EINVAL),
            Node::Ram(inode) if inode.is_directory() => Backing::Directory(Directory {
                entries: list_ram(process, &inode)?,
                path: String::new(),
                ram: Some(inode),
            }),
            Node::Ram(inode) => {
                if flags & O_TRUNC != 0 && wants_write && inode.size() > 0 {
                    objects::truncate_file(&inode, 0).map_err(ram_errno)?;
                }
                Backing::Ram(inode)
            }
            // The terminals are the console; the other devices take writes.
            Node::Device(device) if device.is_terminal() => Backing::Console,
            Node::Device(device) => Backing::Device(device),
            Node::Proc("oom_score_adj") => Backing::Generated {
                bytes: procinfo::oom_score_adj(process),
                ino: node_ino(process, &Node::Proc("oom_score_adj")),
            },
            Node::Sys(key) if wants_write && sysfs::is_writable(key) => {
                Backing::Generated { bytes: sysfs::contents(key), ino: sysfs::ino(key) }
            }
            _ if wants_write => return Err(Errno::EROFS),
            _ if flags & O_DIRECT != 0 => return Err(Errno::EINVAL), // no direct I/O here
            Node::Sys(key) => Backing::Generated { bytes: sysfs::contents(key), ino: sysfs::ino(key) },
            Node::Other(pid, entry) => Backing::Generated {
                bytes: other_process_file(process, pid, entry)?,
                ino: node_ino(process, &Node::Other(pid, entry)),
            },
            Node::Directory(path) => Backing::Directory(Directory { entries: list(process, &path), path, ram: None }),
            Node::File(file) => Backing::Initrd(file),
            Node::Proc(name) => {
                let bytes = match name {
                    "maps" => proc::maps(process),
                    "smaps" => proc::smaps(process),
                    "status" => proc::status(process),
                    "mmap_min_addr" => proc::mmap_min_addr(),
                    "max_map_count" => proc::max_map_count(),
                    "stat" => procinfo::stat(process),
                    "cmdline" => procinfo::cmdline(process),
                    "mounts" => procinfo::mounts(),
                    "cpuinfo" => procinfo::cpuinfo(),
                    "version" => procinfo::version(),
                    "interrupts" => procinfo::interrupts(),
                    "kernel_cmdline" => procinfo::kernel_cmdline(),
                    "pid_max" => procinfo::pid_max(),
                    "core_pattern" => procinfo::core_pattern(),
                    "overcommit_memory" => procinfo::overcommit_memory(),
                    // Made as it is read.
                    "pagemap" => Vec::new(),
                    _ => proc::meminfo(),
                };
                Backing::Generated { bytes, ino: node_ino(process, &Node::Proc(name)) }
            }
            Node::SelfLink | Node::Fd(_) => return Err(Errno::ELOOP),
        }
    };
    install_named(process, backing, stored, flags, limit, Some(lexical_path(&path)))
}

/// `path` (absolute) without its `.` and `..` components and repeated
/// slashes, as the target of a `/proc/self/fd` link.
fn lexical_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(component),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the process may access `inode` in RAM as `want` asks
/// ([`creds::may_access`]): `EACCES` if not.
pub(super) fn ram_permission(process: &Process, inode: &ramfs::Inode, want: u32) -> Result<(), Errno> {
    let meta = *inode.meta.lock();
    if creds::may_access(&creds::credentials(process), meta.mode, meta.uid, meta.gid, want) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Puts a new open file description (status flags `stored`) in the lowest
/// free descriptor; `flags` as `open` was given them.
pub(super) fn install_open(process: &Process, backing: Backing, stored: u32, flags: u32, limit: u64) -> SysResult {
    install_named(process, backing, stored, flags, limit, None)
}

/// [`install_open`], with the path the file was opened by.
pub(super) fn install_named(
    process: &Process,
    backing: Backing,
    stored: u32,
    flags: u32,
    limit: u64,
    path: Option<String>,
) -> SysResult {
    let mut open = OpenFile::new(backing, stored);
    open.path = path;
    let slot =
        Slot { file: Arc::new(Mutex::new(open)), path_only: flags & O_PATH != 0, cloexec: flags & O_CLOEXEC != 0 };
    process.state.lock().files.install(slot, 0, limit)
}

/// `dup(old)`.
fn dup(process: &Process, old: u64) -> SysResult {
    let limit = nofile_limit(process);
    let mut state = process.state.lock();
    let slot = state.files.duplicate(old)?;
    state.files.install(slot, 0, limit)
}

/// `dup2(old, new)` and `dup3(old, new, flags)` (`dup2` is `None`).
fn dup3(process: &Process, old: u64, new: u64, flags: Option<u64>) -> SysResult {
    let (old, new) = (old as u32 as u64, new as u32 as u64);
    let limit = nofile_limit(process);
    let mut state = process.state.lock();
    match flags {
        None if old == new => return state.files.get_any(old).map(|_| new),
        Some(flags) if flags & !(O_CLOEXEC as u64) != 0 => return Err(Errno::EINVAL),
        Some(_) if old == new => return Err(Errno::EINVAL),
        _ => {}
    }
    if new >= limit.min(TABLE_MAX) {
        return Err(Errno::EBADF);
    }
    let mut slot = state.files.duplicate(old)?;
    slot.cloexec = flags.is_some_and(|flags| flags & O_CLOEXEC as u64 != 0);
    let replaced = state.files.put(new as usize, slot);
    drop(state);
    drop(replaced);
    Ok(new)
}

/// `fcntl` commands.
mod cmd {
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_GETLK: u32 = 5;
    pub const F_SETLK: u32 = 6;
    pub const F_SETLKW: u32 = 7;
    pub const F_SETOWN: u32 = 8;
    pub const F_GETOWN: u32 = 9;
    pub const F_SETSIG: u32 = 10;
    pub const F_GETSIG: u32 = 11;
    pub const F_OFD_GETLK: u32 = 36;
    pub const F_OFD_SETLK: u32 = 37;
    pub const F_OFD_SETLKW: u32 = 38;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;
    pub const F_SETPIPE_SZ: u32 = 1031;
    pub const F_GETPIPE_SZ: u32 = 1032;
}

/// `struct flock`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Flock {
    kind: i16,
    whence: i16,
    pad: u32,
    start: i64,
    len: i64,
    pid: i32,
    pad2: u32,
}

/// `fcntl(fd, cmd, arg)`.
fn fcntl(process: &Process, fd: u64, command: u64, arg: u64) -> SysResult {
    use cmd::*;
    const FD_CLOEXEC: u64 = 1;
    let command = command as u32;
    let file = process.state.lock().files.get_any(fd)?;
    let flags = file.lock().flags;
    if flags & O_PATH != 0 && !matches!(command, F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL) {
        return Err(Errno::EBADF);
    }
    match command {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let limit = nofile_limit(process);
            if arg >= limit {
                return Err(Errno::EINVAL);
            }
            let mut state = process.state.lock();
            let mut slot = state.files.duplicate(fd)?;
            slot.cloexec = command == F_DUPFD_CLOEXEC;
            state.files.install(slot, arg, limit)
        }
        F_GETFD => Ok(if process.state.lock().files.cloexec(fd) { FD_CLOEXEC } else { 0 }),
        F_SETFD => {
            process.state.lock().files.set_cloexec(fd, arg & FD_CLOEXEC != 0);
            Ok(0)
        }
        F_GETFL => Ok(flags as u64),
        F_SETFL => {
            let mut open = file.lock();
            let wanted = arg as u32;
            let is_pipe = matches!(open.backing, Backing::Pipe(_));
            if wanted & O_DIRECT != 0 && !is_pipe {
                return Err(Errno::EINVAL); // no direct I/O; for a pipe, packet mode
            }
            open.flags = (wanted & SETFL) | (open.flags & !SETFL);
            Ok(0)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => lock(&file, command, arg),
        F_GETOWN | F_GETSIG => Ok(0),
        F_SETOWN => Ok(0),
        F_SETSIG => {
            if arg > signal::NSIG as u64 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let open = file.lock();
            let Backing::Pipe(end) = &open.backing else { return Err(Errno::EBADF) };
            let mut ring = end.pipe.ring.lock();
            if command == F_SETPIPE_SZ {
                // round_pipe_size: a power of two number of pages, at least one.
                if arg > 1 << 31 {
                    return Err(Errno::EINVAL);
                }
                let slots = (arg as usize).div_ceil(PAGE).max(1).next_power_of_two();
                if slots > PIPE_MAX_SLOTS {
                    return Err(Errno::EPERM);
                }
                if slots < ring.buffers.len() {
                    return Err(Errno::EBUSY);
                }
                ring.slots = slots;
            }
            Ok((ring.slots * PAGE) as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The record locks: one process per file here, so nothing ever conflicts;
/// the checks are Linux's (`EINVAL` for a bad type or origin, `EBADF` for a
/// lock the access mode does not allow).
fn lock(file: &FileRef, command: u32, arg: u64) -> SysResult {
    const F_RDLCK: i16 = 0;
    const F_WRLCK: i16 = 1;
    const F_UNLCK: i16 = 2;
    let mut request: Flock = copy::read_value(arg)?;
    let ofd = matches!(command, cmd::F_OFD_GETLK | cmd::F_OFD_SETLK | cmd::F_OFD_SETLKW);
    if ofd && request.pid != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..=2).contains(&request.whence) || !(F_RDLCK..=F_UNLCK).contains(&request.kind) {
        return Err(Errno::EINVAL);
    }
    if matches!(command, cmd::F_GETLK | cmd::F_OFD_GETLK) {
        if request.kind == F_UNLCK {
            return Err(Errno::EINVAL);
        }
        request.kind = F_UNLCK;
        copy::write_value(arg, &request)?;
        return Ok(0);
    }
    let open = file.lock();
    match request.kind {
        F_RDLCK if !open.readable() => Err(Errno::EBADF),
        F_WRLCK if !open.writable() => Err(Errno::EBADF),
        _ => Ok(0),
    }
}

// ---------------------------------------------------------------------------
// ioctl and the terminal

/// The console's terminal settings (`struct termios2`: the flags, the line
/// discipline, `c_cc`, and the speeds), shared by every program, as a
/// terminal's are. Linux's defaults (`tty_std_termios`) at 38400 baud.
static TERMIOS: Mutex<[u8; 44]> = Mutex::new(default_termios());
/// The console's foreground process group (0: none set; a program's own
/// session then).
static FOREGROUND: AtomicU32 = AtomicU32::new(0);

/// Makes `pgid` the console's foreground process group (`run` does, for the
/// program it starts; 0 when it is over): where Ctrl-C sends `SIGINT`, and
/// what `TIOCGPGRP` says until a program changes it with `TIOCSPGRP`.
pub fn set_foreground_group(pgid: u32) {
    FOREGROUND.store(pgid, Ordering::Relaxed);
}

/// The console's foreground process group (0: none).
pub fn foreground_group() -> u32 {
    FOREGROUND.load(Ordering::Relaxed)
}

/// The console's window size (`struct winsize`): 24 rows of 80 columns.
static WINSIZE: Mutex<[u16; 4]> = Mutex::new([24, 80, 0, 0]);

const fn default_termios() -> [u8; 44] {
    const ICRNL: u32 = 0o400;
    const IXON: u32 = 0o2000;
    const OPOST: u32 = 0o1;
    const ONLCR: u32 = 0o4;
    const B38400: u32 = 0o17;
    const CS8: u32 = 0o60;
    const CREAD: u32 = 0o200;
    const HUPCL: u32 = 0o2000;
    const ISIG: u32 = 0o1;
    const ICANON: u32 = 0o2;
    const ECHO: u32 = 0o10;
    const ECHOE: u32 = 0o20;
    const ECHOK: u32 = 0o40;
    const ECHOCTL: u32 = 0o1000;
    const ECHOKE: u32 = 0o4000;
    const IEXTEN: u32 = 0o100000;
    // INTR QUIT ERASE KILL EOF TIME MIN SWTC START STOP SUSP EOL REPRINT
    // DISCARD WERASE LNEXT EOL2.
    const CC: [u8; 17] = [3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0];
    let words = [
        ICRNL | IXON,
        OPOST | ONLCR,
        B38400 | CS8 | CREAD | HUPCL,
        ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
    ];
    let mut image = [0u8; 44];
    let mut index = 0;
    while index < 4 {
        let bytes = words[index].to_le_bytes();
        let mut byte = 0;
        while byte < 4 {
            image[index * 4 + byte] = bytes[byte];
            byte += 1;
        }
        index += 1;
    }
    // c_line 0 at 16, c_cc from 17 (19 of them).
    let mut cc = 0;
    while cc < CC.len() {
        image[17 + cc] = CC[cc];
        cc += 1;
    }
    // c_ispeed and c_ospeed.
    let speed = 38400u32.to_le_bytes();
    let mut byte = 0;
    while byte < 4 {
        image[36 + byte] = speed[byte];
        image[40 + byte] = speed[byte];
        byte += 1;
    }
    image
}

/// `ioctl` requests.
mod request {
    pub const TCGETS: u32 = 0x5401;
    pub const TCSETS: u32 = 0x5402;
    pub const TCSETSW: u32 = 0x5403;
    pub const TCSETSF: u32 = 0x5404;
    pub const TCSBRK: u32 = 0x5409;
    pub const TCXONC: u32 = 0x540a;
    pub const TCFLSH: u32 = 0x540b;
    pub const TIOCGPGRP: u32 = 0x540f;
    pub const TIOCSPGRP: u32 = 0x5410;
    pub const TIOCOUTQ: u32 = 0x5411;
    pub const TIOCGWINSZ: u32 = 0x5413;
    pub const TIOCSWINSZ: u32 = 0x5414;
    pub const FIONREAD: u32 = 0x541b;
    pub const FIONBIO: u32 = 0x5421;
    pub const TIOCGSID: u32 = 0x5429;
    pub const TCGETS2: u32 = 0x802c_542a;
    pub const TCSETS2: u32 = 0x402c_542b;
    pub const TCSETSW2: u32 = 0x402c_542c;
    pub const TCSETSF2: u32 = 0x402c_542d;
    pub const FIONCLEX: u32 = 0x5450;
    pub const FIOCLEX: u32 = 0x5451;
    pub const FIOASYNC: u32 = 0x5452;
    pub const FIOQSIZE: u32 = 0x5460;
}

/// `ioctl(fd, request, arg)`: the generic requests (`FIOCLEX`, `FIONCLEX`,
/// `FIONBIO`, `FIOASYNC`, `FIONREAD` and `FIOQSIZE` of files), then the
/// file's own: the console is a terminal, a pipe counts its bytes
/// (`FIONREAD`); anything else is `ENOTTY`.
fn ioctl(process: &Process, fd: u64, request: u64, arg: u64) -> SysResult {
    use request::*;
    let file = file_of(process, fd)?;
    let request = request as u32;
    let set_flag = |flag: u32| -> SysResult {
        let on: i32 = copy::read_value(arg)?;
        let mut open = file.lock();
        open.flags = if on != 0 { open.flags | flag } else { open.flags & !flag };
        Ok(0)
    };
    match request {
        FIOCLEX | FIONCLEX => {
            process.state.lock().files.set_cloexec(fd, request == FIOCLEX);
            return Ok(0);
        }
        FIONBIO => return set_flag(O_NONBLOCK),
        FIOASYNC => return set_flag(FASYNC),
        _ => {}
    }
    let open = file.lock();
    match (&open.backing, request) {
        (Backing::Initrd(_) | Backing::Generated { .. }, FIONREAD) => {
            let size = open.bytes().map_or(0, |bytes| bytes.len() as u64);
            let left = size.wrapping_sub(open.offset) as i32;
            drop(open);
            copy::write_value(arg, &left)?;
            Ok(0)
        }
        (Backing::Initrd(_) | Backing::Generated { .. } | Backing::Directory(_), FIOQSIZE) => {
            let size = open.bytes().map_or(0, |bytes| bytes.len() as u64);
            drop(open);
            copy::write_value(arg, &size)?;
            Ok(0)
        }
        (Backing::Pipe(end), FIONREAD) => {
            let count = end.pipe.ring.lock().available() as i32;
            drop(open);
            copy::write_value(arg, &count)?;
            Ok(0)
        }
        (Backing::Console, _) => {
            drop(open);
            terminal_ioctl(process, request, arg)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// The console's terminal requests: its settings (kept, not acted upon:
/// the console has no line discipline), its size, its foreground group
/// (the program `run` started, unless changed) and session.
fn terminal_ioctl(process: &Process, request: u32, arg: u64) -> SysResult {
    use request::*;
    let sid = process.state.lock().signal_extras.sid;
    match request {
        TCGETS | TCGETS2 => {
            let image = *TERMIOS.lock();
            copy::write(arg, &image[..if request == TCGETS { 36 } else { 44 }])?;
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            let mut image = *TERMIOS.lock();
            let len = if matches!(request, TCSETS | TCSETSW | TCSETSF) { 36 } else { 44 };
            copy::read(arg, &mut image[..len])?;
            *TERMIOS.lock() = image;
        }
        TIOCGWINSZ => {
            let size = *WINSIZE.lock();
            copy::write_value(arg, &size)?;
        }
        TIOCSWINSZ => {
            let size: [u16; 4] = copy::read_value(arg)?;
            *WINSIZE.lock() = size;
        }
        TIOCGPGRP => {
            let foreground = match FOREGROUND.load(Ordering::Relaxed) {
                0 => sid,
                group => group,
            };
            copy::write_value(arg, &(foreground as i32))?
        }
        TIOCGSID => copy::write_value(arg, &(sid as i32))?,
        TIOCSPGRP => {
            let wanted: i32 = copy::read_value(arg)?;
            if wanted < 0 {
                return Err(Errno::EINVAL);
            }
            let group =
                process::all().into_iter().find(|member| member.state.lock().signal_extras.pgid == wanted as u32);
            match group {
                None => return Err(Errno::ESRCH),
                Some(member) if member.state.lock().signal_extras.sid != sid => return Err(Errno::EPERM),
                Some(_) => FOREGROUND.store(wanted as u32, Ordering::Relaxed),
            }
        }
        FIONREAD | TIOCOUTQ => copy::write_value(arg, &0i32)?,
        TCFLSH if arg > 2 => return Err(Errno::EINVAL),
        TCXONC if arg > 3 => return Err(Errno::EINVAL),
        TCSBRK | TCFLSH | TCXONC => {}
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// stat, statx, access, readlink

/// A file's attributes, as `stat` and `statx` show them.
#[derive(Clone, Copy, Default)]
struct Attributes {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    rdev: u64,
    size: u64,
    blksize: u64,
    /// The mount (`stx_mnt_id`), and whether this is its root.
    mount: u64,
    mount_root: bool,
    uid: u32,
    gid: u32,
    /// 512-byte blocks held, when not the size's.
    blocks: Option<u64>,
    /// atime, mtime, ctime.
    times: [ramfs::Time; 3],
}

/// The attributes of `inode`, in RAM.
fn ram_attributes(inode: &ramfs::Inode) -> Attributes {
    let meta = *inode.meta.lock();
    let root = ramfs::instance(inode.dev).is_some_and(|ram| ram.root.ino == inode.ino);
    Attributes {
        dev: inode.dev,
        ino: inode.ino,
        nlink: meta.nlink as u64,
        mode: meta.mode,
        size: if inode.is_directory() { 40 + 20 * inode.entries().map_or(0, |e| e.len() as u64) } else { inode.size() },
        blksize: 4096,
        mount: 10 + inode.dev,
        mount_root: root,
        uid: meta.uid,
        gid: meta.gid,
        blocks: Some(inode.frames_held() * 8),
        times: [meta.atime, meta.mtime, meta.ctime],
        ..Attributes::default()
    }
}

const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// The devices (`st_dev`) and mounts of the file systems here.
pub(super) const INITRD_DEV: u64 = 1;
pub(super) const PROC_DEV: u64 = 2;
/// The device of sockets (sockfs).
const SOCKET_DEV: u64 = 8;
const PIPE_DEV: u64 = 3;
/// `/dev` (devtmpfs; the console's device numbers are its too).
const DEVTMPFS_DEV: u64 = 5;
/// `/sys`.
const SYSFS_DEV: u64 = 6;
/// The mount ids of `/dev` and `/sys`.
const DEVTMPFS_MOUNT: u64 = 4;
const SYSFS_MOUNT: u64 = 5;

/// The attributes of a `/sys` file (`key`), as Linux's sysfs shows them:
/// a page's size, no blocks.
fn sys_attributes(ino: u64) -> Attributes {
    Attributes {
        dev: SYSFS_DEV,
        ino,
        nlink: 1,
        mode: S_IFREG | sysfs::file_mode_of_ino(ino),
        size: 4096,
        blksize: 4096,
        blocks: Some(0),
        mount: SYSFS_MOUNT,
        ..Attributes::default()
    }
}

/// The mode of the link `/proc/self/fd/FD`: Linux's, from how the file was
/// opened (`r-x` for reading, `-wx` for writing, for the owner).
fn fd_link_mode(process: &Process, fd: u32) -> u32 {
    let file = process.state.lock().files.get_any(fd as u64);
    let (read, write) = file.map_or((false, false), |file| {
        let open = file.lock();
        (open.readable(), open.writable())
    });
    S_IFLNK | if read { 0o500 } else { 0 } | if write { 0o300 } else { 0 }
}

fn node_attributes(process: &Process, node: &Node) -> Attributes {
    let ino = node_ino(process, node);
    match node {
        Node::Ram(inode) => ram_attributes(inode),
        Node::File(file) => {
            let executable = file.name().starts_with("bin/");
            Attributes {
                dev: INITRD_DEV,
                ino,
                nlink: 1,
                mode: S_IFREG | if executable { 0o555 } else { 0o444 },
                size: file.size(),
                blksize: 4096,
                mount: 1,
                ..Attributes::default()
            }
        }
        Node::Directory(path) if path == "dev" => Attributes {
            dev: DEVTMPFS_DEV,
            ino,
            nlink: 3,
            mode: S_IFDIR | 0o755,
            size: 4096,
            blksize: 4096,
            mount: DEVTMPFS_MOUNT,
            mount_root: true,
            ..Attributes::default()
        },
        Node::Directory(path) if sysfs::is_directory(path) => Attributes {
            dev: SYSFS_DEV,
            ino,
            nlink: 2,
            mode: S_IFDIR | 0o755,
            blksize: 4096,
            mount: SYSFS_MOUNT,
            mount_root: path == "sys",
            ..Attributes::default()
        },
        Node::Device(device) => Attributes {
            dev: DEVTMPFS_DEV,
            ino,
            nlink: 1,
            mode: S_IFCHR | device.permissions(),
            rdev: device.rdev(),
            blksize: 4096,
            mount: DEVTMPFS_MOUNT,
            ..Attributes::default()
        },
        Node::Sys(_) => sys_attributes(ino),
        Node::Fd(fd) => Attributes {
            dev: PROC_DEV,
            ino,
            nlink: 1,
            mode: fd_link_mode(process, *fd),
            size: 64,
            blksize: 1024,
            blocks: Some(0),
            mount: 2,
            ..Attributes::default()
        },
        Node::Directory(path) if node.in_proc() => Attributes {
            dev: PROC_DEV,
            ino,
            nlink: 2,
            mode: S_IFDIR | if path == "proc/self/fd" { 0o500 } else { 0o555 },
            blksize: 1024,
            mount: 2,
            mount_root: path == "proc",
            ..Attributes::default()
        },
        Node::Directory(path) => Attributes {
            dev: INITRD_DEV,
            ino,
            nlink: 2,
            mode: S_IFDIR | 0o555,
            blksize: 4096,
            mount: 1,
            mount_root: path.is_empty(),
            ..Attributes::default()
        },
        Node::SelfLink | Node::Proc("exe") | Node::Other(_, "exe") => Attributes {
            dev: PROC_DEV,
            ino,
            nlink: 1,
            mode: S_IFLNK | 0o777,
            blksize: 1024,
            mount: 2,
            ..Attributes::default()
        },
        Node::Proc(_) | Node::Other(..) => Attributes {
            dev: PROC_DEV,
            ino,
            nlink: 1,
            mode: S_IFREG | proc_file_mode(ino),
            blksize: 1024,
            mount: 2,
            ..Attributes::default()
        },
    }
}

fn file_attributes(process: &Process, file: &FileRef) -> Attributes {
    let open = file.lock();
    match &open.backing {
        // The serial console, as Linux shows /dev/ttyS0: a character device.
        Backing::Console => Attributes {
            dev: 5,
            ino: 3,
            nlink: 1,
            mode: S_IFCHR | 0o620,
            rdev: 4 << 8 | 64,
            blksize: 1024,
            mount: 4,
            ..Attributes::default()
        },
        Backing::Initrd(data) => node_attributes(process, &Node::File(data)),
        Backing::Generated { ino, .. } if sysfs::is_ino(*ino) => sys_attributes(*ino),
        // As Linux's /proc files: size 0, whatever reading them gives.
        Backing::Generated { ino, .. } => Attributes {
            dev: PROC_DEV,
            ino: *ino,
            nlink: 1,
            mode: S_IFREG | proc_file_mode(*ino),
            blksize: 1024,
            mount: 2,
            ..Attributes::default()
        },
        Backing::Directory(Directory { ram: Some(inode), .. }) => ram_attributes(inode),
        Backing::Directory(directory) => node_attributes(process, &Node::Directory(directory.path.clone())),
        Backing::Pipe(end) => Attributes {
            dev: PIPE_DEV,
            ino: end.pipe.ino,
            nlink: 1,
            mode: S_IFIFO | 0o600,
            blksize: 4096,
            mount: 3,
            ..Attributes::default()
        },
        // As sockfs shows a socket: its own device, 0777, no size.
        Backing::Socket(end) => Attributes {
            dev: SOCKET_DEV,
            ino: end.ino,
            nlink: 1,
            mode: S_IFSOCK | 0o777,
            blksize: 4096,
            mount: 5,
            ..Attributes::default()
        },
        Backing::Path(node) => node_attributes(process, node),
        Backing::Ram(inode) => ram_attributes(inode),
        Backing::Device(device) => node_attributes(process, &Node::Device(*device)),
    }
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

/// `struct statx` (256 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    spare0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    /// atime, btime, ctime, mtime: `{ i64 sec; u32 nsec; i32 pad }` each.
    times: [u64; 8],
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    mnt_id: u64,
    dio_mem_align: u32,
    dio_offset_align: u32,
    spare3: [u64; 12],
}

const _: () = assert!(core::mem::size_of::<Stat>() == 144);
const _: () = assert!(core::mem::size_of::<Statx>() == 256);

/// Linux's `MAJOR` and `MINOR` of a `dev_t` as `stat` encodes it.
fn major_minor(dev: u64) -> (u32, u32) {
    (((dev >> 8) & 0xfff) as u32, ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32)
}

fn write_stat(attributes: &Attributes, buf: u64) -> SysResult {
    let stat = Stat {
        dev: attributes.dev,
        ino: attributes.ino,
        nlink: attributes.nlink,
        mode: attributes.mode,
        rdev: attributes.rdev,
        size: attributes.size as i64,
        blksize: attributes.blksize as i64,
        blocks: attributes.blocks.unwrap_or(attributes.size.div_ceil(512)) as i64,
        uid: attributes.uid,
        gid: attributes.gid,
        times: {
            let [a, m, c] = attributes.times;
            [a.sec, a.nsec as i64, m.sec, m.nsec as i64, c.sec, c.nsec as i64]
        },
        ..Stat::default()
    };
    copy::write_value(buf, &stat)?;
    Ok(0)
}

fn write_statx(attributes: &Attributes, buf: u64) -> SysResult {
    /// `STATX_BASIC_STATS` and `STATX_MNT_ID`: what is known of every file.
    const KNOWN: u32 = 0x7ff | 0x1000;
    const STATX_ATTR_AUTOMOUNT: u64 = 0x1000;
    const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;
    const STATX_ATTR_DAX: u64 = 0x20_0000;
    let (rdev_major, rdev_minor) = major_minor(attributes.rdev);
    let (dev_major, dev_minor) = major_minor(attributes.dev);
    let statx = Statx {
        mask: KNOWN,
        blksize: attributes.blksize as u32,
        attributes: if attributes.mount_root { STATX_ATTR_MOUNT_ROOT } else { 0 },
        nlink: attributes.nlink as u32,
        mode: attributes.mode as u16,
        ino: attributes.ino,
        size: attributes.size,
        blocks: attributes.blocks.unwrap_or(attributes.size.div_ceil(512)),
        uid: attributes.uid,
        gid: attributes.gid,
        times: {
            let stamp = |time: ramfs::Time| [time.sec as u64, time.nsec as u64];
            let [a, m, c] = attributes.times;
            let (a, m, c) = (stamp(a), stamp(m), stamp(c));
            // atime, btime (the change time stands for it), ctime, mtime.
            [a[0], a[1], c[0], c[1], c[0], c[1], m[0], m[1]]
        },
        attributes_mask: STATX_ATTR_AUTOMOUNT | STATX_ATTR_MOUNT_ROOT | STATX_ATTR_DAX,
        rdev_major,
        rdev_minor,
        dev_major,
        dev_minor,
        mnt_id: attributes.mount,
        ..Statx::default()
    };
    copy::write_value(buf, &statx)?;
    Ok(0)
}

fn target_attributes(process: &Process, target: Target) -> Attributes {
    match target {
        Target::Node(node) => node_attributes(process, &node),
        Target::File(file) => file_attributes(process, &file),
    }
}

/// `fstat(fd, buf)` (an `O_PATH` handle included).
fn fstat(process: &Process, fd: u64, buf: u64) -> SysResult {
    let file = process.state.lock().files.get_any(fd)?;
    write_stat(&file_attributes(process, &file), buf)
}

/// `stat`, `lstat` and `newfstatat`: the flags, then the path.
fn fstatat(process: &Process, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let name = read_path(path);
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let target = target_at(process, dirfd, name, flags & AT_EMPTY_PATH != 0, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    write_stat(&target_attributes(process, target), buf)
}

/// `statx(dirfd, path, flags, mask, buf)`: every file here knows the basic
/// statistics and its mount, whatever `mask` asks for.
fn statx(process: &Process, dirfd: u64, path: u64, flags: u64, mask: u64, buf: u64) -> SysResult {
    const STATX_RESERVED: u64 = 0x8000_0000;
    let name = read_path(path);
    let flags = flags as u32 as u64;
    if mask as u32 as u64 & STATX_RESERVED != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let target = target_at(process, dirfd, name, flags & AT_EMPTY_PATH != 0, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    write_statx(&target_attributes(process, target), buf)
}

/// `access`, `faccessat`, `faccessat2`: the process is root, so only a
/// write to the read-only initrd (`EROFS`) and running a file with no
/// execute bit (`EACCES`) are refused.
fn access(process: &Process, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    const W_OK: u64 = 2;
    const X_OK: u64 = 1;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_path(path);
    let target = target_at(process, dirfd, name, flags & AT_EMPTY_PATH != 0, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    let (in_proc, attributes) = match &target {
        Target::Node(node) => (node.in_proc() || matches!(node, Node::Ram(_)), node_attributes(process, node)),
        Target::File(file) => {
            let attributes = file_attributes(process, file);
            (attributes.dev != INITRD_DEV, attributes)
        }
    };
    let file_mode = attributes.mode;
    let special = matches!(file_mode & 0o170000, S_IFIFO | S_IFCHR);
    if mode & W_OK != 0 && !in_proc && !special {
        return Err(Errno::EROFS);
    }
    if mode & X_OK != 0 && file_mode & 0o170000 != S_IFDIR && file_mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    let own = creds::credentials(process);
    let who = if flags & AT_EACCESS != 0 { own } else { own.for_access() };
    if !creds::may_access(&who, file_mode, attributes.uid, attributes.gid, mode as u32) {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

/// What the link `/proc/self/fd/FD` shows, as Linux's `d_path` of the
/// file: the path it was opened by (`/proc/PID/...` for `/proc/self/...`;
/// ` (deleted)` after a file in RAM lost its last name, as a memfd never
/// had one: `/memfd:NAME (deleted)`), `pipe:[INO]`, `/dev/ttyS0` for the
/// console.
fn fd_link_target(process: &Process, fd: u32) -> Result<String, Errno> {
    let file = process.state.lock().files.get_any(fd as u64).map_err(|_| Errno::ENOENT)?;
    let open = file.lock();
    let recorded = open.path.clone().unwrap_or_default();
    Ok(match &open.backing {
        Backing::Console => "/dev/ttyS0".to_string(),
        Backing::Pipe(end) => format!("pipe:[{}]", end.pipe.ino),
        Backing::Socket(end) => format!("socket:[{}]", end.ino),
        Backing::Device(device) => format!("/dev/{}", device.name()),
        Backing::Initrd(file) => format!("/{}", file.name()),
        Backing::Directory(Directory { ram: Some(inode), .. }) => format!("/{}", ram_path(inode)?),
        Backing::Directory(directory) => format!("/{}", directory.path),
        Backing::Ram(inode) if inode.meta.lock().nlink == 0 => format!("{recorded} (deleted)"),
        Backing::Generated { .. } => match recorded.strip_prefix("/proc/self/") {
            Some(rest) => format!("/proc/{}/{rest}", process.pid),
            None => recorded,
        },
        Backing::Ram(_) | Backing::Path(_) => recorded,
    })
}

/// `readlink` and `readlinkat`: `/proc/self/exe` (the program),
/// `/proc/self` (the pid) and `/proc/self/fd/N`; `EINVAL` for anything
/// else.
fn readlink(process: &Process, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if (size as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_path(path);
    let empty = name.as_ref().is_ok_and(String::is_empty);
    let target = target_at(process, dirfd, name, true, false)?;
    let node = match target {
        Target::Node(node) => node,
        Target::File(file) => match &file.lock().backing {
            Backing::Path(node) => node.clone(),
            _ => return Err(Errno::ENOENT),
        },
    };
    let text = match node {
        Node::Ram(inode) if inode.link_target().is_some() => inode.link_target().unwrap_or_default().to_string(),
        Node::Proc("exe") => process.path.clone(),
        Node::Other(pid, "exe") => other_process(process, pid).ok_or(Errno::ENOENT)?.path.clone(),
        Node::SelfLink => process.pid.to_string(),
        Node::Fd(fd) => fd_link_target(process, fd)?,
        _ if empty => return Err(Errno::ENOENT),
        _ => return Err(Errno::EINVAL),
    };
    let count = text.len().min(size as u32 as usize);
    copy::write(buf, &text.as_bytes()[..count])?;
    Ok(count as u64)
}

/// `umask(mask)`: the previous mask.
fn umask(process: &Process, mask: u64) -> SysResult {
    let mut state = process.state.lock();
    let previous = state.files.umask;
    state.files.umask = mask as u32 & 0o777;
    Ok(previous as u64)
}

/// The file calls, by number: `None` for a number this module does not
/// serve. (`close` and `lseek` are in the main table.)
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::READ => transfer(process, a[0], a[1], a[2], false, false),
        nr::WRITE => transfer(process, a[0], a[1], a[2], false, true),
        nr::READV => transfer(process, a[0], a[1], a[2], true, false),
        nr::WRITEV => transfer(process, a[0], a[1], a[2], true, true),
        nr::PREAD64 => positional(process, a[0], a[1], a[2], a[3], false),
        nr::PWRITE64 => positional(process, a[0], a[1], a[2], a[3], true),
        nr::OPEN => open(process, AT_FDCWD as u64, a[0], a[1], a[2]),
        nr::OPENAT => open(process, a[0], a[1], a[2], a[3]),
        nr::STAT => fstatat(process, AT_FDCWD as u64, a[0], a[1], 0),
        nr::LSTAT => fstatat(process, AT_FDCWD as u64, a[0], a[1], AT_SYMLINK_NOFOLLOW),
        nr::FSTAT => fstat(process, a[0], a[1]),
        nr::NEWFSTATAT => fstatat(process, a[0], a[1], a[2], a[3]),
        nr::STATX => statx(process, a[0], a[1], a[2], a[3], a[4]),
        nr::ACCESS => access(process, AT_FDCWD as u64, a[0], a[1], 0),
        nr::FACCESSAT => access(process, a[0], a[1], a[2], 0),
        nr::FACCESSAT2 => access(process, a[0], a[1], a[2], a[3]),
        nr::READLINK => readlink(process, AT_FDCWD as u64, a[0], a[1], a[2]),
        nr::READLINKAT => readlink(process, a[0], a[1], a[2], a[3]),
        nr::GETDENTS64 => getdents64(process, a[0], a[1], a[2]),
        nr::IOCTL => ioctl(process, a[0], a[1], a[2]),
        nr::PIPE => pipe2(process, a[0], 0),
        nr::PIPE2 => pipe2(process, a[0], a[1]),
        nr::SOCKETPAIR => socketpair(process, a[0], a[1], a[2], a[3]),
        nr::SENDTO => send_receive(process, a[0], a[1], a[2], a[3], a[4], true),
        nr::RECVFROM => send_receive(process, a[0], a[1], a[2], a[3], a[4], false),
        nr::DUP => dup(process, a[0]),
        nr::DUP2 => dup3(process, a[0], a[1], None),
        nr::DUP3 => dup3(process, a[0], a[1], Some(a[2])),
        nr::FCNTL => fcntl(process, a[0], a[1], a[2]),
        nr::UMASK => umask(process, a[0]),
        _ => return None,
    })
}
