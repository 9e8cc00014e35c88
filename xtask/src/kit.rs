//! The boots of a student kit's kernel that `cargo xtask test` makes (after
//! cutting the kit into `target/lab-kit`): with every lab body a `todo!`,
//! the kernel still comes up to the shell, whose startup test is skipped
//! naming the unwritten bodies, and a command the student's code must
//! serve stops the kernel at the `todo!` of its task, with the kernel's
//! failing status (not a hang, a triple fault or a reboot).
//!
//! Each boot is `cargo xtask run --timeout SECS -- "SCRIPT"` in the kit (its
//! own xtask, kernel and target folder), judged by its output.

use crate::boot::{QEMU_FAILURE_STATUS, QEMU_SUCCESS_STATUS};
use crate::grade;
use std::path::Path;
use std::time::Duration;

/// How long the kernel may run (`--timeout`).
const KERNEL_TIMEOUT_SECS: u64 = 60;
/// How long the whole command may take: the kit's kernel may still have to
/// be built.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// A command that uses no lab code: the help listing, then the memory figures.
const SHELL_SCRIPT: &str = "help; mem";
/// A command that needs Task 1 (`add_region` of an eager region), and one
/// that must not run after it.
const TASK1_SCRIPT: &str = "as new paging v; as add v 0 0 4g rwxpke; echo after-task-1";

/// What one boot printed and how it ended.
pub(crate) struct Boot {
    /// `cargo xtask run` succeeded: the kernel powered off with its success status.
    pub(crate) succeeded: bool,
    /// Everything printed: cargo's, xtask's and the kernel's output.
    pub(crate) output: String,
    pub(crate) timed_out: bool,
}

fn boot(kit: &Path, script: &str) -> Result<Boot, String> {
    let args: Vec<String> = ["cargo", "xtask", "run", "--timeout", &KERNEL_TIMEOUT_SECS.to_string(), "--", script]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
    let (succeeded, output, timed_out) = grade::run(kit, &args, RUN_TIMEOUT)?;
    Ok(Boot { succeeded, output, timed_out })
}

/// `cargo xtask test`: the kit's kernel reaches the prompt and runs `help` and `mem`.
pub(crate) fn boots_to_the_shell(kit: &Path) -> Result<(), String> {
    judge_shell(&boot(kit, SHELL_SCRIPT)?)
}

/// `cargo xtask test`: in the kit, `as add` of an eager region stops the
/// kernel at Task 1's `todo!`.
pub(crate) fn task1_fails_naming_it(kit: &Path) -> Result<(), String> {
    judge_task1(&boot(kit, TASK1_SCRIPT)?)
}

/// The text of `output` from the first line holding `text` on, if any.
fn from_line_with<'a>(output: &'a str, text: &str) -> Option<&'a str> {
    let at = output.find(text)?;
    Some(&output[output[..at].rfind('\n').map_or(0, |newline| newline + 1)..])
}

/// The first line of `output` holding `text`, shortened, for a message.
fn line_with(output: &str, text: &str) -> String {
    output.lines().find(|line| line.contains(text)).unwrap_or("").trim().chars().take(160).collect()
}

fn judge_shell(boot: &Boot) -> Result<(), String> {
    if boot.timed_out {
        return Err("the kit's kernel did not finish `help; mem` in time".to_string());
    }
    if boot.output.contains("kernel panic") {
        return Err(format!("the kit's kernel panicked: {}", line_with(&boot.output, "not yet implemented")));
    }
    let startup = from_line_with(&boot.output, "startup test skipped")
        .ok_or("the kit's shell did not say its startup test was skipped")?;
    // The skip names the unwritten bodies as their `todo!`s would, Task 1's first.
    let first_todo = startup.lines().nth(1).unwrap_or("");
    if !first_todo.trim_start().starts_with("not yet implemented: Task 1:") {
        return Err(format!("the skipped startup test does not name Task 1 first: {first_todo:?}"));
    }
    let help = from_line_with(startup, "nacre> help").ok_or("the kit's shell never ran `help` at its prompt")?;
    if !help.contains("peek ADDR [LEN]") {
        return Err("the kit's `help` did not list the commands".to_string());
    }
    let mem = from_line_with(help, "nacre> mem").ok_or("the kit's shell never ran `mem`")?;
    if !mem.contains("page-table frames: base ") {
        return Err("the kit's `mem` did not print the page-table frames".to_string());
    }
    if !boot.succeeded {
        return Err(format!(
            "the kit's `help; mem` did not end with the kernel's success status ({QEMU_SUCCESS_STATUS})"
        ));
    }
    Ok(())
}

