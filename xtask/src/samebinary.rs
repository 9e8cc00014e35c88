//! `cargo xtask compare --same-binary [--boots N] [--smp N] [--mem SIZE]
//! [--timeout SECS]`: the Linux harness's own program
//! (`../shared/anchors/linux-vm-bench/bench.c`), unmodified, built once
//! with `gcc -static-pie -O2 -pthread` and booted as process 1 of Nacre
//! (the release kernel, `--init`) and of Debian's Linux 6.1 (`/init`), in
//! the same QEMU, boot after boot. The program mounts what it needs, runs
//! its benchmarks, prints `METRIC name value unit` lines and powers the
//! machine off with `reboot`.
//!
//! The same file runs on both kernels (position-independent, as the
//! user tests are built; Nacre loads `gcc -static` programs too). The raw lines of each boot are kept in
//! `target/compare-same/{nacre,linux}.txt`, and the table (every metric
//! both kernels report: the medians over the boots and Nacre's ÷ Linux's)
//! is printed and written to `target/compare-same/table.md`.

use crate::boot::{
    build_kernel, ensure_qemu, ensure_static_gcc, run_captured, workspace_root, InitBoot, Options, QEMU,
};
use crate::compare::{linux_initramfs, linux_kernel, linux_qemu_command, median, nacre_revision, LINUX_HARNESS};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the binary, the lines and the table go.
const DIR: &str = "target/compare-same";

/// One kernel's figures: each metric's unit and its values, boot by boot.
type Figures = BTreeMap<String, (String, Vec<f64>)>;

/// Reads the `METRIC name value unit` lines of `text`.
fn metrics(text: &str) -> Figures {
    let mut figures = Figures::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("METRIC") {
            continue;
        }
        let (Some(name), Some(value), unit) = (words.next(), words.next(), words.collect::<Vec<_>>().join(" ")) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else { continue };
        figures.entry(name.to_string()).or_insert_with(|| (unit, Vec::new())).1.push(value);
    }
    figures
}

/// The table: one row per metric both kernels report, in name order.
fn table(nacre: &Figures, linux: &Figures) -> String {
    let mut out =
        String::from("| metric | unit | Nacre (median) | Linux (median) | Nacre ÷ Linux |\n|---|---|---:|---:|---:|\n");
    for (name, (unit, nacre_values)) in nacre {
        let Some((_, linux_values)) = linux.get(name) else { continue };
        let (n, l) = (median(nacre_values), median(linux_values));
        let ratio = if l > 0.0 { format!("{:.2}", n / l) } else { "–".to_string() };
        out += &format!("| {name} | {unit} | {n:.1} | {l:.1} | {ratio} |\n");
    }
    let only = |a: &Figures, b: &Figures| a.keys().filter(|k| !b.contains_key(*k)).cloned().collect::<Vec<_>>();
    for (kernel, names) in [("Nacre", only(nacre, linux)), ("Linux", only(linux, nacre))] {
        if !names.is_empty() {
            out += &format!("\nOnly {kernel} reports: {}\n", names.join(", "));
        }
    }
    out
}

