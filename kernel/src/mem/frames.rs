//! The physical frame allocator: 4 KiB frames of usable RAM, one bit each.
//!
//! Two bitmaps cover frame 0 up to the end of the highest usable RAM:
//! `managed` says which frames belong to the allocator at all (usable RAM
//! minus the low 1 MiB, the kernel image, the loader's structures, the initrd
//! and the bitmaps themselves), `free` says which of those are free now.
//! Keeping both lets [`free`] refuse a frame that was never the allocator's
//! and a frame that is already free (a double free) instead of corrupting the
//! counts. The bitmaps live in RAM carved out at boot, below 4 GiB where the
//! boot tables' direct map reaches.
//!
//! A frame has one reference when handed out. A frame shared by two
//! address spaces (after a fork, or a file's page and its mappings) has
//! more ([`share`]); the allocator keeps the references beyond the first in
//! an array of counters, one per frame number (the frames' metadata, placed
//! beside the bitmaps), and [`free`] gives up one reference, returning the
//! frame with the last. The counters are atomics: [`is_shared`] and giving
//! up a reference that is not the last take no lock.

use crate::arch::cpu::without_interrupts;
use crate::boot_info::{BootInfo, MemoryKind};
use crate::direct_map::{image_phys, phys_to_virt};
use aspace::PhysAddr;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::{Mutex, Once};

/// The size of a frame.
pub const FRAME_SIZE: u64 = 4096;
/// Memory below this is never handed out (real-mode structures, BIOS data).
const LOW_MEMORY_END: u64 = 1 << 20;
/// The bitmaps must sit where the boot tables' direct map reaches.
const BITMAP_LIMIT: u64 = 4 << 30;
const MAX_RANGES: usize = 64;
const MAX_EXCLUSIONS: usize = 8;

/// Why a frame could not be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not the start of a frame.
    Misaligned(PhysAddr),
    /// The frame is not RAM this allocator manages.
    NotManaged(PhysAddr),
    /// The frame is already free.
    DoubleFree(PhysAddr),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Misaligned(addr) => write!(f, "{:#x} is not frame-aligned", addr.as_u64()),
            FrameError::NotManaged(addr) => write!(f, "{:#x} is not a frame of the allocator", addr.as_u64()),
            FrameError::DoubleFree(addr) => write!(f, "frame {:#x} is already free (double free)", addr.as_u64()),
        }
    }
}

/// Frame counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames the allocator manages.
    pub managed: usize,
    /// Frames free now.
    pub free: usize,
}

impl FrameStats {
    /// Frames handed out and not yet returned.
    pub fn used(&self) -> usize {
        self.managed - self.free
    }
}

/// A bitmap over frame numbers.
struct Bitmap {
    words: &'static mut [u64],
}

impl Bitmap {
    fn get(&self, frame: usize) -> bool {
        self.words[frame / 64] & (1 << (frame % 64)) != 0
    }

    fn set(&mut self, frame: usize) {
        self.words[frame / 64] |= 1 << (frame % 64);
    }

    fn clear(&mut self, frame: usize) {
        self.words[frame / 64] &= !(1 << (frame % 64));
    }
}

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    start: u64,
    end: u64,
}

impl Range {
    fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The allocator's state; reached through the functions of this module.
pub struct FrameAllocator {
    free: Bitmap,
    managed: Bitmap,
    frame_count: usize,
    managed_count: usize,
    free_count: usize,
    /// Word of `free` where the next single-frame search starts.
    next_word: usize,
    /// Free frames held back by a [`FrameCap`]: allocations fail rather
    /// than take the free count below this.
    held_back: usize,
}

/// References beyond the first, one counter per frame number (see the
/// module's notes); set once by [`init`].
static EXTRA_REFERENCES: Once<&'static [AtomicU32]> = Once::new();

/// The counter of references beyond the first of frame `addr`, if `addr`
/// is a frame-aligned address the counters cover.
fn extra_references(addr: PhysAddr) -> Option<&'static AtomicU32> {
    if !addr.is_aligned(FRAME_SIZE) {
        return None;
    }
    EXTRA_REFERENCES.get()?.get((addr.as_u64() / FRAME_SIZE) as usize)
}

impl FrameAllocator {
    fn frame_number(&self, addr: PhysAddr) -> Result<usize, FrameError> {
        if !addr.is_aligned(FRAME_SIZE) {
            return Err(FrameError::Misaligned(addr));
        }
        let frame = (addr.as_u64() / FRAME_SIZE) as usize;
        if frame >= self.frame_count || !self.managed.get(frame) {
            return Err(FrameError::NotManaged(addr));
        }
        Ok(frame)
    }

