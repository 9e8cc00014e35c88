//! The typed hooks through which the layers below the address spaces reach
//! them: the trap dispatcher's [`FaultHandler`] (page faults, recovery,
//! the fault report) and the scheduler's [`AddressSpaceHooks`] (switches,
//! memberships, names). Each is a trait of the lower layer, implemented here
//! by the address-space layer and installed once at boot ([`install`]), as
//! is the guard-page registry's observer (`mem::guard`); the
//! lower layers call it through a `spin::Once`, with no lock on the path.

use crate::address_space;
use crate::arch::frame::TrapFrame;
use crate::arch::trap::{self, FaultHandler};
use crate::thread::{self, AddressSpaceHooks, AddressSpaceId, ThreadId};
use aspace::{Fault, FaultOutcome, UnhandledFault};
use core::fmt::{self, Write};

/// The address-space layer, as the layers below see it.
struct AddressSpaceLayer;

impl FaultHandler for AddressSpaceLayer {
    fn page_fault(&self, fault: &Fault) -> FaultOutcome {
        address_space::on_page_fault(fault)
    }

    fn recover(&self, frame: &mut TrapFrame, fault: &Fault, reason: &UnhandledFault) -> bool {
        crate::growing_stack::recover(frame, fault, reason)
    }

    fn write_thread(&self, out: &mut dyn Write) -> fmt::Result {
        // Only tried: the trap may have hit while this CPU held the lock.
        let Some(current) = thread::try_current() else {
            return writeln!(out, "    thread: (busy; not inspected)");
        };
        match current {
            Some(thread) => writeln!(out, "    thread: {} '{}'", thread.id(), thread.name()),
            None => writeln!(out, "    thread: none (before threads started)"),
        }
    }

    fn describe(&self, fault: &Fault, out: &mut dyn Write) {
        address_space::describe_fault(fault, out)
    }
}

impl AddressSpaceHooks for AddressSpaceLayer {
    fn switch(&self, from: Option<AddressSpaceId>, to: Option<AddressSpaceId>) {
        address_space::on_context_switch(from, to)
    }

    fn membership(&self, space: AddressSpaceId, thread: ThreadId, joined: bool) {
        address_space::on_membership_change(space, thread, joined)
    }

    fn write_name(&self, space: AddressSpaceId, out: &mut dyn Write) -> fmt::Result {
        address_space::write_name(space, out)
    }

    fn loaded_on(&self, cpu: u32) -> Option<AddressSpaceId> {
        address_space::loaded_on(cpu)
    }
}

/// Installs the address-space layer's hooks (once, at boot, after
/// `address_space::init`).
pub fn install() {
    static LAYER: AddressSpaceLayer = AddressSpaceLayer;
    static UNMAP_GUARD_PAGES: address_space::harden::UnmapGuardPages = address_space::harden::UnmapGuardPages;
    let installed = trap::install_fault_handler(&LAYER)
        && thread::install_address_space_hooks(&LAYER)
        && crate::mem::guard::set_observer(&UNMAP_GUARD_PAGES);
    assert!(installed, "the address-space hooks are installed once");
}
