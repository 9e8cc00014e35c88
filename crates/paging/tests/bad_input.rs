//! Bad input to every operation of the `paging` address space, table by
//! table: each case gets its typed error, and afterwards the region set, the
//! page tables, the anonymous frames and the frames in use are exactly as
//! before (a snapshot compares equal) and `verify` passes.

mod common;

use aspace::{AddressKind, AddressSpace, AspaceError, PhysAddr, Protection, Region, VirtAddr};
use common::{read, setup, write, Space, EAGER, G, K4, KERN, M2, RW};
use mmu_model::{SimConfig, SimMachine};
use paging::MappingRun;

const PIN: Protection = Protection::PIN;
const ANON: Protection = Protection::ANON;
const RWK: Protection = RW.union(KERN);

/// An eager region (its pages are mapped now).
const EAGER_REGION: Region = Region::new(G, 0x20_0000, 4 << 20, RWK.union(EAGER));
/// A lazy region with one page touched.
const LAZY_REGION: Region = Region::new(2 * G, 0x20_0000, 4 << 20, RWK);
/// A pinned eager region.
const PINNED_REGION: Region = Region::new(3 * G, 0, M2, RWK.union(PIN).union(EAGER));
/// An anonymous region with one page touched.
const ANON_REGION: Region = Region::new(4 * G, 0, 64 << 10, RWK.union(ANON));
/// An eager region in the upper canonical half.
const HIGH_REGION: Region = Region::new(0xffff_8000_0000_0000, 0, M2, RWK.union(EAGER));
/// In no region.
const NOWHERE: u64 = 0x5000_0000;
/// The machine's MAXPHYADDR (SimConfig::four_level).
const PHYS_BITS: u32 = 46;

/// Everything a refused operation must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    regions: Vec<Region>,
    mappings: Vec<MappingRun>,
    anonymous: Vec<(VirtAddr, PhysAddr)>,
    frames_in_use: usize,
    table_frames: u64,
}

fn snapshot(space: &Space, machine: &SimMachine) -> Snapshot {
    Snapshot {
        regions: space.regions().iter().copied().collect(),
        mappings: space.mappings().map(|runs| runs.collect()).unwrap_or_default(),
        anonymous: space.anonymous_frames().collect(),
        frames_in_use: machine.frames_in_use(),
        table_frames: space.counters().table_frames,
    }
}

/// A space holding the regions above, with pages touched in the lazy ones.
fn populated() -> (SimMachine, Space) {
    let (machine, mut space) = setup(SimConfig::four_level());
    for region in [EAGER_REGION, LAZY_REGION, PINNED_REGION, ANON_REGION, HIGH_REGION] {
        space.add_region(region).unwrap_or_else(|e| panic!("adding {region}: {e}"));
    }
    space.switch_to();
    read(&mut space, &machine, LAZY_REGION.va.0 + 0x1000).expect("the lazy page faults in");
    write(&mut space, &machine, ANON_REGION.va.0 + 0x2000, 7).expect("the anonymous page faults in");
    assert_eq!(space.verify(), Ok(()));
    (machine, space)
}

/// One operation of the address space, with its arguments.
#[derive(Clone, Copy, Debug)]
enum Operation {
    Add(Region),
    Remove(Region),
    Move(Region, u64),
    Protect(Region, Protection),
    GrowthLimits(u64, u64),
}

impl Operation {
    fn apply(self, space: &mut Space) -> Result<(), AspaceError> {
        match self {
            Operation::Add(region) => space.add_region(region),
            Operation::Remove(region) => space.remove_region(region),
            Operation::Move(region, pa) => space.move_region(region, PhysAddr(pa)),
            Operation::Protect(region, prot) => space.protect_region(region, prot),
            Operation::GrowthLimits(max, gap) => space.set_growth_limits(max, gap),
        }
    }
}

/// A bad input and the error it must get.
struct Case {
    what: &'static str,
    operation: Operation,
    expected: fn(&AspaceError) -> bool,
}

fn region(va: u64, pa: u64, len: u64, prot: Protection) -> Region {
    Region::new(va, pa, len, prot)
}

