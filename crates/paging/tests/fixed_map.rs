//! A map built whole (`PagingAspace::from_regions`, then `unmap_part` for
//! guard pages), as the kernel builds its boot identity map: the same
//! tables, regions, counters and flushes as `add_region` of each region and
//! `protect_region` of each guard page, and the same refusals.

mod common;

use aspace::{AddressSpace, AspaceError, Protection, Region};
use common::*;
use mmu_model::{Mode, SimConfig, SimMachine};
use paging::PagingAspace;

const PIN: Protection = Protection::PIN;
const MANAGED: Protection = PIN.union(KERN).union(EAGER);
const TEXT: Protection = Protection::READ.union(Protection::EXEC).union(MANAGED);
const RODATA: Protection = Protection::READ.union(MANAGED);
const DATA: Protection = RW.union(MANAGED);
/// A guard page: no access, still pinned and kernel-only.
const GUARD: Protection = PIN.union(KERN);

/// A hardened identity map of `[0, 4 GiB)` like the kernel's: low memory,
/// text, rodata, data, then the rest of RAM and MMIO.
fn identity_regions() -> Vec<Region> {
    let (text, rodata, data, end) = (M2, M2 + 0x5_3000, M2 + 0x8_0000, M2 + 0x11_d000);
    let identity = |start: u64, end: u64, prot| Region::new(start, start, end - start, prot);
    vec![
        identity(0, text, DATA),
        identity(text, rodata, TEXT),
        identity(rodata, data, RODATA),
        identity(data, end, DATA),
        identity(end, 4 * G, DATA),
    ]
}

/// Guard pages: inside a 1 GiB page, two side by side, at the start and
/// the end of a region, in low memory, and under the kernel image.
const GUARD_PAGES: &[u64] =
    &[0x9000, M2 + 0x11_d000, G + 7 * M2 + 5 * K4, G + 7 * M2 + 6 * K4, 3 * G + 13 * M2, 4 * G - K4];

fn guard(page: u64) -> Region {
    Region::new(page, page, K4, GUARD)
}

/// The map built with the lab's operations.
fn with_add_and_protect(config: SimConfig) -> (SimMachine, Space) {
    let (machine, mut space) = setup(config);
    for region in identity_regions() {
        space.add_region(region).unwrap();
    }
    for &page in GUARD_PAGES {
        space.protect_region(guard(page), GUARD).unwrap();
    }
    (machine, space)
}

/// The map built whole.
fn built_whole(config: SimConfig) -> (SimMachine, Space) {
    let machine = SimMachine::new(config);
    let mut space = PagingAspace::from_regions(machine.clone(), "test", None, &identity_regions()).unwrap();
    for &page in GUARD_PAGES {
        space.unmap_part(guard(page)).unwrap();
    }
    (machine, space)
}

fn same_map(config: SimConfig) {
    let (lab_machine, lab) = with_add_and_protect(config.clone());
    let (machine, mut space) = built_whole(config);
    assert_eq!(space.regions(), lab.regions());
    assert_eq!(space.mappings().unwrap().collect::<Vec<_>>(), lab.mappings().unwrap().collect::<Vec<_>>());
    assert_eq!(space.counters(), lab.counters());
    // The guard pages split large pages, and their unmapping was flushed.
    assert!(space.counters().splits >= 4 && space.counters().page_invalidations >= GUARD_PAGES.len() as u64);
    assert_eq!(machine.frames_in_use(), lab_machine.frames_in_use());
    assert_eq!(machine.counters().page_invalidations, lab_machine.counters().page_invalidations);
    assert_eq!(machine.counters().full_flushes, lab_machine.counters().full_flushes);
    assert_eq!(space.verify(), Ok(()));
    // Each guard page is a region of its own with no access, and unmapped.
    for &page in GUARD_PAGES {
        assert_eq!(space.regions().get(aspace::VirtAddr(page)), Some(&guard(page)));
    }
    space.switch_to();
    assert!(machine.read_u64_at(G + 7 * M2 + 5 * K4, Mode::Supervisor).is_err());
    assert!(machine.read_u64_at(G + 7 * M2 + 4 * K4, Mode::Supervisor).is_ok());
}

