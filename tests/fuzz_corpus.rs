//! The fuzz targets' committed corpus (fuzz/corpus/TARGET: seeds, and the
//! reproducer of every crash once fixed), replayed through the same checks
//! as `tests/fuzz` runs under libFuzzer, so a fixed crash stays fixed.

use std::path::Path;

#[path = "../fuzz/checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{}: no corpus", dir.display());
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails {target}'s checks", input.display());
        }
    }
}

#[test]
fn policy_corpus() {
    replay("policy", checks::policy);
}

#[test]
fn scenario_corpus() {
    replay("scenario", checks::scenario);
}

#[test]
fn guest_values_corpus() {
    replay("guest_values", checks::guest_values);
}

#[test]
fn bench_csv_corpus() {
    replay("bench_csv", checks::bench_csv);
}

#[test]
fn xl_args_corpus() {
    replay("xl_args", checks::xl_args);
}
