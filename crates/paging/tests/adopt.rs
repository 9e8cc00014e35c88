//! Adopting a tree built by someone else (`PageTables::from_root`): trees
//! written word by word into the MMU model's memory, as a boot loader or
//! another kernel would, never through `PageTables`; then adopted, walked,
//! edited, and checked through the model's MMU.

use aspace::{AddressKind, AspaceError, FaultAccess, PhysAddr, VirtAddr};
use mmu_model::{pattern, AccessError, Mode, SimConfig, SimMachine};
use paging::{
    LeafPermissions, Level, Machine as _, PageSize, PageTables, PagingError, SpaceId, TableOwnership, WalkOutcome,
};

const P: u64 = 1;
const W: u64 = 1 << 1;
const U: u64 = 1 << 2;
const A: u64 = 1 << 5;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G: u64 = 1 << 30;

const RW: LeafPermissions = LeafPermissions { writable: true, user: false, executable: false };
const RO: LeafPermissions = LeafPermissions { writable: false, user: false, executable: false };

/// A tree written with raw words, the way code that knows nothing of this
/// crate builds one: its tables come from the machine's frames.
struct HandBuilt<'m> {
    machine: &'m SimMachine,
    root: u64,
    levels: u32,
    /// Every table, the root first.
    tables: Vec<u64>,
}

impl<'m> HandBuilt<'m> {
    fn new(machine: &'m SimMachine) -> Self {
        let root = machine.alloc_frame().expect("a root").0;
        HandBuilt { machine, root, levels: machine.features().levels().into(), tables: vec![root] }
    }

    /// The address of `va`'s entry at `level` (1 = PT ... 5 = PML5),
    /// making the tables above it with entries `table_flags` as needed.
    fn slot(&mut self, va: u64, level: u32, table_flags: u64) -> u64 {
        let mut table = self.root;
        let mut current = self.levels;
        loop {
            let slot = table + 8 * ((va >> (12 + 9 * (current - 1))) & 511);
            if current == level {
                return slot;
            }
            let entry = self.machine.read_u64(PhysAddr(slot));
            table = if entry & P != 0 {
                entry & ADDRESS
            } else {
                let frame = self.machine.alloc_frame().expect("a table").0;
                self.tables.push(frame);
                self.machine.write_u64(PhysAddr(slot), frame | table_flags);
                frame
            };
            current -= 1;
        }
    }

    /// Maps `va` to `pa` with a leaf of `size` with `flags` (P added, PS for
    /// large pages), under tables with entries `table_flags`.
    fn leaf(&mut self, va: u64, pa: u64, size: PageSize, flags: u64, table_flags: u64) -> u64 {
        let (level, ps) = match size {
            PageSize::Size4K => (1, 0),
            PageSize::Size2M => (2, PS),
            PageSize::Size1G => (3, PS),
        };
        let slot = self.slot(va, level, table_flags);
        self.machine.write_u64(PhysAddr(slot), pa | flags | P | ps);
        slot
    }

    fn space(&self) -> SpaceId {
        SpaceId { root: PhysAddr(self.root), pcid: None }
    }

    /// Every word of every table, to show a refused adoption wrote nothing.
    fn words(&self) -> Vec<u64> {
        self.tables.iter().flat_map(|&t| (0..512).map(move |i| self.machine.read_u64(PhysAddr(t + 8 * i)))).collect()
    }

    fn adopt(&self, ownership: TableOwnership) -> Result<PageTables, PagingError> {
        // SAFETY: a tree built in the model's memory for its features; this
        // test writes none of it after adoption except through the tree,
        // and its frames stay allocated until the test ends (or, owned,
        // the tree frees them).
        unsafe { PageTables::from_root(self.machine, PhysAddr(self.root), None, ownership) }
    }
}

/// The upper half's first address for the machine's width.
fn upper_half(machine: &SimMachine) -> u64 {
    if machine.features().la57 {
        0xff00_0000_0000_0000
    } else {
        0xffff_8000_0000_0000
    }
}

fn configs() -> [SimConfig; 2] {
    [SimConfig::four_level(), SimConfig::five_level()]
}

