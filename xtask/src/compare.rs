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
//!
//! `cargo xtask ubench` ([`ubench`]): the user-space benchmark
//! `tests/bench/vmbench.c`, built once (`gcc -static-pie`) and run, the same
//! binary, on Nacre (`run /bin/vmbench`) and as `/init` of Debian's Linux
//! 6.1 in the same QEMU, boot after boot; [`user_table`] sets its `UBENCH`
//! lines from the two kernels side by side.

use crate::bench::parse_figures;
use crate::boot::{
    build_kernel, ensure_qemu, ensure_static_gcc, run_captured, workspace_root, CapturedRun, Options, ScriptedBoot,
    QEMU,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the Linux harness keeps its kernel and results unless `WORK` says
/// otherwise.
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

/// One figure of the user-space benchmark (`tests/bench/vmbench.c`).
struct UserFigure {
    /// Its `UBENCH` name.
    name: &'static str,
    goal: Goal,
    /// Why the two kernels do different work for it, from their code; `None`
    /// when they do the same.
    differs: Option<&'static str>,
}

/// At most Linux's time: the null system calls.
const AT_MOST_LINUX: Goal = Goal { ratio: 1.0, strict: false };
const HALF: Goal = Goal { ratio: 0.5, strict: false };

/// The user-space figures, in the program's order, with the goals of issue 20.
const USER_FIGURES: &[UserFigure] = &[
    UserFigure { name: "syscall_getppid", goal: AT_MOST_LINUX, differs: None },
    UserFigure { name: "syscall_getpid", goal: AT_MOST_LINUX, differs: None },
    UserFigure { name: "anon_read_fault", goal: HALF, differs: None },
    UserFigure { name: "anon_write_fault", goal: HALF, differs: None },
    UserFigure {
        name: "file_read_fault",
        goal: HALF,
        differs: Some(
            "both map the page-cache pages, ~16 a fault (fault-around); Nacre's page cache of an initrd file is \
             a copy of its pages, made on the first pass",
        ),
    },
    UserFigure {
        name: "file_read_fault_madv_random",
        goal: HALF,
        differs: Some("as file_read_fault: MADV_RANDOM changes neither (Linux 6.1 still faults around)"),
    },
    UserFigure {
        name: "file_read_fault_nofa",
        goal: HALF,
        differs: Some(
            "Linux one page a fault (fault_around_bytes=4096); Nacre has no such knob and still maps 16 pages \
             a fault",
        ),
    },
    UserFigure { name: "populate_anon", goal: HALF, differs: None },
    UserFigure {
        name: "populate_file",
        goal: HALF,
        differs: Some("as file_read_fault: both map the page-cache pages; Nacre's are a copy of the initrd's"),
    },
    UserFigure { name: "mprotect_1page", goal: HALF, differs: None },
    UserFigure { name: "mprotect_64m", goal: HALF, differs: None },
    UserFigure { name: "munmap_1page", goal: HALF, differs: None },
    UserFigure { name: "munmap_64m", goal: HALF, differs: None },
    UserFigure { name: "mremap_1page", goal: HALF, differs: None },
    UserFigure { name: "mremap_64m", goal: HALF, differs: None },
    UserFigure { name: "mremap_64m_aligned", goal: HALF, differs: None },
    UserFigure { name: "sigsegv_roundtrip", goal: HALF, differs: None },
    UserFigure { name: "mprotect_1page_sibling", goal: HALF, differs: None },
    UserFigure { name: "fork_64m", goal: HALF, differs: None },
    UserFigure { name: "cow_fault", goal: HALF, differs: None },
    UserFigure { name: "thread_create_join", goal: AT_MOST_LINUX, differs: None },
];

/// What one kernel's output of `vmbench` says: per figure, its value in
/// each boot and its unit, and the faults of one pass (with the pages it
/// touched); the `UINFO` lines of its first boot.
#[derive(Default)]
struct UserRun {
    figures: Vec<(String, Vec<f64>, String)>,
    faults: Vec<(String, Vec<(f64, f64)>)>,
    info: Vec<String>,
    /// Each boot's TSC rate by the kernel's own clock (`UINFO tsc_mhz`).
    clocks: Vec<f64>,
    boots: usize,
}

impl UserRun {
    fn parse(text: &str) -> UserRun {
        let mut run = UserRun::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["#", "boot", ..] => run.boots += 1,
                ["UINFO", "tsc_mhz", mhz, ..] => {
                    if let Ok(mhz) = mhz.parse() {
                        run.clocks.push(mhz);
                    }
                    if run.boots <= 1 {
                        run.info.push(format!("tsc_mhz {mhz}"));
                    }
                }
                ["UINFO", rest @ ..] if run.boots <= 1 => run.info.push(rest.join(" ")),
                ["UBENCH", name, value, unit, ..] => {
                    let Ok(value) = value.parse() else { continue };
                    match run.figures.iter_mut().find(|(known, _, _)| known == name) {
                        Some((_, values, _)) => values.push(value),
                        None => run.figures.push((name.to_string(), vec![value], unit.to_string())),
                    }
                }
                ["UFAULTS", name, faults, pages, ..] => {
                    let (Ok(faults), Ok(pages)) = (faults.parse(), pages.parse()) else { continue };
                    match run.faults.iter_mut().find(|(known, _)| known == name) {
                        Some((_, counts)) => counts.push((faults, pages)),
                        None => run.faults.push((name.to_string(), vec![(faults, pages)])),
                    }
                }
                _ => {}
            }
        }
        run
    }

    /// The median over the boots of a figure, and its unit.
    fn figure(&self, name: &str) -> Option<(f64, &str)> {
        let (_, values, unit) = self.figures.iter().find(|(known, _, _)| known == name)?;
        Some((median(values), unit))
    }

    /// The figure of each boot, in boot order.
    fn per_boot(&self, name: &str) -> &[f64] {
        self.figures.iter().find(|(known, _, _)| known == name).map_or(&[], |(_, values, _)| values.as_slice())
    }

    /// Pages per fault of one pass (the first boot's count).
    fn pages_per_fault(&self, name: &str) -> Option<f64> {
        let (_, counts) = self.faults.iter().find(|(known, _)| known == name)?;
        let &(faults, pages) = counts.first()?;
        (faults > 0.0).then(|| pages / faults)
    }

    /// The value of the `UINFO` line starting with `key`.
    fn info(&self, key: &str) -> Option<&str> {
        self.info.iter().find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
    }

    /// The lowest and highest of the boots' TSC rates by the kernel's clock.
    fn clock_range(&self) -> Option<(f64, f64)> {
        let low = self.clocks.iter().copied().reduce(f64::min)?;
        Some((low, self.clocks.iter().copied().fold(low, f64::max)))
    }
}

