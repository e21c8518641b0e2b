//! Decisions that do not wait for the tick. When a watch says a managed
//! guest published new values and they put it in a class that acts
//! (memory pressure appears, an SLA miss appears: [`Urgency`]), the daemon
//! ticks early instead of up to an interval later.
//!
//! Rate-limited, so a guest writing its keys in a loop cannot make rex
//! spin: a domain's values are looked at (read) at most once per interval
//! between ticks, and an early tick comes no sooner than a quarter of an
//! interval after the last tick of any kind. What is held back is counted,
//! and still seen by the next tick.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::engine::{DomId, Urgency};
use crate::host::driver::Driver;
use crate::host::guest_keys::KeyCounters;
use crate::host::{EventSource, Host};

/// What the loop did with watch events, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoopCounters {
    /// Ticks run before their time for an urgent change.
    pub early_ticks: u64,
    /// Changes not looked at before the next tick (the domain was looked
    /// at less than an interval before).
    pub limited: u64,
    /// The guests' keys: reads and watch events.
    pub keys: KeyCounters,
}

/// An urgent change found, to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub domid: DomId,
    pub name: String,
    pub urgency: Urgency,
}

/// The longest wait between a tick and an early one.
const MAX_SPACING: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct Reactions {
    /// When each domain's values were last looked at between ticks.
    looked: HashMap<DomId, Instant>,
    /// Names of the domains of the last tick, with the tick that saw each.
    names: HashMap<DomId, (String, u64)>,
    generation: u64,
    pub counters: LoopCounters,
}

impl Reactions {
    /// The domains of the tick just run (their names, for the policy).
    /// (A name is copied only when it is new for its domid: a tick of an
    /// unchanged host allocates nothing here.)
    pub fn ticked<'a>(&mut self, domains: impl IntoIterator<Item = (DomId, &'a str)>) {
        self.generation += 1;
        let generation = self.generation;
        for (domid, name) in domains {
            match self.names.get_mut(&domid) {
                Some((known, seen)) if known == name => *seen = generation,
                _ => {
                    self.names.insert(domid, (name.to_string(), generation));
                }
            }
        }
        self.names.retain(|_, (_, seen)| *seen == generation);
        let names = &self.names;
        self.looked.retain(|d, _| names.contains_key(d));
    }

    /// Looks at the domains whose values changed (each at most once per
    /// `interval`); the first urgent one, if any.
    pub fn look<H: Host + EventSource>(
        &mut self,
        driver: &mut Driver<H>,
        changed: &[DomId],
        now: Instant,
        interval: Duration,
    ) -> Option<Reaction> {
        let mut found = None;
        for &domid in changed {
            let Some((name, _)) = self.names.get(&domid) else {
                continue;
            };
            if driver.engine().domain_policy(name).is_none() {
                continue;
            }
            if self
                .looked
                .get(&domid)
                .is_some_and(|&at| now.duration_since(at) < interval)
            {
                self.counters.limited += 1;
                continue;
            }
            self.looked.insert(domid, now);
            let reports = driver.host_mut().since_tick(domid).unwrap_or_else(|e| {
                log::debug!("domain {domid}: {e}");
                None
            });
            let Some((before, after)) = reports else {
                continue;
            };
            if found.is_none() {
                if let Some(urgency) = driver.engine().urgency(name, &before, &after) {
                    found = Some(Reaction {
                        domid,
                        name: name.clone(),
                        urgency,
                    });
                }
            }
        }
        found
    }

    /// When an early tick may run: now, but not within a quarter of an
    /// interval (at most 250 ms) of the last tick.
    pub fn early_at(last_tick: Instant, now: Instant, interval: Duration) -> Instant {
        now.max(last_tick + (interval / 4).min(MAX_SPACING))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_follow_the_last_tick() {
        let mut r = Reactions::default();
        r.ticked([(1, "vm1"), (2, "vm2")]);
        r.looked.insert(2, Instant::now());
        r.ticked([(1, "vm1"), (3, "vm3")]);
        r.ticked([(1, "web"), (3, "vm3")]);
        let mut names: Vec<_> = r.names.iter().map(|(d, (n, _))| (*d, n.as_str())).collect();
        names.sort_unstable();
        assert_eq!(names, vec![(1, "web"), (3, "vm3")]);
        assert!(r.looked.is_empty(), "domain 2 is gone");
    }

    #[test]
    fn an_early_tick_keeps_a_quarter_interval_from_the_last() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(1000);
        assert_eq!(
            Reactions::early_at(t0, t0 + Duration::from_millis(100), interval),
            t0 + Duration::from_millis(250)
        );
        assert_eq!(
            Reactions::early_at(t0, t0 + Duration::from_millis(600), interval),
            t0 + Duration::from_millis(600)
        );
        let hour = Duration::from_secs(3600);
        assert_eq!(
            Reactions::early_at(t0, t0, hour),
            t0 + Duration::from_millis(250)
        );
    }
}
