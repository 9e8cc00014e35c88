//! The kernel command line (`-append "..."`): options and the run mode.
//!
//! ```text
//! [log=trace|debug|info|warn|error] [frames=N] [shelltest=quick|large|4k|off]
//!     [test | script=<commands to the end of the line>]
//! ```
//! Without `test` or `script=`, the kernel starts the interactive shell.

use log::LevelFilter;

/// What the kernel does once it has booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// The interactive shell on the serial console.
    Interactive,
    /// Run the in-kernel tests, then power off with their status.
    Test,
    /// Run these shell commands (`;`-separated), then power off with their status.
    Script(&'a str),
}

/// The options parsed from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions<'a> {
    /// The run mode.
    pub mode: Mode<'a>,
    /// The log level (`log=`); info by default.
    pub log_level: LevelFilter,
    /// At most this many frames are left to the frame allocator after the
    /// heap is carved out (`frames=N`), for memory-exhaustion tests.
    pub frame_cap: Option<usize>,
    /// What each shell's startup test does (`shelltest=`); `quick` by default.
    pub shell_test: ShellTest,
}

/// What the shell test at startup does (NK's paging lab's first test: a new
/// address space with an eager identity map and a lazy alias, compared
/// through both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellTest {
    /// The steps of NK's test, comparing 4 MiB with one lazy fault per
    /// 4 KiB page (1,024 faults): fast enough for every boot.
    Quick,
    /// NK's test comparing 1 GiB, lazy faults mapping the largest page that
    /// fits (a couple of faults).
    Large,
    /// NK's test exactly: 1 GiB, one lazy fault per 4 KiB page (262,144 faults).
    Small4K,
    /// No startup test: each shell stays in its creator's address space.
    Off,
}

/// A word the parser did not understand (reported, then ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownOption<'a>(pub &'a str);

impl<'a> KernelOptions<'a> {
    /// Parses `line`, reporting each word it does not understand to `unknown`.
    pub fn parse(line: &'a str, mut unknown: impl FnMut(UnknownOption<'a>)) -> KernelOptions<'a> {
        let mut options = KernelOptions {
            mode: Mode::Interactive,
            log_level: LevelFilter::Info,
            frame_cap: None,
            shell_test: ShellTest::Quick,
        };
        // `script=` takes the rest of the line, spaces and all.
        let (words, script) = match find_script(line) {
            Some(start) => (&line[..start], Some(&line[start + "script=".len()..])),
            None => (line, None),
        };
        for word in words.split_whitespace() {
            match word.split_once('=') {
                None if word == "test" => options.mode = Mode::Test,
                Some(("log", level)) => match parse_level(level) {
                    Some(level) => options.log_level = level,
                    None => unknown(UnknownOption(word)),
                },
                Some(("frames", count)) => match aspace::parse::parse_number(count) {
                    Ok(count) => options.frame_cap = Some(count as usize),
                    Err(_) => unknown(UnknownOption(word)),
                },
                Some(("shelltest", test)) => match test {
                    "quick" => options.shell_test = ShellTest::Quick,
                    "large" => options.shell_test = ShellTest::Large,
                    "4k" => options.shell_test = ShellTest::Small4K,
                    "off" => options.shell_test = ShellTest::Off,
                    _ => unknown(UnknownOption(word)),
                },
                _ => unknown(UnknownOption(word)),
            }
        }
        if let Some(script) = script {
            options.mode = Mode::Script(script.trim());
        }
        options
    }
}

/// The byte offset of a `script=` that starts a word.
fn find_script(line: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = line[from..].find("script=") {
        let start = from + offset;
        if start == 0 || line.as_bytes()[start - 1].is_ascii_whitespace() {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

fn parse_level(level: &str) -> Option<LevelFilter> {
    Some(match level {
        "trace" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        "off" => LevelFilter::Off,
        _ => return None,
    })
}
