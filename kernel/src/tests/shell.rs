//! The kernel shell's command table, driven with scripted commands: every
//! `as` verb's success and refusals, peek and poke through a paging address
//! space as its region is protected, moved and removed, the startup test,
//! and the dispatcher's handling of bad input.

use crate::address_space;
use crate::cmdline::{KernelOptions, ShellTest};
use crate::mem::frames;
use crate::shell::{startup, table, Session};
use crate::{check, check_eq, kernel_test};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::PhysAddr;
use shell::Status;

/// The command table and a session, run one command at a time.
struct Driver {
    commands: shell::Shell<Session>,
    session: Session,
}

impl Driver {
    fn new() -> Driver {
        Driver { commands: table(), session: Session::new("test", true) }
    }

    /// Runs `command`; its status and output.
    fn run(&mut self, command: &str) -> (Status, String) {
        let mut out = String::new();
        let status = self.commands.run_command(&mut self.session, command, &mut out);
        (status, out)
    }

    /// Runs `command`, which must succeed and print `expected` somewhere.
    fn ok(&mut self, command: &str, expected: &str) -> Result<String, String> {
        let (status, out) = self.run(command);
        check!(status == Status::Succeeded, "'{command}' did not succeed ({status:?}): {out:?}");
        check!(out.contains(expected), "'{command}' printed {out:?}, without {expected:?}");
        Ok(out)
    }

    /// Runs `command`, which must fail and print `expected` somewhere.
    fn refused(&mut self, command: &str, expected: &str) -> Result<String, String> {
        let (status, out) = self.run(command);
        check!(status == Status::Failed, "'{command}' did not fail ({status:?}): {out:?}");
        check!(out.contains(expected), "'{command}' printed {out:?}, without {expected:?}");
        Ok(out)
    }
}

/// Puts the running thread back in the default address space and destroys
/// the named address spaces, however the test ends.
struct Cleanup(&'static [&'static str]);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = address_space::move_current_thread(None);
        for name in self.0 {
            let _ = address_space::destroy(name);
        }
    }
}

fn help_and_bad_input() -> Result<(), String> {
    let mut shell = Driver::new();
    let help = shell.ok("help", "peek ADDR [LEN]")?;
    for name in ["echo", "mem", "cpus", "threads", "poke", "asis", "ases", "as", "ptdump", "pagingTest", "shell"] {
        check!(help.lines().any(|line| line.trim_start().starts_with(name)), "help lacks {name}: {help}");
    }
    // `help as` lists every verb, and every flag letter the parser takes.
    let help_as = shell.ok("help as", "'as' alone lists the verbs")?;
    for verb in ["as new IMPL NAME", "as add NAME VA PA LEN FLAGS", "as rm", "as move", "as protect", "as enter"] {
        check!(help_as.contains(verb), "help as lacks {verb}: {help_as}");
    }
    for (letter, _) in aspace::Protection::LETTERS {
        check!(help_as.contains(&format!("    {letter}  ")), "help as does not explain '{letter}': {help_as}");
    }
    shell.refused("help nosuch", "unknown command 'nosuch'")?;
    shell.refused("nosuch 1 2", "unknown command 'nosuch'")?;
    check_eq!(shell.ok("echo a  \"b c\"", "a b c")?, "a b c\n");
    shell.refused("echo \"open", "unterminated quote")?;
    shell.refused("peek", "usage: peek ADDR [LEN]")?;
    shell.refused("peek zz", "bad argument 'zz': not a valid address")?;
    shell.refused("peek 0x1000 3", "a length is 1, 2, 4, or a multiple of 8")?;
    shell.refused("peek 0x1000 8k", "a length is 1, 2, 4, or a multiple of 8")?;
    shell.refused("poke 0x1000 0x100 1", "does not fit in 1 bytes")?;
    shell.refused("poke 0x1000 1 3", "a width is 1, 2, 4 or 8")?;
    shell.refused("exit", "root shell")?;
    shell.refused("ases x", "the only option is 'd'")?;
    shell.refused("as", "as add NAME VA PA LEN FLAGS")?;
    shell.refused("as frob", "no such verb")?;
    shell.refused("as add x 1 2", "usage: as add NAME VA PA LEN FLAGS")?;
    shell.refused("shell \"\"", "a shell name is a non-empty word")?;
    // A page of the boot map the kernel does not use: the low 4 KiB.
    let (status, out) = shell.run("peek 0x0 40");
    check_eq!(status, Status::Succeeded);
    check_eq!(out.lines().count(), 2); // four values a line
    shell.ok("threads", "address space")?;
    shell.ok("cpus", "in force:")?;
    shell.ok("mem", "page-table frames: base ")?;
    Ok(())
}
kernel_test!(help_and_bad_input);

