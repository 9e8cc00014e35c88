//! One CPU's TLB (SDM §4.10.2): cached translations tagged with a PCID,
//! kept until something invalidates them, however the tables change.
//!
//! Each entry also remembers the page-table frames its walk read, standing
//! in for the paging-structure caches (§4.10.3) when frames are freed.

use crate::entry::PageSize;
use crate::hash::FastMap;
use crate::walk::Translation;

/// A cached translation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlbEntry {
    pub(crate) translation: Translation,
    /// The PCID the entry was made under.
    pub(crate) pcid: u16,
}

/// How a cached entry refers to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameUse {
    /// The entry translates to the frame.
    MapsTo,
    /// The walk that made the entry read a page table in the frame.
    WalkedThrough,
}

/// The entries of one page size.
#[derive(Default)]
struct SizedEntries {
    /// Non-global entries, by PCID and first virtual address.
    tagged: FastMap<(u16, u64), TlbEntry>,
    /// Global entries, by first virtual address: they match every PCID.
    global: FastMap<u64, TlbEntry>,
}

/// A TLB.
#[derive(Default)]
pub(crate) struct Tlb {
    /// Indexed by `size_index`.
    sizes: [SizedEntries; 3],
    /// Entries translating to each page, by (page size, physical base).
    target_refs: FastMap<(PageSize, u64), u32>,
    /// Entries whose walk read each page-table frame.
    table_refs: FastMap<u64, u32>,
}

fn size_index(size: PageSize) -> usize {
    match size {
        PageSize::Size4K => 0,
        PageSize::Size2M => 1,
        PageSize::Size1G => 2,
    }
}

impl Tlb {
    /// The entries that translate `va` for `pcid`, smallest page first: the
    /// non-global one of each size, then the global one. More than one
    /// means the page size changed without an invalidation.
    pub(crate) fn lookup(&self, pcid: u16, va: u64) -> impl Iterator<Item = &TlbEntry> {
        PageSize::ALL.into_iter().zip(&self.sizes).flat_map(move |(size, entries)| {
            let base = size.base_of(va);
            // Skipping empty maps keeps the common case (few sizes, few or
            // no global entries) to one or two probes.
            let tagged = if entries.tagged.is_empty() { None } else { entries.tagged.get(&(pcid, base)) };
            let global = if entries.global.is_empty() { None } else { entries.global.get(&base) };
            tagged.into_iter().chain(global)
        })
    }

    /// Caches a translation made under `pcid`.
    pub(crate) fn insert(&mut self, pcid: u16, translation: Translation) {
        let entry = TlbEntry { translation, pcid };
        let entries = &mut self.sizes[size_index(translation.size)];
        let previous = if translation.global {
            entries.global.insert(translation.virt_base, entry)
        } else {
            entries.tagged.insert((pcid, translation.virt_base), entry)
        };
        if let Some(previous) = previous {
            forget_refs(&mut self.target_refs, &mut self.table_refs, &previous);
        }
        count_refs(&mut self.target_refs, &mut self.table_refs, &entry);
    }

    /// Drops the entries for `va` of every page size: the non-global ones
    /// tagged `pcid` (if given), and the global ones if `global` is set.
    pub(crate) fn invalidate_address(&mut self, pcid: Option<u16>, va: u64, global: bool) {
        for (size, entries) in PageSize::ALL.into_iter().zip(&mut self.sizes) {
            let base = size.base_of(va);
            let tagged = pcid.and_then(|pcid| entries.tagged.remove(&(pcid, base)));
            let global = if global { entries.global.remove(&base) } else { None };
            for old in tagged.iter().chain(&global) {
                forget_refs(&mut self.target_refs, &mut self.table_refs, old);
            }
        }
    }

    /// Drops the non-global entries tagged `pcid`.
    pub(crate) fn invalidate_pcid(&mut self, pcid: u16) {
        let (targets, tables) = (&mut self.target_refs, &mut self.table_refs);
        for entries in &mut self.sizes {
            entries.tagged.retain(|&(tag, _), entry| {
                if tag == pcid {
                    forget_refs(targets, tables, entry);
                }
                tag != pcid
            });
        }
    }

    /// Drops every non-global entry, or every entry if `global` is set.
    pub(crate) fn invalidate_all(&mut self, global: bool) {
        self.target_refs.clear();
        self.table_refs.clear();
        for entries in &mut self.sizes {
            entries.tagged.clear();
            if global {
                entries.global.clear();
            }
            // Count again the global entries that survive.
            for entry in entries.global.values() {
                count_refs(&mut self.target_refs, &mut self.table_refs, entry);
            }
        }
    }

    /// The number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.sizes.iter().map(|entries| entries.tagged.len() + entries.global.len()).sum()
    }

    /// An entry that still uses the 4 KiB frame at `frame`, and how, if any.
    pub(crate) fn user_of_frame(&self, frame: u64) -> Option<(&TlbEntry, FrameUse)> {
        let maps_to = PageSize::ALL.into_iter().any(|size| self.target_refs.contains_key(&(size, size.base_of(frame))));
        let walked = self.table_refs.contains_key(&frame);
        if !maps_to && !walked {
            return None;
        }
        // Rare (a violation is about to be reported): find the entry itself.
        let all = self.sizes.iter().flat_map(|entries| entries.tagged.values().chain(entries.global.values()));
        all.filter_map(|entry| {
            let t = &entry.translation;
            if t.size.base_of(frame) == t.phys_base {
                Some((entry, FrameUse::MapsTo))
            } else if t.tables.frames().contains(&frame) {
                Some((entry, FrameUse::WalkedThrough))
            } else {
                None
            }
        })
        .next()
    }
}

/// Adds `entry`'s frames to the reference counts.
fn count_refs(targets: &mut FastMap<(PageSize, u64), u32>, tables: &mut FastMap<u64, u32>, entry: &TlbEntry) {
    let t = &entry.translation;
    *targets.entry((t.size, t.phys_base)).or_default() += 1;
    for &frame in t.tables.frames() {
        *tables.entry(frame).or_default() += 1;
    }
}

/// Takes `entry`'s frames out of the reference counts.
fn forget_refs(targets: &mut FastMap<(PageSize, u64), u32>, tables: &mut FastMap<u64, u32>, entry: &TlbEntry) {
    let t = &entry.translation;
    decrement(targets, (t.size, t.phys_base));
    for &frame in t.tables.frames() {
        decrement(tables, frame);
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut FastMap<K, u32>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}
