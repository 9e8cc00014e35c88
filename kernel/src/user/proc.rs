//! The files of `/proc` a program may read, made when opened (or, for
//! `pagemap`, when read), in Linux 6.1's formats and from the kernel's true
//! numbers:
//!
//! - `/proc/self/maps` (`fs/proc/task_mmu.c`, `show_map_vma`): one line per
//!   Linux mapping (VMA), a run of regions Linux would have merged
//!   ([`layout::same_mapping`]: the same rights, lock and kind, a file's
//!   bytes continuing).
//! - `/proc/self/smaps` (`show_smap`): each line of `maps`, then its sizes
//!   counted from the address space: `Rss` the pages that have their frame,
//!   `Pss` those with a shared frame at half (the frame allocator knows that a
//!   frame is shared, not by how many), `Locked` the `Pss` of a locked
//!   (pinned) mapping, `Swap` and the huge-page lines 0 (no swap, 4 KiB
//!   pages only), and `VmFlags` with Linux's two-letter names.
//! - `/proc/self/pagemap` (`pagemap_read`): 8 bytes a page, read at offset
//!   `va / 4096 * 8`: bit 63 present, bits 0-54 the frame number (every
//!   program runs as root, which Linux shows it to), bit 56 mapped
//!   exclusively, bit 61 a file's page; never swapped (62) or soft-dirty (55).
//! - `/proc/self/status` (the identity and memory lines, `VmLck` among
//!   them), `/proc/meminfo` (the first three lines), and the two `vm`
//!   sysctls a program may ask about: `mmap_min_addr` (the user bottom) and
//!   `max_map_count` ([`layout::MAX_MAP_COUNT`]).
//!
//! What a page counts as follows Linux: a page of an anonymous mapping is
//! anonymous and dirty; a page of a private file mapping is the file's page
//! (clean, not anonymous) until written (the hardware dirty bit of its
//! entry), then the program's own anonymous copy; a page of a shared file
//! mapping is always the file's. A page is shared when its frame is (after
//! `fork`, until a write copies it).

use super::layout;
use super::process::{self, Process};
use crate::address_space::{paging_of, KernelMachine};
use crate::fs;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::{PhysAddr, Protection, Region, VirtAddr};
use core::fmt::Write;
use paging::{Machine, PagingAspace};

/// One Linux mapping (VMA): a run of adjacent regions Linux would have
/// merged into one.
struct Mapping {
    start: u64,
    end: u64,
    /// The protections of its first region: its rights, lock and kind.
    prot: Protection,
    /// The file it maps: its name, the offset of `start` in it, its device
    /// and inode numbers.
    file: Option<MappedFile>,
    /// A mapping of a memory object shared writable (`MAP_SHARED`).
    shared_object: bool,
}

/// What a mapping of a file shows of it.
struct MappedFile {
    name: String,
    offset: u64,
    dev: u64,
    ino: u64,
}

impl Mapping {
    /// A shared mapping: of a memory object (a file in RAM, shared
    /// memory), or of an initrd file (read-only).
    fn shared(&self) -> bool {
        self.shared_object || self.prot.contains(Protection::READ_ONLY_BACKING)
    }
}

/// The initrd file holding physical address `source`, and the offset.
fn file_at(source: u64) -> Option<(&'static str, u64)> {
    fs::files().iter().find_map(|file| {
        let start = file.phys_addr();
        (source >= start && source < start + file.size().max(1)).then(|| (file.name(), source - start))
    })
}

