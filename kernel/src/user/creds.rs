//! Who a process is and what it may do: its user and group ids (real,
//! effective, saved, file system), its supplementary groups, its
//! capability sets and securebits (Linux's `struct cred`; the threads of a
//! process share them here), the calls that read and change the ids, and
//! the permission checks the file calls ask ([`may_access`], [`owns`]).
//!
//! A program `run` starts is root with every capability. `setuid` and its
//! family follow Linux's rules (`kernel/sys.c`): with `CAP_SETUID`
//! (`CAP_SETGID`) any id, without it only ids the process already has;
//! and the capabilities follow the ids as Linux's `cap_task_fix_setuid`
//! makes them: leaving uid 0 in every one of real, effective and saved
//! clears permitted and effective (unless keep-caps), an effective uid
//! leaving 0 clears the effective set and coming back to 0 restores it
//! from permitted, the file system uid leaving 0 drops the file system
//! capabilities from the effective set. `execve` recomputes the sets as
//! Linux does for a file without capabilities ([`Credentials::after_exec`]).
//!
//! The credentials of processes that changed theirs are kept in a table by
//! pid; a process not listed has [`Credentials::ROOT`].

use super::copy;
use super::errno::{Errno, SysResult};
use super::process::{self, Process};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The capabilities named here (`linux/capability.h`).
pub mod cap {
    /// `CAP_CHOWN`: change any file's owner and group.
    pub const CHOWN: u32 = 0;
    /// `CAP_DAC_OVERRIDE`: read, write and search whatever the modes say.
    pub const DAC_OVERRIDE: u32 = 1;
    /// `CAP_DAC_READ_SEARCH`: read and search whatever the modes say.
    pub const DAC_READ_SEARCH: u32 = 2;
    /// `CAP_FOWNER`: act as a file's owner (chmod, utimes, sticky dirs).
    pub const FOWNER: u32 = 3;
    /// `CAP_FSETID`: keep set-user-ID and set-group-ID bits.
    pub const FSETID: u32 = 4;
    /// `CAP_KILL`: signal any process.
    pub const KILL: u32 = 5;
    /// `CAP_SETGID`: take any group id, set the supplementary groups.
    pub const SETGID: u32 = 6;
    /// `CAP_SETUID`: take any user id.
    pub const SETUID: u32 = 7;
    /// `CAP_SETPCAP`: change the bounding set, securebits, any inheritable.
    pub const SETPCAP: u32 = 8;
    /// `CAP_LINUX_IMMUTABLE`: the last of the file system capabilities.
    pub const LINUX_IMMUTABLE: u32 = 9;
    /// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
    pub const IPC_LOCK: u32 = 14;
    /// `CAP_MKNOD`: a file system capability too.
    pub const MKNOD: u32 = 27;
    /// `CAP_MAC_OVERRIDE`: a file system capability too.
    pub const MAC_OVERRIDE: u32 = 32;
    /// `CAP_LAST_CAP` (`CAP_CHECKPOINT_RESTORE`) in Linux 6.1.
    pub const LAST: u32 = 40;
}

/// Every capability Linux 6.1 knows, one bit each (`CAP_FULL_SET`).
pub const CAP_FULL_SET: u64 = (1 << (cap::LAST + 1)) - 1;

/// The file system capabilities (`CAP_FS_MASK`): chown, the DAC ones,
/// fowner, fsetid, linux_immutable, mknod and mac_override.
const CAP_FS_MASK: u64 = (1 << cap::CHOWN)
    | (1 << cap::DAC_OVERRIDE)
    | (1 << cap::DAC_READ_SEARCH)
    | (1 << cap::FOWNER)
    | (1 << cap::FSETID)
    | (1 << cap::LINUX_IMMUTABLE)
    | (1 << cap::MKNOD)
    | (1 << cap::MAC_OVERRIDE);

/// Securebits (`linux/securebits.h`): `SECURE_KEEP_CAPS` and the bits and
/// locks `PR_SET_SECUREBITS` may set.
pub mod securebits {
    /// `SECURE_NOROOT`: uid 0 gets no capabilities at `execve`.
    pub const NOROOT: u32 = 1 << 0;
    /// `SECURE_NO_SETUID_FIXUP`: id changes leave the capabilities alone.
    pub const NO_SETUID_FIXUP: u32 = 1 << 2;
    /// `SECURE_KEEP_CAPS`: leaving uid 0 keeps the permitted set.
    pub const KEEP_CAPS: u32 = 1 << 4;
    /// Its lock.
    pub const KEEP_CAPS_LOCKED: u32 = 1 << 5;
    /// `SECURE_NO_CAP_AMBIENT_RAISE`.
    pub const NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
    /// `SECURE_ALL_BITS`: noroot, no-setuid-fixup, keep-caps, no-ambient-raise.
    pub const ALL_BITS: u32 = 1 << 0 | 1 << 2 | 1 << 4 | 1 << 6;
    /// `SECURE_ALL_LOCKS`: each bit's lock, the bit above it.
    pub const ALL_LOCKS: u32 = ALL_BITS << 1;
}

