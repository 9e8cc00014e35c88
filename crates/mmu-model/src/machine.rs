//! The simulated machine: CPUs with their control registers and TLBs,
//! physical memory and the frame pool, behind one lock.

use crate::config::SimConfig;
use crate::fault::{AccessError, Mode, PageFault};
use crate::frames::{FramePool, FreeError};
use crate::memory::PhysicalMemory;
use crate::tlb::{FrameUse, Tlb};
use crate::walk::{self, Controls, FaultKind};
use aspace::{FaultAccess, PhysAddr, VirtAddr};
use core::fmt;
use paging::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What an `INVPCID` instruction is asked to drop (SDM vol. 2, INVPCID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvpcidKind {
    /// Type 0: the non-global translations of `va` tagged `pcid`.
    Address {
        /// The PCID.
        pcid: u16,
        /// Any address in the page.
        va: u64,
    },
    /// Type 1: every non-global translation tagged `pcid`.
    SingleContext {
        /// The PCID.
        pcid: u16,
    },
    /// Type 2: every translation, global ones included, of every PCID.
    AllIncludingGlobal,
    /// Type 3: every non-global translation of every PCID.
    AllNonGlobal,
}

/// Counts of TLB work, for the whole machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbCounters {
    /// Single-page invalidations asked for: one per page of
    /// `invalidate(.., Pages)`, per `invlpg`, per `INVPCID` type 0.
    pub page_invalidations: u64,
    /// Whole-space or whole-TLB invalidations asked for:
    /// `invalidate(.., All)` and `INVPCID` types 1 to 3.
    pub full_flushes: u64,
    /// `load_root` calls (CR3 writes).
    pub cr3_loads: u64,
    /// Page walks (TLB misses, and writes through clean entries).
    pub walks: u64,
    /// Accesses answered by a TLB entry.
    pub tlb_hits: u64,
}

/// One simulated CPU.
struct Cpu {
    /// What CR3 was loaded with, if anything yet.
    space: Option<SpaceId>,
    /// The PCID current translations are tagged with (0 without PCIDs).
    pcid: u16,
    controls: Controls,
    tlb: Tlb,
}

/// Everything behind the lock.
struct State {
    features: PagingFeatures,
    memory: PhysicalMemory,
    frames: FramePool,
    cpus: Vec<Cpu>,
    selected: usize,
    invalidation_enabled: bool,
    strict: bool,
    violations: Vec<String>,
    counters: TlbCounters,
    /// The zero frame, once [`SimMachine::enable_zero_frame`] made one.
    zero_frame: Option<u64>,
}

/// A simulated x86-64 machine: a cheap, shareable handle (`Clone`, `Send`,
/// `Sync`) onto CPUs, TLBs, physical memory and a frame pool.
///
/// It implements [`paging::Machine`], and adds what tests need: accesses
/// through the MMU of a chosen CPU, control-register switches, direct TLB
/// instructions, failure injection, counters and a record of every rule the
/// code under test broke (see the crate documentation). The trait's methods
/// that are `unsafe` to call on hardware ([`SimMachine::read_u64`],
/// [`SimMachine::write_u64`], [`SimMachine::free_frame`],
/// [`SimMachine::load_root`]) are safe methods here too, so that tests can
/// build and break tables by hand: on the model a misuse is a recorded
/// violation, never undefined behaviour.
#[derive(Clone)]
pub struct SimMachine {
    state: Arc<Mutex<State>>,
}

impl SimMachine {
    /// A machine shaped by `config`, with every CPU's CR3 not yet loaded,
    /// CR0.WP and CR4.PGE on, EFER.NXE as `features.nx`, SMEP and SMAP off.
    pub fn new(config: SimConfig) -> Self {
        assert!(config.cpus >= 1, "a machine needs at least one CPU");
        assert!((32..=52).contains(&config.features.phys_bits), "MAXPHYADDR must lie in 32..=52");
        let controls = Controls {
            write_protect: true,
            smep: false,
            smap: false,
            alignment_check: false,
            nxe: config.features.nx,
            pge: true,
        };
        let cpus = (0..config.cpus).map(|_| Cpu { space: None, pcid: 0, controls, tlb: Tlb::default() }).collect();
        let state = State {
            features: config.features,
            memory: PhysicalMemory::default(),
            frames: FramePool::new(config.frame_pool),
            cpus,
            selected: 0,
            invalidation_enabled: true,
            strict: true,
            violations: Vec::new(),
            counters: TlbCounters::default(),
            zero_frame: None,
        };
        SimMachine { state: Arc::new(Mutex::new(state)) }
    }

