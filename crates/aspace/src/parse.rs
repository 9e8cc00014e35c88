//! Parsing of the numbers and flags that people type (the shell's `as` verbs).

use crate::Protection;

/// Why a word could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing to parse.
    Empty,
    /// A character that does not belong.
    BadDigit(char),
    /// The value does not fit in 64 bits.
    TooLarge,
    /// A flag letter that is not one of `rwxpkseadu`.
    UnknownFlag(char),
    /// The same flag letter twice.
    RepeatedFlag(char),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty number"),
            ParseError::BadDigit(c) => write!(f, "unexpected character '{c}' in number"),
            ParseError::TooLarge => f.write_str("number does not fit in 64 bits"),
            ParseError::UnknownFlag(c) => write!(f, "unknown flag '{c}' (flags are r w x p k s e a d u)"),
            ParseError::RepeatedFlag(c) => write!(f, "flag '{c}' given twice"),
        }
    }
}

/// Parses a number: decimal (`4096`), hexadecimal (`0x1000`), either with
/// `_` separators, and an optional size suffix `k`, `m`, `g`, `t`
/// (powers of 1024, case-insensitive): `4k`, `2m`, `0x10g`.
pub fn parse_number(word: &str) -> Result<u64, ParseError> {
    let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(rest) => (rest, 16),
        None => (word, 10),
    };
    let (digits, shift) = match digits.chars().last().map(|c| c.to_ascii_lowercase()) {
        // In hex, a trailing letter is a digit unless it is one of the size
        // suffixes that are not hex digits (k, m, g, t).
        Some('k') => (&digits[..digits.len() - 1], 10),
        Some('m') => (&digits[..digits.len() - 1], 20),
        Some('g') => (&digits[..digits.len() - 1], 30),
        Some('t') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix).ok_or(ParseError::BadDigit(c))?;
        value = value.checked_mul(radix as u64).and_then(|v| v.checked_add(d as u64)).ok_or(ParseError::TooLarge)?;
        any = true;
    }
    if !any {
        return Err(ParseError::Empty);
    }
    value.checked_mul(1u64 << shift).ok_or(ParseError::TooLarge)
}

/// Parses flags written as letters, in any order: `r` READ, `w` WRITE,
/// `x` EXEC, `p` PIN, `k` KERN, `s` SWAP, `e` EAGER, `a` ANON (anonymous
/// memory the address space provides), `d` GROW_DOWN, `u` GROW_UP; `-` is
/// ignored so that the printed form (`rwxpk-ea--`) parses back. A number is
/// accepted too (NK's numeric flags, e.g. `0x1f`; ANON is `0x80`, GROW_DOWN
/// `0x100`, GROW_UP `0x200`).
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
            .find(|(letter, _)| *letter == c.to_ascii_lowercase())
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
}
