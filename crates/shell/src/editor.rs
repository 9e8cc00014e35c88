//! The line editor: what the shell does with each byte typed on the console.
//!
//! The editor keeps the line being typed and a cursor in it, and writes to the
//! terminal exactly what is needed to keep the screen in step: the echo of a
//! typed character, the redraw of the rest of the line after an insertion or
//! erasure in the middle, the replacement of the whole line when a history
//! entry is recalled. It moves the terminal's cursor only with backspace
//! (`\x08`, one column left without erasing), and otherwise writes `\r\n`,
//! the bell (`\x07`) and the characters of the line, one column each.
//!
//! Every character typed is kept, in UTF-8 as typed (bytes that are not valid
//! UTF-8 become U+FFFD): the line handed over is what was typed, so that a
//! stray character makes a command fail instead of vanishing from it. On
//! screen a control character that names no key is shown as its Unicode
//! control picture (Ctrl-A as `␁`), a tab as a space, and C1 controls as
//! U+FFFD, so that the echo never sends the terminal a control code.
//!
//! A line has at most [`LineEditor::max_len`] characters. Typing past the
//! limit rings the bell once and the extra characters are refused; a line
//! that lost characters that way is never handed over: Enter gives
//! [`EditorEvent::TooLong`] and prints why, so that a cut command never runs.

use alloc::string::String;
use core::fmt::Write;

use crate::history::History;
use crate::keys::{Key, KeyDecoder};

/// The longest line the editor accepts unless told otherwise, in characters.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// How many history entries the editor keeps unless told otherwise.
pub const DEFAULT_HISTORY: usize = 32;

/// What a byte fed to the editor finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditorEvent {
    /// Enter was pressed; here is the line (possibly empty), every character
    /// typed in it. The terminal is already on a new line. Run it, then call
    /// [`LineEditor::show_prompt`].
    Line(String),
    /// Ctrl-C dropped the line. The editor has already printed `^C` and a
    /// fresh prompt.
    Interrupted,
    /// Enter was pressed on a line that did not fit. The line is dropped,
    /// not handed over and not remembered, so that a command cut short never
    /// runs. The editor has already printed `line too long: TYPED characters
    /// typed, the limit is LIMIT; nothing was run` and a fresh prompt; the
    /// caller has nothing to do.
    TooLong {
        /// How long the line would have been at its longest had nothing been
        /// refused: the limit plus the characters refused, always more than
        /// the limit (for a line typed straight through, every character
        /// typed for it).
        typed: usize,
        /// The editor's limit ([`LineEditor::max_len`]).
        limit: usize,
    },
}

/// Where the user is while walking the history with the arrows.
#[derive(Clone, Debug)]
struct Recall {
    /// The history entry shown (a copy is being edited, not the entry).
    index: usize,
    /// The line that was being typed before the first up arrow, given back
    /// when the down arrow walks past the newest entry.
    draft: String,
    /// How many characters the draft had refused (see `LineEditor::refused`).
    draft_refused: usize,
}

/// An interactive line editor for a serial console, fed one byte at a time.
///
/// ```
/// use shell::{EditorEvent, LineEditor};
///
/// let mut editor = LineEditor::new("nacre> ");
/// let mut screen = String::new();
/// editor.show_prompt(&mut screen);
/// let mut finished = None;
/// for &byte in "pex\x7fek é\r".as_bytes() {
///     if let Some(event) = editor.feed(byte, &mut screen) {
///         finished = Some(event);
///     }
/// }
/// assert_eq!(finished, Some(EditorEvent::Line("peek é".into())));
/// assert_eq!(screen, "nacre> pex\x08 \x08ek é\r\n");
/// ```
///
/// A line longer than the limit is refused as a whole:
///
/// ```
/// use shell::{EditorEvent, LineEditor};
///
/// let mut editor = LineEditor::with_limits("> ", 4, 8);
/// let mut screen = String::new();
/// let events: Vec<EditorEvent> = b"echo hi\r".iter().filter_map(|&b| editor.feed(b, &mut screen)).collect();
/// assert_eq!(events, [EditorEvent::TooLong { typed: 7, limit: 4 }]);
/// assert_eq!(screen, "echo\x07\r\nline too long: 7 characters typed, the limit is 4; nothing was run\r\n> ");
/// ```
#[derive(Clone, Debug)]
pub struct LineEditor {
    prompt: String,
    /// The line being typed.
    line: String,
    /// How many characters `line` has.
    len: usize,
    /// Where the next character goes, in characters: 0 ..= `len`. One
    /// character is one screen column.
    cursor: usize,
    max_len: usize,
    /// Characters typed for this line and refused because it was full.
    refused: usize,
    history: History,
    recall: Option<Recall>,
    keys: KeyDecoder,
}

