//! The shell's program commands: `run PATH [ARGS...]` runs a static Linux
//! program in a process of its own and waits for it (Ctrl-C on the console
//! sends its process group `SIGINT`); `runall [-t SECS] DIR` runs every
//! program of an initrd folder, one after the other, each with a time
//! limit; `ps` lists the processes; `syscalls` lists the system calls
//! programs asked for and did not get.

use crate::shell::session::Session;
use crate::user::misc;
use crate::user::process::{self, ExitStatus};
use crate::user::supervise::{self, Ending};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use shell::{arg_count, CommandError};

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
    let Ending::Ended { status, fault } = supervise::wait(running, None, out) else {
        return Err(CommandError::failed(alloc::format!("{} (pid {pid}) did not end", args[0])));
    };
    match (status, fault) {
        (ExitStatus::Killed { .. }, Some(fault)) => writeln!(out, "{status}: {fault}")?,
        _ => writeln!(out, "{status}")?,
    }
    match status {
        ExitStatus::Exited(0) => Ok(()),
        _ => Err(CommandError::failed(alloc::format!("{} (pid {pid}) did not exit with 0", args[0]))),
    }
}

/// The time limit of each program of `runall` unless `-t` gives another.
pub const RUNALL_DEFAULT_SECS: u64 = 60;
/// The longest time limit `runall -t` takes (a day).
pub const RUNALL_MAX_SECS: u64 = 86_400;

/// What `runall [-t SECS] DIR` was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAll<'a> {
    /// Each program's time limit, in seconds.
    pub limit_secs: u64,
    /// The initrd folder, without leading or trailing slashes (`bin`).
    pub dir: &'a str,
}

impl<'a> RunAll<'a> {
    /// Parses the arguments of `runall`: `DIR` or `-t SECS DIR`, SECS a
    /// whole number of seconds from 1 to [`RUNALL_MAX_SECS`].
    pub fn parse(args: &[&'a str]) -> Result<RunAll<'a>, CommandError> {
        let (limit_secs, dir) = match args {
            [dir] if !dir.starts_with('-') => (RUNALL_DEFAULT_SECS, *dir),
            ["-t", secs, dir] => {
                let limit =
                    secs.parse::<u64>().ok().filter(|secs| (1..=RUNALL_MAX_SECS).contains(secs)).ok_or_else(|| {
                        CommandError::bad_argument(secs, alloc::format!("seconds from 1 to {RUNALL_MAX_SECS}"))
                    })?;
                (limit, *dir)
            }
            [first, ..] if first.starts_with('-') && *first != "-t" => {
                return Err(CommandError::bad_argument(first, "the only option is -t SECS"))
            }
            _ => {
                arg_count(args, 1, 3)?;
                return Err(CommandError::bad_argument(args[0], "expected DIR or -t SECS DIR"));
            }
        };
        let dir = dir.trim_matches('/');
        if dir.is_empty() {
            return Err(CommandError::bad_argument("/", "name a folder of the initrd (such as /bin)"));
        }
        Ok(RunAll { limit_secs, dir })
    }

    /// The initrd files directly in the folder, in name order.
    pub fn programs(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = crate::fs::files()
            .iter()
            .filter_map(|file| file.name().strip_prefix(self.dir)?.strip_prefix('/'))
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .collect();
        names.sort_unstable();
        names
    }
}

/// `runall [-t SECS] DIR`: runs every program directly in the initrd folder
/// DIR (`/bin`) in name order, without arguments, one at a time, each with
/// a time limit of SECS seconds (default [`RUNALL_DEFAULT_SECS`]); prints
/// a line per program (`PASS name (exit 0, 0.12 s)`, `FAIL name (killed by
/// SIGSEGV, 0.02 s)`, `FAIL name (timed out after 60 s)`) and then `N
/// passed, M failed`. A program past its limit is sent `SIGKILL` (with its
/// process group) and reaped. Fails when any program failed, or when the
/// folder holds no file.
pub fn runall(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    let request = RunAll::parse(args)?;
    let programs = request.programs();
    if programs.is_empty() {
        return Err(CommandError::failed(alloc::format!("no files in /{} of the initrd (see ls)", request.dir)));
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for name in programs {
        let path = alloc::format!("/{}/{name}", request.dir);
        let (pass, verdict) = run_one(&path, request.limit_secs, out);
        writeln!(out, "{} {name} ({verdict})", if pass { "PASS" } else { "FAIL" })?;
        if pass {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    if failed == 0 {
        Ok(())
    } else {
        Err(CommandError::failed(alloc::format!("{failed} of {} failed", passed + failed)))
    }
}

/// Runs the program at `path` for `runall`: whether it passed, and how it ended in words.
fn run_one(path: &str, limit_secs: u64, out: &mut dyn Write) -> (bool, String) {
    let start = crate::arch::tsc::nanos_since_boot();
    let running = match process::spawn(path, &[path.as_bytes()]) {
        Ok(running) => running,
        Err(error) => return (false, alloc::format!("cannot run: {error} (errno {})", error.errno().name())),
    };
    let ending = supervise::wait(running, Some(limit_secs * 1000), out);
    let millis = (crate::arch::tsc::nanos_since_boot() - start) / 1_000_000;
    let took = alloc::format!("{}.{:02} s", millis / 1000, millis % 1000 / 10);
    match ending {
        Ending::Ended { status: ExitStatus::Exited(code), .. } => (code == 0, alloc::format!("exit {code}, {took}")),
        Ending::Ended { status: ExitStatus::Killed { info, .. }, .. } => {
            (false, alloc::format!("killed by {}, {took}", info.signal.name()))
        }
        Ending::TimedOut => (false, alloc::format!("timed out after {limit_secs} s")),
        Ending::Unkillable => (
            false,
            alloc::format!(
                "timed out after {limit_secs} s; still there {} s after SIGKILL, left behind",
                supervise::KILL_GRACE_MS / 1000
            ),
        ),
    }
}

/// `ps`: the processes that have not been waited for, each with its state:
/// `R` (running or ready), `T` (stopped), `Z` (ended, not reaped yet).
pub fn ps(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    writeln!(out, "  pid  state  address space         program")?;
    for process in process::all() {
        let state = {
            let state = process.state.lock();
            if state.ended {
                "Z"
            } else if state.job.stopped {
                "T"
            } else {
                "R"
            }
        };
        writeln!(out, "{:5}  {state:5}  {:20}  {}", process.pid, process.space.name(), process.path)?;
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
