//! A short soak and the concurrency stress (issue 9, parts 3 and 6), on
//! every CPU the machine has.

use crate::labs::soak;
use alloc::string::String;
use core::sync::atomic::Ordering;

/// Two seconds of soak cycles: every check holds, every CPU's editor
/// completes cycles, and the frames come back after every round.
fn short_soak_loses_nothing() -> Result<(), String> {
    let report = soak::soak(2);
    let mut out = String::new();
    let verdict = soak::print_report("soak", &report, &mut out);
    log::info!("{}", out.trim_end());
    verdict?;
    let cycles = report.totals.cycles.load(Ordering::SeqCst);
    crate::check!(cycles >= report.threads as u64, "{cycles} cycles for {} threads", report.threads);
    crate::check!(report.totals.faults_handled.load(Ordering::SeqCst) > 0, "no fault was handled");
    Ok(())
}
crate::kernel_test!(short_soak_loses_nothing);

/// Editors on every CPU edit their own windows of one shared space while
/// faulters read pages all over it: no deadlock (the test returns), no
/// refused edit, no lost region, `verify` at the end, no frame leaked.
fn editors_and_faulters_share_one_space() -> Result<(), String> {
    let report = soak::stress(1500);
    let mut out = String::new();
    let verdict = soak::print_report("concurrency stress", &report, &mut out);
    log::info!("{}", out.trim_end());
    verdict?;
    crate::check!(report.totals.faults_handled.load(Ordering::SeqCst) > 0, "no fault was handled");
    Ok(())
}
crate::kernel_test!(editors_and_faulters_share_one_space);
