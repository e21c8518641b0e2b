//! Anti-flapping: a domain's last change of each resource, and the cooldown
//! that keeps a steady load from moving it up and down.

/// Which way a resource moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// The last load-driven change of one resource of one domain. Changes that
/// restore a bound (guarantee, ceiling, pool) are not recorded: they are not
/// a reaction to load, so they cannot start a flap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trend {
    last: Option<(Direction, u64)>,
    /// No load-driven change before this tick.
    quiet_until: u64,
}

impl Trend {
    /// Whether a load-driven change in `direction` may be made at `tick`:
    /// not while the domain is left alone after a change of direction, and
    /// not the other way from the last change until `cooldown` ticks passed.
    pub fn allows(&self, direction: Direction, tick: u64, cooldown: u32) -> bool {
        if tick < self.quiet_until {
            return false;
        }
        match self.last {
            Some((last, at)) if last != direction => tick.saturating_sub(at) > u64::from(cooldown),
            _ => true,
        }
    }

    /// Whether the last load-driven change was a raise made at `tick` or later.
    pub fn raised_since(&self, tick: u64) -> bool {
        matches!(self.last, Some((Direction::Up, at)) if at >= tick)
    }

    /// Whether a load-driven change was made after `tick`.
    pub fn changed_after(&self, tick: u64) -> bool {
        matches!(self.last, Some((_, at)) if at > tick)
    }

    /// Records a change made at `tick`. A change of direction leaves the
    /// domain alone for the next `cooldown` ticks.
    pub fn record(&mut self, direction: Direction, tick: u64, cooldown: u32) {
        if matches!(self.last, Some((last, _)) if last != direction) {
            self.quiet_until = tick + 1 + u64::from(cooldown);
        }
        self.last = Some((direction, tick));
    }

    /// Records the change of a value decided from `current` to `to`, when it
    /// was made to follow load (not `forced`, to restore a bound): such a
    /// change starts a trend, and a reversal then waits for the cooldown.
    pub fn follow<T: Ord>(&mut self, current: T, to: T, forced: bool, tick: u64, cooldown: u32) {
        let direction = match to.cmp(&current) {
            _ if forced => return,
            std::cmp::Ordering::Equal => return,
            std::cmp::Ordering::Greater => Direction::Up,
            std::cmp::Ordering::Less => Direction::Down,
        };
        self.record(direction, tick, cooldown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversal_waits_for_the_cooldown_then_freezes() {
        let mut trend = Trend::default();
        assert!(trend.allows(Direction::Up, 1, 3));
        trend.record(Direction::Up, 1, 3);
        assert!(trend.allows(Direction::Up, 2, 3), "same direction goes on");
        assert!(!trend.allows(Direction::Down, 4, 3), "too soon to reverse");
        assert!(trend.allows(Direction::Down, 5, 3));
        trend.record(Direction::Down, 5, 3);
        for tick in 6..=8 {
            assert!(
                !trend.allows(Direction::Down, tick, 3),
                "left alone at {tick}"
            );
        }
        assert!(trend.allows(Direction::Down, 9, 3));
    }
}
