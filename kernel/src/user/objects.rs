//! The memory objects processes map (the paging crate's `PageObject`): a
//! file in RAM (`/tmp`, `/dev/shm`, a memfd), whose page cache is its
//! frames, and the memory of a shared anonymous mapping, which is an
//! unnamed file of the memfd instance, as Linux makes one on shmem
//! (`shmem_zero_setup`).
//!
//! An initrd file mapped by a program is one too ([`InitrdFile`]): its page
//! cache holds a copy of each page some mapping touched (the initrd is
//! read-only and its pages are not page-aligned in general), made once and
//! shared by every mapping of the file from then on; the copies last as
//! long as the kernel.
//!
//! A mapping of one takes nothing at `mmap`: each page's first touch asks
//! the file for the page's frame (a hole gets a zeroed frame then), and a
//! page wholly past the file's end is `SIGBUS`. Truncation
//! ([`truncate_file`]) drops the pages past the new end from every process
//! that maps them, private copies too; when the file grows back, the next
//! touch finds the new page.

use super::process;
use crate::address_space::paging_of_mut;
use crate::fs::ramfs::{self, Body, Inode};
use crate::fs::File;
use crate::mem::frames;
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::PhysAddr;
use core::fmt;
use paging::{ObjectFault, PageObject};
use spin::Mutex;

/// What `/proc/PID/maps` calls a mapped object.
#[derive(Debug)]
enum Name {
    /// A file opened by this path, or a memfd (`/memfd:NAME`); ` (deleted)`
    /// follows once it has no name left (a memfd never has one).
    Path(String),
    /// Shared anonymous memory: `/dev/zero (deleted)`, as on Linux.
    SharedAnonymous,
}

/// A file in RAM as a mapping sees it.
#[derive(Debug)]
pub struct RamFile {
    inode: Arc<Inode>,
    name: Name,
}

impl RamFile {
    /// The file `inode`, opened by `path` (`open` and `memfd_create` record one).
    pub fn new(inode: Arc<Inode>, path: Option<&str>) -> Arc<RamFile> {
        Arc::new(RamFile { inode, name: Name::Path(String::from(path.unwrap_or("/memfd:"))) })
    }

    /// The memory of a new shared anonymous mapping of `len` bytes: an
    /// unnamed file of that size whose pages read zero until written.
    /// `None` without memory for the file's inode.
    pub fn shared_anonymous(len: u64) -> Option<Arc<RamFile>> {
        let inode = ramfs::memfd_instance().new_inode(ramfs::mode::REGULAR | 0o600, 0, 0, Body::File(Mutex::default()));
        inode.truncate(len).ok()?;
        Some(Arc::new(RamFile { inode, name: Name::SharedAnonymous }))
    }
}

impl PageObject for RamFile {
    fn frame(&self, index: u64) -> Result<PhysAddr, ObjectFault> {
        match self.inode.share_page(index) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err(ObjectFault::PastEnd),
            Err(_) => Err(ObjectFault::OutOfMemory),
        }
    }

    fn holds(&self, index: u64) -> bool {
        self.inode.holds_page(index)
    }

    fn held_frames(&self, indices: &[u64], out: &mut Vec<(u64, PhysAddr)>) {
        self.inode.share_held_pages(indices, out);
    }

    fn key(&self) -> usize {
        key_of(&self.inode)
    }

    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match &self.name {
            Name::Path(path) if self.inode.meta.lock().nlink == 0 => write!(out, "{path} (deleted)"),
            Name::Path(path) => out.write_str(path),
            Name::SharedAnonymous => out.write_str("/dev/zero (deleted)"),
        }
    }

    fn file_ids(&self) -> (u64, u64) {
        (self.inode.dev, self.inode.ino)
    }
}

/// The key of every mapping of `inode`'s pages.
fn key_of(inode: &Arc<Inode>) -> usize {
    Arc::as_ptr(inode) as usize
}

/// Truncates file `inode` in RAM to `size`: first every process that maps
/// a page of it wholly past the new end drops that page (shared pages and
/// private copies alike, as Linux's truncation does: the next touch is
/// `SIGBUS`), then the file lets its pages go.
pub fn truncate_file(inode: &Arc<Inode>, size: u64) -> Result<(), ramfs::Error> {
    if size < inode.size() {
        let first_gone = size.div_ceil(super::layout::PAGE);
        for process in process::all() {
            let mut object = process.space.lock();
            if let Some(paging) = paging_of_mut(&mut object) {
                paging.drop_object_pages(key_of(inode), first_gone);
            }
        }
    }
    inode.truncate(size)
}

