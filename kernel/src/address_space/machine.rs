//! The real hardware behind `paging::Machine`: frames from the kernel's
//! frame allocator, physical memory through the direct map, and TLB
//! invalidation and CR3 loads through the shootdown protocol of
//! [`crate::tlb`], which reaches every CPU that may hold a translation.

use crate::arch::cpu;
use crate::mem::frames;
use aspace::PhysAddr;
use paging::{Machine, PagingFeatures, SpaceId, TlbInvalidation};

/// CR3 bit 63: set on a CR3 load with PCIDs on to keep the PCID's entries.
const CR3_KEEP_TLB: u64 = 1 << 63;
/// CR3 bits 11:0 hold the PCID when CR4.PCIDE is set.
const CR3_PCID_MASK: u64 = 0xfff;

/// The zero frame (`Machine::zero_frame`): taken from the allocator on
/// first use and never given back, so never written or freed.
static ZERO_FRAME: spin::Once<Option<PhysAddr>> = spin::Once::new();

/// The machine Nacre runs on. A stateless handle: every method acts on the
/// hardware of the CPU that calls it (and, for invalidation, of the others).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelMachine;

// SAFETY: `read_u64` and `write_u64` reach physical memory through the
// direct map of all RAM that every address space the kernel runs in keeps
// (`check_can_enter` refuses one that does not), with volatile accesses
// that are neither elided nor moved past the `invlpg` or CR3 load that
// follows; `alloc_frame` hands out zeroed frames of the frame allocator,
// owned by the caller until freed; `share_frame` and `frame_is_shared`
// count a shared frame's references in the allocator, and `free_frame`
// gives up one, returning the frame with the last; `zero_frame` is a
// zeroed frame taken once and never freed, which nothing maps writable (the
// paging crate maps it read-only only); `invalidate` returns once every CPU
// that may hold the space's translations has dropped them (`tlb`'s
// shootdown); `load_root` writes this CPU's CR3 and `current_root` reads
// it; `features` reads what the boot code turned on, on every CPU.
unsafe impl Machine for KernelMachine {
    fn features(&self) -> PagingFeatures {
        let found = cpu::features();
        PagingFeatures {
            huge_1g: found.huge_1g,
            la57: cpu::la57_enabled(),
            pcid: cpu::pcid_enabled(),
            nx: cpu::nx_enabled(),
            phys_bits: found.phys_bits as u32,
        }
    }

    fn alloc_frame(&self) -> Option<PhysAddr> {
        frames::alloc_zeroed()
    }

    unsafe fn free_frame(&self, frame: PhysAddr) {
        if let Err(error) = frames::free(frame) {
            // A page-table frame freed twice is a bug in the paging code;
            // say so loudly rather than corrupt the allocator.
            panic!("page-table frame {frame:?} freed twice or never allocated: {error:?}");
        }
    }

    unsafe fn free_frames(&self, frames: &[PhysAddr]) {
        if let Err(error) = frames::free_all(frames) {
            panic!("a frame freed twice or never allocated: {error:?}");
        }
    }

    unsafe fn share_frame(&self, frame: PhysAddr, _copy_on_write: bool) -> bool {
        // The caller's reference keeps the frame allocated: refused only for
        // a frame the allocator does not know, which is a bug of the caller.
        frames::share(frame).is_ok()
    }

    unsafe fn share_frames(&self, frames: &[PhysAddr], _copy_on_write: bool) -> bool {
        // One taking of the allocator's lock for all of them.
        frames::share_all(frames).is_ok()
    }

    fn zero_frame(&self) -> Option<PhysAddr> {
        *ZERO_FRAME.call_once(frames::alloc_zeroed)
    }

    fn frame_is_shared(&self, frame: PhysAddr) -> bool {
        frames::is_shared(frame)
    }

    unsafe fn read_u64(&self, addr: PhysAddr) -> u64 {
        // SAFETY: the caller's contract: an aligned word of RAM it may read
        // (a page table, a frame it owns, a file's bytes); every address
        // space the kernel runs in holds the direct map of all RAM
        // (address_space::check_can_enter enforces it).
        unsafe { (crate::direct_map::phys_to_virt(addr.as_u64()) as *const u64).read_volatile() }
    }

    unsafe fn write_u64(&self, addr: PhysAddr, value: u64) {
        // SAFETY: as for `read_u64`, for a word of a table or frame the
        // caller owns; volatile so the store is neither elided nor moved
        // past the `invlpg` or CR3 load that follows it.
        unsafe { (crate::direct_map::phys_to_virt(addr.as_u64()) as *mut u64).write_volatile(value) }
    }

    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn invalidate(&self, space: SpaceId, what: TlbInvalidation<'_>) {
        // Locally if loaded here, and a shootdown to every other CPU that
        // has the space loaded; returns once all have flushed.
        crate::tlb::invalidate(space, what);
    }

    unsafe fn load_root(&self, space: SpaceId, keep_tlb: bool) {
        // Publishes this CPU as a holder of the space, then writes CR3.
        crate::tlb::load_root(space, keep_tlb);
    }

    fn current_root(&self) -> PhysAddr {
        PhysAddr::new(cpu::read_cr3() & !CR3_PCID_MASK & !CR3_KEEP_TLB)
    }
}
