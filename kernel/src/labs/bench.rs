//! `bench`: measurements of the address-space operations, in the kernel, on
//! the machine it runs on.
//!
//! Each benchmark runs its measurement once untimed (QEMU translates the
//! code paths, the host backs the guest memory), then [`RUNS`] times, and
//! prints one machine-readable line per figure with the median, then the
//! smallest and largest of the runs:
//!
//! ```text
//! BENCH lazy_fault_4k 1234.5 ns/fault
//! BENCH lazy_fault_4k.min 1200.1 ns/fault
//! BENCH lazy_fault_4k.max 1300.9 ns/fault
//! ```
//!
//! Times come from the time-stamp counter, converted to nanoseconds with the
//! rate measured against the PIT at boot ([`crate::arch::tsc`]). Each
//! benchmark checks that it did the work it names (so many faults, so many
//! pages of that size, one IPI per call) and fails otherwise: a figure for
//! the wrong work would be worse than none.
//!
//! Everything runs in an address space of its own, `bench`: the kernel
//! half alone (so the shell's thread can run in it,
//! [`crate::labs::shootdown::create_enterable_space`]), plus the regions
//! under test at [`BENCH_VA`]. The regions that map
//! existing memory map usable RAM, which is only read, never written; the
//! anonymous ones get frames of their own.

use crate::address_space::{self, KernelMachine, Space};
use crate::arch::{cpu, tsc};
use crate::boot_info::MemoryKind;
use crate::labs::shootdown as stress;
use crate::mem::frames;
use crate::percpu;
use crate::thread::{self, JoinHandle};
use crate::tlb;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use aspace::{Fault, FaultOutcome, PageFaultCode, Protection, Region, VirtAddr};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use paging::{Machine, PageSize, PagingAspace, PagingCounters, TlbInvalidation};

/// Timed runs per figure (after one untimed run).
pub const RUNS: usize = 5;
const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const M64: u64 = 64 << 20;
const G1: u64 = 1 << 30;
/// Where the regions under test start: 1 GiB-aligned, canonical with 4- and
/// 5-level paging, far from the identity map.
pub const BENCH_VA: u64 = 0x0000_6000_0000_0000;
/// True for a region of the benchmarks: at or above [`BENCH_VA`], in the
/// lower half (the kernel half lies in the upper half).
fn is_bench_region(region: &Region) -> bool {
    region.va.as_u64() >= BENCH_VA && region.va.as_u64() >> 63 == 0
}

/// Where the helper threads of the shootdown benchmarks read.
const HELPER_VA: u64 = 0x0000_6100_0000_0000;
/// Read and write, kernel only.
const RW: Protection = Protection::READ.union(Protection::WRITE).union(Protection::KERN);
/// Read only, kernel only.
const RO: Protection = Protection::READ.union(Protection::KERN);
/// Calls per sample of the one-page benchmarks.
const CALLS: u64 = 1000;

/// The time from the first instruction to the shell prompt, in ns (0 until
/// the boot code records it).
static BOOT_TO_PROMPT_NANOS: AtomicU64 = AtomicU64::new(0);

/// Records the boot time, once the kernel is ready to run its shell.
pub fn record_boot_to_prompt(nanos: u64) {
    BOOT_TO_PROMPT_NANOS.store(nanos, Ordering::Relaxed);
}

/// One benchmark: a name `bench NAME` selects, and the function that
/// measures it and prints its lines.
struct Benchmark {
    name: &'static str,
    run: fn(&mut Bench, &mut dyn Write) -> Result<(), String>,
}

/// Every benchmark, in the order `bench` runs them.
static BENCHMARKS: &[Benchmark] = &[
    Benchmark { name: "boot_to_shell", run: boot_to_shell },
    Benchmark { name: "baselines", run: baselines },
    Benchmark { name: "primitives", run: primitives },
    Benchmark { name: "lazy_fault_4k", run: lazy_fault_4k },
    Benchmark { name: "fault_handler", run: fault_handler },
    Benchmark { name: "lazy_fault_around", run: lazy_fault_around },
    Benchmark { name: "anon_fault_4k", run: anon_fault_4k },
    Benchmark { name: "eager_map_4k", run: eager_map_4k },
    Benchmark { name: "eager_map_huge", run: eager_map_huge },
    Benchmark { name: "protect_64m", run: protect_64m },
    Benchmark { name: "move_64m", run: move_64m },
    Benchmark { name: "remove_64m", run: remove_64m },
    Benchmark { name: "protect_1page", run: protect_1page },
    Benchmark { name: "remove_1page", run: remove_1page },
    Benchmark { name: "move_1page", run: move_1page },
    Benchmark { name: "shootdown_protect_1page", run: shootdown_protect_1page },
    Benchmark { name: "aspace_switch", run: aspace_switch },
    Benchmark { name: "tlb_flush", run: tlb_flush },
    Benchmark { name: "fault_around_sweep", run: fault_around_sweep },
    Benchmark { name: "map_sweep", run: map_sweep },
    Benchmark { name: "fault_sweep", run: fault_sweep },
];

