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
    /// The first and last address the records cover, `None` when there is
    /// none: a fault outside answers with two comparisons, no tree search
    /// (an anonymous mapping lies apart from the program's file mappings).
    span: Option<(u64, u64)>,
}

impl<T> Default for RangeRecords<T> {
    fn default() -> Self {
        RangeRecords { by_start: BTreeMap::new(), span: None }
    }
}

impl<T: RangeRecord> RangeRecords<T> {
    /// The record whose range holds `va`.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn find(&self, va: u64) -> Option<&T> {
        // A fault's path: most addresses have no record near them.
        let (first, last) = self.span?;
        if va < first || last < va {
            return None;
        }
        self.by_start.range(..=va).next_back().map(|(_, record)| record).filter(|r| va <= r.last())
    }

    /// Records `record`; the caller has checked that its range is free.
    pub(crate) fn insert(&mut self, record: T) {
        self.by_start.insert(record.start(), record);
        self.measure_span();
    }

    /// Forgets the record starting at `va`.
    pub(crate) fn remove_at(&mut self, va: u64) {
        self.by_start.remove(&va);
        self.measure_span();
    }

    /// Sets [`RangeRecords::span`] from the first and the last record
    /// (disjoint and by start: the last record ends last).
    fn measure_span(&mut self) {
        let first = self.by_start.first_key_value().map(|(_, record)| record.start());
        let last = self.by_start.last_key_value().map(|(_, record)| record.last());
        self.span = first.zip(last);
    }

    /// True when `[va, last]` lies apart from every record: before the
    /// first or after the last, an edit's common case, answered at once.
    fn apart(&self, va: u64, last: u64) -> bool {
        self.span.is_none_or(|(first, end)| last < first || end < va)
    }

    /// True when a record overlaps `[va, last]`.
    pub(crate) fn overlaps(&self, va: u64, last: u64) -> bool {
        !self.apart(va, last) && self.by_start.values().any(|r| r.start() <= last && va <= r.last())
    }

    /// Cuts `[va, last]` (inclusive) out of every record.
    pub(crate) fn remove_range(&mut self, va: u64, last: u64) {
        if self.apart(va, last) {
            return;
        }
        let touched: Vec<T> = self.by_start.values().filter(|r| r.start() <= last && va <= r.last()).cloned().collect();
        for record in touched {
            self.by_start.remove(&record.start());
            // The parts kept, inserted directly: the span is measured once, below.
            for part in [
                (record.start() < va).then(|| record.part(record.start(), va - record.start())),
                (last < record.last()).then(|| record.part(last + 1, record.last() - last)),
            ]
            .into_iter()
            .flatten()
            {
                self.by_start.insert(part.start(), part);
            }
        }
        self.measure_span();
    }

    /// Forgets every record.
    pub(crate) fn clear(&mut self) {
        self.by_start.clear();
        self.span = None;
    }

    /// Every record, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.by_start.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record over `[start, last]` and nothing else.
    #[derive(Clone, Debug, PartialEq)]
    struct Span(u64, u64);

    impl RangeRecord for Span {
        fn start(&self) -> u64 {
            self.0
        }
        fn last(&self) -> u64 {
            self.1
        }
        fn part(&self, va: u64, len: u64) -> Self {
            Span(va, va + len - 1)
        }
    }

    #[test]
    fn the_span_follows_every_change() {
        let mut records = RangeRecords::default();
        assert!(records.find(0x1000).is_none() && !records.overlaps(0, u64::MAX));
        records.insert(Span(0x1000, 0x2fff));
        records.insert(Span(0x8000, 0x8fff));
        assert_eq!(records.span, Some((0x1000, 0x8fff)));
        // Inside the span, in a gap: the tree answers.
        assert!(records.find(0x5000).is_none() && !records.overlaps(0x3000, 0x7fff));
        assert_eq!(records.find(0x8800), Some(&Span(0x8000, 0x8fff)));
        // Cutting the end of the last record and all of the first: the span shrinks.
        records.remove_range(0x8800, 0x9fff);
        records.remove_range(0, 0x2fff);
        assert_eq!(records.span, Some((0x8000, 0x87ff)));
        assert!(records.find(0x8800).is_none() && records.find(0x1000).is_none());
        assert!(records.overlaps(0x87ff, 0x87ff) && !records.overlaps(0x8800, u64::MAX));
        // Outside the span, nothing changes.
        records.remove_range(0xa000, 0xafff);
        assert_eq!(records.iter().cloned().collect::<Vec<_>>(), [Span(0x8000, 0x87ff)]);
        records.remove_at(0x8000);
        assert_eq!(records.span, None);
        records.insert(Span(0x4000, 0x4fff));
        records.clear();
        assert!(records.span.is_none() && records.find(0x4000).is_none());
    }
}
