//! rex's own vocabulary: what a host reports and what the engine decides.

use std::fmt;
use std::sync::Arc;

/// A Xen domain id. Domain 0 is the control domain.
pub type DomId = u32;

/// Kibibytes, the unit libxl uses for every memory figure.
pub type KiB = u64;

/// Life-cycle state of a domain, as far as rex cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainState {
    Running,
    Blocked,
    Paused,
    /// Shut down or crashed, not yet destroyed.
    Shutdown,
    Dying,
}

impl DomainState {
    /// Whether the domain can use resources at all; dead ones leave the plan.
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Running | Self::Blocked | Self::Paused)
    }
}

/// One domain as the host reports it at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainInfo {
    pub domid: DomId,
    pub name: String,
    pub uuid: [u8; 16],
    pub vcpus_online: u32,
    /// Total CPU time consumed by all the domain's vCPUs since it was created.
    pub cpu_time_ns: u64,
    pub mem_current_kb: KiB,
    pub mem_target_kb: KiB,
    /// The most memory the domain may be given: the admin's `maxmem` (on
    /// Xen, xenstore `memory/static-max`, not Xen's per-domain maximum,
    /// which follows the balloon target). 0 when unknown.
    pub mem_max_kb: KiB,
    pub state: DomainState,
}

/// The CPU scheduler of the pool the guests run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduler {
    Credit,
    Credit2,
    Other(String),
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credit => f.write_str("credit"),
            Self::Credit2 => f.write_str("credit2"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Host-wide capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// Physical CPUs the guests may run on (the cpupool's size).
    pub guest_pcpus: u32,
    pub total_mem_kb: KiB,
    pub free_mem_kb: KiB,
    pub scheduler: Scheduler,
}

/// Credit/credit2 scheduler parameters of one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedParams {
    /// Relative share when pCPUs are contended (Xen default 256).
    pub weight: u32,
    /// Upper bound in percent of one pCPU; 0 means uncapped (Xen's meaning).
    pub cap: u32,
}

/// Values a guest publishes about itself. Untrusted: every backend hands
/// them through `host::guest::parse_report`, which parses strictly, clamps
/// memory figures to the domain's bounds and drops an implausible response
/// time; `None` means not reported or not believed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GuestReport {
    pub mem_free_kb: Option<KiB>,
    pub mem_total_kb: Option<KiB>,
    /// Response time the guest's application observed recently, ms.
    pub response_ms: Option<f64>,
    /// The guest's agent stopped publishing (its counter froze): the
    /// values above are then absent, whatever the keys still hold.
    pub stale: bool,
}

/// Everything read from a host in one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Monotonic time of the observation, ns (simulated time on the simulator).
    pub at_ns: u64,
    pub host: HostInfo,
    pub domains: Vec<DomainObservation>,
}

/// One domain in a [`Snapshot`]: its info, its current scheduler settings and
/// what the guest reported.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainObservation {
    pub info: DomainInfo,
    pub sched: SchedParams,
    pub report: GuestReport,
}

/// What one change in a plan does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// New scheduler cap (percent of one pCPU).
    Cap { from: u32, to: u32 },
    /// New scheduler weight.
    Weight { from: u32, to: u32 },
    /// New balloon target.
    Memory { from: KiB, to: KiB },
    /// The domain's balloon is (or is no longer) taken as uncooperative:
    /// published as xenstore `memory/uncooperative`, as squeezed does.
    BalloonFlag { uncooperative: bool },
}

impl Action {
    /// What the change moves: `cap`, `weight`, `memory` or `uncooperative`
    /// (the display's word and the metrics' `kind` label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cap { .. } => "cap",
            Self::Weight { .. } => "weight",
            Self::Memory { .. } => "memory",
            Self::BalloonFlag { .. } => "uncooperative",
        }
    }

    /// The value before and after, as numbers (a flag is 0 or 1).
    pub fn values(&self) -> (u64, u64) {
        match *self {
            Self::Cap { from, to } | Self::Weight { from, to } => (from.into(), to.into()),
            Self::Memory { from, to } => (from, to),
            Self::BalloonFlag { uncooperative } => {
                (u64::from(!uncooperative), uncooperative.into())
            }
        }
    }
}

/// Why a change was made: which bound or signal decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Raised to the domain's floor or SLA level.
    Guarantee,
    /// Lowered to the domain's ceiling.
    Ceiling,
    /// The domain used ≥ the saturation threshold of its cap.
    Saturated { usage_pct: f64 },
    /// The guest reported a response time above its SLA; `from` names the
    /// domains CPU was taken from (empty: only from the unallocated pool).
    SlaMissed {
        response_ms: f64,
        sla_ms: f64,
        from: Vec<String>,
    },
    /// The guest is within its SLA but above the response time rex aims for
    /// (`sla_target` of the SLA), and saturated.
    NearSla {
        response_ms: f64,
        aim_ms: f64,
        from: Vec<String>,
    },
    /// Given up to a domain that missed its SLA (or, for an idle domain,
    /// to one that needed CPU), never below this domain's guarantee.
    Preempted { by: String },
    /// Within the aim again: CPU taken from others goes back to them.
    Returned { response_ms: f64, to: Vec<String> },
    /// CPU taken from this domain came back.
    Restored { by: String },
    /// Free CPU nobody else wants, held by an SLA domain against its next
    /// load step (taken back from it, while it is idle, by anyone who
    /// wants CPU).
    Headroom,
    /// The guest is short of memory.
    MemoryPressure { free_pct: f64 },
    /// The domain is idle; reclaimed down to its level.
    Idle { usage_pct: f64 },
    /// The guest is not short of memory (or reports nothing); memory above
    /// its level goes back to the host.
    SpareMemory { free_pct: Option<f64> },
    /// The SLA level changed at run time.
    SlaChanged,
    /// Shrunk so the sum fits the pool after capacity fell.
    OverCommitted,
    /// The balloon did not close half its gap to the target within the
    /// balloon timeout: the target is set back to what it holds, and its
    /// memory left alone for a while.
    BalloonStuck {
        current_kb: KiB,
        target_kb: KiB,
        waited_s: f64,
    },
    /// An uncooperative domain's probation is over: managed again.
    BalloonRetried,
}

