//! The memory system calls: `brk`, `mmap`, `munmap`, `mprotect`,
//! `pkey_mprotect`, `mremap`, `madvise`, `mincore`, `msync`, `mlock`,
//! `mlock2`, `munlock`, `mlockall`, `munlockall`. Each is a thin layer over
//! the address-space operations (add, remove, protect a region, and the
//! fault handler to fault pages in), with Linux's validation order and
//! error numbers (`mm/mmap.c`, `mm/mprotect.c`, `mm/mremap.c`,
//! `mm/madvise.c`, `mm/mincore.c`, `mm/msync.c`, `mm/mlock.c`).
//!
//! Every edit stays inside user space: the kernel's map below
//! [`layout::user_bottom`] is never touched (an `munmap` there unmaps
//! nothing, as on Linux where nothing of the program is there).
//!
//! How Linux's notions map onto regions:
//! - A Linux mapping (VMA) is one region or a run of adjacent regions
//!   Linux would have merged (same rights, same kind, the file's bytes
//!   continuing): regions are not merged back after a split, so the calls
//!   that care about mapping boundaries (`mremap`, `mprotect` with
//!   `PROT_GROWSDOWN`) look at the run (`linux_mapping`).
//! - `VM_LOCKED` (`mlock`, `MAP_LOCKED`, `mlockall`) is the region's
//!   [`Protection::PIN`]. Linux lets a program unmap, move or replace locked
//!   memory, so every removal here unpins the part first; the pin still
//!   keeps the kernel's other paths (the shell's `as remove`) from taking
//!   the memory away. `MLOCK_ONFAULT` is not recorded per region: it only
//!   decides whether the pages are faulted in now. A forked child starts
//!   with nothing locked ([`forget_locks`]).
//! - Files are memory objects (`objects.rs`): a file in RAM, an initrd
//!   file (whose page cache keeps a copy of each page some mapping touched),
//!   and `MAP_SHARED` anonymous memory (an unnamed file in RAM, as Linux's
//!   shmem). Their region takes nothing at `mmap`: each page's first touch
//!   maps the file's frame, shared writable or private copy-on-write
//!   ([`PagingAspace::add_object_region`]), and a read fault maps the
//!   neighbours the file holds too (fault-around); a page wholly past the
//!   file's end raises `SIGBUS`/`BUS_ADRERR`, and comes back when the file
//!   grows; truncation drops the pages past the new end from every process
//!   ([`super::objects::truncate_file`]). An initrd file maps private, or
//!   shared read-only (the initrd is never written: `PROT_WRITE` on a shared
//!   mapping is `EACCES`), and `msync` has nothing to write back. A
//!   program's segments are file-backed regions the loader makes (each page
//!   copied on first touch).
//! - Faulting pages in (`MAP_POPULATE`, `MADV_POPULATE_*`, locking) asks the
//!   address space's own fault handler for each page, the space's lock
//!   held and no user memory touched; moving a mapping (`mremap`) adds the
//!   new regions, moves the old pages' frames and page-table entries to
//!   the new ones ([`PagingAspace::move_frames`]: no byte copied, no
//!   reference taken, no fault needed at the new place), then removes the
//!   old regions.
//!
//! Resource limits: `RLIMIT_AS` bounds `mmap`, `brk` and `mremap`;
//! `RLIMIT_STACK` how far growing regions grow ([`stack_limit_changed`]);
//! `RLIMIT_MEMLOCK` locking, unless the process has `CAP_IPC_LOCK`, as on
//! Linux: every program starts as root with every capability, and may drop
//! them (`capset`, `misc.rs`).

use super::creds;
use super::errno::{Errno, SysResult};
use super::fdtable::Backing;
use super::layout::{self, is_user, page_up, same_mapping, PAGE};
use super::objects::{InitrdFile, RamFile};
use super::process::{self, Process};
use crate::address_space::{paging_of_mut, KernelMachine, LiveEdit, Space, SpaceObject};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{
    AddressSpace, Fault, FaultOutcome, PageFaultCode, PhysAddr, Protection, Region, UnhandledFault, VirtAddr,
};
use paging::{PageObject, PagingAspace};
use smallvec::SmallVec;

/// `PROT_READ`.
pub const PROT_READ: u64 = 1;
/// `PROT_WRITE`.
pub const PROT_WRITE: u64 = 2;
/// `PROT_EXEC`.
pub const PROT_EXEC: u64 = 4;
/// `PROT_SEM` (accepted, no effect on x86).
const PROT_SEM: u64 = 8;
/// `PROT_GROWSDOWN` (mprotect only).
const PROT_GROWSDOWN: u64 = 0x0100_0000;
/// `PROT_GROWSUP` (mprotect only).
const PROT_GROWSUP: u64 = 0x0200_0000;

/// `MAP_SHARED`.
const MAP_SHARED: u64 = 0x01;
/// `MAP_PRIVATE`.
const MAP_PRIVATE: u64 = 0x02;
/// `MAP_SHARED_VALIDATE`.
const MAP_SHARED_VALIDATE: u64 = 0x03;
/// The mapping-type bits.
const MAP_TYPE: u64 = 0x0f;
/// `MAP_FIXED`.
const MAP_FIXED: u64 = 0x10;
/// `MAP_ANONYMOUS`.
const MAP_ANONYMOUS: u64 = 0x20;
/// `MAP_GROWSDOWN`: an anonymous mapping that grows down like a stack.
const MAP_GROWSDOWN: u64 = 0x100;
/// `MAP_LOCKED`: locked, as by `mlock`.
const MAP_LOCKED: u64 = 0x2000;
/// `MAP_POPULATE`: every page faulted in before `mmap` returns.
const MAP_POPULATE: u64 = 0x8000;
/// `MAP_NONBLOCK`: cancels `MAP_POPULATE`.
const MAP_NONBLOCK: u64 = 0x1_0000;
/// `MAP_FIXED_NOREPLACE`.
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// The flags `MAP_SHARED_VALIDATE` accepts (Linux's `LEGACY_MAP_MASK` and
/// `MAP_FIXED_NOREPLACE`): any other is `EOPNOTSUPP` there. The others of
/// them (`MAP_NORESERVE`, `MAP_STACK`, `MAP_DENYWRITE`, `MAP_EXECUTABLE`)
/// are accepted and change nothing here, as on Linux.
const MAP_KNOWN: u64 =
    0x0f | 0x10 | 0x20 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x10_0000;

/// `MREMAP_MAYMOVE`.
const MREMAP_MAYMOVE: u64 = 1;
/// `MREMAP_FIXED`.
const MREMAP_FIXED: u64 = 2;
/// `MREMAP_DONTUNMAP`.
const MREMAP_DONTUNMAP: u64 = 4;

/// `MS_ASYNC`.
const MS_ASYNC: u64 = 1;
/// `MS_INVALIDATE`.
const MS_INVALIDATE: u64 = 2;
/// `MS_SYNC`.
const MS_SYNC: u64 = 4;

/// `MLOCK_ONFAULT`.
const MLOCK_ONFAULT: u64 = 1;
/// `MCL_CURRENT`.
const MCL_CURRENT: u64 = 1;
/// `MCL_FUTURE`.
const MCL_FUTURE: u64 = 2;
/// `MCL_ONFAULT`.
const MCL_ONFAULT: u64 = 4;

/// `RLIMIT_MEMLOCK`.
const RLIMIT_MEMLOCK: usize = 8;
/// `RLIMIT_AS`.
const RLIMIT_AS: usize = 9;

/// How many pages are handled under one hold of the space's lock (which
/// keeps interrupts off) when faulting in or copying many pages.
const PAGES_PER_LOCK: u64 = 64;

/// The system-call numbers served here besides the main table's.
mod nr {
    pub const MREMAP: u64 = 25;
    pub const MSYNC: u64 = 26;
    pub const MINCORE: u64 = 27;
    pub const MADVISE: u64 = 28;
    pub const MLOCK: u64 = 149;
    pub const MUNLOCK: u64 = 150;
    pub const MLOCKALL: u64 = 151;
    pub const MUNLOCKALL: u64 = 152;
    pub const MLOCK2: u64 = 325;
    pub const PKEY_MPROTECT: u64 = 329;
}

