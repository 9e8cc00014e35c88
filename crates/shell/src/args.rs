//! Small helpers that read a command's arguments, so that every command
//! reports a missing or malformed argument the same way.
//!
//! `index` counts the arguments after the command's name from 0. A missing
//! argument is a [`CommandError::Usage`]; one that does not parse is a
//! [`CommandError::BadArgument`] naming what was expected.

use aspace::parse::{parse_number, parse_protection};
use aspace::Protection;

use crate::command::CommandError;

/// Checks that there are between `min` and `max` arguments (inclusive).
pub fn arg_count(args: &[&str], min: usize, max: usize) -> Result<(), CommandError> {
    if (min..=max).contains(&args.len()) {
        Ok(())
    } else {
        Err(CommandError::Usage)
    }
}

/// The argument at `index`, as typed.
pub fn arg<'a>(args: &[&'a str], index: usize) -> Result<&'a str, CommandError> {
    args.get(index).copied().ok_or(CommandError::Usage)
}

/// The argument at `index` read as a number (decimal, `0x` hexadecimal,
/// `k`/`m`/`g`/`t` suffixes, ASCII only; see [`parse_number`]). `what` names
/// the value for the error message: `"address"`, `"length"`. The error names
/// the whole argument as typed and the first character that does not belong:
/// `bad argument '4\u{a0}k': not a valid length: unexpected character U+00A0
/// in number`.
pub fn arg_number(args: &[&str], index: usize, what: &str) -> Result<u64, CommandError> {
    let word = arg(args, index)?;
    parse_number(word).map_err(|error| CommandError::bad_argument(word, format_args!("not a valid {what}: {error}")))
}

/// Like [`arg_number`], but an absent argument gives `default`, for
/// optional arguments such as the `[LEN]` of `peek ADDR [LEN]`.
pub fn arg_number_or(args: &[&str], index: usize, what: &str, default: u64) -> Result<u64, CommandError> {
    if index < args.len() {
        arg_number(args, index, what)
    } else {
        Ok(default)
    }
}

/// The argument at `index` read as protection flags (`rwx`, `rw-pk`, or a
/// number; see [`parse_protection`]).
pub fn arg_protection(args: &[&str], index: usize) -> Result<Protection, CommandError> {
    let word = arg(args, index)?;
    parse_protection(word)
        .map_err(|error| CommandError::bad_argument(word, format_args!("not a valid protection: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn bad(arg: &str, reason: &str) -> CommandError {
        CommandError::BadArgument { arg: String::from(arg), reason: String::from(reason) }
    }

    #[test]
    fn counts() {
        assert_eq!(arg_count(&[], 0, 0), Ok(()));
        assert_eq!(arg_count(&["a"], 0, 0), Err(CommandError::Usage));
        assert_eq!(arg_count(&["a"], 1, 2), Ok(()));
        assert_eq!(arg_count(&["a", "b"], 1, 2), Ok(()));
        assert_eq!(arg_count(&["a", "b", "c"], 1, 2), Err(CommandError::Usage));
        assert_eq!(arg_count(&[], 1, 2), Err(CommandError::Usage));
        assert_eq!(arg_count(&["a"], 2, 1), Err(CommandError::Usage));
    }

    #[test]
    fn words() {
        assert_eq!(arg(&["x", "y"], 1), Ok("y"));
        assert_eq!(arg(&["x"], 1), Err(CommandError::Usage));
    }

    #[test]
    fn numbers() {
        let args = ["0x1000", "4k", "zz", ""];
        assert_eq!(arg_number(&args, 0, "address"), Ok(0x1000));
        assert_eq!(arg_number(&args, 1, "length"), Ok(4096));
        assert_eq!(
            arg_number(&args, 2, "length"),
            Err(bad("zz", "not a valid length: unexpected character 'z' in number"))
        );
        assert_eq!(arg_number(&args, 3, "address"), Err(bad("", "not a valid address: empty number")));
        assert_eq!(arg_number(&args, 4, "address"), Err(CommandError::Usage));
        assert_eq!(arg_number_or(&args, 1, "length", 8), Ok(4096));
        assert_eq!(arg_number_or(&args, 4, "length", 8), Ok(8));
        assert!(matches!(arg_number_or(&args, 2, "length", 8), Err(CommandError::BadArgument { .. })));
    }

    #[test]
    fn a_stray_character_names_the_whole_word_and_the_character() {
        let args = ["4\u{a0}096", "4\u{a0}k", "٤k", "4\u{212a}", "0x1000\u{fffd}"];
        let reasons = [
            "not a valid length: unexpected character U+00A0 in number",
            "not a valid length: unexpected character U+00A0 in number",
            "not a valid length: unexpected character '٤' (U+0664) in number",
            "not a valid length: unexpected character '\u{212a}' (U+212A) in number",
            "not a valid length: unexpected character U+FFFD in number",
        ];
        for (index, (word, reason)) in args.iter().zip(reasons).enumerate() {
            assert_eq!(arg_number(&args, index, "length"), Err(bad(word, reason)), "{word:?}");
        }
        let message = alloc::format!("{}", arg_number(&args, 0, "length").unwrap_err());
        assert_eq!(message, "bad argument '4\u{a0}096': not a valid length: unexpected character U+00A0 in number");
    }

    #[test]
    fn protections() {
        let args = ["rw", "rq", "0x5"];
        assert_eq!(arg_protection(&args, 0), Ok(Protection::READ | Protection::WRITE));
        let letters: String = Protection::LETTERS.iter().map(|(letter, _)| alloc::format!(" {letter}")).collect();
        assert_eq!(
            arg_protection(&args, 1),
            Err(bad("rq", &alloc::format!("not a valid protection: unknown flag 'q' (flags are{letters})")))
        );
        assert_eq!(arg_protection(&args, 2), Ok(Protection::READ | Protection::EXEC));
        assert_eq!(arg_protection(&args, 3), Err(CommandError::Usage));
    }
}
