//! The calls that change the file tree and the files' metadata, and the
//! working directory: `mkdir`, `rmdir`, `unlink`, `rename`, `link`,
//! `symlink`, `chmod`, `chown`, `utimensat`, `truncate`, `statfs`,
//! `fsync`, `chdir`, `getcwd`, `memfd_create` and their `*at` and `f*`
//! forms.
//!
//! Only the file systems in RAM ([`crate::fs::ramfs`]: `/tmp`, `/dev/shm`,
//! memfds) can change: the same change under the initrd, `/proc` or `/dev`
//! is `EROFS` (after the checks Linux makes first, such as `EEXIST` for a
//! name that is taken). Every program runs as root, whom Linux's
//! permission checks let through; modes and owners are stored and shown.
//! A path's last component is checked as Linux's `filename_create` and
//! `do_rmdir`/`do_unlinkat` do: `.` and `..` are refused with their errors,
//! a mount's root cannot be removed or renamed (`EBUSY`).

use super::copy;
use super::creds::{self, cap, may};
use super::errno::{Errno, SysResult};
use super::fdtable::flags::{O_LARGEFILE, O_RDWR};
use super::files::{
    absolute, directory_path, file_of, install_named, nofile_limit, ram_errno, ram_permission, read_path, resolve,
    target_at, Backing, Directory, Node, Target, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, INITRD_DEV, NAME_MAX,
    PROC_DEV,
};
use super::objects;
use super::process::Process;
use crate::fs::ramfs::{self, mode, Body, Inode, Time};
use alloc::string::String;
use alloc::sync::Arc;
use spin::Mutex;

/// The system calls this module serves, by number.
mod nr {
    pub const FSYNC: u64 = 74;
    pub const FDATASYNC: u64 = 75;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const CREAT: u64 = 85;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const CHMOD: u64 = 90;
    pub const FCHMOD: u64 = 91;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const STATFS: u64 = 137;
    pub const FSTATFS: u64 = 138;
    pub const SYNC: u64 = 162;
    pub const MKDIRAT: u64 = 258;
    pub const FCHOWNAT: u64 = 260;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const FCHMODAT: u64 = 268;
    pub const UTIMENSAT: u64 = 280;
    pub const SYNCFS: u64 = 306;
    pub const RENAMEAT2: u64 = 316;
    pub const MEMFD_CREATE: u64 = 319;
}

/// `AT_REMOVEDIR`.
const AT_REMOVEDIR: u64 = 0x200;
/// `AT_SYMLINK_FOLLOW` (`linkat`).
const AT_SYMLINK_FOLLOW: u64 = 0x400;
/// `O_CREAT | O_WRONLY | O_TRUNC`: what `creat` opens with.
const CREAT_FLAGS: u64 = 0o100 | 0o1 | 0o1000;

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    let cwd = AT_FDCWD as u64;
    Some(match number {
        nr::MKDIR => mkdir(process, cwd, a[0], a[1]),
        nr::MKDIRAT => mkdir(process, a[0], a[1], a[2]),
        nr::RMDIR => remove(process, cwd, a[0], true),
        nr::UNLINK => remove(process, cwd, a[0], false),
        nr::UNLINKAT => unlinkat(process, a[0], a[1], a[2]),
        nr::RENAME => rename(process, cwd, a[0], cwd, a[1], 0),
        nr::RENAMEAT => rename(process, a[0], a[1], a[2], a[3], 0),
        nr::RENAMEAT2 => rename(process, a[0], a[1], a[2], a[3], a[4]),
        nr::LINK => link(process, cwd, a[0], cwd, a[1], 0),
        nr::LINKAT => link(process, a[0], a[1], a[2], a[3], a[4]),
        nr::SYMLINK => symlink(process, a[0], cwd, a[1]),
        nr::SYMLINKAT => symlink(process, a[0], a[1], a[2]),
        nr::CHMOD => chmod(process, cwd, a[0], a[1], 0, false),
        nr::FCHMODAT => chmod(process, a[0], a[1], a[2], 0, false),
        nr::FCHMOD => chmod(process, a[0], 0, a[1], AT_EMPTY_PATH, true),
        nr::CHOWN => chown(process, cwd, a[0], a[1], a[2], 0),
        nr::LCHOWN => chown(process, cwd, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW),
        nr::FCHOWNAT => chown(process, a[0], a[1], a[2], a[3], a[4]),
        nr::FCHOWN => fchown(process, a[0], a[1], a[2]),
        nr::UTIMENSAT => utimensat(process, a[0], a[1], a[2], a[3]),
        nr::TRUNCATE => truncate(process, a[0], a[1]),
        nr::FTRUNCATE => ftruncate(process, a[0], a[1]),
        nr::STATFS => statfs(process, Some(a[0]), 0, a[1]),
        nr::FSTATFS => statfs(process, None, a[0], a[1]),
        nr::FSYNC | nr::FDATASYNC | nr::SYNCFS => fsync(process, a[0]),
        nr::SYNC => Ok(0),
        nr::CHDIR => chdir(process, a[0]),
        nr::FCHDIR => fchdir(process, a[0]),
        nr::GETCWD => getcwd(process, a[0], a[1]),
        nr::CREAT => return super::files::call(process, 257, [cwd, a[0], CREAT_FLAGS, a[1], 0, 0]),
        nr::MEMFD_CREATE => memfd_create(process, a[0], a[1]),
        _ => return None,
    })
}

