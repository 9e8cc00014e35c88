//! The C memory functions the compiler calls: `memcpy`, `memmove`, `memset`,
//! `memcmp`, `bcmp`.
//!
//! The precompiled `compiler_builtins` of the host target does not export
//! them for a freestanding link, so the kernel defines them. Copies and fills
//! use `rep movsb` / `rep stosb` (fast on CPUs with ERMSB; a plain Rust loop
//! here could be turned back into a call to the very function it implements).
//! The comparisons are loops over volatile reads for the same reason.

use core::arch::asm;

/// Copies `count` bytes from `src` to `dest`; the ranges must not overlap.
///
/// # Safety
/// Both ranges must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, count: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid; the direction flag
    // is clear (the ABI requires it), so the copy runs forwards.
    unsafe {
        asm!("rep movsb", inout("rcx") count => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// Copies `count` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// Both ranges must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, count: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= count {
        // The destination starts before the source or past its end: a forward
        // copy never overwrites bytes not yet read.
        // SAFETY: as for `memcpy`, and a forward copy is correct here.
        return unsafe { memcpy(dest, src, count) };
    }
    // Overlap with dest above src: copy backwards, from the last byte.
    // SAFETY: the ranges are valid (caller); `std` sets the direction flag for
    // this one instruction and `cld` restores the ABI's state.
    unsafe {
        asm!("std", "rep movsb", "cld",
            inout("rcx") count => _,
            inout("rdi") dest.add(count).wrapping_sub(1) => _,
            inout("rsi") src.add(count).wrapping_sub(1) => _,
            options(nostack));
    }
    dest
}

/// Fills `count` bytes at `dest` with the low byte of `value`.
///
/// # Safety
/// The range must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, count: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; the direction flag is clear.
    unsafe {
        asm!("rep stosb", inout("rcx") count => _, inout("rdi") dest => _, in("al") value as u8,
            options(nostack, preserves_flags));
    }
    dest
}

/// Compares `count` bytes; returns the difference of the first unequal pair
/// (as unsigned bytes), or 0.
///
/// # Safety
/// Both ranges must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, count: usize) -> i32 {
    let mut i = 0;
    // Eight bytes at a time while they are equal (large comparisons, such as
    // the shell's check of two mappings of the same memory, are common).
    while i + 8 <= count {
        // SAFETY: `i + 8 <= count` and the caller guarantees both ranges.
        let (x, y) = unsafe { (load_u64(a.add(i)), load_u64(b.add(i))) };
        if x != y {
            break;
        }
        i += 8;
    }
    while i < count {
        // SAFETY: `i < count` and the caller guarantees both ranges. Volatile
        // reads keep the loop from being recognised as a `memcmp` call.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// Loads 8 bytes at `p`, aligned or not, with one instruction.
///
/// Not `read_unaligned`, which copies through a stack temporary: a
/// comparison that covers this thread's own stack (the shell's startup test
/// compares 1 GiB of the identity map) would at some point copy a range
/// onto itself, which debug builds stop with a precondition panic.
///
/// # Safety
/// `p` must be valid for reading 8 bytes.
#[inline(always)]
unsafe fn load_u64(p: *const u8) -> u64 {
    let value;
    // SAFETY: the caller guarantees 8 readable bytes; x86-64 loads need no alignment.
    unsafe { asm!("mov {}, qword ptr [{}]", out(reg) value, in(reg) p, options(nostack, readonly, preserves_flags)) };
    value
}

/// Like `memcmp`, but only zero / non-zero matters.
///
/// # Safety
/// Both ranges must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, count: usize) -> i32 {
    // SAFETY: same contract as `memcmp`.
    unsafe { memcmp(a, b, count) }
}
