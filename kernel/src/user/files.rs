//! A process's open files: the console on 0, 1 and 2, initrd files opened
//! read-only, and the generated files of `/proc/self` (`maps`, `status`).
//!
//! The initrd is read-only: opening a file for writing is `EROFS`, creating
//! one is `EROFS` too (there is no writable file system yet). Reads of the
//! console return 0 (end of file): the shell owns the keyboard while a
//! program runs.

use super::copy;
use super::errno::{Errno, SysResult};
use crate::fs;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// The most files a process has open at once (`RLIMIT_NOFILE`).
pub const MAX_FILES: usize = 1024;

/// What an open file is.
pub enum Backing {
    /// The serial console: writes print, reads see end of file.
    Console,
    /// An initrd file (read-only).
    Initrd(&'static fs::File),
    /// Bytes made when the file was opened (`/proc/self/maps`).
    Generated(Vec<u8>),
}

/// An open file description: what it is and the offset reads start at.
pub struct OpenFile {
    /// The file.
    pub backing: Backing,
    /// The offset of the next `read`.
    pub offset: u64,
}

impl OpenFile {
    /// The file's bytes, when it has any (not the console).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.backing {
            Backing::Console => None,
            Backing::Initrd(file) => Some(file.data()),
            Backing::Generated(bytes) => Some(bytes),
        }
    }
}

/// A shared open file description.
pub type FileRef = Arc<Mutex<OpenFile>>;

/// The descriptors of a process.
pub struct FileTable {
    slots: Vec<Option<FileRef>>,
}

impl FileTable {
    /// 0, 1 and 2 on the console.
    pub fn with_console() -> FileTable {
        let console = || Some(Arc::new(Mutex::new(OpenFile { backing: Backing::Console, offset: 0 })));
        FileTable { slots: alloc::vec![console(), console(), console()] }
    }

    /// The file behind descriptor `fd`, or `EBADF`.
    pub fn get(&self, fd: u64) -> Result<FileRef, Errno> {
        usize::try_from(fd).ok().and_then(|fd| self.slots.get(fd)).and_then(Clone::clone).ok_or(Errno::EBADF)
    }

    /// Puts `file` in the lowest free descriptor (`EMFILE` when none is).
    pub fn add(&mut self, file: OpenFile) -> SysResult {
        let file = Some(Arc::new(Mutex::new(file)));
        if let Some(free) = self.slots.iter().position(Option::is_none) {
            self.slots[free] = file;
            return Ok(free as u64);
        }
        if self.slots.len() >= MAX_FILES {
            return Err(Errno::EMFILE);
        }
        self.slots.push(file);
        Ok(self.slots.len() as u64 - 1)
    }

    /// Closes `fd` (`EBADF` when it is not open).
    pub fn close(&mut self, fd: u64) -> SysResult {
        let slot = usize::try_from(fd).ok().and_then(|fd| self.slots.get_mut(fd)).ok_or(Errno::EBADF)?;
        slot.take().ok_or(Errno::EBADF).map(|_| 0)
    }
}

/// `read` from `file` into user memory `[buf, buf + len)`.
pub fn read(file: &FileRef, buf: u64, len: u64) -> SysResult {
    copy::check_range(buf, len)?;
    let mut file = file.lock();
    let offset = file.offset;
    let Some(bytes) = file.bytes() else { return Ok(0) };
    let start = (offset.min(bytes.len() as u64)) as usize;
    let count = (len as usize).min(bytes.len() - start);
    copy::write(buf, &bytes[start..start + count])?;
    file.offset += count as u64;
    Ok(count as u64)
}

/// `write` of user memory `[buf, buf + len)` to `file`.
pub fn write(file: &FileRef, buf: u64, len: u64) -> SysResult {
    copy::check_range(buf, len)?;
    if !matches!(file.lock().backing, Backing::Console) {
        return Err(Errno::EBADF); // opened read-only
    }
    let mut chunk = [0u8; 512];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        if let Err(error) = copy::read(buf + done, &mut chunk[..n]) {
            // Linux returns what it wrote before the fault, or EFAULT.
            return if done > 0 { Ok(done) } else { Err(error) };
        }
        crate::serial::write_bytes(&chunk[..n]);
        done += n as u64;
    }
    Ok(done)
}

/// `lseek`.
pub fn seek(file: &FileRef, offset: i64, whence: u32) -> SysResult {
    const SEEK_SET: u32 = 0;
    const SEEK_CUR: u32 = 1;
    const SEEK_END: u32 = 2;
    let mut file = file.lock();
    let Some(size) = file.bytes().map(|bytes| bytes.len() as i64) else { return Err(Errno::ESPIPE) };
    let base = match whence {
        SEEK_SET => 0,
        SEEK_CUR => file.offset as i64,
        SEEK_END => size,
        _ => return Err(Errno::EINVAL),
    };
    let target = base.checked_add(offset).ok_or(Errno::EOVERFLOW)?;
    if target < 0 {
        return Err(Errno::EINVAL);
    }
    file.offset = target as u64;
    Ok(target as u64)
}

/// The file calls not in the main table (`syscall::call`): `None` for a
/// number this module does not serve.
pub fn call(process: &super::process::Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    let _ = (process, a);
    match number {
        _ => None,
    }
}
