//! Hardened address spaces: the kernel half
//! ([`crate::hardening::kernel_regions`]: the image and the direct map of
//! physical memory, in the upper half), and for the lab's spaces the
//! hardened identity map of low memory too
//! ([`crate::hardening::identity_regions`]), added to a space, with every
//! stack's guard page unmapped in it, now and for every stack made later
//! (through the guard-page registry's observer, [`UnmapGuardPages`]). A
//! process space, which shares the default space's kernel half, only
//! [`join`]s: its regions record the guard pages, the shared tables have
//! them unmapped already.

use super::{KernelMachine, Space, SpaceObject};
use crate::hardening::{guard_region, identity_regions, kernel_regions, GUARD};
use crate::mem::guard::{self, GuardPageObserver};
use crate::sync::IrqMutex;
use crate::thread::AddressSpaceId;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AspaceError, Protection, Region};
use paging::PagingAspace;

/// The spaces that get every new guard page unmapped: the default space
/// (id 0) and every space [`harden`] has made.
static HARDENED: IrqMutex<Vec<AddressSpaceId>> = IrqMutex::new(Vec::new());

/// What [`harden`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hardened {
    /// Regions added: the kernel half's, and the identity map's if asked for.
    pub regions: usize,
    /// Guard pages unmapped.
    pub guard_pages: usize,
}

/// Adds the kernel half (the image and the direct map of all of
/// [`super::kernel_map_len`]) to `space`, and with `identity_len` > 0 the
/// hardened identity map of `[0, identity_len)` too (lab content: the
/// kernel does not use it); `space` must map none of it yet. Unmaps every
/// stack's guard page in it, and keeps doing so for stacks made later. On
/// a refused add, the regions added so far are removed again.
pub fn harden(space: &Arc<Space>, identity_len: u64) -> Result<Hardened, AspaceError> {
    let mut regions = if identity_len > 0 { identity_regions(identity_len) } else { Vec::new() };
    regions.extend(kernel_regions(super::kernel_map_len()));
    {
        let mut object = space.lock();
        for (index, (_, region)) in regions.iter().enumerate() {
            if let Err(error) = object.add_region(*region) {
                for (_, added) in &regions[..index] {
                    let unpinned = Protection::READ | Protection::KERN;
                    let _ = object.protect_region(*added, unpinned).and_then(|()| object.remove_region(*added));
                }
                return Err(error);
            }
        }
    }
    // Listed before the guard pages are read: a stack made meanwhile is
    // seen either here or by its own guard_page_created.
    HARDENED.lock().push(space.id());
    let pages = guard::guard_pages();
    let mut object = space.lock();
    for &page in &pages {
        unmap_guard_page(&mut object, page)?;
    }
    Ok(Hardened { regions: regions.len(), guard_pages: pages.len() })
}

/// A `paging` space for a process, named `name`: its upper half is the
/// kernel half the default space built ([`super::kernel_half`]), shared (the same
/// tables, nothing mapped anew), and its region set records the kernel
/// half's regions as the default space has them (guard pages included), so
/// that `check_can_enter`, `verify` and the fault path see them. The lower
/// half is empty. It gets every later guard page unmapped ([`join`]).
pub fn create_process_space(name: &str) -> Result<Arc<Space>, AspaceError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(AspaceError::InvalidName { name: name.into() });
    }
    if super::find(name).is_ok() {
        return Err(AspaceError::NameTaken { name: name.into() });
    }
    let half = super::kernel_half();
    let upper: Vec<Region> = {
        let base = super::base();
        let object = base.lock();
        object.regions().iter().filter(|region| region.va.as_u64() >> 63 == 1).copied().collect()
    };
    let paging =
        PagingAspace::from_regions_with_kernel_half(KernelMachine, name, super::allocate_pcid(), &upper, half, true)?;
    let space = super::register(name, SpaceObject::Paging(paging))?;
    join(&space)?;
    Ok(space)
}

/// Makes `space`, a process space that records the kernel half's regions
/// as the default space had them when it was made, get every new guard page
/// unmapped, and unmaps those made since (in its region set; the shared
/// tables have them unmapped already).
pub fn join(space: &Arc<Space>) -> Result<(), AspaceError> {
    // Listed before the guard pages are read: a stack made meanwhile is
    // seen either here or by its own guard_page_created.
    HARDENED.lock().push(space.id());
    let pages = guard::guard_pages();
    let mut object = space.lock();
    for page in pages {
        let recorded = object.regions().overlapping(page, 1).next().is_some_and(|region| region.prot == GUARD);
        if !recorded {
            unmap_guard_page(&mut object, page)?;
        }
    }
    Ok(())
}

/// True when the space `id` gets every new guard page unmapped.
pub fn is_hardened(id: AddressSpaceId) -> bool {
    HARDENED.lock().contains(&id)
}

/// Makes the space `id` (a fork of a hardened one, whose regions already
/// hold every guard page so far) get every new guard page unmapped too.
pub fn mark_hardened(id: AddressSpaceId) {
    HARDENED.lock().push(id);
}

/// Unmaps the guard page `page` in `object` (the default space's through
/// its own door, since it refuses edits through the trait): its region
/// keeps the page, with no access.
pub fn unmap_guard_page(object: &mut SpaceObject, page: u64) -> Result<(), AspaceError> {
    let guard = guard_region(page);
    match object {
        SpaceObject::Base(base) => base.unmap_guard_page(page),
        other => other.protect_region(guard, GUARD),
    }
}

/// Unmaps new guard pages in the default space and in every hardened one:
/// the guard-page registry's observer, installed at boot.
pub struct UnmapGuardPages;

impl GuardPageObserver for UnmapGuardPages {
    /// A stack was made with its guard page at `page`: unmaps it in the
    /// default space and in every hardened one (forgetting destroyed ones).
    fn guard_page_created(&self, page: u64) {
        guard_page_created(page)
    }
}

fn guard_page_created(page: u64) {
    let ids: Vec<AddressSpaceId> = {
        let mut hardened = HARDENED.lock();
        if !hardened.contains(&0) {
            hardened.insert(0, 0);
        }
        hardened.clone()
    };
    for id in ids {
        let Some(space) = super::by_id(id) else {
            // Destroyed, or (id 0) the default space is not built yet: it
            // unmaps every guard page recorded so far when it is.
            if id != 0 {
                HARDENED.lock().retain(|&listed| listed != id);
            }
            continue;
        };
        let unmapped = unmap_guard_page(&mut space.lock(), page);
        if let Err(error) = unmapped {
            // The space's owner changed its kernel half: nothing to unmap.
            log::debug!("guard page {page:#x} left as it is in '{}': {error}", space.name());
        }
    }
}
