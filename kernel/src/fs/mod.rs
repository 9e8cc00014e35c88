//! The files: a small read-only layer over the initrd, and [`ramfs`].
//!
//! QEMU's `-initrd` file reaches the kernel as PVH module 0: a range of
//! physical memory the frame allocator leaves alone. `xtask` fills it with
//! a cpio newc archive ([`cpio`]) of the repository's `initrd/` folder. At
//! boot, [`init`] parses it once and keeps the regular files: a name and a
//! slice of the initrd's memory, read in place (nothing is copied, and
//! nothing ever writes it). A corrupt archive is reported and ignored: the
//! kernel then runs with no files.
//!
//! Entries named [`PADDING_NAME`] are padding that `xtask` inserts so that
//! the data of larger files starts on a page boundary (where a shared
//! mapping can use the initrd's own frames); they are not files.
//!
//! The writable file systems in RAM (`/tmp`, `/dev/shm`, `memfd_create`)
//! are [`ramfs`].
//!
//! The shell's `ls`, `cat FILE` and `stat FILE` are in `shell::commands`.

pub mod cpio;
pub mod ramfs;

use crate::boot_info::{MemoryKind, Module};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The name of the padding entries `xtask` inserts (not files).
pub const PADDING_NAME: &str = ".pad";
/// The page size, for the alignment of file data.
pub const PAGE: u64 = 4096;

/// A file of the initrd.
#[derive(Debug)]
pub struct File {
    name: String,
    data: &'static [u8],
}

impl File {
    /// The file's name (its path in the archive).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its contents.
    pub fn data(&self) -> &'static [u8] {
        self.data
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The physical address of its first byte (the initrd is read in place,
    /// through the direct map).
    pub fn phys_addr(&self) -> u64 {
        crate::direct_map::direct_phys(self.data.as_ptr() as u64)
    }

    /// True when its data starts on a page boundary: a shared mapping can
    /// then map the initrd's frames themselves.
    pub fn is_page_aligned(&self) -> bool {
        self.phys_addr().is_multiple_of(PAGE)
    }
}

/// What became of the initrd at boot.
#[derive(Debug)]
pub enum Initrd {
    /// QEMU was given no `-initrd`.
    Missing,
    /// Not in RAM the kernel maps: not read.
    OutsideRam(Module),
    /// Parsed: its regular files, in archive order.
    Loaded {
        /// Where it is.
        module: Module,
        /// Its files.
        files: Vec<File>,
    },
    /// Not a valid archive: ignored.
    Corrupt {
        /// Where it is.
        module: Module,
        /// What is wrong with it.
        error: cpio::CpioError,
    },
}

/// Why a file could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No file has this name.
    NoSuchFile {
        /// The name asked for.
        name: String,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NoSuchFile { name } => write!(f, "no file named '{name}' in the initrd (see ls)"),
        }
    }
}

static INITRD: spin::Once<Initrd> = spin::Once::new();

/// Reads the initrd `module` (PVH module 0), if any: called once at boot,
/// after the memory map is known. Logs what it found.
pub fn init(module: Option<Module>) {
    let initrd = INITRD.call_once(|| load(module));
    match initrd {
        Initrd::Missing => log::info!("files: no initrd"),
        Initrd::OutsideRam(module) => {
            log::warn!("files: initrd at {:#x} ({} bytes) is not in usable RAM; ignored", module.start, module.size)
        }
        Initrd::Loaded { files, .. } => log::info!("files: initrd holds {} files", files.len()),
        Initrd::Corrupt { error, .. } => {
            log::warn!("files: initrd is not a valid cpio newc archive ({error}); ignored")
        }
    }
}

fn load(module: Option<Module>) -> Initrd {
    let Some(module) = module else { return Initrd::Missing };
    let in_ram = crate::boot_info::get().memory_map().iter().any(|ram| {
        ram.kind == MemoryKind::Usable
            && ram.start <= module.start
            && module.start.checked_add(module.size).is_some_and(|end| end <= ram.end())
    });
    if !in_ram || module.size == 0 {
        return Initrd::OutsideRam(module);
    }
    // SAFETY: the loader put the module in usable RAM (checked just above),
    // which the boot tables and every address space the kernel runs in hold
    // in the direct map; the frame allocator never hands out its frames (mem::frames
    // excludes the initrd) and nothing writes it, so it stays valid and
    // unchanged for the kernel's lifetime.
    let archive: &'static [u8] =
        unsafe { core::slice::from_raw_parts(crate::direct_map::phys_to_virt(module.start), module.size as usize) };
    match cpio::parse(archive) {
        Ok(entries) => {
            let files = entries
                .iter()
                .filter(|entry| entry.is_regular_file() && entry.name != PADDING_NAME)
                .map(|entry| File { name: String::from(entry.name), data: entry.data })
                .collect();
            Initrd::Loaded { module, files }
        }
        Err(error) => Initrd::Corrupt { module, error },
    }
}

/// What became of the initrd (`Missing` before [`init`]).
pub fn initrd() -> &'static Initrd {
    INITRD.get().unwrap_or(&Initrd::Missing)
}

/// Every file, in archive order (none without a valid initrd).
pub fn files() -> &'static [File] {
    match initrd() {
        Initrd::Loaded { files, .. } => files,
        _ => &[],
    }
}

/// The file called `name`.
pub fn find(name: &str) -> Result<&'static File, FsError> {
    files().iter().find(|file| file.name == name).ok_or_else(|| FsError::NoSuchFile { name: String::from(name) })
}
