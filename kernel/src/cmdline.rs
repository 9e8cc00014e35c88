//! The kernel command line (`-append "..."`): options and the run mode.
//!
//! ```text
//! [log=trace|debug|info|warn|error] [frames=N] [shelltest=quick|large|4k|off]
//!     [test | script=<commands to the end of the line> | script=@NAME
//!      | init=PATH [-- ARG...]]
//! ```
//! Without `test`, `script=` or `init=`, the kernel starts the interactive
//! shell.
//!
//! `init=PATH` runs the program PATH of the initrd as process 1 instead of
//! the shell ([`Init`]); the words after a word `--` are its arguments
//! (`argv[1..]`), as on Linux. Arguments are whitespace-separated words:
//! an argument holding a space cannot be given. `init=` together with
//! `test` or `script=` is refused at boot.
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
    /// The program to run as process 1 instead of the shell (`init=`).
    pub init: Option<Init<'a>>,
}

/// The program `init=PATH [-- ARG...]` names: run as process 1, with the
/// console as its standard input, output and error; the kernel powers off
/// when it ends, with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Init<'a> {
    /// Its path in the initrd (`/bin/NAME`).
    pub path: &'a str,
    /// Its arguments after `argv[0]`: the words after `--`, whitespace-separated.
    pub args: &'a str,
}

impl<'a> Init<'a> {
    /// Its arguments, one word each (`argv[1..]`).
    pub fn arguments(&self) -> impl Iterator<Item = &'a str> {
        self.args.split_whitespace()
    }
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
            init: None,
        };
        // `script=` takes the rest of the line, spaces and all; so does a
        // word `--` (the init's arguments): whichever comes first.
        let (mut words, mut script, mut init_args) = (line, None, None);
        match (find_script(line), find_word(line, "--")) {
            (Some(start), dashes) if dashes.is_none_or(|dashes| start < dashes) => {
                words = &line[..start];
                script = Some(&line[start + "script=".len()..]);
            }
            (_, Some(dashes)) => {
                words = &line[..dashes];
                init_args = Some(line[dashes + "--".len()..].trim());
            }
            (_, None) => {}
        }
        for word in words.split_whitespace() {
            match word.split_once('=') {
                None if word == "test" => options.mode = Mode::Test,
                Some(("init", path)) => options.init = Some(Init { path, args: "" }),
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
        match (&mut options.init, init_args) {
            (Some(init), Some(args)) => init.args = args,
            // Arguments for no init: each is reported.
            (None, Some(args)) => args.split_whitespace().for_each(|word| unknown(UnknownOption(word))),
            (_, None) => {}
        }
        options
    }
}

/// The byte offset of the first whitespace-separated word of `line` that is
/// exactly `word`.
fn find_word(line: &str, word: &str) -> Option<usize> {
    line.split_whitespace()
        .find(|candidate| *candidate == word)
        .map(|found| found.as_ptr() as usize - line.as_ptr() as usize)
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
