//! The line editor driven as a console would drive it: byte by byte, with the
//! echo checked both as exact bytes and as what a terminal would show.

use proptest::prelude::*;
use shell::{EditorEvent, LineEditor};

const UP: &[u8] = b"\x1b[A";
const DOWN: &[u8] = b"\x1b[B";
const RIGHT: &[u8] = b"\x1b[C";
const LEFT: &[u8] = b"\x1b[D";
const HOME: &[u8] = b"\x1b[H";
const END: &[u8] = b"\x1b[F";
const DELETE: &[u8] = b"\x1b[3~";
const CTRL_C: &[u8] = b"\x03";
const CTRL_U: &[u8] = b"\x15";
const DEL: &[u8] = b"\x7f";

/// An editor, everything it has written, and every event it returned. Like a
/// console, it shows the prompt again after each finished line.
struct Session {
    editor: LineEditor,
    screen: String,
    events: Vec<EditorEvent>,
}

impl Session {
    fn new(editor: LineEditor) -> Self {
        let mut session = Session { editor, screen: String::new(), events: Vec::new() };
        session.editor.show_prompt(&mut session.screen);
        session
    }

    fn with_prompt(prompt: &str) -> Self {
        Self::new(LineEditor::new(prompt))
    }

    /// Feeds `bytes` one at a time.
    fn type_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &byte in bytes {
            if let Some(event) = self.editor.feed(byte, &mut self.screen) {
                if matches!(event, EditorEvent::Line(_)) {
                    self.editor.show_prompt(&mut self.screen);
                }
                self.events.push(event);
            }
        }
        self
    }

    /// Feeds each of `keys` in turn.
    fn keys(&mut self, keys: &[&[u8]]) -> &mut Self {
        for key in keys {
            self.type_bytes(key);
        }
        self
    }

    /// Forgets what was written so far, to check the echo of what follows.
    fn clear_screen(&mut self) -> &mut Self {
        self.screen.clear();
        self
    }

    fn lines(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                EditorEvent::Line(line) => Some(line.as_str()),
                EditorEvent::Interrupted => None,
            })
            .collect()
    }

    fn history(&self) -> Vec<&str> {
        self.editor.history().iter().collect()
    }
}

/// A dumb terminal: printable characters overwrite the cell under the
/// cursor and move it right, backspace moves it left, `\r` to column 0, `\n`
/// down a row, the bell does nothing.
struct Terminal {
    rows: Vec<Vec<char>>,
    column: usize,
}

impl Terminal {
    fn new() -> Self {
        Terminal { rows: vec![Vec::new()], column: 0 }
    }

    fn show(&mut self, text: &str) {
        for c in text.chars() {
            let row = self.rows.last_mut().expect("a terminal always has a row");
            match c {
                '\x08' => self.column = self.column.saturating_sub(1),
                '\r' => self.column = 0,
                '\n' => self.rows.push(Vec::new()),
                '\x07' => {}
                c => {
                    assert!(!c.is_control(), "the editor wrote control character {c:?}");
                    while row.len() < self.column {
                        row.push(' ');
                    }
                    if self.column < row.len() {
                        row[self.column] = c;
                    } else {
                        row.push(c);
                    }
                    self.column += 1;
                }
            }
        }
    }

    /// The row the cursor is on, without trailing blanks.
    fn current_row(&self) -> String {
        let row: String = self.rows.last().expect("a terminal always has a row").iter().collect();
        String::from(row.trim_end())
    }
}

#[test]
fn typing_a_line() {
    let mut session = Session::with_prompt("nacre> ");
    session.type_bytes(b"peek 0x1000\r");
    assert_eq!(session.lines(), ["peek 0x1000"]);
    assert_eq!(session.screen, "nacre> peek 0x1000\r\nnacre> ");
    assert_eq!(session.editor.line(), "");
    assert_eq!(session.editor.cursor(), 0);
}

#[test]
fn every_line_end_finishes_one_line() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"a\r\nb\nc\r\r\n\n");
    assert_eq!(session.lines(), ["a", "b", "c", "", ""]);
}

