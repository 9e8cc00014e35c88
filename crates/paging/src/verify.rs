//! Checking that the tables say exactly what the region set says.

use crate::edit::canonical;
use crate::entry::{LeafPermissions, Level, PageSize, PageTableEntry, ENTRIES_PER_TABLE};
use crate::machine::Machine;
use crate::space::PagingAspace;
use crate::table::TableRef;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use aspace::{PhysAddr, Protection, Region, RegionSet, VirtAddr};
use core::fmt;

/// One way the tables disagree with the region set or with the documented
/// shape of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// A page is mapped where no region is, or sticks out of its region.
    Unjustified {
        /// The page's virtual start.
        va: VirtAddr,
        /// Its size.
        size: PageSize,
    },
    /// A page maps the wrong physical memory.
    WrongAddress {
        /// The page's virtual start.
        va: VirtAddr,
        /// What it maps.
        found: PhysAddr,
        /// What its region says.
        expected: PhysAddr,
    },
    /// A leaf's attribute bits are not those its region asks for (or the
    /// region has no READ and should not be mapped at all).
    WrongPermissions {
        /// The page's virtual start.
        va: VirtAddr,
        /// The leaf.
        entry: PageTableEntry,
        /// Its region.
        region: Region,
    },
    /// An eager region is not fully mapped.
    EagerNotMapped {
        /// The region.
        region: Region,
        /// How many of its bytes are mapped.
        mapped: u64,
    },
    /// A present entry points at a table with no present entry.
    EmptyTable {
        /// The level of the empty table.
        level: Level,
        /// Its physical address.
        table: PhysAddr,
        /// The first virtual address it covers.
        va: VirtAddr,
    },
    /// An entry pointing at a table is not present+writable without NX, or
    /// lacks U above a user page.
    BadIntermediate {
        /// The level of the table holding the entry.
        level: Level,
        /// The first virtual address the entry covers.
        va: VirtAddr,
        /// The entry.
        entry: PageTableEntry,
    },
    /// An anonymous page, or a frame the space owns for one, breaks the
    /// rules: each page of an anonymous region is a 4 KiB page mapping the
    /// frame the space owns for it, frames are owned only for pages of
    /// anonymous regions, and no frame is owned twice.
    AnonymousFrame {
        /// The page's virtual start.
        va: VirtAddr,
        /// The frame it maps, or that is owned for it.
        frame: PhysAddr,
        /// What is wrong.
        problem: &'static str,
    },
    /// A file backing lies (in part) outside every anonymous region.
    FileBacking {
        /// The first address of the backing not in an anonymous region.
        va: VirtAddr,
        /// What is wrong.
        problem: &'static str,
    },
    /// An entry pointing at a table does not hold, in its count bits
    /// ([`PageTableEntry::PRESENT_COUNT`]), how many of that table's
    /// entries are present.
    WrongPresentCount {
        /// The level of the table holding the entry.
        level: Level,
        /// The first virtual address the entry covers.
        va: VirtAddr,
        /// The entry.
        entry: PageTableEntry,
        /// How many entries of the table below are present.
        present: u32,
    },
    /// An entry has reserved bits set.
    ReservedBits {
        /// The level of the table holding the entry.
        level: Level,
        /// The first virtual address the entry covers.
        va: VirtAddr,
        /// The entry.
        entry: PageTableEntry,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Unjustified { va, size } => write!(f, "{size} page at {va} is in no region"),
            VerifyError::WrongAddress { va, found, expected } => {
                write!(f, "page at {va} maps {found}, its region says {expected}")
            }
            VerifyError::WrongPermissions { va, entry, region } => {
                write!(f, "page at {va} has entry {entry}, its region is {region}")
            }
            VerifyError::EagerNotMapped { region, mapped } => {
                write!(f, "eager region {region} has only {mapped:#x} bytes mapped")
            }
            VerifyError::EmptyTable { level, table, va } => write!(f, "empty {level} at {table} covering {va}"),
            VerifyError::BadIntermediate { level, va, entry } => {
                write!(f, "{level} entry covering {va} is {entry}, not a permissive table pointer")
            }
            VerifyError::AnonymousFrame { va, frame, problem } => {
                write!(f, "anonymous page at {va} with frame {frame}: {problem}")
            }
            VerifyError::FileBacking { va, problem } => write!(f, "file backing at {va}: {problem}"),
            VerifyError::WrongPresentCount { level, va, entry, present } => {
                write!(
                    f,
                    "{level} entry covering {va} is {entry}, counting {} present entries of {present}",
                    entry.present_count()
                )
            }
            VerifyError::ReservedBits { level, va, entry } => {
                write!(f, "{level} entry covering {va} has reserved bits: {entry}")
            }
        }
    }
}

