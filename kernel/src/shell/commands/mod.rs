//! The command table: every command the kernel shell knows, with its usage
//! and one line of help (`help` prints them; `help CMD` one of them).
//!
//! Each command is a function `(session, args, out) -> Result<(), CommandError>`:
//! bad input comes back as a typed error, which the dispatcher prints with
//! the command's usage and counts as a failure. Nothing here panics on
//! input.

mod files;
mod machine;
mod programs;
mod spaces;

use super::session::Session;
use core::fmt::Write;
use shell::{arg_count, Command, CommandError, Shell};

/// Every command, in the order `help` lists them.
static COMMANDS: &[Command<Session>] = &[
    Command { name: "echo", usage: "echo [WORDS...]", help: "print the words", run: echo },
    Command {
        name: "mem",
        usage: "mem [mark | since [SLACK]]",
        help: "frames, heap, and page-table frames in use per address space (mark: remember the free frames; \
               since: fail if more than SLACK fewer are free now)",
        run: machine::mem,
    },
    Command {
        name: "cpus",
        usage: "cpus",
        help: "each CPU: thread, ticks, switches, address space; CPU features in force",
        run: machine::cpus,
    },
    Command {
        name: "threads",
        usage: "threads",
        help: "every thread: id, name, state, CPU, address space",
        run: machine::threads,
    },
    Command {
        name: "peek",
        usage: "peek ADDR [LEN]",
        help: "read LEN bytes (1, 2, 4, or a multiple of 8 up to 4k; default 8) with fault probes",
        run: machine::peek,
    },
    Command {
        name: "poke",
        usage: "poke ADDR VALUE [WIDTH]",
        help: "write VALUE in WIDTH bytes (1, 2, 4 or 8; default 8) with a fault probe",
        run: machine::poke,
    },
    Command {
        name: "touch",
        usage: "touch ADDR",
        help: "read 8 bytes without a probe: an unhandled fault stops the kernel with its full report",
        run: machine::touch,
    },
    Command {
        name: "crash",
        usage: "crash doublefault",
        help: "raise a real double fault: its report (on the #DF stack) stops the kernel with a failing status",
        run: machine::crash,
    },
    Command { name: "asis", usage: "asis", help: "the address-space implementations", run: spaces::asis },
    Command {
        name: "ases",
        usage: "ases [d]",
        help: "every address space (d: with its regions and counters)",
        run: spaces::ases,
    },
    Command {
        name: "as",
        usage: "as VERB ARGS...",
        help: "drive an address space by hand ('as' alone lists the verbs)",
        run: spaces::as_command,
    },
    Command {
        name: "ptdump",
        usage: "ptdump NAME [VA [LEN]]",
        help: "page tables of NAME as runs of equal attributes (VA alone: the run mapping VA)",
        run: spaces::ptdump,
    },
    Command {
        name: "tlbstat",
        usage: "tlbstat",
        help: "per-CPU TLB counters: shootdowns sent and received, pages invalidated, full flushes, wait time; \
               the shootdown IPIs sent for each address space",
        run: tlb_stats,
    },
    Command { name: "ls", usage: "ls", help: "the files of the initrd, with their sizes", run: files::ls },
    Command { name: "cat", usage: "cat FILE", help: "print a file of the initrd", run: files::cat },
    Command {
        name: "stat",
        usage: "stat FILE",
        help: "a file's size, the physical address of its data, and whether it is page-aligned",
        run: files::stat,
    },
    Command {
        name: "elf",
        usage: "elf FILE",
        help: "the load plan of a static x86-64 Linux executable in the initrd: kind, entry, segments, break",
        run: files::elf,
    },
    Command {
        name: "run",
        usage: "run PATH [ARGS...]",
        help: "run a static x86-64 Linux program from the initrd (/bin/NAME) in a process of its own; wait for it",
        run: programs::run,
    },
    Command {
        name: "runall",
        usage: "runall [-t SECS] DIR",
        help: "run every program of an initrd folder (/bin) in name order, each with a time limit \
               (default 60 s): PASS/FAIL per program, then N passed, M failed",
        run: programs::runall,
    },
    Command {
        name: "ps",
        usage: "ps",
        help: "the processes: pid, state (R running, T stopped, Z ended), address space, program",
        run: programs::ps,
    },
    Command {
        name: "syscalls",
        usage: "syscalls",
        help: "the system calls programs asked for and did not get (ENOSYS): number, name, count",
        run: programs::syscalls,
    },
    Command {
        name: "mmap",
        usage: "mmap NAME FILE VA [OFFSET LEN] [FLAGS] [shared]",
        help: "map a file (or LEN bytes from OFFSET) at VA in NAME, lazily; private copies by default, \
               'shared' maps the initrd's frames read-only (flags: r w x e; k is implied)",
        run: files::mmap_command,
    },
    Command {
        name: "munmap",
        usage: "munmap NAME VA",
        help: "remove the mapping that starts at VA in NAME and free its frames",
        run: files::munmap_command,
    },
    Command {
        name: "poweroff",
        usage: "poweroff",
        help: "leave QEMU (scripted: with the status so far)",
        run: poweroff,
    },
];

/// Commands that the layers above the shell add to it (the labs), given
/// once at boot by `kernel_main`: the shell itself never imports them.
static MORE_COMMANDS: spin::Once<&'static [Command<Session>]> = spin::Once::new();

/// Adds `commands` to every shell's table, after the kernel's own (once, at boot).
pub fn add_commands(commands: &'static [Command<Session>]) {
    MORE_COMMANDS.call_once(|| commands);
}

/// A dispatcher over the kernel's command table and the commands added at
/// boot (it adds `help`).
pub fn table() -> Shell<Session> {
    let mut shell = Shell::new(COMMANDS);
    for &command in MORE_COMMANDS.get().copied().unwrap_or_default() {
        shell.add(command);
    }
    shell.set_details("as", spaces::describe_verbs);
    shell
}

/// `echo [WORDS...]`.
fn echo(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    writeln!(out, "{}", args.join(" "))?;
    Ok(())
}

/// `tlbstat`: the per-CPU counters, then the shootdown IPIs sent for each
/// address space (a process's is named after it).
fn tlb_stats(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    crate::tlb::format_tlb_stats(out)?;
    writeln!(out, "shootdown IPIs sent, by address space:")?;
    for space in crate::address_space::all() {
        let root = crate::shell::session::with_paging(&space.lock(), |paging| paging.root());
        if let Some(Some(root)) = root {
            writeln!(out, "  {:<24} {}", space.name(), crate::tlb::space_ipis(root.as_u64()))?;
        }
    }
    let others = crate::tlb::other_spaces_ipis();
    if others > 0 {
        writeln!(out, "  (spaces past the first 64) {others}")?;
    }
    Ok(())
}

/// `poweroff`.
fn poweroff(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    writeln!(out, "powering off")?;
    super::input::power_off()
}