/// Linux's `VM_LOCKED`: the region's pages are locked in memory.
const LOCKED: Protection = Protection::PIN;
use super::layout::UNREAD;

/// The access rights `prot` asks for, as region protections. x86 cannot
/// map a page it cannot read, so a page written or run is readable; when
/// `PROT_READ` was not asked, [`UNREAD`] says so (Linux's mapping then has
/// no `VM_READ`: `/proc/self/maps` shows no `r`, `MADV_POPULATE_READ` is
/// `EINVAL`).
fn access(prot: u64) -> Protection {
    let mut out = Protection::empty();
    if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        out |= Protection::READ;
        if prot & PROT_READ == 0 {
            out |= UNREAD;
        }
    }
    if prot & PROT_WRITE != 0 {
        out |= Protection::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        out |= Protection::EXEC;
    }
    out
}

/// What a region with protections `existing` becomes when the program
/// asks for the rights `wanted` (`mprotect`): its kind and lock stay.
fn with_rights(existing: Protection, wanted: Protection) -> Protection {
    existing.kind() | (existing & LOCKED) | wanted
}

/// The end of `region` (exclusive).
fn end_of(region: &Region) -> u64 {
    region.va.as_u64().saturating_add(region.len)
}

/// The user region holding `va`.
// Inlined: on the path of every memory system call (DESIGN.md, "Inlining").
#[inline(always)]
fn user_region_at(object: &SpaceObject, va: u64) -> Option<Region> {
    object.regions().find(va).filter(|region| is_user(region)).copied()
}

/// The regions one call handles: most often one or two, kept in place (on
/// the heap beyond four).
type Regions = SmallVec<[Region; 4]>;

/// The pieces one call maps: most often one, kept in place (on the heap
/// beyond two).
type Pieces = SmallVec<[Piece; 2]>;

/// The user regions overlapping `[start, end)`, in address order.
fn user_regions_in(object: &SpaceObject, start: u64, end: u64) -> Regions {
    if start >= end {
        return Regions::new();
    }
    let mut regions = Regions::new();
    regions.extend(object.regions().overlapping(start, end - start).filter(|region| is_user(region)).copied());
    regions
}

/// The first user region ending above `va` (Linux's `find_vma`).
// Inlined: on the path of every memory system call (DESIGN.md, "Inlining").
#[inline(always)]
fn user_region_from(object: &SpaceObject, va: u64) -> Option<Region> {
    let top = layout::user_top();
    if va >= top {
        return None;
    }
    // The region holding `va`, if any (the common case, and a quicker look).
    if let Some(region) = user_region_at(object, va) {
        return Some(region);
    }
    object.regions().overlapping(va, top - va).find(|region| is_user(region)).copied()
}

/// The bytes of every user region: Linux's `total_vm`, what `RLIMIT_AS` bounds.
fn total_vm(object: &SpaceObject) -> u64 {
    object.regions().iter().filter(|region| is_user(region)).map(|region| region.len).sum()
}

/// The bytes of locked user regions (Linux's `locked_vm`), within `[start, end)`.
fn locked_in(object: &SpaceObject, start: u64, end: u64) -> u64 {
    user_regions_in(object, start, end)
        .iter()
        .filter(|region| region.prot.contains(LOCKED))
        .map(|region| end_of(region).min(end) - region.va.as_u64().max(start))
        .sum()
}

/// The soft limit `index` of the process.
fn rlimit(process: &Process, index: usize) -> u64 {
    process.state.lock().rlimits[index].cur
}

/// The resource limits a call checks, read before the space's lock is
/// taken: the process's lock is never taken inside the space's.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// `RLIMIT_AS`, in bytes.
    address_space: u64,
    /// `RLIMIT_MEMLOCK`, in bytes.
    memlock: u64,
    /// `CAP_IPC_LOCK`: locking is not bound by `RLIMIT_MEMLOCK`.
    ipc_lock: bool,
}

impl Limits {
    /// The process's soft limits.
    fn of(process: &Process) -> Limits {
        let ipc_lock = creds::capable(process, creds::cap::IPC_LOCK);
        let state = process.state.lock();
        Limits { address_space: state.rlimits[RLIMIT_AS].cur, memlock: state.rlimits[RLIMIT_MEMLOCK].cur, ipc_lock }
    }

    /// Linux's `can_do_mlock`: a non-zero `RLIMIT_MEMLOCK`, or `CAP_IPC_LOCK`.
    fn can_lock(self) -> bool {
        self.memlock != 0 || self.ipc_lock
    }

    /// Linux's `mlock_future_check`: may `bytes` more be locked?
    fn may_lock_more(self, object: &SpaceObject, bytes: u64) -> bool {
        let locked = (locked_in(object, 0, u64::MAX) / PAGE).saturating_add(bytes / PAGE);
        locked <= self.memlock / PAGE || self.ipc_lock
    }

    /// Linux's `may_expand_vm` for `RLIMIT_AS`: may the space grow by `bytes`?
    fn may_expand(self, object: &SpaceObject, bytes: u64) -> bool {
        (total_vm(object) / PAGE).saturating_add(bytes / PAGE) <= self.address_space / PAGE
    }
}

/// Whether each address space whose program called `mlockall(MCL_FUTURE)`
/// wants its new mappings locked on fault only (`MCL_ONFAULT`), by space
/// id. A space not listed does not lock its new mappings. (Linux keeps
/// this in the `mm`'s `def_flags`: a new program, or a forked child, has
/// a new space and starts without it.)
static FUTURE_LOCKS: IrqMutex<BTreeMap<u32, bool>> = IrqMutex::new(BTreeMap::new());

/// `Some(on_fault)` when `mlockall(MCL_FUTURE)` is in force for the process.
fn future_lock(process: &Process) -> Option<bool> {
    FUTURE_LOCKS.lock().get(&process.space.id()).copied()
}

/// Sets or clears the process's `MCL_FUTURE`, forgetting the spaces that
/// have been destroyed.
fn set_future_lock(process: &Process, lock: Option<bool>) {
    let listed: Vec<u32> = FUTURE_LOCKS.lock().keys().copied().collect();
    let gone: Vec<u32> = listed.into_iter().filter(|&id| crate::address_space::by_id(id).is_none()).collect();
    let mut locks = FUTURE_LOCKS.lock();
    locks.retain(|id, _| !gone.contains(id));
    match lock {
        Some(on_fault) => locks.insert(process.space.id(), on_fault),
        None => locks.remove(&process.space.id()),
    };
}

/// Applies the process's `RLIMIT_STACK` to how far its growing regions
/// may grow: Linux checks the limit at every growth of a grow-down
/// mapping, the stack's and `MAP_GROWSDOWN` ones alike. Called when the
/// limit changes (`prlimit64`).
pub fn stack_limit_changed(process: &Process) {
    let limit = rlimit(process, process::RLIMIT_STACK);
    // A size above the limit is refused: whole pages up to it are allowed,
    // and a limit under one page allows no growth (every region has one).
    let max_size = (limit & !(PAGE - 1)).max(PAGE);
    let mut object = process.space.lock();
    if let Some(paging) = paging_of_mut(&mut object) {
        let guard_gap = paging.growth_limits().guard_gap;
        let _ = paging.set_growth_limits(max_size, guard_gap);
    }
}

/// The paging address space behind a process's space (always one).
fn paging_mut(object: &mut SpaceObject) -> Result<&mut PagingAspace<KernelMachine>, Errno> {
    paging_of_mut(object).ok_or(Errno::ENOMEM)
}

/// A part of a region, with the file bytes its pages start as (a source
/// in physical memory and its length), if any, or the memory object whose
/// pages it maps.
#[derive(Clone)]
struct Piece {
    region: Region,
    source: Option<(PhysAddr, u64)>,
    object: Option<ObjectPart>,
}

