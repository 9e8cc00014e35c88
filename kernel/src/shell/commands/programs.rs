//! The shell's program commands: `run PATH [ARGS...]` runs a static Linux
//! program in a process of its own and waits for it (Ctrl-C on the console
//! sends its process group `SIGINT`); `ps` lists the processes; `syscalls`
//! lists the system calls programs asked for and did not get.

use crate::shell::session::Session;
use crate::user::process::{self, ExitStatus};
use crate::user::signal::{self, code, Signal};
use crate::user::{files, misc};
use alloc::vec::Vec;
use core::fmt::Write;
use shell::{arg_count, CommandError};

/// The byte Ctrl-C sends.
const CTRL_C: u8 = 0x03;
/// How often `run` looks at the console and at the process while it waits.
const POLL_MS: u64 = 10;

/// `run PATH [ARGS...]`: starts the program (`argv[0]` is PATH), waits for
/// it, and prints how it ended ("exit 0", "killed by SIGSEGV (...)", with
/// the trap that ended it in words: "user read of a not-present page").
/// While it runs the shell reads the console for Ctrl-C only, which sends
/// `SIGINT` to the console's foreground group (the program's own, which it
/// leads), as a terminal does. Fails unless the program exited with status
/// 0, so a script stops counting on it.
pub fn run(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, usize::MAX)?;
    let argv: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    let running = process::spawn(args[0], &argv).map_err(|error| {
        CommandError::failed(alloc::format!("{}: cannot run: {error} (errno {})", args[0], error.errno().name()))
    })?;
    let pid = running.process.pid;
    // The program leads its own group: the console's foreground group now.
    files::set_foreground_group(pid);
    // The process under its pid: an `execve` replaces the record.
    let fault = loop {
        match process::all().into_iter().find(|process| process.pid == pid) {
            None => break None,
            Some(process) => {
                let state = process.state.lock();
                if state.exit.is_some() {
                    break state.signal_extras.fault;
                }
            }
        }
        while let Some(byte) = crate::serial::try_read_byte() {
            if byte == CTRL_C {
                let _ = writeln!(out, "^C");
                // The program's group (its forked children are in it),
                // unless it made another the foreground (TIOCSPGRP).
                signal::send_to_group(files::foreground_group(), Signal::SIGINT, code::SI_KERNEL, 0);
            }
        }
        crate::thread::sleep_ms(POLL_MS);
    };
    files::set_foreground_group(0);
    let status = process::wait(running);
    match (status, fault) {
        (ExitStatus::Killed { .. }, Some(fault)) => writeln!(out, "{status}: {fault}")?,
        _ => writeln!(out, "{status}")?,
    }
    match status {
        ExitStatus::Exited(0) => Ok(()),
        _ => Err(CommandError::failed(alloc::format!("{} (pid {pid}) did not exit with 0", args[0]))),
    }
}

/// `ps`: the processes that have not been waited for.
pub fn ps(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    writeln!(out, "  pid  address space         program")?;
    for process in process::all() {
        writeln!(out, "{:5}  {:20}  {}", process.pid, process.space.name(), process.path)?;
    }
    Ok(())
}

/// `syscalls`: the system calls programs asked for since boot that no
/// table serves (they got `ENOSYS`): number, Linux's name, how often.
pub fn syscalls(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    let calls = misc::unsupported_calls();
    if calls.is_empty() {
        writeln!(out, "every system call programs made was served")?;
        return Ok(());
    }
    writeln!(out, "   nr  name                      count")?;
    for (number, count) in calls {
        match number {
            Some(number) => writeln!(out, "{number:5}  {:24}  {count}", misc::syscall_name(number).unwrap_or("?"))?,
            None => writeln!(out, "    -  {:24}  {count}", "(512 or above)")?,
        }
    }
    Ok(())
}
