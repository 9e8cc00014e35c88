//! Growing regions on the software MMU: a grow-down stack grows page by
//! page on faults below it, stops with a stack overflow at its maximum size
//! or at the guard gap before a neighbour; grow-up is the mirror; guard gaps
//! are reserved against adds; growth is all or nothing under allocation
//! failure; splitting keeps growth at the growing edge.

mod common;

use aspace::{AddressSpace, AspaceError, FaultAccess, FaultOutcome, Protection, Region, UnhandledFault};
use common::*;
use mmu_model::{Mode, SimConfig};
use paging::GrowthLimits;

const ANON: Protection = Protection::ANON;
const DOWN: Protection = Protection::GROW_DOWN;
const UP: Protection = Protection::GROW_UP;
const STACK: Protection = RW.union(KERN).union(ANON).union(DOWN);
const HEAP: Protection = RW.union(KERN).union(ANON).union(UP);

/// Maximum 16 pages, guard gap 4 pages.
const MAX: u64 = 16 * K4;
const GAP: u64 = 4 * K4;

/// The first byte above the test stacks: 1 GiB + 2 MiB, so growth crosses a page-table boundary.
const TOP: u64 = G + M2 + 4 * K4;

fn small_limits(space: &mut Space) {
    space.set_growth_limits(MAX, GAP).unwrap();
    assert_eq!(space.growth_limits(), GrowthLimits { max_size: MAX, guard_gap: GAP });
}

fn overflow(region: Region) -> Result<(), FaultOutcome> {
    Err(FaultOutcome::Unhandled(UnhandledFault::StackOverflow { region }))
}

fn region_at(space: &Space, va: u64) -> Region {
    *space.regions().find(va).expect("a region there")
}

#[test]
fn limits_have_documented_defaults_and_are_checked() {
    let (_machine, mut space) = setup(SimConfig::four_level());
    assert_eq!(space.growth_limits(), GrowthLimits { max_size: 8 << 20, guard_gap: 64 << 10 });
    assert_eq!(space.set_growth_limits(0, GAP), Err(AspaceError::ZeroLength));
    assert!(matches!(space.set_growth_limits(MAX, 100), Err(AspaceError::Misaligned { .. })));
    assert_eq!(space.growth_limits(), GrowthLimits::DEFAULT, "a refused setting changes nothing");
    // Growth needs ANON, and a region grows one way only.
    for prot in [RW | DOWN, RW | UP, RW | ANON | DOWN | UP] {
        let refused = space.add_region(Region::new(G, 0, K4, prot));
        assert!(matches!(refused, Err(AspaceError::InvalidFlags { .. })), "{prot}: {refused:?}");
    }
}

#[test]
fn a_stack_grows_page_by_page_until_its_maximum_then_overflows() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let start = TOP - K4;
    space.add_region(Region::anonymous(start, K4, STACK)).unwrap();
    space.switch_to();
    let baseline = machine.frames_in_use();
    // Push one word per page, downwards, as a deep recursion would.
    for depth in 1..16u64 {
        let sp = start - depth * K4 + K4 - 8;
        write(&mut space, &machine, sp, depth).unwrap();
        let stack = region_at(&space, sp);
        assert_eq!((stack.va.0, stack.len), (start - depth * K4, (depth + 1) * K4), "grown to the page of {sp:#x}");
        assert_eq!(stack.prot, STACK);
        assert_eq!(space.counters().growths, depth);
        assert_eq!(space.verify(), Ok(()), "depth {depth}");
    }
    for depth in 1..16u64 {
        assert_eq!(read(&mut space, &machine, start - depth * K4 + K4 - 8), Ok(depth));
    }
    // 16 pages now: the next page would make 17.
    let full = region_at(&space, start);
    assert_eq!(full.len, MAX);
    let frames = machine.frames_in_use();
    assert_eq!(write(&mut space, &machine, full.va.0 - 8, 0), overflow(full));
    assert_eq!(region_at(&space, full.va.0), full, "an overflow changes nothing");
    assert_eq!(machine.frames_in_use(), frames);
    assert_eq!(space.verify(), Ok(()));
    assert!(format!("{}", UnhandledFault::StackOverflow { region: full }).starts_with("stack overflow"));
    // Removing the stack gives back every page it grew by.
    space.remove_region(Region::anonymous(full.va.0, full.len, STACK)).unwrap();
    assert_eq!(machine.frames_in_use(), baseline, "the page tables for the grown part are gone too");
    assert_eq!(space.counters().anonymous_frames, 0);
}

