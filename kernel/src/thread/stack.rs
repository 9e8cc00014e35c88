//! Thread stacks: a block from the heap with an unmapped guard page below
//! the stack, and the canary that backs the guard page up.
//!
//! The guard page is the lowest page of the block. When a block is made,
//! the address-space layer unmaps that page in the default address space and
//! in every hardened one, so a stack that runs off its bottom faults at
//! once, and the fault report names the thread ("stack overflow in thread
//! T"). Unmapping costs a page-table split and a TLB shootdown, and mapping
//! the page back when the thread exits would cost another (and fragment the
//! region set a little more each time), so blocks are never returned to the
//! heap: the stack of an exited thread is kept on a spare list and given to
//! the next thread that needs one of its size, guard page still unmapped.
//! Memory held by stacks is therefore the most ever in use at once.
//!
//! The lowest words of the stack itself hold a canary, checked by the
//! scheduler at every switch away from the thread: an overflow that skipped
//! the guard page (a large frame jumping over it) may still be caught there.

use crate::sync::IrqMutex;
use alloc::alloc::{alloc, Layout};
use alloc::vec::Vec;
use core::ptr::NonNull;

/// The usable size of a thread stack.
pub const THREAD_STACK_SIZE: usize = 64 * 1024;
/// The size of an idle thread's stack (it runs the idle loop and interrupt tails only).
pub const IDLE_STACK_SIZE: usize = 16 * 1024;
/// The unmapped page below each stack.
pub use crate::mem::guard::GUARD_SIZE;
/// The pattern of the canary words.
const CANARY: u64 = 0x57ac_c0de_dead_beef;
/// How many words at the bottom of the stack are checked at each switch.
pub const CANARY_WORDS: usize = 8;

/// Blocks of exited threads, waiting for reuse.
static SPARE_STACKS: IrqMutex<Vec<Stack>> = IrqMutex::new(Vec::new());

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
    /// A stack of `size` bytes (a multiple of 16) with its guard page
    /// unmapped: a spare one of that size if there is one, else a new block
    /// from the heap. Writes the canary. None when the heap is exhausted.
    pub fn new(size: usize) -> Option<Stack> {
        assert_eq!(size % 16, 0, "stack size must be a multiple of 16");
        let layout = Layout::from_size_align(GUARD_SIZE + size, GUARD_SIZE).ok()?;
        let stack = match take_spare(layout) {
            Some(stack) => stack,
            None => {
                // SAFETY: the layout has a non-zero size.
                let block = NonNull::new(unsafe { alloc(layout) })?;
                let stack = Stack { block, layout };
                register_guard_page(stack.guard_page());
                stack
            }
        };
        // SAFETY: the canary words are the lowest words of the stack, which
        // nobody uses yet.
        unsafe { write_canary(stack.canary_address()) };
        Some(stack)
    }

    /// The address of the guard page.
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

    /// Where the checked canary words start: the bottom of the stack, right
    /// above the guard page (which is unmapped, so it cannot hold them).
    pub fn canary_address(&self) -> u64 {
        self.bottom()
    }
}

impl Drop for Stack {
    /// Keeps the block for the next stack of its size (see the module
    /// documentation). Runs with interrupts off in the scheduler, so it only
    /// moves the value; the spare list's storage was reserved when the
    /// block was made.
    fn drop(&mut self) {
        let spare = Stack { block: self.block, layout: self.layout };
        let mut spares = SPARE_STACKS.lock();
        if spares.len() < spares.capacity() {
            spares.push(spare);
        } else {
            // Cannot happen (room is reserved per block); keep the memory
            // reserved rather than allocate here.
            core::mem::forget(spare);
        }
    }
}

/// A spare stack block of exactly `layout`, if one is waiting.
fn take_spare(layout: Layout) -> Option<Stack> {
    let mut spares = SPARE_STACKS.lock();
    let index = spares.iter().position(|spare| spare.layout == layout)?;
    Some(spares.swap_remove(index))
}

/// Records `page` as a guard page (a new block's, or the page below a
/// stack that is not a block, like the boot stack) in the registry (which
/// tells the address-space layer), and reserves room on the spare list for
/// the block, so that [`Stack`]'s drop never allocates.
pub fn register_guard_page(page: u64) {
    let blocks = crate::mem::guard::record(page);
    let mut spares = SPARE_STACKS.lock();
    let room = blocks.saturating_sub(spares.len());
    spares.reserve(room);
}

/// How many stack blocks wait on the spare list.
#[cfg(feature = "ktest")]
pub fn spare_count() -> usize {
    SPARE_STACKS.lock().len()
}

/// Writes the canary words at `address`.
///
/// # Safety
/// `[address, address + CANARY_WORDS * 8)` must be writable memory no one
/// else uses (the lowest words of a stack that has not grown that far).
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
