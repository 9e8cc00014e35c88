//! The CPU masks programs set with `sched_setaffinity`, by thread id: a
//! record below the process table, which both the system calls
//! (`misc`) and thread creation (`process`: a new thread or forked child
//! inherits its creator's mask, as Linux's `dup_task_struct` copies it)
//! use. A thread without an entry may run on every CPU.

use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;

/// The recorded masks, by thread id.
static AFFINITY: IrqMutex<BTreeMap<u32, u64>> = IrqMutex::new(BTreeMap::new());

/// The mask recorded for thread `tid`, if any.
pub fn recorded(tid: u32) -> Option<u64> {
    AFFINITY.lock().get(&tid).copied()
}

/// Records `mask` for thread `tid`, forgetting the masks of threads not in
/// `living` (the threads of every process now).
pub fn record(tid: u32, mask: u64, living: &[u32]) {
    let mut affinity = AFFINITY.lock();
    affinity.retain(|tid, _| living.contains(tid));
    affinity.insert(tid, mask);
}

/// A thread or child process `to` that thread `from` makes starts with
/// `from`'s mask: recorded for `to` when `from` has one. Returns the CPUs
/// `to` may start on (every one, `u64::MAX`, without a mask).
pub fn inherit(from: u32, to: u32) -> u64 {
    let mut affinity = AFFINITY.lock();
    match affinity.get(&from).copied() {
        Some(mask) => {
            affinity.insert(to, mask);
            mask
        }
        None => u64::MAX,
    }
}

/// Forgets the mask of thread `tid`, which ended.
pub fn forget(tid: u32) {
    AFFINITY.lock().remove(&tid);
}
