//! The process, time and scheduling calls not in the main table
//! (`syscall::call`).

use super::errno::SysResult;
use super::process::Process;

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    let _ = (process, a);
    match number {
        _ => None,
    }
}
