//! Turning the bytes a terminal sends into the keys the editor acts on.
//!
//! Most keys are one byte, but the arrows and the editing keys arrive as
//! escape sequences (`ESC [ A` for up, `ESC [ 3 ~` for Delete), characters
//! beyond ASCII arrive as UTF-8 sequences of two to four bytes, and a serial
//! console may hand either over one byte at a time, so the decoder remembers
//! how far into a sequence it is between calls.
//!
//! Nothing typed is dropped silently: every character, ASCII or not, becomes
//! a [`Key::Char`], control bytes that name no key included (Ctrl-A, a tab),
//! and bytes that are not valid UTF-8 become U+FFFD (one per maximal invalid
//! run, as [`String::from_utf8_lossy`](alloc::string::String::from_utf8_lossy)
//! does), so that a stray byte in a number makes the number fail to parse
//! instead of vanishing from it. Only escape sequences that name no key
//! (function keys, Insert, Alt plus a key) are dropped: they are keys, not
//! text.

/// A key the line editor understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A character to insert: any character typed, printable or not
    /// (U+FFFD for bytes that are not valid UTF-8), except the control bytes
    /// that are keys below.
    Char(char),
    /// Enter: `\r`, `\n`, or the pair `\r\n`.
    Enter,
    /// Backspace or DEL: erase the character before the cursor.
    Backspace,
    /// Delete: erase the character under the cursor.
    Delete,
    /// Ctrl-C: drop the line.
    Interrupt,
    /// Ctrl-U: erase the whole line.
    KillLine,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Up arrow: an older history entry.
    Up,
    /// Down arrow: a newer history entry, then back to the draft.
    Down,
    /// Home: the start of the line.
    Home,
    /// End: the end of the line.
    End,
}

const ESC: u8 = 0x1b;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const BACKSPACE: u8 = 0x08;
const DEL: u8 = 0x7f;

/// What replaces bytes that are not valid UTF-8.
const REPLACEMENT: char = char::REPLACEMENT_CHARACTER;

/// A UTF-8 sequence begun but not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PartialChar {
    /// The bytes so far; `len` of them are used.
    bytes: [u8; 4],
    len: u8,
    /// How many bytes the whole sequence has (2 ..= 4), from its first byte.
    needed: u8,
}

impl PartialChar {
    /// The sequence a byte starts, if it is the first byte of a multi-byte
    /// character (0xc2 ..= 0xf4).
    fn start(byte: u8) -> Option<PartialChar> {
        let needed = match byte {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return None,
        };
        Some(PartialChar { bytes: [byte, 0, 0, 0], len: 1, needed })
    }

    /// Whether `byte` may come next. The second byte's range depends on the
    /// first, which rules out overlong forms, surrogates and values past
    /// U+10FFFF (the table of the Unicode standard, 3.9).
    fn accepts(&self, byte: u8) -> bool {
        let range = match (self.len, self.bytes[0]) {
            (1, 0xe0) => 0xa0..=0xbf,
            (1, 0xed) => 0x80..=0x9f,
            (1, 0xf0) => 0x90..=0xbf,
            (1, 0xf4) => 0x80..=0x8f,
            _ => 0x80..=0xbf,
        };
        range.contains(&byte)
    }

    /// Adds an accepted byte; returns the character once it is complete.
    fn push(&mut self, byte: u8) -> Option<char> {
        self.bytes[usize::from(self.len)] = byte;
        self.len += 1;
        if self.len < self.needed {
            return None;
        }
        // `accepts` let only valid sequences through, so this always decodes;
        // U+FFFD all the same rather than a panic if it ever did not.
        let bytes = &self.bytes[..usize::from(self.len)];
        Some(core::str::from_utf8(bytes).ok().and_then(|text| text.chars().next()).unwrap_or(REPLACEMENT))
    }
}

/// The keys one byte completes: none, one, or two (when the byte cuts a
/// UTF-8 sequence short: U+FFFD for the broken sequence, then the byte's own
/// key). Iterate it to get them in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    keys: [Option<Key>; 2],
    next: usize,
}

