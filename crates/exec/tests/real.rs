//! Real executables: small C programs compiled with `gcc -static` and
//! `-static-pie`, planned and checked against what `readelf -l` reports; and
//! one run under the host's Linux, which prints its own initial stack, to
//! check the stack image against Linux's.
//!
//! Skipped, with a note, when `gcc` or `readelf` is missing.

mod common;

use common::*;
use exec::auxv::*;
use exec::{AuxValues, ExecError, ExecutableKind, LoadParams, LoadPlan, Prot, StackImage, StackRequest};
use std::path::{Path, PathBuf};
use std::process::Command;

const PARAMS: LoadParams = LoadParams::LINUX_4LEVEL;

/// A C program that prints where Linux put its arguments, environment and
/// auxiliary vector, reading them off its initial stack.
const STACK_PRINTER: &str = r#"
#include <stdio.h>
static char bss[1 << 20];
int main(int argc, char **argv, char **envp) {
    printf("rsp %lx\n", (unsigned long)(argv - 1));
    for (int i = 0; i < argc; i++) printf("argv %lx\n", (unsigned long)argv[i]);
    char **e = envp;
    for (; *e; e++) printf("envp %lx\n", (unsigned long)*e);
    for (unsigned long *aux = (unsigned long *)(e + 1);; aux += 2) {
        printf("aux %lu %lx\n", aux[0], aux[1]);
        if (aux[0] == 0) break;
    }
    bss[argc] = 1;
    return bss[0];
}
"#;

/// A program without the C library: writes and exits by system calls.
const TINY: &str = r#"
static const char msg[] = "hi\n";
static char buf[8192];
void _start(void) {
    long r;
    buf[0] = 1;
    __asm__ volatile("syscall" : "=a"(r) : "a"(1), "D"(1), "S"(msg), "d"(3) : "rcx", "r11", "memory");
    __asm__ volatile("syscall" :: "a"(60), "D"(buf[0] - 1));
    for (;;) {}
}
"#;

fn tools_present() -> bool {
    let present = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success());
    if present("gcc") && present("readelf") {
        true
    } else {
        println!("note: gcc or readelf is missing; the real-executable tests are skipped");
        false
    }
}

/// A fresh directory for one test's files.
fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("exec-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `source` with `flags` into `dir/name`.
fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("gcc").args(flags).arg("-O1").arg("-o").arg(&out).arg(&c).status().unwrap();
    assert!(status.success(), "gcc {flags:?} failed for {name}");
    out
}

/// A PT_LOAD or other header as `readelf -lW` prints it.
#[derive(Debug)]
struct Listed {
    kind: String,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    prot: Prot,
}

#[derive(Debug)]
struct ReadElf {
    file_type: String,
    entry: u64,
    phnum: u64,
    phoff: u64,
    headers: Vec<Listed>,
}

fn hex(word: &str) -> u64 {
    u64::from_str_radix(word.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("not hex: {word}"))
}

/// Runs `readelf -lW` and reads its report.
fn readelf(path: &Path) -> ReadElf {
    let out = Command::new("readelf").env("LC_ALL", "C").arg("-lW").arg(path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut report = ReadElf { file_type: String::new(), entry: 0, phnum: 0, phoff: 0, headers: Vec::new() };
    let mut in_table = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) = line.strip_prefix("Elf file type is ") {
            report.file_type = rest.split_whitespace().next().unwrap().to_string();
        } else if let Some(rest) = line.strip_prefix("Entry point ") {
            report.entry = hex(rest.trim());
        } else if line.starts_with("There are ") {
            // "There are 10 program headers, starting at offset 64"
            report.phnum = words[2].parse().unwrap();
            report.phoff = words.last().unwrap().parse().unwrap();
        } else if line.trim_start().starts_with("Type ") {
            in_table = true;
        } else if in_table && line.trim().is_empty() {
            in_table = false;
        } else if in_table && words.len() >= 7 && words[1].starts_with("0x") {
            // Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align
            let flags = words[6..words.len() - 1].concat();
            report.headers.push(Listed {
                kind: words[0].to_string(),
                offset: hex(words[1]),
                vaddr: hex(words[2]),
                filesz: hex(words[4]),
                memsz: hex(words[5]),
                prot: Prot { read: flags.contains('R'), write: flags.contains('W'), exec: flags.contains('E') },
            });
        }
    }
    report
}

