//! Threads on grow-down stacks: a thread that runs its code on a
//! [`Protection::GROW_DOWN`] anonymous region of a `paging` address space,
//! which grows one page per fault as the code goes deeper, and a clean stop
//! of the thread when it would grow past its limits.
//!
//! How it works ([`spawn`]):
//! 1. the stack is a one-page grow-down region ending at `top`, added to
//!    the address space (which grows it under its own growth limits);
//! 2. a kernel thread is made as usual (with an ordinary stack), moves
//!    into the address space, and switches its stack pointer to `top`
//!    (`nacre_run_on_stack`): the entry runs on the grow-down stack. Each
//!    push onto a page not yet there faults; the fault handler runs on its
//!    own IST stack, so a fault caused by the thread's own stack is
//!    handled like any other, and the region grows by that page;
//! 3. when the entry returns, the thread switches back to its ordinary
//!    stack, leaves the address space and removes the stack region, whose
//!    frames go back to the allocator.
//!
//! **Overflow.** When the stack may not grow (it would pass the space's
//! maximum size or come within a guard gap of its neighbour) the address
//! space answers `StackOverflow`. The trap path then offers the fault to
//! [`recover`] (the trap dispatcher's recovery hook): if the faulting
//! thread runs on a grow-down stack of this module, and that is the stack
//! that overflowed, the trap returns not to the faulting instruction but to
//! the end of `nacre_run_on_stack`, on the thread's ordinary stack, as if
//! the entry had returned. The thread prints "stack overflow in thread T"
//! and exits with [`STACK_OVERFLOW_EXIT`]; the kernel goes on.
//!
//! What is abandoned: the frames on the grow-down stack (their destructors
//! never run: memory they owned leaks). A thread that overflows while it
//! holds a lock would leave it held, so recovery is refused when the
//! thread had interrupts off (every lock that keeps interrupts off, the
//! address-space and heap locks among them); the kernel then stops with
//! the full report. Code on a grow-down stack must not hold a spin lock
//! with interrupts on across a call that may grow the stack, nor the lock
//! of its own address space (the fault handler takes it).

use crate::address_space::{self, paging_of_mut, Space};
use crate::arch::frame::TrapFrame;
use crate::sync::IrqMutex;
use crate::thread::{self, JoinHandle};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AddressKind, AddressSpace, AspaceError, Fault, Protection, Region, UnhandledFault};
use core::arch::global_asm;
use core::fmt;

/// The exit value of a thread stopped by a stack overflow.
pub const STACK_OVERFLOW_EXIT: u64 = u64::MAX;
/// The exit value of a thread that could not enter its address space.
pub const CANNOT_ENTER_EXIT: u64 = u64::MAX - 1;
/// The page size: the stack starts with one page.
const PAGE: u64 = 4096;
/// RFLAGS.IF: interrupts enabled.
const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.DF: string instructions count down (must be clear at a call).
const RFLAGS_DF: u64 = 1 << 10;

/// The flags of a grow-down stack region: kernel-only read-write, no execute.
pub const STACK_FLAGS: Protection = Protection::READ
    .union(Protection::WRITE)
    .union(Protection::KERN)
    .union(Protection::ANON)
    .union(Protection::GROW_DOWN);

// nacre_run_on_stack(job: rdi, top: rsi, resume: rdx) -> rax
//
// Saves the callee-saved registers on the current stack, stores the stack
// pointer at `resume`, switches to `top` and calls `run_job(job)`. When it
// returns (or when a stack overflow is recovered: the trap returns to
// nacre_growing_stack_landing with rsp = *resume and rax set), the old
// stack is back and the registers are restored.
global_asm!(
    r#"
    .section .text.growing_stack, "ax"
    .global nacre_run_on_stack
nacre_run_on_stack:
    push rbp
    mov rbp, rsp
    push rbx
    push r12
    push r13
    push r14
    push r15
    sub rsp, 8
    mov qword ptr [rdx], rsp
    mov rbx, rdx
    mov rsp, rsi
    call {run_job}
    mov rsp, qword ptr [rbx]
    .global nacre_growing_stack_landing
nacre_growing_stack_landing:
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
    "#,
    run_job = sym run_job,
);

