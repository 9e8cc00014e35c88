//! # mmu-model: a software x86-64 MMU for testing the paging code on the host
//!
//! [`SimMachine`] implements [`paging::Machine`] in software, so that the
//! paging code can build real x86-64 page tables in simulated physical
//! memory and tests can then *use* them: read, write and fetch through a
//! simulated MMU with per-CPU TLBs that keep stale translations until they
//! are invalidated, exactly as hardware may. References are to the Intel
//! SDM, volume 3, chapter 4, unless stated otherwise.
//!
//! ## What is modelled
//!
//! - **Physical memory** (sparse, 4 KiB frames). A word never written reads
//!   as [`pattern`] of its physical address, so every physical page reads
//!   differently; frames from `alloc_frame` read as zeros.
//! - **A frame pool** ([`SimConfig::frame_pool`]) with a count of frames in
//!   use and one-shot failure injection ([`SimMachine::fail_nth_allocation`]).
//! - **The page walk** of 4-level and 5-level paging (§4.5), chosen by
//!   `features.la57`: canonical check first (a non-canonical address is a
//!   #GP, reported as [`AccessError::NonCanonical`]); P at every level; PS
//!   in a PDPTE (1 GiB, only with `features.huge_1g`) or a PDE (2 MiB), PS
//!   reserved in PML4Es and PML5Es; reserved bits (§4.5.4): address bits at
//!   or above MAXPHYADDR, bit 63 without EFER.NXE, bits 29:13 of a 1 GiB and
//!   20:13 of a 2 MiB leaf (bit 12 there is PAT and is ignored).
//! - **Access rights** (§4.6): R/W, U/S and XD combined over every level;
//!   CR0.WP for supervisor writes; SMEP for supervisor fetches from user
//!   pages; SMAP for supervisor data accesses to user pages unless RFLAGS.AC.
//!   Every access is an *explicit* access (there are no implicit supervisor
//!   accesses such as descriptor-table loads).
//! - **The error code** (§4.7): P (protection or reserved bit), W/R, U/S,
//!   RSVD, and I/D for fetches when EFER.NXE or CR4.SMEP is on.
//! - **Accessed and dirty flags** (§4.8), written back to the tables in
//!   memory: A on every entry of a successful walk, D on the leaf for a
//!   write. A faulting walk sets nothing (hardware may set A in upper
//!   levels; code must not rely on either).
//! - **Per-CPU TLBs** (§4.10.2), one per CPU with its own CR3 and control
//!   bits. Entries are keyed by PCID (0 without CR4.PCIDE), page size and
//!   virtual page, and hold the physical page, the combined rights, G (with
//!   CR4.PGE, on by default), D, and the page-table frames the walk read.
//!   Every access consults the TLB first, so a changed entry has no effect
//!   until the translation is invalidated. A write through an entry whose D
//!   is clear walks again (§4.8). A page fault drops the translations of the
//!   faulting address (§4.10.4.1), so a fault after a permission increase
//!   heals itself when retried.
//! - **Invalidation** (§4.10.4.1): `invlpg` (all page sizes, current PCID,
//!   and global entries), CR3 loads (non-global entries of the new PCID, or
//!   none with bit 63 "keep"; PCIDs are in use when `features.pcid` and the
//!   [`paging::SpaceId`] has a PCID), `INVPCID` types 0 to 3, CR4.PGE
//!   changes, and [`paging::Machine::invalidate`] as an ideal TLB shootdown
//!   to every CPU that may hold the space's translations.
//!
//! ## Rules the code under test is held to
//!
//! These are *violations*: by default the machine panics at once with a
//! message saying what happened; [`SimMachine::set_strict`]`(false)` only
//! records them for [`SimMachine::violations`].
//!
//! - Freeing a frame that some CPU's TLB still translates *to*, or that a
//!   cached translation was walked *through* (a page table on its walk),
//!   or that a CPU's CR3 points at: the frame could be reused while the
//!   hardware still uses it.
//! - Double frees, and freeing what is not a frame of the pool.
//! - Touching a free frame of the pool: `read_u64`/`write_u64` on it, a
//!   walk through a page table in it, an access landing in it.
//! - Physical accesses at or above 2^MAXPHYADDR, or not 8-byte aligned.
//! - A TLB holding two translations for one address that differ in frame
//!   or rights (a page size changed without invalidation, §4.10.2.3); two
//!   that agree (a large page split while a CPU used it) are allowed.
//! - Loading CR3 with an unaligned or out-of-range root or a PCID wider
//!   than 12 bits.
//!
//! ## What is not modelled
//!
//! - Memory types: PWT, PCD, PAT, MTRRs have no effect (§4.9, chapter 11).
//! - The paging-structure caches (§4.10.3) beyond the page-table frames
//!   each TLB entry remembers: a walk always reads the tables in memory, so
//!   a changed upper-level entry takes effect at once for addresses not in
//!   the TLB, and a table freed after only *faulting* walks through it is
//!   not flagged.
//! - TLB capacity: entries are never evicted, the worst case for staleness.
//! - Protection keys, shadow stacks, SGX, HLAT, 32-bit and PAE paging,
//!   virtualisation (EPT), and the #GP of a CR3 load with bit 63 set while
//!   CR4.PCIDE is off.
//! - Accesses that straddle two pages: the access functions take aligned
//!   8-byte words.
//!
//! ## Beside the hardware: what the regions must become
//!
//! [`RegionModel`] is the other half of the reference: an address space's
//! regions as a plain list, edited by the rules of the `paging`
//! implementation but with code of its own. The model-based tests and the
//! fuzz target run each edit on both and compare; the machine then checks
//! that every access translates as the model's regions say.
#![warn(missing_docs)]

mod config;
mod entry;
mod fault;
mod frames;
mod hash;
mod machine;
mod memory;
pub mod region_model;
mod tlb;
mod walk;

#[cfg(test)]
mod tests;

pub use config::{SimConfig, DEFAULT_POOL_BYTES, DEFAULT_POOL_START};
pub use entry::PageSize;
pub use fault::{AccessError, Mode, PageFault};
pub use machine::{InvpcidKind, SimMachine, TlbCounters};
pub use memory::pattern;
pub use region_model::RegionModel;
