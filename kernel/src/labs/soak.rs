//! The soak (`soak SECONDS`) and the concurrency stress: randomized edits,
//! faults and switches on every CPU at once, checked as they go.
//!
//! Both are built from one [`Editor`]: a thread that owns a private window
//! of virtual addresses in an address space and makes random edits there —
//! add an eager or lazy, linear or anonymous region, remove, protect or move
//! a part of one — and, when it is inside the space, touches pages through
//! fault probes. Because nobody else edits its window, every outcome is
//! known: each edit must succeed and leave the window as asked (a region
//! exactly where it was added, nothing where a part was removed, the new
//! rights or physical address on the part edited), a read must succeed
//! exactly when the page's region allows it and return what the physical
//! page holds (read through the direct map), a write must succeed exactly
//! when the region is writable. After every step the space's `verify` must
//! pass.
//!
//! - **Soak** ([`soak`]): one editor pinned to each CPU, each in cycles of
//!   its own: create an address space (enterable: the kernel half alone, or
//!   hardened as the shell's are), move in and out at random while
//!   editing and touching, verify, leave and destroy. Between rounds (every
//!   editor has finished a cycle) the frames in use must be back at the
//!   baseline.
//! - **Concurrency stress** ([`stress`]): one shared space; on each CPU an
//!   editor inside it edits its own window while a faulter reads pages all
//!   over the windows. At the end each editor leaves its window as one
//!   known region, and the space's regions must be exactly those.
//!
//! Physical addresses of linear regions come from a buffer of frames each
//! editor owns, so writes through them touch only its own memory.

use crate::address_space::{self, Space};
use crate::labs::random::XorShift;
use crate::labs::shootdown::{create_enterable_space, destroy_when_unloaded};
use crate::mem::frames;
use crate::percpu;
use crate::probe::{probe_read, probe_write, Width};
use crate::shell::startup::MAPPED_LEN;
use crate::thread::{self, JoinHandle};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{PhysAddr, Protection, Region};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

const PAGE: u64 = 4096;
/// Where the editors' windows start (80 TiB: canonical with 4- and 5-level
/// paging, far from the shell's identity map and from `shootdownTest`'s page).
const WINDOWS_START: u64 = 0x0000_5000_0000_0000;
/// Each editor's window: 1 GiB apart.
const WINDOW_STRIDE: u64 = 1 << 30;
/// The window holds this many slots, one region at most in each.
const SLOTS: u64 = 16;
/// Slots are 1 MiB apart; a region holds up to [`BUFFER_PAGES`] pages.
const SLOT_STRIDE: u64 = 1 << 20;
/// The frames each editor owns, and so the longest linear region.
const BUFFER_PAGES: u64 = 16;

/// Rights the editor gives regions (KERN always: with SMAP, the kernel may
/// not touch user pages).
const READ_ONLY: Protection = Protection::READ.union(Protection::KERN);
const READ_WRITE: Protection = Protection::READ.union(Protection::WRITE).union(Protection::KERN);
const NO_ACCESS: Protection = Protection::KERN;

/// Counts shared by every thread of a run.
#[derive(Default)]
pub struct Totals {
    /// Edits, touches and switches made.
    pub operations: AtomicU64,
    /// Page faults the address spaces handled (from their counters).
    pub faults_handled: AtomicU64,
    /// Address spaces created, used and destroyed (soak), or rounds (stress).
    pub cycles: AtomicU64,
    /// Checks that failed.
    pub failures: AtomicU64,
    first_failure: spin::Mutex<Option<String>>,
}

impl Totals {
    fn fail(&self, what: String) {
        if self.failures.fetch_add(1, Ordering::SeqCst) == 0 {
            *self.first_failure.lock() = Some(what);
        }
    }

    /// The first failure, described.
    pub fn first_failure(&self) -> Option<String> {
        self.first_failure.lock().clone()
    }
}

