//! The way into ring 3 and back: the `syscall` entry, the return by
//! `sysretq` or `iretq`, and the first entry of a user program.
//!
//! `syscall` (enabled by `EFER.SCE`) jumps to [`LSTAR`](MSR_LSTAR) =
//! `syscall_entry` in ring 0 with CS and SS from `STAR[47:32]`, the user's
//! RIP in RCX and RFLAGS in R11, and RFLAGS masked by `FMASK` (IF, TF, DF, AC
//! and NT cleared). It does not switch stacks. The entry swaps GS to the
//! kernel's base (`swapgs`), keeps the user RSP in per-CPU scratch, moves to
//! the running thread's kernel stack (`PerCpu::user_entry_stack`) and builds
//! there the same [`TrapFrame`] a trap from ring 3 builds (vector
//! [`SYSCALL_VECTOR`]), so signals, `exit` and the fault report see one
//! shape. Then [`syscall_dispatch`] runs the installed [`SyscallHandler`]
//! with interrupts on.
//!
//! The return takes `sysretq` only when the frame allows it exactly: RCX
//! equal to RIP and R11 equal to RFLAGS (what `sysretq` restores from them),
//! RIP canonical and below the top of user space, RF and TF clear, the user
//! CS and SS. A RIP past the canonical range would make `sysretq` fault in
//! ring 0 on the user's stack on Intel CPUs (CVE-2012-0217). Any other frame,
//! for example one a signal return restored, leaves by `iretq` through the
//! trap exit (`trap_restore`), which restores every register.