/// Plans `path` and checks the plan against readelf's report.
fn check_against_readelf(path: &Path) -> LoadPlan {
    let file = std::fs::read(path).unwrap();
    let report = readelf(path);
    let plan = LoadPlan::parse(&file, &PARAMS).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check_invariants(&plan, &PARAMS, file.len() as u64);
    let bias = match report.file_type.as_str() {
        "EXEC" => {
            assert_eq!(plan.kind(), ExecutableKind::Static);
            0
        }
        "DYN" => {
            assert_eq!(plan.kind(), ExecutableKind::StaticPie);
            PARAMS.dyn_base
        }
        other => panic!("readelf says {other}"),
    };
    assert_eq!(plan.load_bias(), bias);
    let loads: Vec<&Listed> = report.headers.iter().filter(|h| h.kind == "LOAD" && h.memsz > 0).collect();
    assert!(!loads.is_empty());
    assert_eq!(plan.segments().len(), loads.len(), "{}", path.display());
    for (segment, load) in plan.segments().iter().zip(&loads) {
        let start = load.vaddr + bias;
        assert_eq!(segment.va, start & !(PAGE - 1), "{segment} vs {load:?}");
        assert_eq!(segment.end(), (start + load.memsz).div_ceil(PAGE) * PAGE, "{segment} vs {load:?}");
        assert_eq!(segment.prot, load.prot, "{segment} vs {load:?}");
        if load.filesz > 0 {
            assert_eq!(segment.file_offset, load.offset & !(PAGE - 1));
            assert_eq!(segment.file_len, load.vaddr % PAGE + load.filesz);
        }
        // The bss: the anonymous part reaches the end of p_memsz.
        assert!(segment.anonymous().end >= start + load.memsz);
    }
    assert_eq!(plan.entry(), report.entry + bias);
    assert_eq!(plan.phnum(), report.phnum);
    let phdr = match report.headers.iter().find(|h| h.kind == "PHDR") {
        Some(phdr) => Some(phdr.vaddr + bias),
        None => loads
            .iter()
            .find(|l| l.offset <= report.phoff && report.phoff + 56 * report.phnum <= l.offset + l.filesz)
            .map(|l| l.vaddr + (report.phoff - l.offset) + bias),
    };
    assert_eq!(plan.phdr(), phdr);
    assert!(plan.phdr().is_some(), "gcc's static programs load their program headers");
    assert_eq!(plan.brk(), plan.segments().last().unwrap().end());
    plan
}

#[test]
fn static_programs_match_readelf() {
    if !tools_present() {
        return;
    }
    let dir = work_dir("readelf");
    let glibc_flags = [&["-static"][..], &["-static-pie"][..]];
    for (i, flags) in glibc_flags.iter().enumerate() {
        let path = compile(&dir, &format!("printer-{i}"), STACK_PRINTER, flags);
        let plan = check_against_readelf(&path);
        // The 1 MiB bss is anonymous memory, not file.
        let data = plan.segments().iter().find(|s| s.prot.write).unwrap();
        assert!(data.anonymous().end - data.anonymous().start >= 1 << 20, "{data}");
        // From the first page alone, as a kernel would plan it.
        let file = std::fs::read(&path).unwrap();
        assert_eq!(LoadPlan::from_headers(&file[..4096], file.len() as u64, &PARAMS), Ok(plan));
    }
    let tiny_flags: [&[&str]; 4] = [
        &["-static", "-nostdlib", "-fno-asynchronous-unwind-tables"],
        &["-static", "-nostdlib", "-fno-asynchronous-unwind-tables", "-Wl,-z,noseparate-code"],
        &["-static-pie", "-nostdlib", "-fPIE", "-fno-asynchronous-unwind-tables"],
        &["-static-pie", "-nostdlib", "-fPIE", "-fno-asynchronous-unwind-tables", "-Wl,-z,noseparate-code"],
    ];
    for (i, flags) in tiny_flags.iter().enumerate() {
        let path = compile(&dir, &format!("tiny-{i}"), TINY, flags);
        check_against_readelf(&path);
        // It runs on the host: the program is what it claims to be.
        let out = Command::new(&path).output().unwrap();
        assert_eq!((out.status.code(), &out.stdout[..]), (Some(0), &b"hi\n"[..]));
    }
    // Stripped: no section headers needed.
    let stripped = dir.join("tiny-stripped");
    assert!(Command::new("strip").arg("-o").arg(&stripped).arg(dir.join("tiny-1")).status().unwrap().success());
    check_against_readelf(&stripped);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_dynamic_program_is_refused() {
    if !tools_present() {
        return;
    }
    let dir = work_dir("dynamic");
    let path = compile(&dir, "dynamic", STACK_PRINTER, &[]);
    assert!(readelf(&path).headers.iter().any(|h| h.kind == "INTERP"));
    let file = std::fs::read(&path).unwrap();
    let error = LoadPlan::parse(&file, &PARAMS).unwrap_err();
    assert_eq!(error, ExecError::Dynamic);
    assert_eq!(error.errno(), 8);
    std::fs::remove_dir_all(&dir).ok();
}

/// What the stack printer saw of its own stack.
#[derive(Debug, Default)]
struct Seen {
    rsp: u64,
    argv: Vec<u64>,
    envp: Vec<u64>,
    auxv: Vec<(u64, u64)>,
}

fn run_printer(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Seen {
    let out = Command::new(path).args(args).env_clear().envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success());
    let mut seen = Seen::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "rsp" => seen.rsp = hex(words[1]),
            "argv" => seen.argv.push(hex(words[1])),
            "envp" => seen.envp.push(hex(words[1])),
            "aux" => seen.auxv.push((words[1].parse().unwrap(), hex(words[2]))),
            other => panic!("unexpected output {other}"),
        }
    }
    seen
}

