//! The driver: observe a [`Host`], step the [`Engine`], apply the plan.
//!
//! This is the loop body shared by `rex simulate`, `rex run` and `xl rex`;
//! only the waiting between ticks differs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Host, HostError};
use crate::engine::{
    Action, Change, DomId, DomainObservation, Engine, GuestReport, HostInfo, PolicyError,
    Shortfall, Snapshot, Usage,
};
use crate::error_chain;
use crate::stats::DurationLog;

/// Why a driver could not start. Nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("policy cannot be applied on this host")]
    Policy(#[from] PolicyError),
}

/// A change after the driver tried to apply it.
#[derive(Debug, Clone)]
pub struct AppliedChange {
    pub change: Change,
    /// Time of the host call that applied it (monotonic clock).
    pub elapsed: Duration,
    /// `None` when applied (or dry run); the host's error otherwise.
    pub error: Option<String>,
}

/// What one tick saw and did.
#[derive(Debug, Clone)]
pub struct TickReport {
    pub at_ns: u64,
    /// The host as this tick read it.
    pub host: HostInfo,
    pub usage: Vec<Usage>,
    pub applied: Vec<AppliedChange>,
    pub dry_run: bool,
    /// The tick only observed: `rex pause` holds every change.
    pub paused: bool,
    /// Domains whose balloon rex holds flagged uncooperative after this
    /// tick (the flags it will withdraw when it stops).
    pub uncooperative: BTreeSet<DomId>,
    /// Demand the plan could not meet (none while paused).
    pub shortfalls: Vec<Shortfall>,
    /// Time to observe the host and decide, before any change (monotonic).
    pub decided_in: Duration,
}

impl TickReport {
    /// What domain `domid` asked for at this tick and did not get.
    pub fn shortfall(&self, domid: DomId) -> Option<&Shortfall> {
        self.shortfalls.iter().find(|s| s.domid == domid)
    }

    /// The unmet demand of all domains: cap points (percent of one pCPU)
    /// and KiB.
    pub fn unmet_totals(&self) -> (u64, u64) {
        self.shortfalls.iter().fold((0, 0), |(cpu, mem), s| {
            (cpu + u64::from(s.cpu_pct), mem + s.mem_kb)
        })
    }

    /// Every domain's settings after this tick: what was observed, with
    /// the changes applied on top (none in a dry run).
    pub fn usage_after_changes(&self) -> Vec<Usage> {
        let mut usage = self.usage.clone();
        if self.dry_run {
            return usage;
        }
        for a in self.applied.iter().filter(|a| a.error.is_none()) {
            let Some(u) = usage.iter_mut().find(|u| u.domid == a.change.domid) else {
                continue;
            };
            match a.change.action {
                Action::Cap { to, .. } => u.sched.cap = to,
                Action::Weight { to, .. } => u.sched.weight = to,
                Action::Memory { to, .. } => u.mem_target_kb = to,
                Action::BalloonFlag { .. } => {}
            }
        }
        usage
    }
}

/// Runs the engine against one host.
pub struct Driver<H: Host> {
    host: H,
    engine: Engine,
    dry_run: bool,
    timings: DurationLog,
    /// Domains rex has flagged uncooperative in the host (xenstore), to
    /// withdraw the flags when rex stops: nobody enforces them then.
    flagged: BTreeSet<DomId>,
    /// A report's usage list handed back ([`Driver::recycle`]): the next
    /// tick lists usage in its memory.
    spent_usage: Vec<Usage>,
}

impl<H: Host> Driver<H> {
    /// Checks the policy against the host's capacity; applies nothing.
    pub fn new(mut host: H, engine: Engine, dry_run: bool) -> Result<Self, DriverError> {
        let info = host.host_info()?;
        engine.validate(&info)?;
        Ok(Self {
            host,
            engine,
            dry_run,
            timings: DurationLog::default(),
            flagged: BTreeSet::new(),
            spent_usage: Vec::new(),
        })
    }

