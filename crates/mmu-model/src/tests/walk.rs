//! The walk: page sizes, levels, reserved bits, not-present faults,
//! accessed/dirty flags and pattern memory.

use super::*;
use crate::entry::{ACCESSED, DIRTY, NO_EXECUTE};
use crate::{pattern, AccessError, Mode, PageFault};
use aspace::{FaultAccess, PageFaultCode};

const KERNEL: Mode = Mode::Supervisor;

#[test]
fn each_page_size_translates_every_offset_of_its_page() {
    let (m, space) = setup(SimConfig::four_level());
    let cases = [
        (PageSize::Size4K, 0x0000_1234_5678_9000u64, 0x0000_0000_0abc_d000u64),
        (PageSize::Size2M, 0x0000_0040_0020_0000, 0x0000_0000_1240_0000),
        (PageSize::Size1G, 0x0000_7f80_4000_0000, 0x0000_0012_c000_0000),
    ];
    for (size, va, pa) in cases {
        map(&m, space, va, pa, size, WRITABLE);
        for offset in [0, 8, 0xff8, size.bytes() / 2, size.bytes() - 8] {
            assert_eq!(m.translate(va + offset, FaultAccess::Read, KERNEL), Ok(pa + offset), "{size:?} +{offset:#x}");
        }
        // Just past the page is not mapped.
        assert!(m.translate(va + size.bytes(), FaultAccess::Read, KERNEL).is_err());
    }
}

#[test]
fn five_level_paging_translates_57_bit_addresses() {
    let (m, space) = setup(SimConfig::five_level());
    let va = 0x00ff_8000_1234_5000u64; // above 2^48: needs the PML5 index
    let pa = 0x000f_0000_0000_1000u64; // above 2^46: fine with MAXPHYADDR 52
    map(&m, space, va, pa, PageSize::Size4K, WRITABLE);
    assert_eq!(m.translate(va + 0x18, FaultAccess::Write, KERNEL), Ok(pa + 0x18));
    // The same address without its PML5 index is another, unmapped, one.
    let low = va & ((1 << 48) - 1);
    assert_eq!(
        m.translate(low, FaultAccess::Read, KERNEL),
        Err(PageFault { addr: low, code: PageFaultCode::empty() }.into())
    );
    // Canonical under LA57, not under 4-level paging.
    let (m4, _) = setup(SimConfig::four_level());
    assert_eq!(m4.translate(va, FaultAccess::Read, KERNEL), Err(AccessError::NonCanonical));
}

#[test]
fn non_canonical_addresses_are_not_page_faults() {
    let (m, space) = setup(SimConfig::four_level());
    map(&m, space, 0x0000_7fff_ffff_f000, 0x5000, PageSize::Size4K, 0);
    assert!(m.read_u64_at(0x0000_7fff_ffff_f000, KERNEL).is_ok());
    for va in [0x0000_8000_0000_0000u64, 0xffff_7fff_ffff_f000, 0x8000_0000_0000_0000] {
        assert_eq!(m.read_u64_at(va, KERNEL), Err(AccessError::NonCanonical));
        assert_eq!(m.fetch_at(va, Mode::User), Err(AccessError::NonCanonical));
    }
    assert_eq!(m.counters().walks, 1, "a non-canonical access never walks");
}

#[test]
fn not_present_at_each_level_faults_with_p_clear() {
    for level in 1..=4u8 {
        let (m, space) = setup(SimConfig::four_level());
        let va = 0x0000_0001_0020_3000;
        map(&m, space, va, 0x7000, PageSize::Size4K, WRITABLE | USER);
        assert!(m.translate(va, FaultAccess::Read, KERNEL).is_ok());
        update(&m, entry_addr(&m, space.root, va, level), 0, PRESENT);
        m.invlpg(va);
        let code = |access, mode| m.translate(va, access, mode).unwrap_err().code().unwrap();
        assert_eq!(code(FaultAccess::Read, KERNEL), PageFaultCode::empty(), "level {level}");
        assert_eq!(code(FaultAccess::Write, KERNEL), PageFaultCode::WRITE);
        assert_eq!(code(FaultAccess::Read, Mode::User), PageFaultCode::USER);
        assert_eq!(code(FaultAccess::Execute, Mode::User), PageFaultCode::USER | PageFaultCode::FETCH);
    }
}