/// The names `bench` knows, for its usage line.
pub fn names() -> impl Iterator<Item = &'static str> {
    BENCHMARKS.iter().map(|benchmark| benchmark.name)
}

/// The `bench [NAME...]` command: runs the named benchmarks (all without
/// names) in an address space of its own, then moves the thread back where
/// it was and destroys that space.
pub fn run(names: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let chosen: Vec<&Benchmark> = if names.is_empty() {
        BENCHMARKS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in names {
            let found = BENCHMARKS.iter().find(|benchmark| benchmark.name == *name);
            chosen.push(found.ok_or_else(|| format!("no benchmark {name:?}"))?);
        }
        chosen
    };
    let home = address_space::current();
    let backed = back_free_memory();
    let mut bench = Bench::enter()?;
    let started = tsc::nanos_since_boot();
    let _ = writeln!(
        out,
        "# bench: {} CPUs, TSC {} kHz, RAM for the file-like regions at {:#x}, {RUNS} runs per figure; \
         {} MiB of free RAM written once first",
        percpu::all_cpus().count(),
        tsc::ticks_per_ms(),
        bench.ram,
        backed >> 20
    );
    let mut failures = Vec::new();
    for benchmark in chosen {
        if let Err(error) = (benchmark.run)(&mut bench, out) {
            let _ = writeln!(out, "# bench: {} FAILED: {error}", benchmark.name);
            failures.push(benchmark.name);
            bench.clear_regions();
        }
    }
    let _ = writeln!(out, "# bench: done in {} ms", (tsc::nanos_since_boot() - started) / 1_000_000);
    bench.leave(home.as_ref())?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failures.join(", ")))
    }
}

/// The address space the benchmarks run in, and the RAM they map.
struct Bench {
    space: Arc<Space>,
    /// A stretch of usable RAM of at least 64 MiB + 8 KiB, 2 MiB-aligned.
    ram: u64,
}

impl Bench {
    fn enter() -> Result<Bench, String> {
        let ram = ram_for_regions().ok_or("no 2 MiB-aligned stretch of 66 MiB of usable RAM")?;
        let name = format!("bench-{}", thread::current().id());
        let space = stress::create_enterable_space(&name).map_err(|e| format!("creating '{name}': {e}"))?;
        if let Err(error) = address_space::move_current_thread(Some(&space)) {
            let _ = address_space::destroy(&name);
            return Err(format!("entering '{name}': {error}"));
        }
        Ok(Bench { space, ram })
    }

    fn leave(self, home: Option<&Arc<Space>>) -> Result<(), String> {
        self.clear_regions();
        address_space::move_current_thread(home).map_err(|e| format!("going back: {e}"))?;
        stress::destroy_when_unloaded(&self.space).map_err(|e| format!("destroying the bench space: {e}"))
    }

    /// Removes every region a benchmark left at or above [`BENCH_VA`] in the
    /// lower half (after a failure); the kernel half stays.
    fn clear_regions(&self) {
        let mut object = self.space.lock();
        let left: Vec<Region> = object.regions().iter().filter(|r| is_bench_region(r)).copied().collect();
        for region in left {
            let _ = object.remove_region(Region { prot: RO, ..region });
        }
        if let Some(paging) = address_space::paging_of_mut(&mut object) {
            paging.set_fault_page_limit(PageSize::Size1G);
            paging.set_fault_around(paging::DEFAULT_FAULT_AROUND_PAGES);
        }
    }

    fn add(&self, region: Region) -> Result<(), String> {
        self.space.lock().add_region(region).map_err(|e| format!("adding {region}: {e}"))
    }

    fn remove(&self, region: Region) -> Result<(), String> {
        self.space.lock().remove_region(region).map_err(|e| format!("removing {region}: {e}"))
    }

    fn protect(&self, region: Region, prot: Protection) -> Result<(), String> {
        self.space.lock().protect_region(region, prot).map_err(|e| format!("protecting {region}: {e}"))
    }

    fn move_to(&self, region: Region, pa: u64) -> Result<(), String> {
        let new_pa = aspace::PhysAddr::new(pa);
        self.space.lock().move_region(region, new_pa).map_err(|e| format!("moving {region}: {e}"))
    }

