//! Which page sizes a mapping uses, walks, and 5-level paging.

mod common;

use aspace::{AddressSpace, Region, VirtAddr};
use common::*;
use mmu_model::{pattern, Mode, SimConfig};
use paging::{Level, PageSize, WalkOutcome};
use PageSize::{Size1G, Size2M, Size4K};

/// Reads a few words of `[va, va+len)` through the MMU and checks each
/// shows the physical memory the region says.
fn check_reads(machine: &mmu_model::SimMachine, va: u64, pa: u64, len: u64) {
    for offset in [0, 8, K4, M2 - 8, M2, len / 2, len - K4, len - 8] {
        let got = machine.read_u64_at(va + offset, Mode::Supervisor).expect("mapped");
        assert_eq!(got, pattern(pa + offset), "word at {:#x}", va + offset);
    }
}

#[test]
fn four_gib_at_1g_aligned_addresses_uses_four_1g_pages() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, 4 * G, 4 * G, RWXK | EAGER)).unwrap();
    assert_eq!(shape(&space), vec![(Size1G, 4)]);
    assert_eq!(space.counters().pages_mapped, [0, 0, 4]);
    assert_eq!(space.counters().table_frames, 2, "root and one PDPT");
    assert_eq!(space.verify(), Ok(()));
    space.switch_to();
    check_reads(&machine, G, 4 * G, 4 * G);
}

#[test]
fn start_4k_past_1g_climbs_up_then_down_the_sizes() {
    // VA and PA both 4 KiB past a 1 GiB boundary (not the same boundary),
    // ending 4 KiB before another.
    let (va, pa, len) = (5 * G + K4, G + K4, 3 * G - 2 * K4);
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(va, pa, len, RW | KERN | EAGER)).unwrap();
    assert_eq!(shape(&space), vec![(Size4K, 511), (Size2M, 511), (Size1G, 1), (Size2M, 511), (Size4K, 511)]);
    assert_eq!(space.counters().pages_mapped, [1022, 1022, 1]);
    let runs: Vec<_> = space.mappings().unwrap().collect();
    assert_eq!(runs[0].start, VirtAddr(va));
    assert_eq!(runs[1].start, VirtAddr(5 * G + M2));
    assert_eq!(runs[2].start, VirtAddr(6 * G));
    assert_eq!(runs[2].pa.0, 2 * G);
    assert_eq!(runs[4].last, VirtAddr(va + len - 1));
    assert_eq!(space.verify(), Ok(()));
    space.switch_to();
    check_reads(&machine, va, pa, len);
}

#[test]
fn congruent_only_modulo_4k_gives_4k_pages_throughout() {
    let (machine, mut space) = setup(SimConfig::four_level());
    space.add_region(Region::new(G, G + K4, 4 * M2, RW | KERN | EAGER)).unwrap();
    assert_eq!(shape(&space), vec![(Size4K, 2048)]);
    // Congruent modulo 2 MiB but not 1 GiB: 2 MiB pages, never 1 GiB.
    space.add_region(Region::new(4 * G, 8 * G + M2, G + 4 * M2, RW | KERN | EAGER)).unwrap();
    assert_eq!(shape(&space), vec![(Size4K, 2048), (Size2M, 516)]);
    assert_eq!(space.verify(), Ok(()));
    space.switch_to();
    check_reads(&machine, G, G + K4, 4 * M2);
    check_reads(&machine, 4 * G, 8 * G + M2, G + 4 * M2);
}

