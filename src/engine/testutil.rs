//! Builders shared by the engine's unit tests.

use super::model::*;
use super::monitor::Usage;
use super::sla::{DomainPolicy, Level};

pub const SEC: u64 = 1_000_000_000;

pub fn domain(domid: DomId, name: &str, cpu_time_ns: u64) -> DomainObservation {
    let mut uuid = [0u8; 16];
    uuid[..4].copy_from_slice(&domid.to_le_bytes());
    DomainObservation {
        info: DomainInfo {
            domid,
            name: name.to_string(),
            uuid,
            vcpus_online: 1,
            cpu_time_ns,
            mem_current_kb: 65_536,
            mem_target_kb: 65_536,
            mem_max_kb: 262_144,
            state: DomainState::Running,
        },
        sched: SchedParams {
            weight: 256,
            cap: 20,
        },
        report: GuestReport::default(),
    }
}

pub fn host(guest_pcpus: u32, free_mem_kb: KiB) -> HostInfo {
    HostInfo {
        guest_pcpus,
        total_mem_kb: 1 << 20,
        free_mem_kb,
        scheduler: Scheduler::Credit,
    }
}

pub fn snapshot(at_ns: u64, domains: Vec<DomainObservation>) -> Snapshot {
    Snapshot {
        at_ns,
        host: host(1, 512 * 1024),
        domains,
    }
}

/// A usage row as the monitor would produce it after a few samples.
pub fn usage(domid: DomId, name: &str, cap: u32, cpu_pct: f64) -> Usage {
    Usage {
        domid,
        name: name.into(),
        cpu_pct,
        cpu_pct_raw: cpu_pct,
        vcpus: 1,
        sched: SchedParams { weight: 256, cap },
        mem_current_kb: 65_536,
        mem_target_kb: 65_536,
        mem_max_kb: 262_144,
        mem_used_kb: None,
        report: GuestReport::default(),
        has_cpu_sample: true,
        cpu_time_ns: 0,
    }
}

/// A domain policy for the memory tests: a 64 MiB level and floor, a
/// 512 MiB ceiling, caps 5..=80 around a 20% level.
pub fn memory_domain(name: &str, sla_ms: Option<f64>) -> DomainPolicy {
    const MIB: KiB = 1024;
    DomainPolicy {
        name: name.to_string(),
        sla_ms,
        level: Level {
            load: 0,
            cap_pct: 20,
            mem_kb: 64 * MIB,
        },
        cap_min: 5,
        cap_max: 80,
        mem_min_kb: 64 * MIB,
        mem_max_kb: 512 * MIB,
        weight: 256,
        priority: 0,
    }
}