impl Reason {
    /// A short stable name for the reason, without its figures: the
    /// `reason` label of the metrics.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Guarantee => "guarantee",
            Self::Ceiling => "ceiling",
            Self::Saturated { .. } => "saturated",
            Self::SlaMissed { .. } => "sla_missed",
            Self::NearSla { .. } => "near_sla",
            Self::Preempted { .. } => "preempted",
            Self::Returned { .. } => "returned",
            Self::Restored { .. } => "restored",
            Self::Headroom => "headroom",
            Self::MemoryPressure { .. } => "memory_pressure",
            Self::Idle { .. } => "idle",
            Self::SpareMemory { .. } => "spare_memory",
            Self::SlaChanged => "sla_changed",
            Self::OverCommitted => "over_committed",
            Self::BalloonStuck { .. } => "balloon_stuck",
            Self::BalloonRetried => "balloon_retried",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Guarantee => f.write_str("guarantee: raised to its SLA level"),
            Self::Ceiling => f.write_str("ceiling: lowered to its maximum"),
            Self::Saturated { usage_pct } => {
                write!(f, "saturated: using {usage_pct:.0}% of its cap")
            }
            Self::SlaMissed {
                response_ms,
                sla_ms,
                from,
            } => {
                write!(f, "SLA missed: {response_ms:.0} ms > {sla_ms:.0} ms")?;
                write_sources(f, from)
            }
            Self::NearSla {
                response_ms,
                aim_ms,
                from,
            } => {
                write!(f, "near its SLA: {response_ms:.0} ms > aim {aim_ms:.0} ms")?;
                write_sources(f, from)
            }
            Self::Preempted { by } => write!(f, "preempted: given to {by}"),
            Self::Returned { response_ms, to } => write!(
                f,
                "within its aim ({response_ms:.0} ms): returned to {}",
                to.join(", ")
            ),
            Self::Restored { by } => write!(f, "restored: given back by {by}"),
            Self::Headroom => f.write_str("headroom: free CPU nobody else wants"),
            Self::MemoryPressure { free_pct } => {
                write!(f, "memory pressure: {free_pct:.0}% free in guest")
            }
            Self::Idle { usage_pct } => write!(f, "idle: using {usage_pct:.0}% of its cap"),
            Self::SpareMemory {
                free_pct: Some(free_pct),
            } => write!(f, "spare memory: {free_pct:.0}% free in guest"),
            Self::SpareMemory { free_pct: None } => {
                f.write_str("spare memory: above its level, guest reports no pressure")
            }
            Self::SlaChanged => f.write_str("SLA changed"),
            Self::OverCommitted => f.write_str("over-committed: pool shrank"),
            Self::BalloonStuck {
                current_kb,
                target_kb,
                waited_s,
            } => write!(
                f,
                "balloon stuck: at {} MiB, target {} MiB, after {waited_s:.0} s; left alone",
                current_kb / 1024,
                target_kb / 1024
            ),
            Self::BalloonRetried => {
                f.write_str("balloon retried: its probation as uncooperative is over")
            }
        }
    }
}

/// "; taken from a, b" after a reason, when CPU came from other domains.
fn write_sources(f: &mut fmt::Formatter<'_>, from: &[String]) -> fmt::Result {
    if from.is_empty() {
        return Ok(());
    }
    write!(f, "; taken from {}", from.join(", "))
}

/// One change the engine wants applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub domid: DomId,
    pub name: Arc<str>,
    pub action: Action,
    pub reason: Reason,
}

/// The engine's output for one tick. Memory changes are ordered: every
/// shrink comes before any grow, and the driver applies them in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Demand this tick's plan could not meet, by domain (only domains
    /// short of something): what a cluster engine would migrate for.
    pub shortfalls: Vec<Shortfall>,
}

/// What one domain asked for this tick and the host could not give it,
/// within the domain's own ceilings (a domain at its `cap_max` or
/// `mem_max` asks for nothing more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub domid: DomId,
    pub name: Arc<str>,
    /// Cap points (percent of one pCPU) a domain that was saturated or
    /// above its aim asked for and did not get: neither the pool nor the
    /// domains it may take from had them.
    pub cpu_pct: u32,
    /// Balloon growth a domain under memory pressure asked for beyond
    /// what the host had free (reclaim from other domains may still come).
    pub mem_kb: KiB,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}
