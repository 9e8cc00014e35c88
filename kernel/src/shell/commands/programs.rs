//! The shell's program commands: `run PATH [ARGS...]` runs a static Linux
//! program in a process of its own and waits for it; `ps` lists the
//! processes.

use crate::shell::session::Session;
use crate::user::process::{self, ExitStatus};
use alloc::vec::Vec;
use core::fmt::Write;
use shell::{arg_count, CommandError};

/// `run PATH [ARGS...]`: starts the program (`argv[0]` is PATH), waits for
/// it, and prints how it ended ("exit 0", "killed by SIGSEGV (...)"). Fails
/// unless it exited with status 0, so a script stops counting on it.
pub fn run(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, usize::MAX)?;
    let argv: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    let running = process::spawn(args[0], &argv).map_err(|error| {
        CommandError::failed(alloc::format!("{}: cannot run: {error} (errno {})", args[0], error.errno().name()))
    })?;
    let pid = running.process.pid;
    let status = process::wait(running);
    writeln!(out, "{status}")?;
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
