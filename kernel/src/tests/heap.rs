//! The kernel heap under a stress of random allocations and frees.

use super::XorShift;
use crate::mem::heap;
use crate::{check, check_eq, kernel_test};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

fn stress_keeps_contents_and_returns_memory() -> Result<(), String> {
    let used_before = heap::stats().used;
    let mut random = XorShift::new(0x5eed_1234);
    // Each live block is filled with its own tag; every check re-reads it.
    let mut live: Vec<(u8, Box<[u8]>)> = Vec::new();
    for round in 0..4000u32 {
        if live.len() < 200 && (live.is_empty() || random.below(3) != 0) {
            let size = match random.below(10) {
                0 => random.below(64 * 1024) as usize + 1,
                1..=3 => random.below(4096) as usize + 1,
                _ => random.below(128) as usize + 1,
            };
            let tag = round as u8 | 1;
            live.push((tag, alloc::vec![tag; size].into_boxed_slice()));
        } else {
            let (tag, block) = live.swap_remove(random.below(live.len() as u64) as usize);
            check!(block.iter().all(|&byte| byte == tag), "block of {} bytes was overwritten", block.len());
        }
    }
    for (tag, block) in &live {
        check!(block.iter().all(|byte| byte == tag), "block of {} bytes was overwritten", block.len());
    }
    drop(live);
    check_eq!(heap::stats().used, used_before);
    Ok(())
}
kernel_test!(stress_keeps_contents_and_returns_memory);

fn alignment_is_honoured() -> Result<(), String> {
    for shift in 3..13 {
        let align = 1usize << shift;
        let layout = core::alloc::Layout::from_size_align(24, align).map_err(|e| alloc::format!("{e}"))?;
        // SAFETY: the layout has a non-zero size; the block is freed below.
        let block = unsafe { alloc::alloc::alloc(layout) };
        check!(!block.is_null());
        check!((block as usize).is_multiple_of(align), "{:p} is not {align}-aligned", block);
        // SAFETY: allocated above with this layout.
        unsafe { alloc::alloc::dealloc(block, layout) };
    }
    Ok(())
}
kernel_test!(alignment_is_honoured);
