//! Turning the bytes a terminal sends into the keys the editor acts on.
//!
//! Most keys are one byte, but the arrows and the editing keys arrive as
//! escape sequences (`ESC [ A` for up, `ESC [ 3 ~` for Delete), and a serial
//! console may hand them over one byte at a time, so the decoder remembers
//! how far into a sequence it is between calls.

/// A key the line editor understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A printable ASCII character (0x20..=0x7e).
    Char(u8),
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

    /// Takes one byte; returns the key it completes, if any. Bytes that do not
    /// make a known key, and unknown escape sequences, are dropped.
    pub(crate) fn feed(&mut self, byte: u8) -> Option<Key> {
        let after_carriage_return = core::mem::replace(&mut self.after_carriage_return, false);
        match self.state {
            State::Ground => self.ground(byte, after_carriage_return),
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
                // A control byte ends the would-be sequence and counts on its own.
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

    /// A byte outside any escape sequence.
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
            0x20..=0x7e => Some(Key::Char(byte)),
            _ => None,
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
    use alloc::vec::Vec;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut decoder = KeyDecoder::new();
        bytes.iter().filter_map(|&b| decoder.feed(b)).collect()
    }

    #[test]
    fn plain_bytes() {
        assert_eq!(keys(b"a Z~"), [Key::Char(b'a'), Key::Char(b' '), Key::Char(b'Z'), Key::Char(b'~')]);
        assert_eq!(keys(&[0x7f, 0x08, 0x03, 0x15]), [Key::Backspace, Key::Backspace, Key::Interrupt, Key::KillLine]);
    }

    #[test]
    fn line_ends() {
        assert_eq!(keys(b"\r\n"), [Key::Enter]);
        assert_eq!(keys(b"\n\r"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\r\r\n"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\n\n"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\rx\n"), [Key::Enter, Key::Char(b'x'), Key::Enter]);
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
        assert_eq!(keys(b"\x1b[2~x"), [Key::Char(b'x')]);
        assert_eq!(keys(b"\x1b[99999999999~x"), [Key::Char(b'x')]);
        assert_eq!(keys(b"\x1bxy"), [Key::Char(b'y')]);
        assert_eq!(keys(b"\x1b[Zq"), [Key::Char(b'q')]);
        // A sequence cut short by a new one.
        assert_eq!(keys(b"\x1b[1\x1b[D"), [Key::Left]);
        // A control byte inside a sequence is still acted on.
        assert_eq!(keys(b"\x1b[\x03"), [Key::Interrupt]);
        assert_eq!(keys(b"\x1b\r"), [Key::Enter]);
        assert_eq!(keys(b"\x1b\x1b[C"), [Key::Right]);
    }
}
