//! `PagingAspace::move_frames` (what `mremap` does with a mapping's memory)
//! on the software MMU: the frames pass to the new pages with their
//! contents and no reference traffic, the old pages own nothing and read
//! zero again, shared pages stay shared, a stale translation of an old page
//! is never used, refusals change nothing, and nothing leaks.

mod common;

use aspace::{AddressSpace, AspaceError, PhysAddr, Region, VirtAddr};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use paging::{LeafPermissions, MoveRefused, PageTables};

const OLD: u64 = 64 * G;
const NEW: u64 = 65 * G;
const PAGES: u64 = 6;

fn user_read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, aspace::FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::User)).0
}

fn user_write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), aspace::FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::User)).0
}

#[test]
fn frames_move_with_their_contents_and_the_old_pages_empty() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    space.add_region(Region::anonymous(OLD, PAGES * K4, RW)).unwrap();
    space.add_region(Region::anonymous(NEW, PAGES * K4, RW)).unwrap();
    space.switch_to();
    // Pages 0..4 written (page 4 and 5 untouched); page 3 only read.
    for page in 0..3 {
        user_write(&mut space, &machine, OLD + page * K4, 0x100 + page).unwrap();
    }
    assert_eq!(user_read(&mut space, &machine, OLD + 3 * K4), Ok(0));
    let frames: Vec<PhysAddr> = (0..3).map(|page| space.anonymous_frame(VirtAddr(OLD + page * K4)).unwrap()).collect();
    let pages_in_use = |space: &Space| machine.frames_in_use() - space.counters().table_frames as usize;
    let in_use = pages_in_use(&space);

    space.move_frames(VirtAddr(OLD), VirtAddr(NEW), PAGES * K4).unwrap();
    assert_eq!(pages_in_use(&space), in_use, "no page's frame taken or given back (empty tables go)");
    for page in 0..3 {
        assert_eq!(space.anonymous_frame(VirtAddr(NEW + page * K4)), Some(frames[page as usize]));
        assert_eq!(space.anonymous_frame(VirtAddr(OLD + page * K4)), None);
    }
    assert_eq!(space.verify(), Ok(()));
    for page in 0..3 {
        assert_eq!(user_read(&mut space, &machine, NEW + page * K4), Ok(0x100 + page), "page {page} moved");
    }
    assert_eq!(user_read(&mut space, &machine, NEW + 3 * K4), Ok(0));
    // The old pages were unmapped and flushed: they read zero, in new frames.
    assert_eq!(user_read(&mut space, &machine, OLD), Ok(0));
    user_write(&mut space, &machine, OLD + K4, 9).unwrap();
    assert_eq!(user_read(&mut space, &machine, NEW + K4), Ok(0x101), "the old page's write did not reach it");
    assert_eq!(space.verify(), Ok(()));
    destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
}

#[test]
fn shared_pages_stay_shared_and_a_fork_keeps_its_own() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    space.add_region(Region::anonymous(OLD, 2 * K4, RW)).unwrap();
    space.share_anonymous(Region::anonymous(OLD, K4, RW)).unwrap();
    space.add_region(Region::anonymous(NEW, 2 * K4, RW)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, OLD, 1).unwrap();
    user_write(&mut space, &machine, OLD + K4, 2).unwrap();
    let mut child = space.fork("child", None).unwrap();
    space.move_frames(VirtAddr(OLD), VirtAddr(NEW), 2 * K4).unwrap();
    assert!(space.is_shared_page(VirtAddr(NEW)) && !space.is_shared_page(VirtAddr(OLD)));
    user_write(&mut space, &machine, NEW, 3).unwrap();
    user_write(&mut space, &machine, NEW + K4, 4).unwrap();
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, OLD), Ok(3), "the shared page is still the child's too");
    assert_eq!(user_read(&mut child, &machine, OLD + K4), Ok(2), "the private one was copied on write");
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(child.verify(), Ok(()));
    destroy_all_leaking_nothing(&machine, &mut [&mut space, &mut child], || {});
}

#[test]
fn bad_moves_are_refused_and_change_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::anonymous(OLD, 4 * K4, RW)).unwrap();
    space.add_region(Region::anonymous(NEW, 2 * K4, RW)).unwrap();
    space.add_region(Region::new(NEW + 4 * K4, 0x200000, K4, RW)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, OLD, 1).unwrap();
    user_write(&mut space, &machine, NEW, 2).unwrap();
    let frame = space.anonymous_frame(VirtAddr(OLD));
    let refusals = [
        (OLD, NEW, 0),
        (OLD, NEW, 100),
        (OLD, NEW + K4, 2 * K4),      // runs past the target region
        (OLD, OLD + K4, 2 * K4),      // overlapping
        (OLD, NEW + 4 * K4, K4),      // not anonymous
        (OLD, NEW, K4),               // the target owns a frame
        (u64::MAX - K4 + 1, NEW, K4), // no region, and wraps with more
    ];
    for (from, to, len) in refusals {
        let refused = space.move_frames(VirtAddr(from), VirtAddr(to), len);
        assert!(
            matches!(
                refused,
                Err(AspaceError::LengthOverflow { .. }
                    | AspaceError::Overlap { .. }
                    | AspaceError::NoSuchRegion { .. })
            ),
            "{from:#x} -> {to:#x} ({len:#x}): {refused:?}"
        );
    }
    assert_eq!(space.anonymous_frame(VirtAddr(OLD)), frame, "nothing moved");
    assert_eq!(user_read(&mut space, &machine, OLD), Ok(1));
    assert_eq!(space.verify(), Ok(()));
    destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
}