impl Keys {
    fn none() -> Self {
        Keys::default()
    }

    fn one(key: Option<Key>) -> Self {
        Keys { keys: [key, None], next: 0 }
    }

    fn two(first: Key, second: Option<Key>) -> Self {
        Keys { keys: [Some(first), second], next: 0 }
    }
}

impl Iterator for Keys {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        while let Some(slot) = self.keys.get(self.next) {
            self.next += 1;
            if let Some(key) = slot {
                return Some(*key);
            }
        }
        None
    }
}

/// How far into an escape sequence the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between keys.
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC [`: a control sequence. `param` is its first numeric
    /// parameter so far (saturating, so that junk digits cannot overflow);
    /// `past_first_param` is set once anything but a digit was seen.
    ControlSequence { param: u16, past_first_param: bool },
    /// After `ESC O`: one more byte names the key (some terminals send
    /// `ESC O H` for Home, `ESC O A` for up).
    SingleShift,
    /// Inside a UTF-8 sequence.
    Utf8(PartialChar),
}

/// Decodes a byte stream into [`Key`]s, one byte per call.
#[derive(Clone, Debug)]
pub(crate) struct KeyDecoder {
    state: State,
    /// The previous byte was `\r`, so a `\n` now belongs to the same Enter.
    after_carriage_return: bool,
}

impl KeyDecoder {
    /// A decoder between keys.
    pub(crate) fn new() -> Self {
        KeyDecoder { state: State::Ground, after_carriage_return: false }
    }

    /// Takes one byte; returns the keys it completes (none while a sequence
    /// is under way). Unknown escape sequences are dropped; every other byte
    /// ends up in a key (see the module's documentation).
    pub(crate) fn feed(&mut self, byte: u8) -> Keys {
        let after_carriage_return = core::mem::replace(&mut self.after_carriage_return, false);
        if let State::Utf8(mut partial) = self.state {
            if partial.accepts(byte) {
                return match partial.push(byte) {
                    Some(c) => {
                        self.state = State::Ground;
                        Keys::one(Some(Key::Char(c)))
                    }
                    None => {
                        self.state = State::Utf8(partial);
                        Keys::none()
                    }
                };
            }
            // The sequence is cut short: it stands for one U+FFFD, and the
            // byte that cut it counts on its own.
            self.state = State::Ground;
            return Keys::two(Key::Char(REPLACEMENT), self.ground(byte, after_carriage_return));
        }
        Keys::one(self.escape_or_ground(byte, after_carriage_return))
    }

    /// A byte outside any UTF-8 sequence.
    fn escape_or_ground(&mut self, byte: u8, after_carriage_return: bool) -> Option<Key> {
        match self.state {
            State::Ground | State::Utf8(_) => self.ground(byte, after_carriage_return),
            State::Escape => match byte {
                b'[' => {
                    self.state = State::ControlSequence { param: 0, past_first_param: false };
                    None
                }
                b'O' => {
                    self.state = State::SingleShift;
                    None
                }
                ESC => None,
                // Alt plus a key: not something the editor does.
                0x20..=0x7e => {
                    self.state = State::Ground;
                    None
                }
                // A control byte or a byte beyond ASCII ends the would-be
                // sequence and counts on its own.
                _ => {
                    self.state = State::Ground;
                    self.ground(byte, after_carriage_return)
                }
            },
            State::ControlSequence { param, past_first_param } => match byte {
                b'0'..=b'9' if !past_first_param => {
                    let digit = u16::from(byte - b'0');
                    let param = param.saturating_mul(10).saturating_add(digit);
                    self.state = State::ControlSequence { param, past_first_param };
                    None
                }
                // Further parameters (`;5` for Ctrl) and intermediate bytes.
                0x20..=0x3f => {
                    self.state = State::ControlSequence { param, past_first_param: true };
                    None
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    control_sequence_key(param, byte)
                }
                ESC => {
                    self.state = State::Escape;
                    None
                }
                _ => {
                    self.state = State::Ground;
                    self.ground(byte, after_carriage_return)
                }
            },
            State::SingleShift => {
                self.state = State::Ground;
                match byte {
                    b'A' => Some(Key::Up),
                    b'B' => Some(Key::Down),
                    b'C' => Some(Key::Right),
                    b'D' => Some(Key::Left),
                    b'H' => Some(Key::Home),
                    b'F' => Some(Key::End),
                    0x20..=0x7e => None,
                    _ => self.ground(byte, after_carriage_return),
                }
            }
        }
    }

    /// A byte outside any escape or UTF-8 sequence.
    fn ground(&mut self, byte: u8, after_carriage_return: bool) -> Option<Key> {
        match byte {
            b'\r' => {
                self.after_carriage_return = true;
                Some(Key::Enter)
            }
            b'\n' if after_carriage_return => None,
            b'\n' => Some(Key::Enter),
            BACKSPACE | DEL => Some(Key::Backspace),
            CTRL_C => Some(Key::Interrupt),
            CTRL_U => Some(Key::KillLine),
            ESC => {
                self.state = State::Escape;
                None
            }
            // Printable ASCII, and the control bytes that name no key (a tab,
            // Ctrl-A, NUL): kept, so that nothing typed disappears.
            0x00..=0x7f => Some(Key::Char(char::from(byte))),
            _ => match PartialChar::start(byte) {
                Some(partial) => {
                    self.state = State::Utf8(partial);
                    None
                }
                // A continuation byte with nothing to continue, or a byte
                // that never appears in UTF-8 (0xc0, 0xc1, 0xf5 ..= 0xff).
                None => Some(Key::Char(REPLACEMENT)),
            },
        }
    }
}

/// The key named by a complete control sequence `ESC [ param final`.
fn control_sequence_key(param: u16, final_byte: u8) -> Option<Key> {
    match final_byte {
        b'A' => Some(Key::Up),
        b'B' => Some(Key::Down),
        b'C' => Some(Key::Right),
        b'D' => Some(Key::Left),
        b'H' => Some(Key::Home),
        b'F' => Some(Key::End),
        // VT220-style editing keys; terminals disagree on Home and End.
        b'~' => match param {
            1 | 7 => Some(Key::Home),
            3 => Some(Key::Delete),
            4 | 8 => Some(Key::End),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut decoder = KeyDecoder::new();
        bytes.iter().flat_map(|&b| decoder.feed(b)).collect()
    }

    /// The characters of `keys`, which must all be characters.
    fn text(keys: &[Key]) -> String {
        keys.iter()
            .map(|key| match key {
                Key::Char(c) => *c,
                other => panic!("{other:?} is not a character"),
            })
            .collect()
    }

    #[test]
    fn plain_bytes() {
        assert_eq!(keys(b"a Z~"), [Key::Char('a'), Key::Char(' '), Key::Char('Z'), Key::Char('~')]);
        assert_eq!(keys(&[0x7f, 0x08, 0x03, 0x15]), [Key::Backspace, Key::Backspace, Key::Interrupt, Key::KillLine]);
    }

    #[test]
    fn control_bytes_that_name_no_key_are_kept() {
        assert_eq!(keys(b"4\t096"), [Key::Char('4'), Key::Char('\t'), Key::Char('0'), Key::Char('9'), Key::Char('6')]);
        assert_eq!(
            keys(b"\x00\x01\x0b\x1f"),
            [Key::Char('\0'), Key::Char('\x01'), Key::Char('\x0b'), Key::Char('\x1f')]
        );
    }

    #[test]
    fn utf8_is_decoded() {
        // A non-breaking space, a two-byte letter, an Arabic-Indic four,
        // a fullwidth k, a four-byte mathematical digit.
        let typed = "4\u{a0}k é ٤ ｋ 𝟒";
        assert_eq!(text(&keys(typed.as_bytes())), typed);
        // One byte at a time from separate calls, as a serial port gives them.
        let mut decoder = KeyDecoder::new();
        assert_eq!(decoder.feed(0xf0).count(), 0);
        assert_eq!(decoder.feed(0x9d).count(), 0);
        assert_eq!(decoder.feed(0x9f).count(), 0);
        assert_eq!(decoder.feed(0x92).collect::<Vec<_>>(), [Key::Char('𝟒')]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_like_from_utf8_lossy() {
        let cases: [&[u8]; 12] = [
            b"\x80",
            b"\xbf\xbf",
            b"\xc0\xaf",
            b"\xc1\x81x",
            b"\xf5\x80\x80\x80",
            b"\xff\xfe",
            b"\xe0\x80\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"4\xe2\x82k",
            b"\xf0\x9f\x98x\xf0\x9f\x98\x80",
        ];
        // The decoder agrees with the standard library's lossy decoding (a
        // final '.' shows a sequence left unfinished at the end).
        for bytes in cases {
            let mut with_end = bytes.to_vec();
            with_end.push(b'.');
            assert_eq!(text(&keys(&with_end)), String::from_utf8_lossy(&with_end), "{bytes:x?}");
        }
        // A sequence cut short shows once it is cut: by a character, a key, Enter.
        assert_eq!(keys(b"\xe2\x82k"), [Key::Char(REPLACEMENT), Key::Char('k')]);
        assert_eq!(keys(b"\xe2\x82\x7f"), [Key::Char(REPLACEMENT), Key::Backspace]);
        assert_eq!(keys(b"\xc3\r\n"), [Key::Char(REPLACEMENT), Key::Enter]);
        assert_eq!(keys(b"\xc3\x1b[D"), [Key::Char(REPLACEMENT), Key::Left]);
    }

    #[test]
    fn utf8_after_an_escape_is_kept() {
        // ESC then a non-ASCII character: the would-be sequence ends, the
        // character counts.
        assert_eq!(keys("\x1bé\x1b[é".as_bytes()), [Key::Char('é'), Key::Char('é')]);
    }

    #[test]
    fn line_ends() {
        assert_eq!(keys(b"\r\n"), [Key::Enter]);
        assert_eq!(keys(b"\n\r"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\r\r\n"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\n\n"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\rx\n"), [Key::Enter, Key::Char('x'), Key::Enter]);
    }

    #[test]
    fn escape_sequences() {
        assert_eq!(keys(b"\x1b[A\x1b[B\x1b[C\x1b[D"), [Key::Up, Key::Down, Key::Right, Key::Left]);
        assert_eq!(
            keys(b"\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[7~\x1b[8~"),
            [Key::Home, Key::End, Key::Home, Key::End, Key::Home, Key::End]
        );
        assert_eq!(keys(b"\x1b[3~"), [Key::Delete]);
        assert_eq!(keys(b"\x1bOA\x1bOH\x1bOF"), [Key::Up, Key::Home, Key::End]);
        // Ctrl-Right still names the right arrow.
        assert_eq!(keys(b"\x1b[1;5C"), [Key::Right]);
    }

    #[test]
    fn unknown_and_broken_sequences_are_dropped() {
        assert_eq!(keys(b"\x1b[2~x"), [Key::Char('x')]);
        assert_eq!(keys(b"\x1b[99999999999~x"), [Key::Char('x')]);
        assert_eq!(keys(b"\x1bxy"), [Key::Char('y')]);
        assert_eq!(keys(b"\x1b[Zq"), [Key::Char('q')]);
        // A sequence cut short by a new one.
        assert_eq!(keys(b"\x1b[1\x1b[D"), [Key::Left]);
        // A control byte inside a sequence is still acted on.
        assert_eq!(keys(b"\x1b[\x03"), [Key::Interrupt]);
        assert_eq!(keys(b"\x1b\r"), [Key::Enter]);
        assert_eq!(keys(b"\x1b\x1b[C"), [Key::Right]);
        assert_eq!(keys(b"\x1b[\t"), [Key::Char('\t')]);
    }
}