/// Bad inputs shared by every operation that takes a region: the region's
/// own numbers are wrong, whatever the operation.
fn bad_numbers(make: fn(Region) -> Operation) -> Vec<Case> {
    vec![
        Case {
            what: "misaligned virtual address",
            operation: make(region(NOWHERE + 1, 0x1000, K4, RWK)),
            expected: |e| {
                *e == AspaceError::Misaligned { kind: AddressKind::Virtual, value: NOWHERE + 1, required: K4 }
            },
        },
        Case {
            what: "misaligned physical address",
            operation: make(region(NOWHERE, 0x1001, K4, RWK)),
            expected: |e| *e == AspaceError::Misaligned { kind: AddressKind::Physical, value: 0x1001, required: K4 },
        },
        Case {
            what: "misaligned length",
            operation: make(region(NOWHERE, 0x1000, 0x1800, RWK)),
            expected: |e| *e == AspaceError::Misaligned { kind: AddressKind::Length, value: 0x1800, required: K4 },
        },
        Case {
            what: "zero length",
            operation: make(region(NOWHERE, 0, 0, RWK)),
            expected: |e| *e == AspaceError::ZeroLength,
        },
        Case {
            what: "virtual range wraps past the top",
            operation: make(region(0xffff_ffff_ffff_f000, 0, 0x2000, RWK)),
            expected: |e| {
                *e == AspaceError::LengthOverflow {
                    start: 0xffff_ffff_ffff_f000,
                    len: 0x2000,
                    kind: AddressKind::Virtual,
                }
            },
        },
        Case {
            what: "physical range wraps past the top",
            operation: make(region(NOWHERE, 0xffff_ffff_ffff_f000, 0x2000, RWK)),
            expected: |e| {
                *e == AspaceError::LengthOverflow {
                    start: 0xffff_ffff_ffff_f000,
                    len: 0x2000,
                    kind: AddressKind::Physical,
                }
            },
        },
        Case {
            what: "non-canonical start (bit 47 set, upper bits clear)",
            operation: make(region(0x0000_8000_0000_0000, 0, K4, RWK)),
            expected: |e| *e == AspaceError::NonCanonical { addr: 0x0000_8000_0000_0000 },
        },
        Case {
            what: "non-canonical start (upper bits mixed)",
            operation: make(region(0x1234_0000_0000_0000, 0, K4, RWK)),
            expected: |e| *e == AspaceError::NonCanonical { addr: 0x1234_0000_0000_0000 },
        },
        Case {
            what: "range across the canonical hole",
            operation: make(region(0x0000_7fff_ffff_f000, 0, 0x2000, RWK)),
            expected: |e| *e == AspaceError::CrossesCanonicalHole { start: 0x0000_7fff_ffff_f000, len: 0x2000 },
        },
        Case {
            what: "physical range beyond MAXPHYADDR",
            operation: make(region(NOWHERE, 1 << PHYS_BITS, K4, RWK)),
            expected: |e| *e == AspaceError::PhysTooWide { addr: (1 << PHYS_BITS) + K4 - 1, phys_bits: PHYS_BITS },
        },
        Case {
            what: "physical range ending just past MAXPHYADDR",
            operation: make(region(NOWHERE, (1 << PHYS_BITS) - K4, 2 * K4, RWK)),
            expected: |e| *e == AspaceError::PhysTooWide { addr: (1 << PHYS_BITS) + K4 - 1, phys_bits: PHYS_BITS },
        },
    ]
}

fn invalid_flags(e: &AspaceError) -> bool {
    matches!(e, AspaceError::InvalidFlags { .. })
}

