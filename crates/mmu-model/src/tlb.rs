//! One CPU's TLB (SDM §4.10.2): cached translations tagged with a PCID,
//! kept until something invalidates them, however the tables change.
//!
//! Each entry also remembers the page-table frames its walk read, standing
//! in for the paging-structure caches (§4.10.3) when frames are freed.

use crate::entry::PageSize;
use crate::walk::Translation;
use std::collections::HashMap;

/// Where a non-global entry is filed: its PCID, page size and first
/// virtual address.
type TaggedKey = (u16, PageSize, u64);

/// Where a global entry is filed: global entries match every PCID.
type GlobalKey = (PageSize, u64);

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

/// A TLB.
#[derive(Default)]
pub(crate) struct Tlb {
    tagged: HashMap<TaggedKey, TlbEntry>,
    global: HashMap<GlobalKey, TlbEntry>,
    /// Entries translating to each page, by (page size, physical base).
    target_refs: HashMap<(PageSize, u64), u32>,
    /// Entries whose walk read each page-table frame.
    table_refs: HashMap<u64, u32>,
}

impl Tlb {
    /// The entries that translate `va` for `pcid`, smallest page first: the
    /// non-global one of each size, then the global one. More than one
    /// means the page size changed without an invalidation.
    pub(crate) fn lookup(&self, pcid: u16, va: u64) -> impl Iterator<Item = &TlbEntry> {
        PageSize::ALL.into_iter().flat_map(move |size| {
            let base = size.base_of(va);
            let tagged = self.tagged.get(&(pcid, size, base));
            let global = self.global.get(&(size, base));
            tagged.into_iter().chain(global)
        })
    }

    /// Caches a translation made under `pcid`.
    pub(crate) fn insert(&mut self, pcid: u16, translation: Translation) {
        let entry = TlbEntry { translation, pcid };
        let previous = if translation.global {
            self.global.insert((translation.size, translation.virt_base), entry)
        } else {
            self.tagged.insert((pcid, translation.size, translation.virt_base), entry)
        };
        if let Some(previous) = previous {
            forget_refs(&mut self.target_refs, &mut self.table_refs, &previous);
        }
        let t = &entry.translation;
        *self.target_refs.entry((t.size, t.phys_base)).or_default() += 1;
        for &frame in t.tables.frames() {
            *self.table_refs.entry(frame).or_default() += 1;
        }
    }

    /// Drops the entries for `va` of every page size: the non-global ones
    /// tagged `pcid` (if given), and the global ones if `global` is set.
    pub(crate) fn invalidate_address(&mut self, pcid: Option<u16>, va: u64, global: bool) {
        for size in PageSize::ALL {
            let base = size.base_of(va);
            if let Some(pcid) = pcid {
                if let Some(old) = self.tagged.remove(&(pcid, size, base)) {
                    forget_refs(&mut self.target_refs, &mut self.table_refs, &old);
                }
            }
            if global {
                if let Some(old) = self.global.remove(&(size, base)) {
                    forget_refs(&mut self.target_refs, &mut self.table_refs, &old);
                }
            }
        }
    }

    /// Drops the non-global entries tagged `pcid`.
    pub(crate) fn invalidate_pcid(&mut self, pcid: u16) {
        let (targets, tables) = (&mut self.target_refs, &mut self.table_refs);
        self.tagged.retain(|_, entry| {
            let keep = entry.pcid != pcid;
            if !keep {
                forget_refs(targets, tables, entry);
            }
            keep
        });
    }

    /// Drops every non-global entry, or every entry if `global` is set.
    pub(crate) fn invalidate_all(&mut self, global: bool) {
        self.tagged.clear();
        if global {
            self.global.clear();
        }
        self.target_refs.clear();
        self.table_refs.clear();
        // Rebuild the counts for the global entries that survive.
        let kept: Vec<TlbEntry> = self.global.values().copied().collect();
        for entry in kept {
            let t = &entry.translation;
            *self.target_refs.entry((t.size, t.phys_base)).or_default() += 1;
            for &frame in t.tables.frames() {
                *self.table_refs.entry(frame).or_default() += 1;
            }
        }
    }

    /// The number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.tagged.len() + self.global.len()
    }

    /// An entry that still uses the 4 KiB frame at `frame`, and how, if any.
    pub(crate) fn user_of_frame(&self, frame: u64) -> Option<(&TlbEntry, FrameUse)> {
        let maps_to = PageSize::ALL.into_iter().any(|size| self.target_refs.contains_key(&(size, size.base_of(frame))));
        let walked = self.table_refs.contains_key(&frame);
        if !maps_to && !walked {
            return None;
        }
        // Rare (a violation is about to be reported): find the entry itself.
        self.tagged.values().chain(self.global.values()).find_map(|entry| {
            let t = &entry.translation;
            if t.size.base_of(frame) == t.phys_base {
                Some((entry, FrameUse::MapsTo))
            } else if t.tables.frames().contains(&frame) {
                Some((entry, FrameUse::WalkedThrough))
            } else {
                None
            }
        })
    }
}

/// Takes `entry`'s frames out of the reference counts.
fn forget_refs(targets: &mut HashMap<(PageSize, u64), u32>, tables: &mut HashMap<u64, u32>, entry: &TlbEntry) {
    let t = &entry.translation;
    decrement(targets, (t.size, t.phys_base));
    for &frame in t.tables.frames() {
        decrement(tables, frame);
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}