impl LineEditor {
    /// An editor showing `prompt`, with lines of at most [`DEFAULT_MAX_LINE`]
    /// characters and [`DEFAULT_HISTORY`] history entries.
    pub fn new(prompt: &str) -> Self {
        Self::with_limits(prompt, DEFAULT_MAX_LINE, DEFAULT_HISTORY)
    }

    /// An editor showing `prompt`, with lines of at most `max_len` characters
    /// and at most `history_len` history entries.
    pub fn with_limits(prompt: &str, max_len: usize, history_len: usize) -> Self {
        LineEditor {
            prompt: String::from(prompt),
            line: String::new(),
            len: 0,
            cursor: 0,
            max_len,
            refused: 0,
            history: History::new(history_len),
            recall: None,
            keys: KeyDecoder::new(),
        }
    }

    /// The prompt shown before each line.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Changes the prompt; it shows from the next [`show_prompt`](Self::show_prompt).
    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt = String::from(prompt);
    }

    /// The line typed so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The cursor's position in the line, in characters from its start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The longest line accepted, in characters. Typing past it rings the
    /// bell, and Enter then gives [`EditorEvent::TooLong`] instead of the line.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// How many characters typed for the current line were refused because
    /// it was full (0 while everything typed fits); while it is not 0, Enter
    /// gives [`EditorEvent::TooLong`]. Enter, Ctrl-U and Ctrl-C, which end or
    /// drop the whole line, reset it; a recalled history entry has none, and
    /// walking back down to the draft brings the draft's count back.
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// The lines entered so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Writes the prompt and the line typed so far, leaving the terminal's
    /// cursor at the editing cursor. Call it once to start, after the output
    /// of each [`EditorEvent::Line`], and whenever something else was printed
    /// over the line being typed.
    pub fn show_prompt(&self, out: &mut dyn Write) {
        emit(out, &self.prompt);
        emit_shown(out, &self.line);
        move_left(out, self.len - self.cursor);
    }

    /// Takes one byte from the console, writes the echo to `out`, and returns
    /// an event when the byte finished a line or interrupted it. Never panics,
    /// whatever the bytes; write errors on `out` are ignored, since there is
    /// nowhere else to report them.
    pub fn feed(&mut self, byte: u8, out: &mut dyn Write) -> Option<EditorEvent> {
        // One byte makes at most two keys, and only the second can finish a
        // line (the first is then the U+FFFD of a cut UTF-8 sequence).
        let mut event = None;
        for key in self.keys.feed(byte) {
            event = self.act(key, out);
        }
        event
    }

    /// Does what `key` asks.
    fn act(&mut self, key: Key, out: &mut dyn Write) -> Option<EditorEvent> {
        match key {
            Key::Char(c) => self.insert(c, out),
            Key::Enter => return Some(self.finish_line(out)),
            Key::Interrupt => return Some(self.interrupt(out)),
            Key::Backspace => self.erase_before_cursor(out),
            Key::Delete => self.erase_at_cursor(out),
            Key::KillLine => self.kill_line(out),
            Key::Left => self.left(out),
            Key::Right => self.right(out),
            Key::Home => self.home(out),
            Key::End => self.end(out),
            Key::Up => self.older(out),
            Key::Down => self.newer(out),
        }
        None
    }

    /// The byte offset in `line` of the character at `position`.
    fn byte_offset(&self, position: usize) -> usize {
        if position >= self.len {
            return self.line.len();
        }
        self.line.char_indices().nth(position).map_or(self.line.len(), |(offset, _)| offset)
    }

    /// Inserts a character at the cursor, redrawing what follows. On a full
    /// line the character is refused and counted; the first refusal rings
    /// the bell.
    fn insert(&mut self, c: char, out: &mut dyn Write) {
        if self.len >= self.max_len {
            if self.refused == 0 {
                emit(out, BELL);
            }
            self.refused = self.refused.saturating_add(1);
            return;
        }
        let at = self.byte_offset(self.cursor);
        self.line.insert(at, c);
        self.len += 1;
        emit_shown(out, &self.line[at..]);
        self.cursor += 1;
        move_left(out, self.len - self.cursor);
    }

    /// Backspace: the character before the cursor goes, the rest shifts left.
    fn erase_before_cursor(&mut self, out: &mut dyn Write) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        emit(out, "\x08");
        self.erase_at_cursor(out);
    }

    /// Delete: the character under the cursor goes, the rest shifts left.
    fn erase_at_cursor(&mut self, out: &mut dyn Write) {
        if self.cursor == self.len {
            return;
        }
        let at = self.byte_offset(self.cursor);
        self.line.remove(at);
        self.len -= 1;
        // Redraw the tail one column to the left and blank its old last column.
        emit_shown(out, &self.line[at..]);
        emit(out, " ");
        move_left(out, self.len - self.cursor + 1);
    }

    /// Ctrl-U: the whole line goes, what it had refused with it.
    fn kill_line(&mut self, out: &mut dyn Write) {
        self.replace_line(String::new(), out);
        self.refused = 0;
    }

    fn left(&mut self, out: &mut dyn Write) {
        if self.cursor > 0 {
            self.cursor -= 1;
            move_left(out, 1);
        }
    }

    fn right(&mut self, out: &mut dyn Write) {
        let at = self.byte_offset(self.cursor);
        if let Some(c) = self.line[at..].chars().next() {
            // Writing the character under the cursor moves right over it.
            emit_char(out, c);
            self.cursor += 1;
        }
    }

    fn home(&mut self, out: &mut dyn Write) {
        move_left(out, self.cursor);
        self.cursor = 0;
    }

    fn end(&mut self, out: &mut dyn Write) {
        emit_shown(out, &self.line[self.byte_offset(self.cursor)..]);
        self.cursor = self.len;
    }

    /// Up arrow: show the next older history entry.
    fn older(&mut self, out: &mut dyn Write) {
        let index = match &self.recall {
            None if self.history.is_empty() => return,
            None => {
                let newest = self.history.len() - 1;
                self.recall = Some(Recall { index: newest, draft: self.line.clone(), draft_refused: self.refused });
                newest
            }
            Some(recall) if recall.index == 0 => return,
            Some(recall) => recall.index - 1,
        };
        self.show_history_entry(index, out);
    }

    /// Down arrow: show the next newer history entry, or the draft after the
    /// newest one.
    fn newer(&mut self, out: &mut dyn Write) {
        let Some(recall) = &self.recall else { return };
        let index = recall.index + 1;
        if index < self.history.len() {
            self.show_history_entry(index, out);
        } else if let Some(recall) = self.recall.take() {
            self.replace_line(recall.draft, out);
            // The draft is the line it was, refused characters included.
            self.refused = recall.draft_refused;
        }
    }

    /// Replaces the line with a copy of history entry `index`.
    fn show_history_entry(&mut self, index: usize, out: &mut dyn Write) {
        let Some(entry) = self.history.get(index) else { return };
        let entry = String::from(entry);
        if let Some(recall) = &mut self.recall {
            recall.index = index;
        }
        self.replace_line(entry, out);
        // A history entry was a whole line when it was entered.
        self.refused = 0;
    }

    /// Replaces the whole line on screen and in memory; the cursor ends at
    /// the end of the new line.
    fn replace_line(&mut self, new_line: String, out: &mut dyn Write) {
        let new_len = new_line.chars().count();
        move_left(out, self.cursor);
        emit_shown(out, &new_line);
        // Blank whatever the old line had beyond the new one's end.
        let leftover = self.len.saturating_sub(new_len);
        emit_repeated(out, ' ', leftover);
        move_left(out, leftover);
        self.cursor = new_len;
        self.len = new_len;
        self.line = new_line;
    }

    /// Enter: hand over the line, remember it, and start an empty one; or,
    /// when characters were refused, say so and hand over nothing.
    fn finish_line(&mut self, out: &mut dyn Write) -> EditorEvent {
        emit(out, "\r\n");
        let line = core::mem::take(&mut self.line);
        // Characters are refused only on a full line, so the line was at
        // its longest, counting what was refused, at the last refusal.
        let typed = self.max_len.saturating_add(self.refused);
        let too_long = self.refused > 0;
        self.len = 0;
        self.cursor = 0;
        self.refused = 0;
        self.recall = None;
        if too_long {
            let limit = self.max_len;
            let _ = write!(out, "line too long: {typed} characters typed, the limit is {limit}; nothing was run\r\n");
            self.show_prompt(out);
            return EditorEvent::TooLong { typed, limit };
        }
        self.history.push(&line);
        EditorEvent::Line(line)
    }

    /// Ctrl-C: drop the line and prompt again.
    fn interrupt(&mut self, out: &mut dyn Write) -> EditorEvent {
        emit(out, "^C\r\n");
        self.line.clear();
        self.len = 0;
        self.cursor = 0;
        self.refused = 0;
        self.recall = None;
        self.show_prompt(out);
        EditorEvent::Interrupted
    }
}