/// How far the two kernels' clocks can disagree, in percent: each boot
/// measures the TSC against its kernel's clock, and the TSC runs at one
/// rate (the host's), so the widest gap between two of those rates bounds
/// the error the clocks add to a ratio. A sentence for the table.
fn clock_agreement(nacre: &UserRun, linux: &UserRun) -> String {
    let (Some((n_low, n_high)), Some((l_low, l_high))) = (nacre.clock_range(), linux.clock_range()) else {
        return "Clocks: a kernel printed no TSC rate, so the clocks' agreement is unknown.".to_string();
    };
    let high = n_high.max(l_high);
    let low = n_low.min(l_low);
    let gap = (high / low - 1.0) * 100.0;
    let verdict = if gap <= 1.0 { "within 1%" } else { "**by more than 1%**: a ratio carries that error" };
    format!(
        "Clocks: the TSC by each kernel's clock, over the boots, Nacre {n_low:.1}–{n_high:.1} MHz, \
         Linux {l_low:.1}–{l_high:.1} MHz; they agree {verdict} (at most {gap:.1}% apart)."
    )
}

/// The best (lowest) boot of Nacre over the best boot of Linux: on a host
/// where some boots run slower throughout (on either kernel), the ratio of
/// the two kernels undisturbed. `None` without a boot of each.
fn best_boots_ratio(nacre: &[f64], linux: &[f64]) -> Option<f64> {
    let best = |values: &[f64]| values.iter().copied().reduce(f64::min);
    let (n, l) = (best(nacre)?, best(linux)?);
    (l > 0.0).then(|| n / l)
}

