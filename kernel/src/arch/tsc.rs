//! Time from the time-stamp counter, calibrated once against the PIT.
//!
//! The TSC counts at a fixed rate the CPU does not always report (QEMU's TCG
//! passes the host's counter through), so boot measures it: PIT channel 2
//! counts down 10 ms at its fixed 1.193182 MHz while the TSC is read on both
//! sides.

use super::cpu::rdtsc;
use super::port::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};

const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 10;
const PIT_CHANNEL2_DATA: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
/// Port B of the keyboard controller: bit 0 gates PIT channel 2, bit 1 drives
/// the speaker, bit 5 reads channel 2's output.
const PORT_B: u16 = 0x61;

static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

/// Measures the TSC rate; call once at boot, interrupts off.
pub fn calibrate() {
    let count = PIT_FREQUENCY_HZ * CALIBRATION_MS / 1000;
    // SAFETY: PIT channel 2 and port B are only used here; the speaker stays
    // off (bit 1 clear) while the gate (bit 0) is raised.
    let (start, end) = unsafe {
        outb(PORT_B, (inb(PORT_B) & !0x02) | 0x01);
        outb(PIT_COMMAND, 0b1011_0000); // channel 2, low then high byte, mode 0 (count down once), binary
        outb(PIT_CHANNEL2_DATA, count as u8);
        outb(PIT_CHANNEL2_DATA, (count >> 8) as u8);
        let start = rdtsc();
        while inb(PORT_B) & 0x20 == 0 {
            core::hint::spin_loop();
        }
        (start, rdtsc())
    };
    TICKS_PER_MS.store(((end - start) / CALIBRATION_MS).max(1), Ordering::Relaxed);
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