fn add_cases() -> Vec<Case> {
    let e = EAGER_REGION;
    let mut cases = bad_numbers(Operation::Add);
    cases.extend([
        Case {
            what: "the same region again",
            operation: Operation::Add(e),
            expected: |err| *err == AspaceError::Overlap { existing: EAGER_REGION },
        },
        Case {
            what: "overlapping the start",
            operation: Operation::Add(region(e.va.0 - K4, 0, 2 * K4, RWK)),
            expected: |err| *err == AspaceError::Overlap { existing: EAGER_REGION },
        },
        Case {
            what: "overlapping the end",
            operation: Operation::Add(region(e.last() + 1 - K4, 0, 2 * K4, RWK)),
            expected: |err| *err == AspaceError::Overlap { existing: EAGER_REGION },
        },
        Case {
            what: "inside an existing region",
            operation: Operation::Add(region(e.va.0 + M2, 0, K4, RWK)),
            expected: |err| *err == AspaceError::Overlap { existing: EAGER_REGION },
        },
        Case {
            what: "covering two regions (the lowest is named)",
            operation: Operation::Add(region(e.va.0 - K4, 0, 2 * G, RWK)),
            expected: |err| *err == AspaceError::Overlap { existing: EAGER_REGION },
        },
        Case {
            what: "overlapping a lazy region with touched pages",
            operation: Operation::Add(region(LAZY_REGION.va.0, 0, K4, RWK.union(EAGER))),
            expected: |err| *err == AspaceError::Overlap { existing: LAZY_REGION },
        },
        Case {
            what: "writable but not readable",
            operation: Operation::Add(region(NOWHERE, 0, K4, Protection::WRITE)),
            expected: invalid_flags,
        },
        Case {
            what: "executable but not readable",
            operation: Operation::Add(region(NOWHERE, 0, K4, Protection::EXEC.union(EAGER))),
            expected: invalid_flags,
        },
        Case {
            what: "grows both down and up",
            operation: Operation::Add(region(
                NOWHERE,
                0,
                K4,
                RWK.union(ANON).union(Protection::GROW_DOWN).union(Protection::GROW_UP),
            )),
            expected: invalid_flags,
        },
        Case {
            what: "grows without being anonymous",
            operation: Operation::Add(region(NOWHERE, 0, K4, RWK.union(Protection::GROW_DOWN))),
            expected: invalid_flags,
        },
        Case {
            what: "anonymous with a physical address",
            operation: Operation::Add(region(NOWHERE, 0x1000, K4, RWK.union(ANON))),
            expected: invalid_flags,
        },
        Case {
            what: "unknown flag bits",
            operation: Operation::Add(region(NOWHERE, 0, K4, Protection::from_bits_retain(RWK.bits() | 1 << 20))),
            expected: invalid_flags,
        },
    ]);
    cases
}

fn remove_cases() -> Vec<Case> {
    let mut cases = bad_numbers(Operation::Remove);
    cases.extend(naming_cases(Operation::Remove));
    cases.push(Case {
        what: "a pinned region",
        operation: Operation::Remove(PINNED_REGION),
        expected: |e| *e == AspaceError::Pinned { region: PINNED_REGION },
    });
    cases.push(Case {
        what: "part of a pinned region",
        operation: Operation::Remove(region(PINNED_REGION.va.0, 0, K4, RWK)),
        expected: |e| *e == AspaceError::Pinned { region: PINNED_REGION },
    });
    cases
}

/// Regions that name no existing region, or name it wrongly.
fn naming_cases(make: fn(Region) -> Operation) -> Vec<Case> {
    let e = EAGER_REGION;
    vec![
        Case {
            what: "no region there",
            operation: make(region(NOWHERE, 0, K4, RWK)),
            expected: |err| *err == AspaceError::NoSuchRegion { va: NOWHERE },
        },
        Case {
            what: "another physical address than the region's",
            operation: make(region(e.va.0, e.pa.0 + K4, K4, RWK)),
            expected: |err| matches!(err, AspaceError::RegionMismatch { existing, .. } if *existing == EAGER_REGION),
        },
        Case {
            what: "running past the region's end",
            operation: make(region(e.va.0 + K4, e.pa.0 + K4, e.len, RWK)),
            expected: |err| matches!(err, AspaceError::RegionMismatch { existing, .. } if *existing == EAGER_REGION),
        },
        Case {
            what: "straddling two regions",
            operation: make(region(LAZY_REGION.last() + 1 - K4, LAZY_REGION.last_pa() + 1 - K4, G, RWK)),
            expected: |err| matches!(err, AspaceError::RegionMismatch { existing, .. } if *existing == LAZY_REGION),
        },
        Case {
            what: "an anonymous region named with a physical address",
            operation: make(region(ANON_REGION.va.0, 0x1000, K4, RWK)),
            expected: |err| matches!(err, AspaceError::RegionMismatch { existing, .. } if *existing == ANON_REGION),
        },
    ]
}