fn as_verbs_succeed_and_refuse() -> Result<(), String> {
    let _cleanup = Cleanup(&["t1"]);
    let mut shell = Driver::new();
    shell.ok("asis", "paging")?;
    shell.refused("as new base b2", "creating another address space")?;
    shell.refused("as new nosuch x", "no address-space implementation named 'nosuch'")?;
    shell.ok("as new paging t1", "created 't1'")?;
    shell.refused("as new paging t1", "an address space named 't1' exists already")?;
    shell.ok("ases", "t1 ")?;

    // Bad numbers, flags and alignment.
    shell.refused("as add t1 zz 0 4k rw", "bad argument 'zz': not a valid virtual address")?;
    shell.refused("as add t1 0x500000000000 0x1000 4q rw", "not a valid length")?;
    shell.refused("as add t1 0x500000000000 0x1000 4k rwq", "unknown flag 'q'")?;
    shell.refused("as add t1 0x500000001001 0 4k rw", "virtual address 0x500000001001 is not a multiple of 0x1000")?;
    shell.refused("as add t1 0x500000000000 0x10 4k rw", "physical address 0x10 is not a multiple")?;
    shell.refused("as add t1 0x500000000000 0 100 rw", "length 0x64 is not a multiple")?;
    shell.refused("as add t1 0x100000000000000 0 4k rw", "not canonical")?;

    // Add, then an overlap that names the region in the way.
    shell.ok("as add t1 0x500000000000 0x200000 16k rwk", "added 0x0000500000000000-0x0000500000003fff")?;
    shell.refused(
        "as add t1 0x500000002000 0 8k rwk",
        "overlaps existing region 0x0000500000000000-0x0000500000003fff",
    )?;
    shell.ok("as add t1 0x500000004000 0 4k rwk", "added")?; // adjacent is fine

    // Remove: no region, misaligned sub-range, sub-range, whole region.
    shell.refused("as rm t1 0x600000000000", "no region contains 0x600000000000")?;
    shell.refused("as rm t1 0x500000000800 4k", "not a multiple of 0x1000")?;
    shell.ok("as rm t1 0x500000001000 4k", "removed 0x0000500000001000-0x0000500000001fff")?;
    let print = shell.ok("as print t1", "3 regions")?;
    check!(print.contains("0x0000500000000000-0x0000500000000fff -> 0x200000"), "{print}");
    check!(print.contains("0x0000500000002000-0x0000500000003fff -> 0x202000"), "{print}");
    shell.ok("as rm t1 0x500000004abc", "removed 0x0000500000004000-0x0000500000004fff")?;

    // Move and protect, whole and part.
    shell.ok("as move t1 0x500000000000 0x300000", "to 0x300000")?;
    shell.ok("as print t1", "0x0000500000000000-0x0000500000000fff -> 0x300000")?;
    shell.refused("as move t1 0x500000000000 0x300001", "physical address 0x300001 is not a multiple")?;
    shell.ok("as protect t1 0x500000003000 rk 4k", "as r")?;
    shell.ok("as print t1", "0x0000500000003000-0x0000500000003fff -> 0x203000 (0x1000 bytes) r---k")?;
    shell.refused(
        "as protect t1 0x500000003000 w",
        "cannot map a page that is writable or executable but not readable",
    )?;

    // Pinned: neither removed nor moved, but protected (which may unpin).
    shell.ok("as add t1 0x510000000000 0x200000 8k rwpk", "added")?;
    shell.refused("as rm t1 0x510000000000", "is pinned")?;
    shell.refused("as move t1 0x510000000000 0x400000", "is pinned")?;
    shell.refused("as rm t1 0x510000001000 4k", "is pinned")?;
    shell.ok("as protect t1 0x510000000000 rwk", "protected")?;
    shell.ok("as rm t1 0x510000000000", "removed")?;

    // The base address space refuses every edit.
    shell.refused("as add base 0x500000000000 0 4k rw", "does not support adding regions")?;
    shell.refused("as rm base 0x1000", "does not support removing regions")?;
    shell.refused("as move base 0x1000 0x2000", "does not support moving regions")?;
    shell.refused("as protect base 0x1000 r", "does not support protecting regions")?;
    shell.refused("as destroy base", "does not support destroy")?;
    shell.refused("as faultsize base 4k", "does not support choosing the lazy-fault page size")?;
    shell.ok("as verify base", "match")?;

    // Unknown names.
    for command in
        ["as print nosuch", "as add nosuch 0 0 4k r", "as enter nosuch", "as destroy nosuch", "ptdump nosuch"]
    {
        shell.refused(command, "no address space named 'nosuch'")?;
    }

    // Paging-only verbs and the dump.
    shell.ok("as verify t1", "the page tables match the regions")?;
    shell.ok("as faultsize t1 2m", "at most 2M")?;
    shell.refused("as faultsize t1 3m", "a page size is 4k, 2m or 1g")?;
    shell.ok("ptdump base 0x1000", "1 run\n")?;
    shell.ok("ptdump base", "x 1G")?;
    shell.refused("ptdump base 0x1000 0", "length is zero")?;
    shell.ok("ases d", "0x0000500000002000-0x0000500000002fff")?;

    // Entering a space that lacks the kernel is refused, naming what is missing.
    let before = crate::thread::current_address_space();
    shell.refused("as enter t1", "must stay mapped to its own memory")?;
    check_eq!(crate::thread::current_address_space(), before);

    shell.ok("as destroy t1", "destroyed 't1'")?;
    shell.refused("as print t1", "no address space named 't1'")?;
    Ok(())
}
kernel_test!(as_verbs_succeed_and_refuse);