fn page_fault(result: Result<impl Sized, AccessError>) -> bool {
    matches!(result, Err(AccessError::PageFault(_)))
}

#[test]
fn an_adopted_tree_walks_as_built_and_its_edits_reach_the_mmu() {
    for config in configs() {
        let machine = SimMachine::new(config);
        let kernel = upper_half(&machine);
        let mut boot = HandBuilt::new(&machine);
        // Permissive tables as most kernels write them (A set, U where user pages are).
        let user_table = P | W | U | A;
        let kernel_table = P | W | A;
        boot.leaf(0x40_0000, 0x1_0000_0000, PageSize::Size4K, W | U, user_table);
        boot.leaf(0x40_1000, 0x1_0000_5000, PageSize::Size4K, U | NX, user_table);
        boot.leaf(0x8000_0000, 0x2_0000_0000, PageSize::Size2M, W, kernel_table);
        boot.leaf(0x80_0000_0000, 0x40_0000_0000, PageSize::Size1G, W | NX, kernel_table);
        boot.leaf(kernel, 0x3000_0000, PageSize::Size4K, W | NX | A, kernel_table);
        let big_leaf = boot.leaf(kernel + G, 0x4000_0000, PageSize::Size1G, NX, kernel_table);
        let built = boot.tables.len() as u64;
        machine.load_root(boot.space(), false);

        let before: Vec<_> = [0x40_0000, 0x40_1008, 0x8012_3458, 0x80_1234_5678, kernel + 0x10, kernel + G + 0x1000]
            .iter()
            .map(|&va| (va, machine.translate(va, FaultAccess::Read, Mode::Supervisor).expect("mapped by the builder")))
            .collect();

        let mut tables = boot.adopt(TableOwnership::Borrowed).expect("a well-formed tree");
        assert_eq!(tables.table_frames(), built, "the walk counted the builder's tables");
        assert_eq!(machine.frames_in_use() as u64, built, "adoption allocates nothing");
        for &(va, pa) in &before {
            let walk = tables.walk(&machine, VirtAddr(va));
            assert_eq!(walk.translation().map(|t| t.pa.0), Some(pa), "{walk}");
        }
        let t = tables.walk(&machine, VirtAddr(0x40_0000)).translation().unwrap();
        assert_eq!((t.page_size, t.writable, t.user, t.executable), (PageSize::Size4K, true, true, true));
        let t = tables.walk(&machine, VirtAddr(0x40_1000)).translation().unwrap();
        assert_eq!((t.writable, t.user, t.executable), (false, true, false));
        let t = tables.walk(&machine, VirtAddr(0x80_0000_0000)).translation().unwrap();
        assert_eq!(t.page_size, PageSize::Size1G);
        let runs: Vec<_> = tables.mappings(&machine).map(|run| (run.start.0, run.pa.0, run.page_size)).collect();
        assert_eq!(
            runs,
            [
                (0x40_0000, 0x1_0000_0000, PageSize::Size4K),
                (0x40_1000, 0x1_0000_5000, PageSize::Size4K),
                (0x8000_0000, 0x2_0000_0000, PageSize::Size2M),
                (0x80_0000_0000, 0x40_0000_0000, PageSize::Size1G),
                (kernel, 0x3000_0000, PageSize::Size4K),
                (kernel + G, 0x4000_0000, PageSize::Size1G),
            ]
        );

        // Edits: a page in the builder's page table, a range needing new
        // tables, a protect and an unmap of the builder's pages.
        let space = tables.space_id();
        assert_eq!(space, boot.space());
        let allocations = machine.allocations();
        tables.map(&machine, VirtAddr(0x40_2000), PhysAddr(0x1_0000_9000), K4, RW).unwrap().apply(&machine, space);
        assert_eq!(machine.allocations(), allocations, "the builder's page table took the page");
        tables
            .map(&machine, VirtAddr(0x7000_0000), PhysAddr(0x5_0000_0000), 4 * K4, RW)
            .unwrap()
            .apply(&machine, space);
        // Cached writable in the TLB, then made read-only: the flush must reach it.
        machine.write_u64_at(0x40_0000, 5, Mode::Supervisor).unwrap();
        tables.protect(&machine, VirtAddr(0x40_0000), K4, RO).unwrap().apply(&machine, space);
        machine.read_u64_at(0x8000_0000, Mode::Supervisor).unwrap();
        tables.unmap(&machine, VirtAddr(0x8000_0000), M2).unwrap().apply(&machine, space);

        assert_eq!(machine.read_u64_at(0x40_2008, Mode::Supervisor), Ok(pattern(0x1_0000_9008)));
        assert_eq!(machine.read_u64_at(0x7000_3ff8, Mode::Supervisor), Ok(pattern(0x5_0000_3ff8)));
        assert_eq!(machine.read_u64_at(0x40_0000, Mode::Supervisor), Ok(5));
        assert!(page_fault(machine.write_u64_at(0x40_0000, 6, Mode::Supervisor)), "read-only now");
        assert!(page_fault(machine.read_u64_at(0x8000_0000, Mode::Supervisor)), "unmapped");
        assert_eq!(machine.read_u64_at(kernel + G + 0x1000, Mode::Supervisor), Ok(pattern(0x4000_1000)));
        let missing = tables.walk(&machine, VirtAddr(0x8000_0000));
        assert_eq!(missing.outcome, WalkOutcome::NotPresent { level: Level::Pd }, "the builder's directory stays");
        let ours = tables.table_frames() - built;
        assert!(ours > 0, "the range at 0x7000_0000 needed tables of the tree's own");
        assert_eq!(machine.frames_in_use() as u64, built + ours);

        // Destroy frees only the tables the tree allocated; the builder's
        // stay, and so does what the tree did not edit.
        let big_leaf_word = machine.read_u64(PhysAddr(big_leaf));
        tables.destroy(&machine).apply(&machine, space);
        assert_eq!(machine.frames_in_use() as u64, built);
        assert_eq!(machine.read_u64(PhysAddr(big_leaf)), big_leaf_word);
        assert!(machine.violations().is_empty(), "{:?}", machine.violations());
    }
}

