//! The real hardware behind `paging::Machine`: frames from the kernel's
//! frame allocator, physical memory through the identity map, `invlpg` and
//! CR3 on this CPU.

use crate::arch::cpu;
use crate::mem::frames;
use aspace::{PhysAddr, VirtAddr};
use paging::{Machine, PagingFeatures, SpaceId, TlbInvalidation};

/// CR3 bit 63: on a CR3 load with PCIDs on, keep the new PCID's TLB entries.
const CR3_KEEP_TLB: u64 = 1 << 63;
/// CR3 bits 11:0 hold the PCID when CR4.PCIDE is set.
const CR3_PCID_MASK: u64 = 0xfff;

/// The machine Nacre runs on. A stateless handle: every method acts on the
/// hardware of the CPU that calls it.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelMachine;

impl Machine for KernelMachine {
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

    fn free_frame(&self, frame: PhysAddr) {
        if let Err(error) = frames::free(frame) {
            // A page-table frame freed twice is a bug in the paging code;
            // say so loudly rather than corrupt the allocator.
            panic!("page-table frame {frame:?} freed twice or never allocated: {error:?}");
        }
    }

    fn read_u64(&self, addr: PhysAddr) -> u64 {
        // SAFETY: page-table frames and the physical memory the paging code
        // reads are RAM that every address space the kernel runs in maps
        // identically (address_space::check_can_enter enforces it), and the
        // address is 8-byte aligned by the caller's contract.
        unsafe { (addr.as_u64() as *const u64).read_volatile() }
    }

    fn write_u64(&self, addr: PhysAddr, value: u64) {
        // SAFETY: as for `read_u64`; volatile so the store is neither elided
        // nor moved past the `invlpg` or CR3 load that follows it.
        unsafe { (addr.as_u64() as *mut u64).write_volatile(value) }
    }

    fn invalidate(&self, space: SpaceId, what: TlbInvalidation<'_>) {
        // Only this CPU can hold the space's translations until SMP
        // shootdowns exist; a space that is not loaded here has nothing
        // cached (no PCIDs are kept across switches without PCID support).
        if self.current_root() != space.root {
            return;
        }
        match what {
            TlbInvalidation::Pages(pages) => pages.iter().for_each(|page: &VirtAddr| cpu::invlpg(page.as_u64())),
            TlbInvalidation::All => {
                let cr3 = cpu::read_cr3();
                // SAFETY: reloading the same root keeps every mapping the
                // kernel is using; only the TLB contents change.
                unsafe { cpu::write_cr3(cr3 & !CR3_KEEP_TLB) };
            }
        }
    }

    fn load_root(&self, space: SpaceId, keep_tlb: bool) {
        let mut value = space.root.as_u64();
        if let Some(pcid) = space.pcid.filter(|_| cpu::pcid_enabled()) {
            value |= pcid as u64 & CR3_PCID_MASK;
            if keep_tlb {
                value |= CR3_KEEP_TLB;
            }
        }
        // SAFETY: address spaces are entered only after check_can_enter has
        // shown that they map the kernel image, heap, stacks and all RAM.
        unsafe { cpu::write_cr3(value) };
    }

    fn current_root(&self) -> PhysAddr {
        PhysAddr::new(cpu::read_cr3() & !CR3_PCID_MASK & !CR3_KEEP_TLB)
    }
}
