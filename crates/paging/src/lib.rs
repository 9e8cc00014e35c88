//! # paging: x86-64 page tables for Nacre's address spaces
//!
//! Builds and edits 4-level (and 5-level) x86-64 page tables for the regions
//! of an address space. Hardware is reached only through the [`Machine`]
//! trait, so the same code runs in the kernel (real CR3, real `invlpg`) and
//! on the host against the software MMU of the `mmu-model` crate.
//!
//! The layers, bottom up:
//! - [`Machine`]: the hardware, an `unsafe` trait (see "Physical memory and
//!   `unsafe`" below);
//! - [`entry`]: the 64-bit entry, table levels and page sizes;
//! - [`TableRef`]: one table in physical memory, the only place that
//!   computes where an entry is, reads it or writes it;
//! - [`walk`](mod@walk): one address through the tables, step by step, as
//!   the CPU does it: the crate's one walker, which the fault handler's
//!   probe and the edits inside one page table use too;
//! - [`PageTables`]: one tree and its range edits (map, unmap, protect,
//!   re-point), each all-or-nothing, each returning a [`FlushBatch`], and
//!   each refused with a [`PagingError`]; a tree is new, adopted from a
//!   live root ([`PageTables::from_root`]), or shares its upper half with
//!   others ([`KernelHalf`]);
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
//! - The global bit is never set. Trees that share a [`KernelHalf`] share
//!   its tables, not TLB entries: an edit of the upper half is invalidated
//!   in every space that shares it ([`FlushBatch::apply_to_each`]).
//! - Tables that become empty are freed, after the flush, except those the
//!   tree does not own ([`PageTableEntry::KEEP_TABLE`]: a kernel half's, a
//!   borrowed adopted tree's), which stay linked.
//! - A table's present-entry count lives in the entry pointing at it
//!   ([`PageTableEntry::PRESENT_COUNT`]), so that an unmap knows when a
//!   table became empty without reading it; one function moves it.
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
//! ## Physical memory and `unsafe`
//! The crate reads and writes page tables in physical memory, which no
//! Rust type describes; the [`Machine`] implementor promises that its
//! reads and writes reach the physical word asked for, that its frames are
//! the caller's own, and that its invalidations and CR3 loads do what they
//! say (the trait's `# Safety`). In return, the methods that can break
//! memory when called wrongly are `unsafe` to call: reading and writing
//! physical memory, freeing a frame, loading a root. Inside the crate only
//! [`TableRef`] reads and writes entries, and only tables of trees a
//! [`PageTables`] built, adopted or shares, so the rest of the crate is
//! safe code. Code outside reads tables through a [`TableRef`], which
//! `unsafe` [`TableRef::new`] (or [`TableRef::current`], the CPU's own
//! tree) vouches for.
//!
//! What the crate's *safe* operations map is not its business: like NK's,
//! its address spaces map whatever physical memory they are told to. A
//! kernel that lets untrusted code choose the regions checks them first
//! (Nacre's address-space layer refuses edits that would take away what the
//! kernel runs on).
//!
//! ## Using the crate in another kernel
//! Implement [`Machine`] for the hardware (`unsafe impl`: the kernel
//! promises its mapping of physical memory), adopt the tables the boot
//! code built with [`PageTables::from_root`], or make new trees, possibly
//! sharing a [`KernelHalf`]. The example runs on plain host memory, where a
//! kernel would read and write through its mapping of physical memory
//! (`(phys_offset + addr) as *mut u64`) and invalidate with `invlpg`; the
//! `x86_64` crate's `unsafe trait PageTableFrameMapping` makes the same
//! promise in the same place.
//! ```
//! use aspace::{PhysAddr, VirtAddr};
//! use core::cell::{Cell, RefCell};
//! use paging::{
//!     KernelHalf, LeafPermissions, Machine, PageTables, PagingFeatures, SpaceId, TableOwnership, TlbInvalidation,
//! };
//!
//! /// 4 MiB of "physical memory"; frames are handed out from 1 MiB up.
//! struct BootRam {
//!     words: RefCell<Vec<u64>>,
//!     next_frame: Cell<u64>,
//!     free: RefCell<Vec<u64>>,
//!     cr3: Cell<PhysAddr>,
//! }
//!
//! impl BootRam {
//!     fn word(&self, addr: PhysAddr) -> usize {
//!         assert!(addr.0 % 8 == 0 && addr.0 < 4 << 20, "{addr} is not memory");
//!         (addr.0 / 8) as usize
//!     }
//! }
//!
//! // SAFETY: reads and writes reach exactly the word asked for; a frame is
//! // zeroed and handed to one owner until it is freed; there is no TLB to
//! // invalidate; CR3 is `cr3`; the features are the ones the tables use.
//! unsafe impl Machine for BootRam {
//!     fn features(&self) -> PagingFeatures {
//!         PagingFeatures { huge_1g: true, la57: false, pcid: false, nx: true, phys_bits: 40 }
//!     }
//!     fn alloc_frame(&self) -> Option<PhysAddr> {
//!         let frame = self.free.borrow_mut().pop().or_else(|| {
//!             let next = self.next_frame.get();
//!             (next < 4 << 20).then(|| { self.next_frame.set(next + 4096); next })
//!         })?;
//!         let first = self.word(PhysAddr(frame));
//!         self.words.borrow_mut()[first..first + 512].fill(0);
//!         Some(PhysAddr(frame))
//!     }
//!     unsafe fn free_frame(&self, frame: PhysAddr) {
//!         self.free.borrow_mut().push(frame.0);
//!     }
//!     unsafe fn read_u64(&self, addr: PhysAddr) -> u64 {
//!         self.words.borrow()[self.word(addr)]
//!     }
//!     unsafe fn write_u64(&self, addr: PhysAddr, value: u64) {
//!         let word = self.word(addr);
//!         self.words.borrow_mut()[word] = value;
//!     }
//!     fn invalidate(&self, _space: SpaceId, _what: TlbInvalidation<'_>) {}
//!     unsafe fn load_root(&self, space: SpaceId, _keep_tlb: bool) {
//!         self.cr3.set(space.root);
//!     }
//!     fn current_root(&self) -> PhysAddr {
//!         self.cr3.get()
//!     }
//! }
//!
//! let ram = BootRam {
//!     words: RefCell::new(vec![0; (4 << 20) / 8]),
//!     next_frame: Cell::new(1 << 20),
//!     free: RefCell::new(Vec::new()),
//!     cr3: Cell::new(PhysAddr(0)),
//! };
//! // The boot code's tables, written by hand at 0x1000..0x4000: one 2 MiB
//! // identity page at 0 (PML4 -> PDPT -> PD).
//! let (pml4, pdpt, pd) = (0x1000u64, 0x2000u64, 0x3000u64);
//! let table = 0x3; // present, writable
//! let mut words = ram.words.borrow_mut();
//! words[(pml4 / 8) as usize] = pdpt | table;
//! words[(pdpt / 8) as usize] = pd | table;
//! words[(pd / 8) as usize] = 0x83; // 2 MiB page at 0: present, writable, PS
//! drop(words);
//!
//! // SAFETY: the boot code's tree, in memory `ram` reaches; the boot code
//! // will not edit it again, and its tables stay where they are.
//! let mut tables = unsafe { PageTables::from_root(&ram, PhysAddr(pml4), None, TableOwnership::Borrowed) }
//!     .expect("a well-formed tree");
//! assert_eq!(tables.table_frames(), 3, "its three tables, counted by one walk");
//! assert_eq!(tables.walk(&ram, VirtAddr(0x1234)).translation().unwrap().pa, PhysAddr(0x1234));
//!
//! // Edit it like a tree of its own: map 8 KiB more, read-only.
//! let ro = LeafPermissions { writable: false, user: false, executable: false };
//! let batch = tables.map(&ram, VirtAddr(0x40_0000), PhysAddr(0x9_0000), 0x2000, ro).unwrap();
//! batch.apply(&ram, tables.space_id());
//! let t = tables.walk(&ram, VirtAddr(0x40_1008)).translation().unwrap();
//! assert_eq!((t.pa, t.writable), (PhysAddr(0x9_1008), false));
//!
//! // New trees that share one upper half: a map through one is seen by both.
//! let kernel = KernelHalf::new(&ram).unwrap();
//! let mut a = PageTables::new_with_kernel_half(&ram, &kernel, None).unwrap();
//! let b = PageTables::new_with_kernel_half(&ram, &kernel, None).unwrap();
//! let high = VirtAddr(0xffff_8000_0000_0000);
//! let rw = LeafPermissions { writable: true, user: false, executable: false };
//! a.map(&ram, high, PhysAddr(0x9_0000), 0x1000, rw).unwrap().apply_to_each(&ram, &[a.space_id(), b.space_id()]);
//! assert_eq!(b.walk(&ram, high).translation().unwrap().pa, PhysAddr(0x9_0000));
//!
//! // Destroying frees only what each tree owns; the boot tables stay.
//! for tree in [a, b] {
//!     let space = tree.space_id();
//!     tree.destroy(&ram).apply(&ram, space);
//! }
//! assert!(kernel.destroy(&ram).is_ok(), "no tree uses the kernel half any more");
//! let space = tables.space_id();
//! tables.destroy(&ram).apply(&ram, space);
//! assert_eq!(ram.words.borrow()[(pd / 8) as usize], 0x83, "the boot code's leaf is untouched");
//! ```
//!
//! ## The `paging` address space
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

