//! TLB shootdown: after an edit of an address space, no CPU may keep a
//! translation the edit changed.
//!
//! The paging code calls [`invalidate`] (through `KernelMachine`) once per
//! edit, with the edit's whole flush batch: a list of pages, or "everything"
//! past the batch's ceiling. [`invalidate`]:
//! 1. bumps the space's generation (when it has a PCID, see below);
//! 2. finds the CPUs that have the space's root in CR3 ([`cpus_holding`]);
//! 3. flushes locally if this CPU is one of them;
//! 4. posts one request (root, pages or everything) in its own mailbox slot,
//!    marks it pending at each other holder and sends each the shootdown
//!    IPI: one round of IPIs per edit, none to CPUs that run another space
//!    or are idle in the default one;
//! 5. waits until every target has acknowledged, servicing the requests
//!    other CPUs post to it meanwhile (two CPUs shooting at each other
//!    each answer the other while they wait).
//!
//! Who holds a space: each CPU publishes the root it is loading in
//! [`load_root`], *before* it writes CR3, and withdraws the root it left only
//! *after* the CR3 write. An initiator reads the published roots after its
//! table writes (with a full fence in between), so a CPU it misses must load
//! CR3 after those writes and walks the new tables.
//!
//! Lazily skipped CPUs, and freed page tables: without PCIDs, a CPU that
//! switched away from a space has dropped every translation and
//! paging-structure-cache entry of it in its CR3 load (Nacre never sets the
//! global bit), so it cannot reach a page table the edit freed. With PCIDs it
//! keeps them, tagged; every edit bumps the space's generation, and
//! [`load_root`] keeps a PCID's entries only if the generation has not moved
//! since this CPU last loaded it. A CPU uses only the current PCID's entries,
//! so stale tagged entries are harmless until that check drops them.
//!
//! Deadlock freedom: a target with interrupts off cannot take the IPI, so
//! every place that waits with interrupts off for something a shootdown
//! initiator may hold services the mailbox while it spins: the initiator's
//! own ack wait and the address-space lock (`Space::lock`). The edit's
//! initiator holds that lock while it waits, and the page-fault path takes
//! it with interrupts off, so a faulting target answers from the lock's wait
//! loop. The servicing itself takes no lock.

use crate::arch::apic;
use crate::arch::cpu::{self, rdtsc, without_interrupts};
use crate::arch::frame::TrapFrame;
use crate::arch::trap::register_handler;
use crate::percpu::{self, MAX_CPUS};
use aspace::VirtAddr;
use core::fmt::{self, Write};
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use paging::{SpaceId, TlbInvalidation};

/// CR3 bit 63: on a CR3 load with PCIDs on, keep the new PCID's TLB entries.
const CR3_KEEP_TLB: u64 = 1 << 63;
/// CR3 bits 11:0 hold the PCID when CR4.PCIDE is set.
const CR3_PCID_MASK: u64 = 0xfff;
/// How many PCIDs there are (12 bits).
const PCID_COUNT: usize = 4096;
/// How many PCIDs each CPU remembers the generation of.
const PCID_CACHE_ENTRIES: usize = 8;

/// One CPU's TLB counters.
pub struct TlbCounters {
    /// Edits that needed other CPUs: rounds of shootdown IPIs sent.
    pub shootdowns_sent: AtomicU64,
    /// IPIs sent (one per target CPU per round).
    pub ipis_sent: AtomicU64,
    /// Requests from other CPUs serviced here.
    pub shootdowns_received: AtomicU64,
    /// Requests that found the space no longer loaded here (nothing to drop).
    pub received_not_loaded: AtomicU64,
    /// Edits that needed no other CPU (no one else had the space loaded).
    pub local_only: AtomicU64,
    /// Single pages invalidated here (`invlpg`), for local edits and requests.
    pub pages_invalidated: AtomicU64,
    /// Full flushes of the TLB here, for local edits and requests.
    pub full_flushes: AtomicU64,
    /// PCID switches that kept the TLB, and ones that had to drop it.
    pub pcid_kept: AtomicU64,
    /// Time-stamp-counter ticks spent waiting for acknowledgements.
    pub ack_wait_ticks: AtomicU64,
}

impl TlbCounters {
    const fn new() -> TlbCounters {
        TlbCounters {
            shootdowns_sent: AtomicU64::new(0),
            ipis_sent: AtomicU64::new(0),
            shootdowns_received: AtomicU64::new(0),
            received_not_loaded: AtomicU64::new(0),
            local_only: AtomicU64::new(0),
            pages_invalidated: AtomicU64::new(0),
            full_flushes: AtomicU64::new(0),
            pcid_kept: AtomicU64::new(0),
            ack_wait_ticks: AtomicU64::new(0),
        }
    }
}

