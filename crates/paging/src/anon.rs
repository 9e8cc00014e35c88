//! Anonymous memory: the frames an address space provides for the pages of
//! its anonymous regions ([`aspace::Protection::ANON`]), and their mapping.
//!
//! The space keeps its own record of which frame backs which page, a
//! B-tree keyed by the page's virtual address, rather than reading the
//! frame back from the leaf entry, because:
//! - a page whose region lost READ is unmapped (x86-64 has no present but
//!   unreadable page) yet must keep its contents for when READ comes back;
//! - [`crate::PagingAspace::verify`] needs a record independent of the
//!   tables to check them against;
//! - removal and destruction free exactly the recorded frames, whatever
//!   the tables say.
//!
//! Every lookup, insertion and removal is O(log n) in the pages owned.
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

use crate::entry::{LeafPermissions, PAGE};
use crate::error::PagingError;
use crate::file::FileBackings;
use crate::flush::FlushBatch;
use crate::machine::Machine;
use crate::object::ObjectBackings;
use crate::tables::PageTables;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};

/// The frames owned for anonymous pages, by virtual page.
#[derive(Debug, Default)]
pub(crate) struct AnonymousFrames {
    by_page: BTreeMap<u64, PhysAddr>,
    /// Pages shared writable with the spaces forked from this one (a
    /// `MAP_SHARED` anonymous mapping): never copied on write.
    shared_pages: BTreeSet<u64>,
    /// Pages read before they were ever written, which map the machine's
    /// zero frame read-only (see [`crate::Machine::zero_frame`]): they own
    /// no frame, and their first write maps a frame of their own.
    pub(crate) zero_pages: BTreeSet<u64>,
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
    /// pages shared on purpose, the same backings.
    pub(crate) fn fork_copy(&self) -> AnonymousFrames {
        AnonymousFrames {
            by_page: self.by_page.clone(),
            shared_pages: self.shared_pages.clone(),
            // The child maps nothing yet: its reads find the zero page again.
            zero_pages: BTreeSet::new(),
            files: self.files.fork_copy(),
            objects: self.objects.clone(),
            peak: self.by_page.len(),
        }
    }

    /// How many frames are owned.
    pub(crate) fn len(&self) -> usize {
        self.by_page.len()
    }

    /// The most frames owned at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.max(self.by_page.len())
    }

    /// Notes the frames owned now toward [`AnonymousFrames::peak`].
    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.by_page.len());
    }

    /// The frame backing the page at `page`, if it has one yet.
    pub(crate) fn get(&self, page: u64) -> Option<PhysAddr> {
        self.by_page.get(&page).copied()
    }

    /// Records that `frame` backs the page at `page` (the fault path maps
    /// it itself).
    pub(crate) fn record(&mut self, page: u64, frame: PhysAddr) {
        self.by_page.insert(page, frame);
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
        if perms.writable && !self.shared_pages.contains(&page) && machine.frame_is_shared(frame) {
            perms.read_only()
        } else {
            perms
        }
    }

    /// True when the page at `page` is shared writable on purpose (its
    /// frame is never copied on write).
    pub(crate) fn is_shared_page(&self, page: u64) -> bool {
        self.shared_pages.contains(&page)
    }

    /// Marks the page at `page` as shared writable on purpose.
    pub(crate) fn mark_shared_page(&mut self, page: u64) {
        self.shared_pages.insert(page);
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
        self.by_page.insert(page.0, copy);
        // SAFETY: this space's reference to the shared frame, whose page
        // now maps `copy`; the batch flushes the old translation first.
        unsafe { batch.free_after_flush(shared) };
        Ok(())
    }

    /// The (page, frame) pairs of the pages in `[va, last]`, in address order.
    pub(crate) fn iter_range(&self, va: u64, last: u64) -> impl Iterator<Item = (u64, PhysAddr)> + '_ {
        self.by_page.range(va..=last).map(|(&page, &frame)| (page, frame))
    }

    /// Every (page, frame) pair, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, PhysAddr)> + '_ {
        self.by_page.iter().map(|(&page, &frame)| (page, frame))
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
    /// touch fills the pages again from them.
    pub(crate) fn release_frames(&mut self, va: u64, last: u64, batch: &mut FlushBatch) {
        let zero: Vec<u64> = self.zero_pages.range(va..=last).copied().collect();
        for page in zero {
            self.zero_pages.remove(&page);
        }
        let shared: Vec<u64> = self.shared_pages.range(va..=last).copied().collect();
        for page in shared {
            self.shared_pages.remove(&page);
        }
        let pages: Vec<u64> = self.by_page.range(va..=last).map(|(&page, _)| page).collect();
        for page in pages {
            let frame = self.by_page.remove(&page).expect("the page was just found");
            // SAFETY: the space's own frame, now out of the record; the
            // caller unmapped its page in the same batch.
            unsafe { batch.free_after_flush(frame) };
        }
    }

    /// Moves the frames of the pages in `[from, from+len)` to the pages at
    /// the same offsets from `to` (which own none), with their shared
    /// marks; the old pages that mapped the zero page forget it. No
    /// reference changes hands. The caller unmapped the old pages in the
    /// same batch.
    pub(crate) fn move_range(&mut self, from: u64, to: u64, len: u64) {
        let last = from + (len - 1);
        let moving: Vec<(u64, PhysAddr)> =
            self.by_page.range(from..=last).map(|(&page, &frame)| (page, frame)).collect();
        let zero: Vec<u64> = self.zero_pages.range(from..=last).copied().collect();
        for page in zero {
            self.zero_pages.remove(&page);
        }
        for &(page, _) in &moving {
            self.by_page.remove(&page);
        }
        for (page, frame) in moving {
            let target = to + (page - from);
            self.by_page.insert(target, frame);
            if self.shared_pages.remove(&page) {
                self.shared_pages.insert(target);
            }
        }
    }

    /// Gives up every frame (the space is being destroyed), and forgets
    /// the file backings.
    pub(crate) fn release_all(&mut self, batch: &mut FlushBatch) {
        self.files.clear();
        self.objects.clear();
        self.shared_pages.clear();
        self.zero_pages.clear();
        for (_, frame) in core::mem::take(&mut self.by_page) {
            // SAFETY: the space's own frame, out of the record; the space is
            // being destroyed and the batch flushes it whole.
            unsafe { batch.free_after_flush(frame) };
        }
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
                self.by_page.insert(page.0, frame);
                // It mapped the zero page until now, if it was read first.
                self.zero_pages.remove(&page.0);
                self.note_peak();
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
                for (page, frame) in fresh {
                    self.by_page.remove(&page);
                    // SAFETY: allocated just now and never mapped, so no
                    // TLB can hold it.
                    unsafe { machine.free_frame(frame) };
                }
                return Err(PagingError::OutOfMemory);
            };
            self.files.fill(machine, page.0, frame);
            self.by_page.insert(page.0, frame);
            self.note_peak();
            fresh.push((page.0, frame));
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
                    for (page, frame) in fresh {
                        self.by_page.remove(&page);
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
