//! TLB behaviour: staleness until invalidation, CR3 loads, global entries,
//! PCIDs, INVPCID, several CPUs, and the shootdown of `Machine::invalidate`.

use super::*;
use crate::entry::GLOBAL;
use crate::{pattern, InvpcidKind, Mode, TlbCounters};
use aspace::{FaultAccess, PageFaultCode, VirtAddr};
use paging::TlbInvalidation;

const KERNEL: Mode = Mode::Supervisor;
const VA: u64 = 0x0000_0005_0060_7000;
const OLD_PA: u64 = 0x1_0000;
const NEW_PA: u64 = 0x2_0000;

/// Maps `VA` to `OLD_PA`, reads it (so the TLB caches it), then points the
/// entry at `NEW_PA` without invalidating anything.
fn cached_then_remapped(m: &SimMachine, space: SpaceId, leaf_flags: u64) -> PhysAddr {
    let leaf = map(m, space, VA, OLD_PA, PageSize::Size4K, WRITABLE | leaf_flags);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)));
    m.write_u64(leaf, NEW_PA | PRESENT | WRITABLE | leaf_flags);
    leaf
}

#[test]
fn a_changed_entry_is_ignored_until_invlpg() {
    let (m, space) = setup(SimConfig::four_level());
    cached_then_remapped(&m, space, 0);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)), "the stale translation is used");
    assert_eq!(m.cached_translation(0, VA + 8), Some(OLD_PA + 8));
    m.invlpg(VA + 0x123); // any address in the page
    assert_eq!(m.cached_translation(0, VA), None);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

#[test]
fn invlpg_drops_every_page_size_for_the_address() {
    let (m, space) = setup(SimConfig::four_level());
    map(&m, space, 0x4000_0000, 0x8000_0000, PageSize::Size1G, WRITABLE);
    m.read_u64_at(0x4000_0000, KERNEL).unwrap();
    assert_eq!(m.tlb_entries(0), 1);
    m.invlpg(0x7fff_f000); // another 4 KiB page of the same 1 GiB page
    assert_eq!(m.tlb_entries(0), 0);
}

#[test]
fn an_unmapped_page_stays_usable_until_invalidated_and_then_faults() {
    let (m, space) = setup(SimConfig::four_level());
    let leaf = map(&m, space, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    m.write_u64_at(VA, 1, KERNEL).unwrap();
    m.write_u64(leaf, 0);
    assert!(m.read_u64_at(VA, KERNEL).is_ok(), "still cached");
    m.invlpg(VA);
    assert_eq!(m.read_u64_at(VA, KERNEL).unwrap_err().code(), Some(PageFaultCode::empty()));
}

#[test]
fn a_write_through_a_clean_entry_walks_again() {
    let (m, space) = setup(SimConfig::four_level());
    let leaf = map(&m, space, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    m.read_u64_at(VA, KERNEL).unwrap(); // cached, D clear
    m.write_u64(leaf, 0); // unmapped without invalidation
    assert!(m.read_u64_at(VA, KERNEL).is_ok(), "reads still hit the stale entry");
    let walks = m.counters().walks;
    assert_eq!(m.write_u64_at(VA, 1, KERNEL).unwrap_err().code(), Some(PageFaultCode::WRITE));
    assert_eq!(m.counters().walks, walks + 1, "the write had to walk to set D");

    // A dirty entry, on the other hand, is written through without a walk.
    map(&m, space, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    m.write_u64_at(VA, 1, KERNEL).unwrap();
    let walks = m.counters().walks;
    m.write_u64_at(VA + 8, 2, KERNEL).unwrap();
    assert_eq!(m.counters().walks, walks);
}

#[test]
fn a_fault_from_a_stale_entry_drops_it_so_the_retry_succeeds() {
    let (m, space) = setup(SimConfig::four_level());
    let leaf = map(&m, space, VA, OLD_PA, PageSize::Size4K, 0);
    m.read_u64_at(VA, KERNEL).unwrap(); // cached read-only
    update(&m, leaf, WRITABLE, 0); // permission increase, no invalidation
    let fault = m.write_u64_at(VA, 7, KERNEL).unwrap_err();
    assert_eq!(fault.code(), Some(PageFaultCode::PRESENT | PageFaultCode::WRITE), "spurious fault");
    assert_eq!(m.write_u64_at(VA, 7, KERNEL), Ok(()), "the fault dropped the stale entry");
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(7));
}

#[test]
fn a_cr3_load_drops_non_global_entries_and_keeps_global_ones() {
    let (m, space) = setup(SimConfig::four_level());
    cached_then_remapped(&m, space, 0);
    let global_va = 0xffff_8000_0000_0000u64;
    let global_leaf = map(&m, space, global_va, 0x3_0000, PageSize::Size4K, GLOBAL);
    m.read_u64_at(global_va, KERNEL).unwrap();
    m.write_u64(global_leaf, 0x4_0000 | PRESENT | GLOBAL);

    m.load_root(space, false);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)), "non-global entry dropped");
    assert_eq!(m.read_u64_at(global_va, KERNEL), Ok(pattern(0x3_0000)), "global entry kept");
    m.invlpg(global_va);
    assert_eq!(m.read_u64_at(global_va, KERNEL), Ok(pattern(0x4_0000)), "invlpg drops global entries");
}

