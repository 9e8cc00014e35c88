//! The frame allocator: uniqueness, full return, refusals, contiguous runs.

use crate::mem::frames::{self, FrameError, FRAME_SIZE};
use crate::{check, check_eq, kernel_test};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use aspace::PhysAddr;

fn every_frame_once_and_all_come_back() -> Result<(), String> {
    let before = frames::stats();
    let mut taken: Vec<PhysAddr> = Vec::with_capacity(before.free);
    // One bit per frame below the highest address seen, to spot repeats.
    let mut seen: Vec<u64> = Vec::new();
    while let Some(frame) = frames::alloc() {
        let number = (frame.as_u64() / FRAME_SIZE) as usize;
        if seen.len() <= number / 64 {
            seen.resize(number / 64 + 1, 0);
        }
        check!(seen[number / 64] & (1 << (number % 64)) == 0, "frame {:#x} handed out twice", frame.as_u64());
        check!(frame.as_u64() >= 1 << 20, "frame {:#x} is in the low 1 MiB", frame.as_u64());
        seen[number / 64] |= 1 << (number % 64);
        taken.push(frame);
    }
    check_eq!(taken.len(), before.free);
    check_eq!(frames::stats().free, 0);
    for frame in taken {
        frames::free(frame).map_err(|error| alloc::format!("{error}"))?;
    }
    check_eq!(frames::stats(), before);
    Ok(())
}
kernel_test!(every_frame_once_and_all_come_back);

fn frees_that_are_refused() -> Result<(), String> {
    let before = frames::stats();
    let frame = frames::alloc().ok_or("out of frames")?;
    check_eq!(
        frames::free(PhysAddr::new(frame.as_u64() + 8)),
        Err(FrameError::Misaligned(PhysAddr::new(frame.as_u64() + 8)))
    );
    frames::free(frame).map_err(|error| alloc::format!("{error}"))?;
    check_eq!(frames::free(frame), Err(FrameError::DoubleFree(frame)));
    // The low 1 MiB and the kernel image are not the allocator's.
    check_eq!(frames::free(PhysAddr::new(0x1000)), Err(FrameError::NotManaged(PhysAddr::new(0x1000))));
    let kernel_text = crate::kernel_main as *const () as u64 & !(FRAME_SIZE - 1);
    check_eq!(frames::free(PhysAddr::new(kernel_text)), Err(FrameError::NotManaged(PhysAddr::new(kernel_text))));
    check_eq!(frames::stats(), before);
    Ok(())
}
kernel_test!(frees_that_are_refused);

fn contiguous_runs_are_aligned_and_whole() -> Result<(), String> {
    let before = frames::stats();
    const TWO_MIB: u64 = 2 << 20;
    let run = frames::alloc_contiguous(512, TWO_MIB).ok_or("no free 2 MiB run")?;
    check!(run.is_aligned(TWO_MIB), "run at {:#x} is not 2 MiB-aligned", run.as_u64());
    check_eq!(frames::stats().free, before.free - 512);
    for index in 0..512 {
        check!(!frames::is_free(PhysAddr::new(run.as_u64() + index * FRAME_SIZE)));
    }
    // A second run does not overlap the first.
    let second = frames::alloc_contiguous(3, 4 * FRAME_SIZE).ok_or("no run of 3")?;
    check!(second.is_aligned(4 * FRAME_SIZE));
    check!(second.as_u64() + 3 * FRAME_SIZE <= run.as_u64() || second.as_u64() >= run.as_u64() + TWO_MIB);
    // Freeing a range containing a free frame is refused whole.
    frames::free_contiguous(second, 3).map_err(|error| alloc::format!("{error}"))?;
    check_eq!(frames::free_contiguous(second, 3), Err(FrameError::DoubleFree(second)));
    frames::free_contiguous(run, 512).map_err(|error| alloc::format!("{error}"))?;
    check_eq!(frames::stats(), before);
    check!(frames::alloc_contiguous(0, FRAME_SIZE).is_none());
    check!(frames::alloc_contiguous(before.free + 1, FRAME_SIZE).is_none());
    Ok(())
}
kernel_test!(contiguous_runs_are_aligned_and_whole);

fn zeroed_frames_are_zero() -> Result<(), String> {
    let frame = frames::alloc().ok_or("out of frames")?;
    // SAFETY: the frame is ours, in the direct map.
    unsafe { core::ptr::write_bytes(crate::direct_map::phys_to_virt(frame.as_u64()), 0xee, FRAME_SIZE as usize) };
    frames::zero_frame(frame);
    // SAFETY: as above.
    let contents = unsafe {
        core::slice::from_raw_parts(crate::direct_map::phys_to_virt(frame.as_u64()) as *const u8, FRAME_SIZE as usize)
    };
    let all_zero = contents == vec![0u8; FRAME_SIZE as usize].as_slice();
    frames::free(frame).map_err(|error| alloc::format!("{error}"))?;
    check!(all_zero);
    Ok(())
}
kernel_test!(zeroed_frames_are_zero);