    /// The state. A strict violation panics with the lock held; the state
    /// is still consistent then, so a poisoned lock is simply taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes CPU `cpu` the one that `load_root`, `current_root`, the
    /// accesses and the control-register switches act on.
    pub fn select_cpu(&self, cpu: usize) {
        let mut state = self.state();
        assert!(cpu < state.cpus.len(), "CPU {cpu} does not exist ({} CPUs)", state.cpus.len());
        state.selected = cpu;
    }

    /// The selected CPU.
    pub fn current_cpu(&self) -> usize {
        self.state().selected
    }

    /// The number of CPUs.
    pub fn cpu_count(&self) -> usize {
        self.state().cpus.len()
    }

    /// Reads the 8 bytes at `va` (8-byte aligned) through the MMU of the
    /// selected CPU: the TLB first, else a walk.
    pub fn read_u64_at(&self, va: u64, mode: Mode) -> Result<u64, AccessError> {
        assert!(va.is_multiple_of(8), "read_u64_at({va:#x}): the address must be 8-byte aligned");
        let mut state = self.state();
        let pa = state.access(va, FaultAccess::Read, mode)?;
        Ok(state.memory.read(pa))
    }

    /// Writes the 8 bytes at `va` (8-byte aligned) through the MMU of the
    /// selected CPU.
    pub fn write_u64_at(&self, va: u64, value: u64, mode: Mode) -> Result<(), AccessError> {
        assert!(va.is_multiple_of(8), "write_u64_at({va:#x}): the address must be 8-byte aligned");
        let mut state = self.state();
        let pa = state.access(va, FaultAccess::Write, mode)?;
        if state.zero_frame == Some(pa & !0xfff) {
            state.violation(format!("write at VA {va:#x} reached the zero frame {pa:#x}: every reader's zeros change"));
        }
        if state.frames.is_shared_copy_on_write(pa) {
            // Two spaces share the frame until one writes: the write must
            // have faulted and copied. A stale writable TLB entry (an
            // invalidation skipped after a fork) lets it through instead.
            state.violation(format!(
                "write at VA {va:#x} reached frame {:#x}, which is shared copy-on-write: the writer's space \
                 sees the other's data change",
                pa & !0xfff
            ));
        }
        state.memory.write(pa, value);
        Ok(())
    }

    /// Fetches an instruction at `va` through the MMU of the selected CPU.
    pub fn fetch_at(&self, va: u64, mode: Mode) -> Result<(), AccessError> {
        self.state().access(va, FaultAccess::Execute, mode).map(|_| ())
    }

    /// Translates `va` for `access` in `mode` as an access would (TLB
    /// first, A/D updates, faults), and returns the physical address.
    pub fn translate(&self, va: u64, access: FaultAccess, mode: Mode) -> Result<u64, AccessError> {
        self.state().access(va, access, mode)
    }

    /// Frames allocated from the pool and not freed.
    pub fn frames_in_use(&self) -> usize {
        self.state().frames.in_use()
    }

    /// Makes the `n`-th `alloc_frame` call from now fail (`Some(0)`: the
    /// very next one), once; `None`: no call fails.
    pub fn fail_nth_allocation(&self, n: Option<u64>) {
        self.state().frames.fail_nth(n);
    }

    /// `alloc_frame` calls so far, failed ones included.
    pub fn allocations(&self) -> u64 {
        self.state().frames.allocations()
    }

    /// `false` turns [`Machine::invalidate`] into a no-op (a machine that
    /// forgets its TLB shootdowns), to show that a missing flush is caught.
    /// Its calls are still counted; CR3 loads, [`SimMachine::invlpg`] and
    /// [`SimMachine::invpcid`] keep working.
    pub fn set_invalidation_enabled(&self, on: bool) {
        self.state().invalidation_enabled = on;
    }

    /// Every rule break recorded so far.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// `true` (the default): a rule break panics at once. `false`: it is
    /// only recorded, for [`SimMachine::violations`].
    pub fn set_strict(&self, panic_on_violation: bool) {
        self.state().strict = panic_on_violation;
    }

