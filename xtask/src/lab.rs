//! `cargo xtask lab new DIR [--extra]`: the Paging Lab's student tree.
//!
//! The reference source marks the body of each function a student writes:
//!
//! ```text
//! /// The doc comment stays in the student tree.
//! fn add_region(&mut self, region: Region) -> Result<(), AspaceError> {
//!     // lab:begin task1 add_region: refuse bad regions, map an EAGER region now
//!     ...the reference body...
//!     // lab:end
//! }
//! ```
//!
//! In the student tree everything between the two marker lines (and the
//! markers) becomes `todo!("Task 1: <message>")`; comment lines of the body
//! that start with `// lab:keep` stay, as ordinary comments. Extra-credit
//! bodies (`extra-...`) are cut only with `--extra`; without it they stay
//! as in the reference, only their markers go. Markers are read in `.rs`
//! files only. `docs/lab-reflection.md` (the reference answers) becomes the
//! questions alone, and `docs/lab/teacher.md` is left out.

use crate::boot::workspace_root;
use std::fs;
use std::path::Path;
use std::process::Command;

const BEGIN: &str = "// lab:begin";
const END: &str = "// lab:end";
const KEEP: &str = "// lab:keep";

/// The tasks a marker may name: the four graded tasks and the extra credit.
pub(crate) const TASKS: &[&str] =
    &["task1", "task2", "task3", "task4", "extra-shootdown", "extra-grow", "extra-large-pages", "extra-files"];

/// The reference answers, replaced in the kit by [`reflection_template`].
pub(crate) const REFLECTION: &str = "docs/lab-reflection.md";
/// Left out of the kit.
const TEACHER_ONLY: &[&str] = &["docs/lab/teacher.md"];
/// The text a student replaces in the reflection template.
pub(crate) const ANSWER_PLACEHOLDER: &str = "_Your answer here._";

/// One marked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) task: String,
    pub(crate) message: String,
    /// Lines of the `lab:begin` and `lab:end` comments, counted from 0.
    pub(crate) begin: usize,
    pub(crate) end: usize,
}

impl Marker {
    pub(crate) fn is_extra(&self) -> bool {
        self.task.starts_with("extra-")
    }

    /// What `todo!` says in the student tree.
    pub(crate) fn todo_message(&self) -> String {
        match self.task.strip_prefix("task") {
            Some(number) => format!("Task {number}: {}", self.message),
            None => format!("Extra credit ({}): {}", self.task.trim_start_matches("extra-"), self.message),
        }
    }
}

/// The markers of `text` (the file `path`), checked: every begin has an
/// end, none nests, each names a known task and has a message. Errors
/// name `path:line` (lines counted from 1).
pub(crate) fn parse_markers(path: &str, text: &str) -> Result<Vec<Marker>, Vec<String>> {
    let mut markers = Vec::new();
    let mut errors = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(BEGIN) {
            if !rest.is_empty() && !rest.starts_with(' ') {
                errors.push(format!("{path}:{}: malformed marker (want `{BEGIN} TASK MESSAGE`)", number + 1));
                continue;
            }
            let rest = rest.trim();
            let (task, message) = rest.split_once(' ').unwrap_or((rest, ""));
            if !TASKS.contains(&task) {
                errors.push(format!("{path}:{}: unknown task {task:?} (known: {})", number + 1, TASKS.join(", ")));
            }
            if message.trim().is_empty() {
                errors.push(format!("{path}:{}: `{BEGIN} {task}` has no message", number + 1));
            }
            if let Some((first, _, _)) = &open {
                errors.push(format!(
                    "{path}:{}: `{BEGIN}` inside the marked body opened at line {} (markers do not nest)",
                    number + 1,
                    first + 1
                ));
            }
            open = Some((number, task.to_string(), message.trim().to_string()));
        } else if trimmed.starts_with(END) {
            if trimmed != END {
                errors.push(format!("{path}:{}: `{END}` takes nothing after it", number + 1));
            }
            match open.take() {
                Some((begin, task, message)) => markers.push(Marker { task, message, begin, end: number }),
                None => errors.push(format!("{path}:{}: `{END}` without a `{BEGIN}` before it", number + 1)),
            }
        }
    }
    if let Some((begin, task, _)) = open {
        errors.push(format!("{path}:{}: `{BEGIN} {task}` is never closed by `{END}`", begin + 1));
    }
    if errors.is_empty() {
        Ok(markers)
    } else {
        Err(errors)
    }
}

