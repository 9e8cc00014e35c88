//! Model-based properties of the `paging` address space on the software MMU.
//!
//! Each case builds a simulated machine with two CPUs (each with its own
//! TLB), two or three address spaces and an abstract model of each: its
//! region list, from which follows what every virtual 4 KiB page must
//! translate to and with which rights. A random sequence of steps then adds,
//! removes, moves and protects regions (whole or a sub-range), touches
//! memory in supervisor and user mode (page faults go to the space's
//! `exception`, as the kernel's trap handler would send them), switches
//! CR3 and switches CPUs, so that one CPU keeps translations of a space in
//! its TLB while the other edits it. After every step:
//!
//! - the operation's result is the model's (the same refusal, or success);
//!   a refused operation leaves the regions, the tables and the frame count
//!   exactly as they were;
//! - every access agrees with the model: a read returns the word of the
//!   right physical page (its [`pattern`], or what the test wrote there
//!   through any alias), a write or fetch succeeds only where the region
//!   allows it, a forbidden access ends as `Unhandled(Forbidden)` or
//!   `Unhandled(NoRegion)`, and the TLB entry the access used is the model's
//!   translation;
//! - after every edit, and after every CR3 switch, each CPU running the
//!   space probes the edited range, its neighbours and the addresses touched
//!   before (read, write, fetch, user read): a stale TLB translation seen
//!   after an operation returned is a failure;
//! - `verify()` passes for every space, the region sets equal the models,
//!   and the machine recorded no rule break (`violations()`);
//! - at the end, with every CPU moved to an idle space and every space
//!   destroyed, the frame count is back to the baseline.
//!
//! Each case also picks whether PCIDs are on, where its window lies, and
//! the largest page a lazy fault may map (1 GiB, 2 MiB or 4 KiB).
//!
//! Addresses are drawn from a 4 GiB window with a few hot 2 MiB slots and
//! pages near their edges, so overlaps, splits and adjacency are common;
//! some regions are 2 MiB- or 1 GiB-sized and aligned so that they get large
//! pages. Physical addresses are congruent to the virtual ones modulo 1 GiB
//! (or shifted by 2 MiB or a few pages), from a handful of bases, so that
//! regions alias each other often.
//!
//! Further properties: out of memory injected at a random allocation of a
//! random step changes nothing; the same machinery with TLB shootdowns
//! disabled must find a stale translation (the model does see a missing
//! flush); and smaller runs with 5-level paging and without 1 GiB pages.
//!
//! ## Running a long campaign
//!
//! The case counts below keep `cargo test -p paging` short. Every property
//! (except the flush-removal test, whose count is a bound on how soon it must
//! fail) takes its count from `PROPTEST_CASES` when set:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test -p paging --release --test model_properties -- --nocapture
//! ```
//!
//! `--nocapture` shows per-property statistics. A failure prints the
//! shrunk case and the trace of resolved operations that led to it; its
//! seed is kept in `model_properties.regressions` beside this file and
//! replayed first on later runs.

mod common;

use aspace::{
    AddressSpace, AspaceError, Fault, FaultAccess, FaultOutcome, PhysAddr, Protection, Region, UnhandledFault,
    VirtAddr, VirtWidth,
};
use common::{snapshot, Space, G, K4, M2};
use mmu_model::{pattern, AccessError, Mode, RegionModel, SimConfig, SimMachine};
use paging::{PageSize, PagingAspace};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Simulated CPUs per machine.
const CPUS: usize = 2;
/// How often an access may fault and be fixed before it must succeed.
const MAX_ATTEMPTS: usize = 4;
/// How many recently touched addresses per space are probed after an edit.
const TOUCHED_KEPT: usize = 32;

const R: Protection = Protection::READ;
const W: Protection = Protection::WRITE;
const X: Protection = Protection::EXEC;

// ---------------------------------------------------------------------------
// The abstract model
// ---------------------------------------------------------------------------

// One address space as the model sees it is a `RegionModel` (mmu-model):
// its regions as a plain sorted list, with interval arithmetic of its own.

/// What the model says an access must do.
#[derive(Clone, Debug)]
enum Expected {
    /// Succeed, translating to this physical address.
    Allowed { pa: u64 },
    /// Fault and end with this refusal from `exception`.
    Refused(UnhandledFault),
    /// Never reach the page tables: a general-protection fault.
    NonCanonical,
}

/// What an access to `va` must do in an address space whose regions are
/// `model`'s.
fn expect(model: &RegionModel, va: u64, access: FaultAccess, mode: Mode, width: VirtWidth) -> Expected {
    if !VirtAddr(va).is_canonical(width) {
        return Expected::NonCanonical;
    }
    let Some(region) = model.find(va) else { return Expected::Refused(UnhandledFault::NoRegion) };
    let prot = region.prot;
    let forbidden = !prot.contains(R)
        || (mode == Mode::User && prot.contains(Protection::KERN))
        || (access == FaultAccess::Write && !prot.contains(W))
        || (access == FaultAccess::Execute && !prot.contains(X));
    if forbidden {
        Expected::Refused(UnhandledFault::Forbidden { region, access })
    } else {
        Expected::Allowed { pa: region.pa.0 + (va - region.va.0) }
    }
}