/// A path's last component and the directory it is in.
struct Last {
    parent: Node,
    name: String,
    /// The path ended with `/`: it must name a directory.
    trailing_slash: bool,
}

/// Splits `path` (relative to `dirfd`) into its directory, which must
/// exist and be a directory, and its last component.
fn last_component(process: &Process, dirfd: u64, path: Result<String, Errno>) -> Result<Last, Errno> {
    let path = path?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = absolute(process, dirfd, path)?;
    let trailing_slash = path.ends_with('/');
    let trimmed = path.trim_end_matches('/');
    let (directory, name) = trimmed.rsplit_once('/').unwrap_or(("", "."));
    let name = if trimmed.is_empty() { "." } else { name };
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let parent = resolve(process, if directory.is_empty() { "/" } else { directory }, true)?;
    if !parent.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    Ok(Last { parent, name: String::from(name), trailing_slash })
}

/// The directory in RAM `node` is, or `EROFS` for another file system's.
fn writable_directory(node: &Node) -> Result<Arc<Inode>, Errno> {
    match node {
        Node::Ram(inode) if inode.is_directory() => Ok(inode.clone()),
        _ => Err(Errno::EROFS),
    }
}

/// The directory in RAM `node` is, which the process may change (write
/// and search permission: `EACCES`), or `EROFS` for another file system's.
fn changeable_directory(process: &Process, node: &Node) -> Result<Arc<Inode>, Errno> {
    let directory = writable_directory(node)?;
    ram_permission(process, &directory, may::WRITE | may::EXEC)?;
    Ok(directory)
}

