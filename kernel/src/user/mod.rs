//! User mode: static Linux x86-64 programs running in ring 3, each in a
//! `paging` address space of its own, served by the Linux system calls they
//! use.
//!
//! - [`layout`]: where the kernel's map, the program, the heap, the mmap
//!   area and the stack go in a process's space;
//! - [`load`]: the space built from an ELF file (`crates/exec` plans it);
//! - [`process`]: spawning, running, exiting and waiting;
//! - [`jobs`]: stopping and continuing a process, and `wait4`/`waitid`;
//! - [`supervise`]: the kernel's own wait for a program it started (Ctrl-C,
//!   a time limit, `SIGKILL`), for the shell's `run` and `runall` and the init;
//! - [`init_program`]: the init (`init=` on the kernel command line), pid 1;
//! - [`copy`]: the one door to user memory (`EFAULT`, never a panic);
//! - [`syscall`], [`memory`], [`files`], [`proc`]: the system calls;
//! - [`signal`]: what a program's faults raise, and delivery;
//! - [`misc`]: the process, time and scheduling calls, and the count of
//!   the calls nobody serves;
//! - [`timers`]: `alarm`, the interval timers and the usage calls
//!   (`times`, `getrusage`), with the state in [`timerstate`].
//!
//! The way in and out of ring 3 (`syscall`/`sysretq`, `iretq`, `swapgs`)
//! is `arch::syscall`; this layer installs its two hooks there and in the
//! trap dispatcher at boot ([`init`]). Around the system-call table it
//! serves the two calls that need the program's registers, not only the
//! arguments: `sigaltstack` (the stack pointer) and the restart of a call a
//! signal interrupted (the number and the `syscall` instruction's address);
//! and at the end of every interrupt from ring 3 it delivers the pending
//! signals, so that a program that makes no system call is reached too.

pub mod affinity;
pub mod copy;
pub mod creds;
pub mod devices;
pub mod dirs;
pub mod errno;
pub mod fdtable;
pub mod files;
pub mod futex;
pub mod init_program;
pub mod jobs;
pub mod layout;
pub mod load;
pub mod memory;
pub mod misc;
pub mod mount;
pub mod objects;
pub mod proc;
pub mod process;
pub mod procinfo;
pub mod random;
pub mod reboot;
pub mod signal;
pub mod sigstate;
pub mod supervise;
pub mod syscall;
pub mod sysfs;
pub mod timers;
pub mod timerstate;

use crate::arch::frame::TrapFrame;
use crate::arch::syscall::{install_syscall_handler, redirect_with_frame, resume_user, SyscallHandler};
use crate::arch::trap::{install_user_trap_handler, UserTrapHandler};
use aspace::{Fault, Protection, UnhandledFault};
use core::sync::atomic::Ordering;
use errno::Errno;
use process::ExitStatus;

/// The system call served here: `sigaltstack`, as it needs the program's
/// stack pointer.
mod nr {
    pub const SIGALTSTACK: u64 = 131;
}
/// `rt_sigreturn`: never restarted (its RAX is the restored one).
const RT_SIGRETURN: u64 = 15;

/// The user-mode layer, as the layers below see it.
struct UserLayer;

impl SyscallHandler for UserLayer {
    fn syscall(&self, frame: &mut TrapFrame) {
        let number = frame.rax;
        if number == nr::SIGALTSTACK {
            sigaltstack(frame);
        } else {
            syscall::dispatch(frame);
        }
        if number == RT_SIGRETURN {
            // The restored mask may let a pending signal through: Linux
            // delivers it before the program runs again.
            deliver_now(frame);
        } else if frame.rax == Errno::ERESTARTSYS.to_return() {
            restart_or_interrupt(frame, number);
        }
        // The timer asked for a switch while the call ran: give the CPU up
        // before returning to the program, as an interrupt's exit would.
        if crate::percpu::current().need_resched.load(Ordering::Relaxed) {
            crate::thread::yield_now();
        }
        // Another thread ended the process meanwhile: this one leaves too.
        process::leave_if_exiting();
    }
}

/// `sigaltstack(new, old)` with the program's stack pointer, then the
/// pending signals, as the table's calls end.
fn sigaltstack(frame: &mut TrapFrame) {
    let Some(process) = process::current() else {
        frame.rax = Errno::ENOSYS.to_return();
        return;
    };
    frame.rax = match signal::sigaltstack(&process, frame.rdi, frame.rsi, frame.rsp) {
        Ok(value) => value,
        Err(errno) => errno.to_return(),
    };
    drop(process);
    deliver_now(frame);
}

/// Delivers a pending signal to the program whose state is `frame`, or
/// ends it.
fn deliver_now(frame: &mut TrapFrame) {
    let Some(process) = process::current() else { return };
    let outcome = signal::deliver_pending(&process, frame);
    drop(process);
    if let signal::Outcome::Terminate(info) = outcome {
        process::exit_current(ExitStatus::Killed { info, rip: frame.rip });
    }
}