#[test]
fn global_bits_are_ignored_with_cr4_pge_off() {
    let (m, space) = setup(SimConfig::four_level());
    m.set_pge(false);
    cached_then_remapped(&m, space, GLOBAL);
    m.load_root(space, false);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

#[test]
fn changing_cr4_pge_flushes_global_entries() {
    let (m, space) = setup(SimConfig::four_level());
    cached_then_remapped(&m, space, GLOBAL);
    m.set_pge(false);
    assert_eq!(m.tlb_entries(0), 0);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

/// Two address spaces with PCIDs 1 and 2 on a PCID machine, both mapping
/// `VA` (to `OLD_PA` and 0x9000), both cached, space 1 loaded last.
fn two_pcid_spaces() -> (SimMachine, SpaceId, SpaceId) {
    let m = SimMachine::new(SimConfig::four_level().with_pcid(true));
    let a = new_space(&m, Some(1));
    let b = new_space(&m, Some(2));
    map(&m, a, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    map(&m, b, VA, 0x9000, PageSize::Size4K, WRITABLE);
    m.load_root(b, false);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(0x9000)));
    m.load_root(a, false);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)));
    (m, a, b)
}

#[test]
fn pcids_keep_each_space_s_entries_apart() {
    let (m, a, b) = two_pcid_spaces();
    assert_eq!(m.tlb_entries(0), 2, "both spaces' translations are held");
    // Switching back to space 2 with "keep" uses its cached entry.
    let hits = m.counters().tlb_hits;
    m.load_root(b, true);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(0x9000)));
    assert_eq!(m.counters().tlb_hits, hits + 1);
    // invlpg only concerns the current PCID.
    m.invlpg(VA);
    assert_eq!(m.tlb_entries(0), 1);
    m.load_root(a, true);
    assert_eq!(m.cached_translation(0, VA), Some(OLD_PA));
}

#[test]
fn a_cr3_load_with_pcid_keeps_entries_only_with_bit_63() {
    let (m, a, _) = two_pcid_spaces();
    let leaf = entry_addr(&m, a.root, VA, 1);
    m.write_u64(leaf, NEW_PA | PRESENT | WRITABLE);
    m.load_root(a, true);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)), "kept: still stale");
    m.load_root(a, false);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)), "not kept: dropped");
    assert_eq!(m.tlb_entries(0), 2, "space 2's entry survives a load of space 1");
}