/// Whether the process may remove or replace `victim`'s entry in
/// `directory`: in a sticky directory only the entry's owner, the
/// directory's owner or a process with `CAP_FOWNER` may (`EPERM`).
fn sticky_allows(process: &Process, directory: &Inode, victim: &Node) -> Result<(), Errno> {
    let directory_meta = *directory.meta.lock();
    let Node::Ram(victim) = victim else { return Ok(()) };
    if directory_meta.mode & 0o1000 == 0 {
        return Ok(());
    }
    let who = creds::credentials(process);
    let owner = victim.meta.lock().uid;
    if who.fsuid() == owner || who.fsuid() == directory_meta.uid || who.has(cap::FOWNER) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// True when `node` is the root of a mounted file system in RAM.
fn is_mount_root(node: &Node) -> bool {
    matches!(node, Node::Ram(inode) if ramfs::mounted().iter().any(|(_, ram)| Arc::ptr_eq(&ram.root, inode)))
}

/// The process's file-creation mask.
fn umask(process: &Process) -> u32 {
    process.state.lock().files.umask
}

/// `mkdir` and `mkdirat`.
fn mkdir(process: &Process, dirfd: u64, path: u64, mode_bits: u64) -> SysResult {
    let last = last_component(process, dirfd, read_path(path))?;
    if last.name == "." || last.name == ".." {
        return Err(Errno::EEXIST);
    }
    let full = alloc::format!("/{}/{}", directory_path(&last.parent)?, last.name);
    if resolve(process, &full, false).is_ok() {
        return Err(Errno::EEXIST);
    }
    let directory = changeable_directory(process, &last.parent)?;
    let ram = ramfs::instance(directory.dev).ok_or(Errno::ENOENT)?;
    let bits = mode_bits as u32 & 0o7777 & !umask(process);
    let who = creds::credentials(process);
    let child = ram.new_inode(mode::DIRECTORY | bits, who.fsuid(), who.fsgid(), Body::Directory(Mutex::default()));
    directory.link(&last.name, &child).map_err(ram_errno)?;
    Ok(0)
}

/// `unlinkat(dirfd, path, flags)`: `AT_REMOVEDIR` makes it `rmdir`.
fn unlinkat(process: &Process, dirfd: u64, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove(process, dirfd, path, flags & AT_REMOVEDIR != 0)
}

/// `rmdir` (`directory`) and `unlink`.
fn remove(process: &Process, dirfd: u64, path: u64, directory: bool) -> SysResult {
    let last = last_component(process, dirfd, read_path(path))?;
    match last.name.as_str() {
        "." if directory => return Err(Errno::EINVAL),
        ".." if directory => return Err(Errno::ENOTEMPTY),
        "." | ".." => return Err(Errno::EISDIR),
        _ => {}
    }
    let full = alloc::format!("/{}/{}", directory_path(&last.parent)?, last.name);
    let target = resolve(process, &full, false)?;
    if is_mount_root(&target) {
        return Err(Errno::EBUSY);
    }
    if !directory && last.trailing_slash && !target.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    let parent = changeable_directory(process, &last.parent)?;
    sticky_allows(process, &parent, &target)?;
    parent.unlink(&last.name, directory).map_err(ram_errno)?;
    Ok(0)
}

/// `rename`, `renameat` and `renameat2` (`RENAME_NOREPLACE`; the other
/// flags, `RENAME_EXCHANGE` and `RENAME_WHITEOUT`, are `EINVAL` here).
fn rename(process: &Process, old_dirfd: u64, old: u64, new_dirfd: u64, new: u64, flags: u64) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL);
    }
    let from = last_component(process, old_dirfd, read_path(old))?;
    let to = last_component(process, new_dirfd, read_path(new))?;
    if matches!(from.name.as_str(), "." | "..") {
        return Err(Errno::EBUSY);
    }
    if matches!(to.name.as_str(), "." | "..") {
        return Err(if flags & RENAME_NOREPLACE != 0 { Errno::EEXIST } else { Errno::EBUSY });
    }
    let old_full = alloc::format!("/{}/{}", directory_path(&from.parent)?, from.name);
    let moving = resolve(process, &old_full, false)?;
    if is_mount_root(&moving) {
        return Err(Errno::EBUSY);
    }
    if (from.trailing_slash || to.trailing_slash) && !moving.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    let (source, target) = (changeable_directory(process, &from.parent)?, changeable_directory(process, &to.parent)?);
    sticky_allows(process, &source, &moving)?;
    let new_full = alloc::format!("/{}/{}", directory_path(&to.parent)?, to.name);
    if let Ok(replaced) = resolve(process, &new_full, false) {
        sticky_allows(process, &target, &replaced)?;
    }
    ramfs::rename(&source, &from.name, &target, &to.name, flags & RENAME_NOREPLACE == 0).map_err(ram_errno)?;
    Ok(0)
}

