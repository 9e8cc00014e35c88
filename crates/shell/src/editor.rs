//! The line editor: what the shell does with each byte typed on the console.
//!
//! The editor keeps the line being typed and a cursor in it, and writes to the
//! terminal exactly what is needed to keep the screen in step: the echo of a
//! typed character, the redraw of the rest of the line after an insertion or
//! erasure in the middle, the replacement of the whole line when a history
//! entry is recalled. It only uses bytes every terminal understands: printable
//! characters, spaces, backspace (`\x08`, which moves the cursor one column
//! left without erasing), `\r\n` and the bell (`\x07`).

use alloc::string::String;
use core::fmt::Write;

use crate::history::History;
use crate::keys::{Key, KeyDecoder};

/// The longest line the editor accepts unless told otherwise.
pub const DEFAULT_MAX_LINE: usize = 512;

/// How many history entries the editor keeps unless told otherwise.
pub const DEFAULT_HISTORY: usize = 32;

/// What a byte fed to the editor finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditorEvent {
    /// Enter was pressed; here is the line (possibly empty). The terminal is
    /// already on a new line. Run it, then call [`LineEditor::show_prompt`].
    Line(String),
    /// Ctrl-C dropped the line. The editor has already printed `^C` and a
    /// fresh prompt.
    Interrupted,
}

/// Where the user is while walking the history with the arrows.
#[derive(Clone, Debug)]
struct Recall {
    /// The history entry shown (a copy is being edited, not the entry).
    index: usize,
    /// The line that was being typed before the first up arrow, given back
    /// when the down arrow walks past the newest entry.
    draft: String,
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
/// for &byte in b"pex\x7fek\r" {
///     if let Some(event) = editor.feed(byte, &mut screen) {
///         finished = Some(event);
///     }
/// }
/// assert_eq!(finished, Some(EditorEvent::Line("peek".into())));
/// assert_eq!(screen, "nacre> pex\x08 \x08ek\r\n");
/// ```
#[derive(Clone, Debug)]
pub struct LineEditor {
    prompt: String,
    /// The line being typed. Only printable ASCII is ever inserted, so a byte
    /// index is also a character index and a screen column.
    line: String,
    /// Where the next character goes: 0 ..= `line.len()`.
    cursor: usize,
    max_len: usize,
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
            cursor: 0,
            max_len,
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

    /// The longest line accepted; typing past it rings the bell.
    pub fn max_len(&self) -> usize {
        self.max_len
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
        emit(out, &self.line);
        move_left(out, self.line.len() - self.cursor);
    }

    /// Takes one byte from the console, writes the echo to `out`, and returns
    /// an event when the byte finished a line or interrupted it. Never panics,
    /// whatever the bytes; write errors on `out` are ignored, since there is
    /// nowhere else to report them.
    pub fn feed(&mut self, byte: u8, out: &mut dyn Write) -> Option<EditorEvent> {
        match self.keys.feed(byte)? {
            Key::Char(c) => self.insert(c, out),
            Key::Enter => return Some(self.finish_line(out)),
            Key::Interrupt => return Some(self.interrupt(out)),
            Key::Backspace => self.erase_before_cursor(out),
            Key::Delete => self.erase_at_cursor(out),
            Key::KillLine => self.replace_line(String::new(), out),
            Key::Left => self.left(out),
            Key::Right => self.right(out),
            Key::Home => self.home(out),
            Key::End => self.end(out),
            Key::Up => self.older(out),
            Key::Down => self.newer(out),
        }
        None
    }

    /// Inserts a printable character at the cursor, redrawing what follows.
    fn insert(&mut self, c: u8, out: &mut dyn Write) {
        if self.line.len() >= self.max_len {
            emit(out, BELL);
            return;
        }
        self.line.insert(self.cursor, char::from(c));
        emit(out, &self.line[self.cursor..]);
        self.cursor += 1;
        move_left(out, self.line.len() - self.cursor);
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
        if self.cursor == self.line.len() {
            return;
        }
        self.line.remove(self.cursor);
        // Redraw the tail one column to the left and blank its old last column.
        emit(out, &self.line[self.cursor..]);
        emit(out, " ");
        move_left(out, self.line.len() - self.cursor + 1);
    }

    fn left(&mut self, out: &mut dyn Write) {
        if self.cursor > 0 {
            self.cursor -= 1;
            move_left(out, 1);
        }
    }

    fn right(&mut self, out: &mut dyn Write) {
        if self.cursor < self.line.len() {
            // Writing the character under the cursor moves right over it.
            emit(out, &self.line[self.cursor..self.cursor + 1]);
            self.cursor += 1;
        }
    }

    fn home(&mut self, out: &mut dyn Write) {
        move_left(out, self.cursor);
        self.cursor = 0;
    }

    fn end(&mut self, out: &mut dyn Write) {
        emit(out, &self.line[self.cursor..]);
        self.cursor = self.line.len();
    }

    /// Up arrow: show the next older history entry.
    fn older(&mut self, out: &mut dyn Write) {
        let index = match &self.recall {
            None if self.history.is_empty() => return,
            None => {
                let newest = self.history.len() - 1;
                self.recall = Some(Recall { index: newest, draft: self.line.clone() });
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
    }

    /// Replaces the whole line on screen and in memory; the cursor ends at
    /// the end of the new line.
    fn replace_line(&mut self, new_line: String, out: &mut dyn Write) {
        move_left(out, self.cursor);
        emit(out, &new_line);
        // Blank whatever the old line had beyond the new one's end.
        let leftover = self.line.len().saturating_sub(new_line.len());
        emit_repeated(out, ' ', leftover);
        move_left(out, leftover);
        self.cursor = new_line.len();
        self.line = new_line;
    }

    /// Enter: hand over the line, remember it, and start an empty one.
    fn finish_line(&mut self, out: &mut dyn Write) -> EditorEvent {
        emit(out, "\r\n");
        let line = core::mem::take(&mut self.line);
        self.cursor = 0;
        self.recall = None;
        self.history.push(&line);
        EditorEvent::Line(line)
    }

    /// Ctrl-C: drop the line and prompt again.
    fn interrupt(&mut self, out: &mut dyn Write) -> EditorEvent {
        emit(out, "^C\r\n");
        self.line.clear();
        self.cursor = 0;
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

/// Moves the terminal cursor `columns` to the left with backspaces.
fn move_left(out: &mut dyn Write, columns: usize) {
    emit_repeated(out, '\x08', columns);
}
