// What each fuzz target checks of one input. Shared, by `#[path]`, with
// tests/fuzz_corpus.rs, which replays the committed corpus (seeds and crash
// reproducers) in every `cargo test`.

use std::ffi::{c_char, c_int, OsString};
use std::os::unix::ffi::OsStringExt;

/// A policy file: the bytes as read from disk, then (lossily) straight into
/// the parser, which guards libxlutil itself, and the engine's checks. An
/// error must say where.
pub fn policy(data: &[u8]) {
    let _ = rex::input::text_from_bytes("fuzz.cfg", data.to_vec());
    let text = String::from_utf8_lossy(data);
    if let Err(e) = rex::config::policy::parse_policy_text("fuzz.cfg", &text) {
        assert!(e.to_string().starts_with("fuzz.cfg"), "{e}");
    }
}

/// A scenario file (the policy keys and the simulator's).
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = rex::config::scenario::Scenario::parse("fuzz.cfg", &text) {
        assert!(e.to_string().starts_with("fuzz.cfg"), "{e}");
    }
}

/// What a guest writes to xenstore: three values split at 0xff bytes,
/// parsed strictly and clamped to the domain's bounds.
pub fn guest_values(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == 0xff);
    let (free, total, response) = (parts.next(), parts.next(), parts.next());
    let max_kb = 256 * 1024;
    let report = rex::host::guest::parse_report(free, total, response, max_kb);
    if let Some(total) = report.mem_total_kb {
        assert!(total <= max_kb, "total {total}");
    }
    if let Some(free) = report.mem_free_kb {
        assert!(free <= report.mem_total_kb.unwrap_or(max_kb), "free {free}");
    }
    if let Some(ms) = report.response_ms {
        let max = rex::host::guest::MAX_RESPONSE_MS;
        assert!(ms.is_finite() && (0.0..=max).contains(&ms), "response {ms}");
    }
    let host_kb = 1 << 24;
    assert!(rex::host::guest::memory_ceiling_kb(free, max_kb, host_kb) <= host_kb);
}

/// The benchmark CSV of `rex decompose`, then the decomposition itself.
pub fn bench_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match rex::config::bench_csv::parse_runs("fuzz.csv", &text) {
        Ok(runs) => {
            let _ = rex::engine::decompose::decompose(&runs, 900.0);
        }
        Err(e) => assert!(e.starts_with("fuzz.csv"), "{e}"),
    }
}

/// `xl rex`'s argv as C hands it over (NUL-separated), parsed, and through
/// the C ABI's entry point with no context: it must stop with a status
/// (the arguments are read first), never crash or exit.
pub fn xl_args(data: &[u8]) {
    let args: Vec<Vec<u8>> = data.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    let _ = rex::daemon::DaemonArgs::parse(args.iter().skip(1).cloned().map(OsString::from_vec));
    let mut owned: Vec<Vec<u8>> = args
        .into_iter()
        .map(|mut a| {
            a.push(0);
            a
        })
        .collect();
    let mut argv: Vec<*mut c_char> = owned.iter_mut().map(|a| a.as_mut_ptr().cast()).collect();
    // SAFETY: argv holds argv.len() NUL-terminated strings that outlive the
    // call; a NULL context and logger are part of the C ABI's contract.
    let status = unsafe {
        rex::ffi::rex_xl_main(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            argv.len() as c_int,
            argv.as_mut_ptr(),
        )
    };
    assert!((0..=5).contains(&status), "status {status}");
}
