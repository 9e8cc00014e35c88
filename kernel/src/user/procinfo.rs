//! The `/proc` files about a process and the machine besides its memory
//! (which is [`super::proc`]'s), in Linux 6.1's formats, made when opened:
//!
//! - `/proc/self/stat` (`do_task_stat`): the 52 fields, true where the
//!   kernel keeps the value: the pid, `comm` (the program's file name, 15
//!   bytes at most), the state (`R`: the reader is running), the parent,
//!   group and session, `minflt` (the faults the space handled), the
//!   priority (20) and nice value (0), the threads, the start time (clock
//!   ticks of 1/100 s since boot), `vsize` (bytes) and `rss` (pages),
//!   `rsslim` (`RLIMIT_RSS`), the pending, blocked, ignored and caught
//!   signals (the low 31 bits, as Linux shows them), the exit signal, the
//!   CPU, the start of the heap. Zero for what the kernel does not keep:
//!   `tty_nr` (and -1 for `tpgid`), `flags`, the children's and the major
//!   faults, `utime`/`stime` and the children's, the code, stack, data,
//!   argument and environment addresses, and the scheduling details.
//! - `/proc/self/cmdline`: the arguments, each followed by a NUL.
//! - `/proc/self/oom_score_adj`: 0 to begin with; a write of a number in
//!   -1000..=1000 (a newline after it allowed) is kept, and inherited by a
//!   forked child; anything else is `EINVAL`. No memory is ever reclaimed
//!   by killing a process here, so the value changes nothing.
//! - `/proc/self/mounts` and `/proc/mounts`: the file systems, built in and
//!   mounted at boot ([`MOUNTS`]).
//! - `/proc/cpuinfo`: a block per CPU brought up, from `cpuid` on the CPU
//!   reading it (the CPUs of one machine are alike).
//! - The sysctls `kernel/pid_max` (4194304: pids are never reused before
//!   that many), `kernel/core_pattern` (`core`; no core is ever written)
//!   and `vm/overcommit_memory` (0, the heuristic Linux's default names:
//!   memory is given until the frames run out).

use super::errno::Errno;
use super::process::Process;
use crate::address_space::paging_of;
use crate::fs::ramfs;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::x86_64::{__cpuid_count, CpuidResult};
use core::fmt::Write;
use core::sync::atomic::Ordering;

/// Clock ticks a second (`USER_HZ`), the unit of `stat`'s times.
const USER_HZ: u64 = 100;
/// `RLIMIT_RSS`.
const RLIMIT_RSS: usize = 5;

/// The command name Linux keeps for a program (`comm`): its file name, cut
/// to 15 bytes, or what `PR_SET_NAME` set.
pub fn comm(process: &Process) -> String {
    String::from_utf8_lossy(&super::process::comm(process)).into_owned()
}

/// `/proc/self/stat` of `process`, the caller.
pub fn stat(process: &Process) -> Vec<u8> {
    const SIG_IGN: u64 = 1;
    let minflt = paging_of(&process.space.lock()).map_or(0, |paging| paging.counters().faults_handled);
    let (resident, vsize, _) = super::proc::memory_sizes(process);
    let rss = resident / 4096;
    let (ppid, pgrp, session, pending, blocked, ignored, caught, rsslim, exit_signal, start_brk) = {
        let state = process.state.lock();
        let mut ignored = 0u64;
        let mut caught = 0u64;
        for (index, action) in state.actions.iter().enumerate() {
            match action.handler {
                0 => {}
                SIG_IGN => ignored |= 1 << index,
                _ => caught |= 1 << index,
            }
        }
        (
            state.parent,
            state.signal_extras.pgid,
            state.signal_extras.sid,
            state.pending,
            state.mask(),
            ignored,
            caught,
            state.rlimits[RLIMIT_RSS].cur,
            state.exit_signal,
            state.brk_start,
        )
    };
    let low = |set: u64| set & 0x7fff_ffff;
    let threads = process.thread_count();
    let start = process.started / (1_000_000_000 / USER_HZ);
    let cpu = crate::percpu::current().id;
    let mut out = String::new();
    let _ = write!(out, "{} ({}) R {ppid} {pgrp} {session} 0 -1 0 {minflt} 0 0 0", process.pid, comm(process));
    let _ = write!(out, " 0 0 0 0 20 0 {threads} 0 {start} {vsize} {rss} {rsslim} 0 0 0 0 0");
    let _ = write!(out, " {} {} {} {} 0 0 0", low(pending), low(blocked), low(ignored), low(caught));
    let _ = writeln!(out, " {exit_signal} {cpu} 0 0 0 0 0 0 0 {start_brk} 0 0 0 0 0");
    out.into_bytes()
}