    /// The TLB work done so far.
    pub fn counters(&self) -> TlbCounters {
        self.state().counters
    }

    /// Sets CR0.WP on the selected CPU.
    pub fn set_cr0_wp(&self, on: bool) {
        self.state().selected_cpu().controls.write_protect = on;
    }

    /// Sets CR4.SMEP on the selected CPU.
    pub fn set_smep(&self, on: bool) {
        self.state().selected_cpu().controls.smep = on;
    }

    /// Sets CR4.SMAP on the selected CPU.
    pub fn set_smap(&self, on: bool) {
        self.state().selected_cpu().controls.smap = on;
    }

    /// Sets RFLAGS.AC on the selected CPU.
    pub fn set_rflags_ac(&self, on: bool) {
        self.state().selected_cpu().controls.alignment_check = on;
    }

    /// Sets IA32_EFER.NXE on the selected CPU. Cached translations keep the
    /// rights they were made with.
    pub fn set_nxe(&self, on: bool) {
        self.state().selected_cpu().controls.nxe = on;
    }

    /// Sets CR4.PGE on the selected CPU. Like the real register write, any
    /// change flushes the whole TLB, global entries included (SDM §4.10.4.1).
    pub fn set_pge(&self, on: bool) {
        let mut state = self.state();
        let cpu = state.selected_cpu();
        if cpu.controls.pge != on {
            cpu.controls.pge = on;
            cpu.tlb.invalidate_all(true);
        }
    }

    /// `INVLPG va` on the selected CPU: drops the translations of `va` of
    /// every page size tagged with the current PCID, and global ones for
    /// `va` whatever their PCID.
    pub fn invlpg(&self, va: u64) {
        let mut state = self.state();
        state.counters.page_invalidations += 1;
        let cpu = state.selected_cpu();
        cpu.tlb.invalidate_address(Some(cpu.pcid), va, true);
    }

    /// `INVPCID` on the selected CPU.
    pub fn invpcid(&self, kind: InvpcidKind) {
        let mut state = self.state();
        match kind {
            InvpcidKind::Address { .. } => state.counters.page_invalidations += 1,
            _ => state.counters.full_flushes += 1,
        }
        let tlb = &mut state.selected_cpu().tlb;
        match kind {
            InvpcidKind::Address { pcid, va } => tlb.invalidate_address(Some(pcid), va, false),
            InvpcidKind::SingleContext { pcid } => tlb.invalidate_pcid(pcid),
            InvpcidKind::AllIncludingGlobal => tlb.invalidate_all(true),
            InvpcidKind::AllNonGlobal => tlb.invalidate_all(false),
        }
    }

    /// How many translations CPU `cpu`'s TLB holds.
    pub fn tlb_entries(&self, cpu: usize) -> usize {
        self.state().cpus[cpu].tlb.len()
    }

    /// The physical address CPU `cpu`'s TLB would translate `va` to under
    /// that CPU's current PCID, if it holds a translation; no side effects.
    pub fn cached_translation(&self, cpu: usize, va: u64) -> Option<u64> {
        let state = self.state();
        let cpu = &state.cpus[cpu];
        let entry = cpu.tlb.lookup(cpu.pcid, va).next()?;
        Some(entry.translation.phys_base + (va - entry.translation.virt_base))
    }
}

impl fmt::Debug for SimMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("SimMachine")
            .field("features", &state.features)
            .field("cpus", &state.cpus.len())
            .field("selected", &state.selected)
            .field("frames_in_use", &state.frames.in_use())
            .field("violations", &state.violations.len())
            .finish()
    }
}

impl State {
    fn selected_cpu(&mut self) -> &mut Cpu {
        &mut self.cpus[self.selected]
    }

    /// Records a rule break; panics if strict.
    fn violation(&mut self, message: String) {
        if self.strict {
            panic!("mmu-model: rule broken: {message}");
        }
        self.violations.push(message);
    }

    /// The tag TLB entries of `space` carry: its PCID with CR4.PCIDE on,
    /// else 0 (SDM §4.10.1).
    fn pcid_tag(&self, space: SpaceId) -> u16 {
        match (self.features.pcid, space.pcid) {
            (true, Some(pcid)) => pcid,
            _ => 0,
        }
    }

