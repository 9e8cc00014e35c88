//! Anonymous memory: the frames an address space provides for the pages of
//! its anonymous regions ([`aspace::Protection::ANON`]), and their mapping.
//!
//! The space keeps its own record of which frame backs which page rather
//! than reading the frame back from the leaf entry, because:
//! - a page whose region lost READ is unmapped (x86-64 has no present but
//!   unreadable page) yet must keep its contents for when READ comes back;
//! - [`crate::PagingAspace::verify`] needs a record independent of the
//!   tables to check them against;
//! - removal and destruction free exactly the recorded frames, whatever
//!   the tables say.
//!
//! The record is a page map of chunks, as the page tables are: a
//! [`ChunkMap`] keyed by the 2 MiB block (`va >> 21`) holding a boxed
//! [`Chunk`] of 512 slots, one per 4 KiB page of the block. A slot is one
//! word: the frame's address in the page-aligned bits and the page's marks
//! in the low bits (it has a frame, it is shared on purpose, it maps the
//! zero page); 0 is an empty slot. One word per page keeps everything known
//! about a page in one place, and the chunks make the range operations work
//! a block at a time: releasing a range drops the chunks it covers whole
//! without touching the map per page, moving a range by a multiple of 2 MiB
//! re-keys the chunks it covers whole (any other move writes each target
//! chunk once), and a fork's copy is one memory copy per chunk. A lookup is
//! O(log n) in the blocks (not the pages) owned, then an index. The number
//! of frames owned is kept as a count. A chunk left with no used slot is
//! dropped.
//!
//! Anonymous pages are always 4 KiB: each has its own frame, which the
//! frame allocator does not promise to hand out contiguously.
//!
//! Frames leave the record only through a [`FlushBatch`]: they are freed
//! after the TLBs have forgotten every translation to them.
//!
//! After a fork ([`crate::PagingAspace::fork`]) a frame may be recorded in
//! two spaces at once: the machine counts its references
//! ([`Machine::share_frame`]), and a shared frame is only ever mapped
//! read-only ([`AnonymousFrames::rights_for`]); the first write to it copies
//! the page ([`AnonymousFrames::copy_on_write`]), and a page whose other
//! references are gone is simply made writable again.

use crate::chunk_map::ChunkMap;
use crate::entry::{LeafPermissions, PAGE};
use crate::error::PagingError;
use crate::file::FileBackings;
use crate::flush::FlushBatch;
use crate::machine::Machine;
use crate::object::ObjectBackings;
use crate::tables::PageTables;
use alloc::boxed::Box;
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};
use smallvec::SmallVec;

/// Pages per chunk: one page table's worth.
const SLOTS: usize = 512;
/// The bytes one chunk covers (2 MiB): a chunk's key is `va >> CHUNK_SHIFT`.
const CHUNK_SHIFT: u32 = 21;
const CHUNK_BYTES: u64 = 1 << CHUNK_SHIFT;

/// A slot's mark: the page has a frame (the address bits hold it).
const HAS_FRAME: u64 = 1 << 0;
/// A slot's mark: the page is shared writable on purpose with the spaces
/// forked from this one (a `MAP_SHARED` anonymous mapping): never copied
/// on write.
const SHARED: u64 = 1 << 1;
/// A slot's mark: the page was read before it was ever written, and maps
/// the machine's zero frame read-only (see [`crate::Machine::zero_frame`]):
/// it owns no frame, and its first write maps a frame of its own.
const ZERO: u64 = 1 << 2;
/// The frame's address in a slot.
const FRAME: u64 = !(PAGE - 1);

/// The record of one 2 MiB block of pages.
#[derive(Clone, Debug)]
pub(crate) struct Chunk {
    /// One word per 4 KiB page: frame address | marks, 0 when empty.
    slots: [u64; SLOTS],
    /// Slots that are not 0.
    used: u16,
    /// Slots with [`HAS_FRAME`].
    frames: u16,
}

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk { slots: [0; SLOTS], used: 0, frames: 0 })
    }

    /// Sets slot `index` to `value`, keeping the counts.
    fn set(&mut self, index: usize, value: u64) {
        let old = self.slots[index];
        self.used = self.used + u16::from(value != 0) - u16::from(old != 0);
        self.frames = self.frames + u16::from(value & HAS_FRAME != 0) - u16::from(old & HAS_FRAME != 0);
        self.slots[index] = value;
    }

    /// Takes `mark` away from every slot, keeping the counts.
    fn clear_mark(&mut self, mark: u64) {
        for index in 0..SLOTS {
            let slot = self.slots[index];
            if slot & mark != 0 {
                self.set(index, slot & !mark);
            }
        }
    }
}

