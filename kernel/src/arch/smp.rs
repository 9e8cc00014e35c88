//! Starting the other CPUs: the ACPI MADT says which exist, and each is
//! woken with the INIT-SIPI-SIPI sequence into a real-mode trampoline.
//!
//! The path of an application processor (AP), in order:
//! 1. [`find_processors`] reads the MADT (reached from the RSDP the loader
//!    gave) and lists the local APIC ids of the enabled processors.
//! 2. [`start_application_processors`] copies the trampoline to
//!    [`TRAMPOLINE_BASE`] (below 1 MiB: a start-up IPI can only name a
//!    page there), fills in its data (CR3, CR4, EFER, stack, entry point,
//!    kernel CPU id), and sends INIT, then a start-up IPI (a second one if the
//!    CPU did not answer).
//! 3. The AP starts in real mode at the trampoline, loads the trampoline's
//!    GDT, switches straight to long mode (PAE, EFER.LME, then CR0.PE and
//!    CR0.PG in one write) on the boot tables (which map the low 4 GiB one
//!    to one as well as the kernel's upper half), and calls [`ap_entry`],
//!    at its high address, on the stack the boot CPU allocated for it.
//! 4. [`ap_entry`] gives the CPU its per-CPU structure (GDT, TSS, IST
//!    stacks), the IDT, the default address space, its local APIC and timer,
//!    and makes the running code its idle thread; then it says it is online
//!    and halts until there is work.
//!
//! APs start one at a time: the trampoline's data area is shared.

use super::cpu::{self, rdtsc};
use super::{apic, boot, idt, sse, tsc};
use crate::percpu::{self, MAX_CPUS};
use crate::thread::stack::{Stack, IDLE_STACK_SIZE};
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where the trampoline is copied: a page below 1 MiB that the frame
/// allocator never hands out and that the loader's structures do not use
/// once they have been copied at boot.
pub const TRAMPOLINE_BASE: u64 = 0x8000;

// The trampoline. It is assembled inside the kernel image and runs from its
// copy at TRAMPOLINE_BASE, so every address in it is written as
// TRAMPOLINE_BASE + (label - ap_trampoline_start). The data fields at the end
// are filled in by `start_one` in the copy.
global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .balign 16
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [ap_gdt_pointer_at]
    mov eax, dword ptr [ap_cr4_at]
    mov cr4, eax
    mov eax, dword ptr [ap_cr3_at]
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, dword ptr [ap_efer_at]
    wrmsr
    // CR0: PE and PG (long mode becomes active), WP, MP; EM off for SSE.
    mov eax, cr0
    or eax, 0x80010003
    and eax, 0xfffffffb
    mov cr0, eax
    // A far jump with a 32-bit offset into the 64-bit code segment.
    .byte 0x66, 0xea
    .long {base} + (ap_long_mode - ap_trampoline_start)
    .word 0x08

    .code64
ap_long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    // SSE on (CR4.OSFXSR, CR4.OSXMMEXCPT) before any Rust code runs.
    mov rax, cr4
    or rax, (1 << 9) | (1 << 10)
    mov cr4, rax
    mov rsp, qword ptr [ap_stack_top_at]
    mov rdi, qword ptr [ap_cpu_id_at]
    mov rax, qword ptr [ap_entry_point_at]
    xor ebp, ebp
    call rax
    ud2

    .balign 8
ap_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
ap_gdt_pointer:
    .word 23
    .long {base} + (ap_gdt - ap_trampoline_start)
    .balign 8
    .global ap_trampoline_data
ap_trampoline_data:
ap_cr3:
    .quad 0
ap_cr4:
    .quad 0
ap_efer:
    .quad 0
ap_stack_top:
    .quad 0
ap_entry_point:
    .quad 0
ap_cpu_id:
    .quad 0
    .global ap_trampoline_end