    /// Translates `va` for an access on the selected CPU, as the processor
    /// does: the TLB first, a walk on a miss, a fault invalidating the
    /// translations of the faulting address (§4.10.4.1).
    fn access(&mut self, va: u64, access: FaultAccess, mode: Mode) -> Result<u64, AccessError> {
        if !VirtAddr(va).is_canonical(self.features.virt_width()) {
            return Err(AccessError::NonCanonical);
        }
        let cpu_index = self.selected;
        let cpu = &self.cpus[cpu_index];
        let (pcid, controls) = (cpu.pcid, cpu.controls);
        let Some(space) = cpu.space else {
            panic!("CPU {cpu_index} accessed {va:#x} before any root table was loaded");
        };

        let (first, second) = {
            let mut cached = cpu.tlb.lookup(pcid, va);
            (cached.next().copied(), cached.next().copied())
        };
        if let Some(entry) = first {
            // Two sizes for one address (a large page split while this CPU
            // used it) are harmless while they agree; differing ones are
            // undefined (SDM 4.10.2.3).
            let differ = |a: &crate::walk::Translation, b: &crate::walk::Translation| {
                a.phys_base + (va - a.virt_base) != b.phys_base + (va - b.virt_base) || a.rights != b.rights
            };
            if let Some(other) = second.filter(|other| differ(&entry.translation, &other.translation)) {
                let (a, b) = (entry.translation, other.translation);
                self.violation(format!(
                    "CPU {cpu_index}'s TLB holds two translations for VA {va:#x} ({:?} page at PA {:#x}, {:?} page \
                     at PA {:#x}): a mapping changed without invalidating the old one (SDM 4.10.2.3)",
                    a.size, a.phys_base, b.size, b.phys_base
                ));
            }
            self.counters.tlb_hits += 1;
            let translation = entry.translation;
            if !walk::allowed(translation.rights, access, mode, controls) {
                return Err(self.fault(va, FaultKind::Protection, access, mode));
            }
            if access != FaultAccess::Write || translation.dirty {
                let pa = translation.phys_base + (va - translation.virt_base);
                self.check_live_data(va, pa);
                return Ok(pa);
            }
            // A write through a clean entry: the processor walks again to
            // set D in memory (§4.8), with whatever the tables hold now.
            self.cpus[cpu_index].tlb.invalidate_address(Some(pcid), va, true);
        }

        self.counters.walks += 1;
        let features = self.features;
        let outcome = walk::walk(&mut self.memory, &features, controls, space.root.0, va, access, mode);
        for &table in outcome.tables.frames() {
            if self.frames.is_free_pool_memory(table) {
                self.violation(format!(
                    "CPU {cpu_index} walked VA {va:#x} through a page table at PA {table:#x}, which is a free frame \
                     (a freed table is still linked in)"
                ));
            }
        }
        match outcome.result {
            Err(kind) => Err(self.fault(va, kind, access, mode)),
            Ok(translation) => {
                self.cpus[cpu_index].tlb.insert(pcid, translation);
                let pa = translation.phys_base + (va - translation.virt_base);
                self.check_live_data(va, pa);
                Ok(pa)
            }
        }
    }

    /// A page fault on the selected CPU: its error code, and the
    /// invalidation of `va`'s translations that every #PF does (§4.10.4.1).
    fn fault(&mut self, va: u64, kind: FaultKind, access: FaultAccess, mode: Mode) -> AccessError {
        let cpu = self.selected_cpu();
        let code = walk::error_code(kind, access, mode, cpu.controls);
        cpu.tlb.invalidate_address(Some(cpu.pcid), va, true);
        AccessError::PageFault(PageFault { addr: va, code })
    }

    /// Flags a data access landing in a free frame of the pool.
    fn check_live_data(&mut self, va: u64, pa: u64) {
        if self.frames.is_free_pool_memory(pa) {
            let cpu = self.selected;
            self.violation(format!("CPU {cpu} accessed VA {va:#x} at PA {pa:#x}, in a free frame (use after free)"));
        }
    }

    /// Flags a bad physical access through [`Machine::read_u64`] or
    /// [`Machine::write_u64`].
    fn check_physical_access(&mut self, addr: u64, what: &str) {
        if !addr.is_multiple_of(8) {
            self.violation(format!("{what} of physical address {addr:#x}, which is not 8-byte aligned"));
        }
        if addr >> self.features.phys_bits != 0 {
            self.violation(format!(
                "{what} of physical address {addr:#x}, at or above 2^{} (MAXPHYADDR)",
                self.features.phys_bits
            ));
        }
        if self.frames.is_free_pool_memory(addr) {
            self.violation(format!("{what} of physical address {addr:#x}, in a free frame (use after free)"));
        }
    }
}

