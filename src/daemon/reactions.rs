//! Decisions that do not wait for the tick. When a watch says a managed
//! guest published new values and they put it in a class that acts
//! (memory pressure appears, an SLA miss appears: [`Urgency`]), the daemon
//! ticks early instead of up to an interval later.
//!
//! Rate-limited, so a guest writing its keys in a loop cannot make rex
//! spin: a domain's values are looked at (read) at most once per quarter
//! of an interval (250 ms at most) between ticks, a domain makes for at
//! most one early tick per interval, and an early tick comes no sooner than
//! a quarter of an interval after the last tick of any kind. What is held
//! back is counted, and still seen by the next tick.
//!
//! (Looks are spaced by less than an interval because an agent publishes
//! about once an interval: spaced by a whole one, the figure that shows
//! the pressure was left to the next tick about half the time.)

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
    /// at less than a quarter interval before, or made for an early tick
    /// less than an interval before).
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

/// The longest wait between a tick and an early one, and between two
/// looks at one domain.
const MAX_SPACING: Duration = Duration::from_millis(250);

/// A quarter of the interval, at most [`MAX_SPACING`].
fn spacing(interval: Duration) -> Duration {
    (interval / 4).min(MAX_SPACING)
}

#[derive(Debug, Default)]
pub struct Reactions {
    /// When each domain's values were last looked at between ticks.
    looked: HashMap<DomId, Instant>,
    /// When each domain last made for an early tick.
    reacted: HashMap<DomId, Instant>,
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
        self.reacted.retain(|d, _| names.contains_key(d));
    }

    /// Looks at the domains whose values changed (each at most once per
    /// quarter `interval`, and none that made for an early tick within
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
            let within = |at: Option<&Instant>, span: Duration| {
                at.is_some_and(|&at| now.saturating_duration_since(at) < span)
            };
            if within(self.looked.get(&domid), spacing(interval))
                || within(self.reacted.get(&domid), interval)
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
                    self.reacted.insert(domid, now);
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
        now.max(last_tick + spacing(interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::tests::{args, policy_file, pressure, Script, ScriptedHost, POLICY};
    use crate::engine::{Engine, GuestReport};

    /// An agent publishing about once an interval: each figure is looked
    /// at, so the one that shows pressure is decided on before the tick;
    /// then that domain makes for no second early tick within the interval.
    #[test]
    fn each_figure_of_an_agent_publishing_once_an_interval_is_looked_at() {
        let path = policy_file("reactions", POLICY);
        let config = crate::daemon::load(&args(path.clone(), Some(1000))).unwrap();
        let _ = std::fs::remove_file(path);
        let calm = GuestReport {
            mem_free_kb: Some(60 * 1024),
            mem_total_kb: Some(100 * 1024),
            ..GuestReport::default()
        };
        let mut script = Script::default();
        script.published = calm;
        script.ticked = calm;
        let host = ScriptedHost(script);
        let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
        let interval = Duration::from_millis(1000);
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut r = Reactions::default();
        r.ticked([(3, "vm1")]);
        assert_eq!(r.look(&mut driver, &[3], t0, interval), None);
        driver.host_mut().0.published = pressure();
        let reaction = r.look(&mut driver, &[3], t0 + ms(900), interval);
        assert_eq!(reaction.map(|r| r.domid), Some(3), "the pressure figure");
        assert_eq!(driver.host_mut().0.looks, 2);
        assert_eq!(r.counters.limited, 0);
        // Writing again and again: no look (and no early tick) for it until
        // an interval after the one it made for.
        driver.host_mut().0.published = calm;
        assert_eq!(r.look(&mut driver, &[3], t0 + ms(1300), interval), None);
        driver.host_mut().0.published = pressure();
        assert_eq!(r.look(&mut driver, &[3], t0 + ms(1800), interval), None);
        assert_eq!(driver.host_mut().0.looks, 2);
        assert_eq!(r.counters.limited, 2);
        // Within a quarter interval of a look, none either.
        let reaction = r.look(&mut driver, &[3], t0 + ms(1900), interval);
        assert_eq!(reaction.map(|r| r.domid), Some(3));
        assert_eq!(r.look(&mut driver, &[3], t0 + ms(2000), interval), None);
        assert_eq!(driver.host_mut().0.looks, 3);
        assert_eq!(r.counters.limited, 3);
    }

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
