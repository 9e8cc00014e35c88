//! The interface every address-space implementation provides, and the
//! registry that finds implementations by name.

use crate::{AspaceError, Characteristics, Fault, FaultOutcome, PhysAddr, Protection, Region, RegionSet};
use alloc::boxed::Box;
use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

/// A thread's identity, as the kernel numbers threads.
pub type ThreadId = u64;

bitflags! {
    /// Optional abilities an implementation may offer beyond NK's core set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Capabilities: u32 {
        /// `remove_region`, `move_region` and `protect_region` accept a
        /// granularity-aligned sub-range of an existing region and split it
        /// (NK's "advanced" move, extended to remove and protect).
        const SUB_RANGE = 1 << 0;
        /// Pages are mapped on first touch for regions without EAGER.
        const DEMAND_PAGING = 1 << 1;
        /// Region changes are accepted at all (the `base` implementation refuses them).
        const EDITABLE = 1 << 2;
    }
}

/// An address space: a named memory map and the means to make it current.
///
/// The operations mirror NK's. Every region operation validates its input
/// and returns a typed [`AspaceError`]; a refused operation changes nothing.
///
/// Regions passed to `remove_region`, `move_region` and `protect_region`
/// name the region to act on by its virtual start, physical start and
/// length (its protections are not compared). They must match an existing
/// region exactly, or, when the implementation has
/// [`Capabilities::SUB_RANGE`], lie wholly inside one region with the same
/// virtual-to-physical offset.
pub trait AddressSpace: Send + 'static {
    /// The address space's name.
    fn name(&self) -> &str;

    /// The name of the implementation that made it.
    fn implementation(&self) -> &'static str;

    /// Granularity and alignment every region must respect.
    fn characteristics(&self) -> Characteristics;

    /// What the implementation offers beyond the core operations.
    fn capabilities(&self) -> Capabilities;

    /// The memory map.
    fn regions(&self) -> &RegionSet;

    /// Adds a region. Refused if it overlaps an existing region in virtual
    /// addresses (physical aliasing is allowed), or is invalid.
    /// With [`Protection::EAGER`] every translation is built before returning.
    fn add_region(&mut self, region: Region) -> Result<(), AspaceError>;

    /// Removes a region (or, with [`Capabilities::SUB_RANGE`], part of one):
    /// its translations are dropped from the tables and every TLB before
    /// this returns. Pinned regions are refused.
    fn remove_region(&mut self, region: Region) -> Result<(), AspaceError>;

    /// Points a region (or part of one) at new physical memory, keeping its
    /// virtual range and protections; the caller has copied the contents.
    /// Pinned regions are refused.
    fn move_region(&mut self, region: Region, new_pa: PhysAddr) -> Result<(), AspaceError>;

    /// Changes a region's (or part of one's) protections. Allowed on pinned
    /// regions; `prot` decides whether the result is pinned.
    fn protect_region(&mut self, region: Region, prot: Protection) -> Result<(), AspaceError>;

    /// This address space becomes the CPU's current one (load its root table).
    fn switch_to(&mut self);

    /// This address space stops being the CPU's current one.
    fn switch_from(&mut self);

    /// A fault happened while this address space was current.
    fn exception(&mut self, fault: &Fault) -> FaultOutcome;

    /// A thread joined.
    fn add_thread(&mut self, thread: ThreadId);

    /// A thread left.
    fn remove_thread(&mut self, thread: ThreadId);

    /// How many threads are inside.
    fn thread_count(&self) -> usize;

    /// Describes the address space: name, implementation, characteristics,
    /// root table; with `detailed`, every region.
    fn print(&self, out: &mut dyn fmt::Write, detailed: bool) -> fmt::Result;

    /// Frees every resource (page tables, state). Refused with
    /// [`AspaceError::Busy`] while threads are inside.
    fn destroy(&mut self) -> Result<(), AspaceError>;
}

/// A named way to create address spaces.
pub struct Implementation {
    /// The name used to look it up (`base`, `paging`, ...).
    pub name: &'static str,
    /// One line saying what it is.
    pub description: &'static str,
    /// What its regions must respect.
    pub characteristics: Characteristics,
    /// Creates an address space with the given name.
    pub create: fn(name: &str) -> Result<Box<dyn AddressSpace>, AspaceError>,
}

impl fmt::Debug for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Implementation")
            .field("name", &self.name)
            .field("characteristics", &self.characteristics)
            .finish()
    }
}

/// The implementations known to the system, by name.
#[derive(Default, Debug)]
pub struct Registry {
    implementations: Vec<&'static Implementation>,
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Registry { implementations: Vec::new() }
    }

    /// Adds an implementation; refused if the name is taken.
    pub fn register(&mut self, implementation: &'static Implementation) -> Result<(), AspaceError> {
        if self.find(implementation.name).is_some() {
            return Err(AspaceError::NameTaken { name: implementation.name.into() });
        }
        self.implementations.push(implementation);
        Ok(())
    }

    /// The implementation called `name`.
    pub fn find(&self, name: &str) -> Option<&'static Implementation> {
        self.implementations.iter().copied().find(|i| i.name == name)
    }

    /// Creates an address space with implementation `implementation`.
    pub fn create(&self, implementation: &str, name: &str) -> Result<Box<dyn AddressSpace>, AspaceError> {
        let found = self
            .find(implementation)
            .ok_or_else(|| AspaceError::UnknownImplementation { name: implementation.into() })?;
        (found.create)(name)
    }

    /// Every implementation, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Implementation> + '_ {
        self.implementations.iter().copied()
    }
}