/// Equal refusals; the wording of an `InvalidFlags` reason is not compared.
fn same_result(actual: &Result<(), AspaceError>, expected: &Result<(), AspaceError>) -> bool {
    match (actual, expected) {
        (Err(AspaceError::InvalidFlags { flags: a, .. }), Err(AspaceError::InvalidFlags { flags: b, .. })) => a == b,
        _ => actual == expected,
    }
}

// ---------------------------------------------------------------------------
// Random steps
// ---------------------------------------------------------------------------

/// How a physical address is chosen for a virtual range: a base (a whole
/// number of GiB) plus the range's offset within its GiB, plus a shift.
#[derive(Clone, Copy, Debug)]
struct PaChoice {
    base_gib: u64,
    shift: Shift,
}

#[derive(Clone, Copy, Debug)]
enum Shift {
    /// Congruent modulo 1 GiB: every page size fits.
    None,
    /// Congruent modulo 2 MiB only: 2 MiB pages at best.
    TwoMeg,
    /// A few 4 KiB pages: 4 KiB pages only (ignored for ranges of 64 MiB
    /// and more, which would take too many entries to map page by page).
    Pages(u64),
}

impl PaChoice {
    fn resolve(self, va: u64, len: u64) -> u64 {
        let shift = match self.shift {
            Shift::None => 0,
            Shift::TwoMeg => M2,
            Shift::Pages(n) if len < 64 * M2 => n * K4,
            Shift::Pages(_) => 0,
        };
        self.base_gib * G + va % G + shift
    }
}

/// Which part of an existing region an edit names.
#[derive(Clone, Copy, Debug)]
enum Target {
    Whole(Index),
    /// A sub-range counted in 4 KiB or (when the region is long enough)
    /// 2 MiB units.
    Part {
        region: Index,
        large_units: bool,
        start: Index,
        count: Count,
    },
    /// The region's start and length with a physical start one page off.
    WrongPa(Index),
    /// The region's start and physical start, one page too long.
    WrongLen(Index),
    /// One page at a window offset, wherever that falls.
    Nowhere(u64),
}

#[derive(Clone, Copy, Debug)]
enum Count {
    Few(u64),
    Any(Index),
}

/// Where an access lands.
#[derive(Clone, Copy, Debug)]
enum AccessAt {
    InRegion { region: Index, page: Index, word: u64 },
    JustOutside { region: Index, after: bool, word: u64 },
    Anywhere { offset: u64, word: u64 },
}

#[derive(Clone, Debug)]
enum Op {
    Add {
        space: Index,
        offset: u64,
        len: u64,
        pa: PaChoice,
        prot: Protection,
    },
    Remove {
        space: Index,
        target: Target,
    },
    Move {
        space: Index,
        target: Target,
        pa: PaChoice,
    },
    Protect {
        space: Index,
        target: Target,
        prot: Protection,
    },
    Access {
        access: FaultAccess,
        mode: Mode,
        at: AccessAt,
        value: u64,
    },
    /// The selected CPU switches to this space (CR3 load).
    Switch {
        space: Index,
    },
    SelectCpu(usize),
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    /// Make the n-th allocation from the start of this step fail.
    fail_nth: Option<u64>,
}

#[derive(Clone, Debug)]
struct Case {
    pcid: bool,
    window: Index,
    /// The largest page a lazy fault maps, in every space of the case.
    fault_page_limit: PageSize,
    spaces: usize,
    steps: Vec<Step>,
}

/// A virtual offset in the window: one of four GiB, a hot 2 MiB slot, and
/// a page near the slot's start, middle or end.
fn window_offset() -> impl Strategy<Value = u64> {
    let slot = prop::sample::select(vec![0u64, 1, 2, 255, 510, 511]);
    let page = prop_oneof![3 => Just(0u64), 2 => 1..8u64, 1 => prop::sample::select(vec![255u64, 256, 509, 510, 511])];
    (0..4u64, slot, page).prop_map(|(gib, slot, page)| gib * G + slot * M2 + page * K4)
}

/// A start and a length: mostly a few pages, some 2 MiB multiples (most of
/// them 2 MiB-aligned), a few whole GiB (most of them GiB-aligned).
fn extent() -> impl Strategy<Value = (u64, u64)> {
    let small = (window_offset(), (1..=16u64).prop_map(|n| n * K4));
    let two_meg_start = prop_oneof![3 => (0..4u64, 0..512u64).prop_map(|(g, s)| g * G + s * M2), 1 => window_offset()];
    let medium = (two_meg_start, 1..=4u64, prop_oneof![3 => Just(0u64), 1 => 1..4u64])
        .prop_map(|(va, n, extra)| (va, n * M2 + extra * K4));
    let gib_start = prop_oneof![3 => (0..4u64).prop_map(|g| g * G), 1 => window_offset()];
    let large = (gib_start, (1..=2u64).prop_map(|n| n * G));
    prop_oneof![6 => small, 3 => medium, 1 => large]
}