/// One thread's editing of its own window in an address space.
struct Editor {
    /// Which window (and the name of the spaces it makes).
    index: u64,
    random: XorShift,
    /// The first of [`BUFFER_PAGES`] frames in a row that it owns.
    buffer: u64,
    /// True while the thread is inside the space it edits.
    inside: bool,
    operations: u64,
}

/// What an editor can do in one step.
#[derive(Clone, Copy, Debug)]
enum Step {
    Add,
    Remove,
    Protect,
    Move,
    Touch,
    Switch,
}

impl Editor {
    fn new(index: u64, seed: u64) -> Result<Editor, String> {
        let buffer = frames::alloc_contiguous(BUFFER_PAGES as usize, PAGE).ok_or("no frames for the buffer")?;
        Ok(Editor { index, random: XorShift::new(seed), buffer: buffer.as_u64(), inside: false, operations: 0 })
    }

    fn window(&self) -> u64 {
        WINDOWS_START + self.index * WINDOW_STRIDE
    }

    fn slot(&self, slot: u64) -> u64 {
        self.window() + slot * SLOT_STRIDE
    }

    /// The regions of this editor's window.
    fn regions(&self, space: &Space) -> Vec<Region> {
        space.lock().regions().overlapping(self.window(), SLOTS * SLOT_STRIDE).copied().collect()
    }

    fn verify(space: &Space) -> Result<(), String> {
        let object = space.lock();
        let paging = address_space::paging_of(&object).ok_or("not a paging address space")?;
        paging.verify().map_err(|errors| format!("verify: {} errors, first {:?}", errors.len(), errors.first()))
    }

    /// One random step; `switching` allows moving in and out.
    fn step(&mut self, space: &Arc<Space>, switching: bool) -> Result<(), String> {
        let regions = self.regions(space);
        let step = match self.random.below(if switching { 12 } else { 11 }) {
            0..=2 => Step::Add,
            3 => Step::Remove,
            4 | 5 => Step::Protect,
            6 => Step::Move,
            7..=10 => Step::Touch,
            _ => Step::Switch,
        };
        self.operations += 1;
        let result = match step {
            Step::Add => self.add(space, &regions),
            Step::Remove | Step::Protect | Step::Move if regions.is_empty() => self.add(space, &regions),
            Step::Remove => self.remove(space, &regions),
            Step::Protect => self.protect(space, &regions),
            Step::Move => self.move_part(space, &regions),
            Step::Touch => self.touch(&regions),
            Step::Switch => self.switch(space),
        };
        result.map_err(|error| format!("editor {} {step:?}: {error}", self.index))?;
        Self::verify(space).map_err(|error| format!("editor {} after {step:?}: {error}", self.index))
    }

    fn add(&mut self, space: &Space, regions: &[Region]) -> Result<(), String> {
        let slot_is_free = |slot: u64| {
            let start = self.slot(slot);
            !regions.iter().any(|r| r.overlaps_range(start, start + SLOT_STRIDE - 1))
        };
        let free: Vec<u64> = (0..SLOTS).filter(|&slot| slot_is_free(slot)).collect();
        let Some(&slot) = free.get(self.random.below(free.len().max(1) as u64) as usize) else {
            return Ok(()); // every slot is taken
        };
        let pages = 1 + self.random.below(BUFFER_PAGES);
        let mut prot = if self.random.below(2) == 0 { READ_WRITE } else { READ_ONLY };
        if self.random.below(2) == 0 {
            prot |= Protection::EAGER;
        }
        let va = self.slot(slot);
        let region = if self.random.below(3) == 0 {
            Region::anonymous(va, pages * PAGE, prot)
        } else {
            let first = self.random.below(BUFFER_PAGES - pages + 1);
            Region::new(va, self.buffer + first * PAGE, pages * PAGE, prot)
        };
        space.lock().add_region(region).map_err(|e| format!("add {region}: {e}"))?;
        let found = space.lock().regions().get(region.va).copied();
        if found != Some(region) {
            return Err(format!("added {region}, found {found:?}"));
        }
        Ok(())
    }