impl SimMachine {
    // The accesses of `paging::Machine` that are unsafe to call on real
    // hardware are safe on the model: every misuse (a use after free, an
    // unaligned or too wide address, a free of a frame still in use) is a
    // recorded violation, never undefined behaviour. Tests call these
    // directly; the trait's methods forward to them.

    /// Gives the machine a zero frame ([`Machine::zero_frame`]): a zeroed
    /// frame of the pool that stays allocated for good (it counts in
    /// [`SimMachine::frames_in_use`]) and whose every write through the MMU
    /// is a violation. Returns it; a second call returns the same frame.
    pub fn enable_zero_frame(&self) -> PhysAddr {
        if let Some(frame) = self.state().zero_frame {
            return PhysAddr(frame);
        }
        let frame = Machine::alloc_frame(self).expect("a frame for the zero page");
        self.state().zero_frame = Some(frame.0);
        frame
    }

    /// [`Machine::free_frame`]: returns `frame` to the pool, recording a
    /// violation if it is not an allocated frame of the pool or some CPU
    /// still uses it (its CR3, or a TLB entry to it or walked through it).
    pub fn free_frame(&self, frame: PhysAddr) {
        let mut state = self.state();
        let frame = frame.0;
        match state.frames.free(frame) {
            Ok(true) => {}
            // Another space still maps it: nothing is freed yet.
            Ok(false) => return,
            Err(FreeError::NotFromPool) => {
                return state.violation(format!("free_frame({frame:#x}): not a 4 KiB frame of the pool"));
            }
            Err(FreeError::NotAllocated) => {
                return state.violation(format!("free_frame({frame:#x}): the frame is not allocated (double free?)"));
            }
        }
        let mut problems = Vec::new();
        for (n, cpu) in state.cpus.iter().enumerate() {
            if cpu.space.is_some_and(|space| space.root.0 == frame) {
                problems.push(format!("frame {frame:#x} freed while CPU {n}'s CR3 still points at it"));
            }
            if let Some((entry, how)) = cpu.tlb.user_of_frame(frame) {
                let va = entry.translation.virt_base;
                let pcid = entry.pcid;
                problems.push(match how {
                    FrameUse::MapsTo => {
                        format!("frame {frame:#x} freed while CPU {n}'s TLB still maps VA {va:#x} (PCID {pcid}) to it")
                    }
                    FrameUse::WalkedThrough => format!(
                        "frame {frame:#x} freed while CPU {n}'s TLB still maps VA {va:#x} (PCID {pcid}) through it \
                         (a page table on the walk of a cached translation)"
                    ),
                });
            }
        }
        for problem in problems {
            state.violation(problem);
        }
        state.memory.forget_frame(frame);
    }

    /// [`Machine::read_u64`]: the word of simulated physical memory at
    /// `addr`, recording a violation for an unaligned, too wide or freed address.
    pub fn read_u64(&self, addr: PhysAddr) -> u64 {
        let mut state = self.state();
        state.check_physical_access(addr.0, "read");
        state.memory.read(addr.0 & !7)
    }

    /// [`Machine::write_u64`]: writes the word of simulated physical memory
    /// at `addr`, recording a violation for an unaligned, too wide or freed address.
    pub fn write_u64(&self, addr: PhysAddr, value: u64) {
        let mut state = self.state();
        state.check_physical_access(addr.0, "write");
        state.memory.write(addr.0 & !7, value);
    }

