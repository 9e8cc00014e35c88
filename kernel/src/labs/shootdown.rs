//! `shootdownTest`: a stress test that would catch a missing shootdown.
//!
//! One reader thread is pinned to each CPU, inside a shared address space,
//! reading one page (at [`TEST_VA`]) through a fault probe in a tight loop
//! and trying to write a word of it. Meanwhile this thread (the writer,
//! in the default address space) edits that page thousands of times: moves
//! it between two physical pages with different contents, makes it read-only
//! and writable again, removes it and adds it back.
//!
//! Before edit `k` the writer publishes the state edit `k` leads to and
//! `started = k`; after the edit returns, `completed = k`. A reader loads
//! `completed` (c), makes its accesses, then loads `started` (s): the
//! outcome of each access must be what one of the states `c..=s` allows.
//! Seeing state `c - 1` or older — the old page's contents, a write that
//! succeeds on a page that is read-only or gone — means a TLB still held a
//! translation after the edit returned.
//!
//! With `broken`, the debug switch [`crate::tlb::set_remote_shootdowns_disabled`]
//! keeps every edit's invalidation on the writer's CPU; the readers on the
//! other CPUs then see stale translations, and the test fails, as it must.

use crate::address_space::{self, Space};
use crate::labs::random::XorShift;
use crate::mem::frames;
use crate::percpu;
use crate::probe::{probe_read, probe_write, Width};
use crate::thread::{self, JoinHandle};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AspaceError, PhysAddr, Protection, Region};
use core::fmt::Write;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// The page the readers read (64 TiB: canonical with 4- and 5-level paging).
pub const TEST_VA: u64 = 0x0000_4000_0000_0000;
const PAGE: u64 = 4096;
/// The first word of each of the two physical pages: what a read tells apart.
const TAGS: [u64; 2] = [0x5ca1_ab1e_0000_0000, 0xdeca_fbad_1111_1111];
/// The word the readers try to write (not the tag word, which stays as is).
const WRITE_OFFSET: u64 = 8;
/// Edits by default.
pub const DEFAULT_OPERATIONS: usize = 2000;

/// What the test page looks like after an edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageState {
    Unmapped,
    Mapped { page: u8, writable: bool },
}

impl PageState {
    fn encode(self) -> u8 {
        match self {
            PageState::Unmapped => 0,
            PageState::Mapped { page, writable } => 1 + page * 2 + writable as u8,
        }
    }

    fn decode(value: u8) -> PageState {
        match value {
            0 => PageState::Unmapped,
            value => PageState::Mapped { page: (value - 1) / 2, writable: (value - 1) % 2 == 1 },
        }
    }

    fn allows_read(self, value: Result<u64, ()>) -> bool {
        match (self, value) {
            (PageState::Unmapped, Err(())) => true,
            (PageState::Mapped { page, .. }, Ok(value)) => TAGS[page as usize] == value,
            _ => false,
        }
    }

    fn allows_write(self, succeeded: bool) -> bool {
        let writable = matches!(self, PageState::Mapped { writable: true, .. });
        writable == succeeded
    }
}

/// What the writer and the readers share.
struct Shared {
    /// `states[k]`: the state edit `k` leads to (`states[0]`: the initial one).
    states: Vec<AtomicU8>,
    started: AtomicUsize,
    completed: AtomicUsize,
    stop: AtomicBool,
    readers_inside: AtomicUsize,
    violations: AtomicU64,
    first_violation: spin::Mutex<Option<String>>,
    /// Per CPU: the `completed` value the reader there started its last
    /// finished access with (the writer waits for the other CPUs' readers
    /// to catch up after each edit, so that each sees every state).
    caught_up: Vec<AtomicUsize>,
}

impl Shared {
    fn any_state(&self, from: usize, to: usize, allowed: impl Fn(PageState) -> bool) -> bool {
        (from..=to.min(self.states.len() - 1))
            .any(|k| allowed(PageState::decode(self.states[k].load(Ordering::SeqCst))))
    }

    fn report(&self, cpu: u32, what: String) {
        if self.violations.fetch_add(1, Ordering::SeqCst) == 0 {
            *self.first_violation.lock() = Some(format!("cpu {cpu}: {what}"));
        }
    }
}

/// One reader's totals.
#[derive(Clone, Copy, Debug, Default)]
struct ReaderTotals {
    accesses: u64,
    reads_ok: u64,
    writes_ok: u64,
}

