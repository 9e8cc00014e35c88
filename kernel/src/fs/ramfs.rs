//! A file system in RAM (Linux's tmpfs): directories, regular files and
//! symbolic links, with modes, owners and times, mounted at `/tmp` and
//! `/dev/shm`, plus the unnamed instance `memfd_create` makes its files in.
//!
//! A regular file's contents are whole frames, one per 4 KiB page, held by
//! page index ([`Pages`]): the file's page cache and its only storage. A
//! page never written is a hole (it reads as zeros and holds no frame). The
//! cache holds one reference to each frame; a mapping of the file takes one
//! more per page ([`crate::mem::frames::share`]), so that `read`, `write`
//! and every shared mapping of the file see the same bytes, and a frame
//! outlives a truncation for as long as a mapping still holds it.
//!
//! A directory holds its entries by name and a weak link to its parent, so
//! that its path can be found again after a rename ([`path_of`]); a
//! directory that was removed has no path. Everything here is kept under
//! one lock per inode part (entries, pages, metadata): the system calls
//! above take them one at a time, never two of one kind at once except
//! where [`rename`] documents its order.
//!
//! Nothing here knows of processes or of Linux's error numbers: the
//! failures are [`Error`]s, which the system-call layer maps to errno.

use crate::mem::frames;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use aspace::PhysAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::{Mutex, Once};

/// The page size of file contents.
pub const PAGE: u64 = 4096;
/// The largest file (Linux's `MAX_LFS_FILESIZE` on 64-bit: 2^63 - 1).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// tmpfs's `f_type` (`TMPFS_MAGIC`).
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The file-type bits of a mode (`S_IFMT`) and the types kept here.
pub mod mode {
    /// `S_IFMT`.
    pub const TYPE: u32 = 0o170000;
    /// `S_IFDIR`.
    pub const DIRECTORY: u32 = 0o040000;
    /// `S_IFREG`.
    pub const REGULAR: u32 = 0o100000;
    /// `S_IFLNK`.
    pub const SYMLINK: u32 = 0o120000;
}

/// Why an operation failed; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No entry has this name.
    NotFound,
    /// An entry with this name exists.
    Exists,
    /// A directory was needed.
    NotDirectory,
    /// Not possible on a directory.
    IsDirectory,
    /// The directory still has entries.
    NotEmpty,
    /// No frame for a page.
    NoMemory,
    /// A size or offset past [`MAX_FILE_SIZE`].
    TooBig,
    /// A directory moved into itself or below itself; or removed.
    Invalid,
    /// The two inodes are not on the same file system.
    CrossDevice,
}

/// A time stamp: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

impl Time {
    /// The clock `clock_gettime(CLOCK_REALTIME)` reads (the epoch at boot).
    pub fn now() -> Time {
        let nanos = crate::arch::tsc::nanos_since_boot();
        Time { sec: (nanos / 1_000_000_000) as i64, nsec: (nanos % 1_000_000_000) as u32 }
    }
}

/// What `stat` shows of an inode, besides its number and size.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// The type and permission bits.
    pub mode: u32,
    /// The owner.
    pub uid: u32,
    /// The group.
    pub gid: u32,
    /// Names that link to it (a directory: 2 plus its subdirectories).
    pub nlink: u32,
    /// Last access.
    pub atime: Time,
    /// Last change of the contents.
    pub mtime: Time,
    /// Last change of the inode.
    pub ctime: Time,
}

/// A regular file's contents: its size and its frames by page index.
#[derive(Debug, Default)]
pub struct Pages {
    size: u64,
    frames: BTreeMap<u64, PhysAddr>,
}

/// A directory's entries and its parent (none for a root; dead once removed).
#[derive(Debug, Default)]
pub struct Dir {
    entries: BTreeMap<String, Arc<Inode>>,
    parent: Weak<Inode>,
    /// This directory's name in its parent.
    name: String,
    removed: bool,
}

/// What an inode holds.
#[derive(Debug)]
pub enum Body {
    /// A directory.
    Directory(Mutex<Dir>),
    /// A regular file.
    File(Mutex<Pages>),
    /// A symbolic link and its target.
    Symlink(String),
}