fn destroy_is_refused_while_a_thread_is_inside() -> Result<(), String> {
    let _cleanup = Cleanup(&["t2"]);
    let mut shell = Driver::new();
    shell.ok("as new paging t2", "created")?;
    shell.ok("as add t2 0 0 4g rwxpke", "added")?;
    shell.ok("as kernel t2", "added the kernel half to 't2'")?;
    shell.ok("as enter t2", "now in 't2'")?;
    let me = crate::thread::current().id().0;
    let listing = shell.ok("ases", "t2")?;
    let t2_line = listing.lines().find(|line| line.starts_with("t2 ")).ok_or("no t2 line")?;
    check!(t2_line.contains(&format!("{me} ")), "t2 does not list thread {me}: {t2_line}");
    shell.ok("threads", "t2")?;
    shell.refused("as destroy t2", "busy")?;
    shell.refused("as rm t2 0", "is pinned")?;
    shell.ok("as leave", "default address space")?;
    shell.ok("as destroy t2", "destroyed 't2'")?;
    Ok(())
}
kernel_test!(destroy_is_refused_while_a_thread_is_inside);

fn peek_and_poke_follow_every_edit() -> Result<(), String> {
    const VA: u64 = 0x5000_0000_0000;
    let mut owned: Vec<PhysAddr> = Vec::new();
    for _ in 0..2 {
        owned.push(frames::alloc_zeroed().ok_or("no free frame")?);
    }
    let result = peek_and_poke_steps(VA, owned[0].as_u64(), owned[1].as_u64());
    for frame in owned {
        let _ = frames::free(frame);
    }
    result
}
kernel_test!(peek_and_poke_follow_every_edit);

fn peek_and_poke_steps(va: u64, first: u64, second: u64) -> Result<(), String> {
    let _cleanup = Cleanup(&["t3"]);
    // SAFETY: both frames were just allocated for this test; the direct map
    // reaches them in every space.
    let cell =
        |frame: u64| unsafe { &*(crate::direct_map::phys_to_virt(frame) as *const core::sync::atomic::AtomicU64) };
    cell(first).store(0x1111, core::sync::atomic::Ordering::SeqCst);
    cell(second).store(0x2222, core::sync::atomic::Ordering::SeqCst);

    let mut shell = Driver::new();
    shell.ok("as new paging t3", "created")?;
    shell.ok("as add t3 0 0 4g rwxpke", "added")?;
    shell.ok("as kernel t3", "added the kernel half to 't3'")?;
    shell.ok("as enter t3", "now in 't3'")?;
    let fault = shell.refused(&format!("peek {va:#x}"), &format!("page fault at {va:#x}: 0x0 [not-present read"))?;
    check!(fault.starts_with("peek: page fault"), "{fault:?}");

    shell.ok(&format!("as add t3 {va:#x} {first:#x} 4k rwk"), "added")?;
    shell.ok(&format!("peek {va:#x}"), "0x0000000000001111")?;
    shell.ok(&format!("ptdump t3 {va:#x}"), &format!("1 x 4K rw- kernel -> {first:#x}"))?;
    shell.ok(&format!("poke {va:#x} 0x3333"), "<- 0x3333")?;
    check_eq!(cell(first).load(core::sync::atomic::Ordering::SeqCst), 0x3333);

    shell.ok(&format!("as protect t3 {va:#x} rk"), "protected")?;
    shell.ok(&format!("peek {va:#x}"), "0x0000000000003333")?;
    shell.refused(&format!("poke {va:#x} 0x4444"), "protection-violation write")?;
    check_eq!(cell(first).load(core::sync::atomic::Ordering::SeqCst), 0x3333);

    shell.ok(&format!("as move t3 {va:#x} {second:#x}"), "moved")?;
    shell.ok(&format!("peek {va:#x}"), "0x0000000000002222")?;
    shell.ok("as verify t3", "match")?;

    shell.ok(&format!("as rm t3 {va:#x}"), "removed")?;
    shell.refused(&format!("peek {va:#x}"), "not-present read")?;
    shell.ok("as leave", "default")?;
    shell.ok("as destroy t3", "destroyed")?;
    Ok(())
}

