//! Monitor: turns successive snapshots into per-domain usage.
//! (Owned by the engine work; see the engine issue.)

use super::model::{DomId, GuestReport, KiB, SchedParams, Snapshot};

/// One domain's usage as of the latest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub domid: DomId,
    pub name: String,
    /// Smoothed CPU use, percent of one pCPU (the unit of Xen's cap).
    pub cpu_pct: f64,
    /// Unsmoothed CPU use over the last interval.
    pub cpu_pct_raw: f64,
    pub vcpus: u32,
    pub sched: SchedParams,
    pub mem_current_kb: KiB,
    pub mem_target_kb: KiB,
    pub mem_max_kb: KiB,
    /// Memory in use inside the guest (total − free), when it reports it.
    pub mem_used_kb: Option<KiB>,
    /// Guest-reported values after clamping.
    pub report: GuestReport,
    /// False on a domain's first sample (no CPU delta yet).
    pub has_cpu_sample: bool,
}

/// Keeps the previous sample of each domain to compute deltas.
#[derive(Debug, Default)]
pub struct Monitor {
    _todo: (),
}

impl Monitor {
    pub fn new(_smoothing: f64) -> Self {
        Self::default()
    }

    pub fn observe(&mut self, _snapshot: &Snapshot) -> Vec<Usage> {
        unimplemented!("engine issue")
    }
}
