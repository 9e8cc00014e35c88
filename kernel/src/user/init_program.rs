//! The init: with `init=PATH [-- ARG...]` on the kernel command line, the
//! kernel runs that program as process 1 instead of the shell, with the
//! console as its standard input, output and error, and powers off when it
//! ends: with the success status for exit status 0, the failure status for
//! any other status or a fatal signal (what killed it is printed). An init
//! that cannot be started (no such file, not a program this kernel runs)
//! is reported and powers off with the failure status at once.
//!
//! While it runs it adopts the orphans of processes that end
//! ([`process::spawn_init`]); when it ends, the processes still running are
//! not waited for.

use super::process::{self, ExitStatus, INIT_PID};
use super::supervise::{self, Ending};
use crate::cmdline::Init;
use crate::qemu::{self, ExitStatus as QemuStatus};
use crate::serial::SerialWriter;
use alloc::vec::Vec;

/// Runs `init` as process 1 and powers off with its status; never returns.
pub fn run(init: Init<'_>) -> ! {
    if init.path.is_empty() {
        crate::println!("init: init= names no program; powering off");
        qemu::exit(QemuStatus::Failure)
    }
    let mut argv: Vec<&[u8]> = Vec::from([init.path.as_bytes()]);
    argv.extend(init.arguments().map(str::as_bytes));
    let running = match process::spawn_init(init.path, &argv) {
        Ok(running) => running,
        Err(error) => {
            crate::println!("init: cannot start {}: {error} (errno {}); powering off", init.path, error.errno().name());
            qemu::exit(QemuStatus::Failure)
        }
    };
    log::info!("init: {} runs as pid {INIT_PID}", running.process.path);
    let path = running.process.path.clone();
    match supervise::wait(running, None, &mut SerialWriter) {
        Ending::Ended { status, fault } => {
            match (status, fault) {
                (ExitStatus::Killed { .. }, Some(fault)) => {
                    crate::println!("init: {path} (pid {INIT_PID}) {status}: {fault}; powering off")
                }
                _ => crate::println!("init: {path} (pid {INIT_PID}) {status}; powering off"),
            }
            qemu::exit(if status == ExitStatus::Exited(0) { QemuStatus::Success } else { QemuStatus::Failure })
        }
        // No time limit was given.
        Ending::TimedOut | Ending::Unkillable => qemu::exit(QemuStatus::Failure),
    }
}
