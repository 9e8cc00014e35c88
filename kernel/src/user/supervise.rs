//! Waiting for a program the kernel started (the shell's `run` and
//! `runall`, the init): Ctrl-C on the console sends `SIGINT` to the
//! console's foreground group, an optional time limit ends in `SIGKILL`,
//! and nothing a program does makes the wait hang.
//!
//! A program that stops (`SIGSTOP`, `SIGTSTP`) stays stopped: the shell
//! has no job control (no `fg`, no report of the stop); Ctrl-C continues
//! the stopped members of the foreground group after sending `SIGINT`, and
//! the time limit's `SIGKILL` ends a stopped process too.
//!
//! The wait polls: every [`POLL_MS`] it reads the console for Ctrl-C and
//! looks whether the process has ended (all its threads done). Past the
//! time limit the process and its group (its forked children, unless they
//! left it) get `SIGKILL`; the wait then gives the process
//! [`KILL_GRACE_MS`] to end, and reaps it. A process that is still there
//! after that (a thread blocked where no signal reaches it) is left
//! behind, and the wait says so rather than hang.

use super::files;
use super::process::{self, ExitStatus, Running};
use super::signal::{self, code, FaultRecord, Signal};
use core::fmt::Write;

/// The byte Ctrl-C sends.
const CTRL_C: u8 = 0x03;
/// How often the wait looks at the console and at the process.
pub const POLL_MS: u64 = 10;
/// How long a process killed for its time limit has to end.
pub const KILL_GRACE_MS: u64 = 5_000;

/// How a supervised program ended.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// It ended by itself (or by a signal a program or Ctrl-C sent), and was reaped.
    Ended {
        /// How.
        status: ExitStatus,
        /// The trap that ended it, if one did.
        fault: Option<FaultRecord>,
    },
    /// It outlived its time limit: it was sent `SIGKILL` and reaped.
    TimedOut,
    /// It outlived its time limit and did not end within
    /// [`KILL_GRACE_MS`] of `SIGKILL`: left behind, not reaped.
    Unkillable,
}

/// What the wait knows of `pid`: `Some(fault)` once it has ended (or is
/// gone).
fn ended(pid: u32) -> Option<Option<FaultRecord>> {
    match process::all().into_iter().find(|process| process.pid == pid) {
        None => Some(None),
        Some(process) => {
            let state = process.state.lock();
            state.ended.then_some(state.signal_extras.fault)
        }
    }
}

/// Sends `SIGKILL` to process `pid` and to its process group.
pub fn kill(pid: u32) {
    if let Some(process) = process::all().into_iter().find(|process| process.pid == pid) {
        signal::send(&process, Signal::SIGKILL, code::SI_KERNEL, 0);
    }
    signal::send_to_group(pid, Signal::SIGKILL, code::SI_KERNEL, 0);
}

/// Waits for `running` (which leads its own process group, the console's
/// foreground group meanwhile) to end, at most `limit_ms` milliseconds
/// when a limit is given, and reaps it. Ctrl-C on the console sends
/// `SIGINT` to the foreground group; "^C" is written to `out`.
pub fn wait(running: Running, limit_ms: Option<u64>, out: &mut dyn Write) -> Ending {
    let pid = running.process.pid;
    files::set_foreground_group(pid);
    let start = crate::arch::tsc::nanos_since_boot();
    let elapsed_ms = || (crate::arch::tsc::nanos_since_boot() - start) / 1_000_000;
    let mut killed_at = None;
    let fault = loop {
        if let Some(fault) = ended(pid) {
            break fault;
        }
        while let Some(byte) = crate::serial::try_read_byte() {
            if byte == CTRL_C {
                let _ = writeln!(out, "^C");
                // The program's group (its forked children are in it),
                // unless it made another the foreground (TIOCSPGRP). The
                // shell has no job control to continue a stopped program:
                // the stopped members are continued, so that SIGINT acts.
                let group = files::foreground_group();
                signal::send_to_group(group, Signal::SIGINT, code::SI_KERNEL, 0);
                signal::continue_stopped_in_group(group);
            }
        }
        let now = elapsed_ms();
        match (limit_ms, killed_at) {
            (Some(limit), None) if now >= limit => {
                kill(pid);
                killed_at = Some(now);
            }
            (_, Some(at)) if now >= at + KILL_GRACE_MS => {
                files::set_foreground_group(0);
                // `running` is dropped without a join: its thread may never end.
                return Ending::Unkillable;
            }
            _ => {}
        }
        crate::thread::sleep_ms(POLL_MS);
    };
    files::set_foreground_group(0);
    let status = process::wait(running);
    match killed_at {
        Some(_) => Ending::TimedOut,
        None => Ending::Ended { status, fault },
    }
}