#[test]
fn backspace_at_the_start_of_the_line_is_harmless() {
    let mut session = Session::with_prompt("> ");
    session.clear_screen().type_bytes(b"\x7f\x08\x7fab");
    assert_eq!(session.screen, "ab");
    session.keys(&[HOME, DEL, DEL]);
    assert_eq!(session.editor.line(), "ab");
    assert_eq!(session.editor.cursor(), 0);
    session.type_bytes(b"\r");
    assert_eq!(session.lines(), ["ab"]);
}

#[test]
fn backspace_at_the_end_echo() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abc").clear_screen().type_bytes(DEL);
    assert_eq!(session.editor.line(), "ab");
    // Back one, blank the last column, back again.
    assert_eq!(session.screen, "\x08 \x08");
}

#[test]
fn insertion_in_the_middle_echo() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ac").keys(&[LEFT]).clear_screen().type_bytes(b"b");
    assert_eq!(session.editor.line(), "abc");
    assert_eq!(session.editor.cursor(), 2);
    // The new character and the rest of the line, then back over the rest.
    assert_eq!(session.screen, "bc\x08");
}

#[test]
fn backspace_in_the_middle_echo() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abcd").keys(&[LEFT, LEFT]).clear_screen().type_bytes(DEL);
    assert_eq!(session.editor.line(), "acd");
    assert_eq!(session.editor.cursor(), 1);
    assert_eq!(session.screen, "\x08cd \x08\x08\x08");
}

#[test]
fn delete_key() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abc").keys(&[HOME]).clear_screen().keys(&[DELETE]);
    assert_eq!(session.editor.line(), "bc");
    assert_eq!(session.editor.cursor(), 0);
    assert_eq!(session.screen, "bc \x08\x08\x08");
    // At the end of the line there is nothing to delete.
    session.keys(&[END]).clear_screen().keys(&[DELETE]);
    assert_eq!(session.editor.line(), "bc");
    assert_eq!(session.screen, "");
}

#[test]
fn cursor_movement_and_insertion() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"wrd").keys(&[LEFT]).type_bytes(b"l");
    assert_eq!((session.editor.line(), session.editor.cursor()), ("wrld", 3));
    session.keys(&[HOME]).type_bytes(b"hello ");
    assert_eq!((session.editor.line(), session.editor.cursor()), ("hello wrld", 6));
    session.keys(&[RIGHT]).type_bytes(b"o");
    assert_eq!(session.editor.line(), "hello world");
    // Right at the end and left at the start do nothing.
    session.keys(&[END, RIGHT, RIGHT]).type_bytes(b"!");
    assert_eq!(session.editor.line(), "hello world!");
    session.keys(&[HOME, LEFT, LEFT]).type_bytes(b"<");
    assert_eq!(session.editor.line(), "<hello world!");
    session.type_bytes(b"\r");
    assert_eq!(session.lines(), ["<hello world!"]);
}

#[test]
fn arrow_echo() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abc").clear_screen().keys(&[LEFT, LEFT]);
    assert_eq!(session.screen, "\x08\x08");
    // Moving right rewrites the character passed over.
    session.clear_screen().keys(&[RIGHT]);
    assert_eq!(session.screen, "b");
    session.clear_screen().keys(&[HOME]);
    assert_eq!(session.screen, "\x08\x08");
    session.clear_screen().keys(&[END]);
    assert_eq!(session.screen, "abc");
}

#[test]
fn all_home_and_end_sequences() {
    for (home, end) in [(&b"\x1b[H"[..], &b"\x1b[F"[..]), (b"\x1b[1~", b"\x1b[4~"), (b"\x1bOH", b"\x1bOF")] {
        let mut session = Session::with_prompt("> ");
        session.type_bytes(b"mid").type_bytes(home).type_bytes(b"<").type_bytes(end).type_bytes(b">");
        assert_eq!(session.editor.line(), "<mid>", "home {home:?}, end {end:?}");
    }
}

#[test]
fn ctrl_c_drops_the_line() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"half").keys(&[LEFT]).clear_screen().keys(&[CTRL_C]);
    assert_eq!(session.events, [EditorEvent::Interrupted]);
    assert_eq!(session.screen, "^C\r\n> ");
    assert_eq!(session.editor.line(), "");
    assert_eq!(session.editor.cursor(), 0);
    session.type_bytes(b"x\r");
    assert_eq!(session.lines(), ["x"]);
    // The dropped line is not remembered.
    assert_eq!(session.history(), ["x"]);
}

