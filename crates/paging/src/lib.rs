//! # paging: x86-64 page tables for Nacre's address spaces
//!
//! Builds and edits 4-level (and 5-level) x86-64 page tables for the regions
//! of an address space. Hardware is reached only through the [`Machine`]
//! trait, so the same code runs in the kernel (real CR3, real `invlpg`) and
//! on the host against the software MMU of the `mmu-model` crate.
//!
//! The layers, bottom up:
//! - [`entry`]: the 64-bit entry, table levels and page sizes;
//! - [`walk`](mod@walk): one address through the tables, step by step, as the CPU does it;
//! - [`PageTables`]: one tree and its range edits (map, unmap, protect,
//!   re-point), each all-or-nothing, each returning a [`FlushBatch`];
//! - [`flush`]: what the TLBs must forget, and the freed tables they must
//!   forget before those are reused;
//! - [`PagingAspace`]: the `paging` address space, a region set kept in step
//!   with a tree, with demand paging;
//! - `anon`: the frames the space provides for anonymous regions
//!   ([`aspace::Protection::ANON`]), zeroed on first touch or at once, freed
//!   after the flush;
//! - `file`: file-backed private pages, anonymous pages that start as a
//!   copy of physical memory (a file's data) instead of zeros
//!   ([`PagingAspace::add_file_region`]);
//! - `grow`: when a fault grows a grow-down or grow-up region, under the
//!   space's [`GrowthLimits`], and the guard gap each keeps;
//! - [`dump`] and [`verify`](PagingAspace::verify): listing and checking a tree.
//!
//! ## Choices
//! - Each mapping uses the largest page (1 GiB when the CPU has them, 2 MiB,
//!   4 KiB) that the alignment of both addresses and the remaining length allow.
//! - Entries that point at tables are present, writable, never NX, and user
//!   when some page below is user: the leaves alone decide the rights.
//! - The global bit is never set: which kernel mappings all address spaces
//!   should share is a later choice.
//! - Tables that become empty are freed, after the flush.
//! - Anonymous regions use 4 KiB pages only, one frame each; the space
//!   records which frame backs which page (a B-tree by page), so that a page
//!   whose region lost READ keeps its contents, and `verify` can check the
//!   tables against the record. Their frames, like tables, are freed only
//!   after the flush that drops their translations.
//! - A fault within one guard gap below a grow-down region (above a grow-up
//!   one) grows it to the faulting page, unless it would pass the maximum
//!   size or come closer than one guard gap to its neighbour: that is a
//!   stack overflow ([`aspace::UnhandledFault::StackOverflow`]).
//!
//! ## Example
//! ```
//! use aspace::{AddressSpace, Fault, FaultOutcome, Protection, Region};
//! use mmu_model::{Mode, SimConfig, SimMachine};
//! use paging::PagingAspace;
//!
//! let machine = SimMachine::new(SimConfig::four_level());
//! let mut space = PagingAspace::new(machine.clone(), "demo", None).unwrap();
//! let rw = Protection::READ | Protection::WRITE | Protection::KERN;
//! // 4 MiB mapped now, 4 MiB mapped on first touch.
//! space.add_region(Region::new(0x4000_0000, 0x20_0000, 0x40_0000, rw | Protection::EAGER)).unwrap();
//! space.add_region(Region::new(0x8000_0000, 0x20_0000, 0x40_0000, rw)).unwrap();
//! space.switch_to();
//!
//! // The first read of the lazy region faults; the address space maps the page.
//! let fault = machine.read_u64_at(0x8000_1000, Mode::Supervisor).unwrap_err();
//! let mmu_model::AccessError::PageFault(pf) = fault else { panic!("expected a page fault") };
//! let outcome = space.exception(&Fault::page_fault(pf.addr, pf.code, 0));
//! assert_eq!(outcome, FaultOutcome::Handled);
//! // Both regions now show the same physical memory.
//! assert_eq!(
//!     machine.read_u64_at(0x8000_1000, Mode::Supervisor),
//!     machine.read_u64_at(0x4000_1000, Mode::Supervisor),
//! );
//! assert_eq!(space.verify(), Ok(()));
//! for run in space.mappings().unwrap() {
//!     println!("{run}");
//! }
//!
//! // A space can be destroyed once no CPU uses it.
//! let mut idle = PagingAspace::new(machine.clone(), "idle", None).unwrap();
//! idle.switch_to();
//! space.destroy().unwrap();
//! assert_eq!(machine.frames_in_use(), 1, "only idle's root is left");
//! ```
//!
//! ## Anonymous memory and a growing stack
//! ```
//! use aspace::{AddressSpace, Fault, FaultOutcome, Protection, Region, UnhandledFault};
//! use mmu_model::{AccessError, Mode, SimConfig, SimMachine};
//! use paging::PagingAspace;
//!
//! let machine = SimMachine::new(SimConfig::four_level());
//! let mut space = PagingAspace::new(machine.clone(), "demo", None).unwrap();
//! // Stacks of at most 4 pages, growing by faults at most 2 pages below them.
//! space.set_growth_limits(0x4000, 0x2000).unwrap();
//! let stack = Protection::READ | Protection::WRITE | Protection::KERN | Protection::GROW_DOWN;
//! let top = 0x7000_0000;
//! space.add_region(Region::anonymous(top - 0x1000, 0x1000, stack)).unwrap();
//! space.switch_to();
//!
//! // Writes that fault are offered to the space, as the trap handler does.
//! let mut push = |va: u64| loop {
//!     match machine.write_u64_at(va, va, Mode::Supervisor) {
//!         Ok(()) => return FaultOutcome::Handled,
//!         Err(AccessError::PageFault(pf)) => match space.exception(&Fault::page_fault(pf.addr, pf.code, 0)) {
//!             FaultOutcome::Handled | FaultOutcome::Spurious => continue,
//!             refused => return refused,
//!         },
//!         Err(other) => panic!("{other:?}"),
//!     }
//! };
//! // Three pages below the first one: the stack grows to four pages...
//! for page in 1..=3 {
//!     assert_eq!(push(top - 0x1000 - page * 0x1000), FaultOutcome::Handled);
//! }
//! // ... and the fifth page is a stack overflow.
//! assert!(matches!(push(top - 0x5000), FaultOutcome::Unhandled(UnhandledFault::StackOverflow { .. })));
//! assert_eq!(space.counters().anonymous_frames, 3, "the first page was never touched");
//! assert_eq!(space.verify(), Ok(()));
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod anon;
pub mod dump;
mod edit;
pub mod entry;
mod file;
pub mod flush;
mod grow;
pub mod machine;
mod space;
mod tables;
mod verify;
pub mod walk;

pub use dump::{MappedPage, MappedPages, MappingRun, MappingRuns};
pub use edit::EditCounters;
pub use entry::{LeafPermissions, Level, PageSize, PageTableEntry};
pub use file::FileBacking;
pub use flush::{FlushBatch, FlushSummary, SINGLE_PAGE_FLUSH_CEILING};
pub use grow::GrowthLimits;
pub use machine::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
pub use space::{PagingAspace, PagingCounters, DEFAULT_FAULT_AROUND_PAGES, IMPLEMENTATION_NAME};
pub use tables::{PageTables, PAGE_GRANULARITY};
pub use verify::VerifyError;
pub use walk::{walk, Translation, Walk, WalkOutcome, WalkStep};
