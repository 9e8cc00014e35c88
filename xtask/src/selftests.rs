//! `cargo xtask selftests [--la57] [--only NAME,...] [--timeout SECS]`: the
//! Linux 6.1 kernel's own selftests (`tools/testing/selftests/vm` and `x86`,
//! from Debian's `linux-source-6.1`), built here with `gcc -static-pie`, run
//! on the host Linux (the oracle) and then on Nacre, one boot each, with a
//! table of what passed and what did not (docs/selftests.md).
//!
//! Steps:
//!
//! 1. The packages: `/usr/src/linux-source-6.1.tar.xz` (`linux-source-6.1`)
//!    and the static capability library (`libcap-dev`, for
//!    `mlock-random-test`); as root, missing ones are installed with
//!    `apt-get`, else the run stops naming them. `strace` is used when it
//!    is there (the system calls each test makes on Linux).
//! 2. The sources: only the folders the tests need ([`MEMBERS`]) are
//!    extracted, into `target/selftests/src`, once (a stamp names the
//!    tarball's size and time).
//! 3. The build: each test with the flags its Makefile gives, except that
//!    `-no-pie` becomes `-static-pie` (a test that needs low addresses is
//!    built `-static` too, and that build is the one run) and the kernel
//!    headers are the system's (`linux-libc-dev`); into
//!    `target/selftests/bin`, rebuilt when a source or the command changes.
//! 4. The host: each binary as it is (output and status); again with
//!    address randomization off (`setarch -R`), as Nacre lays a program out;
//!    and under `strace -f` for the list of its system calls and whether it
//!    forks, makes threads or execs.
//! 5. Nacre: `run /bin/NAME; echo alive`, one boot per test with only that
//!    binary added.
//!
//! A test passes when it exits 0, prints none of its failure lines and
//! prints its own pass line where it has one ([`Selftest::marker`]); exit
//! status 4 is kselftest's `KSFT_SKIP` (the test found something missing
//! and did not run). The table goes to the terminal and to
//! `target/selftests/report.md` (`report-la57.md` with `--la57`). The run
//! fails when a step fails or when a test marked as passing on Nacre
//! ([`Selftest::nacre_passes`]) does not; a test that newly passes is
//! named, to be marked here and in docs/selftests.md.

use crate::boot::{build_kernel, ensure_qemu, ensure_static_gcc, run_captured, workspace_root, Options, ScriptedBoot};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's tarball of the Linux 6.1 source (package `linux-source-6.1`).
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The folder every member of the tarball is in.
const TARBALL_TOP: &str = "linux-source-6.1";
/// What is extracted: the two selftest folders, the kselftest header they
/// include, and the one kernel header `sigreturn.c` includes by path.
const MEMBERS: &[&str] = &[
    "tools/testing/selftests/vm",
    "tools/testing/selftests/x86",
    "tools/testing/selftests/kselftest.h",
    "arch/x86/include/asm/desc_defs.h",
];
/// The static capability library `mlock-random-test` links (`-lcap`).
const LIBCAP: &str = "/usr/lib/x86_64-linux-gnu/libcap.a";
/// How long a test may run on the host.
const HOST_TIMEOUT_SECS: u32 = 120;
/// How long a boot with one test may take unless `--timeout` says.
const NACRE_TIMEOUT: Duration = Duration::from_secs(120);
/// kselftest's exit status for a test that did not run (`KSFT_SKIP`).
const KSFT_SKIP: i32 = 4;

/// Which selftest folder a test is in, and so its Makefile's flags.
#[derive(Clone, Copy)]
enum Suite {
    /// `tools/testing/selftests/vm`: `CFLAGS = -Wall -I $(top_srcdir)`,
    /// `LDLIBS = -lrt -lpthread`.
    Vm,
    /// `tools/testing/selftests/x86`: `-O2 -g -std=gnu99 -pthread -Wall`,
    /// `-DCAN_BUILD_64 -m64`, `-lrt -ldl`, binaries named `NAME_64`.
    X86,
}

