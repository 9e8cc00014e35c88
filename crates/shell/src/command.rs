//! The command table and the dispatcher that runs lines and scripts against it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use aspace::AspaceError;

use crate::words::{split_commands, tokenize};

/// The function behind a command: it gets the caller's context, the
/// arguments (the words after the command's name) and somewhere to print.
pub type RunFn<C> = fn(ctx: &mut C, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError>;

/// One entry of a command table, for a context of type `C` (whatever the
/// commands need to reach: the kernel, or a test double).
pub struct Command<C> {
    /// The word that invokes the command.
    pub name: &'static str,
    /// How to call it, shown by `help` and after a [`CommandError::Usage`]:
    /// the name, then the arguments, optional ones in brackets
    /// (`"peek ADDR [LEN]"`).
    pub usage: &'static str,
    /// What it does, in one line, shown by `help`.
    pub help: &'static str,
    /// What runs it.
    pub run: RunFn<C>,
}

// Written by hand: deriving would demand `C: Clone`, which a command, made of
// a function pointer and strings, does not need.
impl<C> Clone for Command<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Command<C> {}

impl<C> fmt::Debug for Command<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command").field("name", &self.name).field("usage", &self.usage).finish_non_exhaustive()
    }
}

/// Why a command did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The arguments are wrong in number or form; the shell prints the
    /// command's usage.
    Usage,
    /// One argument could not be understood.
    BadArgument {
        /// The argument as typed.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The command ran and failed; the message says why.
    Failed(String),
    /// Writing the command's output failed.
    Output,
}

impl CommandError {
    /// A [`CommandError::Failed`] with `message`.
    pub fn failed(message: impl fmt::Display) -> Self {
        CommandError::Failed(message.to_string())
    }

    /// A [`CommandError::BadArgument`] for `arg`, because of `reason`.
    pub fn bad_argument(arg: &str, reason: impl fmt::Display) -> Self {
        CommandError::BadArgument { arg: String::from(arg), reason: reason.to_string() }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Usage => f.write_str("wrong arguments"),
            CommandError::BadArgument { arg, reason } => write!(f, "bad argument '{}': {reason}", Typed(arg)),
            CommandError::Failed(message) => f.write_str(message),
            CommandError::Output => f.write_str("could not write the output"),
        }
    }
}

/// Text the user typed, written back in a message: as it is, except that
/// control characters (which would act on the terminal instead of showing)
/// are written as escapes such as `\u{1b}`. Every character is shown; none
/// is dropped.
pub(crate) struct Typed<'a>(pub(crate) &'a str);

impl fmt::Display for Typed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Lets a command use `?` on `write!`.
impl From<fmt::Error> for CommandError {
    fn from(_: fmt::Error) -> Self {
        CommandError::Output
    }
}

/// Lets a command use `?` on address-space operations.
impl From<AspaceError> for CommandError {
    fn from(error: AspaceError) -> Self {
        CommandError::failed(error)
    }
}

/// How running a line went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// There was no command on the line.
    Empty,
    /// Every command on the line succeeded.
    Succeeded,
    /// At least one command failed (its error was printed).
    Failed,
}

/// How running a script went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptResult {
    /// How many commands were run.
    pub commands: usize,
    /// How many of them failed.
    pub failed: usize,
}

impl ScriptResult {
    /// Whether every command succeeded.
    pub fn succeeded(&self) -> bool {
        self.failed == 0
    }
}

/// The built-in `help` command, handled by the shell itself.
const HELP_NAME: &str = "help";
const HELP_USAGE: &str = "help [COMMAND]";
const HELP_HELP: &str = "list the commands, or show how to use one";

/// A command table and the dispatcher that runs lines against it.
///
/// Output goes to the `out` given to each call, with lines ended by `\n`
/// (a serial console is expected to turn that into `\r\n`). Besides the
/// table's commands the shell understands `help` and `help COMMAND`; a table
/// entry named `help` is never reached.
pub struct Shell<C> {
    commands: Vec<Command<C>>,
    /// What `help NAME` prints after a command's usage and help line, for
    /// the commands that have more to say (their verbs, their flags).
    details: Vec<(&'static str, DetailsFn)>,
}

/// Writes the longer help of one command, for `help NAME`.
pub type DetailsFn = fn(out: &mut dyn Write) -> fmt::Result;

impl<C> Shell<C> {
    /// A shell with the commands of `table`, which may well be a `static`.
    pub fn new(table: &[Command<C>]) -> Self {
        let mut shell = Shell { commands: Vec::new(), details: Vec::new() };
        for &command in table {
            shell.add(command);
        }
        shell
    }

    /// Gives command `name` a longer help: `help NAME` prints its usage and
    /// help line, then what `details` writes (for example, every verb of a
    /// command that takes verbs). Replaces earlier details of that name.
    pub fn set_details(&mut self, name: &'static str, details: DetailsFn) {
        self.details.retain(|(known, _)| *known != name);
        self.details.push((name, details));
    }

