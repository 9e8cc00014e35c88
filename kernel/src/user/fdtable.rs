//! A process's descriptor table and what a descriptor can name: the data
//! of the file calls (`files.rs`), kept below the process records that hold
//! them (`process.rs`), so that the layers import downward only.

pub use super::devices::Device;
use super::errno::{Errno, SysResult};
use crate::fs;
use crate::fs::ramfs;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use flags::*;
use spin::Mutex;

/// The most files a process has open at once when it starts (`RLIMIT_NOFILE`,
/// soft and hard).
pub const MAX_FILES: usize = 1024;
/// The most descriptors a table holds whatever `RLIMIT_NOFILE` says: the
/// kernel heap's guard against a program raising the limit and opening
/// files without end.
pub const TABLE_MAX: u64 = 65536;
/// `sysctl fs.nr_open`: the most `RLIMIT_NOFILE` may be raised to.
pub const NR_OPEN: u64 = 1 << 20;

/// The `open` flags (`asm-generic/fcntl.h`), as `fcntl(F_GETFL)` shows them.
#[allow(missing_docs)]
pub mod flags {
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const FASYNC: u32 = 0o20000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_SYNC_BIT: u32 = 0o4000000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE_BIT: u32 = 0o20000000;
    /// Every flag `open` knows (Linux's `VALID_OPEN_FLAGS`).
    pub const VALID: u32 = O_ACCMODE
        | O_CREAT
        | O_EXCL
        | O_NOCTTY
        | O_TRUNC
        | O_APPEND
        | O_NONBLOCK
        | O_DSYNC
        | FASYNC
        | O_DIRECT
        | O_LARGEFILE
        | O_DIRECTORY
        | O_NOFOLLOW
        | O_NOATIME
        | O_CLOEXEC
        | O_SYNC_BIT
        | O_PATH
        | O_TMPFILE_BIT;
    /// What `F_SETFL` may change (Linux's `SETFL_MASK`).
    pub const SETFL: u32 = O_APPEND | O_NONBLOCK | FASYNC | O_DIRECT | O_NOATIME;
}

/// What an open file is.
pub enum Backing {
    /// The serial console: a terminal; writes print, reads see end of file.
    Console,
    /// An initrd file (read-only).
    Initrd(&'static fs::File),
    /// A `/proc` file's bytes, made when it was opened, and its inode.
    Generated {
        /// The contents.
        bytes: Vec<u8>,
        /// The inode number `fstat` shows.
        ino: u64,
    },
    /// A directory and its entries, listed when it was opened.
    Directory(Directory),
    /// One end of a pipe.
    Pipe(PipeEnd),
    /// One end of a socket pair.
    Socket(SocketEnd),
    /// An `O_PATH` handle: what the path named, for `fstat`, `fcntl` and as
    /// a directory for `*at` calls; no reading or writing.
    Path(Node),
    /// A regular file of a file system in RAM (`/tmp`, `/dev/shm`, a memfd).
    Ram(Arc<ramfs::Inode>),
    /// A device of `/dev` that is not a terminal (`null`, `zero`, `random`,
    /// `urandom`).
    Device(Device),
}

/// An open file description: what it is, the offset reads start at, and
/// its status flags.
pub struct OpenFile {
    /// The file.
    pub backing: Backing,
    /// The offset of the next `read` (in a directory: the next entry's index).
    pub offset: u64,
    /// The access mode and status flags (`fcntl(F_GETFL)`).
    pub flags: u32,
    /// The absolute path it was opened by, when `open` opened it (the
    /// target of its `/proc/self/fd` link).
    pub path: Option<String>,
}

impl OpenFile {
    /// An open file with `flags` (access mode and status flags).
    pub fn new(backing: Backing, flags: u32) -> OpenFile {
        OpenFile { backing, offset: 0, flags, path: None }
    }

    /// The file's bytes, when it has a fixed content (an initrd or `/proc` file).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.backing {
            Backing::Initrd(file) => Some(file.data()),
            Backing::Generated { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// Opened for reading (Linux's `FMODE_READ`: access mode 0 or 2).
    pub(super) fn readable(&self) -> bool {
        self.flags & O_PATH == 0 && ((self.flags & O_ACCMODE) + 1) & 1 != 0
    }

    /// Opened for writing (`FMODE_WRITE`: access mode 1 or 2).
    pub(super) fn writable(&self) -> bool {
        self.flags & O_PATH == 0 && ((self.flags & O_ACCMODE) + 1) & 2 != 0
    }
}

/// A shared open file description.
pub type FileRef = Arc<Mutex<OpenFile>>;

/// One descriptor: its open file description, whether that is an `O_PATH`
/// handle (kept here so that a look-up never locks the description: the
/// table is read with interrupts off), and `FD_CLOEXEC`.
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) file: FileRef,
    pub(super) path_only: bool,
    pub(super) cloexec: bool,
}

