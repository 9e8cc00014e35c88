//! `PagingAspace::move_frames` (what `mremap` does with a mapping's memory)
//! on the software MMU: the frames pass to the new pages with their
//! contents and no reference traffic, the old pages own nothing and read
//! zero again, shared pages stay shared, a stale translation of an old page
//! is never used, refusals change nothing, and nothing leaks.

mod common;

use aspace::{AddressSpace, AspaceError, PhysAddr, Region, VirtAddr};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};

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
