//! The command table: finding commands, reporting their errors, running
//! lines and scripts, and `help`.

use core::fmt::Write;

use aspace::AspaceError;
use shell::{arg_count, arg_number, arg_number_or, arg_protection, Command, CommandError, ScriptResult, Shell, Status};

/// What the test commands act on: a record of what they were asked to do.
#[derive(Default)]
struct Machine {
    peeks: Vec<(u64, u64)>,
}

fn echo(_: &mut Machine, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    // Brackets show where each argument starts and ends.
    for arg in args {
        write!(out, "[{arg}]")?;
    }
    writeln!(out)?;
    Ok(())
}

fn peek(machine: &mut Machine, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 2)?;
    let addr = arg_number(args, 0, "address")?;
    let len = arg_number_or(args, 1, "length", 8)?;
    machine.peeks.push((addr, len));
    writeln!(out, "peeked {len} at {addr:#x}")?;
    Ok(())
}

fn protect(_: &mut Machine, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let prot = arg_protection(args, 0)?;
    writeln!(out, "flags {:#x}", prot.bits())?;
    Ok(())
}

fn fail(_: &mut Machine, _: &[&str], _: &mut dyn Write) -> Result<(), CommandError> {
    Err(CommandError::failed("it broke"))
}

fn aspace_error(_: &mut Machine, _: &[&str], _: &mut dyn Write) -> Result<(), CommandError> {
    Err(AspaceError::ZeroLength)?
}

static COMMANDS: &[Command<Machine>] = &[
    Command { name: "echo", usage: "echo [WORD]...", help: "print the words", run: echo },
    Command { name: "peek", usage: "peek ADDR [LEN]", help: "read LEN bytes at ADDR", run: peek },
    Command { name: "protect", usage: "protect FLAGS", help: "show the bits of FLAGS", run: protect },
    Command { name: "fail", usage: "fail", help: "always fails", run: fail },
    Command { name: "zero", usage: "zero", help: "fails like an address space", run: aspace_error },
];

/// The flag letters as the parser's error lists them: ` r w x ...`.
fn letters() -> String {
    aspace::Protection::LETTERS.iter().map(|(letter, _)| format!(" {letter}")).collect()
}

/// Runs one line; returns its status and output.
fn run_line(line: &str) -> (Status, String) {
    let shell = Shell::new(COMMANDS);
    let mut out = String::new();
    let status = shell.run_line(&mut Machine::default(), line, &mut out);
    (status, out)
}

#[test]
fn a_command_gets_its_arguments_and_context() {
    let shell = Shell::new(COMMANDS);
    let mut machine = Machine::default();
    let mut out = String::new();
    assert_eq!(shell.run_line(&mut machine, "peek 0x1000 4k", &mut out), Status::Succeeded);
    assert_eq!(shell.run_line(&mut machine, "  peek\t16  ", &mut out), Status::Succeeded);
    assert_eq!(machine.peeks, [(0x1000, 4096), (16, 8)]);
    assert_eq!(out, "peeked 4096 at 0x1000\npeeked 8 at 0x10\n");
}