/// Writes a value naming each page of `[va, va + pages * 4 KiB)`, then
/// moves the range to `to` (a region of its own), and checks that every
/// page reads its value at the new place without a fault, with the same
/// frame, while the old pages translate no more. Returns the page-table
/// frames the move allocated.
fn move_written_pages(machine: &SimMachine, space: &mut Space, va: u64, to: u64, pages: u64) -> u64 {
    for page in 0..pages {
        user_write(space, machine, va + page * K4, 0x5000 + page).unwrap();
    }
    let frames: Vec<PhysAddr> =
        (0..pages).map(|page| space.anonymous_frame(VirtAddr(va + page * K4)).unwrap()).collect();
    let pages_in_use = |space: &Space| machine.frames_in_use() - space.counters().table_frames as usize;
    let in_use = pages_in_use(space);
    let allocated = space.tables().unwrap().counters().tables_allocated;

    space.move_frames(VirtAddr(va), VirtAddr(to), pages * K4).unwrap();
    let allocated = space.tables().unwrap().counters().tables_allocated - allocated;
    assert_eq!(pages_in_use(space), in_use, "no page's frame taken or given back");
    assert_eq!(space.verify(), Ok(()));
    let faults = space.counters().faults_handled;
    for page in 0..pages {
        assert_eq!(space.anonymous_frame(VirtAddr(to + page * K4)), Some(frames[page as usize]));
        assert_eq!(space.anonymous_frame(VirtAddr(va + page * K4)), None);
        assert_eq!(machine.read_u64_at(to + page * K4, Mode::User), Ok(0x5000 + page), "page {page}, mapped");
        assert!(machine.read_u64_at(va + page * K4, Mode::User).is_err(), "page {page}: the old page is unmapped");
    }
    machine.write_u64_at(to, 7, Mode::User).unwrap();
    assert_eq!(space.counters().faults_handled, faults, "the moved pages needed no fault");
    allocated
}

#[test]
fn entries_move_with_the_frames_unaligned_across_chunks() {
    for config in [SimConfig::four_level(), SimConfig::five_level()] {
        let (machine, mut space) = setup(config);
        machine.set_cr0_wp(true);
        // From 300 pages into a 2 MiB block over two boundaries, to 4 KiB off one.
        let (from, to, pages) = (OLD + 300 * K4, NEW + K4, 1000);
        space.add_region(Region::anonymous(OLD, 3 * M2, RW)).unwrap();
        space.add_region(Region::anonymous(NEW, 3 * M2, RW)).unwrap();
        space.switch_to();
        move_written_pages(&machine, &mut space, from, to, pages);
        // Pages next to the moved ones, in the same tables, are untouched.
        user_write(&mut space, &machine, from - K4, 1).unwrap();
        user_write(&mut space, &machine, to + pages * K4, 2).unwrap();
        assert_eq!(space.verify(), Ok(()));
        destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
    }
}

#[test]
fn aligned_moves_take_whole_page_tables() {
    for config in [SimConfig::four_level(), SimConfig::five_level()] {
        let (machine, mut space) = setup(config);
        machine.set_cr0_wp(true);
        space.add_region(Region::anonymous(OLD, 3 * M2, RW)).unwrap();
        space.add_region(Region::anonymous(NEW, 3 * M2, RW)).unwrap();
        space.switch_to();
        // Two whole 2 MiB blocks and 10 pages of a third.
        let allocated = move_written_pages(&machine, &mut space, OLD, NEW, 1034);
        assert_eq!(allocated, 2, "a directory for the target and one page table for its partial block");
        assert_eq!(space.verify(), Ok(()));
        destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
    }
}

#[test]
fn copy_on_write_and_zero_pages_move_as_they_are_mapped() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    machine.enable_zero_frame();
    space.set_zero_page(true);
    space.add_region(Region::anonymous(OLD, 4 * K4, RW)).unwrap();
    space.add_region(Region::anonymous(NEW, 4 * K4, RW)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, OLD, 1).unwrap();
    assert_eq!(user_read(&mut space, &machine, OLD + K4), Ok(0));
    let mut child = space.fork("child", None).unwrap();
    space.move_frames(VirtAddr(OLD), VirtAddr(NEW), 4 * K4).unwrap();
    assert!(space.maps_zero_page(VirtAddr(NEW + K4)) && !space.maps_zero_page(VirtAddr(OLD + K4)));
    assert_eq!(space.verify(), Ok(()));
    // Still read-only: the write copies, and the child keeps its page.
    user_write(&mut space, &machine, NEW, 5).unwrap();
    user_write(&mut space, &machine, NEW + K4, 6).unwrap();
    assert_eq!(space.counters().cow_copies, 1);
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, OLD), Ok(1));
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(child.verify(), Ok(()));
    destroy_all_leaking_nothing(&machine, &mut [&mut space, &mut child], || {});
}

