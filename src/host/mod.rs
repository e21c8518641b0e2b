//! Hosts: where observations come from and where plans are applied.
//!
//! One trait, [`Host`], with one backend per way of reaching Xen, as
//! cloud-hypervisor's `hypervisor` crate does for KVM and MSHV:
//! - [`sim`]: the deterministic simulated host (no Xen needed);
//! - `libxl`: libxl in process (rex's way, and ReX's);
//! - `exec`: fork/exec of `xl` for every change (SRX's way).
//!
//! The engine never sees which one it is talking to.

use crate::engine::{DomId, DomainInfo, GuestReport, HostInfo, KiB, SchedParams, Scheduler};

pub mod driver;
pub mod events;
pub mod exec;
pub mod guest;
pub mod guest_keys;
pub mod libxl;
pub mod sim;
mod xen;

pub use events::EventSource;
pub use xen::{open, Backend, XenHost};

/// The error of a [`Host`] call: one variant per operation, each carrying the
/// backend's own error as its source.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("no hypervisor: {0}")]
    Unavailable(String),
    #[error("listing domains failed")]
    ListDomains(#[source] BoxError),
    #[error("reading host information failed")]
    HostInfo(#[source] BoxError),
    #[error("reading scheduler parameters of domain {domid} failed")]
    GetSched {
        domid: DomId,
        #[source]
        source: BoxError,
    },
    #[error("setting scheduler parameters of domain {domid} failed")]
    SetSched {
        domid: DomId,
        #[source]
        source: BoxError,
    },
    #[error("setting memory target of domain {domid} failed")]
    SetMemory {
        domid: DomId,
        #[source]
        source: BoxError,
    },
    #[error("publishing the uncooperative flag of domain {domid} failed")]
    SetFlag {
        domid: DomId,
        #[source]
        source: BoxError,
    },
    #[error("reading guest-reported values of domain {domid} failed")]
    GuestReport {
        domid: DomId,
        #[source]
        source: BoxError,
    },
    #[error("libxl event loop")]
    Events(#[source] BoxError),
    #[error("domain {0} does not exist")]
    NoSuchDomain(DomId),
}

/// A backend's own error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the engine needs from a host, and nothing more.
pub trait Host {
    /// Monotonic time now, ns. The simulator returns simulated time.
    fn now_ns(&mut self) -> u64;
    /// Every domain, dom0 included, in one call.
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError>;
    /// pCPUs available to guests, memory, scheduler.
    fn host_info(&mut self) -> Result<HostInfo, HostError>;
    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError>;
    /// Sets the domain's scheduler cap (percent of one pCPU, 0 =
    /// uncapped), leaving its weight as it is.
    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError>;
    /// Sets the domain's scheduler weight, leaving its cap as it is.
    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError>;
    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError>;
    /// The scheduler of the cpupool `domid` runs in (a domain may sit in
    /// another pool than the guests'); `None` when the backend cannot tell
    /// (the guests' scheduler, from `host_info`, is then the one).
    fn domain_scheduler(&mut self, _domid: DomId) -> Result<Option<Scheduler>, HostError> {
        Ok(None)
    }

    /// Publishes (or withdraws) that the domain's balloon is uncooperative:
    /// xenstore `memory/uncooperative`, squeezed's flag. A backend with no
    /// such channel has nothing to publish.
    fn set_uncooperative(&mut self, _domid: DomId, _uncooperative: bool) -> Result<(), HostError> {
        Ok(())
    }
    /// Values the guest publishes about itself (untrusted). A backend that
    /// has no channel for them returns the empty report.
    fn guest_report(&mut self, _domid: DomId) -> Result<GuestReport, HostError> {
        Ok(GuestReport::default())
    }
}