    /// A random part (a run of whole pages) of a random region.
    fn part(&mut self, regions: &[Region]) -> Region {
        let whole = regions[self.random.below(regions.len() as u64) as usize];
        let pages = whole.len / PAGE;
        let first = self.random.below(pages);
        let count = 1 + self.random.below(pages - first);
        whole.sub_region(whole.va.0 + first * PAGE, count * PAGE)
    }

    fn remove(&mut self, space: &Space, regions: &[Region]) -> Result<(), String> {
        let part = self.part(regions);
        space.remove_region(part).map_err(|e| format!("remove {part}: {e}"))?;
        if let Some(left) = space.lock().regions().first_overlap(part.va.0, part.len) {
            return Err(format!("removed {part}, still there: {left}"));
        }
        Ok(())
    }

    fn protect(&mut self, space: &Space, regions: &[Region]) -> Result<(), String> {
        let part = self.part(regions);
        let rights = [READ_ONLY, READ_WRITE, NO_ACCESS][self.random.below(3) as usize];
        let prot = rights | part.prot.kind();
        space.protect_region(part, prot).map_err(|e| format!("protect {part} to {prot}: {e}"))?;
        let found = space.lock().regions().find(part.va.0).copied();
        if found.map(|r| r.prot) != Some(prot) || !found.is_some_and(|r| r.covers(part.va.0, part.len)) {
            return Err(format!("protected {part} to {prot}, found {found:?}"));
        }
        Ok(())
    }

    fn move_part(&mut self, space: &Space, regions: &[Region]) -> Result<(), String> {
        let linear: Vec<Region> = regions.iter().copied().filter(|r| !r.is_anonymous()).collect();
        if linear.is_empty() {
            return Ok(());
        }
        let part = self.part(&linear);
        let first = self.random.below(BUFFER_PAGES - part.len / PAGE + 1);
        let new_pa = PhysAddr::new(self.buffer + first * PAGE);
        space.move_region(part, new_pa).map_err(|e| format!("move {part} to {new_pa:?}: {e}"))?;
        let found = space.lock().regions().find(part.va.0).copied();
        if found.map(|r| r.translate(part.va.0)) != Some(new_pa) {
            return Err(format!("moved {part} to {new_pa:?}, found {found:?}"));
        }
        Ok(())
    }

    /// Reads (and, where it may, writes) a page of a region, or an empty
    /// slot, through fault probes: the outcome must be what the region allows.
    fn touch(&mut self, regions: &[Region]) -> Result<(), String> {
        if !self.inside {
            return Ok(());
        }
        let empty_slot = (0..SLOTS).map(|slot| self.slot(slot)).find(|&va| !regions.iter().any(|r| r.contains(va)));
        let target = match (regions.is_empty(), empty_slot) {
            (false, _) if self.random.below(8) != 0 => {
                let part = self.part(regions);
                let found = regions.iter().copied().find(|r| r.contains(part.va.0));
                (part.va.0 + self.random.below(PAGE / 8) * 8, found)
            }
            (_, Some(va)) => (va, None),
            (_, None) => return Ok(()),
        };
        let (va, region) = target;
        let read = probe_read(va, Width::U64);
        let readable = region.is_some_and(|r| r.prot.contains(Protection::READ));
        if read.is_ok() != readable {
            return Err(format!("read at {va:#x} in {region:?}: {read:x?}"));
        }
        let Some(region) = region.filter(|_| readable) else { return Ok(()) };
        if !region.is_anonymous() {
            let frame = crate::direct_map::phys_to_virt(region.translate(va).as_u64()) as u64;
            let through_direct_map = probe_read(frame, Width::U64);
            if read.as_ref().ok() != through_direct_map.as_ref().ok() {
                return Err(format!("read at {va:#x} in {region}: {read:x?}, the frame holds {through_direct_map:x?}"));
            }
        }
        let value = self.random.next_u64();
        // SAFETY: the page belongs to this editor's window: an anonymous
        // page of its own or a frame of its own buffer.
        let written = unsafe { probe_write(va, value, Width::U64) };
        let writable = region.prot.contains(Protection::WRITE);
        if written.is_ok() != writable {
            return Err(format!("write at {va:#x} in {region}: {written:x?}"));
        }
        if writable && probe_read(va, Width::U64).ok() != Some(value) {
            return Err(format!("wrote {value:#x} at {va:#x} in {region}, read back something else"));
        }
        Ok(())
    }

