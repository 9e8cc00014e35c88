//! The context switch, and the preemption tail of the interrupt exit path.
//!
//! A thread gives up the CPU by calling [`switch_context`]: its callee-saved
//! registers go onto its own stack, its stack pointer and its x87/SSE state
//! into its [`SwitchContext`], and the other thread's are loaded. Everything
//! else (caller-saved registers) the compiler has already saved around the
//! call.
//!
//! Preemption happens at the end of an interrupt, in
//! `thread_preempt_on_interrupt_exit`, which the trap entry code calls, when
//! this CPU's `need_resched` is set, just before restoring the interrupted
//! registers. The interrupt runs on a per-CPU IST stack that the next interrupt
//! reuses, so a thread cannot be switched away from there. Instead, when the
//! interrupted code had interrupts enabled, the routine copies the whole trap
//! frame (registers, SSE state, the CPU's iret frame) onto the interrupted
//! thread's own stack, below its red zone, moves there, and makes an ordinary
//! context switch. When the thread is chosen again, the switch returns, the
//! routine returns to the trap entry code with the stack pointer at the moved
//! frame, and `iretq` resumes the thread from its own stack.

use super::frame::TrapFrame;
use super::sse::FxSaveArea;
use crate::percpu::USER_ENTRY_STACK_OFFSET;
use core::arch::global_asm;
use core::mem::{offset_of, size_of};

/// What a switched-out thread needs to be resumed: its x87/SSE state and
/// its stack pointer (the callee-saved registers are on that stack).
#[repr(C, align(16))]
pub struct SwitchContext {
    /// The x87/SSE state (`fxsave64` image); first, for its alignment.
    pub fpu: FxSaveArea,
    /// The stack pointer, pointing at the saved callee-saved registers.
    pub saved_rsp: u64,
}

/// The callee-saved registers pushed by `thread_switch_context`.
const SAVED_REGISTERS: usize = 6;

impl SwitchContext {
    /// A context for a thread that has not run yet: the first switch to it
    /// "returns" into `thread_start_trampoline` with the stack `stack_top`
    /// (16-byte aligned), which calls `entry` (never returning). The SSE
    /// state is the power-on default: all exceptions masked, round to nearest.
    ///
    /// # Safety
    /// `stack_top` must be the 16-byte-aligned top of a writable stack that
    /// stays allocated for as long as the thread may run.
    pub unsafe fn new_thread(stack_top: u64, entry: extern "C" fn() -> !) -> SwitchContext {
        const DEFAULT_X87_CONTROL_WORD: u16 = 0x037f;
        const DEFAULT_MXCSR: u32 = 0x1f80;
        assert_eq!(stack_top % 16, 0, "stack top must be 16-byte aligned");
        let mut fpu = FxSaveArea::new();
        fpu.0[0..2].copy_from_slice(&DEFAULT_X87_CONTROL_WORD.to_le_bytes());
        fpu.0[24..28].copy_from_slice(&DEFAULT_MXCSR.to_le_bytes());
        // From the top: the trampoline's address (popped by `ret`, leaving
        // the stack 16-byte aligned as at a function entry minus the return
        // address), the entry function for the trampoline (in r12), then
        // zeroes for the other callee-saved registers (rbp = 0 ends
        // backtraces).
        let return_slot = stack_top - 8;
        let saved_rsp = return_slot - (SAVED_REGISTERS * 8) as u64;
        // Pop order in `thread_switch_context`: r15, r14, r13, r12, rbx, rbp.
        let registers: [u64; SAVED_REGISTERS] = [0, 0, 0, entry as usize as u64, 0, 0];
        // SAFETY: the caller guarantees the stack is writable; these seven
        // words lie just below its top.
        unsafe {
            (return_slot as *mut u64).write(thread_start_trampoline as unsafe extern "C" fn() -> ! as usize as u64);
            for (index, value) in registers.iter().enumerate() {
                ((saved_rsp + index as u64 * 8) as *mut u64).write(*value);
            }
        }
        SwitchContext { fpu, saved_rsp }
    }