fn pa_choice() -> impl Strategy<Value = PaChoice> {
    let shift = prop_oneof![4 => Just(Shift::None), 1 => Just(Shift::TwoMeg), 2 => (1..4u64).prop_map(Shift::Pages)];
    (prop::sample::select(vec![0u64, 1, 2, 3, 5]), shift).prop_map(|(base_gib, shift)| PaChoice { base_gib, shift })
}

/// Rights (some without READ, some invalid: WRITE alone) and management flags.
fn protection() -> impl Strategy<Value = Protection> {
    let rights = prop_oneof![
        3 => Just(R),
        3 => Just(R | W),
        2 => Just(R | X),
        2 => Just(R | W | X),
        1 => Just(Protection::empty()),
        1 => Just(W),
    ];
    (rights, any::<bool>(), prop::bool::weighted(0.15), any::<bool>(), prop::bool::weighted(0.05)).prop_map(
        |(rights, kern, pin, eager, swap)| {
            let mut prot = rights;
            prot.set(Protection::KERN, kern);
            prot.set(Protection::PIN, pin);
            prot.set(Protection::EAGER, eager);
            prot.set(Protection::SWAP, swap);
            prot
        },
    )
}

fn target() -> impl Strategy<Value = Target> {
    let count = prop_oneof![1 => (1..=3u64).prop_map(Count::Few), 1 => any::<Index>().prop_map(Count::Any)];
    prop_oneof![
        3 => any::<Index>().prop_map(Target::Whole),
        4 => (any::<Index>(), any::<bool>(), any::<Index>(), count)
            .prop_map(|(region, large_units, start, count)| Target::Part { region, large_units, start, count }),
        1 => any::<Index>().prop_map(Target::WrongPa),
        1 => any::<Index>().prop_map(Target::WrongLen),
        1 => window_offset().prop_map(Target::Nowhere),
    ]
}

fn access_at() -> impl Strategy<Value = AccessAt> {
    let word = 0..512u64;
    prop_oneof![
        6 => (any::<Index>(), any::<Index>(), word.clone())
            .prop_map(|(region, page, word)| AccessAt::InRegion { region, page, word }),
        1 => (any::<Index>(), any::<bool>(), word.clone())
            .prop_map(|(region, after, word)| AccessAt::JustOutside { region, after, word }),
        1 => (window_offset(), word).prop_map(|(offset, word)| AccessAt::Anywhere { offset, word }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let access_kind =
        prop_oneof![3 => Just(FaultAccess::Read), 2 => Just(FaultAccess::Write), 1 => Just(FaultAccess::Execute)];
    let mode = prop_oneof![3 => Just(Mode::Supervisor), 1 => Just(Mode::User)];
    prop_oneof![
        5 => (any::<Index>(), extent(), pa_choice(), protection())
            .prop_map(|(space, (offset, len), pa, prot)| Op::Add { space, offset, len, pa, prot }),
        2 => (any::<Index>(), target()).prop_map(|(space, target)| Op::Remove { space, target }),
        2 => (any::<Index>(), target(), pa_choice()).prop_map(|(space, target, pa)| Op::Move { space, target, pa }),
        3 => (any::<Index>(), target(), protection())
            .prop_map(|(space, target, prot)| Op::Protect { space, target, prot }),
        8 => (access_kind, mode, access_at(), any::<u64>())
            .prop_map(|(access, mode, at, value)| Op::Access { access, mode, at, value }),
        1 => any::<Index>().prop_map(|space| Op::Switch { space }),
        1 => (0..CPUS).prop_map(Op::SelectCpu),
    ]
}

fn case(steps: Range<usize>, inject: bool) -> impl Strategy<Value = Case> {
    let fail_nth = if inject { prop::option::weighted(0.5, 0..3u64).boxed() } else { Just(None).boxed() };
    let step = (op(), fail_nth).prop_map(|(op, fail_nth)| Step { op, fail_nth });
    let fault_page_limit =
        prop_oneof![2 => Just(PageSize::Size1G), 1 => Just(PageSize::Size2M), 1 => Just(PageSize::Size4K)];
    (any::<bool>(), any::<Index>(), fault_page_limit, 2..=3usize, prop::collection::vec(step, steps)).prop_map(
        |(pcid, window, fault_page_limit, spaces, steps)| Case { pcid, window, fault_page_limit, spaces, steps },
    )
}

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

/// The shape of one property run.
#[derive(Clone, Debug)]
struct Variant {
    machine: SimConfig,
    /// Where the 4 GiB virtual window of a case may start (1 GiB-aligned);
    /// each case picks one.
    windows: Vec<u64>,
    /// `false`: a machine that forgets its shootdowns.
    invalidation: bool,
}

/// Counts over a whole property run, printed with `--nocapture`.
#[derive(Default)]
struct Stats {
    cases: AtomicU64,
    edits_done: AtomicU64,
    edits_refused: AtomicU64,
    accesses_allowed: AtomicU64,
    accesses_refused: AtomicU64,
    injections_fired: AtomicU64,
    /// Leaves made present, by size (4 KiB, 2 MiB, 1 GiB).
    pages_mapped: [AtomicU64; 3],
    splits: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn report(&self, name: &str) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        eprintln!(
            "{name}: {} cases run (shrinking included); edits {} done, {} refused; accesses {} allowed, {} refused; \
             out-of-memory injections fired: {}; pages mapped: {} 4K, {} 2M, {} 1G; large pages split: {}",
            get(&self.cases),
            get(&self.edits_done),
            get(&self.edits_refused),
            get(&self.accesses_allowed),
            get(&self.accesses_refused),
            get(&self.injections_fired),
            get(&self.pages_mapped[0]),
            get(&self.pages_mapped[1]),
            get(&self.pages_mapped[2]),
            get(&self.splits),
        );
    }
}

/// How an access ended, when it agreed with the model.
enum AccessEnd {
    Allowed,
    Refused,
    /// An injected allocation failure stopped the fault handler.
    OutOfMemory,
}

/// An armed allocation failure: the `n`-th allocation after `base` fails.
#[derive(Clone, Copy)]
struct Injection {
    n: u64,
    base: u64,
}

struct Harness<'s> {
    machine: SimMachine,
    variant: &'s Variant,
    stats: &'s Stats,
    /// Start of this case's virtual window.
    window: u64,
    /// The space every CPU runs when the test spaces are destroyed.
    idle: Space,
    spaces: Vec<Space>,
    models: Vec<RegionModel>,
    /// Physical words written by the test; every other word reads as its pattern.
    memory: HashMap<u64, u64>,
    /// The space each CPU has loaded.
    loaded: [usize; CPUS],
    /// Recently touched word addresses, per space.
    touched: Vec<VecDeque<u64>>,
    injection: Option<Injection>,
    /// Frames in use before the test spaces were made (idle's root).
    baseline_frames: usize,
    trace: String,
}