    /// Takes back a report its reader is done with: its memory serves the
    /// next tick (at 10,000 domains, megabytes a tick not asked of the
    /// allocator again).
    pub fn recycle(&mut self, report: TickReport) {
        self.spent_usage = report.usage;
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Durations of the reallocations applied so far (bounded).
    pub fn timings(&self) -> &DurationLog {
        &self.timings
    }

    /// Reads everything the engine needs. A domain that vanishes between
    /// the list and the per-domain reads is left out of this snapshot.
    pub fn observe(&mut self) -> Result<Snapshot, HostError> {
        let at_ns = self.host.now_ns();
        let host = self.host.host_info()?;
        let infos = self.host.list_domains()?;
        let mut domains = Vec::with_capacity(infos.len());
        for info in infos {
            if !info.state.is_alive() {
                continue;
            }
            let sched = match self.host.sched_params(info.domid) {
                Ok(s) => s,
                Err(e) => {
                    log::debug!("domain {} skipped this tick: {e}", info.domid);
                    continue;
                }
            };
            let report = if info.domid != 0 && self.engine.domain_policy(&info.name).is_some() {
                self.host.guest_report(info.domid).unwrap_or_else(|e| {
                    log::debug!("no guest report from domain {}: {e}", info.domid);
                    GuestReport::default()
                })
            } else {
                GuestReport::default()
            };
            domains.push(DomainObservation {
                info,
                sched,
                report,
            });
        }
        Ok(Snapshot {
            at_ns,
            host,
            domains,
        })
    }

    /// One tick: observe, decide, apply (in the plan's order: memory
    /// shrinks come before grows).
    pub fn tick(&mut self) -> Result<TickReport, HostError> {
        let started = Instant::now();
        let snapshot = self.observe()?;
        let spent = std::mem::take(&mut self.spent_usage);
        let tick = self.engine.step_reusing(&snapshot, spent);
        let decided_in = started.elapsed();
        let host = snapshot.host.clone();
        // A domain gone takes its xenstore directory, and its flag, along.
        self.flagged
            .retain(|d| snapshot.domains.iter().any(|o| o.info.domid == *d));
        let shortfalls = tick.plan.shortfalls;
        let mut applied = Vec::with_capacity(tick.plan.changes.len());
        for change in tick.plan.changes {
            let (elapsed, error) = if self.dry_run {
                (Duration::ZERO, None)
            } else {
                let started = Instant::now();
                let result = self.apply(&change);
                let elapsed = started.elapsed();
                if result.is_ok() {
                    self.timings.push(elapsed);
                    if let Action::BalloonFlag { uncooperative } = change.action {
                        if uncooperative {
                            self.flagged.insert(change.domid);
                        } else {
                            self.flagged.remove(&change.domid);
                        }
                    }
                }
                (elapsed, result.err().map(|e| error_chain(&e)))
            };
            applied.push(AppliedChange {
                change,
                elapsed,
                error,
            });
        }
        Ok(TickReport {
            at_ns: snapshot.at_ns,
            host,
            usage: tick.usage,
            applied,
            dry_run: self.dry_run,
            paused: false,
            uncooperative: self.flagged.clone(),
            shortfalls,
            decided_in,
        })
    }

    /// A tick that observes but decides and changes nothing (the daemon is
    /// paused): usage stays current for `rex status`, and the engine's
    /// cooldowns and balloon windows are not advanced.
    pub fn observe_only(&mut self) -> Result<TickReport, HostError> {
        let started = Instant::now();
        let snapshot = self.observe()?;
        let mut usage = std::mem::take(&mut self.spent_usage);
        self.engine.observe_into(&snapshot, &mut usage);
        let decided_in = started.elapsed();
        Ok(TickReport {
            at_ns: snapshot.at_ns,
            host: snapshot.host,
            usage,
            applied: Vec::new(),
            dry_run: self.dry_run,
            paused: true,
            uncooperative: self.flagged.clone(),
            shortfalls: Vec::new(),
            decided_in,
        })
    }

    /// Removes every uncooperative flag rex set (rex is stopping): the
    /// domains flagged, each with the host's error if the removal failed.
    pub fn withdraw_flags(&mut self) -> Vec<(DomId, Option<String>)> {
        let flagged = std::mem::take(&mut self.flagged);
        flagged
            .into_iter()
            .map(|domid| {
                let result = self.host.set_uncooperative(domid, false);
                (domid, result.err().map(|e| error_chain(&e)))
            })
            .collect()
    }

    fn apply(&mut self, change: &Change) -> Result<(), HostError> {
        match change.action {
            Action::Cap { to, .. } => self.host.set_cap(change.domid, to),
            Action::Weight { to, .. } => self.host.set_weight(change.domid, to),
            Action::Memory { to, .. } => self.host.set_memory_target(change.domid, to),
            Action::BalloonFlag { uncooperative } => {
                self.host.set_uncooperative(change.domid, uncooperative)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::parse_policy_text;
    use crate::engine::{DomainInfo, DomainState, KiB, SchedParams, Scheduler};

    /// One guest whose balloon never moves, and a record of the flags set.
    #[derive(Default)]
    struct StuckBalloon {
        ticks: u64,
        target_kb: KiB,
        flags: Vec<(DomId, bool)>,
    }

    impl Host for StuckBalloon {
        fn now_ns(&mut self) -> u64 {
            self.ticks * 1_000_000_000
        }
        fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
            self.ticks += 1;
            Ok(vec![DomainInfo {
                domid: 4,
                name: "vm4".into(),
                uuid: [4; 16],
                vcpus_online: 1,
                cpu_time_ns: self.ticks * 10_000_000,
                mem_current_kb: 128 << 10,
                mem_target_kb: self.target_kb,
                mem_max_kb: self.target_kb + 1024,
                state: DomainState::Running,
            }])
        }
        fn host_info(&mut self) -> Result<HostInfo, HostError> {
            Ok(HostInfo {
                guest_pcpus: 1,
                total_mem_kb: 4 << 20,
                free_mem_kb: 2 << 20,
                scheduler: Scheduler::Credit2,
            })
        }
        fn sched_params(&mut self, _: DomId) -> Result<SchedParams, HostError> {
            Ok(SchedParams {
                weight: 256,
                cap: 20,
            })
        }
        fn set_cap(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
            Ok(())
        }
        fn set_weight(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
            Ok(())
        }
        fn set_memory_target(&mut self, _: DomId, target_kb: KiB) -> Result<(), HostError> {
            self.target_kb = target_kb;
            Ok(())
        }
        fn set_uncooperative(&mut self, domid: DomId, on: bool) -> Result<(), HostError> {
            self.flags.push((domid, on));
            Ok(())
        }
    }

    #[test]
    fn the_flags_rex_set_are_withdrawn_when_it_stops() {
        let config = parse_policy_text(
            "t.cfg",
            "balloon_timeout = 1000\n\
             domains = [ \"name=vm4,cap=20,cap_min=20,cap_max=40,memory=128M,mem_min=128M,mem_max=256M\" ]\n",
        )
        .unwrap();
        // The administrator asked 192 MiB; the guest holds 128 MiB and
        // does not move.
        let host = StuckBalloon {
            target_kb: 192 << 10,
            ..StuckBalloon::default()
        };
        let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
        let mut reported = BTreeSet::new();
        for _ in 0..10 {
            reported = driver.tick().unwrap().uncooperative;
            if !driver.host_mut().flags.is_empty() {
                break;
            }
        }
        assert_eq!(driver.host_mut().flags, vec![(4, true)], "flagged once");
        assert_eq!(reported, BTreeSet::from([4]), "the tick reports the flag");
        assert_eq!(driver.observe_only().unwrap().uncooperative, reported);
        assert_eq!(driver.withdraw_flags(), vec![(4, None)]);
        assert_eq!(driver.host_mut().flags, vec![(4, true), (4, false)]);
        assert!(
            driver.withdraw_flags().is_empty(),
            "nothing left to withdraw"
        );
        // Its target was set back to what it holds: after the probation rex
        // retries it (removing the flag again) and never flags it again.
        for _ in 0..20 {
            driver.tick().unwrap();
        }
        let flags = &driver.host_mut().flags;
        assert_eq!(flags.iter().filter(|f| f.1).count(), 1, "{flags:?}");
        assert_eq!(flags.last(), Some(&(4, false)), "{flags:?}");
        assert!(driver.withdraw_flags().is_empty());
    }
}