/// `link` and `linkat`: a new name for a file in RAM (not a directory:
/// `EPERM`), on the same file system (`EXDEV`).
fn link(process: &Process, old_dirfd: u64, old: u64, new_dirfd: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let existing = match target_at(
        process,
        old_dirfd,
        read_path(old),
        flags & AT_EMPTY_PATH != 0,
        flags & AT_SYMLINK_FOLLOW != 0,
    )? {
        Target::Node(node) => node,
        Target::File(file) => match &file.lock().backing {
            Backing::Ram(inode) => Node::Ram(inode.clone()),
            Backing::Path(node) => node.clone(),
            _ => return Err(Errno::EXDEV),
        },
    };
    if existing.is_directory() {
        return Err(Errno::EPERM);
    }
    let last = last_component(process, new_dirfd, read_path(new))?;
    if last.trailing_slash {
        return Err(Errno::ENOENT);
    }
    let full = alloc::format!("/{}/{}", directory_path(&last.parent)?, last.name);
    if resolve(process, &full, false).is_ok() {
        return Err(Errno::EEXIST);
    }
    let directory = changeable_directory(process, &last.parent)?;
    let Node::Ram(inode) = existing else { return Err(Errno::EXDEV) };
    if inode.dev != directory.dev {
        return Err(Errno::EXDEV);
    }
    // fs.protected_hardlinks (on in Debian): the owner, or a regular file
    // without set-id bits the process may read and write, or CAP_FOWNER.
    let who = creds::credentials(process);
    let meta = *inode.meta.lock();
    let safe = meta.mode & mode::TYPE == mode::REGULAR
        && meta.mode & 0o4000 == 0
        && meta.mode & 0o2010 != 0o2010
        && creds::may_access(&who, meta.mode, meta.uid, meta.gid, may::READ | may::WRITE);
    if !(creds::owns(&who, meta.uid) || safe) {
        return Err(Errno::EPERM);
    }
    if inode.meta.lock().nlink == 0 {
        return Err(Errno::ENOENT); // an unlinked file (O_TMPFILE can be linked; not done here)
    }
    directory.link(&last.name, &inode).map_err(ram_errno)?;
    Ok(0)
}

/// `symlink` and `symlinkat`.
fn symlink(process: &Process, target: u64, dirfd: u64, path: u64) -> SysResult {
    let target = read_path(target)?;
    let last = last_component(process, dirfd, read_path(path))?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let full = alloc::format!("/{}/{}", directory_path(&last.parent)?, last.name);
    if resolve(process, &full, false).is_ok() || matches!(last.name.as_str(), "." | "..") {
        return Err(Errno::EEXIST);
    }
    let directory = changeable_directory(process, &last.parent)?;
    let ram = ramfs::instance(directory.dev).ok_or(Errno::ENOENT)?;
    let who = creds::credentials(process);
    let inode = ram.new_inode(mode::SYMLINK | 0o777, who.fsuid(), who.fsgid(), Body::Symlink(target));
    directory.link(&last.name, &inode).map_err(ram_errno)?;
    Ok(0)
}

/// What a `*at` call with these flags names, as a node.
fn node_at(process: &Process, dirfd: u64, path: u64, flags: u64) -> Result<Node, Errno> {
    let empty_ok = flags & AT_EMPTY_PATH != 0;
    match target_at(process, dirfd, read_path(path), empty_ok, flags & AT_SYMLINK_NOFOLLOW == 0)? {
        Target::Node(node) => Ok(node),
        Target::File(file) => node_of_file(&file.lock().backing),
    }
}

/// The node an open file is, for the calls that change metadata.
fn node_of_file(backing: &Backing) -> Result<Node, Errno> {
    Ok(match backing {
        Backing::Ram(inode) => Node::Ram(inode.clone()),
        Backing::Directory(Directory { ram: Some(inode), .. }) => Node::Ram(inode.clone()),
        Backing::Path(node) => node.clone(),
        // The initrd, /proc, a pipe, the console: nothing to change here.
        _ => return Err(Errno::EROFS),
    })
}

