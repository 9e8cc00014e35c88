//! Anonymous regions on the software MMU: zero-filled on first touch or at
//! once (EAGER), private frames per page, freed on remove and destroy after
//! the flush, all-or-nothing under allocation failure, move refused,
//! protect keeping the frames; and a property test of frame accounting.

mod common;

use aspace::{AddressSpace, AspaceError, FaultAccess, FaultOutcome, PhysAddr, Protection, Region, UnhandledFault};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use paging::{PageTableEntry, VerifyError};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const ANON: Protection = Protection::ANON;
const RWK: Protection = RW.union(KERN);

/// A window that crosses a 2 MiB boundary, so that its pages need two page tables.
const BASE: u64 = 64 * G + M2 - 8 * K4;

/// Frames the machine has handed out that the space accounts for: its tables and its anonymous frames.
fn accounted(space: &Space) -> usize {
    let c = space.counters();
    (c.table_frames + c.anonymous_frames) as usize
}

fn pages(va: u64, count: u64) -> impl Iterator<Item = u64> {
    (0..count).map(move |i| va + i * K4)
}

#[test]
fn anonymous_pages_read_zero_first_and_writes_stay_in_their_own_page() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::anonymous(BASE, 16 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    assert_eq!(space.counters().anonymous_frames, 0, "lazy: nothing provided before the first touch");
    for (i, va) in pages(BASE, 16).enumerate() {
        assert_eq!(read(&mut space, &machine, va + 8 * (i as u64 % 512)), Ok(0), "page {i} reads zero first");
    }
    assert_eq!(space.counters().anonymous_frames, 16);
    assert_eq!(space.counters().faults_handled, 16, "one fault per page: always 4 KiB pages");
    for (i, va) in pages(BASE, 16).enumerate() {
        write(&mut space, &machine, va + 0x100, 0xa000 + i as u64).unwrap();
    }
    for (i, va) in pages(BASE, 16).enumerate() {
        assert_eq!(read(&mut space, &machine, va + 0x100), Ok(0xa000 + i as u64));
        assert_eq!(read(&mut space, &machine, va + 0x108), Ok(0), "the rest of the page is still zero");
    }
    // Each page has a frame of its own, and the tables map exactly it.
    let frames: BTreeSet<PhysAddr> = space.anonymous_frames().map(|(_, frame)| frame).collect();
    assert_eq!(frames.len(), 16);
    for va in pages(BASE, 16) {
        let frame = space.anonymous_frame(aspace::VirtAddr(va + 0x123)).unwrap();
        assert_eq!(machine.translate(va, FaultAccess::Read, Mode::Supervisor), Ok(frame.0));
    }
    // A second anonymous region gets other frames: its first read is zero.
    let other = Region::anonymous(BASE + 32 * K4, K4, RWK);
    space.add_region(other).unwrap();
    assert_eq!(read(&mut space, &machine, other.va.0 + 0x100), Ok(0));
    assert!(!frames.contains(&space.anonymous_frame(other.va).unwrap()));
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(machine.frames_in_use(), accounted(&space));
}

#[test]
fn a_physical_address_is_refused() {
    let (_machine, mut space) = setup(SimConfig::four_level());
    let refused = space.add_region(Region::new(BASE, 0x20_0000, K4, RWK | ANON));
    assert!(matches!(refused, Err(AspaceError::InvalidFlags { .. })), "{refused:?}");
    assert!(space.regions().is_empty());
}

