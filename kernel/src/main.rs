//! # Nacre
//!
//! A small x86-64 kernel in the style of the Nautilus kernel: the kernel in
//! the upper half of every address space (its image in the top 2 GiB, all
//! physical memory in a direct map), address spaces that threads join, and
//! Linux programs in ring 3 in the lower half. This file is the Rust entry
//! point and the boot sequence; each step is a module of its own.
#![no_std]
#![no_main]

extern crate alloc;

mod address_space;
mod arch;
mod boot_info;
mod cmdline;
mod direct_map;
mod fs;
mod growing_stack;
mod hardening;
mod hooks;
#[cfg(feature = "ktest")]
mod ktest;
mod lab_todo;
mod labs;
mod logger;
mod mem;
mod memfuncs;
mod mmap;
mod percpu;
mod probe;
mod qemu;
mod serial;
mod shell;
mod sync;
#[cfg(feature = "ktest")]
mod tests;
mod thread;
mod tlb;
mod user;

use arch::cpu::CpuFeatures;
use arch::{idt, sse, tsc};
use boot_info::BootInfo;
use cmdline::{KernelOptions, Mode};
use core::panic::PanicInfo;
use qemu::ExitStatus;

/// The Rust entry point, called by the boot code in long mode on the boot
/// stack, with the physical address of QEMU's PVH `hvm_start_info`.
#[no_mangle]
pub extern "C" fn kernel_main(start_info_phys: u32) -> ! {
    serial::init();
    tsc::calibrate();
    // SAFETY: the address is the one the PVH loader passed, and the boot
    // tables hold the first 4 GiB in the direct map.
    let boot_info = boot_info::BOOT_INFO.call_once(|| match unsafe { BootInfo::parse(start_info_phys as u64) } {
        Ok(info) => info,
        Err(error) => panic!("not booted through PVH: {error}"),
    });
    let options = KernelOptions::parse(boot_info.command_line(), |_| {});
    logger::init(options.log_level);
    KernelOptions::parse(boot_info.command_line(), |unknown| log::warn!("unknown kernel option {:?}", unknown.0));
    log::info!("Nacre booting; command line {:?}", boot_info.command_line());

    let features = CpuFeatures::detect();
    log::info!("cpu: {features}");
    log::info!(
        "paging: {}-level, nx {}, TSC {} MHz",
        if arch::cpu::la57_enabled() { 5 } else { 4 },
        if arch::cpu::nx_enabled() { "on" } else { "off" },
        tsc::ticks_per_ms() / 1000
    );

    percpu::init_boot_cpu();
    idt::init();
    idt::load();
    if sse::init() {
        log::warn!("sse: control bits were not as the boot code left them; fixed");
    }

    for region in boot_info.memory_map() {
        log::debug!("memory: {:#014x}..{:#014x} {:?}", region.start, region.end(), region.kind);
    }
    // SAFETY: the memory map comes from the loader and the boot tables' direct
    // map covers the first 4 GiB, where the bitmaps go.
    unsafe { mem::init(boot_info, options.frame_cap) };
    let frames = mem::frames::stats();
    let heap = mem::heap::stats();
    log::info!("memory: {} frames free, heap {} KiB", frames.free, heap.size / 1024);
    if let Some(initrd) = boot_info.initrd() {
        log::info!("initrd: {} bytes at {:#x}", initrd.size, initrd.start);
    }
    fs::init(boot_info.initrd());

    let ram_top = boot_info
        .memory_map()
        .iter()
        .filter(|region| region.kind == boot_info::MemoryKind::Usable)
        .map(|region| region.end())
        .max()
        .unwrap_or(0);
    if let Err(error) = address_space::init(ram_top) {
        panic!("cannot build the default address space: {error}");
    }
    hooks::install();
    user::init();
    log::info!("address spaces: default map of {} GiB loaded", ram_top.max(4 << 30).div_ceil(1 << 30));

    thread::scheduler::init(arch::apic::DEFAULT_TICK_MS);
    tlb::init();
    arch::smp::start_application_processors(arch::apic::DEFAULT_TICK_MS);
    // SAFETY: the IDT is loaded and the timer handler registered.
    unsafe { arch::cpu::enable_interrupts() };

    // The labs' commands (pagingTest, bench, ...) join the shell's table.
    shell::add_commands(labs::COMMANDS);
    if let Some(init) = options.init {
        if options.mode != Mode::Interactive {
            println!("init=: not together with test or script= (one of them runs instead of the shell)");
            qemu::exit(ExitStatus::Failure)
        }
        print_boot_time();
        user::init_program::run(init)
    }
    match options.mode {
        #[cfg(feature = "ktest")]
        Mode::Test => {
            let all_passed = ktest::run_all();
            qemu::exit(if all_passed { ExitStatus::Success } else { ExitStatus::Failure })
        }
        #[cfg(not(feature = "ktest"))]
        Mode::Test => {
            println!("test: this kernel has no in-kernel tests (cargo xtask test builds them: feature ktest)");
            qemu::exit(ExitStatus::Failure)
        }
        Mode::Script(script) => {
            print_boot_time();
            shell::run(Some(script), options.shell_test)
        }
        Mode::Interactive => {
            print_boot_time();
            shell::run(None, options.shell_test)
        }
    }
}

fn print_boot_time() {
    let nanos = tsc::nanos_since_boot();
    labs::bench::record_boot_to_prompt(nanos);
    let micros = nanos / 1000;
    println!("boot: {}.{:03} ms from the first instruction to the prompt", micros / 1000, micros % 1000);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    use core::fmt::Write;
    // Without the console lock: the panicking code may hold it.
    let _ = writeln!(serial::UnlockedWriter, "\nkernel panic: {}", info);
    qemu::exit(ExitStatus::Failure)
}

/// Referenced by the precompiled `core`; never called, since the kernel is
/// built with `panic = "abort"`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by the unwinding paths of the precompiled `alloc`; never
/// reached, since a panic ends in the panic handler, which does not return.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    use core::fmt::Write;
    let _ = writeln!(serial::UnlockedWriter, "\nkernel: unwinding was attempted (the kernel cannot unwind)");
    qemu::exit(ExitStatus::Failure)
}