struct Checker<'a, M: Machine + ?Sized> {
    machine: &'a M,
    regions: &'a RegionSet,
    /// The frames owned for anonymous pages, by page.
    anonymous: BTreeMap<u64, PhysAddr>,
    /// The pages that map the zero frame, and that frame.
    zero_pages: BTreeSet<u64>,
    zero_frame: Option<PhysAddr>,
    virt_bits: u32,
    phys_bits: u32,
    nx: bool,
    /// Bytes mapped per region, keyed by the region's start.
    mapped: BTreeMap<u64, u64>,
    errors: Vec<VerifyError>,
}

/// What a table holds, as seen by its parent entry.
struct Contents {
    any_present: bool,
    /// How many entries are present.
    present: u32,
    any_user_leaf: bool,
}

impl<M: Machine + ?Sized> Checker<'_, M> {
    fn visit(&mut self, table: TableRef, level: Level, base: u64) -> Contents {
        let mut contents = Contents { any_present: false, present: 0, any_user_leaf: false };
        for index in 0..ENTRIES_PER_TABLE {
            let entry = table.get(self.machine, index);
            if !entry.is_present() {
                continue;
            }
            contents.any_present = true;
            contents.present += 1;
            let reduced = base + index as u64 * level.entry_span();
            let va = canonical(reduced, self.virt_bits);
            if entry.reserved_bits(level, self.phys_bits, self.nx) != 0 {
                self.errors.push(VerifyError::ReservedBits { level, va, entry });
                continue;
            }
            if entry.is_leaf(level) {
                let size = level.page_size().expect("leaves exist only where pages have a size");
                self.check_leaf(va, size, entry, level);
                contents.any_user_leaf |= entry.is_user();
                continue;
            }
            let lower = level.lower().expect("page-table entries are leaves");
            let child = TableRef::below(entry, level).expect("a present entry that is no leaf points at a table");
            let below = self.visit(child, lower, reduced);
            // A table the tree does not own (a shared or borrowed one) may
            // stay empty, and keeps no count.
            let kept = entry.has(PageTableEntry::KEEP_TABLE);
            if !below.any_present && !kept {
                self.errors.push(VerifyError::EmptyTable { level: lower, table: child.addr(), va });
            }
            if !kept && entry.present_count() != below.present {
                self.errors.push(VerifyError::WrongPresentCount { level, va, entry, present: below.present });
            }
            let permissive = entry.is_writable() && !entry.is_no_execute() && !entry.is_global();
            if !permissive || (below.any_user_leaf && !entry.is_user()) {
                self.errors.push(VerifyError::BadIntermediate { level, va, entry });
            }
            contents.any_user_leaf |= below.any_user_leaf;
        }
        contents
    }

    fn check_leaf(&mut self, va: VirtAddr, size: PageSize, entry: PageTableEntry, level: Level) {
        let Some(region) = region_at(self.regions, va.0).filter(|r| r.covers(va.0, size.bytes())).copied() else {
            self.errors.push(VerifyError::Unjustified { va, size });
            return;
        };
        *self.mapped.entry(region.va.0).or_insert(0) += size.bytes();
        let expected = if region.is_anonymous() {
            let found = entry.address(level);
            if size != PageSize::Size4K {
                self.errors.push(VerifyError::AnonymousFrame { va, frame: found, problem: "not a 4 KiB page" });
                return;
            }
            if self.zero_pages.contains(&va.0) {
                // The zero page: that frame, and never writable.
                let perms = LeafPermissions::from_protection(region.prot).read_only();
                let zero = self.zero_frame.unwrap_or(PhysAddr(u64::MAX));
                let wanted = PageTableEntry::leaf(zero, size, perms, self.nx);
                if found != zero || entry.attributes(level) != wanted.attributes(level) {
                    self.errors.push(VerifyError::AnonymousFrame {
                        va,
                        frame: found,
                        problem: "a zero page must map the zero frame read-only",
                    });
                }
                return;
            }
            let Some(owned) = self.anonymous.get(&va.0).copied() else {
                self.errors.push(VerifyError::AnonymousFrame { va, frame: found, problem: "no frame is owned for it" });
                return;
            };
            owned
        } else {
            region.translate(va.0)
        };
        if entry.address(level) != expected {
            self.errors.push(VerifyError::WrongAddress { va, found: entry.address(level), expected });
        }
        let perms = LeafPermissions::from_protection(region.prot);
        let wanted = PageTableEntry::leaf(expected, size, perms, self.nx);
        // An anonymous page may also be mapped read-only in a writable region:
        // its frame is, or was, shared copy-on-write since a fork, and the
        // next write fault copies it or makes it writable.
        let copy_on_write = PageTableEntry::leaf(expected, size, perms.read_only(), self.nx);
        let allowed = entry.attributes(level) == wanted.attributes(level)
            || (region.is_anonymous() && entry.attributes(level) == copy_on_write.attributes(level));
        if !region.prot.contains(Protection::READ) || !allowed {
            self.errors.push(VerifyError::WrongPermissions { va, entry, region });
        }
    }
}