/// The Linux mappings of a process's space that overlap `[start, end)`,
/// in address order. The first may begin inside a mapping that starts
/// below `start`: it has the mapping's rights, lock, kind and file (its
/// regions all have them), only its offset and start differ.
fn mappings_in(paging: &PagingAspace<KernelMachine>, start: u64, end: u64) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    let mut last: Option<Region> = None;
    let regions = paging.region_set().overlapping(start, end.saturating_sub(start));
    for region in regions.filter(|region| layout::is_user(region)) {
        if let (Some(lower), Some(mapping)) = (last, mappings.last_mut()) {
            if layout::same_mapping(paging, &lower, region) {
                mapping.end = region.va.as_u64() + region.len;
                last = Some(*region);
                continue;
            }
        }
        let at = region.va.as_u64();
        let mut shared_object = false;
        let file = if let Some(backing) = paging.object_backing(region.va) {
            shared_object = backing.shared;
            let mut name = String::new();
            let _ = backing.object.describe(&mut name);
            let (dev, ino) = backing.object.file_ids();
            Some(MappedFile { name, offset: backing.index_of(at) * layout::PAGE, dev, ino })
        } else {
            let backing = paging.file_backing(region.va);
            backing.and_then(|backing| file_at(backing.source.as_u64() + (at - backing.va.as_u64()))).map(
                |(name, offset)| MappedFile { name: alloc::format!("/{name}"), offset, dev: 0, ino: inode_of(name) },
            )
        };
        mappings.push(Mapping { start: at, end: at + region.len, prot: region.prot, file, shared_object });
        last = Some(*region);
    }
    mappings
}

/// Every Linux mapping of a process's space, in address order.
fn mappings(paging: &PagingAspace<KernelMachine>) -> Vec<Mapping> {
    mappings_in(paging, layout::user_bottom(), layout::user_top())
}

/// The program break's range, read before the space's lock is taken (the
/// process's lock is never taken inside the space's).
fn brk_range(process: &Process) -> (u64, u64) {
    let state = process.state.lock();
    (state.brk_start, state.brk)
}

/// Appends the `maps` line of `mapping` (with its newline) to `out`.
fn map_line(out: &mut String, mapping: &Mapping, (brk_start, brk): (u64, u64)) {
    let prot = mapping.prot;
    let r = if layout::readable(prot) { 'r' } else { '-' };
    let w = if prot.contains(Protection::WRITE) { 'w' } else { '-' };
    let x = if prot.contains(Protection::EXEC) { 'x' } else { '-' };
    let shared = if mapping.shared() { 's' } else { 'p' };
    let (offset, dev, inode, name) = match &mapping.file {
        Some(file) => (file.offset, file.dev, file.ino, file.name.clone()),
        // Linux's rules (show_map_vma): the line holding the break's range
        // is the heap, the one holding the stack's top the stack.
        None if mapping.start <= brk && mapping.end >= brk_start => (0, 0, 0, String::from("[heap]")),
        None if mapping.start < layout::STACK_TOP && mapping.end >= layout::STACK_TOP => {
            (0, 0, 0, String::from("[stack]"))
        }
        None => (0, 0, 0, String::new()),
    };
    let line_start = out.len();
    let _ = write!(
        out,
        "{:08x}-{:08x} {r}{w}{x}{shared} {offset:08x} {:02x}:{:02x} {inode} ",
        mapping.start,
        mapping.end,
        dev >> 8,
        dev & 0xff
    );
    // As Linux's show_map_vma: an unnamed line keeps the header's trailing
    // space; a name comes after padding to 72 columns and one more space
    // (seq_pad).
    if !name.is_empty() {
        for _ in out.len() - line_start..72 {
            out.push(' ');
        }
        out.push(' ');
        out.push_str(&name);
    }
    out.push('\n');
}

/// `/proc/self/maps` of `process`.
pub fn maps(process: &Process) -> Vec<u8> {
    let brk = brk_range(process);
    let object = process.space.lock();
    let mut out = String::new();
    if let Some(paging) = paging_of(&object) {
        for mapping in mappings(paging) {
            map_line(&mut out, &mapping, brk);
        }
    }
    out.into_bytes()
}

/// Linux's `PSS_SHIFT`: `Pss` is summed in fractions of a byte.
const PSS_SHIFT: u32 = 12;