#[test]
fn without_pcid_support_keep_is_ignored() {
    let m = SimMachine::new(SimConfig::four_level());
    let space = new_space(&m, Some(1));
    m.load_root(space, false);
    cached_then_remapped(&m, space, 0);
    m.load_root(space, true);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

#[test]
fn invpcid_types() {
    let (m, _, _) = two_pcid_spaces();
    let global_va = 0xffff_8000_0000_0000u64;
    let a_root = m.current_root();
    map(&m, SpaceId { root: a_root, pcid: Some(1) }, global_va, 0x3000, PageSize::Size4K, GLOBAL);
    m.read_u64_at(global_va, KERNEL).unwrap();
    assert_eq!(m.tlb_entries(0), 3);

    m.invpcid(InvpcidKind::Address { pcid: 2, va: VA });
    assert_eq!(m.tlb_entries(0), 2, "PCID 2's entry for VA");
    m.invpcid(InvpcidKind::Address { pcid: 1, va: global_va });
    assert_eq!(m.tlb_entries(0), 2, "type 0 leaves global translations alone");
    m.invpcid(InvpcidKind::SingleContext { pcid: 1 });
    assert_eq!(m.tlb_entries(0), 1, "type 1 drops PCID 1's non-global entries only");
    m.invpcid(InvpcidKind::AllNonGlobal);
    assert_eq!(m.tlb_entries(0), 1, "type 3 keeps global entries");
    m.invpcid(InvpcidKind::AllIncludingGlobal);
    assert_eq!(m.tlb_entries(0), 0);
    let counters = m.counters();
    assert_eq!((counters.page_invalidations, counters.full_flushes), (2, 3));
}

#[test]
fn cpus_have_independent_cr3s_control_bits_and_tlbs() {
    let m = SimMachine::new(SimConfig::four_level().with_cpus(2));
    let a = new_space(&m, None);
    let b = new_space(&m, None);
    map(&m, a, VA, OLD_PA, PageSize::Size4K, WRITABLE | crate::entry::USER);
    map(&m, b, VA, 0x9000, PageSize::Size4K, WRITABLE);
    m.select_cpu(0);
    m.load_root(a, false);
    m.select_cpu(1);
    m.load_root(b, false);
    assert_eq!(m.current_root(), b.root);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(0x9000)));
    m.select_cpu(0);
    assert_eq!(m.current_cpu(), 0);
    assert_eq!(m.current_root(), a.root);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)));

    // SMAP on CPU 0 only.
    m.set_smap(true);
    assert!(m.read_u64_at(VA, KERNEL).is_err());
    m.select_cpu(1);
    m.load_root(a, false);
    assert!(m.read_u64_at(VA, KERNEL).is_ok());

    // invlpg on CPU 1 leaves CPU 0's TLB alone.
    m.invlpg(VA);
    assert_eq!(m.tlb_entries(1), 0);
    m.select_cpu(0);
    m.set_smap(false);
    m.read_u64_at(VA, KERNEL).unwrap();
    assert_eq!(m.tlb_entries(0), 1);
}

#[test]
fn invalidate_shoots_down_every_cpu_running_the_space() {
    let m = SimMachine::new(SimConfig::four_level().with_cpus(3));
    let a = new_space(&m, None);
    let other = new_space(&m, None);
    let leaf = map(&m, a, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    map(&m, other, VA, 0x9000, PageSize::Size4K, WRITABLE);
    for (cpu, space) in [(0, a), (1, a), (2, other)] {
        m.select_cpu(cpu);
        m.load_root(space, false);
        m.read_u64_at(VA, KERNEL).unwrap();
    }
    m.write_u64(leaf, NEW_PA | PRESENT | WRITABLE);
    m.invalidate(a, TlbInvalidation::Pages(&[VirtAddr(VA)]));
    assert_eq!((m.tlb_entries(0), m.tlb_entries(1), m.tlb_entries(2)), (0, 0, 1));
    for cpu in [0, 1] {
        m.select_cpu(cpu);
        assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
    }
    m.invalidate(a, TlbInvalidation::All);
    assert_eq!((m.tlb_entries(0), m.tlb_entries(1), m.tlb_entries(2)), (0, 0, 1));
    let counters = m.counters();
    assert_eq!((counters.page_invalidations, counters.full_flushes, counters.cr3_loads), (1, 1, 3));
}

#[test]
fn invalidate_with_pcids_reaches_entries_of_spaces_not_loaded() {
    let (m, a, b) = two_pcid_spaces();
    assert_eq!(m.current_root(), a.root);
    m.invalidate(b, TlbInvalidation::All);
    assert_eq!(m.tlb_entries(0), 1, "space 2's entry dropped although space 1 is loaded");
    m.invalidate(a, TlbInvalidation::Pages(&[VirtAddr(VA)]));
    assert_eq!(m.tlb_entries(0), 0);
}

#[test]
fn invalidate_all_keeps_global_entries_and_pages_drops_them() {
    let (m, space) = setup(SimConfig::four_level());
    cached_then_remapped(&m, space, GLOBAL);
    m.invalidate(space, TlbInvalidation::All);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)), "like a CR3 reload");
    m.invalidate(space, TlbInvalidation::Pages(&[VirtAddr(VA)]));
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

