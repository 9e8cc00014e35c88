//! The `paging` address space on the software MMU against a model of its
//! regions.
//!
//! The input picks the machine's shape (PCIDs on or off, the largest page a
//! fault maps), then a sequence of steps on one space over two CPUs: add a
//! region (eager or lazy, linear or anonymous, sometimes pinned), remove,
//! move or protect a region or a part of one (named rightly or wrongly),
//! touch a page (read, write or fetch, page faults offered to the space as
//! the trap handler does), and load the space or an idle one on a CPU. Each
//! edit must be refused exactly when the model refuses it, with the same
//! kind of error, and a refused edit must change nothing; every access must
//! succeed exactly when the model allows it and reach the model's physical
//! address. After every step `verify()` passes and the region set equals
//! the model; the machine panics on any TLB rule break (strict mode). At the
//! end the space is destroyed and the frames in use are back at the baseline.
//!
//! Generated regions are canonical and aligned, so the refusals at stake are
//! the ones that depend on the space's state: overlap, no region, a part
//! named with the wrong physical address, pinned, moving anonymous memory,
//! contradicting flags and changing a region's kind.

use crate::input::ByteReader;
use aspace::{AddressSpace, AspaceError, Fault, FaultAccess, FaultOutcome, PhysAddr, Protection, Region};
use core::mem::discriminant;
use mmu_model::{AccessError, Mode, RegionModel, SimConfig, SimMachine};
use paging::{MappingRun, PageSize, PagingAspace};

const PAGE: u64 = 0x1000;
const LARGE: u64 = 0x20_0000;
/// The virtual window every region lies in: 16 MiB at 1 GiB.
const WINDOW: u64 = 0x4000_0000;
const WINDOW_PAGES: u64 = 4096;
/// Physical bases that regions map from: equal to the window modulo 1 GiB,
/// or shifted by a page (no large pages then).
const PHYS_BASES: [u64; 3] = [0x1_0000_0000, 0x1_0000_1000, 0x8000_0000];
const CPUS: usize = 2;
const MAX_STEPS: usize = 96;
/// How often an access may fault and be fixed before it must succeed.
const MAX_ATTEMPTS: usize = 4;

const R: Protection = Protection::READ;
const W: Protection = Protection::WRITE;
const X: Protection = Protection::EXEC;
/// Rights the generator picks from; the last two contradict themselves.
const RIGHTS: [Protection; 7] = [R, R.union(W), R.union(X), R.union(W).union(X), Protection::empty(), W, X];

type Space = PagingAspace<SimMachine>;

/// The same outcome: both succeed, or both refuse with the same kind of
/// error (and, for an overlap, naming the same region).
fn same_outcome(got: &Result<(), AspaceError>, expected: &Result<(), AspaceError>) -> bool {
    match (got, expected) {
        (Ok(()), Ok(())) => true,
        (Err(AspaceError::Overlap { existing: a }), Err(AspaceError::Overlap { existing: b })) => a == b,
        (Err(a), Err(b)) => discriminant(a) == discriminant(b),
        _ => false,
    }
}

/// Everything a refused edit must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    frames_in_use: usize,
    regions: Vec<Region>,
    runs: Vec<MappingRun>,
}

fn snapshot(machine: &SimMachine, space: &Space) -> Snapshot {
    Snapshot {
        frames_in_use: machine.frames_in_use(),
        regions: space.regions().iter().copied().collect(),
        runs: space.mappings().expect("the space is live").collect(),
    }
}

/// The machine, the space under test, an idle space to unload it with, the
/// model, and which CPUs have the space loaded.
struct Bench {
    machine: SimMachine,
    space: Space,
    idle: Space,
    model: RegionModel,
    loaded: [bool; CPUS],
    /// The frames in use before the space under test was made.
    baseline: usize,
}

impl Bench {
    fn new(input: &mut ByteReader) -> Bench {
        let shape = input.byte();
        let pcid = shape & 1 != 0;
        let machine = SimMachine::new(SimConfig::four_level().with_cpus(CPUS).with_pcid(pcid));
        let mut idle = PagingAspace::new(machine.clone(), "idle", pcid.then_some(1)).expect("a root for idle");
        for cpu in 0..CPUS {
            machine.select_cpu(cpu);
            idle.switch_to();
        }
        machine.select_cpu(0);
        let baseline = machine.frames_in_use();
        let mut space = PagingAspace::new(machine.clone(), "fuzzed", pcid.then_some(2)).expect("a root");
        space.set_fault_page_limit([PageSize::Size1G, PageSize::Size2M, PageSize::Size4K][usize::from(shape >> 1) % 3]);
        Bench { machine, space, idle, model: RegionModel::new(), loaded: [false; CPUS], baseline }
    }

