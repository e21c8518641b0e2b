//! The driver: observe a [`Host`], step the [`Engine`], apply the plan.
//!
//! This is the loop body shared by `rex simulate`, `rex run` and `xl rex`;
//! only the waiting between ticks differs.

use std::time::{Duration, Instant};

use super::{Host, HostError};
use crate::engine::{
    Action, Change, DomainObservation, Engine, GuestReport, HostInfo, PolicyError, Snapshot, Usage,
};
use crate::error_chain;

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
}

impl TickReport {
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
    timings: Vec<Duration>,
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
            timings: Vec::new(),
        })
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

    /// Duration of every reallocation applied so far.
    pub fn timings(&self) -> &[Duration] {
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
        let snapshot = self.observe()?;
        let tick = self.engine.step(&snapshot);
        let host = snapshot.host.clone();
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
        })
    }

    /// A tick that observes but decides and changes nothing (the daemon is
    /// paused): usage stays current for `rex status`, and the engine's
    /// cooldowns and balloon windows are not advanced.
    pub fn observe_only(&mut self) -> Result<TickReport, HostError> {
        let snapshot = self.observe()?;
        let usage = self.engine.observe(&snapshot);
        Ok(TickReport {
            at_ns: snapshot.at_ns,
            host: snapshot.host,
            usage,
            applied: Vec::new(),
            dry_run: self.dry_run,
        })
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
