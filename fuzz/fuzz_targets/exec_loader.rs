//! libFuzzer entry point for the `exec_loader` target (`cargo +nightly fuzz run exec_loader --features libfuzzer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nacre_fuzz::targets::exec_loader(data));