#[test]
fn removing_whole_and_part_returns_the_frames() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let baseline = machine.frames_in_use();
    let region = Region::anonymous(BASE, 16 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    for (i, va) in pages(BASE, 16).enumerate() {
        write(&mut space, &machine, va, i as u64 + 1).unwrap();
    }
    // A sub-range is named by its virtual range and pa 0; any other pa does not name it.
    let middle = Region::anonymous(BASE + 6 * K4, 4 * K4, RWK);
    assert!(matches!(
        space.remove_region(Region { pa: PhysAddr(6 * K4), ..middle }),
        Err(AspaceError::RegionMismatch { .. })
    ));
    let middle_frames: Vec<_> = pages(middle.va.0, 4).map(|va| space.anonymous_frame(aspace::VirtAddr(va))).collect();
    space.remove_region(middle).unwrap();
    assert_eq!(space.counters().anonymous_frames, 12);
    assert_eq!(machine.frames_in_use(), accounted(&space));
    assert!(middle_frames.iter().all(|f| f.is_some_and(|f| !space.anonymous_frames().any(|(_, g)| g == f))));
    assert_eq!(space.regions().len(), 2);
    assert!(space.regions().iter().all(|r| r.pa.0 == 0 && r.is_anonymous()));
    assert_eq!(read(&mut space, &machine, middle.va.0), Err(FaultOutcome::Unhandled(UnhandledFault::NoRegion)));
    for (i, va) in pages(BASE, 16).enumerate().filter(|&(i, _)| !(6..10).contains(&i)) {
        assert_eq!(read(&mut space, &machine, va), Ok(i as u64 + 1), "the other pages keep their contents");
    }
    assert_eq!(space.verify(), Ok(()));
    // The rest, whole.
    space.remove_region(Region::anonymous(BASE, 6 * K4, RWK)).unwrap();
    space.remove_region(Region::anonymous(BASE + 10 * K4, 6 * K4, RWK)).unwrap();
    assert_eq!(space.counters().anonymous_frames, 0);
    assert_eq!(machine.frames_in_use(), baseline, "back to the root alone");
    // Re-added, the pages read zero again.
    space.add_region(region).unwrap();
    assert_eq!(read(&mut space, &machine, BASE), Ok(0));
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn destroy_frees_every_frame() {
    let machine = SimMachine::new(SimConfig::four_level());
    let mut idle = paging::PagingAspace::new(machine.clone(), "idle", None).unwrap();
    idle.switch_to();
    let baseline = machine.frames_in_use();
    let mut space = paging::PagingAspace::new(machine.clone(), "anon", None).unwrap();
    space.add_region(Region::anonymous(BASE, 16 * K4, RWK | Protection::EAGER)).unwrap();
    space.add_region(Region::anonymous(4 * G, 16 * K4, RWK)).unwrap();
    space.switch_to();
    for va in pages(4 * G, 5) {
        write(&mut space, &machine, va, 7).unwrap();
    }
    assert_eq!(space.counters().anonymous_frames, 21);
    idle.switch_to();
    space.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), baseline, "only idle's root is left");
    // Dropping a space frees its frames too.
    let mut dropped = paging::PagingAspace::new(machine.clone(), "dropped", None).unwrap();
    dropped.add_region(Region::anonymous(BASE, 4 * K4, RWK | Protection::EAGER)).unwrap();
    drop(dropped);
    assert_eq!(machine.frames_in_use(), baseline);
}

#[test]
fn eager_anonymous_is_all_or_nothing_whichever_allocation_fails() {
    let region = Region::anonymous(BASE, 16 * K4, RWK | Protection::EAGER);
    // A region already there shares the upper tables and the first page table.
    let fresh = || {
        let (machine, mut space) = setup(SimConfig::four_level());
        space.add_region(Region::anonymous(BASE - 16 * K4, K4, RWK | Protection::EAGER)).unwrap();
        (machine, space)
    };
    let (machine, mut space) = fresh();
    let before = machine.allocations();
    space.add_region(region).unwrap();
    let needed = machine.allocations() - before;
    assert_eq!(needed, 16 + 1, "16 pages and the page table past the 2 MiB boundary");
    for n in 0..needed {
        let (machine, mut space) = fresh();
        let before = snapshot(&machine, &space);
        let frames_before: Vec<_> = space.anonymous_frames().collect();
        machine.fail_nth_allocation(Some(n));
        assert_eq!(space.add_region(region), Err(AspaceError::OutOfMemory), "allocation {n} fails");
        machine.fail_nth_allocation(None);
        assert_eq!(snapshot(&machine, &space), before, "allocation {n} failed: nothing changed");
        assert_eq!(space.anonymous_frames().collect::<Vec<_>>(), frames_before);
        assert_eq!(space.verify(), Ok(()));
        space.add_region(region).unwrap();
        space.switch_to();
        for va in pages(BASE, 16) {
            assert_eq!(machine.read_u64_at(va + 8, Mode::Supervisor), Ok(0), "mapped at once, zeroed");
        }
        assert_eq!(space.verify(), Ok(()));
    }
    // From an empty space: 16 frames and 4 tables (PDPT, PD, two PTs).
    let (machine, mut space) = setup(SimConfig::four_level());
    let before = machine.allocations();
    space.add_region(region).unwrap();
    assert_eq!(machine.allocations() - before, 16 + 4);
}