    /// [`Machine::load_root`]: a CR3 write on the selected CPU (SDM
    /// §4.10.4.1): without PCIDs it drops every non-global translation; with
    /// a PCID it drops those tagged with the new PCID, or nothing if
    /// `keep_tlb` (CR3 bit 63) is set.
    pub fn load_root(&self, space: SpaceId, keep_tlb: bool) {
        let mut state = self.state();
        state.counters.cr3_loads += 1;
        let root = space.root.0;
        if !root.is_multiple_of(4096) || root >> state.features.phys_bits != 0 {
            state.violation(format!("load_root({root:#x}): not a 4 KiB-aligned address below MAXPHYADDR"));
        }
        if state.frames.is_free_pool_memory(root) {
            state.violation(format!("load_root({root:#x}): the root table is a free frame"));
        }
        if space.pcid.is_some_and(|pcid| pcid >= 4096) {
            state.violation(format!("load_root: PCID {:?} does not fit in 12 bits", space.pcid));
        }
        let pcid_in_use = state.features.pcid && space.pcid.is_some();
        let pcid = state.pcid_tag(space);
        let cpu = state.selected_cpu();
        cpu.space = Some(space);
        cpu.pcid = pcid;
        if !(pcid_in_use && keep_tlb) {
            // Without CR4.PCIDE every entry is tagged 0, so this drops all
            // the non-global ones.
            cpu.tlb.invalidate_pcid(pcid);
        }
    }
}

// SAFETY: the model keeps its promises in software: `read_u64` and
// `write_u64` reach the word of simulated physical memory at the address
// given (and record a violation for an address no kernel could use),
// `alloc_frame` hands out zeroed frames of its pool that it hands to no one
// else until they are freed, `invalidate` drops the translations from every
// simulated TLB that may hold them (an ideal shootdown), `load_root` and
// `current_root` act on the selected CPU's CR3, and `features` is what
// every simulated CPU walks with.
unsafe impl Machine for SimMachine {
    fn features(&self) -> PagingFeatures {
        self.state().features
    }

    fn alloc_frame(&self) -> Option<PhysAddr> {
        let mut state = self.state();
        let frame = state.frames.allocate()?;
        state.memory.zero_frame(frame);
        Some(PhysAddr(frame))
    }

    /// An ideal shootdown, on every CPU that may hold translations of
    /// `space`: with CR4.PCIDE every CPU (entries tagged with the space's
    /// PCID may outlive a switch away), without it the CPUs whose CR3 holds
    /// `space.root`. `Pages` drops the pages' translations of every size,
    /// global ones included (on every CPU, as global translations belong to
    /// no single space); `All` drops the space's non-global translations,
    /// like a CR3 reload: global ones survive it.
    fn invalidate(&self, space: SpaceId, what: TlbInvalidation<'_>) {
        let mut state = self.state();
        match what {
            TlbInvalidation::Pages(pages) => state.counters.page_invalidations += pages.len() as u64,
            TlbInvalidation::All => state.counters.full_flushes += 1,
        }
        if !state.invalidation_enabled {
            return;
        }
        let pcid = state.pcid_tag(space);
        let pcide = state.features.pcid;
        for cpu in &mut state.cpus {
            let may_hold_space = pcide || cpu.space.is_some_and(|loaded| loaded.root == space.root);
            let tag = may_hold_space.then_some(pcid);
            match what {
                TlbInvalidation::Pages(pages) => {
                    for page in pages {
                        cpu.tlb.invalidate_address(tag, page.0, true);
                    }
                }
                TlbInvalidation::All => {
                    if let Some(tag) = tag {
                        cpu.tlb.invalidate_pcid(tag);
                    }
                }
            }
        }
    }

    fn current_root(&self) -> PhysAddr {
        let mut state = self.state();
        state.selected_cpu().space.map_or(PhysAddr(0), |space| space.root)
    }

    unsafe fn free_frame(&self, frame: PhysAddr) {
        SimMachine::free_frame(self, frame);
    }

    fn zero_frame(&self) -> Option<PhysAddr> {
        self.state().zero_frame.map(PhysAddr)
    }

    unsafe fn share_frame(&self, frame: PhysAddr, copy_on_write: bool) -> bool {
        let mut state = self.state();
        if state.frames.share(frame.0, copy_on_write).is_err() {
            state.violation(format!("share_frame({:#x}): the frame is not allocated", frame.0));
            return false;
        }
        true
    }

    fn frame_is_shared(&self, frame: PhysAddr) -> bool {
        self.state().frames.is_shared(frame.0)
    }

    unsafe fn read_u64(&self, addr: PhysAddr) -> u64 {
        SimMachine::read_u64(self, addr)
    }

    unsafe fn write_u64(&self, addr: PhysAddr, value: u64) {
        SimMachine::write_u64(self, addr, value);
    }

    unsafe fn load_root(&self, space: SpaceId, keep_tlb: bool) {
        SimMachine::load_root(self, space, keep_tlb);
    }
}
