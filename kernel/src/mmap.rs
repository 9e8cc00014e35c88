//! `mmap`: initrd files mapped into `paging` address spaces, lazily.
//!
//! Two kinds of mapping, both page-granular and kernel-only (KERN is always
//! set: with SMAP on, the kernel may not touch user pages):
//! - **private** (the default): an anonymous region backed by the file
//!   ([`paging::PagingAspace::add_file_region`]). The first touch of a page
//!   copies the file's bytes into a fresh frame; writes stay in that frame;
//!   the part of the last page past the mapped length reads zero.
//! - **shared** (read-only): the file's whole pages map the initrd's own
//!   frames, a plain linear region onto the file's data, nothing copied.
//!   The initrd is read-only, so a shared mapping is too, for good: its
//!   regions carry [`Protection::READ_ONLY_BACKING`], a shared mapping asked
//!   for with `w` is refused ([`MmapError::SharedWritable`], Linux's `EACCES`
//!   for `MAP_SHARED` + `PROT_WRITE` of a file opened read-only), and a later
//!   `as protect` that adds `w` is refused by the address space
//!   ([`aspace::AspaceError::ReadOnlyBacking`]). Nothing ever writes the
//!   archive. A private mapping made writable writes its own copies.
//!   It needs the data at `OFFSET` to start on a page boundary. A last
//!   partial page is not shared (the rest of that frame holds the next
//!   archive entry, which must not show through): it gets a private,
//!   read-only, zero-filled copy of its bytes.
//!
//! Every mapping is recorded here (space, VA, file, range), so that
//! [`munmap`] removes exactly its regions. Refused requests change nothing.

use crate::address_space::{self, paging_of_mut, Space};
use crate::fs::{self, File, FsError, PAGE};
use crate::sync::IrqMutex;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AddressSpace, AspaceError, PhysAddr, Protection, Region};
use core::fmt;

/// Private (copy on first touch) or shared (the initrd's own frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Each page copied into a frame of its own on first touch.
    Private,
    /// Whole pages map the initrd's frames, read-only.
    Shared,
}

/// What to map: `len` bytes of `file` from `offset`, at `va` in `space`.
#[derive(Clone, Copy, Debug)]
pub struct MmapRequest<'a> {
    /// The address space's name.
    pub space: &'a str,
    /// The file's name.
    pub file: &'a str,
    /// Where the mapping starts (page-aligned).
    pub va: u64,
    /// Where in the file it starts (page-aligned).
    pub offset: u64,
    /// How many bytes of the file; `None`: from `offset` to the end.
    pub len: Option<u64>,
    /// The rights: READ, and any of WRITE, EXEC, EAGER (KERN is added).
    pub prot: Protection,
    /// Private or shared.
    pub sharing: Sharing,
}

/// A mapping in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The address space's id.
    pub space_id: crate::thread::AddressSpaceId,
    /// Its name.
    pub space_name: String,
    /// The file's name.
    pub file: String,
    /// Where the mapping starts.
    pub va: u64,
    /// Where in the file it starts.
    pub offset: u64,
    /// How many bytes of the file it shows (the rest of its last page reads zero).
    pub len: u64,
    /// Private or shared.
    pub sharing: Sharing,
    /// The regions it added (one, or for a shared mapping with a partial
    /// last page, the shared part and the private last page).
    pub regions: Vec<Region>,
}

impl Mapping {
    /// The mapped length, whole pages.
    pub fn mapped_len(&self) -> u64 {
        self.len.next_multiple_of(PAGE)
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes of '{}' from offset {:#x} at {:#x}-{:#x} in '{}' ({})",
            self.len,
            self.file,
            self.offset,
            self.va,
            self.va + self.mapped_len() - 1,
            self.space_name,
            match self.sharing {
                Sharing::Private => "private",
                Sharing::Shared => "shared, read-only",
            }
        )
    }
}