/// Boot `i` of Nacre beside boot `i` of Linux (the boots alternate, so the
/// two of a pair ran minutes apart at most): how many pairs meet `goal`, and
/// the range of their ratios; "—" with fewer than two pairs.
fn boot_pairs(nacre: &[f64], linux: &[f64], goal: Goal) -> String {
    let ratios: Vec<f64> = nacre.iter().zip(linux).filter(|(_, &l)| l > 0.0).map(|(&n, &l)| n / l).collect();
    if ratios.len() < 2 || nacre.len() != linux.len() {
        return "—".to_string();
    }
    let met = ratios.iter().filter(|&&ratio| goal.met_by(ratio)).count();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    format!("{met} of {} ({min:.2}–{max:.2})", ratios.len())
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A figure with thousands separators, one decimal below 100.
fn grouped(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The table of `cargo xtask ubench`, in Markdown, from the outputs of
/// `vmbench` on Nacre and on Linux (each possibly several boots: the
/// median of the boots' medians is shown).
pub fn user_table(nacre: &str, linux: &str) -> Result<String, String> {
    let (nacre, linux) = (UserRun::parse(nacre), UserRun::parse(linux));
    if nacre.figures.is_empty() || linux.figures.is_empty() {
        return Err("no UBENCH lines from one of the kernels".to_string());
    }
    let mut text = String::new();
    for (kernel, run) in [("Nacre", &nacre), ("Linux", &linux)] {
        text += &format!(
            "{kernel}: {}; {} boot(s); the TSC by its clock {} MHz (the first boot); fault_around_bytes {}\n",
            run.info("kernel").unwrap_or("?"),
            run.boots,
            run.info("tsc_mhz").unwrap_or("?"),
            run.info("fault_around_bytes").unwrap_or("?"),
        );
    }
    text += "\n| figure | unit | Nacre | Linux | Nacre ÷ Linux | best boots ÷ | goal | met? | pages a fault, Nacre / Linux | \
             boot pairs meeting it (their ratios) | same work? |\n\
             |---|---|---:|---:|---:|---:|---|---|---|---|---|\n";
    let mut notes = Vec::new();
    let (mut met, mut split, mut judged) = (0, 0, 0);
    for figure in USER_FIGURES {
        let (n, l) = (nacre.figure(figure.name), linux.figure(figure.name));
        let unit = n.or(l).map_or("", |(_, unit)| unit);
        let ratio = match (n, l) {
            (Some((n, _)), Some((l, _))) if l > 0.0 => Some(n / l),
            _ => None,
        };
        let best = best_boots_ratio(nacre.per_boot(figure.name), linux.per_boot(figure.name));
        let met_goal = ratio.map(|ratio| figure.goal.met_by(ratio));
        let best_met = best.map(|best| figure.goal.met_by(best));
        judged += usize::from(met_goal.is_some());
        let agreed = best_met.is_none_or(|best_met| Some(best_met) == met_goal);
        met += usize::from(met_goal == Some(true) && agreed);
        split += usize::from(met_goal.is_some() && !agreed);
        let per_fault =
            |run: &UserRun| run.pages_per_fault(figure.name).map_or("—".to_string(), |p| format!("{p:.1}"));
        let faults = if nacre.pages_per_fault(figure.name).is_some() || linux.pages_per_fault(figure.name).is_some() {
            format!("{} / {}", per_fault(&nacre), per_fault(&linux))
        } else {
            "—".to_string()
        };
        let pairs = boot_pairs(nacre.per_boot(figure.name), linux.per_boot(figure.name), figure.goal);
        let same = match figure.differs {
            None => "yes".to_string(),
            Some(note) => {
                notes.push((figure.name, note));
                format!("no ({})", notes.len())
            }
        };
        let judgement = if agreed { verdict(met_goal) } else { "**split**" };
        text += &format!(
            "| `{}` | {unit} | {} | {} | {} | {} | {} | {judgement} | {faults} | {pairs} | {same} |\n",
            figure.name,
            n.map_or("missing".to_string(), |(v, _)| grouped(v)),
            l.map_or("missing".to_string(), |(v, _)| grouped(v)),
            ratio.map_or("—".to_string(), |r| format!("{r:.2}")),
            best.map_or("—".to_string(), |r| format!("{r:.2}")),
            figure.goal,
        );
    }
    text += &format!(
        "\nGoals met: {met} of {judged} figures measured on both, by the median of the boots and by the best \
         boots alike; {split} split (one of the two meets it).\n\n"
    );
    text += &clock_agreement(&nacre, &linux);
    text += "\n\nNot the same work:\n";
    for (index, (name, note)) in notes.iter().enumerate() {
        text += &format!("({}) `{name}`: {note}.\n", index + 1);
    }
    Ok(text)
}

/// The user-space benchmark's source, relative to the workspace root.
const UBENCH_SOURCE: &str = "tests/bench/vmbench.c";
/// Where its binary, the Linux initramfs and the outputs go, relative to
/// the workspace root.
const UBENCH_DIR: &str = "target/ubench";
/// The Linux harness (read only here), relative to the workspace root: its
/// `fetch-kernel.sh` fetches Debian's kernel.
pub(crate) const LINUX_HARNESS: &str = "../shared/anchors/linux-vm-bench";
/// The Linux command line of the harness.
const LINUX_APPEND: &str = "console=ttyS0 quiet panic=-1";
/// The lines of the benchmark's output that are kept.
const UBENCH_PREFIXES: [&str; 6] = ["UINFO ", "USAMPLES ", "UBENCH ", "UFAULTS ", "UERROR ", "UDONE"];

/// The options of `cargo xtask ubench`.
struct UbenchOptions {
    /// Boots of each kernel, in turn (Nacre, Linux, Nacre, ...); 5 unless
    /// asked otherwise: boots differ by up to 2× on both kernels.
    boots: u32,
    /// Linux's `-cpu` (the harness's `max`: LA57 offered, 5-level paging).
    linux_cpu: String,
    /// Only the table, from the outputs of the last run.
    table_only: bool,
    /// The machine (`--smp`, `--mem`, `--timeout`), shared by both kernels.
    machine: Options,
}

impl UbenchOptions {
    fn parse(args: &[String]) -> Result<UbenchOptions, String> {
        let (mut boots, mut linux_cpu, mut table_only, mut rest) = (5, "max".to_string(), false, Vec::new());
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--boots" => boots = value("--boots")?.parse().map_err(|e| format!("--boots: {e}"))?,
                "--linux-cpu" => linux_cpu = value("--linux-cpu")?,
                "--table" => table_only = true,
                _ => rest.push(arg.clone()),
            }
        }
        if boots == 0 {
            return Err("--boots: at least 1".to_string());
        }
        let machine = Options::parse(&rest)?;
        if machine.script.is_some() || !machine.add.is_empty() || !machine.cmdline.is_empty() {
            return Err("ubench takes [--boots N] [--linux-cpu CPU] [--table] [--smp N] [--mem SIZE] [--timeout SECS]"
                .to_string());
        }
        Ok(UbenchOptions { boots, linux_cpu, table_only, machine })
    }
}

