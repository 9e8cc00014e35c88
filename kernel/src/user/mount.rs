//! `mount` and `umount2`. The file systems are built in and mounted at
//! boot, one instance each at its place (the table of
//! [`procinfo::mounts_table`]): `proc` at `/proc`, `sysfs` at `/sys`,
//! `devtmpfs` at `/dev`, `tmpfs` at `/tmp` and `/dev/shm`, `debugfs` (empty)
//! at `/sys/kernel/debug`.
//!
//! The checks are Linux's (`path_mount`), in its order: the strings
//! (`EFAULT`), the target (`ENOENT`, `ENOTDIR`, ...), `MS_NOUSER`
//! (`EINVAL`); then a remount or a change of propagation must name a
//! mount's root (`EINVAL` otherwise) and succeeds without changing
//! anything (every mount is private here; the options stay as
//! `/proc/mounts` shows them); a new mount needs a type (`EINVAL`) that is
//! known (`ENODEV` for any other, `ramfs`, `devpts` and `cgroup2`
//! included) and a directory (`ENOTDIR`). Mounting one of the five types
//! where it already is succeeds and changes nothing, as if mounted again
//! over itself; anywhere else it is `EINVAL`, as are bind mounts
//! (`MS_BIND`) and moves (`MS_MOVE`): a second instance is not made here.
//!
//! `umount2` checks its flags (`EINVAL`) and the target; a target that is
//! not a mount's root is `EINVAL`, as on Linux, and a mount's root is
//! `EBUSY`, whatever the flags (`MNT_DETACH` included): the built-in file
//! systems stay mounted.

use super::copy;
use super::errno::{Errno, SysResult};
use super::files::{self, Node};
use super::process::Process;
use super::procinfo;
use alloc::string::String;

/// The system calls this module serves, by number.
mod nr {
    pub const MOUNT: u64 = 165;
    pub const UMOUNT2: u64 = 166;
}

/// `mount` flags.
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_NOUSER: u64 = 1 << 31;
/// The old magic number in the high half of the flags, dropped.
const MS_MGC_VAL: u64 = 0xc0ed_0000;
const MS_MGC_MSK: u64 = 0xffff_0000;

/// `umount2` flags.
const MNT_FORCE: u64 = 1;
const MNT_DETACH: u64 = 2;
const MNT_EXPIRE: u64 = 4;
const UMOUNT_NOFOLLOW: u64 = 8;

/// The types of file system built in.
const KNOWN_TYPES: [&str; 5] = ["proc", "sysfs", "devtmpfs", "tmpfs", "debugfs"];

/// A string argument that may be NULL (`copy_mount_string`).
fn optional_string(addr: u64) -> Result<Option<String>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let bytes = copy::read_string(addr, 4095)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The mount point `node` is the root of, by its path without the leading
/// slash (`""`: the root).
fn mount_root(node: &Node) -> Option<String> {
    let path = files::directory_path(node).ok()?;
    procinfo::mounts_table().iter().any(|mount| mount.point == path).then_some(path)
}

/// The node `path` (an argument) names, links followed when `follow`.
fn target(process: &Process, path: u64, follow: bool) -> Result<Node, Errno> {
    let name = files::read_path(path)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = files::absolute(process, files::AT_FDCWD as u64, name)?;
    files::resolve(process, &path, follow)
}

/// `mount(source, target, type, flags, data)`.
fn mount(process: &Process, source: u64, target_path: u64, kind: u64, flags: u64) -> SysResult {
    let kind = optional_string(kind)?;
    optional_string(source)?;
    let node = target(process, target_path, true)?;
    let mut flags = flags;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    if flags & MS_NOUSER != 0 {
        return Err(Errno::EINVAL);
    }
    let propagation = flags & (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE);
    if flags & MS_REMOUNT != 0 {
        return mount_root(&node).map(|_| 0).ok_or(Errno::EINVAL);
    }
    if flags & (MS_BIND | MS_MOVE) != 0 {
        return Err(Errno::EINVAL);
    }
    if propagation != 0 {
        // Exactly one kind of propagation (flags_to_propagation_type).
        if !propagation.is_power_of_two() {
            return Err(Errno::EINVAL);
        }
        return mount_root(&node).map(|_| 0).ok_or(Errno::EINVAL);
    }
    let kind = kind.ok_or(Errno::EINVAL)?;
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Err(Errno::ENODEV);
    }
    if !node.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    let at_its_place = mount_root(&node)
        .is_some_and(|point| procinfo::mounts_table().iter().any(|mount| mount.point == point && mount.kind == kind));
    if at_its_place {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}

/// `umount2(target, flags)`.
fn umount2(process: &Process, target_path: u64, flags: u64) -> SysResult {
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let node = target(process, target_path, flags & UMOUNT_NOFOLLOW == 0)?;
    if mount_root(&node).is_none() {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0 {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EBUSY)
}

/// The mount calls, by number: `None` for a number this module does not
/// serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    Some(match number {
        nr::MOUNT => mount(process, a[0], a[1], a[2], a[3]),
        nr::UMOUNT2 => umount2(process, a[0], a[1]),
        _ => return None,
    })
}
