//! Memory objects: pages that several spaces map, fetched on first touch.
//!
//! A [`PageObject`] is memory that exists apart from any one space: a
//! file's page cache, or the memory of a shared anonymous mapping. An
//! [`ObjectBacking`] says "the pages of `[va, va+len)` are pages
//! `first_index..` of this object". The space keeps these records beside
//! its anonymous frames, as it keeps [`crate::FileBacking`]s: when a page
//! of such a range is first touched, the fault asks the object for the
//! page's frame (one more reference, the space's own) and records it like
//! any anonymous page's frame. From then on:
//!
//! - a *shared* backing's page is shared writable on purpose: writes reach
//!   the object's frame, every space mapping it sees them, and a fork shares
//!   it writable;
//! - a *private* backing's page is copy-on-write: mapped read-only while the
//!   object (or another space) holds the frame too, so the first write
//!   copies it and the copy is the space's alone.
//!
//! A page past the object's end gets no frame: the fault is
//! [`UnhandledFault::PastEndOfObject`](aspace::UnhandledFault), which a
//! kernel reports as Linux does (`SIGBUS`). When the object shrinks, the
//! kernel calls [`crate::PagingAspace::drop_object_pages`] in every space
//! that maps it: the pages past the new end leave the space (shared ones
//! and private copies alike, as Linux's truncation does), the backing stays,
//! so a later touch faults again and finds the page if the object has grown
//! back.
//!
//! Records follow the regions: a remove of all or part of a region cuts the
//! records over the removed range.

use crate::entry::PAGE;
use crate::ranges::{RangeRecord, RangeRecords};
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{PhysAddr, VirtAddr};
use core::fmt;

/// Why an object could not give a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFault {
    /// The page lies wholly past the object's end.
    PastEnd,
    /// No frame could be had for a page the object did not hold yet.
    OutOfMemory,
}

/// Memory that regions of several address spaces map page by page.
///
/// # Contract
/// [`PageObject::frame`] returns a frame the space may map: it carries one
/// reference (counted by the machine, as [`crate::Machine::share_frame`]
/// counts them) that the caller now owns and gives back with
/// [`crate::Machine::free_frame`]. The object keeps its own reference while
/// it holds the page.
pub trait PageObject: Send + Sync {
    /// The frame holding page `index` of the object, with one more
    /// reference for the caller; a page the object has no frame for yet
    /// gets a zeroed one first.
    fn frame(&self, index: u64) -> Result<PhysAddr, ObjectFault>;

    /// True when page `index` is in memory (resident in the object's page
    /// cache, or as cheap to have as if it were), whether or not any space
    /// maps it: a read fault maps such neighbours too (fault-around), and a
    /// kernel's `mincore` reports them.
    fn holds(&self, index: u64) -> bool;

    /// The frames of those pages of `indices` the object holds already
    /// (see [`PageObject::holds`]), appended to `out` as (index, frame) in
    /// the order asked, each with one more reference for the caller, as
    /// [`PageObject::frame`] gives it; a page not held, or that cannot be
    /// had, is left out. What fault-around maps in one go. By default
    /// [`PageObject::holds`] and [`PageObject::frame`] page by page; an
    /// object can answer under one taking of its lock.
    fn held_frames(&self, indices: &[u64], out: &mut Vec<(u64, PhysAddr)>) {
        for &index in indices {
            if self.holds(index) {
                if let Ok(frame) = self.frame(index) {
                    out.push((index, frame));
                }
            }
        }
    }

    /// Who the object is: two objects with the same key are the same
    /// memory (two openings of one file, say). Truncation finds every
    /// backing of the memory by its key.
    fn key(&self) -> usize;

    /// The object's name as a kernel shows it (a file's path, say).
    fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result;

    /// The device and inode numbers a kernel shows for the object (as
    /// Linux's `/proc/PID/maps` does for a file); none by default.
    fn file_ids(&self) -> (u64, u64) {
        (0, 0)
    }
}