#[test]
fn a_lazy_fault_without_memory_is_out_of_memory_and_leaks_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::anonymous(BASE, 4 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    let before = snapshot(&machine, &space);
    // The first touch needs a frame, then a PDPT, a PD and a PT: each may fail.
    for n in 0..4 {
        machine.fail_nth_allocation(Some(n));
        let outcome = read(&mut space, &machine, BASE + 8);
        assert_eq!(outcome, Err(FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region })), "allocation {n}");
        machine.fail_nth_allocation(None);
        assert_eq!(snapshot(&machine, &space), before);
        assert_eq!(space.counters().anonymous_frames, 0);
        assert_eq!(space.verify(), Ok(()));
    }
    assert_eq!(read(&mut space, &machine, BASE + 8), Ok(0));
    assert_eq!(space.counters().anonymous_frames, 1);
}

#[test]
fn moving_an_anonymous_region_is_refused() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::anonymous(BASE, 4 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    write(&mut space, &machine, BASE, 42).unwrap();
    let before = snapshot(&machine, &space);
    assert!(matches!(space.move_region(region, PhysAddr(0x10_0000)), Err(AspaceError::Unsupported { .. })));
    assert!(matches!(
        space.move_region(Region::anonymous(BASE + K4, K4, RWK), PhysAddr(0)),
        Err(AspaceError::Unsupported { .. })
    ));
    assert_eq!(snapshot(&machine, &space), before);
    assert_eq!(read(&mut space, &machine, BASE), Ok(42));
}

#[test]
fn protect_changes_rights_and_keeps_the_frames() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::anonymous(BASE, 8 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    for (i, va) in pages(BASE, 4).enumerate() {
        write(&mut space, &machine, va, 100 + i as u64).unwrap();
    }
    // Without READ nothing is mapped, but the frames are kept...
    let frames_before: Vec<_> = space.anonymous_frames().collect();
    space.protect_region(region, KERN | ANON).unwrap();
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(space.mappings().unwrap().count(), 0);
    assert_eq!(space.anonymous_frames().collect::<Vec<_>>(), frames_before);
    assert!(matches!(read(&mut space, &machine, BASE), Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { .. }))));
    // ... and the contents come back with READ.
    space.protect_region(region, RWK | ANON).unwrap();
    for (i, va) in pages(BASE, 4).enumerate() {
        assert_eq!(read(&mut space, &machine, va), Ok(100 + i as u64));
    }
    // Read-only for two pages in the middle: writes there are forbidden, reads work.
    let part = Region::anonymous(BASE + 2 * K4, 2 * K4, R | KERN);
    space.protect_region(part, part.prot).unwrap();
    assert_eq!(space.verify(), Ok(()));
    let protected = *space.regions().find(BASE + 2 * K4).unwrap();
    assert_eq!(protected, part);
    let (outcome, _) = with_faults(&mut space, || machine.write_u64_at(BASE + 2 * K4, 1, Mode::Supervisor));
    assert_eq!(
        outcome,
        Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: protected, access: FaultAccess::Write }))
    );
    assert_eq!(read(&mut space, &machine, BASE + 2 * K4), Ok(102));
    write(&mut space, &machine, BASE + K4, 7).unwrap();
    assert_eq!(read(&mut space, &machine, BASE + K4), Ok(7));
    // The kind may not change: without ANON, or with a growth flag, the protection is refused.
    assert!(matches!(space.protect_region(part, R | KERN), Err(AspaceError::InvalidFlags { .. })));
    assert!(matches!(
        space.protect_region(part, R | KERN | ANON | Protection::GROW_DOWN),
        Err(AspaceError::InvalidFlags { .. })
    ));
    // EAGER maps every page of the part, the untouched ones with fresh zeroed frames.
    let tail = Region::anonymous(BASE + 4 * K4, 4 * K4, RWK);
    assert_eq!(space.counters().anonymous_frames, 4);
    space.protect_region(tail, RWK | ANON | Protection::EAGER).unwrap();
    assert_eq!(space.counters().anonymous_frames, 8);
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(machine.read_u64_at(BASE + 7 * K4, Mode::Supervisor), Ok(0));
    assert_eq!(machine.read_u64_at(BASE + 3 * K4, Mode::Supervisor), Ok(103));
    assert_eq!(machine.frames_in_use(), accounted(&space));
}

