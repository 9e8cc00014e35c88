//! The kernel command-line parser, the script file (`script=@NAME`), and
//! the copy of the loader's command line (refused when too long, never cut).

use crate::boot_info::{BootInfo, BootInfoError, MAX_COMMAND_LINE, START_INFO_MAGIC};
use crate::cmdline::{script_commands, Init, KernelOptions, Mode, ScriptSource, SCRIPT_FILE};
use crate::{check, check_eq, kernel_test};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use log::LevelFilter;

fn script_takes_the_rest_of_the_line() -> Result<(), String> {
    let options = KernelOptions::parse("log=debug frames=64 script=help; peek 0x0 ;mem", |_| {});
    check_eq!(options.mode, Mode::Script("help; peek 0x0 ;mem"));
    check_eq!(options.log_level, LevelFilter::Debug);
    check_eq!(options.frame_cap, Some(64));
    Ok(())
}
kernel_test!(script_takes_the_rest_of_the_line);

fn defaults_and_unknown_words() -> Result<(), String> {
    let mut unknown = Vec::new();
    let options = KernelOptions::parse("  bogus log=loud nonscript=x ", |word| unknown.push(word.0));
    check_eq!(options.mode, Mode::Interactive);
    check_eq!(options.log_level, LevelFilter::Info);
    check_eq!(unknown, ["bogus", "log=loud", "nonscript=x"]);
    check_eq!(KernelOptions::parse("test", |_| {}).mode, Mode::Test);
    check!(KernelOptions::parse("", |_| {}).frame_cap.is_none());
    Ok(())
}
kernel_test!(defaults_and_unknown_words);

fn init_and_its_arguments() -> Result<(), String> {
    let options = KernelOptions::parse("log=debug init=/bin/prog -- one  two three ", |_| {});
    check_eq!(options.init, Some(Init { path: "/bin/prog", args: "one  two three" }));
    check_eq!(options.mode, Mode::Interactive);
    check_eq!(options.log_level, LevelFilter::Debug);
    let words: Vec<&str> = options.init.unwrap().arguments().collect();
    check_eq!(words, ["one", "two", "three"]);
    // No arguments; the init's arguments may look like options, or scripts.
    check_eq!(KernelOptions::parse("init=/bin/x", |_| {}).init, Some(Init { path: "/bin/x", args: "" }));
    let options = KernelOptions::parse("init=/bin/x -- log=off script=y --", |_| {});
    check_eq!(options.init, Some(Init { path: "/bin/x", args: "log=off script=y --" }));
    check_eq!((options.mode, options.log_level), (Mode::Interactive, LevelFilter::Info));
    // A script's commands may hold `--`.
    let options = KernelOptions::parse("init=/bin/x script=run /bin/y -- z", |_| {});
    check_eq!(options.mode, Mode::Script("run /bin/y -- z"));
    check_eq!(options.init, Some(Init { path: "/bin/x", args: "" }));
    // Arguments without an init are reported, word by word; an empty init= is kept (refused at boot).
    let mut unknown = Vec::new();
    let options = KernelOptions::parse("-- a b", |word| unknown.push(word.0));
    check_eq!((options.init, unknown), (None, alloc::vec!["a", "b"]));
    check_eq!(KernelOptions::parse("init=", |_| {}).init, Some(Init { path: "", args: "" }));
    check_eq!(KernelOptions::parse("noinit=/bin/x", |_| {}).init, None);
    Ok(())
}
kernel_test!(init_and_its_arguments);

fn script_sources() -> Result<(), String> {
    check_eq!(ScriptSource::of("help; mem"), ScriptSource::Inline("help; mem"));
    check_eq!(ScriptSource::of("bench"), ScriptSource::Inline("bench"));
    check_eq!(ScriptSource::of("@.script"), ScriptSource::File(".script"));
    check_eq!(ScriptSource::of(" @ notes.txt "), ScriptSource::File("notes.txt"));
    // What xtask puts on the line for `cargo xtask run -- "..."`.
    let line = alloc::format!("log=debug script=@{SCRIPT_FILE}");
    let options = KernelOptions::parse(&line, |_| {});
    check_eq!(options.mode, Mode::Script("@.script"));
    check_eq!(ScriptSource::of("@.script"), ScriptSource::File(SCRIPT_FILE));
    Ok(())
}
kernel_test!(script_sources);

