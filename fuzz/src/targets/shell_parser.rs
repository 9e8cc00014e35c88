//! The shell's parsing, fed arbitrary bytes: the line editor, the splitting
//! of scripts into commands and of commands into words, the number and flag
//! parsers and the command dispatcher.
//!
//! None of it may panic. Beyond that:
//! - the editor's line never passes its limit and its cursor stays inside it;
//!   a line it hands over is within the limit, a `TooLong` is over it;
//! - text typed without editing keys (any bytes: UTF-8, invalid UTF-8,
//!   control bytes) arrives whole: the line handed over is exactly the lossy
//!   UTF-8 decoding of the bytes typed, every character kept, or, when that
//!   has more characters than the limit, a `TooLong` counting them all and
//!   no line;
//! - every command a script splits into is trimmed of ASCII whitespace and
//!   non-empty, and, without quotes, its words are exactly its pieces between
//!   ASCII whitespace (nothing dropped, nothing cut);
//! - a number is accepted exactly when an independent reference parser (with
//!   `u128` arithmetic) accepts it, with the same value; an accepted number is
//!   wholly ASCII, made only of digits of its radix, `_`, the `0x` prefix and
//!   one size suffix, and prints back (in decimal) to the same value;
//! - flags are accepted as letters only when every character is one of
//!   [`Protection::LETTERS`] (in either ASCII case) or `-`, and then are the
//!   union of those letters' flags and print back to the same flags; flags
//!   given as a number are that number (the reference parser's).

use crate::input::ByteReader;
use aspace::parse::{parse_number, parse_protection};
use aspace::Protection;
use core::fmt::Write;
use shell::{arg_count, arg_number, arg_protection, split_commands, tokenize, Command, CommandError, EditorEvent};
use shell::{LineEditor, Shell};

/// A short line limit, so that the editor's limit is reached often.
const MAX_LINE: usize = 48;
const HISTORY: usize = 4;

/// The bytes that are keys rather than text: Enter, Backspace, DEL, Ctrl-C,
/// Ctrl-U, ESC.
const KEY_BYTES: [u8; 7] = [b'\r', b'\n', 0x08, 0x7f, 0x03, 0x15, 0x1b];

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

/// The reference number parser, written apart from `parse_number` from its
/// documented rules: an optional `0x`/`0X` prefix (hexadecimal), then ASCII
/// digits of the radix and `_` (at least one digit), then an optional size
/// suffix `k`/`m`/`g`/`t` in either case (powers of 1024), the value fitting
/// in 64 bits. Works on bytes with `u128` arithmetic.
fn reference_number(word: &str) -> Option<u64> {
    let bytes = word.as_bytes();
    let (radix, body): (u128, &[u8]) = match bytes {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        _ => (10, bytes),
    };
    let (body, multiplier): (&[u8], u128) = match body {
        [rest @ .., b'k' | b'K'] => (rest, 1 << 10),
        [rest @ .., b'm' | b'M'] => (rest, 1 << 20),
        [rest @ .., b'g' | b'G'] => (rest, 1 << 30),
        [rest @ .., b't' | b'T'] => (rest, 1 << 40),
        _ => (body, 1),
    };
    let mut value: u128 = 0;
    let mut digits = 0;
    for &byte in body {
        let digit = match byte {
            b'_' => continue,
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' if radix == 16 => byte - b'a' + 10,
            b'A'..=b'F' if radix == 16 => byte - b'A' + 10,
            _ => return None,
        };
        value = value * radix + u128::from(digit);
        if value > u128::from(u64::MAX) {
            return None;
        }
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    u64::try_from(value * multiplier).ok()
}

/// Whether `word`, accepted as a number, is made only of the characters a
/// number may have, each where it may be.
fn number_characters_allowed(word: &str) -> bool {
    let (hex, body) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let body = body.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T']).unwrap_or(body);
    word.is_ascii() && body.chars().all(|c| c == '_' || if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() })
}

