//! File-backed private regions on the software MMU: pages start as a copy
//! of physical memory (a file's bytes at any alignment) and zeros past its
//! end, writes stay private, remove cuts the backing and frees the frames,
//! EAGER copies at once, refusals change nothing, and out-of-memory leaves
//! nothing behind; a property test compares every byte read with a model.

mod common;

use aspace::{AddressSpace, AspaceError, FaultOutcome, PhysAddr, Protection, Region, UnhandledFault, VirtAddr};
use common::*;
use mmu_model::{SimConfig, SimMachine};
use paging::FileBacking;
use proptest::prelude::*;

const ANON: Protection = Protection::ANON;
const RWK: Protection = RW.union(KERN).union(ANON);
/// Where the "file" lies in physical memory: outside the frame pool, 4 bytes
/// past a page boundary, as a file's data in a cpio archive may be.
const FILE: u64 = 0x1_0000_0004;
/// Its length: two pages and a bit.
const FILE_LEN: u64 = 2 * K4 + 0x804;
/// Where it is mapped.
const VA: u64 = 0x7000_0000_0000;

/// The byte the file holds at `offset`.
fn file_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(7) ^ (offset >> 8)).wrapping_add(3) as u8
}

/// Writes the file's bytes into physical memory at `FILE`, a word at a time
/// (the words before and after it get their bytes too; no one reads them).
fn write_file(machine: &SimMachine) {
    let first_word = FILE & !7;
    let mut word_addr = first_word;
    while word_addr < FILE + FILE_LEN {
        let mut word = 0u64;
        for byte in 0..8 {
            let addr = word_addr + byte;
            let value = if (FILE..FILE + FILE_LEN).contains(&addr) { file_byte(addr - FILE) } else { 0xee };
            word |= (value as u64) << (8 * byte);
        }
        machine.write_u64(PhysAddr(word_addr), word);
        word_addr += 8;
    }
}

/// The 8 bytes a mapping of the file from `offset` shows at mapping offset
/// `at` (8-aligned): file bytes up to `source_len`, zeros after.
fn expected_word(offset: u64, source_len: u64, at: u64) -> u64 {
    (0..8).fold(0u64, |word, byte| {
        let position = at + byte;
        let value = if position < source_len { file_byte(offset + position) } else { 0 };
        word | (value as u64) << (8 * byte)
    })
}

fn file_region(va: u64, len: u64) -> Region {
    Region::anonymous(va, len, RWK)
}

fn setup_with_file() -> (SimMachine, Space) {
    let (machine, space) = setup(SimConfig::four_level());
    write_file(&machine);
    (machine, space)
}

