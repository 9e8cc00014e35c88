//! The line editor driven as a console would drive it: byte by byte, with the
//! echo checked both as exact bytes and as what a terminal would show.

use core::fmt::Write;

use proptest::prelude::*;
use shell::{arg_count, arg_number, Command, CommandError, EditorEvent, LineEditor, Shell, Status};

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
                EditorEvent::Interrupted | EditorEvent::TooLong { .. } => None,
            })
            .collect()
    }

    fn history(&self) -> Vec<&str> {
        self.editor.history().iter().collect()
    }
}

/// How the editor shows a character of the line: a tab as a space, C0
/// controls as their control pictures, C1 controls as U+FFFD.
fn shown(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => ' ',
            '\0'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap(),
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// A dumb terminal: printable characters (one column each, whatever the
/// character) overwrite the cell under the cursor and move it right,
/// backspace moves it left, `\r` to column 0, `\n` down a row, the bell does
/// nothing.
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
fn a_line_over_the_limit_is_refused_whole() {
    let mut session = Session::new(LineEditor::with_limits("> ", 4, 8));
    session.clear_screen().type_bytes(b"abcdef");
    assert_eq!(session.editor.line(), "abcd");
    assert_eq!(session.editor.refused(), 2);
    // The bell rings once, at the first refused character.
    assert_eq!(session.screen, "abcd\x07");
    // Inserting in the middle of a full line is refused too, silently now.
    session.keys(&[HOME]).clear_screen().type_bytes(b"z");
    assert_eq!(session.editor.line(), "abcd");
    assert_eq!(session.editor.refused(), 3);
    assert_eq!(session.screen, "");
    // Enter hands nothing over: it says why and prompts again.
    session.clear_screen().type_bytes(b"\r");
    assert_eq!(session.events, [EditorEvent::TooLong { typed: 7, limit: 4 }]);
    assert!(session.lines().is_empty());
    assert_eq!(session.screen, "\r\nline too long: 7 characters typed, the limit is 4; nothing was run\r\n> ");
    assert_eq!((session.editor.line(), session.editor.cursor(), session.editor.refused()), ("", 0, 0));
    // Not remembered, and the next line is fine.
    assert!(session.history().is_empty());
    session.type_bytes(b"ok\r");
    assert_eq!(session.lines(), ["ok"]);
}

#[test]
fn a_line_exactly_at_the_limit_is_handed_over() {
    let mut session = Session::new(LineEditor::with_limits("> ", 4, 8));
    session.clear_screen().type_bytes("abcé\r".as_bytes());
    assert_eq!(session.lines(), ["abcé"]);
    assert!(!session.screen.contains('\x07'));
}

#[test]
fn erasing_after_a_refusal_does_not_bring_the_lost_characters_back() {
    let mut session = Session::new(LineEditor::with_limits("> ", 4, 8));
    session.type_bytes(b"abcdef").keys(&[DEL, DEL, DEL]).type_bytes(b"\r");
    // The count is of the line at its longest, which was over the limit.
    assert_eq!(session.events, [EditorEvent::TooLong { typed: 6, limit: 4 }]);
    // Ctrl-U drops the whole line, refused characters included.
    session.type_bytes(b"abcdef").keys(&[CTRL_U]).type_bytes(b"ok\r");
    assert_eq!(session.lines(), ["ok"]);
    // Ctrl-C too.
    session.type_bytes(b"abcdef").keys(&[CTRL_C]).type_bytes(b"ok2\r");
    assert_eq!(session.lines(), ["ok", "ok2"]);
}

#[test]
fn history_recall_keeps_the_drafts_refusals() {
    let mut session = Session::new(LineEditor::with_limits("> ", 4, 8));
    session.type_bytes(b"one\rabcdef");
    // A history entry is a whole line: Enter on it runs it.
    session.keys(&[UP]).type_bytes(b"\r");
    assert_eq!(session.lines(), ["one", "one"]);
    // Back down to the overlong draft: still refused.
    session.type_bytes(b"abcdef").keys(&[UP, DOWN]).type_bytes(b"\r");
    assert_eq!(session.events.last(), Some(&EditorEvent::TooLong { typed: 6, limit: 4 }));
    assert_eq!(session.lines(), ["one", "one"]);
}

#[test]
fn the_default_line_limit_is_4096_characters() {
    assert_eq!(shell::DEFAULT_MAX_LINE, 4096);
    let mut session = Session::with_prompt("> ");
    assert_eq!(session.editor.max_len(), 4096);
    // 4096 characters of two bytes each fit.
    let line = "é".repeat(4096);
    session.type_bytes(line.as_bytes()).type_bytes(b"\r");
    assert_eq!(session.lines(), [line.as_str()]);
}

#[test]
fn a_10000_character_line_runs_nothing() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"echo ").type_bytes(&[b'x'; 9995]);
    assert_eq!(session.editor.line().chars().count(), 4096);
    assert_eq!(session.editor.refused(), 10_000 - 4096);
    session.clear_screen().type_bytes(b"\r");
    assert_eq!(session.events, [EditorEvent::TooLong { typed: 10_000, limit: 4096 }]);
    assert_eq!(session.screen, "\r\nline too long: 10000 characters typed, the limit is 4096; nothing was run\r\n> ");
    assert_eq!(session.screen.matches('\x07').count(), 0, "the bell rang when the line filled, not again");
}

