//! `cargo xtask`: builds, runs and tests the Nacre kernel under QEMU.
//!
//! ```text
//! cargo xtask build [--release]
//! cargo xtask run   [--smp N] [--mem SIZE] [--release] [--la57] [--timeout SECS] [--cmdline OPTS] [--add FILE_OR_DIR]
//!                   [-- "cmd1; cmd2" | --init PROGRAM [ARGS...]]
//! cargo xtask test  [--smp N] [--release]
//! cargo xtask usertests [--add FILE_OR_DIR]     (only the user tests: tests/user on the host, then on Nacre)
//! cargo xtask initchecks                        (only the checks of --init, runall and a large initrd)
//! cargo xtask gdb   [--smp N] [--mem SIZE] [--release] [--la57]
//! cargo xtask bench [--smp N] [--out FILE]      (release kernel, `script=bench`; BENCH lines)
//! cargo xtask plot  [FILE] [--out SVG]          (docs/bench-plot.svg from the bench output)
//! cargo xtask compare [FILE] [--linux SUMMARY]  (the bench output beside the Linux harness's, as ratios)
//! cargo xtask imports                           (each crate's import graph must have no circle)
//! cargo xtask lab new DIR [--extra]             (the Paging Lab's student tree; docs/lab/teacher.md)
//! cargo xtask grade [DIR] [--expect-full]       (the Paging Lab's score card; docs/lab/README.md)
//! ```
//!
//! The kernel is a `#![no_std]` binary for the host target, linked with its own
//! script; it is built in `target/kernel` so that host builds and kernel builds
//! never invalidate each other. QEMU runs it with `-kernel` (PVH boot) and
//! the archive of `initrd/` as `-initrd` (see [`initrd`]); the kernel
//! reports its result through the `isa-debug-exit` device: status 33 means
//! success, anything else failure.
//!
//! The script of a scripted run (`-- "cmd1; cmd2"`) is not put on the kernel
//! command line, which holds at most [`MAX_KERNEL_CMDLINE`] bytes: it goes
//! into the initrd as the file `.script` ([`initrd::build_with_script`]),
//! and the command line says `script=@.script`. Scripts of up to
//! [`initrd::MAX_SCRIPT_BYTES`] run whole; a larger one, or a `--cmdline`
//! too long for the kernel, is refused before the boot.

mod bench;
mod boot;
mod compare;
mod grade;
mod imports;
mod initcheck;
mod kit;
mod lab;
mod plot;
mod samebinary;
mod selftests;
mod syscalls;
mod usertest;

mod initrd;

use boot::{
    build_kernel, cargo, ensure_qemu, qemu_command, run_captured, usage, workspace_root, Check, CheckBoot, InitBoot,
    Options, ScriptedBoot, QEMU, QEMU_FAILURE_STATUS, QEMU_SUCCESS_STATUS,
};
use std::env;
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitCode};

/// A scripted shell run that `cargo xtask test` performs after the in-kernel
/// tests, with the outcome it must have.
struct ScriptedCheck {
    /// The commands, as given to `cargo xtask run -- "..."`.
    script: &'static str,
    /// Whether the kernel must report success.
    expect_success: bool,
    /// Text that must appear in the output.
    expect_output: &'static [&'static str],
    /// CPUs for this run, when it needs a particular number (else `--smp`).
    cpus: Option<u32>,
}