/// Why a request was refused. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MmapError {
    /// No such file.
    UnknownFile(FsError),
    /// No address space of that name.
    UnknownSpace {
        /// The name asked for.
        name: String,
    },
    /// The address space is not a `paging` one.
    NotPaging {
        /// Its name.
        name: String,
        /// Its implementation.
        implementation: &'static str,
    },
    /// Zero bytes asked for (or an empty file).
    ZeroLength,
    /// The VA is not page-aligned.
    MisalignedVa {
        /// The VA.
        va: u64,
    },
    /// The offset is not page-aligned.
    MisalignedOffset {
        /// The offset.
        offset: u64,
    },
    /// The range runs past the end of the file.
    PastEnd {
        /// The file's name.
        file: String,
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u64,
        /// The file's size.
        size: u64,
    },
    /// A shared mapping of data that does not start on a page boundary.
    SharedUnaligned {
        /// The file's name.
        file: String,
        /// The physical address the mapping would start at.
        phys: u64,
    },
    /// A shared mapping asked for WRITE.
    SharedWritable,
    /// Rights other than READ, WRITE, EXEC, KERN, EAGER, or no READ.
    BadRights {
        /// The rights asked for.
        prot: Protection,
    },
    /// The address space refused the region (overlap, non-canonical VA...).
    Refused(AspaceError),
    /// No mapping starts at this VA in this address space.
    NoMapping {
        /// The address space's name.
        space: String,
        /// The VA.
        va: u64,
    },
}

impl fmt::Display for MmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmapError::UnknownFile(error) => write!(f, "{error}"),
            MmapError::UnknownSpace { name } => write!(f, "no address space named '{name}'"),
            MmapError::NotPaging { name, implementation } => {
                write!(f, "address space '{name}' is a {implementation} one; files map into paging address spaces")
            }
            MmapError::ZeroLength => write!(f, "nothing to map: the length is zero"),
            MmapError::MisalignedVa { va } => write!(f, "VA {va:#x} is not page-aligned (4 KiB)"),
            MmapError::MisalignedOffset { offset } => write!(f, "offset {offset:#x} is not page-aligned (4 KiB)"),
            MmapError::PastEnd { file, offset, len, size } => write!(
                f,
                "bytes {offset:#x}..{:#x} run past the end of '{file}' ({size} bytes)",
                offset.saturating_add(*len)
            ),
            MmapError::SharedUnaligned { file, phys } => write!(
                f,
                "a shared mapping needs page-aligned data, and '{file}' has it at physical {phys:#x} \
                 (map it private instead)"
            ),
            MmapError::SharedWritable => {
                write!(f, "shared mappings of initrd files are read-only (no w): the initrd is never written")
            }
            MmapError::BadRights { prot } => {
                write!(f, "rights {prot} refused: r is needed, and only w, x, k and e may be added")
            }
            MmapError::Refused(error) => write!(f, "the address space refused the mapping: {error}"),
            MmapError::NoMapping { space, va } => write!(f, "no mapping starts at {va:#x} in '{space}'"),
        }
    }
}

/// Every mapping in place.
static MAPPINGS: IrqMutex<Vec<Mapping>> = IrqMutex::new(Vec::new());

/// Maps a file as `request` says (see the module documentation).
pub fn mmap(request: &MmapRequest) -> Result<Mapping, MmapError> {
    let space = address_space::find(request.space)
        .map_err(|_| MmapError::UnknownSpace { name: String::from(request.space) })?;
    let file = fs::find(request.file).map_err(MmapError::UnknownFile)?;
    let plan = plan(request, file)?;
    let mut object = space.lock();
    let implementation = object.implementation();
    let paging = paging_of_mut(&mut object)
        .ok_or_else(|| MmapError::NotPaging { name: String::from(space.name()), implementation })?;
    let mut added: Vec<Region> = Vec::new();
    for part in &plan.parts {
        let result = match part.source {
            Some((source, len)) => paging.add_file_region(part.region, PhysAddr(source), len),
            None => paging.add_region(part.region),
        };
        if let Err(error) = result {
            for region in added {
                // A region just added is removed whole: this cannot fail.
                let _ = paging.remove_region(region);
            }
            return Err(MmapError::Refused(error));
        }
        added.push(part.region);
    }
    drop(object);
    let mapping = Mapping {
        space_id: space.id(),
        space_name: String::from(space.name()),
        file: String::from(file.name()),
        va: request.va,
        offset: request.offset,
        len: plan.len,
        sharing: request.sharing,
        regions: added,
    };
    let mut mappings = MAPPINGS.lock();
    forget_destroyed_spaces(&mut mappings);
    mappings.push(mapping.clone());
    Ok(mapping)
}