/// What one resident page counts as (see the module's notes).
#[derive(Clone, Copy)]
struct PageState {
    /// Its frame has another holder.
    shared: bool,
    /// Written (or anonymous).
    dirty: bool,
    /// Linux's `PageAnon`: not a file's page.
    anonymous: bool,
    /// The entry's accessed bit.
    referenced: bool,
}

/// The state of the page at `va`, which has `frame`, in `mapping`.
fn page_state(paging: &PagingAspace<KernelMachine>, mapping: &Mapping, va: u64, frame: PhysAddr) -> PageState {
    let leaf = paging
        .walk(VirtAddr::new(va))
        .filter(|walk| walk.translation().is_some())
        .and_then(|walk| walk.steps().last().map(|step| step.entry));
    let written = leaf.is_some_and(|entry| entry.is_dirty());
    let anonymous = !mapping.shared() && (mapping.file.is_none() || written);
    PageState {
        shared: paging.machine().frame_is_shared(frame),
        dirty: anonymous,
        anonymous,
        referenced: leaf.is_some_and(|entry| entry.is_accessed()),
    }
}

/// The sums of `smaps` for one mapping, in bytes (`pss` and `pss_dirty`
/// shifted by [`PSS_SHIFT`]).
#[derive(Default)]
struct Sizes {
    resident: u64,
    pss: u64,
    pss_dirty: u64,
    shared_clean: u64,
    shared_dirty: u64,
    private_clean: u64,
    private_dirty: u64,
    referenced: u64,
    anonymous: u64,
}

impl Sizes {
    /// Counts one resident page.
    fn add(&mut self, page: PageState) {
        let size = layout::PAGE;
        self.resident += size;
        let pss = if page.shared { (size << PSS_SHIFT) / 2 } else { size << PSS_SHIFT };
        self.pss += pss;
        if page.dirty {
            self.pss_dirty += pss;
        }
        match (page.shared, page.dirty) {
            (true, true) => self.shared_dirty += size,
            (true, false) => self.shared_clean += size,
            (false, true) => self.private_dirty += size,
            (false, false) => self.private_clean += size,
        }
        if page.referenced {
            self.referenced += size;
        }
        if page.anonymous {
            self.anonymous += size;
        }
    }
}

/// Appends `label`, `bytes` in kB (8 columns) and ` kB` (Linux's `SEQ_PUT_DEC`).
fn kb_line(out: &mut String, label: &str, bytes: u64) {
    let _ = writeln!(out, "{label}{:8} kB", bytes >> 10);
}

/// Linux's `show_smap_vma_flags`: the two-letter names of the mapping's
/// `VM_*` flags, in bit order.
fn vm_flags(mapping: &Mapping) -> String {
    let prot = mapping.prot;
    let shared = mapping.shared();
    let flags = [
        ("rd", layout::readable(prot)),
        ("wr", prot.contains(Protection::WRITE)),
        ("ex", prot.contains(Protection::EXEC)),
        // VM_MAYREAD and VM_MAYEXEC always; VM_MAYWRITE unless the mapping
        // shares a file opened read-only (the only kind of shared file here,
        // which also has VM_MAYSHARE but not VM_SHARED).
        ("mr", true),
        ("mw", !shared),
        ("me", true),
        ("ms", shared),
        ("gd", prot.contains(Protection::GROW_DOWN)),
        ("lo", prot.contains(Protection::PIN)),
        // VM_ACCOUNT: private memory the program may write is charged.
        ("ac", !shared && prot.contains(Protection::WRITE)),
    ];
    let mut out = String::from("VmFlags: ");
    for (name, _) in flags.iter().filter(|(_, set)| *set) {
        out.push_str(name);
        out.push(' ');
    }
    out
}