type Check = Result<(), TestCaseError>;

impl<'s> Harness<'s> {
    fn new(variant: &'s Variant, stats: &'s Stats, case: &Case) -> Self {
        let machine = SimMachine::new(variant.machine.clone().with_cpus(CPUS).with_pcid(case.pcid));
        // Rule breaks are recorded and checked after each step, so that a
        // failing case shrinks like any other.
        machine.set_strict(false);
        machine.set_invalidation_enabled(variant.invalidation);
        let idle = PagingAspace::new(machine.clone(), "idle", None).expect("a root table");
        let baseline_frames = machine.frames_in_use();
        let pcid = |n: usize| case.pcid.then_some(n as u16 + 1);
        let mut spaces: Vec<Space> = (0..case.spaces)
            .map(|n| {
                let mut space =
                    PagingAspace::new(machine.clone(), &format!("space{n}"), pcid(n)).expect("a root table");
                space.set_fault_page_limit(case.fault_page_limit);
                space
            })
            .collect();
        let mut loaded = [0; CPUS];
        for (cpu, slot) in loaded.iter_mut().enumerate() {
            *slot = cpu % spaces.len();
            machine.select_cpu(cpu);
            spaces[*slot].switch_to();
        }
        machine.select_cpu(0);
        Harness {
            machine,
            variant,
            stats,
            window: variant.windows[case.window.index(variant.windows.len())],
            idle,
            models: vec![RegionModel::new(); spaces.len()],
            touched: vec![VecDeque::new(); spaces.len()],
            spaces,
            memory: HashMap::new(),
            loaded,
            injection: None,
            baseline_frames,
            trace: String::new(),
        }
    }

    /// A failure, with the operations that led to it.
    fn fail(&self, what: String) -> TestCaseError {
        TestCaseError::fail(format!("{what}\n--- trace (cpu, space, operation => result) ---\n{}", self.trace))
    }

    fn log(&mut self, line: String) {
        let _ = writeln!(self.trace, "cpu{} {line}", self.machine.current_cpu());
    }

    fn memory_at(&self, pa: u64) -> u64 {
        self.memory.get(&pa).copied().unwrap_or_else(|| pattern(pa))
    }

    fn touch(&mut self, space: usize, va: u64) {
        let touched = &mut self.touched[space];
        if !touched.contains(&va) {
            if touched.len() == TOUCHED_KEPT {
                touched.pop_front();
            }
            touched.push_back(va);
        }
    }

    /// True once the armed allocation failure has happened (and disarms it).
    fn injection_fired(&mut self) -> bool {
        let Some(Injection { n, base }) = self.injection else { return false };
        let fired = self.machine.allocations() - base > n;
        if fired {
            self.injection = None;
            self.machine.fail_nth_allocation(None);
            Stats::add(&self.stats.injections_fired, 1);
        }
        fired
    }

