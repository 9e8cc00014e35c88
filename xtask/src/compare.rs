//! `cargo xtask compare`: Nacre's `BENCH` figures beside Linux's, as the
//! ratios docs/PERFORMANCE.md reports.
//!
//! Reads the output of `cargo xtask bench` and the summary the Linux harness
//! (`../shared/anchors/linux-vm-bench`, `RUNS=3 ./run.sh`) writes, and prints
//! one Markdown table row per comparison the performance issue names: Nacre's
//! figure, Linux's median in the same sitting and in the reference run, the
//! two ratios, the goal, and whether each ratio meets it. Nothing is judged
//! here that the figures do not say: a figure missing on either side is
//! shown as missing, not as met.

use crate::bench::parse_figures;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the Linux harness keeps its results unless `WORK` says otherwise.
const LINUX_HARNESS_WORK: &str = "/tmp/linux-anchor";

/// How a Linux figure is read from the harness's summary.
#[derive(Clone, Copy, Debug)]
enum LinuxFigure {
    /// One metric's median.
    Metric(&'static str),
    /// The median of the first metric less that of the second.
    Difference(&'static str, &'static str),
}

/// A ratio Nacre's figure must stay within: at most `ratio`, or below it
/// when `strict`.
#[derive(Clone, Copy, Debug)]
struct Goal {
    ratio: f64,
    strict: bool,
}

impl Goal {
    const AT_MOST_HALF: Option<Goal> = Some(Goal { ratio: 0.5, strict: false });
    const BELOW: Option<Goal> = Some(Goal { ratio: 1.0, strict: true });

    fn met_by(self, ratio: f64) -> bool {
        if self.strict {
            ratio < self.ratio
        } else {
            ratio <= self.ratio
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", if self.strict { "<" } else { "≤" }, self.ratio)
    }
}

/// One comparison of the performance issue.
struct Comparison {
    /// What is compared, in words.
    what: &'static str,
    /// Nacre's `BENCH` figure.
    nacre: &'static str,
    linux: LinuxFigure,
    /// Linux's figure in the reference run (25 November 2026), in
    /// the unit of `nacre`.
    reference: f64,
    goal: Option<Goal>,
}

/// The comparisons, in the order of docs/PERFORMANCE.md's tables.
const COMPARISONS: &[Comparison] = &[
    Comparison {
        what: "lazy 4 KiB fault vs shmem read fault, no fault-around (ns/fault)",
        nacre: "lazy_fault_4k",
        linux: LinuxFigure::Metric("shmem_read_fault_nofa_ns"),
        reference: 3190.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "lazy 4 KiB fault vs anonymous read fault, zero page (ns/fault)",
        nacre: "lazy_fault_4k",
        linux: LinuxFigure::Metric("anon_read_fault_ns"),
        reference: 2107.0,
        goal: Goal::BELOW,
    },
    Comparison {
        what: "lazy fault with fault-around vs shmem with fault-around (ns/page)",
        nacre: "lazy_fault_around",
        linux: LinuxFigure::Metric("shmem_read_fault_fa_ns"),
        reference: 681.0,
        goal: Goal::BELOW,
    },
    Comparison {
        what: "anonymous first touch vs anonymous write fault (ns/fault)",
        nacre: "anon_fault_4k",
        linux: LinuxFigure::Metric("anon_write_fault_ns"),
        reference: 8311.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "eager map, 4 KiB pages vs MAP_POPULATE of shmem (ns/page)",
        nacre: "eager_map_4k",
        linux: LinuxFigure::Metric("populate_shmem_ns"),
        reference: 794.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "protect 64 MiB vs mprotect (ns/page)",
        nacre: "protect_64m",
        linux: LinuxFigure::Metric("mprotect_64m_ns_per_page"),
        reference: 108.7,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "remove 64 MiB vs munmap of shmem (ns/page)",
        nacre: "remove_64m",
        linux: LinuxFigure::Metric("munmap_shmem_64m_ns"),
        reference: 498.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "move 64 MiB vs mremap, every entry moved (ns/page)",
        nacre: "move_64m",
        linux: LinuxFigure::Metric("mremap_move_unaligned_ns"),
        reference: 92.7,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "protect 1 page vs mprotect of a 1-page VMA (ns/call)",
        nacre: "protect_1page",
        linux: LinuxFigure::Metric("mprotect_1page_isolated_ns"),
        reference: 2970.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "remove 1 page vs munmap of 1 page (ns/call)",
        nacre: "remove_1page",
        linux: LinuxFigure::Metric("munmap_1page_ns"),
        reference: 20726.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "protect 1 page live on 2 CPUs vs mprotect with a thread on the other CPU (ns/call)",
        nacre: "shootdown_protect_1page_2cpu",
        linux: LinuxFigure::Metric("shootdown_mprotect_1page_2thr_ns"),
        reference: 5241.0,
        goal: Goal::AT_MOST_HALF,
    },
    Comparison {
        what: "address-space switch vs yield to another process less yield within one (ns)",
        nacre: "aspace_switch",
        linux: LinuxFigure::Difference("ctxsw_yield_other_mm_ns", "ctxsw_yield_same_mm_ns"),
        reference: 12355.0,
        goal: None,
    },
    Comparison {
        what: "boot to the shell prompt vs boot to init (ms)",
        nacre: "boot_to_shell",
        linux: LinuxFigure::Metric("boot_to_init_ms"),
        reference: 1238.0,
        goal: Some(Goal { ratio: 0.1, strict: true }),
    },
];

/// The medians of a Linux harness summary (`metric min median max unit`
/// per line, after a header), by metric name.
fn parse_linux_summary(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let median = words.get(2)?.parse().ok()?;
            Some((words[0].to_string(), median))
        })
        .collect()
}