#[test]
fn protecting_to_eager_is_all_or_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::anonymous(BASE, 16 * K4, RWK);
    space.add_region(region).unwrap();
    space.switch_to();
    write(&mut space, &machine, BASE + 3 * K4, 3).unwrap();
    let eager = RWK | ANON | Protection::EAGER;
    let mut n = 0;
    loop {
        let before = snapshot(&machine, &space);
        machine.fail_nth_allocation(Some(n));
        let result = space.protect_region(region, eager);
        machine.fail_nth_allocation(None);
        if result.is_ok() {
            break;
        }
        assert_eq!(result, Err(AspaceError::OutOfMemory));
        assert_eq!(snapshot(&machine, &space), before, "allocation {n} failed: nothing changed");
        assert_eq!(space.verify(), Ok(()));
        n += 1;
    }
    assert!(n >= 15, "15 new frames and a page table were needed, failed {n} times");
    assert_eq!(space.verify(), Ok(()));
    assert_eq!(read(&mut space, &machine, BASE + 3 * K4), Ok(3));
}

#[test]
fn verify_catches_a_page_pointed_at_another_pages_frame() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::anonymous(BASE, 2 * K4, RWK | Protection::EAGER)).unwrap();
    let walk = space.walk(aspace::VirtAddr(BASE + K4)).unwrap();
    let leaf = *walk.steps().last().unwrap();
    let slot = leaf.slot();
    let first = space.anonymous_frame(aspace::VirtAddr(BASE)).unwrap();
    let second = space.anonymous_frame(aspace::VirtAddr(BASE + K4)).unwrap();
    let aliased = PageTableEntry((leaf.entry.0 & !PageTableEntry::ADDRESS) | first.0);
    machine.write_u64(slot, aliased.0);
    let errors = space.verify().unwrap_err();
    assert_eq!(
        errors,
        vec![VerifyError::WrongAddress { va: aspace::VirtAddr(BASE + K4), found: first, expected: second }]
    );
    machine.write_u64(slot, leaf.entry.0);
    assert_eq!(space.verify(), Ok(()));
}

// ---- Property: frame accounting against a model ----

/// The window the property test works in: 48 pages across a 2 MiB boundary.
const WINDOW_PAGES: u64 = 48;

#[derive(Clone, Debug)]
enum Op {
    Add { page: u64, pages: u64, eager: bool, readable: bool },
    Remove { page: u64, pages: u64 },
    Protect { page: u64, pages: u64, readable: bool, writable: bool, eager: bool },
    Access { page: u64, write: bool, value: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..WINDOW_PAGES;
    let pages = 1..12u64;
    prop_oneof![
        3 => (page.clone(), pages.clone(), prop::bool::weighted(0.3), prop::bool::weighted(0.85))
            .prop_map(|(page, pages, eager, readable)| Op::Add { page, pages, eager, readable }),
        2 => (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Remove { page, pages }),
        2 => (page.clone(), pages, any::<bool>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(page, pages, readable, writable, eager)| Op::Protect { page, pages, readable, writable, eager }),
        6 => (page, any::<bool>(), 1..1000u64).prop_map(|(page, write, value)| Op::Access { page, write, value }),
    ]
}

fn rights(readable: bool, writable: bool) -> Protection {
    let mut prot = KERN | ANON;
    prot.set(Protection::READ, readable || writable);
    prot.set(Protection::WRITE, writable);
    prot
}

/// What the space should hold: regions (by first page) and the owned pages with their contents.
#[derive(Default)]
struct Model {
    /// First page -> (page count, protections).
    regions: BTreeMap<u64, (u64, Protection)>,
    /// Page -> the value last written at its start (0 when untouched).
    owned: BTreeMap<u64, u64>,
}

impl Model {
    fn find(&self, page: u64) -> Option<(u64, u64, Protection)> {
        let (&start, &(count, prot)) = self.regions.range(..=page).next_back()?;
        (page < start + count).then_some((start, count, prot))
    }

    fn overlaps(&self, page: u64, pages: u64) -> bool {
        (page..page + pages).any(|p| self.find(p).is_some())
    }

    /// Makes every page of `[page, page+pages)` owned (eager, readable regions).
    fn own(&mut self, page: u64, pages: u64) {
        for p in page..page + pages {
            self.owned.entry(p).or_insert(0);
        }
    }

