//! The page index: a page table for the memory map.
//!
//! `find(va)` is the question every lazy fault asks. The B+-tree answers it
//! with about twenty comparisons; this index answers it the way the MMU
//! translates an address: the virtual page number, split into 9-bit
//! pieces, picks one entry per level of a radix tree of 512-entry tables,
//! with no comparison at all. Each entry covers an aligned run of pages
//! (one page at level 0, 512 at level 1, ..., 2^45 at level 5, six levels
//! covering all 2^52 pages of the 64-bit space) and says one of:
//!
//! - **empty**: no region has a byte in these pages;
//! - **region**: one region holds *every* byte of these pages; the entry
//!   names its slot in [`PageIndex::slots`], where a copy of it is kept;
//! - **ask the tree**: a region with a start or end inside a page has a byte
//!   here (see below); the B+-tree knows;
//! - **table**: the run is split, the next level down has the details.
//!
//! As a page table maps a 2 MiB-aligned run with one entry one level up, a
//! region that covers an entry's whole aligned run is recorded in that one
//! entry, so a gigabyte-aligned gigabyte costs one entry, not 262,144.
//!
//! Regions whose start and length are whole pages (every region an address
//! space makes: it refuses anything else) are indexed exactly. A region
//! that starts or ends inside a page may share that page with another
//! region, which no single entry can say, so its pages are marked "ask the
//! tree" and lookups there take the B+-tree's path: slower, never wrong.
//!
//! The index holds no ordering: the B+-tree beside it still answers every
//! other question (overlaps, neighbours, iteration). It changes only when
//! the set does: insert, remove, replace, update, clear. The set keeps it
//! only while it holds enough regions for a walk to beat a search of the
//! tree (`PAGE_INDEX_FROM`).

use crate::Region;
use alloc::vec::Vec;

/// log2 of the page size the index works in.
const PAGE_SHIFT: u32 = 12;
/// Bits of the page number each level resolves.
const BITS_PER_LEVEL: u32 = 9;
/// Entries in one table.
const ENTRIES: usize = 1 << BITS_PER_LEVEL;
/// The highest level a root can be at: six levels of 9 bits cover the 52
/// bits of a 64-bit page number (a root there uses only 128 entries).
const TOP_LEVEL: u32 = 5;

/// log2 of the pages one entry at `level` covers; a table at `level`
/// covers `run_shift(level + 1)`, at most 54 bits, more than a page number has.
#[inline(always)]
const fn run_shift(level: u32) -> u32 {
    level * BITS_PER_LEVEL
}

/// An entry, packed in a `u32` so that a table is 2 KiB.
///
/// `0` is empty, `1` is "ask the tree", a value with [`TABLE_BIT`] set names
/// a table, any other value `v` names region slot `v - FIRST_SLOT`.
type RawEntry = u32;
const EMPTY: RawEntry = 0;
const ASK_THE_TREE: RawEntry = 1;
const FIRST_SLOT: RawEntry = 2;
const TABLE_BIT: RawEntry = 1 << 31;

/// An entry, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Empty,
    AskTheTree,
    Region(u32),
    Table(u32),
}

impl Entry {
    #[inline(always)]
    fn decode(raw: RawEntry) -> Entry {
        match raw {
            EMPTY => Entry::Empty,
            ASK_THE_TREE => Entry::AskTheTree,
            _ if raw & TABLE_BIT != 0 => Entry::Table(raw & !TABLE_BIT),
            _ => Entry::Region(raw - FIRST_SLOT),
        }
    }

    fn encode(self) -> RawEntry {
        match self {
            Entry::Empty => EMPTY,
            Entry::AskTheTree => ASK_THE_TREE,
            Entry::Region(slot) => {
                assert!(slot < TABLE_BIT - FIRST_SLOT, "page index: too many regions");
                slot + FIRST_SLOT
            }
            Entry::Table(table) => {
                assert!(table < TABLE_BIT, "page index: too many tables");
                table | TABLE_BIT
            }
        }
    }
}

/// One table: 512 entries, 2 KiB, aligned to a cache line.
#[derive(Clone)]
#[repr(C, align(64))]
struct Table([RawEntry; ENTRIES]);

/// What the index says about an address.
pub(crate) enum PageLookup<'a> {
    /// This region holds the address.
    Found(&'a Region),
    /// No region holds the address.
    Absent,
    /// A region that starts or ends inside this page is near: search the tree.
    AskTheTree,
}

