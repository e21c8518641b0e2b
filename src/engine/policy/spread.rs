//! How much a domain's reported response moves from second to second at its
//! present cap: an SLA is judged second by second, so a mean below the aim
//! with a wide spread still misses now and then.

/// The responses kept per domain.
const KEPT: usize = 8;
/// Fewer than this says nothing about the spread.
const ENOUGH: usize = 4;
/// How many standard deviations above the mean a second may land and still
/// be counted on (about one second in forty for a normal spread).
const SIGMAS: f64 = 2.0;

/// The last responses a domain's guest reported while it used its CPU at
/// one cap. A change of cap starts afresh: a figure seen at another cap
/// belongs to another distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    cap: u32,
    /// The cap figures were recorded at before this one (0: none).
    previous_cap: u32,
    values: [f64; KEPT],
    len: usize,
    next: usize,
}

impl Spread {
    /// Records the response reported at `cap` (what the cap was over the
    /// interval the figure covers).
    pub fn record(&mut self, cap: u32, response_ms: f64) {
        if cap != self.cap {
            *self = Self {
                cap,
                previous_cap: self.cap,
                ..Self::default()
            };
        }
        if !response_ms.is_finite() {
            return;
        }
        self.values[self.next] = response_ms.max(0.0);
        self.next = (self.next + 1) % KEPT;
        self.len = (self.len + 1).min(KEPT);
    }

    /// The cap the domain used its CPU at before its present one (0: none
    /// since it was last idle).
    pub fn previous_cap(&self) -> u32 {
        self.previous_cap
    }

    /// Forgets everything: the load changed (the domain went idle).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The response a second may still reach at this cap (mean plus two
    /// standard deviations of the kept figures); None while too few.
    pub fn reach_ms(&self) -> Option<f64> {
        if self.len < ENOUGH {
            return None;
        }
        let values = &self.values[..self.len];
        let n = self.len as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Some(mean + SIGMAS * var.sqrt())
    }

    /// Whether a second at this cap may well land above `sla_ms`.
    pub fn at_risk(&self, sla_ms: f64) -> bool {
        self.reach_ms().is_some_and(|reach| reach > sla_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_figure_is_not_at_risk_a_noisy_one_with_the_same_mean_is() {
        let mut steady = Spread::default();
        let mut noisy = Spread::default();
        for i in 0..8 {
            steady.record(42, 700.0);
            noisy.record(42, if i % 2 == 0 { 550.0 } else { 850.0 });
        }
        assert!(!steady.at_risk(900.0));
        assert!(noisy.at_risk(900.0), "reach {:?}", noisy.reach_ms());
    }

    #[test]
    fn too_few_figures_say_nothing_and_a_new_cap_starts_afresh() {
        let mut spread = Spread::default();
        for v in [500.0, 900.0, 500.0] {
            spread.record(40, v);
        }
        assert_eq!(spread.reach_ms(), None);
        spread.record(40, 900.0);
        assert!(spread.at_risk(900.0));
        spread.record(44, 600.0);
        assert_eq!(spread.reach_ms(), None, "figures of cap 40 dropped");
        assert_eq!(spread.previous_cap(), 40);
        spread.clear();
        assert_eq!(spread.previous_cap(), 0);
    }

    #[test]
    fn only_the_last_figures_count_and_non_finite_ones_are_ignored() {
        let mut spread = Spread::default();
        for _ in 0..8 {
            spread.record(40, 2000.0);
        }
        for _ in 0..8 {
            spread.record(40, 600.0);
        }
        spread.record(40, f64::NAN);
        spread.record(40, f64::INFINITY);
        assert_eq!(spread.reach_ms(), Some(600.0));
    }
}
