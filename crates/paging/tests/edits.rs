//! Editing a live address space: split, remove, move, protect, faults,
//! out-of-memory atomicity, flush counts, refusals and teardown.

mod common;

use aspace::{
    AddressSpace, AspaceError, FaultAccess, FaultOutcome, PageFaultCode, PhysAddr, Protection, Region, UnhandledFault,
};
use common::*;
use mmu_model::{pattern, AccessError, Mode, SimConfig};
use paging::VerifyError;

const PIN: Protection = Protection::PIN;

#[test]
fn protecting_one_page_inside_a_1g_page_splits_it_and_every_part_still_reads() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let (va, pa) = (G, 3 * G);
    space.add_region(Region::new(va, pa, G, RW | KERN | EAGER)).unwrap();
    space.switch_to();
    let target = va + 300 * M2 + 7 * K4;
    // Fill the TLB with the 1 GiB translation first: the split must drop it.
    assert_eq!(machine.read_u64_at(target, Mode::Supervisor), Ok(pattern(pa + 300 * M2 + 7 * K4)));
    space.protect_region(Region::new(target, pa + (target - va), K4, RW), R | KERN).unwrap();
    assert_eq!(space.counters().splits, 2, "1 GiB into 2 MiB, then one 2 MiB into 4 KiB");
    assert_eq!(space.regions().len(), 3);
    assert_eq!(space.verify(), Ok(()));
    for chunk in 0..512 {
        let at = va + chunk * M2;
        assert_eq!(machine.read_u64_at(at, Mode::Supervisor), Ok(pattern(pa + chunk * M2)));
        assert_eq!(machine.read_u64_at(at + M2 - 8, Mode::Supervisor), Ok(pattern(pa + chunk * M2 + M2 - 8)));
    }
    for page in 0..512 {
        let at = va + 300 * M2 + page * K4 + 8;
        assert_eq!(machine.read_u64_at(at, Mode::Supervisor), Ok(pattern(pa + (at - va))));
    }
    let denied = machine.write_u64_at(target, 1, Mode::Supervisor).unwrap_err();
    assert_eq!(denied.code(), Some(PageFaultCode::PRESENT | PageFaultCode::WRITE));
    let (outcome, _) = with_faults(&mut space, || machine.write_u64_at(target, 1, Mode::Supervisor));
    assert!(matches!(
        outcome,
        Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { access: FaultAccess::Write, .. }))
    ));
    machine.write_u64_at(target + K4, 0x5eed, Mode::Supervisor).unwrap();
    assert_eq!(machine.read_u64_at(target + K4, Mode::Supervisor), Ok(0x5eed));
}

#[test]
fn removing_frees_the_tables_and_destroy_frees_the_root() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let with_root = machine.frames_in_use();
    // 4 KiB pages (congruent modulo 4 KiB only) across a 512 GiB boundary.
    let eager = Region::new(512 * G - 4 * M2, K4, 8 * M2, RW | KERN | EAGER);
    space.add_region(eager).unwrap();
    assert!(machine.frames_in_use() > with_root + 4);
    space.remove_region(Region::new(512 * G, K4 + 4 * M2, 4 * M2, RW)).unwrap();
    space.remove_region(Region::new(512 * G - 4 * M2, K4, 4 * M2, RW)).unwrap();
    assert_eq!(machine.frames_in_use(), with_root);
    assert_eq!(space.counters().table_frames, 1);
    // Lazy pages faulted in are freed with their region too.
    let lazy = Region::new(64 * G, 0, 64 * M2, RW | KERN);
    space.add_region(lazy).unwrap();
    space.switch_to();
    for i in 0..8 {
        read(&mut space, &machine, 64 * G + i * 9 * M2 + 8).unwrap();
    }
    assert!(machine.frames_in_use() > with_root);
    space.remove_region(lazy).unwrap();
    assert_eq!(machine.frames_in_use(), with_root);
    space.add_region(Region::new(0, 0, 4 * G, RWXK | EAGER | PIN)).unwrap();
    let (_other_machine, mut other) =
        (machine.clone(), paging::PagingAspace::new(machine.clone(), "other", None).unwrap());
    other.switch_to();
    space.destroy().unwrap();
    assert_eq!(machine.frames_in_use(), with_root, "only the other space's root is left");
    assert!(space.regions().is_empty());
    assert!(matches!(space.add_region(lazy), Err(AspaceError::UnknownAddressSpace { .. })));
}

