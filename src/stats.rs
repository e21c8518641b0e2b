//! Summary statistics of response times, like the paper's Table 1.

use serde::Serialize;

/// Mean, median, sample standard deviation and the 95% confidence interval
/// of the mean of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1 in the denominator); 0 when n = 1.
    pub sd: f64,
    /// 95% confidence interval of the mean, Student's t for n ≤ 31 and the
    /// normal 1.96 above. Unbounded (±∞) when n = 1: one measurement says
    /// nothing about spread.
    pub ci95: (f64, f64),
}

/// Two-sided 95% quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Normal quantile used once there are more than 30 degrees of freedom.
const Z_975: f64 = 1.96;

/// The t quantile for a 95% two-sided interval with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T_975[df - 1],
        _ => Z_975,
    }
}

/// Summarises `values`. `None` when there are none, or when any is not
/// finite (a NaN would silently poison every figure).
pub fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let sd = if n > 1 {
        let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        (squares / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ci95 = if n > 1 {
        let half = t_975(n - 1) * sd / (n as f64).sqrt();
        (mean - half, mean + half)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    };
    Some(Summary {
        n,
        mean,
        median,
        sd,
        ci95,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn nothing_to_summarise() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
        assert_eq!(summarize(&[1.0, f64::INFINITY]), None);
    }

    #[test]
    fn small_odd_sample_by_hand() {
        // mean 4; squared deviations 4+1+0+1+4 = 10; variance 10/4; sd 1.5811;
        // t(4) = 2.776; half-width 2.776 × 1.5811 / √5 = 1.9629.
        let s = summarize(&[6.0, 2.0, 4.0, 5.0, 3.0]).unwrap();
        assert_eq!(s.n, 5);
        assert!(close(s.mean, 4.0, 1e-12));
        assert!(close(s.median, 4.0, 1e-12));
        assert!(close(s.sd, 2.5f64.sqrt(), 1e-12));
        assert!(close(s.ci95.0, 4.0 - 1.9629, 1e-4), "{:?}", s.ci95);
        assert!(close(s.ci95.1, 4.0 + 1.9629, 1e-4), "{:?}", s.ci95);
    }

    #[test]
    fn even_sample_median_is_the_middle_pair_mean() {
        // mean 2.5; squared deviations 2.25+0.25+0.25+2.25 = 5; sd √(5/3).
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert!(close(s.median, 2.5, 1e-12));
        assert!(close(s.sd, (5.0f64 / 3.0).sqrt(), 1e-12));
        // t(3) = 3.182: half-width 3.182 × 1.29099 / 2 = 2.05397.
        assert!(close(s.ci95.1 - s.mean, 2.05397, 1e-4));
    }

    #[test]
    fn single_value_has_no_spread_and_an_unbounded_interval() {
        let s = summarize(&[856.0]).unwrap();
        assert_eq!((s.n, s.mean, s.median, s.sd), (1, 856.0, 856.0, 0.0));
        assert_eq!(s.ci95, (f64::NEG_INFINITY, f64::INFINITY));
    }

    #[test]
    fn paper_table_1_interval_is_reproduced() {
        // ReX row: mean 856.33, sd 105.23, n 28 → the paper prints 815.6–897.06.
        // Build 28 values with exactly that mean and sd: 14 at mean − d and
        // 14 at mean + d, where d = sd × √(27/28).
        let d = 105.23 * (27.0f64 / 28.0).sqrt();
        let values: Vec<f64> = (0..28)
            .map(|i| if i % 2 == 0 { 856.33 - d } else { 856.33 + d })
            .collect();
        let s = summarize(&values).unwrap();
        assert!(close(s.sd, 105.23, 1e-9));
        assert!(close(s.ci95.0, 815.6, 0.2), "{:?}", s.ci95);
        assert!(close(s.ci95.1, 897.06, 0.2), "{:?}", s.ci95);
    }

    #[test]
    fn large_samples_use_the_normal_quantile() {
        assert_eq!(t_975(31), 1.96);
        assert_eq!(t_975(30), 2.042);
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let s = summarize(&values).unwrap();
        let half = 1.96 * s.sd / 10.0;
        assert!(close(s.ci95.1 - s.mean, half, 1e-9));
    }

    #[test]
    fn t_quantiles_fall_towards_the_normal() {
        for df in 1..40 {
            assert!(t_975(df) >= t_975(df + 1), "df {df}");
        }
    }
}

/// The `pct` percentile of `values` (nearest rank), or None if empty.
pub fn percentile(values: &[f64], pct: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize - 1;
    let rank = rank.min(sorted.len() - 1);
    let (_, value, _) = sorted.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*value)
}

#[cfg(test)]
mod percentile_tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }
}

/// Durations as a daemon logs them for months: every one counted (count,
/// mean and sd over all, by Welford's method), only the most recent
/// [`DurationLog::KEEP`] kept (for the median and percentiles).
#[derive(Debug, Clone, Default)]
pub struct DurationLog {
    count: usize,
    mean_ms: f64,
    /// Σ of squared deviations from the running mean (Welford's M2).
    m2: f64,
    recent: std::collections::VecDeque<std::time::Duration>,
}

impl DurationLog {
    /// Durations kept for the median and percentiles (64 KiB).
    pub const KEEP: usize = 4096;

    pub fn push(&mut self, d: std::time::Duration) {
        self.count += 1;
        let ms = d.as_secs_f64() * 1e3;
        let delta = ms - self.mean_ms;
        self.mean_ms += delta / self.count as f64;
        self.m2 += delta * (ms - self.mean_ms);
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(d);
    }

    /// Every duration pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn mean_ms(&self) -> f64 {
        self.mean_ms
    }

    /// Sample standard deviation over all (0 for fewer than two).
    pub fn sd_ms(&self) -> f64 {
        if self.count > 1 {
            (self.m2 / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        }
    }

    /// The most recent durations, oldest first.
    pub fn recent(&self) -> impl ExactSizeIterator<Item = &std::time::Duration> {
        self.recent.iter()
    }
}