#[test]
fn a_map_built_whole_is_the_map_add_and_protect_build() {
    same_map(SimConfig::four_level());
}

#[test]
fn a_map_built_whole_is_the_same_with_5_level_paging() {
    same_map(SimConfig::five_level());
}

#[test]
fn a_map_built_whole_refuses_what_cannot_be_built_and_leaks_nothing() {
    let machine = SimMachine::new(SimConfig::four_level());
    let [low, text, ..] = identity_regions()[..] else { unreachable!("five regions") };
    let refusals = [
        (vec![text, low], AspaceError::Overlap { existing: text }),
        (vec![low, low], AspaceError::Overlap { existing: low }),
        (
            vec![Region::new(0, 0x800, K4, DATA)],
            AspaceError::Misaligned { kind: aspace::AddressKind::Physical, value: 0x800, required: K4 },
        ),
        (
            vec![Region::anonymous(0, K4, RW | Protection::ANON)],
            AspaceError::InvalidFlags {
                flags: (RW | Protection::ANON).bits(),
                reason: "a map built whole holds regions with their own physical memory, not anonymous or growing",
            },
        ),
    ];
    for (regions, error) in refusals {
        let built = PagingAspace::from_regions(machine.clone(), "bad", None, &regions);
        assert_eq!(built.err(), Some(error), "{regions:?}");
        assert_eq!(machine.frames_in_use(), 0);
    }
    // Out of frames part way: the tables built so far are freed.
    for failures in 0..3 {
        machine.fail_nth_allocation(Some(failures));
        let built = PagingAspace::from_regions(machine.clone(), "short", None, &[Region::new(G, 0, 4 * M2, DATA)]);
        assert_eq!(built.err(), Some(AspaceError::OutOfMemory), "failing allocation {failures}");
        assert_eq!(machine.frames_in_use(), 0);
    }
    machine.fail_nth_allocation(None);
}

#[test]
fn unmapping_a_part_refuses_what_protect_would_and_changes_nothing() {
    let (machine, mut space) = built_whole(SimConfig::four_level());
    let before = snapshot(&machine, &space);
    let page = 2 * G;
    let holding_page = *space.regions().overlapping(page, 1).next().unwrap();
    let refusals = [
        (
            Region::new(page, page, K4, RW | KERN),
            AspaceError::InvalidFlags {
                flags: (RW | KERN).bits(),
                reason: "an unmapped part has no READ (a readable page would be mapped)",
            },
        ),
        (Region::new(5 * G, 5 * G, K4, GUARD), AspaceError::NoSuchRegion { va: 5 * G }),
        (
            Region::new(page, page + K4, K4, GUARD),
            AspaceError::RegionMismatch { requested: Region::new(page, page + K4, K4, GUARD), existing: holding_page },
        ),
        (
            Region::new(M2 - K4, M2 - K4, 2 * K4, GUARD),
            AspaceError::RegionMismatch {
                requested: Region::new(M2 - K4, M2 - K4, 2 * K4, GUARD),
                existing: Region::new(0xa000, 0xa000, M2 - 0xa000, DATA),
            },
        ),
        (
            Region::new(page, page, K4, GUARD | Protection::READ_ONLY_BACKING),
            AspaceError::InvalidFlags {
                flags: (GUARD | Protection::READ_ONLY_BACKING).bits(),
                reason: "an unmapped part keeps its region's kind (anonymous, grow-down, grow-up, read-only backing)",
            },
        ),
        (
            Region::new(page, page, 100, GUARD),
            AspaceError::Misaligned { kind: aspace::AddressKind::Length, value: 100, required: K4 },
        ),
    ];
    for (part, error) in refusals {
        assert_eq!(space.unmap_part(part), Err(error), "{part}");
        assert_eq!(snapshot(&machine, &space), before, "{part}");
    }
    // A guard page unmapped again is left as it is.
    space.unmap_part(guard(GUARD_PAGES[2])).unwrap();
    assert_eq!(snapshot(&machine, &space), before);
}