fn startup_test_compares_through_the_lazy_alias() -> Result<(), String> {
    let _cleanup = Cleanup(&["startup-test"]);
    let mut out = String::new();
    let outcome = startup::run("startup-test", ShellTest::Quick, &mut out);
    check!(!outcome.failed, "the startup test failed: {out}");
    let space = outcome.space.ok_or("no address space was made")?;
    check_eq!(crate::thread::current_address_space(), Some(space.id()));
    check!(out.contains("added the kernel half and the hardened identity map of 0-0xffffffff"), "{out}");
    // One fault per 4 KiB page compared, the guard pages (unmapped) skipped.
    let compared = startup::COMPARED_START..startup::COMPARED_START + startup::QUICK_COMPARED_LEN;
    let guards = startup::direct_map_guard_pages(compared.start, compared.end).len();
    let faults = 1024 - guards;
    let expected = format!(
        "equal ({guards} guard pages skipped); {faults} faults handled, 0 x 1 GiB + 0 x 2 MiB + {faults} x 4 KiB pages mapped"
    );
    check!(out.contains(&expected), "expected {expected:?} in:\n{out}");

    let mut out = String::new();
    check!(startup::run("startup-off", ShellTest::Off, &mut out).space.is_none());
    check!(address_space::find("startup-off").is_err());
    Ok(())
}
kernel_test!(startup_test_compares_through_the_lazy_alias);

fn shelltest_option() -> Result<(), String> {
    check_eq!(KernelOptions::parse("", |_| {}).shell_test, ShellTest::Quick);
    check_eq!(KernelOptions::parse("shelltest=4k script=shelltest=off", |_| {}).shell_test, ShellTest::Small4K);
    check_eq!(KernelOptions::parse("shelltest=large", |_| {}).shell_test, ShellTest::Large);
    check_eq!(KernelOptions::parse("shelltest=off", |_| {}).shell_test, ShellTest::Off);
    let mut unknown = Vec::new();
    KernelOptions::parse("shelltest=huge", |word| unknown.push(word.0));
    check_eq!(unknown, ["shelltest=huge"]);
    Ok(())
}
kernel_test!(shelltest_option);

/// `runall`'s arguments: bad ones are refused before anything runs; a
/// folder with no files fails; a folder of files that are no programs gives
/// a FAIL line for each and the summary.
fn runall_arguments() -> Result<(), String> {
    let mut driver = Driver::new();
    driver.refused("runall", "runall [-t SECS] DIR")?;
    driver.refused("runall -t", "expected DIR or -t SECS DIR")?;
    driver.refused("runall -t 5", "expected DIR or -t SECS DIR")?;
    driver.refused("runall -t 0 /bin", "seconds from 1 to 86400")?;
    driver.refused("runall -t 86401 /bin", "seconds from 1 to 86400")?;
    driver.refused("runall -t 1x /bin", "seconds from 1 to 86400")?;
    driver.refused("runall -x 5 /bin", "the only option is -t SECS")?;
    driver.refused("runall /", "name a folder of the initrd")?;
    driver.refused("runall /bin /etc", "expected DIR or -t SECS DIR")?;
    driver.refused("runall /no-such-folder", "no files in /no-such-folder")?;
    // The test boot's initrd: /etc holds group and passwd, which are text.
    let out = driver.refused("runall -t 5 /etc/", "0 passed, 2 failed")?;
    let group = out.find("FAIL group (cannot run:").ok_or(format!("no FAIL line for group: {out}"))?;
    let passwd = out.find("FAIL passwd (cannot run:").ok_or(format!("no FAIL line for passwd: {out}"))?;
    check!(group < passwd, "not in name order: {out}");
    Ok(())
}
kernel_test!(runall_arguments);
