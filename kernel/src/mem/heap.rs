//! The kernel heap: `#[global_allocator]` over one contiguous run of frames.
//!
//! A first-fit free list (`linked_list_allocator`) behind a spin lock; the
//! lock is taken with interrupts off so that an interrupt handler that
//! allocates cannot deadlock against the code it interrupted on this CPU.

use crate::arch::cpu::without_interrupts;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;
use spin::Mutex;

/// The kernel's global allocator.
pub struct KernelHeap {
    heap: Mutex<Heap>,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap { heap: Mutex::new(Heap::empty()) };

// SAFETY: `Heap` hands out disjoint blocks from memory it owns, and the lock
// serialises every use of it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        without_interrupts(|| self.heap.lock().allocate_first_fit(layout).map_or(ptr::null_mut(), NonNull::as_ptr))
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(block) else { return };
        // SAFETY: the caller returns a block this allocator gave out with this layout.
        without_interrupts(|| unsafe { self.heap.lock().deallocate(block, layout) })
    }
}

/// The heap's size and how much of it is in use, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStats {
    /// Start address of the heap (in the direct map).
    pub start: u64,
    /// Total size.
    pub size: usize,
    /// Bytes in allocated blocks (with the allocator's rounding).
    pub used: usize,
    /// Bytes free.
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
        assert_eq!(heap.size(), 0, "the heap is initialised once");
        // SAFETY: the caller hands this memory over for good.
        unsafe { heap.init(start as *mut u8, size) };
    });
}

/// Current heap figures.
pub fn stats() -> HeapStats {
    without_interrupts(|| {
        let heap = HEAP.heap.lock();
        HeapStats { start: heap.bottom() as u64, size: heap.size(), used: heap.used(), free: heap.free() }
    })
}