/// The inode in RAM `node` is, or `EROFS`.
fn ram_inode(node: Node) -> Result<Arc<Inode>, Errno> {
    match node {
        Node::Ram(inode) => Ok(inode),
        _ => Err(Errno::EROFS),
    }
}

/// `chmod`, `fchmodat` (no flags: `AT_SYMLINK_NOFOLLOW` is `EOPNOTSUPP`
/// in Linux 6.1's `fchmodat2`-less world, and other bits `EINVAL`) and
/// `fchmod` (`by_fd`: `dirfd` is the descriptor).
fn chmod(process: &Process, dirfd: u64, path: u64, mode_bits: u64, flags: u64, by_fd: bool) -> SysResult {
    let node = if by_fd {
        let file = file_of(process, dirfd)?;
        let backing_node = node_of_file(&file.lock().backing);
        backing_node?
    } else {
        node_at(process, dirfd, path, flags)?
    };
    let inode = ram_inode(node)?;
    let who = creds::credentials(process);
    {
        let mut meta = inode.meta.lock();
        if !creds::owns(&who, meta.uid) {
            return Err(Errno::EPERM);
        }
        let mut bits = mode_bits as u32 & 0o7777;
        // Set-group-ID only for a member of the file's group (or CAP_FSETID).
        if meta.mode & mode::TYPE != mode::DIRECTORY && !who.in_group(meta.gid) && !who.has(cap::FSETID) {
            bits &= !0o2000;
        }
        meta.mode = (meta.mode & mode::TYPE) | bits;
    }
    inode.touch_inode();
    Ok(0)
}

/// `chown`, `lchown` and `fchownat`: -1 leaves an id as it is.
fn chown(process: &Process, dirfd: u64, path: u64, uid: u64, gid: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let node = node_at(process, dirfd, path, flags)?;
    set_owner(process, ram_inode(node)?, uid, gid)
}

/// `fchown(fd, uid, gid)`.
fn fchown(process: &Process, fd: u64, uid: u64, gid: u64) -> SysResult {
    let file = file_of(process, fd)?;
    let node = node_of_file(&file.lock().backing)?;
    set_owner(process, ram_inode(node)?, uid, gid)
}

/// Changes the owner and group (`u32::MAX`: unchanged) as Linux's
/// `chown_ok` and `chgrp_ok` allow: `CAP_CHOWN`, or the owner keeping
/// itself as owner and giving the file one of its own groups (`EPERM`).
fn set_owner(process: &Process, inode: Arc<Inode>, uid: u64, gid: u64) -> SysResult {
    let who = creds::credentials(process);
    {
        let mut meta = inode.meta.lock();
        let (uid, gid) = (uid as u32, gid as u32);
        let owner = who.fsuid() == meta.uid;
        let uid_ok = uid == u32::MAX || (owner && uid == meta.uid) || who.has(cap::CHOWN);
        let gid_ok = gid == u32::MAX || (owner && (gid == meta.gid || who.in_group(gid))) || who.has(cap::CHOWN);
        if !uid_ok || !gid_ok {
            return Err(Errno::EPERM);
        }
        if uid != u32::MAX {
            meta.uid = uid;
        }
        if gid != u32::MAX {
            meta.gid = gid;
        }
        // Root changing the owner of a file clears set-user-ID and, for a
        // group-executable file, set-group-ID (Linux's `notify_change`).
        if meta.mode & mode::TYPE == mode::REGULAR {
            meta.mode &= !0o4000;
            if meta.mode & 0o010 != 0 {
                meta.mode &= !0o2000;
            }
        }
    }
    inode.touch_inode();
    Ok(0)
}