/// The most supplementary groups kept here (Linux: `NGROUPS_MAX`, 65536);
/// `setgroups` of more is `EINVAL`.
pub const GROUPS_MAX: usize = 32;

/// Which id of the four (`Credentials::uid`, `Credentials::gid`).
const REAL: usize = 0;
const EFFECTIVE: usize = 1;
const SAVED: usize = 2;
const FS: usize = 3;

/// A process's ids, capability sets and securebits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective, saved and file system user ids.
    pub uid: [u32; 4],
    /// Real, effective, saved and file system group ids.
    pub gid: [u32; 4],
    /// The supplementary groups: the first `group_count`.
    pub groups: [u32; GROUPS_MAX],
    /// How many supplementary groups.
    pub group_count: usize,
    /// The effective capabilities.
    pub effective: u64,
    /// The permitted ones.
    pub permitted: u64,
    /// The inheritable ones.
    pub inheritable: u64,
    /// The bounding set.
    pub bounding: u64,
    /// The ambient set.
    pub ambient: u64,
    /// The securebits.
    pub securebits: u32,
}

impl Credentials {
    /// Root's, as a program `run` starts has them: every id 0, every
    /// capability permitted, effective and in the bounding set, none
    /// inheritable.
    pub const ROOT: Credentials = Credentials {
        uid: [0; 4],
        gid: [0; 4],
        groups: [0; GROUPS_MAX],
        group_count: 0,
        effective: CAP_FULL_SET,
        permitted: CAP_FULL_SET,
        inheritable: 0,
        bounding: CAP_FULL_SET,
        ambient: 0,
        securebits: 0,
    };

    /// What `execve` of a file without capabilities (and without
    /// set-user-ID) makes of them (`cap_bprm_creds_from_file`): the saved
    /// and file system ids become the effective ones; for root (a real or
    /// effective uid 0, unless `SECURE_NOROOT`) permitted is the bounding
    /// set and the inheritable one, effective the same if the effective uid
    /// is 0; for anyone else both are the ambient set. `SECURE_KEEP_CAPS`
    /// is cleared.
    pub fn after_exec(self) -> Credentials {
        let mut uid = self.uid;
        let mut gid = self.gid;
        uid[SAVED] = uid[EFFECTIVE];
        uid[FS] = uid[EFFECTIVE];
        gid[SAVED] = gid[EFFECTIVE];
        gid[FS] = gid[EFFECTIVE];
        let root = (uid[REAL] == 0 || uid[EFFECTIVE] == 0) && self.securebits & securebits::NOROOT == 0;
        let ambient = if root { self.ambient & self.inheritable } else { self.ambient };
        let permitted = if root { (self.bounding | self.inheritable) & CAP_FULL_SET } else { ambient };
        let effective = if root && uid[EFFECTIVE] == 0 { permitted } else { ambient };
        Credentials {
            uid,
            gid,
            effective,
            permitted,
            ambient: ambient & permitted,
            securebits: self.securebits & !securebits::KEEP_CAPS,
            ..self
        }
    }

    /// True when the effective set holds `capability`.
    pub fn has(&self, capability: u32) -> bool {
        self.effective & (1 << capability) != 0
    }