    /// Replaces the region at `start` by its parts outside `[page, page+pages)`, and `middle`.
    fn cut(&mut self, start: u64, page: u64, pages: u64, middle: Option<Protection>) {
        let (count, prot) = self.regions.remove(&start).unwrap();
        if page > start {
            self.regions.insert(start, (page - start, prot));
        }
        if page + pages < start + count {
            self.regions.insert(page + pages, (start + count - page - pages, prot));
        }
        if let Some(prot) = middle {
            self.regions.insert(page, (pages, prot));
        }
    }
}

/// The part of the region holding `page` that `[page, page+pages)` covers.
fn clip(model: &Model, page: u64, pages: u64) -> Option<(u64, u64)> {
    let (start, count, _) = model.find(page)?;
    Some((start, (page + pages).min(start + count) - page))
}

fn va_of(page: u64) -> u64 {
    BASE + page * K4
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn frame_counts_follow_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (machine, mut space) = setup(SimConfig::four_level());
        space.switch_to();
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Add { page, pages, eager, readable } => {
                    let pages = pages.min(WINDOW_PAGES - page);
                    let mut prot = rights(readable, readable);
                    prot.set(Protection::EAGER, eager);
                    let result = space.add_region(Region::anonymous(va_of(page), pages * K4, prot));
                    if model.overlaps(page, pages) {
                        prop_assert!(matches!(result, Err(AspaceError::Overlap { .. })), "step {step}: {result:?}");
                    } else {
                        prop_assert_eq!(result, Ok(()), "step {}", step);
                        model.regions.insert(page, (pages, prot));
                        if eager && readable {
                            model.own(page, pages);
                        }
                    }
                }
                Op::Remove { page, pages } => {
                    let Some((start, pages)) = clip(&model, page, pages) else {
                        let result = space.remove_region(Region::anonymous(va_of(page), pages * K4, R));
                        prop_assert_eq!(result, Err(AspaceError::NoSuchRegion { va: va_of(page) }));
                        continue;
                    };
                    space.remove_region(Region::anonymous(va_of(page), pages * K4, R)).unwrap();
                    model.cut(start, page, pages, None);
                    for p in page..page + pages {
                        model.owned.remove(&p);
                    }
                }
                Op::Protect { page, pages, readable, writable, eager } => {
                    let mut prot = rights(readable, writable);
                    prot.set(Protection::EAGER, eager);
                    let Some((start, pages)) = clip(&model, page, pages) else {
                        let result = space.protect_region(Region::anonymous(va_of(page), K4, R), prot);
                        prop_assert_eq!(result, Err(AspaceError::NoSuchRegion { va: va_of(page) }));
                        continue;
                    };
                    space.protect_region(Region::anonymous(va_of(page), pages * K4, R), prot).unwrap();
                    model.cut(start, page, pages, Some(prot));
                    if prot.contains(Protection::EAGER | Protection::READ) {
                        model.own(page, pages);
                    }
                }
                Op::Access { page, write: is_write, value } => {
                    // One word per page, at an offset that differs from page to page.
                    let va = va_of(page) + 8 * (page % 512);
                    let expected_prot = model.find(page).map(|(_, _, prot)| prot);
                    let result = if is_write {
                        write(&mut space, &machine, va, value).map(|()| value)
                    } else {
                        read(&mut space, &machine, va)
                    };
                    match expected_prot {
                        None => prop_assert_eq!(result, Err(FaultOutcome::Unhandled(UnhandledFault::NoRegion))),
                        Some(prot) if !prot.contains(Protection::READ) || (is_write && !prot.contains(Protection::WRITE)) => {
                            prop_assert!(matches!(result, Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { .. }))), "step {step}: {result:?}");
                        }
                        Some(_) => {
                            // The first touch provides a zeroed frame; a write replaces the word.
                            let word = model.owned.entry(page).or_insert(0);
                            prop_assert_eq!(result, Ok(if is_write { value } else { *word }), "step {}", step);
                            if is_write {
                                *word = value;
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(space.verify(), Ok(()), "step {}: {:?}", step, op);
            prop_assert_eq!(space.counters().anonymous_frames as usize, model.owned.len(), "step {}: {:?}", step, op);
            prop_assert_eq!(machine.frames_in_use(), accounted(&space), "step {}: a frame leaked or was lost", step);
        }
        let mut other = paging::PagingAspace::new(machine.clone(), "other", None).unwrap();
        other.switch_to();
        space.destroy().unwrap();
        prop_assert_eq!(machine.frames_in_use(), 1, "only the other root is left");
    }
}