/// The scripted runs of `cargo xtask test`. Add shell checks here (and
/// generated ones, such as very long scripts, in [`generated_checks`]).
const SCRIPTED_CHECKS: &[ScriptedCheck] = &[
    // The application processors started (`cargo xtask test` runs 2 CPUs):
    // each has its idle thread.
    ScriptedCheck { cpus: None, script: "threads", expect_success: true, expect_output: &["idle1"] },
    ScriptedCheck {
        cpus: None,
        script: "help; threads; mem; peek 0x0; poweroff",
        expect_success: true,
        expect_output: &[
            "peek ADDR [LEN]",
            "shell             running",
            "page-table frames: base ",
            "memcmp 4 MiB at 0x100000 and 0xffff800000100000: equal (",
            "powering off",
        ],
    },
    // The thread listing and the per-CPU view: the root shell runs in the
    // address space its startup test made.
    ScriptedCheck {
        cpus: None,
        script: "threads; cpus",
        expect_success: true,
        expect_output: &["shell             running", "idle0", "in force:"],
    },
    // Unmapped: a page fault, decoded, and a failing status (no panic).
    ScriptedCheck {
        cpus: None,
        script: "peek 0x5dead0000000",
        expect_success: false,
        expect_output: &["not-present read supervisor"],
    },
    // Bit 47 set: non-canonical with 4-level paging, so a #GP.
    ScriptedCheck {
        cpus: None,
        script: "peek 0xdead00000000",
        expect_success: false,
        expect_output: &["non-canonical"],
    },
    ScriptedCheck {
        cpus: None,
        script: "poke 0x5dead0000000 1",
        expect_success: false,
        expect_output: &["not-present write"],
    },
    // A failing command fails the script, but the commands after it still run.
    ScriptedCheck {
        cpus: None,
        script: "echo first; exit; echo still running",
        expect_success: false,
        expect_output: &["cannot exit (use 'poweroff')", "still running"],
    },
    // An ordinary access that faults: the full report, then a failing status.
    ScriptedCheck {
        cpus: None,
        script: "touch 0x5dead0000000",
        expect_success: false,
        expect_output: &[
            "*** page fault (#PF) (vector 14)",
            "error code 0x0 [not-present read supervisor]",
            "CR2 0x00005dead0000000",
            "address space: shell (paging)",
            "region: no region contains 0x5dead0000000",
            "backtrace:",
        ],
    },
    // A real double fault (#UD and then #NP find no gate in a table that has
    // only the #DF gate): its report from the double-fault stack, then the
    // kernel's failing status. A triple fault would reset with no report.
    ScriptedCheck {
        cpus: None,
        script: "crash doublefault",
        expect_success: false,
        expect_output: &["*** double fault (#DF) (vector 8)", "error code 0x0", "thread: ", "backtrace:"],
    },
    // The implementations, the address spaces, and the refusal of a second
    // boot map.
    ScriptedCheck {
        cpus: None,
        script: "asis; ases; as new base b2",
        expect_success: false,
        expect_output: &[
            "paging         0x1000     0x1000",
            "shell         paging  ",
            "as: the base implementation does not support creating another address space",
        ],
    },
    // A nested shell: its own address space while it runs, destroyed on exit.
    ScriptedCheck {
        cpus: None,
        script: "ases d; threads; shell s2; ases; exit; ases",
        expect_success: true,
        expect_output: &[
            "0xffff800000000000-0xffff8000ffffffff -> 0x0 (0x100000000 bytes)",
            "s2: startup test",
            "nacre:s2> ases",
            "s2            paging  ",
            "s2: left and destroyed address space 's2'",
            "shell: shell 's2' has exited; back in 'shell'",
        ],
    },
    // The as verbs on a paging address space, with peek and poke through it.
    ScriptedCheck {
        cpus: None,
        script: "as new paging v; as add v 0 0 4g rwxpke; as add v 0x500000000000 0x200000 64k rwk; as kernel v; \
                 as enter v; poke 0x500000000000 0x77; peek 0x500000000000; \
                 as protect v 0x500000000000 rk 16k; peek 0x500000000000; \
                 as move v 0x500000004000 0x300000 8k; as rm v 0x50000000c000 4k; as faultsize v 2m; \
                 as verify v; ptdump v 0x500000000000 64k; as print v; as leave; as destroy v; ases",
        expect_success: true,
        expect_output: &[
            "0x500000000000: 0x0000000000000077",
            // Fault-around maps the whole 16 KiB read-only part on the first touch.
            "4 x 4K r-- kernel -> 0x200000",
            "0x0000500000004000-0x0000500000005fff -> 0x300000 (0x2000 bytes) rw--k",
            "'v': the page tables match the regions",
            "destroyed 'v'",
        ],
    },
    // Files and mmap (issue 7): the initrd's files, mmap'd files read back
    // exactly, private writes stay private, bad requests refused with
    // nothing changed; anonymous pages and a grow-down stack that grows
    // page by page and overflows without stopping the kernel.
    ScriptedCheck {
        cpus: None,
        script: "ls; mmapTest; growTest",
        expect_success: true,
        expect_output: &["numbers.txt", "mmapTest: passed", "stack overflow in thread", "growTest: passed"],
    },
    // A bad mmap fails the script with its message, and a good one maps.
    ScriptedCheck {
        cpus: None,
        script: "as new paging m; mmap m numbers.txt 0x600000000000; mmap m hello.txt 0x600000010000 0 4096; \
                 munmap m 0x600000000000",
        expect_success: false,
        expect_output: &[
            "mapped 25900 bytes of 'numbers.txt'",
            "run past the end of 'hello.txt' (29 bytes)",
            "unmapped 25900 bytes of 'numbers.txt'",
        ],
    },
    // Shootdowns on 4 CPUs: readers pinned to every CPU never see a stale
    // translation while a writer edits the page they read...
    ScriptedCheck {
        cpus: Some(4),
        script: "cpus; shootdownTest 300; tlbstat",
        expect_success: true,
        expect_output: &["passed", "sent"],
    },
    // ...and the same test sees stale reads when remote shootdowns are off.
    ScriptedCheck {
        cpus: Some(4),
        script: "shootdownTest broken 300",
        expect_success: false,
        expect_output: &["stale observations"],
    },
    // A short soak on 4 CPUs: randomized create, edit, fault, switch and
    // destroy cycles with verify and the frame count checked throughout.
    ScriptedCheck {
        cpus: Some(4),
        script: "soak 3",
        expect_success: true,
        expect_output: &["operations", "faults handled", " 0 failures", "passed"],
    },
    // Every benchmark runs, checks the work it did, and prints its figure
    // (the values are not judged here: timings are never asserted).
    ScriptedCheck {
        cpus: None,
        script: "bench",
        expect_success: true,
        expect_output: &[
            "BENCH boot_to_shell ",
            "BENCH lazy_fault_4k ",
            "BENCH lazy_fault_around ",
            "BENCH anon_fault_4k ",
            "BENCH eager_map_4k ",
            "BENCH eager_map_huge_2m ",
            "BENCH eager_map_huge_1g ",
            "BENCH protect_64m ",
            "BENCH remove_64m ",
            "BENCH move_64m ",
            "BENCH protect_1page ",
            "BENCH remove_1page ",
            "BENCH move_1page ",
            "BENCH shootdown_protect_1page_2cpu ",
            "BENCH aspace_switch ",
            "BENCH protect_1page.min ",
            "BENCH protect_1page.max ",
        ],
    },
];