    /// The supplementary groups.
    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.group_count]
    }

    /// True when `gid` is the file system group or a supplementary one
    /// (Linux's `in_group_p`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid[FS] == gid || self.groups().contains(&gid)
    }

    /// The file system user id: the owner of files the process creates.
    pub fn fsuid(&self) -> u32 {
        self.uid[FS]
    }

    /// The file system group id.
    pub fn fsgid(&self) -> u32 {
        self.gid[FS]
    }

    /// The credentials `access` checks with, unless `AT_EACCESS` (Linux's
    /// `access_override_creds`): the real ids as the file system ones, and
    /// the permitted capabilities for a real root, none for anyone else.
    pub fn for_access(mut self) -> Credentials {
        self.uid[FS] = self.uid[REAL];
        self.gid[FS] = self.gid[REAL];
        if self.securebits & securebits::NO_SETUID_FIXUP == 0 {
            self.effective = if self.uid[REAL] == 0 { self.permitted } else { 0 };
        }
        self
    }

    /// The capabilities after a change of user ids from `old`'s
    /// (`cap_task_fix_setuid`, for `setuid`, `setreuid`, `setresuid`).
    fn fix_setuid(mut self, old: &Credentials) -> Credentials {
        if self.securebits & securebits::NO_SETUID_FIXUP != 0 {
            return self;
        }
        let had_root = old.uid[..3].contains(&0);
        let has_root = self.uid[..3].contains(&0);
        if had_root && !has_root {
            if self.securebits & securebits::KEEP_CAPS == 0 {
                self.permitted = 0;
                self.effective = 0;
            }
            self.ambient = 0;
        }
        if old.uid[EFFECTIVE] == 0 && self.uid[EFFECTIVE] != 0 {
            self.effective = 0;
        }
        if old.uid[EFFECTIVE] != 0 && self.uid[EFFECTIVE] == 0 {
            self.effective = self.permitted;
        }
        self.fix_setfsuid(old)
    }

    /// The file system capabilities after a change of the file system uid.
    fn fix_setfsuid(mut self, old: &Credentials) -> Credentials {
        if self.securebits & securebits::NO_SETUID_FIXUP != 0 {
            return self;
        }
        if old.uid[FS] == 0 && self.uid[FS] != 0 {
            self.effective &= !CAP_FS_MASK;
        }
        if old.uid[FS] != 0 && self.uid[FS] == 0 {
            self.effective |= self.permitted & CAP_FS_MASK;
        }
        self
    }
}

/// The credentials of the processes that changed theirs, by pid, with the
/// address space they were set in: a process whose space is another one
/// has run `execve` since, and its credentials are
/// [`Credentials::after_exec`] of the ones listed. A process not listed
/// has [`Credentials::ROOT`].
static CREDENTIALS: IrqMutex<BTreeMap<u32, (u32, Credentials)>> = IrqMutex::new(BTreeMap::new());

/// The credentials of `process`.
pub fn credentials(process: &Process) -> Credentials {
    with_credentials(process, |credentials| *credentials)
}

/// `f` of the credentials of `process`, read in place (they are a few
/// hundred bytes: a capability check copies none of them).
fn with_credentials<R>(process: &Process, f: impl FnOnce(&Credentials) -> R) -> R {
    match CREDENTIALS.lock().get(&process.pid) {
        Some((space, credentials)) if *space == process.space.id() => f(credentials),
        Some((_, credentials)) => f(&credentials.after_exec()),
        None => f(&Credentials::ROOT),
    }
}

/// Records the credentials of `process`, forgetting those of the processes
/// that are gone.
pub fn set_credentials(process: &Process, credentials: Credentials) {
    let live: Vec<u32> = process::all().iter().map(|live| live.pid).collect();
    let mut table = CREDENTIALS.lock();
    table.retain(|pid, _| live.contains(pid));
    if credentials == Credentials::ROOT {
        table.remove(&process.pid);
    } else {
        table.insert(process.pid, (process.space.id(), credentials));
    }
}

/// Linux's `capable(capability)` for `process`.
pub fn capable(process: &Process, capability: u32) -> bool {
    with_credentials(process, |credentials| credentials.has(capability))
}

/// Gives `child`, just forked by the running process, its parent's
/// credentials (Linux's `copy_creds`).
pub fn inherit_credentials(child: &Process) {
    let parent = process::current().map_or(Credentials::ROOT, |parent| credentials(&parent));
    if parent != Credentials::ROOT {
        CREDENTIALS.lock().insert(child.pid, (child.space.id(), parent));
    }
}

// ---------------------------------------------------------------------------
// Permission checks

/// What an access asks for (`MAY_READ`, `MAY_WRITE`, `MAY_EXEC`).
pub mod may {
    /// Read a file, list a directory.
    pub const READ: u32 = 4;
    /// Write a file, change a directory's entries.
    pub const WRITE: u32 = 2;
    /// Run a file, walk through a directory.
    pub const EXEC: u32 = 1;
}

