//! Commands about address spaces: `asis`, `ases`, the `as` verbs and
//! `ptdump`.
//!
//! Each verb finds the address space by name, takes its lock for the one
//! operation (so that the region looked up is the region changed), and
//! prints the typed error of a refusal.

use crate::address_space::{self, Space};
use crate::shell::session::{paging_mut, with_paging, Session};
use crate::thread;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AspaceError, PhysAddr, Region};
use core::fmt::Write;
use paging::PageSize;
use shell::{arg, arg_count, arg_number, arg_protection, CommandError};

/// `asis`: the implementations, with their characteristics.
pub fn asis(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    writeln!(out, "{:<8}  {:>11}  {:>9}  description", "name", "granularity", "alignment")?;
    for implementation in address_space::registry().iter() {
        let ch = implementation.characteristics;
        writeln!(
            out,
            "{:<8}  {:>11}  {:>9}  {}",
            implementation.name,
            alloc::format!("{:#x}", ch.granularity),
            alloc::format!("{:#x}", ch.alignment),
            implementation.description
        )?;
    }
    Ok(())
}

/// `ases [d]`: every address space: name, implementation, regions, root
/// table, threads inside; with `d`, each prints itself in detail.
pub fn ases(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 1)?;
    let detailed = match args.first() {
        None => false,
        Some(&"d") => true,
        Some(other) => return Err(CommandError::bad_argument(other, "the only option is 'd' (detail)")),
    };
    let threads = thread::threads_snapshot();
    let threads_in = |slot: Option<thread::AddressSpaceId>| {
        let names: Vec<String> = threads
            .iter()
            .filter(|info| info.address_space == slot)
            .map(|info| alloc::format!("{} {}", info.id, info.name))
            .collect();
        if names.is_empty() {
            String::from("-")
        } else {
            names.join(", ")
        }
    };
    writeln!(out, "{:<12}  {:<8}  {:>7}  {:<18}  threads", "name", "impl", "regions", "root (CR3)")?;
    for space in address_space::all() {
        // Formatted under the lock, printed after it (the lock keeps interrupts off).
        let mut text = String::new();
        {
            let object = space.lock();
            let root = with_paging(&object, |paging| paging.root()).flatten();
            let _ = writeln!(
                text,
                "{:<12}  {:<8}  {:>7}  {:<18}  {}",
                space.name(),
                object.implementation(),
                object.regions().len(),
                root.map_or(String::from("-"), |root| alloc::format!("{:#x}", root.as_u64())),
                threads_in(Some(space.id()))
            );
            if detailed {
                let _ = object.print(&mut text, true);
            }
        }
        out.write_str(&text)?;
    }
    writeln!(out, "(default: the boot map 'base' for threads that chose none: {})", threads_in(None))?;
    Ok(())
}

/// One `as` verb.
struct Verb {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
    run: fn(&mut Session, &[&str], &mut dyn Write) -> Result<(), CommandError>,
}

static VERBS: &[Verb] = &[
    Verb { name: "new", usage: "as new IMPL NAME", help: "create an address space", run: new },
    Verb {
        name: "add",
        usage: "as add NAME VA PA LEN FLAGS",
        help: "add a region (FLAGS: letters, listed below)",
        run: add,
    },
    Verb {
        name: "rm",
        usage: "as rm NAME VA [LEN]",
        help: "remove the region containing VA, or LEN bytes of it from VA",
        run: remove,
    },
    Verb {
        name: "move",
        usage: "as move NAME VA NEWPA [LEN]",
        help: "point the region containing VA (or LEN bytes from VA) at NEWPA",
        run: move_region,
    },
    Verb {
        name: "protect",
        usage: "as protect NAME VA FLAGS [LEN]",
        help: "change the flags of the region containing VA (or LEN bytes from VA)",
        run: protect,
    },
    Verb {
        name: "kernel",
        usage: "as kernel NAME",
        help: "add the kernel half (its image, the direct map of RAM), which entering needs",
        run: kernel_half,
    },
    Verb { name: "print", usage: "as print NAME", help: "print the address space and its regions", run: print },
    Verb { name: "enter", usage: "as enter NAME", help: "move this shell's thread into NAME", run: enter },
    Verb { name: "leave", usage: "as leave", help: "move this shell's thread back to the default", run: leave },
    Verb { name: "destroy", usage: "as destroy NAME", help: "destroy NAME (no thread may be inside)", run: destroy },
    Verb {
        name: "verify",
        usage: "as verify NAME",
        help: "check the page tables against the regions (paging)",
        run: verify,
    },
    Verb {
        name: "faultsize",
        usage: "as faultsize NAME 4k|2m|1g",
        help: "the largest page a lazy fault maps (paging)",
        run: fault_size,
    },
];

