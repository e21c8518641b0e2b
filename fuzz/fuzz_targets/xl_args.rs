//! Fuzz target `xl_args`: see `checks::xl_args`.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::xl_args(data));