/// What one run found.
#[derive(Debug)]
pub struct StressReport {
    /// Edits made while the readers ran.
    pub operations: usize,
    /// Accesses of each reader, by CPU.
    pub accesses: Vec<u64>,
    /// Accesses that saw a state older than the last completed edit.
    pub violations: u64,
    /// The first of them, described.
    pub first_violation: Option<String>,
    /// Shootdown IPIs sent while the readers were inside.
    pub ipis_with_readers: u64,
    /// Shootdown IPIs sent by edits made after the readers left (must be 0).
    pub ipis_after_readers_left: u64,
    /// Edits made after the readers left.
    pub operations_after: usize,
    /// Edits after which a reader on another CPU did not catch up in time.
    pub lagging_edits: usize,
}

/// Creates a paging address space named `name` that the kernel can run in:
/// the kernel half ([`crate::hardening::kernel_regions`]), as a process's
/// space holds it, and nothing in the lower half, which the benchmarks and
/// stress tests fill with the regions they edit. (An identity map of RAM
/// at the bottom as well, beside the direct map at the top, doubled the
/// cost of the benchmarks' edits under QEMU's TCG: with large pages at both
/// ends of the address space, its software TLB drops every entry at each
/// `invlpg`, docs/PERFORMANCE.md.)
pub fn create_enterable_space(name: &str) -> Result<Arc<Space>, AspaceError> {
    let space = address_space::create("paging", name)?;
    let len = address_space::kernel_map_len();
    let added = {
        let mut object = space.lock();
        crate::hardening::kernel_regions(len).into_iter().try_for_each(|(_, region)| object.add_region(region))
    };
    if let Err(error) = added {
        let _ = address_space::destroy(name);
        return Err(error);
    }
    Ok(space)
}

/// Destroys `space`, waiting (yielding) while a CPU is still switching away from it.
pub fn destroy_when_unloaded(space: &Space) -> Result<(), AspaceError> {
    let mut attempts = 0;
    loop {
        match address_space::destroy(space.name()) {
            Err(AspaceError::Busy { .. }) if attempts < 1000 => {
                attempts += 1;
                thread::yield_now();
            }
            other => return other,
        }
    }
}

/// The test page's region in `state` (None when unmapped).
fn region_of(state: PageState, pages: [u64; 2]) -> Option<Region> {
    match state {
        PageState::Unmapped => None,
        PageState::Mapped { page, writable } => {
            // Kernel pages: with SMAP on, the kernel may not read user pages.
            let prot = if writable { Protection::READ | Protection::WRITE } else { Protection::READ };
            let prot = prot | Protection::KERN;
            Some(Region::new(TEST_VA, pages[page as usize], PAGE, prot))
        }
    }
}

/// Makes the edit that takes the page from `from` to `to`.
fn edit(space: &Space, from: PageState, to: PageState, pages: [u64; 2]) -> Result<(), AspaceError> {
    let mut object = space.lock();
    match (region_of(from, pages), region_of(to, pages)) {
        (None, Some(added)) => object.add_region(added),
        (Some(removed), None) => object.remove_region(removed),
        (Some(old), Some(new)) if old.pa != new.pa => object.move_region(old, new.pa),
        (Some(old), Some(new)) => object.protect_region(old, new.prot),
        (None, None) => Ok(()),
    }
}

/// A random next state: another page, the other protection, or gone (and
/// back, on either page).
fn next_state(state: PageState, random: &mut XorShift) -> PageState {
    match state {
        PageState::Unmapped => PageState::Mapped { page: random.below(2) as u8, writable: true },
        PageState::Mapped { page, writable } => match random.below(5) {
            0 | 1 => PageState::Mapped { page: 1 - page, writable },
            2 | 3 => PageState::Mapped { page, writable: !writable },
            _ => PageState::Unmapped,
        },
    }
}