/// A CPU's outgoing request: what its targets must drop. Written only by
/// its owner, before it marks the targets; read by the targets until they
/// acknowledge; never changed while acknowledgements are outstanding.
struct Request {
    root: AtomicU64,
    /// The PCID + 1, or 0 for none.
    pcid_plus_one: AtomicU64,
    everything: AtomicBool,
    pages: AtomicPtr<VirtAddr>,
    page_count: AtomicUsize,
    /// Bit n: CPU n has not acknowledged yet.
    waiting_for: AtomicU64,
}

impl Request {
    const fn new() -> Request {
        Request {
            root: AtomicU64::new(0),
            pcid_plus_one: AtomicU64::new(0),
            everything: AtomicBool::new(false),
            pages: AtomicPtr::new(core::ptr::null_mut()),
            page_count: AtomicUsize::new(0),
            waiting_for: AtomicU64::new(0),
        }
    }
}

/// Each CPU's outgoing request, by CPU id.
static REQUESTS: [Request; MAX_CPUS] = [const { Request::new() }; MAX_CPUS];
/// Each CPU's mailbox: bit n set = CPU n's request waits for this CPU.
static INCOMING: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Each CPU's counters.
static COUNTERS: [TlbCounters; MAX_CPUS] = [const { TlbCounters::new() }; MAX_CPUS];
/// The generation of the space running under each PCID: bumped by every
/// invalidation of that space and when the PCID is given to another space.
static GENERATION: [AtomicU64; PCID_COUNT] = [const { AtomicU64::new(0) }; PCID_COUNT];
/// Per CPU, the PCIDs it loaded lately and the generation each had then,
/// packed as `generation << 12 | pcid` (0 = empty: PCID 0 is never cached).
/// Touched only by the CPU itself, interrupts off.
static PCID_SEEN: [[AtomicU64; PCID_CACHE_ENTRIES]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; PCID_CACHE_ENTRIES] }; MAX_CPUS];

/// Polls of an acknowledgement wait made without the spin-wait hint
/// (`pause`) before every further poll uses it. Under QEMU's TCG, `pause`
/// leaves the translated-code loop (165 ns, `bench primitives`) and
/// delays noticing the acknowledgement: a one-page shootdown on 2 CPUs took
/// 3.1 µs with `pause` in every poll and 2.6 µs with none. Under TCG an
/// acknowledgement took 110–130 polls on average (about 0.8 µs), and fewer
/// than 3% of the waits went past 256; on hardware these polls pass in well
/// under a microsecond, and a longer wait spins politely.
const TIGHT_ACK_POLLS: u32 = 256;

/// The debug switch of `shootdownTest broken`: when set, edits flush only
/// the local TLB and send no IPI.
static REMOTE_SHOOTDOWN_DISABLED: AtomicBool = AtomicBool::new(false);

/// Registers the shootdown IPI's handler. Call once at boot, before other
/// CPUs start.
pub fn init() {
    register_handler(apic::SHOOTDOWN_VECTOR, shootdown_interrupt).expect("the shootdown vector is free");
}

/// Turns the remote half of every shootdown off (`true`) or on again. Only
/// the stress test uses it, to show that it catches a missing shootdown.
pub fn set_remote_shootdowns_disabled(disabled: bool) {
    REMOTE_SHOOTDOWN_DISABLED.store(disabled, Ordering::SeqCst);
}

/// The counters of CPU `cpu`.
pub fn counters(cpu: u32) -> &'static TlbCounters {
    &COUNTERS[cpu as usize]
}

/// Adds `n` to one of this CPU's counters: a load and a store, not a
/// locked add (which costs far more under an emulator). Only the CPU that
/// owns the counters writes them, with interrupts off; others only read.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

fn this_cpu() -> usize {
    percpu::current().id as usize
}

/// The CPUs (a bit per CPU id) that have `root` loaded, are loading it, or
/// are still leaving it: each CPU's one loaded-space record
/// ([`percpu::LoadedSpace`]).
pub fn cpus_holding(root: u64) -> u64 {
    percpu::all_cpus().filter(|cpu| cpu.loaded.may_hold(root)).fold(0, |cpus, cpu| cpus | 1 << cpu.id)
}

fn current_root() -> u64 {
    cpu::read_cr3() & !CR3_PCID_MASK & !CR3_KEEP_TLB
}

