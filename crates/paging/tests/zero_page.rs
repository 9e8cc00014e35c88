//! The zero page (`PagingAspace::set_zero_page`) on the software MMU: a read
//! of an untouched anonymous page maps the machine's zero frame read-only
//! and owns no frame; the first write maps a frame of its own (zeros, then
//! the write) and nobody else's zeros change; mprotect giving write access
//! leaves the zero page read-only; fork, remove and destroy leave the zero
//! frame alone; pages with a file backing and spaces with the setting off
//! get frames of their own; nothing leaks.

mod common;

use aspace::{AddressSpace, PhysAddr, Protection, Region, VirtAddr};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};

const BASE: u64 = 64 * G;

fn user_read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, aspace::FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::User)).0
}

fn user_write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), aspace::FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::User)).0
}

fn maps(space: &Space, va: u64) -> Option<PhysAddr> {
    space.walk(VirtAddr(va)).and_then(|walk| walk.translation()).map(|t| t.page_pa)
}

#[test]
fn reads_share_the_zero_frame_until_a_write() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let zero = machine.enable_zero_frame();
    space.set_zero_page(true);
    space.add_region(Region::anonymous(BASE, 4 * K4, RW)).unwrap();
    space.switch_to();
    let (before, tables_before) = (machine.frames_in_use(), space.counters().table_frames);
    for page in 0..4 {
        assert_eq!(user_read(&mut space, &machine, BASE + page * K4), Ok(0));
        assert_eq!(maps(&space, BASE + page * K4), Some(zero), "page {page} maps the zero frame");
        assert!(space.maps_zero_page(VirtAddr(BASE + page * K4)));
    }
    assert_eq!(space.counters().anonymous_frames, 0, "reads own no frame");
    let new_tables = (space.counters().table_frames - tables_before) as usize;
    assert_eq!(machine.frames_in_use(), before + new_tables, "page tables, no page frame");
    assert_eq!(space.verify(), Ok(()));

    user_write(&mut space, &machine, BASE + K4 + 8, 0x55).unwrap();
    let own = maps(&space, BASE + K4).unwrap();
    assert_ne!(own, zero, "the written page has a frame of its own");
    assert!(!space.maps_zero_page(VirtAddr(BASE + K4)));
    assert_eq!(user_read(&mut space, &machine, BASE + K4), Ok(0), "zeros, then the write");
    assert_eq!(user_read(&mut space, &machine, BASE + K4 + 8), Ok(0x55));
    assert_eq!(user_read(&mut space, &machine, BASE + 2 * K4 + 8), Ok(0), "the other pages still read zero");
    assert_eq!(machine.read_u64(PhysAddr(zero.0 + 8)), 0, "the zero frame is untouched");

    // No access: the pages are unmapped and keep their contents (the zero
    // page's, or the frame's); READ back: a read maps the zero page again.
    space.protect_region(Region::anonymous(BASE, 4 * K4, RW), Protection::ANON).unwrap();
    assert!(space.maps_zero_page(VirtAddr(BASE + 2 * K4)) && maps(&space, BASE + 2 * K4).is_none());
    space.protect_region(Region::anonymous(BASE, 4 * K4, Protection::empty()), RW | Protection::ANON).unwrap();
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(user_read(&mut space, &machine, BASE + 2 * K4), Ok(0));
    assert_eq!(maps(&space, BASE + 2 * K4), Some(zero));
    assert_eq!(user_read(&mut space, &machine, BASE + K4 + 8), Ok(0x55), "the written page kept its frame");
    // Write access given again: the zero pages stay read-only, and a write still faults.
    space.protect_region(Region::anonymous(BASE, 4 * K4, R), R | Protection::ANON).unwrap();
    space.protect_region(Region::anonymous(BASE, 4 * K4, RW), RW | Protection::ANON).unwrap();
    assert_eq!(space.verify(), Ok(()));
    user_write(&mut space, &machine, BASE + 3 * K4, 7).unwrap();
    assert_ne!(maps(&space, BASE + 3 * K4), Some(zero));
    assert_eq!(space.counters().anonymous_frames, 2);

    // A fork: the child reads zeros again, and writes its own.
    let mut child = space.fork("child", None).unwrap();
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, BASE), Ok(0));
    user_write(&mut child, &machine, BASE, 9).unwrap();
    space.switch_to();
    assert_eq!(user_read(&mut space, &machine, BASE), Ok(0), "the parent's zero page is not the child's write");
    assert_eq!(child.verify(), Ok(()));

    space.remove_region(Region::anonymous(BASE, 4 * K4, RW)).unwrap();
    destroy_all_leaking_nothing(&machine, &mut [&mut space, &mut child], || {});
}

#[test]
fn file_pages_and_spaces_without_the_setting_get_their_own_frames() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let zero = machine.enable_zero_frame();
    let source = paging::Machine::alloc_frame(&machine).unwrap();
    machine.write_u64(source, 0x1234);
    space.set_zero_page(true);
    space.add_file_region(Region::anonymous(BASE, 2 * K4, RW), source, K4).unwrap();
    let mut plain = Space::new(machine.clone(), "plain", None).unwrap();
    plain.add_region(Region::anonymous(BASE, K4, RW)).unwrap();
    space.switch_to();
    assert_eq!(user_read(&mut space, &machine, BASE), Ok(0x1234));
    assert_eq!(user_read(&mut space, &machine, BASE + K4), Ok(0), "past the file's bytes");
    assert_ne!(maps(&space, BASE), Some(zero));
    assert_ne!(maps(&space, BASE + K4), Some(zero), "a file-backed page owns its frame");
    plain.switch_to();
    assert_eq!(user_read(&mut plain, &machine, BASE), Ok(0));
    assert_ne!(maps(&plain, BASE), Some(zero), "the setting is off by default");
    assert_eq!(machine.violations(), Vec::<String>::new());
}
