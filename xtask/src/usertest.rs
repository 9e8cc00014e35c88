//! The user-mode tests: the static programs in `tests/user/*.c`, built with
//! `gcc -static-pie` (or, for a program whose source says `link: static`,
//! `gcc -static`: not position-independent, linked at 0x400000), run first
//! on the host Linux (the oracle) and then on Nacre, where each must end
//! the same way.
//!
//! A program says how it ends and what it is given in its source:
//! `expect: signal N` (default: exit status 0) and `args: A B ...`. A
//! program that does not end as it says on the host is a wrong test, and
//! the suite stops there.
//!
//! A program that tests what root may do says which capabilities it needs
//! (`needs: CAP_IPC_LOCK CAP_SYS_ADMIN`). Nacre's root holds every
//! capability; a host whose root lacks one (a container drops several)
//! cannot be the oracle for that program: the suite says so, by name, and
//! still runs the program on Nacre, where it must pass. On Nacre each runs in its own boot (`run /bin/NAME
//! ARGS; echo alive`), and the check wants the shell's status line
//! (`exit 0`, `killed by SIGSEGV`), the program's own "0 failed" summary
//! for an exit-0 program, and the kernel still answering afterwards.

use crate::boot::{Check, CheckBoot};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a test program ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Exit(i32),
    Signal(i32),
}

/// One test program, built.
struct Program {
    name: String,
    binary: PathBuf,
    args: Vec<String>,
    ending: Ending,
    /// One of `tests/user`, which print "NAME: N passed, M failed".
    ours: bool,
    /// The capabilities its `needs:` line names.
    needs: Vec<String>,
}

/// The capabilities a `needs:` line may name, with their numbers
/// (`linux/capability.h`).
const CAPABILITIES: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_FOWNER", 3),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_IPC_LOCK", 14),
    ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_RESOURCE", 24),
];

/// The host's effective capability set, as this process holds it (the test
/// programs run with the same): the `CapEff:` line of `/proc/self/status`.
fn host_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("CapEff:"))?;
            u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// Of `needs`, the capabilities the host does not hold.
fn missing_on_host(needs: &[String]) -> Vec<String> {
    let held = host_capabilities();
    needs
        .iter()
        .filter(|name| match CAPABILITIES.iter().find(|(known, _)| known == name) {
            Some((_, bit)) => held & (1 << bit) == 0,
            None => true,
        })
        .cloned()
        .collect()
}

/// The signal names the shell prints for the signals a test may expect.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "SIG?",
    }
}

/// The value after `key` on a comment line of `source` (`expect: signal 11`).
fn directive<'a>(source: &'a str, key: &str) -> Option<&'a str> {
    source.lines().find_map(|line| {
        let line = line.trim_start_matches([' ', '*', '/']);
        line.strip_prefix(key).map(str::trim)
    })
}

/// The C sources of folder `dir`, by name.
pub(crate) fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    entries.sort();
    Ok(entries)
}

fn build(root: &Path) -> Result<Vec<Program>, String> {
    crate::boot::ensure_static_gcc()?;
    let sources = root.join("tests/user");
    let out = root.join("target/user-tests/bin");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut programs = Vec::new();
    for source in c_sources(&sources)? {
        let name = source.file_stem().and_then(|stem| stem.to_str()).unwrap_or("test").to_string();
        let text = std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let ending = match directive(&text, "expect:") {
            None => Ending::Exit(0),
            Some(rest) => match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["signal", n] => Ending::Signal(n.parse().map_err(|_| format!("{name}: bad expect line"))?),
                ["exit", n] => Ending::Exit(n.parse().map_err(|_| format!("{name}: bad expect line"))?),
                _ => return Err(format!("{name}: bad expect line {rest:?}")),
            },
        };
        let args = directive(&text, "args:")
            .map(|rest| rest.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let needs: Vec<String> = directive(&text, "needs:")
            .map(|rest| rest.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        if let Some(unknown) = needs.iter().find(|name| !CAPABILITIES.iter().any(|(known, _)| known == name)) {
            return Err(format!("{name}: needs {unknown}, which xtask/src/usertest.rs does not know"));
        }
        let link = match directive(&text, "link:") {
            None | Some("static-pie") => Link::StaticPie,
            Some("static") => Link::Static,
            Some(other) => return Err(format!("{name}: bad link line {other:?} (static-pie or static)")),
        };
        let binary = out.join(&name);
        compile_as(&source, &binary, link)?;
        programs.push(Program { name, binary, args, ending, ours: true, needs });
    }
    Ok(programs)
}

/// How a test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `gcc -static-pie`, the default: loaded wherever the kernel puts it.
    StaticPie,
    /// `gcc -static`: an ET_EXEC linked at 0x400000 (`link: static`).
    Static,
}

impl Link {
    fn flag(self) -> &'static str {
        match self {
            Link::StaticPie => "-static-pie",
            Link::Static => "-static",
        }
    }
}

/// Builds the C program `source` into `binary` as test programs are built
/// by default: `gcc -static-pie -O2 -Wall -Werror`.
pub fn compile(source: &Path, binary: &Path) -> Result<(), String> {
    compile_as(source, binary, Link::StaticPie)
}