fn move_cases() -> Vec<Case> {
    let e = EAGER_REGION;
    let mut cases = bad_numbers(|region| Operation::Move(region, 0x100_0000));
    cases.extend(naming_cases(|region| Operation::Move(region, 0x100_0000)));
    cases.extend([
        Case {
            what: "to a misaligned physical address",
            operation: Operation::Move(e, 0x100_0800),
            expected: |err| {
                *err == AspaceError::Misaligned { kind: AddressKind::Physical, value: 0x100_0800, required: K4 }
            },
        },
        Case {
            what: "to physical memory beyond MAXPHYADDR",
            operation: Operation::Move(e, (1 << PHYS_BITS) - K4),
            expected: |err| {
                *err == AspaceError::PhysTooWide {
                    addr: (1 << PHYS_BITS) - K4 + EAGER_REGION.len - 1,
                    phys_bits: PHYS_BITS,
                }
            },
        },
        Case {
            what: "to a physical range that wraps",
            operation: Operation::Move(e, 0xffff_ffff_ffff_f000),
            expected: |err| matches!(err, AspaceError::LengthOverflow { kind: AddressKind::Physical, .. }),
        },
        Case {
            what: "a pinned region",
            operation: Operation::Move(PINNED_REGION, 0x100_0000),
            expected: |err| *err == AspaceError::Pinned { region: PINNED_REGION },
        },
        Case {
            what: "an anonymous region",
            operation: Operation::Move(ANON_REGION, 0x100_0000),
            expected: |err| matches!(err, AspaceError::Unsupported { .. }),
        },
    ]);
    cases
}

fn protect_cases() -> Vec<Case> {
    let mut cases = bad_numbers(|region| Operation::Protect(region, RWK));
    cases.extend(naming_cases(|region| Operation::Protect(region, RWK)));
    cases.extend([
        Case {
            what: "to writable but not readable",
            operation: Operation::Protect(EAGER_REGION, Protection::WRITE.union(KERN)),
            expected: invalid_flags,
        },
        Case {
            what: "to unknown flag bits",
            operation: Operation::Protect(EAGER_REGION, Protection::from_bits_retain(RWK.bits() | 1 << 30)),
            expected: invalid_flags,
        },
        Case {
            what: "an anonymous region to a physical one",
            operation: Operation::Protect(ANON_REGION, RWK),
            expected: invalid_flags,
        },
        Case {
            what: "a physical region to an anonymous one",
            operation: Operation::Protect(EAGER_REGION, RWK.union(ANON)),
            expected: invalid_flags,
        },
        Case {
            what: "an anonymous region to a growing one",
            operation: Operation::Protect(ANON_REGION, RWK.union(ANON).union(Protection::GROW_UP)),
            expected: invalid_flags,
        },
    ]);
    cases
}

fn growth_limit_cases() -> Vec<Case> {
    vec![
        Case {
            what: "zero maximum size",
            operation: Operation::GrowthLimits(0, K4),
            expected: |e| *e == AspaceError::ZeroLength,
        },
        Case {
            what: "zero guard gap",
            operation: Operation::GrowthLimits(M2, 0),
            expected: |e| *e == AspaceError::ZeroLength,
        },
        Case {
            what: "misaligned maximum size",
            operation: Operation::GrowthLimits(M2 + 1, K4),
            expected: |e| *e == AspaceError::Misaligned { kind: AddressKind::Length, value: M2 + 1, required: K4 },
        },
    ]
}

/// Runs every case on one populated space: each is refused as expected and
/// leaves the space exactly as it was.
fn run_cases(table: &str, cases: Vec<Case>) {
    let (machine, mut space) = populated();
    let before = snapshot(&space, &machine);
    let before_limits = space.growth_limits();
    for case in cases {
        let result = case.operation.apply(&mut space);
        let error = match result {
            Ok(()) => panic!("{table}: {} ({:?}) was accepted", case.what, case.operation),
            Err(error) => error,
        };
        assert!(
            (case.expected)(&error),
            "{table}: {} ({:?}) got the wrong error: {error:?}",
            case.what,
            case.operation
        );
        assert_eq!(snapshot(&space, &machine), before, "{table}: {} changed the space", case.what);
        assert_eq!(space.growth_limits(), before_limits, "{table}: {} changed the growth limits", case.what);
        assert_eq!(space.verify(), Ok(()), "{table}: {}", case.what);
    }
    assert!(machine.violations().is_empty(), "{:?}", machine.violations());
}

#[test]
fn add_refuses_bad_input_and_changes_nothing() {
    run_cases("add", add_cases());
}

#[test]
fn remove_refuses_bad_input_and_changes_nothing() {
    run_cases("remove", remove_cases());
}

#[test]
fn move_refuses_bad_input_and_changes_nothing() {
    run_cases("move", move_cases());
}

#[test]
fn protect_refuses_bad_input_and_changes_nothing() {
    run_cases("protect", protect_cases());
}

#[test]
fn growth_limits_refuse_bad_input() {
    run_cases("growth limits", growth_limit_cases());
}