/// Drops `pages` (or everything, when `pages` is `None`) from this CPU's
/// TLB, counting.
fn flush_here(pages: Option<&[VirtAddr]>) {
    let counters = &COUNTERS[this_cpu()];
    match pages {
        Some(pages) => {
            pages.iter().for_each(|page| cpu::invlpg(page.as_u64()));
            bump(&counters.pages_invalidated, pages.len() as u64);
        }
        None => {
            let cr3 = cpu::read_cr3();
            // SAFETY: reloading the root that is loaded keeps every mapping
            // the kernel is using; only the TLB contents change.
            unsafe { cpu::write_cr3(cr3 & !CR3_KEEP_TLB) };
            bump(&counters.full_flushes, 1);
        }
    }
}

/// Drops what `what` names of address space `space` from every TLB that may
/// hold it, and returns once all have (the `Machine::invalidate` contract).
// Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
#[inline(always)]
pub fn invalidate(space: SpaceId, what: TlbInvalidation<'_>) {
    // lab:begin extra-shootdown tlb::invalidate: flush here if loaded, shoot down every other CPU holding the space
    let pages = match what {
        TlbInvalidation::Pages(pages) => Some(pages),
        TlbInvalidation::All => None,
    };
    if !percpu::initialized() {
        if current_root() == space.root.as_u64() {
            flush_here(pages);
        }
        return;
    }
    // Interrupts off: the request slot is this CPU's, and a thread
    // preempted while waiting would let another thread here reuse it.
    without_interrupts(|| {
        let me = this_cpu();
        if let Some(pcid) = space.pcid {
            GENERATION[pcid as usize].fetch_add(1, Ordering::SeqCst);
        }
        // The table writes before, the reads of who holds the space after.
        fence(Ordering::SeqCst);
        let targets = cpus_holding(space.root.as_u64()) & !(1 << me);
        let remote = targets != 0 && !REMOTE_SHOOTDOWN_DISABLED.load(Ordering::Relaxed);
        let request = &REQUESTS[me];
        if remote {
            request.root.store(space.root.as_u64(), Ordering::Relaxed);
            request.pcid_plus_one.store(space.pcid.map_or(0, |pcid| pcid as u64 + 1), Ordering::Relaxed);
            request.everything.store(pages.is_none(), Ordering::Relaxed);
            let list = pages.unwrap_or(&[]);
            request.pages.store(list.as_ptr() as *mut VirtAddr, Ordering::Relaxed);
            request.page_count.store(list.len(), Ordering::Relaxed);
            // Published by the SeqCst mailbox update that follows.
            request.waiting_for.store(targets, Ordering::Release);
            send_to_each(targets, me);
        }
        // After the IPIs, so that it overlaps their delivery.
        if current_root() == space.root.as_u64() {
            flush_here(pages);
        }
        let counters = &COUNTERS[me];
        if !remote {
            bump(&counters.local_only, 1);
            return;
        }
        bump(&counters.shootdowns_sent, 1);
        bump(&counters.ipis_sent, targets.count_ones() as u64);
        note_space_ipis(space.root.as_u64(), targets.count_ones() as u64);
        let start = rdtsc();
        let mut polls = 0u32;
        while request.waiting_for.load(Ordering::Acquire) != 0 {
            // Requests to this CPU would wait for this loop: serve them.
            if INCOMING[me].load(Ordering::Relaxed) != 0 {
                service_pending_shootdowns();
            }
            if polls < TIGHT_ACK_POLLS {
                polls += 1;
            } else {
                core::hint::spin_loop();
            }
        }
        bump(&counters.ack_wait_ticks, rdtsc().wrapping_sub(start));
    })
    // lab:end
}

/// How many address spaces have their shootdown IPIs counted one by one;
/// the IPIs for any more go to [`OTHER_SPACES_IPIS`].
const SPACE_SLOTS: usize = 64;
/// The roots of the spaces counted (0: a free slot).
static SPACE_ROOTS: [AtomicU64; SPACE_SLOTS] = [const { AtomicU64::new(0) }; SPACE_SLOTS];
/// The IPIs sent for each space of [`SPACE_ROOTS`].
static SPACE_IPIS: [AtomicU64; SPACE_SLOTS] = [const { AtomicU64::new(0) }; SPACE_SLOTS];
/// The IPIs sent for spaces that found no free slot.
static OTHER_SPACES_IPIS: AtomicU64 = AtomicU64::new(0);

