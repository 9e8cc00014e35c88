//! The kernel heap: `#[global_allocator]` over one contiguous run of frames.
//!
//! `talc`'s allocator: free blocks kept in lists binned by size, so that an
//! allocation or a release takes a few steps however many blocks are free
//! (a first-fit list walks every free block before a large enough one, and
//! the kernel's many small, long-lived blocks — B-tree nodes of region sets
//! and page records — make that walk long). Behind a spin lock taken with
//! interrupts off, so that an interrupt handler that allocates cannot
//! deadlock against the code it interrupted on this CPU.

use crate::arch::cpu::without_interrupts;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use spin::Mutex;
use talc::{ErrOnOom, Span, Talc};

/// The kernel's global allocator.
pub struct KernelHeap {
    heap: Mutex<Heap>,
}

/// The allocator and the memory it was given.
struct Heap {
    talc: Talc<ErrOnOom>,
    start: u64,
    size: usize,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap { heap: Mutex::new(Heap { talc: Talc::new(ErrOnOom), start: 0, size: 0 }) };

// SAFETY: `Talc` hands out disjoint blocks from memory it owns, and the lock
// serialises every use of it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `malloc` asks only for a layout; the memory is the heap's.
        without_interrupts(|| unsafe { self.heap.lock().talc.malloc(layout) }.map_or(ptr::null_mut(), NonNull::as_ptr))
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(block) else { return };
        // SAFETY: the caller returns a block this allocator gave out with this layout.
        without_interrupts(|| unsafe { self.heap.lock().talc.free(block, layout) })
    }
}

/// The heap's size and how much of it is in use, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStats {
    /// Start address of the heap (in the direct map).
    pub start: u64,
    /// Total size.
    pub size: usize,
    /// Bytes in allocated blocks (as asked for).
    pub used: usize,
    /// Bytes free to allocate.
    pub free: usize,
}

/// Gives the heap the memory `[start, start + size)`.
///
/// # Safety
/// The memory must be mapped, writable, unused by anything else and never
/// given to anyone else; call once.
pub unsafe fn init(start: u64, size: usize) {
    without_interrupts(|| {
        let mut heap = HEAP.heap.lock();
        assert_eq!(heap.size, 0, "the heap is initialised once");
        // SAFETY: the caller hands this memory over for good.
        let claimed = unsafe { heap.talc.claim(Span::from_base_size(start as *mut u8, size)) };
        assert!(claimed.is_ok(), "the heap's memory is large enough to hold the allocator's records");
        heap.start = start;
        heap.size = size;
    });
}

/// Current heap figures.
pub fn stats() -> HeapStats {
    without_interrupts(|| {
        let heap = HEAP.heap.lock();
        let counters = heap.talc.get_counters();
        HeapStats { start: heap.start, size: heap.size, used: counters.allocated_bytes, free: counters.available_bytes }
    })
}