#[test]
fn a_move_into_another_protection_unmaps_and_faults_again() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::anonymous(OLD, 2 * K4, RW)).unwrap();
    space.add_region(Region::anonymous(NEW, 2 * K4, R)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, OLD, 9).unwrap();
    space.move_frames(VirtAddr(OLD), VirtAddr(NEW), 2 * K4).unwrap();
    assert_eq!(space.verify(), Ok(()));
    assert!(machine.read_u64_at(NEW, Mode::User).is_err(), "not mapped: the target's rights come with a fault");
    assert_eq!(user_read(&mut space, &machine, NEW), Ok(9));
    assert!(machine.write_u64_at(NEW, 1, Mode::User).is_err(), "read-only at its new place");
    destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
}

#[test]
fn a_move_across_regions_keeps_its_entries_only_where_every_protection_matches() {
    // Source: a read-write page, then a read-only one (two regions). Target
    // `matching` has the same two protections at the same offsets; target
    // `crossed` has them the other way round.
    for matching in [true, false] {
        let (machine, mut space) = setup(SimConfig::four_level());
        space.add_region(Region::anonymous(OLD, K4, RW)).unwrap();
        space.add_region(Region::anonymous(OLD + K4, K4, R)).unwrap();
        let (low, high) = if matching { (RW, R) } else { (R, RW) };
        space.add_region(Region::anonymous(NEW, K4, low)).unwrap();
        space.add_region(Region::anonymous(NEW + K4, K4, high)).unwrap();
        space.switch_to();
        user_write(&mut space, &machine, OLD, 4).unwrap();
        assert_eq!(user_read(&mut space, &machine, OLD + K4), Ok(0));
        space.move_frames(VirtAddr(OLD), VirtAddr(NEW), 2 * K4).unwrap();
        assert_eq!(space.verify(), Ok(()));
        assert_eq!(machine.read_u64_at(NEW, Mode::User).is_ok(), matching, "mapped at once only when the rights match");
        assert_eq!(user_read(&mut space, &machine, NEW), Ok(4));
        destroy_all_leaking_nothing(&machine, &mut [&mut space], || {});
    }
}

#[test]
fn a_move_of_entries_that_fails_changes_nothing() {
    let machine = SimMachine::new(SimConfig::four_level());
    let mut tables = PageTables::new(&machine, None).unwrap();
    let perms = LeafPermissions { writable: true, user: true, executable: false };
    let (from, to, len) = (OLD + 300 * K4, NEW + 5 * G + K4, 1000 * K4);
    let _ = tables.map(&machine, VirtAddr(from), PhysAddr(0x4000_0000), len, perms).unwrap();
    // A present entry in the target's way.
    let _ = tables.map(&machine, VirtAddr(NEW + M2), PhysAddr(0x8000_0000), K4, perms).unwrap();
    let before: Vec<_> = tables.mappings(&machine).collect();
    let in_use = machine.frames_in_use();
    let unchanged = |tables: &PageTables| {
        assert_eq!(tables.mappings(&machine).collect::<Vec<_>>(), before);
        assert_eq!(machine.frames_in_use(), in_use);
    };
    // Needs a directory and two page tables: each allocation fails in turn.
    for failing in 0..3 {
        machine.fail_nth_allocation(Some(failing));
        assert_eq!(tables.move_entries(&machine, VirtAddr(from), VirtAddr(to), len), Err(MoveRefused::OutOfMemory));
        unchanged(&tables);
    }
    machine.fail_nth_allocation(None);
    let blocked = tables.move_entries(&machine, VirtAddr(from), VirtAddr(NEW + 300 * K4), len);
    assert_eq!(blocked, Err(MoveRefused::NotMovable), "a target entry is present");
    let overlapping = tables.move_entries(&machine, VirtAddr(from), VirtAddr(from + K4), len);
    assert_eq!(overlapping, Err(MoveRefused::NotMovable));
    assert!(matches!(tables.move_entries(&machine, VirtAddr(from), VirtAddr(to + 8), len), Err(MoveRefused::Range(_))));
    unchanged(&tables);

    let batch = tables.move_entries(&machine, VirtAddr(from), VirtAddr(to), len).unwrap();
    let _ = batch.apply(&machine, tables.space_id());
    let after: Vec<_> = tables.mappings(&machine).collect();
    assert_eq!(after.iter().map(|run| run.pages).sum::<u64>(), 1001);
    let moved = after.iter().find(|run| run.start == VirtAddr(to)).expect("the range at its new place");
    assert_eq!((moved.pa, moved.pages), (PhysAddr(0x4000_0000), 1000));
    // Back: the tables made for the target go again, empty.
    let batch = tables.move_entries(&machine, VirtAddr(to), VirtAddr(from), len).unwrap();
    let _ = batch.apply(&machine, tables.space_id());
    unchanged(&tables);
    let _ = tables.destroy(&machine).apply(&machine, paging::SpaceId { root: PhysAddr(0), pcid: None });
}
