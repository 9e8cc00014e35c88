//! `PagingAspace::fork` on the software MMU: the child sees the parent's
//! memory, every private frame is shared until the first write on either
//! side copies it (or, once the other side let go, reuses it), nothing is
//! freed while a space still maps it and nothing leaks after both are
//! destroyed, and a parent's stale writable TLB entry, had fork not shot it
//! down, would be caught writing into the shared frame.

mod common;

use aspace::{AddressSpace, AspaceError, FaultAccess, FaultOutcome, PhysAddr, Protection, Region, VirtAddr};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use std::collections::BTreeSet;

/// Sixteen user pages crossing a 2 MiB boundary (two page tables).
const BASE: u64 = 64 * G + M2 - 8 * K4;
const PAGES: u64 = 16;

fn user_read(space: &mut Space, machine: &SimMachine, va: u64) -> Result<u64, FaultOutcome> {
    with_faults(space, || machine.read_u64_at(va, Mode::User)).0
}

fn user_write(space: &mut Space, machine: &SimMachine, va: u64, value: u64) -> Result<(), FaultOutcome> {
    with_faults(space, || machine.write_u64_at(va, value, Mode::User)).0
}

/// Loads an empty space on each CPU of `cpus` (so that the others can be
/// destroyed) and leaves CPU 0 selected; the space must outlive them.
fn leave(machine: &SimMachine, cpus: &[usize]) -> Space {
    let mut idle = Space::new(machine.clone(), "idle", None).unwrap();
    for &cpu in cpus {
        machine.select_cpu(cpu);
        idle.switch_to();
    }
    machine.select_cpu(0);
    idle
}

fn page(i: u64) -> u64 {
    BASE + i * K4
}

/// A parent with sixteen written pages of private memory, loaded on CPU 0.
fn parent(config: SimConfig) -> (SimMachine, Space) {
    let (machine, mut space) = setup(config);
    machine.set_cr0_wp(true);
    space.add_region(Region::anonymous(BASE, PAGES * K4, RW)).unwrap();
    space.switch_to();
    for i in 0..PAGES {
        user_write(&mut space, &machine, page(i) + 8, 0xa000 + i).unwrap();
    }
    (machine, space)
}

/// The distinct frames both spaces hold, and the tables of both.
fn frames_held(spaces: &[&Space]) -> usize {
    let anonymous: BTreeSet<PhysAddr> =
        spaces.iter().flat_map(|space| space.anonymous_frames().map(|(_, frame)| frame)).collect();
    anonymous.len() + spaces.iter().map(|space| space.counters().table_frames as usize).sum::<usize>()
}

#[test]
fn the_child_sees_the_parents_memory_and_each_write_stays_on_its_side() {
    let (machine, mut parent) = parent(SimConfig::four_level());
    let mut child = parent.fork("child", None).unwrap();
    assert_eq!(
        child.regions().iter().copied().collect::<Vec<_>>(),
        parent.regions().iter().copied().collect::<Vec<_>>()
    );
    assert_eq!(machine.frames_in_use(), frames_held(&[&parent, &child]), "no page copied yet");
    assert_eq!(child.counters().anonymous_frames, PAGES, "the child holds every frame, shared");

    // The child reads the parent's data, without copying anything.
    child.switch_to();
    for i in 0..PAGES {
        assert_eq!(user_read(&mut child, &machine, page(i) + 8), Ok(0xa000 + i));
    }
    assert_eq!(child.counters().cow_copies, 0);
    // The child writes the even pages: each is copied, once.
    for i in (0..PAGES).step_by(2) {
        user_write(&mut child, &machine, page(i) + 8, 0xc000 + i).unwrap();
        user_write(&mut child, &machine, page(i) + 16, 1).unwrap();
    }
    assert_eq!(child.counters().cow_copies, PAGES / 2);
    // The parent still sees its own data everywhere.
    parent.switch_to();
    for i in 0..PAGES {
        assert_eq!(user_read(&mut parent, &machine, page(i) + 8), Ok(0xa000 + i), "parent page {i}");
        assert_eq!(user_read(&mut parent, &machine, page(i) + 16), Ok(0));
    }
    // The parent writes every page: the odd ones are still shared (copied),
    // the even ones are its own again (the child let go: reused, no copy).
    for i in 0..PAGES {
        user_write(&mut parent, &machine, page(i) + 8, 0xe000 + i).unwrap();
    }
    assert_eq!(parent.counters().cow_copies, PAGES / 2, "only the pages still shared are copied");
    child.switch_to();
    for i in 0..PAGES {
        let expected = if i % 2 == 0 { 0xc000 + i } else { 0xa000 + i };
        assert_eq!(user_read(&mut child, &machine, page(i) + 8), Ok(expected), "child page {i}");
    }
    assert_eq!(machine.frames_in_use(), frames_held(&[&parent, &child]));
    assert_eq!(parent.verify(), Ok(()));
    assert_eq!(child.verify(), Ok(()));
    assert_eq!(machine.violations(), Vec::<String>::new());

    // Destroying one side frees only what it alone held; both: everything.
    parent.switch_to();
    child.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&parent]));
    let idle = leave(&machine, &[0]);
    parent.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&idle]), "no frame leaks after both spaces are gone");
    assert_eq!(machine.violations(), Vec::<String>::new(), "no frame freed while mapped");
}