/// `cargo xtask ubench [--boots N] [--linux-cpu CPU] [--table] [--smp N]
/// [--mem SIZE] [--timeout SECS]`: builds `vmbench`, boots the release
/// kernel with it and Linux 6.1 with it as `/init`, `--boots` (5) times each in
/// turn on the same machine (CPUs, memory, TCG), keeps their `U*` lines in
/// `target/ubench/{nacre,linux}.txt` and prints the table (also written to
/// `target/ubench/table.md`). `--table` only prints the table of the last run.
pub fn ubench(args: &[String]) -> Result<(), String> {
    let options = UbenchOptions::parse(args)?;
    let root = workspace_root();
    let dir = root.join(UBENCH_DIR);
    let (nacre_path, linux_path) = (dir.join("nacre.txt"), dir.join("linux.txt"));
    if !options.table_only {
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let binary = build_vmbench(&root, &dir)?;
        let nacre = Options { release: true, add: vec![binary.clone()], ..options.machine.clone() };
        let elf = build_kernel(&nacre)?;
        ensure_qemu()?;
        let (vmlinuz, package) = linux_kernel(&root)?;
        let initramfs = dir.join("linux-initramfs.cpio");
        let program = fs::read(&binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
        fs::write(&initramfs, linux_initramfs(&program))
            .map_err(|e| format!("writing {}: {e}", initramfs.display()))?;
        let nacre_boot = ScriptedBoot::new(&nacre, "run /bin/vmbench")?;
        let linux_command = || linux_qemu_command(&options.machine, &options.linux_cpu, &vmlinuz, &initramfs);
        let qemu_version = Command::new(QEMU)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string());
        let program_line =
            format!("# program: {} ({} bytes, built once, the same on both)", binary.display(), program.len());
        let qemu_line = format!("# qemu: {}", qemu_version.unwrap_or_default());
        let mut nacre_text = format!(
            "{program_line}\n{qemu_line}\n# nacre: {}\n# cmd: {:?}\n",
            nacre_revision(&root),
            nacre_boot.command(&nacre, &elf)
        );
        let mut linux_text =
            format!("{program_line}\n{qemu_line}\n# kernel: {package}\n# cmd: {:?}\n", linux_command());
        for boot in 1..=options.boots {
            println!("xtask: ubench boot {boot}/{}: Nacre", options.boots);
            let outcome = run_captured(nacre_boot.command(&nacre, &elf), nacre.timeout)?;
            nacre_text += &kept_lines(boot, &outcome, outcome.kernel_succeeded(), "Nacre")?;
            println!("xtask: ubench boot {boot}/{}: Linux", options.boots);
            let outcome = run_captured(linux_command(), nacre.timeout)?;
            linux_text += &kept_lines(boot, &outcome, !outcome.timed_out, "Linux")?;
        }
        for (path, text) in [(&nacre_path, &nacre_text), (&linux_path, &linux_text)] {
            fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
    }
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("reading {}: {e} (run cargo xtask ubench first)", path.display()))
    };
    let (nacre_text, linux_text) = (read(&nacre_path)?, read(&linux_path)?);
    let table = user_table(&nacre_text, &linux_text)?;
    println!("\nNacre: {}\nLinux: {}\n\n{table}", nacre_path.display(), linux_path.display());
    let table_path = dir.join("table.md");
    fs::write(&table_path, &table).map_err(|e| format!("writing {}: {e}", table_path.display()))?;
    Ok(())
}