#[test]
fn a_borrowed_table_left_empty_stays_and_an_owned_one_is_freed() {
    for config in configs() {
        let levels = u64::from(config.features.levels());
        // Borrowed: the unmap leaves the builder's tables linked, empty.
        let machine = SimMachine::new(config.clone());
        let mut boot = HandBuilt::new(&machine);
        boot.leaf(0x40_0000, 0x9000, PageSize::Size4K, W, P | W);
        let mut tables = boot.adopt(TableOwnership::Borrowed).unwrap();
        let space = tables.space_id();
        tables.unmap(&machine, VirtAddr(0x40_0000), K4).unwrap().apply(&machine, space);
        assert_eq!(machine.frames_in_use() as u64, levels, "root and the tables to the page table");
        assert_eq!(tables.table_frames(), levels);
        assert_eq!(tables.walk(&machine, VirtAddr(0x40_0000)).outcome, WalkOutcome::NotPresent { level: Level::Pt });
        let allocations = machine.allocations();
        tables.map(&machine, VirtAddr(0x40_1000), PhysAddr(0xa000), K4, RW).unwrap().apply(&machine, space);
        assert_eq!(machine.allocations(), allocations, "the empty page table is used again");
        tables.destroy(&machine).apply(&machine, space);
        assert_eq!(machine.frames_in_use() as u64, levels, "none of them is the tree's to free");

        // Owned: the emptied tables are freed, and destroy frees the rest.
        let machine = SimMachine::new(config);
        let mut boot = HandBuilt::new(&machine);
        boot.leaf(0x40_0000, 0x9000, PageSize::Size4K, W, P | W);
        boot.leaf(0x80_0000, 0xa000, PageSize::Size4K, W, P | W);
        let mut tables = boot.adopt(TableOwnership::Owned).unwrap();
        let space = tables.space_id();
        assert_eq!(tables.table_frames(), levels + 1, "two page tables");
        tables.unmap(&machine, VirtAddr(0x40_0000), K4).unwrap().apply(&machine, space);
        assert_eq!(tables.table_frames(), levels, "its page table went");
        tables.unmap(&machine, VirtAddr(0x80_0000), K4).unwrap().apply(&machine, space);
        assert_eq!(machine.frames_in_use(), 1, "every table below the root went");
        assert_eq!(tables.table_frames(), 1);
        tables.map(&machine, VirtAddr(0x40_0000), PhysAddr(0x9000), K4, RW).unwrap().apply(&machine, space);
        tables.destroy(&machine).apply(&machine, space);
        assert_eq!(machine.frames_in_use(), 0, "the root too");
        assert!(machine.violations().is_empty(), "{:?}", machine.violations());
    }
}

