//! NK's paging lab `pagingTest`, step by step, extended with fault and TLB
//! checks.

use core::fmt::Write;

/// Runs every step, printing one line per step and a closing
/// `N passed, N failed` line; `Err` when any step failed.
pub fn run(out: &mut dyn Write) -> Result<(), alloc::string::String> {
    let _ = writeln!(out, "pagingTest: not written yet");
    Err("pagingTest is not written yet".into())
}