/// Escapes `text` for the format string of `todo!`.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('{', "{{").replace('}', "}}")
}

/// `text` with each marked body cut (extra credit only if `extra`), and the
/// markers that were cut.
pub(crate) fn cut(path: &str, text: &str, extra: bool) -> Result<(String, Vec<Marker>), Vec<String>> {
    let markers = parse_markers(path, text)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    let mut cut_markers = Vec::new();
    let mut next = 0;
    for marker in &markers {
        for line in &lines[next..marker.begin] {
            out.push_str(line);
            out.push('\n');
        }
        let body = &lines[marker.begin + 1..marker.end];
        if marker.is_extra() && !extra {
            // Kept as in the reference, without its markers.
            for line in body {
                out.push_str(line);
                out.push('\n');
            }
        } else {
            let begin = lines[marker.begin];
            let indent = &begin[..begin.len() - begin.trim_start().len()];
            for line in body {
                let trimmed = line.trim_start();
                if let Some(rest) = trimmed.strip_prefix(KEEP) {
                    let own_indent = &line[..line.len() - trimmed.len()];
                    out.push_str(&format!("{own_indent}//{}\n", rest.trim_end()));
                }
            }
            out.push_str(&format!("{indent}todo!(\"{}\")\n", escape(&marker.todo_message())));
            cut_markers.push(marker.clone());
        }
        next = marker.end + 1;
    }
    for line in &lines[next.min(lines.len())..] {
        out.push_str(line);
        out.push('\n');
    }
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    Ok((out, cut_markers))
}

/// The reflection questions without the answers: every heading of the
/// reference, each question followed by [`ANSWER_PLACEHOLDER`].
pub(crate) fn reflection_template(reference: &str) -> String {
    let mut out = String::from(
        "# The paging lab's reflection questions\n\n\
         Answer each question for your kernel, under its heading, in your own words: name the code \
         that does the work and a test that shows it. Replace each placeholder; keep the headings \
         (the grader finds the questions by them). The questions are those of NK's paging lab; \
         docs/lab/README.md says what each one is about.\n",
    );
    let headings: Vec<&str> =
        reference.lines().filter(|line| line.starts_with("## ") || line.starts_with("### ")).collect();
    for (i, heading) in headings.iter().enumerate() {
        out.push('\n');
        out.push_str(heading);
        out.push('\n');
        // A section with sub-questions has no answer of its own.
        let has_children = heading.starts_with("## ") && headings.get(i + 1).is_some_and(|h| h.starts_with("### "));
        if !has_children {
            out.push('\n');
            out.push_str(ANSWER_PLACEHOLDER);
            out.push('\n');
        }
    }
    out
}