/// `/proc/self/smaps` of `process`.
pub fn smaps(process: &Process) -> Vec<u8> {
    let brk = brk_range(process);
    let object = process.space.lock();
    let Some(paging) = paging_of(&object) else { return Vec::new() };
    let mut out = String::new();
    let mut frames = paging.anonymous_frames().skip_while(|(va, _)| va.as_u64() < layout::user_bottom()).peekable();
    for mapping in mappings(paging) {
        let mut sizes = Sizes::default();
        while let Some(&(va, frame)) = frames.peek() {
            let va = va.as_u64();
            if va >= mapping.end {
                break;
            }
            frames.next();
            if va >= mapping.start {
                sizes.add(page_state(paging, &mapping, va, frame));
            }
        }
        map_line(&mut out, &mapping, brk);
        kb_line(&mut out, "Size:           ", mapping.end - mapping.start);
        kb_line(&mut out, "KernelPageSize: ", layout::PAGE);
        kb_line(&mut out, "MMUPageSize:    ", layout::PAGE);
        kb_line(&mut out, "Rss:            ", sizes.resident);
        kb_line(&mut out, "Pss:            ", sizes.pss >> PSS_SHIFT);
        kb_line(&mut out, "Pss_Dirty:      ", sizes.pss_dirty >> PSS_SHIFT);
        kb_line(&mut out, "Shared_Clean:   ", sizes.shared_clean);
        kb_line(&mut out, "Shared_Dirty:   ", sizes.shared_dirty);
        kb_line(&mut out, "Private_Clean:  ", sizes.private_clean);
        kb_line(&mut out, "Private_Dirty:  ", sizes.private_dirty);
        kb_line(&mut out, "Referenced:     ", sizes.referenced);
        kb_line(&mut out, "Anonymous:      ", sizes.anonymous);
        kb_line(&mut out, "LazyFree:       ", 0);
        kb_line(&mut out, "AnonHugePages:  ", 0);
        kb_line(&mut out, "ShmemPmdMapped: ", 0);
        kb_line(&mut out, "FilePmdMapped:  ", 0);
        kb_line(&mut out, "Shared_Hugetlb: ", 0);
        let _ = writeln!(out, "Private_Hugetlb: {:7} kB", 0);
        kb_line(&mut out, "Swap:           ", 0);
        kb_line(&mut out, "SwapPss:        ", 0);
        let locked = if mapping.prot.contains(Protection::PIN) { sizes.pss >> PSS_SHIFT } else { 0 };
        kb_line(&mut out, "Locked:         ", locked);
        let _ = writeln!(out, "THPeligible:    0");
        let _ = writeln!(out, "{}", vm_flags(&mapping));
    }
    out.into_bytes()
}

/// `pagemap`'s bits (`fs/proc/task_mmu.c`).
mod pm {
    /// The frame number's bits.
    pub const PFN_MASK: u64 = (1 << 55) - 1;
    /// The page is mapped by this process only.
    pub const MMAP_EXCLUSIVE: u64 = 1 << 56;
    /// A file's page (or shared anonymous memory).
    pub const FILE: u64 = 1 << 61;
    /// The page is present.
    pub const PRESENT: u64 = 1 << 63;
}

/// The `pagemap` entries of `count` pages from page number `first` (the
/// page at `first * 4096`), of `process`'s space; fewer when they reach
/// the end of user space.
pub fn pagemap(process: &Process, first: u64, count: u64) -> Vec<u64> {
    let top_page = layout::user_top() / layout::PAGE;
    let count = count.min(top_page.saturating_sub(first));
    let mut entries = alloc::vec![0u64; count as usize];
    if count == 0 {
        return entries;
    }
    let (start, end) = (first * layout::PAGE, (first + count) * layout::PAGE);
    let object = process.space.lock();
    let Some(paging) = paging_of(&object) else { return entries };
    // Only the pages of the mappings over the range are looked at.
    for mapping in mappings_in(paging, start, end) {
        for va in (mapping.start.max(start)..mapping.end.min(end)).step_by(layout::PAGE as usize) {
            let Some(frame) = paging.anonymous_frame(VirtAddr::new(va)) else {
                if paging.maps_zero_page(VirtAddr::new(va)) {
                    // Linux's zero page: present, neither a file's nor exclusive.
                    let zero = paging.machine().zero_frame().map_or(0, |frame| frame.as_u64() >> 12);
                    entries[((va - start) / layout::PAGE) as usize] = pm::PRESENT | zero & pm::PFN_MASK;
                }
                continue;
            };
            let state = page_state(paging, &mapping, va, frame);
            let mut entry = pm::PRESENT | (frame.as_u64() >> 12) & pm::PFN_MASK;
            if !state.anonymous {
                entry |= pm::FILE;
            }
            if !state.shared {
                entry |= pm::MMAP_EXCLUSIVE;
            }
            entries[((va - start) / layout::PAGE) as usize] = entry;
        }
    }
    entries
}

