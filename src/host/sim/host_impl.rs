//! The simulated host seen through the [`Host`] trait, as the engine's
//! driver uses it, and what its guests publish.

use super::{config, Domain, SimHost};
use crate::engine::{DomId, DomainInfo, GuestReport, HostInfo, KiB, SchedParams, Scheduler};
use crate::host::{guest, Host, HostError};

impl SimHost {
    /// The bytes a domain publishes under the guest keys. The simulated
    /// agent bumps its counter every second (and says no period: 1 s).
    pub(super) fn published(domain: &Domain, now_ns: u64) -> guest::Published {
        if let Some(values) = &domain.guest_override {
            return values.clone();
        }
        let Some(workload) = &domain.workload else {
            return guest::Published::default();
        };
        let total = domain.mem_total_kb();
        let free = total.saturating_sub(domain.working_set_kb);
        guest::Published {
            free: Some(free.to_string().into_bytes()),
            total: Some(total.to_string().into_bytes()),
            response: workload
                .recent_mean_ms()
                .map(|ms| format!("{ms:.3}").into_bytes()),
            seq: Some((now_ns / 1_000_000_000).to_string().into_bytes()),
            period_ms: None,
        }
    }
}

impl Host for SimHost {
    fn now_ns(&mut self) -> u64 {
        self.now_ns
    }

    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        let total = self.host_mem_kb;
        Ok(self.domains.iter().map(|d| d.info(total)).collect())
    }

    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        Ok(HostInfo {
            guest_pcpus: self.guest_pcpus,
            total_mem_kb: self.host_mem_kb,
            free_mem_kb: self.free_mem_kb(),
            scheduler: Scheduler::Credit2,
        })
    }

    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError> {
        // A dying domain still has its parameters, as in Xen.
        self.by_domid(domid)
            .map(|d| d.sched)
            .ok_or(HostError::NoSuchDomain(domid))
    }

    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError> {
        self.set_sched(domid, |params| params.cap = cap)
    }

    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError> {
        self.set_sched(domid, |params| params.weight = weight)
    }

    // set_uncooperative: the trait's default. Nothing in the simulated
    // host reads the flag back (rex never does either); `rex simulate`
    // counts the flags from the applied changes.

    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError> {
        self.counters.set_memory += 1;
        let result = self.live_by_domid(domid).and_then(|domain| {
            if target_kb > domain.balloon.max_kb {
                return Err(HostError::SetMemory {
                    domid,
                    source: format!(
                        "target {target_kb} kB exceeds the maximum {} kB",
                        domain.balloon.max_kb
                    )
                    .into(),
                });
            }
            domain.balloon.target_kb = target_kb;
            domain.xen_max_kb = target_kb + super::XEN_MAX_SLACK_KB;
            Ok(())
        });
        if result.is_err() {
            self.counters.rejected += 1;
        }
        result
    }

    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        let now_ns = self.now_ns;
        let host_mem_kb = self.host_mem_kb;
        let domain = self
            .by_domid_mut(domid)
            .ok_or(HostError::NoSuchDomain(domid))?;
        if !domain.state.is_alive() {
            // A dying guest's xenstore directory is going away.
            return Ok(GuestReport::default());
        }
        let values = Self::published(domain, now_ns);
        let max_kb = domain.ceiling_kb(host_mem_kb);
        Ok(values.report(&mut domain.heartbeat, domid, max_kb, now_ns))
    }
}

impl SimHost {
    /// One setting changed as `change` says, the other kept; Xen's rules
    /// checked on the result, as libxl would.
    fn set_sched(
        &mut self,
        domid: DomId,
        change: impl FnOnce(&mut SchedParams),
    ) -> Result<(), HostError> {
        self.counters.set_sched += 1;
        let result = self.live_by_domid(domid).and_then(|domain| {
            let mut params = domain.sched;
            change(&mut params);
            config::check_sched(params.weight, params.cap, domain.vcpus)
                .map(|()| domain.sched = params)
                .map_err(|reason| HostError::SetSched {
                    domid,
                    source: reason.into(),
                })
        });
        if result.is_err() {
            self.counters.rejected += 1;
        }
        result
    }
}
