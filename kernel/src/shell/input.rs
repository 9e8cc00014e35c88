//! Where the shells' commands come from, and where their output goes.
//!
//! There is one console, shared by every shell: only the shell that owns it
//! (the newest one; its parent waits for it) reads. Its lines come either
//! from a person at the serial port, through the line editor, or from the
//! script given on the kernel command line (`script=...`), one command at a
//! time, each echoed after the prompt as if it had been typed. When the
//! script runs out, the kernel powers off, with success only if every
//! command succeeded.

use crate::qemu::{self, ExitStatus};
use crate::serial::{self, SerialWriter};
use crate::sync::IrqMutex;
use crate::thread;
use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt::{self, Write};
use shell::{EditorEvent, LineEditor, Status};

/// How long the reader sleeps when no byte is waiting: the CPU idles until
/// the next timer tick instead of spinning on the UART.
const IDLE_SLEEP_MS: u64 = 1;

/// The commands of a scripted run still to come, and how the ones run went.
struct Script {
    pending: VecDeque<String>,
    failed: usize,
}

/// The script, in script mode; `None` when a person types the commands.
static SCRIPT: IrqMutex<Option<Script>> = IrqMutex::new(None);

/// Switches the console to script mode: from now on the shells read the
/// commands of `script` (separated by `;` and line ends).
pub fn start_script(script: &str) {
    let pending = shell::split_commands(script).into_iter().map(String::from).collect();
    *SCRIPT.lock() = Some(Script { pending, failed: 0 });
}

/// Counts a command's outcome towards the script's status.
pub fn record(status: Status) {
    if status == Status::Failed {
        record_failure();
    }
}

/// Counts a failure (a command's, or a startup test's) towards the script's
/// status. Without a script there is nothing to count.
pub fn record_failure() {
    if let Some(script) = SCRIPT.lock().as_mut() {
        script.failed += 1;
    }
}

/// Powers off: with success unless a scripted command failed.
pub fn power_off() -> ! {
    let failed = SCRIPT.lock().as_ref().map_or(0, |script| script.failed);
    qemu::exit(if failed == 0 { ExitStatus::Success } else { ExitStatus::Failure })
}

/// One shell's end of the console: its line editor (prompt and history).
pub struct ConsoleInput {
    editor: LineEditor,
}

impl ConsoleInput {
    /// Input for a shell whose prompt is `prompt`.
    pub fn new(prompt: &str) -> Self {
        ConsoleInput { editor: LineEditor::new(prompt) }
    }

    /// The next command line: the script's next command (echoed after the
    /// prompt), or the next line typed. When the script is over, powers off.
    pub fn next_line(&mut self) -> String {
        let scripted = {
            let mut script = SCRIPT.lock();
            script.as_mut().map(|script| script.pending.pop_front())
        };
        match scripted {
            Some(Some(command)) => {
                let _ = writeln!(Console, "{}{command}", self.editor.prompt());
                command
            }
            Some(None) => power_off(),
            None => self.read_typed_line(),
        }
    }

    /// Reads bytes from the serial port through the line editor until a
    /// line is entered; sleeps while none is waiting.
    fn read_typed_line(&mut self) -> String {
        self.editor.show_prompt(&mut Console);
        loop {
            let Some(byte) = serial::try_read_byte() else {
                thread::sleep_ms(IDLE_SLEEP_MS);
                continue;
            };
            match self.editor.feed(byte, &mut Console) {
                Some(EditorEvent::Line(line)) => return line,
                // Ctrl-C, or a line longer than the editor's limit: the
                // editor has already dropped the line, said why and prompted
                // again. Nothing runs.
                Some(EditorEvent::Interrupted | EditorEvent::TooLong { .. }) | None => {}
            }
        }
    }
}

/// The console as a `fmt::Write`: the serial port, with every line ended by
/// `\r\n` (QEMU puts the host terminal in raw mode), whether the text ends
/// its lines with `\n` (command output) or already with `\r\n` (the editor).
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // The serial writer turns each `\n` into `\r\n`; drop the `\r` of an
        // existing `\r\n` so that it is not doubled.
        let mut pieces = text.split("\r\n");
        if let Some(first) = pieces.next() {
            SerialWriter.write_str(first)?;
        }
        for piece in pieces {
            SerialWriter.write_str("\n")?;
            SerialWriter.write_str(piece)?;
        }
        Ok(())
    }
}