    /// Runs `f` on the `paging` object behind the bench space.
    fn paging<R>(&self, f: impl FnOnce(&mut PagingAspace<KernelMachine>) -> R) -> R {
        let mut object = self.space.lock();
        f(address_space::paging_of_mut(&mut object).expect("the bench space is a paging address space"))
    }

    fn counters(&self) -> PagingCounters {
        self.paging(|paging| paging.counters())
    }

    /// Sets the page size lazy faults map up to, and the fault-around window.
    fn set_faults(&self, limit: PageSize, around: u64) {
        self.paging(|paging| {
            paging.set_fault_page_limit(limit);
            paging.set_fault_around(around);
        });
    }
}

/// Writes one word of every free frame, 2 MiB at a time, and frees them
/// again; returns the bytes written. Under QEMU, guest memory is host memory
/// that the host provides on first write, at a cost of several
/// microseconds a page on this kind of host; without this, each anonymous
/// fault would pay it on top of its own work (Linux's harness does the same:
/// it writes 80% of the free memory before it measures).
fn back_free_memory() -> u64 {
    const CHUNK_FRAMES: usize = 512;
    let mut chunks = Vec::new();
    while let Some(chunk) = frames::alloc_contiguous(CHUNK_FRAMES, K4) {
        for page in 0..CHUNK_FRAMES as u64 {
            // SAFETY: the frames were just allocated here; RAM is in the
            // direct map of every address space the kernel runs in.
            unsafe { (crate::direct_map::phys_to_virt(chunk.as_u64() + page * K4) as *mut u64).write_volatile(0) };
        }
        chunks.push(chunk);
    }
    for &chunk in &chunks {
        frames::free_contiguous(chunk, CHUNK_FRAMES).expect("the chunk was allocated above");
    }
    chunks.len() as u64 * CHUNK_FRAMES as u64 * K4
}

/// The start of the first usable RAM range that holds 66 MiB from a 2 MiB
/// boundary (64 MiB, moved by up to two pages).
fn ram_for_regions() -> Option<u64> {
    let needed = M64 + M2;
    crate::boot_info::get().memory_map().iter().filter(|r| r.kind == MemoryKind::Usable).find_map(|range| {
        let start = range.start.max(M2).next_multiple_of(M2);
        (start + needed <= range.end()).then_some(start)
    })
}

// ---------------------------------------------------------------------------
// Measuring and printing
// ---------------------------------------------------------------------------

/// Tenths of a unit, so that figures keep one decimal without floating point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tenths(u64);

impl core::fmt::Display for Tenths {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// `ticks` of the TSC divided by `per`, in tenths of a nanosecond.
fn tenths_of_ns(ticks: u64, per: u64) -> Tenths {
    Tenths(tsc::ticks_to_nanos(ticks.saturating_mul(10)) / per.max(1))
}

/// Prints the median, min and max of `samples` as `BENCH` lines.
fn report(out: &mut dyn Write, name: &str, unit: &str, samples: &mut [Tenths]) {
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    let _ = writeln!(out, "BENCH {name} {median} {unit}");
    let _ = writeln!(out, "BENCH {name}.min {} {unit}", samples[0]);
    let _ = writeln!(out, "BENCH {name}.max {} {unit}", samples[samples.len() - 1]);
}

/// Runs `once` untimed, then `runs` times; each run returns the TSC ticks of
/// its timed part, which is divided by `per` (pages, faults, calls). Prints
/// the figure.
fn measure_runs(
    out: &mut dyn Write,
    name: &str,
    unit: &str,
    per: u64,
    runs: usize,
    mut once: impl FnMut() -> Result<u64, String>,
) -> Result<(), String> {
    once()?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(tenths_of_ns(once()?, per));
    }
    report(out, name, unit, &mut samples);
    Ok(())
}

fn measure(
    out: &mut dyn Write,
    name: &str,
    unit: &str,
    per: u64,
    once: impl FnMut() -> Result<u64, String>,
) -> Result<(), String> {
    measure_runs(out, name, unit, per, RUNS, once)
}

/// Ticks taken by `f`.
fn timed(f: impl FnOnce()) -> u64 {
    let start = cpu::rdtsc();
    f();
    cpu::rdtsc().wrapping_sub(start)
}

/// Ticks taken by `f`, which may fail.
fn timed_result(f: impl FnOnce() -> Result<(), String>) -> Result<u64, String> {
    let start = cpu::rdtsc();
    f()?;
    Ok(cpu::rdtsc().wrapping_sub(start))
}

/// Reads one word of each 4 KiB page of `[va, va+len)`.
fn read_each_page(va: u64, len: u64) {
    let mut page = va;
    while page < va + len {
        // SAFETY: the caller has mapped (or lets faults map) the range
        // readable in the address space this thread runs in.
        unsafe { (page as *const u64).read_volatile() };
        page += K4;
    }
}

