//! Helpers shared by the tests: a machine, a space, and accesses that let
//! the space fix page faults the way the kernel's trap handler does.
#![allow(dead_code)]

use aspace::{AddressSpace, Fault, FaultOutcome, Protection, RegionSet};
use mmu_model::{AccessError, Mode, SimConfig, SimMachine};
use paging::{MappingRun, PagingAspace};

pub const K4: u64 = 4 << 10;
pub const M2: u64 = 2 << 20;
pub const G: u64 = 1 << 30;

pub const R: Protection = Protection::READ;
pub const RW: Protection = Protection::READ.union(Protection::WRITE);
pub const KERN: Protection = Protection::KERN;
pub const EAGER: Protection = Protection::EAGER;
pub const RWXK: Protection = Protection::READ.union(Protection::WRITE).union(Protection::EXEC).union(Protection::KERN);

pub type Space = PagingAspace<SimMachine>;

/// A machine shaped by `config` and an empty space on it (not loaded in CR3).
pub fn setup(config: SimConfig) -> (SimMachine, Space) {
    let machine = SimMachine::new(config);
    let space = PagingAspace::new(machine.clone(), "test", None).expect("a root table");
    (machine, space)
}

/// Runs `access` until it succeeds, offering each page fault to `space`
/// (like the trap handler, then retrying the instruction). Returns the value,
/// or the outcome that stopped it, and every outcome on the way.
pub fn with_faults<T>(
    space: &mut Space,
    mut access: impl FnMut() -> Result<T, AccessError>,
) -> (Result<T, FaultOutcome>, Vec<FaultOutcome>) {
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        match access() {
            Ok(value) => return (Ok(value), outcomes),
            Err(AccessError::NonCanonical) => panic!("non-canonical access"),
            Err(AccessError::PageFault(pf)) => {
                let outcome = space.exception(&Fault::page_fault(pf.addr, pf.code, 0));
                outcomes.push(outcome.clone());
                if !matches!(outcome, FaultOutcome::Handled | FaultOutcome::Spurious) {
                    return (Err(outcome), outcomes);
                }
            }
        }
    }
    panic!("an access kept faulting after the space handled it: {outcomes:?}");
}

/// Reads `va` in supervisor mode, faulting pages in.
pub fn read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::Supervisor)).0
}

/// Writes `va` in supervisor mode, faulting pages in.
pub fn write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::Supervisor)).0
}

/// Everything an edit refused for lack of memory must leave as it was.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub frames_in_use: usize,
    pub regions: RegionSet,
    pub runs: Vec<MappingRun>,
    pub table_frames: u64,
}

pub fn snapshot(machine: &SimMachine, space: &Space) -> Snapshot {
    Snapshot {
        frames_in_use: machine.frames_in_use(),
        regions: space.regions().clone(),
        runs: space.mappings().expect("live").collect(),
        table_frames: space.counters().table_frames,
    }
}

/// (page size, page count) of each run, in order.
pub fn shape(space: &Space) -> Vec<(paging::PageSize, u64)> {
    space.mappings().expect("live").map(|run| (run.page_size, run.pages)).collect()
}

/// The end of a test that must leak nothing: from a fresh idle space (so
/// none of `spaces` is loaded), destroys every space of `spaces`, runs
/// `release` (what else holds frames: a file's pages, say), then checks that
/// only the idle space's tables are left (and the machine's zero frame, if it
/// has one) and that the software MMU recorded no violation.
pub fn destroy_all_leaking_nothing(machine: &SimMachine, spaces: &mut [&mut Space], release: impl FnOnce()) {
    let mut idle = Space::new(machine.clone(), "idle", None).expect("a root table");
    idle.switch_to();
    for space in spaces.iter_mut() {
        space.destroy().expect("destroy");
    }
    release();
    let zero = usize::from(paging::Machine::zero_frame(machine).is_some());
    assert_eq!(machine.frames_in_use(), idle.counters().table_frames as usize + zero, "no frame leaked");
    assert_eq!(machine.violations(), Vec::<String>::new());
}
