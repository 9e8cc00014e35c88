//! Behaviour tests of the simulated MMU. Page tables are built by hand with
//! `alloc_frame` and `write_u64`, as the paging code would.

mod frames_and_rules;
mod rights;
mod tlb;
mod walk;

use crate::entry::{PAGE_SIZE, PRESENT, USER, WRITABLE};
use crate::{PageSize, SimConfig, SimMachine};
use aspace::PhysAddr;
use paging::{Machine, SpaceId};

/// The flags given to the intermediate entries the helpers create: the
/// most permissive, so that the leaf alone decides.
const TABLE_FLAGS: u64 = PRESENT | WRITABLE | USER;

/// A machine with one address space loaded on CPU 0.
fn setup(config: SimConfig) -> (SimMachine, SpaceId) {
    let machine = SimMachine::new(config);
    let space = new_space(&machine, None);
    machine.load_root(space, false);
    (machine, space)
}

/// A new, empty address space (a zeroed root table).
fn new_space(machine: &SimMachine, pcid: Option<u16>) -> SpaceId {
    SpaceId { root: machine.alloc_frame().expect("a root table"), pcid }
}

/// The level (1 = PT ... 5 = PML5) whose entries map pages of `size`.
fn leaf_level(size: PageSize) -> u8 {
    match size {
        PageSize::Size4K => 1,
        PageSize::Size2M => 2,
        PageSize::Size1G => 3,
    }
}

/// The physical address of the entry for `va` at `level` of the tables
/// under `root`, creating the tables above it (with [`TABLE_FLAGS`]) as
/// needed.
fn entry_addr(machine: &SimMachine, root: PhysAddr, va: u64, level: u8) -> PhysAddr {
    let mut table = root.0;
    let mut current = machine.features().levels();
    loop {
        let entry = PhysAddr(table + ((va >> (12 + 9 * u32::from(current - 1))) & 0x1ff) * 8);
        if current == level {
            return entry;
        }
        let value = machine.read_u64(entry);
        table = if value & PRESENT != 0 {
            value & 0x000f_ffff_ffff_f000
        } else {
            let next = machine.alloc_frame().expect("a page table").0;
            machine.write_u64(entry, next | TABLE_FLAGS);
            next
        };
        current -= 1;
    }
}

/// Maps the page of `size` at `va` to `pa` with leaf flags `flags` (P is
/// added; PS too for large pages), and returns the leaf entry's address.
fn map(machine: &SimMachine, space: SpaceId, va: u64, pa: u64, size: PageSize, flags: u64) -> PhysAddr {
    let entry = entry_addr(machine, space.root, va, leaf_level(size));
    let ps = if size == PageSize::Size4K { 0 } else { PAGE_SIZE };
    machine.write_u64(entry, pa | flags | PRESENT | ps);
    entry
}

/// Sets (or clears) `bits` in the entry at `entry`.
fn update(machine: &SimMachine, entry: PhysAddr, set: u64, clear: u64) {
    let value = machine.read_u64(entry);
    machine.write_u64(entry, (value | set) & !clear);
}
