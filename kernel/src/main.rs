//! # Nacre
//!
//! A small x86-64 kernel in the style of the Nautilus kernel: no kernel/user
//! split, everything identity-mapped at boot, and address spaces that threads
//! join. This file is the Rust entry point and the boot sequence.
#![no_std]
#![no_main]

mod arch;
mod mem;
mod memfuncs;
mod qemu;
mod serial;

use core::panic::PanicInfo;

/// The Rust entry point, called by the boot code in long mode on the boot
/// stack, with the physical address of QEMU's PVH `hvm_start_info`.
#[no_mangle]
pub extern "C" fn kernel_main(start_info_phys: u32) -> ! {
    serial::init();
    println!("nacre: hello, start info at {:#x}", start_info_phys);
    qemu::exit(qemu::ExitStatus::Success)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    use core::fmt::Write;
    let _ = writeln!(serial::UnlockedWriter, "\nkernel panic: {}", info);
    qemu::exit(qemu::ExitStatus::Failure)
}

/// Referenced by the precompiled `core`; never called, since the kernel is
/// built with `panic = "abort"`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