/// `utimensat(dirfd, path, times, flags)`: a null `times` is now, each
/// may be `UTIME_NOW` or `UTIME_OMIT`; a null `path` changes `dirfd`.
fn utimensat(process: &Process, dirfd: u64, path: u64, times: u64, flags: u64) -> SysResult {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let stamps: [[i64; 2]; 2] = if times == 0 { [[0, UTIME_NOW]; 2] } else { copy::read_value(times)? };
    for [_, nsec] in stamps {
        if !(0..1_000_000_000).contains(&nsec) && nsec != UTIME_NOW && nsec != UTIME_OMIT {
            return Err(Errno::EINVAL);
        }
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let node = if path == 0 {
        if flags & AT_SYMLINK_NOFOLLOW != 0 {
            return Err(Errno::EINVAL);
        }
        if dirfd as i32 == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        let file = file_of(process, dirfd)?;
        let node = node_of_file(&file.lock().backing)?;
        node
    } else {
        node_at(process, dirfd, path, flags)?
    };
    if stamps.iter().all(|[_, nsec]| *nsec == UTIME_OMIT) {
        return Ok(0);
    }
    let inode = ram_inode(node)?;
    let who = creds::credentials(process);
    let meta = *inode.meta.lock();
    if !creds::owns(&who, meta.uid) {
        // Times of one's choosing need the file's owner; the time now, write access.
        if stamps.iter().any(|[_, nsec]| *nsec != UTIME_NOW && *nsec != UTIME_OMIT) {
            return Err(Errno::EPERM);
        }
        ram_permission(process, &inode, may::WRITE)?;
    }
    let now = Time::now();
    let stamp = |[sec, nsec]: [i64; 2]| if nsec == UTIME_NOW { now } else { Time { sec, nsec: nsec as u32 } };
    let mut meta = inode.meta.lock();
    if stamps[0][1] != UTIME_OMIT {
        meta.atime = stamp(stamps[0]);
    }
    if stamps[1][1] != UTIME_OMIT {
        meta.mtime = stamp(stamps[1]);
    }
    meta.ctime = now;
    Ok(0)
}

/// `truncate(path, length)`.
fn truncate(process: &Process, path: u64, length: u64) -> SysResult {
    let name = read_path(path)?;
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let node = resolve(process, &absolute(process, AT_FDCWD as u64, name)?, true)?;
    if node.is_directory() {
        return Err(Errno::EISDIR);
    }
    let inode = ram_inode(node)?;
    ram_permission(process, &inode, may::WRITE)?;
    objects::truncate_file(&inode, length).map_err(ram_errno)?;
    Ok(0)
}

/// `ftruncate(fd, length)`: a file open for writing (`EINVAL` otherwise,
/// as Linux answers for a read-only descriptor, a pipe or a directory).
fn ftruncate(process: &Process, fd: u64, length: u64) -> SysResult {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let file = file_of(process, fd)?;
    let open = file.lock();
    let Backing::Ram(inode) = &open.backing else { return Err(Errno::EINVAL) };
    if !open.writable() {
        return Err(Errno::EINVAL);
    }
    let inode = inode.clone();
    drop(open);
    objects::truncate_file(&inode, length).map_err(ram_errno)?;
    Ok(0)
}

/// `struct statfs` (120 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Statfs {
    kind: i64,
    bsize: i64,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    fsid: [i32; 2],
    namelen: i64,
    frsize: i64,
    flags: i64,
    spare: [i64; 4],
}

const _: () = assert!(core::mem::size_of::<Statfs>() == 120);

/// `statfs(path, buf)` (`path` given) and `fstatfs(fd, buf)`: tmpfs's
/// magic for the file systems in RAM, whose size is half of RAM (tmpfs's
/// default) and whose free blocks are the free frames; `PROC_SUPER_MAGIC`
/// for `/proc`; the initrd shows as a read-only ramfs.
/// Which file system the directory `path` (without the leading slash) is
/// on, for `statfs`: `/proc`, `/sys` (and `debugfs` at
/// `/sys/kernel/debug`), `/dev`, or the initrd.
fn directory_kind(path: &str) -> u64 {
    match path {
        "proc" => PROC_DEV,
        _ if path.starts_with("proc/") => PROC_DEV,
        "sys/kernel/debug" => DEBUGFS,
        "sys" => SYSFS,
        _ if path.starts_with("sys/") => SYSFS,
        "dev" => DEVTMPFS,
        _ => INITRD_DEV,
    }
}

