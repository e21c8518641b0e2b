//! The SLA model: what each managed domain is guaranteed and may grow to.

use super::model::KiB;

/// Resources needed to meet an SLA at one load level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Load level this row was measured at (e.g. concurrent clients).
    pub load: u32,
    /// Scheduler cap, percent of one pCPU.
    pub cap_pct: u32,
    pub mem_kb: KiB,
}

/// A decomposition table: for each load level, the least resources that met
/// the SLA target in the benchmarks. Rows sorted by load, ascending.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecompTable {
    pub sla_ms: f64,
    pub rows: Vec<Level>,
}

impl DecompTable {
    /// The row for `load`: the first row whose load is ≥ `load`, else the
    /// last row (the most the benchmarks knew about).
    pub fn level_for(&self, load: u32) -> Option<Level> {
        self.rows
            .iter()
            .find(|row| row.load >= load)
            .or(self.rows.last())
            .copied()
    }
}

/// Policy for one managed domain, named by domain name.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainPolicy {
    pub name: String,
    /// Response-time target, ms; `None` when the domain has no SLA (it then
    /// only gets its floor and a share of the idle pool).
    pub sla_ms: Option<f64>,
    /// Guaranteed resources (the SLA level); at least the floors below.
    pub level: Level,
    pub cap_min: u32,
    pub cap_max: u32,
    pub mem_min_kb: KiB,
    pub mem_max_kb: KiB,
    /// Scheduler weight rex sets (Xen's default is 256).
    pub weight: u32,
    /// Among domains of one class, higher priority is served first; a domain
    /// missing its SLA may take CPU from SLA domains of lower priority.
    pub priority: u32,
}

impl DomainPolicy {
    /// The lowest cap rex sets: `cap_min`, but never 0 (Xen's "uncapped").
    pub fn cap_floor(&self) -> u32 {
        self.cap_min.max(1)
    }

    /// The highest cap rex sets: `cap_max`, or the floor if the (invalid)
    /// configuration puts it lower.
    pub fn cap_ceiling(&self) -> u32 {
        self.cap_max.max(self.cap_floor())
    }

    /// The highest balloon target rex sets: `mem_max`, or `mem_min` if the
    /// (invalid) configuration puts it lower.
    pub fn mem_ceiling_kb(&self) -> KiB {
        self.mem_max_kb.max(self.mem_min_kb)
    }

    /// The cap the domain is guaranteed: its level, within [cap_min, cap_max],
    /// and at least 1. Never panics, even on a configuration that failed
    /// validation.
    pub fn guaranteed_cap(&self) -> u32 {
        self.level
            .cap_pct
            .clamp(self.cap_floor(), self.cap_ceiling())
    }

    /// The memory the domain is guaranteed: its level, within [mem_min, mem_max].
    pub fn guaranteed_mem_kb(&self) -> KiB {
        self.level
            .mem_kb
            .clamp(self.mem_min_kb, self.mem_ceiling_kb())
    }
}

/// Host-level policy knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPolicy {
    /// Time between ticks, ms.
    pub interval_ms: u64,
    /// CPU (percent of one pCPU) kept for dom0 out of the guests' pCPUs.
    pub dom0_cpu_pct: u32,
    /// CPU held back from the pool, never handed out.
    pub reserve_cpu_pct: u32,
    /// Host memory never handed out, on top of the slush (the memory twin
    /// of `reserve_cpu_pct`).
    pub reserve_mem_kb: KiB,
    /// Host free memory never to go below while growing balloons.
    pub slush_kb: KiB,
    /// A domain using ≥ this percent of its cap is saturated.
    pub saturation_pct: f64,
    /// A domain using ≤ this percent of its cap is idle.
    pub idle_pct: f64,
    /// Changes smaller than this (cap points) are not made.
    pub deadband_cap: u32,
    /// Changes smaller than this are not made.
    pub deadband_mem_kb: KiB,
    /// Largest cap change in one tick.
    pub max_step_cap: u32,
    /// Largest memory change in one tick.
    pub max_step_mem_kb: KiB,
    /// A balloon that does not close half its gap to its target within
    /// this long is uncooperative, ms.
    pub balloon_timeout_ms: u64,
    /// Ticks a domain is left alone after a change in the other direction.
    pub cooldown_ticks: u32,
    /// Smoothing factor of the CPU usage EWMA, (0, 1]; 1 = no smoothing.
    pub smoothing: f64,
    /// A guest with less than this percent of its memory free is under pressure.
    pub mem_pressure_free_pct: f64,
    /// ... or below this much, whatever the percentage: a small guest's
    /// OOM killer fires near 14% of a 77 MiB MemTotal, under 10% of it.
    pub mem_pressure_free_kb: KiB,
    /// The response time rex aims for, percent of each domain's SLA: a
    /// domain above it (but within its SLA) is near its SLA; one at or
    /// below it has enough.
    pub sla_target_pct: f64,
    /// Whether what is left of the pool goes to SLA domains as headroom
    /// against a load step (taken back as soon as anyone wants it), or
    /// stays unallocated.
    pub headroom: bool,
}

impl Default for HostPolicy {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            dom0_cpu_pct: 0,
            reserve_cpu_pct: 0,
            reserve_mem_kb: 0,
            slush_kb: 32 * 1024,
            saturation_pct: 90.0,
            idle_pct: 50.0,
            deadband_cap: 2,
            deadband_mem_kb: 4 * 1024,
            max_step_cap: 20,
            max_step_mem_kb: 64 * 1024,
            balloon_timeout_ms: 20_000,
            cooldown_ticks: 3,
            smoothing: 0.5,
            mem_pressure_free_pct: 10.0,
            mem_pressure_free_kb: 16 * 1024,
            sla_target_pct: 85.0,
            headroom: true,
        }
    }
}

/// The whole policy the engine runs with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyConfig {
    pub host: HostPolicy,
    pub domains: Vec<DomainPolicy>,
}

impl PolicyConfig {
    pub fn domain(&self, name: &str) -> Option<&DomainPolicy> {
        self.domains.iter().find(|d| d.name == name)
    }
}
