//! Port I/O: the `in` and `out` instructions.

use core::arch::asm;

/// Writes a byte to an I/O port.
///
/// # Safety
/// Port writes drive devices; the caller must know what the device does with it.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the device effect; the instruction touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) }
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// Port reads may have device side effects (clearing a status, popping a FIFO).
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the device effect; the instruction touches no memory.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller vouches for the device effect; the instruction touches no memory.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) }
}