/// The descriptors of a process (a forked child gets a copy that shares
/// the open file descriptions), the file-creation mask and the working
/// directory.
#[derive(Clone)]
pub struct FileTable {
    pub(super) slots: Vec<Option<Slot>>,
    /// The file-creation mask (`umask`).
    pub umask: u32,
    /// The working directory (`chdir`), a directory node.
    pub cwd: Node,
}

impl FileTable {
    /// 0, 1 and 2 on the console (one description, read-write, as a login
    /// terminal is).
    pub fn with_console() -> FileTable {
        let console = Arc::new(Mutex::new(OpenFile::new(Backing::Console, O_RDWR | O_LARGEFILE)));
        let slot = || Some(Slot { file: console.clone(), path_only: false, cloexec: false });
        FileTable { slots: alloc::vec![slot(), slot(), slot()], umask: 0o022, cwd: Node::Directory(String::new()) }
    }

    pub(super) fn slot(&self, fd: u64) -> Option<&Slot> {
        self.slots.get(fd as u32 as usize).and_then(Option::as_ref)
    }

    /// The file behind descriptor `fd` (an `unsigned int`), or `EBADF`; an
    /// `O_PATH` handle is `EBADF` too, as for Linux's `fdget`.
    pub fn get(&self, fd: u64) -> Result<FileRef, Errno> {
        match self.slot(fd) {
            Some(slot) if !slot.path_only => Ok(slot.file.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// The file behind descriptor `fd`, `O_PATH` handles included (`fdget_raw`).
    pub fn get_any(&self, fd: u64) -> Result<FileRef, Errno> {
        self.slot(fd).map(|slot| slot.file.clone()).ok_or(Errno::EBADF)
    }

    /// The lowest free descriptor at or above `from` and below `limit`
    /// (and [`TABLE_MAX`]), or `EMFILE`.
    pub(super) fn lowest_free(&self, from: u64, limit: u64) -> Result<usize, Errno> {
        let limit = limit.min(TABLE_MAX) as usize;
        let from = from.min(limit as u64) as usize;
        (from..limit).find(|&fd| self.slots.get(fd).is_none_or(Option::is_none)).ok_or(Errno::EMFILE)
    }

    /// Puts `slot` in the lowest free descriptor at or above `from` and
    /// below `limit`.
    pub(super) fn install(&mut self, slot: Slot, from: u64, limit: u64) -> SysResult {
        let fd = self.lowest_free(from, limit)?;
        self.put(fd, slot);
        Ok(fd as u64)
    }

    /// A copy of descriptor `fd` without `FD_CLOEXEC` (for `dup`), or `EBADF`.
    pub(super) fn duplicate(&self, fd: u64) -> Result<Slot, Errno> {
        self.slot(fd).map(|slot| Slot { cloexec: false, ..slot.clone() }).ok_or(Errno::EBADF)
    }

    /// Puts `slot` at `fd` (below [`TABLE_MAX`]); returns what was there,
    /// for the caller to drop.
    pub(super) fn put(&mut self, fd: usize, slot: Slot) -> Option<Slot> {
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd].replace(slot)
    }

    /// Closes `fd` (`EBADF` when it is not open).
    pub fn close(&mut self, fd: u64) -> SysResult {
        let slot = self.slots.get_mut(fd as u32 as usize).ok_or(Errno::EBADF)?;
        slot.take().ok_or(Errno::EBADF).map(|_| 0)
    }

    /// Closes every descriptor (the process ends: Linux's `exit_files`, so
    /// that a pipe's other end sees it gone before the zombie is reaped).
    pub fn close_all(&mut self) {
        self.slots.clear();
    }

    /// Closes every descriptor marked `FD_CLOEXEC` (`execve`).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|slot| slot.cloexec) {
                *slot = None;
            }
        }
    }

    pub(super) fn cloexec(&self, fd: u64) -> bool {
        self.slot(fd).is_some_and(|slot| slot.cloexec)
    }

    pub(super) fn set_cloexec(&mut self, fd: u64, on: bool) {
        if let Some(Some(slot)) = self.slots.get_mut(fd as u32 as usize) {
            slot.cloexec = on;
        }
    }
}