/// The pages of a memory object a piece maps: the object, the index of the
/// piece's first page in it, and whether the mapping is shared.
#[derive(Clone)]
struct ObjectPart {
    object: Arc<dyn PageObject>,
    first_index: u64,
    shared: bool,
}

impl Piece {
    /// Plain pages: anonymous memory, or a file's pages past its end.
    fn plain(region: Region) -> Piece {
        Piece { region, source: None, object: None }
    }
}

/// Appends to `out` the parts of `part` (inside one region), cut where its
/// file backings begin and end. (An object backing always covers its whole
/// region: it is made with the region and cut with it.)
fn pieces_of(paging: &PagingAspace<KernelMachine>, part: Region, out: &mut Pieces) {
    if let Some(backing) = paging.object_backing(part.va) {
        let object = ObjectPart {
            object: backing.object.clone(),
            first_index: backing.index_of(part.va.as_u64()),
            shared: backing.shared,
        };
        out.push(Piece { region: part, source: None, object: Some(object) });
        return;
    }
    let (start, end) = (part.va.as_u64(), end_of(&part));
    let mut at = start;
    for backing in paging.file_backings().filter(|b| b.va.as_u64() < end && b.last() >= start) {
        let from = backing.va.as_u64().max(at);
        let to = backing.last().saturating_add(1).min(end);
        if from > at {
            out.push(Piece::plain(part.sub_region(at, from - at)));
        }
        let offset = from - backing.va.as_u64();
        let source_len = backing.source_len.saturating_sub(offset).min(to - from);
        let source = (source_len > 0).then_some((PhysAddr(backing.source.as_u64() + offset), source_len));
        out.push(Piece { region: part.sub_region(from, to - from), source, object: None });
        at = to;
    }
    if at < end {
        out.push(Piece::plain(part.sub_region(at, end - at)));
    }
}

/// Adds `piece` (a file-backed region when it has a source, an object's
/// when it has one).
fn add_piece(paging: &mut PagingAspace<KernelMachine>, piece: &Piece) -> Result<(), Errno> {
    let added = match (&piece.object, piece.source) {
        (Some(part), _) => paging.add_object_region(piece.region, part.object.clone(), part.first_index, part.shared),
        (None, Some((source, len))) => paging.add_file_region(piece.region, source, len),
        (None, None) => paging.add_region(piece.region),
    };
    added.map_err(|_| Errno::ENOMEM)
}

