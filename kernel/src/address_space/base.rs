//! The `base` implementation: the boot map, given a name.
//!
//! At boot the kernel maps, with the largest pages that fit, its own half
//! (the image where it is linked and all of physical memory, with the MMIO
//! below 4 GiB, at the direct map's offset; [`hardening::kernel_regions`])
//! and, as lab content the kernel itself never uses, the same memory one to
//! one in the lower half ([`hardening::identity_regions`]). That map is the
//! *default address space*: threads that never chose one run in it. `base`
//! wraps it as an address space so that it can be listed, printed and
//! entered by name like any other; it refuses every region change through
//! the trait, because the whole kernel depends on it staying as it is.
//!
//! The map is hardened ([`crate::hardening`]): the kernel image by
//! sections (text read-only and executable, rodata read-only, data
//! writable), the rest of memory writable and never executable, and the
//! guard page below every kernel stack unmapped (in the direct map, where
//! the stacks are). Guard pages are its only edits after boot, through
//! [`BaseAspace::unmap_guard_page`].
//!
//! Every kernel boots on this map, a student kit's too (`cargo xtask lab
//! new`): so it is built and edited only through the paging crate's own
//! code, [`PagingAspace::from_regions`] and [`PagingAspace::unmap_part`],
//! never through the operations the paging lab cuts out for students to
//! write (`add_region`, `protect_region`, the region set's `insert` and
//! `find`). The tables, regions and counters are those the lab's
//! operations would give.

use super::KernelMachine;
use crate::hardening;
use crate::mem::guard::GUARD_SIZE;
use alloc::vec::Vec;
use aspace::{
    AddressSpace, AspaceError, Capabilities, Characteristics, Fault, FaultOutcome, PhysAddr, Protection, Region,
    RegionSet, ThreadId, UnhandledFault,
};
use core::fmt;
use paging::{KernelHalf, PagingAspace};

/// The implementation's name.
pub const NAME: &str = "base";

/// The boot map as an address space.
pub struct BaseAspace {
    inner: PagingAspace<KernelMachine>,
}

impl BaseAspace {
    /// Builds the hardened map of `[0, len)` (RAM and the MMIO below
    /// 4 GiB): one to one in the lower half, at the direct map's offset in
    /// the upper half, and the image where it is linked, with the largest
    /// pages that fit each section; and unmaps the guard pages of the stacks
    /// made so far and of the boot stack. `len` is a multiple of 1 GiB.
    pub fn build(name: &str, len: u64, kernel_half: &KernelHalf) -> Result<BaseAspace, AspaceError> {
        let regions: Vec<Region> = hardening::identity_regions(len)
            .into_iter()
            .chain(hardening::kernel_regions(len))
            .map(|(_, region)| region)
            .collect();
        let inner =
            PagingAspace::from_regions_with_kernel_half(KernelMachine, name, None, &regions, kernel_half, false)?;
        let mut base = BaseAspace { inner };
        // The page below the boot stack is the last boot page directory,
        // which only the CPU's page walker reads (by physical address, when
        // an application processor starts on the boot tables).
        let (boot_stack_bottom, _) = crate::arch::boot::boot_stack();
        crate::thread::stack::register_guard_page(boot_stack_bottom - GUARD_SIZE as u64);
        for page in crate::mem::guard::guard_pages() {
            base.unmap_guard_page(page)?;
        }
        Ok(base)
    }

    /// Unmaps the guard page at `page`: its part of the direct map
    /// becomes a region with no access (see [`hardening::GUARD`]), as a
    /// `protect_region` to [`hardening::GUARD`] would make it.
    pub fn unmap_guard_page(&mut self, page: u64) -> Result<(), AspaceError> {
        self.inner.unmap_part(hardening::guard_region(page))
    }

    /// The physical address of the root table (what CR3 holds in the
    /// default address space).
    #[cfg(feature = "ktest")]
    pub fn root(&self) -> PhysAddr {
        self.inner.root().expect("the boot map is never destroyed")
    }

    /// The paging address space underneath, for walks and dumps.
    pub fn paging(&self) -> &PagingAspace<KernelMachine> {
        &self.inner
    }

    fn refuse(operation: &'static str) -> AspaceError {
        AspaceError::Unsupported { implementation: NAME, operation }
    }
}

impl AddressSpace for BaseAspace {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn implementation(&self) -> &'static str {
        NAME
    }

    fn characteristics(&self) -> Characteristics {
        self.inner.characteristics()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::empty()
    }

    fn regions(&self) -> &RegionSet {
        self.inner.regions()
    }

    fn add_region(&mut self, _region: Region) -> Result<(), AspaceError> {
        Err(Self::refuse("adding regions (the boot map is fixed)"))
    }

    fn remove_region(&mut self, _region: Region) -> Result<(), AspaceError> {
        Err(Self::refuse("removing regions (the boot map is fixed)"))
    }

    fn move_region(&mut self, _region: Region, _new_pa: PhysAddr) -> Result<(), AspaceError> {
        Err(Self::refuse("moving regions (the boot map is fixed)"))
    }

    fn protect_region(&mut self, _region: Region, _prot: Protection) -> Result<(), AspaceError> {
        Err(Self::refuse("protecting regions (the boot map is fixed)"))
    }

    fn switch_to(&mut self) {
        self.inner.switch_to();
    }

    fn switch_from(&mut self) {
        self.inner.switch_from();
    }

    fn exception(&mut self, _fault: &Fault) -> FaultOutcome {
        // Everything is mapped eagerly: a fault here is never fixable.
        FaultOutcome::Unhandled(UnhandledFault::NotHandledHere)
    }

    fn add_thread(&mut self, thread: ThreadId) {
        self.inner.add_thread(thread);
    }

    fn remove_thread(&mut self, thread: ThreadId) {
        self.inner.remove_thread(thread);
    }

    fn thread_count(&self) -> usize {
        self.inner.thread_count()
    }

    fn print(&self, out: &mut dyn fmt::Write, detailed: bool) -> fmt::Result {
        self.inner.print(out, detailed)
    }

    fn destroy(&mut self) -> Result<(), AspaceError> {
        Err(Self::refuse("destroy (the kernel runs on the boot map)"))
    }
}

/// Used by the registry: a second `base` address space is refused, since
/// there is one boot map and it exists from boot.
pub fn create(_name: &str) -> Result<BaseAspace, AspaceError> {
    Err(AspaceError::Unsupported {
        implementation: NAME,
        operation: "creating another address space (the one boot map exists from boot, named 'base')",
    })
}