/// Builds the C program `source` into `binary` with `gcc -O2 -Wall -Werror`
/// and `link`'s flag.
pub fn compile_as(source: &Path, binary: &Path, link: Link) -> Result<(), String> {
    crate::boot::ensure_static_gcc()?;
    let mut command = Command::new("gcc");
    command.arg(link.flag());
    if link == Link::Static {
        command.arg("-no-pie");
    }
    let status = command
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(binary)
        .arg(source)
        .status()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gcc {} {} failed", link.flag(), source.display()))
    }
}

/// How `program` ends on the host.
fn run_on_host(program: &Program) -> Result<(Ending, String), String> {
    use std::os::unix::process::ExitStatusExt;
    let output = Command::new("timeout")
        .arg("60")
        .arg(&program.binary)
        .args(&program.args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.binary.display()))?;
    let ending = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => Ending::Exit(code),
        (None, Some(signal)) => Ending::Signal(signal),
        _ => return Err(format!("{}: no exit status", program.name)),
    };
    Ok((ending, String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// The checks: every program built and run on the host (a failure there is
/// returned as an error: the test is wrong), then one Nacre boot each.
///
/// `added` are the files (or directories of files) given to `cargo xtask
/// test --add`: users' own static programs, run the same way with no
/// arguments; the ending they must have on Nacre is the one they have on
/// the host.
pub fn checks(root: &Path, added: &[PathBuf]) -> Result<Vec<Check>, String> {
    let mut programs = build(root)?;
    for path in added_files(added)? {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("program").to_string();
        let mut program =
            Program { name, binary: path, args: Vec::new(), ending: Ending::Exit(0), ours: false, needs: Vec::new() };
        program.ending = run_on_host(&program)?.0;
        programs.push(program);
    }
    let mut checks = Vec::new();
    for program in &programs {
        let missing = missing_on_host(&program.needs);
        // Whether the program prints its "N passed, M failed" summary: as it
        // did on the host, or as every program of tests/user does.
        let prints_summary = if missing.is_empty() {
            let (ending, output) = run_on_host(program)?;
            if ending != program.ending {
                return Err(format!(
                    "user test {} ends as {ending:?} on the host Linux, not as it says ({:?}): the test is wrong\n{output}",
                    program.name, program.ending
                ));
            }
            println!("xtask: user test {} on the host: {ending:?}, as expected", program.name);
            output.contains(" failed")
        } else {
            println!(
                "xtask: user test {} NOT compared with the host Linux: the host's root lacks {} (a container?); \
                 it runs on Nacre alone",
                program.name,
                missing.join(" ")
            );
            true
        };
        let mut expect_output = vec!["alive".to_string()];
        let status_line = match program.ending {
            Ending::Exit(code) => format!("exit {code}"),
            Ending::Signal(signal) => format!("killed by {}", signal_name(signal)),
        };
        expect_output.push(status_line);
        if program.ours && program.ending == Ending::Exit(0) && prints_summary {
            expect_output.push(format!("{}: ", program.name));
            expect_output.push(" 0 failed".to_string());
        }
        if program.ours && program.name == "threads" {
            // The kernel counts the shootdown IPIs sent for the process's
            // space, and says so when the space goes.
            expect_output.push(format!("address space '{}.", program.name));
            expect_output.push("shootdown IPIs were sent for it".to_string());
        }
        let mut command = format!("run /bin/{}", program.name);
        for arg in &program.args {
            command.push(' ');
            command.push_str(arg);
        }
        checks.push(Check {
            label: format!(
                "user test {} on Nacre ({}: {:?})",
                program.name,
                if missing.is_empty() { "as on Linux" } else { "not compared with Linux here; as its source says" },
                program.ending
            ),
            boot: CheckBoot::Script(format!("{command}; echo alive")),
            expect_success: program.ending == Ending::Exit(0),
            expect_output,
            cpus: None,
            add: vec![program.binary.clone()],
            mem: None,
        });
        if program.ours && program.name == "fork_cycles" {
            // The kernel counts the free frames around the 10,000 cycles.
            checks.push(Check {
                label: "user test fork_cycles leaks no frame (mem mark; run; mem since 4)".to_string(),
                boot: CheckBoot::Script("mem mark; run /bin/fork_cycles; mem since 4".to_string()),
                expect_success: true,
                expect_output: vec!["fork_cycles: ".to_string(), " 0 failed".to_string(), "frames held".to_string()],
                cpus: None,
                add: vec![program.binary.clone()],
                mem: None,
            });
        }
        if program.ours && program.name == "threads" {
            // The same test with remote shootdowns off must see stale memory:
            // what shows that it would catch a missing shootdown.
            checks.push(Check {
                label: "user test threads catches missing shootdowns (shootdowns off)".to_string(),
                boot: CheckBoot::Script("shootdowns off; run /bin/threads".to_string()),
                expect_success: false,
                expect_output: vec!["stale reads".to_string(), "did not exit with 0".to_string()],
                cpus: None,
                add: vec![program.binary.clone()],
                mem: None,
            });
        }
    }
    Ok(checks)
}

/// The files `--add` names: each file, and the files of each directory.
fn added_files(added: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in added {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}