/// Adds `pieces` in order; when one is refused, removes those added
/// before it and says why.
fn add_all(space: &Space, object: &mut SpaceObject, pieces: &[Piece]) -> Result<(), Errno> {
    for (index, piece) in pieces.iter().enumerate() {
        if let Err(error) = add_piece(paging_mut(object)?, piece) {
            for added in &pieces[..index] {
                let _ = remove_part(space, object, added.region);
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Removes `part` (inside one user region), unpinning it first: Linux lets
/// a program unmap locked memory.
fn remove_part(space: &Space, object: &mut SpaceObject, part: Region) -> Result<(), Errno> {
    let part = if part.prot.contains(LOCKED) {
        let unpinned = part.prot - LOCKED;
        protect_part(space, object, part, unpinned)?;
        Region { prot: unpinned, ..part }
    } else {
        part
    };
    space.check_live_edit(&**object, &part, LiveEdit::Remove).map_err(|_| Errno::ENOMEM)?;
    object.remove_region(part).map_err(|_| Errno::ENOMEM)
}

/// Gives `part` (inside one user region) the protections `prot`.
// Inlined: on the path of every `mprotect` (DESIGN.md, "Inlining").
#[inline(always)]
fn protect_part(space: &Space, object: &mut SpaceObject, part: Region, prot: Protection) -> Result<(), Errno> {
    space.check_live_edit(&**object, &part, LiveEdit::Protect(prot)).map_err(|_| Errno::ENOMEM)?;
    object.protect_region(part, prot).map_err(|_| Errno::ENOMEM)
}

/// Removes every user mapping in `[start, end)` (page aligned).
fn unmap_range(space: &Space, object: &mut SpaceObject, start: u64, end: u64) -> Result<(), Errno> {
    let start = start.max(layout::user_bottom());
    let regions = user_regions_in(object, start, end);
    for &region in &regions {
        let from = region.va.as_u64().max(start);
        let to = end_of(&region).min(end);
        remove_part(space, object, region.sub_region(from, to - from))?;
    }
    Ok(())
}

/// Drops the pages of `part` (inside one user region): its anonymous
/// pages read zero again and its file pages the file's bytes, their
/// frames freed; the part keeps its place, rights and kind, with `LOCKED`
/// as `locked` says. Pages past the end of a file, and the pages of a
/// shared mapping (whose contents are the file's), have nothing to drop.
fn zap(space: &Space, object: &mut SpaceObject, part: Region, locked: bool) -> Result<(), Errno> {
    let lock = |prot: Protection| if locked { prot | LOCKED } else { prot - LOCKED };
    // Past the end of a file nothing is there; a shared mapping's pages are
    // the file's (or the shared memory's): dropping them from the mapping
    // would change nothing a program can see.
    if paging_mut(object)?.is_shared_page(part.va) {
        if lock(part.prot) != part.prot {
            protect_part(space, object, part, lock(part.prot))?;
        }
        return Ok(());
    }
    let mut pieces = Pieces::new();
    pieces_of(paging_mut(object)?, part, &mut pieces);
    let whole = user_region_at(object, part.va.as_u64()).ok_or(Errno::ENOMEM)?;
    if whole != part {
        // Cut the part out first, so that it is a region of its own whose
        // growth flag is its own (the lowest piece of a grow-down region
        // keeps growing, and so does the part re-added in its place).
        protect_part(space, object, part, part.prot)?;
    }
    let isolated = user_region_at(object, part.va.as_u64()).ok_or(Errno::ENOMEM)?;
    remove_part(space, object, isolated)?;
    let paging = paging_mut(object)?;
    for piece in pieces {
        let region = Region { prot: lock(isolated.prot), ..piece.region };
        add_piece(paging, &Piece { region, ..piece })?;
    }
    Ok(())
}

/// The Linux mapping holding `region`: its lowest region and its end.
fn linux_mapping(object: &mut SpaceObject, region: Region) -> Result<(Region, u64), Errno> {
    let paging: &PagingAspace<KernelMachine> = paging_mut(object)?;
    let regions = paging.regions();
    let mut lowest = region;
    while let Some(below) = regions.previous_before(lowest.va.as_u64()) {
        if !same_mapping(paging, below, &lowest) {
            break;
        }
        lowest = *below;
    }
    let mut highest = region;
    while let Some(above) = regions.next_at_or_after(end_of(&highest)) {
        if !same_mapping(paging, &highest, above) {
            break;
        }
        highest = *above;
    }
    Ok((lowest, end_of(&highest)))
}

/// True when no region (a growing region's guard gap included) is in `[start, end)`.
fn is_free(object: &SpaceObject, start: u64, end: u64) -> bool {
    let reach = layout::STACK_GUARD_GAP;
    let free = object.regions().overlapping(start.saturating_sub(reach), end - start + reach + reach).all(|region| {
        let (first, last) = (region.va.as_u64(), region.last());
        let (guard_low, guard_high) = if region.prot.contains(Protection::GROW_DOWN) {
            (first.saturating_sub(reach), last)
        } else if region.prot.contains(Protection::GROW_UP) {
            (first, last.saturating_add(reach))
        } else {
            (first, last)
        };
        guard_high < start || guard_low >= end
    });
    free
}

/// A free, page-aligned place for `len` bytes with `gap` bytes free below
/// them (a grow-down mapping's guard gap): the hint when it is free, else
/// the highest free range below [`layout::MMAP_TOP`] (top-down, as Linux's
/// default layout).
fn place(object: &SpaceObject, hint: u64, len: u64, gap: u64) -> Result<u64, Errno> {
    let bottom = layout::user_bottom();
    if hint >= bottom.saturating_add(gap) && hint.is_multiple_of(PAGE) {
        if let Some(end) = hint.checked_add(len).filter(|&end| end <= layout::DEFAULT_TOP) {
            if is_free(object, hint - gap, end) {
                return Ok(hint);
            }
        }
    }
    let wanted = len.checked_add(gap).ok_or(Errno::ENOMEM)?;
    let mut candidate_end = layout::MMAP_TOP;
    let regions: Vec<Region> = object.regions().iter().filter(|region| is_user(region)).copied().collect();
    for region in regions.iter().rev() {
        let region_start =
            region.va.as_u64().saturating_sub(if region.prot.grows() { layout::STACK_GUARD_GAP } else { 0 });
        if region_start >= candidate_end {
            continue;
        }
        let region_end = end_of(region);
        if region_end <= candidate_end && candidate_end - region_end >= wanted {
            return Ok(candidate_end - len);
        }
        candidate_end = candidate_end.min(region_start);
    }
    match candidate_end.checked_sub(wanted) {
        Some(start) if start >= bottom => Ok(start + gap),
        _ => Err(Errno::ENOMEM),
    }
}

/// Why a page could not be faulted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PopulateError {
    /// No mapping there.
    Hole,
    /// The rights do not allow the access.
    NoAccess,
    /// Past the end of a file: the fault would raise `SIGBUS`.
    PastEof,
    /// No frame for the page.
    NoMemory,
}

/// How [`populate`] touches each page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Touch {
    /// A read (`MADV_POPULATE_READ`): a page that has its frame is done.
    Read,
    /// A write, which the rights must allow (`MADV_POPULATE_WRITE`): a
    /// page is done once mapped writable (a copy-on-write page is copied).
    Write,
    /// A write where the mapping is private and writable, else a read, as
    /// Linux's `populate_vma_page_range` (`MAP_POPULATE`, locking).
    Fault,
}

/// Faults in every page of `[start, end)` as `touch` says: the pages are
/// then resident. Stops at the first page that cannot be faulted in,
/// unless `keep_going`, which skips it (and the rest of its region) and
/// reports nothing. Runs the address space's fault handler with the lock
/// held, a few pages at a time; no user memory is touched.
fn populate(process: &Process, start: u64, end: u64, touch: Touch, keep_going: bool) -> Result<(), PopulateError> {
    let mut va = start;
    while va < end {
        let mut object = process.space.lock();
        let batch_end = va.saturating_add(PAGES_PER_LOCK * PAGE).min(end);
        while va < batch_end {
            let step = populate_page(&mut object, va, touch);
            va = match step {
                Ok(next) => next,
                Err((_, skip_to)) if keep_going => skip_to,
                Err((error, _)) => return Err(error),
            }
        }
    }
    Ok(())
}

/// Faults in the page at `va` (see [`populate`]); the next address to
/// look at, or why not and where the trouble ends.
fn populate_page(object: &mut SpaceObject, va: u64, touch: Touch) -> Result<u64, (PopulateError, u64)> {
    let next = va + PAGE;
    let Some(region) = user_region_at(object, va) else {
        let next_region = user_region_from(object, va).map_or(u64::MAX, |region| region.va.as_u64());
        return Err((PopulateError::Hole, next_region));
    };
    let skip = end_of(&region);
    let writable = region.prot.contains(Protection::WRITE);
    let unread = touch == Touch::Read && region.prot.contains(UNREAD);
    if !region.prot.contains(Protection::READ) || unread || (touch == Touch::Write && !writable) {
        return Err((PopulateError::NoAccess, skip));
    }
    let Ok(paging) = paging_mut(object) else { return Err((PopulateError::NoMemory, skip)) };
    // As Linux's `populate_vma_page_range`: `Fault` writes only to a private
    // writable mapping (which needs its own copies). A shared one's pages are
    // read in, so none is dirtied, and are mapped writable all the same; the
    // read also maps their neighbours that the object holds (fault-around).
    let shared = paging.object_backing(VirtAddr(va)).is_some_and(|backing| backing.shared);
    let write = touch == Touch::Write || (touch == Touch::Fault && writable && !shared);
    let done = if write {
        paging.walk(VirtAddr(va)).and_then(|walk| walk.translation()).is_some_and(|page| page.writable)
    } else {
        paging.anonymous_frame(VirtAddr(va)).is_some() || paging.maps_zero_page(VirtAddr(va))
    };
    if done {
        return Ok(next);
    }
    // An access from user mode: the page gets its frame (a write copies a
    // frame shared copy-on-write).
    let code = if write { PageFaultCode::USER | PageFaultCode::WRITE } else { PageFaultCode::USER };
    let fault = Fault::page_fault(va, code, 0);
    match paging.exception(&fault) {
        FaultOutcome::Handled | FaultOutcome::Spurious => Ok(next),
        // The rest of the region lies past the end of its file too.
        FaultOutcome::Unhandled(UnhandledFault::PastEndOfObject { .. }) => Err((PopulateError::PastEof, skip)),
        FaultOutcome::Unhandled(_) => Err((PopulateError::NoMemory, skip)),
    }
}

/// `mmap(addr, len, prot, flags, fd, offset)`.
pub fn mmap(process: &Process, addr: u64, len: u64, prot: u64, flags: u64, fd: u64, offset: u64) -> SysResult {
    if !offset.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let anonymous = flags & MAP_ANONYMOUS != 0;
    let file = if anonymous { None } else { Some(process.state.lock().files.get(fd as u32 as u64)?) };
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if (offset / PAGE).checked_add(len / PAGE).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    // Linux's max_map_count check: the regions live in the kernel's heap.
    if process.space.lock().regions().len() >= layout::MAX_MAP_COUNT {
        return Err(Errno::ENOMEM);
    }
    let kind = flags & MAP_TYPE;
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    // Only an anonymous private mapping can grow down: it needs its gap.
    let grows_down = flags & MAP_GROWSDOWN != 0 && anonymous && kind == MAP_PRIVATE;
    let gap = if grows_down { layout::STACK_GUARD_GAP } else { 0 };
    // get_unmapped_area
    if len > layout::user_top() {
        return Err(Errno::ENOMEM);
    }
    let start = if fixed {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > layout::user_top() {
            return Err(Errno::ENOMEM);
        }
        if addr < layout::user_bottom() {
            // Below the user bottom (`vm.mmap_min_addr` here): Linux's
            // answer below mmap_min_addr.
            return Err(Errno::EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !user_regions_in(&process.space.lock(), addr, end).is_empty() {
            return Err(Errno::EEXIST);
        }
        addr
    } else {
        place(&process.space.lock(), addr & !(PAGE - 1), len, gap)?
    };
    let limits = Limits::of(process);
    let future = future_lock(process);
    let locked = flags & MAP_LOCKED != 0 || future.is_some();
    if flags & MAP_LOCKED != 0 && !limits.can_lock() {
        return Err(Errno::EPERM);
    }
    if locked && !limits.may_lock_more(&process.space.lock(), len) {
        return Err(Errno::EAGAIN);
    }
    let shared = match kind {
        MAP_SHARED => true,
        // Only a file's mapping may ask for its flags to be validated.
        MAP_SHARED_VALIDATE if !anonymous => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    let mut rights = access(prot);
    if locked {
        rights |= LOCKED;
    }
    // A file in RAM, or shared anonymous memory: a memory object whose
    // pages each mapping takes on first touch.
    let mut object: Option<ObjectPart> = None;
    match &file {
        Some(file) if matches!(file.lock().backing, Backing::Ram(_)) => {
            let open = file.lock();
            let Backing::Ram(inode) = &open.backing else { return Err(Errno::ENODEV) };
            if kind == MAP_SHARED_VALIDATE && flags & !MAP_KNOWN != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            if !open.readable() || (shared && prot & PROT_WRITE != 0 && !open.writable()) {
                return Err(Errno::EACCES);
            }
            if shared && !open.writable() {
                // mprotect may not add PROT_WRITE later either.
                rights |= Protection::READ_ONLY_BACKING;
            }
            if flags & MAP_GROWSDOWN != 0 {
                return Err(Errno::EINVAL);
            }
            let file = RamFile::new(inode.clone(), open.path.as_deref());
            object = Some(ObjectPart { object: file, first_index: offset / PAGE, shared });
        }
        None => {
            if shared && flags & MAP_GROWSDOWN != 0 {
                return Err(Errno::EINVAL);
            }
        }
        Some(file) => {
            if kind == MAP_SHARED_VALIDATE && flags & !MAP_KNOWN != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let file = file.lock();
            let Backing::Initrd(data) = file.backing else { return Err(Errno::ENODEV) };
            if shared && prot & PROT_WRITE != 0 {
                return Err(Errno::EACCES); // opened read-only
            }
            if flags & MAP_GROWSDOWN != 0 {
                return Err(Errno::EINVAL);
            }
            if shared {
                rights |= Protection::READ_ONLY_BACKING;
            }
            object = Some(ObjectPart { object: InitrdFile::of(data), first_index: offset / PAGE, shared });
        }
    };
    if anonymous && shared {
        let memory = RamFile::shared_anonymous(len).ok_or(Errno::ENOMEM)?;
        object = Some(ObjectPart { object: memory, first_index: 0, shared: true });
    }
    if grows_down {
        rights |= Protection::GROW_DOWN;
    }
    let pieces = [Piece { region: Region::anonymous(start, len, rights), source: None, object }];
    {
        let mut object = process.space.lock();
        let replaced: u64 = if fixed {
            user_regions_in(&object, start, start + len)
                .iter()
                .map(|region| end_of(region).min(start + len) - region.va.as_u64().max(start))
                .sum()
        } else {
            0
        };
        if !limits.may_expand(&object, len - replaced) {
            return Err(Errno::ENOMEM);
        }
        if fixed {
            unmap_range(&process.space, &mut object, start, start + len)?;
        }
        add_all(&process.space, &mut object, &pieces)?;
    }
    let on_fault = future == Some(true);
    let populate_now = locked || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
    if populate_now && !on_fault {
        // As Linux's mm_populate after mmap: what cannot be faulted in is left.
        let _ = populate(process, start, start + len, Touch::Fault, true);
    }
    Ok(start)
}

/// The physical address of the word at `va` when its page is shared
/// between address spaces on purpose (a `MAP_SHARED` mapping's: a file's
/// page or shared memory), for a shared futex's key; `None` for private
/// memory or a page without its frame.
pub fn shared_word(process: &Process, va: u64) -> Option<u64> {
    let mut object = process.space.lock();
    let paging = paging_mut(&mut object).ok()?;
    let page = VirtAddr(va & !(PAGE - 1));
    if !paging.is_shared_page(page) {
        return None;
    }
    paging.anonymous_frame(page).map(|frame| frame.as_u64() + (va & (PAGE - 1)))
}

/// `munmap(addr, len)`.
pub fn munmap(process: &Process, addr: u64, len: u64) -> SysResult {
    let top = layout::user_top();
    if !addr.is_multiple_of(PAGE) || addr > top || len > top - addr || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(addr + len).ok_or(Errno::EINVAL)?;
    unmap_range(&process.space, &mut process.space.lock(), addr, end)?;
    Ok(0)
}

/// `mprotect(addr, len, prot)`.
// Inlined: on the path of every `mprotect` (DESIGN.md, "Inlining").
#[inline(always)]
pub fn mprotect(process: &Process, addr: u64, len: u64, prot: u64) -> SysResult {
    protect(process, addr, len, prot, -1)
}

/// `mprotect` and `pkey_mprotect` (Linux's `do_mprotect_pkey`): the change
/// is made mapping by mapping, up to the first hole (`ENOMEM`) or refusal.
// Inlined: on the path of every `mprotect` (DESIGN.md, "Inlining").
#[inline(always)]
fn protect(process: &Process, addr: u64, len: u64, prot: u64, pkey: i32) -> SysResult {
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
    if grows == PROT_GROWSDOWN | PROT_GROWSUP {
        return Err(Errno::EINVAL);
    }
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = addr.wrapping_add(len.wrapping_add(PAGE - 1) & !(PAGE - 1));
    if end <= addr {
        return Err(Errno::ENOMEM);
    }
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
        return Err(Errno::EINVAL);
    }
    if pkey != -1 {
        return Err(Errno::EINVAL); // no protection key is ever allocated
    }
    let wanted = access(prot);
    let space = &process.space;
    let mut object = space.lock();
    let first = user_region_from(&object, addr).ok_or(Errno::ENOMEM)?;
    let mut start = addr;
    if grows == PROT_GROWSDOWN {
        if first.va.as_u64() >= end {
            return Err(Errno::ENOMEM);
        }
        let (lowest, _) = linux_mapping(&mut object, first)?;
        if !lowest.prot.contains(Protection::GROW_DOWN) {
            return Err(Errno::EINVAL);
        }
        start = lowest.va.as_u64();
    } else {
        if first.va.as_u64() > start {
            return Err(Errno::ENOMEM);
        }
        if grows == PROT_GROWSUP {
            // No user region grows up on x86-64.
            return Err(Errno::EINVAL);
        }
    }
    let mut at = start;
    // The first region found above holds `start` (the common case: one
    // region) unless a grow-down stack moved it.
    let mut found = Some(first).filter(|region| region.va.as_u64() <= start && start < end_of(region));
    loop {
        let region = match found.take() {
            Some(region) => region,
            None => user_region_at(&object, at).ok_or(Errno::ENOMEM)?,
        };
        let to = end_of(&region).min(end);
        if wanted.contains(Protection::WRITE) && region.prot.contains(Protection::READ_ONLY_BACKING) {
            return Err(Errno::EACCES);
        }
        let new = with_rights(region.prot, wanted);
        if new != region.prot {
            protect_part(space, &mut object, region.sub_region(at, to - at), new)?;
        }
        at = to;
        if at >= end {
            return Ok(0);
        }
    }
}

/// `brk(addr)`: moves the program break; returns the break in force
/// afterwards (the old one when the move is refused, as Linux does).
pub fn brk(process: &Process, addr: u64) -> SysResult {
    let (start, current) = {
        let state = process.state.lock();
        (state.brk_start, state.brk)
    };
    if addr < start {
        return Ok(current);
    }
    let (Some(new_top), Some(old_top)) = (page_up(addr), page_up(current)) else { return Ok(current) };
    let future = future_lock(process);
    let limits = Limits::of(process);
    if new_top < old_top {
        if unmap_range(&process.space, &mut process.space.lock(), new_top, old_top).is_err() {
            return Ok(current);
        }
    } else if new_top > old_top {
        let grown = new_top - old_top;
        let mut object = process.space.lock();
        if new_top > layout::MMAP_TOP || !is_free(&object, old_top, new_top) || !limits.may_expand(&object, grown) {
            return Ok(current);
        }
        let mut rights = Protection::READ | Protection::WRITE;
        if future.is_some() {
            if !limits.may_lock_more(&object, grown) {
                return Ok(current);
            }
            rights |= LOCKED;
        }
        if object.add_region(Region::anonymous(old_top, grown, rights)).is_err() {
            return Ok(current);
        }
    }
    process.state.lock().brk = addr;
    if new_top > old_top && future == Some(false) {
        let _ = populate(process, old_top, new_top, Touch::Fault, true);
    }
    Ok(addr)
}

/// `PAGE_ALIGN(n)`, wrapping to 0 past 2^64 as Linux's does.
fn page_align(n: u64) -> u64 {
    n.wrapping_add(PAGE - 1) & !(PAGE - 1)
}

/// `mremap(addr, old_len, new_len, flags, new_addr)`.
fn mremap(process: &Process, addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    // MREMAP_DONTUNMAP always moves, and does not resize.
    if flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let (old_len, new_len) = (page_align(old_len), page_align(new_len));
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    if user_region_at(&process.space.lock(), addr).is_none() {
        return Err(Errno::EFAULT);
    }
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return mremap_to(process, addr, old_len, new_len, flags, new_addr);
    }
    if old_len >= new_len {
        // Shrinking unmaps the tail; the same size does nothing.
        if old_len != new_len {
            munmap(process, addr.checked_add(new_len).ok_or(Errno::EINVAL)?, old_len - new_len)?;
        }
        return Ok(addr);
    }
    let mapping = resize_check(process, addr, old_len, new_len)?;
    if old_len == mapping.end - addr && expand_in_place(process, addr, old_len, new_len)? {
        if mapping.locked {
            let _ = populate(process, addr + old_len, addr + new_len, Touch::Fault, true);
        }
        return Ok(addr);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let target = place(&process.space.lock(), 0, new_len, mapping.gap)?;
    move_mapping(process, addr, old_len, new_len, target, flags)
}

/// The mapping `mremap` resizes, as [`resize_check`] found it.
struct Resized {
    /// Its end (exclusive).
    end: u64,
    /// Whether it is locked (its new pages are faulted in).
    locked: bool,
    /// The gap a new place must leave free below it (a grow-down mapping's).
    gap: u64,
}

/// Linux's `vma_to_resize`: the mapping at `addr` may become `new_len`
/// bytes long in place of `old_len`.
fn resize_check(process: &Process, addr: u64, old_len: u64, new_len: u64) -> Result<Resized, Errno> {
    // Read before the space's lock, and only for a mapping that grows.
    let limits = (new_len > old_len).then(|| Limits::of(process));
    let mut object = process.space.lock();
    let region = user_region_at(&object, addr).ok_or(Errno::EFAULT)?;
    if old_len == 0 {
        // Duplicating a private mapping makes no sense (Linux refuses it;
        // shared ones cannot be duplicated here either).
        return Err(Errno::EINVAL);
    }
    let (_, end) = linux_mapping(&mut object, region)?;
    if old_len > end - addr {
        return Err(Errno::EFAULT);
    }
    let locked = region.prot.contains(LOCKED);
    let gap = if region.prot.contains(Protection::GROW_DOWN) { layout::STACK_GUARD_GAP } else { 0 };
    let resized = Resized { end, locked, gap };
    let Some(limits) = limits else { return Ok(resized) };
    let more = new_len - old_len;
    if locked && !limits.may_lock_more(&object, more) {
        return Err(Errno::EAGAIN);
    }
    if !limits.may_expand(&object, more) {
        return Err(Errno::ENOMEM);
    }
    Ok(resized)
}

/// Linux's `mremap_to`: `MREMAP_FIXED` or `MREMAP_DONTUNMAP`.
fn mremap_to(process: &Process, addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    let top = layout::user_top();
    if !new_addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if new_len > top || new_addr > top - new_len {
        return Err(Errno::EINVAL);
    }
    // The old and new ranges may not overlap.
    if (addr as u128 + old_len as u128) > new_addr as u128 && (new_addr as u128 + new_len as u128) > addr as u128 {
        return Err(Errno::EINVAL);
    }
    let fixed = flags & MREMAP_FIXED != 0;
    if fixed {
        if new_addr < layout::user_bottom() {
            // The kernel's map is there: Linux's answer below mmap_min_addr.
            return Err(Errno::EPERM);
        }
        unmap_range(&process.space, &mut process.space.lock(), new_addr, new_addr + new_len)?;
    }
    let mut old_len = old_len;
    if old_len > new_len {
        munmap(process, addr + new_len, old_len - new_len)?;
        old_len = new_len;
    }
    let mapping = resize_check(process, addr, old_len, new_len)?;
    if flags & MREMAP_DONTUNMAP != 0 && !Limits::of(process).may_expand(&process.space.lock(), old_len) {
        return Err(Errno::ENOMEM);
    }
    let target = if fixed { new_addr } else { place(&process.space.lock(), new_addr, new_len, mapping.gap)? };
    move_mapping(process, addr, old_len, new_len, target, flags)
}

/// The piece that continues a mapping whose last region is `last`
/// (mapped up to `old_end`) for `len` bytes from `start`: more anonymous
/// memory, or more pages of its memory object (a file: past its end they
/// raise `SIGBUS`, as on Linux). A program's segment (a file-backed region
/// the loader made) continues with the pages of its initrd file that
/// follow, as a private mapping of the file.
fn extension(paging: &PagingAspace<KernelMachine>, last: &Region, old_end: u64, start: u64, len: u64) -> Piece {
    let region = Region::anonymous(start, len, last.prot - Protection::GROW_DOWN);
    let object = if let Some(backing) = paging.object_backing(VirtAddr(old_end - 1)) {
        Some(ObjectPart {
            object: backing.object.clone(),
            first_index: backing.index_of(old_end - PAGE) + 1,
            shared: backing.shared,
        })
    } else if let Some(backing) = paging.file_backing(VirtAddr(old_end - 1)) {
        let next_source = backing.source.as_u64() + (old_end - backing.va.as_u64());
        crate::fs::files()
            .iter()
            .find(|file| {
                file.phys_addr() <= backing.source.as_u64() && backing.source.as_u64() < file.phys_addr() + file.size()
            })
            .filter(|file| (next_source - file.phys_addr()).is_multiple_of(PAGE))
            .map(|file| ObjectPart {
                object: InitrdFile::of(file),
                first_index: (next_source - file.phys_addr()) / PAGE,
                shared: false,
            })
    } else {
        None
    };
    Piece { region, source: None, object }
}

/// Grows the mapping `[addr, addr + old_len)`, which ends its Linux
/// mapping, to `new_len` bytes where it is: false when the room above is
/// taken (or kept as a growing region's gap).
fn expand_in_place(process: &Process, addr: u64, old_len: u64, new_len: u64) -> Result<bool, Errno> {
    let old_end = addr + old_len;
    let Some(new_end) = addr.checked_add(new_len).filter(|&end| end <= layout::user_top()) else { return Ok(false) };
    let mut object = process.space.lock();
    if object.regions().first_overlap(old_end, new_end - old_end).is_some() {
        return Ok(false);
    }
    let last = user_region_at(&object, old_end - 1).ok_or(Errno::EFAULT)?;
    let piece = extension(paging_mut(&mut object)?, &last, old_end, old_end, new_end - old_end);
    Ok(add_piece(paging_mut(&mut object)?, &piece).is_ok())
}

/// Linux's `move_vma`: the mapping `[addr, addr + old_len)` moves to
/// `target`, `new_len` bytes long, with its contents; the old range is
/// unmapped, or with `MREMAP_DONTUNMAP` left mapped, empty and unlocked.
fn move_mapping(process: &Process, addr: u64, old_len: u64, new_len: u64, target: u64, flags: u64) -> SysResult {
    let space = &process.space;
    let old_end = addr + old_len;
    // Filled and used in place (lists of this size cost a copy to move).
    let mut news = Pieces::new();
    {
        let mut object = space.lock();
        let mut olds = user_regions_in(&object, addr, old_end);
        for region in &mut olds {
            let from = region.va.as_u64().max(addr);
            *region = region.sub_region(from, end_of(region).min(old_end) - from);
        }
        let last = *olds.last().ok_or(Errno::EFAULT)?;
        let paging = paging_mut(&mut object)?;
        for old in &olds {
            pieces_of(paging, *old, &mut news);
        }
        for piece in &mut news {
            piece.region.va = VirtAddr(target + (piece.region.va.as_u64() - addr));
        }
        if new_len > old_len {
            news.push(extension(paging, &last, old_end, target + old_len, new_len - old_len));
        }
        add_all(space, &mut object, &news)?;
        // The frames move, not their bytes, and no reference changes hands:
        // each new page owns the old page's frame (a shared mapping's stay
        // shared) and its page-table entry moves with it (the new regions
        // have the old ones' protection); the old pages are unmapped.
        if paging_mut(&mut object)?.move_frames(VirtAddr(addr), VirtAddr(target), old_len).is_err() {
            for piece in &news {
                let _ = remove_part(space, &mut object, piece.region);
            }
            return Err(Errno::ENOMEM);
        }
        // In the same hold of the lock: no other thread of the process sees
        // the old range between the move and its removal.
        for &old in &olds {
            if flags & MREMAP_DONTUNMAP != 0 {
                zap(space, &mut object, old, false)?;
            } else {
                remove_part(space, &mut object, old)?;
            }
        }
    }
    if moved_locked(&news) && new_len > old_len {
        let _ = populate(process, target + old_len, target + new_len, Touch::Fault, true);
    }
    Ok(target)
}

/// Whether the moved mapping is locked (its first piece says).
fn moved_locked(news: &[Piece]) -> bool {
    news.first().is_some_and(|piece| piece.region.prot.contains(LOCKED))
}

/// `MADV_*` advice values.
mod advice {
    pub const NORMAL: u64 = 0;
    pub const RANDOM: u64 = 1;
    pub const SEQUENTIAL: u64 = 2;
    pub const WILLNEED: u64 = 3;
    pub const DONTNEED: u64 = 4;
    pub const FREE: u64 = 8;
    pub const REMOVE: u64 = 9;
    pub const DONTFORK: u64 = 10;
    pub const DOFORK: u64 = 11;
    pub const MERGEABLE: u64 = 12;
    pub const UNMERGEABLE: u64 = 13;
    pub const HUGEPAGE: u64 = 14;
    pub const NOHUGEPAGE: u64 = 15;
    pub const DONTDUMP: u64 = 16;
    pub const DODUMP: u64 = 17;
    pub const WIPEONFORK: u64 = 18;
    pub const KEEPONFORK: u64 = 19;
    pub const COLD: u64 = 20;
    pub const PAGEOUT: u64 = 21;
    pub const POPULATE_READ: u64 = 22;
    pub const POPULATE_WRITE: u64 = 23;
    pub const DONTNEED_LOCKED: u64 = 24;
    pub const COLLAPSE: u64 = 25;
}

/// Linux 6.1's `madvise_behavior_valid` (with transparent huge pages and
/// KSM configured; `MADV_HWPOISON` and `MADV_SOFT_OFFLINE`, which inject
/// memory errors, are not offered).
fn advice_valid(value: u64) -> bool {
    use advice::*;
    matches!(
        value,
        NORMAL
            | RANDOM
            | SEQUENTIAL
            | WILLNEED
            | DONTNEED
            | FREE
            | REMOVE
            | DONTFORK
            | DOFORK
            | MERGEABLE
            | UNMERGEABLE
            | HUGEPAGE
            | NOHUGEPAGE
            | DONTDUMP
            | DODUMP
            | WIPEONFORK
            | KEEPONFORK
            | COLD
            | PAGEOUT
            | POPULATE_READ
            | POPULATE_WRITE
            | DONTNEED_LOCKED
            | COLLAPSE
    )
}

/// `madvise(start, len, advice)`: the advice is applied to each mapped
/// part of the range in turn; a hole makes the call end with `ENOMEM`
/// once the rest is done, as Linux's `madvise_walk_vmas`.
fn madvise(process: &Process, start: u64, len_in: u64, value: u64) -> SysResult {
    if !advice_valid(value) {
        return Err(Errno::EINVAL);
    }
    if !start.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_align(len_in);
    if len_in != 0 && len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(0);
    }
    let regions = user_regions_in(&process.space.lock(), start, end);
    let mut unmapped = false;
    let mut at = start;
    for region in regions {
        if region.va.as_u64() > at {
            unmapped = true;
            at = region.va.as_u64();
        }
        let to = end_of(&region).min(end);
        advise(process, region.sub_region(at, to - at), value)?;
        at = to;
    }
    if at < end {
        unmapped = true;
    }
    if unmapped {
        Err(Errno::ENOMEM)
    } else {
        Ok(0)
    }
}

/// One piece of `madvise`: `part` lies inside one user region.
fn advise(process: &Process, part: Region, value: u64) -> Result<(), Errno> {
    use advice::*;
    let locked = part.prot.contains(LOCKED);
    let file = {
        let mut object = process.space.lock();
        let paging = paging_mut(&mut object)?;
        paging.file_backing(part.va).is_some() || paging.object_backing(part.va).is_some()
    };
    let (start, end) = (part.va.as_u64(), end_of(&part));
    match value {
        DONTNEED | DONTNEED_LOCKED | FREE => {
            if locked && value != DONTNEED_LOCKED {
                return Err(Errno::EINVAL);
            }
            if value == FREE && file {
                return Err(Errno::EINVAL); // only anonymous memory is freed lazily
            }
            // MADV_FREE lets the kernel take the pages whenever it likes: now.
            zap(&process.space, &mut process.space.lock(), part, locked)
        }
        POPULATE_READ | POPULATE_WRITE => {
            let touch = if value == POPULATE_WRITE { Touch::Write } else { Touch::Read };
            populate_advice(process, start, end, touch)
        }
        REMOVE => {
            if locked || !file {
                return Err(Errno::EINVAL);
            }
            Err(Errno::EACCES) // only a shared writable file mapping, and the initrd is read-only
        }
        COLD | PAGEOUT if locked => Err(Errno::EINVAL),
        WIPEONFORK if file || part.prot.contains(Protection::READ_ONLY_BACKING) => Err(Errno::EINVAL),
        // Huge pages are never made for a program here: its range is not eligible.
        COLLAPSE => Err(Errno::EINVAL),
        // Hints about the future (access patterns, fork, core dumps, huge
        // pages, merging, reclaim): nothing here acts on them.
        _ => Ok(()),
    }
}

/// `MADV_POPULATE_READ` and `MADV_POPULATE_WRITE` over `[start, end)`,
/// with Linux's errors: `EINVAL` where the rights forbid the access,
/// `EFAULT` past the end of a file, `ENOMEM` without memory.
fn populate_advice(process: &Process, start: u64, end: u64, touch: Touch) -> Result<(), Errno> {
    match populate(process, start, end, touch, false) {
        Ok(()) => Ok(()),
        Err(PopulateError::NoAccess) => Err(Errno::EINVAL),
        Err(PopulateError::PastEof) => Err(Errno::EFAULT),
        Err(PopulateError::Hole | PopulateError::NoMemory) => Err(Errno::ENOMEM),
    }
}

/// The largest number of pages `mincore` looks at before copying out
/// (one page of vector, as Linux).
const MINCORE_CHUNK: u64 = 4096;

/// `mincore(start, len, vec)`: one byte for each page of the range, 1 when
/// the page is resident: an anonymous page that has its frame, any page
/// of an initrd file (its bytes are always in memory, as a file's pages
/// in Linux's page cache), never a page past the end of a file.
fn mincore(process: &Process, start: u64, len: u64, vec: u64) -> SysResult {
    let top = layout::user_top();
    if !start.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if start.checked_add(len).is_none_or(|end| end > top) {
        return Err(Errno::ENOMEM);
    }
    let pages = len / PAGE + u64::from(!len.is_multiple_of(PAGE));
    if vec.checked_add(pages).is_none_or(|end| end > top) {
        return Err(Errno::EFAULT);
    }
    let mut done = 0;
    let mut bytes = Vec::new();
    while done < pages {
        let chunk = (pages - done).min(MINCORE_CHUNK);
        let at = start + done * PAGE;
        bytes.clear();
        {
            let mut object = process.space.lock();
            let Some(region) = user_region_at(&object, at) else { return Err(Errno::ENOMEM) };
            // Up to the end of this mapping (Linux's do_mincore: one VMA at a time).
            let mut reach = end_of(&region);
            while reach < at + chunk * PAGE {
                match user_region_at(&object, reach) {
                    Some(next) => reach = end_of(&next),
                    None => break,
                }
            }
            let count = ((reach - at) / PAGE).min(chunk);
            let paging = paging_mut(&mut object)?;
            let mut region = region;
            for page in 0..count {
                let va = at + page * PAGE;
                if !region.contains(va) {
                    region = *paging.regions().find(va).ok_or(Errno::ENOMEM)?;
                }
                // A memory object's page is resident when its page cache
                // holds it, mapped here or not (Linux's mincore_page).
                let in_object = |va| paging.object_backing(va).is_some_and(|b| b.object.holds(b.index_of(va.as_u64())));
                let resident = paging.file_backing(VirtAddr(va)).is_some()
                    || paging.anonymous_frame(VirtAddr(va)).is_some()
                    || paging.maps_zero_page(VirtAddr(va))
                    || in_object(VirtAddr(va));
                bytes.push(u8::from(resident));
            }
        }
        super::copy::write(vec + done, &bytes)?;
        done += bytes.len() as u64;
    }
    Ok(0)
}

/// `msync(start, len, flags)`: nothing is ever written back (the initrd is
/// read-only); the flags and the range are checked as Linux does.
fn msync(process: &Process, start: u64, len: u64, flags: u64) -> SysResult {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 {
        return Err(Errno::EINVAL);
    }
    if !start.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.wrapping_add(page_align(len));
    if end < start {
        return Err(Errno::ENOMEM);
    }
    if end == start {
        return Ok(0);
    }
    let object = process.space.lock();
    let mut at = start;
    let mut unmapped = false;
    loop {
        let region = user_region_from(&object, at).ok_or(Errno::ENOMEM)?;
        if at < region.va.as_u64() {
            if flags == MS_ASYNC {
                return Err(Errno::ENOMEM);
            }
            at = region.va.as_u64();
            if at >= end {
                return Err(Errno::ENOMEM);
            }
            unmapped = true;
        }
        if flags & MS_INVALIDATE != 0 && region.prot.contains(LOCKED) {
            return Err(Errno::EBUSY);
        }
        at = end_of(&region);
        if at >= end {
            return if unmapped { Err(Errno::ENOMEM) } else { Ok(0) };
        }
    }
}

/// Linux's `apply_vma_lock_flags`: locks (`LOCKED`) or unlocks every
/// mapping of `[start, start + len)` in turn, up to the first hole (`ENOMEM`).
fn apply_lock(process: &Process, start: u64, len: u64, lock: bool) -> Result<(), Errno> {
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(());
    }
    let space = &process.space;
    let mut object = space.lock();
    let mut at = start;
    while at < end {
        let region = user_region_at(&object, at).ok_or(Errno::ENOMEM)?;
        let to = end_of(&region).min(end);
        let prot = if lock { region.prot | LOCKED } else { region.prot - LOCKED };
        if prot != region.prot {
            protect_part(space, &mut object, region.sub_region(at, to - at), prot)?;
        }
        at = to;
    }
    Ok(())
}

/// `mlock` and `mlock2`: lock, then (unless `on_fault`) fault every page in.
fn mlock(process: &Process, start: u64, len: u64, on_fault: bool) -> SysResult {
    let limits = Limits::of(process);
    if !limits.can_lock() {
        return Err(Errno::EPERM);
    }
    let len = page_align(len.wrapping_add(start % PAGE));
    let start = start & !(PAGE - 1);
    let limit = limits.memlock / PAGE;
    {
        let object = process.space.lock();
        let mut locked = len / PAGE + locked_in(&object, 0, u64::MAX) / PAGE;
        if locked > limit && !limits.ipc_lock {
            // What is locked already in the range is not counted twice.
            locked -= locked_in(&object, start, start.saturating_add(len)) / PAGE;
        }
        if locked > limit && !limits.ipc_lock {
            return Err(Errno::ENOMEM);
        }
    }
    apply_lock(process, start, len, true)?;
    if on_fault {
        return Ok(0);
    }
    // Linux's __mlock_posix_error_return: EFAULT is ENOMEM, ENOMEM is EAGAIN.
    match populate(process, start, start + len, Touch::Fault, false) {
        Ok(()) => Ok(0),
        Err(PopulateError::NoMemory) => Err(Errno::EAGAIN),
        Err(PopulateError::Hole | PopulateError::NoAccess | PopulateError::PastEof) => Err(Errno::ENOMEM),
    }
}

/// `munlock(start, len)`.
fn munlock(process: &Process, start: u64, len: u64) -> SysResult {
    let len = page_align(len.wrapping_add(start % PAGE));
    apply_lock(process, start & !(PAGE - 1), len, false)?;
    Ok(0)
}

/// `mlockall(flags)`.
fn mlockall(process: &Process, flags: u64) -> SysResult {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let limits = Limits::of(process);
    if !limits.can_lock() {
        return Err(Errno::EPERM);
    }
    let limit = limits.memlock / PAGE;
    if flags & MCL_CURRENT != 0 && total_vm(&process.space.lock()) / PAGE > limit && !limits.ipc_lock {
        return Err(Errno::ENOMEM);
    }
    let on_fault = flags & MCL_ONFAULT != 0;
    set_future_lock(process, (flags & MCL_FUTURE != 0).then_some(on_fault));
    if flags & MCL_CURRENT != 0 {
        lock_all(process, true);
        if !on_fault {
            let _ = populate(process, layout::user_bottom(), layout::user_top(), Touch::Fault, true);
        }
    }
    Ok(0)
}

/// Locks or unlocks every user region (errors ignored, as Linux's
/// `apply_mlockall_flags`).
fn lock_all(process: &Process, lock: bool) {
    let space = &process.space;
    let mut object = space.lock();
    let regions: Vec<Region> = object.regions().iter().filter(|region| is_user(region)).copied().collect();
    for region in regions {
        let prot = if lock { region.prot | LOCKED } else { region.prot - LOCKED };
        if prot != region.prot {
            let _ = protect_part(space, &mut object, region, prot);
        }
    }
}

/// Unlocks every mapping of `process`, which was just forked: Linux's
/// children inherit no memory locks (`dup_mmap` clears `VM_LOCKED`), and
/// `mlockall(MCL_FUTURE)` belongs to the parent's space, not the copy.
/// It also gives the child its parent's capabilities
/// ([`creds::inherit_credentials`]): this is the one hook `fork` calls.
pub fn forget_locks(process: &Process) {
    lock_all(process, false);
    // The other half of preparing a forked child: its parent's capabilities.
    creds::inherit_credentials(process);
}

/// `munlockall()`.
fn munlockall(process: &Process) -> SysResult {
    set_future_lock(process, None);
    lock_all(process, false);
    Ok(0)
}

/// The memory calls not in the main table (`syscall::call`): `None` for a
/// number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::MREMAP => mremap(process, a[0], a[1], a[2], a[3], a[4]),
        nr::MSYNC => msync(process, a[0], a[1], a[2] as u32 as u64),
        nr::MINCORE => mincore(process, a[0], a[1], a[2]),
        nr::MADVISE => madvise(process, a[0], a[1], a[2] as u32 as i32 as i64 as u64),
        nr::MLOCK => mlock(process, a[0], a[1], false),
        nr::MLOCK2 => {
            let flags = a[2] as u32 as u64;
            if flags & !MLOCK_ONFAULT != 0 {
                return Some(Err(Errno::EINVAL));
            }
            mlock(process, a[0], a[1], flags & MLOCK_ONFAULT != 0)
        }
        nr::MUNLOCK => munlock(process, a[0], a[1]),
        nr::MLOCKALL => mlockall(process, a[0] as u32 as u64),
        nr::MUNLOCKALL => munlockall(process),
        nr::PKEY_MPROTECT => protect(process, a[0], a[1], a[2], a[3] as i32),
        _ => return None,
    })
}