impl From<&ScriptedCheck> for Check {
    fn from(check: &ScriptedCheck) -> Check {
        Check {
            label: format!("scripted run {:?}", check.script),
            boot: CheckBoot::Script(check.script.to_string()),
            expect_success: check.expect_success,
            expect_output: check.expect_output.iter().map(|text| text.to_string()).collect(),
            cpus: check.cpus,
            add: Vec::new(),
            mem: None,
        }
    }
}

/// `echo 0; echo 1; ...; echo N-1`.
fn echo_script(count: usize) -> String {
    (0..count).map(|i| format!("echo {i}")).collect::<Vec<_>>().join("; ")
}

/// The checks too long to write out in [`SCRIPTED_CHECKS`].
fn generated_checks() -> Vec<Check> {
    // Far more than a command line holds: every command runs, in order, and
    // the status is that of the commands, the last one included.
    let echoes = echo_script(2000);
    let last_echo = "nacre> echo 1999".to_string();
    // A command line the kernel must refuse (xtask refuses it before the
    // boot, so these go straight to QEMU): past the end of QEMU's PVH buffer
    // by a little (no NUL in the buffer) and by a lot (over the start info).
    let raw_line = |len: usize| {
        let mut line = "shelltest=off script=echo ".to_string();
        line.push_str(&"x".repeat(len - line.len()));
        line
    };
    let refused = "longer than 4095 bytes".to_string();
    vec![
        Check {
            label: format!("a script of 2000 commands ({} bytes)", echoes.len()),
            boot: CheckBoot::Script(echoes.clone()),
            expect_success: true,
            expect_output: vec!["nacre> echo 0".to_string(), last_echo.clone()],
            cpus: None,
            add: Vec::new(),
            mem: None,
        },
        Check {
            label: format!("a script of 2000 commands ({} bytes) ending with a failing one", echoes.len() + 6),
            boot: CheckBoot::Script(format!("{echoes}; exit")),
            expect_success: false,
            expect_output: vec![last_echo, "nacre> exit".to_string(), "cannot exit (use 'poweroff')".to_string()],
            cpus: None,
            add: Vec::new(),
            mem: None,
        },
        Check {
            label: "a raw kernel command line of 4100 bytes".to_string(),
            boot: CheckBoot::RawCmdline(raw_line(4100)),
            expect_success: false,
            expect_output: vec![refused.clone(), "not booting".to_string()],
            cpus: None,
            add: Vec::new(),
            mem: None,
        },
        Check {
            label: "a raw kernel command line of 6000 bytes".to_string(),
            boot: CheckBoot::RawCmdline(raw_line(6000)),
            expect_success: false,
            expect_output: vec![refused, "not booting".to_string()],
            cpus: None,
            add: Vec::new(),
            mem: None,
        },
    ]
}

