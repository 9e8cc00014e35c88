//! The first instructions: from QEMU's PVH entry (32-bit protected mode,
//! paging off) to `kernel_main` in 64-bit long mode.
//!
//! The image is linked at [`KERNEL_OFFSET`] + 1 MiB and loaded at 1 MiB, so
//! until step 4 this code runs at physical addresses and names every symbol
//! as `symbol - KERNEL_OFFSET`.
//!
//! The steps, in order:
//! 1. zero `.bss` (it holds the boot page tables and the boot stack);
//! 2. map the first 4 GiB with 2 MiB pages (one PD per GiB) three times:
//!    one to one (paging is turned on, and the far jump lands, at physical
//!    addresses; application processors start there too), at
//!    [`PHYS_OFFSET`] (the direct map of physical memory) and the first
//!    2 GiB at [`KERNEL_OFFSET`] (the kernel image's link address), under a
//!    PML4 — and under a PML5 too when the CPU offers 5-level paging (LA57
//!    can only be chosen before long mode is entered, so it is chosen here,
//!    once, for the whole machine; `cargo xtask run` hides LA57 unless
//!    `--la57`);
//! 3. CR4.PAE (+ LA57), EFER.LME (+ NXE when the CPU has NX), CR0.PG + WP;
//! 4. load a 64-bit GDT, far-jump into 64-bit code, then jump to the
//!    kernel's own (high) address;
//! 5. enable SSE, switch to the boot stack and call `kernel_main(start_info_phys)`.
//!
//! These tables are temporary: the address-space layer builds the kernel's
//! real map ([`crate::hardening`]) and leaves these behind.

use crate::direct_map::{KERNEL_OFFSET, PHYS_OFFSET};

use core::arch::global_asm;

/// Size of the stack `kernel_main` runs on (the first CPU's first thread).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

// The PVH entry note: name "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY), whose
// descriptor is the 32-bit physical address of the entry point.
global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_start - {koff}
    .balign 4
    "#,
    koff = const KERNEL_OFFSET,
);

// Boot data: page tables and the stack live in .bss (zeroed by the entry code
// itself, so nothing depends on the loader zeroing it); the entry TSC lives in
// .data so that zeroing .bss does not erase it.
global_asm!(
    r#"
    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml5
boot_pml5:
    .skip 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack_size}
    .global boot_stack_top
boot_stack_top:

    .section .data.boot, "aw"
    .balign 8
    .global boot_entry_tsc
boot_entry_tsc:
    .quad 0

    .section .rodata.boot, "a"
    .balign 8
boot_gdt:
    .quad 0                      // null
    .quad 0x00af9a000000ffff     // 0x08: 64-bit code, present, ring 0
    .quad 0x00cf92000000ffff     // 0x10: data, present, ring 0
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt - {koff}
    "#,
    stack_size = const BOOT_STACK_SIZE,
    koff = const KERNEL_OFFSET,
);

