//! `cargo xtask grade [DIR] [--expect-full | --expect-zero]`: the Paging Lab's score card.
//!
//! Runs in DIR (default: this workspace) the graded checks of each task:
//! host tests on the software MMU (`cargo test -p ... --test X NAME`) and
//! scripted kernel runs (`cargo xtask run -- "..."`, one at a time), and
//! weighs them by the lab's rubric. A check that fails, or stops at a
//! `todo!`, scores 0 and the grader goes on. The reflection is checked for
//! an answer under each question; a human reads it.

use crate::boot::cargo;
use crate::lab::ANSWER_PLACEHOLDER;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a check runs.
enum Kind {
    /// `cargo test -p CRATE ARGS...`: passes when at least one test ran and none failed.
    Host { krate: &'static str, args: &'static [&'static str] },
    /// `cargo xtask run OPTIONS -- SCRIPT`: passes when the kernel reports
    /// success, prints each expected text and does not panic.
    Kernel { options: &'static [&'static str], script: &'static str, expect: &'static [&'static str] },
}

struct GradedCheck {
    what: &'static str,
    kind: Kind,
}

/// A part of the rubric: its checks share its points equally.
struct Part {
    name: &'static str,
    points: f64,
    extra: bool,
    checks: &'static [GradedCheck],
}

const fn host(what: &'static str, krate: &'static str, args: &'static [&'static str]) -> GradedCheck {
    GradedCheck { what, kind: Kind::Host { krate, args } }
}

const fn kernel(
    what: &'static str,
    options: &'static [&'static str],
    script: &'static str,
    expect: &'static [&'static str],
) -> GradedCheck {
    GradedCheck { what, kind: Kind::Kernel { options, script, expect } }
}