#[test]
fn without_1g_pages_only_2m_pages() {
    let mut config = SimConfig::four_level();
    config.features.huge_1g = false;
    let (machine, mut space) = setup(config);
    space.add_region(Region::new(0, 0, 4 * G, RWXK | EAGER)).unwrap();
    assert_eq!(shape(&space), vec![(Size2M, 2048)]);
    // A lazy fault picks 2 MiB as the largest too.
    space.add_region(Region::new(8 * G, 0, G, RWXK)).unwrap();
    space.switch_to();
    assert_eq!(read(&mut space, &machine, 8 * G + 0x1234_5678), Ok(pattern(0x1234_5678)));
    assert_eq!(space.counters().pages_mapped, [0, 2049, 0]);
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn lazy_faults_map_the_largest_page_inside_the_region() {
    let (machine, mut space) = setup(SimConfig::four_level());
    // NK's lazy region: the upper half onto physical 0.
    let lazy = 0xffff_8000_0000_0000;
    space.add_region(Region::new(lazy, 0, 4 * G, RWXK)).unwrap();
    // A region ending 4 KiB into a 2 MiB page: its last page must be 4 KiB.
    space.add_region(Region::new(8 * G, 8 * G, M2 + K4, RWXK)).unwrap();
    space.switch_to();
    assert_eq!(read(&mut space, &machine, lazy + 3 * G + 8), Ok(pattern(3 * G + 8)));
    assert_eq!(read(&mut space, &machine, 8 * G + M2), Ok(pattern(8 * G + M2)));
    assert_eq!(read(&mut space, &machine, 8 * G + 0x1000), Ok(pattern(8 * G + 0x1000)));
    assert_eq!(space.counters().pages_mapped, [1, 1, 1]);
    assert_eq!(space.counters().faults_handled, 3);
    // Already mapped: no further fault.
    assert_eq!(read(&mut space, &machine, lazy + 3 * G + 16), Ok(pattern(3 * G + 16)));
    assert_eq!(space.counters().faults_handled, 3);
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn walk_reports_every_step() {
    let (machine, mut space) = setup(SimConfig::four_level());
    let empty = space.walk(VirtAddr(0x1000)).unwrap();
    assert_eq!(empty.outcome, WalkOutcome::NotPresent { level: Level::Pml4 });
    assert_eq!(empty.steps().len(), 1);

    space.add_region(Region::new(G, 3 * G, M2, RW | KERN | EAGER)).unwrap();
    space.add_region(Region::new(2 * G, 0x5000, K4, R | EAGER)).unwrap();
    let big = space.walk(VirtAddr(G + 0x1234)).unwrap();
    let levels: Vec<_> = big.steps().iter().map(|s| s.level).collect();
    assert_eq!(levels, [Level::Pml4, Level::Pdpt, Level::Pd]);
    let t = big.translation().unwrap();
    assert_eq!((t.pa.0, t.page_size, t.writable, t.user, t.executable), (3 * G + 0x1234, Size2M, true, false, false));
    let small = space.walk(VirtAddr(2 * G + 8)).unwrap();
    assert_eq!(small.steps().len(), 4);
    let t = small.translation().unwrap();
    assert_eq!((t.pa.0, t.page_size, t.writable, t.user), (0x5008, Size4K, false, true));
    let text = format!("{small}");
    assert!(text.contains("PML4[0]") && text.contains("PT[0]") && text.contains("=> PA 0x5008"), "{text}");
    let missing = space.walk(VirtAddr(G + M2)).unwrap();
    assert_eq!(missing.outcome, WalkOutcome::NotPresent { level: Level::Pd });
    assert!(format!("{missing}").ends_with("not present at PD"));
    assert_eq!(space.walk(VirtAddr(1 << 47)).unwrap().outcome, WalkOutcome::NonCanonical);

    // A reserved bit (bit 13 of a 2 MiB leaf) stops the walk.
    let pd_step = big.steps()[2];
    let entry_addr = machine.read_u64(pd_step.slot());
    machine.write_u64(pd_step.slot(), entry_addr | 1 << 13);
    assert_eq!(space.walk(VirtAddr(G)).unwrap().outcome, WalkOutcome::ReservedBits { level: Level::Pd, bits: 1 << 13 });
    assert!(space.verify().is_err());
}

#[test]
fn five_level_paging_maps_57_bit_addresses() {
    let (machine, mut space) = setup(SimConfig::five_level());
    let high = 0x00ff_0000_0000_0000; // needs 57 bits
    space.add_region(Region::new(high, G, 2 * G, RWXK | EAGER)).unwrap();
    let top = 0xff00_0000_0000_0000; // upper half with LA57
    space.add_region(Region::new(top, 0x40_0000, 4 * M2, RWXK)).unwrap();
    assert_eq!(shape(&space), vec![(Size1G, 2)]);
    let walk = space.walk(VirtAddr(high + 8)).unwrap();
    let levels: Vec<_> = walk.steps().iter().map(|s| s.level).collect();
    assert_eq!(levels, [Level::Pml5, Level::Pml4, Level::Pdpt]);
    space.switch_to();
    check_reads(&machine, high, G, 2 * G);
    assert_eq!(read(&mut space, &machine, top + M2 + 16), Ok(pattern(0x40_0000 + M2 + 16)));
    assert_eq!(space.counters().pages_mapped, [0, 1, 2]);
    // Protecting a 4 KiB page in the middle of a 1 GiB page splits twice.
    space.protect_region(Region::new(high + G / 2, G + G / 2, K4, RWXK), R | KERN).unwrap();
    assert_eq!(space.counters().splits, 2);
    assert_eq!(space.verify(), Ok(()));
    check_reads(&machine, high, G, 2 * G);
    assert!(machine.write_u64_at(high + G / 2, 1, Mode::Supervisor).is_err());
    let pieces: Vec<Region> = space.regions().iter().copied().collect();
    assert_eq!(pieces.len(), 4, "the protected page splits its region in three");
    for piece in pieces {
        space.remove_region(piece).unwrap();
    }
    assert_eq!(space.counters().table_frames, 1, "only the PML5 is left");
}
