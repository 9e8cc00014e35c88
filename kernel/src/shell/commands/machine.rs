//! Commands about the machine: memory, CPUs, threads, raw memory access
//! through the fault probes, and crashes on purpose.

use crate::address_space;
use crate::arch::cpu::{self, CpuFeatures};
use crate::arch::idt;
use crate::probe::{self, Width};
use crate::shell::session::{with_paging, Session};
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};
use shell::{arg_count, arg_number, arg_number_or, CommandError};

/// The most `peek` reads at once.
const PEEK_MAX: u64 = 4096;
/// Values per line in a long `peek`.
const PEEK_PER_LINE: u64 = 4;

/// `mem`: the frame allocator, the heap, and the page-table frames of each
/// address space and of the kernel half they share; `mem mark` and `mem since [SLACK]`: a leak check around
/// other commands.
pub fn mem(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 2)?;
    match args {
        ["mark"] => return mem_mark(out),
        ["since"] => return mem_since(0, out),
        ["since", slack] => {
            let slack = slack.parse().map_err(|_| CommandError::bad_argument(slack, "not a number of frames"))?;
            return mem_since(slack, out);
        }
        [] => {}
        _ => return Err(CommandError::Usage),
    }
    crate::mem::report(out)?;
    write!(out, "page-table frames:")?;
    let mut total = 0;
    for space in address_space::all() {
        let frames = with_paging(&space.lock(), |paging| paging.counters().table_frames);
        match frames {
            Some(frames) => {
                total += frames;
                write!(out, " {} {frames},", space.name())?;
            }
            None => write!(out, " {} (not paging),", space.name())?,
        }
    }
    let shared = address_space::kernel_half().table_frames();
    total += shared;
    writeln!(out, " kernel half {shared}, total {total} ({} KiB)", total * 4)?;
    Ok(())
}

/// The free frames `mem mark` saw (`usize::MAX`: no mark yet).
static MARKED_FREE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The frames the initrd's page cache held at the mark.
static MARKED_CACHE: AtomicUsize = AtomicUsize::new(0);

/// `mem mark`: remembers how many frames are free now.
fn mem_mark(out: &mut dyn Write) -> Result<(), CommandError> {
    let free = crate::mem::frames::stats().free;
    MARKED_FREE.store(free, Ordering::Relaxed);
    MARKED_CACHE.store(crate::user::objects::initrd_cache_frames(), Ordering::Relaxed);
    writeln!(out, "frames: {free} free (marked)")?;
    Ok(())
}

/// `mem since [SLACK]`: the frames free now against the mark; fails when
/// more than SLACK fewer are free (frames taken and not given back), not
/// counting those the initrd's page cache took meanwhile (it keeps them).
fn mem_since(slack: usize, out: &mut dyn Write) -> Result<(), CommandError> {
    let marked = MARKED_FREE.load(Ordering::Relaxed);
    if marked == usize::MAX {
        return Err(CommandError::failed("no mark: run 'mem mark' first"));
    }
    let free = crate::mem::frames::stats().free;
    let cached = crate::user::objects::initrd_cache_frames().saturating_sub(MARKED_CACHE.load(Ordering::Relaxed));
    let lost = marked.saturating_sub(free).saturating_sub(cached);
    writeln!(
        out,
        "frames: {marked} free at the mark, {free} now ({cached} more in the initrd's page cache; {lost} fewer \
         otherwise; at most {slack} allowed)"
    )?;
    if lost > slack {
        return Err(CommandError::failed(format_args!("{lost} frames not given back since the mark")));
    }
    writeln!(out, "frames held")?;
    Ok(())
}

/// `cpus`.
pub fn cpus(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    crate::thread::format_cpus(out)?;
    writeln!(out, "cpu {}: {}", crate::percpu::current().id, CpuFeatures::detect())?;
    writeln!(
        out,
        "in force: {}-level paging, nx {}, pcid {}",
        if cpu::la57_enabled() { 5 } else { 4 },
        if cpu::nx_enabled() { "on" } else { "off" },
        if cpu::pcid_enabled() { "on" } else { "off" },
    )?;
    Ok(())
}