    /// A context to be filled by the first switch away from a thread that is
    /// already running (the boot thread).
    pub const fn empty() -> SwitchContext {
        SwitchContext { fpu: FxSaveArea::new(), saved_rsp: 0 }
    }
}

extern "C" {
    fn thread_switch_context(from: *mut SwitchContext, to: *const SwitchContext);
    fn thread_start_trampoline() -> !;
}

/// Saves the running thread's state into `from` and resumes the thread whose
/// state is in `to`. Returns when some later switch resumes `from`.
///
/// # Safety
/// Interrupts must be off. `from` must be the running thread's context and
/// `to` a context saved by an earlier switch (or made by
/// [`SwitchContext::new_thread`]) whose stack is still allocated; neither may
/// be touched by anyone else until the switch is complete.
pub unsafe fn switch_context(from: *mut SwitchContext, to: *const SwitchContext) {
    // SAFETY: the caller guarantees both contexts are valid and private.
    unsafe { thread_switch_context(from, to) }
}

global_asm!(
    r#"
    .section .text.thread_switch, "ax"

    // thread_switch_context(from: rdi, to: rsi)
    .global thread_switch_context
    .balign 16
thread_switch_context:
    fxsave64 [rdi + {fpu}]
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi + {saved_rsp}], rsp
    mov rsp, [rsi + {saved_rsp}]
    fxrstor64 [rsi + {fpu}]
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    // The first instruction a new thread runs: calls the entry function
    // `SwitchContext::new_thread` left in r12, with a 16-byte aligned stack.
    .global thread_start_trampoline
    .balign 16
thread_start_trampoline:
    xor ebp, ebp
    call r12
    ud2

    // Called by the trap entry code, once it has seen this CPU's reschedule
    // flag set, with rsp pointing at the trap frame (below it, this call's
    // return address). Interrupts are off. May clobber every register: the
    // caller restores them all from the frame.
    .global thread_preempt_on_interrupt_exit
    .balign 16
thread_preempt_on_interrupt_exit:
    // Only preempt code that ran with interrupts enabled (RFLAGS.IF in the
    // iret frame): code with interrupts off is in a critical section.
    test qword ptr [rsp + 8 + {rflags}], 0x200
    jz 2f
    // The destination: below the interrupted stack pointer and its 128-byte
    // red zone, with the same alignment modulo 16 as the frame has now (the
    // SSE area inside it must stay 16-byte aligned for `movaps`). A thread
    // interrupted in ring 3 has its user stack there: its frame goes to its
    // kernel stack instead, where entries from ring 3 start.
    mov rax, [rsp + 8 + {rsp_in_frame}]
    test byte ptr [rsp + 8 + {cs_in_frame}], 3
    jz 3f
    mov rax, gs:[{user_entry_stack}]
3:
    sub rax, 128 + {copy_size} + 16
    and rax, -16
    mov rcx, rsp
    and rcx, 15
    add rax, rcx
    // Copy the return address and the frame there, and move onto it: the
    // IST stack is free from here on.
    mov rsi, rsp
    mov rdi, rax
    mov rcx, {copy_size}
    cld
    rep movsb
    mov rsp, rax
    // Call the scheduler with an ABI-aligned stack; rbp survives the call.
    mov rbp, rsp
    and rsp, -16
    call thread_preempt_current
    mov rsp, rbp
2:
    ret
    "#,
    fpu = const offset_of!(SwitchContext, fpu),
    saved_rsp = const offset_of!(SwitchContext, saved_rsp),
    rflags = const offset_of!(TrapFrame, rflags),
    rsp_in_frame = const offset_of!(TrapFrame, rsp),
    cs_in_frame = const offset_of!(TrapFrame, cs),
    user_entry_stack = const USER_ENTRY_STACK_OFFSET,
    copy_size = const 8 + size_of::<TrapFrame>(),
);