#[test]
fn eager_add_is_all_or_nothing_when_frames_run_out() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, G, G, RWXK | EAGER)).unwrap();
    // Five tables: a PD and a PT below 512 GiB (the PDPT is the first
    // region's), a PDPT, a PD and a PT above.
    let region = Region::new(512 * G - K4, 0, 2 * K4, RW | KERN | EAGER);
    let mut failures = 0;
    loop {
        let before = snapshot(&machine, &space);
        machine.fail_nth_allocation(Some(failures));
        match space.add_region(region) {
            Ok(()) => break,
            Err(error) => {
                assert_eq!(error, AspaceError::OutOfMemory);
                assert_eq!(snapshot(&machine, &space), before, "after failing allocation {failures}");
                failures += 1;
            }
        }
    }
    machine.fail_nth_allocation(None);
    assert_eq!(failures, 5);
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn a_split_is_all_or_nothing_when_frames_run_out() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, 0, G, RW | KERN | EAGER)).unwrap();
    let page = Region::new(G + 5 * M2 + K4, 5 * M2 + K4, K4, RW);
    for edit in 0..3 {
        let mut failures = 0;
        loop {
            let before = snapshot(&machine, &space);
            machine.fail_nth_allocation(Some(failures));
            let result = match edit {
                0 => space.protect_region(page, R | KERN),
                1 => space.move_region(Region::new(G + 9 * M2, 9 * M2, K4, RW), PhysAddr(0x7000)),
                _ => space.remove_region(Region::new(G + 400 * M2 - K4, 400 * M2 - K4, 2 * K4, RW)),
            };
            match result {
                Ok(()) => break,
                Err(error) => {
                    assert_eq!(error, AspaceError::OutOfMemory);
                    assert_eq!(snapshot(&machine, &space), before, "edit {edit}, failing allocation {failures}");
                    failures += 1;
                }
            }
        }
        machine.fail_nth_allocation(None);
        // The first edit splits the 1 GiB page and one 2 MiB page; the
        // second one more 2 MiB page; the third two (it straddles two).
        assert_eq!(failures, [2, 1, 2][edit], "edit {edit}");
        assert_eq!(space.verify(), Ok(()));
    }
    assert_eq!(space.regions().len(), 6);
}

#[test]
fn a_lazy_fault_without_frames_is_unhandled_and_changes_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::new(G, 0, K4 * 4, RW | KERN);
    space.add_region(region).unwrap();
    space.switch_to();
    let before = snapshot(&machine, &space);
    machine.fail_nth_allocation(Some(1));
    let (outcome, _) = with_faults(&mut space, || machine.read_u64_at(G, Mode::Supervisor));
    assert_eq!(outcome, Err(FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region })));
    assert_eq!(snapshot(&machine, &space), before);
    assert_eq!(read(&mut space, &machine, G), Ok(pattern(0)));
}