    fn switch(&mut self, space: &Arc<Space>) -> Result<(), String> {
        let target = if self.inside { None } else { Some(space) };
        address_space::move_current_thread(target).map_err(|e| format!("switch (inside: {}): {e}", self.inside))?;
        self.inside = !self.inside;
        Ok(())
    }

    /// Leaves the space if inside.
    fn leave(&mut self) -> Result<(), String> {
        if self.inside {
            address_space::move_current_thread(None).map_err(|e| format!("leaving: {e}"))?;
            self.inside = false;
        }
        Ok(())
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        let _ = self.leave();
        let _ = frames::free_contiguous(PhysAddr::new(self.buffer), BUFFER_PAGES as usize);
    }
}

/// The faults `space` has handled so far.
fn faults_handled(space: &Space) -> u64 {
    address_space::paging_of(&space.lock()).map_or(0, |paging| paging.counters().faults_handled)
}

/// The frames in use, less the page tables of every address space: a
/// thread stack made meanwhile may have had its guard page unmapped in the
/// spaces that outlive the run (the default one, for one), splitting a
/// large page there for good, which is no leak of the run's.
fn frames_in_use() -> usize {
    let tables: u64 = crate::address_space::all()
        .iter()
        .filter_map(|space| crate::address_space::paging_of(&space.lock()).map(|paging| paging.counters().table_frames))
        .sum();
    frames::stats().used().saturating_sub(tables as usize)
}

/// Every thread of a soak waits here between cycles; the last to arrive
/// checks the frame count and decides whether to stop.
struct Rounds {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicU64,
    stop: AtomicBool,
    /// The frames in use when every thread had started (`usize::MAX`: not yet).
    baseline: AtomicUsize,
    deadline_ns: u64,
}

impl Rounds {
    /// Waits for every thread; true when the run is over.
    fn wait(&self, totals: &Totals) -> bool {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.threads {
            self.arrived.store(0, Ordering::SeqCst);
            let used = frames_in_use();
            let baseline = self.baseline.load(Ordering::SeqCst);
            if baseline == usize::MAX {
                self.baseline.store(used, Ordering::SeqCst);
            } else if used != baseline {
                totals.fail(format!("frames in use {used} after a round, baseline {baseline}"));
                // Once reported, the new count is the one to keep.
                self.baseline.store(used, Ordering::SeqCst);
            }
            if crate::arch::tsc::nanos_since_boot() >= self.deadline_ns {
                self.stop.store(true, Ordering::SeqCst);
            }
            self.generation.fetch_add(1, Ordering::SeqCst);
        } else {
            while self.generation.load(Ordering::SeqCst) == generation {
                thread::yield_now();
            }
        }
        self.stop.load(Ordering::SeqCst)
    }
}