fn script_files_are_read_whole_or_refused() -> Result<(), String> {
    check_eq!(script_commands("echo a; echo b"), Ok("echo a; echo b"));
    // The test boot has the repository's initrd (and no `.script`).
    let hello = crate::fs::find("hello.txt").map_err(|e| alloc::format!("{e}"))?;
    check_eq!(script_commands("@hello.txt").map(str::len), Ok(hello.data().len()));
    let missing = script_commands("@no-such-script").unwrap_err();
    check!(missing.contains("script=@no-such-script: no file named 'no-such-script'"), "{missing}");
    check!(script_commands("@").is_err());
    Ok(())
}
kernel_test!(script_files_are_read_whole_or_refused);

/// Reads a start info whose magic is `magic` and whose command line is
/// `line` (with a NUL after it).
fn read_fake(magic: u32, line: &[u8]) -> Result<Box<BootInfo>, BootInfoError> {
    let mut text = line.to_vec();
    text.push(0);
    let raw = crate::boot_info::RawStartInfo {
        magic,
        version: 1,
        flags: 0,
        nr_modules: 0,
        modlist_paddr: 0,
        cmdline_paddr: physical(text.as_ptr() as u64),
        rsdp_paddr: 0,
        memmap_paddr: 0,
        memmap_entries: 0,
        reserved: 0,
    };
    // SAFETY: `raw` and the command line it points to are live, and the
    // direct map reaches them at their physical addresses; no module or
    // memory map.
    unsafe { BootInfo::read(physical(&raw as *const crate::boot_info::RawStartInfo as u64)) }.map(Box::new)
}

/// The physical address of `virt`, a heap or stack address (the direct map)
/// or one in the image (the boot stack).
fn physical(virt: u64) -> u64 {
    crate::direct_map::virt_to_phys(virt).expect("a kernel address")
}

fn long_command_lines_are_refused_not_cut() -> Result<(), String> {
    let longest = alloc::vec![b'a'; MAX_COMMAND_LINE];
    let info = read_fake(START_INFO_MAGIC, &longest).map_err(|e| alloc::format!("{e}"))?;
    check_eq!(info.command_line().len(), MAX_COMMAND_LINE);
    check_eq!(read_fake(START_INFO_MAGIC, b"").map(|info| info.command_line().len()), Ok(0));

    let too_long = alloc::vec![b'a'; MAX_COMMAND_LINE + 1];
    let error = read_fake(START_INFO_MAGIC, &too_long).map(|_| ()).unwrap_err();
    check_eq!(error, BootInfoError::CommandLineTooLong);
    check!(error.is_command_line_error());
    let message = alloc::format!("{error}");
    check!(message.contains("longer than 4095 bytes"), "{message}");
    // 20 KiB: no NUL where the loader's buffer ends.
    let huge = alloc::vec![b'b'; 20 * 1024];
    check_eq!(read_fake(START_INFO_MAGIC, &huge).map(|_| ()), Err(BootInfoError::CommandLineTooLong));

    check_eq!(
        read_fake(START_INFO_MAGIC, b"script=echo \xff").map(|_| ()),
        Err(BootInfoError::CommandLineNotUtf8 { offset: 12 })
    );
    Ok(())
}
kernel_test!(long_command_lines_are_refused_not_cut);

fn a_start_info_overwritten_by_the_line_is_named() -> Result<(), String> {
    // QEMU's PVH loader puts the start info after its 4096-byte command-line
    // buffer: a longer line overwrites the magic with text, or with the
    // line's NUL and the rest of the magic.
    for magic in [u32::from_le_bytes(*b"ho 1"), START_INFO_MAGIC & !0xff, u32::from_le_bytes([b'x', 0, 0x6e, 0x33])] {
        let error = read_fake(magic, b"").map(|_| ()).unwrap_err();
        check_eq!(error, BootInfoError::OverwrittenByCommandLine(magic));
        check!(error.is_command_line_error());
        check!(alloc::format!("{error}").contains("longer than 4095 bytes"));
    }
    // Not text: not a PVH boot at all (main reports it as such).
    for magic in [0, 0xffff_ffff, 0x1bad_b002] {
        let error = read_fake(magic, b"").map(|_| ()).unwrap_err();
        check_eq!(error, BootInfoError::BadMagic(magic));
        check!(!error.is_command_line_error());
    }
    Ok(())
}
kernel_test!(a_start_info_overwritten_by_the_line_is_named);