use super::cpu::{self, read_msr, write_msr, MSR_EFER};
use super::frame::TrapFrame;
use super::gdt::{KERNEL_CODE_SELECTOR, SYSRET_BASE_SELECTOR, USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use super::sse::SseRegisters;
use crate::percpu::{USER_ENTRY_STACK_OFFSET, USER_RSP_SCRATCH_OFFSET};
use crate::sync::SetOnce;
use core::arch::global_asm;
use core::mem::{offset_of, size_of};

/// `EFER.SCE`: `syscall` and `sysret` enabled.
const EFER_SCE: u64 = 1 << 0;
/// The segment selectors `syscall` and `sysretq` load.
const MSR_STAR: u32 = 0xc000_0081;
/// The 64-bit `syscall` entry point.
const MSR_LSTAR: u32 = 0xc000_0082;
/// The RFLAGS bits `syscall` clears.
const MSR_FMASK: u32 = 0xc000_0084;
/// The FS base register (user thread-local storage).
pub const MSR_FS_BASE: u32 = 0xc000_0100;

/// RFLAGS.TF (single step).
const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.IF (interrupts enabled).
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.DF (string direction).
const RFLAGS_DF: u64 = 1 << 10;
/// RFLAGS.NT (nested task).
const RFLAGS_NT: u64 = 1 << 14;
/// RFLAGS.RF (resume: suppresses one instruction breakpoint).
const RFLAGS_RF: u64 = 1 << 16;
/// RFLAGS.AC (alignment check; with SMAP: user access allowed).
const RFLAGS_AC: u64 = 1 << 18;
/// RFLAGS bit 1, which always reads 1.
const RFLAGS_FIXED: u64 = 1 << 1;

/// The vector a system call's frame carries: above every hardware vector,
/// so that nothing takes the frame for an interrupt's.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// The power-on MXCSR: every SSE exception masked, round to nearest.
const DEFAULT_MXCSR: u32 = 0x1f80;

/// What the kernel above the CPU does with a system call. The user-mode
/// layer installs one at boot ([`install_syscall_handler`]); without one a
/// system call returns `-ENOSYS`.
pub trait SyscallHandler: Sync {
    /// Carries out the system call `frame` holds (number in RAX, arguments in
    /// RDI, RSI, RDX, R10, R8, R9) and puts its result in `frame.rax`; may
    /// change any part of the frame (a signal's delivery or return). Runs on
    /// the thread's kernel stack with interrupts on; may block.
    fn syscall(&self, frame: &mut TrapFrame);
}

static SYSCALL_HANDLER: SetOnce<&'static dyn SyscallHandler> = SetOnce::new();

/// Installs the system-call handler; refused (false) when one is installed.
pub fn install_syscall_handler(handler: &'static dyn SyscallHandler) -> bool {
    SYSCALL_HANDLER.set(handler)
}

/// Turns `syscall` on for this CPU: `EFER.SCE`, the selectors, the entry
/// point and the flag mask. Call on every CPU, after its GDT is loaded.
pub fn init_this_cpu() {
    let star = (SYSRET_BASE_SELECTOR as u64) << 48 | (KERNEL_CODE_SELECTOR as u64) << 32;
    let mask = RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC | RFLAGS_NT;
    // SAFETY: the MSRs exist on every x86-64 CPU; the selectors name the
    // GDT's kernel and user segments in the order SYSRET needs (gdt.rs); the
    // entry point is the stub below, which switches to a kernel stack before
    // touching memory.
    unsafe {
        write_msr(MSR_STAR, star);
        write_msr(MSR_LSTAR, syscall_entry as unsafe extern "C" fn() as usize as u64);
        write_msr(MSR_FMASK, mask);
        write_msr(MSR_EFER, read_msr(MSR_EFER) | EFER_SCE);
    }
}

/// The end of user space for `sysretq`: the first address past the last
/// user page (Linux's `TASK_SIZE_MAX`: one page below the canonical top of
/// the lower half, so that no instruction can run into non-canonical space).
pub fn user_space_top() -> u64 {
    let half = 1u64 << (cpu::virt_width().bits() - 1);
    half - 4096
}

extern "C" {
    fn syscall_entry();
}

global_asm!(
    r#"
    .section .text.syscall_entry, "ax"
    .global syscall_entry
    .balign 16
syscall_entry:
    swapgs
    mov gs:[{user_rsp}], rsp
    mov rsp, gs:[{entry_stack}]
    // The frame a trap from ring 3 would push, then the vector and error code.
    push {user_ss}
    push qword ptr gs:[{user_rsp}]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    sub rsp, {sse_size}
    movaps [rsp + 0x00], xmm0
    movaps [rsp + 0x10], xmm1
    movaps [rsp + 0x20], xmm2
    movaps [rsp + 0x30], xmm3
    movaps [rsp + 0x40], xmm4
    movaps [rsp + 0x50], xmm5
    movaps [rsp + 0x60], xmm6
    movaps [rsp + 0x70], xmm7
    movaps [rsp + 0x80], xmm8
    movaps [rsp + 0x90], xmm9
    movaps [rsp + 0xa0], xmm10
    movaps [rsp + 0xb0], xmm11
    movaps [rsp + 0xc0], xmm12
    movaps [rsp + 0xd0], xmm13
    movaps [rsp + 0xe0], xmm14
    movaps [rsp + 0xf0], xmm15
    mov dword ptr [rsp + {mxcsr}], {keep_mxcsr}
    xor ebp, ebp
    mov rdi, rsp
    call syscall_dispatch
    // rax = 0: leave by iretq (the trap exit restores the whole frame).
    test rax, rax
    jz trap_restore
    cmp dword ptr [rsp + {mxcsr}], {keep_mxcsr}
    je 4f
    ldmxcsr [rsp + {mxcsr}]
4:
    movaps xmm0, [rsp + 0x00]
    movaps xmm1, [rsp + 0x10]
    movaps xmm2, [rsp + 0x20]
    movaps xmm3, [rsp + 0x30]
    movaps xmm4, [rsp + 0x40]
    movaps xmm5, [rsp + 0x50]
    movaps xmm6, [rsp + 0x60]
    movaps xmm7, [rsp + 0x70]
    movaps xmm8, [rsp + 0x80]
    movaps xmm9, [rsp + 0x90]
    movaps xmm10, [rsp + 0xa0]
    movaps xmm11, [rsp + 0xb0]
    movaps xmm12, [rsp + 0xc0]
    movaps xmm13, [rsp + 0xd0]
    movaps xmm14, [rsp + 0xe0]
    movaps xmm15, [rsp + 0xf0]
    add rsp, {sse_size}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    // Past the vector and error code to the saved RIP; then the user RSP
    // (three words up) and the user's GS base, and back to ring 3 with RCX
    // and R11 (= the frame's RIP and RFLAGS, checked by syscall_dispatch).
    add rsp, 16
    mov rsp, [rsp + 24]
    swapgs
    sysretq
    "#,
    user_rsp = const USER_RSP_SCRATCH_OFFSET,
    entry_stack = const USER_ENTRY_STACK_OFFSET,
    user_ss = const USER_DATA_SELECTOR as u64,
    user_cs = const USER_CODE_SELECTOR as u64,
    vector = const SYSCALL_VECTOR,
    sse_size = const size_of::<SseRegisters>(),
    mxcsr = const offset_of!(SseRegisters, mxcsr),
    keep_mxcsr = const super::sse::KEEP_MXCSR,
);

/// The Rust half of a system call: runs the handler with interrupts on, then
/// answers whether the frame may leave by `sysretq` (1) or must use `iretq`
/// (0). Returns with interrupts off.
#[no_mangle]
extern "C" fn syscall_dispatch(frame: &mut TrapFrame) -> u64 {
    // SAFETY: on the thread's kernel stack, with the frame saved: the same
    // state as any kernel code that may be interrupted.
    unsafe { cpu::enable_interrupts() };
    match SYSCALL_HANDLER.get() {
        Some(handler) => handler.syscall(frame),
        None => frame.rax = (-38i64) as u64, // ENOSYS
    }
    cpu::disable_interrupts();
    sysret_allowed(frame) as u64
}

/// True when `sysretq` would resume exactly the state `frame` holds (see the
/// module documentation).
fn sysret_allowed(frame: &TrapFrame) -> bool {
    frame.rcx == frame.rip
        && frame.r11 == frame.rflags
        && frame.rip < user_space_top()
        && frame.rflags & (RFLAGS_RF | RFLAGS_TF) == 0
        && frame.cs == USER_CODE_SELECTOR as u64
        && frame.ss == USER_DATA_SELECTOR as u64
}

/// Runs user code on this thread until [`leave_user`]: ring 3 at `rip` with
/// stack `rsp`, every other register zero, interrupts on; returns the value
/// `leave_user` passes. Like `setjmp`: the callee-saved registers and the
/// stack pointer are kept at `resume`, and entries from ring 3 start on the
/// kernel stack just below them. That stack top is written to
/// `entry_stack` and to this CPU's `user_entry_stack` (the scheduler copies
/// the first into the second at every switch to the thread).
///
/// # Safety
/// Interrupts off. The loaded address space must be the program's (its
/// pages for `rip` and `rsp` may be missing: the fault then goes to the
/// user-trap handler). `resume` and `entry_stack` must stay valid until
/// `leave_user` returns here.
pub unsafe fn run_user(rip: u64, rsp: u64, resume: *mut u64, entry_stack: *mut u64) -> u64 {
    let frame = first_frame(rip, rsp);
    // SAFETY: the caller's promises.
    unsafe { run_user_frame(&frame, resume, entry_stack) }
}

/// The state a program starts in: ring 3 at `rip` with stack `rsp`, every
/// other register zero, interrupts on, the power-on MXCSR (what `run_user`
/// and `execve` start a program with).
pub fn first_frame(rip: u64, rsp: u64) -> TrapFrame {
    let mut frame = TrapFrame {
        vector: SYSCALL_VECTOR,
        rip,
        cs: USER_CODE_SELECTOR as u64,
        rflags: RFLAGS_IF | RFLAGS_FIXED,
        rsp,
        ss: USER_DATA_SELECTOR as u64,
        ..TrapFrame::zeroed()
    };
    frame.sse.mxcsr = DEFAULT_MXCSR;
    frame
}

/// [`run_user`] from a whole saved state: a frame a system call or trap
/// from ring 3 saved (a forked child starts from its parent's). Only the
/// frame's user selectors and RFLAGS are trusted as they are made here.
///
/// # Safety
/// As for [`run_user`]; `frame` lies in the caller's stack frame.
pub unsafe fn run_user_frame(frame: &TrapFrame, resume: *mut u64, entry_stack: *mut u64) -> u64 {
    let mut frame = *frame;
    frame.cs = USER_CODE_SELECTOR as u64;
    frame.ss = USER_DATA_SELECTOR as u64;
    frame.rflags = user_rflags(frame.rflags);
    cpu::disable_interrupts();
    // SAFETY: the caller's promises; the frame lives in this function's
    // stack frame, above everything `nacre_run_user` and later entries from
    // ring 3 write.
    unsafe { nacre_run_user(&frame, resume, entry_stack) }
}

/// Ends [`run_user`] on this thread: resumes it from `resume` (what it
/// saved), returning `value`. Every frame between, a system call's or a
/// redirected trap's, is abandoned: the caller must hold nothing that needs
/// dropping.
///
/// # Safety
/// `resume` must be the value `run_user` saved on this thread, whose call
/// has not returned yet; called on this thread's kernel stack.
pub unsafe fn leave_user(resume: u64, value: u64) -> ! {
    // SAFETY: the caller's promise: `resume` points at the registers
    // `nacre_run_user` pushed, on this stack, above the caller's frames.
    unsafe { nacre_leave_user(resume, value) }
}

extern "C" {
    fn nacre_run_user(frame: *const TrapFrame, resume: *mut u64, entry_stack: *mut u64) -> u64;
    fn nacre_leave_user(resume: u64, value: u64) -> !;
}

global_asm!(
    r#"
    .section .text.run_user, "ax"
    // (frame rdi, resume rsi, entry_stack rdx) -> rax: the value given to
    // nacre_leave_user.
    .global nacre_run_user
    .balign 16
nacre_run_user:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rsi], rsp
    // Entries from ring 3 build their frames below this point.
    lea rax, [rsp - 64]
    and rax, -16
    mov [rdx], rax
    mov gs:[{entry_stack}], rax
    mov rsp, rdi
    jmp trap_restore

    // (resume rdi, value rsi): back into nacre_run_user's caller.
    .global nacre_leave_user
    .balign 16
nacre_leave_user:
    mov rsp, rdi
    mov rax, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
    "#,
    entry_stack = const USER_ENTRY_STACK_OFFSET,
);