    fn take(&mut self, frame: usize) -> PhysAddr {
        self.free.clear(frame);
        self.free_count -= 1;
        PhysAddr::new(frame as u64 * FRAME_SIZE)
    }

    fn alloc(&mut self) -> Option<PhysAddr> {
        if self.free_count <= self.held_back {
            return None;
        }
        let words = self.free.words.len();
        for word in (self.next_word..words).chain(0..self.next_word) {
            let bits = self.free.words[word];
            if bits != 0 {
                self.next_word = word;
                return Some(self.take(word * 64 + bits.trailing_zeros() as usize));
            }
        }
        None
    }

    fn alloc_contiguous(&mut self, count: usize, align_frames: usize) -> Option<PhysAddr> {
        if count == 0 || !align_frames.is_power_of_two() || self.free_count < self.held_back + count {
            return None;
        }
        let mut start = 0;
        while start + count <= self.frame_count {
            match (start..start + count).find(|&frame| !self.free.get(frame)) {
                Some(taken) => start = (taken + 1).next_multiple_of(align_frames),
                None => {
                    for frame in start..start + count {
                        self.take(frame);
                    }
                    return Some(PhysAddr::new(start as u64 * FRAME_SIZE));
                }
            }
        }
        None
    }

    fn free(&mut self, addr: PhysAddr) -> Result<(), FrameError> {
        let frame = self.frame_number(addr)?;
        if self.free.get(frame) {
            return Err(FrameError::DoubleFree(addr));
        }
        if give_up_extra_reference(addr) {
            // Another holder keeps it.
            return Ok(());
        }
        self.free.set(frame);
        self.free_count += 1;
        Ok(())
    }

    /// Keeps only the first `cap` free frames; the others leave the allocator.
    fn limit(&mut self, cap: usize) {
        let mut kept = 0;
        for frame in 0..self.frame_count {
            if self.free.get(frame) {
                if kept < cap {
                    kept += 1;
                } else {
                    self.free.clear(frame);
                    self.managed.clear(frame);
                    self.free_count -= 1;
                    self.managed_count -= 1;
                }
            }
        }
    }

    fn stats(&self) -> FrameStats {
        FrameStats { managed: self.managed_count, free: self.free_count }
    }
}

static FRAMES: Mutex<Option<FrameAllocator>> = Mutex::new(None);

/// Runs `f` on the allocator, with interrupts off so that a handler on this
/// CPU cannot deadlock on the lock. Panics before [`init`].
fn with_allocator<R>(f: impl FnOnce(&mut FrameAllocator) -> R) -> R {
    without_interrupts(|| f(FRAMES.lock().as_mut().expect("frame allocator not initialised")))
}

