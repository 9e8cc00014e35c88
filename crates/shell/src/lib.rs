//! # shell: the part of Nacre's shell that needs no kernel
//!
//! Three pieces, each usable alone and all testable on the host:
//!
//! - [`LineEditor`] turns the bytes typed on a serial console into lines,
//!   echoing and redrawing as it goes (insertion anywhere in the line,
//!   backspace and delete, arrows, Home and End, Ctrl-C, Ctrl-U, and a
//!   bounded [`History`] walked with up and down). It decodes UTF-8 and keeps
//!   every character typed, so a line is exactly what was typed: a
//!   non-breaking space or a Unicode digit stays in it (and then makes a
//!   number fail to parse), a control byte that names no key is kept and
//!   shown as its control picture, and bytes that are not valid UTF-8 become
//!   U+FFFD. The cursor moves by characters, one screen column each.
//! - Lines have at most [`DEFAULT_MAX_LINE`] (4096) characters unless the
//!   editor is made with another limit. Typing past the limit rings the
//!   bell; Enter on such a line hands nothing over: the editor prints
//!   `line too long: N characters typed, the limit is 4096; nothing was run`
//!   and a fresh prompt and returns [`EditorEvent::TooLong`], so that a
//!   command cut short never runs.
//! - [`split_commands`] and [`tokenize`] cut a script into commands (at `;`
//!   and line ends) and a command into words (at ASCII whitespace only, with
//!   double-quoted words); nothing is dropped or cut, whatever the length, so
//!   `4\u{a0}096` stays one word.
//! - [`Shell`] runs lines and scripts against a table of [`Command`]s,
//!   printing usage and errors the same way for every command; the helpers
//!   [`arg_number`], [`arg_protection`] and friends read arguments so that
//!   every command reports bad ones alike.
//!
//! Nothing here panics, whatever bytes or text it is given.
//!
//! ## Wiring a command table
//!
//! Commands are plain functions over a context of the caller's choosing (the
//! kernel's, or a test double's):
//!
//! ```
//! use core::fmt::Write;
//! use shell::{arg_count, arg_number, Command, CommandError, Shell};
//!
//! /// What the commands act on.
//! struct Counter {
//!     total: u64,
//! }
//!
//! fn add(counter: &mut Counter, args: &[&str], _out: &mut dyn Write) -> Result<(), CommandError> {
//!     arg_count(args, 1, 1)?;
//!     let amount = arg_number(args, 0, "amount")?;
//!     counter.total = counter.total.checked_add(amount).ok_or(CommandError::failed("the total overflows"))?;
//!     Ok(())
//! }
//!
//! fn show(counter: &mut Counter, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
//!     arg_count(args, 0, 0)?;
//!     writeln!(out, "total {}", counter.total)?;
//!     Ok(())
//! }
//!
//! static COMMANDS: &[Command<Counter>] = &[
//!     Command { name: "add", usage: "add AMOUNT", help: "add AMOUNT to the total", run: add },
//!     Command { name: "show", usage: "show", help: "print the total", run: show },
//! ];
//!
//! let shell = Shell::new(COMMANDS);
//! let mut counter = Counter { total: 0 };
//! let mut out = String::new();
//! let result = shell.run_script(&mut counter, "add 4k; add zz\nadd\nshow", &mut out);
//! assert_eq!((result.commands, result.failed), (4, 2));
//! assert_eq!(
//!     out,
//!     "> add 4k\n\
//!      > add zz\n\
//!      add: bad argument 'zz': not a valid amount: unexpected character 'z' in number\n\
//!      > add\n\
//!      usage: add AMOUNT\n\
//!      > show\n\
//!      total 4096\n"
//! );
//! ```
//!
//! On the console, the editor hands finished lines to the shell:
//!
//! ```
//! # use core::fmt::Write;
//! # use shell::{Command, CommandError, EditorEvent, LineEditor, Shell};
//! # fn hello(_: &mut (), _: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
//! #     Ok(writeln!(out, "hello")?)
//! # }
//! let shell = Shell::new(&[Command { name: "hello", usage: "hello", help: "greet", run: hello }]);
//! let mut editor = LineEditor::new("nacre> ");
//! let mut console = String::new(); // stands for the serial port
//! editor.show_prompt(&mut console);
//! for &byte in b"hello\r" {
//!     match editor.feed(byte, &mut console) {
//!         Some(EditorEvent::Line(line)) => {
//!             shell.run_line(&mut (), &line, &mut console);
//!             editor.show_prompt(&mut console);
//!         }
//!         // The editor has said why and prompted again: nothing to run.
//!         Some(EditorEvent::Interrupted | EditorEvent::TooLong { .. }) | None => {}
//!     }
//! }
//! assert_eq!(console, "nacre> hello\r\nhello\nnacre> ");
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod args;
mod command;
mod editor;
mod history;
mod keys;
mod words;

pub use args::{arg, arg_count, arg_number, arg_number_or, arg_protection};
pub use command::{Command, CommandError, DetailsFn, RunFn, ScriptResult, Shell, Status};
pub use editor::{EditorEvent, LineEditor, DEFAULT_HISTORY, DEFAULT_MAX_LINE};
pub use history::History;
pub use words::{split_commands, tokenize, TokenizeError};