#[test]
fn adoption_opens_table_entries_that_hide_nothing() {
    // Tables as the `x86_64` crate writes them: an entry above read-only,
    // no-execute pages grants no more than they do (here: no write, NX).
    let machine = SimMachine::new(SimConfig::four_level());
    let mut boot = HandBuilt::new(&machine);
    let pt_slot = boot.leaf(0x40_0000, 0x9000, PageSize::Size4K, NX, P | NX);
    let pd_slot = boot.slot(0x40_0000, 2, 0);
    let leaf_word = machine.read_u64(PhysAddr(pt_slot));
    let mut tables = boot.adopt(TableOwnership::Borrowed).unwrap();
    let pd_entry = machine.read_u64(PhysAddr(pd_slot));
    assert_eq!(pd_entry & (W | NX), W, "writable and executable above: the leaves decide");
    assert_eq!(machine.read_u64(PhysAddr(pt_slot)), leaf_word, "leaves are not touched");
    let t = tables.walk(&machine, VirtAddr(0x40_0000)).translation().unwrap();
    assert_eq!((t.writable, t.executable), (false, false), "the page is as it was");
    // A writable page mapped beside it is writable.
    let space = tables.space_id();
    let rwx = LeafPermissions { writable: true, user: false, executable: true };
    tables.map(&machine, VirtAddr(0x40_1000), PhysAddr(0xa000), K4, rwx).unwrap().apply(&machine, space);
    machine.load_root(space, false);
    assert_eq!(machine.write_u64_at(0x40_1000, 7, Mode::Supervisor), Ok(()));
    assert_eq!(machine.fetch_at(0x40_1000, Mode::Supervisor), Ok(()));
    assert!(page_fault(machine.write_u64_at(0x40_0000, 7, Mode::Supervisor)));
}

/// Writes a bad tree and returns the error its adoption must get.
type Build = Box<dyn Fn(&mut HandBuilt) -> PagingError>;

