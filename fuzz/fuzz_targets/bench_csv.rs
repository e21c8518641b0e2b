//! Fuzz target `bench_csv`: see `checks::bench_csv`.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::bench_csv(data));
