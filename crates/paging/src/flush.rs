//! What an edit of the tables leaves for the TLBs to forget, and the frames
//! it freed, held until they have forgotten.
//!
//! The rules (Intel SDM vol. 3 §4.10.4), as [`FlushBatch`] applies them:
//! - not present → present adds nothing: the TLB never caches a miss;
//! - a pure permission increase (a page becoming writable or executable)
//!   adds nothing: a CPU holding the old entry takes at most one spurious
//!   fault, which the fault handler recognises and retries;
//! - unmap, a permission decrease, a new physical address or a new page
//!   size add the page (one address per page, whatever its size: `invlpg`
//!   drops every size of translation for the address, and the
//!   paging-structure caches).
//!
//! Past [`SINGLE_PAGE_FLUSH_CEILING`] pages, one flush of everything is
//! cheaper than that many single-page flushes.

use crate::machine::{Machine, SpaceId, TlbInvalidation};
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};

/// Above this many pages, a batch flushes the whole address space instead.
///
/// Chosen by measurement (the kernel's `bench tlb_flush`, see
/// docs/PERFORMANCE.md): under QEMU's TCG, dropping `n` pages one `invlpg`
/// at a time and touching them again costs about 220 ns a page, a full flush
/// and the same touches about 3.5 µs plus 80 ns a page, and the full flush
/// also makes the kernel's own translations miss afterwards; the two cross
/// between 16 and 32 pages. Linux flushes page by page up to 33 pages
/// (`tlb_single_page_flush_ceiling`), measured on hardware.
pub const SINGLE_PAGE_FLUSH_CEILING: usize = 16;

/// The invalidations an edit requires, and the frames it freed.
///
/// The frames (page tables that became empty) may still be reached by a
/// stale paging-structure-cache entry until the invalidation is done, so
/// the batch owns them and returns them to the machine only in
/// [`FlushBatch::apply`], after invalidating. Dropping a batch without
/// applying it leaks those frames and leaves stale translations: hence
/// `#[must_use]`.
#[must_use = "the TLBs still hold the old translations until the batch is applied"]
#[derive(Debug)]
pub struct FlushBatch {
    /// The pages to invalidate: the first `page_count` entries. Held in
    /// place, not on the heap, so that an edit of a few pages (a fault, a
    /// one-page protect) allocates nothing for its flush.
    pages: [VirtAddr; SINGLE_PAGE_FLUSH_CEILING],
    page_count: usize,
    everything: bool,
    freed_frames: Vec<PhysAddr>,
}

impl Default for FlushBatch {
    fn default() -> Self {
        FlushBatch::new()
    }
}

impl PartialEq for FlushBatch {
    /// Two batches are equal when they invalidate the same and free the same
    /// frames (what lies past `page_count` does not count).
    fn eq(&self, other: &Self) -> bool {
        self.pages() == other.pages() && self.everything == other.everything && self.freed_frames == other.freed_frames
    }
}

impl Eq for FlushBatch {}

/// What applying a batch did, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushSummary {
    /// Single-page invalidations issued.
    pub pages_invalidated: u64,
    /// Full invalidations issued (0 or 1).
    pub full_flushes: u64,
    /// Frames returned to the machine.
    pub frames_freed: u64,
}

impl FlushBatch {
    /// A batch with nothing to do.
    pub const fn new() -> Self {
        FlushBatch {
            pages: [VirtAddr(0); SINGLE_PAGE_FLUSH_CEILING],
            page_count: 0,
            everything: false,
            freed_frames: Vec::new(),
        }
    }

    /// Adds the page holding `va` (any page size). Past the ceiling the
    /// batch becomes a full flush.
    pub fn add_page(&mut self, va: VirtAddr) {
        if self.everything {
            return;
        }
        if self.page_count == SINGLE_PAGE_FLUSH_CEILING {
            self.flush_everything();
        } else {
            self.pages[self.page_count] = va;
            self.page_count += 1;
        }
    }

    /// Makes the batch flush the whole address space.
    pub fn flush_everything(&mut self) {
        self.everything = true;
        self.page_count = 0;
    }

    /// Hands a frame that left the tables to the batch, to be freed after the flush.
    ///
    /// # Safety
    /// The caller owns `frame` (it came from the `alloc_frame` of the
    /// machine the batch will be applied with), no table links to it any
    /// more, and once the batch's invalidation is done (in the spaces it is
    /// applied to) nothing can reach it: [`Machine::free_frame`]'s contract,
    /// met at [`FlushBatch::apply`].
    pub unsafe fn free_after_flush(&mut self, frame: PhysAddr) {
        self.freed_frames.push(frame);
    }