/// A file, directory or link of a [`Ramfs`].
#[derive(Debug)]
pub struct Inode {
    /// Its number, unique in its file system.
    pub ino: u64,
    /// Its file system's device number (`st_dev`).
    pub dev: u64,
    /// Mode, owners, link count and times.
    pub meta: Mutex<Meta>,
    /// What it holds.
    pub body: Body,
}

/// One file system in RAM.
#[derive(Debug)]
pub struct Ramfs {
    /// Its device number.
    pub dev: u64,
    /// Its root directory.
    pub root: Arc<Inode>,
    next_ino: AtomicU64,
}

impl Ramfs {
    /// An empty file system with a root of permissions `root_mode`.
    fn new(dev: u64, root_mode: u32) -> Ramfs {
        let root = Arc::new(Inode::new(1, dev, mode::DIRECTORY | root_mode, 0, 0, Body::Directory(Mutex::default())));
        root.meta.lock().nlink = 2;
        Ramfs { dev, root, next_ino: AtomicU64::new(2) }
    }

    /// A new inode of this file system, linked nowhere yet.
    pub fn new_inode(&self, mode: u32, uid: u32, gid: u32, body: Body) -> Arc<Inode> {
        Arc::new(Inode::new(self.next_ino.fetch_add(1, Ordering::Relaxed), self.dev, mode, uid, gid, body))
    }
}

/// The device numbers of the instances (`0:N`, as Linux numbers anonymous
/// devices).
pub const TMP_DEV: u64 = 0x20;
/// `/dev/shm`'s device.
pub const SHM_DEV: u64 = 0x21;
/// The unnamed instance `memfd_create` uses.
pub const MEMFD_DEV: u64 = 0x22;

static MOUNTS: Once<[Ramfs; 3]> = Once::new();

/// The three instances: `/tmp`, `/dev/shm` (both `1777`, as on Linux) and
/// the one of `memfd_create`.
pub fn instances() -> &'static [Ramfs; 3] {
    MOUNTS.call_once(|| [Ramfs::new(TMP_DEV, 0o1777), Ramfs::new(SHM_DEV, 0o1777), Ramfs::new(MEMFD_DEV, 0o1777)])
}

/// Where the named instances are mounted (paths without the leading slash).
pub fn mounted() -> [(&'static str, &'static Ramfs); 2] {
    let [tmp, shm, _] = instances();
    [("tmp", tmp), ("dev/shm", shm)]
}

/// The instance of `memfd_create`.
pub fn memfd_instance() -> &'static Ramfs {
    &instances()[2]
}

/// The instance with device number `dev`.
pub fn instance(dev: u64) -> Option<&'static Ramfs> {
    instances().iter().find(|fs| fs.dev == dev)
}

impl Inode {
    fn new(ino: u64, dev: u64, mode: u32, uid: u32, gid: u32, body: Body) -> Inode {
        let now = Time::now();
        let nlink = if matches!(body, Body::Directory(_)) { 2 } else { 1 };
        Inode { ino, dev, meta: Mutex::new(Meta { mode, uid, gid, nlink, atime: now, mtime: now, ctime: now }), body }
    }

    /// True for a directory.
    pub fn is_directory(&self) -> bool {
        matches!(self.body, Body::Directory(_))
    }

    /// The link's target, for a symbolic link.
    pub fn link_target(&self) -> Option<&str> {
        match &self.body {
            Body::Symlink(target) => Some(target),
            _ => None,
        }
    }

    fn dir(&self) -> Result<&Mutex<Dir>, Error> {
        match &self.body {
            Body::Directory(dir) => Ok(dir),
            _ => Err(Error::NotDirectory),
        }
    }

    fn pages(&self) -> Result<&Mutex<Pages>, Error> {
        match &self.body {
            Body::File(pages) => Ok(pages),
            Body::Directory(_) => Err(Error::IsDirectory),
            Body::Symlink(_) => Err(Error::Invalid),
        }
    }