/// `/proc/self/cmdline` of `process`.
pub fn cmdline(process: &Process) -> Vec<u8> {
    process.cmdline.clone()
}

/// `/proc/self/oom_score_adj` of `process`.
pub fn oom_score_adj(process: &Process) -> Vec<u8> {
    alloc::format!("{}\n", process.oom_score_adj.load(Ordering::Relaxed)).into_bytes()
}

/// A write of `bytes` (the first 12 bytes of what the program wrote) to
/// `/proc/self/oom_score_adj`: Linux's `oom_score_adj_write`, a number as
/// `kstrtoint` reads it (base 0: `0x` hexadecimal, a leading `0` octal),
/// spaces around it allowed, in -1000..=1000; otherwise `EINVAL`.
pub fn write_oom_score_adj(process: &Process, bytes: &[u8]) -> Result<(), Errno> {
    let end = bytes.iter().position(|&byte| byte == 0).unwrap_or(bytes.len());
    let text = core::str::from_utf8(&bytes[..end]).map_err(|_| Errno::EINVAL)?.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => (16, hex),
        None if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        None => (10, digits),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(Errno::EINVAL);
    }
    let magnitude = i64::from_str_radix(digits, radix).map_err(|_| Errno::EINVAL)?;
    let value = if negative { -magnitude } else { magnitude };
    if !(-1000..=1000).contains(&value) {
        return Err(Errno::EINVAL);
    }
    process.oom_score_adj.store(value as i32, Ordering::Relaxed);
    Ok(())
}

/// One mounted file system: what `/proc/mounts` shows of it.
#[derive(Clone, Copy, Debug)]
pub struct Mount {
    /// The source (`proc`, `tmpfs`, ...).
    pub source: &'static str,
    /// Where it is mounted, without the leading slash (`""`: the root).
    pub point: &'static str,
    /// Its type.
    pub kind: &'static str,
    /// Its options, as Linux lists them.
    pub options: &'static str,
}

/// The file systems mounted, in the order they were: the initrd at the
/// root (read-only), `/proc`, `/sys` (read-only here), `/dev`, and the
/// file systems in RAM ([`ramfs::mounted`]).
pub fn mounts_table() -> Vec<Mount> {
    let mut mounts = alloc::vec![
        Mount { source: "rootfs", point: "", kind: "rootfs", options: "ro" },
        Mount { source: "proc", point: "proc", kind: "proc", options: "rw,nosuid,nodev,noexec,relatime" },
        Mount { source: "sysfs", point: "sys", kind: "sysfs", options: "ro,nosuid,nodev,noexec,relatime" },
        Mount { source: "devtmpfs", point: "dev", kind: "devtmpfs", options: "ro,nosuid,relatime,mode=755" },
        Mount {
            source: "debugfs",
            point: "sys/kernel/debug",
            kind: "debugfs",
            options: "rw,nosuid,nodev,noexec,relatime"
        },
    ];
    for (point, _) in ramfs::mounted() {
        mounts.push(Mount { source: "tmpfs", point, kind: "tmpfs", options: "rw,nosuid,nodev" });
    }
    mounts
}

/// `/proc/self/mounts` (and `/proc/mounts`): a line per mount, Linux's
/// `show_vfsmnt`.
pub fn mounts() -> Vec<u8> {
    let mut out = String::new();
    for mount in mounts_table() {
        let _ = writeln!(out, "{} /{} {} {} 0 0", mount.source, mount.point, mount.kind, mount.options);
    }
    out.into_bytes()
}

/// `/proc/version`: in Linux's form (`SYSNAME version RELEASE (BUILDER)
/// (COMPILER) VERSION`), with `uname`'s names.
pub fn version() -> Vec<u8> {
    b"Nacre version 6.1.0-nacre (nacre@nacre) (rustc) #1 SMP\n".to_vec()
}

