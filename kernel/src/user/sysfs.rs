//! `/sys`: a small read-only tree of the files a program asks about the
//! machine, in Linux's formats:
//!
//! - `/sys/devices/system/cpu/online`, `possible` and `present`: the CPUs
//!   brought up, as Linux's CPU lists (`0-3`; runs joined by commas), all
//!   three the same here (no CPU is hot-plugged); a directory `cpuN` per
//!   CPU (empty).
//! - `/sys/kernel/mm/transparent_hugepage/enabled`: `always madvise
//!   [never]`, the bracket on the policy chosen (`never` at boot). Root may
//!   write `always`, `madvise` or `never` (anything else is `EINVAL`), as
//!   on Linux; the choice is kept and shown, and changes nothing: user
//!   memory is mapped with 4 KiB pages only, as a Linux whose huge-page
//!   allocations all fall back would.
//! - `/sys/kernel/debug`: an empty directory, where `debugfs` is mounted.
//!
//! Directories are `drwxr-xr-x` as Linux's sysfs shows them, files
//! `-r--r--r--` (`-rw-r--r--` for the policy file, the only one that takes
//! writes; an open of another for writing is `EROFS`).

use super::errno::Errno;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The files, by their path (without the leading slash).
const FILES: [&str; 4] = [
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/possible",
    "sys/devices/system/cpu/present",
    "sys/kernel/mm/transparent_hugepage/enabled",
];

/// The directories besides the `cpuN` ones.
const DIRECTORIES: [&str; 8] = [
    "sys",
    "sys/devices",
    "sys/devices/system",
    "sys/devices/system/cpu",
    "sys/kernel",
    "sys/kernel/debug",
    "sys/kernel/mm",
    "sys/kernel/mm/transparent_hugepage",
];

/// The huge-page policy file, the one file that takes writes.
const THP_ENABLED: &str = "sys/kernel/mm/transparent_hugepage/enabled";

/// The huge-page policies, in the order the file lists them.
const THP_POLICIES: [&str; 3] = ["always", "madvise", "never"];

/// The policy chosen: an index into [`THP_POLICIES`].
static THP_POLICY: AtomicUsize = AtomicUsize::new(2);

/// True for the file with inode `ino` when it takes writes.
pub fn is_writable_ino(ino: u64) -> bool {
    ino == self::ino(THP_ENABLED)
}

/// True when file `key` takes writes.
pub fn is_writable(key: &str) -> bool {
    key == THP_ENABLED
}

/// A write of `bytes` to the file with inode `ino`: the policy's name,
/// with or without a newline (`EINVAL` for anything else).
pub fn write(ino: u64, bytes: &[u8]) -> Result<(), Errno> {
    if !is_writable_ino(ino) {
        return Err(Errno::EINVAL);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| Errno::EINVAL)?;
    let wanted = text.strip_suffix('\n').unwrap_or(text);
    let index = THP_POLICIES.iter().position(|&policy| policy == wanted).ok_or(Errno::EINVAL)?;
    THP_POLICY.store(index, Ordering::Relaxed);
    Ok(())
}

/// Where the CPUs' directories are.
const CPU_DIRECTORY: &str = "sys/devices/system/cpu";

/// The ids of the CPUs brought up, in increasing order.
fn cpu_ids() -> Vec<u32> {
    crate::percpu::all_cpus().map(|cpu| cpu.id).collect()
}

/// True when `path` is a CPU's directory (`sys/devices/system/cpu/cpuN`).
fn is_cpu_directory(path: &str) -> bool {
    path.strip_prefix(CPU_DIRECTORY)
        .and_then(|rest| rest.strip_prefix("/cpu"))
        .and_then(|id| if id.len() > 1 && id.starts_with('0') { None } else { id.parse::<u32>().ok() })
        .is_some_and(|id| cpu_ids().contains(&id))
}

/// True when `path` (without the leading slash) is a directory of `/sys`.
pub fn is_directory(path: &str) -> bool {
    DIRECTORIES.contains(&path) || is_cpu_directory(path)
}

/// The file `path` names in `/sys`, as the `'static` key of its node.
pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().copied().find(|&file| file == path)
}

/// The entries of directory `path`: each name and, for a file, its key
/// (`None`: a directory).
pub fn children(path: &str) -> Vec<(String, Option<&'static str>)> {
    let prefix = format!("{path}/");
    let mut children: Vec<(String, Option<&'static str>)> = Vec::new();
    let below = |entry: &'static str| entry.strip_prefix(prefix.as_str()).filter(|name| !name.contains('/'));
    for directory in DIRECTORIES {
        if let Some(name) = below(directory) {
            children.push((name.to_string(), None));
        }
    }
    for file in FILES {
        if let Some(name) = below(file) {
            children.push((name.to_string(), Some(file)));
        }
    }
    if path == CPU_DIRECTORY {
        children.extend(cpu_ids().into_iter().map(|id| (format!("cpu{id}"), None)));
    }
    children
}

/// A set of CPU ids as Linux prints a CPU list (`0-3,5`), with a newline.
fn cpu_list(ids: &[u32]) -> String {
    let mut out = String::new();
    let mut index = 0;
    while index < ids.len() {
        let first = ids[index];
        let mut last = first;
        while index + 1 < ids.len() && ids[index + 1] == last + 1 {
            index += 1;
            last = ids[index];
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&if first == last { format!("{first}") } else { format!("{first}-{last}") });
        index += 1;
    }
    out.push('\n');
    out
}

/// The contents of file `key`.
pub fn contents(key: &str) -> Vec<u8> {
    match key {
        THP_ENABLED => {
            let chosen = THP_POLICY.load(Ordering::Relaxed);
            let mut out = String::new();
            for (index, policy) in THP_POLICIES.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                out.push_str(&if index == chosen { format!("[{policy}]") } else { policy.to_string() });
            }
            out.push('\n');
            out.into_bytes()
        }
        _ => cpu_list(&cpu_ids()).into_bytes(),
    }
}

/// The permission bits of file `key`.
pub fn file_mode(key: &str) -> u32 {
    if key.starts_with("sys/kernel/mm/") {
        0o644
    } else {
        0o444
    }
}

/// The inode number of `path` in `/sys` (a hash of the path: sysfs
/// numbers its nodes as it makes them).
pub fn ino(path: &str) -> u64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in path.bytes() {
        hash = (hash ^ byte as u32).wrapping_mul(0x0100_0193);
    }
    hash as u64 | 1 << 40
}

/// True for an inode number [`ino`] gives (above every `/proc` one).
pub fn is_ino(ino: u64) -> bool {
    ino >> 40 == 1
}

/// The permission bits of the file with inode `ino`.
pub fn file_mode_of_ino(ino: u64) -> u32 {
    FILES.iter().find(|&&key| self::ino(key) == ino).map_or(0o444, |key| file_mode(key))
}
