//! # aspace: the vocabulary of Nacre's address spaces
//!
//! An *address space* (after the Nautilus kernel) is an object created by a
//! named *implementation*. It holds a *memory map*: a set of non-overlapping
//! [`Region`]s, each mapping a run of virtual addresses linearly onto a run of
//! physical addresses, for a length in bytes, with [`Protection`] flags.
//! Threads join and leave address spaces; the CPU switches between them.
//!
//! This crate has no hardware in it and no `unsafe`: it defines the types,
//! the [`RegionSet`] that stores a memory map, the [`AddressSpace`] trait every
//! implementation provides, and the [`AspaceError`] every operation returns
//! when it refuses.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod addr;
mod error;
mod fault;
pub mod parse;
mod protection;
mod region;
pub mod region_set;
mod space;
mod validate;

pub use addr::{PhysAddr, VirtAddr, VirtWidth};
pub use error::{AddressKind, AspaceError};
pub use fault::{Fault, FaultAccess, FaultOutcome, PageFaultCode, UnhandledFault};
pub use protection::Protection;
pub use region::{Characteristics, Region};
pub use region_set::RegionSet;
pub use space::{AddressSpace, Capabilities, Implementation, Registry, ThreadId};
pub use validate::check_virt_range;