/// The reference flag parser for words written as letters: each character
/// one of [`Protection::LETTERS`] (either ASCII case) or `-`, no letter twice.
fn reference_letters(word: &str) -> Option<Protection> {
    let mut prot = Protection::empty();
    for c in word.chars().filter(|&c| c != '-') {
        let lower = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c };
        let &(_, flag) = Protection::LETTERS.iter().find(|(letter, _)| *letter == lower)?;
        if prot.contains(flag) {
            return None;
        }
        prot |= flag;
    }
    Some(prot)
}

/// Parses one word as a number and as flags and checks what parses against
/// the reference parsers.
fn parse_word(word: &str) {
    let number = parse_number(word);
    assert_eq!(number.ok(), reference_number(word), "parse_number({word:?}) = {number:?}, not the reference's");
    if let Ok(value) = number {
        assert!(number_characters_allowed(word), "{word:?} has a character a number may not have");
        assert_eq!(parse_number(&value.to_string()), Ok(value), "{word:?} parsed to {value}");
    }
    let prot = parse_protection(word);
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        let expected = reference_number(word).and_then(|bits| u32::try_from(bits).ok());
        assert_eq!(prot.map(|prot| prot.bits()).ok(), expected, "parse_protection({word:?}) as a number");
    } else if word.is_empty() {
        assert!(prot.is_err(), "empty flags accepted");
    } else {
        assert_eq!(prot.ok(), reference_letters(word), "parse_protection({word:?}) = {prot:?}, not the reference's");
        if let Ok(prot) = prot {
            assert!(
                word.chars()
                    .all(|c| c == '-' || Protection::LETTERS.iter().any(|(letter, _)| c.eq_ignore_ascii_case(letter))),
                "{word:?} has a character that is no flag letter"
            );
            assert_eq!(parse_protection(&prot.to_string()), Ok(prot), "{word:?} parsed to {prot}");
        }
    }
}

/// Checks a script's commands and words.
fn parse_script(script: &str) {
    for command in split_commands(script) {
        assert!(!command.is_empty() && command.trim_ascii() == command, "split gave {command:?}");
        if let Ok(words) = tokenize(command) {
            if !command.contains('"') {
                // Nothing dropped, nothing cut, no split at other whitespace.
                let pieces: Vec<&str> = command.split_ascii_whitespace().collect();
                assert_eq!(words, pieces, "{command:?} tokenized");
            }
            words.iter().for_each(|word| parse_word(word));
        }
    }
}

/// Keeps a sink of output from growing without bound.
fn bound(screen: &mut String) {
    if screen.len() > 1 << 14 {
        screen.clear();
    }
}

/// Every key the bytes make, editing keys included: the line and the cursor
/// stay within bounds, and what the editor hands over is run.
fn type_keys(bytes: &[u8], shell: &Shell<()>, screen: &mut String) {
    let mut editor = LineEditor::with_limits("> ", MAX_LINE, HISTORY);
    editor.show_prompt(screen);
    for &byte in bytes {
        let event = editor.feed(byte, screen);
        let chars = editor.line().chars().count();
        assert!(chars <= MAX_LINE, "the line passed its limit: {:?}", editor.line());
        assert!(editor.cursor() <= chars, "cursor {} past the line", editor.cursor());
        match event {
            Some(EditorEvent::Line(line)) => {
                assert!(line.chars().count() <= MAX_LINE, "a line over the limit was handed over: {line:?}");
                parse_script(&line);
                shell.run_line(&mut (), &line, screen);
                editor.show_prompt(screen);
            }
            Some(EditorEvent::TooLong { typed, limit }) => {
                assert_eq!(limit, MAX_LINE);
                assert!(typed > limit, "TooLong for {typed} characters");
            }
            Some(EditorEvent::Interrupted) | None => {}
        }
        bound(screen);
    }
    assert!(editor.history().len() <= HISTORY);
}

