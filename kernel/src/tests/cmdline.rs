//! The kernel command-line parser.

use crate::cmdline::{KernelOptions, Mode};
use crate::{check, check_eq, kernel_test};
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