/// The inode number the kernel gives initrd file `name` (its index + 1).
pub fn inode_of(name: &str) -> u64 {
    fs::files().iter().position(|file| file.name() == name).map_or(0, |index| index as u64 + 1)
}

/// The bytes of `process`'s pages in memory, of its whole user space, and
/// of its locked mappings.
pub(super) fn memory_sizes(process: &Process) -> (u64, u64, u64) {
    let object = process.space.lock();
    let user = || object.regions().iter().filter(|region| layout::is_user(region));
    let size: u64 = user().map(|region| region.len).sum();
    let locked: u64 = user().filter(|region| region.prot.contains(Protection::PIN)).map(|region| region.len).sum();
    let bottom = layout::user_bottom();
    let resident = paging_of(&object)
        .map(|paging| paging.anonymous_frames().filter(|(va, _)| va.as_u64() >= bottom).count() as u64 * 4096)
        .unwrap_or(0);
    (resident, size, locked)
}

/// `/proc/self/status`: the identity and memory lines.
pub fn status(process: &Process) -> Vec<u8> {
    let (resident, size, locked) = memory_sizes(process);
    let name = String::from_utf8_lossy(&process::comm(process)).into_owned();
    let mut out = String::new();
    let _ = writeln!(out, "Name:\t{name}");
    let _ = writeln!(out, "State:\tR (running)");
    let _ = writeln!(out, "Tgid:\t{}", process.pid);
    let _ = writeln!(out, "Pid:\t{}", process.pid);
    let _ = writeln!(out, "PPid:\t{}", process::parent_of(process));
    let _ = writeln!(out, "Uid:\t0\t0\t0\t0");
    let _ = writeln!(out, "Gid:\t0\t0\t0\t0");
    let _ = writeln!(out, "VmSize:\t{:8} kB", size / 1024);
    let _ = writeln!(out, "VmLck:\t{:8} kB", locked / 1024);
    let _ = writeln!(out, "VmRSS:\t{:8} kB", resident / 1024);
    let _ = writeln!(out, "Threads:\t{}", process.thread_count());
    out.into_bytes()
}

/// `/proc/meminfo`: the first three lines, from the frame allocator.
pub fn meminfo() -> Vec<u8> {
    let frames = crate::mem::frames::stats();
    let kib = |frames: usize| frames as u64 * 4;
    let mut out = String::new();
    let _ = writeln!(out, "MemTotal:       {:8} kB", kib(frames.managed));
    let _ = writeln!(out, "MemFree:        {:8} kB", kib(frames.free));
    let _ = writeln!(out, "MemAvailable:   {:8} kB", kib(frames.free));
    out.into_bytes()
}

/// `/proc/sys/vm/mmap_min_addr`: the lowest address a program may map,
/// the user bottom here (the kernel's map lies below it).
pub fn mmap_min_addr() -> Vec<u8> {
    alloc::format!("{}\n", layout::user_bottom()).into_bytes()
}

/// `/proc/sys/vm/max_map_count`: the most regions a space holds.
pub fn max_map_count() -> Vec<u8> {
    alloc::format!("{}\n", layout::MAX_MAP_COUNT).into_bytes()
}