/// Writes one word of each 4 KiB page of `[va, va+len)`.
fn write_each_page(va: u64, len: u64) {
    let mut page = va;
    while page < va + len {
        // SAFETY: the caller has mapped (or lets faults map) the range, an
        // anonymous region of the bench space, writable.
        unsafe { (page as *mut u64).write_volatile(page) };
        page += K4;
    }
}

/// Fails unless `actual` is `expected` (what a benchmark claims to measure).
fn check(what: &str, actual: u64, expected: u64) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: {actual}, expected {expected}"))
    }
}

// ---------------------------------------------------------------------------
// The benchmarks
// ---------------------------------------------------------------------------

/// `boot_to_shell`: one boot's figure (there is one boot per run).
fn boot_to_shell(_bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let nanos = BOOT_TO_PROMPT_NANOS.load(Ordering::Relaxed);
    if nanos == 0 {
        return Err(String::from("the boot time was not recorded"));
    }
    let millis = Tenths(nanos / 100_000);
    report(out, "boot_to_shell", "ms", &mut [millis]);
    Ok(())
}

/// `baselines`: what the other figures are made of, as Linux's harness
/// measures them: reading one word per page of 64 MiB already mapped
/// (`touch_mapped`, ns/page: the loop and QEMU's soft-TLB refill), and
/// taking a zeroed frame from the allocator and giving it back
/// (`frame_alloc_zeroed`, ns/frame).
fn baselines(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::new(BENCH_VA, bench.ram, M64, RW | Protection::EAGER);
    bench.add(region)?;
    let touched = measure(out, "touch_mapped", "ns/page", M64 / K4, || Ok(timed(|| read_each_page(BENCH_VA, M64))));
    bench.remove(region)?;
    touched?;
    measure(out, "frame_alloc_zeroed", "ns/frame", CALLS, || {
        timed_result(|| {
            for _ in 0..CALLS {
                let frame = frames::alloc_zeroed().ok_or("out of frames")?;
                frames::free(frame).map_err(|e| format!("{e}"))?;
            }
            Ok(())
        })
    })
}

/// `primitives`: what the building blocks of the paths above cost on this
/// machine, ns per operation: `invlpg`, the address-space lock taken and
/// released, a locked read-modify-write, `pause` (the spin-wait hint), a
/// local APIC register read (MMIO) and `memcpy` of 4 KiB. Under an emulator
/// these differ from hardware by orders of magnitude, and explain where the
/// figures above go.
fn primitives(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    measure(out, "invlpg", "ns/op", CALLS, || Ok(timed(|| (0..CALLS).for_each(|_| cpu::invlpg(BENCH_VA)))))?;
    measure(out, "space_lock", "ns/op", CALLS, || {
        Ok(timed(|| (0..CALLS).for_each(|_| drop(core::hint::black_box(bench.space.lock())))))
    })?;
    let counter = AtomicUsize::new(0);
    measure(out, "atomic_add", "ns/op", CALLS, || {
        Ok(timed(|| (0..CALLS).for_each(|_| _ = core::hint::black_box(&counter).fetch_add(1, Ordering::Relaxed))))
    })?;
    measure(out, "pause", "ns/op", CALLS, || Ok(timed(|| (0..CALLS).for_each(|_| core::hint::spin_loop()))))?;
    measure(out, "apic_read", "ns/op", CALLS, || {
        Ok(timed(|| (0..CALLS).for_each(|_| _ = core::hint::black_box(crate::arch::apic::id()))))
    })?;
    let source = vec![0x5au8; K4 as usize];
    let mut target = vec![0u8; K4 as usize];
    measure(out, "memcpy_4k", "ns/op", CALLS, || {
        Ok(timed(|| (0..CALLS).for_each(|_| core::hint::black_box(&mut target).copy_from_slice(&source))))
    })?;
    check("memcpy_4k copied", target.iter().filter(|&&byte| byte == 0x5a).count() as u64, K4)
}

/// Touches a lazy 64 MiB region mapping RAM (`pa`), one read per page, and
/// returns the ticks, after checking the number of faults.
fn touch_lazy(bench: &Bench, region: Region, expected_faults: u64) -> Result<u64, String> {
    bench.add(region)?;
    let before = bench.counters().faults_handled;
    let ticks = timed(|| read_each_page(region.va.as_u64(), region.len));
    let faults = bench.counters().faults_handled - before;
    bench.remove(region)?;
    check("faults", faults, expected_faults)?;
    Ok(ticks)
}

