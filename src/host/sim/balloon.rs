//! The balloon driver: moves a domain's memory towards its target at a
//! finite rate, as a real guest's balloon does when it has to find (or
//! give back) pages.

use crate::engine::KiB;

/// One domain's balloon.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Balloon {
    pub current_kb: KiB,
    pub target_kb: KiB,
    pub max_kb: KiB,
    /// kB per second; 0 means the balloon reaches its target within a step.
    pub rate_kb_s: KiB,
    /// A stuck balloon (guest driver hung) ignores its target.
    pub stuck: bool,
    /// Thousandths of a kB carried between steps, so slow rates still move
    /// and the balloon's path is exact.
    carry_milli_kb: u64,
}

impl Balloon {
    pub(super) fn new(current_kb: KiB, max_kb: KiB, rate_kb_s: KiB) -> Self {
        Self {
            current_kb,
            target_kb: current_kb,
            max_kb,
            rate_kb_s,
            stuck: false,
            carry_milli_kb: 0,
        }
    }

    /// Moves towards the target for `step_ms`. Growth is limited to
    /// `host_free_kb`: a balloon cannot take pages Xen does not have.
    /// Returns the change in kB (positive when growing).
    pub(super) fn step(&mut self, step_ms: u64, host_free_kb: KiB) -> i64 {
        if self.stuck || self.current_kb == self.target_kb {
            self.carry_milli_kb = 0;
            return 0;
        }
        let allowance = if self.rate_kb_s == 0 {
            KiB::MAX
        } else {
            // kB/s × ms = thousandths of a kB.
            self.carry_milli_kb = self
                .carry_milli_kb
                .saturating_add(self.rate_kb_s.saturating_mul(step_ms));
            let whole = self.carry_milli_kb / 1000;
            self.carry_milli_kb %= 1000;
            whole
        };
        if self.target_kb > self.current_kb {
            let grow = (self.target_kb - self.current_kb)
                .min(allowance)
                .min(host_free_kb);
            self.current_kb += grow;
            grow as i64
        } else {
            let shrink = (self.current_kb - self.target_kb).min(allowance);
            self.current_kb -= shrink;
            -(shrink as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_at_its_rate_in_both_directions() {
        let mut b = Balloon::new(65536, 131072, 1000);
        b.target_kb = 70000;
        assert_eq!(b.step(10, u64::MAX), 10);
        assert_eq!(b.current_kb, 65546);
        b.target_kb = 60000;
        for _ in 0..100 {
            b.step(10, u64::MAX);
        }
        assert_eq!(b.current_kb, 65546 - 1000);
    }

    #[test]
    fn slow_rates_accumulate_fractions() {
        let mut b = Balloon::new(1000, 2000, 50); // 0.5 kB per 10 ms step
        b.target_kb = 2000;
        for _ in 0..100 {
            b.step(10, u64::MAX);
        }
        assert_eq!(b.current_kb, 1050);
    }

    #[test]
    fn stops_at_the_target_and_when_stuck() {
        let mut b = Balloon::new(1000, 2000, 0);
        b.target_kb = 1500;
        b.step(10, u64::MAX);
        assert_eq!(b.current_kb, 1500);
        b.stuck = true;
        b.target_kb = 1000;
        assert_eq!(b.step(10, u64::MAX), 0);
        assert_eq!(b.current_kb, 1500);
    }

    #[test]
    fn growth_is_limited_by_host_free_memory() {
        let mut b = Balloon::new(1000, 2000, 0);
        b.target_kb = 2000;
        assert_eq!(b.step(10, 300), 300);
        assert_eq!(b.current_kb, 1300);
    }
}