/// One selftest.
struct Selftest {
    /// The binary's name (the x86 ones end in `_64`, as their Makefile names them).
    name: &'static str,
    suite: Suite,
    /// The C files, in the suite's folder.
    sources: &'static [&'static str],
    /// Libraries beyond the suite's.
    extra_libs: &'static [&'static str],
    /// A line the test prints when all went well (a prefix), if it has one.
    marker: Option<&'static str>,
    /// It needs its data and code below 4 GiB (16- and 32-bit segments):
    /// the host and Nacre run a `-static` (non-PIE) build, the Makefile's
    /// own (the host runs the `-static-pie` one too).
    low_addresses: bool,
    /// Whether it passes on Nacre today: with 4-level paging, and with
    /// 5-level paging (`--la57`). A test marked here that fails is a
    /// regression.
    nacre_passes: (bool, bool),
}

/// The tests, in the order they run: issue 20's list.
const SELFTESTS: &[Selftest] = &[
    Selftest {
        name: "map_fixed_noreplace",
        suite: Suite::Vm,
        sources: &["map_fixed_noreplace.c"],
        extra_libs: &[],
        marker: Some("OK"),
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "map_populate",
        suite: Suite::Vm,
        sources: &["map_populate.c"],
        extra_libs: &[],
        marker: None,
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "mremap_test",
        suite: Suite::Vm,
        sources: &["mremap_test.c"],
        extra_libs: &[],
        marker: Some("# Totals: "),
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "mremap_dontunmap",
        suite: Suite::Vm,
        sources: &["mremap_dontunmap.c"],
        extra_libs: &[],
        marker: Some("OK"),
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "mlock2-tests",
        suite: Suite::Vm,
        sources: &["mlock2-tests.c"],
        extra_libs: &[],
        marker: None,
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "mlock-random-test",
        suite: Suite::Vm,
        sources: &["mlock-random-test.c"],
        extra_libs: &["-lcap"],
        marker: None,
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "madv_populate",
        suite: Suite::Vm,
        sources: &["madv_populate.c", "vm_util.c"],
        extra_libs: &[],
        marker: Some("# Totals: "),
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "virtual_address_range",
        suite: Suite::Vm,
        sources: &["virtual_address_range.c"],
        extra_libs: &[],
        marker: None,
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "va_128TBswitch",
        suite: Suite::Vm,
        sources: &["va_128TBswitch.c"],
        extra_libs: &[],
        marker: None,
        low_addresses: false,
        nacre_passes: (false, true),
    },
    Selftest {
        name: "sigreturn_64",
        suite: Suite::X86,
        sources: &["sigreturn.c"],
        extra_libs: &[],
        marker: Some("[OK]"),
        low_addresses: true,
        nacre_passes: (false, false),
    },
    Selftest {
        name: "sysret_rip_64",
        suite: Suite::X86,
        sources: &["sysret_rip.c"],
        extra_libs: &[],
        marker: Some("[OK]"),
        low_addresses: false,
        nacre_passes: (false, false),
    },
    Selftest {
        name: "single_step_syscall_64",
        suite: Suite::X86,
        sources: &["single_step_syscall.c"],
        extra_libs: &[],
        marker: Some("[OK]"),
        low_addresses: false,
        nacre_passes: (true, true),
    },
    Selftest {
        name: "syscall_nt_64",
        suite: Suite::X86,
        sources: &["syscall_nt.c"],
        extra_libs: &[],
        marker: Some("[OK]"),
        low_addresses: false,
        nacre_passes: (true, true),
    },
];

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ending {
    Exit(i32),
    /// Killed by a signal (number on the host; the shell's words on Nacre).
    Signal(String),
    TimedOut,
    /// Nacre's shell did not run it (`cannot run`), or no status line came.
    NotRun(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exit(code) if *code == KSFT_SKIP => write!(f, "exit {code} (KSFT_SKIP)"),
            Ending::Exit(code) => write!(f, "exit {code}"),
            Ending::Signal(signal) => write!(f, "killed by {signal}"),
            Ending::TimedOut => write!(f, "timed out"),
            Ending::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

/// The judgement on one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// Exit status 4: the test decided not to run.
    Skip,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

/// One run of a test: how it ended, the verdict, and a line that says why
/// when it did not pass.
struct RunResult {
    ending: Ending,
    verdict: Verdict,
    why: String,
    elapsed: Duration,
}

/// What `strace -f` saw the test do on the host.
#[derive(Default)]
struct Trace {
    /// Every system call made, in order of first use (`vDSO` calls such as
    /// `time` and `clock_gettime` are not system calls there, so they are
    /// not listed).
    calls: Vec<String>,
    forks: bool,
    threads: bool,
    execs: bool,
}

/// The system calls every static glibc program makes to start and end,
/// left out of the report's list.
const STARTUP_CALLS: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "readlink",
    "getrandom",
    "mprotect",
    "newfstatat",
    "ioctl",
    "write",
    "exit_group",
];

/// The lines that say a test failed, in the selftests' own words.
const FAILURE_MARKS: &[&str] = &["[FAIL]", "not ok ", "Bail out!", "FAILED", "Error:"];
/// Further words that make a line the reason given for a failure.
const REASON_MARKS: &[&str] = &[
    "failed",
    "Failed",
    "error",
    "not implemented",
    "No such file",
    "too high",
    "No kernel support",
    "Cannot",
    "cannot",
    "Unable",
];

/// Judges a run: `marker` is the test's pass line, if it has one.
fn judge(ending: &Ending, lines: &[String], marker: Option<&str>) -> (Verdict, String) {
    let failure_line = lines.iter().find(|line| FAILURE_MARKS.iter().any(|mark| line.contains(mark)));
    let totals_bad = lines.iter().find(|line| line.starts_with("# Totals:") && !line.contains(" fail:0 "));
    let marker_seen = marker.is_none_or(|marker| lines.iter().any(|line| line.trim_end().starts_with(marker)));
    let reason = || {
        failure_line
            .or(totals_bad)
            .or_else(|| {
                lines.iter().find(|line| {
                    !line.starts_with("[OK]")
                        && !line.starts_with("ok ")
                        && REASON_MARKS.iter().any(|mark| line.contains(mark))
                })
            })
            .or_else(|| lines.iter().rev().find(|line| !line.trim().is_empty()))
            .map(|line| clean(line))
    };
    let verdict = match ending {
        Ending::Exit(0) if failure_line.is_none() && totals_bad.is_none() && marker_seen => Verdict::Pass,
        Ending::Exit(KSFT_SKIP) => Verdict::Skip,
        _ => Verdict::Fail,
    };
    if verdict == Verdict::Pass {
        return (verdict, String::new());
    }
    let mut why = ending.to_string();
    match reason() {
        Some(line) => {
            let _ = write!(why, "; \"{line}\"");
        }
        None => why.push_str("; no output"),
    }
    if matches!(ending, Ending::Exit(0)) && !marker_seen {
        let _ = write!(why, " (no line starting {:?})", marker.unwrap_or(""));
    }
    (verdict, why)
}

/// A line for a table: tabs to spaces, runs of spaces to one, `|` escaped,
/// at most 160 characters.
fn clean(line: &str) -> String {
    let line = line.replace('\t', " ");
    let mut out = String::new();
    for word in line.split(' ').filter(|word| !word.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    let mut out = out.replace('|', "\\|");
    if out.chars().count() > 160 {
        out = out.chars().take(157).collect::<String>() + "...";
    }
    out
}

/// The command-line words this subcommand takes besides [`Options`]'.
struct Args {
    only: Option<BTreeSet<String>>,
    options: Options,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut only = None;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    let mut timeout_given = false;
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--only" => {
                let list = iter.next().ok_or("--only needs a list of test names")?;
                let names: BTreeSet<String> = list.split(',').map(str::to_string).collect();
                for name in &names {
                    if !SELFTESTS.iter().any(|test| test.name == name) {
                        let known: Vec<&str> = SELFTESTS.iter().map(|test| test.name).collect();
                        return Err(format!("--only: no selftest {name:?} (known: {})", known.join(", ")));
                    }
                }
                only = Some(names);
            }
            "--add" | "--" => return Err(format!("cargo xtask selftests does not take {arg}")),
            other => {
                timeout_given |= other == "--timeout";
                rest.push(other.to_string());
            }
        }
    }
    let mut options = Options::parse(&rest)?;
    if !timeout_given {
        options.timeout = NACRE_TIMEOUT;
    }
    Ok(Args { only, options })
}