/// Removes the mapping that starts at `va` in address space `space`: its
/// regions go, and the frames of its private pages return to the
/// allocator after the TLB flush.
pub fn munmap(space: &str, va: u64) -> Result<Mapping, MmapError> {
    let target = address_space::find(space).map_err(|_| MmapError::UnknownSpace { name: String::from(space) })?;
    let mapping = {
        let mut mappings = MAPPINGS.lock();
        forget_destroyed_spaces(&mut mappings);
        let at = mappings
            .iter()
            .position(|m| m.space_id == target.id() && m.va == va)
            .ok_or_else(|| MmapError::NoMapping { space: String::from(space), va })?;
        mappings.swap_remove(at)
    };
    let removed = remove_regions(&target, &mapping.regions);
    match removed {
        Ok(()) => Ok(mapping),
        // Already gone (removed by hand with `as rm`): forgotten too.
        Err(AspaceError::NoSuchRegion { .. }) => Err(MmapError::Refused(AspaceError::NoSuchRegion { va })),
        Err(error) => {
            MAPPINGS.lock().push(mapping);
            Err(MmapError::Refused(error))
        }
    }
}

/// Removes `regions` from `space`, under one lock.
fn remove_regions(space: &Arc<Space>, regions: &[Region]) -> Result<(), AspaceError> {
    for region in regions {
        space.remove_region(*region)?;
    }
    Ok(())
}

/// Every mapping in place, in the order they were made.
pub fn mappings() -> Vec<Mapping> {
    let mut mappings = MAPPINGS.lock();
    forget_destroyed_spaces(&mut mappings);
    mappings.clone()
}

fn forget_destroyed_spaces(mappings: &mut Vec<Mapping>) {
    mappings.retain(|m| address_space::by_id(m.space_id).is_some());
}

/// One region of a mapping, and the file bytes it starts with (for a
/// private part).
struct Part {
    region: Region,
    source: Option<(u64, u64)>,
}

/// The regions a request needs, after every check that does not need the
/// address space.
struct Plan {
    len: u64,
    parts: Vec<Part>,
}

fn plan(request: &MmapRequest, file: &File) -> Result<Plan, MmapError> {
    let allowed = Protection::READ | Protection::WRITE | Protection::EXEC | Protection::KERN | Protection::EAGER;
    if !request.prot.contains(Protection::READ) || !allowed.contains(request.prot) {
        return Err(MmapError::BadRights { prot: request.prot });
    }
    let prot = request.prot | Protection::KERN;
    let len = match request.len {
        Some(len) => len,
        None => file.size().saturating_sub(request.offset),
    };
    if !request.va.is_multiple_of(PAGE) {
        return Err(MmapError::MisalignedVa { va: request.va });
    }
    if !request.offset.is_multiple_of(PAGE) {
        return Err(MmapError::MisalignedOffset { offset: request.offset });
    }
    let past_end = request.offset.checked_add(len).is_none_or(|end| end > file.size());
    if past_end || request.offset >= file.size() {
        return Err(MmapError::PastEnd {
            file: String::from(file.name()),
            offset: request.offset,
            len,
            size: file.size(),
        });
    }
    if len == 0 {
        return Err(MmapError::ZeroLength);
    }
    let source = file.phys_addr() + request.offset;
    // `len` is at most the file's size, so rounding it up cannot overflow;
    // the VA range can run past 2^64 or into the canonical hole, and is
    // refused before any region is built from it.
    let mapped = len.next_multiple_of(PAGE);
    let va = request.va;
    aspace::check_virt_range(va, mapped, crate::arch::cpu::virt_width()).map_err(MmapError::Refused)?;
    let parts = match request.sharing {
        Sharing::Private => alloc::vec![Part {
            region: Region::anonymous(va, mapped, prot | Protection::ANON),
            source: Some((source, len)),
        }],
        Sharing::Shared => {
            if prot.contains(Protection::WRITE) {
                return Err(MmapError::SharedWritable);
            }
            if !source.is_multiple_of(PAGE) {
                return Err(MmapError::SharedUnaligned { file: String::from(file.name()), phys: source });
            }
            // The initrd is read-only: neither part may ever be made
            // writable (a later `as protect ... w` is refused).
            let prot = prot | Protection::READ_ONLY_BACKING;
            let whole = len - len % PAGE;
            let mut parts = Vec::new();
            if whole > 0 {
                parts.push(Part { region: Region::new(va, source, whole, prot), source: None });
            }
            if whole < len {
                let tail = Region::anonymous(va + whole, PAGE, prot | Protection::ANON);
                parts.push(Part { region: tail, source: Some((source + whole, len - whole)) });
            }
            parts
        }
    };
    Ok(Plan { len, parts })
}