fn word(image: &StackImage, va: u64) -> u64 {
    let at = (va - image.rsp()) as usize;
    u64::from_le_bytes(image.bytes()[at..at + 8].try_into().unwrap())
}

/// The stack image, built for the same top, arguments and environment as
/// Linux had, puts everything where Linux put it: the strings exactly, the
/// rest but for Linux's random shift below the strings (`arch_align_stack`).
#[test]
fn the_stack_matches_linuxs() {
    if !tools_present() {
        return;
    }
    let dir = work_dir("stack");
    for (i, flags) in [&["-static"][..], &["-static-pie"][..]].iter().enumerate() {
        let path = compile(&dir, &format!("printer-{i}"), STACK_PRINTER, flags);
        let plan = LoadPlan::parse(&std::fs::read(&path).unwrap(), &PARAMS).unwrap();
        let args = ["one", "", "three words"];
        let env = [("HOME", "/"), ("LONGER", "some value of a length")];
        let seen = run_printer(&path, &args, &env);
        let linux = |key: u64| seen.auxv.iter().find(|(k, _)| *k == key).map(|&(_, v)| v).unwrap();

        // Linux's stack top: the file name ends 8 bytes below it.
        let execfn = path.to_str().unwrap().as_bytes();
        let top = linux(AT_EXECFN) + execfn.len() as u64 + 1 + 8;
        assert_eq!(top % PAGE, 0, "Linux's stack top {top:#x}");

        let argv: Vec<&[u8]> = std::iter::once(execfn).chain(args.iter().map(|a| a.as_bytes())).collect();
        let env_strings: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let envp: Vec<&[u8]> = env_strings.iter().map(|s| s.as_bytes()).collect();
        let mut aux = AuxValues::for_plan(&plan);
        aux.sysinfo_ehdr = seen.auxv.iter().find(|(k, _)| *k == AT_SYSINFO_EHDR).map(|&(_, v)| v);
        aux.minsigstksz = seen.auxv.iter().find(|(k, _)| *k == AT_MINSIGSTKSZ).map(|&(_, v)| v);
        let image = StackImage::build(&StackRequest {
            top,
            bottom: top - (8 << 20),
            argv: &argv,
            envp: &envp,
            execfn,
            random: [0; 16],
            aux,
        })
        .unwrap();

        // The strings: exactly where Linux put them.
        let ours_argv: Vec<u64> = (0..image.argc()).map(|i| word(&image, image.argv() + 8 * i)).collect();
        let ours_envp: Vec<u64> = (0..image.envc()).map(|i| word(&image, image.envp() + 8 * i)).collect();
        assert_eq!(ours_argv, seen.argv);
        assert_eq!(ours_envp, seen.envp);
        assert_eq!(image.execfn(), linux(AT_EXECFN));
        // Below them, Linux shifts by a random multiple of 16.
        let shift = image.platform() - linux(AT_PLATFORM);
        assert_eq!(shift % 16, 0);
        assert!(shift < 8192 + 16, "shift {shift:#x}");
        assert_eq!(linux(AT_RANDOM), linux(AT_PLATFORM) - 16);
        assert_eq!(image.random(), image.platform() - 16);
        // rsp: the same rule for both, with Linux's longer auxiliary vector.
        let rsp_rule = |random: u64, auxc: u64| (random - 8 * (3 + image.argc() + image.envc() + 2 * auxc)) & !15;
        assert_eq!(seen.rsp, rsp_rule(linux(AT_RANDOM), seen.auxv.len() as u64));
        assert_eq!(image.rsp(), rsp_rule(image.random(), image.auxv().len() as u64));
        assert_eq!(seen.rsp % 16, 0);

        // The auxiliary vector: ours is Linux's in Linux's order, less the
        // entries Nacre has no use for yet (AT_RSEQ_*).
        let ours: Vec<u64> = image.auxv().iter().map(|&(k, _)| k).collect();
        let theirs: Vec<u64> = seen.auxv.iter().map(|&(k, _)| k).filter(|k| ours.contains(k)).collect();
        assert_eq!(ours, theirs);
        for key in [AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_CLKTCK, AT_BASE, AT_FLAGS, AT_SECURE] {
            assert_eq!(image.auxv().iter().find(|(k, _)| *k == key).unwrap().1, linux(key), "key {key}");
        }
        match plan.kind() {
            ExecutableKind::Static => {
                assert_eq!((plan.entry(), plan.phdr()), (linux(AT_ENTRY), Some(linux(AT_PHDR))));
            }
            ExecutableKind::StaticPie => {
                // Linux chose its own base; the image inside it is the same.
                let linux_bias = linux(AT_ENTRY) - (plan.entry() - plan.load_bias());
                assert_eq!(linux_bias % PAGE, 0);
                assert_eq!(linux(AT_PHDR), plan.phdr().unwrap() - plan.load_bias() + linux_bias);
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