/// Builds the allocator from the memory map. Call once, early.
///
/// # Safety
/// The memory map must be right and the first 4 GiB in the direct map (as
/// the boot tables leave them): the bitmaps are written into RAM the map
/// says is usable.
pub unsafe fn init(boot_info: &BootInfo) {
    let linked = crate::direct_map::image_range();
    let image = Range { start: image_phys(linked.start), end: image_phys(linked.end) };
    let mut exclusions = [Range::default(); MAX_EXCLUSIONS];
    let mut exclusion_count = 0;
    let mut exclude = |range: Range| {
        if range.end > range.start && exclusion_count < MAX_EXCLUSIONS {
            exclusions[exclusion_count] =
                Range { start: range.start / FRAME_SIZE * FRAME_SIZE, end: range.end.next_multiple_of(FRAME_SIZE) };
            exclusion_count += 1;
        }
    };
    exclude(image);
    for (start, end) in boot_info.loader_ranges() {
        exclude(Range { start, end });
    }
    if let Some(initrd) = boot_info.initrd() {
        exclude(Range { start: initrd.start, end: initrd.start + initrd.size });
    }
    let exclusions = &exclusions[..exclusion_count];

    // Usable RAM, whole frames only, above the low 1 MiB.
    let mut usable = [Range::default(); MAX_RANGES];
    let mut usable_count = 0;
    for region in boot_info.memory_map().iter().filter(|r| r.kind == MemoryKind::Usable) {
        let start = region.start.max(LOW_MEMORY_END).next_multiple_of(FRAME_SIZE);
        let end = region.end() / FRAME_SIZE * FRAME_SIZE;
        if end > start && usable_count < MAX_RANGES {
            usable[usable_count] = Range { start, end };
            usable_count += 1;
        }
    }
    let usable = &usable[..usable_count];

    let highest = usable.iter().map(|r| r.end).max().unwrap_or(0);
    let frame_count = (highest / FRAME_SIZE) as usize;
    let words = frame_count.div_ceil(64);
    // The two bitmaps, then a reference counter per frame.
    let bitmap_bytes = (2 * words * 8 + frame_count * 4) as u64;

    // Place both bitmaps in the first stretch of usable RAM that holds them
    // and overlaps nothing excluded: try each range's start and the end of
    // each exclusion.
    let candidates = usable.iter().flat_map(|range| {
        core::iter::once(range.start)
            .chain(exclusions.iter().map(|e| e.end))
            .map(move |start| Range { start, end: start + bitmap_bytes.next_multiple_of(FRAME_SIZE) })
    });
    let bitmap_area = candidates
        .filter(|area| area.end <= BITMAP_LIMIT)
        .find(|area| {
            usable.iter().any(|r| r.start <= area.start && area.end <= r.end)
                && !exclusions.iter().any(|e| e.overlaps(area))
        })
        .expect("no room for the frame bitmaps");

    let area = phys_to_virt(bitmap_area.start) as *mut u64;
    // SAFETY: the area is usable RAM below 4 GiB (in the direct map),
    // excluded from everything else, and from now on owned by the bitmaps
    // and the counters alone (zeroed: an all-zero `AtomicU32` is 0, and the
    // counters start at a word boundary, so they are aligned).
    let (free_words, managed_words, counters) = unsafe {
        core::ptr::write_bytes(area.cast::<u8>(), 0, bitmap_bytes as usize);
        (
            core::slice::from_raw_parts_mut(area, words),
            core::slice::from_raw_parts_mut(area.add(words), words),
            core::slice::from_raw_parts(area.add(2 * words).cast::<AtomicU32>(), frame_count),
        )
    };
    EXTRA_REFERENCES.call_once(|| counters);
    let mut allocator = FrameAllocator {
        free: Bitmap { words: free_words },
        managed: Bitmap { words: managed_words },
        frame_count,
        managed_count: 0,
        free_count: 0,
        next_word: 0,
        held_back: 0,
    };
    for range in usable {
        let mut frame_start = range.start;
        while frame_start < range.end {
            let frame = Range { start: frame_start, end: frame_start + FRAME_SIZE };
            if !frame.overlaps(&bitmap_area) && !exclusions.iter().any(|e| e.overlaps(&frame)) {
                let number = (frame_start / FRAME_SIZE) as usize;
                allocator.managed.set(number);
                allocator.free.set(number);
                allocator.managed_count += 1;
                allocator.free_count += 1;
            }
            frame_start += FRAME_SIZE;
        }
    }
    without_interrupts(|| *FRAMES.lock() = Some(allocator));
}

/// Keeps at most `cap` free frames in the allocator (the `frames=N` option),
/// so that tests can run memory out quickly.
pub fn limit(cap: usize) {
    with_allocator(|allocator| allocator.limit(cap));
}

/// While alive, at most a given number of frames can be allocated (see
/// [`cap_free_frames`]); dropping it lifts the cap.
#[must_use = "the cap is lifted when this is dropped"]
#[cfg(feature = "ktest")]
pub struct FrameCap {
    previous: usize,
}

/// Caps, until the returned guard is dropped, the frames that can be
/// allocated to `available` (fewer if fewer are free): the rest of the free
/// frames are held back. For exhaustion tests: every path that needs a
/// frame can be made to fail at once, and the frames come back.
#[cfg(feature = "ktest")]
pub fn cap_free_frames(available: usize) -> FrameCap {
    with_allocator(|allocator| {
        let previous = allocator.held_back;
        allocator.held_back = allocator.free_count.saturating_sub(available);
        FrameCap { previous }
    })
}

#[cfg(feature = "ktest")]
impl Drop for FrameCap {
    fn drop(&mut self) {
        with_allocator(|allocator| allocator.held_back = self.previous);
    }
}

/// A free frame, its contents undefined; `None` when memory is exhausted.
pub fn alloc() -> Option<PhysAddr> {
    with_allocator(FrameAllocator::alloc)
}

/// A free frame filled with zeros.
pub fn alloc_zeroed() -> Option<PhysAddr> {
    let frame = alloc()?;
    zero_frame(frame);
    Some(frame)
}

/// Fills a frame with zeros through the direct map. Eight-byte stores:
/// under QEMU's TCG they are several times faster than `rep stosb`.
pub fn zero_frame(frame: PhysAddr) {
    let words = phys_to_virt(frame.as_u64()) as *mut u64;
    for index in 0..(FRAME_SIZE / 8) as usize {
        // SAFETY: the caller owns the frame, RAM in the direct map.
        // Volatile keeps the loop from becoming a `memset` call.
        unsafe { words.add(index).write_volatile(0) };
    }
}

