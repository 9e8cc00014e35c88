//! Bad input to the vocabulary every implementation builds on, table by
//! table: region validation, the region set's insert and update, and the
//! parsers of typed numbers and flags. Each gets its typed error and a
//! refused change leaves the region set exactly as it was.

use aspace::parse::{parse_number, parse_protection, ParseError};
use aspace::{AddressKind, AspaceError, Characteristics, Protection, Region, RegionSet, VirtWidth};

const PAGE: Characteristics = Characteristics { granularity: 4096, alignment: 4096 };
const RW: Protection = Protection::READ.union(Protection::WRITE);

/// Validation of regions on a 48-bit machine with MAXPHYADDR 46 (and the
/// 57-bit cases where the answer differs).
#[test]
fn validate_gives_each_bad_region_its_error() {
    let cases: &[(&str, Region, VirtWidth, AspaceError)] = &[
        ("zero length", Region::new(0x1000, 0, 0, RW), VirtWidth::Bits48, AspaceError::ZeroLength),
        (
            "virtual wrap",
            Region::new(0xffff_ffff_ffff_f000, 0, 0x2000, RW),
            VirtWidth::Bits48,
            AspaceError::LengthOverflow { start: 0xffff_ffff_ffff_f000, len: 0x2000, kind: AddressKind::Virtual },
        ),
        (
            "physical wrap",
            Region::new(0x1000, 0xffff_ffff_ffff_f000, 0x2000, RW),
            VirtWidth::Bits48,
            AspaceError::LengthOverflow { start: 0xffff_ffff_ffff_f000, len: 0x2000, kind: AddressKind::Physical },
        ),
        (
            "non-canonical with 4 levels",
            Region::new(0x0000_8000_0000_0000, 0, 0x1000, RW),
            VirtWidth::Bits48,
            AspaceError::NonCanonical { addr: 0x0000_8000_0000_0000 },
        ),
        (
            "non-canonical with 5 levels",
            Region::new(0x0100_0000_0000_0000, 0, 0x1000, RW),
            VirtWidth::Bits57,
            AspaceError::NonCanonical { addr: 0x0100_0000_0000_0000 },
        ),
        (
            "across the hole with 4 levels",
            Region::new(0x0000_7fff_ffff_f000, 0, 0x2000, RW),
            VirtWidth::Bits48,
            AspaceError::CrossesCanonicalHole { start: 0x0000_7fff_ffff_f000, len: 0x2000 },
        ),
        (
            "across the hole with 5 levels",
            Region::new(0x00ff_ffff_ffff_f000, 0, 0x2000, RW),
            VirtWidth::Bits57,
            AspaceError::CrossesCanonicalHole { start: 0x00ff_ffff_ffff_f000, len: 0x2000 },
        ),
        (
            "misaligned va",
            Region::new(0x1008, 0, 0x1000, RW),
            VirtWidth::Bits48,
            AspaceError::Misaligned { kind: AddressKind::Virtual, value: 0x1008, required: 4096 },
        ),
        (
            "misaligned pa",
            Region::new(0x1000, 0x10, 0x1000, RW),
            VirtWidth::Bits48,
            AspaceError::Misaligned { kind: AddressKind::Physical, value: 0x10, required: 4096 },
        ),
        (
            "misaligned length",
            Region::new(0x1000, 0, 0x1001, RW),
            VirtWidth::Bits48,
            AspaceError::Misaligned { kind: AddressKind::Length, value: 0x1001, required: 4096 },
        ),
        (
            "beyond MAXPHYADDR",
            Region::new(0x1000, 1 << 46, 0x1000, RW),
            VirtWidth::Bits48,
            AspaceError::PhysTooWide { addr: (1 << 46) + 0xfff, phys_bits: 46 },
        ),
    ];
    for (what, region, width, expected) in cases {
        assert_eq!(region.validate(PAGE, *width, 46).as_ref(), Err(expected), "{what}");
    }
    // The same address that is non-canonical with 4 levels is fine with 5.
    assert_eq!(Region::new(0x0000_8000_0000_0000, 0, 0x1000, RW).validate(PAGE, VirtWidth::Bits57, 52), Ok(()));
}