/// Commands for checking what a typed line does once run.
#[derive(Default)]
struct Regions {
    removed: Vec<(u64, u64)>,
}

fn remove(regions: &mut Regions, args: &[&str], _: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 2)?;
    let start = arg_number(args, 0, "address")?;
    // Without a length, the whole region goes: what a lost length would do.
    let len = if args.len() == 2 { arg_number(args, 1, "length")? } else { u64::MAX };
    regions.removed.push((start, len));
    Ok(())
}

static REGION_COMMANDS: &[Command<Regions>] =
    &[Command { name: "rm", usage: "rm ADDR [LEN]", help: "remove LEN bytes at ADDR", run: remove }];

/// Types `bytes` at a console editor and runs each line it hands over.
fn run_typed(bytes: &[u8]) -> (Regions, String, Vec<Status>) {
    let shell = Shell::new(REGION_COMMANDS);
    let mut regions = Regions::default();
    let mut editor = LineEditor::new("> ");
    let mut console = String::new();
    let mut statuses = Vec::new();
    editor.show_prompt(&mut console);
    for &byte in bytes {
        if let Some(EditorEvent::Line(line)) = editor.feed(byte, &mut console) {
            statuses.push(shell.run_line(&mut regions, &line, &mut console));
            editor.show_prompt(&mut console);
        }
    }
    (regions, console, statuses)
}

#[test]
fn a_long_line_does_not_lose_its_last_argument() {
    let line = format!("rm 0x1000{}4k\r", " ".repeat(5000));
    let (regions, console, statuses) = run_typed(line.as_bytes());
    assert!(regions.removed.is_empty(), "a cut line ran: {:?}", regions.removed);
    assert!(statuses.is_empty());
    let typed = line.chars().count() - 1;
    let message = format!("line too long: {typed} characters typed, the limit is 4096; nothing was run\r\n> ");
    assert!(console.ends_with(&message), "{:?}", &console[console.len() - 100..]);
    // Within the limit it runs with its length.
    let line = format!("rm 0x1000{}4k\r", " ".repeat(4000));
    let (regions, _, statuses) = run_typed(line.as_bytes());
    assert_eq!(regions.removed, [(0x1000, 4096)]);
    assert_eq!(statuses, [Status::Succeeded]);
}

