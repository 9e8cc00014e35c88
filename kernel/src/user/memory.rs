//! The memory system calls: `brk`, `mmap`, `munmap`, `mprotect`, each an
//! edit of the process's regions through the address-space layer, with
//! Linux's validation order and error numbers (`mm/mmap.c`, `mm/mprotect.c`).
//!
//! Every edit stays inside user space: the kernel's map below
//! [`layout::user_bottom`] is never touched (an `munmap` there unmaps
//! nothing, as on Linux where nothing of the program is there).
//! `MAP_SHARED` of an anonymous mapping is private memory while a process
//! cannot share it with another (there is no `fork` yet). Initrd files map
//! private (pages copied on first touch) or shared read-only (the initrd is
//! never written: `PROT_WRITE` on a shared mapping is `EACCES`). Pages of a
//! file mapping wholly past the end of the file have no access: touching
//! them raises SIGSEGV where Linux raises SIGBUS.

use super::errno::{Errno, SysResult};
use super::files::Backing;
use super::layout::{self, page_up, PAGE};
use super::process::Process;
use crate::address_space::paging_of_mut;
use alloc::vec::Vec;
use aspace::{AddressSpace, PhysAddr, Protection, Region};

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
/// `MAP_FIXED_NOREPLACE`.
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// The flags `MAP_SHARED_VALIDATE` accepts (Linux's `LEGACY_MAP_MASK` and
/// `MAP_FIXED_NOREPLACE`): any other is `EOPNOTSUPP` there.
const MAP_KNOWN: u64 =
    0x0f | 0x10 | 0x20 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x10_0000;

/// The access rights `prot` asks for, as region protections.
fn access(prot: u64) -> Protection {
    let mut out = Protection::empty();
    if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        out |= Protection::READ; // x86 cannot map a page it cannot read
    }
    if prot & PROT_WRITE != 0 {
        out |= Protection::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        out |= Protection::EXEC;
    }
    out
}

/// The user regions overlapping `[start, end)`, in address order.
fn user_regions_in(process: &Process, start: u64, end: u64) -> Vec<Region> {
    let object = process.space.lock();
    object.regions().overlapping(start, end - start).filter(|region| is_user(region)).copied().collect()
}

/// True for a region the program has (not the kernel's map).
fn is_user(region: &Region) -> bool {
    region.va.as_u64() >= layout::user_bottom() && !region.prot.contains(Protection::KERN)
}

/// Removes every user mapping in `[start, end)` (page aligned).
fn unmap_range(process: &Process, start: u64, end: u64) -> Result<(), Errno> {
    let start = start.max(layout::user_bottom());
    if start >= end {
        return Ok(());
    }
    for region in user_regions_in(process, start, end) {
        let from = region.va.as_u64().max(start);
        let to = region.va.as_u64().saturating_add(region.len).min(end);
        let part = region.sub_region(from, to - from);
        process.space.remove_region(part).map_err(|_| Errno::ENOMEM)?;
    }
    Ok(())
}