/// The rubric: eager 20, memory map 20, lazy 35, remove/move/protect 15,
/// reflection 10 ([`REFLECTION_POINTS`]); extra credit 5 each, 20 at most.
const PARTS: &[Part] = &[
    Part {
        name: "Task 1: eager construction",
        points: 20.0,
        extra: false,
        checks: &[
            host("eager 4 GiB at 1 GiB-aligned addresses: four 1 GiB pages", "paging", &[
                "--test",
                "page_sizes",
                "four_gib_at_1g_aligned_addresses_uses_four_1g_pages",
            ]),
            host("eager map from 4 KiB past 1 GiB: page sizes climb and fall", "paging", &[
                "--test",
                "page_sizes",
                "start_4k_past_1g_climbs_up_then_down_the_sizes",
            ]),
            host("an eager add is all or nothing when frames run out", "paging", &[
                "--test",
                "edits",
                "eager_add_is_all_or_nothing_when_frames_run_out",
            ]),
            kernel(
                "kernel: an eager 0-4 GiB space is entered and verified",
                &["--cmdline", "shelltest=off"],
                "as new paging v; as add v 0 0 4g rwxpke; as kernel v; as enter v; peek 0x100000; as verify v; as leave; as destroy v",
                &["the page tables match the regions", "destroyed 'v'"],
            ),
        ],
    },
    Part {
        name: "Task 2: the memory map",
        points: 20.0,
        extra: false,
        checks: &[
            host("region set unit tests", "aspace", &["--lib", "region_set::"]),
            host("region set against a linear model (property test)", "aspace", &["--test", "region_set_model"]),
            host("region set refuses overlaps and bad updates", "aspace", &[
                "--test",
                "bad_input",
                "region_set_refuses_overlaps_and_bad_updates",
            ]),
        ],
    },
    Part {
        name: "Task 3: lazy construction",
        points: 35.0,
        extra: false,
        checks: &[
            host("fault outcomes follow the region", "paging", &["--test", "edits", "fault_outcomes_follow_the_region"]),
            host("a permission increase leaves a spurious fault, recognised", "paging", &[
                "--test",
                "edits",
                "a_permission_increase_leaves_a_spurious_fault_that_is_recognised",
            ]),
            host("a lazy fault without frames changes nothing", "paging", &[
                "--test",
                "edits",
                "a_lazy_fault_without_frames_is_unhandled_and_changes_nothing",
            ]),
            kernel(
                "kernel: the shell's startup test (eager + lazy memcmp)",
                &[],
                "echo lazy",
                &["memcmp 4 MiB at 0x100000 and 0xffff800000100000: equal ("],
            ),
        ],
    },
    Part {
        name: "Task 4: remove, move, protect with TLB flushing",
        points: 15.0,
        extra: false,
        checks: &[
            host("NK's move, remove and protect on the model", "paging", &[
                "--test",
                "edits",
                "nk_paging_test_move_remove_and_protect",
            ]),
            host("moving part of a lazy region re-points only what exists", "paging", &[
                "--test",
                "edits",
                "moving_part_of_a_lazy_region_repoints_only_what_exists",
            ]),
            host("edits past the flush ceiling reach every entry", "paging", &[
                "--test",
                "edits",
                "edits_past_the_flush_ceiling_reach_every_entry",
            ]),
            host("every refusal changes nothing", "paging", &["--test", "edits", "every_refusal_changes_nothing"]),
            kernel("kernel: pagingTest (NK's test, with TLB checks)", &[], "pagingTest", &[" 0 failed"]),
        ],
    },
    Part {
        name: "Extra: TLB shootdowns",
        points: 5.0,
        extra: true,
        checks: &[kernel("kernel: shootdownTest on 4 CPUs", &["--smp", "4"], "shootdownTest 300", &["passed"])],
    },
    Part {
        name: "Extra: growable regions",
        points: 5.0,
        extra: true,
        checks: &[
            host("growable regions on the model", "paging", &["--test", "growable"]),
            kernel("kernel: growTest", &[], "growTest", &["growTest: passed"]),
        ],
    },
    Part {
        name: "Extra: large pages",
        points: 5.0,
        extra: true,
        checks: &[host("lazy faults map the largest page inside the region", "paging", &[
            "--test",
            "page_sizes",
            "lazy_faults_map_the_largest_page_inside_the_region",
        ])],
    },
    Part {
        name: "Extra: file mappings",
        points: 5.0,
        extra: true,
        checks: &[
            host("file-backed regions on the model", "paging", &["--test", "file_backed"]),
            kernel("kernel: mmapTest", &[], "mmapTest", &["mmapTest: passed"]),
        ],
    },
];

const REFLECTION_POINTS: f64 = 10.0;
const EXTRA_CAP: f64 = 20.0;
/// The reflection's questions, found by their headings' starts.
const QUESTIONS: &[&str] = &["## 1.", "### (a)", "### (b)", "### (c)", "### (d)", "### (e)", "### (f)", "### (g)"];
const HOST_TIMEOUT: Duration = Duration::from_secs(300);
const KERNEL_TIMEOUT_SECS: u64 = 90;

/// The command line of a check, as one would type it in DIR.
fn command_line(check: &GradedCheck) -> Vec<String> {
    let mut args = vec!["cargo".to_string()];
    match &check.kind {
        Kind::Host { krate, args: rest } => {
            args.extend(["test", "-p", krate].map(String::from));
            args.extend(rest.iter().map(|a| a.to_string()));
        }
        Kind::Kernel { options, script, .. } => {
            args.extend(["xtask", "run"].map(String::from));
            args.extend(options.iter().map(|a| a.to_string()));
            args.extend(["--timeout".to_string(), KERNEL_TIMEOUT_SECS.to_string(), "--".to_string()]);
            args.push(script.to_string());
        }
    }
    args
}

fn shell_quote(arg: &str) -> String {
    if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c)) {
        arg.to_string()
    } else {
        format!("\"{}\"", arg.replace('"', "\\\""))
    }
}

