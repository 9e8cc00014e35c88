//! The frame pool, failure injection, and the rules the code under test is
//! held to: no frame freed while a TLB or CR3 still uses it, no double
//! frees, no use of free frames, no physical access beyond MAXPHYADDR.

use super::*;
use crate::{Mode, DEFAULT_POOL_START};
use paging::TlbInvalidation;

const KERNEL: Mode = Mode::Supervisor;
const VA: u64 = 0x0000_0006_0000_3000;

#[test]
fn frames_come_from_the_pool_zeroed_and_are_counted() {
    let m = SimMachine::new(SimConfig::four_level());
    assert_eq!(m.frames_in_use(), 0);
    let a = m.alloc_frame().unwrap();
    let b = m.alloc_frame().unwrap();
    assert!(a.0 >= DEFAULT_POOL_START && a.is_aligned(4096) && a != b);
    assert_eq!(m.frames_in_use(), 2);
    m.write_u64(PhysAddr(a.0 + 8), 0xdead);
    m.free_frame(a);
    assert_eq!(m.frames_in_use(), 1);
    let again = m.alloc_frame().unwrap();
    assert_eq!(again, a, "the freed frame is reused");
    assert_eq!(m.read_u64(PhysAddr(again.0 + 8)), 0, "and handed out zeroed");
    assert_eq!(m.allocations(), 3);
}

#[test]
fn the_chosen_allocation_fails_once() {
    let m = SimMachine::new(SimConfig::four_level());
    m.alloc_frame().unwrap();
    m.fail_nth_allocation(Some(1));
    assert!(m.alloc_frame().is_some());
    assert!(m.alloc_frame().is_none(), "the second call from the injection fails");
    assert!(m.alloc_frame().is_some(), "only once");
    assert_eq!(m.allocations(), 4, "failed calls count too");
    assert_eq!(m.frames_in_use(), 3);
    m.fail_nth_allocation(Some(0));
    assert!(m.alloc_frame().is_none());
    m.fail_nth_allocation(Some(0));
    m.fail_nth_allocation(None);
    assert!(m.alloc_frame().is_some());
}

#[test]
fn an_exhausted_pool_returns_none() {
    let mut config = SimConfig::four_level();
    config.frame_pool = 0x10_0000..0x10_2000;
    let m = SimMachine::new(config);
    assert!(m.alloc_frame().is_some() && m.alloc_frame().is_some());
    assert_eq!(m.alloc_frame(), None);
}

/// A lenient machine with `VA` mapped to a pool frame and cached.
fn mapped_to_pool_frame() -> (SimMachine, SpaceId, PhysAddr, PhysAddr) {
    let (m, space) = setup(SimConfig::four_level());
    m.set_strict(false);
    let frame = m.alloc_frame().unwrap();
    let leaf = map(&m, space, VA, frame.0, PageSize::Size4K, WRITABLE);
    m.write_u64_at(VA, 42, KERNEL).unwrap();
    (m, space, frame, leaf)
}

#[test]
fn freeing_a_frame_a_tlb_still_maps_to_is_a_violation() {
    let (m, space, frame, leaf) = mapped_to_pool_frame();
    m.write_u64(leaf, 0); // unmapped ...
    m.free_frame(frame); // ... but not invalidated
    let violations = m.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    let expected = format!("frame {:#x} freed while CPU 0's TLB still maps VA {VA:#x} (PCID 0) to it", frame.0);
    assert_eq!(violations[0], expected);

    // The right order: unmap, invalidate, free.
    let (m, _, frame, leaf) = mapped_to_pool_frame();
    m.write_u64(leaf, 0);
    m.invalidate(space_of(&m), TlbInvalidation::Pages(&[aspace::VirtAddr(VA)]));
    m.free_frame(frame);
    assert_eq!(m.violations(), Vec::<String>::new());
    let _ = space;
}

/// The space loaded on the selected CPU (no PCID).
fn space_of(m: &SimMachine) -> SpaceId {
    SpaceId { root: m.current_root(), pcid: None }
}

#[test]
fn freeing_a_frame_inside_a_cached_large_page_is_a_violation() {
    let (m, space) = setup(SimConfig::four_level());
    m.set_strict(false);
    let frames: Vec<PhysAddr> = (0..600).map(|_| m.alloc_frame().unwrap()).collect();
    // A 2 MiB page over pool memory that holds the frames above.
    let big = frames[0].0 & !0x1f_ffff;
    let inside = *frames.iter().find(|f| f.0 & !0x1f_ffff == big && f.0 != big).unwrap();
    map(&m, space, 0x4000_0000, big, PageSize::Size2M, WRITABLE);
    m.read_u64_at(0x4000_0000 + (inside.0 - big), KERNEL).unwrap();
    m.free_frame(inside);
    assert_eq!(m.violations().len(), 1);
    assert!(m.violations()[0].contains("still maps VA 0x40000000"), "{:?}", m.violations());
}

#[test]
fn freeing_a_page_table_a_cached_translation_was_walked_through_is_a_violation() {
    let (m, space, _, _) = mapped_to_pool_frame();
    let pde = entry_addr(&m, space.root, VA, 2);
    let page_table = PhysAddr(m.read_u64(pde) & 0x000f_ffff_ffff_f000);
    m.write_u64(pde, 0); // the table is unlinked ...
    m.free_frame(page_table); // ... and freed, but VA's translation is still cached
    let violations = m.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with(&format!("frame {:#x} freed while CPU 0's TLB still maps VA {VA:#x}", page_table.0))
    );
    assert!(violations[0].contains("through it"));
}

