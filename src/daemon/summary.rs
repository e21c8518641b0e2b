//! The reallocation-time summary printed on exit: how long each applied
//! change took from decision to done, as the paper's Experiment 2 reports
//! for libxl and for fork/exec of xl.

use std::time::Duration;

use serde_json::json;

use crate::display::Display;
use crate::stats::summarize;

/// Figures of a set of reallocation times, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingSummary {
    pub n: usize,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub sd_ms: f64,
    /// Nearest-rank 99th percentile.
    pub p99_ms: f64,
}

/// `None` when nothing was applied.
pub fn summarize_timings(timings: &[Duration]) -> Option<TimingSummary> {
    let ms: Vec<f64> = timings.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let s = summarize(&ms)?;
    let mut sorted = ms;
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.99 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(TimingSummary {
        n: s.n,
        mean_ms: s.mean,
        median_ms: s.median,
        sd_ms: s.sd,
        p99_ms: sorted[rank - 1],
    })
}

/// Writes the summary through the display (a text line or a JSON object).
pub fn report(display: &mut Display, timings: &[Duration], dry_run: bool) {
    match summarize_timings(timings) {
        Some(t) => display.event(
            "timings",
            &format!(
                "{} reallocation{}: mean {:.3} ms, median {:.3} ms, sd {:.3} ms, p99 {:.3} ms",
                t.n,
                if t.n == 1 { "" } else { "s" },
                t.mean_ms,
                t.median_ms,
                t.sd_ms,
                t.p99_ms
            ),
            json!({
                "n": t.n, "mean_ms": t.mean_ms, "median_ms": t.median_ms,
                "sd_ms": t.sd_ms, "p99_ms": t.p99_ms,
            }),
        ),
        None => display.event(
            "timings",
            if dry_run {
                "0 reallocations (dry run: nothing applied)"
            } else {
                "0 reallocations"
            },
            json!({ "n": 0 }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_the_nearest_rank_and_the_rest_come_from_stats() {
        let timings: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let t = summarize_timings(&timings).unwrap();
        assert_eq!(t.n, 200);
        assert!((t.mean_ms - 100.5).abs() < 1e-9);
        assert!((t.median_ms - 100.5).abs() < 1e-9);
        assert!((t.p99_ms - 198.0).abs() < 1e-9);
        let one = summarize_timings(&[Duration::from_micros(1500)]).unwrap();
        assert!((one.p99_ms - 1.5).abs() < 1e-9);
        assert_eq!(summarize_timings(&[]), None);
    }
}