/// The frame held by `slot`, if it holds one.
fn frame_of(slot: u64) -> Option<PhysAddr> {
    (slot & HAS_FRAME != 0).then_some(PhysAddr(slot & FRAME))
}

/// The chunk keys, or a part of a chunk's slots, that one edit handles:
/// kept in place while there are at most four (a small `mremap` or release,
/// a page or a few, allocates nothing for them), on the heap beyond.
type Few<T> = SmallVec<[T; 4]>;

/// The chunk key of the page at `page`, and the page's slot in it.
fn locate(page: u64) -> (u64, usize) {
    (page >> CHUNK_SHIFT, ((page >> 12) as usize) & (SLOTS - 1))
}

/// The part of chunk `key` that `[va, last]` covers, as a range of slots
/// (inclusive), and whether it covers the chunk whole.
fn slots_in(key: u64, va: u64, last: u64) -> (usize, usize, bool) {
    let base = key << CHUNK_SHIFT;
    // The chunk's last byte: at most u64::MAX, since keys are below 2^43.
    let top = base + (CHUNK_BYTES - 1);
    let first = if va > base { ((va - base) >> 12) as usize } else { 0 };
    let end = if last < top { ((last - base) >> 12) as usize } else { SLOTS - 1 };
    (first, end, first == 0 && end == SLOTS - 1)
}

/// The frames owned for anonymous pages, by virtual page.
#[derive(Debug, Default)]
pub(crate) struct AnonymousFrames {
    /// The page map: chunk key (`va >> 21`) to the chunk's record.
    chunks: ChunkMap<Box<Chunk>>,
    /// Frames owned: the slots with [`HAS_FRAME`], over every chunk.
    frames: usize,
    /// What pages of file-backed regions start with instead of zeros.
    pub(crate) files: FileBackings,
    /// Which pages come from memory objects (a file's page cache, shared
    /// memory) on first touch.
    pub(crate) objects: ObjectBackings,
    /// The most frames owned at once (the high-water mark of the resident
    /// set, `ru_maxrss`).
    peak: usize,
}

impl AnonymousFrames {
    /// A copy of this record for a space forked from this one: the same
    /// frames for the same pages (the caller takes the references), the same
    /// pages shared on purpose, the same backings. Each chunk is copied
    /// whole; the zero-page marks are left out (the child maps nothing yet:
    /// its reads find the zero page again).
    pub(crate) fn fork_copy(&self) -> AnonymousFrames {
        let mut chunks = ChunkMap::default();
        for (key, chunk) in self.chunks.iter() {
            let mut copy = chunk.clone();
            if copy.used != copy.frames {
                copy.clear_mark(ZERO);
            }
            if copy.used != 0 {
                chunks.push_last(key, copy);
            }
        }
        AnonymousFrames {
            chunks,
            frames: self.frames,
            files: self.files.fork_copy(),
            objects: self.objects.clone(),
            peak: self.frames,
        }
    }

    /// How many frames are owned.
    pub(crate) fn len(&self) -> usize {
        self.frames
    }