/// `/proc/interrupts`, in Linux's layout: a column per CPU, and the rows
/// Nacre counts: `LOC` (local APIC timer ticks) and `TLB` (TLB shootdown
/// requests serviced, as Linux counts its TLB IPIs received).
pub fn interrupts() -> Vec<u8> {
    let cpus: Vec<&crate::percpu::PerCpu> = crate::percpu::all_cpus().collect();
    let mut out = alloc::string::String::from("    ");
    for cpu in &cpus {
        let _ = write!(out, "       CPU{:<3}", cpu.id);
    }
    out.push('\n');
    let mut row = |name: &str, what: &str, value: &dyn Fn(&crate::percpu::PerCpu) -> u64| {
        let _ = write!(out, "{name:>3}:");
        for cpu in &cpus {
            let _ = write!(out, " {:>10}", value(cpu));
        }
        let _ = writeln!(out, "   {what}");
    };
    row("LOC", "Local timer interrupts", &|cpu| cpu.timer_ticks.load(core::sync::atomic::Ordering::Relaxed));
    row("TLB", "TLB shootdowns", &|cpu| {
        crate::tlb::counters(cpu.id).shootdowns_received.load(core::sync::atomic::Ordering::Relaxed)
    });
    out.into_bytes()
}

/// `/proc/cmdline`: the kernel's command line and a newline.
pub fn kernel_cmdline() -> Vec<u8> {
    let mut out = alloc::string::String::from(crate::boot_info::get().command_line());
    out.push('\n');
    out.into_bytes()
}

/// `/proc/sys/kernel/pid_max`.
pub fn pid_max() -> Vec<u8> {
    b"4194304\n".to_vec()
}

/// `/proc/sys/kernel/core_pattern`.
pub fn core_pattern() -> Vec<u8> {
    b"core\n".to_vec()
}

/// `/proc/sys/vm/overcommit_memory`.
pub fn overcommit_memory() -> Vec<u8> {
    b"0\n".to_vec()
}

fn cpuid(leaf: u32) -> CpuidResult {
    __cpuid_count(leaf, 0)
}

/// The `cpuid` feature bits Linux names in `flags`, as (register of
/// [`feature_words`], bit, name), in Linux's order (`cpufeatures.h`).
const FLAGS: &[(usize, u32, &str)] = &[
    (0, 0, "fpu"),
    (0, 1, "vme"),
    (0, 2, "de"),
    (0, 3, "pse"),
    (0, 4, "tsc"),
    (0, 5, "msr"),
    (0, 6, "pae"),
    (0, 7, "mce"),
    (0, 8, "cx8"),
    (0, 9, "apic"),
    (0, 11, "sep"),
    (0, 12, "mtrr"),
    (0, 13, "pge"),
    (0, 14, "mca"),
    (0, 15, "cmov"),
    (0, 16, "pat"),
    (0, 17, "pse36"),
    (0, 19, "clflush"),
    (0, 23, "mmx"),
    (0, 24, "fxsr"),
    (0, 25, "sse"),
    (0, 26, "sse2"),
    (0, 27, "ss"),
    (0, 28, "ht"),
    (2, 11, "syscall"),
    (2, 20, "nx"),
    (2, 22, "mmxext"),
    (2, 25, "fxsr_opt"),
    (2, 26, "pdpe1gb"),
    (2, 27, "rdtscp"),
    (2, 29, "lm"),
    (1, 0, "pni"),
    (1, 1, "pclmulqdq"),
    (1, 9, "ssse3"),
    (1, 12, "fma"),
    (1, 13, "cx16"),
    (1, 17, "pcid"),
    (1, 19, "sse4_1"),
    (1, 20, "sse4_2"),
    (1, 21, "x2apic"),
    (1, 22, "movbe"),
    (1, 23, "popcnt"),
    (1, 24, "tsc_deadline_timer"),
    (1, 25, "aes"),
    (1, 26, "xsave"),
    (1, 28, "avx"),
    (1, 29, "f16c"),
    (1, 30, "rdrand"),
    (1, 31, "hypervisor"),
    (3, 0, "lahf_lm"),
    (3, 1, "cmp_legacy"),
    (3, 2, "svm"),
    (3, 5, "abm"),
    (3, 6, "sse4a"),
    (3, 8, "3dnowprefetch"),
    (4, 0, "fsgsbase"),
    (4, 3, "bmi1"),
    (4, 5, "avx2"),
    (4, 7, "smep"),
    (4, 8, "bmi2"),
    (4, 9, "erms"),
    (4, 10, "invpcid"),
    (4, 16, "avx512f"),
    (4, 18, "rdseed"),
    (4, 19, "adx"),
    (4, 20, "smap"),
    (4, 23, "clflushopt"),
    (4, 29, "sha_ni"),
    (5, 2, "umip"),
    (5, 3, "pku"),
    (5, 16, "la57"),
    (5, 22, "rdpid"),
];