/// `as VERB ARGS...`.
pub fn as_command(session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    let Some((&name, rest)) = args.split_first() else {
        describe_verbs(out)?;
        return Err(CommandError::Usage);
    };
    let verb = VERBS
        .iter()
        .find(|verb| verb.name == name)
        .ok_or_else(|| CommandError::bad_argument(name, "no such verb ('as' alone lists them)"))?;
    match (verb.run)(session, rest, out) {
        Err(CommandError::Usage) => Err(CommandError::Failed(alloc::format!("usage: {}", verb.usage))),
        other => other,
    }
}

/// Every `as` verb with its usage and help, then every flag letter that
/// FLAGS may hold (all that the parser accepts) with its meaning: what `as`
/// alone and `help as` print.
pub fn describe_verbs(out: &mut dyn Write) -> core::fmt::Result {
    for verb in VERBS {
        writeln!(out, "  {:<32}  {}", verb.usage, verb.help)?;
    }
    writeln!(out, "  FLAGS, letters in any order and either case ('-' is ignored; a number gives the bits):")?;
    for (letter, meaning) in aspace::Protection::LETTER_MEANINGS {
        writeln!(out, "    {letter}  {meaning}")?;
    }
    Ok(())
}

fn find(args: &[&str], index: usize) -> Result<Arc<Space>, CommandError> {
    Ok(address_space::find(arg(args, index)?)?)
}

/// `as new IMPL NAME`.
fn new(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 2, 2)?;
    let space = address_space::create(args[0], args[1])?;
    writeln!(out, "created '{}' ({})", space.name(), args[0])?;
    Ok(())
}

/// `as add NAME VA PA LEN FLAGS`.
fn add(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 5, 5)?;
    let space = find(args, 0)?;
    let region = Region::new(
        arg_number(args, 1, "virtual address")?,
        arg_number(args, 2, "physical address")?,
        arg_number(args, 3, "length")?,
        arg_protection(args, 4)?,
    );
    space.lock().add_region(region)?;
    writeln!(out, "added {region} to '{}'", space.name())?;
    Ok(())
}

/// `as kernel NAME`: the kernel half, as every process space holds it.
fn kernel_half(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let space = find(args, 0)?;
    let hardened = address_space::harden::harden(&space, 0)?;
    writeln!(
        out,
        "added the kernel half to '{}' ({} regions, {} guard pages unmapped)",
        space.name(),
        hardened.regions,
        hardened.guard_pages
    )?;
    Ok(())
}

/// The region an edit acts on, looked up under the lock that the edit then
/// runs under: the whole region containing `va`, or, with `len`, the part
/// `[va, va+len)` of it (same virtual-to-physical offset).
fn edit_region(
    space: &Space,
    va: u64,
    len: Option<u64>,
    edit: impl FnOnce(&Space, Region) -> Result<(), AspaceError>,
) -> Result<Region, AspaceError> {
    // Not `RegionSet::find`, a body the paging lab's students write: the
    // shell's own lookup does not depend on their code.
    let containing = *space.lock().regions().overlapping(va, 1).next().ok_or(AspaceError::NoSuchRegion { va })?;
    let target = match len {
        None => containing,
        Some(len) => Region { va: aspace::VirtAddr(va), pa: containing.translate(va), len, prot: containing.prot },
    };
    edit(space, target)?;
    Ok(target)
}

fn optional_length(args: &[&str], index: usize) -> Result<Option<u64>, CommandError> {
    args.get(index).map(|_| arg_number(args, index, "length")).transpose()
}

/// `as rm NAME VA [LEN]`.
fn remove(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 2, 3)?;
    let space = find(args, 0)?;
    let va = arg_number(args, 1, "virtual address")?;
    let len = optional_length(args, 2)?;
    let removed = edit_region(&space, va, len, |space, target| space.remove_region(target))?;
    writeln!(out, "removed {removed} from '{}'", space.name())?;
    Ok(())
}

/// `as move NAME VA NEWPA [LEN]`.
fn move_region(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 3, 4)?;
    let space = find(args, 0)?;
    let va = arg_number(args, 1, "virtual address")?;
    let new_pa = arg_number(args, 2, "physical address")?;
    let len = optional_length(args, 3)?;
    let moved = edit_region(&space, va, len, |space, target| space.move_region(target, PhysAddr(new_pa)))?;
    writeln!(out, "moved {moved} in '{}' to {new_pa:#x}", space.name())?;
    Ok(())
}

