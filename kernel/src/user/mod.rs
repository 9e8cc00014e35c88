//! User mode: static Linux x86-64 programs running in ring 3, each in a
//! `paging` address space of its own, served by the Linux system calls they
//! use.
//!
//! - [`layout`]: where the kernel's map, the program, the heap, the mmap
//!   area and the stack go in a process's space;
//! - [`load`]: the space built from an ELF file (`crates/exec` plans it);
//! - [`process`]: spawning, running, exiting and waiting;
//! - [`copy`]: the one door to user memory (`EFAULT`, never a panic);
//! - [`syscall`], [`memory`], [`files`], [`proc`]: the system calls;
//! - [`signal`]: what a program's faults raise.
//!
//! The way in and out of ring 3 (`syscall`/`sysretq`, `iretq`, `swapgs`)
//! is `arch::syscall`; this layer installs its two hooks there and in the
//! trap dispatcher at boot ([`init`]).

pub mod copy;
pub mod errno;
pub mod files;
pub mod layout;
pub mod load;
pub mod memory;
pub mod misc;
pub mod proc;
pub mod process;
pub mod random;
pub mod signal;
pub mod syscall;

use crate::arch::frame::TrapFrame;
use crate::arch::syscall::{install_syscall_handler, redirect_with_frame, resume_user, SyscallHandler};
use crate::arch::trap::{install_user_trap_handler, UserTrapHandler};
use aspace::{Fault, UnhandledFault};
use core::sync::atomic::Ordering;
use process::ExitStatus;

/// The user-mode layer, as the layers below see it.
struct UserLayer;

impl SyscallHandler for UserLayer {
    fn syscall(&self, frame: &mut TrapFrame) {
        syscall::dispatch(frame);
        // The timer asked for a switch while the call ran: give the CPU up
        // before returning to the program, as an interrupt's exit would.
        if crate::percpu::current().need_resched.load(Ordering::Relaxed) {
            crate::thread::yield_now();
        }
    }
}

impl UserTrapHandler for UserLayer {
    fn user_trap(&self, frame: &mut TrapFrame, fault: Option<(&Fault, &UnhandledFault)>) {
        let info = signal::for_trap(frame.vector(), frame.rip, fault);
        // The IST stack can neither fault (the signal frame goes on the
        // program's stack) nor host the end of the process: continue on the
        // thread's kernel stack, with a copy of the program's state.
        let packed = info.signal.0 as u64 | (info.code as u32 as u64) << 32;
        redirect_with_frame(frame, deliver_fault_signal, packed, info.addr);
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
        Some(process) => signal::deliver(&process, frame, info, true),
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
    install_syscall_handler(&LAYER);
    install_user_trap_handler(&LAYER);
    crate::arch::syscall::init_this_cpu();
}