/// Text without editing keys, one line per `\n` of the input (the other key
/// bytes left out), at a limit the input chooses: each line arrives whole,
/// or as a `TooLong` counting every character.
fn type_text(input: &mut ByteReader, rest: &[u8], shell: &Shell<()>, screen: &mut String) {
    let limit = match input.byte() {
        0xff => shell::DEFAULT_MAX_LINE,
        byte => usize::from(byte % 64),
    };
    let mut editor = LineEditor::with_limits("> ", limit, HISTORY);
    editor.show_prompt(screen);
    for piece in rest.split(|&byte| byte == b'\n') {
        let text: Vec<u8> = piece.iter().copied().filter(|byte| !KEY_BYTES.contains(byte)).collect();
        let mut events = Vec::new();
        for &byte in text.iter().chain(b"\r") {
            events.extend(editor.feed(byte, screen));
        }
        let expected = String::from_utf8_lossy(&text).into_owned();
        let typed = expected.chars().count();
        if typed > limit {
            assert_eq!(events, [EditorEvent::TooLong { typed, limit }], "{text:x?} typed at limit {limit}");
        } else {
            assert_eq!(events, [EditorEvent::Line(expected.clone())], "{text:x?} typed at limit {limit}");
            parse_script(&expected);
            shell.run_line(&mut (), &expected, screen);
            editor.show_prompt(screen);
        }
        assert_eq!((editor.line(), editor.cursor(), editor.refused()), ("", 0, 0), "a fresh line after Enter");
        bound(screen);
    }
}

/// Feeds `data` to a line editor and the shell, and parses the text.
pub fn shell_parser(data: &[u8]) {
    let mut input = ByteReader::new(data);
    // The first byte chooses how the rest is used: typed at the editor with
    // editing keys (0 mod 4), typed as plain text whose lines are checked
    // character by character (2 mod 4; the second byte picks the limit), or
    // read as a script (odd).
    let mode = input.byte() % 4;
    let shell = Shell::new(COMMANDS);
    let mut screen = String::new();
    match mode {
        0 => type_keys(&data[data.len().min(1)..], &shell, &mut screen),
        2 => type_text(&mut input, &data[data.len().min(2)..], &shell, &mut screen),
        _ => {
            let rest = &data[data.len().min(1)..];
            let script = String::from_utf8_lossy(rest);
            parse_script(&script);
            let result = shell.run_script(&mut (), &script, &mut screen);
            assert!(result.failed <= result.commands);
            assert_eq!(result.commands, split_commands(&script).len(), "every command is run once");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_number_parser() {
        assert_eq!(reference_number("4k"), Some(4096));
        assert_eq!(reference_number("0x1_000"), Some(4096));
        assert_eq!(reference_number("0X10G"), Some(16 << 30));
        assert_eq!(reference_number("18446744073709551615"), Some(u64::MAX));
        assert_eq!(reference_number("18446744073709551616"), None);
        assert_eq!(reference_number("16777216t"), None);
        assert_eq!(reference_number("16777215t"), Some(16_777_215 << 40));
        for word in ["", "_", "k", "0x", "0xk", "4\u{a0}k", "٤", "4\u{212a}", "0xg_", "+1", "1 "] {
            assert_eq!(reference_number(word), None, "{word:?}");
        }
    }

    #[test]
    fn the_reference_flag_parser() {
        assert_eq!(reference_letters("rW-"), Some(Protection::READ | Protection::WRITE));
        assert_eq!(reference_letters("rr"), None);
        assert_eq!(reference_letters("r\u{a0}"), None);
        assert_eq!(reference_letters("\u{212a}"), None);
    }

    #[test]
    fn plain_text_arrives_whole() {
        // Mode 2, limit 8: a non-breaking space, invalid UTF-8, a control
        // byte, an overlong line, and the key bytes left out.
        shell_parser(b"\x02\x08n 4\xc2\xa0k\nn \xff\xe2\x82 \x01\nf rw\x7f\x1b\n0123456789\n");
        shell_parser(b"\x02\xffn 4k");
    }
}