/// `as protect NAME VA FLAGS [LEN]`.
fn protect(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 3, 4)?;
    let space = find(args, 0)?;
    let va = arg_number(args, 1, "virtual address")?;
    let prot = arg_protection(args, 2)?;
    let len = optional_length(args, 3)?;
    let changed = edit_region(&space, va, len, |space, target| space.protect_region(target, prot))?;
    writeln!(out, "protected {changed} in '{}' as {prot}", space.name())?;
    Ok(())
}

/// `as print NAME`.
fn print(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let space = find(args, 0)?;
    let mut text = String::new();
    let _ = space.lock().print(&mut text, true);
    out.write_str(&text)?;
    Ok(())
}

/// `as enter NAME`: refused, naming what would be lost, unless the address
/// space maps everything the kernel needs.
fn enter(session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let space = find(args, 0)?;
    address_space::move_current_thread(Some(&space))?;
    writeln!(out, "shell '{}' is now in '{}'", session.name(), space.name())?;
    Ok(())
}

/// `as leave`.
fn leave(session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    address_space::move_current_thread(None)?;
    writeln!(out, "shell '{}' is now in the default address space", session.name())?;
    Ok(())
}

/// `as destroy NAME`.
fn destroy(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let name = arg(args, 0)?;
    address_space::destroy(name)?;
    writeln!(out, "destroyed '{name}'")?;
    Ok(())
}

/// `as verify NAME`: the page tables against the region set.
fn verify(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let space = find(args, 0)?;
    let (implementation, result) = {
        let object = space.lock();
        (object.implementation(), with_paging(&object, |paging| paging.verify()))
    };
    match result {
        None => Err(AspaceError::Unsupported { implementation, operation: "verify" }.into()),
        Some(Ok(())) => {
            writeln!(out, "'{}': the page tables match the regions", space.name())?;
            Ok(())
        }
        Some(Err(errors)) => {
            for error in &errors {
                writeln!(out, "  {error}")?;
            }
            Err(CommandError::Failed(alloc::format!("'{}': {} discrepancies", space.name(), errors.len())))
        }
    }
}

/// `as faultsize NAME 4k|2m|1g`.
fn fault_size(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 2, 2)?;
    let space = find(args, 0)?;
    let size = match args[1].to_ascii_lowercase().as_str() {
        "4k" => PageSize::Size4K,
        "2m" => PageSize::Size2M,
        "1g" => PageSize::Size1G,
        _ => return Err(CommandError::bad_argument(args[1], "a page size is 4k, 2m or 1g")),
    };
    let mut object = space.lock();
    let implementation = object.implementation();
    let paging = paging_mut(&mut object)
        .ok_or(AspaceError::Unsupported { implementation, operation: "choosing the lazy-fault page size" })?;
    paging.set_fault_page_limit(size);
    drop(object);
    writeln!(out, "'{}': lazy faults map pages of at most {size}", space.name())?;
    Ok(())
}

/// `ptdump NAME [VA [LEN]]`: the page tables as runs of pages with equal
/// attributes; with VA, only the runs that meet `[VA, VA+LEN)` (LEN 1 by
/// default: the run that maps VA).
pub fn ptdump(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 3)?;
    let space = find(args, 0)?;
    let (first, last) = match args.len() {
        1 => (0, u64::MAX),
        _ => {
            let va = arg_number(args, 1, "virtual address")?;
            let len = optional_length(args, 2)?.unwrap_or(1);
            // Refused when empty, past 2^64, non-canonical or across the hole.
            let last = aspace::check_virt_range(va, len, crate::arch::cpu::virt_width())?;
            (va, last)
        }
    };
    let mut text = String::new();
    let mut shown = 0;
    let found = {
        let object = space.lock();
        let implementation = object.implementation();
        with_paging(&object, |paging| {
            for run in paging.mappings().into_iter().flatten() {
                if run.start.0 <= last && run.last.0 >= first {
                    let _ = writeln!(text, "{run}");
                    shown += 1;
                }
            }
        })
        .ok_or(AspaceError::Unsupported { implementation, operation: "ptdump" })
    };
    found?;
    out.write_str(&text)?;
    writeln!(out, "{shown} {}", if shown == 1 { "run" } else { "runs" })?;
    Ok(())
}
