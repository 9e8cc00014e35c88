//! File-backed private pages: anonymous pages whose first contents are a
//! copy of physical memory (a file's data in an initrd, say) instead of zeros.
//!
//! A [`FileBacking`] says "the pages of `[va, va+len)` start as a copy of
//! the `source_len` bytes at `source`, then zeros". The space keeps these
//! records in a B-tree by virtual start, beside the anonymous frames: when
//! a page of an anonymous region gets its frame (first touch, EAGER, or
//! protect to EAGER), the frame is zeroed by the allocator and then filled
//! with the page's share of the source. From then on the page is an
//! ordinary anonymous page: writes go to its own frame and never reach the
//! source, and it is freed like one.
//!
//! Records follow the regions: a remove of all or part of a region cuts the
//! records over the removed range, so a region added there later starts zeroed.

use crate::entry::PAGE;
use crate::machine::Machine;
use crate::ranges::{RangeRecord, RangeRecords};
use aspace::{PhysAddr, VirtAddr};

/// The initial contents of a range of anonymous pages: a copy of
/// `source_len` bytes of physical memory at `source`, then zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileBacking {
    /// The first page of the range.
    pub va: VirtAddr,
    /// The length of the range (whole pages).
    pub len: u64,
    /// Where the bytes the range starts with are, in physical memory.
    pub source: PhysAddr,
    /// How many bytes are copied (at most `len`); the rest reads zero.
    pub source_len: u64,
}

impl FileBacking {
    /// The last virtual byte of the range.
    pub fn last(&self) -> u64 {
        self.va.0 + (self.len - 1)
    }

    /// The physical bytes the page at `page` starts with, as (address,
    /// count); `None` when the page lies wholly past the source (all zeros).
    pub fn source_of_page(&self, page: u64) -> Option<(PhysAddr, u64)> {
        let offset = page - self.va.0;
        let count = self.source_len.saturating_sub(offset).min(PAGE);
        (count > 0).then_some((PhysAddr(self.source.0 + offset), count))
    }
}

impl RangeRecord for FileBacking {
    fn start(&self) -> u64 {
        self.va.0
    }

    fn last(&self) -> u64 {
        FileBacking::last(self)
    }

    /// The part of this range over `[va, va+len)` (inside it), with the
    /// source moved along.
    fn part(&self, va: u64, len: u64) -> FileBacking {
        let offset = va - self.va.0;
        FileBacking {
            va: VirtAddr(va),
            len,
            source: PhysAddr(self.source.0 + offset),
            source_len: self.source_len.saturating_sub(offset).min(len),
        }
    }
}

/// Every file backing of a space, by virtual start; the ranges never overlap.
#[derive(Debug, Default)]
pub(crate) struct FileBackings {
    records: RangeRecords<FileBacking>,
    /// Pages filled from a source so far.
    pages_filled: u64,
}

impl FileBackings {
    /// The backing whose range holds `va`.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn find(&self, va: u64) -> Option<&FileBacking> {
        self.records.find(va)
    }

    /// Records `backing`; the caller has checked that its range is free.
    pub(crate) fn insert(&mut self, backing: FileBacking) {
        self.records.insert(backing);
    }

    /// The same backings, with no page filled yet (a forked space's).
    pub(crate) fn fork_copy(&self) -> FileBackings {
        FileBackings { records: self.records.clone(), pages_filled: 0 }
    }

    /// Forgets the backing starting at `va` (an add that was refused).
    pub(crate) fn remove_at(&mut self, va: u64) {
        self.records.remove_at(va);
    }

    /// Cuts `[va, last]` (inclusive) out of every backing.
    pub(crate) fn remove_range(&mut self, va: u64, last: u64) {
        self.records.remove_range(va, last);
    }

    /// Forgets every backing (the space is being destroyed).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }

    /// Every backing, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = FileBacking> + '_ {
        self.records.iter().copied()
    }

    /// How many pages have been filled from a source.
    pub(crate) fn pages_filled(&self) -> u64 {
        self.pages_filled
    }

    /// Fills `frame`, freshly allocated (so zeroed) for the page at `page`,
    /// with the page's share of its backing, if it has one.
    pub(crate) fn fill<M: Machine + ?Sized>(&mut self, machine: &M, page: u64, frame: PhysAddr) {
        // lab:begin extra-files FileBackings::fill: copy the page's share of its file into the fresh frame
        if let Some((source, count)) = self.find(page).and_then(|backing| backing.source_of_page(page)) {
            copy_to_frame(machine, source, count, frame);
            self.pages_filled += 1;
        }
        // lab:end
    }
}