#[test]
fn adoption_refuses_what_is_not_such_a_tree_and_writes_nothing() {
    const TABLE: u64 = P | W | U;
    let cases: Vec<(&str, SimConfig, Build)> = vec![
        (
            "a reserved bit in a 2 MiB leaf",
            SimConfig::four_level(),
            Box::new(|b| {
                let slot = b.leaf(0x20_0000, 0x20_0000, PageSize::Size2M, W | 1 << 13, TABLE);
                let entry = paging::PageTableEntry(b.machine.read_u64(PhysAddr(slot)));
                PagingError::ReservedBits { level: Level::Pd, va: VirtAddr(0x20_0000), entry }
            }),
        ),
        (
            "PS in a PML4 entry",
            SimConfig::four_level(),
            Box::new(|b| {
                let slot = b.slot(0, 4, TABLE);
                b.machine.write_u64(PhysAddr(slot), P | W | PS);
                PagingError::ReservedBits {
                    level: Level::Pml4,
                    va: VirtAddr(0),
                    entry: paging::PageTableEntry(P | W | PS),
                }
            }),
        ),
        (
            "a 1 GiB page without 1 GiB pages",
            {
                let mut config = SimConfig::four_level();
                config.features.huge_1g = false;
                config
            },
            Box::new(|b| {
                let slot = b.leaf(G, G, PageSize::Size1G, W, TABLE);
                let entry = paging::PageTableEntry(b.machine.read_u64(PhysAddr(slot)));
                PagingError::ReservedBits { level: Level::Pdpt, va: VirtAddr(G), entry }
            }),
        ),
        (
            "a recursive entry",
            SimConfig::four_level(),
            Box::new(|b| {
                b.leaf(0x40_0000, 0x9000, PageSize::Size4K, W, TABLE);
                let root = b.root;
                b.machine.write_u64(PhysAddr(root + 8 * 510), root | P | W);
                PagingError::AliasedTable {
                    level: Level::Pdpt,
                    table: PhysAddr(root),
                    va: VirtAddr(0xffff_ff00_0000_0000),
                }
            }),
        ),
        (
            "two entries sharing a table",
            SimConfig::four_level(),
            Box::new(|b| {
                b.leaf(0x40_0000, 0x9000, PageSize::Size4K, W, TABLE);
                let first = b.machine.read_u64(PhysAddr(b.root));
                b.machine.write_u64(PhysAddr(b.root + 8), first);
                PagingError::AliasedTable {
                    level: Level::Pdpt,
                    table: PhysAddr(first & ADDRESS),
                    va: VirtAddr(1 << 39),
                }
            }),
        ),
        (
            "a read-only table entry above a writable page",
            SimConfig::four_level(),
            Box::new(|b| {
                b.leaf(0x40_0000, 0x9000, PageSize::Size4K, W, TABLE);
                let pd_slot = b.slot(0x40_0000, 2, TABLE);
                let entry = b.machine.read_u64(PhysAddr(pd_slot)) & !W;
                b.machine.write_u64(PhysAddr(pd_slot), entry);
                PagingError::HiddenRights {
                    level: Level::Pd,
                    va: VirtAddr(0x40_0000),
                    entry: paging::PageTableEntry(entry),
                }
            }),
        ),
        (
            "a supervisor table entry above a user page",
            SimConfig::four_level(),
            Box::new(|b| {
                b.leaf(0x40_0000, 0x9000, PageSize::Size4K, W | U, P | W);
                // Found from the bottom up: first the directory entry above the page table.
                let pd_slot = b.slot(0x40_0000, 2, 0);
                let entry = paging::PageTableEntry(b.machine.read_u64(PhysAddr(pd_slot)));
                PagingError::HiddenRights { level: Level::Pd, va: VirtAddr(0x40_0000), entry }
            }),
        ),
    ];
    for (what, config, build) in cases {
        let machine = SimMachine::new(config);
        let mut boot = HandBuilt::new(&machine);
        let expected = build(&mut boot);
        let words = boot.words();
        for ownership in [TableOwnership::Borrowed, TableOwnership::Owned] {
            let error = boot.adopt(ownership).expect_err(what);
            assert_eq!(error, expected, "{what}");
            assert!(matches!(AspaceError::from(error), AspaceError::Unsupported { .. }), "{what}");
            assert_eq!(boot.words(), words, "{what}: a refused adoption writes nothing");
        }
    }

    let machine = SimMachine::new(SimConfig::four_level());
    let root = machine.alloc_frame().unwrap();
    // SAFETY: refused before anything is read.
    let misaligned = unsafe { PageTables::from_root(&machine, PhysAddr(root.0 + 8), None, TableOwnership::Owned) };
    assert_eq!(
        misaligned.unwrap_err(),
        PagingError::Misaligned { kind: AddressKind::Physical, value: root.0 + 8, required: K4 }
    );
}

#[test]
fn an_empty_root_adopts_as_a_new_tree() {
    let machine = SimMachine::new(SimConfig::four_level());
    let root = machine.alloc_frame().unwrap();
    // SAFETY: a zeroed frame of the machine: an empty tree, given over whole.
    let mut tables = unsafe { PageTables::from_root(&machine, root, Some(3), TableOwnership::Owned) }.unwrap();
    assert_eq!(tables.table_frames(), 1);
    assert_eq!(tables.space_id(), SpaceId { root, pcid: Some(3) });
    let space = tables.space_id();
    tables.map(&machine, VirtAddr(G), PhysAddr(G), G, RW).unwrap().apply(&machine, space);
    assert_eq!(tables.walk(&machine, VirtAddr(G + 8)).translation().unwrap().page_size, PageSize::Size1G);
    tables.destroy(&machine).apply(&machine, space);
    assert_eq!(machine.frames_in_use(), 0);
}