/// `lazy_fault_4k`: ns per fault, 64 MiB of RAM, one 4 KiB page per fault.
fn lazy_fault_4k(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    bench.set_faults(PageSize::Size4K, 1);
    let region = Region::new(BENCH_VA, bench.ram, M64, RW);
    measure(out, "lazy_fault_4k", "ns/fault", M64 / K4, || touch_lazy(bench, region, M64 / K4))
}

/// `fault_handler`: ns per fault for the address space's handler alone
/// (`exception` called directly, through the space's lock, with the fault a
/// read of each page of a lazy 64 MiB region would raise): the part of
/// `lazy_fault_4k` that is not the CPU's exception delivery, the trap
/// entry and exit, and the access itself.
fn fault_handler(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    bench.set_faults(PageSize::Size4K, 1);
    let region = Region::new(BENCH_VA, bench.ram, M64, RW);
    measure(out, "fault_handler", "ns/fault", M64 / K4, || {
        bench.add(region)?;
        let mut handled = 0;
        let ticks = timed(|| {
            let mut page = BENCH_VA;
            while page < BENCH_VA + M64 {
                let fault = Fault::page_fault(page, PageFaultCode::empty(), 0);
                handled += (bench.space.lock().exception(&fault) == FaultOutcome::Handled) as u64;
                page += K4;
            }
        });
        bench.remove(region)?;
        check("faults handled", handled, M64 / K4)?;
        Ok(ticks)
    })
}

/// `lazy_fault_around`: ns per page, 64 MiB of RAM that only 4 KiB pages
/// can map (virtual and physical addresses congruent modulo 4 KiB only),
/// with the default fault-around window.
fn lazy_fault_around(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let window = paging::DEFAULT_FAULT_AROUND_PAGES;
    bench.set_faults(PageSize::Size1G, window);
    let region = Region::new(BENCH_VA, bench.ram + K4, M64, RW);
    let _ = writeln!(out, "# lazy_fault_around: {window} pages per fault");
    measure(out, "lazy_fault_around", "ns/page", M64 / K4, || touch_lazy(bench, region, M64 / K4 / window))
}

/// `anon_fault_4k`: ns per fault, first write to each page of a 64 MiB
/// anonymous region (allocate, zero, map).
fn anon_fault_4k(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::anonymous(BENCH_VA, M64, RW);
    let free = frames::stats().free as u64;
    if free < 2 * (M64 / K4) {
        return Err(format!("{free} free frames; the benchmark needs {} and a margin", M64 / K4));
    }
    measure(out, "anon_fault_4k", "ns/fault", M64 / K4, || {
        bench.add(region)?;
        let before = bench.counters().faults_handled;
        let ticks = timed(|| write_each_page(BENCH_VA, M64));
        let faults = bench.counters().faults_handled - before;
        bench.remove(region)?;
        check("faults", faults, M64 / K4)?;
        Ok(ticks)
    })
}

/// Adds eager `region` (timed), checks the pages of `size` it mapped, and
/// removes it again.
fn time_eager_add(bench: &Bench, region: Region, size: PageSize) -> Result<u64, String> {
    let before = bench.counters().pages_mapped[size.index()];
    let ticks = timed_result(|| bench.add(region))?;
    let mapped = bench.counters().pages_mapped[size.index()] - before;
    bench.remove(region)?;
    check("pages mapped", mapped, region.len / size.bytes())?;
    Ok(ticks)
}

/// `eager_map_4k`: ns per page, 64 MiB that only 4 KiB pages can map.
fn eager_map_4k(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::new(BENCH_VA, bench.ram + K4, M64, RW | Protection::EAGER);
    measure(out, "eager_map_4k", "ns/page", M64 / K4, || time_eager_add(bench, region, PageSize::Size4K))
}

/// `eager_map_huge`: ns per 2 MiB page (1 GiB of them) and per 1 GiB page
/// (4 GiB of them). The physical ranges are those the boot map
/// covers; nothing is read through them.
fn eager_map_huge(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let two_meg = Region::new(BENCH_VA, M2, G1, RW | Protection::EAGER);
    measure(out, "eager_map_huge_2m", "ns/page", G1 / M2, || time_eager_add(bench, two_meg, PageSize::Size2M))?;
    if !cpu::features().huge_1g {
        let _ = writeln!(out, "# eager_map_huge_1g skipped: the CPU has no 1 GiB pages");
        return Ok(());
    }
    let one_gig = Region::new(BENCH_VA, 0, 4 * G1, RW | Protection::EAGER);
    // A map of four entries is short next to the clock: 16 maps per sample.
    measure(out, "eager_map_huge_1g", "ns/page", 16 * 4, || {
        let mut ticks = 0;
        for _ in 0..16 {
            ticks += time_eager_add(bench, one_gig, PageSize::Size1G)?;
        }
        Ok(ticks)
    })
}