/// An initrd file as a mapping sees it: its bytes, and its page cache.
pub struct InitrdFile {
    file: &'static File,
    /// The frame holding a copy of each page copied so far, by index.
    cache: IrqMutex<PageCache>,
}

/// An initrd file's page cache: the frame of each page copied so far, by
/// index (the file's size never changes, so a table indexed by page).
#[derive(Default)]
struct PageCache {
    frames: Vec<Option<PhysAddr>>,
    copied: usize,
}

/// The initrd files mapped so far, by the address of their data: one page
/// cache per file, shared by all its mappings.
static INITRD_FILES: IrqMutex<BTreeMap<usize, Arc<InitrdFile>>> = IrqMutex::new(BTreeMap::new());

/// How many frames the initrd files' page caches hold (they keep them for
/// the life of the kernel: `mem since` does not count them as lost).
pub fn initrd_cache_frames() -> usize {
    let files: alloc::vec::Vec<Arc<InitrdFile>> = INITRD_FILES.lock().values().cloned().collect();
    files.iter().map(|file| file.cache.lock().copied).sum()
}

impl InitrdFile {
    /// The memory object of `file`.
    pub fn of(file: &'static File) -> Arc<InitrdFile> {
        let key = file.data().as_ptr() as usize;
        INITRD_FILES
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(InitrdFile { file, cache: IrqMutex::new(PageCache::default()) }))
            .clone()
    }

    /// The cache's frame for page `index`, copied from the file first if
    /// the cache has none yet (no reference is taken).
    fn cached_frame(&self, cache: &mut PageCache, index: u64) -> Result<PhysAddr, ObjectFault> {
        let data = self.file.data();
        let start = index.checked_mul(super::layout::PAGE).filter(|&start| start < data.len() as u64);
        let Some(start) = start else { return Err(ObjectFault::PastEnd) };
        if cache.frames.is_empty() {
            cache.frames.resize(data.len().div_ceil(super::layout::PAGE as usize), None);
        }
        let slot = &mut cache.frames[index as usize];
        if let Some(frame) = *slot {
            return Ok(frame);
        }
        // The page's bytes, the rest of the frame zero (past the end of the
        // file, as Linux's page cache reads there).
        let frame = frames::alloc_zeroed().ok_or(ObjectFault::OutOfMemory)?;
        let bytes = &data[start as usize..data.len().min(start as usize + super::layout::PAGE as usize)];
        frames::write_bytes(frame, bytes);
        *slot = Some(frame);
        cache.copied += 1;
        Ok(frame)
    }
}

impl PageObject for InitrdFile {
    fn frame(&self, index: u64) -> Result<PhysAddr, ObjectFault> {
        let frame = self.cached_frame(&mut self.cache.lock(), index)?;
        frames::share(frame).map_err(|_| ObjectFault::OutOfMemory)?;
        Ok(frame)
    }

    fn held_frames(&self, indices: &[u64], out: &mut Vec<(u64, PhysAddr)>) {
        // Every page is held (see `holds`); one taking of the cache's lock,
        // and of the allocator's for the references.
        let first = out.len();
        {
            let mut cache = self.cache.lock();
            for &index in indices {
                match self.cached_frame(&mut cache, index) {
                    Ok(frame) => out.push((index, frame)),
                    Err(_) => break,
                }
            }
        }
        if frames::share_each(out[first..].iter().map(|&(_, frame)| frame)).is_err() {
            out.truncate(first);
        }
    }

    fn holds(&self, index: u64) -> bool {
        // Every byte of the initrd is in memory (a page the cache has not
        // copied yet is copied when asked for), as a file of Linux's
        // initramfs is all in its page cache.
        index.checked_mul(super::layout::PAGE).is_some_and(|start| start < self.file.size())
    }

    fn key(&self) -> usize {
        self.file.data().as_ptr() as usize
    }

    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "/{}", self.file.name())
    }

    fn file_ids(&self) -> (u64, u64) {
        (0, super::proc::inode_of(self.file.name()))
    }
}
