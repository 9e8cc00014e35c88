//! Thread stacks: a block from the heap with a guard page below the stack,
//! and the canary that stands in for that guard page.
//!
//! The guard page is reserved (the stack never uses it) but still mapped:
//! the boot identity map offers no way to unmap one page. Until the paging
//! layer can, the whole guard page is filled with a canary pattern and the
//! scheduler checks its top words at every switch away from the thread: a
//! stack that grew into the guard page overwrote them first.

use alloc::alloc::{alloc, dealloc, Layout};
use core::ptr::NonNull;

/// The usable size of a thread stack.
pub const THREAD_STACK_SIZE: usize = 64 * 1024;
/// The size of an idle thread's stack (it runs the idle loop and interrupt tails only).
pub const IDLE_STACK_SIZE: usize = 16 * 1024;
/// The reserved page below each stack.
pub const GUARD_SIZE: usize = 4096;
/// The pattern the guard page is filled with.
const CANARY: u64 = 0x57ac_c0de_dead_beef;
/// How many words next to the stack are checked at each switch.
pub const CANARY_WORDS: usize = 8;

/// A thread's stack: `[guard page][stack]`, lowest address first.
pub struct Stack {
    block: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the stack is plain memory owned by this value.
unsafe impl Send for Stack {}
// SAFETY: `Stack` hands out addresses only, never references into the memory.
unsafe impl Sync for Stack {}

impl Stack {
    /// Allocates a stack of `size` bytes (a multiple of 16) with its guard
    /// page, and fills the guard page with the canary. None when the heap is
    /// exhausted.
    pub fn new(size: usize) -> Option<Stack> {
        assert_eq!(size % 16, 0, "stack size must be a multiple of 16");
        let layout = Layout::from_size_align(GUARD_SIZE + size, GUARD_SIZE).ok()?;
        // SAFETY: the layout has a non-zero size.
        let block = NonNull::new(unsafe { alloc(layout) })?;
        let stack = Stack { block, layout };
        for index in 0..GUARD_SIZE / 8 {
            // SAFETY: the guard page is the first page of the block just allocated.
            unsafe { (stack.guard_page() as *mut u64).add(index).write(CANARY) };
        }
        Some(stack)
    }

    /// The address of the guard page (to unmap once page tables can be edited).
    pub fn guard_page(&self) -> u64 {
        self.block.as_ptr() as u64
    }

    /// The lowest address the stack may use.
    pub fn bottom(&self) -> u64 {
        self.guard_page() + GUARD_SIZE as u64
    }

    /// The initial stack pointer (16-byte aligned, one past the highest byte).
    pub fn top(&self) -> u64 {
        self.guard_page() + self.layout.size() as u64
    }

    /// Where the checked canary words start: the top of the guard page,
    /// right below the stack.
    pub fn canary_address(&self) -> u64 {
        self.bottom() - (CANARY_WORDS * 8) as u64
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the block was allocated in `new` with this layout.
        unsafe { dealloc(self.block.as_ptr(), self.layout) };
    }
}

/// Writes the canary words at `address`.
///
/// # Safety
/// `[address, address + CANARY_WORDS * 8)` must be writable memory no one
/// else uses (the guard page, or the lowest words of a stack that has not
/// grown that far).
pub unsafe fn write_canary(address: u64) {
    for index in 0..CANARY_WORDS {
        // SAFETY: the caller guarantees the words are writable and unused.
        unsafe { (address as *mut u64).add(index).write_volatile(CANARY) };
    }
}

/// True when the canary words at `address` are all intact.
///
/// # Safety
/// `[address, address + CANARY_WORDS * 8)` must be readable.
pub unsafe fn canary_intact(address: u64) -> bool {
    // SAFETY: the caller guarantees the words are readable.
    (0..CANARY_WORDS).all(|index| unsafe { (address as *const u64).add(index).read_volatile() } == CANARY)
}
