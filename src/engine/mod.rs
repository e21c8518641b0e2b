//! The pure engine: observations in, a plan out.
//!
//! Nothing in this module performs I/O or names a backend. The driver
//! ([`crate::host::driver`]) feeds it [`Snapshot`]s taken from a
//! [`crate::host::Host`] and applies the [`Plan`] it returns.

pub mod decompose;
pub mod model;
pub mod monitor;
pub mod policy;
pub mod sla;

pub use model::*;
pub use monitor::{Monitor, Usage};
pub use policy::{Policy, PolicyError};
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
        Self {
            monitor: Monitor::new(config.host.smoothing),
            policy: Policy::new(config),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        self.policy.config()
    }

    /// Checks the policy against the host's capacity.
    // Placeholder until the policy's own validation lands (engine helper).
    pub fn validate(&self, _host: &HostInfo) -> Result<(), PolicyError> {
        Ok(())
    }

    /// One tick: update usage from `snapshot`, decide a plan.
    pub fn step(&mut self, snapshot: &Snapshot) -> Tick {
        let usage = self.monitor.observe(snapshot);
        let plan = self.policy.decide(&snapshot.host, &usage);
        Tick { usage, plan }
    }
}