fn judge_task1(boot: &Boot) -> Result<(), String> {
    if boot.timed_out {
        return Err("the kit's kernel hung instead of stopping at Task 1's todo!".to_string());
    }
    let add = from_line_with(&boot.output, "nacre> as add v 0 0 4g rwxpke")
        .ok_or("the kit's shell never ran `as add` (did it reach the prompt and create 'v'?)")?;
    if !boot.output.contains("created 'v' (paging)") {
        return Err("the kit's `as new paging v` did not create 'v'".to_string());
    }
    let panic = from_line_with(add, "kernel panic").ok_or("`as add` did not stop the kit's kernel with a panic")?;
    // The panic line, then the message: "not yet implemented: Task 1: ...".
    let message = panic.lines().take(2).collect::<Vec<_>>().join(" ");
    if !message.contains("not yet implemented: Task 1:") {
        return Err(format!("the kit's panic does not name Task 1: {message:?}"));
    }
    if add.contains("nacre> echo after-task-1") {
        return Err("the kit's kernel went on after the panic".to_string());
    }
    if boot.succeeded || !boot.output.contains(&format!("QEMU status Some({QEMU_FAILURE_STATUS})")) {
        return Err(format!(
            "the kit's kernel did not end with its failing status ({QEMU_FAILURE_STATUS}; a triple fault ends with 0)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPTS: &str = "boot: 80.1 ms from the first instruction to the prompt\n\
        shell: startup test skipped: the paging lab's code it runs is not all written yet:\n\
        \x20 not yet implemented: Task 1: add_region: map an EAGER region now\n\
        \x20 not yet implemented: Task 2: RegionSet::insert: add it\n\
        \x20 staying in the current address space\n";

    fn boot(output: String, succeeded: bool, timed_out: bool) -> Boot {
        Boot { succeeded, output, timed_out }
    }

    fn shell_output() -> String {
        format!(
            "{PROMPTS}nacre> help\n  peek ADDR [LEN]   print memory\nnacre> mem\n\
             page-table frames: base 5, total 5 (20 KiB)\n"
        )
    }

    fn task1_output() -> String {
        format!(
            "{PROMPTS}nacre> as new paging v\ncreated 'v' (paging)\nnacre> as add v 0 0 4g rwxpke\n\n\
             kernel panic: panicked at crates/paging/src/space.rs:650:9:\n\
             not yet implemented: Task 1: add_region: map an EAGER region now\n\
             xtask: the script failed (QEMU status Some(35))\n"
        )
    }

    /// What a kit printed before its kernel was independent of the lab's
    /// bodies: a panic at boot, before any prompt.
    const PANIC_AT_BOOT: &str = "[   0.05] INFO  nacre: memory: 114000 frames free\n\n\
        kernel panic: panicked at crates/paging/src/space.rs:560:9:\n\
        not yet implemented: Task 1: add_region: map an EAGER region now\n\
        xtask: the script failed (QEMU status Some(35))\n";

    #[test]
    fn a_kit_that_reaches_the_prompt_passes() {
        assert_eq!(judge_shell(&boot(shell_output(), true, false)), Ok(()));
        assert_eq!(judge_task1(&boot(task1_output(), false, false)), Ok(()));
    }

    #[test]
    fn a_kit_that_panics_at_boot_fails_both_checks() {
        let at_boot = boot(PANIC_AT_BOOT.to_string(), false, false);
        assert!(judge_shell(&at_boot).unwrap_err().contains("panicked"));
        assert!(judge_task1(&at_boot).unwrap_err().contains("never ran `as add`"));
    }

    #[test]
    fn the_shell_check_fails_on_a_hang_a_missing_command_or_a_failing_status() {
        assert!(judge_shell(&boot(shell_output(), false, true)).unwrap_err().contains("in time"));
        let no_mem = shell_output().replace("page-table frames", "frames");
        assert!(judge_shell(&boot(no_mem, true, false)).unwrap_err().contains("`mem`"));
        let no_skip = shell_output().replace("startup test skipped", "startup test shelltest=quick");
        assert!(judge_shell(&boot(no_skip, true, false)).unwrap_err().contains("skipped"));
        let task2_first = shell_output().replacen("Task 1:", "Task 3:", 1);
        assert!(judge_shell(&boot(task2_first, true, false)).unwrap_err().contains("Task 1 first"));
        assert!(judge_shell(&boot(shell_output(), false, false)).unwrap_err().contains("success status"));
    }

    #[test]
    fn the_task1_check_fails_on_a_hang_a_triple_fault_or_another_task() {
        assert!(judge_task1(&boot(task1_output(), false, true)).unwrap_err().contains("hung"));
        let triple_fault = task1_output().replace("Some(35)", "Some(0)");
        assert!(judge_task1(&boot(triple_fault, false, false)).unwrap_err().contains("failing status"));
        let other_task =
            task1_output().replace("yet implemented: Task 1: add_region", "yet implemented: Task 2: insert");
        assert!(judge_task1(&boot(other_task, false, false)).unwrap_err().contains("does not name Task 1"));
        let no_panic = task1_output().replace("kernel panic", "as: refused");
        assert!(judge_task1(&boot(no_panic, false, false)).unwrap_err().contains("did not stop"));
        let went_on = format!("{}nacre> echo after-task-1\n", task1_output());
        assert!(judge_task1(&boot(went_on, false, false)).unwrap_err().contains("went on"));
    }
}
