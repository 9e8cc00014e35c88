//! A kernel half shared by several trees (`KernelHalf`,
//! `PageTables::new_with_kernel_half`), on the MMU model with two CPUs, each
//! running in its own tree.

use aspace::{PhysAddr, VirtAddr};
use mmu_model::{pattern, AccessError, Mode, SimConfig, SimMachine};
use paging::{KernelHalf, LeafPermissions, Level, PageTables, PagingError, SpaceId, WalkOutcome};

const K4: u64 = 4 << 10;

const RW: LeafPermissions = LeafPermissions { writable: true, user: false, executable: false };
const RO: LeafPermissions = LeafPermissions { writable: false, user: false, executable: false };
const USER_RW: LeafPermissions = LeafPermissions { writable: true, user: true, executable: false };

fn page_fault(result: Result<impl Sized, AccessError>) -> bool {
    matches!(result, Err(AccessError::PageFault(_)))
}

/// The upper half's first address for the machine's width.
fn upper_half(machine: &SimMachine) -> u64 {
    if paging::Machine::features(machine).la57 {
        0xff00_0000_0000_0000
    } else {
        0xffff_8000_0000_0000
    }
}

/// Reads `va` on `cpu`, in supervisor mode.
fn read_on(machine: &SimMachine, cpu: usize, va: u64) -> Result<u64, AccessError> {
    machine.select_cpu(cpu);
    machine.read_u64_at(va, Mode::Supervisor)
}

/// Writes `va` on `cpu`, in supervisor mode.
fn write_on(machine: &SimMachine, cpu: usize, va: u64, value: u64) -> Result<(), AccessError> {
    machine.select_cpu(cpu);
    machine.write_u64_at(va, value, Mode::Supervisor)
}

/// Every frame in use is the kernel half's or one of the trees'.
fn assert_frames_accounted(machine: &SimMachine, half: &KernelHalf, trees: &[&PageTables], others: u64) {
    let trees: u64 = trees.iter().map(|t| t.table_frames()).sum();
    assert_eq!(machine.frames_in_use() as u64, half.table_frames() + trees + others);
}

