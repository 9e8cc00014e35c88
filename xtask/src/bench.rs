//! `cargo xtask bench`: boots the release kernel with `script=bench` and
//! collects the `BENCH` lines it prints.
//!
//! The main run uses the machine asked for (2 CPUs by default, as the Linux
//! reference figures); a second, short boot with 4 CPUs adds the shootdown
//! figure on 4 CPUs. The lines go to standard output and to a file
//! (`target/bench/nacre-bench.txt` unless `--out` says otherwise), which
//! `cargo xtask plot` reads.

use crate::boot::{build_kernel, ensure_qemu, qemu_command, run_captured, workspace_root, Options};
use std::fs;
use std::path::PathBuf;

/// Where the figures go by default.
pub fn default_output() -> PathBuf {
    workspace_root().join("target/bench/nacre-bench.txt")
}

/// One benchmark boot: the machine, and the shell command it runs.
struct BenchBoot {
    cpus: u32,
    command: &'static str,
}

/// Runs the benchmarks and writes their `BENCH` lines to `out`.
pub fn bench(options: &Options, out: Option<PathBuf>) -> Result<(), String> {
    let options = Options { release: true, ..options.clone() };
    let elf = build_kernel(&options)?;
    ensure_qemu()?;
    let boots = [
        BenchBoot { cpus: options.smp, command: "bench" },
        BenchBoot { cpus: 4, command: "bench shootdown_protect_1page" },
    ];
    let mut lines = Vec::new();
    for boot in &boots {
        println!("xtask: bench boot with {} CPUs: {:?}", boot.cpus, boot.command);
        let run_options = Options { smp: boot.cpus, ..options.clone() };
        let cmdline = run_options.kernel_cmdline(Some(&format!("script={}", boot.command)));
        let outcome = run_captured(qemu_command(&run_options, &elf, &cmdline), options.timeout)?;
        if !outcome.kernel_succeeded() {
            return Err(format!("the benchmark boot ({} CPUs) failed: QEMU status {:?}", boot.cpus, outcome.status));
        }
        add_new_figures(&mut lines, &outcome.lines);
    }
    let path = out.unwrap_or_else(default_output);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!(
        "xtask: {} BENCH lines written to {}",
        lines.iter().filter(|l| l.starts_with("BENCH ")).count(),
        path.display()
    );
    Ok(())
}

/// Appends to `lines` the lines of a later boot worth keeping: its `BENCH`
/// lines for figures `lines` does not have yet (the 4-CPU boot adds only
/// the figures the main one lacked), and its `# bench` and `# shootdown`
/// comments. Only `BENCH` lines name a figure: a comment such as
/// `# shootdown_protect_1page_4cpu skipped: 2 CPUs` does not make that
/// figure known.
fn add_new_figures(lines: &mut Vec<String>, boot: &[String]) {
    let figure_of = |line: &str| line.strip_prefix("BENCH ")?.split_whitespace().next().map(str::to_string);
    let known: Vec<String> = lines.iter().filter_map(|line| figure_of(line)).collect();
    let new = boot.iter().filter(|line| match figure_of(line) {
        Some(name) => !known.contains(&name),
        None => line.starts_with("# bench") || line.starts_with("# shootdown"),
    });
    lines.extend(new.cloned().collect::<Vec<_>>());
}

/// The `BENCH name value unit` lines of `text`, as (name, value, unit).
pub fn parse_figures(text: &str) -> Vec<(String, f64, String)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "BENCH" {
                return None;
            }
            let name = words.next()?.to_string();
            let value = words.next()?.parse().ok()?;
            let unit = words.next().unwrap_or("").to_string();
            Some((name, value, unit))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_parse() {
        let text = "noise\nBENCH lazy_fault_4k 2114.5 ns/fault\nBENCH x.min 1 ns\n# bench: done\nBENCH bad x ns\n";
        let figures = parse_figures(text);
        assert_eq!(figures.len(), 2);
        assert_eq!(figures[0], ("lazy_fault_4k".to_string(), 2114.5, "ns/fault".to_string()));
    }

    #[test]
    fn a_later_boot_adds_only_new_figures() {
        let owned = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        let mut lines = owned(
            "# bench: 2 CPUs\nBENCH shootdown_protect_1page_2cpu 2500 ns/call\n\
             # shootdown_protect_1page_4cpu skipped: 2 CPUs",
        );
        let boot = owned(
            "noise\n# bench: 4 CPUs\nBENCH shootdown_protect_1page_2cpu 2600 ns/call\n\
             BENCH shootdown_protect_1page_4cpu 5000000 ns/call\nBENCH shootdown_protect_1page_4cpu.min 4900000 ns/call",
        );
        add_new_figures(&mut lines, &boot);
        let figures = parse_figures(&lines.join("\n"));
        let names: Vec<&str> = figures.iter().map(|(name, _, _)| name.as_str()).collect();
        // The 4-CPU figure is kept although a comment named it; the 2-CPU
        // figure is the main boot's, not repeated; the noise is dropped.
        assert_eq!(
            names,
            ["shootdown_protect_1page_2cpu", "shootdown_protect_1page_4cpu", "shootdown_protect_1page_4cpu.min"]
        );
        assert_eq!(figures[0].1, 2500.0);
        assert!(lines.contains(&"# bench: 4 CPUs".to_string()));
        assert!(!lines.contains(&"noise".to_string()));
    }
}