#[test]
fn ctrl_u_kills_the_line() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abc").keys(&[LEFT]).clear_screen().keys(&[CTRL_U]);
    assert_eq!(session.editor.line(), "");
    assert_eq!(session.editor.cursor(), 0);
    // Back to the start, blank the three columns, back again.
    assert_eq!(session.screen, "\x08\x08   \x08\x08\x08");
    session.type_bytes(b"new\r");
    assert_eq!(session.lines(), ["new"]);
}

#[test]
fn history_walks_back_and_forth_to_the_draft() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"one\rtwo\rthree\rdra");
    let mut seen = Vec::new();
    for key in [UP, UP, UP, UP, DOWN, DOWN, DOWN, DOWN] {
        session.keys(&[key]);
        seen.push(String::from(session.editor.line()));
        assert_eq!(session.editor.cursor(), session.editor.line().len());
    }
    assert_eq!(seen, ["three", "two", "one", "one", "two", "three", "dra", "dra"]);
    session.type_bytes(b"ft\r");
    assert_eq!(session.lines(), ["one", "two", "three", "draft"]);
}

#[test]
fn history_recall_echo() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abcdef\rxy").clear_screen().keys(&[UP]);
    assert_eq!(session.screen, "\x08\x08abcdef");
    // Back to the shorter draft: the old line's extra columns are blanked.
    session.clear_screen().keys(&[DOWN]);
    assert_eq!(session.screen, "\x08\x08\x08\x08\x08\x08xy    \x08\x08\x08\x08");
    assert_eq!(session.editor.line(), "xy");
}

#[test]
fn up_and_down_with_no_history_do_nothing() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ab").clear_screen().keys(&[UP, DOWN, DOWN]);
    assert_eq!(session.editor.line(), "ab");
    assert_eq!(session.screen, "");
}

#[test]
fn editing_a_recalled_line_leaves_history_alone() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"peek 1\r").keys(&[UP, DEL]).type_bytes(b"2\r");
    assert_eq!(session.lines(), ["peek 1", "peek 2"]);
    assert_eq!(session.history(), ["peek 1", "peek 2"]);
    // Edit a recalled line, walk away from it, come back: the entry is intact.
    session.keys(&[UP, UP, CTRL_U]).type_bytes(b"junk").keys(&[DOWN, UP]);
    assert_eq!(session.editor.line(), "peek 1");
}

#[test]
fn history_skips_blanks_and_repeats() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"a\ra\r  \r\rb\ra\r");
    assert_eq!(session.history(), ["a", "b", "a"]);
}

#[test]
fn history_is_bounded() {
    let mut session = Session::new(LineEditor::with_limits("> ", 16, 3));
    session.type_bytes(b"1\r2\r3\r4\r5\r");
    assert_eq!(session.history(), ["3", "4", "5"]);
    session.keys(&[UP, UP, UP, UP]);
    assert_eq!(session.editor.line(), "3");
}

#[test]
fn the_default_history_keeps_32_lines() {
    let mut session = Session::with_prompt("> ");
    for n in 0..40 {
        session.type_bytes(format!("line {n}\r").as_bytes());
    }
    let history = session.history();
    assert_eq!(history.len(), shell::DEFAULT_HISTORY);
    assert_eq!(history.first(), Some(&"line 8"));
    assert_eq!(history.last(), Some(&"line 39"));
}

#[test]
fn full_line_rings_the_bell() {
    let mut session = Session::new(LineEditor::with_limits("> ", 4, 8));
    session.clear_screen().type_bytes(b"abcdef");
    assert_eq!(session.editor.line(), "abcd");
    assert_eq!(session.screen, "abcd\x07\x07");
    // Inserting in the middle of a full line is refused too.
    session.keys(&[HOME]).clear_screen().type_bytes(b"z");
    assert_eq!(session.editor.line(), "abcd");
    assert_eq!(session.screen, "\x07");
    session.type_bytes(b"\r");
    assert_eq!(session.lines(), ["abcd"]);
}

