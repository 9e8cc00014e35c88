//! The registry of guard pages: the unmapped page below every kernel stack
//! (thread stacks, the boot stack, each CPU's interrupt stacks).
//!
//! Whoever makes a stack records its guard page here ([`record`]); the
//! address-space layer, which unmaps guard pages in the spaces it hardens,
//! is told of each new one through the [`GuardPageObserver`] it installs at
//! boot. The registry itself knows no address space, so the stacks below
//! the address-space layer can use it.

use crate::sync::{IrqMutex, SetOnce};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// The size of a guard page.
pub const GUARD_SIZE: usize = 4096;

/// Every guard page recorded so far (stack blocks are reused, never freed).
static GUARD_PAGES: IrqMutex<BTreeSet<u64>> = IrqMutex::new(BTreeSet::new());

/// Told of every guard page recorded after it is installed.
pub trait GuardPageObserver: Sync {
    /// `page` became a guard page: unmap it wherever it must not be mapped.
    fn guard_page_created(&self, page: u64);
}

static OBSERVER: SetOnce<&'static dyn GuardPageObserver> = SetOnce::new();

/// Installs the observer (once, at boot); false when one is installed already.
pub fn set_observer(observer: &'static dyn GuardPageObserver) -> bool {
    OBSERVER.set(observer)
}

/// Records `page` as a guard page and tells the observer; returns how many
/// guard pages are recorded now.
pub fn record(page: u64) -> usize {
    let count = {
        let mut guards = GUARD_PAGES.lock();
        guards.insert(page);
        guards.len()
    };
    if let Some(observer) = OBSERVER.get() {
        observer.guard_page_created(page);
    }
    count
}

/// Every guard page recorded so far, lowest first.
pub fn guard_pages() -> Vec<u64> {
    GUARD_PAGES.lock().iter().copied().collect()
}

/// The guard page holding `addr`, if `addr` lies in one.
pub fn guard_page_containing(addr: u64) -> Option<u64> {
    let page = addr & !(GUARD_SIZE as u64 - 1);
    GUARD_PAGES.lock().contains(&page).then_some(page)
}

/// [`guard_page_containing`] for the fault report: `None` also when the
/// registry is locked (the fault may have hit while this CPU held it).
pub fn try_guard_page_containing(addr: u64) -> Option<u64> {
    let page = addr & !(GUARD_SIZE as u64 - 1);
    GUARD_PAGES.try_lock()?.contains(&page).then_some(page)
}