fn linux_value(summary: &[(String, f64)], figure: LinuxFigure) -> Option<f64> {
    let median = |name: &str| summary.iter().find(|(metric, _)| metric == name).map(|&(_, value)| value);
    match figure {
        LinuxFigure::Metric(name) => median(name),
        LinuxFigure::Difference(minuend, subtrahend) => Some(median(minuend)? - median(subtrahend)?),
    }
}

/// One row of the table: a comparison and the two figures it found.
struct Row {
    comparison: &'static Comparison,
    nacre: Option<f64>,
    linux: Option<f64>,
}

impl Row {
    fn same_sitting_ratio(&self) -> Option<f64> {
        Some(self.nacre? / self.linux?)
    }

    fn reference_ratio(&self) -> Option<f64> {
        Some(self.nacre? / self.comparison.reference)
    }

    /// Whether `ratio` meets the goal; `None` when there is no goal or no ratio.
    fn verdict(&self, ratio: Option<f64>) -> Option<bool> {
        Some(self.comparison.goal?.met_by(ratio?))
    }
}

fn rows(nacre: &[(String, f64, String)], linux: &[(String, f64)]) -> Vec<Row> {
    COMPARISONS
        .iter()
        .map(|comparison| Row {
            comparison,
            nacre: nacre.iter().find(|(name, _, _)| name == comparison.nacre).map(|&(_, value, _)| value),
            linux: linux_value(linux, comparison.linux),
        })
        .collect()
}

fn figure(value: Option<f64>) -> String {
    match value {
        None => "missing".to_string(),
        Some(value) if value >= 100.0 => format!("{value:.0}"),
        Some(value) => format!("{value:.1}"),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("—".to_string(), |value| format!("{value:.3}"))
}

fn verdict(value: Option<bool>) -> &'static str {
    match value {
        None => "—",
        Some(true) => "yes",
        Some(false) => "**no**",
    }
}

/// The table, in Markdown.
fn table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| comparison | Nacre | Linux, same sitting | Linux, reference | ÷ same sitting | ÷ reference | goal | met, same sitting | met, reference |\n\
         |---|---:|---:|---:|---:|---:|---|---|---|\n",
    );
    for row in rows {
        let (same, reference) = (row.same_sitting_ratio(), row.reference_ratio());
        text += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.comparison.what,
            figure(row.nacre),
            figure(row.linux),
            figure(Some(row.comparison.reference)),
            ratio(same),
            ratio(reference),
            row.comparison.goal.map_or("—".to_string(), |goal| goal.to_string()),
            verdict(row.verdict(same)),
            verdict(row.verdict(reference)),
        );
    }
    text
}

/// The newest summary the Linux harness wrote, if any.
fn newest_linux_summary() -> Option<PathBuf> {
    let work = std::env::var("WORK").unwrap_or_else(|_| LINUX_HARNESS_WORK.to_string());
    let entries = fs::read_dir(Path::new(&work).join("results")).ok()?;
    let summaries = entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| {
        path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.ends_with("-summary.txt"))
    });
    summaries.max_by_key(|path| fs::metadata(path).and_then(|meta| meta.modified()).ok())
}

