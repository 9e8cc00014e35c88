//! The kernel shell: the command table of `crates/shell` wired to the
//! console, the kernel's commands, and the shell test at startup.
//!
//! Shells nest. The root shell, `shell`, runs in a thread of its own from
//! boot; `shell NAME` starts another in a new thread, which owns the console
//! until `exit` while its parent waits. Every shell, as it starts, runs the
//! startup test ([`startup`]): it builds an address space named after itself
//! and moves in; on `exit` it leaves that address space and destroys it.
//!
//! The pieces:
//! - [`input`]: the console, read through the line editor or from the
//!   script (`script=` on the kernel command line, or with `script=@NAME`
//!   the initrd file it names), and the script's status;
//! - [`session`]: one shell's state, what every command gets;
//! - [`commands`]: the command table (`help` lists it);
//! - [`startup`]: the startup test;
//! - this file: the shells themselves, and the two commands that start and
//!   end one (`shell`, `exit`), which sit above the command table.

mod commands;
pub mod input;
pub mod session;
pub mod startup;

use crate::address_space;
use crate::cmdline::ShellTest;
use crate::thread;
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use input::{Console, ConsoleInput};
use shell::{arg_count, Command, CommandError, Shell};

pub use commands::add_commands;
pub use session::Session;

/// The name of the shell started at boot.
pub const ROOT_NAME: &str = "shell";

/// What the startup test of every shell does, set once at boot.
static SHELL_TEST: spin::Once<ShellTest> = spin::Once::new();

/// Starts the root shell and waits for it; it never ends by itself (its
/// `exit` is refused), so this returns only by powering off. With `script`
/// (the text of `script=`: commands, or `@NAME` for an initrd file of
/// them), the shells run those commands, then the kernel powers off with
/// their status; without, they read the serial console. A script file that
/// cannot be read powers off at once with a failing status.
pub fn run(script: Option<&str>, shell_test: ShellTest) -> ! {
    SHELL_TEST.call_once(|| shell_test);
    if let Some(script) = script {
        match crate::cmdline::script_commands(script) {
            Ok(commands) => {
                if let crate::cmdline::ScriptSource::File(name) = crate::cmdline::ScriptSource::of(script) {
                    log::info!("script: {} bytes from the initrd file '{name}'", commands.len());
                }
                input::start_script(commands)
            }
            Err(message) => {
                crate::println!("{message}");
                crate::qemu::exit(crate::qemu::ExitStatus::Failure)
            }
        }
    }
    let root = thread::spawn(ROOT_NAME, || serve(ROOT_NAME, true));
    root.join();
    input::power_off()
}

/// Starts a nested shell called `name` in a thread of its own and waits
/// until it exits (the `shell` command).
fn run_nested(name: &str) -> u64 {
    let owned_name = String::from(name);
    thread::spawn(name, move || serve(&owned_name, false)).join()
}

/// The body of a shell's thread: the startup test, then commands until
/// `exit`, then leaving and destroying its address space.
fn serve(name: &str, is_root: bool) -> u64 {
    let mut session = Session::new(name, is_root);
    let mode = SHELL_TEST.get().copied().unwrap_or(ShellTest::Large);
    let outcome = startup::run(name, mode, &mut Console);
    if outcome.failed {
        input::record_failure();
    }
    session.own_space = outcome.space;

    let commands = table();
    let prompt = if is_root { String::from("nacre> ") } else { format!("nacre:{name}> ") };
    let mut input = ConsoleInput::new(&prompt);
    while !session.exit_requested {
        let line = input.next_line();
        let status = commands.run_line(&mut session, &line, &mut Console);
        input::record(status);
    }
    leave(&session, &mut Console);
    0
}

/// What a shell does on `exit`: its thread goes back to the default address
/// space, and the address space it made is destroyed.
fn leave(session: &Session, out: &mut dyn Write) {
    if let Err(error) = address_space::move_current_thread(None) {
        let _ = writeln!(out, "{}: cannot go back to the default address space: {error}", session.name);
    }
    let Some(space) = &session.own_space else { return };
    // It may have been destroyed by hand already (and the name reused).
    if address_space::by_id(space.id()).is_none() {
        return;
    }
    match address_space::destroy(space.name()) {
        Ok(()) => {
            let _ = writeln!(out, "{}: left and destroyed address space '{}'", session.name, space.name());
        }
        Err(error) => {
            let _ = writeln!(out, "{}: cannot destroy address space '{}': {error}", session.name, space.name());
        }
    }
}

/// The commands that start and end a shell, above the command table.
static NESTING: &[Command<Session>] = &[
    Command {
        name: "shell",
        usage: "shell [NAME]",
        help: "start a nested shell in its own new address space (default name shellN)",
        run: nested_shell,
    },
    Command { name: "exit", usage: "exit", help: "leave a nested shell (its address space is destroyed)", run: exit },
];

/// A dispatcher over every command: the kernel's table, the commands added
/// at boot, and `shell` and `exit` (it adds `help`).
pub fn table() -> Shell<Session> {
    let mut table = commands::table();
    for &command in NESTING {
        table.add(command);
    }
    table
}

/// `shell [NAME]`: runs a nested shell until it exits.
fn nested_shell(session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 1)?;
    let name = match args.first() {
        Some(name) => {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(CommandError::bad_argument(name, "a shell name is a non-empty word"));
            }
            alloc::string::String::from(*name)
        }
        None => unused_shell_name(),
    };
    writeln!(out, "{}: starting shell '{name}'; it has the console until 'exit'", session.name())?;
    run_nested(&name);
    writeln!(out, "{}: shell '{name}' has exited; back in '{}'", session.name(), session.name())?;
    Ok(())
}

/// `shell1`, `shell2`, ...: the first that names no address space.
fn unused_shell_name() -> alloc::string::String {
    (1..)
        .map(|n| alloc::format!("shell{n}"))
        .find(|name| crate::address_space::find(name).is_err())
        .expect("some shellN is free")
}

/// `exit`.
fn exit(session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    if session.is_root {
        return Err(CommandError::failed("this is the root shell, which cannot exit (use 'poweroff')"));
    }
    writeln!(out, "{}: exiting", session.name())?;
    session.exit_requested = true;
    Ok(())
}