mod adopt;
mod anon;
mod chunk_map;
pub mod dump;
mod edit;
pub mod entry;
mod error;
mod file;
pub mod flush;
mod grow;
mod kernel_half;
pub mod machine;
mod object;
mod ranges;
mod relocate;
mod space;
mod table;
mod tables;
mod verify;
pub mod walk;

pub use adopt::TableOwnership;
pub use dump::{MappedPage, MappedPages, MappingRun, MappingRuns};
pub use edit::EditCounters;
pub use entry::{LeafPermissions, Level, PageSize, PageTableEntry};
pub use error::PagingError;
pub use error::IMPLEMENTATION_NAME;
pub use file::FileBacking;
pub use flush::{FlushBatch, FlushSummary, SINGLE_PAGE_FLUSH_CEILING};
pub use grow::GrowthLimits;
pub use kernel_half::KernelHalf;
pub use machine::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
pub use object::{ObjectBacking, ObjectFault, PageObject};
pub use relocate::MoveRefused;
pub use space::{PagingAspace, PagingCounters, DEFAULT_FAULT_AROUND_PAGES};
pub use table::TableRef;
pub use tables::{PageTables, PAGE_GRANULARITY};
pub use verify::VerifyError;
pub use walk::{walk, Translation, Walk, WalkOutcome, WalkStep};