    /// The size in bytes (a directory's: 0; a link's: its target's length).
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(pages) => pages.lock().size,
            Body::Directory(_) => 0,
            Body::Symlink(target) => target.len() as u64,
        }
    }

    /// How many frames hold its contents.
    pub fn frames_held(&self) -> u64 {
        match &self.body {
            Body::File(pages) => pages.lock().frames.len() as u64,
            _ => 0,
        }
    }

    /// Marks the contents changed now.
    pub fn touch_contents(&self) {
        let now = Time::now();
        let mut meta = self.meta.lock();
        meta.mtime = now;
        meta.ctime = now;
    }

    /// Marks the inode changed now.
    pub fn touch_inode(&self) {
        self.meta.lock().ctime = Time::now();
    }

    // -- directories --------------------------------------------------------

    /// The entry called `name`.
    pub fn lookup(&self, name: &str) -> Result<Arc<Inode>, Error> {
        self.dir()?.lock().entries.get(name).cloned().ok_or(Error::NotFound)
    }

    /// The parent directory (a root is its own parent: `None`).
    pub fn parent(&self) -> Option<Arc<Inode>> {
        self.dir().ok()?.lock().parent.upgrade()
    }

    /// The entries, by name.
    pub fn entries(&self) -> Result<Vec<(String, Arc<Inode>)>, Error> {
        Ok(self.dir()?.lock().entries.iter().map(|(name, inode)| (name.clone(), inode.clone())).collect())
    }

    /// True for a directory that was removed (it has no path any more).
    pub fn is_removed(&self) -> bool {
        self.dir().is_ok_and(|dir| dir.lock().removed)
    }

    /// Links `child` into this directory as `name` (`Exists` if taken).
    pub fn link(self: &Arc<Inode>, name: &str, child: &Arc<Inode>) -> Result<(), Error> {
        let mut dir = self.dir()?.lock();
        if dir.removed {
            return Err(Error::NotFound);
        }
        if dir.entries.contains_key(name) {
            return Err(Error::Exists);
        }
        if let Body::Directory(child_dir) = &child.body {
            let mut child_dir = child_dir.lock();
            child_dir.parent = Arc::downgrade(self);
            child_dir.name = String::from(name);
            self.meta.lock().nlink += 1;
        } else {
            child.meta.lock().nlink += 1;
        }
        dir.entries.insert(String::from(name), child.clone());
        drop(dir);
        self.touch_contents();
        child.touch_inode();
        Ok(())
    }

    /// Removes the entry `name`: `directory` says which kind the caller
    /// means (`rmdir`: a directory, which must be empty; `unlink`: anything
    /// else). Returns the inode, which lives on while it is open or mapped.
    pub fn unlink(&self, name: &str, directory: bool) -> Result<Arc<Inode>, Error> {
        let mut dir = self.dir()?.lock();
        let child = dir.entries.get(name).cloned().ok_or(Error::NotFound)?;
        match (&child.body, directory) {
            (Body::Directory(child_dir), true) => {
                let mut child_dir = child_dir.lock();
                if !child_dir.entries.is_empty() {
                    return Err(Error::NotEmpty);
                }
                child_dir.removed = true;
                child_dir.parent = Weak::new();
                child.meta.lock().nlink = 0;
                self.meta.lock().nlink -= 1;
            }
            (Body::Directory(_), false) => return Err(Error::IsDirectory),
            (_, true) => return Err(Error::NotDirectory),
            (_, false) => child.meta.lock().nlink -= 1,
        }
        dir.entries.remove(name);
        drop(dir);
        self.touch_contents();
        child.touch_inode();
        Ok(child)
    }

    // -- regular files ------------------------------------------------------

    /// Copies the file's bytes from `offset` to `out` (up to its end);
    /// returns how many. Holes read as zeros.
    pub fn read(&self, offset: u64, out: &mut dyn FnMut(&[u8]) -> bool) -> Result<u64, Error> {
        let pages = self.pages()?.lock();
        let end = pages.size;
        let mut position = offset;
        let zeros = [0u8; PAGE as usize];
        while position < end {
            let in_page = (position % PAGE) as usize;
            let count = ((PAGE as usize - in_page) as u64).min(end - position) as usize;
            let bytes = match pages.frames.get(&(position / PAGE)) {
                // SAFETY: the frame is this file's (the cache holds a
                // reference, under the lock held here), in the direct map.
                Some(frame) => unsafe { frame_bytes(*frame) },
                None => &zeros[..],
            };
            if !out(&bytes[in_page..in_page + count]) {
                break;
            }
            position += count as u64;
        }
        Ok(position.saturating_sub(offset))
    }

    /// Writes at `offset` the bytes `fill` puts in each piece it is given
    /// (it returns how many it could: fewer ends the write); grows the file.
    /// Returns how many bytes were written.
    pub fn write(&self, offset: u64, len: u64, fill: &mut dyn FnMut(u64, &mut [u8]) -> u64) -> Result<u64, Error> {
        let end = offset.checked_add(len).filter(|&end| end <= MAX_FILE_SIZE).ok_or(Error::TooBig)?;
        let mut pages = self.pages()?.lock();
        let mut position = offset;
        while position < end {
            let index = position / PAGE;
            let frame = match pages.frames.get(&index) {
                Some(frame) => *frame,
                None => {
                    let Some(frame) = frames::alloc_zeroed() else { break };
                    pages.frames.insert(index, frame);
                    frame
                }
            };
            let in_page = (position % PAGE) as usize;
            let count = ((PAGE as usize - in_page) as u64).min(end - position) as usize;
            // SAFETY: the file's own frame (under its lock), in the direct map.
            let bytes = unsafe { frame_bytes_mut(frame) };
            let done = fill(position - offset, &mut bytes[in_page..in_page + count]);
            position += done;
            if position > pages.size {
                pages.size = position;
            }
            if done < count as u64 {
                break;
            }
        }
        drop(pages);
        if position == offset && len > 0 {
            return Err(Error::NoMemory);
        }
        self.touch_contents();
        Ok(position - offset)
    }

    /// Sets the size; the pages wholly past the new end go (their frames
    /// stay while a mapping holds them), and the rest of a last partial
    /// page is zeroed, so that growing the file again shows zeros.
    pub fn truncate(&self, size: u64) -> Result<(), Error> {
        if size > MAX_FILE_SIZE {
            return Err(Error::TooBig);
        }
        let mut pages = self.pages()?.lock();
        let first_gone = size.div_ceil(PAGE);
        let gone: Vec<u64> = pages.frames.range(first_gone..).map(|(&index, _)| index).collect();
        for index in gone {
            if let Some(frame) = pages.frames.remove(&index) {
                let _ = frames::free(frame);
            }
        }
        if !size.is_multiple_of(PAGE) {
            if let Some(frame) = pages.frames.get(&(size / PAGE)) {
                // SAFETY: the file's own frame (under its lock), in the direct map.
                let bytes = unsafe { frame_bytes_mut(*frame) };
                bytes[(size % PAGE) as usize..].fill(0);
            }
        }
        pages.size = size;
        drop(pages);
        self.touch_contents();
        Ok(())
    }

    /// The frame of page `index` (a hole gets a zeroed frame now), with
    /// one more reference that the caller now owns (a mapping's);
    /// `Ok(None)` for a page wholly past the end of the file.
    pub fn share_page(&self, index: u64) -> Result<Option<PhysAddr>, Error> {
        let mut pages = self.pages()?.lock();
        if index >= pages.size.div_ceil(PAGE) {
            return Ok(None);
        }
        let frame = match pages.frames.get(&index) {
            Some(frame) => *frame,
            None => {
                let frame = frames::alloc_zeroed().ok_or(Error::NoMemory)?;
                pages.frames.insert(index, frame);
                frame
            }
        };
        frames::share(frame).map_err(|_| Error::NoMemory)?;
        Ok(Some(frame))
    }

    /// The frames of those pages of `indices` that have one already, as
    /// (index, frame), each with one more reference for the caller, under
    /// one taking of the file's lock (fault-around).
    pub fn share_held_pages(&self, indices: &[u64], out: &mut Vec<(u64, PhysAddr)>) {
        let Body::File(pages) = &self.body else { return };
        let pages = pages.lock();
        let first = out.len();
        out.extend(indices.iter().filter_map(|&index| pages.frames.get(&index).map(|&frame| (index, frame))));
        if frames::share_each(out[first..].iter().map(|&(_, frame)| frame)).is_err() {
            out.truncate(first);
        }
    }

    /// True when page `index` has its frame (it was written, or mapped).
    pub fn holds_page(&self, index: u64) -> bool {
        match &self.body {
            Body::File(pages) => pages.lock().frames.contains_key(&index),
            _ => false,
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        for frame in core::mem::take(&mut self.frames).into_values() {
            let _ = frames::free(frame);
        }
    }
}