/// The readers' loop, on CPU `cpu`, inside `space`.
fn reader(space: Arc<Space>, shared: Arc<Shared>, cpu: u32) -> ReaderTotals {
    if let Err(error) = address_space::move_current_thread(Some(&space)) {
        shared.report(cpu, format!("cannot enter the test space: {error}"));
        shared.readers_inside.fetch_add(1, Ordering::SeqCst);
        return ReaderTotals::default();
    }
    shared.readers_inside.fetch_add(1, Ordering::SeqCst);
    let mut totals = ReaderTotals::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let completed = shared.completed.load(Ordering::SeqCst);
        let read = probe_read(TEST_VA, Width::U64).map_err(|_| ());
        // SAFETY: the test page is this test's own memory; the word written
        // is not the tag word the readers compare.
        let written = unsafe { probe_write(TEST_VA + WRITE_OFFSET, totals.accesses, Width::U64) }.is_ok();
        // The accesses above happen before `started` is read.
        fence(Ordering::SeqCst);
        let started = shared.started.load(Ordering::SeqCst);
        shared.caught_up[cpu as usize].store(completed, Ordering::SeqCst);
        totals.accesses += 1;
        totals.reads_ok += read.is_ok() as u64;
        totals.writes_ok += written as u64;
        if !shared.any_state(completed, started, |state| state.allows_read(read)) {
            let seen = PageState::decode(shared.states[completed].load(Ordering::SeqCst));
            shared.report(cpu, format!("read {read:x?} after edit {completed} (state {seen:?}, {started} started)"));
        }
        if !shared.any_state(completed, started, |state| state.allows_write(written)) {
            let seen = PageState::decode(shared.states[completed].load(Ordering::SeqCst));
            let outcome = if written { "succeeded" } else { "faulted" };
            shared.report(cpu, format!("write {outcome} after edit {completed} (state {seen:?}, {started} started)"));
        }
    }
    if let Err(error) = address_space::move_current_thread(None) {
        shared.report(cpu, format!("cannot leave the test space: {error}"));
    }
    totals
}

fn ipis_sent_by_all() -> u64 {
    percpu::all_cpus().map(|cpu| crate::tlb::counters(cpu.id).ipis_sent.load(Ordering::Relaxed)).sum()
}

/// Runs the stress test with `operations` edits; with `disable_shootdown`,
/// the remote half of every shootdown is off for the run.
pub fn run(operations: usize, disable_shootdown: bool) -> Result<StressReport, String> {
    let pages = [frames::alloc_zeroed().ok_or("no frame")?, frames::alloc_zeroed().ok_or("no frame")?];
    let pages = pages.map(|frame: PhysAddr| frame.as_u64());
    for (page, tag) in pages.iter().zip(TAGS) {
        // SAFETY: the frames were just allocated for this test; RAM is in
        // the direct map of every address space the kernel runs in.
        unsafe { (crate::direct_map::phys_to_virt(*page) as *mut u64).write_volatile(tag) };
    }
    let result = run_on_pages(operations, disable_shootdown, pages);
    for page in pages {
        let _ = frames::free(PhysAddr::new(page));
    }
    result
}

fn run_on_pages(operations: usize, disable_shootdown: bool, pages: [u64; 2]) -> Result<StressReport, String> {
    let name = format!("shootdown-test-{}", thread::current().id());
    let space = create_enterable_space(&name).map_err(|error| format!("creating the test space: {error}"))?;
    let initial = PageState::Mapped { page: 0, writable: true };
    let shared = Arc::new(Shared {
        states: (0..=operations).map(|_| AtomicU8::new(initial.encode())).collect(),
        started: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        readers_inside: AtomicUsize::new(0),
        violations: AtomicU64::new(0),
        first_violation: spin::Mutex::new(None),
        caught_up: (0..crate::percpu::MAX_CPUS).map(|_| AtomicUsize::new(0)).collect(),
    });
    let mut outcome = edit(&space, PageState::Unmapped, initial, pages).map_err(|e| format!("adding the page: {e}"));
    let cpus: Vec<u32> = percpu::all_cpus().map(|cpu| cpu.id).collect();
    let readers: Vec<JoinHandle> = cpus
        .iter()
        .map(|&cpu| {
            let (space, shared) = (space.clone(), shared.clone());
            thread::spawn_pinned(&format!("reader{cpu}"), cpu, move || reader(space, shared, cpu).accesses)
        })
        .collect();
    while shared.readers_inside.load(Ordering::SeqCst) < readers.len() {
        thread::yield_now();
    }

    crate::tlb::set_remote_shootdowns_disabled(disable_shootdown);
    let ipis_before = ipis_sent_by_all();
    let mut random = XorShift::new(0x5eed_0000 ^ operations as u64);
    let mut state = initial;
    let mut lagging_edits = 0;
    for k in 1..=operations {
        if outcome.is_err() {
            break;
        }
        let next = next_state(state, &mut random);
        shared.states[k].store(next.encode(), Ordering::SeqCst);
        shared.started.store(k, Ordering::SeqCst);
        outcome = edit(&space, state, next, pages).map_err(|e| format!("edit {k} ({state:?} -> {next:?}): {e}"));
        shared.completed.store(k, Ordering::SeqCst);
        state = next;
        lagging_edits += !wait_for_readers(&shared, &cpus, k) as usize;
    }
    crate::tlb::set_remote_shootdowns_disabled(false);
    let ipis_with_readers = ipis_sent_by_all() - ipis_before;
    shared.stop.store(true, Ordering::SeqCst);
    let accesses: Vec<u64> = readers.into_iter().map(JoinHandle::join).collect();

    // The readers have left: their CPUs switched away, so edits now need no IPI.
    let ipis_before_after = ipis_sent_by_all();
    let operations_after = 16;
    for _ in 0..operations_after {
        if outcome.is_err() {
            break;
        }
        let next = next_state(state, &mut random);
        outcome = edit(&space, state, next, pages).map_err(|e| format!("edit after the readers left: {e}"));
        state = next;
    }
    let ipis_after_readers_left = ipis_sent_by_all() - ipis_before_after;
    let removed = edit(&space, state, PageState::Unmapped, pages).map_err(|e| format!("removing the page: {e}"));
    let destroyed = destroy_when_unloaded(&space).map_err(|e| format!("destroying the test space: {e}"));
    outcome.and(removed).and(destroyed)?;
    let first_violation = shared.first_violation.lock().clone();
    Ok(StressReport {
        operations,
        accesses,
        violations: shared.violations.load(Ordering::SeqCst),
        first_violation,
        ipis_with_readers,
        ipis_after_readers_left,
        operations_after,
        lagging_edits,
    })
}