/// Copies `bytes` (at most a frame's worth) to the start of `frame`, which
/// the caller owns and nobody else writes meanwhile.
pub fn write_bytes(frame: PhysAddr, bytes: &[u8]) {
    assert!(bytes.len() as u64 <= FRAME_SIZE, "more than a frame");
    // SAFETY: the caller owns the frame, RAM in the direct map; the copy
    // stays inside it, and `bytes` (kernel memory) cannot overlap a frame
    // the caller owns.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys_to_virt(frame.as_u64()), bytes.len()) };
}

/// `count` free frames in a row, the first aligned to `align` bytes (a power
/// of two, at least [`FRAME_SIZE`]): the backing of a 2 MiB or 1 GiB page.
pub fn alloc_contiguous(count: usize, align: u64) -> Option<PhysAddr> {
    let align_frames = (align.max(FRAME_SIZE) / FRAME_SIZE) as usize;
    with_allocator(|allocator| allocator.alloc_contiguous(count, align_frames))
}

/// Returns a frame (gives up one reference: the frame goes back with the
/// last). A reference that is not the last is given up without the lock.
pub fn free(frame: PhysAddr) -> Result<(), FrameError> {
    if give_up_extra_reference(frame) {
        return Ok(());
    }
    with_allocator(|allocator| allocator.free(frame))
}

/// [`free`] of every frame of `frames`, in order, taking the allocator's
/// lock once for each run of [`FREE_RUN`] frames (interrupts stay off for
/// one run at most). Stops at the first error.
pub fn free_all(frames: &[PhysAddr]) -> Result<(), FrameError> {
    for run in frames.chunks(FREE_RUN) {
        with_allocator(|allocator| run.iter().try_for_each(|&frame| allocator.free(frame)))?;
    }
    Ok(())
}

/// How many frames [`free_all`] frees under one taking of the lock.
const FREE_RUN: usize = 256;

/// Adds a reference to `frame`, a frame handed out and not yet freed (a
/// page now mapped by one more address space); each [`free`] gives up one.
pub fn share(frame: PhysAddr) -> Result<(), FrameError> {
    share_all(&[frame])
}

/// [`share`] of every frame of `frames`, under one taking of the lock:
/// all or nothing (each is checked first).
pub fn share_all(frames: &[PhysAddr]) -> Result<(), FrameError> {
    share_each(frames.iter().copied())
}

/// [`share_all`] of the frames `frames` yields (twice: a check, then the
/// references), without gathering them first.
pub fn share_each(frames: impl Iterator<Item = PhysAddr> + Clone) -> Result<(), FrameError> {
    with_allocator(|allocator| {
        for frame in frames.clone() {
            let number = allocator.frame_number(frame)?;
            if allocator.free.get(number) {
                return Err(FrameError::DoubleFree(frame));
            }
        }
        for frame in frames {
            let counter = extra_references(frame).expect("a managed frame has a counter");
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// Gives up one of `frame`'s references beyond the first, if it has one:
/// false when the caller's is the last.
fn give_up_extra_reference(frame: PhysAddr) -> bool {
    let Some(counter) = extra_references(frame) else { return false };
    // AcqRel: whoever then frees the frame sees every write the other
    // holders made before giving theirs up.
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |extra| extra.checked_sub(1)).is_ok()
}

/// True when `frame` has more than one reference. Takes no lock.
pub fn is_shared(frame: PhysAddr) -> bool {
    extra_references(frame).is_some_and(|counter| counter.load(Ordering::Acquire) > 0)
}

/// How many frames are shared by more than one holder.
pub fn shared_count() -> usize {
    EXTRA_REFERENCES.get().map_or(0, |counters| counters.iter().filter(|c| c.load(Ordering::Relaxed) > 0).count())
}

/// Returns `count` frames starting at `start`. Checks them all first, so a
/// refused call changes nothing.
pub fn free_contiguous(start: PhysAddr, count: usize) -> Result<(), FrameError> {
    with_allocator(|allocator| {
        for index in 0..count as u64 {
            let frame = PhysAddr::new(start.as_u64() + index * FRAME_SIZE);
            let number = allocator.frame_number(frame)?;
            if allocator.free.get(number) {
                return Err(FrameError::DoubleFree(frame));
            }
        }
        for index in 0..count as u64 {
            allocator.free(PhysAddr::new(start.as_u64() + index * FRAME_SIZE))?;
        }
        Ok(())
    })
}

/// Current frame counts.
pub fn stats() -> FrameStats {
    with_allocator(|allocator| allocator.stats())
}

/// True when `frame` is a managed frame that is free now (for tests and checks).
#[cfg(feature = "ktest")]
pub fn is_free(frame: PhysAddr) -> bool {
    with_allocator(|allocator| allocator.frame_number(frame).is_ok_and(|number| allocator.free.get(number)))
}