/// Builds `vmbench` with `gcc -static-pie` into `dir`; its path.
fn build_vmbench(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    ensure_static_gcc()?;
    let binary = dir.join("vmbench");
    let status = Command::new("gcc")
        .args(["-static-pie", "-O2", "-Wall", "-pthread", "-o"])
        .arg(&binary)
        .arg(root.join(UBENCH_SOURCE))
        .status()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if !status.success() {
        return Err(format!("building {UBENCH_SOURCE} failed"));
    }
    println!("xtask: built {}", binary.display());
    Ok(binary)
}

/// Debian's Linux 6.1 kernel in the harness's cache (`WORK`, else
/// `/tmp/linux-anchor`), fetched with the harness's `fetch-kernel.sh` when
/// missing; its path and the package it came from.
pub(crate) fn linux_kernel(root: &Path) -> Result<(PathBuf, String), String> {
    let work = PathBuf::from(std::env::var("WORK").unwrap_or_else(|_| LINUX_HARNESS_WORK.to_string()));
    let vmlinuz = work.join("vmlinuz");
    if !vmlinuz.is_file() {
        let script = root.join(LINUX_HARNESS).join("fetch-kernel.sh");
        println!("xtask: no {}; fetching it with {}", vmlinuz.display(), script.display());
        let status = Command::new("bash")
            .arg(&script)
            .env("CACHE", &work)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() || !vmlinuz.is_file() {
            return Err(format!("{} did not fetch the kernel", script.display()));
        }
    }
    let package = fs::read_to_string(work.join("kernel-package.txt"))
        .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| vmlinuz.display().to_string());
    Ok((vmlinuz, package))
}