/// The subcommand.
pub fn selftests(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let Args { only, options } = parse_args(args)?;
    let root = workspace_root();
    let work = root.join("target/selftests");
    let tests: Vec<&Selftest> =
        SELFTESTS.iter().filter(|test| only.as_ref().is_none_or(|only| only.contains(test.name))).collect();

    ensure_packages()?;
    let step = Instant::now();
    let source = extract(&work)?;
    let extract_time = step.elapsed();

    let step = Instant::now();
    let bin = work.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut binaries = Vec::new();
    for test in &tests {
        binaries.push(build(&source, &bin, test, false)?);
        if test.low_addresses {
            build(&source, &bin, test, true)?;
        }
    }
    let build_time = step.elapsed();

    let step = Instant::now();
    let strace = has_strace();
    if !strace {
        println!("xtask: strace is not installed: no list of system calls per test (apt-get install strace)");
    }
    let setarch = has_setarch();
    if !setarch {
        println!("xtask: setarch is not installed: no host runs without address randomization (util-linux)");
    }
    let mut host = Vec::new();
    let mut host_pie = Vec::new();
    let mut host_fixed = Vec::new();
    let mut traces = Vec::new();
    for (test, binary) in tests.iter().zip(&binaries) {
        // The Makefile's non-PIE build is the host's reference for a test
        // that needs low addresses; the PIE one is what Nacre runs.
        let reference = if test.low_addresses { nopie_path(binary) } else { binary.clone() };
        let result = run_on_host(&reference, &work, test.marker, false)?;
        println!("xtask: host: {} {} ({})", test.name, result.verdict.word(), result.ending);
        host_pie.push(if test.low_addresses {
            let pie = run_on_host(binary, &work, test.marker, false)?;
            println!("xtask: host: {} built -static-pie: {} ({})", test.name, pie.verdict.word(), pie.ending);
            Some(pie)
        } else {
            None
        });
        // Nacre places nothing at random: Linux with randomization off
        // (`setarch -R`) lays a program out as Nacre does.
        host_fixed.push(if setarch {
            let fixed = run_on_host(&reference, &work, test.marker, true)?;
            println!("xtask: host, no randomization: {} {} ({})", test.name, fixed.verdict.word(), fixed.ending);
            Some(fixed)
        } else {
            None
        });
        host.push(result);
        traces.push(if strace { trace_on_host(binary, &work)? } else { Trace::default() });
    }
    let host_time = step.elapsed();

    let step = Instant::now();
    let elf = build_kernel(&Options { add: Vec::new(), ..options.clone() })?;
    ensure_qemu()?;
    let mut nacre = Vec::new();
    for (test, binary) in tests.iter().zip(&binaries) {
        println!("xtask: Nacre ({}-level paging): {}", if options.la57 { 5 } else { 4 }, test.name);
        // A test that needs low addresses runs as the Makefile builds it
        // (non-PIE), under its own name.
        let binary = if test.low_addresses {
            let dir = work.join("nacre-bin");
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let copy = dir.join(test.name);
            fs::copy(nopie_path(binary), &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            copy
        } else {
            binary.clone()
        };
        let result = run_on_nacre(&options, &elf, &work, test, &binary)?;
        println!("xtask: Nacre: {} {} ({})", test.name, result.verdict.word(), result.ending);
        nacre.push(result);
    }
    let nacre_time = step.elapsed();

    // The table, and what differs from what is marked here.
    let paging = if options.la57 { "5-level paging, --la57" } else { "4-level paging" };
    let mut report = String::new();
    let _ = writeln!(report, "# Linux 6.1 selftests on Nacre ({paging})\n");
    let _ = writeln!(
        report,
        "Made by `cargo xtask selftests{}`; see docs/selftests.md.\n",
        if options.la57 { " --la57" } else { "" }
    );
    let _ = writeln!(
        report,
        "| test | Linux host | Linux, no randomization | Nacre | Nacre's output where it did not pass | \
         on Linux it calls (beyond the C library's start and exit) |"
    );
    let _ = writeln!(report, "| --- | --- | --- | --- | --- | --- |");
    let mut regressions = Vec::new();
    let mut newly_passing = Vec::new();
    for (index, test) in tests.iter().enumerate() {
        let (host, nacre, trace) = (&host[index], &nacre[index], &traces[index]);
        let mut calls = trace
            .calls
            .iter()
            .filter(|call| !STARTUP_CALLS.contains(&call.as_str()))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        let needs: Vec<&str> = [(trace.forks, "fork"), (trace.threads, "threads"), (trace.execs, "exec")]
            .iter()
            .filter(|(yes, _)| *yes)
            .map(|(_, what)| *what)
            .collect();
        if !needs.is_empty() {
            calls = format!("**needs {}**; {calls}", needs.join(", "));
        }
        let mut host_cell = match host.verdict {
            Verdict::Pass => "pass".to_string(),
            _ => format!("{}: {}", host.verdict.word(), host.why),
        };
        if let Some(pie) = &host_pie[index] {
            let _ = write!(host_cell, " (built -static; built -static-pie: {}", pie.verdict.word());
            if pie.verdict != Verdict::Pass {
                let _ = write!(host_cell, ", {}", pie.why);
            }
            host_cell.push(')');
        }
        let _ = writeln!(
            report,
            "| {} | {host_cell} | {} | {} ({:.1} s) | {} | {calls} |",
            test.name,
            host_fixed[index].as_ref().map_or("-".to_string(), |fixed| match fixed.verdict {
                Verdict::Pass => "pass".to_string(),
                _ => format!("{}: {}", fixed.verdict.word(), fixed.why),
            }),
            nacre.verdict.word(),
            nacre.elapsed.as_secs_f64(),
            nacre.why,
        );
        let marked = if options.la57 { test.nacre_passes.1 } else { test.nacre_passes.0 };
        match (marked, nacre.verdict == Verdict::Pass) {
            (true, false) => regressions.push(format!("{}: {}", test.name, nacre.why)),
            (false, true) => newly_passing.push(test.name),
            _ => {}
        }
    }
    let total = started.elapsed();
    let _ = writeln!(
        report,
        "\nTimes: extraction {:.1} s, build {:.1} s, host runs {:.1} s, Nacre (kernel build and {} boots) {:.1} s; \
         total {:.1} s.",
        extract_time.as_secs_f64(),
        build_time.as_secs_f64(),
        host_time.as_secs_f64(),
        tests.len(),
        nacre_time.as_secs_f64(),
        total.as_secs_f64()
    );
    let name = if options.la57 { "report-la57.md" } else { "report.md" };
    let report_path = work.join(name);
    fs::write(&report_path, &report).map_err(|e| format!("{}: {e}", report_path.display()))?;
    println!("\n{report}");
    println!("xtask: the table is in {}", report_path.display());
    let passed = nacre.iter().filter(|result| result.verdict == Verdict::Pass).count();
    println!("xtask: selftests on Nacre ({paging}): {passed} of {} pass", tests.len());
    for name in &newly_passing {
        println!("xtask: {name} passes now: mark it in xtask/src/selftests.rs (nacre_passes) and docs/selftests.md");
    }
    if regressions.is_empty() {
        Ok(())
    } else {
        Err(format!("selftests marked as passing on Nacre failed: {}", regressions.join("; ")))
    }
}

/// True when running as root.
fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// The Debian packages the selftests need: installed as root when missing.
fn ensure_packages() -> Result<(), String> {
    ensure_static_gcc()?;
    let mut missing = Vec::new();
    if !Path::new(TARBALL).exists() {
        missing.push("linux-source-6.1");
    }
    if !Path::new(LIBCAP).exists() || !Path::new("/usr/include/sys/capability.h").exists() {
        missing.push("libcap-dev");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", missing.join(" "));
    if !is_root() {
        return Err(format!(
            "{} missing (the selftests' sources and libraries); as root: {install}",
            missing.join(", ")
        ));
    }
    println!("xtask: installing {}", missing.join(", "));
    // The package lists may be stale or absent on a fresh machine: update
    // once when the first try fails.
    for command in [install.clone(), format!("apt-get update && {install}")] {
        let status = Command::new("sh")
            .args(["-c", &command])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if status.success() {
            return Ok(());
        }
    }
    Err(format!("`{install}` failed"))
}

fn has_strace() -> bool {
    Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success())
}

fn has_setarch() -> bool {
    Command::new("setarch").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Extracts [`MEMBERS`] into `work/src` unless the stamp says it is done
/// for this tarball; returns the source root.
fn extract(work: &Path) -> Result<PathBuf, String> {
    let source = work.join("src");
    let stamp_path = source.join(".extracted");
    let meta = fs::metadata(TARBALL).map_err(|e| format!("{TARBALL}: {e}"))?;
    let modified = meta.modified().ok().and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok());
    let stamp = format!("{TARBALL} {} {:?}\n{}\n", meta.len(), modified.map(|d| d.as_secs()), MEMBERS.join("\n"));
    if fs::read_to_string(&stamp_path).is_ok_and(|old| old == stamp) {
        println!("xtask: selftest sources already in {}", source.display());
        return Ok(source);
    }
    let _ = fs::remove_dir_all(&source);
    fs::create_dir_all(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    println!("xtask: extracting the selftests from {TARBALL} into {}", source.display());
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(TARBALL)
        .arg("-C")
        .arg(&source)
        .arg("--strip-components=1")
        .args(MEMBERS.iter().map(|member| format!("{TARBALL_TOP}/{member}")))
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("extracting {} from {TARBALL} failed", MEMBERS.join(", ")));
    }
    fs::write(&stamp_path, stamp).map_err(|e| format!("{}: {e}", stamp_path.display()))?;
    Ok(source)
}