    fn run(&mut self, case: &Case) -> Check {
        for (number, step) in case.steps.iter().enumerate() {
            let _ = write!(self.trace, "{number:3}: ");
            if let Some(n) = step.fail_nth {
                self.machine.fail_nth_allocation(Some(n));
                self.injection = Some(Injection { n, base: self.machine.allocations() });
                let _ = write!(self.trace, "[allocation {n} fails] ");
            }
            self.step(&step.op)?;
            self.check_all()?;
        }
        self.teardown()
    }

    fn step(&mut self, op: &Op) -> Check {
        match *op {
            Op::Add { space, offset, len, pa, prot } => {
                let s = space.index(self.spaces.len());
                let va = self.window + offset;
                let region = Region::new(va, pa.resolve(va, len), len, prot);
                self.edit(
                    s,
                    format!("add {region}"),
                    region,
                    |space| space.add_region(region),
                    |model| model.add(region),
                )
            }
            Op::Remove { space, target } => {
                let s = space.index(self.spaces.len());
                let part = self.resolve_target(s, target);
                self.edit(
                    s,
                    format!("remove {part}"),
                    part,
                    |space| space.remove_region(part),
                    |model| model.remove(part),
                )
            }
            Op::Move { space, target, pa } => {
                let s = space.index(self.spaces.len());
                let part = self.resolve_target(s, target);
                let new_pa = pa.resolve(part.va.0, part.len);
                self.edit(
                    s,
                    format!("move {part} to {new_pa:#x}"),
                    part,
                    |space| space.move_region(part, PhysAddr(new_pa)),
                    |model| model.move_to(part, new_pa),
                )
            }
            Op::Protect { space, target, prot } => {
                let s = space.index(self.spaces.len());
                let part = self.resolve_target(s, target);
                self.edit(
                    s,
                    format!("protect {part} as {prot}"),
                    part,
                    |space| space.protect_region(part, prot),
                    |model| model.protect(part, prot),
                )
            }
            Op::Access { access, mode, at, value } => {
                let s = self.loaded[self.machine.current_cpu()];
                let va = self.resolve_access(s, at);
                self.touch(s, va);
                self.log(format!("space{s} {access:?} {va:#x} {mode:?}"));
                let value = (access == FaultAccess::Write).then_some(value);
                let ended = self.access(access, mode, va, value, "access")?;
                self.injection_fired();
                self.machine.fail_nth_allocation(None);
                self.injection = None;
                let _ = writeln!(
                    self.trace,
                    "     => {}",
                    match ended {
                        AccessEnd::Allowed => "allowed",
                        AccessEnd::Refused => "refused",
                        AccessEnd::OutOfMemory => "out of memory",
                    }
                );
                Ok(())
            }
            Op::Switch { space } => {
                let s = space.index(self.spaces.len());
                let cpu = self.machine.current_cpu();
                self.log(format!("switch space{} -> space{s}", self.loaded[cpu]));
                self.spaces[self.loaded[cpu]].switch_from();
                self.spaces[s].switch_to();
                self.loaded[cpu] = s;
                // Translations kept under a PCID must not be stale.
                self.probe(s)
            }
            Op::SelectCpu(cpu) => {
                self.machine.select_cpu(cpu);
                self.log("selected".into());
                Ok(())
            }
        }
    }

    /// Runs an edit of space `s` and the same edit of its model, and checks
    /// that they agree: the same result; a refusal (or an injected
    /// allocation failure) leaves regions, tables and frames as they were;
    /// after a success every CPU running the space sees the new state at
    /// once, in the edited range, around it and where it touched before.
    fn edit(
        &mut self,
        s: usize,
        what: String,
        range: Region,
        operate: impl FnOnce(&mut Space) -> Result<(), AspaceError>,
        apply: impl FnOnce(&mut RegionModel) -> Result<(), AspaceError>,
    ) -> Check {
        self.log(format!("space{s} {what}"));
        let before = snapshot(&self.machine, &self.spaces[s]);
        let actual = operate(&mut self.spaces[s]);
        let fired = self.injection_fired();
        self.machine.fail_nth_allocation(None);
        self.injection = None;
        let _ = writeln!(self.trace, "     => {actual:?}");
        let mut model = self.models[s].clone();
        let expected = apply(&mut model);
        let unchanged = |harness: &Self, why: &str| -> Check {
            let after = snapshot(&harness.machine, &harness.spaces[s]);
            if after != before {
                return Err(harness.fail(format!("{why} changed space{s}:\nbefore {before:#?}\nafter {after:#?}")));
            }
            Ok(())
        };
        if fired {
            if actual != Err(AspaceError::OutOfMemory) || expected.is_err() {
                return Err(self.fail(format!(
                    "space{s} {what}: an allocation failed; result {actual:?}, the model says {expected:?} \
                     without the failure"
                )));
            }
            return unchanged(self, "an edit that ran out of memory");
        }
        if !same_result(&actual, &expected) {
            return Err(self.fail(format!("space{s} {what}: result {actual:?}, the model says {expected:?}")));
        }
        if expected.is_err() {
            Stats::add(&self.stats.edits_refused, 1);
            return unchanged(self, "a refused edit");
        }
        Stats::add(&self.stats.edits_done, 1);
        self.models[s] = model;
        let (first, last) = (range.va.0, range.va.0 + range.len - 8);
        let middle = first + ((range.len / 2) & !(K4 - 1));
        // The probes leave TLB entries: later edits must be checked there too.
        for va in [first - 8, first, middle, last, last + 8] {
            self.touch(s, va);
        }
        self.probe(s)
    }