/// The QEMU command line of the Linux harness (`run.sh`), on the machine of
/// `machine` (CPUs, memory) and with `-cpu cpu`.
pub(crate) fn linux_qemu_command(machine: &Options, cpu: &str, vmlinuz: &Path, initramfs: &Path) -> Command {
    let mut command = Command::new(QEMU);
    command
        .args(["-accel", "tcg,thread=multi", "-machine", "pc", "-cpu", cpu])
        .args(["-smp", &machine.smp.to_string(), "-m", &machine.mem])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", LINUX_APPEND, "-nographic", "-no-reboot"]);
    command
}

/// Which Nacre was measured: the commit, and whether the kernel's or the
/// crates' files differ from it.
pub(crate) fn nacre_revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--", "kernel", "crates"]).is_some_and(|s| !s.is_empty());
    format!("{commit}{}", if dirty { " with uncommitted changes in kernel/ or crates/" } else { "" })
}

/// The benchmark's lines of one boot, under a `# boot N` line; an error
/// when the boot failed or the program did not finish.
fn kept_lines(boot: u32, outcome: &CapturedRun, succeeded: bool, kernel: &str) -> Result<String, String> {
    let kept: Vec<&String> =
        outcome.lines.iter().filter(|line| UBENCH_PREFIXES.iter().any(|prefix| line.starts_with(prefix))).collect();
    if !succeeded || !kept.iter().any(|line| line.starts_with("UDONE")) {
        return Err(format!(
            "{kernel} boot {boot}: vmbench did not finish (QEMU status {:?}{})",
            outcome.status,
            if outcome.timed_out { ", timed out" } else { "" }
        ));
    }
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let mut text = format!("# boot {boot} (host load average after it: {load})\n");
    for line in kept {
        text += line;
        text.push('\n');
    }
    Ok(text)
}

/// A newc archive for Linux: `/init` (the program), `/dev/console`, and
/// empty `/proc` and `/sys` to mount on. Written here, so that no `cpio`
/// and no root (for the device node) is needed.
pub(crate) fn linux_initramfs(program: &[u8]) -> Vec<u8> {
    const DIRECTORY: u32 = 0o040_755;
    const CHARACTER_DEVICE: u32 = 0o020_600;
    const EXECUTABLE: u32 = 0o100_755;
    type Entry<'a> = (&'a str, u32, (u32, u32), &'a [u8]);
    let entries: [Entry; 5] = [
        ("dev", DIRECTORY, (0, 0), &[]),
        ("dev/console", CHARACTER_DEVICE, (5, 1), &[]),
        ("proc", DIRECTORY, (0, 0), &[]),
        ("sys", DIRECTORY, (0, 0), &[]),
        ("init", EXECUTABLE, (0, 0), program),
    ];
    let mut out = Vec::new();
    for (index, (name, mode, device, data)) in entries.iter().enumerate() {
        push_newc(&mut out, index as u32 + 1, *mode, *device, name, data);
    }
    push_newc(&mut out, 0, 0, (0, 0), "TRAILER!!!", &[]);
    out
}