#[test]
fn a_stray_character_in_a_number_is_not_dropped() {
    // A non-breaking space, a Unicode digit, invalid UTF-8, a control byte:
    // each stays in the line, so the number is refused instead of read as 4k.
    let cases: [(&[u8], &str); 5] = [
        ("rm 0x1000 4\u{a0}k\r".as_bytes(), "unexpected character U+00A0 in number"),
        ("rm 0x1000 ٤k\r".as_bytes(), "unexpected character '٤' (U+0664) in number"),
        (b"rm 0x1000 4\xffk\r", "unexpected character U+FFFD in number"),
        (b"rm 0x1000 4\xe2\x82k\r", "unexpected character U+FFFD in number"),
        (b"rm 0x1000 4\x01k\r", "unexpected character U+0001 in number"),
    ];
    for (typed, reason) in cases {
        let (regions, console, statuses) = run_typed(typed);
        assert!(regions.removed.is_empty(), "{typed:x?} ran: {:?}", regions.removed);
        assert_eq!(statuses, [Status::Failed], "{typed:x?}");
        assert!(console.contains("\r\nrm: bad argument '"), "{console:?}");
        assert!(console.contains(&format!("not a valid length: {reason}")), "{typed:x?}: {console:?}");
    }
    // A tab separates words, as on any shell.
    let (regions, _, _) = run_typed(b"rm 0x1000\t4k\r");
    assert_eq!(regions.removed, [(0x1000, 4096)]);
}

#[test]
fn non_ascii_characters_are_kept_and_echoed() {
    let mut session = Session::with_prompt("> ");
    session.clear_screen().type_bytes("as new paging nöm\u{a0}e ٤ 𝟒\r".as_bytes());
    assert_eq!(session.lines(), ["as new paging nöm\u{a0}e ٤ 𝟒"]);
    assert_eq!(session.screen, "as new paging nöm\u{a0}e ٤ 𝟒\r\n> ");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let mut session = Session::with_prompt("> ");
    session.clear_screen().type_bytes(b"a\xffb\xc3c\xe2\x82\r\xed\xa0\x80\r");
    assert_eq!(session.lines(), ["a\u{fffd}b\u{fffd}c\u{fffd}", "\u{fffd}\u{fffd}\u{fffd}"]);
    assert_eq!(session.screen, "a\u{fffd}b\u{fffd}c\u{fffd}\r\n> \u{fffd}\u{fffd}\u{fffd}\r\n> ");
}

#[test]
fn control_bytes_are_kept_and_shown_as_pictures() {
    let mut session = Session::with_prompt("> ");
    session.clear_screen().type_bytes(b"4\x01k\x00\tx\r");
    assert_eq!(session.lines(), ["4\x01k\0\tx"]);
    assert_eq!(session.screen, "4\u{2401}k\u{2400} x\r\n> ");
    // A C1 control typed as UTF-8 is kept too, shown as U+FFFD.
    session.clear_screen().type_bytes("a\u{9b}b\r".as_bytes());
    assert_eq!(session.lines()[1], "a\u{9b}b");
    assert_eq!(session.screen, "a\u{fffd}b\r\n> ");
}

#[test]
fn the_cursor_moves_by_characters() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes("aé٤𝟒b".as_bytes());
    assert_eq!(session.editor.cursor(), 5);
    session.keys(&[LEFT, LEFT]).clear_screen().type_bytes("ü".as_bytes());
    assert_eq!((session.editor.line(), session.editor.cursor()), ("aé٤ü𝟒b", 4));
    // The new character, the rest, and back over the rest: one column each.
    assert_eq!(session.screen, "ü𝟒b\x08\x08");
    session.clear_screen().keys(&[DEL]);
    assert_eq!((session.editor.line(), session.editor.cursor()), ("aé٤𝟒b", 3));
    assert_eq!(session.screen, "\x08𝟒b \x08\x08\x08");
    session.clear_screen().keys(&[RIGHT]);
    assert_eq!(session.screen, "𝟒");
    session.keys(&[HOME, DELETE, RIGHT]).clear_screen().keys(&[DELETE]);
    assert_eq!((session.editor.line(), session.editor.cursor()), ("é𝟒b", 1));
    assert_eq!(session.screen, "𝟒b \x08\x08\x08");
    session.clear_screen().keys(&[END]);
    assert_eq!(session.screen, "𝟒b");
    session.clear_screen();
    session.editor.show_prompt(&mut session.screen);
    assert_eq!(session.screen, "> é𝟒b");
    session.type_bytes(b"\r").keys(&[UP]);
    assert_eq!((session.editor.line(), session.editor.cursor()), ("é𝟒b", 3));
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
fn unknown_escape_sequences_are_ignored() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ab").keys(&[LEFT]).clear_screen();
    // Unknown sequences (Insert, Shift-Tab, F1, Alt-x), and a sequence
    // interrupted by the start of another: keys, not text.
    session.type_bytes(b"\x1b[2~\x1b[Z\x1bOP\x1bx\x1b[5\x1b[15;2~");
    assert_eq!(session.editor.line(), "ab");
    assert_eq!(session.editor.cursor(), 1);
    assert_eq!(session.screen, "");
    assert!(session.events.is_empty());
    // And the editor still works afterwards.
    session.type_bytes(b"X\r");
    assert_eq!(session.lines(), ["aXb"]);
}