/// One soak cycle of editor `editor`: create, use, leave, destroy.
fn soak_cycle(editor: &mut Editor, cycle: u64, totals: &Totals) -> Result<(), String> {
    let name = format!("soak-{}-{cycle}", editor.index);
    let hardened = editor.random.below(4) == 0;
    let space = if hardened {
        let space = address_space::create("paging", &name).map_err(|e| format!("create {name}: {e}"))?;
        if let Err(error) = crate::address_space::harden::harden(&space, MAPPED_LEN) {
            let _ = address_space::destroy(&name);
            return Err(format!("harden {name}: {error}"));
        }
        space
    } else {
        create_enterable_space(&name).map_err(|e| format!("create {name}: {e}"))?
    };
    // Mostly start inside, so that most touches run (and fault).
    let mut used = if editor.random.below(4) != 0 { editor.switch(&space) } else { Ok(()) };
    let steps = 8 + editor.random.below(24);
    for _ in 0..steps {
        if used.is_err() {
            break;
        }
        used = editor.step(&space, true);
    }
    totals.faults_handled.fetch_add(faults_handled(&space), Ordering::Relaxed);
    let left = editor.leave();
    let destroyed = destroy_when_unloaded(&space).map_err(|e| format!("destroy {name}: {e}"));
    used.and(left).and(destroyed)
}

fn soak_thread(index: u64, rounds: Arc<Rounds>, totals: Arc<Totals>) -> u64 {
    let mut editor = match Editor::new(index, 0x50a6_0000 + index) {
        Ok(editor) => editor,
        Err(error) => {
            totals.fail(format!("editor {index}: {error}"));
            while !rounds.wait(&totals) {}
            return 0;
        }
    };
    let mut cycle = 0;
    while !rounds.wait(&totals) {
        if let Err(error) = soak_cycle(&mut editor, cycle, &totals) {
            totals.fail(error);
        }
        cycle += 1;
        totals.cycles.fetch_add(1, Ordering::Relaxed);
    }
    totals.operations.fetch_add(editor.operations, Ordering::Relaxed);
    let _ = editor.leave();
    cycle
}

/// What a soak or a stress run did.
pub struct RunReport {
    /// Its counts.
    pub totals: Arc<Totals>,
    /// Threads that ran.
    pub threads: usize,
    /// How long it ran, in milliseconds.
    pub millis: u64,
}

/// Runs the soak for `seconds` on every CPU (one editor pinned to each).
pub fn soak(seconds: u64) -> RunReport {
    let start = crate::arch::tsc::nanos_since_boot();
    let cpus: Vec<u32> = percpu::all_cpus().map(|cpu| cpu.id).collect();
    let totals = Arc::new(Totals::default());
    let rounds = Arc::new(Rounds {
        threads: cpus.len(),
        arrived: AtomicUsize::new(0),
        generation: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        baseline: AtomicUsize::new(usize::MAX),
        deadline_ns: start.saturating_add(seconds.saturating_mul(1_000_000_000)),
    });
    let workers: Vec<JoinHandle> = cpus
        .iter()
        .map(|&cpu| {
            let (rounds, totals) = (rounds.clone(), totals.clone());
            thread::spawn_pinned(&format!("soak{cpu}"), cpu, move || soak_thread(u64::from(cpu), rounds, totals))
        })
        .collect();
    workers.into_iter().for_each(|worker| {
        worker.join();
    });
    let millis = (crate::arch::tsc::nanos_since_boot() - start) / 1_000_000;
    RunReport { totals, threads: cpus.len(), millis }
}

/// Prints a run's figures, and fails it unless nothing failed.
pub fn print_report(what: &str, report: &RunReport, out: &mut dyn Write) -> Result<(), String> {
    let totals = &report.totals;
    let failures = totals.failures.load(Ordering::SeqCst);
    let _ = writeln!(
        out,
        "{what}: {} threads, {} ms: {} operations, {} faults handled, {} cycles, {failures} failures",
        report.threads,
        report.millis,
        totals.operations.load(Ordering::SeqCst),
        totals.faults_handled.load(Ordering::SeqCst),
        totals.cycles.load(Ordering::SeqCst),
    );
    match totals.first_failure() {
        Some(first) => {
            let _ = writeln!(out, "  FAILED; first failure: {first}");
            Err(format!("{what}: {failures} failures"))
        }
        None if totals.cycles.load(Ordering::SeqCst) == 0 => Err(format!("{what}: no cycle completed")),
        None => {
            let _ = writeln!(out, "  passed: every check held, the frames came back after every round");
            Ok(())
        }
    }
}