/// Pseudo device numbers of the file systems `statfs` tells apart beyond
/// the initrd, `/proc` and the files in RAM.
const SYSFS: u64 = 0x100;
const DEBUGFS: u64 = 0x101;
const DEVTMPFS: u64 = 0x102;
/// `SYSFS_MAGIC` and `DEBUGFS_MAGIC`.
const SYSFS_MAGIC: i64 = 0x6265_6572;
const DEBUGFS_MAGIC: i64 = 0x6462_6720;

fn statfs(process: &Process, path: Option<u64>, fd: u64, buf: u64) -> SysResult {
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const ST_RDONLY: i64 = 1;
    const ST_NOSUID: i64 = 2;
    const ST_NODEV: i64 = 4;
    const ST_VALID: i64 = 0x20;
    let dev = match path {
        Some(path) => {
            let name = read_path(path)?;
            let node = match target_at(process, AT_FDCWD as u64, Ok(name), false, true)? {
                Target::Node(node) => node,
                Target::File(_) => return Err(Errno::ENOENT),
            };
            match &node {
                Node::Ram(inode) => inode.dev,
                _ if node.in_proc() => PROC_DEV,
                Node::Sys(_) => SYSFS,
                Node::Device(_) => DEVTMPFS,
                Node::Directory(path) => directory_kind(path),
                _ => INITRD_DEV,
            }
        }
        None => {
            let file = process.state.lock().files.get_any(fd)?;
            let open = file.lock();
            match &open.backing {
                Backing::Ram(inode) | Backing::Directory(Directory { ram: Some(inode), .. }) => inode.dev,
                Backing::Path(Node::Ram(inode)) => inode.dev,
                Backing::Generated { .. } => PROC_DEV,
                Backing::Path(node) if node.in_proc() => PROC_DEV,
                Backing::Directory(directory) => directory_kind(&directory.path),
                Backing::Path(Node::Directory(path)) => directory_kind(path),
                Backing::Device(_) | Backing::Console => DEVTMPFS,
                _ => INITRD_DEV,
            }
        }
    };
    let frames = crate::mem::frames::stats();
    let flags = ST_VALID | ST_NOSUID | ST_NODEV;
    let magic =
        |kind: i64, flags: i64| Statfs { kind, bsize: 4096, namelen: 255, frsize: 4096, flags, ..Statfs::default() };
    let out = if dev == SYSFS {
        magic(SYSFS_MAGIC, flags | ST_RDONLY)
    } else if dev == DEBUGFS {
        magic(DEBUGFS_MAGIC, flags)
    } else if dev == DEVTMPFS {
        // devtmpfs is a tmpfs to statfs, as on Linux.
        magic(ramfs::TMPFS_MAGIC as i64, ST_VALID | ST_NOSUID | ST_RDONLY)
    } else if ramfs::instance(dev).is_some() {
        let total = frames.managed as u64 / 2;
        let free = (frames.free as u64).min(total);
        Statfs {
            kind: ramfs::TMPFS_MAGIC as i64,
            bsize: 4096,
            blocks: total,
            bfree: free,
            bavail: free,
            files: total,
            ffree: free,
            fsid: [dev as i32, 0],
            namelen: NAME_MAX as i64,
            frsize: 4096,
            flags: ST_VALID | ST_NOSUID | ST_NODEV,
            ..Statfs::default()
        }
    } else if dev == PROC_DEV {
        Statfs {
            kind: PROC_SUPER_MAGIC,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            flags: ST_VALID | ST_NOSUID | ST_NODEV,
            ..Statfs::default()
        }
    } else {
        Statfs {
            kind: RAMFS_MAGIC,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            flags: ST_VALID | ST_RDONLY,
            ..Statfs::default()
        }
    };
    copy::write_value(buf, &out)?;
    Ok(0)
}

