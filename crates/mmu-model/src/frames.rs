//! The frame allocator behind [`paging::Machine::alloc_frame`]: 4 KiB frames
//! from a pool of physical memory, with failure injection.

use crate::hash::FastSet;
use core::ops::Range;

/// Why a frame could not be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreeError {
    /// The address is not a 4 KiB-aligned frame of the pool.
    NotFromPool,
    /// The frame is not allocated (freed twice, or never handed out).
    NotAllocated,
}

/// A pool of 4 KiB frames.
pub(crate) struct FramePool {
    pool: Range<u64>,
    /// The lowest frame never handed out yet.
    next_untouched: u64,
    /// Frames freed and ready for reuse (most recently freed first out).
    free_list: Vec<u64>,
    in_use: FastSet<u64>,
    /// References beyond the first, for shared frames.
    extra_references: std::collections::BTreeMap<u64, u32>,
    /// The shared frames that every holder may write (shared mappings);
    /// the others are shared copy-on-write and must not be written.
    shared_writable: std::collections::BTreeSet<u64>,
    /// `alloc_frame` calls so far, failed ones included.
    allocations: u64,
    /// The allocation call (counted from `allocations`) that is to fail.
    fail_at: Option<u64>,
}

impl FramePool {
    /// A pool handing out the frames of `pool` (rounded inwards to 4 KiB).
    pub(crate) fn new(pool: Range<u64>) -> FramePool {
        let start = pool.start.next_multiple_of(4096);
        let end = pool.end & !0xfff;
        FramePool {
            pool: start..end.max(start),
            next_untouched: start,
            free_list: Vec::new(),
            in_use: FastSet::default(),
            extra_references: std::collections::BTreeMap::new(),
            shared_writable: std::collections::BTreeSet::new(),
            allocations: 0,
            fail_at: None,
        }
    }

    /// A free frame, or `None` if the pool is exhausted or this allocation
    /// was chosen to fail.
    pub(crate) fn allocate(&mut self) -> Option<u64> {
        let this_call = self.allocations;
        self.allocations += 1;
        if self.fail_at == Some(this_call) {
            self.fail_at = None;
            return None;
        }
        let frame = match self.free_list.pop() {
            Some(frame) => frame,
            None if self.next_untouched < self.pool.end => {
                self.next_untouched += 4096;
                self.next_untouched - 4096
            }
            None => return None,
        };
        self.in_use.insert(frame);
        Some(frame)
    }

    /// Gives up one reference to `frame`: `Ok(true)` when it was the last
    /// and the frame is back in the pool, `Ok(false)` when others remain.
    pub(crate) fn free(&mut self, frame: u64) -> Result<bool, FreeError> {
        if !self.pool.contains(&frame) || !frame.is_multiple_of(4096) {
            return Err(FreeError::NotFromPool);
        }
        if !self.in_use.contains(&frame) {
            return Err(FreeError::NotAllocated);
        }
        if let Some(extra) = self.extra_references.get_mut(&frame) {
            *extra -= 1;
            if *extra == 0 {
                self.extra_references.remove(&frame);
            }
            return Ok(false);
        }
        self.in_use.remove(&frame);
        self.shared_writable.remove(&frame);
        self.free_list.push(frame);
        Ok(true)
    }

    /// Adds a reference to an allocated frame, shared copy-on-write or
    /// writable by every holder.
    pub(crate) fn share(&mut self, frame: u64, copy_on_write: bool) -> Result<(), FreeError> {
        if !self.in_use.contains(&frame) {
            return Err(FreeError::NotAllocated);
        }
        *self.extra_references.entry(frame).or_insert(0) += 1;
        if !copy_on_write {
            self.shared_writable.insert(frame);
        }
        Ok(())
    }

    /// True when `frame` has more than one reference and is shared
    /// copy-on-write: no write may reach it.
    pub(crate) fn is_shared_copy_on_write(&self, frame: u64) -> bool {
        self.is_shared(frame) && !self.shared_writable.contains(&(frame & !0xfff))
    }

    /// True when `frame` has more than one reference.
    pub(crate) fn is_shared(&self, frame: u64) -> bool {
        self.extra_references.contains_key(&(frame & !0xfff))
    }

    /// Makes the `n`-th allocation from now (0 = the next one) fail, once;
    /// `None` cancels.
    pub(crate) fn fail_nth(&mut self, n: Option<u64>) {
        self.fail_at = n.map(|n| self.allocations + n);
    }

    /// True when `addr` lies in a frame of the pool that is not allocated:
    /// touching it is a use after free (or of memory never handed out).
    pub(crate) fn is_free_pool_memory(&self, addr: u64) -> bool {
        self.pool.contains(&addr) && !self.in_use.contains(&(addr & !0xfff))
    }

    /// Frames allocated and not yet freed.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// `alloc_frame` calls so far.
    pub(crate) fn allocations(&self) -> u64 {
        self.allocations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_reuses_and_refuses() {
        let mut pool = FramePool::new(0x10_0000..0x10_3000);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        let c = pool.allocate().unwrap();
        assert_eq!([a, b, c], [0x10_0000, 0x10_1000, 0x10_2000]);
        assert_eq!(pool.allocate(), None, "the pool holds three frames");
        assert_eq!(pool.in_use(), 3);
        assert_eq!(pool.free(b), Ok(true));
        assert_eq!(pool.free(b), Err(FreeError::NotAllocated));
        assert_eq!(pool.free(0x20_0000), Err(FreeError::NotFromPool));
        assert_eq!(pool.free(a + 8), Err(FreeError::NotFromPool));
        assert!(pool.is_free_pool_memory(b + 16));
        assert!(!pool.is_free_pool_memory(a));
        assert!(!pool.is_free_pool_memory(0x20_0000));
        assert_eq!(pool.allocate(), Some(b));
        assert_eq!(pool.allocations(), 5);
    }

    #[test]
    fn injected_failure_hits_exactly_the_chosen_call_once() {
        let mut pool = FramePool::new(0x10_0000..0x20_0000);
        pool.fail_nth(Some(2));
        assert!(pool.allocate().is_some());
        assert!(pool.allocate().is_some());
        assert!(pool.allocate().is_none());
        assert!(pool.allocate().is_some());
        pool.fail_nth(Some(0));
        pool.fail_nth(None);
        assert!(pool.allocate().is_some());
        assert_eq!(pool.in_use(), 4);
    }
}