#[test]
fn no_byte_typed_vanishes() {
    let mut session = Session::with_prompt("> ");
    session.type_bytes(b"ab").keys(&[LEFT]).clear_screen();
    // NUL, Ctrl-A, tab, bytes that are not UTF-8, a two-byte letter.
    session.type_bytes(b"\x00\x01\t\x80\xff\xc3\xa9");
    assert_eq!(session.editor.line(), "a\0\x01\t\u{fffd}\u{fffd}éb");
    assert_eq!(session.editor.cursor(), 7);
    session.type_bytes(b"\r");
    assert_eq!(session.lines(), ["a\0\x01\t\u{fffd}\u{fffd}éb"]);
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

/// Bytes that mostly make keys, with some junk: characters beyond ASCII,
/// control bytes, and bytes that are not UTF-8.
fn key_stream() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => (0x20u8..0x7f).prop_map(|b| vec![b]),
        1 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        1 => prop::sample::select(vec!["\u{a0}", "é", "٤", "𝟒", "\t", "\x01", "\u{9b}"]).prop_map(|s| s.as_bytes().to_vec()),
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
            prop_assert!(editor.line().chars().count() <= editor.max_len());
            prop_assert!(editor.cursor() <= editor.line().chars().count());
            let expected = format!("{}{}", editor.prompt(), shown(editor.line()));
            prop_assert_eq!(terminal.current_row(), expected.trim_end());
            prop_assert_eq!(terminal.column, editor.prompt().chars().count() + editor.cursor());
        }
        for line in session.lines() {
            prop_assert!(line.chars().count() <= 12);
        }
        for event in &session.events {
            if let EditorEvent::TooLong { typed, limit } = event {
                prop_assert!(*typed > 12 && *limit == 12);
            }
        }
        prop_assert!(session.editor.history().len() <= 4);
    }

    /// Arbitrary bytes never make the editor panic or overflow its line.
    #[test]
    fn any_bytes_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut session = Session::new(LineEditor::with_limits("> ", 16, 4));
        session.type_bytes(&bytes);
        prop_assert!(session.editor.line().chars().count() <= 16);
        prop_assert!(session.editor.cursor() <= session.editor.line().chars().count());
        for line in session.lines() {
            prop_assert!(line.chars().count() <= 16);
        }
    }

    /// Text typed without editing keys arrives whole: the line is the lossy
    /// UTF-8 decoding of the bytes typed, or, over the limit, nothing but a
    /// `TooLong` that counts every character.
    #[test]
    fn typed_text_arrives_whole(
        lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6),
        limit in 0usize..24,
    ) {
        // Leave out the bytes that are keys (Enter, Backspace, Ctrl-C, Ctrl-U, ESC).
        let keys = [b'\r', b'\n', 0x08, 0x7f, 0x03, 0x15, 0x1b];
        let mut session = Session::new(LineEditor::with_limits("> ", limit, 4));
        let mut expected = Vec::new();
        for bytes in &lines {
            let text: Vec<u8> = bytes.iter().copied().filter(|b| !keys.contains(b)).collect();
            session.type_bytes(&text).type_bytes(b"\r");
            let line = String::from_utf8_lossy(&text).into_owned();
            let typed = line.chars().count();
            expected.push(if typed > limit { EditorEvent::TooLong { typed, limit } } else { EditorEvent::Line(line) });
        }
        prop_assert_eq!(&session.events, &expected);
    }
}
