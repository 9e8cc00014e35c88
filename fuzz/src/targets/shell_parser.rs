//! The shell's parsing, fed arbitrary bytes: the line editor, the splitting
//! of scripts into commands and of commands into words, the number and flag
//! parsers and the command dispatcher.
//!
//! None of it may panic. Beyond that: the editor's line never passes its
//! limit and its cursor stays inside it; every command a script splits into
//! is trimmed and non-empty; a number that parses prints back (in decimal) to
//! a word that parses to the same number; flags written as letters print
//! back to a word that parses to the same flags.

use crate::input::ByteReader;
use aspace::parse::{parse_number, parse_protection};
use core::fmt::Write;
use shell::{arg_count, arg_number, arg_protection, split_commands, tokenize, Command, CommandError, EditorEvent};
use shell::{LineEditor, Shell};

/// A short line limit, so that the editor's limit is reached often.
const MAX_LINE: usize = 48;
const HISTORY: usize = 4;

fn number(_: &mut (), args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 2)?;
    let value = arg_number(args, 0, "value")?;
    writeln!(out, "{value:#x}")?;
    Ok(())
}

fn flags(_: &mut (), args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let prot = arg_protection(args, 0)?;
    writeln!(out, "{prot}")?;
    Ok(())
}

static COMMANDS: &[Command<()>] = &[
    Command { name: "n", usage: "n VALUE [X]", help: "print a number", run: number },
    Command { name: "f", usage: "f FLAGS", help: "print flags", run: flags },
];

/// Parses one word as a number and as flags and checks what parses.
fn parse_word(word: &str) {
    if let Ok(value) = parse_number(word) {
        assert_eq!(parse_number(&value.to_string()), Ok(value), "{word:?} parsed to {value}");
    }
    if let Ok(prot) = parse_protection(word) {
        let written_as_letters = !word.starts_with(|c: char| c.is_ascii_digit());
        if written_as_letters {
            assert_eq!(parse_protection(&prot.to_string()), Ok(prot), "{word:?} parsed to {prot}");
        }
    }
}

/// Checks a script's commands and words.
fn parse_script(script: &str) {
    for command in split_commands(script) {
        assert!(!command.is_empty() && command.trim() == command, "split gave {command:?}");
        if let Ok(words) = tokenize(command) {
            words.iter().for_each(|word| parse_word(word));
        }
    }
}

/// Feeds `data` to a line editor and the shell, and parses the text.
pub fn shell_parser(data: &[u8]) {
    let mut input = ByteReader::new(data);
    // The first byte chooses how the rest is used: all of it typed at the
    // editor, or read as a script.
    let typed = input.one_in(2);
    let rest = &data[data.len().min(1)..];
    let shell = Shell::new(COMMANDS);
    let mut screen = String::new();
    if typed {
        let mut editor = LineEditor::with_limits("> ", MAX_LINE, HISTORY);
        editor.show_prompt(&mut screen);
        for &byte in rest {
            let event = editor.feed(byte, &mut screen);
            assert!(editor.line().chars().count() <= MAX_LINE, "the line passed its limit: {:?}", editor.line());
            assert!(editor.cursor() <= editor.line().chars().count(), "cursor {} past the line", editor.cursor());
            if let Some(EditorEvent::Line(line)) = event {
                parse_script(&line);
                shell.run_line(&mut (), &line, &mut screen);
                editor.show_prompt(&mut screen);
            }
            // The screen is a sink: keep it from growing without bound.
            if screen.len() > 1 << 14 {
                screen.clear();
            }
        }
        assert!(editor.history().len() <= HISTORY);
    } else {
        let script = String::from_utf8_lossy(rest);
        parse_script(&script);
        let result = shell.run_script(&mut (), &script, &mut screen);
        assert!(result.failed <= result.commands);
        assert_eq!(result.commands, split_commands(&script).len(), "every command is run once");
    }
}