    /// A page in the window, or a large-page-aligned start.
    fn virtual_start(input: &mut ByteReader) -> u64 {
        match input.byte() % 4 {
            0 => WINDOW + input.below(WINDOW_PAGES * PAGE / LARGE) * LARGE,
            _ => WINDOW + input.below(WINDOW_PAGES) * PAGE,
        }
    }

    /// A physical address for `va`, from one of the bases.
    fn physical_for(input: &mut ByteReader, va: u64) -> u64 {
        input.pick(&PHYS_BASES) + (va - WINDOW)
    }

    fn rights(input: &mut ByteReader) -> Protection {
        let mut prot = input.pick(&RIGHTS) | Protection::KERN;
        let extras = input.byte();
        if extras & 1 != 0 {
            prot |= Protection::EAGER;
        }
        if extras & 6 == 6 {
            prot |= Protection::PIN;
        }
        prot
    }

    fn add(&mut self, input: &mut ByteReader) -> (Result<(), AspaceError>, Result<(), AspaceError>) {
        let va = Self::virtual_start(input);
        let anonymous = input.one_in(3);
        let region = if anonymous {
            // Small: each page of an anonymous region is a frame of its own.
            let len = (1 + input.below(16)) * PAGE;
            Region::anonymous(va, len, Self::rights(input))
        } else {
            let len = if va.is_multiple_of(LARGE) && input.one_in(2) {
                (1 + input.below(2)) * LARGE
            } else {
                (1 + input.below(16)) * PAGE
            };
            Region::new(va, Self::physical_for(input, va), len, Self::rights(input))
        };
        if region.va.0 + region.len > WINDOW + WINDOW_PAGES * PAGE {
            return (Ok(()), Ok(()));
        }
        (self.space.add_region(region), self.model.add(region))
    }

    /// A part of a region, named rightly most of the time, or a range that
    /// may name nothing or be named with the wrong physical address.
    fn part(&self, input: &mut ByteReader) -> Region {
        let regions = self.model.regions().to_vec();
        let choice = usize::from(input.byte());
        let Some(&whole) = regions.get(choice % regions.len().max(1)) else {
            let va = Self::virtual_start(input);
            return Region::new(va, Self::physical_for(input, va), PAGE, R);
        };
        let pages = whole.len / PAGE;
        let first = input.below(pages);
        let count = 1 + input.below(pages - first);
        let (va, len) = match input.byte() % 8 {
            0 => (whole.va.0, whole.len),
            1 => (whole.va.0 + first * PAGE, (count + 1) * PAGE),
            _ => (whole.va.0 + first * PAGE, count * PAGE),
        };
        let mut part = whole.sub_region(va, len);
        if input.one_in(16) {
            part.pa = PhysAddr(part.pa.0 + PAGE);
        }
        part
    }

    fn remove(&mut self, input: &mut ByteReader) -> (Result<(), AspaceError>, Result<(), AspaceError>) {
        let part = self.part(input);
        (self.space.remove_region(part), self.model.remove(part))
    }

    fn move_part(&mut self, input: &mut ByteReader) -> (Result<(), AspaceError>, Result<(), AspaceError>) {
        let part = self.part(input);
        let new_pa = Self::physical_for(input, part.va.0);
        (self.space.move_region(part, PhysAddr(new_pa)), self.model.move_to(part, new_pa))
    }

    fn protect(&mut self, input: &mut ByteReader) -> (Result<(), AspaceError>, Result<(), AspaceError>) {
        let part = self.part(input);
        // Now and then a change of kind, which must be refused.
        let kind =
            if input.one_in(8) { part.prot.kind().symmetric_difference(Protection::ANON) } else { part.prot.kind() };
        let prot = Self::rights(input) | kind;
        (self.space.protect_region(part, prot), self.model.protect(part, prot))
    }

