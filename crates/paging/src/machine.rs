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
///
/// # Safety
///
/// The paging code builds page tables that a CPU will walk, and trusts the
/// machine to do exactly what each method says; an implementation that does
/// otherwise lets safe code corrupt memory. Whoever implements the trait
/// promises:
///
/// - [`Machine::read_u64`] and [`Machine::write_u64`] read and write the
///   64-bit word of *physical* memory at the address given, and nothing
///   else: a kernel reaches it through a mapping of physical memory it keeps
///   for as long as the machine is used (an identity map, or a fixed offset
///   like the `x86_64` crate's `OffsetPageTable`), a model through its
///   simulated memory. Reads see the last value written (by the paging code
///   or by the CPU setting accessed and dirty bits); writes are not elided
///   or reordered past a later [`Machine::invalidate`] or
///   [`Machine::load_root`].
/// - [`Machine::alloc_frame`] returns a 4 KiB-aligned frame of RAM below
///   2^MAXPHYADDR, zeroed, that nothing else uses or will be handed until
///   it comes back through [`Machine::free_frame`]: the caller owns it.
/// - [`Machine::invalidate`] has dropped the translations named, and the
///   paging-structure caches, from every TLB that may hold them (every
///   CPU's, with SMP) before it returns.
/// - [`Machine::load_root`] loads the root given into CR3 of the calling
///   CPU, and [`Machine::current_root`] returns the root that CPU is using:
///   a live tree of page tables that `read_u64` reaches.
/// - [`Machine::features`] reports what is in force on every CPU the tables
///   are used on (the tables are built for it: NX bits without EFER.NXE,
///   or 1 GiB pages without the feature, are reserved bits).
///
/// The methods that can break memory safety when *called* wrongly are
/// `unsafe` to call, each with its own contract: reading and writing
/// physical memory, freeing a frame and loading a root.
pub unsafe trait Machine {
    /// The features in force.
    fn features(&self) -> PagingFeatures;

    /// A zeroed 4 KiB frame (for a page table, or a page of memory), or
    /// `None` when memory is exhausted. The caller owns it.
    fn alloc_frame(&self) -> Option<PhysAddr>;

    /// Returns a frame from [`Machine::alloc_frame`], or gives up one
    /// reference to it when it is shared ([`Machine::share_frame`]): the
    /// frame goes back to the allocator with its last reference.
    ///
    /// # Safety
    /// The caller owns `frame` (it came from `alloc_frame` of this machine
    /// and the caller's reference was not given up since), no page table of
    /// the caller links to it any more, and no TLB still holds a translation
    /// of the caller's through or to it (an invalidation dropped them): the
    /// caller will not touch it again.
    unsafe fn free_frame(&self, frame: PhysAddr);

    /// [`Machine::free_frame`] of every frame of `frames`, in order: what a
    /// flush batch does with the frames an edit let go of. By default one
    /// call each; a machine can take its allocator's lock once for many.
    ///
    /// # Safety
    /// As for [`Machine::free_frame`], for each frame.
    unsafe fn free_frames(&self, frames: &[PhysAddr]) {
        for &frame in frames {
            // SAFETY: the caller's promise, frame by frame.
            unsafe { self.free_frame(frame) };
        }
    }

    /// Adds a reference to `frame`, a frame from [`Machine::alloc_frame`]
    /// that another address space now maps too: the page of a private
    /// mapping shared copy-on-write after a fork
    /// ([`crate::PagingAspace::fork`]). Each reference is given up by one
    /// [`Machine::free_frame`], and the frame returns to the allocator with
    /// the last; [`Machine::frame_is_shared`] says whether there is more
    /// than one. Returns false, changing nothing, when the machine does not
    /// count references (the default): then `fork` is refused.
    /// `copy_on_write` says how the frame is shared: read-only until a
    /// write copies it (private memory), or writable by every holder (a
    /// shared mapping, see [`crate::PagingAspace::share_anonymous`]); a
    /// machine may use it to check that nobody writes a frame of the first
    /// kind.
    ///
    /// # Safety
    /// The caller owns a reference to `frame` (it came from `alloc_frame`
    /// and the caller's references are not all given up).
    unsafe fn share_frame(&self, frame: PhysAddr, copy_on_write: bool) -> bool {
        let _ = (frame, copy_on_write);
        false
    }

    /// [`Machine::share_frame`] of every frame of `frames`, all or nothing:
    /// false, changing nothing, when one is refused. What a fork calls, once
    /// per kind of sharing; a machine may do it at less than the cost of one
    /// call per frame (the default).
    ///
    /// # Safety
    /// As for [`Machine::share_frame`], for each frame.
    unsafe fn share_frames(&self, frames: &[PhysAddr], copy_on_write: bool) -> bool {
        for (index, &frame) in frames.iter().enumerate() {
            // SAFETY: the caller owns a reference to each frame.
            if !unsafe { self.share_frame(frame, copy_on_write) } {
                for &taken in &frames[..index] {
                    // SAFETY: the reference taken just above: the caller's
                    // own remains, so the frame is not returned.
                    unsafe { self.free_frame(taken) };
                }
                return false;
            }
        }
        true
    }

    /// A frame of zeros that nobody ever writes and the machine keeps for
    /// good, which a space with the zero page on
    /// ([`crate::PagingAspace::set_zero_page`]) maps read-only for the pages
    /// of its anonymous regions that are read before they are written (as
    /// Linux's zero page); `None` (the default) when there is none.
    fn zero_frame(&self) -> Option<PhysAddr> {
        None
    }

    /// True when more than one reference to `frame` exists (see
    /// [`Machine::share_frame`]): a write to the page must copy it first.
    fn frame_is_shared(&self, frame: PhysAddr) -> bool {
        let _ = frame;
        false
    }

    /// Reads the 64-bit word at physical address `addr`.
    ///
    /// # Safety
    /// `addr` is 8-byte aligned and lies in physical memory the caller may
    /// read: a page table of a tree it owns or was lent (a tree it adopted,
    /// the tree the CPU is using), a frame it owns, or memory it was told to
    /// read (a file's bytes). Reading other physical memory, device
    /// registers included, may have effects the caller cannot see.
    unsafe fn read_u64(&self, addr: PhysAddr) -> u64;

    /// Writes the 64-bit word at physical address `addr`.
    ///
    /// # Safety
    /// `addr` is 8-byte aligned and lies in a page table of a tree the
    /// caller owns or adopted, or in a frame it owns; the write keeps every
    /// tree a CPU may walk well formed (the paging code's writes are
    /// ordered for that: break before make, invalidation before reuse).
    unsafe fn write_u64(&self, addr: PhysAddr, value: u64);

    /// Drops translations of address space `space` from every TLB that may
    /// hold them (the local one, and with SMP every other CPU's), before
    /// returning.
    fn invalidate(&self, space: SpaceId, what: TlbInvalidation<'_>);

    /// Loads `space`'s root table into CR3 on the current CPU. With a PCID
    /// and `keep_tlb` set, the TLB entries tagged with that PCID are kept
    /// (CR3 bit 63); otherwise they are dropped.
    ///
    /// # Safety
    /// `space.root` is the root of a well-formed tree of page tables that
    /// maps what the running code needs (its code, stack and data, at the
    /// same addresses), and it stays alive (is not freed) for as long as
    /// any CPU has it loaded. With `keep_tlb`, the TLB entries tagged with
    /// the PCID are still correct for that tree (every edit since the last
    /// load was invalidated by PCID).
    unsafe fn load_root(&self, space: SpaceId, keep_tlb: bool);

    /// The root table the current CPU is using.
    fn current_root(&self) -> PhysAddr;
}