ap_trampoline_end:
    .code64
    // Where each field is in the copy at {base}.
    .set ap_gdt_pointer_at, {base} + (ap_gdt_pointer - ap_trampoline_start)
    .set ap_cr4_at, {base} + (ap_cr4 - ap_trampoline_start)
    .set ap_cr3_at, {base} + (ap_cr3 - ap_trampoline_start)
    .set ap_efer_at, {base} + (ap_efer - ap_trampoline_start)
    .set ap_stack_top_at, {base} + (ap_stack_top - ap_trampoline_start)
    .set ap_cpu_id_at, {base} + (ap_cpu_id - ap_trampoline_start)
    .set ap_entry_point_at, {base} + (ap_entry_point - ap_trampoline_start)
    "#,
    base = const TRAMPOLINE_BASE,
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_data: u8;
    static ap_trampoline_end: u8;
}

/// The trampoline's data area, in the order the assembly lays it out.
#[repr(C)]
struct TrampolineData {
    cr3: u64,
    cr4: u64,
    efer: u64,
    stack_top: u64,
    entry_point: u64,
    cpu_id: u64,
}

/// A processor the MADT lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Processor {
    /// Its local APIC id.
    pub apic_id: u32,
    /// Enabled, or at least "online capable" (it may be started).
    pub usable: bool,
}

/// Why the MADT could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// The loader gave no RSDP.
    NoRsdp,
    /// The RSDP's signature or checksum is wrong.
    BadRsdp,
    /// Neither the XSDT nor the RSDT lists an "APIC" table.
    NoMadt,
    /// The MADT's checksum is wrong.
    BadMadt,
}

/// Reads `T` at physical address `addr` (through the direct map, maybe unaligned).
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be mapped memory.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the memory is mapped.
    unsafe { (crate::direct_map::phys_to_virt(addr) as *const T).read_unaligned() }
}

/// True when the bytes `[addr, addr + len)` add up to 0 (ACPI checksums).
///
/// # Safety
/// The range must be mapped memory.
unsafe fn checksum_ok(addr: u64, len: usize) -> bool {
    // SAFETY: the caller guarantees the range is mapped.
    let bytes = unsafe { core::slice::from_raw_parts(crate::direct_map::phys_to_virt(addr) as *const u8, len) };
    bytes.iter().fold(0u8, |sum, byte| sum.wrapping_add(*byte)) == 0
}

/// The processors the ACPI MADT lists, in its order (the boot CPU among them).
pub fn find_processors() -> Result<Vec<Processor>, MadtError> {
    const SDT_HEADER_LEN: u64 = 36;
    let rsdp = crate::boot_info::get().rsdp().ok_or(MadtError::NoRsdp)?;
    // SAFETY: the RSDP lies in low memory or ACPI tables; every later table
    // address comes from a table with a valid checksum and lies below 4 GiB
    // or in RAM, both in the direct map.
    unsafe {
        if read_phys::<[u8; 8]>(rsdp) != *b"RSD PTR " || !checksum_ok(rsdp, 20) {
            return Err(MadtError::BadRsdp);
        }
        let revision: u8 = read_phys(rsdp + 15);
        let (table_list, entry_size) = if revision >= 2 && read_phys::<u64>(rsdp + 24) != 0 {
            (read_phys::<u64>(rsdp + 24), 8)
        } else {
            (read_phys::<u32>(rsdp + 16) as u64, 4)
        };
        let list_len: u32 = read_phys(table_list + 4);
        let entries = (list_len as u64).saturating_sub(SDT_HEADER_LEN) / entry_size;
        let madt = (0..entries)
            .map(|index| {
                let at = table_list + SDT_HEADER_LEN + index * entry_size;
                if entry_size == 8 {
                    read_phys::<u64>(at)
                } else {
                    read_phys::<u32>(at) as u64
                }
            })
            .find(|&table| read_phys::<[u8; 4]>(table) == *b"APIC")
            .ok_or(MadtError::NoMadt)?;
        let madt_len = read_phys::<u32>(madt + 4) as u64;
        if !checksum_ok(madt, madt_len as usize) {
            return Err(MadtError::BadMadt);
        }
        // After the header: the local APIC address (4 bytes) and flags (4 bytes),
        // then variable-length entries (type, length, ...).
        let mut processors = Vec::new();
        let mut at = madt + SDT_HEADER_LEN + 8;
        while at + 2 <= madt + madt_len {
            let kind: u8 = read_phys(at);
            let len: u8 = read_phys(at + 1);
            if len < 2 {
                break;
            }
            const ENABLED: u32 = 1 << 0;
            const ONLINE_CAPABLE: u32 = 1 << 1;
            match kind {
                // Processor local APIC: processor id, APIC id, flags.
                0 => {
                    let apic_id: u8 = read_phys(at + 3);
                    let flags: u32 = read_phys(at + 4);
                    processors
                        .push(Processor { apic_id: apic_id as u32, usable: flags & (ENABLED | ONLINE_CAPABLE) != 0 });
                }
                // Processor local x2APIC: reserved, x2APIC id, flags, uid.
                9 => {
                    let apic_id: u32 = read_phys(at + 4);
                    let flags: u32 = read_phys(at + 8);
                    processors.push(Processor { apic_id, usable: flags & (ENABLED | ONLINE_CAPABLE) != 0 });
                }
                _ => {}
            }
            at += len as u64;
        }
        Ok(processors)
    }
}

