//! A set of records over disjoint virtual ranges, by start: what a space
//! keeps beside its regions for the pages' contents (file backings, memory
//! object backings). Records follow the regions: removing a range cuts it
//! out of every record it touches, keeping the parts on either side.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A record over a range of whole pages.
pub(crate) trait RangeRecord: Clone {
    /// The first address of the range.
    fn start(&self) -> u64;
    /// The last address of the range (inclusive).
    fn last(&self) -> u64;
    /// The same record over `[va, va+len)`, a part of its range.
    fn part(&self, va: u64, len: u64) -> Self;
}

/// Records over disjoint ranges, by start.
#[derive(Clone, Debug)]
pub(crate) struct RangeRecords<T> {
    by_start: BTreeMap<u64, T>,
}

impl<T> Default for RangeRecords<T> {
    fn default() -> Self {
        RangeRecords { by_start: BTreeMap::new() }
    }
}

impl<T: RangeRecord> RangeRecords<T> {
    /// The record whose range holds `va`.
    pub(crate) fn find(&self, va: u64) -> Option<&T> {
        if self.by_start.is_empty() {
            // No record at all (most spaces, for most kinds): a fault's path.
            return None;
        }
        self.by_start.range(..=va).next_back().map(|(_, record)| record).filter(|r| va <= r.last())
    }

    /// Records `record`; the caller has checked that its range is free.
    pub(crate) fn insert(&mut self, record: T) {
        self.by_start.insert(record.start(), record);
    }

    /// Forgets the record starting at `va`.
    pub(crate) fn remove_at(&mut self, va: u64) {
        self.by_start.remove(&va);
    }

    /// True when a record overlaps `[va, last]`.
    pub(crate) fn overlaps(&self, va: u64, last: u64) -> bool {
        self.by_start.values().any(|r| r.start() <= last && va <= r.last())
    }

    /// Cuts `[va, last]` (inclusive) out of every record.
    pub(crate) fn remove_range(&mut self, va: u64, last: u64) {
        let touched: Vec<T> = self.by_start.values().filter(|r| r.start() <= last && va <= r.last()).cloned().collect();
        for record in touched {
            self.by_start.remove(&record.start());
            if record.start() < va {
                self.insert(record.part(record.start(), va - record.start()));
            }
            if last < record.last() {
                self.insert(record.part(last + 1, record.last() - last));
            }
        }
    }

    /// Forgets every record.
    pub(crate) fn clear(&mut self) {
        self.by_start.clear();
    }

    /// Every record, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.by_start.values()
    }
}