#[test]
fn a_shared_page_freed_by_one_side_stays_for_the_other() {
    let (machine, mut parent) = parent(SimConfig::four_level());
    let mut child = parent.fork("child", None).unwrap();
    // The parent unmaps half its pages: their frames stay, the child maps them.
    parent.remove_region(Region::anonymous(BASE, 8 * K4, RW)).unwrap();
    child.switch_to();
    for i in 0..PAGES {
        assert_eq!(user_read(&mut child, &machine, page(i) + 8), Ok(0xa000 + i));
    }
    // Now the child's write to such a page reuses it: it is the last holder.
    user_write(&mut child, &machine, page(0) + 8, 7).unwrap();
    assert_eq!(child.counters().cow_copies, 0, "a frame with one reference left is reused, not copied");
    assert_eq!(machine.frames_in_use(), frames_held(&[&parent, &child]));
    let idle = leave(&machine, &[0]);
    parent.destroy().unwrap();
    child.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&idle]));
    assert_eq!(machine.violations(), Vec::<String>::new());
}

#[test]
fn making_a_region_writable_keeps_shared_pages_copy_on_write() {
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    space.add_region(Region::anonymous(BASE, 4 * K4, RW)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, BASE, 5).unwrap();
    space.protect_region(Region::anonymous(BASE, 4 * K4, RW), Protection::READ | Protection::ANON).unwrap();
    let mut child = space.fork("child", None).unwrap();
    // mprotect(PROT_READ | PROT_WRITE) in the parent after the fork.
    space.protect_region(Region::anonymous(BASE, 4 * K4, R), RW | Protection::ANON).unwrap();
    user_write(&mut space, &machine, BASE, 6).unwrap();
    assert_eq!(space.counters().cow_copies, 1, "the write copied the shared page");
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, BASE), Ok(5), "the child's page is untouched");
    assert_eq!(machine.violations(), Vec::<String>::new());
    let idle = leave(&machine, &[0]);
    child.destroy().unwrap();
    space.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&idle]));
}

#[test]
fn making_one_page_writable_keeps_it_copy_on_write_or_on_the_zero_page() {
    // One-page edits take a shorter look at the record than longer ones:
    // the same answer is wanted from both.
    let (machine, mut space) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    space.set_zero_page(true);
    space.add_region(Region::anonymous(BASE, 4 * K4, RW)).unwrap();
    space.switch_to();
    user_write(&mut space, &machine, BASE, 5).unwrap();
    assert_eq!(user_read(&mut space, &machine, BASE + K4), Ok(0), "a read of the zero page");
    let mut child = space.fork("child", None).unwrap();
    for page in [BASE, BASE + K4] {
        // mprotect(page, 4096, PROT_READ), then PROT_READ | PROT_WRITE.
        space.protect_region(Region::anonymous(page, K4, RW), Protection::READ | Protection::ANON).unwrap();
        space.protect_region(Region::anonymous(page, K4, R), RW | Protection::ANON).unwrap();
        assert_eq!(space.verify(), Ok(()));
        let leaf = space.walk(VirtAddr(page)).and_then(|walk| walk.translation()).expect("still mapped");
        assert!(!leaf.writable, "{page:#x}: shared or zero, so mapped read-only");
    }
    user_write(&mut space, &machine, BASE, 6).unwrap();
    user_write(&mut space, &machine, BASE + K4, 7).unwrap();
    assert_eq!(space.counters().cow_copies, 2, "the shared page and the zero page were copied");
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, BASE), Ok(5), "the child's page is untouched");
    assert_eq!(user_read(&mut child, &machine, BASE + K4), Ok(0), "and so is the zero page");
    assert_eq!(machine.violations(), Vec::<String>::new());
    let idle = leave(&machine, &[0]);
    child.destroy().unwrap();
    space.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&idle]));
}