/// What a path names.
#[derive(Clone, Debug)]
pub enum Node {
    /// An initrd file.
    File(&'static fs::File),
    /// A directory, by its path without the leading slash (`""` is the
    /// root): a prefix of initrd paths, `dev`, a directory of `/proc` or
    /// `/sys`; `proc/self` is the process's own directory, also reached as
    /// `/proc/PID`.
    Directory(String),
    /// A `/proc` file made when opened (`maps`, `status`, `meminfo`), or the
    /// link `exe` (to the program).
    Proc(&'static str),
    /// The link `/proc/self` (to `/proc/PID`).
    SelfLink,
    /// A file, directory or link of a file system in RAM.
    Ram(Arc<ramfs::Inode>),
    /// A character device of `/dev`.
    Device(Device),
    /// A file of `/sys`, by its path (without the leading slash).
    Sys(&'static str),
    /// The link `/proc/self/fd/N` (to what descriptor N is).
    Fd(u32),
    /// An entry of another process's `/proc/PID` (`maps`, `smaps`,
    /// `status`, `stat`, `cmdline`, `oom_score_adj`, the link `exe`), by
    /// its pid and name.
    Other(u32, &'static str),
}

impl Node {
    pub(super) fn is_directory(&self) -> bool {
        match self {
            Node::Directory(_) => true,
            Node::Ram(inode) => inode.is_directory(),
            _ => false,
        }
    }

    pub(super) fn is_link(&self) -> bool {
        match self {
            Node::SelfLink | Node::Proc("exe") | Node::Fd(_) | Node::Other(_, "exe") => true,
            Node::Ram(inode) => inode.link_target().is_some(),
            _ => false,
        }
    }

    /// In `/proc` rather than the initrd.
    pub(super) fn in_proc(&self) -> bool {
        match self {
            Node::Directory(path) => path == "proc" || path.starts_with("proc/"),
            Node::File(_) | Node::Ram(_) | Node::Device(_) | Node::Sys(_) => false,
            Node::Proc(_) | Node::SelfLink | Node::Fd(_) | Node::Other(..) => true,
        }
    }
}

/// An open directory: its path and its entries (`.` and `..` first); a
/// directory in RAM is held by its inode (its path may change).
pub struct Directory {
    pub(super) path: String,
    pub(super) ram: Option<Arc<ramfs::Inode>>,
    pub(super) entries: Vec<DirEntry>,
}

pub(super) struct DirEntry {
    pub(super) ino: u64,
    pub(super) kind: u8,
    pub(super) name: String,
}

/// One page of a pipe's ring (Linux's `struct pipe_buffer`).
pub(super) struct PipeBuffer {
    /// The bytes written to the page, from its start.
    pub(super) data: Vec<u8>,
    /// The first byte not read yet.
    pub(super) start: usize,
    /// More bytes may be appended (a write not in packet mode made it).
    pub(super) mergeable: bool,
    /// Written in packet mode: one read takes it, the rest is dropped.
    pub(super) packet: bool,
}

impl PipeBuffer {
    pub(super) fn unread(&self) -> &[u8] {
        &self.data[self.start..]
    }
}

/// A pipe's buffers and how many the ring holds (`F_GETPIPE_SZ` / 4096).
pub(super) struct Ring {
    pub(super) buffers: VecDeque<PipeBuffer>,
    pub(super) slots: usize,
}

impl Ring {
    pub(super) fn available(&self) -> usize {
        self.buffers.iter().map(|buffer| buffer.unread().len()).sum()
    }
}

/// A pipe: its buffers, and how many open descriptions have each end.
///
/// The ring's lock is held while user memory is copied (so that two
/// processes sharing an end after `fork` see each byte once) and is never
/// taken with interrupts off; the counts are atomics, so that the last
/// close of an end, which may happen under the process's lock, takes no
/// lock.
pub struct Pipe {
    pub(super) ring: Mutex<Ring>,
    pub(super) readers: AtomicUsize,
    pub(super) writers: AtomicUsize,
    pub(super) ino: u64,
}

/// The inode numbers of pipes (pipefs).
pub(super) static NEXT_PIPE_INO: AtomicU64 = AtomicU64::new(0x10000);

/// One end of a `socketpair`: it reads one pipe and writes the other, so
/// that each end reads what the other wrote; in `SOCK_SEQPACKET` and
/// `SOCK_DGRAM` each write is one packet (the pipe's packet mode). Closing
/// the last descriptor of an end closes both its pipe ends: the other end
/// reads end of file and its writes get `EPIPE`.
pub struct SocketEnd {
    pub(super) rx: PipeEnd,
    pub(super) tx: PipeEnd,
    pub(super) packets: bool,
    /// `SOCK_DGRAM` (or `SOCK_RAW`), not `SOCK_SEQPACKET`.
    pub(super) datagram: bool,
    pub(super) ino: u64,
}

/// One end of a pipe, held by an open file description; dropping it
/// (the last descriptor closed) counts the end gone.
pub struct PipeEnd {
    pub(super) pipe: Arc<Pipe>,
    pub(super) writing: bool,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let count = if self.writing { &self.pipe.writers } else { &self.pipe.readers };
        count.fetch_sub(1, Ordering::AcqRel);
    }
}