#[test]
fn quoted_words_reach_the_command_whole() {
    assert_eq!(run_line(r#"echo "a b"  c "" "x;y""#), (Status::Succeeded, String::from("[a b][c][][x;y]\n")));
}

#[test]
fn empty_lines_run_nothing() {
    assert_eq!(run_line(""), (Status::Empty, String::new()));
    assert_eq!(run_line("  \t "), (Status::Empty, String::new()));
    assert_eq!(run_line(" ; ;"), (Status::Empty, String::new()));
}

#[test]
fn unknown_command() {
    assert_eq!(run_line("poke 1"), (Status::Failed, String::from("unknown command 'poke' (try 'help')\n")));
    // Names are matched exactly.
    assert_eq!(run_line("ECHO").0, Status::Failed);
}

#[test]
fn usage_errors_print_the_usage() {
    assert_eq!(run_line("peek"), (Status::Failed, String::from("usage: peek ADDR [LEN]\n")));
    assert_eq!(run_line("peek 1 2 3"), (Status::Failed, String::from("usage: peek ADDR [LEN]\n")));
}

#[test]
fn bad_arguments_name_the_argument() {
    assert_eq!(
        run_line("peek 0x10zz"),
        (
            Status::Failed,
            String::from("peek: bad argument '0x10zz': not a valid address: unexpected character 'z' in number\n")
        )
    );
    assert_eq!(
        run_line("peek 1 99999999999999999999"),
        (
            Status::Failed,
            String::from(
                "peek: bad argument '99999999999999999999': not a valid length: number does not fit in 64 bits\n"
            )
        )
    );
    assert_eq!(
        run_line("protect rwq"),
        (
            Status::Failed,
            format!("protect: bad argument 'rwq': not a valid protection: unknown flag 'q' (flags are{})\n", letters())
        )
    );
    assert_eq!(run_line("protect rwx"), (Status::Succeeded, String::from("flags 0x7\n")));
}

#[test]
fn failures_print_the_message() {
    assert_eq!(run_line("fail"), (Status::Failed, String::from("fail: it broke\n")));
    let (status, out) = run_line("zero");
    assert_eq!(status, Status::Failed);
    assert_eq!(out, format!("zero: {}\n", AspaceError::ZeroLength));
}

#[test]
fn unterminated_quote_runs_nothing() {
    let shell = Shell::new(COMMANDS);
    let mut machine = Machine::default();
    let mut out = String::new();
    assert_eq!(shell.run_line(&mut machine, "peek 1 \"2", &mut out), Status::Failed);
    assert_eq!(out, "error: unterminated quote: the '\"' at column 8 is never closed\n");
    assert!(machine.peeks.is_empty());
}

#[test]
fn a_line_may_hold_several_commands() {
    assert_eq!(run_line("echo a; echo b"), (Status::Succeeded, String::from("[a]\n[b]\n")));
    // A failure in the middle does not stop the rest, but fails the line.
    assert_eq!(run_line("echo a; fail; echo b"), (Status::Failed, String::from("[a]\nfail: it broke\n[b]\n")));
}

#[test]
fn run_command_takes_semicolons_literally() {
    let shell = Shell::new(COMMANDS);
    let mut out = String::new();
    assert_eq!(shell.run_command(&mut Machine::default(), "echo a;b", &mut out), Status::Succeeded);
    assert_eq!(out, "[a;b]\n");
}

#[test]
fn scripts_run_everything_and_count_failures() {
    let shell = Shell::new(COMMANDS);
    let mut machine = Machine::default();
    let mut out = String::new();
    let script = "peek 1\n\n  fail ; peek 2 zz\n# nope\npeek 3; echo done\n";
    let result = shell.run_script(&mut machine, script, &mut out);
    assert_eq!(result, ScriptResult { commands: 6, failed: 3 });
    assert!(!result.succeeded());
    assert_eq!(machine.peeks, [(1, 8), (3, 8)]);
    assert_eq!(
        out,
        "> peek 1\n\
         peeked 8 at 0x1\n\
         > fail\n\
         fail: it broke\n\
         > peek 2 zz\n\
         peek: bad argument 'zz': not a valid length: unexpected character 'z' in number\n\
         > # nope\n\
         unknown command '#' (try 'help')\n\
         > peek 3\n\
         peeked 8 at 0x3\n\
         > echo done\n\
         [done]\n"
    );
}

#[test]
fn a_clean_script_succeeds() {
    let shell = Shell::new(COMMANDS);
    let mut out = String::new();
    let result = shell.run_script(&mut Machine::default(), "echo 1; echo 2", &mut out);
    assert_eq!(result, ScriptResult { commands: 2, failed: 0 });
    assert!(result.succeeded());
    let empty = shell.run_script(&mut Machine::default(), " ;\n", &mut out);
    assert_eq!(empty, ScriptResult { commands: 0, failed: 0 });
}

#[test]
fn help_lists_every_command_aligned() {
    let shell = Shell::new(COMMANDS);
    let mut out = String::new();
    shell.help(&mut out);
    assert_eq!(
        out,
        "  echo [WORD]...   print the words\n\
         \x20 peek ADDR [LEN]  read LEN bytes at ADDR\n\
         \x20 protect FLAGS    show the bits of FLAGS\n\
         \x20 fail             always fails\n\
         \x20 zero             fails like an address space\n\
         \x20 help [COMMAND]   list the commands, or show how to use one\n"
    );
    // The `help` command prints the same.
    assert_eq!(run_line("help"), (Status::Succeeded, out));
}

#[test]
fn help_for_one_command() {
    assert_eq!(
        run_line("help peek"),
        (Status::Succeeded, String::from("usage: peek ADDR [LEN]\nread LEN bytes at ADDR\n"))
    );
    assert_eq!(
        run_line("help help"),
        (Status::Succeeded, String::from("usage: help [COMMAND]\nlist the commands, or show how to use one\n"))
    );
    assert_eq!(run_line("help poke"), (Status::Failed, String::from("unknown command 'poke' (try 'help')\n")));
    assert_eq!(run_line("help peek fail"), (Status::Failed, String::from("usage: help [COMMAND]\n")));
}

/// `help NAME` prints a command's details after its usage and help line,
/// when it has some; `help` alone stays one line a command.
#[test]
fn help_for_one_command_prints_its_details() {
    fn flags(out: &mut dyn Write) -> core::fmt::Result {
        writeln!(out, "  r  read\n  w  write")
    }
    let mut shell = Shell::new(COMMANDS);
    shell.set_details("protect", flags);
    let mut out = String::new();
    assert_eq!(shell.run_line(&mut Machine::default(), "help protect", &mut out), Status::Succeeded);
    assert_eq!(out, "usage: protect FLAGS\nshow the bits of FLAGS\n  r  read\n  w  write\n");
    let mut list = String::new();
    shell.help(&mut list);
    assert!(!list.contains("  r  read"), "{list}");
}

#[test]
fn adding_a_command_replaces_one_of_the_same_name() {
    let mut shell = Shell::new(COMMANDS);
    assert_eq!(shell.commands().len(), COMMANDS.len());
    shell.add(Command { name: "fail", usage: "fail", help: "now succeeds", run: echo });
    shell.add(Command { name: "new", usage: "new", help: "a new one", run: echo });
    let names: Vec<&str> = shell.commands().iter().map(|c| c.name).collect();
    assert_eq!(names, ["echo", "peek", "protect", "fail", "zero", "new"]);
    assert_eq!(shell.find("fail").map(|c| c.help), Some("now succeeds"));
    assert!(shell.find("nope").is_none());
    let mut out = String::new();
    assert_eq!(shell.run_line(&mut Machine::default(), "fail x", &mut out), Status::Succeeded);
    assert_eq!(out, "[x]\n");
}

/// A console that refuses every write.
struct BrokenConsole;

impl Write for BrokenConsole {
    fn write_str(&mut self, _: &str) -> core::fmt::Result {
        Err(core::fmt::Error)
    }
}

#[test]
fn a_failing_console_fails_the_command_quietly() {
    let shell = Shell::new(COMMANDS);
    assert_eq!(shell.run_line(&mut Machine::default(), "echo a", &mut BrokenConsole), Status::Failed);
    assert_eq!(CommandError::from(core::fmt::Error), CommandError::Output);
}

#[test]
fn error_messages() {
    assert_eq!(CommandError::Usage.to_string(), "wrong arguments");
    assert_eq!(CommandError::bad_argument("x", "too big").to_string(), "bad argument 'x': too big");
    assert_eq!(CommandError::failed(format_args!("{} frames left", 0)).to_string(), "0 frames left");
    assert_eq!(CommandError::Output.to_string(), "could not write the output");
}

#[test]
fn a_stray_character_in_a_number_fails_the_command() {
    // A non-breaking space does not split: the word is refused whole, and
    // the message names it and the character, instead of `4` and `096`
    // becoming two arguments (or `4k` one).
    for (line, word) in [("peek 0x1000 4\u{a0}096", "4\u{a0}096"), ("peek 0x1000 4\u{a0}k", "4\u{a0}k")] {
        assert_eq!(
            run_line(line),
            (
                Status::Failed,
                format!("peek: bad argument '{word}': not a valid length: unexpected character U+00A0 in number\n")
            ),
            "{line:?}"
        );
    }
    assert_eq!(
        run_line("peek ٤k"),
        (
            Status::Failed,
            String::from("peek: bad argument '٤k': not a valid address: unexpected character '٤' (U+0664) in number\n")
        )
    );
    // Other Unicode spaces are part of the word too.
    assert_eq!(run_line("echo a\u{2003}b\u{3000}c d"), (Status::Succeeded, String::from("[a\u{2003}b\u{3000}c][d]\n")));
    // A Unicode space around a command is kept as well: it is not a known name.
    assert_eq!(run_line("\u{a0}echo"), (Status::Failed, String::from("unknown command '\u{a0}echo' (try 'help')\n")));
}

#[test]
fn control_characters_are_written_back_as_escapes() {
    assert_eq!(run_line("ec\x1bho"), (Status::Failed, String::from("unknown command 'ec\\u{1b}ho' (try 'help')\n")));
    assert_eq!(
        run_line("peek 4\x01k"),
        (
            Status::Failed,
            String::from("peek: bad argument '4\\u{1}k': not a valid address: unexpected character U+0001 in number\n")
        )
    );
    assert_eq!(run_line("help \x07"), (Status::Failed, String::from("unknown command '\\u{7}' (try 'help')\n")));
}

#[test]
fn long_commands_are_never_cut() {
    // One 10,000-character word, and a line of 3,000 words.
    let word = "x".repeat(10_000);
    assert_eq!(run_line(&format!("echo {word}")), (Status::Succeeded, format!("[{word}]\n")));
    let words: Vec<String> = (0..3000).map(|n| n.to_string()).collect();
    let expected: String = words.iter().map(|w| format!("[{w}]")).collect::<String>() + "\n";
    assert_eq!(run_line(&format!("echo {}", words.join(" "))), (Status::Succeeded, expected.clone()));
    // The last argument of a long line still arrives, after many spaces.
    let spaces = " ".repeat(9000);
    let mut machine = Machine::default();
    let shell = Shell::new(COMMANDS);
    let mut out = String::new();
    let line = format!("peek 0x1000{spaces}4k");
    assert_eq!(shell.run_line(&mut machine, &line, &mut out), Status::Succeeded);
    assert_eq!(machine.peeks, [(0x1000, 4096)]);
    // The same in a script, where each command is echoed whole first.
    let mut out = String::new();
    let script = format!("echo {word}; echo {}", words.join(" "));
    let result = shell.run_script(&mut machine, &script, &mut out);
    assert_eq!(result, ScriptResult { commands: 2, failed: 0 });
    assert_eq!(out, format!("> echo {word}\n[{word}]\n> echo {}\n{expected}", words.join(" ")));
}