    fn resolve_target(&self, s: usize, target: Target) -> Region {
        let regions = self.models[s].regions();
        let window = self.window;
        let nowhere = |offset: u64| Region::new(window + offset, offset, K4, R);
        if regions.is_empty() {
            let offset = match target {
                Target::Nowhere(offset) => offset,
                _ => 0,
            };
            return nowhere(offset);
        }
        let pick = |index: Index| regions[index.index(regions.len())];
        match target {
            Target::Whole(index) => Region { prot: R, ..pick(index) },
            Target::Part { region, large_units, start, count } => {
                let r = pick(region);
                let unit = if large_units && r.len >= M2 { M2 } else { K4 };
                let units = r.len / unit;
                let first = start.index(units as usize) as u64;
                let n = match count {
                    Count::Few(n) => n.min(units - first),
                    Count::Any(index) => 1 + index.index((units - first) as usize) as u64,
                };
                let va = r.va.0 + first * unit;
                Region::new(va, r.pa.0 + first * unit, n * unit, R)
            }
            Target::WrongPa(index) => {
                let r = pick(index);
                Region::new(r.va.0, r.pa.0 + K4, r.len, R)
            }
            Target::WrongLen(index) => {
                let r = pick(index);
                Region::new(r.va.0, r.pa.0, r.len + K4, R)
            }
            Target::Nowhere(offset) => nowhere(offset),
        }
    }

    fn resolve_access(&self, s: usize, at: AccessAt) -> u64 {
        let regions = self.models[s].regions();
        let window = self.window;
        match at {
            AccessAt::InRegion { region, page, word } if !regions.is_empty() => {
                let r = regions[region.index(regions.len())];
                r.va.0 + page.index((r.len / K4) as usize) as u64 * K4 + word * 8
            }
            AccessAt::JustOutside { region, after, word } if !regions.is_empty() => {
                let r = regions[region.index(regions.len())];
                if after {
                    r.va.0 + r.len + word * 8
                } else {
                    r.va.0 - K4 + word * 8
                }
            }
            AccessAt::Anywhere { offset, word } => window + offset + word * 8,
            AccessAt::InRegion { word, .. } | AccessAt::JustOutside { word, .. } => window + word * 8,
        }
    }

