//! Monitor: turns successive snapshots into per-domain usage.
//!
//! CPU use is the growth of a domain's CPU time between two snapshots,
//! divided by the time between them, in percent of one pCPU (the unit of
//! Xen's cap), smoothed with an exponentially weighted moving average.
//! Guest-reported values arrive sanitised by the host layer (one owner:
//! `host::guest::parse_report`, which every backend's reads go through).

use std::sync::Arc;

use super::model::{DomId, DomainObservation, GuestReport, KiB, SchedParams, Snapshot};

/// One domain's usage as of the latest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub domid: DomId,
    /// Shared with the monitor's history: a tick copies no name (at 10,000
    /// domains, a fresh string each was a fifth of a step).
    pub name: Arc<str>,
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
    /// Guest-reported values, as the host sanitised them.
    pub report: GuestReport,
    /// False on a domain's first sample (no CPU delta yet).
    pub has_cpu_sample: bool,
    /// CPU time the domain has used since it was created (Xen's counter).
    pub cpu_time_ns: u64,
}

/// What the monitor remembers of a domain between snapshots.
#[derive(Debug, Clone)]
struct History {
    domid: DomId,
    uuid: [u8; 16],
    name: Arc<str>,
    at_ns: u64,
    cpu_time_ns: u64,
    /// Smoothed and raw CPU use, once there has been a delta.
    cpu_pct: Option<(f64, f64)>,
}

/// Keeps the previous sample of each domain to compute deltas.
#[derive(Debug)]
pub struct Monitor {
    smoothing: f64,
    /// One entry per domain of the last snapshot, sorted by domid: a tick is
    /// a merge of two sorted lists, with no hashing.
    history: Vec<History>,
    /// The list before, emptied: the next tick's is built in it, so a
    /// steady host allocates no history (at 10,000 domains, fresh pages
    /// each tick cost as much as the merge itself).
    spare: Vec<History>,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Monitor {
    /// `smoothing` is the weight of the newest sample in the EWMA, in (0, 1];
    /// 1 means no smoothing. Values outside that range mean no smoothing.
    pub fn new(smoothing: f64) -> Self {
        Self {
            smoothing: sane_smoothing(smoothing),
            history: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Changes the smoothing factor (on a configuration reload); history is kept.
    pub fn set_smoothing(&mut self, smoothing: f64) {
        self.smoothing = sane_smoothing(smoothing);
    }

    /// Usage of every alive domain in `snapshot` (dom0 included), sorted by
    /// domid. Domains that died or vanished are forgotten.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Vec<Usage> {
        let mut usage = Vec::new();
        self.observe_into(snapshot, &mut usage);
        usage
    }

    /// [`Monitor::observe`] into `usage`, emptied first: a caller that
    /// hands back the last tick's list has its memory filled again (at
    /// 10,000 domains, fresh pages for a new list cost a tenth of a step).
    pub fn observe_into(&mut self, snapshot: &Snapshot, usage: &mut Vec<Usage>) {
        let mut previous = std::mem::take(&mut self.history);
        let mut history = std::mem::take(&mut self.spare);
        history.reserve(snapshot.domains.len());
        usage.clear();
        usage.reserve(snapshot.domains.len());
        let mut known = previous.drain(..).peekable();
        let mut visit = |obs: &DomainObservation| {
            let domid = obs.info.domid;
            while known.next_if(|h| h.domid < domid).is_some() {}
            let known = known.next_if(|h| h.domid == domid);
            let (row, kept) = self.observe_domain(snapshot.at_ns, obs, known);
            usage.push(row);
            history.push(kept);
        };
        let alive = |d: &&DomainObservation| d.info.state.is_alive();
        // Backends list in domid order; otherwise, sort a copy.
        let domains = &snapshot.domains;
        if domains
            .windows(2)
            .all(|w| w[0].info.domid < w[1].info.domid)
        {
            domains.iter().filter(alive).for_each(&mut visit);
        } else {
            let mut sorted: Vec<&DomainObservation> = domains.iter().filter(alive).collect();
            sorted.sort_by_key(|d| d.info.domid);
            // A backend listing one domid twice is broken; the first one wins.
            sorted.dedup_by_key(|d| d.info.domid);
            sorted.into_iter().for_each(&mut visit);
        }
        drop(known);
        self.history = history;
        self.spare = previous;
    }

    fn observe_domain(
        &self,
        at_ns: u64,
        obs: &DomainObservation,
        known: Option<History>,
    ) -> (Usage, History) {
        let info = &obs.info;
        let ceiling_pct = f64::from(info.vcpus_online) * 100.0;
        // The same domid with another uuid, or CPU time going backwards, is a
        // new domain that reused the id: its old history means nothing.
        let mut history = known
            .filter(|h| h.uuid == info.uuid && info.cpu_time_ns >= h.cpu_time_ns)
            .unwrap_or_else(|| History {
                domid: info.domid,
                uuid: info.uuid,
                name: Arc::from(info.name.as_str()),
                at_ns,
                cpu_time_ns: info.cpu_time_ns,
                cpu_pct: None,
            });
        // A domain can be renamed (`xl rename`) and keep its history.
        if *history.name != *info.name {
            history.name = Arc::from(info.name.as_str());
        }
        if at_ns > history.at_ns {
            let delta_cpu = (info.cpu_time_ns - history.cpu_time_ns) as f64;
            let delta_at = (at_ns - history.at_ns) as f64;
            let raw = (delta_cpu / delta_at * 100.0).clamp(0.0, ceiling_pct);
            let smoothed = match history.cpu_pct {
                Some((previous, _)) => self.smoothing * raw + (1.0 - self.smoothing) * previous,
                None => raw,
            };
            history.cpu_pct = Some((smoothed.clamp(0.0, ceiling_pct), raw));
            history.at_ns = at_ns;
            history.cpu_time_ns = info.cpu_time_ns;
        }
        // When time did not advance, the previous figures stand.
        let (cpu_pct, cpu_pct_raw) = history.cpu_pct.unwrap_or((0.0, 0.0));

        let report = obs.report;
        let mem_used_kb = match (report.mem_total_kb, report.mem_free_kb) {
            (Some(total), Some(free)) => Some(total.saturating_sub(free)),
            _ => None,
        };
        let usage = Usage {
            domid: info.domid,
            name: Arc::clone(&history.name),
            cpu_pct,
            cpu_pct_raw,
            vcpus: info.vcpus_online,
            sched: obs.sched,
            mem_current_kb: info.mem_current_kb,
            mem_target_kb: info.mem_target_kb,
            mem_max_kb: info.mem_max_kb,
            mem_used_kb,
            report,
            has_cpu_sample: history.cpu_pct.is_some(),
            cpu_time_ns: info.cpu_time_ns,
        };
        (usage, history)
    }
}

fn sane_smoothing(smoothing: f64) -> f64 {
    if smoothing > 0.0 && smoothing <= 1.0 {
        smoothing
    } else {
        1.0
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