extern "C" {
    fn nacre_run_on_stack(job: *const core::ffi::c_void, top: u64, resume: *mut u64) -> u64;
    static nacre_growing_stack_landing: u8;
}

/// What runs on the grow-down stack.
#[repr(C)]
struct Job {
    entry: fn(u64) -> u64,
    argument: u64,
}

/// Called by `nacre_run_on_stack`, on the grow-down stack.
extern "C" fn run_job(job: *const core::ffi::c_void) -> u64 {
    // SAFETY: `job` points at the Job on the caller's ordinary stack, which
    // lives until nacre_run_on_stack returns.
    let job = unsafe { &*job.cast::<Job>() };
    (job.entry)(job.argument)
}

/// A thread running on a grow-down stack, as the recovery hook sees it.
struct Running {
    /// The top of its grow-down stack.
    top: u64,
    /// The address of the word holding the stack pointer to resume at.
    resume_slot: u64,
    /// Set by [`recover`] when the stack overflowed.
    overflow: Option<StackOverflowReport>,
}

/// What happened when a grow-down stack overflowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackOverflowReport {
    /// The thread.
    pub thread: thread::ThreadId,
    /// Its name.
    pub name: String,
    /// The address that could not be mapped.
    pub addr: u64,
    /// The instruction that faulted.
    pub rip: u64,
    /// The stack region as it was (at its largest).
    pub region: Region,
}

impl fmt::Display for StackOverflowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stack overflow in thread {} ({}): {:#x} is past its grow-down stack {:#x}-{:#x} ({} KiB, the most \
             it may grow), at RIP {:#x}; the thread is stopped",
            self.thread,
            self.name,
            self.addr,
            self.region.va.as_u64(),
            self.region.last(),
            self.region.len / 1024,
            self.rip
        )
    }
}

/// The threads now running on grow-down stacks, by thread id.
static RUNNING: IrqMutex<BTreeMap<u64, Running>> = IrqMutex::new(BTreeMap::new());
/// Every overflow so far, oldest first.
static OVERFLOWS: IrqMutex<Vec<StackOverflowReport>> = IrqMutex::new(Vec::new());

/// Every stack overflow recovered so far, oldest first.
pub fn overflows() -> Vec<StackOverflowReport> {
    OVERFLOWS.lock().clone()
}

/// Starts thread `name` running `entry(argument)` on a grow-down stack
/// whose top is `top` (page-aligned) in the `paging` address space
/// `space`. The stack starts as one page and grows under the space's
/// growth limits ([`paging::PagingAspace::set_growth_limits`]). The thread
/// exits with the entry's value, or [`STACK_OVERFLOW_EXIT`] after a stack
/// overflow (reported on the console and kept in [`overflows`]); either way
/// the stack region is removed and its frames freed when it ends.
///
/// Refused when `top` is not page-aligned, the space is not a `paging`
/// one, the kernel could not run in it, or the stack region cannot be added.
pub fn spawn(
    name: &str,
    space: &Arc<Space>,
    top: u64,
    entry: fn(u64) -> u64,
    argument: u64,
) -> Result<JoinHandle, AspaceError> {
    if top == 0 || !top.is_multiple_of(PAGE) {
        return Err(AspaceError::Misaligned { kind: AddressKind::Virtual, value: top, required: PAGE });
    }
    let stack = Region::anonymous(top - PAGE, PAGE, STACK_FLAGS);
    {
        let mut object = space.lock();
        address_space::check_can_enter(&**object)?;
        let implementation = object.implementation();
        let paging = paging_of_mut(&mut object).ok_or(AspaceError::Unsupported {
            implementation,
            operation: "grow-down thread stacks (only paging address spaces grow regions)",
        })?;
        paging.add_region(stack)?;
    }
    let space = space.clone();
    Ok(thread::spawn(name, move || run(space, top, Job { entry, argument })))
}