/// Where the non-PIE (`-static`) host build of `binary` goes.
fn nopie_path(binary: &Path) -> PathBuf {
    let mut name = binary.file_name().unwrap_or_default().to_os_string();
    name.push("-nopie");
    binary.with_file_name(name)
}

/// Builds `test` into `bin` (with `-static` instead of `-static-pie` when
/// `nopie`) unless the binary is newer than its sources and was built with
/// the same command; returns its path.
fn build(source: &Path, bin: &Path, test: &Selftest, nopie: bool) -> Result<PathBuf, String> {
    let (folder, flags, libs): (&str, &[&str], &[&str]) = match test.suite {
        Suite::Vm => ("tools/testing/selftests/vm", &["-O2", "-Wall"], &["-lrt", "-lpthread"]),
        Suite::X86 => (
            "tools/testing/selftests/x86",
            &["-O2", "-g", "-std=gnu99", "-pthread", "-Wall", "-DCAN_BUILD_64", "-m64"],
            &["-lrt", "-ldl"],
        ),
    };
    let dir = source.join(folder);
    let binary = if nopie { nopie_path(&bin.join(test.name)) } else { bin.join(test.name) };
    let mut args: Vec<String> = vec![if nopie { "-static" } else { "-static-pie" }.to_string()];
    args.extend(flags.iter().map(|flag| flag.to_string()));
    args.push("-I".to_string());
    args.push(source.display().to_string());
    args.push("-o".to_string());
    args.push(binary.display().to_string());
    let sources: Vec<PathBuf> = test.sources.iter().map(|file| dir.join(file)).collect();
    args.extend(sources.iter().map(|path| path.display().to_string()));
    args.extend(test.extra_libs.iter().chain(libs).map(|lib| lib.to_string()));
    let command_line = format!("gcc {}", args.join(" "));

    let command_file = binary.with_extension("cmd");
    let built = fs::metadata(&binary).and_then(|meta| meta.modified()).ok();
    let fresh = built.is_some_and(|built| {
        sources.iter().all(|path| fs::metadata(path).and_then(|meta| meta.modified()).is_ok_and(|m| m <= built))
            && fs::read_to_string(&command_file).is_ok_and(|old| old == command_line)
    });
    if fresh {
        return Ok(binary);
    }
    println!("xtask: {command_line}");
    let status = Command::new("gcc").args(&args).status().map_err(|e| format!("cannot run gcc: {e}"))?;
    if !status.success() {
        return Err(format!("building {} failed", test.name));
    }
    fs::write(&command_file, &command_line).map_err(|e| format!("{}: {e}", command_file.display()))?;
    Ok(binary)
}

