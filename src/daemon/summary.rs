//! The reallocation-time summary printed on exit: how long each applied
//! change took from decision to done, as the paper's Experiment 2 reports
//! for libxl and for fork/exec of xl.

use serde_json::json;

use crate::display::Display;
use crate::stats::{summarize, DurationLog};

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

/// `None` when nothing was applied. The median and p99 are of the most
/// recent [`DurationLog::KEEP`] (all of them in any run shorter than that).
pub fn summarize_timings(timings: &DurationLog) -> Option<TimingSummary> {
    let mut sorted: Vec<f64> = timings.recent().map(|d| d.as_secs_f64() * 1e3).collect();
    let median = summarize(&sorted)?.median;
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.99 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(TimingSummary {
        n: timings.len(),
        mean_ms: timings.mean_ms(),
        median_ms: median,
        sd_ms: timings.sd_ms(),
        p99_ms: sorted[rank - 1],
    })
}

/// Writes the summary through the display (a text line or a JSON object).
pub fn report(display: &mut Display, timings: &DurationLog, dry_run: bool) {
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

    use std::time::Duration;

    fn log(timings: impl IntoIterator<Item = Duration>) -> DurationLog {
        let mut log = DurationLog::default();
        for d in timings {
            log.push(d);
        }
        log
    }

    #[test]
    fn p99_is_the_nearest_rank_and_the_rest_come_from_stats() {
        let timings: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let t = summarize_timings(&log(timings.clone())).unwrap();
        assert_eq!(t.n, 200);
        assert!((t.mean_ms - 100.5).abs() < 1e-9);
        assert!((t.median_ms - 100.5).abs() < 1e-9);
        assert!((t.p99_ms - 198.0).abs() < 1e-9);
        let ms: Vec<f64> = timings.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        assert!((t.sd_ms - summarize(&ms).unwrap().sd).abs() < 1e-9);
        let one = summarize_timings(&log([Duration::from_micros(1500)])).unwrap();
        assert!((one.p99_ms - 1.5).abs() < 1e-9);
        assert_eq!(summarize_timings(&DurationLog::default()), None);
    }

    #[test]
    fn a_long_run_counts_every_timing_and_keeps_only_the_recent_ones() {
        // Older ones of 1 ms, the last KEEP of 3 ms.
        let older = 10_000;
        let timings = std::iter::repeat_n(Duration::from_millis(1), older).chain(
            std::iter::repeat_n(Duration::from_millis(3), DurationLog::KEEP),
        );
        let log = log(timings);
        assert_eq!(log.recent().len(), DurationLog::KEEP);
        let t = summarize_timings(&log).unwrap();
        assert_eq!(t.n, older + DurationLog::KEEP);
        let mean = (older as f64 + 3.0 * DurationLog::KEEP as f64) / t.n as f64;
        assert!((t.mean_ms - mean).abs() < 1e-9, "mean over all");
        assert!((t.median_ms - 3.0).abs() < 1e-9, "median of the recent");
    }
}
