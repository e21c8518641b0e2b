//! The pure engine: observations in, a plan out.
//!
//! Nothing in this module performs I/O or names a backend. The driver
//! ([`crate::host::driver`]) feeds it [`Snapshot`]s taken from a
//! [`crate::host::Host`] and applies the [`Plan`] it returns.

pub mod decompose;
pub mod limits;
pub mod model;
pub mod monitor;
pub mod policy;
pub mod sla;
#[cfg(test)]
mod testutil;

pub use model::*;
pub use monitor::{Monitor, Usage};
pub use policy::{Culprit, Law, Misfit, Policy, PolicyError, Urgency};
pub use sla::{DecompTable, DomainPolicy, HostPolicy, Level, PolicyConfig};

/// What one engine step saw and decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub usage: Vec<Usage>,
    pub plan: Plan,
}

/// Monitor + policy, stepped once per tick.
#[derive(Debug)]
pub struct Engine {
    monitor: Monitor,
    policy: Policy,
}

impl Engine {
    pub fn new(config: PolicyConfig) -> Self {
        Self::with_law(config, Law::Rex)
    }

    /// An engine deciding by `law`; baselines are for comparisons only.
    pub fn with_law(config: PolicyConfig, law: Law) -> Self {
        Self {
            monitor: Monitor::new(config.host.smoothing),
            policy: Policy::with_law(config, law),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        self.policy.config()
    }

    /// The policy of domain `name` if rex manages it; O(1), unlike
    /// `config().domain(name)`, which scans.
    pub fn domain_policy(&self, name: &str) -> Option<&DomainPolicy> {
        self.policy.domain(name)
    }

    /// Checks the current policy against the host's capacity (see
    /// [`Policy::validate`]; check a new configuration with that before
    /// [`Engine::set_config`]).
    pub fn validate(&self, host: &HostInfo) -> Result<(), PolicyError> {
        Policy::validate(self.policy.config(), host)
    }

    /// Replaces the configuration (SIGHUP reload). Usage history and
    /// cooldowns are kept.
    pub fn set_config(&mut self, config: PolicyConfig) {
        self.monitor.set_smoothing(config.host.smoothing);
        self.policy.set_config(config);
    }

    /// Gives domain `name` a new SLA level from the next step on
    /// ([`Reason::SlaChanged`]). False if no domain of that name is configured.
    pub fn set_level(&mut self, name: &str, level: Level) -> bool {
        self.policy.set_level(name, level)
    }

    /// Updates usage from `snapshot` without deciding anything (a paused
    /// daemon): the next [`Engine::step`] measures CPU from here.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Vec<Usage> {
        self.monitor.observe(snapshot)
    }

    /// [`Engine::observe`] into `usage` (emptied first, its memory reused).
    pub fn observe_into(&mut self, snapshot: &Snapshot, usage: &mut Vec<Usage>) {
        self.monitor.observe_into(snapshot, usage)
    }

    /// Whether domain `name`'s published values, `before` at the last tick
    /// and `now`, changed so that a decision should not wait for the next
    /// tick (see [`Urgency`]).
    pub fn urgency(&self, name: &str, before: &GuestReport, now: &GuestReport) -> Option<Urgency> {
        self.policy.urgency(name, before, now)
    }

    /// One tick: update usage from `snapshot`, decide a plan.
    pub fn step(&mut self, snapshot: &Snapshot) -> Tick {
        self.step_reusing(snapshot, Vec::new())
    }

    /// [`Engine::step`], its usage listed in `spent` (an earlier tick's
    /// list, emptied here), whose memory is reused.
    pub fn step_reusing(&mut self, snapshot: &Snapshot, mut spent: Vec<Usage>) -> Tick {
        self.monitor.observe_into(snapshot, &mut spent);
        let plan = self.policy.decide(&snapshot.host, &spent);
        Tick { usage: spent, plan }
    }
}
