//! Physical memory: the frame allocator, the kernel heap built on it, and
//! the registry of guard pages.

pub mod frames;
pub mod guard;
pub mod heap;

use crate::boot_info::BootInfo;
use core::fmt::{self, Write};
use frames::FRAME_SIZE;

/// The heap takes this share of free memory at boot…
const HEAP_SHARE_DIVISOR: usize = 8;
/// …but at least this much…
const HEAP_MIN: usize = 1 << 20;
/// …and at most this much.
const HEAP_MAX: usize = 64 << 20;

/// Builds the frame allocator from the memory map, carves the heap out of
/// it, then applies the `frames=N` cap if one was given.
///
/// # Safety
/// As for [`frames::init`]: a correct memory map and the boot tables' direct map.
pub unsafe fn init(boot_info: &BootInfo, frame_cap: Option<usize>) {
    // SAFETY: forwarded from the caller.
    unsafe { frames::init(boot_info) };
    let free_bytes = frames::stats().free * FRAME_SIZE as usize;
    let heap_size =
        (free_bytes / HEAP_SHARE_DIVISOR).clamp(HEAP_MIN, HEAP_MAX) / FRAME_SIZE as usize * FRAME_SIZE as usize;
    let heap_start =
        frames::alloc_contiguous(heap_size / FRAME_SIZE as usize, FRAME_SIZE).expect("no memory for the heap");
    // SAFETY: the frames were just taken from the allocator for good; they
    // are RAM, reached through the direct map.
    unsafe { heap::init(crate::direct_map::phys_to_virt(heap_start.as_u64()) as u64, heap_size) };
    if let Some(cap) = frame_cap {
        frames::limit(cap);
    }
}

/// Writes the frame and heap figures (the shell's `mem`).
pub fn report(out: &mut dyn Write) -> fmt::Result {
    let frames = frames::stats();
    let heap = heap::stats();
    let mib = |frames: usize| frames as f64 * FRAME_SIZE as f64 / (1u64 << 20) as f64;
    writeln!(
        out,
        "frames: {} managed ({:.1} MiB), {} used, {} free ({:.1} MiB)",
        frames.managed,
        mib(frames.managed),
        frames.used(),
        frames.free,
        mib(frames.free)
    )?;
    writeln!(out, "        {} shared (more than one reference: fork, files in RAM)", frames::shared_count())?;
    writeln!(
        out,
        "heap:   {} KiB at {:#x}, {} KiB used, {} KiB free",
        heap.size / 1024,
        heap.start,
        heap.used / 1024,
        heap.free / 1024
    )
}