/// Builds the harness's program into `dir`; its path.
fn build(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    ensure_static_gcc()?;
    let source = root.join(LINUX_HARNESS).join("bench.c");
    let binary = dir.join("bench");
    let status = Command::new("gcc")
        .args(["-static-pie", "-O2", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if !status.success() {
        return Err(format!("building {} failed", source.display()));
    }
    println!("xtask: built {} from {}", binary.display(), source.display());
    Ok(binary)
}

/// The lines a boot printed, with a `# boot N` line first; an error when
/// the program did not get to `BENCH DONE`.
fn boot_lines(kernel: &str, boot: u32, lines: &[String], finished: bool) -> Result<String, String> {
    if !finished || !lines.iter().any(|line| line.starts_with("BENCH DONE")) {
        return Err(format!("{kernel} boot {boot}: the program did not reach BENCH DONE"));
    }
    let mut text = format!("# boot {boot}\n");
    for line in lines.iter().filter(|line| line.starts_with("METRIC") || line.starts_with("INFO")) {
        text += line;
        text.push('\n');
    }
    Ok(text)
}

/// `cargo xtask compare --same-binary ...` (the arguments after it).
pub fn compare_same_binary(args: &[String]) -> Result<(), String> {
    let mut boots = 1u32;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--boots" {
            boots =
                args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0).ok_or("--boots needs a number above 0")?;
        } else {
            rest.push(arg.clone());
        }
    }
    let machine = Options::parse(&rest)?;
    let root = workspace_root();
    let dir = root.join(DIR);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let binary = build(&root, &dir)?;
    let program = fs::read(&binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;

    let init = vec![binary.display().to_string()];
    let nacre = Options { release: true, init: Some(init.clone()), ..machine.clone() };
    let nacre_boot = InitBoot::new(&nacre, &init)?;
    let elf = build_kernel(&nacre)?;
    ensure_qemu()?;
    let (vmlinuz, package) = linux_kernel(&root)?;
    let initramfs = dir.join("linux-initramfs.cpio");
    fs::write(&initramfs, linux_initramfs(&program)).map_err(|e| format!("writing {}: {e}", initramfs.display()))?;
    let linux_command = || linux_qemu_command(&machine, "max", &vmlinuz, &initramfs);

    let qemu = Command::new(QEMU)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    let header =
        format!("# program: {} ({} bytes, the same file on both)\n# qemu: {qemu}\n", binary.display(), program.len());
    let mut nacre_text = format!("{header}# nacre: {}\n", nacre_revision(&root));
    let mut linux_text = format!("{header}# kernel: {package}\n");
    for boot in 1..=boots {
        println!("xtask: boot {boot}/{boots}: Nacre");
        let outcome = run_captured(nacre_boot.command(&nacre, &elf), nacre.timeout)?;
        nacre_text += &boot_lines("Nacre", boot, &outcome.lines, outcome.kernel_succeeded())?;
        println!("xtask: boot {boot}/{boots}: Linux");
        let outcome = run_captured(linux_command(), nacre.timeout)?;
        linux_text += &boot_lines("Linux", boot, &outcome.lines, !outcome.timed_out)?;
    }
    let (nacre_path, linux_path) = (dir.join("nacre.txt"), dir.join("linux.txt"));
    for (path, text) in [(&nacre_path, &nacre_text), (&linux_path, &linux_text)] {
        fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let table = table(&metrics(&nacre_text), &metrics(&linux_text));
    println!("\nNacre: {}\nLinux: {}\n\n{table}", nacre_path.display(), linux_path.display());
    let table_path = dir.join("table.md");
    fs::write(&table_path, &table).map_err(|e| format!("writing {}: {e}", table_path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_read_and_others_skipped() {
        let figures =
            metrics("BENCH START\nMETRIC a_ns 10.5 ns/call\nSAMPLES a 1 2\nMETRIC a_ns 12.5 ns/call\nMETRIC bad x y\n");
        assert_eq!(figures.len(), 1);
        assert_eq!(figures["a_ns"], ("ns/call".to_string(), vec![10.5, 12.5]));
    }

    #[test]
    fn the_table_sets_medians_side_by_side_and_names_the_unmatched() {
        let nacre = metrics("METRIC x 4 ns\nMETRIC x 6 ns\nMETRIC only_nacre 1 ns\n");
        let linux = metrics("METRIC x 10 ns\nMETRIC only_linux 1 ns\n");
        let text = table(&nacre, &linux);
        assert!(text.contains("| x | ns | 5.0 | 10.0 | 0.50 |"), "{text}");
        assert!(text.contains("Only Nacre reports: only_nacre"));
        assert!(text.contains("Only Linux reports: only_linux"));
    }
}