/// The 64 MiB region of the whole-region edits: mapped eagerly with 4 KiB
/// pages only.
fn populated_64m(bench: &Bench) -> Result<Region, String> {
    let region = Region::new(BENCH_VA, bench.ram + K4, M64, RW | Protection::EAGER);
    bench.add(region)?;
    Ok(region)
}

/// `protect_64m`: ns per page and per call, read-only then read-write again
/// (the first needs a flush, the second not).
fn protect_64m(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = populated_64m(bench)?;
    let result = measure(out, "protect_64m", "ns/page", 2 * (M64 / K4), || {
        timed_result(|| {
            bench.protect(region, RO)?;
            bench.protect(region, RW)
        })
    });
    bench.remove(region)?;
    result
}

/// `move_64m`: ns per page: the region moves one page along physical
/// memory and back, so that every entry changes.
fn move_64m(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = populated_64m(bench)?;
    let moved = Region { pa: aspace::PhysAddr::new(bench.ram + 2 * K4), ..region };
    let result = measure(out, "move_64m", "ns/page", 2 * (M64 / K4), || {
        timed_result(|| {
            bench.move_to(region, moved.pa.as_u64())?;
            bench.move_to(moved, region.pa.as_u64())
        })
    });
    bench.remove(region)?;
    result
}

/// `remove_64m`: ns per page, removing the populated region.
fn remove_64m(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    measure(out, "remove_64m", "ns/page", M64 / K4, || {
        let region = populated_64m(bench)?;
        timed_result(|| bench.remove(region))
    })
}

/// `protect_1page`: ns per call, a one-page region made read-only and
/// read-write again, [`CALLS`] times.
fn protect_1page(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::new(BENCH_VA, bench.ram, K4, RW | Protection::EAGER);
    bench.add(region)?;
    read_each_page(BENCH_VA, K4);
    let result = measure(out, "protect_1page", "ns/call", 2 * CALLS, || {
        timed_result(|| {
            for _ in 0..CALLS {
                bench.protect(region, RO)?;
                bench.protect(region, RW)?;
            }
            Ok(())
        })
    });
    bench.remove(region)?;
    result
}

/// `remove_1page`: ns per call, one page off the front of a populated
/// anonymous region, its frame freed (as Linux's `munmap` of one page).
fn remove_1page(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let pages = CALLS;
    let region = Region::anonymous(BENCH_VA, pages * K4, RW | Protection::EAGER);
    measure(out, "remove_1page", "ns/call", pages, || {
        bench.add(region)?;
        let mut ticks = 0;
        for page in 0..pages {
            let front = Region::anonymous(BENCH_VA + page * K4, K4, RW);
            ticks += timed_result(|| bench.remove(front))?;
        }
        check("regions left", bench.space.lock().regions().iter().filter(|r| is_bench_region(r)).count() as u64, 0)?;
        Ok(ticks)
    })
}

/// `move_1page`: ns per call, a one-page region moved between two pages.
fn move_1page(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::new(BENCH_VA, bench.ram, K4, RW | Protection::EAGER);
    let moved = Region { pa: aspace::PhysAddr::new(bench.ram + K4), ..region };
    bench.add(region)?;
    read_each_page(BENCH_VA, K4);
    let result = measure(out, "move_1page", "ns/call", 2 * CALLS, || {
        timed_result(|| {
            for _ in 0..CALLS {
                bench.move_to(region, moved.pa.as_u64())?;
                bench.move_to(moved, region.pa.as_u64())?;
            }
            Ok(())
        })
    });
    bench.remove(region)?;
    result
}

/// What the helper threads of the shootdown benchmark share with it.
struct Helpers {
    stop: AtomicBool,
    inside: AtomicUsize,
}

/// A helper: enters the bench space on its CPU and reads a page of it until
/// told to stop, so that the CPU holds the space and must be interrupted.
fn helper(space: Arc<Space>, shared: Arc<Helpers>) -> u64 {
    if address_space::move_current_thread(Some(&space)).is_err() {
        shared.inside.fetch_add(1, Ordering::SeqCst);
        return 1;
    }
    shared.inside.fetch_add(1, Ordering::SeqCst);
    while !shared.stop.load(Ordering::Relaxed) {
        read_each_page(HELPER_VA, K4);
    }
    let _ = address_space::move_current_thread(None);
    0
}

fn ipis_sent() -> u64 {
    percpu::all_cpus().map(|cpu| tlb::counters(cpu.id).ipis_sent.load(Ordering::Relaxed)).sum()
}