/// Linux's `generic_permission`: whether `credentials` may access a file
/// of `mode` owned by `uid`:`gid` as `want` asks ([`may`] bits): the
/// owner's, group's or others' bits by the file system ids, then the
/// capabilities that override them (`CAP_DAC_OVERRIDE`: anything but
/// running a file no one may run; `CAP_DAC_READ_SEARCH`: reading, and
/// searching a directory).
pub fn may_access(credentials: &Credentials, mode: u32, uid: u32, gid: u32, want: u32) -> bool {
    let bits = if credentials.fsuid() == uid {
        mode >> 6
    } else if credentials.in_group(gid) {
        mode >> 3
    } else {
        mode
    } & 7;
    if want & !bits == 0 {
        return true;
    }
    let directory = mode & 0o170000 == 0o040000;
    if credentials.has(cap::DAC_OVERRIDE) && (directory || want & may::EXEC == 0 || mode & 0o111 != 0) {
        return true;
    }
    let read_search = if directory { may::READ | may::EXEC } else { may::READ };
    credentials.has(cap::DAC_READ_SEARCH) && want & !read_search == 0
}

/// Linux's `inode_owner_or_capable`: the file system uid owns the file, or
/// the process has `CAP_FOWNER`.
pub fn owns(credentials: &Credentials, uid: u32) -> bool {
    credentials.fsuid() == uid || credentials.has(cap::FOWNER)
}

/// Whether `sender` may send a signal to `target` (Linux's
/// `kill_ok_by_cred`): the same real or effective user as the target's
/// real or saved one, or `CAP_KILL`.
pub fn may_signal(sender: &Credentials, target: &Credentials) -> bool {
    let (s, t) = (sender.uid, target.uid);
    s[EFFECTIVE] == t[SAVED]
        || s[EFFECTIVE] == t[REAL]
        || s[REAL] == t[SAVED]
        || s[REAL] == t[REAL]
        || sender.has(cap::KILL)
}

// ---------------------------------------------------------------------------
// The id calls

/// The system calls this module serves, by number.
mod nr {
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const SETUID: u64 = 105;
    pub const SETGID: u64 = 106;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const SETREUID: u64 = 113;
    pub const SETREGID: u64 = 114;
    pub const GETGROUPS: u64 = 115;
    pub const SETGROUPS: u64 = 116;
    pub const SETRESUID: u64 = 117;
    pub const GETRESUID: u64 = 118;
    pub const SETRESGID: u64 = 119;
    pub const GETRESGID: u64 = 120;
    pub const SETFSUID: u64 = 122;
    pub const SETFSGID: u64 = 123;
}

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    // The table's lock only for a call of this module's: every number not
    // served before passes through here.
    let now = || credentials(process);
    Some(match number {
        nr::GETUID => Ok(now().uid[REAL] as u64),
        nr::GETEUID => Ok(now().uid[EFFECTIVE] as u64),
        nr::GETGID => Ok(now().gid[REAL] as u64),
        nr::GETEGID => Ok(now().gid[EFFECTIVE] as u64),
        nr::GETRESUID => get_three(now().uid, a),
        nr::GETRESGID => get_three(now().gid, a),
        nr::SETUID => set_id(process, now(), a[0] as u32, false),
        nr::SETGID => set_id(process, now(), a[0] as u32, true),
        nr::SETREUID => set_re(process, now(), a[0] as u32, a[1] as u32, false),
        nr::SETREGID => set_re(process, now(), a[0] as u32, a[1] as u32, true),
        nr::SETRESUID => set_res(process, now(), [a[0] as u32, a[1] as u32, a[2] as u32], false),
        nr::SETRESGID => set_res(process, now(), [a[0] as u32, a[1] as u32, a[2] as u32], true),
        nr::SETFSUID => Ok(set_fs(process, now(), a[0] as u32, false)),
        nr::SETFSGID => Ok(set_fs(process, now(), a[0] as u32, true)),
        nr::GETGROUPS => getgroups(&now(), a[0] as i32, a[1]),
        nr::SETGROUPS => setgroups(process, now(), a[0] as i32, a[1]),
        _ => return None,
    })
}

/// -1: leave the id as it is.
const UNCHANGED: u32 = u32::MAX;

/// `getresuid` and `getresgid`: real, effective and saved, each to its
/// pointer (`EFAULT`).
fn get_three(ids: [u32; 4], a: [u64; 6]) -> SysResult {
    for (index, &addr) in a[..3].iter().enumerate() {
        copy::write_value(addr, &ids[index])?;
    }
    Ok(0)
}

/// The user (`group` false) or group ids of `credentials`, and the
/// capability that lets a process take any.
fn ids(credentials: &mut Credentials, group: bool) -> (&mut [u32; 4], u32) {
    if group {
        (&mut credentials.gid, cap::SETGID)
    } else {
        (&mut credentials.uid, cap::SETUID)
    }
}