/// Runs `args` in `dir`, its output captured (stdout and stderr together),
/// killed after `timeout`: (success, output, timed out).
pub(crate) fn run(dir: &Path, args: &[String], timeout: Duration) -> Result<(bool, String, bool), String> {
    let log = std::env::temp_dir().join(format!("nacre-grade-{}.log", std::process::id()));
    let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let program = if args[0] == "cargo" { cargo() } else { args[0].clone() };
    let mut child = Command::new(program)
        .current_dir(dir)
        .args(&args[1..])
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", args.join(" ")))?;
    let start = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break (Some(status), false);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&log);
    Ok((status.is_some_and(|s| s.success()), output, timed_out))
}

/// The number of tests `cargo test` reports as passed and failed, summed
/// over its `test result:` lines.
fn test_counts(output: &str) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    for line in output.lines().filter(|l| l.starts_with("test result:")) {
        for part in line.split([';', '.']).map(str::trim) {
            if let Some(n) = part.strip_suffix(" passed").and_then(|n| n.rsplit(' ').next()?.parse::<u32>().ok()) {
                passed += n;
            }
            if let Some(n) = part.strip_suffix(" failed").and_then(|n| n.rsplit(' ').next()?.parse::<u32>().ok()) {
                failed += n;
            }
        }
    }
    (passed, failed)
}

/// Why a failed check failed, in one line.
fn cause(output: &str, timed_out: bool, missing: &[&str]) -> String {
    // The kernel's panic names the todo! it stopped at; before it, a kit's
    // shell lists the unwritten bodies its startup test skipped for.
    let from_panic = output.find("kernel panic").map_or(output, |at| &output[at..]);
    if let Some(line) = from_panic.lines().find(|l| l.contains("not yet implemented: ")) {
        let todo = &line[line.find("not yet implemented: ").unwrap_or(0)..];
        return format!("stopped at todo!: {}", todo.trim());
    }
    if timed_out {
        return "timed out".to_string();
    }
    if output.contains("could not compile") || output.contains("error[E") {
        return "does not compile".to_string();
    }
    if let Some(line) = output.lines().find(|l| l.contains("kernel panic") || l.contains("panicked at")) {
        return line.trim().chars().take(160).collect();
    }
    if !missing.is_empty() {
        return format!("output lacks {missing:?}");
    }
    if output.contains("running 0 tests") && !output.contains("test result: ok. 1") {
        return "no test of that name ran".to_string();
    }
    output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(String::new, |l| l.trim().chars().take(160).collect())
}

/// Runs one check: (passed, cause if not).
fn run_check(dir: &Path, check: &GradedCheck) -> Result<(bool, String), String> {
    let args = command_line(check);
    match &check.kind {
        Kind::Host { .. } => {
            let (ok, output, timed_out) = run(dir, &args, HOST_TIMEOUT)?;
            let (passed, failed) = test_counts(&output);
            if ok && passed > 0 && failed == 0 {
                Ok((true, String::new()))
            } else if ok && passed == 0 {
                Ok((false, "no test of that name ran".to_string()))
            } else {
                Ok((false, cause(&output, timed_out, &[])))
            }
        }
        Kind::Kernel { expect, .. } => {
            let (ok, output, timed_out) = run(dir, &args, Duration::from_secs(KERNEL_TIMEOUT_SECS + 60))?;
            let missing: Vec<&str> = expect.iter().copied().filter(|text| !output.contains(text)).collect();
            let panicked = output.contains("kernel panic");
            if ok && missing.is_empty() && !panicked {
                Ok((true, String::new()))
            } else {
                Ok((false, cause(&output, timed_out, &missing)))
            }
        }
    }
}

/// The reflection: for each question, whether an answer is written under it.
pub(crate) fn reflection_answers(text: &str) -> Vec<(&'static str, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    QUESTIONS
        .iter()
        .map(|question| {
            let Some(at) = lines.iter().position(|l| l.starts_with(question)) else { return (*question, false) };
            let answered = lines[at + 1..]
                .iter()
                .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
                .any(|l| !l.trim().is_empty() && l.trim() != ANSWER_PLACEHOLDER);
            (*question, answered)
        })
        .collect()
}