/// Waits until the readers on the other CPUs have each made one access
/// that began after edit `k` completed, so that a stale translation left by
/// edit `k` would be used. Gives up after a while (a reader descheduled by
/// the host); false then. The reader on this CPU is not waited for: it runs
/// when this thread is preempted.
fn wait_for_readers(shared: &Shared, cpus: &[u32], k: usize) -> bool {
    let here = percpu::current().id;
    let deadline = crate::arch::cpu::rdtsc() + 5 * crate::arch::tsc::ticks_per_ms();
    for &cpu in cpus.iter().filter(|&&cpu| cpu != here) {
        while shared.caught_up[cpu as usize].load(Ordering::SeqCst) < k {
            if crate::arch::cpu::rdtsc() > deadline || shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            core::hint::spin_loop();
        }
    }
    true
}

/// The most edits `shootdownTest` makes in one run (a few minutes under TCG).
pub const MAX_OPERATIONS: u64 = 1_000_000;

/// The `shootdownTest [broken] [OPERATIONS]` command: runs the stress test
/// and fails if any reader saw a stale translation, or if an edit made
/// after the readers left sent an IPI. With `broken`, shootdowns to other
/// CPUs are off for the run, so the test is expected to fail.
pub fn shootdown_test(args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let mut broken = false;
    let mut operations = DEFAULT_OPERATIONS;
    for arg in args {
        match *arg {
            "broken" => broken = true,
            number => {
                let asked = aspace::parse::parse_number(number)
                    .map_err(|e| format!("usage: shootdownTest [broken] [OPERATIONS]: {number:?}: {e}"))?;
                if !(1..=MAX_OPERATIONS).contains(&asked) {
                    return Err(format!("shootdownTest: {number:?}: from 1 to {MAX_OPERATIONS} edits"));
                }
                operations = asked as usize;
            }
        }
    }
    let cpus = percpu::all_cpus().count();
    let _ = writeln!(
        out,
        "shootdownTest: {operations} edits of one page, {cpus} readers (one pinned to each CPU){}",
        if broken { ", shootdowns to other CPUs DISABLED" } else { "" }
    );
    let start = crate::arch::tsc::nanos_since_boot();
    let report = run(operations, broken)?;
    let millis = (crate::arch::tsc::nanos_since_boot() - start) / 1_000_000;
    let _ = writeln!(
        out,
        "  {} edits in {millis} ms; accesses per reader: {:?}; edits the other readers did not catch up with: {}",
        report.operations, report.accesses, report.lagging_edits
    );
    let _ = writeln!(
        out,
        "  IPIs sent: {} while the readers were inside, {} for {} edits after they left",
        report.ipis_with_readers, report.ipis_after_readers_left, report.operations_after
    );
    let idle_readers = report.accesses.iter().filter(|&&count| count == 0).count();
    if report.violations > 0 {
        let _ = writeln!(
            out,
            "  FAILED: {} stale observations; first: {}",
            report.violations,
            report.first_violation.as_deref().unwrap_or("?")
        );
        return Err(format!("{} accesses saw a stale translation", report.violations));
    }
    if report.ipis_after_readers_left != 0 {
        return Err(String::from("edits sent IPIs although no other CPU had the space loaded"));
    }
    if idle_readers > 0 {
        return Err(format!("{idle_readers} readers made no access during the edits"));
    }
    let _ = writeln!(out, "  passed: no reader saw a translation older than the last completed edit");
    Ok(())
}