global_asm!(
    r#"
    .section .text.boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    // Keep the start-info pointer (ebx) in ebp: cpuid clobbers ebx.
    mov ebp, ebx
    rdtsc
    mov dword ptr [boot_entry_tsc - {koff}], eax
    mov dword ptr [boot_entry_tsc - {koff} + 4], edx

    // 1. Zero .bss.
    mov edi, offset __bss_start - {koff}
    mov ecx, offset __bss_end - {koff}
    sub ecx, edi
    shr ecx, 2
    xor eax, eax
    rep stosd

    // 2. Map 0..4 GiB: 2048 PD entries of 2 MiB (present, writable, PS).
    mov edi, offset boot_pd - {koff}
    mov eax, 0x83
    mov ecx, 2048
.Lfill_pd:
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop .Lfill_pd

    // PDPT[0..4] -> the four PDs.
    mov edi, offset boot_pdpt - {koff}
    mov eax, offset boot_pd - {koff}
    or eax, 0x3
    mov ecx, 4
.Lfill_pdpt:
    mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    loop .Lfill_pdpt

    // The high PDPT's entries 510 and 511 (the top 2 GiB) -> the first two PDs.
    mov eax, offset boot_pd - {koff}
    or eax, 0x3
    mov dword ptr [boot_pdpt_high - {koff} + 510 * 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_high - {koff} + 511 * 8], eax

    // PML4[0] -> PDPT (one to one); PML4[dm] -> PDPT (the direct map);
    // PML4[511] -> the high PDPT (the kernel image).
    mov eax, offset boot_pdpt - {koff}
    or eax, 0x3
    mov dword ptr [boot_pml4 - {koff}], eax
    mov dword ptr [boot_pml4 - {koff} + {dm4} * 8], eax
    mov eax, offset boot_pdpt_high - {koff}
    or eax, 0x3
    mov dword ptr [boot_pml4 - {koff} + 511 * 8], eax
    // PML5[0] and PML5[511] -> PML4: with 5-level paging the direct map and
    // the image lie under the last PML5 entry, at the same PML4 indexes.
    mov eax, offset boot_pml4 - {koff}
    or eax, 0x3
    mov dword ptr [boot_pml5 - {koff}], eax
    mov dword ptr [boot_pml5 - {koff} + 511 * 8], eax

    // 3. CR4.PAE, plus CR4.LA57 when CPUID.(7,0):ECX[16] says 5-level paging exists.
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov edi, offset boot_pml4 - {koff}
    xor eax, eax
    cpuid
    cmp eax, 7
    jb .Lroot_chosen
    mov eax, 7
    xor ecx, ecx
    cpuid
    test ecx, 1 << 16
    jz .Lroot_chosen
    mov eax, cr4
    or eax, 1 << 12
    mov cr4, eax
    mov edi, offset boot_pml5 - {koff}
.Lroot_chosen:
    mov cr3, edi

    // EFER.LME, and EFER.NXE when CPUID.80000001H:EDX[20] reports NX.
    mov esi, 1 << 8
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 20
    jz .Lno_nx
    or esi, 1 << 11
.Lno_nx:
    mov ecx, 0xc0000080
    rdmsr
    or eax, esi
    wrmsr

    // CR0.PG (paging on: long mode becomes active) and CR0.WP (supervisor
    // writes honour read-only pages).
    mov eax, cr0
    or eax, 0x80010000
    mov cr0, eax

    // 4. 64-bit GDT and a far jump to reload CS. Encoded by hand: the
    // assembler rejects `push imm; retf` for targets above 64 KiB in .code32.
    lgdt [boot_gdt_pointer - {koff}]
    .byte 0xea
    .long long_mode_entry - {koff}
    .word 0x08

    .code64
long_mode_entry:
    // Still at the physical address: on to the kernel's own.
    movabs rax, offset high_entry
    jmp rax
high_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax

    // SSE on before any Rust code runs: the precompiled `core` uses SSE
    // registers (sse.rs explains; sse::init checks these bits again).
    mov rax, cr0
    and rax, ~(1 << 2)               // CR0.EM off
    or rax, 1 << 1                   // CR0.MP on
    mov cr0, rax
    mov rax, cr4
    or rax, (1 << 9) | (1 << 10)     // CR4.OSFXSR, CR4.OSXMMEXCPT
    mov cr4, rax

    // 5. The boot stack, and into Rust with the start-info address.
    mov rsp, offset boot_stack_top
    mov edi, ebp
    xor ebp, ebp
    call kernel_main
.Lhalt_forever:
    cli
    hlt
    jmp .Lhalt_forever
    "#,
    koff = const KERNEL_OFFSET,
    dm4 = const (PHYS_OFFSET >> 39) & 511,
);

extern "C" {
    static boot_entry_tsc: u64;
    static boot_pml4: u8;
    static boot_pml5: u8;
    static boot_stack_bottom: u8;
    static boot_stack_top: u8;
}

/// The time-stamp counter read by the very first instruction of the entry
/// code: the origin of the boot-time figure.
pub fn entry_tsc() -> u64 {
    // SAFETY: written once by the entry code before any Rust code runs, and
    // never again.
    unsafe { core::ptr::addr_of!(boot_entry_tsc).read_volatile() }
}

/// Physical address of the boot PML4 (the root when 4-level paging is in force).
pub fn boot_pml4_phys() -> u64 {
    crate::direct_map::image_phys(core::ptr::addr_of!(boot_pml4) as u64)
}

/// Physical address of the boot PML5 (the root when 5-level paging is in force).
pub fn boot_pml5_phys() -> u64 {
    crate::direct_map::image_phys(core::ptr::addr_of!(boot_pml5) as u64)
}

/// The boot stack's bounds `[bottom, top)`.
pub fn boot_stack() -> (u64, u64) {
    (core::ptr::addr_of!(boot_stack_bottom) as u64, core::ptr::addr_of!(boot_stack_top) as u64)
}