#[test]
#[should_panic(expected = "freed while CPU 0's TLB still maps VA")]
fn a_violation_panics_in_strict_mode() {
    let (m, space) = setup(SimConfig::four_level());
    let frame = m.alloc_frame().unwrap();
    map(&m, space, VA, frame.0, PageSize::Size4K, WRITABLE);
    m.read_u64_at(VA, KERNEL).unwrap();
    m.free_frame(frame);
}

#[test]
fn freeing_a_frame_some_tlb_of_another_cpu_holds_is_a_violation() {
    let m = SimMachine::new(SimConfig::four_level().with_cpus(2));
    m.set_strict(false);
    let space = new_space(&m, None);
    let frame = m.alloc_frame().unwrap();
    let leaf = map(&m, space, VA, frame.0, PageSize::Size4K, WRITABLE);
    m.select_cpu(1);
    m.load_root(space, false);
    m.read_u64_at(VA, KERNEL).unwrap();
    m.load_root(new_space(&m, None), false); // CPU 1 switches away: its entry is dropped
    m.load_root(space, false);
    m.read_u64_at(VA, KERNEL).unwrap();
    m.select_cpu(0);
    m.write_u64(leaf, 0);
    m.invlpg(VA); // only CPU 0's TLB
    m.free_frame(frame);
    assert_eq!(m.violations().len(), 1);
    assert!(m.violations()[0].contains("CPU 1's TLB"), "{:?}", m.violations());
}

#[test]
fn freeing_a_root_still_in_cr3_is_a_violation() {
    let (m, space) = setup(SimConfig::four_level());
    m.set_strict(false);
    m.free_frame(space.root);
    assert_eq!(m.violations(), vec![format!("frame {:#x} freed while CPU 0's CR3 still points at it", space.root.0)]);
}

#[test]
fn double_frees_and_foreign_frames_are_violations() {
    let m = SimMachine::new(SimConfig::four_level());
    m.set_strict(false);
    let frame = m.alloc_frame().unwrap();
    m.free_frame(frame);
    m.free_frame(frame);
    m.free_frame(PhysAddr(0x1000));
    m.free_frame(PhysAddr(frame.0 + 0x800));
    let violations = m.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("not allocated"));
    assert!(violations[1].contains("not a 4 KiB frame of the pool"));
    assert!(violations[2].contains("not a 4 KiB frame of the pool"));
    assert_eq!(m.frames_in_use(), 0);
}

#[test]
fn touching_a_free_frame_is_a_violation() {
    let m = SimMachine::new(SimConfig::four_level());
    m.set_strict(false);
    let frame = m.alloc_frame().unwrap();
    m.write_u64(frame, 1);
    assert!(m.violations().is_empty());
    m.free_frame(frame);
    m.read_u64(frame);
    m.write_u64(PhysAddr(frame.0 + 8), 1);
    m.read_u64(PhysAddr(frame.0 + 0x10_0000)); // never handed out
    let violations = m.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations.iter().all(|v| v.contains("free frame")));
}

#[test]
fn walking_through_a_freed_table_is_a_violation() {
    let (m, space, _, _) = mapped_to_pool_frame();
    let pde = entry_addr(&m, space.root, VA, 2);
    let page_table = PhysAddr(m.read_u64(pde) & 0x000f_ffff_ffff_f000);
    m.invlpg(VA);
    m.free_frame(page_table); // freed, but the PDE still points at it
    assert!(m.violations().is_empty());
    let _ = m.read_u64_at(VA, KERNEL);
    let violations = m.violations();
    assert!(!violations.is_empty());
    assert!(violations[0].contains("through a page table at PA") && violations[0].contains("free frame"));
}

#[test]
fn physical_accesses_beyond_maxphyaddr_are_violations() {
    let m = SimMachine::new(SimConfig::four_level());
    m.set_strict(false);
    m.read_u64(PhysAddr((1 << 46) - 8));
    assert!(m.violations().is_empty());
    m.read_u64(PhysAddr(1 << 46));
    m.write_u64(PhysAddr(0x1004), 0);
    let violations = m.violations();
    assert_eq!(violations.len(), 2);
    assert!(violations[0].contains("MAXPHYADDR"));
    assert!(violations[1].contains("not 8-byte aligned"));
}

#[test]
fn loading_a_bad_root_is_a_violation() {
    let m = SimMachine::new(SimConfig::four_level());
    m.set_strict(false);
    m.load_root(SpaceId { root: PhysAddr(0x1800), pcid: None }, false);
    m.load_root(SpaceId { root: PhysAddr(0x1000), pcid: Some(4096) }, false);
    assert_eq!(m.violations().len(), 2);
}

#[test]
fn the_machine_is_a_shared_handle_usable_from_other_threads() {
    let (m, space) = setup(SimConfig::four_level());
    let frame = m.alloc_frame().unwrap();
    map(&m, space, VA, frame.0, PageSize::Size4K, WRITABLE);
    let other = m.clone();
    std::thread::spawn(move || other.write_u64_at(VA, 99, KERNEL).unwrap()).join().unwrap();
    assert_eq!(m.read_u64(frame), 99);
}