fn arg_dir(args: &[String]) -> Result<(PathBuf, bool), String> {
    let expect_full = args.iter().any(|a| a == "--expect-full");
    let dirs: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let dir = match dirs.as_slice() {
        [] => crate::boot::workspace_root(),
        [dir] => PathBuf::from(dir.as_str()),
        _ => return Err("usage: cargo xtask grade [DIR] [--expect-full]".to_string()),
    };
    let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!("{} is not a Nacre workspace (no Cargo.toml)", dir.display()));
    }
    Ok((dir, expect_full))
}

/// `cargo xtask grade [DIR] [--expect-full]`.
pub(crate) fn grade(args: &[String]) -> Result<(), String> {
    let (dir, expect_full) = arg_dir(args)?;
    let start = Instant::now();
    println!("xtask: grading {}", dir.display());
    // Built once, up front: the checks then only run.
    let host_build: Vec<String> =
        ["cargo", "test", "-p", "paging", "-p", "aspace", "--no-run"].iter().map(|s| s.to_string()).collect();
    let (host_ok, host_out, _) = run(&dir, &host_build, HOST_TIMEOUT)?;
    if !host_ok {
        println!("xtask: the host tests do not build ({}); their checks score 0", cause(&host_out, false, &[]));
    }
    let kernel_build: Vec<String> = ["cargo", "xtask", "build"].iter().map(|s| s.to_string()).collect();
    let (kernel_ok, kernel_out, _) = run(&dir, &kernel_build, HOST_TIMEOUT)?;
    if !kernel_ok {
        println!("xtask: the kernel does not build ({}); its checks score 0", cause(&kernel_out, false, &[]));
    }
    println!("xtask: built in {:.0}s; running the checks", start.elapsed().as_secs_f64());

    let mut card = String::new();
    let (mut total, mut extra_total) = (0.0, 0.0);
    let mut failed_checks = 0;
    for part in PARTS {
        let mut lines = String::new();
        let mut passed = 0;
        for check in part.checks {
            let check_start = Instant::now();
            let built = match check.kind {
                Kind::Host { .. } => host_ok,
                Kind::Kernel { .. } => kernel_ok,
            };
            let (ok, why) = if built { run_check(&dir, check)? } else { (false, "does not build".to_string()) };
            let secs = check_start.elapsed().as_secs_f64();
            let kind = if matches!(check.kind, Kind::Host { .. }) { "host  " } else { "kernel" };
            lines.push_str(&format!("    [{}] {kind} {} ({secs:.1}s)\n", if ok { "pass" } else { "FAIL" }, check.what));
            if ok {
                passed += 1;
            } else {
                failed_checks += 1;
                lines.push_str(&format!("           {why}\n"));
                let rerun: Vec<String> = command_line(check).iter().map(|a| shell_quote(a)).collect();
                lines.push_str(&format!("           rerun: {}\n", rerun.join(" ")));
            }
        }
        let points = part.points * passed as f64 / part.checks.len() as f64;
        if part.extra {
            extra_total += points;
        } else {
            total += points;
        }
        let header = format!("{} ({}/{} checks)", part.name, passed, part.checks.len());
        card.push_str(&format!("{header:<60} {points:>5.1} / {:.0}\n{lines}", part.points));
        print!("{header:<60} {points:>5.1} / {:.0}\n{lines}", part.points);
    }

    let reflection = fs::read_to_string(dir.join(crate::lab::REFLECTION)).unwrap_or_default();
    let answers = reflection_answers(&reflection);
    let answered = answers.iter().filter(|(_, ok)| *ok).count();
    let points = REFLECTION_POINTS * answered as f64 / answers.len() as f64;
    total += points;
    let header = format!("Task 5: reflection ({answered}/{} questions answered)", answers.len());
    let mut lines = format!("{header:<60} {points:>5.1} / {REFLECTION_POINTS:.0}\n");
    for (question, ok) in &answers {
        if !ok {
            lines.push_str(&format!("    [FAIL] no answer under \"{question}\" in {}\n", crate::lab::REFLECTION));
        }
    }
    lines.push_str("    (present and non-empty only: a human reads and marks the answers)\n");
    print!("{lines}");
    card.push_str(&lines);

    let extra_total = extra_total.min(EXTRA_CAP);
    let summary = format!(
        "TOTAL {total:.1} / 100   extra credit {extra_total:.1} / {EXTRA_CAP:.0}   ({failed_checks} check(s) failed, {:.0}s)",
        start.elapsed().as_secs_f64()
    );
    println!("{}\n{summary}", "-".repeat(summary.len()));
    let full = (total - 100.0).abs() < 1e-9 && (extra_total - EXTRA_CAP).abs() < 1e-9;
    if expect_full && !full {
        return Err(format!("expected full marks, got {total:.1} / 100 and {extra_total:.1} extra"));
    }
    if args.iter().any(|a| a == "--expect-zero") && total != 0.0 {
        return Err(format!("expected no marks for the tasks cut out, got {total:.1} / 100"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rubric_adds_up() {
        let core: f64 = PARTS.iter().filter(|p| !p.extra).map(|p| p.points).sum();
        assert_eq!(core + REFLECTION_POINTS, 100.0);
        let extra: f64 = PARTS.iter().filter(|p| p.extra).map(|p| p.points).sum();
        assert_eq!(extra, EXTRA_CAP);
        assert!(PARTS.iter().all(|p| !p.checks.is_empty()));
    }

    #[test]
    fn test_counts_sum_every_result_line() {
        let out = "test result: ok. 3 passed; 0 failed; 0 ignored\nrunning 2 tests\n\
                   test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.1s";
        assert_eq!(test_counts(out), (4, 1));
        assert_eq!(test_counts("nothing"), (0, 0));
    }

    #[test]
    fn a_todo_is_named_as_the_cause() {
        let out = "thread 'x' panicked at src/space.rs:5:9:\nnot yet implemented: Task 3: exception: map it\n";
        assert_eq!(cause(out, false, &[]), "stopped at todo!: not yet implemented: Task 3: exception: map it");
        let kernel = "kernel panic: not yet implemented: Task 1: add_region (at crates/paging/src/space.rs:562)";
        assert!(cause(kernel, false, &[]).contains("Task 1"));
        // A kit's skipped startup test lists bodies; the panic's own is the cause.
        let kit = "shell: startup test skipped: the paging lab's code it runs is not all written yet:\n\
                   \x20 not yet implemented: Task 1: add_region\nnacre> pagingTest\n\
                   kernel panic: panicked at crates/aspace/src/region_set/mod.rs:121:9:\n\
                   not yet implemented: Task 2: RegionSet::find\n";
        assert_eq!(cause(kit, false, &[]), "stopped at todo!: not yet implemented: Task 2: RegionSet::find");
        let skipped = "shell: startup test skipped:\n  not yet implemented: Task 1: add_region\nnacre> echo lazy\n";
        assert!(cause(skipped, false, &["memcmp"]).contains("Task 1"));
    }

    #[test]
    fn reflection_questions_need_an_answer_each() {
        let template = crate::lab::reflection_template(
            &fs::read_to_string(crate::boot::workspace_root().join(crate::lab::REFLECTION)).unwrap(),
        );
        assert!(reflection_answers(&template).iter().all(|(_, ok)| !ok));
        let reference = fs::read_to_string(crate::boot::workspace_root().join(crate::lab::REFLECTION)).unwrap();
        if reference.contains(ANSWER_PLACEHOLDER) {
            return; // a student tree: the answers are the student's
        }
        assert!(reflection_answers(&reference).iter().all(|(_, ok)| *ok));
        let one = template.replacen(ANSWER_PLACEHOLDER, "A B+-tree.", 1);
        assert_eq!(reflection_answers(&one).iter().filter(|(_, ok)| *ok).count(), 1);
    }

    #[test]
    fn rerun_commands_quote_scripts() {
        let check = kernel("k", &["--smp", "4"], "shootdownTest 300", &[]);
        let line: Vec<String> = command_line(&check).iter().map(|a| shell_quote(a)).collect();
        assert_eq!(line.join(" "), "cargo xtask run --smp 4 --timeout 90 -- \"shootdownTest 300\"");
    }
}
