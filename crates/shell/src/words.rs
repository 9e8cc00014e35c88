//! Cutting a script into commands and a command into words.
//!
//! The rules are deliberately few:
//! - commands are separated by `;` and by line ends; empty commands are skipped;
//! - words are separated by ASCII whitespace (space, tab, line feed, form
//!   feed, carriage return) only: any other character, a non-breaking space
//!   (U+00A0) or another Unicode space included, belongs to the word, so that
//!   `4\u{a0}096` stays one word, which the number parser then refuses,
//!   instead of becoming the two numbers `4` and `096`;
//! - a double-quoted run (`"a b"`) keeps its spaces and `;` inside one word,
//!   and the quotes themselves are dropped, so `"a b"c` is the word `a bc`
//!   and `""` is an empty word. There is no escape character, so a word
//!   cannot contain a double quote.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Splits a script into commands at `;` (outside double quotes) and at line
/// ends, trimming ASCII whitespace from each and skipping the empty ones.
/// Nothing else is removed: every character of a command is kept.
///
/// A line end always ends a command, even inside quotes, so that an
/// unterminated quote spoils only its own command (which then fails to
/// [`tokenize`]) and not the rest of the script.
///
/// ```
/// assert_eq!(shell::split_commands("a; b;c\n\n d x ;;"), ["a", "b", "c", "d x"]);
/// // A non-breaking space is not trimmed: it is part of the command.
/// assert_eq!(shell::split_commands("a\u{a0}; b"), ["a\u{a0}", "b"]);
/// assert_eq!(shell::split_commands(r#"echo "x;y"; z"#), [r#"echo "x;y""#, "z"]);
/// ```
pub fn split_commands(script: &str) -> Vec<&str> {
    let mut commands = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    for (index, c) in script.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if in_quotes => {}
            ';' | '\n' => {
                push_command(&mut commands, &script[start..index]);
                // Both separators are one byte long.
                start = index + 1;
                in_quotes = false;
            }
            _ => {}
        }
    }
    push_command(&mut commands, &script[start..]);
    commands
}

/// Adds `command` with its ASCII whitespace trimmed, unless nothing is left
/// of it.
fn push_command<'a>(commands: &mut Vec<&'a str>, command: &'a str) {
    let command = command.trim_ascii();
    if !command.is_empty() {
        commands.push(command);
    }
}

/// Why a command could not be cut into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizeError {
    /// A double quote opened at `column` (counted in characters from 1) is
    /// never closed.
    UnterminatedQuote {
        /// Where the opening quote is, in characters from the start (1-based).
        column: usize,
    },
}

impl fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizeError::UnterminatedQuote { column } => {
                write!(f, "unterminated quote: the '\"' at column {column} is never closed")
            }
        }
    }
}

/// Cuts a command into words at ASCII whitespace (space, tab, line feed, form
/// feed, carriage return; see [`char::is_ascii_whitespace`]). Every other
/// character is kept in its word: a non-breaking space or another Unicode
/// space does not split, so that `4\u{a0}096` is one word, not two numbers.
///
/// A double-quoted run keeps its whitespace and `;` inside one word, and the
/// quotes themselves are dropped: `"a b"c` is the word `a bc`, and `""` is an
/// empty word. There is no escape character, so a word cannot contain a
/// double quote.
///
/// ```
/// assert_eq!(shell::tokenize(r#"echo "a b"  c"#), Ok(vec!["echo".into(), "a b".into(), "c".into()]));
/// assert_eq!(shell::tokenize("len 4\u{a0}096"), Ok(vec!["len".into(), "4\u{a0}096".into()]));
/// assert_eq!(
///     shell::tokenize(r#"echo "a b"#),
///     Err(shell::TokenizeError::UnterminatedQuote { column: 6 })
/// );
/// ```
pub fn tokenize(command: &str) -> Result<Vec<String>, TokenizeError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started; `""` starts an empty one.
    let mut in_word = false;
    // The column of the quote that opened the current quoted run.
    let mut open_quote: Option<usize> = None;
    for (column, c) in (1..).zip(command.chars()) {
        match (open_quote, c) {
            (Some(_), '"') => open_quote = None,
            (Some(_), _) => word.push(c),
            (None, '"') => {
                open_quote = Some(column);
                in_word = true;
            }
            (None, c) if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(column) = open_quote {
        return Err(TokenizeError::UnterminatedQuote { column });
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &str) -> Vec<String> {
        tokenize(command).expect("tokenizes")
    }

    #[test]
    fn splitting() {
        assert_eq!(split_commands(""), Vec::<&str>::new());
        assert_eq!(split_commands(" ; ;\n\r\n\t"), Vec::<&str>::new());
        assert_eq!(split_commands("a"), ["a"]);
        assert_eq!(split_commands("a;b"), ["a", "b"]);
        assert_eq!(split_commands("a 1 2 ;\r\nb"), ["a 1 2", "b"]);
        assert_eq!(split_commands("x \"1;2\";y"), ["x \"1;2\"", "y"]);
        // The line end closes the quote, so the next line is its own command.
        assert_eq!(split_commands("x \"1;2\ny;z"), ["x \"1;2", "y", "z"]);
        assert_eq!(split_commands("é;ü"), ["é", "ü"]);
    }

    #[test]
    fn only_ascii_whitespace_splits_and_trims() {
        // U+00A0 no-break space, U+2003 em space, U+3000 ideographic space,
        // U+0085 next line, U+2028 line separator: all part of the text.
        for space in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '\u{2028}'] {
            let command = alloc::format!("as rm v 0x1000 4{space}k");
            assert_eq!(words(&command), ["as", "rm", "v", "0x1000", &alloc::format!("4{space}k")], "{space:?}");
            let padded = alloc::format!("{space}x{space}; y");
            let trimmed = alloc::format!("{space}x{space}");
            assert_eq!(split_commands(&padded), [trimmed.as_str(), "y"], "{space:?}");
        }
        assert_eq!(words("4\u{a0}096"), ["4\u{a0}096"]);
        assert_eq!(words("a\x0cb\rc\td e"), ["a", "b", "c", "d", "e"]);
        assert_eq!(split_commands("\x0c\t a \r"), ["a"]);
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("   \t "), Vec::<String>::new());
        assert_eq!(words("peek 0x1000 8"), ["peek", "0x1000", "8"]);
        assert_eq!(words("  a\t\tb  "), ["a", "b"]);
        assert_eq!(words("echo \"a b\""), ["echo", "a b"]);
        assert_eq!(words("\"\""), [""]);
        assert_eq!(words("a \"\" b"), ["a", "", "b"]);
        assert_eq!(words("x\"a b\"y z"), ["xa by", "z"]);
        assert_eq!(words("\"a;b\""), ["a;b"]);
        assert_eq!(words("ünï \"cödé\""), ["ünï", "cödé"]);
    }

    #[test]
    fn unterminated_quote() {
        assert_eq!(tokenize("\""), Err(TokenizeError::UnterminatedQuote { column: 1 }));
        assert_eq!(tokenize("é \"x"), Err(TokenizeError::UnterminatedQuote { column: 3 }));
        assert_eq!(tokenize("\"a\" \"b"), Err(TokenizeError::UnterminatedQuote { column: 5 }));
        let message = alloc::format!("{}", TokenizeError::UnterminatedQuote { column: 5 });
        assert_eq!(message, "unterminated quote: the '\"' at column 5 is never closed");
    }
}