/// Set by an AP at the end of [`ap_entry`]'s set-up: the boot CPU may start the next.
static AP_ONLINE: AtomicBool = AtomicBool::new(false);
/// The lowest address of the stack of the AP being started (its canary goes there).
static AP_STACK_BOTTOM: AtomicU64 = AtomicU64::new(0);
/// The timer period the APs use.
static AP_TICK_MS: AtomicU64 = AtomicU64::new(apic::DEFAULT_TICK_MS);

/// Busy-waits `micros` microseconds on the time-stamp counter.
fn delay_us(micros: u64) {
    let ticks = micros * tsc::ticks_per_ms() / 1000;
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// Waits up to `micros` microseconds for the AP being started to come online.
fn wait_online(micros: u64) -> bool {
    let deadline = rdtsc() + micros * tsc::ticks_per_ms() / 1000;
    while rdtsc() < deadline {
        if AP_ONLINE.load(Ordering::Acquire) {
            return true;
        }
        core::hint::spin_loop();
    }
    AP_ONLINE.load(Ordering::Acquire)
}

/// Starts every usable processor the MADT lists besides the boot CPU, one
/// after the other, each with timer period `tick_ms`. Returns how many CPUs
/// run afterwards (the boot CPU included). Call on the boot CPU once threads
/// are set up there.
pub fn start_application_processors(tick_ms: u64) -> usize {
    let processors = match find_processors() {
        Ok(processors) => processors,
        Err(error) => {
            log::warn!("smp: cannot read the MADT ({error:?}); running on the boot CPU only");
            return 1;
        }
    };
    AP_TICK_MS.store(tick_ms, Ordering::Relaxed);
    install_trampoline();
    let my_apic_id = apic::id();
    let mut next_id = 1u32;
    for processor in processors.iter().filter(|p| p.usable && p.apic_id != my_apic_id) {
        if next_id as usize >= MAX_CPUS {
            log::warn!("smp: more than {MAX_CPUS} CPUs; APIC id {} and later left halted", processor.apic_id);
            break;
        }
        if start_one(processor.apic_id, next_id) {
            next_id += 1;
        } else {
            log::error!("smp: the CPU with APIC id {} did not start", processor.apic_id);
        }
    }
    log::info!("smp: {} of {} CPUs the MADT lists are running", next_id, processors.len());
    // Their interrupt stacks get guard pages too, now that they answer
    // shootdowns (unmapping a page of the default map sends them one).
    for cpu in crate::percpu::all_cpus().filter(|cpu| cpu.id != 0) {
        crate::percpu::guard_ist_stacks(cpu);
    }
    next_id as usize
}

/// Copies the trampoline to [`TRAMPOLINE_BASE`].
fn install_trampoline() {
    let start = core::ptr::addr_of!(ap_trampoline_start) as u64;
    let end = core::ptr::addr_of!(ap_trampoline_end) as u64;
    let len = (end - start) as usize;
    assert!(len <= 4096, "the AP trampoline must fit in one page");
    for (from, to) in crate::boot_info::get().loader_ranges() {
        assert!(
            to <= TRAMPOLINE_BASE || from >= TRAMPOLINE_BASE + 4096,
            "the loader's structures overlap the AP trampoline page"
        );
    }
    // SAFETY: the page at TRAMPOLINE_BASE is low memory that the frame
    // allocator never hands out and that nothing else uses after boot (the
    // loader's structures were copied, and checked above not to be there);
    // it is in the direct map. The source is the trampoline in the image.
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, crate::direct_map::phys_to_virt(TRAMPOLINE_BASE), len)
    };
}