/// The `elf` and `run` commands on a program built here with `gcc -static`
/// (linked at 0x400000, loaded there) and one built with `gcc -static-pie`
/// (their load plans printed); a file that is no ELF is refused with ENOEXEC.
fn elf_checks(root: &std::path::Path) -> Result<Vec<Check>, String> {
    boot::ensure_static_gcc()?;
    let dir = root.join("target/elf-check");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let source = dir.join("hello.c");
    std::fs::write(&source, "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n")
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let fixed = dir.join("hello-static");
    let pie = dir.join("hello-pie");
    for (binary, flag) in [(&fixed, "-static"), (&pie, "-static-pie")] {
        let status = Command::new("gcc")
            .arg(flag)
            .arg("-o")
            .arg(binary)
            .arg(&source)
            .status()
            .map_err(|e| format!("cannot run gcc (needed for the user-program checks): {e}"))?;
        if !status.success() {
            return Err(format!("gcc {flag} failed (the static C library, libc6-dev, is needed)"));
        }
    }
    Ok(vec![
        Check {
            label: "elf and run of a static PIE added with --add".to_string(),
            boot: CheckBoot::Script("elf bin/hello-pie; run /bin/hello-pie".to_string()),
            expect_success: true,
            expect_output: vec![
                "static position-independent executable, entry".to_string(),
                "r-x file".to_string(),
                "initial break".to_string(),
                "hello".to_string(),
                "exit 0".to_string(),
            ],
            cpus: None,
            add: vec![pie],
            mem: None,
        },
        Check {
            label: "elf and run of a program linked at 0x400000 (gcc -static)".to_string(),
            boot: CheckBoot::Script("elf bin/hello-static; run /bin/hello-static".to_string()),
            expect_success: true,
            expect_output: vec![
                "static executable, entry 0x40".to_string(),
                "program headers at 0x400040".to_string(),
                "hello".to_string(),
                "exit 0".to_string(),
            ],
            cpus: None,
            add: vec![fixed],
            mem: None,
        },
        Check {
            label: "elf and run of a file that is no executable".to_string(),
            boot: CheckBoot::Script("elf hello.txt; run /hello.txt".to_string()),
            expect_success: false,
            expect_output: vec!["cannot be run".to_string(), "(errno 8)".to_string(), "ENOEXEC".to_string()],
            cpus: None,
            add: Vec::new(),
            mem: None,
        },
    ])
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("imports") => imports::check(&workspace_root()),
        Some("syscalls") => syscalls::syscalls(&workspace_root(), &args[1..]),
        Some("lab") => lab::lab(&args[1..]),
        Some("grade") => grade::grade(&args[1..]),
        Some("build") => Options::parse(&args[1..]).and_then(|options| build_kernel(&options).map(|_| ())),
        Some("run") => Options::parse(&args[1..]).and_then(|options| run(&options)),
        Some("test") => Options::parse(&args[1..]).and_then(|options| test(&options)),
        Some("usertests") => Options::parse(&args[1..]).and_then(|options| usertests(&options)),
        Some("initchecks") => Options::parse(&args[1..]).and_then(|options| initchecks(&options)),
        Some("selftests") => selftests::selftests(&args[1..]),
        Some("gdb") => Options::parse(&args[1..]).and_then(|options| gdb(&options)),
        Some("bench") => {
            let (out, rest) = take_option(&args[1..], "--out");
            Options::parse(&rest).and_then(|options| bench::bench(&options, out))
        }
        Some("plot") => {
            let (out, rest) = take_option(&args[1..], "--out");
            let input = rest.first().map(PathBuf::from).unwrap_or_else(bench::default_output);
            let output = out.unwrap_or_else(|| workspace_root().join("docs/bench-plot.svg"));
            plot::plot(&input, &output)
        }
        Some("compare") if args[1..].iter().any(|arg| arg == "--same-binary") => {
            let rest: Vec<String> = args[1..].iter().filter(|arg| *arg != "--same-binary").cloned().collect();
            samebinary::compare_same_binary(&rest)
        }
        Some("compare") => {
            let (linux, rest) = take_option(&args[1..], "--linux");
            let input = rest.first().map(PathBuf::from).unwrap_or_else(bench::default_output);
            compare::compare(&input, linux)
        }
        Some("ubench") => compare::ubench(&args[1..]),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `name FILE` (such as `--out FILE`) from the other arguments.
fn take_option(args: &[String], name: &str) -> (Option<PathBuf>, Vec<String>) {
    let mut value = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == name {
            value = args.next().map(PathBuf::from);
        } else {
            rest.push(arg.clone());
        }
    }
    (value, rest)
}

