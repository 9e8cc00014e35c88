//! `cargo xtask syscalls [--write]`: the table of docs/syscalls.md, made
//! from the kernel's own sources, so that the page cannot drift from the
//! code: every number a `mod nr { pub const NAME: u64 = N; }` block of
//! `kernel/src/user/*.rs` names is served (by that file); every other
//! number Linux 6.1 has (the name list in `kernel/src/user/misc.rs`) is
//! `ENOSYS`, with the reason of its group ([`REASONS`]). `cargo xtask test`
//! checks that the page is what this makes; `--write` rewrites it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Why the calls Nacre does not serve are `ENOSYS`, by name: the first
/// group whose list holds the name gives the reason.
const REASONS: &[(&str, &[&str])] = &[
    (
        "C libraries expect `ENOSYS` and fall back (`clone3` to `clone`, `rseq` to nothing)",
        &["clone3", "rseq", "futex_waitv"],
    ),
    (
        "no network: the only sockets are `socketpair`'s",
        &[
            "socket",
            "connect",
            "accept",
            "accept4",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "bind",
            "listen",
            "getsockname",
            "getpeername",
            "setsockopt",
            "getsockopt",
        ],
    ),
    (
        "no waiting on several files at once (`poll`, `select`, `epoll`) and no event files",
        &[
            "poll",
            "select",
            "pselect6",
            "ppoll",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_ctl_old",
            "epoll_wait_old",
            "eventfd",
            "eventfd2",
            "signalfd",
            "signalfd4",
            "timerfd_create",
            "timerfd_settime",
            "timerfd_gettime",
            "inotify_init",
            "inotify_init1",
            "inotify_add_watch",
            "inotify_rm_watch",
            "fanotify_init",
            "fanotify_mark",
        ],
    ),
    (
        "no System V IPC and no POSIX message queues",
        &[
            "shmget",
            "shmat",
            "shmctl",
            "shmdt",
            "semget",
            "semop",
            "semctl",
            "semtimedop",
            "msgget",
            "msgsnd",
            "msgrcv",
            "msgctl",
            "mq_open",
            "mq_unlink",
            "mq_timedsend",
            "mq_timedreceive",
            "mq_notify",
            "mq_getsetattr",
        ],
    ),
    (
        "no asynchronous I/O",
        &[
            "io_setup",
            "io_destroy",
            "io_getevents",
            "io_submit",
            "io_cancel",
            "io_pgetevents",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ],
    ),
    (
        "no extended attributes, no file handles, no locks beyond `fcntl`'s",
        &[
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "getxattr",
            "lgetxattr",
            "fgetxattr",
            "listxattr",
            "llistxattr",
            "flistxattr",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
            "name_to_handle_at",
            "open_by_handle_at",
            "flock",
        ],
    ),
    (
        "file calls the RAM file system does not offer yet",
        &[
            "mknod",
            "mknodat",
            "utime",
            "utimes",
            "futimesat",
            "fallocate",
            "sendfile",
            "splice",
            "tee",
            "vmsplice",
            "copy_file_range",
            "sync_file_range",
            "readahead",
            "fadvise64",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "getdents",
            "openat2",
            "close_range",
            "faccessat",
            "fchownat",
            "linkat",
            "renameat",
            "execveat",
            "chroot",
            "pivot_root",
            "ustat",
            "sysfs",
            "quotactl",
            "quotactl_fd",
            "syncfs",
            "mount_setattr",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
        ],
    ),
    (
        "scheduling policies and priorities are not kept (one round-robin class)",
        &[
            "getpriority",
            "setpriority",
            "sched_setparam",
            "sched_getparam",
            "sched_setscheduler",
            "sched_getscheduler",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_rr_get_interval",
            "sched_setattr",
            "sched_getattr",
            "ioprio_set",
            "ioprio_get",
        ],
    ),
    (
        "memory policy, NUMA, protection keys and process memory access are not offered",
        &[
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "migrate_pages",
            "move_pages",
            "set_mempolicy_home_node",
            "pkey_alloc",
            "pkey_free",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "process_mrelease",
            "memfd_secret",
            "userfaultfd",
            "remap_file_pages",
            "membarrier",
        ],
    ),
    (
        "the machine and the kernel are not administered from user space",
        &[
            "iopl",
            "ioperm",
            "modify_ldt",
            "swapon",
            "swapoff",
            "sethostname",
            "setdomainname",
            "settimeofday",
            "clock_settime",
            "adjtimex",
            "clock_adjtime",
            "acct",
            "syslog",
            "vhangup",
            "create_module",
            "init_module",
            "finit_module",
            "delete_module",
            "get_kernel_syms",
            "query_module",
            "kexec_load",
            "kexec_file_load",
            "_sysctl",
            "nfsservctl",
            "lookup_dcookie",
            "perf_event_open",
            "bpf",
            "seccomp",
            "ptrace",
            "kcmp",
            "add_key",
            "request_key",
            "keyctl",
            "landlock_create_ruleset",
            "landlock_add_rule",
            "landlock_restrict_self",
            "personality",
            "uselib",
        ],
    ),
    (
        "no namespaces, no pidfds, no robust-list reads",
        &[
            "unshare",
            "setns",
            "pidfd_open",
            "pidfd_send_signal",
            "pidfd_getfd",
            "get_robust_list",
            "vserver",
            "rt_sigqueueinfo",
            "rt_tgsigqueueinfo",
            "rt_sigtimedwait",
            "rt_sigsuspend",
            "restart_syscall",
        ],
    ),
    (
        "old or unused entries of the table (Linux answers `ENOSYS` too)",
        &["getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "set_thread_area", "get_thread_area"],
    ),
];

/// The served numbers, with the file serving each.
fn served(root: &Path) -> Result<BTreeMap<u64, String>, String> {
    let dir = root.join("kernel/src/user");
    let mut out = BTreeMap::new();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    for path in files {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path.file_name().and_then(|name| name.to_str()).unwrap_or("?").to_string();
        let mut inside = false;
        for line in text.lines() {
            let line = line.trim();
            if line == "mod nr {" || line == "pub mod nr {" {
                inside = true;
                continue;
            }
            if inside && line == "}" {
                inside = false;
                continue;
            }
            if !inside {
                continue;
            }
            let Some(rest) = line.strip_prefix("pub const ") else { continue };
            let Some((_, number)) = rest.split_once(": u64 = ") else { continue };
            let number: u64 =
                number.trim_end_matches(';').parse().map_err(|_| format!("{file}: bad number in {line:?}"))?;
            out.entry(number).or_insert_with(|| file.clone());
        }
    }
    Ok(out)
}

/// Linux 6.1's names by number, from the kernel's own list.
fn names(root: &Path) -> Result<Vec<String>, String> {
    let path = root.join("kernel/src/user/misc.rs");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let start = text.find("const NAMES: &str = concat!(").ok_or("misc.rs: no NAMES list")?;
    let end = start + text[start..].find(");").ok_or("misc.rs: NAMES not closed")?;
    let mut joined = String::new();
    for piece in text[start..end].split('"').skip(1).step_by(2) {
        joined.push_str(piece);
    }
    Ok(joined.split(' ').filter(|name| !name.is_empty()).map(String::from).collect())
}

/// The page docs/syscalls.md.
pub fn page(root: &Path) -> Result<String, String> {
    let served = served(root)?;
    let names = names(root)?;
    let name_of = |number: u64| names.get(number as usize).cloned().unwrap_or_else(|| format!("#{number}"));
    let mut out = String::from(
        "# The system calls\n\n\
         Made by `cargo xtask syscalls --write` from the kernel's sources (each file's `mod nr` block, and the\n\
         Linux 6.1 name list in `kernel/src/user/misc.rs`); `cargo xtask test` checks that this page is what\n\
         the sources make. How each call behaves is in [user-mode.md](user-mode.md). A number nobody serves\n\
         answers `ENOSYS`, counted for the shell's `syscalls`.\n\n",
    );
    out += &format!("## Served: {}\n\n| number | call | file |\n|---:|---|---|\n", served.len());
    for (number, file) in &served {
        out += &format!("| {number} | `{}` | `{file}` |\n", name_of(*number));
    }
    let missing: Vec<(u64, String)> = names
        .iter()
        .enumerate()
        .filter(|(number, name)| *name != "-" && !served.contains_key(&(*number as u64)))
        .map(|(number, name)| (number as u64, name.clone()))
        .collect();
    out += &format!("\n## `ENOSYS`: {}\n\n", missing.len());
    let mut unexplained = Vec::new();
    for (reason, group) in REASONS {
        let here: Vec<String> = missing
            .iter()
            .filter(|(_, name)| group.contains(&name.as_str()))
            .map(|(number, name)| format!("`{name}` ({number})"))
            .collect();
        if !here.is_empty() {
            out += &format!("- {reason}: {}.\n", here.join(", "));
        }
    }
    for (number, name) in &missing {
        if !REASONS.iter().any(|(_, group)| group.contains(&name.as_str())) {
            unexplained.push(format!("`{name}` ({number})"));
        }
    }
    if !unexplained.is_empty() {
        out += &format!("- not done yet: {}.\n", unexplained.join(", "));
    }
    Ok(out)
}

/// `cargo xtask syscalls [--write]`: prints the page, or writes it.
pub fn syscalls(root: &Path, args: &[String]) -> Result<(), String> {
    let text = page(root)?;
    if args.iter().any(|arg| arg == "--write") {
        let path = root.join("docs/syscalls.md");
        fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("xtask: wrote {}", path.display());
    } else {
        print!("{text}");
    }
    Ok(())
}

/// The check of `cargo xtask test`: docs/syscalls.md is what the sources make.
pub fn check(root: &Path) -> Result<(), String> {
    let path = root.join("docs/syscalls.md");
    let written = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if written == page(root)? {
        Ok(())
    } else {
        Err("docs/syscalls.md is not what the kernel's sources make: run cargo xtask syscalls --write".to_string())
    }
}