/// The feature registers [`FLAGS`] reads: leaf 1 EDX and ECX, leaf
/// 0x80000001 EDX and ECX, leaf 7 EBX and ECX.
fn feature_words() -> [u32; 6] {
    let max = cpuid(0).eax;
    let max_extended = cpuid(0x8000_0000).eax;
    let leaf1 = cpuid(1);
    let extended = if max_extended >= 0x8000_0001 { cpuid(0x8000_0001) } else { cpuid_zero() };
    let leaf7 = if max >= 7 { cpuid(7) } else { cpuid_zero() };
    [leaf1.edx, leaf1.ecx, extended.edx, extended.ecx, leaf7.ebx, leaf7.ecx]
}

fn cpuid_zero() -> CpuidResult {
    CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 }
}

/// The ASCII of `registers`, in order, without trailing NULs and spaces
/// before or after.
fn text_of(registers: &[u32]) -> String {
    let bytes: Vec<u8> = registers.iter().flat_map(|register| register.to_le_bytes()).collect();
    String::from_utf8_lossy(&bytes).trim_matches(|c: char| c == '\0' || c == ' ').into()
}

/// `/proc/cpuinfo`: Linux's `show_cpuinfo` lines for each CPU brought up.
pub fn cpuinfo() -> Vec<u8> {
    let leaf0 = cpuid(0);
    let vendor = text_of(&[leaf0.ebx, leaf0.edx, leaf0.ecx]);
    let leaf1 = cpuid(1);
    let base_family = (leaf1.eax >> 8) & 0xf;
    let family = if base_family == 0xf { base_family + ((leaf1.eax >> 20) & 0xff) } else { base_family };
    let model =
        if base_family >= 6 { (leaf1.eax >> 4) & 0xf | ((leaf1.eax >> 16) & 0xf) << 4 } else { (leaf1.eax >> 4) & 0xf };
    let stepping = leaf1.eax & 0xf;
    let max_extended = cpuid(0x8000_0000).eax;
    let name = if max_extended >= 0x8000_0004 {
        let parts = [cpuid(0x8000_0002), cpuid(0x8000_0003), cpuid(0x8000_0004)];
        text_of(&parts.iter().flat_map(|part| [part.eax, part.ebx, part.ecx, part.edx]).collect::<Vec<_>>())
    } else {
        String::from("unknown")
    };
    let (physical, virtual_bits) = if max_extended >= 0x8000_0008 {
        let sizes = cpuid(0x8000_0008).eax;
        (sizes & 0xff, (sizes >> 8) & 0xff)
    } else {
        (36, 48)
    };
    let words = feature_words();
    let mut flags = String::new();
    for &(word, bit, flag) in FLAGS {
        if words[word] & (1 << bit) != 0 {
            if !flags.is_empty() {
                flags.push(' ');
            }
            flags.push_str(flag);
        }
    }
    let khz = crate::arch::tsc::ticks_per_ms();
    let cpus: Vec<_> = crate::percpu::all_cpus().collect();
    let clflush = ((leaf1.ebx >> 8) & 0xff) * 8;
    let mut out = String::new();
    for cpu in &cpus {
        let _ = writeln!(out, "processor\t: {}", cpu.id);
        let _ = writeln!(out, "vendor_id\t: {vendor}");
        let _ = writeln!(out, "cpu family\t: {family}");
        let _ = writeln!(out, "model\t\t: {model}");
        let _ = writeln!(out, "model name\t: {name}");
        let _ = writeln!(out, "stepping\t: {stepping}");
        let _ = writeln!(out, "cpu MHz\t\t: {}.{:03}", khz / 1000, khz % 1000);
        let _ = writeln!(out, "physical id\t: 0");
        let _ = writeln!(out, "siblings\t: {}", cpus.len());
        let _ = writeln!(out, "core id\t\t: {}", cpu.id);
        let _ = writeln!(out, "cpu cores\t: {}", cpus.len());
        let _ = writeln!(out, "apicid\t\t: {}", cpu.apic_id.load(Ordering::Relaxed));
        let _ = writeln!(out, "fpu\t\t: yes");
        let _ = writeln!(out, "fpu_exception\t: yes");
        let _ = writeln!(out, "cpuid level\t: {}", leaf0.eax);
        let _ = writeln!(out, "wp\t\t: yes");
        let _ = writeln!(out, "flags\t\t: {flags}");
        let _ = writeln!(out, "bogomips\t: {}.{:02}", khz / 500, (khz / 5) % 100);
        let _ = writeln!(out, "clflush size\t: {clflush}");
        let _ = writeln!(out, "cache_alignment\t: {clflush}");
        let _ = writeln!(out, "address sizes\t: {physical} bits physical, {virtual_bits} bits virtual");
        let _ = writeln!(out, "power management:");
        let _ = writeln!(out);
    }
    out.into_bytes()
}
