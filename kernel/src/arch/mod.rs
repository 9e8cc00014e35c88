//! Everything specific to x86-64: the boot path, the CPU, descriptor tables,
//! trap entry and dispatch, port I/O and SSE.

pub mod boot;
pub mod cpu;
pub mod port;
