//! The narrow interface between the paging code and the hardware.
//!
//! Everything the paging code needs from a machine: frames for page tables,
//! reading and writing 64-bit words of physical memory (the entries), TLB
//! invalidation and loading the root table. The kernel implements it with
//! real instructions; `mmu-model` implements it in software, with TLBs that
//! keep stale translations until told to drop them.

use aspace::{PhysAddr, VirtAddr, VirtWidth};

/// The CPU features the paging code adapts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingFeatures {
    /// 1 GiB pages (CPUID.80000001H:EDX.Page1GB).
    pub huge_1g: bool,
    /// 5-level paging is on (CR4.LA57): 57-bit virtual addresses.
    pub la57: bool,
    /// Process-context identifiers (CR4.PCIDE can be set).
    pub pcid: bool,
    /// Execute-disable (EFER.NXE is on): the NX bit may be used.
    pub nx: bool,
    /// MAXPHYADDR: the physical address width (CPUID.80000008H:EAX bits 7:0).
    pub phys_bits: u32,
}

impl PagingFeatures {
    /// The virtual-address width that follows from `la57`.
    pub const fn virt_width(&self) -> VirtWidth {
        if self.la57 {
            VirtWidth::Bits57
        } else {
            VirtWidth::Bits48
        }
    }

    /// How many levels of tables a walk goes through (4 or 5).
    pub const fn levels(&self) -> u8 {
        if self.la57 {
            5
        } else {
            4
        }
    }
}

/// Which address space a TLB operation is about: its root table and, when
/// PCIDs are in use, its PCID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpaceId {
    /// Physical address of the root table (what CR3 holds).
    pub root: PhysAddr,
    /// The PCID the address space runs under, if PCIDs are in use.
    pub pcid: Option<u16>,
}

/// What to drop from the TLBs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbInvalidation<'a> {
    /// The translations of these pages (one address per page, whatever its
    /// size: `invlpg` drops every page size for the address it is given,
    /// and the paging-structure caches).
    Pages(&'a [VirtAddr]),
    /// Every translation of the address space, and its paging-structure caches.
    All,
}

/// The hardware, as the paging code sees it.
///
/// Methods take `&self`: the kernel's machine is a stateless handle onto the
/// real hardware, and the software model keeps its state behind interior
/// mutability, so that many address spaces can share one machine.
pub trait Machine {
    /// The features in force.
    fn features(&self) -> PagingFeatures;

    /// A zeroed 4 KiB frame (for a page table, or a page of memory), or
    /// `None` when memory is exhausted.
    fn alloc_frame(&self) -> Option<PhysAddr>;

    /// Returns a frame from [`Machine::alloc_frame`]. The caller guarantees
    /// that no TLB still holds a translation through or to it.
    fn free_frame(&self, frame: PhysAddr);

    /// Reads the 64-bit word at physical address `addr` (8-byte aligned).
    fn read_u64(&self, addr: PhysAddr) -> u64;

    /// Writes the 64-bit word at physical address `addr` (8-byte aligned).
    fn write_u64(&self, addr: PhysAddr, value: u64);

    /// Drops translations of address space `space` from every TLB that may
    /// hold them (the local one, and with SMP every other CPU's), before
    /// returning.
    fn invalidate(&self, space: SpaceId, what: TlbInvalidation<'_>);

    /// Loads `space`'s root table into CR3 on the current CPU. With a PCID
    /// and `keep_tlb` set, the TLB entries tagged with that PCID are kept
    /// (CR3 bit 63); otherwise they are dropped.
    fn load_root(&self, space: SpaceId, keep_tlb: bool);

    /// The root table the current CPU is using.
    fn current_root(&self) -> PhysAddr;
}