    /// One access on the selected CPU through the space it runs, with page
    /// faults offered to that space and the instruction retried, checked
    /// against the model at every turn. `value` is what a write stores (by
    /// default the word already there, so that probes change nothing).
    fn access(
        &mut self,
        access: FaultAccess,
        mode: Mode,
        va: u64,
        value: Option<u64>,
        why: &str,
    ) -> Result<AccessEnd, TestCaseError> {
        let cpu = self.machine.current_cpu();
        let s = self.loaded[cpu];
        let expected = expect(&self.models[s], va, access, mode, self.variant.machine.features.virt_width());
        let what = format!("{why}: {access:?} of {va:#x} in {mode:?} mode on CPU {cpu} in space{s}");
        let cached_before = self.machine.cached_translation(cpu, va);
        let stored = match (&expected, value) {
            (_, Some(value)) => value,
            (Expected::Allowed { pa }, None) => self.memory_at(*pa),
            (_, None) => 0x0bad_0bad_0bad_0bad,
        };
        let mut outcomes = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let result = match access {
                FaultAccess::Read => self.machine.read_u64_at(va, mode).map(Some),
                FaultAccess::Write => self.machine.write_u64_at(va, stored, mode).map(|()| None),
                FaultAccess::Execute => self.machine.fetch_at(va, mode).map(|()| None),
            };
            let fault = match result {
                Ok(read) => {
                    let used = self.machine.cached_translation(cpu, va);
                    let stale = outcomes.is_empty() && cached_before.is_some() && used == cached_before;
                    let diagnosis = if stale {
                        format!("stale TLB translation (to {:#x}, cached before the access)", used.unwrap_or(0))
                    } else {
                        format!("the tables translated it to {used:#x?}")
                    };
                    let Expected::Allowed { pa } = expected else {
                        return Err(self
                            .fail(format!("{what} succeeded, but the model refuses it ({expected:?}): {diagnosis}")));
                    };
                    if used != Some(pa) {
                        return Err(
                            self.fail(format!("{what} used PA {used:#x?}, the model says {pa:#x}: {diagnosis}"))
                        );
                    }
                    if let Some(read) = read {
                        let want = self.memory_at(pa);
                        if read != want {
                            return Err(self.fail(format!("{what} read {read:#x}, PA {pa:#x} holds {want:#x}")));
                        }
                    }
                    if access == FaultAccess::Write {
                        self.memory.insert(pa, stored);
                    }
                    Stats::add(&self.stats.accesses_allowed, 1);
                    return Ok(AccessEnd::Allowed);
                }
                Err(AccessError::NonCanonical) => {
                    if matches!(expected, Expected::NonCanonical) {
                        Stats::add(&self.stats.accesses_refused, 1);
                        return Ok(AccessEnd::Refused);
                    }
                    return Err(self.fail(format!("{what}: non-canonical, the model expects {expected:?}")));
                }
                Err(AccessError::PageFault(fault)) => fault,
            };
            if fault.addr != va {
                return Err(self.fail(format!("{what}: the fault reports address {:#x}", fault.addr)));
            }
            let before = self.injection.map(|_| snapshot(&self.machine, &self.spaces[s]));
            let outcome = self.spaces[s].exception(&Fault::page_fault(fault.addr, fault.code, 0));
            outcomes.push((fault.code, outcome.clone()));
            if self.injection_fired() {
                let wanted = match &expected {
                    Expected::Allowed { .. } => self.models[s].find(va),
                    _ => None,
                };
                let ok = matches!((&outcome, wanted), (FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }), Some(w)) if *region == w);
                if !ok {
                    return Err(self.fail(format!(
                        "{what}: the fault handler's allocation failed; outcomes {outcomes:?}, expected \
                         Unhandled(OutOfMemory) for {wanted:?}"
                    )));
                }
                let after = snapshot(&self.machine, &self.spaces[s]);
                if before.as_ref() != Some(&after) {
                    return Err(self.fail(format!(
                        "{what}: the failed fault handler changed the space:\nbefore {before:#?}\nafter {after:#?}"
                    )));
                }
                return Ok(AccessEnd::OutOfMemory);
            }
            match outcome {
                FaultOutcome::Handled | FaultOutcome::Spurious => continue,
                FaultOutcome::Unhandled(refusal) => {
                    if matches!(&expected, Expected::Refused(wanted) if *wanted == refusal) {
                        Stats::add(&self.stats.accesses_refused, 1);
                        return Ok(AccessEnd::Refused);
                    }
                    return Err(self.fail(format!(
                        "{what} ended Unhandled({refusal:?}); the model expects {expected:?}; outcomes {outcomes:?}"
                    )));
                }
            }
        }
        Err(self.fail(format!(
            "{what} still faults after {MAX_ATTEMPTS} attempts; the model expects {expected:?}; outcomes {outcomes:?}"
        )))
    }

    /// Every CPU running space `s` reads, writes (the same word back) and
    /// fetches each recently touched address, in supervisor and user mode.
    fn probe(&mut self, s: usize) -> Check {
        let addresses: Vec<u64> = self.touched[s].iter().copied().collect();
        let selected = self.machine.current_cpu();
        for cpu in 0..CPUS {
            if self.loaded[cpu] != s {
                continue;
            }
            self.machine.select_cpu(cpu);
            for &va in &addresses {
                for (access, mode) in [
                    (FaultAccess::Read, Mode::Supervisor),
                    (FaultAccess::Write, Mode::Supervisor),
                    (FaultAccess::Execute, Mode::Supervisor),
                    (FaultAccess::Read, Mode::User),
                    (FaultAccess::Write, Mode::User),
                    (FaultAccess::Execute, Mode::User),
                ] {
                    self.access(access, mode, va, None, "probe")?;
                }
            }
        }
        self.machine.select_cpu(selected);
        Ok(())
    }

    /// After every step: each space verifies, matches its model, and the
    /// machine saw no rule break.
    fn check_all(&self) -> Check {
        for (s, space) in self.spaces.iter().enumerate() {
            if let Err(errors) = space.verify() {
                return Err(self.fail(format!("space{s} fails verify(): {errors:#?}")));
            }
            let regions: Vec<Region> = space.regions().iter().copied().collect();
            if regions != self.models[s].regions() {
                return Err(self.fail(format!(
                    "space{s}'s regions {regions:#?} differ from the model's {:#?}",
                    self.models[s].regions()
                )));
            }
        }
        self.check_violations()
    }

    fn check_violations(&self) -> Check {
        let violations = self.machine.violations();
        if self.variant.invalidation && !violations.is_empty() {
            return Err(self.fail(format!("the machine recorded rule breaks: {violations:#?}")));
        }
        Ok(())
    }

    /// Every CPU moves to the idle space, every space is destroyed, and the
    /// frames come back.
    fn teardown(&mut self) -> Check {
        for cpu in 0..CPUS {
            self.machine.select_cpu(cpu);
            self.spaces[self.loaded[cpu]].switch_from();
            self.idle.switch_to();
        }
        for (s, space) in self.spaces.iter_mut().enumerate() {
            let counters = space.counters();
            for (total, mapped) in self.stats.pages_mapped.iter().zip(counters.pages_mapped) {
                Stats::add(total, mapped);
            }
            Stats::add(&self.stats.splits, counters.splits);
            let destroyed = space.destroy();
            if destroyed.is_err() {
                return Err(self.fail(format!("destroying space{s}: {destroyed:?}")));
            }
        }
        let in_use = self.machine.frames_in_use();
        if in_use != self.baseline_frames {
            return Err(self.fail(format!(
                "{in_use} frames in use after destroying every space, {} before they were made",
                self.baseline_frames
            )));
        }
        self.check_violations()
    }
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

