//! What a simulated host is made of. Plain data: the scenario parser builds
//! these, [`super::SimHost::new`] checks them.

use crate::engine::limits::WEIGHT_RANGE;
use crate::engine::{DomId, KiB};

/// A simulated host.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds every random draw; same seed, same run.
    pub seed: u64,
    /// pCPUs the guests share (dom0 has its own and is not modelled on them).
    pub guest_pcpus: u32,
    pub host_mem_kb: KiB,
    pub dom0_mem_kb: KiB,
    /// Time resolution of the model, ms ([`SimConfig::DEFAULT_STEP_MS`]).
    pub step_ms: u64,
    pub vms: Vec<SimVm>,
}

impl SimConfig {
    pub const DEFAULT_STEP_MS: u64 = 10;
}

/// One guest running a closed-loop web workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SimVm {
    pub name: String,
    pub vcpus: u32,
    /// Initial credit cap, percent of one pCPU; 0 = uncapped.
    pub cap: u32,
    /// Initial credit weight, 1..=65535.
    pub weight: u32,
    /// Initial memory and balloon target, kB.
    pub mem_kb: KiB,
    pub mem_max_kb: KiB,
    /// Closed-loop clients (JMeter threads).
    pub clients: u32,
    /// Mean think time between a response and the next request, ms.
    pub think_ms: f64,
    /// CPU one request needs at full speed with enough memory, ms.
    pub demand_ms: f64,
    /// Memory the application needs to run at full speed, kB; below it,
    /// requests slow down (see [`super::MEMORY_SLOWDOWN`]).
    pub working_set_kb: KiB,
    /// Balloon speed, kB/s; 0 = reaches its target within one step.
    pub balloon_rate_kb_s: KiB,
    /// Memory the guest's kernel never shows as MemTotal, kB: a Debian PV
    /// guest on Xen 4.17 sees about 50 MiB less than its balloon target.
    pub kernel_offset_kb: KiB,
}

impl SimVm {
    /// A VM like those of the paper's testbed: one vCPU, 20% cap, 64 MB,
    /// 3 clients thinking 1 s, 9.5 ms of CPU per request, a 48 MB working
    /// set, ballooning at 64 MB/s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            vcpus: 1,
            cap: 20,
            weight: 256,
            mem_kb: 65_536,
            mem_max_kb: 131_072,
            clients: 3,
            think_ms: 1000.0,
            demand_ms: 9.5,
            working_set_kb: 49_152,
            balloon_rate_kb_s: 65_536,
            kernel_offset_kb: 0,
        }
    }
}

/// Why the simulator refused a configuration or a control.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("simulated host: {0}")]
    BadHost(String),
    #[error("simulated VM {name:?}: {reason}")]
    BadVm { name: String, reason: String },
    #[error("a domain named {0:?} already exists")]
    DuplicateName(String),
    #[error("domain id {0} is in use")]
    DomIdInUse(DomId),
    #[error("no live simulated VM named {0:?}")]
    UnknownVm(String),
    #[error("not enough free host memory for {name:?}: needs {need_kb} kB, {free_kb} kB free")]
    OutOfMemory {
        name: String,
        need_kb: KiB,
        free_kb: KiB,
    },
}

pub(super) fn check_host(config: &SimConfig) -> Result<(), SimError> {
    let bad = |reason: &str| Err(SimError::BadHost(reason.to_owned()));
    if config.step_ms == 0 {
        return bad("step_ms must be at least 1");
    }
    if config.guest_pcpus == 0 {
        return bad("guest_pcpus must be at least 1");
    }
    if config.dom0_mem_kb > config.host_mem_kb {
        return bad("dom0 memory exceeds host memory");
    }
    Ok(())
}

/// Weight and cap rules shared by configuration and `set_sched_params`.
pub(super) fn check_sched(weight: u32, cap: u32, vcpus: u32) -> Result<(), String> {
    if !WEIGHT_RANGE.contains(&weight) {
        return Err(format!(
            "weight {weight} is outside {}..={}",
            WEIGHT_RANGE.start(),
            WEIGHT_RANGE.end()
        ));
    }
    if u64::from(cap) > u64::from(vcpus) * 100 {
        return Err(format!(
            "cap {cap}% exceeds {vcpus} vCPU(s) × 100% = {}%",
            u64::from(vcpus) * 100
        ));
    }
    Ok(())
}

pub(super) fn check_vm(vm: &SimVm) -> Result<(), SimError> {
    let bad = |reason: String| {
        Err(SimError::BadVm {
            name: vm.name.clone(),
            reason,
        })
    };
    if vm.name.is_empty() {
        return bad("the name is empty".into());
    }
    if vm.vcpus == 0 {
        return bad("vcpus must be at least 1".into());
    }
    if let Err(reason) = check_sched(vm.weight, vm.cap, vm.vcpus) {
        return bad(reason);
    }
    if vm.mem_kb > vm.mem_max_kb {
        return bad(format!(
            "memory {} kB exceeds its maximum {} kB",
            vm.mem_kb, vm.mem_max_kb
        ));
    }
    for (what, value) in [("think_ms", vm.think_ms), ("demand_ms", vm.demand_ms)] {
        if !value.is_finite() || value < 0.0 {
            return bad(format!("{what} must be a finite number ≥ 0, not {value}"));
        }
    }
    Ok(())
}