/// Counts `ipis` shootdown IPIs sent for the space whose root is `root`.
/// Lock-free (it runs with interrupts off, in the shootdown).
fn note_space_ipis(root: u64, ipis: u64) {
    if let Some(slot) = SPACE_ROOTS.iter().position(|slot| slot.load(Ordering::Relaxed) == root) {
        SPACE_IPIS[slot].fetch_add(ipis, Ordering::Relaxed);
        return;
    }
    for (slot, owner) in SPACE_ROOTS.iter().enumerate() {
        match owner.compare_exchange(0, root, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => {
                SPACE_IPIS[slot].fetch_add(ipis, Ordering::Relaxed);
                return;
            }
            Err(now) if now == root => {
                SPACE_IPIS[slot].fetch_add(ipis, Ordering::Relaxed);
                return;
            }
            Err(_) => {}
        }
    }
    OTHER_SPACES_IPIS.fetch_add(ipis, Ordering::Relaxed);
}

/// The shootdown IPIs sent for the address space whose root is `root`
/// since it was made (what `tlbstat` shows per space).
pub fn space_ipis(root: u64) -> u64 {
    SPACE_ROOTS
        .iter()
        .position(|slot| slot.load(Ordering::Relaxed) == root)
        .map_or(0, |slot| SPACE_IPIS[slot].load(Ordering::Relaxed))
}

/// Forgets the count of the space whose root is `root`: it is destroyed,
/// and its root frame may become another space's.
pub fn forget_space(root: u64) {
    if let Some(slot) = SPACE_ROOTS.iter().position(|slot| slot.load(Ordering::Relaxed) == root) {
        SPACE_IPIS[slot].store(0, Ordering::Relaxed);
        SPACE_ROOTS[slot].store(0, Ordering::Release);
    }
}

/// The shootdown IPIs sent for spaces not counted one by one.
pub fn other_spaces_ipis() -> u64 {
    OTHER_SPACES_IPIS.load(Ordering::Relaxed)
}

/// Marks CPU `from`'s request pending at each target and sends the IPIs.
fn send_to_each(targets: u64, from: usize) {
    let mut remaining = targets;
    while remaining != 0 {
        let target = remaining.trailing_zeros() as usize;
        remaining &= remaining - 1;
        INCOMING[target].fetch_or(1 << from, Ordering::SeqCst);
        let apic_id = percpu::by_id(target as u32).map_or(0, |cpu| cpu.apic_id.load(Ordering::Relaxed));
        apic::send_ipi(apic_id, apic::SHOOTDOWN_VECTOR);
    }
}

/// Services every request waiting in this CPU's mailbox, and acknowledges
/// each. Takes no lock, so it may run anywhere interrupts are off: in the
/// IPI handler, in an initiator's ack wait, in a lock's wait loop.
pub fn service_pending_shootdowns() {
    if !percpu::initialized() {
        return;
    }
    // Interrupts off from taking the requests to acknowledging them: a
    // thread preempted in between would hold the acknowledgements while
    // other threads of this CPU spin, interrupts off, for the lock the
    // initiator holds, and nothing would ever run it again.
    without_interrupts(|| {
        let me = this_cpu();
        let mut initiators = INCOMING[me].swap(0, Ordering::AcqRel);
        while initiators != 0 {
            let initiator = initiators.trailing_zeros() as usize;
            initiators &= initiators - 1;
            let request = &REQUESTS[initiator];
            apply(request, me);
            request.waiting_for.fetch_and(!(1 << me), Ordering::Release);
        }
    })
}

/// Carries out one request on this CPU (CPU `me`).
fn apply(request: &Request, me: usize) {
    let counters = &COUNTERS[me];
    bump(&counters.shootdowns_received, 1);
    if current_root() != request.root.load(Ordering::Relaxed) {
        // Switched away since the initiator looked: the CR3 load dropped
        // the space's entries, or (PCID) they are tagged, and the next load
        // of that PCID must not keep them.
        if let Some(pcid) = request.pcid_plus_one.load(Ordering::Relaxed).checked_sub(1) {
            forget_pcid(me, pcid as u16);
        }
        bump(&counters.received_not_loaded, 1);
        return;
    }
    if request.everything.load(Ordering::Relaxed) {
        flush_here(None);
    } else {
        let pages = request.pages.load(Ordering::Relaxed);
        let count = request.page_count.load(Ordering::Relaxed);
        // SAFETY: the initiator keeps the list alive and unchanged until
        // every target has acknowledged, which this CPU does only after
        // this returns.
        let list = unsafe { core::slice::from_raw_parts(pages as *const VirtAddr, count) };
        flush_here(Some(list));
    }
}