#[test]
fn a_permission_increase_leaves_a_spurious_fault_that_is_recognised() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::new(G, 0, M2, R | KERN);
    space.add_region(region).unwrap();
    space.switch_to();
    let (outcome, _) = with_faults(&mut space, || machine.write_u64_at(G + 8, 1, Mode::Supervisor));
    assert_eq!(outcome, Err(FaultOutcome::Unhandled(UnhandledFault::Forbidden { region, access: FaultAccess::Write })));
    // The read maps the page read-only, and the TLB keeps that translation.
    assert_eq!(read(&mut space, &machine, G + 8), Ok(pattern(8)));
    let invalidations = machine.counters().page_invalidations;
    space.protect_region(region, RW | KERN).unwrap();
    assert_eq!(machine.counters().page_invalidations, invalidations, "an increase invalidates nothing");
    let (outcome, outcomes) = with_faults(&mut space, || machine.write_u64_at(G + 8, 42, Mode::Supervisor));
    assert_eq!(outcome, Ok(()));
    assert_eq!(outcomes, [FaultOutcome::Spurious]);
    assert_eq!(space.counters().spurious_faults, 1);
    assert_eq!(machine.read_u64_at(G + 8, Mode::Supervisor), Ok(42));
    // A decrease is flushed at once: the write faults immediately.
    space.protect_region(region, R | KERN).unwrap();
    assert!(machine.write_u64_at(G + 8, 1, Mode::Supervisor).is_err());
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn fault_outcomes_follow_the_region() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let data = Region::new(G, 0, M2, RW);
    let kernel = Region::new(2 * G, 0, M2, RWXK);
    let hidden = Region::new(3 * G, 0, M2, Protection::KERN);
    for r in [data, kernel, hidden] {
        space.add_region(r).unwrap();
    }
    space.switch_to();
    let outcome = |space: &mut Space, access: Result<(), AccessError>| {
        let pf = access.unwrap_err().page_fault().unwrap();
        space.exception(&aspace::Fault::page_fault(pf.addr, pf.code, 0))
    };
    let o = outcome(&mut space, machine.read_u64_at(5 * G, Mode::Supervisor).map(drop));
    assert_eq!(o, FaultOutcome::Unhandled(UnhandledFault::NoRegion));
    let o = outcome(&mut space, machine.fetch_at(G, Mode::Supervisor));
    assert_eq!(o, FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: data, access: FaultAccess::Execute }));
    let o = outcome(&mut space, machine.read_u64_at(2 * G, Mode::User).map(drop));
    assert_eq!(o, FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: kernel, access: FaultAccess::Read }));
    let o = outcome(&mut space, machine.read_u64_at(3 * G, Mode::Supervisor).map(drop));
    assert_eq!(o, FaultOutcome::Unhandled(UnhandledFault::Forbidden { region: hidden, access: FaultAccess::Read }));
    // User data is readable from user mode once faulted in, and not executable.
    assert_eq!(with_faults(&mut space, || machine.read_u64_at(G + 16, Mode::User)).0, Ok(pattern(16)));
    assert!(machine.fetch_at(G, Mode::User).is_err());
    let rsvd = aspace::Fault::page_fault(G, PageFaultCode::PRESENT | PageFaultCode::RESERVED, 0);
    assert_eq!(space.exception(&rsvd), FaultOutcome::Unhandled(UnhandledFault::ReservedBit));
    let gp = aspace::Fault { vector: aspace::Fault::GENERAL_PROTECTION, addr: 0, code: PageFaultCode::empty(), rip: 0 };
    assert_eq!(space.exception(&gp), FaultOutcome::Unhandled(UnhandledFault::NotHandledHere));
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn every_refusal_changes_nothing() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let pinned = Region::new(0, 0, 4 * M2, RWXK | PIN | EAGER);
    let plain = Region::new(G, 0, 4 * M2, RW | KERN);
    space.add_region(pinned).unwrap();
    space.add_region(plain).unwrap();
    let before = snapshot(&machine, &space);
    let refusals = [
        (space.add_region(Region::new(M2, 0, K4, RW)), AspaceError::Overlap { existing: pinned }),
        (space.remove_region(pinned), AspaceError::Pinned { region: pinned }),
        (space.move_region(pinned, PhysAddr(G)), AspaceError::Pinned { region: pinned }),
        (space.remove_region(Region::new(2 * G, 0, K4, RW)), AspaceError::NoSuchRegion { va: 2 * G }),
        (
            space.remove_region(Region::new(G, K4, K4, RW)),
            AspaceError::RegionMismatch { requested: Region::new(G, K4, K4, RW), existing: plain },
        ),
        (
            space.protect_region(Region::new(G + M2, 0, 4 * M2, RW), R),
            AspaceError::RegionMismatch { requested: Region::new(G + M2, 0, 4 * M2, RW), existing: plain },
        ),
        (
            space.remove_region(Region::new(G + 1, 1, K4, RW)),
            AspaceError::Misaligned { kind: aspace::AddressKind::Virtual, value: G + 1, required: K4 },
        ),
        (
            space.move_region(plain, PhysAddr(0x800)),
            AspaceError::Misaligned { kind: aspace::AddressKind::Physical, value: 0x800, required: K4 },
        ),
        (
            space.add_region(Region::new(3 * G, 0, 100, RW)),
            AspaceError::Misaligned { kind: aspace::AddressKind::Length, value: 100, required: K4 },
        ),
        (
            space.add_region(Region::new(3 * G, 1 << 46, K4, RW)),
            AspaceError::PhysTooWide { addr: (1 << 46) + K4 - 1, phys_bits: 46 },
        ),
        (
            space.protect_region(plain, Protection::WRITE),
            AspaceError::InvalidFlags {
                flags: 2,
                reason: "x86-64 cannot map a page that is writable or executable but not readable",
            },
        ),
    ];
    for (result, expected) in refusals {
        assert_eq!(result, Err(expected));
    }
    assert_eq!(snapshot(&machine, &space), before);
    // Protect is allowed on a pinned region, and keeps what the caller asks.
    space.protect_region(pinned, R | KERN | PIN | EAGER).unwrap();
    assert_eq!(space.regions().get(aspace::VirtAddr(0)).unwrap().prot, R | KERN | PIN | EAGER);
    assert_eq!(space.verify(), Ok(()));
    // Threads inside keep the space alive.
    space.add_thread(7);
    assert_eq!(space.destroy(), Err(AspaceError::Busy { reason: "threads are still inside the address space" }));
    space.remove_thread(7);
    space.switch_to();
    assert!(matches!(space.destroy(), Err(AspaceError::Busy { .. })), "loaded in CR3");
}