#[test]
fn pages_read_the_file_then_zeros() {
    let (machine, mut space) = setup_with_file();
    let region = file_region(VA, 3 * K4);
    space.add_file_region(region, PhysAddr(FILE), FILE_LEN).unwrap();
    space.switch_to();
    assert_eq!(space.counters().anonymous_frames, 0, "lazy: nothing copied before the first touch");
    for at in (0..3 * K4).step_by(8) {
        assert_eq!(read(&mut space, &machine, VA + at), Ok(expected_word(0, FILE_LEN, at)), "offset {at:#x}");
    }
    let c = space.counters();
    assert_eq!(c.anonymous_frames, 3);
    assert_eq!(c.file_pages_filled, 3, "every page holds some of the file");
    assert_eq!(c.faults_handled, 3);
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn writes_stay_private_to_their_mapping() {
    let (machine, mut space) = setup_with_file();
    space.add_file_region(file_region(VA, 3 * K4), PhysAddr(FILE), FILE_LEN).unwrap();
    space.add_file_region(file_region(VA + 8 * K4, 3 * K4), PhysAddr(FILE), FILE_LEN).unwrap();
    space.switch_to();
    let file_word = machine.read_u64(PhysAddr((FILE & !7) + 0x1000));
    write(&mut space, &machine, VA + 0x1000, 0x1234_5678).unwrap();
    write(&mut space, &machine, VA + 0x2ff8, 0x9999).unwrap();
    assert_eq!(read(&mut space, &machine, VA + 0x1000), Ok(0x1234_5678));
    assert_eq!(read(&mut space, &machine, VA + 0x2ff8), Ok(0x9999), "the zero tail is writable too");
    assert_eq!(machine.read_u64(PhysAddr((FILE & !7) + 0x1000)), file_word, "the file is unchanged");
    for at in [0x1000, 0x2ff8, 0x1800] {
        assert_eq!(read(&mut space, &machine, VA + 8 * K4 + at), Ok(expected_word(0, FILE_LEN, at)));
    }
    assert_eq!(space.verify(), Ok(()));
}

#[test]
fn a_mapping_may_start_inside_the_file() {
    let (machine, mut space) = setup_with_file();
    // From file offset 0x1000: 0x1804 bytes, two pages.
    let offset = 0x1000;
    space.add_file_region(file_region(VA, 2 * K4), PhysAddr(FILE + offset), FILE_LEN - offset).unwrap();
    space.switch_to();
    for at in (0..2 * K4).step_by(8) {
        assert_eq!(read(&mut space, &machine, VA + at), Ok(expected_word(offset, FILE_LEN - offset, at)));
    }
}

#[test]
fn remove_frees_the_frames_and_cuts_the_backing() {
    let (machine, mut space) = setup_with_file();
    space.add_region(Region::new(0, 0, 2 * M2, RWXK | EAGER)).unwrap();
    space.switch_to();
    let baseline = machine.frames_in_use();
    let region = file_region(VA, 3 * K4);
    space.add_file_region(region, PhysAddr(FILE), FILE_LEN).unwrap();
    for page in 0..3 {
        read(&mut space, &machine, VA + page * K4).unwrap();
    }
    // The middle page goes: the two ends keep their parts of the file.
    space.remove_region(Region::anonymous(VA + K4, K4, RWK)).unwrap();
    let backings: Vec<FileBacking> = space.file_backings().collect();
    assert_eq!(
        backings,
        [
            FileBacking { va: VirtAddr(VA), len: K4, source: PhysAddr(FILE), source_len: K4 },
            FileBacking { va: VirtAddr(VA + 2 * K4), len: K4, source: PhysAddr(FILE + 2 * K4), source_len: 0x804 },
        ]
    );
    assert_eq!(space.verify(), Ok(()));
    // A new anonymous region in the hole reads zero, not the file.
    space.add_region(Region::anonymous(VA + K4, K4, RWK)).unwrap();
    assert_eq!(read(&mut space, &machine, VA + K4), Ok(0));
    for va in [VA, VA + K4, VA + 2 * K4] {
        space.remove_region(Region::anonymous(va, K4, RWK)).unwrap();
    }
    assert_eq!(space.file_backings().count(), 0);
    assert_eq!(machine.frames_in_use(), baseline, "frames and tables back to the baseline");
    assert_eq!(machine.violations(), Vec::<String>::new());
}

#[test]
fn eager_file_regions_are_copied_at_once() {
    let (machine, mut space) = setup_with_file();
    space.add_file_region(file_region(VA, 4 * K4).with_eager(), PhysAddr(FILE), FILE_LEN).unwrap();
    let c = space.counters();
    assert_eq!(c.anonymous_frames, 4);
    assert_eq!(c.file_pages_filled, 3, "the fourth page lies past the file: zeros, nothing copied");
    assert_eq!(space.verify(), Ok(()));
    space.switch_to();
    assert_eq!(read(&mut space, &machine, VA + 0x2800), Ok(expected_word(0, FILE_LEN, 0x2800)));
    assert_eq!(space.counters().faults_handled, 0, "no fault: every page was mapped at the add");
}

trait WithEager {
    fn with_eager(self) -> Self;
}

impl WithEager for Region {
    fn with_eager(self) -> Self {
        Region { prot: self.prot | EAGER, ..self }
    }
}

#[test]
fn refusals_change_nothing() {
    let (machine, mut space) = setup_with_file();
    space.add_region(Region::new(VA + 4 * K4, 0x10_0000, K4, RW | KERN)).unwrap();
    let before = snapshot(&machine, &space);
    let cases = [
        (Region::new(VA, 0, 3 * K4, RW | KERN), FILE_LEN),
        (Region::anonymous(VA, 3 * K4, RWK | Protection::GROW_DOWN), FILE_LEN),
        (file_region(VA, 3 * K4), 0),
        (file_region(VA, 2 * K4), FILE_LEN),
        (file_region(VA + 2 * K4, 3 * K4), FILE_LEN),
        (file_region(VA + 1, 3 * K4), FILE_LEN),
    ];
    let errors: Vec<AspaceError> =
        cases.iter().map(|(region, len)| space.add_file_region(*region, PhysAddr(FILE), *len).unwrap_err()).collect();
    assert!(matches!(errors[0], AspaceError::InvalidFlags { .. }), "{:?}", errors[0]);
    assert!(matches!(errors[1], AspaceError::InvalidFlags { .. }), "{:?}", errors[1]);
    assert_eq!(errors[2], AspaceError::ZeroLength);
    assert!(matches!(errors[3], AspaceError::LengthOverflow { .. }), "{:?}", errors[3]);
    assert!(matches!(errors[4], AspaceError::Overlap { .. }), "{:?}", errors[4]);
    assert!(matches!(errors[5], AspaceError::Misaligned { .. }), "{:?}", errors[5]);
    assert_eq!(snapshot(&machine, &space), before);
    assert_eq!(space.file_backings().count(), 0);
    // Out of memory while adding an eager region: the backing goes too.
    machine.fail_nth_allocation(Some(machine.allocations() + 2));
    let refused = space.add_file_region(file_region(VA, 3 * K4).with_eager(), PhysAddr(FILE), FILE_LEN);
    machine.fail_nth_allocation(None);
    assert_eq!(refused, Err(AspaceError::OutOfMemory));
    assert_eq!(snapshot(&machine, &space), before);
    assert_eq!(space.file_backings().count(), 0);
}

#[test]
fn out_of_memory_on_first_touch_leaves_nothing_behind() {
    let (machine, mut space) = setup_with_file();
    let region = file_region(VA, 3 * K4);
    space.add_file_region(region, PhysAddr(FILE), FILE_LEN).unwrap();
    space.switch_to();
    let before = snapshot(&machine, &space);
    machine.fail_nth_allocation(Some(machine.allocations() + 1));
    let outcome = read(&mut space, &machine, VA);
    machine.fail_nth_allocation(None);
    assert_eq!(outcome, Err(FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region })));
    assert_eq!(snapshot(&machine, &space), before);
    assert_eq!(read(&mut space, &machine, VA + 8), Ok(expected_word(0, FILE_LEN, 8)), "works once memory is back");
}