#[test]
fn two_roots_share_the_kernel_half_and_keep_their_own_lower_halves() {
    for config in [SimConfig::four_level(), SimConfig::five_level()] {
        let machine = SimMachine::new(config.with_cpus(2));
        let kernel = upper_half(&machine);
        let half = KernelHalf::new(&machine).unwrap();
        assert_eq!((half.table_frames(), machine.frames_in_use()), (256, 256), "the 256 shared tables");
        let mut a = PageTables::new_with_kernel_half(&machine, &half, None).unwrap();
        let mut b = PageTables::new_with_kernel_half(&machine, &half, None).unwrap();
        let both = [a.space_id(), b.space_id()];
        machine.select_cpu(0);
        machine.load_root(a.space_id(), false);
        machine.select_cpu(1);
        machine.load_root(b.space_id(), false);

        // The lower halves are each tree's own.
        a.map(&machine, VirtAddr(0x40_0000), PhysAddr(0x10_0000), K4, USER_RW).unwrap().apply(&machine, both[0]);
        b.map(&machine, VirtAddr(0x40_0000), PhysAddr(0x20_0000), K4, USER_RW).unwrap().apply(&machine, both[1]);
        a.map(&machine, VirtAddr(0x50_0000), PhysAddr(0x30_0000), K4, RW).unwrap().apply(&machine, both[0]);
        assert_eq!(read_on(&machine, 0, 0x40_0008), Ok(pattern(0x10_0008)));
        assert_eq!(read_on(&machine, 1, 0x40_0008), Ok(pattern(0x20_0008)));
        assert!(page_fault(read_on(&machine, 1, 0x50_0000)), "a's lower half is not b's");
        assert!(b.walk(&machine, VirtAddr(0x50_0000)).translation().is_none());

        // A map in the kernel half through a is seen through b, and by a
        // tree made after it.
        let mapped = a.map(&machine, VirtAddr(kernel + 0x20_0000), PhysAddr(0x4000_0000), 4 * K4, RW).unwrap();
        mapped.apply_to_each(&machine, &both);
        assert_eq!(read_on(&machine, 1, kernel + 0x20_3ff8), Ok(pattern(0x4000_3ff8)));
        write_on(&machine, 1, kernel + 0x20_0000, 77).unwrap();
        assert_eq!(read_on(&machine, 0, kernel + 0x20_0000), Ok(77), "the same memory through a");
        let c = PageTables::new_with_kernel_half(&machine, &half, None).unwrap();
        assert_eq!(c.walk(&machine, VirtAddr(kernel + 0x20_1000)).translation().unwrap().pa, PhysAddr(0x4000_1000));
        assert!(half.table_frames() > 256, "the tables below the shared ones are the kernel half's");
        assert_frames_accounted(&machine, &half, &[&a, &b, &c], 0);

        // A protect through b reaches a's TLB, which cached the page writable.
        write_on(&machine, 0, kernel + 0x20_1000, 1).unwrap();
        b.protect(&machine, VirtAddr(kernel + 0x20_0000), 4 * K4, RO).unwrap().apply_to_each(&machine, &both);
        assert!(page_fault(write_on(&machine, 0, kernel + 0x20_1000, 2)), "a's stale entry was dropped");
        assert_eq!(read_on(&machine, 0, kernel + 0x20_1000), Ok(1));

        // An unmap through a frees the tables below the shared one, never it.
        read_on(&machine, 1, kernel + 0x20_0000).unwrap();
        a.unmap(&machine, VirtAddr(kernel + 0x20_0000), 4 * K4).unwrap().apply_to_each(&machine, &both);
        assert!(page_fault(read_on(&machine, 1, kernel + 0x20_0000)), "b's cached entry was dropped too");
        assert_eq!(half.table_frames(), 256);
        let below_root = Level::root(paging::Machine::features(&machine).la57).lower().unwrap();
        assert_eq!(b.walk(&machine, VirtAddr(kernel)).outcome, WalkOutcome::NotPresent { level: below_root });
        assert_frames_accounted(&machine, &half, &[&a, &b, &c], 0);

        // Destroying a tree leaves the others and the kernel half intact.
        a.map(&machine, VirtAddr(kernel), PhysAddr(0x5000_0000), K4, RW).unwrap().apply_to_each(&machine, &both);
        let idle = PageTables::new(&machine, None).unwrap();
        machine.select_cpu(0);
        machine.load_root(idle.space_id(), false);
        let space = a.space_id();
        a.destroy(&machine).apply(&machine, space);
        assert_eq!(read_on(&machine, 1, 0x40_0000), Ok(pattern(0x20_0000)));
        assert_eq!(read_on(&machine, 1, kernel + 8), Ok(pattern(0x5000_0008)));
        assert_frames_accounted(&machine, &half, &[&b, &c, &idle], 0);
        let half = half.destroy(&machine).expect_err("b and c still use it");
        assert_eq!(half.handles(), 3, "this handle, b's and c's");

        // With every tree gone, the kernel half goes too, and no frame is left
        // but the root the CPUs are switched to.
        machine.select_cpu(1);
        machine.load_root(idle.space_id(), false);
        for tree in [b, c] {
            let space = tree.space_id();
            tree.destroy(&machine).apply(&machine, space);
        }
        let freed = half.destroy(&machine).expect("no tree uses it");
        assert!(freed > 256, "the shared tables and those below them: {freed}");
        assert_eq!(machine.frames_in_use(), 1, "only idle's root is left");
        assert!(machine.violations().is_empty(), "{:?}", machine.violations());
    }
}

#[test]
fn a_tree_dropped_without_destroy_keeps_the_kernel_half() {
    let machine = SimMachine::new(SimConfig::four_level());
    let half = KernelHalf::new(&machine).unwrap();
    let tree = PageTables::new_with_kernel_half(&machine, &half, None).unwrap();
    drop(tree);
    // The dropped tree's tables were not freed: a CPU may still walk them,
    // through the shared ones.
    let half = half.destroy(&machine).expect_err("the dropped tree still links to it");
    assert_eq!(half.handles(), 2);
    assert_eq!(machine.frames_in_use(), 257);
}

#[test]
fn a_kernel_half_is_all_or_nothing_and_made_for_its_levels() {
    let machine = SimMachine::new(SimConfig::four_level());
    machine.fail_nth_allocation(Some(100));
    assert_eq!(KernelHalf::new(&machine).unwrap_err(), PagingError::OutOfMemory);
    assert_eq!(machine.frames_in_use(), 0, "the frames taken went back");

    let five = SimMachine::new(SimConfig::five_level());
    let half = KernelHalf::new(&five).unwrap();
    assert_eq!(half.root_level(), Level::Pml5);
    assert_eq!(
        PageTables::new_with_kernel_half(&machine, &half, None).unwrap_err(),
        PagingError::KernelHalfLevels { machine: 4, kernel_half: 5 }
    );
    assert_eq!(machine.frames_in_use(), 0, "refused before the root was allocated");
    assert_eq!(half.destroy(&five).ok(), Some(256));
    assert_eq!(five.frames_in_use(), 0);
}