fn git_ls_files(root: &Path) -> Result<Vec<String>, String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !output.status.success() {
        return Err(format!("git ls-files failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).split('\0').filter(|f| !f.is_empty()).map(str::to_string).collect())
}

/// `cargo xtask lab ...`.
pub(crate) fn lab(args: &[String]) -> Result<(), String> {
    let usage = "usage: cargo xtask lab new DIR [--extra] | cargo xtask lab check";
    match args.first().map(String::as_str) {
        Some("new") => {
            let extra = args[1..].iter().any(|a| a == "--extra");
            let dirs: Vec<&String> = args[1..].iter().filter(|a| *a != "--extra").collect();
            match dirs.as_slice() {
                [dir] => new(&workspace_root(), Path::new(dir.as_str()), extra),
                _ => Err(usage.to_string()),
            }
        }
        Some("check") => {
            check(&workspace_root()).map(|count| println!("xtask: {count} marked bodies, all well formed"))
        }
        _ => Err(usage.to_string()),
    }
}

/// Checks the markers of every tracked `.rs` file; the number of markers.
pub(crate) fn check(root: &Path) -> Result<usize, String> {
    let mut errors = Vec::new();
    let mut count = 0;
    for file in git_ls_files(root)?.iter().filter(|f| f.ends_with(".rs")) {
        let Ok(text) = fs::read_to_string(root.join(file)) else { continue };
        match parse_markers(file, &text) {
            Ok(markers) => count += markers.len(),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(count)
    } else {
        Err(format!("bad lab markers:\n  {}", errors.join("\n  ")))
    }
}

/// Writes the student tree of the workspace at `root` into `dir`.
pub(crate) fn new(root: &Path, dir: &Path, extra: bool) -> Result<(), String> {
    if dir.exists() {
        let empty = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_none();
        if !empty {
            return Err(format!("{} exists and is not empty; give a new or empty directory", dir.display()));
        }
    }
    let files = git_ls_files(root)?;
    // Everything is checked before anything is written.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut errors = Vec::new();
    let mut cut_markers: Vec<(String, Marker)> = Vec::new();
    for file in &files {
        if TEACHER_ONLY.contains(&file.as_str()) {
            continue;
        }
        let source = root.join(file);
        if !source.is_file() {
            continue; // tracked but deleted in the work tree
        }
        let bytes = fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let bytes = if file == REFLECTION {
            reflection_template(&String::from_utf8_lossy(&bytes)).into_bytes()
        } else if file.ends_with(".rs") {
            let text = String::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8"))?;
            match cut(file, &text, extra) {
                Ok((out, markers)) => {
                    cut_markers.extend(markers.into_iter().map(|m| (file.clone(), m)));
                    out.into_bytes()
                }
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            }
        } else {
            bytes
        };
        outputs.push((file.clone(), bytes));
    }
    if !errors.is_empty() {
        return Err(format!("bad lab markers, nothing written:\n  {}", errors.join("\n  ")));
    }
    for (file, bytes) in &outputs {
        let target = dir.join(file);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&target, bytes).map_err(|e| format!("{}: {e}", target.display()))?;
        // Keep scripts executable.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = fs::metadata(root.join(file)) {
                let _ = fs::set_permissions(&target, fs::Permissions::from_mode(meta.permissions().mode()));
            }
        }
    }
    let mut lab_md = String::from(
        "# The Paging Lab\n\nThis tree is the starting point of the Paging Lab on Nacre. Read \
         [docs/lab/README.md](docs/lab/README.md) first: the tasks, where they live, how to build, run, \
         debug and grade (`cargo xtask grade`).\n\nThe bodies to write (each a `todo!` naming its task):\n\n",
    );
    for (file, marker) in &cut_markers {
        lab_md.push_str(&format!("- `{file}`: {}\n", marker.todo_message()));
    }
    lab_md.push_str("\nAnswer the reflection questions in [docs/lab-reflection.md](docs/lab-reflection.md).\n");
    fs::write(dir.join("LAB.md"), lab_md).map_err(|e| format!("LAB.md: {e}"))?;
    println!(
        "xtask: wrote the student tree to {} ({} files, {} bodies cut{})",
        dir.display(),
        outputs.len() + 1,
        cut_markers.len(),
        if extra { ", extra credit included" } else { "" }
    );
    for (file, marker) in &cut_markers {
        println!("    {file}:{}: {}", marker.begin + 1, marker.todo_message());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(list: &[&str]) -> String {
        list.iter().map(|line| format!("{line}\n")).collect()
    }

    fn sample() -> String {
        lines(&[
            "/// Adds.",
            "fn add(a: u32) -> u32 {",
            "    // lab:begin task1 add one to a",
            "    // lab:keep Hint: overflow is the caller's problem.",
            "    let b = a;",
            "    b + 1",
            "    // lab:end",
            "}",
            "fn grow() {",
            "    // lab:begin extra-grow grow the {stack}",
            "    println!(\"x\");",
            "    // lab:end",
            "}",
        ])
    }

    #[test]
    fn a_marked_body_becomes_todo_with_its_kept_comments() {
        let (out, cut_markers) = cut("a.rs", &sample(), false).unwrap();
        let want = lines(&[
            "/// Adds.",
            "fn add(a: u32) -> u32 {",
            "    // Hint: overflow is the caller's problem.",
            "    todo!(\"Task 1: add one to a\")",
            "}",
            "fn grow() {",
            "    println!(\"x\");",
            "}",
        ]);
        assert_eq!(out, want);
        assert_eq!(cut_markers.len(), 1);
        assert_eq!(cut_markers[0].task, "task1");
    }

    #[test]
    fn extra_credit_is_cut_only_when_asked_and_braces_are_escaped() {
        let (out, cut_markers) = cut("a.rs", &sample(), true).unwrap();
        assert!(out.contains("    todo!(\"Extra credit (grow): grow the {{stack}}\")\n"), "{out}");
        assert!(!out.contains("println"));
        assert_eq!(cut_markers.len(), 2);
    }

    #[test]
    fn unmarked_text_is_unchanged() {
        let text = "fn a() {}\n// a lab comment that is no marker\nfn b() {}";
        assert_eq!(cut("a.rs", text, true).unwrap().0, text);
    }

    #[test]
    fn bad_markers_are_named_by_file_and_line() {
        let unclosed = lines(&["fn a() {", "    // lab:begin task1 x", "}"]);
        assert_eq!(
            parse_markers("u.rs", &unclosed).unwrap_err(),
            ["u.rs:2: `// lab:begin task1` is never closed by `// lab:end`"]
        );

        let stray_end = lines(&["fn a() {", "    // lab:end", "}"]);
        assert_eq!(
            parse_markers("e.rs", &stray_end).unwrap_err(),
            ["e.rs:2: `// lab:end` without a `// lab:begin` before it"]
        );

        let nested = lines(&["// lab:begin task1 a", "// lab:begin task2 b", "// lab:end", "// lab:end"]);
        let errors = parse_markers("n.rs", &nested).unwrap_err();
        assert!(errors[0].starts_with("n.rs:2: `// lab:begin` inside the marked body opened at line 1"), "{errors:?}");

        let unknown = lines(&["// lab:begin task9 a", "// lab:end"]);
        assert!(parse_markers("k.rs", &unknown).unwrap_err()[0].starts_with("k.rs:1: unknown task \"task9\""));

        let no_message = lines(&["// lab:begin task3", "// lab:end"]);
        assert_eq!(parse_markers("m.rs", &no_message).unwrap_err(), ["m.rs:1: `// lab:begin task3` has no message"]);

        let malformed = lines(&["// lab:begintask1 a", "// lab:end"]);
        assert!(parse_markers("f.rs", &malformed).unwrap_err()[0].starts_with("f.rs:1: malformed marker"));
        // A bad file is never cut.
        assert!(cut("u.rs", &unclosed, true).is_err());
    }

    #[test]
    fn the_reflection_template_keeps_the_questions_only() {
        let reference =
            lines(&["# Answers", "", "## 1. The map", "It is a tree.", "## 2. Cases", "### (a) Overlap", "Refused."]);
        let template = reflection_template(&reference);
        assert!(template.contains("## 1. The map\n\n_Your answer here._\n"));
        assert!(template.contains("## 2. Cases\n\n### (a) Overlap\n\n_Your answer here._\n"));
        assert!(!template.contains("tree") && !template.contains("Refused"));
    }

    #[test]
    fn a_kit_is_refused_in_a_non_empty_directory() {
        let dir = std::env::temp_dir().join(format!("nacre-lab-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("x"), "x").unwrap();
        let error = new(&workspace_root(), &dir, false).unwrap_err();
        assert!(error.contains("not empty"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_reference_markers_are_well_formed_and_cover_every_task() {
        let root = workspace_root();
        // A student tree (no git, no markers) has nothing to check.
        let Ok(count) = check(&root) else { return };
        if count == 0 {
            return;
        }
        assert!(count >= TASKS.len());
        for file in git_ls_files(&root).unwrap().iter().filter(|f| f.ends_with(".rs")) {
            let text = fs::read_to_string(root.join(file)).unwrap_or_default();
            for marker in parse_markers(file, &text).unwrap() {
                assert!(TASKS.contains(&marker.task.as_str()));
            }
        }
    }
}