#[test]
fn destroy_frees_everything_and_forgets_the_backings() {
    let (machine, mut space) = setup_with_file();
    space.add_file_region(file_region(VA, 3 * K4).with_eager(), PhysAddr(FILE), FILE_LEN).unwrap();
    let mut other = paging::PagingAspace::new(machine.clone(), "other", None).unwrap();
    other.switch_to();
    space.destroy().unwrap();
    assert_eq!(space.file_backings().count(), 0);
    assert_eq!(machine.frames_in_use(), 1, "only the other space's root is left");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any page-aligned offset and any length of the file, mapped privately,
    /// reads the file's bytes then zeros at every word, and its frames go
    /// back on remove.
    #[test]
    fn every_word_of_any_mapping_matches_the_file(page in 0u64..3, len_seed in 1u64..=FILE_LEN, eager: bool) {
        let (machine, mut space) = setup_with_file();
        space.add_region(Region::new(0, 0, 2 * M2, RWXK | EAGER)).unwrap();
        space.switch_to();
        let baseline = machine.frames_in_use();
        let offset = page * K4;
        let source_len = 1 + (len_seed - 1) % (FILE_LEN - offset);
        let pages = source_len.div_ceil(K4);
        let mut region = file_region(VA, pages * K4);
        if eager {
            region = region.with_eager();
        }
        space.add_file_region(region, PhysAddr(FILE + offset), source_len).unwrap();
        for at in (0..pages * K4).step_by(8) {
            prop_assert_eq!(read(&mut space, &machine, VA + at), Ok(expected_word(offset, source_len, at)));
        }
        prop_assert_eq!(space.verify(), Ok(()));
        space.remove_region(region).unwrap();
        prop_assert_eq!(machine.frames_in_use(), baseline);
        prop_assert!(machine.violations().is_empty());
    }
}