/// The pages of a region: the first and last page numbers, and whether the
/// region starts or ends inside them.
#[derive(Clone, Copy)]
struct Pages {
    first: u64,
    last: u64,
    starts_inside: bool,
    ends_inside: bool,
}

impl Pages {
    fn of(region: &Region) -> Pages {
        let last_byte = region.last();
        let page_mask = (1 << PAGE_SHIFT) - 1;
        Pages {
            first: region.va.0 >> PAGE_SHIFT,
            last: last_byte >> PAGE_SHIFT,
            starts_inside: region.va.0 & page_mask != 0,
            ends_inside: last_byte & page_mask != page_mask,
        }
    }

    /// True when the region holds every byte of its pages.
    fn whole(self) -> bool {
        !self.starts_inside && !self.ends_inside
    }

    /// The pages only this region has bytes in (its partial first and last
    /// pages left out), if any.
    fn owned(self) -> Option<(u64, u64)> {
        let first = self.first + u64::from(self.starts_inside);
        let last = self.last.checked_sub(u64::from(self.ends_inside))?;
        (first <= last).then_some((first, last))
    }

    /// The partial first and last pages (one page when they are the same).
    fn partial(self) -> impl Iterator<Item = u64> {
        let first = self.starts_inside.then_some(self.first);
        let last = (self.ends_inside && !(self.starts_inside && self.first == self.last)).then_some(self.last);
        first.into_iter().chain(last)
    }
}

/// A radix index from virtual page to region (see the module docs).
#[derive(Clone)]
pub(crate) struct PageIndex {
    /// Every table, the root among them; named by index.
    tables: Vec<Table>,
    /// `used[t]`: the non-empty entries of table `t` (a table left with none
    /// is freed).
    used: Vec<u16>,
    /// Table slots no longer in the index, reused first.
    free_tables: Vec<u32>,
    /// The root table; `None` while every entry would be empty.
    root: Option<u32>,
    /// The root's level: the lowest that covered the first region, raised
    /// when a region lands above the root's run (never lowered), so a
    /// memory map in the lowest 512 GiB is walked in three steps, not six.
    /// A page above the root's run is in no region.
    root_level: u32,
    /// A copy of each region the index names, by slot.
    slots: Vec<Region>,
    /// Region slots no longer named, reused first.
    free_slots: Vec<u32>,
}

impl PageIndex {
    /// An empty index; allocates nothing.
    pub(crate) const fn new() -> Self {
        PageIndex {
            tables: Vec::new(),
            used: Vec::new(),
            free_tables: Vec::new(),
            root: None,
            root_level: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
        }
    }