/// The longest soak the command runs (an hour), so that its deadline in
/// nanoseconds cannot overflow.
pub const MAX_SECONDS: u64 = 3600;

/// The `soak SECONDS` command (`seconds` at most [`MAX_SECONDS`]).
pub fn soak_command(seconds: u64, out: &mut dyn Write) -> Result<(), String> {
    let cpus = percpu::all_cpus().count();
    let _ = writeln!(out, "soak: {seconds} s of randomized address-space cycles on {cpus} CPUs");
    print_report("soak", &soak(seconds), out)
}

// ---------------------------------------------------------------------------
// The concurrency stress: one shared address space
// ---------------------------------------------------------------------------

/// The region each editor leaves in its window at the end of a stress run.
#[cfg(feature = "ktest")]
fn final_region(editor: &Editor) -> Region {
    Region::new(editor.slot(0), editor.buffer, 4 * PAGE, READ_WRITE)
}

/// An editor inside `space`, editing its window until `stop`, then leaving
/// it as [`final_region`] alone.
#[cfg(feature = "ktest")]
fn stress_editor(index: u64, space: Arc<Space>, stop: Arc<AtomicBool>, totals: Arc<Totals>) -> u64 {
    let mut editor = match Editor::new(index, 0x57e5_5000 + index) {
        Ok(editor) => editor,
        Err(error) => {
            totals.fail(format!("editor {index}: {error}"));
            return 0;
        }
    };
    let entered = editor.switch(&space);
    if let Err(error) = entered {
        totals.fail(format!("editor {index}: {error}"));
        return 0;
    }
    while !stop.load(Ordering::Relaxed) {
        if let Err(error) = editor.step(&space, false) {
            totals.fail(error);
            break;
        }
    }
    // Empty the window, then leave the known region.
    for region in editor.regions(&space) {
        if let Err(error) = space.remove_region(region) {
            totals.fail(format!("editor {index}: emptying the window, remove {region}: {error}"));
        }
    }
    if let Err(error) = space.lock().add_region(final_region(&editor)) {
        totals.fail(format!("editor {index}: adding the final region: {error}"));
    }
    totals.operations.fetch_add(editor.operations, Ordering::Relaxed);
    let _ = editor.leave();
    // The buffer stays mapped by the final region until the space is
    // destroyed: keep it from being freed (and reused) before then.
    let buffer = editor.buffer;
    core::mem::forget(editor);
    buffer
}

