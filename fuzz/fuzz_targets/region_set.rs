//! libFuzzer entry point for the `region_set` target (`cargo +nightly fuzz run region_set --features libfuzzer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nacre_fuzz::targets::region_set(data));
