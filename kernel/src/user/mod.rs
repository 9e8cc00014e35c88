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
pub mod proc;
pub mod process;
pub mod random;
pub mod signal;
pub mod syscall;

use crate::arch::frame::TrapFrame;
use crate::arch::syscall::{install_syscall_handler, redirect_to_kernel, SyscallHandler};
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
        if let Some(process) = process::current() {
            process.state.lock().exit.get_or_insert(ExitStatus::Killed { info, rip: frame.rip });
        }
        // The IST stack cannot host the end of the process: continue on the
        // thread's kernel stack.
        redirect_to_kernel(frame, end_killed_program, [0; 3]);
    }
}

/// Where a program killed by a signal goes (on its kernel stack): out of
/// user mode, to its thread's `run_user`, which returns.
extern "C" fn end_killed_program(_: u64, _: u64, _: u64) -> ! {
    crate::thread::leave_user(0)
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
