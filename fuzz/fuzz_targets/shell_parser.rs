//! libFuzzer entry point for the `shell_parser` target (`cargo +nightly fuzz run shell_parser --features libfuzzer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nacre_fuzz::targets::shell_parser(data));
