//! Fuzz target `guest_values`: see `checks::guest_values`.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::guest_values(data));