    /// Adds everything `other` holds to this batch.
    pub fn merge(&mut self, other: FlushBatch) {
        if other.everything {
            self.flush_everything();
        }
        for &page in other.pages() {
            self.add_page(page);
        }
        self.freed_frames.extend(other.freed_frames);
    }

    /// True when nothing needs invalidating and no frame is held.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.page_count == 0 && self.freed_frames.is_empty()
    }

    /// The single pages to invalidate (empty when [`FlushBatch::flushes_everything`]).
    pub fn pages(&self) -> &[VirtAddr] {
        &self.pages[..self.page_count]
    }

    /// True when the batch flushes the whole address space.
    pub fn flushes_everything(&self) -> bool {
        self.everything
    }

    /// The frames freed once the flush is done.
    pub fn freed_frames(&self) -> &[PhysAddr] {
        &self.freed_frames
    }

    /// Invalidates what the edit requires in every TLB that may hold
    /// `space` (through [`Machine::invalidate`]), then frees the frames.
    pub fn apply<M: Machine + ?Sized>(mut self, machine: &M, space: SpaceId) -> FlushSummary {
        self.apply_in_place(machine, space)
    }

    /// [`FlushBatch::apply`] without giving up the batch, which is left
    /// empty. For a caller that keeps its batch where it is: a batch is 168
    /// bytes, and each move of one is a copy on the edit's path.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub fn apply_in_place<M: Machine + ?Sized>(&mut self, machine: &M, space: SpaceId) -> FlushSummary {
        let mut summary = FlushSummary::default();
        if self.everything {
            machine.invalidate(space, TlbInvalidation::All);
            summary.full_flushes = 1;
        } else if self.page_count > 0 {
            machine.invalidate(space, TlbInvalidation::Pages(self.pages()));
            summary.pages_invalidated = self.page_count as u64;
        }
        summary.frames_freed = self.free_frames(machine);
        self.everything = false;
        self.page_count = 0;
        summary
    }

    /// Frees the frames, once the invalidation is done. Returns how many.
    #[inline(always)]
    fn free_frames<M: Machine + ?Sized>(&mut self, machine: &M) -> u64 {
        let freed = self.freed_frames.len() as u64;
        if freed > 0 {
            // SAFETY: `free_after_flush`'s contract: each frame is owned and
            // unlinked, and the invalidation just done dropped what could
            // still reach it.
            unsafe { machine.free_frames(&self.freed_frames) };
            self.freed_frames.clear();
        }
        freed
    }

    /// [`FlushBatch::apply`] for an edit of tables that several spaces
    /// share (a [`crate::KernelHalf`]): invalidates in every one of
    /// `spaces`, then frees the frames.
    pub fn apply_to_each<M: Machine + ?Sized>(mut self, machine: &M, spaces: &[SpaceId]) -> FlushSummary {
        let mut summary = FlushSummary::default();
        for &space in spaces {
            if self.everything {
                machine.invalidate(space, TlbInvalidation::All);
                summary.full_flushes += 1;
            } else if self.page_count > 0 {
                machine.invalidate(space, TlbInvalidation::Pages(self.pages()));
                summary.pages_invalidated += self.page_count as u64;
            }
        }
        summary.frames_freed = self.free_frames(machine);
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_up_to_the_ceiling_then_everything() {
        let mut batch = FlushBatch::new();
        assert!(batch.is_empty());
        for i in 0..SINGLE_PAGE_FLUSH_CEILING as u64 {
            batch.add_page(VirtAddr(i << 12));
        }
        assert_eq!(batch.pages().len(), SINGLE_PAGE_FLUSH_CEILING);
        assert!(!batch.flushes_everything());
        batch.add_page(VirtAddr(0xdead_0000));
        assert!(batch.flushes_everything());
        assert!(batch.pages().is_empty());
        batch.add_page(VirtAddr(0));
        assert!(batch.pages().is_empty() && !batch.is_empty());
    }

    #[test]
    fn merge_keeps_frames_and_pages() {
        let mut a = FlushBatch::new();
        a.add_page(VirtAddr(0x1000));
        let mut b = FlushBatch::new();
        b.add_page(VirtAddr(0x2000));
        // SAFETY: the batch is never applied: nothing is freed.
        unsafe { b.free_after_flush(PhysAddr(0x5000)) };
        a.merge(b);
        assert_eq!(a.pages(), &[VirtAddr(0x1000), VirtAddr(0x2000)]);
        assert_eq!(a.freed_frames(), &[PhysAddr(0x5000)]);
        let mut all = FlushBatch::new();
        all.flush_everything();
        a.merge(all);
        assert!(a.flushes_everything() && a.pages().is_empty());
        assert_eq!(a.freed_frames().len(), 1);
        core::mem::drop(a);
    }
}
