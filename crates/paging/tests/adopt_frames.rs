//! `PagingAspace::adopt_frames` on the software MMU: a file's page-cache
//! frames put behind the pages of two spaces' shared mappings (a write in
//! one is read in the other, and reaches the file's frame), and behind a
//! private mapping (reads see the file, the first write copies the page
//! and leaves the file's frame alone); refusals change nothing; no frame
//! is freed while a space or the file holds it, and none leaks after all
//! let go.

mod common;

use aspace::{AddressSpace, AspaceError, FaultOutcome, PhysAddr, Region};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use paging::Machine;

const BASE: u64 = 64 * G;
const PAGES: u64 = 3;

fn user_read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::User)).0
}

fn user_write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::User)).0
}

/// The file: `PAGES` frames, page `i` holding `0xf000 + i` in its first word.
fn file(machine: &SimMachine) -> Vec<PhysAddr> {
    (0..PAGES)
        .map(|i| {
            let frame = machine.alloc_frame().expect("a frame");
            for offset in (0..K4).step_by(8) {
                machine.write_u64(PhysAddr(frame.0 + offset), 0);
            }
            machine.write_u64(frame, 0xf000 + i);
            frame
        })
        .collect()
}

fn word(machine: &SimMachine, frame: PhysAddr) -> u64 {
    machine.read_u64(frame)
}

#[test]
fn two_shared_mappings_and_the_file_see_the_same_bytes() {
    let (machine, mut a) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let frames = file(&machine);
    let mut b = Space::new(machine.clone(), "b", None).unwrap();
    let region = Region::anonymous(BASE, PAGES * K4, RW);
    for space in [&mut a, &mut b] {
        space.add_region(region).unwrap();
        space.adopt_frames(region, &frames, false).unwrap();
    }
    a.switch_to();
    for i in 0..PAGES {
        assert_eq!(user_read(&mut a, &machine, BASE + i * K4), Ok(0xf000 + i), "the file's bytes");
    }
    user_write(&mut a, &machine, BASE + K4 + 8, 0x1234).unwrap();
    b.switch_to();
    assert_eq!(user_read(&mut b, &machine, BASE + K4 + 8), Ok(0x1234), "b reads a's write");
    user_write(&mut b, &machine, BASE, 0x5678).unwrap();
    assert_eq!(word(&machine, frames[0]), 0x5678, "the write reached the file's frame");
    assert_eq!(a.counters().cow_copies + b.counters().cow_copies, 0, "nothing copied");
    assert_eq!(a.verify(), Ok(()));
    assert_eq!(b.verify(), Ok(()));

    // One side lets go: the file and the other side keep the frames.
    let mut idle = Space::new(machine.clone(), "idle", None).unwrap();
    idle.switch_to();
    a.destroy().unwrap();
    assert_eq!(word(&machine, frames[0]), 0x5678);
    b.destroy().unwrap();
    for frame in frames {
        machine.free_frame(frame);
    }
    assert_eq!(machine.frames_in_use(), idle.counters().table_frames as usize, "no frame leaked");
    assert_eq!(machine.violations(), Vec::<String>::new());
}

#[test]
fn a_private_mapping_reads_the_file_and_copies_on_its_first_write() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let frames = file(&machine);
    let region = Region::anonymous(BASE, PAGES * K4, RW);
    space.add_region(region).unwrap();
    space.adopt_frames(region, &frames, true).unwrap();
    space.switch_to();
    assert_eq!(user_read(&mut space, &machine, BASE + 2 * K4), Ok(0xf002));
    // The file changes under a page not yet written: the mapping sees it.
    machine.write_u64(frames[2], 0xf00d);
    assert_eq!(user_read(&mut space, &machine, BASE + 2 * K4), Ok(0xf00d));
    user_write(&mut space, &machine, BASE + 8, 9).unwrap();
    assert_eq!(space.counters().cow_copies, 1, "the first write copied the page");
    assert_eq!(user_read(&mut space, &machine, BASE), Ok(0xf000), "the copy holds the file's bytes");
    assert_eq!(word(&machine, frames[0]), 0xf000, "the file's frame is untouched");
    assert_ne!(space.anonymous_frame(aspace::VirtAddr(BASE)), Some(frames[0]));

    // The file lets go of page 1: the mapping is its last holder, and a
    // write there reuses the frame.
    machine.free_frame(frames[1]);
    user_write(&mut space, &machine, BASE + K4, 3).unwrap();
    assert_eq!(space.counters().cow_copies, 1, "reused, not copied");
    assert_eq!(space.verify(), Ok(()));
    let mut idle = Space::new(machine.clone(), "idle", None).unwrap();
    idle.switch_to();
    space.destroy().unwrap();
    for frame in [frames[0], frames[2]] {
        machine.free_frame(frame);
    }
    assert_eq!(machine.frames_in_use(), idle.counters().table_frames as usize, "no frame leaked");
    assert_eq!(machine.violations(), Vec::<String>::new());
}

#[test]
fn refusals_change_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let frames = file(&machine);
    let region = Region::anonymous(BASE, PAGES * K4, RW);
    // Not there.
    assert!(matches!(space.adopt_frames(region, &frames, false), Err(AspaceError::NoSuchRegion { .. })));
    space.add_region(region).unwrap();
    // One frame too few.
    assert!(matches!(space.adopt_frames(region, &frames[..2], false), Err(AspaceError::LengthOverflow { .. })));
    assert_eq!(space.counters().anonymous_frames, 0);
    // A page with a frame already.
    space.switch_to();
    user_write(&mut space, &machine, BASE, 1).unwrap();
    assert!(matches!(space.adopt_frames(region, &frames, false), Err(AspaceError::Overlap { .. })));
    assert_eq!(space.counters().anonymous_frames, 1, "only the page written");
    // Not anonymous: a region mapping memory of its own.
    let own = Region::new(BASE + 16 * K4, 0x20_0000, 2 * K4, RW);
    space.add_region(own).unwrap();
    let two = [frames[0], frames[1]];
    assert!(matches!(space.adopt_frames(own, &two, false), Err(AspaceError::InvalidFlags { .. })));
    for &frame in &frames {
        assert!(!machine.frame_is_shared(frame), "no reference taken by a refusal");
    }
    assert_eq!(machine.violations(), Vec::<String>::new());
}
