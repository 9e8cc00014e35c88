//! Memory objects (`PagingAspace::add_object_region`) on the software MMU:
//! an object's pages reach a space only when touched; two spaces mapping it
//! shared see each other's writes in the object's own frames; a private
//! mapping reads the object and copies on its first write; a page past the
//! object's end is `PastEndOfObject`; shrinking the object drops its pages
//! (private copies too) from every space, and growing it back brings fresh
//! pages; a fork shares the backing; refusals change nothing; no frame is
//! freed while held and none leaks.

mod common;

use aspace::{AddressSpace, AspaceError, FaultOutcome, PhysAddr, Protection, Region, UnhandledFault};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use paging::{Machine, ObjectFault, PageObject};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

const BASE: u64 = 64 * G;

/// A file in RAM, as a kernel's page cache holds one: a size and a frame
/// per page touched so far.
struct SimFile {
    machine: SimMachine,
    pages: Mutex<(u64, BTreeMap<u64, PhysAddr>)>,
}

impl SimFile {
    fn new(machine: &SimMachine, pages: u64) -> Arc<SimFile> {
        Arc::new(SimFile { machine: machine.clone(), pages: Mutex::new((pages, BTreeMap::new())) })
    }

    /// The first word of page `index` as the file holds it.
    fn word(&self, index: u64) -> Option<u64> {
        self.pages.lock().unwrap().1.get(&index).map(|&frame| self.machine.read_u64(frame))
    }

    /// Shrinks or grows the file to `pages` pages; its frames past the end go.
    fn resize(&self, pages: u64) {
        let mut held = self.pages.lock().unwrap();
        held.0 = pages;
        let gone: Vec<u64> = held.1.range(pages..).map(|(&index, _)| index).collect();
        for index in gone {
            let frame = held.1.remove(&index).unwrap();
            // SAFETY: the file's own reference.
            unsafe { Machine::free_frame(&self.machine, frame) };
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        self.resize(0);
    }
}

impl PageObject for SimFile {
    fn frame(&self, index: u64) -> Result<PhysAddr, ObjectFault> {
        let mut held = self.pages.lock().unwrap();
        if index >= held.0 {
            return Err(ObjectFault::PastEnd);
        }
        let frame = match held.1.get(&index) {
            Some(&frame) => frame,
            None => {
                let frame = Machine::alloc_frame(&self.machine).ok_or(ObjectFault::OutOfMemory)?;
                held.1.insert(index, frame);
                frame
            }
        };
        // SAFETY: the file holds a reference; this one is the caller's.
        assert!(unsafe { self.machine.share_frame(frame, false) });
        Ok(frame)
    }

    fn holds(&self, index: u64) -> bool {
        self.pages.lock().unwrap().1.contains_key(&index)
    }

    fn key(&self) -> usize {
        self as *const SimFile as usize
    }

    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str("/sim")
    }
}

fn user_read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::User)).0
}

fn user_write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::User)).0
}

fn past_end(outcome: Result<u64, FaultOutcome>) -> bool {
    matches!(outcome, Err(FaultOutcome::Unhandled(UnhandledFault::PastEndOfObject { .. })))
}

#[test]
fn shared_pages_come_on_first_touch_and_every_holder_sees_them() {
    let (machine, mut a) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let file = SimFile::new(&machine, 4);
    let mut b = Space::new(machine.clone(), "b", None).unwrap();
    // The second mapping starts at the file's page 1.
    a.add_object_region(Region::anonymous(BASE, 4 * K4, RW), file.clone(), 0, true).unwrap();
    b.add_object_region(Region::anonymous(BASE, 3 * K4, RW), file.clone(), 1, true).unwrap();
    assert!((0..4).all(|index| !file.holds(index)), "nothing is taken at the add");
    a.switch_to();
    user_write(&mut a, &machine, BASE + 2 * K4, 0x1234).unwrap();
    assert_eq!(file.word(2), Some(0x1234), "the write reached the file's own frame");
    assert!(!file.holds(0) && !file.holds(1), "only the touched page was taken");
    b.switch_to();
    assert_eq!(user_read(&mut b, &machine, BASE + K4), Ok(0x1234), "b's page 1 is the file's page 2");
    user_write(&mut b, &machine, BASE, 0x5678).unwrap();
    a.switch_to();
    assert_eq!(user_read(&mut a, &machine, BASE + K4), Ok(0x5678), "a reads b's write");
    assert_eq!(a.counters().cow_copies + b.counters().cow_copies, 0, "nothing copied");
    assert_eq!(a.counters().object_pages, 2);
    assert!(a.is_shared_page(aspace::VirtAddr(BASE + K4)));
    assert_eq!(a.verify(), Ok(()));
    assert_eq!(b.verify(), Ok(()));

    destroy_all_leaking_nothing(&machine, &mut [&mut a, &mut b], || {
        assert_eq!(file.word(2), Some(0x1234), "the file keeps its pages when the spaces go");
        drop(file);
    });
}