/// A faulter inside `space`: reads random pages of every editor's window
/// until `stop` (each read may find a region or not: the editors race it).
#[cfg(feature = "ktest")]
fn stress_faulter(cpu: u32, windows: u64, space: Arc<Space>, stop: Arc<AtomicBool>, totals: Arc<Totals>) -> u64 {
    if let Err(error) = address_space::move_current_thread(Some(&space)) {
        totals.fail(format!("faulter {cpu}: entering: {error}"));
        return 0;
    }
    let mut random = XorShift::new(0xfa17_0000 + u64::from(cpu));
    let mut reads = 0;
    while !stop.load(Ordering::Relaxed) {
        let window = WINDOWS_START + random.below(windows) * WINDOW_STRIDE;
        let va = window + random.below(SLOTS) * SLOT_STRIDE + random.below(BUFFER_PAGES) * PAGE;
        reads += probe_read(va, Width::U64).is_ok() as u64;
        totals.operations.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(error) = address_space::move_current_thread(None) {
        totals.fail(format!("faulter {cpu}: leaving: {error}"));
    }
    reads
}

/// Runs the concurrency stress for `millis` milliseconds: on every CPU, an
/// editor and a faulter in one shared space. Checks every editor's steps,
/// then that the space holds exactly the editors' final regions, that
/// `verify` passes and that destroying it gives back every frame.
#[cfg(feature = "ktest")]
pub fn stress(millis: u64) -> RunReport {
    let start = crate::arch::tsc::nanos_since_boot();
    let cpus: Vec<u32> = percpu::all_cpus().map(|cpu| cpu.id).collect();
    let totals = Arc::new(Totals::default());
    let baseline = frames_in_use();
    let name = format!("stress-{}", thread::current().id());
    let space = match create_enterable_space(&name) {
        Ok(space) => space,
        Err(error) => {
            totals.fail(format!("creating the shared space: {error}"));
            return RunReport { totals, threads: 0, millis: 0 };
        }
    };
    let base_regions = space.lock().regions().len();
    let stop = Arc::new(AtomicBool::new(false));
    let mut editors = Vec::new();
    let mut faulters = Vec::new();
    for (index, &cpu) in cpus.iter().enumerate() {
        let (shared, halt, counts) = (space.clone(), stop.clone(), totals.clone());
        editors.push(thread::spawn_pinned(&format!("editor{cpu}"), cpu, move || {
            stress_editor(index as u64, shared, halt, counts)
        }));
        let (shared, halt, counts, windows) = (space.clone(), stop.clone(), totals.clone(), cpus.len() as u64);
        faulters.push(thread::spawn_pinned(&format!("faulter{cpu}"), cpu, move || {
            stress_faulter(cpu, windows, shared, halt, counts)
        }));
    }
    let deadline = start.saturating_add(millis.saturating_mul(1_000_000));
    while crate::arch::tsc::nanos_since_boot() < deadline {
        thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    let buffers: Vec<u64> = editors.into_iter().map(JoinHandle::join).collect();
    let reads: u64 = faulters.into_iter().map(JoinHandle::join).sum();
    totals.cycles.fetch_add(1, Ordering::Relaxed);
    totals.faults_handled.fetch_add(faults_handled(&space), Ordering::Relaxed);
    if reads == 0 {
        totals.fail(String::from("the faulters read no page"));
    }
    check_final_state(&space, &buffers, base_regions, &totals);
    if let Err(error) = destroy_when_unloaded(&space) {
        totals.fail(format!("destroying the shared space: {error}"));
    }
    for buffer in buffers.into_iter().filter(|&buffer| buffer != 0) {
        let _ = frames::free_contiguous(PhysAddr::new(buffer), BUFFER_PAGES as usize);
    }
    let used = frames_in_use();
    if used != baseline {
        totals.fail(format!("frames in use {used} after the stress, baseline {baseline}"));
    }
    let millis = (crate::arch::tsc::nanos_since_boot() - start) / 1_000_000;
    RunReport { totals, threads: 2 * cpus.len(), millis }
}

/// The shared space must hold the regions it was made with (the kernel
/// half) and one final region per
/// editor, nothing else, and pass `verify`.
#[cfg(feature = "ktest")]
fn check_final_state(space: &Space, buffers: &[u64], base_regions: usize, totals: &Totals) {
    let object = space.lock();
    let in_windows: Vec<Region> =
        object.regions().overlapping(WINDOWS_START, buffers.len() as u64 * WINDOW_STRIDE).copied().collect();
    let expected: Vec<Region> = buffers
        .iter()
        .enumerate()
        .map(|(index, &buffer)| {
            let va = WINDOWS_START + index as u64 * WINDOW_STRIDE;
            Region::new(va, buffer, 4 * PAGE, READ_WRITE)
        })
        .collect();
    if in_windows != expected {
        totals.fail(format!("final regions {in_windows:?}, expected {expected:?}"));
    }
    if object.regions().len() != base_regions + expected.len() {
        totals.fail(format!(
            "{} regions at the end, expected {}",
            object.regions().len(),
            base_regions + expected.len()
        ));
    }
    match address_space::paging_of(&object).map(|paging| paging.verify()) {
        Some(Ok(())) => {}
        Some(Err(errors)) => totals.fail(format!("verify at the end: {errors:?}")),
        None => totals.fail(String::from("the shared space is not a paging space")),
    }
}