#[test]
fn the_kernel_half_entries_are_the_same_in_every_root() {
    let machine = SimMachine::new(SimConfig::four_level());
    let half = KernelHalf::new(&machine).unwrap();
    let a = PageTables::new_with_kernel_half(&machine, &half, Some(1)).unwrap();
    let b = PageTables::new_with_kernel_half(&machine, &half, Some(2)).unwrap();
    for index in 0..512 {
        let (ea, eb) = (a.root_table().read(&machine, index), b.root_table().read(&machine, index));
        assert_eq!(ea, eb, "entry {index}");
        if index >= KernelHalf::FIRST_INDEX {
            assert!(ea.is_present() && ea.is_user() && ea.is_writable() && !ea.is_no_execute());
            assert!(ea.has(paging::PageTableEntry::KEEP_TABLE));
            assert_eq!(ea.address(Level::Pml4), half.table(index).addr());
        } else {
            assert!(!ea.is_present());
        }
    }
    assert_eq!(a.space_id(), SpaceId { root: a.root(), pcid: Some(1) });
    for tree in [a, b] {
        let space = tree.space_id();
        tree.destroy(&machine).apply(&machine, space);
    }
    assert_eq!(half.destroy(&machine).ok(), Some(256));
    assert_eq!(machine.frames_in_use(), 0);
}

/// A kernel's pattern of use: one space builds the kernel half from its
/// regions (`from_regions_with_kernel_half`, mapped), another joins it with
/// the same upper-half regions recorded but not mapped again, and a fork of
/// the second shares it too. Each sees the kernel half, verifies, keeps its
/// own lower half, and destroying the joiners leaves the kernel half whole.
#[test]
fn spaces_join_a_built_kernel_half_and_their_forks_share_it() {
    use aspace::{AddressSpace, Protection, Region};
    use paging::PagingAspace;
    for config in [SimConfig::four_level(), SimConfig::five_level()] {
        let machine = SimMachine::new(config.with_cpus(1));
        let kernel = upper_half(&machine);
        let half = KernelHalf::new(&machine).unwrap();
        let data = paging::Machine::alloc_frame(&machine).unwrap();
        machine.write_u64(data, 0x5eed);
        let kernel_rw = Protection::READ | Protection::WRITE | Protection::KERN | Protection::PIN | Protection::EAGER;
        let upper = [Region::new(kernel, data.0, K4, kernel_rw)];
        let mut builder =
            PagingAspace::from_regions_with_kernel_half(machine.clone(), "base", None, &upper, &half, false).unwrap();
        let frames_after_build = half.table_frames();
        assert!(builder.shares_kernel_half());
        let mut joiner =
            PagingAspace::from_regions_with_kernel_half(machine.clone(), "proc", None, &upper, &half, true).unwrap();
        assert_eq!(half.table_frames(), frames_after_build, "nothing mapped anew");
        assert_eq!(joiner.counters().pages_mapped, [0, 0, 0], "the joiner mapped nothing itself");
        assert_eq!(joiner.verify(), Ok(()));
        let user = Protection::READ | Protection::WRITE | Protection::ANON;
        joiner.add_region(Region::anonymous(0x40_0000, 4 * K4, user)).unwrap();
        joiner.switch_to();
        assert_eq!(machine.read_u64_at(kernel, Mode::Supervisor), Ok(0x5eed));
        let mut child = joiner.fork("child", None).unwrap();
        assert!(child.shares_kernel_half());
        assert_eq!(child.regions().iter().count(), 2);
        assert_eq!(child.verify(), Ok(()));
        child.switch_to();
        assert_eq!(machine.read_u64_at(kernel, Mode::Supervisor), Ok(0x5eed));
        builder.switch_to();
        child.destroy().unwrap();
        joiner.destroy().unwrap();
        assert_eq!(half.table_frames(), frames_after_build, "the kernel half is untouched");
        builder.switch_to();
        assert_eq!(machine.read_u64_at(kernel, Mode::Supervisor), Ok(0x5eed));
        assert_eq!(builder.verify(), Ok(()));
    }
}