/// Times [`CALLS`] one-page protects that need a shootdown (read-write to
/// read-only; the way back is a permission increase that needs none, and is
/// not timed) with the space live on `cpus` CPUs. Also prints, as
/// `<name>_ack_wait`, how much of each call this CPU spent waiting for the
/// other CPUs' acknowledgements (threads do not migrate, so its counter is
/// this thread's).
fn shootdown_on(bench: &Bench, out: &mut dyn Write, cpus: usize) -> Result<(), String> {
    let here = percpu::current().id;
    let others: Vec<u32> = percpu::all_cpus().map(|cpu| cpu.id).filter(|&id| id != here).take(cpus - 1).collect();
    let shared = Arc::new(Helpers { stop: AtomicBool::new(false), inside: AtomicUsize::new(0) });
    let helpers: Vec<JoinHandle> = others
        .iter()
        .map(|&cpu| {
            let (space, shared) = (bench.space.clone(), shared.clone());
            thread::spawn_pinned(&format!("bench-helper{cpu}"), cpu, move || helper(space, shared))
        })
        .collect();
    while shared.inside.load(Ordering::SeqCst) < helpers.len() {
        thread::yield_now();
    }
    let region = Region::new(BENCH_VA, bench.ram, K4, RW | Protection::EAGER);
    let name = format!("shootdown_protect_1page_{cpus}cpu");
    let result = bench.add(region).and_then(|()| {
        let mut ipis = 0;
        // Of each call, the time spent waiting for the acknowledgements
        // (this CPU's counter), one sample per run.
        let mut ack_waits = Vec::new();
        let counters = tlb::counters(percpu::current().id);
        let measured = measure(out, &name, "ns/call", CALLS, || {
            let mut ticks = 0;
            let before = ipis_sent();
            let waited_before = counters.ack_wait_ticks.load(Ordering::Relaxed);
            for _ in 0..CALLS {
                ticks += timed_result(|| bench.protect(region, RO))?;
                bench.protect(region, RW)?;
            }
            ipis = ipis_sent() - before;
            ack_waits.push(tenths_of_ns(counters.ack_wait_ticks.load(Ordering::Relaxed) - waited_before, CALLS));
            Ok(ticks)
        });
        bench.remove(region)?;
        measured?;
        // The first run is the untimed warm-up.
        report(out, &format!("{name}_ack_wait"), "ns/call", &mut ack_waits[1..]);
        check("IPIs per run", ipis, CALLS * (cpus as u64 - 1))
    });
    shared.stop.store(true, Ordering::SeqCst);
    let failed_helpers: u64 = helpers.into_iter().map(JoinHandle::join).sum();
    result?;
    check("helpers that could not enter", failed_helpers, 0)
}

/// `shootdown_protect_1page`: on 2 CPUs, and on 4 when there are 4.
fn shootdown_protect_1page(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let cpus = percpu::all_cpus().count();
    let helper_page = Region::new(HELPER_VA, bench.ram, K4, RO | Protection::EAGER);
    bench.add(helper_page)?;
    let mut result = Ok(());
    for wanted in [2, 4] {
        if cpus < wanted {
            let _ = writeln!(out, "# shootdown_protect_1page_{wanted}cpu skipped: {cpus} CPUs");
            continue;
        }
        result = result.and(shootdown_on(bench, out, wanted));
    }
    bench.remove(helper_page)?;
    result
}

/// `aspace_switch`: ns per switch between two address spaces, as a context
/// switch does it (lock the space, `switch_to`: the CR3 load and its
/// bookkeeping), interrupts off.
fn aspace_switch(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let name = format!("{}-other", bench.space.name());
    let other = stress::create_enterable_space(&name).map_err(|e| format!("creating '{name}': {e}"))?;
    let result = measure(out, "aspace_switch", "ns/switch", 2 * CALLS, || {
        Ok(cpu::without_interrupts(|| {
            let ticks = timed(|| {
                for _ in 0..CALLS {
                    other.lock().switch_to();
                    bench.space.lock().switch_to();
                }
            });
            // The loop ends where it began: in the bench space, this
            // thread's and this CPU's.
            ticks
        }))
    });
    stress::destroy_when_unloaded(&other).map_err(|e| format!("destroying '{name}': {e}"))?;
    result
}