fn run(options: &Options) -> Result<(), String> {
    // A script too large is refused before the build.
    if let Some(script) = &options.script {
        initrd::with_script(Vec::new(), script)?;
    }
    // So is an init that cannot be packed or carried.
    let init_boot = options.init.as_ref().map(|init| InitBoot::new(options, init)).transpose()?;
    let elf = build_kernel(options)?;
    ensure_qemu()?;
    if let Some(boot) = &init_boot {
        let outcome = run_captured(boot.command(options, &elf), options.timeout)?;
        return if outcome.kernel_succeeded() {
            Ok(())
        } else if outcome.timed_out {
            Err("the init did not end in time (--timeout)".to_string())
        } else {
            Err(format!("the init failed (QEMU status {:?})", outcome.status))
        };
    }
    match &options.script {
        Some(script) => {
            let boot = ScriptedBoot::new(options, script)?;
            let outcome = run_captured(boot.command(options, &elf), options.timeout)?;
            if outcome.kernel_succeeded() {
                Ok(())
            } else if outcome.timed_out {
                Err("the script did not finish in time".to_string())
            } else {
                Err(format!("the script failed (QEMU status {:?})", outcome.status))
            }
        }
        None => {
            println!("xtask: booting Nacre; `poweroff` or Ctrl-A X leaves QEMU");
            let cmdline = options.checked_kernel_cmdline(None)?;
            let status =
                qemu_command(options, &elf, &cmdline).status().map_err(|e| format!("cannot start {QEMU}: {e}"))?;
            if status.code() == Some(QEMU_SUCCESS_STATUS) {
                Ok(())
            } else {
                Err(format!("QEMU exited with {status}"))
            }
        }
    }
}

/// Parses a closing line `N passed, M failed`.
fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let (passed, failed) = line.trim().split_once(", ")?;
    let passed = passed.strip_suffix(" passed")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

/// The name of the last in-kernel test that started (its line is
/// `test NAME ... RESULT`, the result possibly on a later line): where a run
/// that never printed its summary stopped.
fn last_test_started(lines: &[String]) -> Option<&str> {
    lines.iter().rev().find_map(|line| line.strip_prefix("test ")?.split(" ... ").next())
}

/// Boots once per check and compares: how many passed; the failures are
/// added to `failures`.
fn run_checks(options: &Options, elf: &Path, checks: &[Check], failures: &mut Vec<String>) -> Result<u32, String> {
    let mut passed = 0;
    for check in checks {
        println!("xtask: {} (expect {})", check.label, if check.expect_success { "success" } else { "failure" });
        let run_options = Options {
            smp: check.cpus.unwrap_or(options.smp),
            add: check.add.clone(),
            mem: check.mem.clone().unwrap_or_else(|| options.mem.clone()),
            ..options.clone()
        };
        let outcome = match &check.boot {
            CheckBoot::Script(script) => {
                let boot = ScriptedBoot::new(&run_options, script)?;
                run_captured(boot.command(&run_options, elf), options.timeout)?
            }
            // Straight to QEMU: xtask itself would refuse this line.
            CheckBoot::RawCmdline(cmdline) => run_captured(qemu_command(&run_options, elf, cmdline), options.timeout)?,
            CheckBoot::Init(init) => {
                let boot = InitBoot::new(&run_options, init)?;
                run_captured(boot.command(&run_options, elf), options.timeout)?
            }
        };
        let missing: Vec<&str> =
            check.expect_output.iter().map(String::as_str).filter(|text| !outcome.contains(text)).collect();
        let panicked = outcome.contains("kernel panic");
        // An expected failure must be the kernel's own (not a triple fault or a crash of QEMU).
        let expected_status = if check.expect_success { QEMU_SUCCESS_STATUS } else { QEMU_FAILURE_STATUS };
        let status_ok = !outcome.timed_out && outcome.status == Some(expected_status);
        if status_ok && missing.is_empty() && !panicked {
            passed += 1;
        } else {
            failures.push(format!(
                "{}: QEMU status {:?}, missing output {missing:?}{}",
                check.label,
                outcome.status,
                if panicked { ", kernel panicked" } else { "" }
            ));
        }
    }
    Ok(passed)
}