/// The 4 KiB of a frame.
///
/// # Safety
/// `frame` is a frame the caller holds a reference to (in the direct map), and
/// nobody writes it for the life of the slice (the file's lock is held).
unsafe fn frame_bytes<'a>(frame: PhysAddr) -> &'a [u8] {
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts(crate::direct_map::phys_to_virt(frame.as_u64()), PAGE as usize) }
}

/// The 4 KiB of a frame, to write.
///
/// # Safety
/// As [`frame_bytes`], and nobody else reads or writes it through the
/// kernel for the life of the slice (the file's lock is held); user
/// mappings of the frame may see the bytes change, as they would on Linux.
unsafe fn frame_bytes_mut<'a>(frame: PhysAddr) -> &'a mut [u8] {
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts_mut(crate::direct_map::phys_to_virt(frame.as_u64()), PAGE as usize) }
}

/// The path of directory `inode` below its file system's root (`""` for
/// the root itself), or `None` once it was removed.
pub fn path_below_root(inode: &Arc<Inode>) -> Option<String> {
    let mut names = Vec::new();
    let mut current = inode.clone();
    loop {
        let Body::Directory(dir) = &current.body else { return None };
        let (parent, name, removed) = {
            let dir = dir.lock();
            (dir.parent.upgrade(), dir.name.clone(), dir.removed)
        };
        if removed {
            return None;
        }
        match parent {
            Some(parent) => {
                names.push(name);
                current = parent;
            }
            None => break,
        }
    }
    names.reverse();
    Some(names.join("/"))
}

