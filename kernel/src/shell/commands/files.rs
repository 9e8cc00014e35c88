//! The shell's file commands: `ls`, `cat FILE`, `stat FILE`, and `mmap` /
//! `munmap` of those files into address spaces.

use crate::fs::{self, Initrd, PAGE};
use crate::mmap::{self, MmapRequest, Sharing};
use crate::shell::session::Session;
use alloc::vec::Vec;
use aspace::Protection;
use core::fmt::Write;
use shell::{arg, arg_count, arg_number, CommandError};

/// `ls`: every file with its size, and where the initrd is.
pub fn ls(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 0, 0)?;
    match fs::initrd() {
        Initrd::Missing => return Err(CommandError::failed("no initrd: QEMU was started without -initrd")),
        Initrd::OutsideRam(module) => {
            return Err(CommandError::failed(alloc::format!(
                "the initrd at {:#x} is not in usable RAM; not read",
                module.start
            )))
        }
        Initrd::Corrupt { module, error } => {
            return Err(CommandError::failed(alloc::format!(
                "the initrd at {:#x} ({} bytes) is not a valid cpio newc archive: {error}",
                module.start,
                module.size
            )))
        }
        Initrd::Loaded { module, files } => {
            writeln!(out, "initrd: {} bytes at {:#x}, {} files", module.size, module.start, files.len())?;
            for file in files {
                writeln!(out, "{:>10}  {}", file.size(), file.name())?;
            }
        }
    }
    Ok(())
}

/// `cat FILE`: the file's bytes as text (bytes that are not printable
/// ASCII, tab or newline are shown as `\xNN`).
pub fn cat(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let file = fs::find(arg(args, 0)?).map_err(CommandError::failed)?;
    let data = file.data();
    match core::str::from_utf8(data) {
        Ok(text) => out.write_str(text)?,
        Err(_) => {
            for &byte in data {
                match byte {
                    b'\n' | b'\t' | 0x20..=0x7e => out.write_char(byte as char)?,
                    other => write!(out, "\\x{other:02x}")?,
                }
            }
        }
    }
    if !data.ends_with(b"\n") && !data.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

/// `stat FILE`: size, pages, physical address of the data, and whether it
/// is page-aligned (what a shared mapping needs).
pub fn stat(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let file = fs::find(arg(args, 0)?).map_err(CommandError::failed)?;
    writeln!(out, "file: {}", file.name())?;
    writeln!(
        out,
        "  size: {} bytes (pages: {}, the last holding {} bytes)",
        file.size(),
        file.size().div_ceil(PAGE),
        {
            match file.size() % PAGE {
                0 if file.size() > 0 => PAGE,
                rest => rest,
            }
        }
    )?;
    writeln!(out, "  data at physical {:#x}", file.phys_addr())?;
    if file.is_page_aligned() {
        writeln!(out, "  page-aligned: yes (mmap ... shared maps the initrd's own frames)")?;
    } else {
        writeln!(out, "  page-aligned: no (offset {:#x} in its page; only private mappings)", file.phys_addr() % PAGE)?;
    }
    Ok(())
}

/// Splits the optional trailing `shared`/`private` word off `args`.
fn take_sharing<'a>(args: &[&'a str]) -> (Vec<&'a str>, Sharing) {
    let mut sharing = Sharing::Private;
    let mut rest = Vec::new();
    for &word in args {
        match word {
            "shared" => sharing = Sharing::Shared,
            "private" => sharing = Sharing::Private,
            other => rest.push(other),
        }
    }
    (rest, sharing)
}

/// `mmap NAME FILE VA [OFFSET LEN] [FLAGS] [shared|private]`.
pub fn mmap_command(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    let (args, sharing) = take_sharing(args);
    let (range, flags) = match args.len() {
        3 => (None, None),
        4 => (None, Some(args[3])),
        5 => (Some((3, 4)), None),
        6 => (Some((3, 4)), Some(args[5])),
        _ => return Err(CommandError::Usage),
    };
    let va = arg_number(&args, 2, "virtual address")?;
    let (offset, len) = match range {
        Some((offset, len)) => (arg_number(&args, offset, "offset")?, Some(arg_number(&args, len, "length")?)),
        None => (0, None),
    };
    let prot = match flags {
        Some(word) => aspace::parse::parse_protection(word)
            .map_err(|error| CommandError::bad_argument(word, format_args!("not a valid protection: {error}")))?,
        None if sharing == Sharing::Shared => Protection::READ,
        None => Protection::READ | Protection::WRITE,
    };
    let request = MmapRequest { space: arg(&args, 0)?, file: arg(&args, 1)?, va, offset, len, prot, sharing };
    let mapping = mmap::mmap(&request).map_err(CommandError::failed)?;
    writeln!(out, "mapped {mapping}")?;
    Ok(())
}

/// `munmap NAME VA`.
pub fn munmap_command(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    shell::arg_count(args, 2, 2)?;
    let va = arg_number(args, 1, "virtual address")?;
    let mapping = mmap::munmap(arg(args, 0)?, va).map_err(CommandError::failed)?;
    writeln!(out, "unmapped {mapping}")?;
    Ok(())
}

/// `elf FILE`: the load plan of a static x86-64 executable in the initrd
/// (`crates/exec`): its kind, entry point, segments with their rights,
/// program headers and initial break, as a process of it would be laid
/// out; a file that is not such an executable is refused with the reason
/// and Linux's errno (ENOEXEC for a file that is no ELF, or a dynamic one).
pub fn elf(_session: &mut Session, args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    arg_count(args, 1, 1)?;
    let file = fs::find(args[0]).map_err(CommandError::failed)?;
    // The plan `run` would follow here (user space above the kernel's map).
    let plan = crate::user::load::plan(file).map_err(|error| {
        CommandError::failed(alloc::format!("'{}' cannot be run: {error} (errno {})", file.name(), error.errno()))
    })?;
    let kind = match plan.kind() {
        exec::ExecutableKind::Static => "static executable",
        exec::ExecutableKind::StaticPie => "static position-independent executable",
    };
    writeln!(out, "'{}': {kind}, entry {:#x}, load bias {:#x}", file.name(), plan.entry(), plan.load_bias())?;
    for segment in plan.segments() {
        writeln!(out, "  {segment}")?;
    }
    match plan.phdr() {
        Some(phdr) => writeln!(out, "  program headers at {phdr:#x} ({} of {} bytes)", plan.phnum(), plan.phent())?,
        None => writeln!(out, "  program headers not loaded ({} of {} bytes)", plan.phnum(), plan.phent())?,
    }
    writeln!(out, "  initial break {:#x}", plan.brk())?;
    Ok(())
}