/// Copies `count` (at most 4096) bytes from physical `source`, which need
/// not be aligned, to the start of `frame`, whose remaining bytes stay as
/// they are (zero). Only the 64-bit words of the machine are used; no word
/// outside the bytes asked for is read, so a source ending at the end of
/// its memory is safe.
fn copy_to_frame<M: Machine + ?Sized>(machine: &M, source: PhysAddr, count: u64, frame: PhysAddr) {
    debug_assert!(count <= PAGE && frame.0.is_multiple_of(PAGE));
    let mut offset = 0;
    while offset < count {
        let take = (count - offset).min(8);
        let word = read_bytes(machine, source.0 + offset, take);
        // SAFETY: a word of `frame`, a frame the space owns (freshly
        // allocated for an anonymous page, not mapped yet).
        unsafe { machine.write_u64(PhysAddr(frame.0 + offset), word) };
        offset += 8;
    }
}

/// The `count` (1 to 8) bytes at physical `addr` as a little-endian word,
/// the bytes past `count` zero: at most two aligned reads.
fn read_bytes<M: Machine + ?Sized>(machine: &M, addr: u64, count: u64) -> u64 {
    let mut value = 0u64;
    let mut done = 0;
    while done < count {
        let at = addr + done;
        let shift = at % 8;
        // SAFETY: an aligned word holding bytes of a file backing's
        // source: memory the space was told to copy from
        // (`PagingAspace::add_file_region`, whose caller names memory it
        // could map with an ordinary region, checked below MAXPHYADDR).
        let word = unsafe { machine.read_u64(PhysAddr(at - shift)) } >> (8 * shift);
        let take = (8 - shift).min(count - done);
        let mask = if take == 8 { u64::MAX } else { (1u64 << (8 * take)) - 1 };
        value |= (word & mask) << (8 * done);
        done += take;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn backing(va: u64, len: u64, source: u64, source_len: u64) -> FileBacking {
        FileBacking { va: VirtAddr(va), len, source: PhysAddr(source), source_len }
    }

    #[test]
    fn pages_take_their_share_of_the_source() {
        let b = backing(0x10000, 0x3000, 0x5004, 0x1804);
        assert_eq!(b.source_of_page(0x10000), Some((PhysAddr(0x5004), 0x1000)));
        assert_eq!(b.source_of_page(0x11000), Some((PhysAddr(0x6004), 0x804)));
        assert_eq!(b.source_of_page(0x12000), None, "past the source: zeros");
    }

    #[test]
    fn removing_a_middle_part_keeps_both_ends_with_their_sources() {
        let mut set = FileBackings::default();
        set.insert(backing(0x10000, 0x4000, 0x5000, 0x3800));
        set.remove_range(0x11000, 0x11fff);
        let parts: Vec<FileBacking> = set.iter().collect();
        assert_eq!(parts, [backing(0x10000, 0x1000, 0x5000, 0x1000), backing(0x12000, 0x2000, 0x7000, 0x1800)]);
        assert_eq!(set.find(0x11800), None);
        assert_eq!(set.find(0x13fff), Some(&parts[1]));
        set.remove_range(0, u64::MAX);
        assert_eq!(set.iter().count(), 0);
    }
}
