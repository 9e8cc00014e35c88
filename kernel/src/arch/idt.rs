//! The interrupt descriptor table and the trap entry stubs.
//!
//! All 256 vectors have an entry: the 32 exceptions and 32..=255 for devices
//! and inter-processor interrupts. Each entry is an interrupt gate (interrupts
//! stay masked in the handler) and switches to an IST stack (see
//! [`super::gdt`] for why): #DF, NMI, #MC and #PF have stacks of their own,
//! everything else shares one.
//!
//! Each vector's stub pushes a zero where the CPU pushes no error code, then
//! the vector number, and jumps to `trap_common`, which saves the general
//! registers and the SSE registers into a [`TrapFrame`] on the IST stack,
//! calls [`super::trap::trap_dispatch`], and restores from the frame whose
//! address the dispatcher returns (the same frame, unless a scheduler chose to
//! resume another one). A trap from ring 3 swaps GS to the kernel's base
//! first (`swapgs`) and back on the way out, decided by the saved CS.
//!
//! A second table holds only the #DF gate: [`provoke_double_fault`] loads it
//! to raise a real double fault on purpose.

use super::frame::TrapFrame;
use super::gdt::{DescriptorTablePointer, IstStack, KERNEL_CODE_SELECTOR};
use super::sse::SseRegisters;
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};

/// Distance between two consecutive stubs (each is padded to it).
const STUB_STRIDE: u64 = 16;

// The stubs, in AT&T syntax so that `$vector` is an immediate. A stub is at
// most 12 bytes (push $0; push $vector; jmp), padded to STUB_STRIDE.
global_asm!(
    r#"
    .section .text.trap_stubs, "ax"
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    // The CPU pushed an error code.
    .else
    pushq $0
    .endif
    pushq $vector
    jmp trap_common
    .set vector, vector + 1
    .endr

    // Stack on entry (IST top is 16-byte aligned): vector, error code, RIP,
    // CS, RFLAGS, RSP, SS = 56 bytes. 15 registers make 176 (16-aligned),
    // then the SSE registers (a multiple of 16 bytes) keep RSP 16-aligned
    // for `movaps` and for the call. Only xmm0-15 are saved, not the whole
    // x87/SSE state, and MXCSR's slot is set to "keep": see arch::sse for why.
    .balign 16
trap_common:
    // From ring 3 (the saved CS's RPL): GS holds the user's base; swap in
    // the kernel's (per-CPU data) before anything reads gs:[...].
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq ${sse_size}, %rsp
    movaps %xmm0, 0x00(%rsp)
    movaps %xmm1, 0x10(%rsp)
    movaps %xmm2, 0x20(%rsp)
    movaps %xmm3, 0x30(%rsp)
    movaps %xmm4, 0x40(%rsp)
    movaps %xmm5, 0x50(%rsp)
    movaps %xmm6, 0x60(%rsp)
    movaps %xmm7, 0x70(%rsp)
    movaps %xmm8, 0x80(%rsp)
    movaps %xmm9, 0x90(%rsp)
    movaps %xmm10, 0xa0(%rsp)
    movaps %xmm11, 0xb0(%rsp)
    movaps %xmm12, 0xc0(%rsp)
    movaps %xmm13, 0xd0(%rsp)
    movaps %xmm14, 0xe0(%rsp)
    movaps %xmm15, 0xf0(%rsp)
    movl ${keep_mxcsr}, {mxcsr}(%rsp)
    cld
    movq %rsp, %rdi
    call trap_dispatch
    movq %rax, %rsp
    // Preemption, when this CPU's scheduler asked for it: may move the
    // frame onto the interrupted thread's stack and switch threads (see
    // arch::switch); returns with rsp at the frame. The flag is tested here
    // first: under TCG a call and its return cost two jump look-ups.
    cmpb $0, %gs:{need_resched}
    je 3f
    call thread_preempt_on_interrupt_exit
3:

    // Restores everything from the TrapFrame at rsp and returns from it with
    // iretq: the end of every trap, and the way into ring 3 (enter_user) and
    // back from a system call that cannot use sysretq.
    .global trap_restore
trap_restore:
    // MXCSR only when the frame asks for a value (arch::sse::KEEP_MXCSR).
    cmpl ${keep_mxcsr}, {mxcsr}(%rsp)
    je 4f
    ldmxcsr {mxcsr}(%rsp)
4:
    movaps 0x00(%rsp), %xmm0
    movaps 0x10(%rsp), %xmm1
    movaps 0x20(%rsp), %xmm2
    movaps 0x30(%rsp), %xmm3
    movaps 0x40(%rsp), %xmm4
    movaps 0x50(%rsp), %xmm5
    movaps 0x60(%rsp), %xmm6
    movaps 0x70(%rsp), %xmm7
    movaps 0x80(%rsp), %xmm8
    movaps 0x90(%rsp), %xmm9
    movaps 0xa0(%rsp), %xmm10
    movaps 0xb0(%rsp), %xmm11
    movaps 0xc0(%rsp), %xmm12
    movaps 0xd0(%rsp), %xmm13
    movaps 0xe0(%rsp), %xmm14
    movaps 0xf0(%rsp), %xmm15
    addq ${sse_size}, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    // Back to ring 3: the user's GS base again.
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:
    iretq
    "#,
    sse_size = const size_of::<SseRegisters>(),
    keep_mxcsr = const super::sse::KEEP_MXCSR,
    mxcsr = const offset_of!(SseRegisters, mxcsr),
    need_resched = const crate::percpu::NEED_RESCHED_OFFSET,
    options(att_syntax)
);