    /// Adds `command`, replacing a command of the same name.
    pub fn add(&mut self, command: Command<C>) {
        match self.commands.iter_mut().find(|known| known.name == command.name) {
            Some(known) => *known = command,
            None => self.commands.push(command),
        }
    }

    /// The commands, in the order they were added.
    pub fn commands(&self) -> &[Command<C>] {
        &self.commands
    }

    /// The command called `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<&Command<C>> {
        self.commands.iter().find(|command| command.name == name)
    }

    /// Runs what was typed on one line: one command, or several separated by
    /// `;`, each in turn whatever the previous one did. A command is never
    /// cut short, however long: each gets every character of its part of the
    /// line (only ASCII whitespace around it is trimmed).
    pub fn run_line(&self, ctx: &mut C, line: &str, out: &mut dyn Write) -> Status {
        let mut status = Status::Empty;
        for command in split_commands(line) {
            status = match (status, self.run_command(ctx, command, out)) {
                (Status::Failed, _) | (_, Status::Failed) => Status::Failed,
                (Status::Succeeded, _) | (_, Status::Succeeded) => Status::Succeeded,
                (Status::Empty, Status::Empty) => Status::Empty,
            };
        }
        status
    }

    /// Runs every command of `script` (separated by `;` and line ends), even
    /// after one fails, printing each as `> command` before running it.
    /// Commands are never cut short, however long (see [`Shell::run_line`]).
    pub fn run_script(&self, ctx: &mut C, script: &str, out: &mut dyn Write) -> ScriptResult {
        let mut result = ScriptResult::default();
        for command in split_commands(script) {
            let _ = writeln!(out, "> {command}");
            result.commands += 1;
            if self.run_command(ctx, command, out) == Status::Failed {
                result.failed += 1;
            }
        }
        result
    }

    /// Runs exactly one command (a `;` in it is an ordinary character).
    /// Errors are printed to `out`: the usage after a [`CommandError::Usage`],
    /// `name: message` for the others.
    pub fn run_command(&self, ctx: &mut C, command: &str, out: &mut dyn Write) -> Status {
        let words = match tokenize(command) {
            Ok(words) => words,
            Err(error) => {
                let _ = writeln!(out, "error: {error}");
                return Status::Failed;
            }
        };
        let Some((name, args)) = words.split_first() else { return Status::Empty };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if name == HELP_NAME {
            return self.run_help(&args, out);
        }
        let Some(command) = self.find(name) else {
            let _ = writeln!(out, "unknown command '{}' (try 'help')", Typed(name));
            return Status::Failed;
        };
        match (command.run)(ctx, &args, out) {
            Ok(()) => Status::Succeeded,
            Err(CommandError::Usage) => {
                let _ = writeln!(out, "usage: {}", command.usage);
                Status::Failed
            }
            Err(error) => {
                let _ = writeln!(out, "{name}: {error}");
                Status::Failed
            }
        }
    }

    /// Prints every command with its usage and its one-line help, the help
    /// texts lined up in one column.
    pub fn help(&self, out: &mut dyn Write) {
        let entries = self.commands.iter().map(|c| (c.usage, c.help)).chain([(HELP_USAGE, HELP_HELP)]);
        let width = entries.clone().map(|(usage, _)| usage.chars().count()).max().unwrap_or(0);
        for (usage, help) in entries {
            let _ = writeln!(out, "  {usage:<width$}  {help}");
        }
    }

    /// The built-in `help [COMMAND]`.
    fn run_help(&self, args: &[&str], out: &mut dyn Write) -> Status {
        match args {
            [] => {
                self.help(out);
                Status::Succeeded
            }
            [name] if *name == HELP_NAME => {
                let _ = writeln!(out, "usage: {HELP_USAGE}\n{HELP_HELP}");
                Status::Succeeded
            }
            [name] => match self.find(name) {
                Some(command) => {
                    let _ = writeln!(out, "usage: {}\n{}", command.usage, command.help);
                    if let Some((_, details)) = self.details.iter().find(|(known, _)| *known == command.name) {
                        let _ = details(out);
                    }
                    Status::Succeeded
                }
                None => {
                    let _ = writeln!(out, "unknown command '{}' (try 'help')", Typed(name));
                    Status::Failed
                }
            },
            _ => {
                let _ = writeln!(out, "usage: {HELP_USAGE}");
                Status::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn typed_text_is_written_back_whole_and_harmless() {
        assert_eq!(format!("{}", Typed("4\u{a0}096 é")), "4\u{a0}096 é");
        assert_eq!(format!("{}", Typed("a\x1b[2Jb\0\u{9b}")), "a\\u{1b}[2Jb\\u{0}\\u{9b}");
        let error = CommandError::bad_argument("4\x07k", "no");
        assert_eq!(format!("{error}"), "bad argument '4\\u{7}k': no");
    }
}