#[test]
fn the_reach_of_a_growth_step_is_the_guard_gap() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let start = TOP - K4;
    space.add_region(Region::anonymous(start, K4, STACK)).unwrap();
    space.switch_to();
    // Farther than one gap below: a wild access, not a growth request.
    assert_eq!(read(&mut space, &machine, start - GAP - 8), Err(FaultOutcome::Unhandled(UnhandledFault::NoRegion)));
    // Exactly one gap below: the region grows by the whole gap, and only the touched page is mapped.
    assert_eq!(read(&mut space, &machine, start - GAP), Ok(0));
    assert_eq!(region_at(&space, start).va.0, start - GAP);
    assert_eq!(space.counters().anonymous_frames, 1);
    assert_eq!(space.verify(), Ok(()));
    // The pages in between are part of the stack, mapped on their first touch.
    assert_eq!(read(&mut space, &machine, start - 2 * K4), Ok(0));
    assert_eq!(space.counters().growths, 1);
    assert_eq!(space.counters().anonymous_frames, 2);
}

#[test]
fn growth_stops_one_guard_gap_above_the_neighbour_below() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let start = TOP - K4;
    // The neighbour ends 8 pages below the stack: it may take 4 of them.
    let neighbour = Region::new(start - 10 * K4, 0x50_0000, 2 * K4, RW | KERN | Protection::EAGER);
    space.add_region(neighbour).unwrap();
    space.add_region(Region::anonymous(start, K4, STACK)).unwrap();
    space.switch_to();
    for depth in 1..=4 {
        write(&mut space, &machine, start - depth * K4, depth).unwrap();
    }
    let stack = region_at(&space, start);
    assert_eq!(stack.va.0 - (neighbour.last() + 1), GAP, "exactly one guard gap left");
    assert_eq!(write(&mut space, &machine, stack.va.0 - 8, 0), overflow(stack));
    assert_eq!(space.verify(), Ok(()));
    // The neighbour itself is untouched and still readable.
    assert!(read(&mut space, &machine, neighbour.va.0).is_ok());
}

#[test]
fn grow_up_is_the_mirror() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let start = G + M2 - 4 * K4;
    let heap = Region::anonymous(start, K4, HEAP);
    space.add_region(heap).unwrap();
    space.switch_to();
    for height in 1..16u64 {
        write(&mut space, &machine, start + height * K4, height).unwrap();
        let grown = region_at(&space, start);
        assert_eq!((grown.va.0, grown.len), (start, (height + 1) * K4));
        assert_eq!(space.verify(), Ok(()));
    }
    let full = region_at(&space, start);
    assert_eq!(full.len, MAX);
    assert_eq!(write(&mut space, &machine, start + MAX, 0), overflow(full));
    assert_eq!(read(&mut space, &machine, start + MAX + GAP), Err(FaultOutcome::Unhandled(UnhandledFault::NoRegion)));
    for height in 1..16u64 {
        assert_eq!(read(&mut space, &machine, start + height * K4), Ok(height));
    }
    // Against a neighbour above: 6 pages of room, 2 may be taken.
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    space.add_region(heap).unwrap();
    let neighbour = Region::anonymous(start + 7 * K4, K4, RW | KERN);
    space.add_region(neighbour).unwrap();
    space.switch_to();
    write(&mut space, &machine, start + K4, 1).unwrap();
    write(&mut space, &machine, start + 2 * K4, 2).unwrap();
    let grown = region_at(&space, start);
    assert_eq!(neighbour.va.0 - (grown.last() + 1), GAP);
    assert_eq!(write(&mut space, &machine, start + 3 * K4, 3), overflow(grown));
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn guard_gaps_are_reserved_against_adds() {
    let (_machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let stack = Region::anonymous(TOP - K4, K4, STACK);
    space.add_region(stack).unwrap();
    let inside_gap = Region::new(TOP - K4 - GAP, 0, K4, R | KERN);
    assert_eq!(space.add_region(inside_gap), Err(AspaceError::Overlap { existing: stack }));
    let just_below_gap = Region::new(TOP - 2 * K4 - GAP, 0, K4, R | KERN);
    assert_eq!(space.add_region(just_below_gap), Ok(()));
    // Above a grow-down region nothing is reserved.
    assert_eq!(space.add_region(Region::new(TOP, 0, K4, R | KERN)), Ok(()));
    // A growing region may not be added with a region inside its own gap.
    let heap = Region::anonymous(TOP + 8 * K4, K4, HEAP);
    let blocker = Region::new(TOP + 9 * K4 + GAP - K4, 0, K4, R | KERN);
    space.add_region(blocker).unwrap();
    assert_eq!(space.add_region(heap), Err(AspaceError::Overlap { existing: blocker }));
    assert_eq!(space.regions().len(), 4, "refused adds change nothing");
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn forbidden_accesses_below_a_stack_do_not_grow_it() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let stack = Region::anonymous(TOP - K4, K4, STACK);
    space.add_region(stack).unwrap();
    space.switch_to();
    // A user-mode access below a kernel stack.
    let (outcome, _) = with_faults(&mut space, || machine.write_u64_at(TOP - 2 * K4, 1, Mode::User));
    assert_eq!(
        outcome,
        Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: stack, access: FaultAccess::Write }))
    );
    // An instruction fetch from a stack without EXEC.
    let (outcome, _) = with_faults(&mut space, || machine.fetch_at(TOP - 2 * K4, Mode::Supervisor));
    assert_eq!(
        outcome,
        Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: stack, access: FaultAccess::Execute }))
    );
    assert_eq!(region_at(&space, TOP - K4), stack);
    assert_eq!(space.counters().growths, 0);
}

