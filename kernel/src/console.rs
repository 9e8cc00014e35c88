//! A minimal console on the serial port, until the full shell (`crates/shell`)
//! is wired in: reads lines, echoes them, and runs a handful of commands.
//!
//! The logic of each command lives in a `pub fn(args, out) -> Result<(), String>`
//! so that the full shell can call the same functions from its command table.

use crate::arch::cpu::{self, CpuFeatures};
use crate::probe::{self, Width};
use crate::qemu::{self, ExitStatus};
use crate::serial::{self, SerialWriter};
use alloc::format;
use alloc::string::String;
use core::fmt::Write;

/// The prompt.
pub const PROMPT: &str = "nacre> ";

/// What a command asks of the console after it ran.
enum Next {
    Continue,
    PowerOff,
}

type CommandFn = fn(&[&str], &mut dyn Write) -> Result<(), String>;

const COMMANDS: &[(&str, &str, CommandFn)] = &[
    ("help", "list the commands", help),
    ("echo", "echo WORDS...: print the words", echo),
    ("mem", "frame and heap figures", mem),
    ("cpus", "each CPU: current thread, timer ticks, switches, address space; the CPU features in force", cpus),
    ("threads", "every thread: id, name, state, CPU, address space", threads),
    ("peek", "peek ADDR [WIDTH]: read 1, 2, 4 or 8 bytes (default 8), faults reported", peek),
    ("poke", "poke ADDR VALUE [WIDTH]: write 1, 2, 4 or 8 bytes (default 8), faults reported", poke),
    ("touch", "touch ADDR: read 8 bytes without a probe; a fault stops the kernel with the full report", touch),
];

/// `help`.
pub fn help(_args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    for (name, summary, _) in COMMANDS {
        let _ = writeln!(out, "  {name:<8} {summary}");
    }
    let _ = writeln!(out, "  {:<8} leave QEMU", "poweroff");
    Ok(())
}

/// `echo WORDS...`.
pub fn echo(args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let _ = writeln!(out, "{}", args.join(" "));
    Ok(())
}

/// `mem`: frame and heap figures.
pub fn mem(_args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    crate::mem::report(out).map_err(|_| String::from("output failed"))
}

/// `threads`: the thread listing.
pub fn threads(_args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    crate::thread::format_threads(out).map_err(|_| String::from("output failed"))
}

/// `cpus`: each CPU's current thread, ticks and address space; then the CPU
/// features, and which of them are in force.
pub fn cpus(_args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    crate::thread::format_cpus(out).map_err(|_| String::from("output failed"))?;
    let _ = writeln!(out, "cpu {}: {}", crate::percpu::current().id, CpuFeatures::detect());
    let _ = writeln!(
        out,
        "in force: {}-level paging, nx {}",
        if cpu::la57_enabled() { 5 } else { 4 },
        if cpu::nx_enabled() { "on" } else { "off" }
    );
    Ok(())
}

fn number(word: &str, what: &str) -> Result<u64, String> {
    aspace::parse::parse_number(word).map_err(|error| format!("bad {what} {word:?}: {error}"))
}

fn width(args: &[&str], index: usize) -> Result<Width, String> {
    match args.get(index) {
        None => Ok(Width::U64),
        Some(word) => {
            Width::from_bytes(number(word, "width")?).ok_or_else(|| format!("width must be 1, 2, 4 or 8, not {word}"))
        }
    }
}

/// `peek ADDR [WIDTH]`: reads memory with a fault probe.
pub fn peek(args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let [addr, ..] = args else { return Err(String::from("usage: peek ADDR [WIDTH]")) };
    let addr = number(addr, "address")?;
    let width = width(args, 1)?;
    let value = probe::probe_read(addr, width).map_err(|fault| format!("peek {addr:#x}: {fault}"))?;
    let _ = writeln!(out, "{addr:#x}: {value:#0digits$x}", digits = 2 + 2 * width as usize);
    Ok(())
}

/// `poke ADDR VALUE [WIDTH]`: writes memory with a fault probe.
pub fn poke(args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let [addr, value, ..] = args else { return Err(String::from("usage: poke ADDR VALUE [WIDTH]")) };
    let addr = number(addr, "address")?;
    let value = number(value, "value")?;
    let width = width(args, 2)?;
    if value > width.max_value() {
        return Err(format!("{value:#x} does not fit in {} bytes", width as u8));
    }
    // SAFETY: the person at the console asked for this write; a fault is
    // caught, and anything else it breaks is theirs to break.
    unsafe { probe::probe_write(addr, value, width) }.map_err(|fault| format!("poke {addr:#x}: {fault}"))?;
    let _ = writeln!(out, "{addr:#x} <- {value:#x}");
    Ok(())
}

/// `touch ADDR`: an ordinary read, not a probe. A fault that the
/// address-space layer does not handle goes to the fault report, which stops
/// the kernel: the way to see that report on purpose.
pub fn touch(args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let [addr] = args else { return Err(String::from("usage: touch ADDR")) };
    let addr = number(addr, "address")?;
    // SAFETY: deliberately unchecked; reading has no effect on memory, and a
    // fault ends in the trap dispatcher's report.
    let value = unsafe { (addr as *const u64).read_volatile() };
    let _ = writeln!(out, "{addr:#x}: {value:#018x}");
    Ok(())
}

/// Runs one command line; prints its error, if any. Returns whether it
/// succeeded, and what to do next.
fn run_line(line: &str, out: &mut dyn Write) -> (bool, Next) {
    let words: alloc::vec::Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else { return (true, Next::Continue) };
    if name == "poweroff" {
        return (true, Next::PowerOff);
    }
    let result = match COMMANDS.iter().find(|(command, _, _)| *command == name) {
        Some((_, _, run)) => run(args, out),
        None => Err(format!("unknown command {name:?} (try help)")),
    };
    match result {
        Ok(()) => (true, Next::Continue),
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            (false, Next::Continue)
        }
    }
}

/// Runs `;`-separated commands; returns true when every one succeeded.
/// `poweroff` stops the script early (with the status so far).
pub fn run_script(script: &str) -> bool {
    let out = &mut SerialWriter;
    let mut all_succeeded = true;
    for line in script.split(';').map(str::trim).filter(|line| !line.is_empty()) {
        let _ = writeln!(out, "{PROMPT}{line}");
        let (succeeded, next) = run_line(line, out);
        all_succeeded &= succeeded;
        if let Next::PowerOff = next {
            break;
        }
    }
    all_succeeded
}

/// The interactive loop: a line at a time from the serial port, with echo,
/// backspace, and Ctrl-C to drop the line. Returns only by powering off.
pub fn run_interactive() -> ! {
    let out = &mut SerialWriter;
    let mut line = String::new();
    let _ = write!(out, "{PROMPT}");
    loop {
        let Some(byte) = serial::try_read_byte() else {
            core::hint::spin_loop();
            continue;
        };
        match byte {
            b'\r' | b'\n' => {
                let _ = writeln!(out);
                if let (_, Next::PowerOff) = run_line(&line, out) {
                    qemu::exit(ExitStatus::Success);
                }
                line.clear();
                let _ = write!(out, "{PROMPT}");
            }
            0x08 | 0x7f if !line.is_empty() => {
                line.pop();
                let _ = write!(out, "\x08 \x08");
            }
            0x03 => {
                line.clear();
                let _ = write!(out, "^C\n{PROMPT}");
            }
            0x20..=0x7e => {
                line.push(byte as char);
                let _ = out.write_char(byte as char);
            }
            _ => {}
        }
    }
}