impl RangeRecord for ObjectBacking {
    fn start(&self) -> u64 {
        self.va.0
    }

    fn last(&self) -> u64 {
        ObjectBacking::last(self)
    }

    /// The part of this range over `[va, va+len)` (inside it), its first
    /// index moved along.
    fn part(&self, va: u64, len: u64) -> ObjectBacking {
        ObjectBacking { va: VirtAddr(va), len, first_index: self.index_of(va), ..self.clone() }
    }
}

/// A range of pages backed by pages of a [`PageObject`].
#[derive(Clone)]
pub struct ObjectBacking {
    /// The first page of the range.
    pub va: VirtAddr,
    /// The length of the range (whole pages).
    pub len: u64,
    /// The object.
    pub object: Arc<dyn PageObject>,
    /// The object's page that the range's first page maps.
    pub first_index: u64,
    /// Shared writable (`MAP_SHARED`) rather than copy-on-write (`MAP_PRIVATE`).
    pub shared: bool,
}

impl fmt::Debug for ObjectBacking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBacking")
            .field("va", &self.va)
            .field("len", &self.len)
            .field("object", &self.object.key())
            .field("first_index", &self.first_index)
            .field("shared", &self.shared)
            .finish()
    }
}

impl ObjectBacking {
    /// The last virtual byte of the range.
    pub fn last(&self) -> u64 {
        self.va.0 + (self.len - 1)
    }

    /// The object's page index of the page at `page` (inside the range).
    pub fn index_of(&self, page: u64) -> u64 {
        self.first_index + (page - self.va.0) / PAGE
    }

    /// The pages of the range whose object index is `first` or more, as
    /// `[start, last]` (inclusive), if any.
    pub fn pages_from_index(&self, first: u64) -> Option<(u64, u64)> {
        let skip = first.saturating_sub(self.first_index);
        if skip >= self.len / PAGE {
            return None;
        }
        Some((self.va.0 + skip * PAGE, self.last()))
    }
}

/// Every object backing of a space, by virtual start; the ranges never overlap.
pub(crate) type ObjectBackings = RangeRecords<ObjectBacking>;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    struct Named(usize);

    impl PageObject for Named {
        fn frame(&self, _index: u64) -> Result<PhysAddr, ObjectFault> {
            Err(ObjectFault::PastEnd)
        }
        fn holds(&self, _index: u64) -> bool {
            false
        }
        fn key(&self) -> usize {
            self.0
        }
        fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
            write!(out, "object {}", self.0)
        }
    }

    fn backing(va: u64, len: u64, first_index: u64) -> ObjectBacking {
        ObjectBacking { va: VirtAddr(va), len, object: Arc::new(Named(7)), first_index, shared: true }
    }

    #[test]
    fn removing_a_middle_part_keeps_both_ends_with_their_indexes() {
        let mut set = ObjectBackings::default();
        set.insert(backing(0x10000, 0x4000, 5));
        set.remove_range(0x11000, 0x11fff);
        let parts: Vec<(u64, u64, u64)> = set.iter().map(|b| (b.va.0, b.len, b.first_index)).collect();
        assert_eq!(parts, [(0x10000, 0x1000, 5), (0x12000, 0x2000, 7)]);
        assert!(set.find(0x11800).is_none());
        assert_eq!(set.find(0x13fff).map(|b| b.index_of(0x13000)), Some(8));
        set.remove_range(0, u64::MAX);
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn pages_from_an_index_are_those_at_or_past_it() {
        let b = backing(0x10000, 0x4000, 5);
        assert_eq!(b.pages_from_index(0), Some((0x10000, 0x13fff)));
        assert_eq!(b.pages_from_index(7), Some((0x12000, 0x13fff)));
        assert_eq!(b.pages_from_index(9), None);
        assert_eq!(b.pages_from_index(u64::MAX), None);
    }
}
