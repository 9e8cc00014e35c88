//! The kernel command line (`-append "..."`): options and the run mode.
//!
//! ```text
//! [log=trace|debug|info|warn|error] [frames=N] [shelltest=quick|large|4k|off]
//!     [test | script=<commands to the end of the line> | script=@NAME]
//! ```
//! Without `test` or `script=`, the kernel starts the interactive shell.
//!
//! `script=` runs the commands that follow it (`;`-separated) to the end of
//! the line, or, with `script=@NAME`, the commands of the initrd file NAME
//! (separated by `;` or line ends): [`script_commands`]. The command line
//! holds at most [`MAX_COMMAND_LINE`](crate::boot_info::MAX_COMMAND_LINE)
//! bytes (QEMU's PVH loader holds no more; a longer one is refused at boot,
//! never cut), so `cargo xtask run -- "..."` always passes its script as
//! the initrd file [`SCRIPT_FILE`] with `script=@.script`, whatever its
//! length. Short scripts typed by hand (`--cmdline "script=help; mem"`) and
//! words such as `script=bench` still work inline. A missing script file,
//! or one that is not UTF-8 text, fails the boot with a message.

use log::LevelFilter;

/// What the kernel does once it has booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// The interactive shell on the serial console.
    Interactive,
    /// Run the in-kernel tests, then power off with their status.
    Test,
    /// Run these shell commands (`;`-separated), then power off with their
    /// status; `@NAME` names an initrd file holding them ([`script_commands`]).
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

/// The name of the initrd file that `cargo xtask run -- "..."` puts its
/// script in (the command line then says `script=@.script`). It is an
/// ordinary file: `ls` lists it and `cat .script` prints it.
#[cfg(feature = "ktest")]
pub const SCRIPT_FILE: &str = ".script";

/// Where the commands of `script=` are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptSource<'a> {
    /// On the command line itself.
    Inline(&'a str),
    /// In the initrd file of this name (`script=@NAME`).
    File(&'a str),
}

impl<'a> ScriptSource<'a> {
    /// Where the commands of `script` (the text after `script=`) are.
    pub fn of(script: &'a str) -> ScriptSource<'a> {
        match script.trim().strip_prefix('@') {
            Some(name) => ScriptSource::File(name.trim()),
            None => ScriptSource::Inline(script),
        }
    }
}

/// The commands of `script` (the text after `script=`): itself, or with
/// `@NAME` the text of the initrd file NAME, whole. An error names the file
/// and what is wrong with it.
pub fn script_commands(script: &str) -> Result<&str, alloc::string::String> {
    match ScriptSource::of(script) {
        ScriptSource::Inline(commands) => Ok(commands),
        ScriptSource::File(name) => {
            let file = crate::fs::find(name).map_err(|error| alloc::format!("script=@{name}: {error}"))?;
            core::str::from_utf8(file.data()).map_err(|error| {
                alloc::format!("script=@{name}: the file is not UTF-8 text (byte {})", error.valid_up_to())
            })
        }
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