/// One newc entry: the header (`070701` and thirteen 8-digit hex fields),
/// the name with its NUL, the data, each padded to 4 bytes.
fn push_newc(out: &mut Vec<u8>, inode: u32, mode: u32, device: (u32, u32), name: &str, data: &[u8]) {
    let links = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
    let fields = [inode, mode, 0, 0, links, 0, data.len() as u32, 0, 0, device.0, device.1, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
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

    const NACRE_USER: &str = "# boot 1\nUINFO kernel Nacre 6.1.0-nacre\nUINFO tsc_mhz 2300.0\n\
                              UBENCH syscall_getppid 1400.0 ns/call\nUBENCH anon_write_fault 4000.0 ns/page\n\
                              UFAULTS file_read_fault 4306 4300\nUBENCH file_read_fault 8000.0 ns/page\nUDONE\n\
                              # boot 2\nUINFO kernel other\nUINFO tsc_mhz 2310.0\nUBENCH syscall_getppid 1000.0 ns/call\n\
                              UBENCH anon_write_fault 3000.0 ns/page\nUDONE\n";
    const LINUX_USER: &str = "# boot 1\nUINFO kernel Linux 6.1.0-56-cloud-amd64\nUINFO tsc_mhz 2299.0\n\
                              UBENCH syscall_getppid 400.0 ns/call\nUBENCH anon_write_fault 8000.0 ns/page\n\
                              UFAULTS file_read_fault 269 4300\nUBENCH file_read_fault 700.0 ns/page\nUDONE\n";

    #[test]
    fn user_runs_parse_over_boots() {
        let nacre = UserRun::parse(NACRE_USER);
        assert_eq!(nacre.boots, 2);
        assert_eq!(nacre.figure("syscall_getppid"), Some((1200.0, "ns/call")));
        assert_eq!(nacre.info("kernel"), Some("Nacre 6.1.0-nacre"));
        let per_fault = nacre.pages_per_fault("file_read_fault").expect("counted");
        assert!((per_fault - 4300.0 / 4306.0).abs() < 1e-9);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(123.4), "123");
        assert_eq!(grouped(12.34), "12.3");
    }

    #[test]
    fn the_user_table_judges_each_figure() {
        let table = user_table(NACRE_USER, LINUX_USER).expect("a table");
        // 1200 / 400: the null system call misses its goal (at most Linux's).
        // The best boots: 1000 / 400.
        assert!(
            table.contains("| `syscall_getppid` | ns/call | 1,200 | 400 | 3.00 | 2.50 | ≤ 1 | **no** |"),
            "{table}"
        );
        // 3500 / 8000 meets at most half; so do the best boots, 3000 / 8000.
        assert!(
            table.contains("| `anon_write_fault` | ns/page | 3,500 | 8,000 | 0.44 | 0.38 | ≤ 0.5 | yes |"),
            "{table}"
        );
        assert!(table.contains("| 1.0 / 16.0 | — | no ("), "{table}");
        assert!(table.contains("| 0.44 | 0.38 | ≤ 0.5 | yes | — | — | yes |"), "{table}");
        // Boot pairs: 0.4 and 0.6 against at most half.
        assert_eq!(boot_pairs(&[4.0, 6.0], &[10.0, 10.0], HALF), "1 of 2 (0.40–0.60)");
        assert_eq!(boot_pairs(&[4.0, 6.0], &[10.0], HALF), "—");
        assert!(table.contains("| `mremap_64m` |  | missing | missing | — | — |"), "{table}");
        assert!(
            table.contains(
                "Goals met: 1 of 3 figures measured on both, by the median of the boots and by the best boots \
                 alike; 0 split"
            ),
            "{table}"
        );
        // A second, faster Linux boot: the median (3500 / 6500) misses, the
        // best boots (3000 / 5000) too; both agree.
        let faster = LINUX_USER.replace("UDONE\n", "UDONE\n# boot 2\nUBENCH anon_write_fault 5000.0 ns/page\nUDONE\n");
        let table = user_table(NACRE_USER, &faster).expect("a table");
        assert!(
            table.contains("| `anon_write_fault` | ns/page | 3,500 | 6,500 | 0.54 | 0.60 | ≤ 0.5 | **no** |"),
            "{table}"
        );
        // Linux boots of 8000, 6000 and 6500: the median (3500 / 6500)
        // misses, the best boots (3000 / 6000) meet: split, not counted as met.
        let split = LINUX_USER.replace(
            "UDONE\n",
            "UDONE\n# boot 2\nUBENCH anon_write_fault 6000.0 ns/page\nUDONE\n\
             # boot 3\nUBENCH anon_write_fault 6500.0 ns/page\nUDONE\n",
        );
        let table = user_table(NACRE_USER, &split).expect("a table");
        assert!(table.contains("| 3,500 | 6,500 | 0.54 | 0.50 | ≤ 0.5 | **split** |"), "{table}");
        assert!(table.contains("Goals met: 0 of 3 figures measured on both, by the median of the boots and by the best boots alike; 1 split"), "{table}");
        assert_eq!(best_boots_ratio(&[4.0, 3.0], &[8.0, 10.0]), Some(0.375));
        assert_eq!(best_boots_ratio(&[4.0], &[]), None);
        assert!(user_table("", LINUX_USER).is_err());
        // 2310 against 2299: 0.5% apart.
        assert!(
            table.contains(
                "Nacre 2300.0–2310.0 MHz, Linux 2299.0–2299.0 MHz; they agree within 1% (at most 0.5% apart)"
            ),
            "{table}"
        );
        let fast = NACRE_USER.replace("2310.0", "2400.0");
        let table = user_table(&fast, LINUX_USER).expect("a table");
        assert!(
            table.contains("they agree **by more than 1%**: a ratio carries that error (at most 4.4% apart)"),
            "{table}"
        );
        assert!(clock_agreement(&UserRun::parse(""), &UserRun::parse(LINUX_USER)).contains("unknown"));
    }

    #[test]
    fn the_linux_initramfs_is_newc() {
        let archive = linux_initramfs(b"\x7fELF");
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        // dev/console is character device 5:1; init holds the program.
        let console = archive.windows(11).position(|w| w == b"dev/console").expect("dev/console");
        let header = &archive[console - 110..console];
        assert_eq!(&header[14..22], b"00002180");
        assert_eq!(&header[78..86], b"00000005");
        assert_eq!(&header[86..94], b"00000001");
        let init = archive.windows(5).position(|w| w == b"init\0").expect("init");
        // The name and its NUL, padded with the 110-byte header to 4 bytes.
        let data = (init + 5).next_multiple_of(4);
        assert_eq!(data % 4, 0);
        assert_eq!(&archive[data..data + 4], b"\x7fELF");
        assert!(archive.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn ubench_options() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let options =
            UbenchOptions::parse(&args(&["--boots", "3", "--smp", "2", "--linux-cpu", "max,la57=off"])).expect("valid");
        assert_eq!((options.boots, options.linux_cpu.as_str(), options.machine.smp), (3, "max,la57=off", 2));
        assert!(UbenchOptions::parse(&args(&["--boots", "0"])).is_err());
        assert!(UbenchOptions::parse(&args(&["--", "run /bin/x"])).is_err());
    }
}
