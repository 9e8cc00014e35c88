//! Everything specific to x86-64: the boot path, the CPU, descriptor tables,
//! trap entry and dispatch, port I/O, SSE and the time-stamp counter.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod frame;
pub mod gdt;
pub mod idt;
pub mod port;
pub mod smp;
pub mod sse;
pub mod switch;
pub mod syscall;
pub mod trap;
pub mod tsc;