#[test]
fn contradicting_flags_are_refused() {
    let flags = [
        Protection::WRITE,
        Protection::EXEC,
        Protection::WRITE | Protection::EXEC | Protection::KERN,
        RW | Protection::ANON | Protection::GROW_DOWN | Protection::GROW_UP,
        RW | Protection::GROW_UP,
        Protection::from_bits_retain(RW.bits() | 1 << 31),
    ];
    for prot in flags {
        assert!(matches!(prot.validate(), Err(AspaceError::InvalidFlags { .. })), "{prot:?} accepted");
    }
    let anonymous_with_pa = Region::new(0x1000, 0x2000, 0x1000, RW | Protection::ANON);
    assert!(matches!(anonymous_with_pa.validate(PAGE, VirtWidth::Bits48, 46), Err(AspaceError::InvalidFlags { .. })));
}

/// Overlapping inserts and bad updates are refused and change nothing.
#[test]
fn region_set_refuses_overlaps_and_bad_updates() {
    let a = Region::new(0x10_0000, 0, 0x4000, RW);
    let b = Region::new(0x20_0000, 0, 0x4000, RW);
    let mut set = RegionSet::new();
    set.insert(a).unwrap();
    set.insert(b).unwrap();
    let before: Vec<Region> = set.iter().copied().collect();
    let inserts = [
        ("same", a, AspaceError::Overlap { existing: a }),
        ("start", Region::new(0xf_f000, 0, 0x2000, RW), AspaceError::Overlap { existing: a }),
        ("end", Region::new(0x10_3000, 0, 0x2000, RW), AspaceError::Overlap { existing: a }),
        ("inside", Region::new(0x10_1000, 0, 0x1000, RW), AspaceError::Overlap { existing: a }),
        ("both", Region::new(0x0, 0, 0x40_0000, RW), AspaceError::Overlap { existing: a }),
        ("zero", Region::new(0x30_0000, 0, 0, RW), AspaceError::ZeroLength),
        (
            "wrap",
            Region::new(0xffff_ffff_ffff_f000, 0, 0x2000, RW),
            AspaceError::LengthOverflow { start: 0xffff_ffff_ffff_f000, len: 0x2000, kind: AddressKind::Virtual },
        ),
    ];
    for (what, region, expected) in inserts {
        assert_eq!(set.insert(region), Err(expected), "{what}");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), before, "{what} changed the set");
    }
    let nowhere = Region::new(0x50_0000, 0, 0x1000, RW);
    assert_eq!(set.update(nowhere), Err(AspaceError::NoSuchRegion { va: 0x50_0000 }));
    let inner = Region::new(0x10_1000, 0, 0x1000, RW);
    assert_eq!(set.update(inner), Err(AspaceError::RegionMismatch { requested: inner, existing: a }));
    let longer = Region::new(0x10_0000, 0, 0x5000, RW);
    assert_eq!(set.update(longer), Err(AspaceError::RegionMismatch { requested: longer, existing: a }));
    assert_eq!(set.remove(aspace::VirtAddr(0x10_1000)), None, "remove names a region by its start");
    assert_eq!(set.iter().copied().collect::<Vec<_>>(), before);
}

#[test]
fn parsers_refuse_bad_words() {
    let numbers = [
        ("", ParseError::Empty),
        ("0x", ParseError::Empty),
        ("12z", ParseError::BadDigit('z')),
        ("0xfz", ParseError::BadDigit('z')),
        ("-1", ParseError::BadDigit('-')),
        ("18446744073709551616", ParseError::TooLarge),
        ("0x1_0000_0000_0000_0000", ParseError::TooLarge),
        ("16777216t", ParseError::TooLarge),
    ];
    for (word, expected) in numbers {
        assert_eq!(parse_number(word), Err(expected), "{word:?}");
    }
    let flags = [
        ("rwq", ParseError::UnknownFlag('q')),
        ("rr", ParseError::RepeatedFlag('r')),
        ("r w", ParseError::UnknownFlag(' ')),
    ];
    for (word, expected) in flags {
        assert_eq!(parse_protection(word), Err(expected), "{word:?}");
    }
}