#[test]
fn fault_address_is_the_faulting_address_not_the_page() {
    let (m, _) = setup(SimConfig::four_level());
    let fault = m.write_u64_at(0x4000_1238, 1, KERNEL).unwrap_err().page_fault().unwrap();
    assert_eq!(fault, PageFault { addr: 0x4000_1238, code: PageFaultCode::WRITE });
}

/// Maps `va` with the leaf entry `leaf` at `level` and returns the error
/// code of a supervisor read.
fn read_fault_with(config: SimConfig, level: u8, leaf: u64) -> Option<PageFaultCode> {
    let (m, space) = setup(config);
    let va = 0x0000_0040_0000_0000;
    let entry = entry_addr(&m, space.root, va, level);
    m.write_u64(entry, leaf);
    m.translate(va, FaultAccess::Read, KERNEL).err().map(|error| error.code().unwrap())
}

#[test]
fn reserved_bits_fault_with_p_and_rsvd() {
    let rsvd = Some(PageFaultCode::PRESENT | PageFaultCode::RESERVED);
    let four = SimConfig::four_level;
    // Baselines: the same entries without the reserved bit translate.
    assert_eq!(read_fault_with(four(), 1, 0x3fff_ffff_f000 | PRESENT), None);
    assert_eq!(read_fault_with(four(), 2, 0x4000_0000 | 1 << 12 | PAGE_SIZE | PRESENT), None, "PAT bit of a 2M leaf");
    assert_eq!(read_fault_with(four(), 3, 0x4000_0000 | 1 << 12 | PAGE_SIZE | PRESENT), None, "PAT bit of a 1G leaf");
    assert_eq!(read_fault_with(four(), 1, 0x5000 | NO_EXECUTE | PRESENT), None, "XD with NXE on");

    // A physical-address bit at or above MAXPHYADDR (46), in a leaf and in a table.
    assert_eq!(read_fault_with(four(), 1, 1 << 46 | 0x5000 | PRESENT), rsvd);
    assert_eq!(read_fault_with(four(), 2, 1 << 51 | 0x5000 | PRESENT), rsvd);
    // ... but with MAXPHYADDR 52 the same bits are address bits.
    assert_eq!(read_fault_with(SimConfig::five_level(), 1, 1 << 46 | 0x5000 | PRESENT), None);
    // Bits 20:13 of a 2 MiB leaf, bits 29:13 of a 1 GiB leaf.
    assert_eq!(read_fault_with(four(), 2, 0x4000_0000 | 1 << 13 | PAGE_SIZE | PRESENT), rsvd);
    assert_eq!(read_fault_with(four(), 2, 0x4000_0000 | 1 << 20 | PAGE_SIZE | PRESENT), rsvd);
    assert_eq!(read_fault_with(four(), 3, 0x4000_0000 | 1 << 29 | PAGE_SIZE | PRESENT), rsvd);
    assert_eq!(read_fault_with(four(), 3, 0x4000_0000 | 1 << 21 | PAGE_SIZE | PRESENT), rsvd);
    // PS in a PML4E; PS in a PDPTE without 1 GiB pages.
    assert_eq!(read_fault_with(four(), 4, 0x4000_0000 | PAGE_SIZE | PRESENT), rsvd);
    let mut no_1g = four();
    no_1g.features.huge_1g = false;
    assert_eq!(read_fault_with(no_1g, 3, 0x4000_0000 | PAGE_SIZE | PRESENT), rsvd);
    // PS in a PML5E.
    assert_eq!(read_fault_with(SimConfig::five_level(), 5, 0x4000_0000 | PAGE_SIZE | PRESENT), rsvd);
    // XD is reserved with EFER.NXE off.
    let mut no_nx = four();
    no_nx.features.nx = false;
    assert_eq!(read_fault_with(no_nx, 1, 0x5000 | NO_EXECUTE | PRESENT), rsvd);
    // A reserved bit in a not-present entry is ignored: it is just not present.
    assert_eq!(read_fault_with(four(), 1, 1 << 46), Some(PageFaultCode::empty()));
}