#[test]
fn growth_without_memory_is_out_of_memory_and_changes_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    // The stack's first page is the first of a 2 MiB slot: growing below it needs a new page table.
    let start = G + M2;
    let stack = Region::anonymous(start, K4, STACK | Protection::EAGER);
    space.add_region(stack).unwrap();
    space.switch_to();
    let before = snapshot(&machine, &space);
    // Three new pages (eager: all mapped at once) and one page table.
    for n in 0..4 {
        machine.fail_nth_allocation(Some(n));
        let outcome = write(&mut space, &machine, start - 3 * K4, 1);
        machine.fail_nth_allocation(None);
        assert_eq!(
            outcome,
            Err(FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region: stack })),
            "allocation {n}"
        );
        assert_eq!(snapshot(&machine, &space), before);
        assert_eq!(space.verify(), Ok(()));
    }
    write(&mut space, &machine, start - 3 * K4, 1).unwrap();
    let grown = region_at(&space, start);
    assert_eq!((grown.va.0, grown.len), (start - 3 * K4, 4 * K4));
    assert_eq!(space.counters().anonymous_frames, 4, "an eager stack is fully mapped as it grows");
    assert_eq!(space.verify(), Ok(()));
    for page in 0..3 {
        assert_eq!(machine.read_u64_at(start - (page + 1) * K4 + 8, Mode::Supervisor), Ok(0));
    }
}

#[test]
fn splitting_a_stack_keeps_growth_at_its_growing_edge() {
    let (machine, mut space) = setup(SimConfig::four_level());
    small_limits(&mut space);
    let start = TOP - 4 * K4;
    space.add_region(Region::anonymous(start, 4 * K4, STACK)).unwrap();
    space.switch_to();
    // Read-only top page: the lowest piece keeps growing, the others do not.
    space.protect_region(Region::anonymous(TOP - K4, K4, STACK), STACK - Protection::WRITE).unwrap();
    let lowest = region_at(&space, start);
    let top = region_at(&space, TOP - K4);
    assert!(lowest.prot.contains(DOWN) && !top.prot.contains(DOWN), "{lowest} {top}");
    assert_eq!(space.verify(), Ok(()));
    // Shrinking from the bottom: the remaining lowest piece grows again.
    space.remove_region(Region::anonymous(start, 2 * K4, STACK)).unwrap();
    let remaining = region_at(&space, start + 2 * K4);
    assert!(remaining.prot.contains(DOWN));
    write(&mut space, &machine, start + 2 * K4 - 8, 5).unwrap();
    assert_eq!(region_at(&space, start + K4).va.0, start + K4);
    assert_eq!(space.verify(), Ok(()));
    // Destroying the space frees what growth provided.
    let mut idle = paging::PagingAspace::new(machine.clone(), "idle", None).unwrap();
    idle.switch_to();
    let idle_only = 1;
    space.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), idle_only);
}

#[test]
fn a_deep_recursion_under_the_default_limits_overflows_at_8_mib() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let top = 0x7fff_0000_0000;
    space.add_region(Region::anonymous(top - K4, K4, STACK)).unwrap();
    space.switch_to();
    let mut sp = top - 8;
    let outcome = loop {
        // A frame of 1 KiB per call: four calls a page.
        sp -= 1024;
        if let Err(outcome) = write(&mut space, &machine, sp, sp) {
            break outcome;
        }
    };
    let stack = region_at(&space, top - K4);
    assert_eq!(outcome, FaultOutcome::Unhandled(UnhandledFault::StackOverflow { region: stack }));
    assert_eq!(stack.len, 8 << 20);
    assert_eq!(space.counters().growths, (8 << 20) / K4 - 1);
    assert_eq!(space.counters().anonymous_frames, (8 << 20) / K4);
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(read(&mut space, &machine, top - (4 << 20)), Ok(0), "untouched words are zero");
    assert_eq!(read(&mut space, &machine, top - 8 - 1024 * 9), Ok(top - 8 - 1024 * 9));
}