/// Returns to ring 3 from the kernel stack with the state `frame` holds
/// (a frame a trap from ring 3 saved, perhaps changed: a signal's delivery
/// or return), by `iretq`. Every kernel frame below `frame` is abandoned.
///
/// # Safety
/// `frame` lies on this thread's kernel stack above everything still in
/// use, and holds a user CS and SS, a RIP below the top of user space and
/// user RFLAGS (see [`user_rflags`]).
pub unsafe fn resume_user(frame: *const TrapFrame) -> ! {
    cpu::disable_interrupts();
    // SAFETY: the caller's promises; trap_restore pops the frame and leaves
    // by iretq (swapping GS, since the saved CS is a user one).
    unsafe { core::arch::asm!("mov rsp, {frame}", "jmp trap_restore", frame = in(reg) frame, options(noreturn)) }
}

/// The RFLAGS a program may set for itself (on a signal return): the
/// arithmetic flags, TF, DF, RF and AC, as Linux's `FIX_EFLAGS` keeps them;
/// IF always set, IOPL 0, NT and VM clear.
pub fn user_rflags(requested: u64) -> u64 {
    // CF(0) PF(2) AF(4) ZF(6) SF(7) TF(8) DF(10) OF(11) RF(16) AC(18).
    const USER_BITS: u64 = 1 | 1 << 2 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11 | 1 << 16 | 1 << 18;
    (requested & USER_BITS) | RFLAGS_IF | RFLAGS_FIXED
}

