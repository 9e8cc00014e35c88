//! Parsing of the numbers and flags that people type (the shell's `as` verbs).
//!
//! Only ASCII is ever accepted: a Unicode digit (`٤`, `４`), a look-alike
//! letter (the Kelvin sign `K`, a fullwidth `ｋ`) or a non-breaking space is
//! refused and named in the error, never read as something else or skipped.

use core::fmt;

use crate::Protection;

/// Why a word could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing to parse.
    Empty,
    /// A character that does not belong (the first one, reading from the left).
    BadDigit(char),
    /// The value does not fit in 64 bits.
    TooLarge,
    /// A character that is not one of the flag letters of
    /// [`Protection::LETTERS`] (nor `-`).
    UnknownFlag(char),
    /// The same flag letter twice.
    RepeatedFlag(char),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty number"),
            ParseError::BadDigit(c) => write!(f, "unexpected character {} in number", CharName(*c)),
            ParseError::TooLarge => f.write_str("number does not fit in 64 bits"),
            ParseError::UnknownFlag(c) => {
                write!(f, "unknown flag {} (flags are", CharName(*c))?;
                for (letter, _) in Protection::LETTERS {
                    write!(f, " {letter}")?;
                }
                f.write_str(")")
            }
            ParseError::RepeatedFlag(c) => write!(f, "flag {} given twice", CharName(*c)),
        }
    }
}

/// A character named in an error so that it can be told apart from its
/// look-alikes: `'q'` for printable ASCII, `'٤' (U+0664)` for other letters
/// and digits, and only the code, `U+00A0`, for the rest (spaces, controls,
/// marks), which would be invisible or misleading printed as themselves.
struct CharName(char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        if c.is_ascii_graphic() || c == ' ' {
            write!(f, "'{c}'")
        } else if c.is_alphanumeric() {
            write!(f, "'{c}' (U+{:04X})", u32::from(c))
        } else {
            write!(f, "U+{:04X}", u32::from(c))
        }
    }
}

/// The value of an ASCII digit in `radix` (10 or 16); `None` for anything
/// else, every non-ASCII character included.
fn digit_value(c: char, radix: u32) -> Option<u32> {
    let value = match c {
        '0'..='9' => u32::from(c) - u32::from('0'),
        'a'..='f' => u32::from(c) - u32::from('a') + 10,
        'A'..='F' => u32::from(c) - u32::from('A') + 10,
        _ => return None,
    };
    (value < radix).then_some(value)
}

/// Parses a number: decimal (`4096`), hexadecimal (`0x1000`), either with
/// `_` separators, and an optional size suffix `k`, `m`, `g`, `t`
/// (powers of 1024, case-insensitive): `4k`, `2m`, `0x10g`.
///
/// Every character must be one of those (ASCII only); the first one that is
/// not is named in [`ParseError::BadDigit`]. Never panics.
pub fn parse_number(word: &str) -> Result<u64, ParseError> {
    let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(rest) => (rest, 16),
        None => (word, 10),
    };
    // The suffix is looked for in the last byte: an ASCII letter is a whole
    // character, so cutting it off leaves a valid string, and the last byte
    // of a character beyond ASCII (0x80 ..= 0xbf) is never a suffix.
    let shift = match digits.as_bytes().last().map(u8::to_ascii_lowercase) {
        // In hex, a trailing letter is a digit unless it is one of the size
        // suffixes that are not hex digits (k, m, g, t).
        Some(b'k') => 10,
        Some(b'm') => 20,
        Some(b'g') => 30,
        Some(b't') => 40,
        _ => 0,
    };
    let digits = if shift == 0 { digits } else { &digits[..digits.len() - 1] };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = digit_value(c, radix).ok_or(ParseError::BadDigit(c))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(ParseError::TooLarge)?;
        any = true;
    }
    if !any {
        return Err(ParseError::Empty);
    }
    value.checked_mul(1u64 << shift).ok_or(ParseError::TooLarge)
}

