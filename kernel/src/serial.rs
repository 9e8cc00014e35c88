//! The COM1 serial port (a 16550 UART at I/O port 0x3f8): the console.
//!
//! Output polls the transmit-holding-register-empty bit; input is polled too
//! ([`try_read_byte`]), so no interrupt is needed. `\n` is sent as `\r\n`,
//! because QEMU puts the host terminal in raw mode.

use crate::arch::port::{inb, outb};
use core::fmt;
use spin::Mutex;

const COM1: u16 = 0x3f8;
const DATA: u16 = COM1;
const INTERRUPT_ENABLE: u16 = COM1 + 1;
const FIFO_CONTROL: u16 = COM1 + 2;
const LINE_CONTROL: u16 = COM1 + 3;
const MODEM_CONTROL: u16 = COM1 + 4;
const LINE_STATUS: u16 = COM1 + 5;

const LINE_STATUS_DATA_READY: u8 = 1 << 0;
const LINE_STATUS_TRANSMIT_EMPTY: u8 = 1 << 5;

/// Serialises writers so that lines from different CPUs do not interleave.
static LOCK: Mutex<()> = Mutex::new(());

/// Programs COM1 for 115200 baud, 8 data bits, no parity, one stop bit, FIFOs
/// on, and its interrupts off.
pub fn init() {
    // SAFETY: these are the documented 16550 initialisation writes for COM1,
    // a device nothing else drives.
    unsafe {
        outb(INTERRUPT_ENABLE, 0x00);
        outb(LINE_CONTROL, 0x80); // DLAB: the next two writes set the divisor
        outb(DATA, 0x01); // divisor 1 = 115200 baud
        outb(INTERRUPT_ENABLE, 0x00);
        outb(LINE_CONTROL, 0x03); // 8N1, DLAB off
        outb(FIFO_CONTROL, 0xc7); // enable and clear FIFOs
        outb(MODEM_CONTROL, 0x03); // DTR + RTS
    }
}

fn write_byte_raw(byte: u8) {
    // SAFETY: reading COM1's line status has no side effect.
    while unsafe { inb(LINE_STATUS) } & LINE_STATUS_TRANSMIT_EMPTY == 0 {
        core::hint::spin_loop();
    }
    // SAFETY: the transmitter is empty; this queues one byte for sending.
    unsafe { outb(DATA, byte) }
}

fn write_bytes_raw(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            write_byte_raw(b'\r');
        }
        write_byte_raw(byte);
    }
}

/// Returns the next received byte, or `None` at once when none is waiting.
pub fn try_read_byte() -> Option<u8> {
    // SAFETY: reading the line status has no side effect; reading DATA pops
    // the byte the status said is there.
    unsafe { (inb(LINE_STATUS) & LINE_STATUS_DATA_READY != 0).then(|| inb(DATA)) }
}

/// A `fmt::Write` handle onto the serial port. Each `write_str` call holds
/// the port lock (with interrupts off) for its duration.
pub struct SerialWriter;

impl fmt::Write for SerialWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::cpu::without_interrupts(|| {
            let _guard = LOCK.lock();
            write_bytes_raw(s.as_bytes());
        });
        Ok(())
    }
}

/// Writes formatted text under the lock, as one piece.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    crate::arch::cpu::without_interrupts(|| {
        let _guard = LOCK.lock();
        let _ = fmt::write(&mut UnlockedWriter, args);
    });
}

/// Writes bytes as they are (a user program's output, which need not be
/// UTF-8) under the lock, as one piece.
pub fn write_bytes(bytes: &[u8]) {
    crate::arch::cpu::without_interrupts(|| {
        let _guard = LOCK.lock();
        write_bytes_raw(bytes);
    });
}

/// A writer that ignores the lock: for the panic handler and the fault
/// report, which must print even if the lock holder will never return.
pub struct UnlockedWriter;

impl fmt::Write for UnlockedWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes_raw(s.as_bytes());
        Ok(())
    }
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