/// Prints the comparison of the figures in `nacre` (the output of `cargo
/// xtask bench`) with the Linux summary `linux` (the newest the harness
/// wrote when `None`).
pub fn compare(nacre: &Path, linux: Option<PathBuf>) -> Result<(), String> {
    let linux = linux.or_else(newest_linux_summary).ok_or_else(|| {
        format!(
            "no Linux summary: run the harness (RUNS=3 ./run.sh in ../shared/anchors/linux-vm-bench) \
             or name one with --linux FILE (it writes {LINUX_HARNESS_WORK}/results/*-summary.txt)"
        )
    })?;
    let read = |path: &Path| fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()));
    let nacre_figures = parse_figures(&read(nacre)?);
    let linux_figures = parse_linux_summary(&read(&linux)?);
    if nacre_figures.is_empty() {
        return Err(format!("{}: no BENCH lines (run cargo xtask bench first)", nacre.display()));
    }
    if linux_figures.is_empty() {
        return Err(format!("{}: no metrics (not a summary of the Linux harness?)", linux.display()));
    }
    println!("Nacre: {}\nLinux: {}\n", nacre.display(), linux.display());
    print!("{}", table(&rows(&nacre_figures, &linux_figures)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "metric   min   median   max  unit\n\
                         shmem_read_fault_nofa_ns 3400.0 3500.0 3800.0 ns/page\n\
                         shootdown_mprotect_1page_2thr_ns 5900.0 6000.0 8000.0 ns/call\n\
                         ctxsw_yield_other_mm_ns 15000.0 16000.0 17000.0 ns/switch\n\
                         ctxsw_yield_same_mm_ns 3500.0 4000.0 4100.0 ns/switch\n";

    fn nacre(text: &str) -> Vec<(String, f64, String)> {
        parse_figures(text)
    }

    fn row<'a>(rows: &'a [Row], what_starts: &str) -> &'a Row {
        rows.iter().find(|row| row.comparison.what.starts_with(what_starts)).expect("the comparison exists")
    }

    #[test]
    fn medians_are_read_by_name() {
        let summary = parse_linux_summary(LINUX);
        assert_eq!(linux_value(&summary, LinuxFigure::Metric("shmem_read_fault_nofa_ns")), Some(3500.0));
        let switch = LinuxFigure::Difference("ctxsw_yield_other_mm_ns", "ctxsw_yield_same_mm_ns");
        assert_eq!(linux_value(&summary, switch), Some(12000.0));
        assert_eq!(linux_value(&summary, LinuxFigure::Metric("absent")), None);
        // The header's words are not numbers: no metric called "metric".
        assert_eq!(linux_value(&summary, LinuxFigure::Metric("metric")), None);
    }

    #[test]
    fn ratios_and_verdicts() {
        let figures = nacre("BENCH lazy_fault_4k 1400 ns/fault\nBENCH shootdown_protect_1page_2cpu 2900 ns/call\n");
        let rows = rows(&figures, &parse_linux_summary(LINUX));
        let fault = row(&rows, "lazy 4 KiB fault vs shmem");
        assert_eq!(fault.same_sitting_ratio(), Some(0.4));
        assert_eq!(fault.verdict(fault.same_sitting_ratio()), Some(true));
        assert_eq!(fault.verdict(fault.reference_ratio()), Some(true)); // 1400 / 3190
                                                                        // Met against the same sitting (2900 / 6000), not against the
                                                                        // reference (2900 / 5241).
        let shootdown = row(&rows, "protect 1 page live");
        assert_eq!(shootdown.verdict(shootdown.same_sitting_ratio()), Some(true));
        assert_eq!(shootdown.verdict(shootdown.reference_ratio()), Some(false));
        // The zero-page comparison: Linux's figure is missing, so there is
        // no same-sitting verdict, only the reference one.
        let zero_page = row(&rows, "lazy 4 KiB fault vs anonymous");
        assert_eq!(zero_page.verdict(zero_page.same_sitting_ratio()), None);
        assert_eq!(zero_page.verdict(zero_page.reference_ratio()), Some(true)); // 1400 < 2107
                                                                                // A Nacre figure that was not measured is never met.
        let boot = row(&rows, "boot");
        assert_eq!(boot.verdict(boot.reference_ratio()), None);
        let text = table(&rows);
        assert!(text.contains("| missing |"));
        assert!(text.contains("**no**"));
    }

    #[test]
    fn strict_goals_exclude_the_bound() {
        let below = Goal::BELOW.expect("a goal");
        assert!(!below.met_by(1.0));
        assert!(below.met_by(0.99));
        let half = Goal::AT_MOST_HALF.expect("a goal");
        assert!(half.met_by(0.5));
        assert!(!half.met_by(0.51));
    }
}