/// `cargo xtask usertests [--add FILE_OR_DIR]`: only the user-mode tests,
/// each on the host Linux and then on Nacre, as `cargo xtask test` runs them.
fn usertests(options: &Options) -> Result<(), String> {
    run_alone(options, usertest::checks(&workspace_root(), &options.add)?, "user test(s)")
}

/// `cargo xtask initchecks`: only the checks of the init, `runall` and a
/// large initrd ([`initcheck`]), as `cargo xtask test` runs them.
fn initchecks(options: &Options) -> Result<(), String> {
    run_alone(options, initcheck::checks(&workspace_root())?, "check(s)")
}

/// Boots once per check of `checks`, outside `cargo xtask test`, and says
/// how many passed; fails when one did (`what` names them).
fn run_alone(options: &Options, checks: Vec<Check>, what: &str) -> Result<(), String> {
    let elf = build_kernel(options)?;
    ensure_qemu()?;
    let mut failures = Vec::new();
    let passed = run_checks(options, &elf, &checks, &mut failures)?;
    for failure in &failures {
        eprintln!("xtask: FAILED: {failure}");
    }
    println!("xtask: {passed} passed, {} failed", failures.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} {what} failed", failures.len()))
    }
}

/// One step of the lab-kit check in `cargo xtask test`.
type LabStep<'a> = dyn Fn() -> Result<(), String> + 'a;

fn test(options: &Options) -> Result<(), String> {
    let root = workspace_root();
    println!("xtask: host tests (cargo test --workspace --exclude nacre-kernel)");
    let status = Command::new(cargo())
        .current_dir(&root)
        .args(["test", "--workspace", "--exclude", "nacre-kernel"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("host tests failed".to_string());
    }
    println!("xtask: import circles (cargo xtask imports)");
    imports::check(&root)?;
    println!("xtask: docs/syscalls.md is the kernel's own table (cargo xtask syscalls)");
    syscalls::check(&root)?;
    lab::check(&root)?;

    // The in-kernel tests are compiled in for this build only.
    let options = &Options { ktest: true, ..options.clone() };
    let elf = build_kernel(options)?;
    ensure_qemu()?;
    let mut failures = Vec::new();

    // The in-kernel suite runs on the machine asked for, on one CPU, and on
    // four CPUs with 5-level paging.
    let machines =
        [options.clone(), Options { smp: 1, ..options.clone() }, Options { smp: 4, la57: true, ..options.clone() }];
    let (mut kernel_passed, mut kernel_failed) = (0, 0);
    for machine in &machines {
        println!("xtask: in-kernel tests ({} CPUs, {}-level paging)", machine.smp, if machine.la57 { 5 } else { 4 });
        let cmdline = machine.checked_kernel_cmdline(Some("test"))?;
        let outcome = run_captured(qemu_command(machine, &elf, &cmdline), options.timeout)?;
        let summary = outcome.lines.iter().rev().find_map(|line| parse_summary(line));
        let (passed, failed) = summary.unwrap_or((0, 0));
        kernel_passed += passed;
        kernel_failed += failed;
        match summary {
            Some((passed, 0)) if passed > 0 && outcome.kernel_succeeded() => {}
            Some(_) | None => failures.push(format!(
                "in-kernel tests ({} CPUs, la57 {}): summary {summary:?}, QEMU status {:?}{}{}",
                machine.smp,
                machine.la57,
                outcome.status,
                if outcome.timed_out { " (timed out)" } else { "" },
                match (summary, last_test_started(&outcome.lines)) {
                    (None, Some(name)) => format!("; the last test to start: {name}"),
                    _ => String::new(),
                }
            )),
        }
    }

    let checks: Vec<Check> = SCRIPTED_CHECKS
        .iter()
        .map(Check::from)
        .chain(generated_checks())
        .chain(elf_checks(&root)?)
        .chain(usertest::checks(&root, &options.add)?)
        .chain(initcheck::checks(&root)?)
        .collect();
    let scripted_passed = run_checks(options, &elf, &checks, &mut failures)?;

    // The Paging Lab kit: the student tree is cut from this one and builds;
    // the grader gives this tree full marks, and the student tree none for
    // the tasks cut out, without crashing; the student tree's kernel boots
    // to the shell, and stops at Task 1's todo! where it needs Task 1.
    let mut lab_passed = 0;
    let kit = root.join("target/lab-kit");
    let _ = std::fs::remove_dir_all(&kit);
    let lab_steps: [(&str, Box<LabStep>); 5] = [
        ("the lab kit is cut (cargo xtask lab new target/lab-kit)", Box::new(|| lab::new(&root, &kit, false))),
        ("the grader gives the reference full marks", Box::new(|| grade::grade(&["--expect-full".to_string()]))),
        (
            "the grader gives the student tree no marks for the cut tasks",
            Box::new(|| grade::grade(&[kit.display().to_string(), "--expect-zero".to_string()])),
        ),
        (
            "the student tree's kernel boots to the shell and runs help and mem",
            Box::new(|| kit::boots_to_the_shell(&kit)),
        ),
        ("the student tree's `as add` stops at Task 1's todo!", Box::new(|| kit::task1_fails_naming_it(&kit))),
    ];
    for (what, step) in &lab_steps {
        println!("xtask: {what}");
        match step() {
            Ok(()) => lab_passed += 1,
            Err(error) => failures.push(format!("{what}: {error}")),
        }
    }

    for failure in &failures {
        eprintln!("xtask: FAILED: {failure}");
    }
    let passed = kernel_passed + scripted_passed + lab_passed;
    let failed = kernel_failed + (checks.len() as u32 - scripted_passed) + (lab_steps.len() as u32 - lab_passed);
    let failed = failed.max(failures.len() as u32);
    println!("xtask: {passed} passed, {failed} failed");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} check(s) failed", failures.len()))
    }
}