/// `PROPTEST_CASES` when set, else `default`.
fn cases_from_env(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(default)
}

/// Runs `cases` random cases of `steps` steps on machines shaped by `variant`.
fn run_property(
    variant: &Variant,
    cases: u32,
    steps: Range<usize>,
    inject: bool,
    keep_failures: bool,
) -> (Result<(), TestError<Case>>, Stats) {
    let persistence: Option<Box<dyn proptest::test_runner::FailurePersistence>> =
        keep_failures.then(|| Box::new(FileFailurePersistence::WithSource("regressions")) as _);
    let mut runner = TestRunner::new(Config {
        cases,
        // Enough for a failing sequence to shrink to a handful of steps.
        max_shrink_iters: 2048,
        source_file: Some(file!()),
        failure_persistence: persistence,
        ..Config::default()
    });
    let stats = Stats::default();
    let result = runner.run(&case(steps, inject), |case| {
        Stats::add(&stats.cases, 1);
        Harness::new(variant, &stats, &case).run(&case)
    });
    (result, stats)
}

/// Runs a property that must hold, and returns its statistics.
fn check_property(name: &str, variant: &Variant, default_cases: u32, steps: Range<usize>, inject: bool) -> Stats {
    let (result, stats) = run_property(variant, cases_from_env(default_cases), steps, inject, true);
    stats.report(name);
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    stats
}

/// The generator must exercise both sides of every check, or the run proves little.
fn assert_both_sides_exercised(stats: &Stats) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let cases = get(&stats.cases);
    assert!(get(&stats.edits_done) >= cases, "too few edits succeeded");
    assert!(get(&stats.edits_refused) >= cases / 2, "too few edits were refused");
    assert!(get(&stats.accesses_allowed) >= cases, "too few accesses were allowed");
    assert!(get(&stats.accesses_refused) >= cases, "too few accesses were refused");
}

fn four_level() -> Variant {
    Variant {
        machine: SimConfig::four_level(),
        // Across the boundary between PML4 entries 0 and 1 (512 GiB); at
        // the start of the upper canonical half; just below the top of the
        // address space (PML4 entry 511).
        windows: vec![510 * G, 0xffff_8000_0000_0000, 0u64.wrapping_sub(8 * G)],
        invalidation: true,
    }
}

#[test]
fn four_level_paging_agrees_with_the_model() {
    let stats = check_property("four-level", &four_level(), 320, 20..60, false);
    assert_both_sides_exercised(&stats);
}

#[test]
fn five_level_paging_agrees_with_the_model() {
    let variant = Variant {
        machine: SimConfig::five_level(),
        // Across 2^48, the boundary between PML5 entries 0 and 1; at the
        // start of the 57-bit upper half; just below the top.
        windows: vec![(1 << 48) - 2 * G, 0xff00_0000_0000_0000, 0u64.wrapping_sub(8 * G)],
        invalidation: true,
    };
    let stats = check_property("five-level", &variant, 64, 20..50, false);
    assert_both_sides_exercised(&stats);
}

#[test]
fn paging_without_1g_pages_agrees_with_the_model() {
    let mut variant = four_level();
    variant.machine.features.huge_1g = false;
    let stats = check_property("without 1 GiB pages", &variant, 64, 20..50, false);
    assert_both_sides_exercised(&stats);
}

#[test]
fn running_out_of_memory_at_any_allocation_changes_nothing() {
    let stats = check_property("out of memory", &four_level(), 200, 20..50, true);
    let cases = stats.cases.load(Ordering::Relaxed);
    let fired = stats.injections_fired.load(Ordering::Relaxed);
    assert!(fired >= cases / 2, "only {fired} injected failures fired in {cases} cases");
}

/// The same machinery on a machine whose TLB shootdowns do nothing must
/// find an access served by a stale translation, within a few cases: the
/// properties above would see a missing flush.
#[test]
fn the_model_sees_a_missing_flush() {
    let mut variant = four_level();
    variant.invalidation = false;
    const CASES: u32 = 64;
    let (result, stats) = run_property(&variant, CASES, 20..60, false, false);
    stats.report("invalidation disabled");
    match result {
        Err(TestError::Fail(reason, case)) => {
            assert!(
                reason.message().contains("stale TLB translation"),
                "the failure found is not a stale translation: {reason}"
            );
            eprintln!("as expected, a stale translation was found; smallest case: {case:#?}\n{reason}");
        }
        other => panic!("no stale translation found in {CASES} cases without invalidation: {other:?}"),
    }
}