#[test]
fn reserved_bit_fault_code_carries_the_access_kind() {
    let (m, space) = setup(SimConfig::four_level());
    let va = 0x7000_0000;
    map(&m, space, va, 1 << 50, PageSize::Size4K, WRITABLE | USER);
    let code = m.fetch_at(va, Mode::User).unwrap_err().code().unwrap();
    let expected = PageFaultCode::PRESENT | PageFaultCode::RESERVED | PageFaultCode::USER | PageFaultCode::FETCH;
    assert_eq!(code, expected);
    let code = m.write_u64_at(va, 0, KERNEL).unwrap_err().code().unwrap();
    assert_eq!(code, PageFaultCode::PRESENT | PageFaultCode::RESERVED | PageFaultCode::WRITE);
}

#[test]
fn accessed_flags_on_every_level_and_dirty_on_the_leaf_for_writes() {
    let (m, space) = setup(SimConfig::four_level());
    let va = 0x0000_0002_0040_1000;
    let leaf = map(&m, space, va, 0x9000, PageSize::Size4K, WRITABLE);
    let entries: Vec<PhysAddr> = (1..=4).map(|level| entry_addr(&m, space.root, va, level)).collect();
    assert!(entries.iter().all(|&e| m.read_u64(e) & (ACCESSED | DIRTY) == 0));

    m.read_u64_at(va, KERNEL).unwrap();
    assert!(entries.iter().all(|&e| m.read_u64(e) & ACCESSED != 0), "A set at every level");
    assert_eq!(m.read_u64(leaf) & DIRTY, 0, "a read leaves D clear");

    m.write_u64_at(va, 5, KERNEL).unwrap();
    assert_ne!(m.read_u64(leaf) & DIRTY, 0, "a write sets D on the leaf");
    assert!(entries[1..].iter().all(|&e| m.read_u64(e) & DIRTY == 0), "D only on the leaf");
}

#[test]
fn dirty_flag_is_set_on_large_page_leaves_and_not_on_faulting_walks() {
    let (m, space) = setup(SimConfig::four_level());
    let big = map(&m, space, 0x4000_0000, 0x8000_0000, PageSize::Size1G, WRITABLE);
    m.write_u64_at(0x4000_0008, 1, KERNEL).unwrap();
    assert_eq!(m.read_u64(big) & (ACCESSED | DIRTY), ACCESSED | DIRTY);

    let read_only = map(&m, space, 0x20_0000, 0x40_0000, PageSize::Size2M, 0);
    m.set_cr0_wp(true);
    assert!(m.write_u64_at(0x20_0000, 1, KERNEL).is_err());
    assert_eq!(m.read_u64(read_only) & (ACCESSED | DIRTY), 0, "a faulting walk sets no flag");
}

#[test]
fn a_write_through_the_mmu_lands_in_physical_memory() {
    let (m, space) = setup(SimConfig::four_level());
    let frame = m.alloc_frame().unwrap();
    map(&m, space, 0x1000, frame.0, PageSize::Size4K, WRITABLE);
    assert_eq!(m.read_u64_at(0x1010, KERNEL), Ok(0), "an allocated frame reads as zeros");
    m.write_u64_at(0x1010, 0xfeed, KERNEL).unwrap();
    assert_eq!(m.read_u64(PhysAddr(frame.0 + 0x10)), 0xfeed);
}

#[test]
fn pattern_memory_tells_physical_pages_apart() {
    let (m, space) = setup(SimConfig::four_level());
    let va = 0x10_0000_0000u64;
    let leaf = map(&m, space, va, 0, PageSize::Size4K, WRITABLE);
    let at_zero: Vec<u64> = (0..4).map(|i| m.read_u64_at(va + 8 * i, KERNEL).unwrap()).collect();
    assert_eq!(at_zero[0], pattern(0));
    m.write_u64(leaf, 8 << 30 | PRESENT | WRITABLE);
    m.invlpg(va);
    let at_8g: Vec<u64> = (0..4).map(|i| m.read_u64_at(va + 8 * i, KERNEL).unwrap()).collect();
    assert_eq!(at_8g[1], pattern((8 << 30) + 8));
    assert_ne!(at_zero, at_8g, "PA 0 and PA 8 GiB must read differently");
    assert!(at_zero.windows(2).all(|w| w[0] != w[1]), "words within a page differ too");
}