    /// The most frames owned at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.max(self.frames)
    }

    /// Notes the frames owned now toward [`AnonymousFrames::peak`].
    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.frames);
    }

    /// The slot of the page at `page` (0 when the record has nothing for it).
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    fn slot(&self, page: u64) -> u64 {
        let (key, index) = locate(page);
        self.chunks.get(key).map_or(0, |chunk| chunk.slots[index])
    }

    /// Sets the slot of the page at `page` to `value` (0 empties it),
    /// keeping the counts, and drops its chunk if that left it empty.
    fn set_slot(&mut self, page: u64, value: u64) {
        let (key, index) = locate(page);
        if value == 0 && self.chunks.get(key).is_none() {
            return;
        }
        let chunk = self.chunks.get_or_insert_with(key, Chunk::new);
        let had = chunk.frames;
        chunk.set(index, value);
        self.frames = self.frames + usize::from(chunk.frames) - usize::from(had);
        if chunk.used == 0 {
            self.chunks.remove(key);
        }
    }

    /// The frame backing the page at `page`, if it has one yet.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn get(&self, page: u64) -> Option<PhysAddr> {
        frame_of(self.slot(page))
    }

    /// Records that `frame` backs the page at `page` (the fault path maps
    /// it itself). It keeps its shared mark, and no longer maps the zero page.
    pub(crate) fn record(&mut self, page: u64, frame: PhysAddr) {
        let marks = self.slot(page) & SHARED;
        self.set_slot(page, frame.0 | HAS_FRAME | marks);
        self.note_peak();
    }

    /// The pages of `[start, end)` (page aligned, `end` exclusive) that have
    /// no frame, in address order: a chunk looked up once for its pages.
    pub(crate) fn frameless_pages(&self, start: u64, end: u64) -> Vec<u64> {
        let mut pages = Vec::with_capacity((end.saturating_sub(start) / PAGE) as usize);
        let mut at = start;
        while at < end {
            let (key, first) = locate(at);
            let chunk = self.chunks.get(key);
            let chunk_end = ((key + 1) << CHUNK_SHIFT).min(end);
            let count = ((chunk_end - at) / PAGE) as usize;
            for index in first..first + count {
                if chunk.is_none_or(|chunk| chunk.slots[index] & HAS_FRAME == 0) {
                    pages.push(at + ((index - first) as u64) * PAGE);
                }
            }
            at = chunk_end;
        }
        pages
    }

    /// [`AnonymousFrames::record`] of each (page, frame) of `pages` (in
    /// address order), each marked shared on purpose too when `shared`: a
    /// chunk is looked up once for the pages in it.
    pub(crate) fn record_all(&mut self, pages: &[(u64, PhysAddr)], shared: bool) {
        let mark = if shared { SHARED } else { 0 };
        let mut rest = pages;
        while let Some(&(first, _)) = rest.first() {
            let (key, _) = locate(first);
            let in_chunk = rest.iter().take_while(|&&(page, _)| locate(page).0 == key).count();
            let chunk = self.chunks.get_or_insert_with(key, Chunk::new);
            for &(page, frame) in &rest[..in_chunk] {
                let index = locate(page).1;
                let had = chunk.frames;
                let marks = chunk.slots[index] & SHARED;
                chunk.set(index, frame.0 | HAS_FRAME | marks | mark);
                self.frames = self.frames + usize::from(chunk.frames) - usize::from(had);
            }
            rest = &rest[in_chunk..];
        }
        self.note_peak();
    }

    /// The rights to map `frame`, the frame of the page at `page`, with:
    /// `perms`, without write access while the frame is shared
    /// copy-on-write (not a page shared writable on purpose).
    pub(crate) fn rights_for<M: Machine + ?Sized>(
        &self,
        machine: &M,
        page: u64,
        frame: PhysAddr,
        perms: LeafPermissions,
    ) -> LeafPermissions {
        if perms.writable && !self.is_shared_page(page) && machine.frame_is_shared(frame) {
            perms.read_only()
        } else {
            perms
        }
    }

    /// True when the page at `page` is shared writable on purpose (its
    /// frame is never copied on write).
    pub(crate) fn is_shared_page(&self, page: u64) -> bool {
        self.slot(page) & SHARED != 0
    }

    /// Marks the page at `page` as shared writable on purpose.
    pub(crate) fn mark_shared_page(&mut self, page: u64) {
        let slot = self.slot(page);
        self.set_slot(page, slot | SHARED);
    }

    /// True when the page at `page` maps the zero page.
    pub(crate) fn is_zero_page(&self, page: u64) -> bool {
        self.slot(page) & ZERO != 0
    }

    /// Records that the page at `page`, which has no frame, maps the zero page.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn mark_zero_page(&mut self, page: u64) {
        // One look-up: a fault's path.
        let (key, index) = locate(page);
        let chunk = self.chunks.get_or_insert_with(key, Chunk::new);
        chunk.set(index, chunk.slots[index] | ZERO);
    }

    /// The pages in `[va, last]` that must stay read-only whatever their
    /// region allows, in address order: those whose frame is shared
    /// copy-on-write (not shared on purpose) and those that map the zero
    /// page. One pass over the record; nothing is allocated when none is.
    pub(crate) fn read_only_pages_in<M: Machine + ?Sized>(&self, machine: &M, va: u64, last: u64) -> Vec<u64> {
        let stays_read_only = |slot: u64| {
            slot & ZERO != 0
                || (slot & HAS_FRAME != 0 && slot & SHARED == 0 && machine.frame_is_shared(PhysAddr(slot & FRAME)))
        };
        // The path of every edit that grants write access: answered at
        // once when nothing is recorded, and with one look-up for one page.
        if self.chunks.is_empty() {
            return Vec::new();
        }
        if va <= last && va / PAGE == last / PAGE {
            let page = va & !(PAGE - 1);
            return if stays_read_only(self.slot(page)) { alloc::vec![page] } else { Vec::new() };
        }
        self.slots_of(va, last).filter(|&(_, slot)| stays_read_only(slot)).map(|(page, _)| page).collect()
    }

    /// The pages in `[va, last]` that map the zero page, in address order.
    pub(crate) fn zero_pages_in(&self, va: u64, last: u64) -> impl Iterator<Item = u64> + '_ {
        self.slots_of(va, last).filter(|&(_, slot)| slot & ZERO != 0).map(|(page, _)| page)
    }

    /// Every page that maps the zero page, in address order.
    pub(crate) fn zero_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.zero_pages_in(0, u64::MAX)
    }

    /// True when some page in `[va, last]` has a frame or maps the zero page.
    pub(crate) fn holds_any(&self, va: u64, last: u64) -> bool {
        self.slots_of(va, last).any(|(_, slot)| slot & (HAS_FRAME | ZERO) != 0)
    }

    /// The (page, slot) pairs of the used slots in `[va, last]`, in address order.
    fn slots_of(&self, va: u64, last: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        // No key is u64::MAX (keys are below 2^43): an empty range for an empty request.
        let range = if va <= last { (va >> CHUNK_SHIFT)..=(last >> CHUNK_SHIFT) } else { u64::MAX..=u64::MAX };
        self.chunks.range(range).flat_map(move |(key, chunk)| {
            let (first, end, _) = slots_in(key, va, last);
            let base = key << CHUNK_SHIFT;
            chunk.slots[first..=end]
                .iter()
                .enumerate()
                .filter(|&(_, &slot)| slot != 0)
                .map(move |(offset, &slot)| (base + ((first + offset) as u64) * PAGE, slot))
        })
    }

    /// Calls `each` with the (page, frame, shared on purpose) of every
    /// page with a frame, in address order, a chunk at a time.
    pub(crate) fn for_each_frame(&self, mut each: impl FnMut(u64, PhysAddr, bool)) {
        for (key, chunk) in self.chunks.iter() {
            let base = key << CHUNK_SHIFT;
            for (index, &slot) in chunk.slots.iter().enumerate() {
                if slot & HAS_FRAME != 0 {
                    each(base + index as u64 * PAGE, PhysAddr(slot & FRAME), slot & SHARED != 0);
                }
            }
        }
    }

    /// The first write to the page at `page`, whose frame `shared` other
    /// spaces map too: copies it into a frame of its own, maps that one with
    /// `perms` in place of the shared one, and gives up this space's
    /// reference to the shared frame after the flush. On
    /// [`PagingError::OutOfMemory`] nothing changed.
    pub(crate) fn copy_on_write<M: Machine + ?Sized>(
        &mut self,
        tables: &mut PageTables,
        machine: &M,
        page: VirtAddr,
        shared: PhysAddr,
        perms: LeafPermissions,
        batch: &mut FlushBatch,
    ) -> Result<(), PagingError> {
        let copy = machine.alloc_frame().ok_or(PagingError::OutOfMemory)?;
        for offset in (0..PAGE).step_by(8) {
            // SAFETY: both frames are this space's: `shared` (one of its
            // references) is only read, and `copy` is its own, fresh.
            unsafe { machine.write_u64(PhysAddr(copy.0 + offset), machine.read_u64(PhysAddr(shared.0 + offset))) };
        }
        if let Err(error) = tables.map_into(machine, page, copy, PAGE, perms, batch) {
            // SAFETY: allocated just now and never mapped.
            unsafe { machine.free_frame(copy) };
            return Err(error);
        }
        self.record(page.0, copy);
        // SAFETY: this space's reference to the shared frame, whose page
        // now maps `copy`; the batch flushes the old translation first.
        unsafe { batch.free_after_flush(shared) };
        Ok(())
    }

    /// The (page, frame) pairs of the pages in `[va, last]`, in address order.
    pub(crate) fn iter_range(&self, va: u64, last: u64) -> impl Iterator<Item = (u64, PhysAddr)> + '_ {
        self.slots_of(va, last).filter_map(|(page, slot)| frame_of(slot).map(|frame| (page, frame)))
    }

    /// Every (page, frame) pair, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, PhysAddr)> + '_ {
        self.iter_range(0, u64::MAX)
    }

    /// The keys of the chunks that hold part of `[va, last]`.
    fn keys_in(&self, va: u64, last: u64) -> Few<u64> {
        let mut keys = Few::new();
        if va <= last {
            for (key, _) in self.chunks.range((va >> CHUNK_SHIFT)..=(last >> CHUNK_SHIFT)) {
                keys.push(key);
            }
        }
        keys
    }

    /// Gives up the frames of the pages in `[va, last]` (inclusive, so that
    /// a range may end at the top of the address space): `batch` frees them
    /// after its flush. The caller has unmapped those pages in the same batch.
    /// The file and object backings over the range are cut away with them.
    pub(crate) fn release(&mut self, va: u64, last: u64, batch: &mut FlushBatch) {
        self.files.remove_range(va, last);
        self.objects.remove_range(va, last);
        self.release_frames(va, last, batch);
    }

    /// Gives up the frames of the pages in `[va, last]` as
    /// [`AnonymousFrames::release`] does, but keeps the backings: a later
    /// touch fills the pages again from them. The pages' marks go too. A
    /// chunk the range covers whole leaves the tree in one removal.
    pub(crate) fn release_frames(&mut self, va: u64, last: u64, batch: &mut FlushBatch) {
        for key in self.keys_in(va, last) {
            let (first, end, whole) = slots_in(key, va, last);
            let Some(chunk) = self.chunks.get_mut(key) else { continue };
            let before = usize::from(chunk.frames);
            for index in first..=end {
                let slot = chunk.slots[index];
                if slot == 0 {
                    continue;
                }
                if let Some(frame) = frame_of(slot) {
                    // SAFETY: the space's own frame, now out of the record;
                    // the caller unmapped its page in the same batch.
                    unsafe { batch.free_after_flush(frame) };
                }
                if !whole {
                    chunk.set(index, 0);
                }
            }
            if whole || chunk.used == 0 {
                self.chunks.remove(key);
                self.frames -= before;
            } else {
                self.frames -= before - usize::from(chunk.frames);
            }
        }
    }

    /// Moves the record of the pages in `[from, from+len)` to the pages at
    /// the same offsets from `to` (which hold nothing): their frames and
    /// shared marks, and their zero-page marks with `zero_pages_move` (the
    /// caller moved their entries too), else the old pages forget the zero
    /// page. No reference changes hands. A chunk covered whole moves as a
    /// whole when `to - from` is a multiple of 2 MiB; the rest moves slot
    /// by slot, a target chunk at a time. The ranges do not overlap.
    pub(crate) fn move_range(&mut self, from: u64, to: u64, len: u64, zero_pages_move: bool) {
        let last = from + (len - 1);
        let dropped = if zero_pages_move { 0 } else { ZERO };
        let shift = to.wrapping_sub(from);
        // Chunk by chunk, in address order. A target slot never lies in the
        // source range, so writing it never overwrites a slot still to move.
        for key in self.keys_in(from, last) {
            let (first, end, whole) = slots_in(key, from, last);
            let base = key << CHUNK_SHIFT;
            if whole {
                let Some(mut chunk) = self.chunks.remove(key) else { continue };
                self.frames -= usize::from(chunk.frames);
                if !shift.is_multiple_of(CHUNK_BYTES) {
                    if dropped == 0 {
                        self.write_chunk(base.wrapping_add(shift), &chunk);
                    } else {
                        self.write_slots(base.wrapping_add(shift), &chunk.slots, dropped);
                    }
                    continue;
                }
                if dropped != 0 && chunk.used != chunk.frames {
                    chunk.clear_mark(dropped);
                }
                let target = base.wrapping_add(shift) >> CHUNK_SHIFT;
                let frames = usize::from(chunk.frames);
                if chunk.used == 0 {
                    continue;
                }
                match self.chunks.insert_if_vacant(target, chunk) {
                    Ok(()) => self.frames += frames,
                    Err(chunk) => self.write_slots(base.wrapping_add(shift), &chunk.slots, 0),
                }
                continue;
            }
            let Some(chunk) = self.chunks.get_mut(key) else { continue };
            let before = chunk.frames;
            let mut moving = Few::new();
            for index in first..=end {
                let moved = chunk.slots[index];
                if moved != 0 {
                    chunk.set(index, 0);
                }
                moving.push(moved);
            }
            self.frames -= usize::from(before - chunk.frames);
            self.write_slots((base + first as u64 * PAGE).wrapping_add(shift), &moving, dropped);
            // Dropped only now: a move within the chunk keeps it.
            if self.chunks.get(key).is_some_and(|chunk| chunk.used == 0) {
                self.chunks.remove(key);
            }
        }
    }

    /// Writes the slots of `chunk`, a whole chunk taken out, to the pages
    /// from `page` on (which hold nothing; `page` is not a chunk's first):
    /// the part for each of the two target chunks is copied whole, and its
    /// counts come from the chunk's (the shorter part is counted, the
    /// longer one is the rest), not slot by slot.
    fn write_chunk(&mut self, page: u64, chunk: &Chunk) {
        let (key, first) = locate(page);
        let (next_key, _) = locate(page.wrapping_add((SLOTS - first) as u64 * PAGE));
        let (head, tail) = chunk.slots.split_at(SLOTS - first);
        let count = |slots: &[u64]| {
            let used = slots.iter().filter(|&&slot| slot != 0).count() as u16;
            (used, slots.iter().filter(|&&slot| slot & HAS_FRAME != 0).count() as u16)
        };
        let rest = |(used, frames): (u16, u16)| (chunk.used - used, chunk.frames - frames);
        let (head_counts, tail_counts) = if head.len() <= tail.len() {
            let counted = count(head);
            (counted, rest(counted))
        } else {
            let counted = count(tail);
            (rest(counted), counted)
        };
        for (key, start, part, (used, frames)) in [(key, first, head, head_counts), (next_key, 0, tail, tail_counts)] {
            if used == 0 {
                continue;
            }
            let target = self.chunks.get_or_insert_with(key, Chunk::new);
            let slots = &mut target.slots[start..start + part.len()];
            debug_assert!(slots.iter().all(|&slot| slot == 0), "the target pages hold nothing");
            slots.copy_from_slice(part);
            target.used += used;
            target.frames += frames;
            self.frames += usize::from(frames);
        }
    }

    /// Adds `slots`, less the marks `dropped`, to the slots of the pages
    /// from `page` on (which hold nothing), a target chunk at a time.
    fn write_slots(&mut self, mut page: u64, mut slots: &[u64], dropped: u64) {
        while !slots.is_empty() {
            let (key, first) = locate(page);
            let count = slots.len().min(SLOTS - first);
            let (run, rest) = slots.split_at(count);
            slots = rest;
            page = page.wrapping_add(count as u64 * PAGE);
            if run.iter().all(|&slot| slot & !dropped == 0) {
                continue;
            }
            let chunk = self.chunks.get_or_insert_with(key, Chunk::new);
            let before = chunk.frames;
            for (offset, &slot) in run.iter().enumerate() {
                let slot = slot & !dropped;
                if slot != 0 {
                    let index = first + offset;
                    chunk.set(index, chunk.slots[index] | slot);
                }
            }
            self.frames += usize::from(chunk.frames - before);
        }
    }

    /// Gives up every frame (the space is being destroyed), and forgets
    /// the file backings.
    pub(crate) fn release_all(&mut self, batch: &mut FlushBatch) {
        self.files.clear();
        self.objects.clear();
        for (_, chunk) in self.chunks.take_all() {
            if chunk.frames == 0 {
                continue;
            }
            for &slot in chunk.slots.iter() {
                if let Some(frame) = frame_of(slot) {
                    // SAFETY: the space's own frame, out of the record; the
                    // space is being destroyed and the batch flushes it whole.
                    unsafe { batch.free_after_flush(frame) };
                }
            }
        }
        self.frames = 0;
    }

    /// Maps the 4 KiB page at `page` to its frame with `perms`, replacing
    /// any leaf there, and allocates (zeroed, then filled from its file
    /// backing, if any) a frame for it first if it has none: the
    /// first touch. On [`PagingError::OutOfMemory`] nothing changed.
    pub(crate) fn fault_in<M: Machine + ?Sized>(
        &mut self,
        tables: &mut PageTables,
        machine: &M,
        page: VirtAddr,
        perms: LeafPermissions,
        batch: &mut FlushBatch,
    ) -> Result<(), PagingError> {
        let (frame, fresh) = match self.get(page.0) {
            Some(frame) => (frame, false),
            None => {
                let frame = machine.alloc_frame().ok_or(PagingError::OutOfMemory)?;
                self.files.fill(machine, page.0, frame);
                (frame, true)
            }
        };
        match tables.map_into(machine, page, frame, PAGE, self.rights_for(machine, page.0, frame, perms), batch) {
            Ok(()) => {
                // It mapped the zero page until now, if it was read first:
                // no more.
                self.record(page.0, frame);
                Ok(())
            }
            Err(error) => {
                if fresh {
                    // SAFETY: allocated just now and never mapped, so no
                    // TLB can hold it.
                    unsafe { machine.free_frame(frame) };
                }
                Err(error)
            }
        }
    }

    /// Maps every page of `[va, va+len)` that has no translation, each to
    /// its frame, allocating frames (zeroed, then filled from their file
    /// backings) for the pages that have none: what an eager anonymous
    /// region needs. Pages already mapped are left as they are.
    ///
    /// All or nothing: the frames are allocated first; if a page table
    /// cannot be had half-way, the pages mapped so far are unmapped again
    /// and the new frames go back, through `batch`. The caller applies
    /// `batch` in both cases.
    pub(crate) fn populate<M: Machine + ?Sized>(
        &mut self,
        tables: &mut PageTables,
        machine: &M,
        va: VirtAddr,
        len: u64,
        perms: LeafPermissions,
        batch: &mut FlushBatch,
    ) -> Result<(), PagingError> {
        let holes: Vec<VirtAddr> = (0..len / PAGE)
            .map(|index| VirtAddr(va.0 + index * PAGE))
            .filter(|&page| tables.walk(machine, page).translation().is_none())
            .collect();
        let mut fresh = Vec::new();
        for page in &holes {
            if self.get(page.0).is_some() {
                continue;
            }
            let Some(frame) = machine.alloc_frame() else {
                for (page, frame, slot) in fresh {
                    self.set_slot(page, slot);
                    // SAFETY: allocated just now and never mapped, so no
                    // TLB can hold it.
                    unsafe { machine.free_frame(frame) };
                }
                return Err(PagingError::OutOfMemory);
            };
            self.files.fill(machine, page.0, frame);
            fresh.push((page.0, frame, self.slot(page.0)));
            self.record(page.0, frame);
        }
        for (done, &page) in holes.iter().enumerate() {
            let frame = self.get(page.0).expect("every hole has a frame by now");
            match tables.map_into(machine, page, frame, PAGE, self.rights_for(machine, page.0, frame, perms), batch) {
                Ok(()) => {}
                Err(error) => {
                    for &mapped in &holes[..done] {
                        // Unmapping a 4 KiB leaf splits nothing, so needs no frame.
                        tables.unmap_into(machine, mapped, PAGE, batch).expect("unmapping a 4 KiB page");
                    }
                    for (page, frame, slot) in fresh {
                        self.set_slot(page, slot);
                        // SAFETY: allocated for this call, now unmapped
                        // again in the same batch.
                        unsafe { batch.free_after_flush(frame) };
                    }
                    return Err(error);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M2: u64 = CHUNK_BYTES;

    /// A record with a frame for every page of `[va, va + pages * 4 KiB)`,
    /// frame address = page address / 4 + 0x1000 (distinct, page-aligned).
    fn filled(va: u64, pages: u64) -> AnonymousFrames {
        let mut frames = AnonymousFrames::default();
        for page in 0..pages {
            let at = va.wrapping_add(page * PAGE);
            frames.record(at, frame_for(at));
        }
        frames
    }

    fn frame_for(page: u64) -> PhysAddr {
        PhysAddr(((page >> 12) << 12).wrapping_add(0x1000) & 0x000f_ffff_ffff_f000)
    }

    fn pages(frames: &AnonymousFrames) -> Vec<u64> {
        frames.iter().map(|(page, _)| page).collect()
    }

    #[test]
    fn release_mid_chunk_and_across_chunks() {
        // 3 chunks and a bit: from 1.5 MiB below a 2 MiB boundary.
        let va = 4 * M2 - 384 * PAGE;
        let mut frames = filled(va, 384 + 3 * 512);
        assert_eq!(frames.len(), 384 + 1536);
        let mut batch = FlushBatch::new();
        // From mid-chunk 3 to mid-chunk 5: chunk 4 goes whole.
        let (start, last) = (va + 100 * PAGE, 5 * M2 + 10 * PAGE - 1);
        frames.release_frames(start, last, &mut batch);
        let released = (384 - 100) + 512 + 10;
        assert_eq!(batch.freed_frames().len(), released);
        assert_eq!(frames.len(), 384 + 1536 - released);
        assert!(frames.iter().all(|(page, frame)| (page < start || page > last) && frame == frame_for(page)));
        assert_eq!(frames.iter_range(start, last).count(), 0);
        assert!(!frames.chunks.contains_key(4), "a chunk covered whole is dropped");
        assert_eq!(frames.iter_range(va, va + 99 * PAGE).count(), 100);
        // The rest, then nothing is left, not even an empty chunk.
        frames.release_frames(0, u64::MAX, &mut batch);
        assert_eq!((frames.len(), frames.chunks.len()), (0, 0));
        assert_eq!(frames.peak(), 384 + 1536);
    }

    #[test]
    fn ranges_ending_at_the_top_of_the_address_space() {
        let top_page = !(PAGE - 1);
        let mut frames = filled(top_page - 1023 * PAGE, 1024);
        assert_eq!(frames.len(), 1024);
        assert_eq!(frames.iter_range(top_page, u64::MAX).collect::<Vec<_>>(), [(top_page, frame_for(top_page))]);
        assert_eq!(frames.iter().last().map(|(page, _)| page), Some(top_page));
        frames.mark_zero_page(top_page - 1500 * PAGE);
        assert!(frames.holds_any(top_page - 1500 * PAGE, top_page - 1024 * PAGE));
        assert_eq!(frames.zero_pages().collect::<Vec<_>>(), [top_page - 1500 * PAGE]);
        let mut batch = FlushBatch::new();
        frames.release_frames(top_page - 9 * PAGE, u64::MAX, &mut batch);
        assert_eq!((frames.len(), batch.freed_frames().len()), (1014, 10));
        frames.release_frames(top_page - 2000 * PAGE, u64::MAX, &mut batch);
        assert_eq!((frames.len(), frames.chunks.len()), (0, 0));
    }

    #[test]
    fn moves_keep_marks_and_counts_aligned_or_not() {
        for (to, whole) in [(40 * M2, true), (40 * M2 + 3 * PAGE, false), (40 * M2 + 500 * PAGE, false)] {
            let from = 8 * M2;
            let mut frames = filled(from, 1100);
            frames.mark_shared_page(from + 600 * PAGE);
            frames.set_slot(from + 1100 * PAGE, ZERO);
            frames.move_range(from, to, 1200 * PAGE, true);
            assert_counts_kept(&frames);
            assert_eq!(frames.len(), 1100);
            assert_eq!(frames.iter_range(from, from + 1200 * PAGE).count(), 0);
            for page in 0..1100 {
                assert_eq!(frames.get(to + page * PAGE), Some(frame_for(from + page * PAGE)), "{whole} {page}");
            }
            assert!(frames.is_shared_page(to + 600 * PAGE) && !frames.is_shared_page(to + 601 * PAGE));
            assert!(frames.is_zero_page(to + 1100 * PAGE));
            // Back, forgetting the zero page.
            frames.move_range(to, from, 1200 * PAGE, false);
            assert_counts_kept(&frames);
            assert_eq!(pages(&frames), (0..1100).map(|page| from + page * PAGE).collect::<Vec<_>>());
            assert_eq!(frames.zero_pages().count(), 0);
            assert!(frames.is_shared_page(from + 600 * PAGE));
            assert_eq!(frames.chunks.len(), 3);
        }
    }

    /// Every chunk's counts match its slots, and the record's frame count
    /// is their sum.
    fn assert_counts_kept(frames: &AnonymousFrames) {
        let mut total = 0;
        for (key, chunk) in frames.chunks.iter() {
            let used = chunk.slots.iter().filter(|&&slot| slot != 0).count();
            let held = chunk.slots.iter().filter(|&&slot| slot & HAS_FRAME != 0).count();
            assert_eq!((usize::from(chunk.used), usize::from(chunk.frames)), (used, held), "chunk {key:#x}");
            assert!(used > 0, "chunk {key:#x} is empty");
            total += held;
        }
        assert_eq!(frames.len(), total);
    }

    #[test]
    fn a_move_between_pages_of_one_chunk() {
        let mut frames = filled(M2, 10);
        frames.move_range(M2, M2 + 10 * PAGE, 10 * PAGE, false);
        assert_eq!(pages(&frames), (10..20).map(|page| M2 + page * PAGE).collect::<Vec<_>>());
        assert_eq!((frames.len(), frames.chunks.len()), (10, 1));
    }

    #[test]
    fn fork_copy_drops_zero_marks_and_empty_chunks() {
        let mut frames = filled(M2, 3);
        frames.mark_shared_page(M2);
        frames.mark_zero_page(M2 + 5 * PAGE);
        frames.mark_zero_page(7 * M2);
        let copy = frames.fork_copy();
        assert_eq!(pages(&copy), pages(&frames));
        assert_eq!((copy.len(), copy.chunks.len(), copy.zero_pages().count()), (3, 1, 0));
        assert!(copy.is_shared_page(M2));
        // Recording a frame for a zero page takes its mark away.
        frames.record(M2 + 5 * PAGE, PhysAddr(0x9000));
        assert!(!frames.is_zero_page(M2 + 5 * PAGE));
        assert_eq!(frames.len(), 4);
    }
}