/// Parses flags written as letters, in any order: `r` READ, `w` WRITE,
/// `x` EXEC, `p` PIN, `k` KERN, `s` SWAP, `e` EAGER, `a` ANON (anonymous
/// memory the address space provides), `d` GROW_DOWN, `u` GROW_UP, and the
/// rest of [`Protection::LETTERS`]; `-` is ignored so that the printed form
/// (`rwxpk-ea--`) parses back. Letters are ASCII and case-insensitive (`RW`
/// is `rw`); any other character is a [`ParseError::UnknownFlag`]. A word
/// that starts with an ASCII digit is read as a number instead (NK's numeric
/// flags, e.g. `0x1f`; ANON is `0x80`, GROW_DOWN `0x100`, GROW_UP `0x200`),
/// with [`parse_number`]'s rules. Never panics.
pub fn parse_protection(word: &str) -> Result<Protection, ParseError> {
    if word.is_empty() {
        return Err(ParseError::Empty);
    }
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        let bits = parse_number(word)?;
        let bits = u32::try_from(bits).map_err(|_| ParseError::TooLarge)?;
        return Ok(Protection::from_bits_retain(bits));
    }
    let mut prot = Protection::empty();
    for c in word.chars() {
        if c == '-' {
            continue;
        }
        let (_, flag) = Protection::LETTERS
            .iter()
            .find(|(letter, _)| c.is_ascii() && *letter == c.to_ascii_lowercase())
            .ok_or(ParseError::UnknownFlag(c))?;
        if prot.contains(*flag) {
            return Err(ParseError::RepeatedFlag(c));
        }
        prot |= *flag;
    }
    Ok(prot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("4096"), Ok(4096));
        assert_eq!(parse_number("0x1000"), Ok(4096));
        assert_eq!(parse_number("4k"), Ok(4096));
        assert_eq!(parse_number("2M"), Ok(2 << 20));
        assert_eq!(parse_number("1g"), Ok(1 << 30));
        assert_eq!(parse_number("0x10g"), Ok(16 << 30));
        assert_eq!(parse_number("0xffff_8000_0000_0000"), Ok(0xffff_8000_0000_0000));
        assert_eq!(parse_number("0xfff"), Ok(0xfff));
        assert_eq!(parse_number(""), Err(ParseError::Empty));
        assert_eq!(parse_number("0x"), Err(ParseError::Empty));
        assert_eq!(parse_number("k"), Err(ParseError::Empty));
        assert_eq!(parse_number("12q"), Err(ParseError::BadDigit('q')));
        assert_eq!(parse_number("18446744073709551616"), Err(ParseError::TooLarge));
        assert_eq!(parse_number("16777216t"), Err(ParseError::TooLarge));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_protection("rwx"), Ok(Protection::READ | Protection::WRITE | Protection::EXEC));
        assert_eq!(
            parse_protection("rwxpk-e"),
            Ok(Protection::READ
                | Protection::WRITE
                | Protection::EXEC
                | Protection::PIN
                | Protection::KERN
                | Protection::EAGER)
        );
        assert_eq!(parse_protection("0x1f").map(|p| p.bits()), Ok(0x1f));
        let stack = Protection::READ | Protection::WRITE | Protection::ANON | Protection::GROW_DOWN;
        assert_eq!(parse_protection("rwad"), Ok(stack));
        assert_eq!(parse_protection(&alloc::format!("{stack}")), Ok(stack), "the printed form parses back");
        assert_eq!(parse_protection("rau"), Ok(Protection::READ | Protection::ANON | Protection::GROW_UP));
        assert_eq!(parse_protection("0x180"), Ok(Protection::ANON | Protection::GROW_DOWN));
        assert_eq!(parse_protection("rq"), Err(ParseError::UnknownFlag('q')));
        assert_eq!(parse_protection("rr"), Err(ParseError::RepeatedFlag('r')));
        assert_eq!(parse_protection(""), Err(ParseError::Empty));
    }

    #[test]
    fn only_ascii_numbers() {
        // Unicode digits: Arabic-Indic, fullwidth, mathematical bold,
        // superscript; none is a digit here.
        assert_eq!(parse_number("٤٠٩٦"), Err(ParseError::BadDigit('٤')));
        assert_eq!(parse_number("4０96"), Err(ParseError::BadDigit('０')));
        assert_eq!(parse_number("𝟒k"), Err(ParseError::BadDigit('𝟒')));
        assert_eq!(parse_number("4²"), Err(ParseError::BadDigit('²')));
        assert_eq!(parse_number("0x1٤"), Err(ParseError::BadDigit('٤')));
        // Spaces that are not ASCII, inside or around a number.
        assert_eq!(parse_number("4\u{a0}096"), Err(ParseError::BadDigit('\u{a0}')));
        assert_eq!(parse_number("4\u{a0}k"), Err(ParseError::BadDigit('\u{a0}')));
        assert_eq!(parse_number("4096\u{a0}"), Err(ParseError::BadDigit('\u{a0}')));
        assert_eq!(parse_number("\u{3000}4"), Err(ParseError::BadDigit('\u{3000}')));
        // Suffix look-alikes: the Kelvin sign (whose lowercase is 'k'),
        // fullwidth letters, a long s; never a suffix, never a panic.
        assert_eq!(parse_number("4\u{212a}"), Err(ParseError::BadDigit('\u{212a}')));
        assert_eq!(parse_number("4ｋ"), Err(ParseError::BadDigit('ｋ')));
        assert_eq!(parse_number("4Ｍ"), Err(ParseError::BadDigit('Ｍ')));
        assert_eq!(parse_number("0xｇ"), Err(ParseError::BadDigit('ｇ')));
        assert_eq!(parse_number("é"), Err(ParseError::BadDigit('é')));
        assert_eq!(parse_number("0x\u{fffd}"), Err(ParseError::BadDigit('\u{fffd}')));
        // The first bad character is the one named.
        assert_eq!(parse_number("1q٤"), Err(ParseError::BadDigit('q')));
        assert_eq!(parse_number("1٤q"), Err(ParseError::BadDigit('٤')));
        // Every character ending in a byte that a suffix letter would have,
        // or in a suffix letter after something that is not a digit.
        for word in ["4ǫ", "4ɫ", "4ŧ", "4\u{6b}\u{301}", "٤k", "\u{a0}k", "_k", "0x_g"] {
            assert!(parse_number(word).is_err(), "{word:?}");
        }
    }

    #[test]
    fn only_ascii_flags() {
        assert_eq!(parse_protection("RW"), Ok(Protection::READ | Protection::WRITE));
        assert_eq!(parse_protection("r\u{a0}w"), Err(ParseError::UnknownFlag('\u{a0}')));
        assert_eq!(parse_protection("ｒw"), Err(ParseError::UnknownFlag('ｒ')));
        assert_eq!(parse_protection("r\u{212a}"), Err(ParseError::UnknownFlag('\u{212a}')));
        assert_eq!(parse_protection("rwé"), Err(ParseError::UnknownFlag('é')));
        assert_eq!(parse_protection("r–w"), Err(ParseError::UnknownFlag('–')));
        // A Unicode digit does not make it a number; it is not a flag either.
        assert_eq!(parse_protection("٤"), Err(ParseError::UnknownFlag('٤')));
        assert_eq!(parse_protection("1٤"), Err(ParseError::BadDigit('٤')));
    }

    #[test]
    fn errors_name_the_character_unmistakably() {
        let message = |error: ParseError| alloc::format!("{error}");
        assert_eq!(message(ParseError::BadDigit('q')), "unexpected character 'q' in number");
        assert_eq!(message(ParseError::BadDigit('\u{a0}')), "unexpected character U+00A0 in number");
        assert_eq!(message(ParseError::BadDigit('٤')), "unexpected character '٤' (U+0664) in number");
        assert_eq!(message(ParseError::BadDigit('\0')), "unexpected character U+0000 in number");
        assert_eq!(message(ParseError::RepeatedFlag('r')), "flag 'r' given twice");
        let mut letters = alloc::string::String::new();
        for (letter, _) in Protection::LETTERS {
            letters.push(' ');
            letters.push(letter);
        }
        assert_eq!(message(ParseError::UnknownFlag('q')), alloc::format!("unknown flag 'q' (flags are{letters})"));
        assert_eq!(
            message(ParseError::UnknownFlag('\u{212a}')),
            alloc::format!("unknown flag '\u{212a}' (U+212A) (flags are{letters})")
        );
    }
}