    /// Loads the space on a CPU if it is not yet, and accesses a page there.
    fn touch(&mut self, input: &mut ByteReader, step: usize) {
        let cpu = usize::from(input.byte()) % CPUS;
        self.machine.select_cpu(cpu);
        if !self.loaded[cpu] {
            self.space.switch_to();
            self.loaded[cpu] = true;
        }
        let regions = self.model.regions().to_vec();
        let va = match regions.get(usize::from(input.byte())) {
            Some(region) => region.va.0 + input.below(region.len / PAGE) * PAGE + input.below(PAGE / 8) * 8,
            None => WINDOW + input.below(WINDOW_PAGES) * PAGE,
        };
        let access = input.pick(&[FaultAccess::Read, FaultAccess::Write, FaultAccess::Execute]);
        let mut outcome = Err(FaultOutcome::Handled);
        for _ in 0..MAX_ATTEMPTS {
            match self.machine.translate(va, access, Mode::Supervisor) {
                Ok(pa) => {
                    outcome = Ok(pa);
                    break;
                }
                Err(AccessError::PageFault(pf)) => {
                    match self.space.exception(&Fault::page_fault(pf.addr, pf.code, 0)) {
                        FaultOutcome::Handled | FaultOutcome::Spurious => continue,
                        refused => {
                            outcome = Err(refused);
                            break;
                        }
                    }
                }
                Err(other) => panic!("step {step}: {access:?} at {va:#x}: {other:?}"),
            }
        }
        let region = self.model.find(va);
        let allowed = region.is_some_and(|r| {
            r.prot.contains(R)
                && match access {
                    FaultAccess::Read => true,
                    FaultAccess::Write => r.prot.contains(W),
                    FaultAccess::Execute => r.prot.contains(X),
                }
        });
        match (outcome, region) {
            (Ok(pa), Some(region)) if allowed => {
                let expected = if region.is_anonymous() {
                    self.space.anonymous_frame(aspace::VirtAddr(va)).expect("a touched anonymous page has a frame").0
                        + va % PAGE
                } else {
                    region.translate(va).0
                };
                assert_eq!(pa, expected, "step {step}: {access:?} at {va:#x} on CPU {cpu} reached the wrong byte");
            }
            (Err(FaultOutcome::Unhandled(_)), _) if !allowed => {}
            (outcome, region) => {
                panic!("step {step}: {access:?} at {va:#x} on CPU {cpu} in {region:?}: {outcome:?}, allowed {allowed}")
            }
        }
    }

    /// Loads the idle space on a CPU, so that the space under test is not
    /// in its CR3 (its TLB may still hold entries tagged with its PCID).
    fn unload(&mut self, input: &mut ByteReader) {
        let cpu = usize::from(input.byte()) % CPUS;
        self.machine.select_cpu(cpu);
        self.idle.switch_to();
        self.loaded[cpu] = false;
    }

    fn check(&self, step: usize) {
        if let Err(errors) = self.space.verify() {
            panic!("step {step}: verify: {errors:?}");
        }
        let regions: Vec<Region> = self.space.regions().iter().copied().collect();
        assert_eq!(regions, self.model.regions(), "step {step}: the region set differs from the model");
        assert!(self.machine.violations().is_empty(), "step {step}: {:?}", self.machine.violations());
    }

    /// Unloads the space everywhere, destroys it and checks that every frame
    /// it took came back.
    fn finish(&mut self) {
        for cpu in 0..CPUS {
            self.machine.select_cpu(cpu);
            self.idle.switch_to();
        }
        self.space.destroy().expect("an unloaded space with no threads is destroyed");
        assert_eq!(self.machine.frames_in_use(), self.baseline, "frames leaked by the destroyed space");
        assert!(self.machine.violations().is_empty(), "{:?}", self.machine.violations());
    }
}

impl Drop for Bench {
    /// After a failed check, the spaces are dropped while the unwinding goes
    /// on, perhaps still loaded on a CPU: the machine must not panic again
    /// then (a second panic aborts and loses the failing input).
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.machine.set_strict(false);
        }
    }
}

/// Decodes `data` into steps on a paging address space and its model and
/// panics at the first disagreement or broken rule.
pub fn paging_model(data: &[u8]) {
    let mut input = ByteReader::new(data);
    let mut bench = Bench::new(&mut input);
    for step in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let before = snapshot(&bench.machine, &bench.space);
        let results = match input.byte() % 8 {
            0 | 1 => Some(bench.add(&mut input)),
            2 => Some(bench.remove(&mut input)),
            3 => Some(bench.move_part(&mut input)),
            4 => Some(bench.protect(&mut input)),
            5 | 6 => {
                bench.touch(&mut input, step);
                None
            }
            _ => {
                bench.unload(&mut input);
                None
            }
        };
        if let Some((got, expected)) = results {
            assert!(same_outcome(&got, &expected), "step {step}: got {got:?}, the model says {expected:?}");
            if got.is_err() {
                assert_eq!(
                    snapshot(&bench.machine, &bench.space),
                    before,
                    "step {step}: a refused edit changed things"
                );
            }
        }
        bench.check(step);
    }
    bench.finish();
}