const _: () =
    assert!(size_of::<TrapFrame>() == size_of::<SseRegisters>() + 15 * 8 + 7 * 8, "TrapFrame must match trap_common");
const _: () = assert!(size_of::<SseRegisters>().is_multiple_of(16), "the SSE area must keep RSP 16-byte aligned");
const _: () = assert!(offset_of!(SseRegisters, xmm) == 0, "trap_common stores xmm0 at the frame's start");

extern "C" {
    static trap_stubs: u8;
}

/// One IDT entry (a 64-bit interrupt gate).
#[repr(C)]
#[derive(Clone, Copy)]
struct GateDescriptor {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

impl GateDescriptor {
    const MISSING: GateDescriptor = GateDescriptor {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attributes: 0,
        offset_middle: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present, ring-0 interrupt gate to `handler` on IST stack `stack`.
    fn interrupt_gate(handler: u64, stack: IstStack) -> GateDescriptor {
        const PRESENT_RING0_INTERRUPT_GATE: u8 = 0x8e;
        GateDescriptor {
            offset_low: handler as u16,
            selector: KERNEL_CODE_SELECTOR,
            ist: stack as u8,
            type_attributes: PRESENT_RING0_INTERRUPT_GATE,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

/// The table itself, shared by all CPUs.
#[repr(C, align(16))]
struct InterruptDescriptorTable(UnsafeCell<[GateDescriptor; 256]>);

// SAFETY: written once by `init` on the first CPU before any CPU loads it;
// only read (by the CPUs) afterwards.
unsafe impl Sync for InterruptDescriptorTable {}

static IDT: InterruptDescriptorTable = InterruptDescriptorTable(UnsafeCell::new([GateDescriptor::MISSING; 256]));

/// A table in which only the #DF gate is present, for
/// [`provoke_double_fault`]: any exception finds its gate missing, which
/// raises #NP, whose gate is missing too, which makes a double fault.
static DOUBLE_FAULT_ONLY_IDT: InterruptDescriptorTable =
    InterruptDescriptorTable(UnsafeCell::new([GateDescriptor::MISSING; 256]));

/// Which IST stack a vector's handler runs on.
pub fn ist_stack_for(vector: u8) -> IstStack {
    match vector {
        2 => IstStack::Nmi,
        8 => IstStack::DoubleFault,
        14 => IstStack::PageFault,
        18 => IstStack::MachineCheck,
        _ => IstStack::Shared,
    }
}

/// The entry stub of `vector`.
fn stub_address(vector: u8) -> u64 {
    core::ptr::addr_of!(trap_stubs) as u64 + vector as u64 * STUB_STRIDE
}

/// The breakpoint vector (`int3`).
const BREAKPOINT: u8 = 3;
/// A gate's descriptor privilege level 3: `int N` from ring 3 may use it.
const DPL_USER: u8 = 3 << 5;

/// Fills the IDT. Call once, on the first CPU, before [`load`].
pub fn init() {
    let table = IDT.0.get();
    for vector in 0..=255u8 {
        let stub = stub_address(vector);
        // SAFETY: every stub begins with `push imm` (0x6a or 0x68); checking the
        // first byte catches a stub that outgrew its stride.
        let first_byte = unsafe { (stub as *const u8).read() };
        assert!(first_byte == 0x6a || first_byte == 0x68, "trap stub {vector} is misplaced");
        let mut gate = GateDescriptor::interrupt_gate(stub, ist_stack_for(vector));
        if vector == BREAKPOINT {
            // `int3` in a user program must reach the kernel as #BP (SIGTRAP),
            // not as the #GP a ring-0-only gate raises.
            gate.type_attributes |= DPL_USER;
        }
        // SAFETY: no CPU has loaded the table yet (see the `Sync` impl).
        unsafe { (*table)[vector as usize] = gate };
    }
    const DOUBLE_FAULT: usize = 8;
    // SAFETY: as above, no CPU has loaded either table yet; the #DF gate is
    // copied, so both tables enter the same stub on the same IST stack.
    unsafe { (*DOUBLE_FAULT_ONLY_IDT.0.get())[DOUBLE_FAULT] = (*table)[DOUBLE_FAULT] };
}

/// Loads the IDT on the calling CPU (after its GDT and TSS: the gates name
/// IST stacks).
pub fn load() {
    load_table(&IDT);
}

/// Loads `table` (a static, so it outlives its use) on the calling CPU.
fn load_table(table: &'static InterruptDescriptorTable) {
    let pointer =
        DescriptorTablePointer { limit: (size_of::<[GateDescriptor; 256]>() - 1) as u16, base: table.0.get() as u64 };
    // SAFETY: the table is a static that lives forever and was filled by `init`.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}

/// Raises a real double fault on the calling CPU, to show that #DF has a
/// stack of its own and always reports: with interrupts off, loads a table
/// in which only the #DF gate is present and executes `ud2`. #UD finds no
/// gate, so the CPU raises #NP; #NP finds no gate either, and a second
/// contributory exception while delivering the first is a double fault,
/// which arrives through the kernel's own #DF gate on the double-fault IST
/// stack. The trap dispatcher then prints the report and stops the kernel.
pub fn provoke_double_fault() -> ! {
    super::cpu::disable_interrupts();
    load_table(&DOUBLE_FAULT_ONLY_IDT);
    // SAFETY: `ud2` only raises #UD, which ends in the double fault above;
    // the double-fault path never returns here.
    unsafe { asm!("ud2", options(nomem, nostack, noreturn)) }
}