/// A region that holds a running thread's stack or code is the kernel's
/// business (it refuses that edit on live spaces); the paging core itself
/// refuses destroy while a thread is inside, and destroy of the space that
/// is loaded.
#[test]
fn destroy_is_refused_while_in_use_and_changes_nothing() {
    let (machine, mut space) = populated();
    let before = snapshot(&space, &machine);
    space.add_thread(7);
    assert!(matches!(space.destroy(), Err(AspaceError::Busy { .. })));
    assert_eq!(snapshot(&space, &machine), before);
    space.remove_thread(7);
    // Still loaded in CR3.
    assert!(matches!(space.destroy(), Err(AspaceError::Busy { .. })));
    assert_eq!(snapshot(&space, &machine), before);
    assert_eq!(space.verify(), Ok(()));
}

/// After destroy, every operation is refused with UnknownAddressSpace (or,
/// for the region-naming ones, the error their checks find first), and no
/// frame comes back into use.
#[test]
fn operations_after_destroy_are_refused() {
    let (machine, mut space) = populated();
    let mut other = paging::PagingAspace::new(machine.clone(), "other", None).unwrap();
    other.switch_to();
    space.destroy().expect("destroy");
    let frames_after_destroy = machine.frames_in_use();
    let unknown = |e: &AspaceError| matches!(e, AspaceError::UnknownAddressSpace { name } if name == "test");
    let operations = [
        Operation::Add(region(NOWHERE, 0, K4, RWK)),
        Operation::Add(EAGER_REGION),
        Operation::Remove(EAGER_REGION),
        Operation::Move(LAZY_REGION, 0x100_0000),
        Operation::Protect(LAZY_REGION, RWK),
    ];
    for operation in operations {
        let error = operation.apply(&mut space).expect_err("accepted after destroy");
        assert!(unknown(&error), "{operation:?} after destroy: {error:?}");
        assert_eq!(machine.frames_in_use(), frames_after_destroy);
        assert!(space.regions().is_empty());
    }
    assert!(unknown(&space.destroy().expect_err("destroyed twice")));
    assert_eq!(space.mappings().map(|runs| runs.count()), None);
    drop(other);
}

/// A region whose backing is read-only (a shared mapping of a read-only
/// file) can never be made writable: not when added, not by a protect of
/// the whole or of a part, and its parts keep the flag through every edit,
/// so no later edit can grant it either. A refusal changes nothing.
#[test]
fn a_read_only_backing_is_never_made_writable() {
    const RO: Protection = Protection::READ_ONLY_BACKING;
    let backed = Region::new(5 * G, 0x40_0000, 16 * K4, Protection::READ.union(KERN).union(RO));
    let (machine, mut space) = populated();
    assert!(matches!(
        space.add_region(Region { prot: RWK.union(RO), ..backed }),
        Err(AspaceError::InvalidFlags { .. })
    ));
    space.add_region(backed).expect("a read-only backed region");
    read(&mut space, &machine, backed.va.0).expect("its first page faults in");
    let part = Region { va: VirtAddr(backed.va.0 + K4), pa: PhysAddr(backed.pa.0 + K4), len: 2 * K4, ..backed };
    for (target, prot) in [(backed, RWK), (backed, RWK.union(RO)), (part, RWK), (part, RWK.union(RO))] {
        let before = snapshot(&space, &machine);
        assert_eq!(space.protect_region(target, prot), Err(AspaceError::ReadOnlyBacking { region: backed }));
        assert_eq!(snapshot(&space, &machine), before, "a refused protect of {target} to {prot} changed something");
    }
    // What the backing allows goes through, and the parts keep the flag.
    let rx = Protection::READ.union(Protection::EXEC).union(KERN).union(RO);
    space.protect_region(part, rx).expect("adding execute");
    space.move_region(Region { len: K4, ..backed }, PhysAddr(0x80_0000)).expect("moving a page");
    let pieces: Vec<Region> = space.regions().iter().filter(|r| r.overlaps(&backed)).copied().collect();
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    for piece in &pieces {
        assert!(piece.prot.contains(RO), "{piece} lost its read-only backing");
        assert_eq!(space.protect_region(*piece, RWK), Err(AspaceError::ReadOnlyBacking { region: *piece }));
    }
    assert!(write(&mut space, &machine, backed.va.0, 1).is_err(), "a write reached the backing");
    assert_eq!(space.verify(), Ok(()));
}