/// `fsync`, `fdatasync` and `syncfs`: nothing to write back; `EINVAL` for
/// a pipe or the console, as Linux answers for files without `fsync`.
fn fsync(process: &Process, fd: u64) -> SysResult {
    let file = file_of(process, fd)?;
    let open = file.lock();
    match open.backing {
        Backing::Pipe(_) | Backing::Console => Err(Errno::EINVAL),
        _ => Ok(0),
    }
}

/// `chdir(path)`.
fn chdir(process: &Process, path: u64) -> SysResult {
    let name = read_path(path)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let node = resolve(process, &absolute(process, AT_FDCWD as u64, name)?, true)?;
    if !node.is_directory() {
        return Err(Errno::ENOTDIR);
    }
    if let Node::Ram(inode) = &node {
        ram_permission(process, inode, may::EXEC)?;
    }
    process.state.lock().files.cwd = node;
    Ok(0)
}

/// `fchdir(fd)`: an open directory, or an `O_PATH` handle of one.
fn fchdir(process: &Process, fd: u64) -> SysResult {
    let file = process.state.lock().files.get_any(fd)?;
    let node = match &file.lock().backing {
        Backing::Directory(Directory { ram: Some(inode), .. }) => Node::Ram(inode.clone()),
        Backing::Directory(directory) => Node::Directory(directory.path.clone()),
        Backing::Path(node) if node.is_directory() => node.clone(),
        _ => return Err(Errno::ENOTDIR),
    };
    process.state.lock().files.cwd = node;
    Ok(0)
}

/// `getcwd(buf, size)`: the path and its NUL; `ERANGE` when it does not
/// fit, `ENOENT` when the directory was removed.
fn getcwd(process: &Process, buf: u64, size: u64) -> SysResult {
    let cwd = process.state.lock().files.cwd.clone();
    let mut path = alloc::format!("/{}", directory_path(&cwd)?);
    path.push('\0');
    if (size as usize) < path.len() {
        return Err(Errno::ERANGE);
    }
    copy::write(buf, path.as_bytes())?;
    Ok(path.len() as u64)
}

/// `memfd_create(name, flags)`: a file in RAM with no name in any
/// directory, open read-write. `MFD_CLOEXEC` and `MFD_ALLOW_SEALING` are
/// known (seals themselves are not kept: `F_ADD_SEALS` is `EINVAL`);
/// `MFD_HUGETLB` and unknown flags are `EINVAL`; a name longer than 249
/// bytes is `EINVAL`.
fn memfd_create(process: &Process, name: u64, flags: u64) -> SysResult {
    const MFD_CLOEXEC: u64 = 1;
    const MFD_ALLOW_SEALING: u64 = 2;
    const NAME_MAX_MEMFD: usize = NAME_MAX - "memfd:".len();
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = copy::read_string(name, NAME_MAX_MEMFD).map_err(|error| match error {
        Errno::ENAMETOOLONG => Errno::EINVAL,
        other => other,
    })?;
    let limit = nofile_limit(process);
    process.state.lock().files.lowest_free(0, limit)?;
    let inode = ramfs::memfd_instance().new_inode(mode::REGULAR | 0o777, 0, 0, Body::File(Mutex::default()));
    inode.meta.lock().nlink = 0;
    let open_flags = if flags & MFD_CLOEXEC != 0 { super::fdtable::flags::O_CLOEXEC } else { 0 };
    // Linux names it `memfd:NAME` (`/proc/self/fd` and `/proc/self/maps`
    // show `/memfd:NAME (deleted)`).
    let path = alloc::format!("/memfd:{}", alloc::string::String::from_utf8_lossy(&name));
    install_named(process, Backing::Ram(inode), O_RDWR | O_LARGEFILE, open_flags, limit, Some(path))
}