/// The terminal bell, rung when a key cannot be honoured.
const BELL: &str = "\x07";

/// Writes `text`, ignoring a failure of the console.
fn emit(out: &mut dyn Write, text: &str) {
    let _ = out.write_str(text);
}

/// Writes `c` `count` times.
fn emit_repeated(out: &mut dyn Write, c: char, count: usize) {
    for _ in 0..count {
        let _ = out.write_char(c);
    }
}

/// Writes the characters of a piece of the line as they are shown.
fn emit_shown(out: &mut dyn Write, text: &str) {
    for c in text.chars() {
        emit_char(out, c);
    }
}

/// Writes one character of the line as it is shown: itself, unless it is a
/// control character, which would move the terminal's cursor or start a
/// control sequence instead of taking one column (see [`shown`]).
fn emit_char(out: &mut dyn Write, c: char) {
    let _ = out.write_char(shown(c));
}

/// How a character of the line is shown on screen, in one column: a tab as a
/// space, the other C0 controls (and DEL) as their control pictures
/// (U+2400 ..= U+2421), the C1 controls (U+0080 ..= U+009F) as U+FFFD, every
/// other character as itself.
fn shown(c: char) -> char {
    match c {
        '\t' => ' ',
        '\0'..='\x1f' => char::from_u32(0x2400 + u32::from(c)).unwrap_or(char::REPLACEMENT_CHARACTER),
        '\x7f' => '\u{2421}',
        c if c.is_control() => char::REPLACEMENT_CHARACTER,
        c => c,
    }
}