/// Runs `binary` on the host with standard output and error in one file
/// (with address randomization off when `fixed`); returns how it ended.
fn run_on_host(binary: &Path, work: &Path, marker: Option<&str>, fixed: bool) -> Result<RunResult, String> {
    use std::os::unix::process::ExitStatusExt;
    let suffix = if fixed { "host-norandom.out" } else { "host.out" };
    let log = work.join(format!("{}.{suffix}", binary.file_name().unwrap_or_default().to_string_lossy()));
    let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let error = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    let started = Instant::now();
    let mut command = if fixed {
        let mut command = Command::new("setarch");
        command.args(["-R", "timeout"]);
        command
    } else {
        Command::new("timeout")
    };
    let status = command
        .arg(HOST_TIMEOUT_SECS.to_string())
        .arg(binary)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(error)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let elapsed = started.elapsed();
    let ending = match (status.code(), status.signal()) {
        (Some(124), _) => Ending::TimedOut,
        (Some(code), _) => Ending::Exit(code),
        (None, Some(signal)) => Ending::Signal(format!("signal {signal}")),
        _ => Ending::NotRun("no exit status".to_string()),
    };
    let text = fs::read(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let lines: Vec<String> = String::from_utf8_lossy(&text).lines().map(str::to_string).collect();
    let (verdict, why) = judge(&ending, &lines, marker);
    Ok(RunResult { ending, verdict, why, elapsed })
}

/// Runs `binary` on the host under `strace -f` and reads what it did.
fn trace_on_host(binary: &Path, work: &Path) -> Result<Trace, String> {
    let log = work.join(format!("{}.strace", binary.file_name().unwrap_or_default().to_string_lossy()));
    Command::new("timeout")
        .arg(HOST_TIMEOUT_SECS.to_string())
        .args(["strace", "-f", "-qq", "-o"])
        .arg(&log)
        .arg(binary)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run strace: {e}"))?;
    let text = fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    Ok(parse_trace(&text))
}

/// Reads `strace -f -qq` output.
fn parse_trace(text: &str) -> Trace {
    let mut trace = Trace::default();
    let mut seen = BTreeSet::new();
    let mut execs = 0;
    for line in text.lines() {
        // With -f each line starts with the thread's id.
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let name = match line.strip_prefix("<... ") {
            Some(rest) => rest.split(' ').next().unwrap_or(""),
            None => line.split('(').next().unwrap_or(""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        match name {
            "clone" | "clone3" if line.contains("CLONE_THREAD") => trace.threads = true,
            "clone" | "clone3" | "fork" | "vfork" => trace.forks = true,
            "execve" | "execveat" => execs += 1,
            _ => {}
        }
        if seen.insert(name.to_string()) {
            trace.calls.push(name.to_string());
        }
    }
    // The first execve is strace starting the test.
    trace.execs = execs > 1;
    trace
}

/// Boots Nacre with `binary` as `/bin/NAME` and runs it; the console goes
/// to `work/NAME.nacre.out` (`.nacre-la57.out`).
fn run_on_nacre(
    options: &Options,
    elf: &Path,
    work: &Path,
    test: &Selftest,
    binary: &Path,
) -> Result<RunResult, String> {
    let options = Options { add: vec![binary.to_path_buf()], ..options.clone() };
    let script = format!("run /bin/{}; echo alive", test.name);
    let boot = ScriptedBoot::new(&options, &script)?;
    let started = Instant::now();
    let outcome = run_captured(boot.command(&options, elf), options.timeout)?;
    let elapsed = started.elapsed();
    let suffix = if options.la57 { "nacre-la57.out" } else { "nacre.out" };
    let log = work.join(format!("{}.{suffix}", test.name));
    fs::write(&log, outcome.lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", log.display()))?;
    let (ending, lines) = program_output(&outcome.lines, test.name);
    let ending = if outcome.timed_out && matches!(ending, Ending::NotRun(_)) { Ending::TimedOut } else { ending };
    let (verdict, mut why) = judge(&ending, &lines, test.marker);
    // The kernel must answer after the program, whatever the program did.
    let mut verdict = verdict;
    if outcome.contains("kernel panic") {
        verdict = Verdict::Fail;
        why = format!("kernel panic; {why}");
    } else if !outcome.lines.iter().any(|line| line.trim() == "alive") {
        verdict = Verdict::Fail;
        why = format!("the shell did not answer after the program; {why}");
    }
    Ok(RunResult { ending, verdict, why, elapsed })
}

/// The program's lines between the shell's `run` command and its status
/// line, and the status.
fn program_output(console: &[String], name: &str) -> (Ending, Vec<String>) {
    let command = format!("> run /bin/{name}");
    let Some(start) = console.iter().position(|line| line.contains(&command)) else {
        return (Ending::NotRun("the shell never ran the command".to_string()), Vec::new());
    };
    let mut lines = Vec::new();
    for line in &console[start + 1..] {
        let trimmed = line.trim_end();
        if let Some(code) = trimmed.strip_prefix("exit ").and_then(|code| code.parse().ok()) {
            return (Ending::Exit(code), lines);
        }
        if let Some(how) = trimmed.strip_prefix("killed by ") {
            return (Ending::Signal(how.to_string()), lines);
        }
        if trimmed.starts_with("run: ") || trimmed.contains("cannot run") {
            return (Ending::NotRun(clean(trimmed)), lines);
        }
        if trimmed.starts_with("nacre> ") {
            break;
        }
        if !is_kernel_log(trimmed) {
            lines.push(trimmed.to_string());
        }
    }
    (Ending::NotRun("no status line from the shell".to_string()), lines)
}

/// A kernel log line (`[   0.012367] INFO ...`), not the program's.
fn is_kernel_log(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .is_some_and(|(stamp, _)| stamp.trim().parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn verdicts_follow_the_status_and_the_lines() {
        let ok = lines("[RUN]\tx\n[OK]\tfine");
        assert_eq!(judge(&Ending::Exit(0), &ok, Some("[OK]")).0, Verdict::Pass);
        let bad = lines("[RUN]\tx\n[FAIL]\tbroken\n[OK]\tfine");
        let (verdict, why) = judge(&Ending::Exit(0), &bad, Some("[OK]"));
        assert_eq!(verdict, Verdict::Fail);
        assert!(why.contains("[FAIL] broken"), "{why}");
        assert_eq!(judge(&Ending::Exit(KSFT_SKIP), &[], None).0, Verdict::Skip);
        let totals = lines("ok 1 a\n# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0");
        assert_eq!(judge(&Ending::Exit(0), &totals, Some("# Totals: ")).0, Verdict::Fail);
        let (verdict, why) = judge(&Ending::Exit(0), &lines("something"), Some("OK"));
        assert_eq!(verdict, Verdict::Fail);
        assert!(why.contains("no line starting"), "{why}");
        let (_, why) =
            judge(&Ending::Exit(255), &lines("cap_set_proc() returns error\n: Function not implemented"), None);
        assert!(why.starts_with("exit 255; \"cap_set_proc() returns error\""), "{why}");
    }

    #[test]
    fn the_program_output_is_cut_from_the_console() {
        let console = lines(
            "boot\nnacre> run /bin/t\nhello\n[   0.5] INFO x\n[OK]\tdone\nkilled by SIGSEGV (SI_KERNEL, address 0x0)\n\
             run: failed\nnacre> echo alive\nalive",
        );
        let (ending, output) = program_output(&console, "t");
        assert_eq!(ending, Ending::Signal("SIGSEGV (SI_KERNEL, address 0x0)".to_string()));
        assert_eq!(output, vec!["hello".to_string(), "[OK]\tdone".to_string()]);
        let (ending, _) = program_output(&lines("nacre> run /bin/t\nexit 4\n"), "t");
        assert_eq!(ending, Ending::Exit(4));
    }

    #[test]
    fn strace_output_is_read() {
        let trace = parse_trace(
            "12 execve(\"bin/t\", [\"bin/t\"], 0x0 /* 3 vars */) = 0\n\
             12 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f00\n\
             12 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x1) = 13\n\
             13 <... clone resumed>) = 0\n\
             13 +++ exited with 0 +++\n\
             12 --- SIGCHLD {si_signo=SIGCHLD} ---\n",
        );
        assert_eq!(trace.calls, vec!["execve", "mmap", "clone"]);
        assert!(trace.forks && !trace.threads && !trace.execs);
    }
}