/// The body of a grow-down-stack thread, on its ordinary stack.
fn run(space: Arc<Space>, top: u64, job: Job) -> u64 {
    let me = thread::current();
    let id = me.id();
    if let Err(error) = address_space::move_current_thread(Some(&space)) {
        crate::println!("thread {id} ({}): cannot enter '{}': {error}", me.name(), space.name());
        remove_stack(&space, top);
        return CANNOT_ENTER_EXIT;
    }
    let mut resume: u64 = 0;
    let resume_slot = core::ptr::addr_of_mut!(resume) as u64;
    RUNNING.lock().insert(id.0, Running { top, resume_slot, overflow: None });
    // SAFETY: `top` is the top of a grow-down region of the address space
    // this thread is now in, which nothing else uses; the entry runs there
    // and returns (or is brought back by `recover`) to this stack, with the
    // callee-saved registers restored, before `resume` and `job` go away.
    let value = unsafe { nacre_run_on_stack(core::ptr::addr_of!(job).cast(), top, core::ptr::addr_of_mut!(resume)) };
    let running = RUNNING.lock().remove(&id.0);
    let overflow = running.and_then(|r| r.overflow);
    if let Err(error) = address_space::move_current_thread(None) {
        crate::println!("thread {id} ({}): cannot leave '{}': {error}", me.name(), space.name());
    }
    remove_stack(&space, top);
    match overflow {
        Some(report) => {
            crate::println!("{report}");
            OVERFLOWS.lock().push(report);
            STACK_OVERFLOW_EXIT
        }
        None => value,
    }
}

/// Removes the stack region ending at `top` (whatever it has grown to).
fn remove_stack(space: &Space, top: u64) {
    let stack = space.lock().regions().find(top - 1).copied();
    if let Some(region) = stack {
        if let Err(error) = space.remove_region(region) {
            crate::println!("cannot remove the stack {region} from '{}': {error}", space.name());
        }
    }
}

/// Offered by the fault handler a fault nothing handled (see
/// `arch::trap::FaultHandler::recover`): a stack overflow of a thread on a
/// grow-down stack of this module ends its entry (see the module
/// documentation). Runs on the page-fault IST stack with interrupts off,
/// so it only tries locks.
pub fn recover(frame: &mut TrapFrame, fault: &Fault, reason: &UnhandledFault) -> bool {
    let UnhandledFault::StackOverflow { region } = reason else { return false };
    if frame.rflags & RFLAGS_IF == 0 {
        // Interrupts were off: the thread may hold a lock. Not safe to abandon.
        return false;
    }
    let Some(thread) = crate::thread::try_current().flatten() else {
        return false;
    };
    let Some(mut running) = RUNNING.try_lock() else { return false };
    let Some(record) = running.get_mut(&thread.id().0) else { return false };
    if region.va.as_u64().checked_add(region.len) != Some(record.top) {
        // Another grow-down region overflowed (a stray access): not ours to recover.
        return false;
    }
    // SAFETY: the slot is the `resume` local of `run` on the thread's
    // ordinary stack (RAM, mapped one to one in every space the kernel
    // runs in), written by nacre_run_on_stack before it switched stacks.
    let resume = unsafe { (record.resume_slot as *const u64).read_volatile() };
    record.overflow = Some(StackOverflowReport {
        thread: thread.id(),
        name: String::from(thread.name()),
        addr: fault.addr,
        rip: frame.rip,
        region: *region,
    });
    frame.rip = core::ptr::addr_of!(nacre_growing_stack_landing) as u64;
    frame.rsp = resume;
    frame.rax = STACK_OVERFLOW_EXIT;
    frame.rflags &= !RFLAGS_DF;
    true
}