/// True when directory `inode` is `ancestor` or below it.
pub fn is_within(inode: &Arc<Inode>, ancestor: &Arc<Inode>) -> bool {
    let mut current = Some(inode.clone());
    while let Some(node) = current {
        if Arc::ptr_eq(&node, ancestor) {
            return true;
        }
        current = node.parent();
    }
    false
}

/// Moves entry `old_name` of directory `from` to `new_name` of `to`
/// (`rename`), replacing what is there when `replace` allows: a file
/// replaces a file, a directory an empty directory. Returns the inode
/// replaced, if any. Locks the two directories' entries one after the
/// other, never both at once.
pub fn rename(
    from: &Arc<Inode>,
    old_name: &str,
    to: &Arc<Inode>,
    new_name: &str,
    replace: bool,
) -> Result<Option<Arc<Inode>>, Error> {
    if from.dev != to.dev {
        return Err(Error::CrossDevice);
    }
    let moving = from.lookup(old_name)?;
    if to.is_removed() {
        return Err(Error::NotFound);
    }
    if moving.is_directory() && is_within(to, &moving) {
        return Err(Error::Invalid);
    }
    let existing = match to.lookup(new_name) {
        Ok(existing) => Some(existing),
        Err(Error::NotFound) => None,
        Err(error) => return Err(error),
    };
    if let Some(existing) = &existing {
        if Arc::ptr_eq(existing, &moving) {
            return Ok(None); // the same file: nothing to do
        }
        if !replace {
            return Err(Error::Exists);
        }
        match (moving.is_directory(), existing.is_directory()) {
            (true, false) => return Err(Error::NotDirectory),
            (false, true) => return Err(Error::IsDirectory),
            _ => {}
        }
        to.unlink(new_name, existing.is_directory())?;
    }
    // Take it out of `from`, then put it into `to`.
    let directory = moving.is_directory();
    from.dir()?.lock().entries.remove(old_name);
    if directory {
        from.meta.lock().nlink -= 1;
    } else {
        moving.meta.lock().nlink -= 1;
    }
    to.link(new_name, &moving)?;
    from.touch_contents();
    Ok(existing)
}