#[test]
fn nk_paging_test_move_remove_and_protect() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let all = RWXK | PIN | EAGER;
    space.add_region(Region::new(0, 0, 4 * G, all)).unwrap();
    space.add_region(Region::new(4 * G, 0, 4 * G, all)).unwrap();
    space.add_region(Region::new(0xffff_8000_0000_0000, 0, 4 * G, RWXK | PIN)).unwrap();
    space.switch_to();
    for offset in (M2..M2 + 4 * (1 << 20)).step_by(64 * 1024) {
        let direct = read(&mut space, &machine, offset).unwrap();
        assert_eq!(read(&mut space, &machine, 0xffff_8000_0000_0000 + offset), Ok(direct));
        assert_eq!(read(&mut space, &machine, 4 * G + offset), Ok(direct));
    }
    // Move.
    space.add_region(Region::new(8 * G, 8 * G, 4 * G, all)).unwrap();
    let movable = Region::new(12 * G, 8 * G, 4 * G, RWXK | EAGER);
    space.add_region(movable).unwrap();
    let probe = 12 * G + 0x1234_5000;
    assert_eq!(read(&mut space, &machine, probe), read(&mut space, &machine, 8 * G + 0x1234_5000));
    space.move_region(movable, PhysAddr(0)).unwrap();
    assert_eq!(read(&mut space, &machine, probe), read(&mut space, &machine, 0x1234_5000));
    assert_ne!(read(&mut space, &machine, probe), read(&mut space, &machine, 8 * G + 0x1234_5000));
    // Remove, named by its new physical address.
    let moved = Region::new(12 * G, 0, 4 * G, RWXK | EAGER);
    assert!(matches!(space.add_region(moved), Err(AspaceError::Overlap { .. })));
    space.remove_region(moved).unwrap();
    assert!(machine.read_u64_at(probe, Mode::Supervisor).is_err(), "the removal was flushed");
    space.add_region(moved).unwrap();
    // Protect a pinned lazy region to make it writable.
    let code = Region::new(16 * G, G, 6 << 20, R | Protection::EXEC | PIN | KERN);
    space.add_region(code).unwrap();
    assert_eq!(space.remove_region(code), Err(AspaceError::Pinned { region: code }));
    assert_eq!(space.move_region(code, PhysAddr(0)), Err(AspaceError::Pinned { region: code }));
    assert!(write(&mut space, &machine, 16 * G, 1).is_err());
    space.protect_region(code, RWXK).unwrap();
    for word in 0..128 {
        write(&mut space, &machine, 16 * G + 8 * word, word).unwrap();
    }
    assert_eq!(read(&mut space, &machine, 16 * G + 8 * 100), Ok(100));
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn moving_part_of_a_lazy_region_repoints_only_what_exists() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::new(G, 0, 8 * M2, RW | KERN);
    space.add_region(region).unwrap();
    space.switch_to();
    assert_eq!(read(&mut space, &machine, G + 8), Ok(pattern(8)));
    let mapped_before = space.counters().pages_mapped;
    // Move the first 4 MiB to a PA congruent only modulo 4 KiB: the 2 MiB page splits.
    space.move_region(Region::new(G, 0, 4 * M2 / 2, RW), PhysAddr(0x4000_1000)).unwrap();
    assert_eq!(space.counters().pages_mapped, mapped_before, "no page was added by the move");
    assert_eq!(space.counters().splits, 1);
    assert_eq!(machine.read_u64_at(G + 8, Mode::Supervisor), Ok(pattern(0x4000_1008)));
    // The untouched half faults in at the new address; the rest keeps the old one.
    assert_eq!(read(&mut space, &machine, G + M2 + 8), Ok(pattern(0x4000_1000 + M2 + 8)));
    assert_eq!(read(&mut space, &machine, G + 4 * M2 + 8), Ok(pattern(4 * M2 + 8)));
    assert_eq!(space.regions().len(), 2);
    assert_eq!(space.verify(), Ok(()));
}

