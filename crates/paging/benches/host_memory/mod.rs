//! Simulated physical memory for the benchmarks: one host allocation that
//! both page-table implementations keep their tables in.
//!
//! Physical address `p` is the byte at `base + p` of the allocation, so
//! Nacre reaches it through [`Machine::read_u64`]/[`Machine::write_u64`] and
//! the `x86_64` crate's `OffsetPageTable` through its physical-memory
//! offset, which is the allocation's host address. Frames come from one
//! pool (a bump pointer and a free list) for both, so both trees do the
//! same memory traffic on the same cache lines.
//!
//! There is no TLB on the host: [`Machine::invalidate`] only counts, and
//! the peer's flush tokens are ignored.

use aspace::PhysAddr;
use core::cell::{Cell, RefCell};
use paging::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PageTable, PhysFrame, Size4KiB};

/// The size of a frame, and of a page table.
pub const FRAME: u64 = 4096;

/// What the benchmarks tell both implementations about the CPU: 4-level
/// paging with NX and 1 GiB pages, as on the machine the figures come from.
const FEATURES: PagingFeatures = PagingFeatures { huge_1g: true, la57: false, pcid: false, nx: true, phys_bits: 46 };

/// The simulated physical memory and its frame pool.
pub struct HostMemory {
    base: *mut u8,
    layout: Layout,
    /// The next never-used frame (a physical address).
    bump: Cell<u64>,
    /// Frames given back, reused first.
    free: RefCell<Vec<u64>>,
    /// Single-page invalidations asked for.
    pages_invalidated: Cell<u64>,
    /// Full invalidations asked for.
    full_flushes: Cell<u64>,
    current_root: Cell<PhysAddr>,
}

impl HostMemory {
    /// `bytes` of zeroed simulated physical memory (a multiple of 2 MiB).
    pub fn new(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes, 2 << 20).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        assert!(!base.is_null(), "cannot allocate {bytes} bytes of simulated memory");
        let memory = HostMemory {
            base,
            layout,
            // Frame 0 stays unused, as a null physical address should.
            bump: Cell::new(FRAME),
            free: RefCell::new(Vec::new()),
            pages_invalidated: Cell::new(0),
            full_flushes: Cell::new(0),
            current_root: Cell::new(PhysAddr(0)),
        };
        // Touch every page now, so that no benchmark pays the host's page faults.
        for offset in (0..bytes).step_by(FRAME as usize) {
            // SAFETY: `offset` is inside the allocation.
            unsafe { base.add(offset).write_volatile(0) };
        }
        memory
    }

    /// The host address of physical address 0: the peer's physical-memory offset.
    pub fn host_offset(&self) -> u64 {
        self.base as u64
    }

    /// Forgets every frame handed out: every tree built so far is gone.
    /// Frames are zeroed again when handed out (Nacre) or by the peer
    /// itself when it installs a table.
    pub fn reset(&self) {
        self.bump.set(FRAME);
        self.free.borrow_mut().clear();
    }

    /// Frames handed out and not given back.
    pub fn frames_in_use(&self) -> u64 {
        self.bump.get() / FRAME - 1 - self.free.borrow().len() as u64
    }

    /// (single-page invalidations, full invalidations) asked for so far.
    pub fn invalidations(&self) -> (u64, u64) {
        (self.pages_invalidated.get(), self.full_flushes.get())
    }

    /// A frame, not zeroed.
    fn take_frame(&self) -> Option<u64> {
        if let Some(frame) = self.free.borrow_mut().pop() {
            return Some(frame);
        }
        let frame = self.bump.get();
        if frame + FRAME > self.layout.size() as u64 {
            return None;
        }
        self.bump.set(frame + FRAME);
        Some(frame)
    }

    /// The host pointer to the 8-byte word at physical address `addr`.
    fn word(&self, addr: PhysAddr) -> *mut u64 {
        assert!(
            addr.0 + 8 <= self.layout.size() as u64 && addr.0.is_multiple_of(8),
            "{:#x} is not simulated memory",
            addr.0
        );
        // SAFETY: checked above: the word is inside the allocation.
        unsafe { self.base.add(addr.0 as usize).cast::<u64>() }
    }

    /// A zeroed root table for the peer. The caller turns it into the
    /// `&mut PageTable` the peer's mapper owns, and must drop that mapper
    /// before [`HostMemory::reset`] hands the frame out again.
    pub fn new_peer_root(&self) -> *mut PageTable {
        let frame = self.take_frame().expect("simulated memory for a root table");
        let table = self.word(PhysAddr(frame)).cast::<PageTable>();
        // SAFETY: the frame is inside the allocation, 4 KiB-aligned and 4 KiB long.
        unsafe { table.write_bytes(0, 1) };
        table
    }

    /// The frame allocator the peer's mapper takes.
    pub fn peer_frames(&self) -> PeerFrames<'_> {
        PeerFrames(self)
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) };
    }
}

// SAFETY: `read_u64` and `write_u64` reach the word at offset `addr` of the
// allocation, which `word` checks is inside it (and they touch nothing
// else); `alloc_frame` hands out zeroed frames of the allocation that it
// hands to no one else until they are given back (or the benchmarks reset
// the pool, after dropping every tree built on it); there is no TLB, so
// `invalidate` has nothing to drop, and `load_root`/`current_root` keep
// the root a CPU would use.
unsafe impl Machine for HostMemory {
    fn features(&self) -> PagingFeatures {
        FEATURES
    }

    fn alloc_frame(&self) -> Option<PhysAddr> {
        let frame = self.take_frame()?;
        // SAFETY: the frame is inside the allocation and 4 KiB long.
        unsafe { self.word(PhysAddr(frame)).cast::<u8>().write_bytes(0, FRAME as usize) };
        Some(PhysAddr(frame))
    }

    unsafe fn free_frame(&self, frame: PhysAddr) {
        self.free.borrow_mut().push(frame.0);
    }

    unsafe fn read_u64(&self, addr: PhysAddr) -> u64 {
        // SAFETY: `word` checked the address; plain memory, aligned.
        unsafe { self.word(addr).read() }
    }

    unsafe fn write_u64(&self, addr: PhysAddr, value: u64) {
        // SAFETY: `word` checked the address; plain memory, aligned.
        unsafe { self.word(addr).write(value) }
    }

    fn invalidate(&self, _space: SpaceId, what: TlbInvalidation<'_>) {
        match what {
            TlbInvalidation::Pages(pages) => {
                self.pages_invalidated.set(self.pages_invalidated.get() + pages.len() as u64)
            }
            TlbInvalidation::All => self.full_flushes.set(self.full_flushes.get() + 1),
        }
    }

    unsafe fn load_root(&self, space: SpaceId, _keep_tlb: bool) {
        self.current_root.set(space.root);
    }

    fn current_root(&self) -> PhysAddr {
        self.current_root.get()
    }
}

/// The pool as the `x86_64` crate's frame allocator (and deallocator, for
/// freeing empty tables). Its mapper zeroes the tables it creates, so
/// frames are handed out as they are.
pub struct PeerFrames<'m>(&'m HostMemory);

// SAFETY: every frame handed out is inside the simulated memory and unused
// until the pool is reset, which the benchmarks do only after dropping
// every mapper built on it.
unsafe impl FrameAllocator<Size4KiB> for PeerFrames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let frame = self.0.take_frame()?;
        Some(PhysFrame::containing_address(x86_64::PhysAddr::new(frame)))
    }
}

impl FrameDeallocator<Size4KiB> for PeerFrames<'_> {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        self.0.free.borrow_mut().push(frame.start_address().as_u64());
    }
}
