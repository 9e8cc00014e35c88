//! Bytes for `AT_RANDOM` and `getrandom`: a SplitMix64 stream over the
//! time-stamp counter. Unpredictable enough for a C library's stack
//! protector in a teaching kernel; not a cryptographic generator, and said so
//! in docs/user-mode.md.

use core::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0);

/// The next 64 random bits.
pub fn next_u64() -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let tsc = crate::arch::cpu::rdtsc();
    let mut z = STATE.fetch_add(GOLDEN ^ tsc.rotate_left(29), Ordering::Relaxed).wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `out` with random bytes.
pub fn fill(out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let word = next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// Sixteen random bytes (`AT_RANDOM`).
pub fn bytes16() -> [u8; 16] {
    let mut out = [0; 16];
    fill(&mut out);
    out
}