fn shootdown_interrupt(_frame: &mut TrapFrame) {
    service_pending_shootdowns();
    apic::end_of_interrupt();
}

/// Loads `space`'s root into CR3 on this CPU, publishing it in this CPU's
/// loaded-space record for [`cpus_holding`] first. With a PCID, `keep_tlb` keeps the PCID's entries
/// only when no invalidation of the space happened since this CPU last
/// loaded it (the generation check).
pub fn load_root(space: SpaceId, keep_tlb: bool) {
    without_interrupts(|| {
        let cpu = percpu::current_or_boot();
        let me = cpu.id as usize;
        let new_root = space.root.as_u64();
        cpu.loaded.leaving.store(current_root(), Ordering::SeqCst);
        cpu.loaded.root.store(new_root, Ordering::SeqCst);
        let mut value = new_root;
        if let Some(pcid) = space.pcid.filter(|_| cpu::pcid_enabled()) {
            value |= pcid as u64 & CR3_PCID_MASK;
            // Read after the root is published: an edit this read misses
            // sees this CPU as a holder and sends it the IPI.
            let generation = GENERATION[pcid as usize].load(Ordering::SeqCst);
            if keep_tlb && remembered_generation(me, pcid) == Some(generation) {
                value |= CR3_KEEP_TLB;
                bump(&COUNTERS[me].pcid_kept, 1);
            }
            remember_generation(me, pcid, generation);
        }
        // SAFETY: address spaces are entered only after check_can_enter has
        // shown that they map the kernel image, heap, stacks and all RAM.
        unsafe { cpu::write_cr3(value) };
        cpu.loaded.leaving.store(0, Ordering::SeqCst);
    })
}

/// A PCID is given to a new address space: entries any CPU still holds
/// under it belong to the old one, so no CPU may keep them.
pub fn retire_pcid(pcid: u16) {
    GENERATION[pcid as usize].fetch_add(1, Ordering::SeqCst);
}

fn remembered_generation(cpu: usize, pcid: u16) -> Option<u64> {
    PCID_SEEN[cpu]
        .iter()
        .map(|slot| slot.load(Ordering::Relaxed))
        .find_map(|packed| (packed != 0 && packed & CR3_PCID_MASK == pcid as u64).then_some(packed >> 12))
}

fn remember_generation(cpu: usize, pcid: u16, generation: u64) {
    let slots = &PCID_SEEN[cpu];
    let packed = generation << 12 | pcid as u64;
    let same_pcid = slots.iter().find(|slot| {
        let old = slot.load(Ordering::Relaxed);
        old != 0 && old & CR3_PCID_MASK == pcid as u64
    });
    // Replace the entry of this PCID, else an empty one, else a rotating victim.
    let slot = same_pcid.or_else(|| slots.iter().find(|slot| slot.load(Ordering::Relaxed) == 0)).unwrap_or_else(|| {
        let victim = (generation as usize + pcid as usize) % PCID_CACHE_ENTRIES;
        &slots[victim]
    });
    slot.store(packed, Ordering::Relaxed);
}

fn forget_pcid(cpu: usize, pcid: u16) {
    for slot in &PCID_SEEN[cpu] {
        let old = slot.load(Ordering::Relaxed);
        if old != 0 && old & CR3_PCID_MASK == pcid as u64 {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// Prints each CPU's shootdown counters (the shell's `tlbstat` command).
pub fn format_tlb_stats(out: &mut dyn Write) -> fmt::Result {
    writeln!(
        out,
        "{:>3}  {:>10}  {:>9}  {:>8}  {:>10}  {:>10}  {:>9}  {:>6}  {:>12}",
        "cpu", "shootdowns", "ipis-sent", "received", "not-loaded", "local-only", "pages", "full", "ack-wait-us"
    )?;
    for cpu in percpu::all_cpus() {
        let c = counters(cpu.id);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let wait_us = crate::arch::tsc::ticks_to_nanos(load(&c.ack_wait_ticks)) / 1000;
        writeln!(
            out,
            "{:>3}  {:>10}  {:>9}  {:>8}  {:>10}  {:>10}  {:>9}  {:>6}  {:>12}",
            cpu.id,
            load(&c.shootdowns_sent),
            load(&c.ipis_sent),
            load(&c.shootdowns_received),
            load(&c.received_not_loaded),
            load(&c.local_only),
            load(&c.pages_invalidated),
            load(&c.full_flushes),
            wait_us
        )?;
    }
    Ok(())
}