/// Past 16 pages a flush batch stops naming pages and the edit of the
/// table's remaining entries runs a second loop that records nothing
/// (`for_each_entry` in edit.rs): every entry on both sides of that switch
/// must still be edited, and the TLB must still drop every old entry.
#[test]
fn edits_past_the_flush_ceiling_reach_every_entry() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let (va, pa) = (G, 4 * M2 + K4);
    space.add_region(Region::new(va, pa, 64 * K4, RW | KERN | EAGER)).unwrap();
    space.switch_to();
    // Every page in the TLB, writable.
    for page in 0..64 {
        machine.write_u64_at(va + page * K4, page, Mode::Supervisor).unwrap();
    }
    // 40 pages from page 10: the batch names 10 to 25, then flushes everything.
    space.protect_region(Region::new(va + 10 * K4, pa + 10 * K4, 40 * K4, RW), R | KERN).unwrap();
    assert_eq!(space.counters().full_flushes, 1);
    for page in 0..64 {
        let written = machine.write_u64_at(va + page * K4, 0x5eed, Mode::Supervisor);
        if (10..50).contains(&page) {
            assert_eq!(written.unwrap_err().code(), Some(PageFaultCode::PRESENT | PageFaultCode::WRITE), "page {page}");
            assert_eq!(machine.read_u64_at(va + page * K4, Mode::Supervisor), Ok(page), "page {page}");
        } else {
            assert_eq!(written, Ok(()), "page {page}");
        }
    }
    space.remove_region(Region::new(va + 10 * K4, pa + 10 * K4, 40 * K4, R | KERN)).unwrap();
    assert_eq!(space.counters().full_flushes, 2);
    for page in 0..64 {
        let read = machine.read_u64_at(va + page * K4, Mode::Supervisor);
        if (10..50).contains(&page) {
            assert_eq!(read.unwrap_err().code(), Some(PageFaultCode::empty()), "page {page}");
        } else {
            assert_eq!(read, Ok(0x5eed), "page {page}");
        }
    }
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn flush_batches_name_pages_then_everything() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, K4, 64 * K4, RW | KERN | EAGER)).unwrap();
    let after_add = space.counters();
    assert_eq!((after_add.page_invalidations, after_add.full_flushes), (0, 0), "new mappings flush nothing");
    space.remove_region(Region::new(G, K4, 3 * K4, RW)).unwrap();
    assert_eq!((space.counters().page_invalidations, space.counters().full_flushes), (3, 0));
    space.remove_region(Region::new(G + 3 * K4, 4 * K4, 40 * K4, RW)).unwrap();
    assert_eq!((space.counters().page_invalidations, space.counters().full_flushes), (3, 1));
    assert_eq!(machine.counters().page_invalidations, 3);
    assert_eq!(machine.counters().full_flushes, 1);
    space.protect_region(Region::new(G + 43 * K4, 44 * K4, 2 * K4, RW), R | KERN).unwrap();
    assert_eq!(space.counters().page_invalidations, 5);
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn a_missing_flush_would_be_seen() {
    // The tests above rely on the model keeping stale translations: show it does.
    let (machine, mut space) = setup(SimConfig::four_level());
    let region = Region::new(G, 0, K4, RW | KERN | EAGER);
    space.add_region(region).unwrap();
    space.switch_to();
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0)));
    machine.set_invalidation_enabled(false);
    space.move_region(region, PhysAddr(0x9000)).unwrap();
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0)), "stale without the flush");
    machine.set_invalidation_enabled(true);
    machine.invlpg(G);
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0x9000)));
}