/// True when no region (a growing region's guard gap included) is in `[start, end)`.
fn is_free(process: &Process, start: u64, end: u64) -> bool {
    let object = process.space.lock();
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

/// A free, page-aligned place for `len` bytes: the hint when it is free,
/// else the highest free range below [`layout::MMAP_TOP`] (top-down, as
/// Linux's default layout).
fn place(process: &Process, hint: u64, len: u64) -> Result<u64, Errno> {
    let bottom = layout::user_bottom();
    if hint >= bottom && hint.is_multiple_of(PAGE) {
        if let Some(end) = hint.checked_add(len).filter(|&end| end <= layout::DEFAULT_TOP) {
            if is_free(process, hint, end) {
                return Ok(hint);
            }
        }
    }
    let regions: Vec<Region> = {
        let object = process.space.lock();
        object.regions().iter().filter(|region| is_user(region)).copied().collect()
    };
    let mut candidate_end = layout::MMAP_TOP;
    for region in regions.iter().rev() {
        let region_start =
            region.va.as_u64().saturating_sub(if region.prot.grows() { layout::STACK_GUARD_GAP } else { 0 });
        if region_start >= candidate_end {
            continue;
        }
        let region_end = region.va.as_u64() + region.len;
        if region_end <= candidate_end && candidate_end - region_end >= len {
            return Ok(candidate_end - len);
        }
        candidate_end = candidate_end.min(region_start);
    }
    match candidate_end.checked_sub(len) {
        Some(start) if start >= bottom => Ok(start),
        _ => Err(Errno::ENOMEM),
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
    let kind = flags & MAP_TYPE;
    if kind == MAP_SHARED_VALIDATE && flags & !MAP_KNOWN != 0 {
        return Err(Errno(95)); // EOPNOTSUPP
    }
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let start = if fixed {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > layout::user_top() || addr < layout::user_bottom() {
            // Below the user bottom lies the kernel's map: not the program's to replace.
            return Err(Errno::ENOMEM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !user_regions_in(process, addr, end).is_empty() {
            return Err(Errno::EEXIST);
        }
        addr
    } else {
        place(process, addr & !(PAGE - 1), len)?
    };
    let shared = match kind {
        MAP_SHARED | MAP_SHARED_VALIDATE => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    let mut rights = access(prot);
    let source = match &file {
        None => None,
        Some(file) => {
            let file = file.lock();
            let Backing::Initrd(data) = file.backing else { return Err(Errno(19)) }; // ENODEV
            if shared && prot & PROT_WRITE != 0 {
                return Err(Errno::EACCES); // opened read-only
            }
            if shared {
                rights |= Protection::READ_ONLY_BACKING;
            }
            Some(data)
        }
    };
    if fixed {
        unmap_range(process, start, start + len)?;
    }
    let mut regions = Vec::new();
    match source {
        None => regions.push((Region::anonymous(start, len, rights), None)),
        Some(data) => {
            let available = data.size().saturating_sub(offset);
            let file_len = page_up(available).unwrap_or(u64::MAX).min(len);
            if available > 0 {
                let region = Region::anonymous(start, file_len, rights);
                regions.push((region, Some((PhysAddr(data.phys_addr() + offset), available.min(file_len)))));
            }
            if file_len < len {
                let beyond = Region::anonymous(start + file_len, len - file_len, rights.kind());
                regions.push((beyond, None));
            }
        }
    }
    let mut object = process.space.lock();
    let paging = paging_of_mut(&mut object).ok_or(Errno::ENOMEM)?;
    for (index, (region, backing)) in regions.iter().enumerate() {
        let result = match backing {
            Some((source, source_len)) => paging.add_file_region(*region, *source, *source_len),
            None => paging.add_region(*region),
        };
        if result.is_err() {
            for (added, _) in &regions[..index] {
                let _ = paging.remove_region(*added);
            }
            return Err(Errno::ENOMEM);
        }
    }
    Ok(start)
}

/// `munmap(addr, len)`.
pub fn munmap(process: &Process, addr: u64, len: u64) -> SysResult {
    let top = layout::user_top();
    if !addr.is_multiple_of(PAGE) || addr > top || len > top - addr || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(addr + len).ok_or(Errno::EINVAL)?;
    unmap_range(process, addr, end)?;
    Ok(0)
}

/// `mprotect(addr, len, prot)`.
pub fn mprotect(process: &Process, addr: u64, len: u64, prot: u64) -> SysResult {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(Errno::EINVAL);
    }
    if prot & PROT_GROWSDOWN != 0 && prot & PROT_GROWSUP != 0 {
        return Err(Errno::EINVAL);
    }
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = page_up(len).and_then(|len| addr.checked_add(len)).ok_or(Errno::ENOMEM)?;
    if end > layout::user_top() {
        return Err(Errno::ENOMEM);
    }
    // The whole range must be mapped by the program, with no hole.
    let regions = user_regions_in(process, addr, end);
    let mut next = addr;
    for region in &regions {
        if region.va.as_u64() > next {
            return Err(Errno::ENOMEM);
        }
        next = region.va.as_u64().saturating_add(region.len);
    }
    if next < end || addr < layout::user_bottom() {
        return Err(Errno::ENOMEM);
    }
    let wanted = access(prot);
    if regions
        .iter()
        .any(|region| wanted.contains(Protection::WRITE) && region.prot.contains(Protection::READ_ONLY_BACKING))
    {
        return Err(Errno::EACCES);
    }
    for region in regions {
        let from = region.va.as_u64().max(addr);
        let to = (region.va.as_u64() + region.len).min(end);
        let part = region.sub_region(from, to - from);
        process.space.protect_region(part, region.prot.kind() | wanted).map_err(|_| Errno::ENOMEM)?;
    }
    Ok(0)
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
    if new_top < old_top {
        if unmap_range(process, new_top, old_top).is_err() {
            return Ok(current);
        }
    } else if new_top > old_top {
        if new_top > layout::MMAP_TOP || !is_free(process, old_top, new_top) {
            return Ok(current);
        }
        let region = Region::anonymous(old_top, new_top - old_top, Protection::READ | Protection::WRITE);
        if process.space.lock().add_region(region).is_err() {
            return Ok(current);
        }
    }
    process.state.lock().brk = addr;
    Ok(addr)
}

/// The memory calls not in the main table (`syscall::call`): `None` for a
/// number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    let _ = (process, a);
    match number {
        _ => None,
    }
}