/// `tlb_flush`: the cost of dropping `n` pages from the TLB (one `invlpg`
/// each) against one flush of everything (CR3 reload), each followed by
/// reading those `n` pages again, through the same path as edits use
/// (`Machine::invalidate`). Where the two cross is where a flush batch
/// should switch to a full flush.
fn tlb_flush(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let pages = 128;
    let region = Region::new(BENCH_VA, bench.ram, pages * K4, RW | Protection::EAGER);
    bench.add(region)?;
    let space = bench.paging(|paging| paging.space_id()).ok_or("the bench space has no tables")?;
    let list: Vec<VirtAddr> = (0..pages).map(|page| VirtAddr::new(BENCH_VA + page * K4)).collect();
    let result = (|| {
        for n in [1u64, 4, 16, 32, 64, 128] {
            let reps = 64;
            measure(out, &format!("tlb_pages_{n}"), "ns/call", reps, || {
                read_each_page(BENCH_VA, n * K4);
                Ok(timed(|| {
                    for _ in 0..reps {
                        KernelMachine.invalidate(space, TlbInvalidation::Pages(&list[..n as usize]));
                        read_each_page(BENCH_VA, n * K4);
                    }
                }))
            })?;
            measure(out, &format!("tlb_all_{n}"), "ns/call", reps, || {
                read_each_page(BENCH_VA, n * K4);
                Ok(timed(|| {
                    for _ in 0..reps {
                        KernelMachine.invalidate(space, TlbInvalidation::All);
                        read_each_page(BENCH_VA, n * K4);
                    }
                }))
            })?;
        }
        Ok(())
    })();
    bench.remove(region)?;
    result
}

/// `fault_around_sweep`: ns per page of `lazy_fault_around` for windows of
/// 1 to 64 pages (what the default window was chosen from).
fn fault_around_sweep(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let region = Region::new(BENCH_VA, bench.ram + K4, M64, RW);
    for window in [1u64, 2, 4, 8, 16, 32, 64] {
        bench.set_faults(PageSize::Size1G, window);
        measure_runs(out, &format!("fault_around_w{window}"), "ns/page", M64 / K4, 3, || {
            touch_lazy(bench, region, M64 / K4 / window)
        })?;
    }
    bench.set_faults(PageSize::Size1G, paging::DEFAULT_FAULT_AROUND_PAGES);
    Ok(())
}

/// A size as the sweep names it: `64k`, `2m`, `1g`.
fn size_name(bytes: u64) -> String {
    match bytes {
        b if b >= G1 => format!("{}g", b / G1),
        b if b >= M2 / 2 => format!("{}m", b >> 20),
        b => format!("{}k", b >> 10),
    }
}

/// `map_sweep`: ns to map a whole region eagerly, against its size, with
/// 4 KiB, 2 MiB and 1 GiB pages (`map_<page>_<size>`, ns per region).
fn map_sweep(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let cases: [(PageSize, u64, &[u64]); 3] = [
        (PageSize::Size4K, K4, &[64 << 10, M2, 16 << 20, M64, 256 << 20]),
        (PageSize::Size2M, M2, &[M2, 16 << 20, M64, 256 << 20, G1]),
        (PageSize::Size1G, 0, &[G1, 4 * G1]),
    ];
    for (size, pa, lengths) in cases {
        if size == PageSize::Size1G && !cpu::features().huge_1g {
            continue;
        }
        for &len in lengths {
            let region = Region::new(BENCH_VA, pa, len, RW | Protection::EAGER);
            let name = format!("map_{}_{}", size_name(size.bytes()), size_name(len));
            measure_runs(out, &name, "ns/region", 1, 3, || time_eager_add(bench, region, size))?;
        }
    }
    Ok(())
}

/// `fault_sweep`: ns per 4 KiB page to read every page of a lazy region,
/// faults included, against the region's size: 4 KiB faults, 4 KiB faults
/// with the default fault-around, and 2 MiB faults (`touch_<mode>_<size>`).
fn fault_sweep(bench: &mut Bench, out: &mut dyn Write) -> Result<(), String> {
    let window = paging::DEFAULT_FAULT_AROUND_PAGES;
    // (mode, fault page limit, fault-around, physical offset, pages per fault)
    let modes: [(&str, PageSize, u64, u64, u64); 3] = [
        ("4k", PageSize::Size4K, 1, 0, 1),
        ("around", PageSize::Size1G, window, K4, window),
        ("2m", PageSize::Size2M, 1, 0, M2 / K4),
    ];
    for (mode, limit, around, offset, pages_per_fault) in modes {
        bench.set_faults(limit, around);
        // A 2 MiB fault needs a region of at least 2 MiB.
        let lengths: &[u64] =
            if limit == PageSize::Size2M { &[4 << 20, 16 << 20, M64] } else { &[256 << 10, 4 << 20, 16 << 20, M64] };
        for &len in lengths {
            let region = Region::new(BENCH_VA, bench.ram + offset, len, RW);
            let faults = (len / K4).div_ceil(pages_per_fault);
            let name = format!("touch_{mode}_{}", size_name(len));
            measure_runs(out, &name, "ns/page", len / K4, 3, || touch_lazy(bench, region, faults))?;
        }
    }
    bench.set_faults(PageSize::Size1G, window);
    Ok(())
}
