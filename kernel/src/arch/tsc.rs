//! Time from the time-stamp counter, calibrated once against the PIT.
//!
//! The TSC counts at a fixed rate the CPU does not always report (QEMU's TCG
//! passes the host's counter through), so boot measures it against PIT
//! channel 2, which counts down at its fixed 1.193182 MHz: the counter is
//! read at the start and again once it has counted 10 ms, and each read is
//! bracketed by two TSC reads. Under an emulator a port access can stall
//! for hundreds of microseconds (while another thread holds the emulator's
//! lock), so each read is tried a few times and the narrowest bracket is
//! kept: the rate is off by at most the two brackets' widths over 10 ms.
//! Waiting for the counter's output to rise instead lets such a stall at
//! the end lengthen the interval: under TCG, rates up to 5% high, and every
//! time the kernel measures up to 5% short.

use super::cpu::rdtsc;
use super::port::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};

const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 10;
/// Reads of the counter tried for each end of the interval.
const SAMPLE_TRIES: usize = 8;
const PIT_CHANNEL2_DATA: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
/// Port B of the keyboard controller: bit 0 gates PIT channel 2, bit 1 drives
/// the speaker.
const PORT_B: u16 = 0x61;

static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

/// One read of the PIT counter and the TSC around it.
#[derive(Clone, Copy)]
struct Sample {
    /// The counter's value.
    count: u16,
    /// The TSC halfway through the read.
    tsc: u64,
    /// TSC ticks between the TSC reads before and after.
    width: u64,
}

/// Reads channel 2's counter (latched, then its low and high bytes).
fn read_count() -> u16 {
    // SAFETY: PIT channel 2 is only used here; the latch command changes no
    // setting.
    unsafe {
        outb(PIT_COMMAND, 0b1000_0000); // channel 2, latch the count
        let low = inb(PIT_CHANNEL2_DATA);
        let high = inb(PIT_CHANNEL2_DATA);
        u16::from_le_bytes([low, high])
    }
}

/// The read of the counter with the narrowest TSC bracket of [`SAMPLE_TRIES`].
fn sample() -> Sample {
    let mut best: Option<Sample> = None;
    for _ in 0..SAMPLE_TRIES {
        let before = rdtsc();
        let count = read_count();
        let after = rdtsc();
        let width = after.wrapping_sub(before);
        if best.is_none_or(|best| width < best.width) {
            best = Some(Sample { count, tsc: before + width / 2, width });
        }
    }
    best.expect("SAMPLE_TRIES is not 0")
}

/// Measures the TSC rate; call once at boot, interrupts off.
pub fn calibrate() {
    let interval = (PIT_FREQUENCY_HZ * CALIBRATION_MS / 1000) as u16;
    // SAFETY: PIT channel 2 and port B are only used here; the speaker stays
    // off (bit 1 clear) while the gate (bit 0) is raised.
    unsafe {
        outb(PORT_B, (inb(PORT_B) & !0x02) | 0x01);
        outb(PIT_COMMAND, 0b1011_0000); // channel 2, low then high byte, mode 0 (count down once), binary
        outb(PIT_CHANNEL2_DATA, 0xff);
        outb(PIT_CHANNEL2_DATA, 0xff);
    }
    // From 0xffff the counter takes 55 ms to reach 0: 10 ms never wrap.
    let start = sample();
    while start.count.wrapping_sub(read_count()) < interval {
        core::hint::spin_loop();
    }
    let end = sample();
    let counted = u64::from(start.count.wrapping_sub(end.count));
    let ticks = end.tsc.wrapping_sub(start.tsc);
    let per_ms = ticks as u128 * PIT_FREQUENCY_HZ as u128 / (counted as u128 * 1000);
    TICKS_PER_MS.store((per_ms as u64).max(1), Ordering::Relaxed);
}

/// TSC ticks per millisecond (0 before [`calibrate`]).
pub fn ticks_per_ms() -> u64 {
    TICKS_PER_MS.load(Ordering::Relaxed)
}

/// Converts a TSC difference to nanoseconds (0 before [`calibrate`]).
pub fn ticks_to_nanos(ticks: u64) -> u64 {
    match ticks_per_ms() {
        0 => 0,
        per_ms => (ticks as u128 * 1_000_000 / per_ms as u128) as u64,
    }
}

/// Nanoseconds since the first instruction of the kernel ran.
pub fn nanos_since_boot() -> u64 {
    ticks_to_nanos(rdtsc().wrapping_sub(super::boot::entry_tsc()))
}
