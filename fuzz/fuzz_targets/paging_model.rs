//! libFuzzer entry point for the `paging_model` target (`cargo +nightly fuzz run paging_model --features libfuzzer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nacre_fuzz::targets::paging_model(data));