/// Records `new` after an id change from `old`, the capabilities fixed up
/// for a user id change.
fn commit(process: &Process, old: &Credentials, new: Credentials, group: bool, fs_only: bool) {
    let new = match (group, fs_only) {
        (true, _) => new,
        (false, true) => new.fix_setfsuid(old),
        (false, false) => new.fix_setuid(old),
    };
    set_credentials(process, new);
}

/// `setuid(id)` and `setgid(id)`: with the capability, every id; without
/// it, the effective and file system ones, to the real or saved id.
fn set_id(process: &Process, old: Credentials, id: u32, group: bool) -> SysResult {
    if id == UNCHANGED {
        return Err(Errno::EINVAL);
    }
    let mut new = old;
    let (ids, capability) = ids(&mut new, group);
    if old.has(capability) {
        *ids = [id; 4];
    } else if id == ids[REAL] || id == ids[SAVED] {
        ids[EFFECTIVE] = id;
        ids[FS] = id;
    } else {
        return Err(Errno::EPERM);
    }
    commit(process, &old, new, group, false);
    Ok(0)
}

/// `setreuid(real, effective)` and `setregid`: without the capability,
/// the real id may become the effective one, the effective one the real,
/// effective or saved one; the saved id follows the new effective one when
/// the real one is set, or the effective one is set to other than the old
/// real one.
fn set_re(process: &Process, old: Credentials, real: u32, effective: u32, group: bool) -> SysResult {
    let mut new = old;
    let (ids, capability) = ids(&mut new, group);
    let privileged = old.has(capability);
    let before = *ids;
    if real != UNCHANGED {
        if !privileged && real != before[REAL] && real != before[EFFECTIVE] {
            return Err(Errno::EPERM);
        }
        ids[REAL] = real;
    }
    if effective != UNCHANGED {
        if !privileged && ![before[REAL], before[EFFECTIVE], before[SAVED]].contains(&effective) {
            return Err(Errno::EPERM);
        }
        ids[EFFECTIVE] = effective;
    }
    if real != UNCHANGED || (effective != UNCHANGED && effective != before[REAL]) {
        ids[SAVED] = ids[EFFECTIVE];
    }
    ids[FS] = ids[EFFECTIVE];
    commit(process, &old, new, group, false);
    Ok(0)
}

/// `setresuid(real, effective, saved)` and `setresgid`: without the
/// capability each new id must be one of the three the process has.
fn set_res(process: &Process, old: Credentials, wanted: [u32; 3], group: bool) -> SysResult {
    let mut new = old;
    let (ids, capability) = ids(&mut new, group);
    let before = *ids;
    if !old.has(capability)
        && wanted.iter().any(|&id| id != UNCHANGED && ![before[REAL], before[EFFECTIVE], before[SAVED]].contains(&id))
    {
        return Err(Errno::EPERM);
    }
    for (index, &id) in wanted.iter().enumerate() {
        if id != UNCHANGED {
            ids[index] = id;
        }
    }
    ids[FS] = ids[EFFECTIVE];
    commit(process, &old, new, group, false);
    Ok(0)
}

/// `setfsuid(id)` and `setfsgid`: the old file system id, always; the new
/// one is taken with the capability, or when it is one of the four ids.
fn set_fs(process: &Process, old: Credentials, id: u32, group: bool) -> u64 {
    let mut new = old;
    let (ids, capability) = ids(&mut new, group);
    let previous = ids[FS];
    if id != UNCHANGED && (old.has(capability) || ids.contains(&id)) && id != previous {
        ids[FS] = id;
        commit(process, &old, new, group, true);
    }
    previous as u64
}

/// `getgroups(size, list)`: the count for a size of 0; `EINVAL` when the
/// list is too short or the size negative.
fn getgroups(credentials: &Credentials, size: i32, list: u64) -> SysResult {
    let groups = credentials.groups();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    for (index, group) in groups.iter().enumerate() {
        copy::write_value(list + 4 * index as u64, group)?;
    }
    Ok(groups.len() as u64)
}

/// `setgroups(size, list)`: `CAP_SETGID` needed (`EPERM`), at most
/// [`GROUPS_MAX`] here (`EINVAL`, as Linux for more than `NGROUPS_MAX`).
fn setgroups(process: &Process, old: Credentials, size: i32, list: u64) -> SysResult {
    if size < 0 || size as usize > GROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    if !old.has(cap::SETGID) {
        return Err(Errno::EPERM);
    }
    let mut new = old;
    for index in 0..size as usize {
        new.groups[index] = copy::read_value(list + 4 * index as u64)?;
    }
    new.group_count = size as usize;
    new.groups[..new.group_count].sort_unstable();
    set_credentials(process, new);
    Ok(0)
}
