//! Policy: usage + SLA model + host capacity → a plan.
//! (Owned by the engine work; see the engine issue.)

use super::model::{HostInfo, Plan};
use super::monitor::Usage;
use super::sla::PolicyConfig;

/// A policy that cannot be applied on this host.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The decision maker; keeps per-domain cooldowns between ticks.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    pub fn decide(&mut self, _host: &HostInfo, _usage: &[Usage]) -> Plan {
        unimplemented!("engine issue")
    }
}