    /// Which region holds `va`, as far as the index knows: one load per
    /// level, no comparison of addresses.
    // Inlined: on the path of every lazy fault and one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn find(&self, va: u64) -> PageLookup<'_> {
        match self.entry_at(va >> PAGE_SHIFT) {
            Entry::Region(slot) => PageLookup::Found(&self.slots[slot as usize]),
            Entry::AskTheTree => PageLookup::AskTheTree,
            Entry::Empty | Entry::Table(_) => PageLookup::Absent,
        }
    }

    /// The entry that decides page `page`: the walk from the root down to
    /// the first entry that is not a table.
    // Inlined: on the path of every lazy fault and one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn entry_at(&self, page: u64) -> Entry {
        let Some(root) = self.root else {
            return Entry::Empty;
        };
        if page >> run_shift(self.root_level + 1) != 0 {
            return Entry::Empty;
        }
        let mut raw = root | TABLE_BIT;
        // One test per level (is it a table?); the kind is decoded once.
        for level in (0..=self.root_level).rev() {
            let index = (page >> run_shift(level)) as usize % ENTRIES;
            raw = self.tables[(raw & !TABLE_BIT) as usize].0[index];
            if raw & TABLE_BIT == 0 {
                break;
            }
        }
        Entry::decode(raw)
    }

    /// Records `region`, which shares no byte with any region indexed.
    pub(crate) fn insert(&mut self, region: Region) {
        let pages = Pages::of(&region);
        if pages.whole() {
            let slot = self.new_slot(region);
            self.set(pages.first, pages.last, Entry::Region(slot));
            return;
        }
        if let Some((first, last)) = pages.owned() {
            self.set(first, last, Entry::AskTheTree);
        }
        for page in pages.partial() {
            self.set(page, page, Entry::AskTheTree);
        }
    }

    /// Forgets `region`, just removed from the set. `still_touched(first,
    /// last)` says whether a region left in the set has a byte in
    /// `[first, last]` (asked only for a page `region` shared).
    pub(crate) fn remove(&mut self, region: &Region, still_touched: impl Fn(u64, u64) -> bool) {
        let pages = Pages::of(region);
        if pages.whole() {
            let Entry::Region(slot) = self.entry_at(pages.first) else {
                unreachable!("page index: {region:?} was not indexed");
            };
            self.set(pages.first, pages.last, Entry::Empty);
            self.free_slots.push(slot);
            return;
        }
        if let Some((first, last)) = pages.owned() {
            self.set(first, last, Entry::Empty);
        }
        for page in pages.partial() {
            let first_byte = page << PAGE_SHIFT;
            let last_byte = first_byte | ((1 << PAGE_SHIFT) - 1);
            let entry = if still_touched(first_byte, last_byte) { Entry::AskTheTree } else { Entry::Empty };
            self.set(page, page, entry);
        }
    }

    /// Replaces `old` by `pieces` (in address order, disjoint, already so in
    /// the tree) in as few entry writes as it can: when every region
    /// involved is made of whole pages, the largest piece that overlaps
    /// `old` takes over its slot, so the entries it shares with `old` stay
    /// as they are. Trimming a page off a region, or growing it by one,
    /// then writes one entry per level at most (plus, at worst, the split
    /// of one large entry into a table), where a remove and an insert would
    /// rewrite every entry of both. Otherwise it is [`Self::remove`] then
    /// [`Self::insert`] of each piece.
    pub(crate) fn replace(&mut self, old: &Region, pieces: &[Region], still_touched: impl Fn(u64, u64) -> bool) {
        let old_pages = Pages::of(old);
        let heir = pieces
            .iter()
            .enumerate()
            .filter(|(_, piece)| piece.overlaps(old))
            .max_by_key(|(_, piece)| piece.len)
            .map(|(position, _)| position);
        let all_whole = old_pages.whole() && pieces.iter().all(|piece| Pages::of(piece).whole());
        let (Some(heir), true) = (heir, all_whole) else {
            self.remove(old, still_touched);
            for piece in pieces {
                self.insert(*piece);
            }
            return;
        };
        let Entry::Region(slot) = self.entry_at(old_pages.first) else {
            unreachable!("page index: {old:?} was not indexed");
        };
        self.slots[slot as usize] = pieces[heir];
        // The heir's pages beyond `old` (it grew), then the other pieces.
        let heir_pages = Pages::of(&pieces[heir]);
        if heir_pages.first < old_pages.first {
            self.set(heir_pages.first, old_pages.first - 1, Entry::Region(slot));
        }
        if heir_pages.last > old_pages.last {
            self.set(old_pages.last + 1, heir_pages.last, Entry::Region(slot));
        }
        for (position, piece) in pieces.iter().enumerate() {
            if position != heir {
                let pages = Pages::of(piece);
                let new_slot = self.new_slot(*piece);
                self.set(pages.first, pages.last, Entry::Region(new_slot));
            }
        }
        // The pages of `old` no piece covers.
        let mut uncovered = old_pages.first;
        for piece in pieces {
            let pages = Pages::of(piece);
            if pages.first > uncovered && uncovered <= old_pages.last {
                self.set(uncovered, (pages.first - 1).min(old_pages.last), Entry::Empty);
            }
            uncovered = uncovered.max(pages.last + 1);
        }
        if uncovered <= old_pages.last {
            self.set(uncovered, old_pages.last, Entry::Empty);
        }
    }

    /// Replaces the copy of `region` (same start and length) with it.
    pub(crate) fn update(&mut self, region: Region) {
        if let Entry::Region(slot) = self.entry_at(region.va.0 >> PAGE_SHIFT) {
            self.slots[slot as usize] = region;
        }
    }

    /// Tables in use (the root included): what the index costs in memory,
    /// 2 KiB each.
    #[cfg(test)]
    fn tables_in_use(&self) -> usize {
        self.tables.len() - self.free_tables.len()
    }

    /// Region slots in use.
    #[cfg(test)]
    fn slots_in_use(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    fn new_slot(&mut self, region: Region) -> u32 {
        match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = region;
                slot
            }
            None => {
                self.slots.push(region);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Makes every page in `[first, last]` say `entry`: one entry per
    /// largest aligned run inside the range, tables made where a run is cut,
    /// and freed when they end up empty.
    fn set(&mut self, first: u64, last: u64, entry: Entry) {
        let root = match self.root {
            Some(root) if entry != Entry::Empty => self.raise_root_to_cover(root, last),
            Some(root) => root,
            None if entry == Entry::Empty => return,
            None => {
                let root = self.new_table(Entry::Empty);
                self.root = Some(root);
                self.root_level = (0..TOP_LEVEL).find(|&level| last >> run_shift(level + 1) == 0).unwrap_or(TOP_LEVEL);
                root
            }
        };
        // Pages above the root's run are empty already.
        let root_last = (1u64 << run_shift(self.root_level + 1)) - 1;
        if first > root_last {
            return;
        }
        self.set_in(root, self.root_level, 0, first, last.min(root_last), entry);
        if self.used[root as usize] == 0 {
            self.free_table(root);
            self.root = None;
        }
    }

    /// Puts new roots above `root` until the root's run reaches `page`:
    /// the old root becomes entry 0 of the new one. Returns the root.
    fn raise_root_to_cover(&mut self, mut root: u32, page: u64) -> u32 {
        while self.root_level < TOP_LEVEL && page >> run_shift(self.root_level + 1) != 0 {
            let below = root;
            root = self.new_table(Entry::Empty);
            self.write(root, 0, Entry::Table(below));
            self.root = Some(root);
            self.root_level += 1;
        }
        root
    }

    /// [`Self::set`] inside `table`, at `level`, whose first page is `base`;
    /// `[first, last]` lies inside the table's run.
    ///
    /// The entries whose whole run lies in `[first, last]` are written in
    /// one pass (a region cut one page from a 2 MiB boundary writes 511 of
    /// them); only the first and last entry can cover a run that is cut,
    /// and those are split into a table one level down.
    fn set_in(&mut self, table: u32, level: u32, base: u64, first: u64, last: u64, entry: Entry) {
        let shift = level * BITS_PER_LEVEL;
        let run_first = |index: usize| base + ((index as u64) << shift);
        let run_last = |index: usize| run_first(index) + ((1u64 << shift) - 1);
        let from = ((first - base) >> shift) as usize;
        let to = ((last - base) >> shift) as usize;
        let whole = |index: usize| first <= run_first(index) && run_last(index) <= last;
        let whole_from = if whole(from) { from } else { from + 1 };
        let whole_to = if whole(to) { to + 1 } else { to };
        if whole_from < whole_to {
            self.fill(table, whole_from..whole_to, entry);
        }
        let cut_first = (!whole(from)).then_some(from);
        let cut_last = (!whole(to) && to != from).then_some(to);
        for index in cut_first.into_iter().chain(cut_last) {
            // Part of the run: split it, as a page table splits a large page.
            let old = Entry::decode(self.tables[table as usize].0[index]);
            let child = match old {
                Entry::Table(child) => child,
                _ => {
                    let child = self.new_table(old);
                    self.write(table, index, Entry::Table(child));
                    child
                }
            };
            let (child_first, child_last) = (run_first(index), run_last(index));
            self.set_in(child, level - 1, child_first, first.max(child_first), last.min(child_last), entry);
            if self.used[child as usize] == 0 {
                self.free_table(child);
                self.write(table, index, Entry::Empty);
            }
        }
    }

    /// Writes `entry` into the entries `indices` of `table`, freeing the
    /// tables they named and keeping the count of non-empty entries.
    fn fill(&mut self, table: u32, indices: core::ops::Range<usize>, entry: Entry) {
        for index in indices.clone() {
            if let Entry::Table(child) = Entry::decode(self.tables[table as usize].0[index]) {
                self.free_subtree(child);
            }
        }
        let entries = &mut self.tables[table as usize].0[indices];
        let were_used = entries.iter().filter(|&&raw| raw != EMPTY).count();
        let now_used = if entry == Entry::Empty { 0 } else { entries.len() };
        entries.fill(entry.encode());
        let used = &mut self.used[table as usize];
        *used = (usize::from(*used) - were_used + now_used) as u16;
    }

    /// Writes one entry, keeping the table's count of non-empty entries.
    fn write(&mut self, table: u32, index: usize, entry: Entry) {
        let slot = &mut self.tables[table as usize].0[index];
        let was_empty = *slot == EMPTY;
        *slot = entry.encode();
        let used = &mut self.used[table as usize];
        match (was_empty, entry == Entry::Empty) {
            (true, false) => *used += 1,
            (false, true) => *used -= 1,
            _ => {}
        }
    }

    /// A table whose every entry is `fill`.
    fn new_table(&mut self, fill: Entry) -> u32 {
        let raw = fill.encode();
        let used = if fill == Entry::Empty { 0 } else { ENTRIES as u16 };
        match self.free_tables.pop() {
            Some(table) => {
                self.tables[table as usize].0.fill(raw);
                self.used[table as usize] = used;
                table
            }
            None => {
                self.tables.push(Table([raw; ENTRIES]));
                self.used.push(used);
                (self.tables.len() - 1) as u32
            }
        }
    }

    fn free_table(&mut self, table: u32) {
        self.free_tables.push(table);
    }

    /// Frees `table` and every table below it.
    fn free_subtree(&mut self, table: u32) {
        for index in 0..ENTRIES {
            if let Entry::Table(child) = Entry::decode(self.tables[table as usize].0[index]) {
                self.free_subtree(child);
            }
        }
        self.free_table(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protection;

    const PAGE: u64 = 1 << PAGE_SHIFT;
    const GIB: u64 = 1 << 30;

    fn region(va: u64, len: u64) -> Region {
        Region::new(va, va, len, Protection::READ)
    }

    fn found(index: &PageIndex, va: u64) -> Option<Region> {
        match index.find(va) {
            PageLookup::Found(region) => Some(*region),
            _ => None,
        }
    }

    fn asks_the_tree(index: &PageIndex, va: u64) -> bool {
        matches!(index.find(va), PageLookup::AskTheTree)
    }

    #[test]
    fn an_empty_index_holds_no_table() {
        let index = PageIndex::new();
        assert!(matches!(index.find(0x1234), PageLookup::Absent));
        assert_eq!(index.tables_in_use(), 0);
    }

    #[test]
    fn a_whole_page_region_is_found_on_every_byte_and_nowhere_else() {
        let mut index = PageIndex::new();
        let one = region(5 * PAGE, 3 * PAGE);
        index.insert(one);
        for va in [5 * PAGE, 6 * PAGE + 17, 8 * PAGE - 1] {
            assert_eq!(found(&index, va), Some(one), "at {va:#x}");
        }
        for va in [5 * PAGE - 1, 8 * PAGE, 0, u64::MAX] {
            assert!(matches!(index.find(va), PageLookup::Absent), "at {va:#x}");
        }
        // Pages 5 to 7: one table at level 0 is the root.
        assert_eq!(index.tables_in_use(), 1);
    }

    #[test]
    fn an_aligned_gigabyte_takes_one_entry_above_the_pages() {
        let mut index = PageIndex::new();
        let gigabyte = region(3 * GIB, GIB);
        index.insert(gigabyte);
        assert_eq!(found(&index, 3 * GIB), Some(gigabyte));
        assert_eq!(found(&index, 4 * GIB - 1), Some(gigabyte));
        // The root, at level 2, where one entry covers 2^18 pages: a
        // gigabyte. No table below it exists.
        assert_eq!(index.tables_in_use(), 1);
    }

    #[test]
    fn a_region_cut_one_page_from_a_large_page_boundary_fills_the_rest_of_its_table() {
        let mut index = PageIndex::new();
        let large_page = 512 * PAGE;
        // Pages 1 to 511 of the first 2 MiB, and the next 2 MiB whole.
        let cut = region(PAGE, 2 * large_page - PAGE);
        index.insert(cut);
        for va in [PAGE, large_page - 1, large_page, 2 * large_page - 1] {
            assert_eq!(found(&index, va), Some(cut), "at {va:#x}");
        }
        assert!(matches!(index.find(PAGE - 1), PageLookup::Absent));
        assert!(matches!(index.find(2 * large_page), PageLookup::Absent));
        // The root at level 1, and one level-0 table for the first 2 MiB only.
        assert_eq!(index.tables_in_use(), 2);
        index.remove(&cut, |_, _| false);
        assert_eq!(index.tables_in_use(), 0);
    }

    #[test]
    fn a_region_far_above_raises_the_root_and_the_ones_below_stay_found() {
        let mut index = PageIndex::new();
        let low = region(5 * PAGE, PAGE);
        index.insert(low);
        assert_eq!(index.tables_in_use(), 1);
        let high = region(0xffff_8000_0000_0000, GIB);
        index.insert(high);
        assert_eq!(found(&index, 5 * PAGE), Some(low));
        assert_eq!(found(&index, 0xffff_8000_0000_0000), Some(high));
        assert!(matches!(index.find(0x7fff_ffff_ffff), PageLookup::Absent));
        index.remove(&high, |_, _| false);
        assert_eq!(found(&index, 5 * PAGE), Some(low));
        index.remove(&low, |_, _| false);
        assert_eq!(index.tables_in_use(), 0);
    }

    #[test]
    fn the_whole_address_space_is_one_region() {
        let mut index = PageIndex::new();
        // [0, 2^64): the length does not fit; the largest region is 2^64 - 4096 long from 4096.
        let everything_but_page_zero = region(PAGE, 0u64.wrapping_sub(PAGE));
        index.insert(everything_but_page_zero);
        assert_eq!(found(&index, PAGE), Some(everything_but_page_zero));
        assert_eq!(found(&index, u64::MAX), Some(everything_but_page_zero));
        assert!(matches!(index.find(PAGE - 1), PageLookup::Absent));
        index.remove(&everything_but_page_zero, |_, _| false);
        assert_eq!(index.tables_in_use(), 0);
        assert!(matches!(index.find(u64::MAX), PageLookup::Absent));
    }

    #[test]
    fn removing_every_region_frees_every_table_and_slot() {
        let mut index = PageIndex::new();
        let regions: Vec<Region> =
            (0..2000).map(|i| region(i * 3 * PAGE + (i % 7) * GIB, PAGE * (1 + i % 3))).collect();
        for &r in &regions {
            index.insert(r);
        }
        for &r in &regions {
            assert_eq!(found(&index, r.va.0), Some(r));
            assert_eq!(found(&index, r.last()), Some(r));
        }
        for r in &regions {
            index.remove(r, |_, _| false);
            assert!(matches!(index.find(r.va.0), PageLookup::Absent));
        }
        assert_eq!(index.tables_in_use(), 0);
        assert_eq!(index.slots_in_use(), 0);
    }

    #[test]
    fn a_region_inside_pages_sends_its_pages_to_the_tree_until_no_region_shares_them() {
        let mut index = PageIndex::new();
        let left = region(PAGE + 0x800, 3 * PAGE); // ends inside page 4
        let right = region(4 * PAGE + 0x800, PAGE); // shares page 4
        index.insert(left);
        index.insert(right);
        for va in [PAGE, 2 * PAGE, 4 * PAGE + 0x900, 5 * PAGE + 0x7ff] {
            assert!(asks_the_tree(&index, va), "at {va:#x}");
        }
        // Page 4 is shared: after `left` goes, `right` still has bytes there.
        index.remove(&left, |first, last| right.overlaps_range(first, last));
        assert!(asks_the_tree(&index, 4 * PAGE));
        assert!(matches!(index.find(2 * PAGE), PageLookup::Absent));
        index.remove(&right, |_, _| false);
        assert_eq!(index.tables_in_use(), 0);
    }

    #[test]
    fn replace_trims_and_grows_in_place() {
        let mut index = PageIndex::new();
        let large_page = 512 * PAGE;
        let old = region(0, 4 * large_page);
        index.insert(old);
        // The root at level 1, the four large pages four of its entries.
        assert_eq!(index.tables_in_use(), 1);
        let trimmed = region(PAGE, 4 * large_page - PAGE);
        index.replace(&old, &[trimmed], |_, _| false);
        assert!(matches!(index.find(0), PageLookup::Absent));
        assert_eq!(found(&index, PAGE), Some(trimmed));
        assert_eq!(found(&index, 4 * large_page - 1), Some(trimmed));
        // One large page split into a table; the same slot, no other.
        assert_eq!((index.tables_in_use(), index.slots_in_use()), (2, 1));
        let grown = region(PAGE, 4 * large_page);
        index.replace(&trimmed, &[grown], |_, _| false);
        assert_eq!(found(&index, 4 * large_page), Some(grown));
        assert_eq!((index.tables_in_use(), index.slots_in_use()), (3, 1));
        // A cut in the middle: three pieces, two new slots.
        let pieces = [region(PAGE, PAGE), region(2 * PAGE, PAGE), region(3 * PAGE, 4 * large_page - 2 * PAGE)];
        index.replace(&grown, &pieces, |_, _| false);
        for piece in pieces {
            assert_eq!(found(&index, piece.va.0), Some(piece));
            assert_eq!(found(&index, piece.last()), Some(piece));
        }
        assert_eq!(index.slots_in_use(), 3);
    }

    #[test]
    fn update_changes_the_copy_found() {
        let mut index = PageIndex::new();
        index.insert(region(GIB, 2 * PAGE));
        let moved = Region::new(GIB, 0x5000, 2 * PAGE, Protection::READ | Protection::WRITE);
        index.update(moved);
        assert_eq!(found(&index, GIB + PAGE), Some(moved));
    }
}