fn gdb(options: &Options) -> Result<(), String> {
    let elf = build_kernel(options)?;
    ensure_qemu()?;
    println!("xtask: QEMU waits for a debugger on :1234; in another terminal:");
    println!("    gdb {} -ex \"target remote :1234\"", elf.display());
    let boot = options.script.as_ref().map(|script| ScriptedBoot::new(options, script)).transpose()?;
    let init_boot = options.init.as_ref().map(|init| InitBoot::new(options, init)).transpose()?;
    let mut command = match (&boot, &init_boot) {
        (Some(boot), _) => boot.command(options, &elf),
        (None, Some(boot)) => boot.command(options, &elf),
        (None, None) => qemu_command(options, &elf, &options.checked_kernel_cmdline(None)?),
    };
    let status = command.args(["-s", "-S"]).status().map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    if status.code() == Some(QEMU_SUCCESS_STATUS) {
        Ok(())
    } else {
        // `process::exit` runs no destructors: remove the run's initrd first.
        drop(boot);
        drop(init_boot);
        process::exit(status.code().unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot::{check_kernel_cmdline, script_file_mode, MAX_KERNEL_CMDLINE};

    #[test]
    fn summary_lines_parse() {
        assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_summary("  3 passed, 2 failed "), Some((3, 2)));
        assert_eq!(parse_summary("test foo ... ok"), None);
        assert_eq!(parse_summary("x passed, 0 failed"), None);
    }

    #[test]
    fn the_last_test_to_start_is_found_past_log_lines() {
        let lines: Vec<String> =
            ["test a::one ... ok", "test a::two ... [ 1.0] INFO log line", "ok", "test a::three ... "]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(last_test_started(&lines), Some("a::three"));
        assert_eq!(last_test_started(&lines[..3]), Some("a::two"));
        assert_eq!(last_test_started(&[]), None);
    }

    #[test]
    fn options_split_script_and_flags() {
        let args: Vec<String> = ["--smp", "4", "--la57", "--", "help;", "mem"].iter().map(|s| s.to_string()).collect();
        let options = Options::parse(&args).unwrap();
        assert_eq!(options.smp, 4);
        assert!(options.la57);
        assert_eq!(options.script.as_deref(), Some("help; mem"));
        assert_eq!(options.kernel_cmdline(Some("test")), "test");
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scripts_go_in_a_file_and_the_command_line_only_names_it() {
        let long = echo_script(2000);
        assert!(long.len() > 16 * 1024);
        let options = Options::parse(&args(&["--cmdline", "log=debug", "--", &long])).unwrap();
        assert_eq!(options.script.as_deref(), Some(long.as_str()));
        let cmdline = options.checked_kernel_cmdline(Some(&script_file_mode())).unwrap();
        assert_eq!(cmdline, "log=debug script=@.script");
        assert!(echo_script(3).ends_with("echo 1; echo 2"));
        // Inline scripts typed by hand still work.
        let options = Options::parse(&args(&["--cmdline", "shelltest=off script=help; mem"])).unwrap();
        assert_eq!(options.kernel_cmdline(None), "shelltest=off script=help; mem");
        // ...but not together with commands after --.
        let error = Options::parse(&args(&["--cmdline", "script=help", "--", "mem"])).unwrap_err();
        assert!(error.contains("one place"), "{error}");
        assert!(Options::parse(&args(&["--cmdline", "noscript=x", "--", "mem"])).is_ok());
    }

    #[test]
    fn the_init_and_its_arguments_go_on_the_command_line() {
        let options = Options::parse(&args(&["--smp", "1", "--init", "/bin/x", "a", "--mem", "--"])).unwrap();
        assert_eq!(options.smp, 1);
        let init = options.init.as_deref().unwrap();
        assert_eq!(init, ["/bin/x", "a", "--mem", "--"]);
        assert_eq!(boot::init_boot(init).unwrap(), ("init=/bin/x -- a --mem --".to_string(), None));
        assert_eq!(boot::init_boot(&args(&["/bin/x"])).unwrap().0, "init=/bin/x");
        // A host file is packed as /bin/NAME.
        let host = format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        let (mode, file) = boot::init_boot(&args(&[&host, "z"])).unwrap();
        assert_eq!((mode.as_str(), file), ("init=/bin/Cargo.toml -- z", Some(PathBuf::from(&host))));
        // Refused: no program, a relative path that is no host file, words the command line cannot carry, a script too.
        assert!(Options::parse(&args(&["--init"])).unwrap_err().contains("needs a program"));
        assert!(Options::parse(&args(&["--init", "nowhere/x"])).unwrap_err().contains("no such host file"));
        assert!(Options::parse(&args(&["--init", "/bin/x", "a b"])).unwrap_err().contains("holds white space"));
        assert!(Options::parse(&args(&["--init", "/bin/x", ""])).unwrap_err().contains("is empty"));
        let both = Options::parse(&args(&["--cmdline", "script=help", "--init", "/bin/x"])).unwrap_err();
        assert!(both.contains("give one"), "{both}");
        let options = Options::parse(&args(&["--cmdline", "log=debug", "--init", "/bin/x", "y"])).unwrap();
        let (mode, _) = boot::init_boot(options.init.as_deref().unwrap()).unwrap();
        assert_eq!(options.checked_kernel_cmdline(Some(&mode)).unwrap(), "log=debug init=/bin/x -- y");
        let long = "y".repeat(MAX_KERNEL_CMDLINE);
        let options = Options::parse(&args(&["--init", "/bin/x", &long])).unwrap();
        let (mode, _) = boot::init_boot(options.init.as_deref().unwrap()).unwrap();
        assert!(options.checked_kernel_cmdline(Some(&mode)).is_err());
    }

    #[test]
    fn over_long_command_lines_are_refused_before_the_boot() {
        let longest = "x".repeat(MAX_KERNEL_CMDLINE);
        assert!(Options::parse(&args(&["--cmdline", &longest])).is_ok());
        let error = Options::parse(&args(&["--cmdline", &format!("{longest}y")])).unwrap_err();
        assert!(error.contains("4096 bytes") && error.contains("4095 bytes"), "{error}");
        assert!(error.contains("after --"), "{error}");
        // Room for the options, but not for them and the mode together.
        let options = Options::parse(&args(&["--cmdline", &"x".repeat(MAX_KERNEL_CMDLINE - " test".len())])).unwrap();
        assert!(options.checked_kernel_cmdline(Some("test")).is_ok());
        assert!(options.checked_kernel_cmdline(Some(&script_file_mode())).is_err());
    }

    #[test]
    fn the_long_script_checks_are_what_they_say() {
        let checks = generated_checks();
        let CheckBoot::Script(script) = &checks[0].boot else { panic!("a script") };
        assert!(script.len() > 16 * 1024 && script.ends_with("echo 1999"));
        for check in &checks[2..] {
            let CheckBoot::RawCmdline(line) = &check.boot else { panic!("a raw command line") };
            assert!(line.len() > MAX_KERNEL_CMDLINE && check_kernel_cmdline(line).is_err());
            assert!(!check.expect_success);
        }
    }
}