#[test]
fn the_default_line_limit_is_512() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(&[b'x'; 600]);
    assert_eq!(session.editor.line().len(), shell::DEFAULT_MAX_LINE);
    assert_eq!(session.editor.max_len(), 512);
}

#[test]
fn escape_sequences_split_across_calls() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ab").clear_screen();
    session.type_bytes(b"\x1b");
    session.type_bytes(b"[");
    assert_eq!((session.editor.line(), session.editor.cursor()), ("ab", 2));
    assert_eq!(session.screen, "");
    session.type_bytes(b"D");
    assert_eq!(session.editor.cursor(), 1);
    session.type_bytes(b"\x1b").type_bytes(b"[").type_bytes(b"3");
    assert_eq!(session.editor.line(), "ab");
    session.type_bytes(b"~");
    assert_eq!(session.editor.line(), "a");
}

#[test]
fn junk_is_ignored() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ab").keys(&[LEFT]).clear_screen();
    // NUL, Ctrl-A, tab, bytes above ASCII, unknown sequences (Insert, Shift-Tab,
    // F1, Alt-x), and a sequence interrupted by the start of another.
    session.type_bytes(b"\x00\x01\t\x80\xff\xc3\xa9\x1b[2~\x1b[Z\x1bOP\x1bx\x1b[5\x1b[15;2~");
    assert_eq!(session.editor.line(), "ab");
    assert_eq!(session.editor.cursor(), 1);
    assert_eq!(session.screen, "");
    assert!(session.events.is_empty());
    // And the editor still works afterwards.
    session.type_bytes(b"X\r");
    assert_eq!(session.lines(), ["aXb"]);
}

#[test]
fn show_prompt_redraws_the_line_with_the_cursor_in_place() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"abc").keys(&[LEFT, LEFT]).clear_screen();
    session.editor.show_prompt(&mut session.screen);
    assert_eq!(session.screen, "> abc\x08\x08");
}

#[test]
fn prompt_can_be_changed() {
    let mut session = Session::with_prompt("> ");
    session.editor.set_prompt("as(kernel)# ");
    assert_eq!(session.editor.prompt(), "as(kernel)# ");
    session.clear_screen().type_bytes(b"x\r");
    assert_eq!(session.screen, "x\r\nas(kernel)# ");
}

/// Bytes that mostly make keys, with some junk.
fn key_stream() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => (0x20u8..0x7f).prop_map(|b| vec![b]),
        1 => prop::sample::select(vec![UP, DOWN, LEFT, RIGHT, HOME, END, DELETE, DEL, b"\x08", CTRL_U, b"\r"])
            .prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(key, 0..120).prop_map(|keys| keys.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever is typed, a terminal fed the editor's output shows the prompt
    /// and the line on the cursor's row, with the cursor where the editor
    /// says, and the line stays printable and within its limit.
    #[test]
    fn the_screen_follows_the_line(bytes in key_stream()) {
        let mut session = Session::new(LineEditor::with_limits("$ ", 12, 4));
        let mut terminal = Terminal::new();
        terminal.show(&session.screen);
        for &byte in &bytes {
            session.clear_screen().type_bytes(&[byte]);
            terminal.show(&session.screen);
            let editor = &session.editor;
            prop_assert!(editor.line().len() <= editor.max_len());
            prop_assert!(editor.cursor() <= editor.line().len());
            prop_assert!(editor.line().bytes().all(|b| (0x20..0x7f).contains(&b)));
            let expected = format!("{}{}", editor.prompt(), editor.line());
            prop_assert_eq!(terminal.current_row(), expected.trim_end());
            prop_assert_eq!(terminal.column, editor.prompt().len() + editor.cursor());
        }
        for line in session.lines() {
            prop_assert!(line.len() <= 12);
        }
        prop_assert!(session.editor.history().len() <= 4);
    }

    /// Arbitrary bytes never make the editor panic or overflow its line.
    #[test]
    fn any_bytes_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut session = Session::new(LineEditor::with_limits("> ", 16, 4));
        session.type_bytes(&bytes);
        prop_assert!(session.editor.line().len() <= 16);
        prop_assert!(session.editor.cursor() <= session.editor.line().len());
        for line in session.lines() {
            prop_assert!(line.len() <= 16);
        }
    }
}
