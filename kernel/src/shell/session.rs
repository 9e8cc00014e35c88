//! One shell's state, what every command gets ([`Session`]), and the way
//! commands reach the page tables of an address space ([`with_paging`]).

use crate::address_space::{self, KernelMachine, Space, SpaceObject};
use alloc::string::String;
use alloc::sync::Arc;
use paging::PagingAspace;

/// One shell: what its commands act on.
pub struct Session {
    /// The shell's name; also the name of the address space its startup
    /// test made.
    pub(super) name: String,
    /// Whether this is the root shell, which `exit` does not end.
    pub(super) is_root: bool,
    /// The address space the startup test made, if it made one.
    pub(super) own_space: Option<Arc<Space>>,
    /// Set by `exit`: the shell ends after this command.
    pub(super) exit_requested: bool,
}

impl Session {
    /// A session named `name`, with no address space of its own: what the
    /// in-kernel tests drive the command table with.
    pub fn new(name: &str, is_root: bool) -> Session {
        Session { name: name.into(), is_root, own_space: None, exit_requested: false }
    }

    /// The shell's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Runs `f` on the page tables behind `object`: a `paging` address space's,
/// or the boot map's under `base`. `None` for other implementations.
pub fn with_paging<R>(object: &SpaceObject, f: impl FnOnce(&PagingAspace<KernelMachine>) -> R) -> Option<R> {
    address_space::paging_of(object).map(f)
}

pub use address_space::paging_of_mut as paging_mut;