/// Starts the CPU with local APIC id `apic_id` as kernel CPU `cpu_id`;
/// true once it is online.
fn start_one(apic_id: u32, cpu_id: u32) -> bool {
    let stack = Stack::new(IDLE_STACK_SIZE).expect("no memory for an AP's stack");
    let data_offset = core::ptr::addr_of!(ap_trampoline_data) as u64 - core::ptr::addr_of!(ap_trampoline_start) as u64;
    let data = crate::direct_map::phys_to_virt(TRAMPOLINE_BASE + data_offset) as *mut TrampolineData;
    let la57 = cpu::read_cr4() & cpu::CR4_LA57;
    let root = if la57 != 0 { boot::boot_pml5_phys() } else { boot::boot_pml4_phys() };
    const EFER_LME: u64 = 1 << 8;
    let efer = EFER_LME | if cpu::nx_enabled() { cpu::EFER_NXE } else { 0 };
    AP_ONLINE.store(false, Ordering::Release);
    AP_STACK_BOTTOM.store(stack.bottom(), Ordering::Release);
    // SAFETY: `data` is the data area of the trampoline copy (see
    // `install_trampoline`); no AP runs the trampoline now (they start one
    // at a time, and the previous one is online). The boot page tables stay
    // in the image for good and map the first 4 GiB one to one (where the
    // trampoline turns paging on) and the kernel's upper half (the stack,
    // in the direct map, and the entry point, in the image).
    unsafe {
        data.write_volatile(TrampolineData {
            cr3: root,
            cr4: cpu::CR4_PAE | la57,
            efer,
            stack_top: stack.top(),
            entry_point: ap_entry as extern "C" fn(u64) -> ! as usize as u64,
            cpu_id: cpu_id as u64,
        })
    };
    // The AP's stack becomes its idle thread's stack, for good.
    core::mem::forget(stack);

    // Intel SDM vol. 3 §8.4.4.1: INIT, 10 ms, SIPI, 200 µs, SIPI.
    apic::send_init(apic_id);
    delay_us(10_000);
    let page = (TRAMPOLINE_BASE >> 12) as u8;
    apic::send_startup(apic_id, page);
    if wait_online(1_000) {
        return true;
    }
    apic::send_startup(apic_id, page);
    wait_online(200_000)
}

/// Where an AP enters Rust, on its own stack, interrupts off, on the boot
/// tables.
extern "C" fn ap_entry(cpu_id: u64) -> ! {
    percpu::init_this_cpu(cpu_id as u32);
    idt::load();
    sse::init();
    if cpu::features().pcid {
        // SAFETY: CR3's PCID field is 0 (the boot tables are loaded), as
        // the SDM requires when setting CR4.PCIDE; the CPU supports PCIDs.
        unsafe { cpu::write_cr4(cpu::read_cr4() | cpu::CR4_PCIDE) };
    }
    crate::hardening::enable_cpu_protections();
    super::syscall::init_this_cpu();
    crate::address_space::base().lock().switch_to();
    let bottom = AP_STACK_BOTTOM.load(Ordering::Acquire);
    crate::thread::scheduler::init_application_processor(AP_TICK_MS.load(Ordering::Relaxed), bottom);
    AP_ONLINE.store(true, Ordering::Release);
    crate::thread::scheduler::run_idle()
}