/// The region holding `va`, found without [`RegionSet::find`]: the check
/// must not trust the lookup whose results it checks, which is one of the
/// bodies the paging lab has students write (and a student kit's `as verify
/// base` must work before it is written).
fn region_at(regions: &RegionSet, va: u64) -> Option<&Region> {
    regions.overlapping(va, 1).next()
}

/// `Ok` when anonymous regions hold every byte of `[va, last]`, else
/// the first byte they do not.
fn covered_by_anonymous_regions(regions: &RegionSet, va: u64, last: u64) -> Result<(), u64> {
    let mut next = va;
    loop {
        let region = region_at(regions, next).filter(|r| r.is_anonymous()).ok_or(next)?;
        if region.last() >= last {
            return Ok(());
        }
        next = region.last() + 1;
    }
}

impl<M: Machine> PagingAspace<M> {
    /// Checks the tables against the region set: every present translation
    /// lies inside a region and has exactly its physical address and
    /// rights, every eager (and readable) region is fully mapped, no present
    /// entry points at an empty table, every entry pointing at a table is
    /// present, writable and without NX (and U above user pages), and no
    /// entry has reserved bits. For anonymous regions: every page mapped is
    /// a 4 KiB page mapping the frame the space owns for it; frames are
    /// owned only for pages of anonymous regions, each frame once; file
    /// backings lie inside anonymous regions. A destroyed space has nothing
    /// to check.
    pub fn verify(&self) -> Result<(), Vec<VerifyError>> {
        let Some(tables) = self.tables() else { return Ok(()) };
        let features = self.machine().features();
        let mut checker = Checker {
            machine: self.machine(),
            regions: self.region_set(),
            anonymous: self.anonymous_frames().map(|(page, frame)| (page.0, frame)).collect(),
            zero_pages: self.zero_pages().collect(),
            zero_frame: self.machine().zero_frame(),
            virt_bits: features.virt_width().bits(),
            phys_bits: features.phys_bits,
            nx: features.nx,
            mapped: BTreeMap::new(),
            errors: Vec::new(),
        };
        checker.visit(tables.root_table(), Level::root(features.la57), 0);
        let mut owners = BTreeMap::new();
        for (&page, &frame) in &checker.anonymous {
            let va = VirtAddr(page);
            if !region_at(self.region_set(), page).is_some_and(Region::is_anonymous) {
                checker.errors.push(VerifyError::AnonymousFrame {
                    va,
                    frame,
                    problem: "owned outside every anonymous region",
                });
            }
            if owners.insert(frame, page).is_some() {
                checker.errors.push(VerifyError::AnonymousFrame { va, frame, problem: "owned for two pages" });
            }
        }
        for backing in self.file_backings() {
            if let Err(va) = covered_by_anonymous_regions(self.region_set(), backing.va.0, backing.last()) {
                checker
                    .errors
                    .push(VerifyError::FileBacking { va: VirtAddr(va), problem: "outside every anonymous region" });
            }
        }
        for region in self.region_set().iter() {
            if region.prot.contains(Protection::EAGER | Protection::READ) {
                let mapped = checker.mapped.get(&region.va.0).copied().unwrap_or(0);
                if mapped != region.len {
                    checker.errors.push(VerifyError::EagerNotMapped { region: *region, mapped });
                }
            }
        }
        if checker.errors.is_empty() {
            Ok(())
        } else {
            Err(checker.errors)
        }
    }
}