/// `threads`.
pub fn threads(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    crate::thread::format_threads(out)?;
    Ok(())
}

/// `peek ADDR [LEN]`: reads with fault probes. LEN 1, 2 or 4 is one read of
/// that width; otherwise LEN is a multiple of 8 and is read 8 bytes at a
/// time. A fault prints what was read before it and the decoded fault.
pub fn peek(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 2)?;
    let addr = arg_number(args, 0, "address")?;
    let len = arg_number_or(args, 1, "length", 8)?;
    let width = match len {
        1 | 2 | 4 => Width::from_bytes(len).expect("1, 2 and 4 are widths"),
        _ if len > 0 && len <= PEEK_MAX && len.is_multiple_of(8) => Width::U64,
        _ => {
            return Err(CommandError::bad_argument(
                args[1],
                format_args!("a length is 1, 2, 4, or a multiple of 8 up to {PEEK_MAX}"),
            ))
        }
    };
    // The whole range is checked before the first read: nothing is printed
    // for a range that runs past 2^64 or into the non-canonical hole.
    probe::check_access(addr, len)?;
    let step = width as u64;
    let mut offset = 0;
    while offset < len {
        let at = addr + offset;
        match probe::probe_read(at, width) {
            Ok(value) => {
                if offset % (step * PEEK_PER_LINE) == 0 {
                    if offset > 0 {
                        writeln!(out)?;
                    }
                    write!(out, "{at:#x}:")?;
                }
                write!(out, " {value:#0digits$x}", digits = 2 + 2 * step as usize)?;
            }
            Err(fault) => {
                if offset > 0 {
                    writeln!(out)?;
                }
                return Err(CommandError::failed(fault));
            }
        }
        offset += step;
    }
    writeln!(out)?;
    Ok(())
}

/// `poke ADDR VALUE [WIDTH]`: writes with a fault probe.
pub fn poke(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 2, 3)?;
    let addr = arg_number(args, 0, "address")?;
    let value = arg_number(args, 1, "value")?;
    let width = arg_number_or(args, 2, "width", 8)?;
    let width =
        Width::from_bytes(width).ok_or_else(|| CommandError::bad_argument(args[2], "a width is 1, 2, 4 or 8"))?;
    if value > width.max_value() {
        return Err(CommandError::bad_argument(args[1], format_args!("does not fit in {} bytes", width as u8)));
    }
    // SAFETY: the person at the console asked for this write; a fault is
    // caught, and anything else it breaks is theirs to break.
    unsafe { probe::probe_write(addr, value, width) }.map_err(CommandError::failed)?;
    writeln!(out, "{addr:#x} <- {value:#x}")?;
    Ok(())
}

/// `touch ADDR`: an ordinary read, not a probe. A fault that the
/// address-space layer does not handle goes to the fault report, which stops
/// the kernel: the way to see that report on purpose.
pub fn touch(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let addr = arg_number(args, 0, "address")?;
    // A read that would wrap past 2^64 (to address 0) or run into the
    // non-canonical hole is refused; anything else is read for real.
    probe::check_access(addr, 8)?;
    // SAFETY: deliberately unchecked; reading has no effect on memory, and a
    // fault ends in the trap dispatcher's report.
    let value = unsafe { (addr as *const u64).read_volatile() };
    writeln!(out, "{addr:#x}: {value:#018x}")?;
    Ok(())
}

/// `crash doublefault`: raises a real double fault (see
/// [`idt::provoke_double_fault`]); its report stops the kernel with a failing
/// status. Without its own stack and gate, the CPU would reset instead.
pub fn crash(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    match args[0] {
        "doublefault" => {
            writeln!(out, "crash: raising a double fault; its report follows")?;
            idt::provoke_double_fault()
        }
        other => Err(CommandError::bad_argument(other, "the crash this command knows is 'doublefault'")),
    }
}