#[test]
fn a_private_mapping_reads_the_file_and_copies_on_its_first_write() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let file = SimFile::new(&machine, 2);
    let mut writer = Space::new(machine.clone(), "writer", None).unwrap();
    writer.add_object_region(Region::anonymous(BASE, 2 * K4, RW), file.clone(), 0, true).unwrap();
    space.add_object_region(Region::anonymous(BASE, 2 * K4, RW), file.clone(), 0, false).unwrap();
    writer.switch_to();
    user_write(&mut writer, &machine, BASE, 7).unwrap();
    space.switch_to();
    assert_eq!(user_read(&mut space, &machine, BASE), Ok(7), "the file's bytes");
    user_write(&mut space, &machine, BASE, 8).unwrap();
    // A page never read: the write takes the file's page and copies it at once.
    user_write(&mut space, &machine, BASE + K4, 9).unwrap();
    assert_eq!(space.counters().cow_copies, 2);
    assert_eq!((file.word(0), file.word(1)), (Some(7), Some(0)), "the file is untouched");
    writer.switch_to();
    assert_eq!(user_read(&mut writer, &machine, BASE + K4), Ok(0));
    assert_eq!(space.verify(), Ok(()));

    destroy_all_leaking_nothing(&machine, &mut [&mut space, &mut writer], || drop(file));
}

#[test]
fn shrinking_drops_pages_past_the_end_everywhere_and_growing_brings_them_back() {
    let (machine, mut shared) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let file = SimFile::new(&machine, 3);
    let mut private = Space::new(machine.clone(), "private", None).unwrap();
    shared.add_object_region(Region::anonymous(BASE, 4 * K4, RW), file.clone(), 0, true).unwrap();
    private.add_object_region(Region::anonymous(BASE, 4 * K4, RW), file.clone(), 0, false).unwrap();
    shared.switch_to();
    assert!(past_end(user_read(&mut shared, &machine, BASE + 3 * K4)), "page 3 is past the end");
    for page in 0..3 {
        user_write(&mut shared, &machine, BASE + page * K4, 0x100 + page).unwrap();
    }
    private.switch_to();
    user_write(&mut private, &machine, BASE + 2 * K4, 0x999).unwrap(); // a private copy
    assert_eq!(user_read(&mut private, &machine, BASE + K4), Ok(0x101));

    // The file shrinks to one page: each space drops its pages from index 1.
    let key = file.key();
    assert_eq!(shared.drop_object_pages(key, 1), 2);
    assert_eq!(private.drop_object_pages(key, 1), 2, "the shared page and the private copy");
    file.resize(1);
    assert!(past_end(user_read(&mut private, &machine, BASE + 2 * K4)), "the private copy went too");
    shared.switch_to();
    assert!(past_end(user_read(&mut shared, &machine, BASE + K4)));
    assert_eq!(user_read(&mut shared, &machine, BASE), Ok(0x100), "page 0 stays");
    assert_eq!(shared.verify(), Ok(()));
    assert_eq!(private.verify(), Ok(()));

    // The file grows back: the pages are fresh zeros, in both.
    file.resize(3);
    assert_eq!(user_read(&mut shared, &machine, BASE + 2 * K4), Ok(0));
    user_write(&mut shared, &machine, BASE + 2 * K4, 0x42).unwrap();
    private.switch_to();
    assert_eq!(user_read(&mut private, &machine, BASE + 2 * K4), Ok(0x42));

    destroy_all_leaking_nothing(&machine, &mut [&mut shared, &mut private], || drop(file));
}

#[test]
fn a_fork_shares_the_object_and_its_untouched_pages() {
    let (machine, mut parent) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let file = SimFile::new(&machine, 2);
    parent.add_object_region(Region::anonymous(BASE, 2 * K4, RW), file.clone(), 0, true).unwrap();
    parent.switch_to();
    user_write(&mut parent, &machine, BASE, 1).unwrap();
    let mut child = parent.fork("child", None).unwrap();
    child.switch_to();
    user_write(&mut child, &machine, BASE + K4, 2).unwrap(); // untouched before the fork
    user_write(&mut child, &machine, BASE, 3).unwrap();
    parent.switch_to();
    assert_eq!(user_read(&mut parent, &machine, BASE), Ok(3));
    assert_eq!(user_read(&mut parent, &machine, BASE + K4), Ok(2));
    assert_eq!(parent.counters().cow_copies + child.counters().cow_copies, 0);

    destroy_all_leaking_nothing(&machine, &mut [&mut parent, &mut child], || drop(file));
}