#[test]
fn regions_with_their_own_memory_map_the_same_memory_in_the_child() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let direct = Region::new(8 * G, 0x20_0000, 4 * K4, R);
    space.add_region(direct).unwrap();
    space.switch_to();
    let parent_sees = user_read(&mut space, &machine, 8 * G);
    let mut child = space.fork("child", None).unwrap();
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, 8 * G), parent_sees);
    assert_eq!(machine.translate(8 * G, FaultAccess::Read, Mode::User), Ok(0x20_0000));
    let _idle = leave(&machine, &[0]);
    child.destroy().unwrap();
    space.destroy().unwrap();
}

#[test]
fn fork_refuses_an_eager_anonymous_region_and_changes_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::anonymous(BASE, 2 * K4, RW | EAGER)).unwrap();
    let before = machine.frames_in_use();
    assert!(matches!(space.fork("child", None), Err(AspaceError::Unsupported { .. })));
    assert_eq!(machine.frames_in_use(), before);
    space.destroy().unwrap();
}

/// The parent runs on CPU 1 and keeps a writable translation of a page in
/// its TLB; CPU 0 forks it. Had fork not dropped that translation from CPU
/// 1's TLB, CPU 1's next write would go straight into the frame the child
/// now shares: the model records exactly that. With the invalidation
/// skipped (the model's switch), the violation shows; with it, the write
/// faults and copies.
fn fork_while_another_cpu_holds_a_writable_entry(shootdown: bool) -> Vec<String> {
    let (machine, mut space) = setup(SimConfig::four_level().with_cpus(2));
    // Record violations rather than stop at the first: the skipped
    // shootdown is meant to produce one.
    machine.set_strict(false);
    machine.set_cr0_wp(true);
    space.add_region(Region::anonymous(BASE, K4, RW)).unwrap();
    machine.select_cpu(1);
    machine.set_cr0_wp(true);
    space.switch_to();
    user_write(&mut space, &machine, BASE, 1).unwrap();
    user_write(&mut space, &machine, BASE, 2).unwrap(); // through the cached entry
    machine.select_cpu(0);
    machine.set_invalidation_enabled(shootdown);
    let mut child = space.fork("child", None).unwrap();
    machine.set_invalidation_enabled(true);
    machine.select_cpu(1);
    user_write(&mut space, &machine, BASE, 3).unwrap();
    let violations = machine.violations();
    machine.select_cpu(0);
    child.switch_to();
    let seen_by_child = user_read(&mut child, &machine, BASE).unwrap();
    if shootdown {
        assert_eq!(seen_by_child, 2, "the child keeps the value of the fork");
    }
    let _idle = leave(&machine, &[0, 1]);
    child.destroy().unwrap();
    space.destroy().unwrap();
    violations
}

#[test]
fn fork_shoots_the_parents_writable_entries_down_on_every_cpu() {
    assert_eq!(fork_while_another_cpu_holds_a_writable_entry(true), Vec::<String>::new());
    let caught = fork_while_another_cpu_holds_a_writable_entry(false);
    assert!(
        caught.iter().any(|violation| violation.contains("shared copy-on-write")),
        "without the shootdown, the stale entry writes into the shared frame: {caught:?}"
    );
}

#[test]
fn shared_anonymous_memory_stays_shared_and_writable_across_fork() {
    let (machine, mut parent) = setup(SimConfig::four_level());
    machine.set_cr0_wp(true);
    let shared = Region::anonymous(BASE, 4 * K4, RW);
    parent.add_region(shared).unwrap();
    parent.share_anonymous(shared).unwrap();
    assert_eq!(parent.counters().anonymous_frames, 4, "every page has its frame before any fork");
    parent.switch_to();
    user_write(&mut parent, &machine, BASE, 1).unwrap();
    let mut child = parent.fork("child", None).unwrap();
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, BASE), Ok(1));
    user_write(&mut child, &machine, BASE + K4, 2).unwrap();
    parent.switch_to();
    assert_eq!(user_read(&mut parent, &machine, BASE + K4), Ok(2), "the parent sees the child's write");
    user_write(&mut parent, &machine, BASE + 2 * K4, 3).unwrap();
    child.switch_to();
    assert_eq!(user_read(&mut child, &machine, BASE + 2 * K4), Ok(3), "and the child the parent's");
    assert_eq!(parent.counters().cow_copies + child.counters().cow_copies, 0, "nothing copied");
    assert_eq!(parent.verify(), Ok(()));
    assert_eq!(child.verify(), Ok(()));
    assert_eq!(machine.violations(), Vec::<String>::new());
    let idle = leave(&machine, &[0]);
    child.destroy().unwrap();
    parent.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), frames_held(&[&idle]));
}