/// A call that blocked returned `ERESTARTSYS`: a signal came. It is
/// delivered, and the call returns `EINTR` or starts again
/// ([`signal::deliver_after_interrupted_call`]).
fn restart_or_interrupt(frame: &mut TrapFrame, number: u64) {
    let Some(process) = process::current() else {
        frame.rax = Errno::EINTR.to_return();
        return;
    };
    let outcome = signal::deliver_after_interrupted_call(&process, frame, number);
    drop(process);
    if let signal::Outcome::Terminate(info) = outcome {
        process::exit_current(ExitStatus::Killed { info, rip: frame.rip });
    }
}

impl UserTrapHandler for UserLayer {
    fn user_trap(&self, frame: &mut TrapFrame, fault: Option<(&Fault, &UnhandledFault)>) {
        let info = signal::for_trap(frame.vector(), frame.rip, fault);
        if let Some((_, UnhandledFault::Forbidden { region, .. })) = fault {
            if region.prot.contains(Protection::KERN) {
                // The program sees nothing mapped there (SEGV_MAPERR, as on
                // Linux): its error code says not present, as Linux's would.
                frame.error_code &= !1;
            }
        }
        // The IST stack can neither fault (the signal frame goes on the
        // program's stack) nor host the end of the process: continue on the
        // thread's kernel stack, with a copy of the program's state.
        let packed = info.signal.0 as u64 | (info.code as u32 as u64) << 32;
        redirect_with_frame(frame, deliver_fault_signal, packed, info.addr);
    }

    fn returning_to_user(&self, frame: &mut TrapFrame) {
        // On the IST stack, interrupts off, the program in ring 3 holding no
        // lock: only look. Delivery writes the program's stack, which may
        // fault: it happens on the thread's kernel stack.
        let state = process::look_at_current(|process| (process.exiting(), signal::has_ready(process)));
        match state {
            // Another thread ended the process: leave from the kernel stack.
            Some((true, _)) => redirect_with_frame(frame, leave_exiting_process, 0, 0),
            Some((false, true)) => redirect_with_frame(frame, deliver_on_return, 0, 0),
            Some((false, false)) | None => {}
        }
    }
}

/// Where a thread of an ending process goes from ring 3, on its kernel
/// stack: out of user mode.
extern "C" fn leave_exiting_process(_: *mut TrapFrame, _: u64, _: u64) -> ! {
    crate::thread::leave_user(0)
}

/// Where a program interrupted with a signal pending continues, on its
/// kernel stack: the signal is delivered (the program resumes in its
/// handler, or where it was) or ends the process.
extern "C" fn deliver_on_return(frame: *mut TrapFrame, _: u64, _: u64) -> ! {
    // SAFETY: on the thread's kernel stack, as any kernel code.
    unsafe { crate::arch::cpu::enable_interrupts() };
    // SAFETY: `redirect_with_frame` copied the frame there, for this call alone.
    let frame = unsafe { &mut *frame };
    let outcome = match process::current() {
        Some(process) => signal::deliver_pending(&process, frame),
        None => signal::Outcome::Resume,
    };
    match outcome {
        // SAFETY: the frame is the program's, on this kernel stack, with a
        // user RIP (its own, or a handler's) and the user selectors.
        signal::Outcome::Resume => unsafe { resume_user(frame) },
        signal::Outcome::Terminate(info) => process::exit_current(ExitStatus::Killed { info, rip: frame.rip }),
    }
}

/// Where a program's fault continues, on its kernel stack: the signal is
/// delivered (the program resumes in its handler) or ends the process.
extern "C" fn deliver_fault_signal(frame: *mut TrapFrame, packed: u64, addr: u64) -> ! {
    // SAFETY: on the thread's kernel stack, as any kernel code.
    unsafe { crate::arch::cpu::enable_interrupts() };
    // SAFETY: `redirect_with_frame` copied the frame there, for this call alone.
    let frame = unsafe { &mut *frame };
    let info = signal::SignalInfo { signal: signal::Signal(packed as u32), code: (packed >> 32) as i32, addr };
    let outcome = match process::current() {
        Some(process) => {
            let outcome = signal::deliver(&process, frame, info, true);
            if let signal::Outcome::Terminate(_) = outcome {
                // For `run`'s report: the trap and its error code.
                let record = signal::FaultRecord { vector: frame.vector(), error_code: frame.error_code };
                process.state.lock().signal_extras.fault = Some(record);
            }
            outcome
        }
        None => signal::Outcome::Terminate(info),
    };
    match outcome {
        // SAFETY: the frame is the program's, on this kernel stack, with a
        // handler's (user) RIP and the user selectors.
        signal::Outcome::Resume => unsafe { resume_user(frame) },
        signal::Outcome::Terminate(info) => process::exit_current(ExitStatus::Killed { info, rip: frame.rip }),
    }
}

static LAYER: UserLayer = UserLayer;

/// Installs the system-call and user-trap hooks and turns `syscall` on for
/// the boot CPU (application processors call
/// [`crate::arch::syscall::init_this_cpu`] themselves). Call once at boot.
pub fn init() {
    copy::init();
    // The zero page, taken now rather than by the first program's read.
    let _ = paging::Machine::zero_frame(&crate::address_space::KernelMachine);
    install_syscall_handler(&LAYER);
    install_user_trap_handler(&LAYER);
    crate::arch::syscall::init_this_cpu();
}