/// The RFLAGS of a program's signal return: the bits a program may set
/// (see [`user_rflags`]) from `saved`, the others as `current` has them
/// (the flags at the `rt_sigreturn` call: NT, for one, survives), with IF
/// set and IOPL 0.
pub fn restore_user_rflags(current: u64, saved: u64) -> u64 {
    const IOPL: u64 = 3 << 12;
    // VM (bit 17) and the bits above ID (bit 21) are never set in 64-bit mode.
    const NEVER: u64 = 1 << 17 | !((1 << 22) - 1);
    let kept = current & !user_rflags(u64::MAX) & !IOPL & !NEVER;
    kept | user_rflags(saved)
}

/// Where [`redirect_with_frame`] leaves a copy of the trapped frame and
/// calls a [`FrameContinuation`]: `function(frame, a, b)`.
pub type FrameContinuation = extern "C" fn(*mut TrapFrame, u64, u64) -> !;

/// Rewrites `frame`, saved by a trap from ring 3, so that the trap's return
/// runs `function` in ring 0, interrupts off, on this thread's kernel stack
/// (a trap on an IST stack cannot block, fault or end the thread there). It
/// first copies `frame` (the program's
/// state at the trap) to the top of the thread's kernel stack and passes
/// its address to `function`, which may change it and go back to the
/// program with [`resume_user`].
pub fn redirect_with_frame(frame: &mut TrapFrame, function: FrameContinuation, a: u64, b: u64) {
    let stack_top = crate::percpu::current().user_entry_stack.load(core::sync::atomic::Ordering::Relaxed);
    assert!(stack_top != 0, "a trap from ring 3 on a thread with no kernel entry stack");
    let copy = ((stack_top - core::mem::size_of::<TrapFrame>() as u64) & !15) as *mut TrapFrame;
    // SAFETY: the kernel stack below the entry point is unused while the
    // thread runs in ring 3 (it trapped from there), and the copy fits in it.
    unsafe { core::ptr::copy_nonoverlapping(frame as *const TrapFrame, copy, 1) };
    frame.rip = function as usize as u64;
    frame.cs = KERNEL_CODE_SELECTOR as u64;
    frame.ss = super::gdt::KERNEL_DATA_SELECTOR as u64;
    frame.rsp = copy as u64 - 8;
    frame.rflags = RFLAGS_FIXED;
    frame.rdi = copy as u64;
    frame.rsi = a;
    frame.rdx = b;
    frame.rbp = 0;
}
