//! The labs: test sequences and benchmarks run from the shell (`pagingTest`,
//! `mmapTest`, `growTest`, `shootdownTest`, `soak`, `bench`). They sit above
//! every other layer: they use the address spaces, threads and TLB code as
//! any client would, and no production module imports them; `kernel_main`
//! adds their commands to the shell ([`COMMANDS`]).

pub mod bench;
pub mod grow_test;
pub mod mmap_test;
pub mod paging_test;
pub mod random;
pub mod shootdown;
pub mod soak;

use crate::shell::Session;
use core::fmt::Write;
use shell::{arg_count, Command, CommandError};

/// The labs' shell commands.
pub static COMMANDS: &[Command<Session>] = &[
    Command {
        name: "pagingTest",
        usage: "pagingTest",
        help: "NK's paging lab test sequence, with fault and TLB checks",
        run: paging_test,
    },
    Command {
        name: "shootdownTest",
        usage: "shootdownTest [broken] [EDITS]",
        help: "readers on every CPU watch a page while a writer edits it; 'broken' disables remote shootdowns",
        run: shootdown_test,
    },
    Command {
        name: "shootdowns",
        usage: "shootdowns on|off",
        help: "a debug switch: 'off' makes every edit flush only the CPU that makes it, to show what a test catches",
        run: shootdowns,
    },
    Command {
        name: "soak",
        usage: "soak SECONDS",
        help: "randomized create/edit/fault/switch/destroy cycles on every CPU; checks verify and frame counts",
        run: soak,
    },
    Command {
        name: "bench",
        usage: "bench [NAME...]",
        help: "time address-space operations (all, or the named ones); prints BENCH lines",
        run: bench,
    },
    Command {
        name: "mmapTest",
        usage: "mmapTest",
        help: "map every initrd file private and shared at every offset, write, refuse bad requests, check frames",
        run: mmap_test,
    },
    Command {
        name: "growTest",
        usage: "growTest",
        help: "anonymous pages read zero and are freed; a grow-down stack grows page by page and overflows cleanly",
        run: grow_test,
    },
];

/// `pagingTest`.
fn paging_test(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    paging_test::run(out).map_err(CommandError::Failed)
}

/// `shootdownTest [broken] [EDITS]`.
fn shootdown_test(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 2)?;
    shootdown::shootdown_test(args, out).map_err(CommandError::Failed)
}

/// `shootdowns on|off`.
fn shootdowns(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let off = match args[0] {
        "on" => false,
        "off" => true,
        other => return Err(CommandError::bad_argument(other, "on or off")),
    };
    crate::tlb::set_remote_shootdowns_disabled(off);
    writeln!(
        out,
        "remote TLB shootdowns {}",
        if off { "off: edits flush only the CPU that makes them" } else { "on" }
    )?;
    Ok(())
}

/// `soak SECONDS`.
fn soak(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let seconds = shell::arg_number(args, 0, "a number of seconds")?;
    if !(1..=soak::MAX_SECONDS).contains(&seconds) {
        return Err(CommandError::bad_argument(
            args[0],
            format_args!("a soak lasts 1 to {} seconds", soak::MAX_SECONDS),
        ));
    }
    soak::soak_command(seconds, out).map_err(CommandError::Failed)
}

/// `bench [NAME...]`.
fn bench(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    if let Some(unknown) = args.iter().find(|name| !bench::names().any(|known| known == **name)) {
        let known: alloc::vec::Vec<&str> = bench::names().collect();
        return Err(CommandError::bad_argument(unknown, format_args!("benchmarks: {}", known.join(" "))));
    }
    bench::run(args, out).map_err(CommandError::Failed)
}

/// `mmapTest`.
fn mmap_test(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    mmap_test::run(out).map_err(CommandError::Failed)
}

/// `growTest`.
fn grow_test(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    grow_test::run(out).map_err(CommandError::Failed)
}