#[test]
fn a_machine_with_invalidation_disabled_keeps_stale_entries() {
    let (m, space) = setup(SimConfig::four_level());
    cached_then_remapped(&m, space, 0);
    m.set_invalidation_enabled(false);
    m.invalidate(space, TlbInvalidation::Pages(&[VirtAddr(VA)]));
    m.invalidate(space, TlbInvalidation::All);
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(OLD_PA)));
    m.set_invalidation_enabled(true);
    m.invalidate(space, TlbInvalidation::Pages(&[VirtAddr(VA)]));
    assert_eq!(m.read_u64_at(VA, KERNEL), Ok(pattern(NEW_PA)));
}

#[test]
fn counters_count_walks_and_hits() {
    let (m, space) = setup(SimConfig::four_level());
    map(&m, space, VA, OLD_PA, PageSize::Size4K, WRITABLE);
    for _ in 0..3 {
        m.read_u64_at(VA, KERNEL).unwrap();
    }
    m.translate(VA + 8, FaultAccess::Execute, KERNEL).unwrap();
    let expected = TlbCounters { page_invalidations: 0, full_flushes: 0, cr3_loads: 1, walks: 1, tlb_hits: 3 };
    assert_eq!(m.counters(), expected);
}

#[test]
fn two_translations_for_one_address_are_a_violation() {
    let (m, space) = setup(SimConfig::four_level());
    m.set_strict(false);
    map(&m, space, 0x20_0000, OLD_PA, PageSize::Size4K, WRITABLE);
    m.read_u64_at(0x20_0000, KERNEL).unwrap();
    // The 4 KiB page becomes part of a 2 MiB page, without invalidation,
    // and another address of the 2 MiB page is touched.
    let pde = entry_addr(&m, space.root, 0x20_0000, 2);
    m.write_u64(pde, 0x4000_0000 | PRESENT | WRITABLE | crate::entry::PAGE_SIZE);
    m.read_u64_at(0x30_0000, KERNEL).unwrap();
    assert!(m.violations().is_empty());
    m.read_u64_at(0x20_0000, KERNEL).unwrap();
    let violations = m.violations();
    assert_eq!(violations.len(), 1);
    assert!(violations[0].contains("two translations for VA 0x200000"), "{violations:?}");
}

#[test]
fn the_walk_of_a_write_through_a_clean_entry_replaces_that_entry() {
    let (m, space) = setup(SimConfig::four_level());
    m.set_strict(false);
    map(&m, space, 0x20_0000, OLD_PA, PageSize::Size4K, WRITABLE);
    m.read_u64_at(0x20_0000, KERNEL).unwrap(); // a clean 4 KiB entry
    let pde = entry_addr(&m, space.root, 0x20_0000, 2);
    m.write_u64(pde, 0x4000_0000 | PRESENT | WRITABLE | crate::entry::PAGE_SIZE);
    // The write must walk (to set D), finds the 2 MiB page, and the clean
    // 4 KiB entry it walked for is gone: only one translation remains.
    m.write_u64_at(0x20_0000, 1, KERNEL).unwrap();
    assert_eq!(m.tlb_entries(0), 1);
    assert_eq!(m.cached_translation(0, 0x20_0000), Some(0x4000_0000));
    m.read_u64_at(0x20_0000, KERNEL).unwrap();
    assert_eq!(m.violations(), Vec::<String>::new());
}