#[test]
fn verify_finds_tables_that_disagree_with_the_regions() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, 0, 2 * K4, RW | KERN | EAGER)).unwrap();
    let walk = space.walk(aspace::VirtAddr(G)).unwrap();
    let leaf = *walk.steps().last().unwrap();
    let slot = leaf.slot();
    machine.write_u64(slot, leaf.entry.bits() + 0x5000);
    let errors = space.verify().unwrap_err();
    assert!(errors.contains(&VerifyError::WrongAddress {
        va: aspace::VirtAddr(G),
        found: PhysAddr(0x5000),
        expected: PhysAddr(0)
    }));
    machine.write_u64(slot, leaf.entry.bits() & !2);
    assert!(matches!(space.verify().unwrap_err()[..], [VerifyError::WrongPermissions { .. }]));
    machine.write_u64(slot, 0);
    // The page table's count (in the directory entry above it) still says two.
    assert!(matches!(
        space.verify().unwrap_err()[..],
        [
            VerifyError::WrongPresentCount { level: paging::Level::Pd, present: 1, .. },
            VerifyError::EagerNotMapped { mapped: K4, .. }
        ]
    ));
    machine.write_u64(leaf.table.slot(leaf.index + 1), 0);
    let errors = space.verify().unwrap_err();
    assert!(errors.iter().any(|e| matches!(e, VerifyError::EmptyTable { level: paging::Level::Pt, .. })), "{errors:?}");
}

#[test]
fn print_and_ptdump_describe_the_space() {
    let (_machine, mut space) = setup(SimConfig::four_level().with_pcid(true));
    space.add_region(Region::new(G, G, G + K4, RWXK | EAGER)).unwrap();
    let mut text = String::new();
    space.print(&mut text, true).unwrap();
    assert!(text.contains("'test' (paging)"), "{text}");
    assert!(text.contains(&format!("root {:#x}", space.root().unwrap().0)), "{text}");
    assert!(text.contains("1 regions"), "{text}");
    assert!(text.contains(&format!("{}", space.regions().iter().next().unwrap())), "{text}");
    let runs: Vec<String> = space.mappings().unwrap().map(|r| r.to_string()).collect();
    assert_eq!(
        runs,
        [
            "0x0000000040000000-0x000000007fffffff      1 x 1G rwx kernel -> 0x40000000",
            "0x0000000080000000-0x0000000080000fff      1 x 4K rwx kernel -> 0x80000000",
        ]
    );
}

#[test]
fn switching_loads_the_root_with_its_pcid() {
    let machine = mmu_model::SimMachine::new(SimConfig::four_level().with_pcid(true));
    let mut a = paging::PagingAspace::new(machine.clone(), "a", Some(1)).unwrap();
    let mut b = paging::PagingAspace::new(machine.clone(), "b", Some(2)).unwrap();
    a.add_region(Region::new(G, 0, K4, RW | KERN | EAGER)).unwrap();
    b.add_region(Region::new(G, 0x8000, K4, RW | KERN | EAGER)).unwrap();
    use paging::Machine as _;
    a.switch_to();
    assert_eq!(machine.current_root(), a.root().unwrap());
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0)));
    b.switch_to();
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0x8000)));
    // Edit a while b runs: the invalidation reaches a's PCID.
    a.move_region(Region::new(G, 0, K4, RW), PhysAddr(0x3000)).unwrap();
    a.switch_to();
    assert_eq!(machine.read_u64_at(G, Mode::Supervisor), Ok(pattern(0x3000)));
    b.switch_to();
    a.destroy().unwrap();
}