/// Moves the terminal cursor `columns` to the left with backspaces.
fn move_left(out: &mut dyn Write, columns: usize) {
    emit_repeated(out, '\x08', columns);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_is_shown_in_one_printable_column() {
        assert_eq!(shown('a'), 'a');
        assert_eq!(shown('\u{a0}'), '\u{a0}');
        assert_eq!(shown('٤'), '٤');
        assert_eq!(shown('\t'), ' ');
        assert_eq!(shown('\0'), '␀');
        assert_eq!(shown('\x01'), '␁');
        assert_eq!(shown('\x1f'), '␟');
        assert_eq!(shown('\x7f'), '␡');
        assert_eq!(shown('\u{9b}'), '\u{fffd}');
        for code in 0..0x3000 {
            if let Some(c) = char::from_u32(code) {
                assert!(!shown(c).is_control(), "{c:?} is shown as a control character");
            }
        }
    }

    #[test]
    fn byte_offsets_count_characters() {
        let mut editor = LineEditor::new("> ");
        let mut screen = String::new();
        for &byte in "aé٤𝟒b".as_bytes() {
            editor.feed(byte, &mut screen);
        }
        assert_eq!(editor.len, 5);
        let offsets: alloc::vec::Vec<usize> = (0..=6).map(|position| editor.byte_offset(position)).collect();
        assert_eq!(offsets, [0, 1, 3, 5, 9, 10, 10]);
    }
}