#[test]
fn removing_part_of_the_region_keeps_the_rest_and_its_indexes() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let file = SimFile::new(&machine, 4);
    space.add_object_region(Region::anonymous(BASE, 4 * K4, RW), file.clone(), 0, true).unwrap();
    space.switch_to();
    for page in 0..4 {
        user_write(&mut space, &machine, BASE + page * K4, 0x10 + page).unwrap();
    }
    space.remove_region(Region::anonymous(BASE + K4, K4, RW)).unwrap();
    assert_eq!(file.word(1), Some(0x11), "the file keeps the page");
    let upper = space.object_backing(aspace::VirtAddr(BASE + 3 * K4)).unwrap();
    assert_eq!((upper.va.0, upper.first_index), (BASE + 2 * K4, 2));
    assert!(space.object_backing(aspace::VirtAddr(BASE + K4)).is_none());
    assert_eq!(user_read(&mut space, &machine, BASE + 3 * K4), Ok(0x13));
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn bad_object_regions_are_refused_and_change_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let file = SimFile::new(&machine, 4);
    let before = machine.frames_in_use();
    for prot in [RW | EAGER, RW | Protection::GROW_DOWN] {
        let refused = space.add_object_region(Region::anonymous(BASE, K4, prot), file.clone(), 0, true);
        assert!(matches!(refused, Err(AspaceError::InvalidFlags { .. })), "{prot:?}: {refused:?}");
    }
    let kernel_kind = Region::new(BASE, 0x1000, K4, RW);
    assert!(matches!(
        space.add_object_region(kernel_kind, file.clone(), 0, true),
        Err(AspaceError::InvalidFlags { .. })
    ));
    assert!(matches!(
        space.add_object_region(Region::anonymous(BASE, 2 * K4, RW), file.clone(), u64::MAX, true),
        Err(AspaceError::LengthOverflow { .. })
    ));
    space.add_object_region(Region::anonymous(BASE, 2 * K4, RW), file.clone(), 0, true).unwrap();
    assert!(matches!(
        space.add_object_region(Region::anonymous(BASE + K4, 2 * K4, RW), file.clone(), 0, true),
        Err(AspaceError::Overlap { .. })
    ));
    assert!(matches!(
        space.protect_region(Region::anonymous(BASE, 2 * K4, RW), RW | EAGER | Protection::ANON),
        Err(AspaceError::InvalidFlags { .. })
    ));
    assert_eq!(space.regions().len(), 1);
    assert_eq!(space.object_backings().count(), 1);
    assert_eq!(machine.frames_in_use(), before, "nothing was taken");
}

#[test]
fn a_read_fault_maps_the_neighbours_the_object_holds() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let file = SimFile::new(&machine, 40);
    let mut writer = Space::new(machine.clone(), "writer", None).unwrap();
    writer.add_object_region(Region::anonymous(BASE, 40 * K4, RW), file.clone(), 0, true).unwrap();
    writer.switch_to();
    // The file holds pages 0..20 except 5; 20.. are holes.
    for page in (0..20).filter(|&page| page != 5) {
        user_write(&mut writer, &machine, BASE + page * K4, 0x100 + page).unwrap();
    }
    space.add_object_region(Region::anonymous(BASE, 40 * K4, RW), file.clone(), 0, false).unwrap();
    space.switch_to();
    let (read, outcomes) = with_faults(&mut space, || machine.read_u64_at(BASE + 2 * K4, Mode::User));
    assert_eq!((read, outcomes.len()), (Ok(0x102), 1));
    let mapped = |space: &Space, page: u64| space.walk(aspace::VirtAddr(BASE + page * K4)).unwrap().translation();
    // The window is pages 0..16 (16 pages, aligned): all but the hole.
    for page in 0..16 {
        assert_eq!(mapped(&space, page).is_some(), page != 5, "page {page}");
    }
    assert!(mapped(&space, 16).is_none(), "outside the window");
    assert!(!file.holds(5), "fault-around takes no page the file does not hold");
    assert_eq!(space.counters().object_pages, 15);
    // Each neighbour reads without a fault, and a write still copies it.
    let (read, outcomes) = with_faults(&mut space, || machine.read_u64_at(BASE + 9 * K4, Mode::User));
    assert_eq!((read, outcomes.len()), (Ok(0x109), 0));
    user_write(&mut space, &machine, BASE + 9 * K4, 1).unwrap();
    assert_eq!(file.word(9), Some(0x109), "the private write did not reach the file");
    assert_eq!(space.verify(), Ok(()));

    // A write fault maps its own page only.
    let mut other = Space::new(machine.clone(), "other", None).unwrap();
    other.add_object_region(Region::anonymous(BASE, 40 * K4, RW), file.clone(), 0, true).unwrap();
    other.switch_to();
    user_write(&mut other, &machine, BASE + 3 * K4, 7).unwrap();
    assert_eq!(other.counters().object_pages, 1);

    destroy_all_leaking_nothing(&machine, &mut [&mut space, &mut writer, &mut other], || drop(file));
}
