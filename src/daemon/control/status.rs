//! What `rex status` shows: kept up to date by the daemon after every tick,
//! rendered on request (text for people, JSON for tools).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engine::{PolicyConfig, Shortfall, Usage};
use crate::host::driver::{AppliedChange, TickReport};

/// Decisions kept for `rex status`, newest last.
const RECENT: usize = 20;
const MIB: u64 = 1024;

/// One applied (or refused) change, as status shows it.
#[derive(Debug, Clone)]
struct Decision {
    t_s: f64,
    name: String,
    kind: &'static str,
    from: u64,
    to: u64,
    reason: String,
    error: Option<String>,
}

impl Decision {
    fn new(t_s: f64, applied: &AppliedChange) -> Self {
        let c = &applied.change;
        let (from, to) = c.action.values();
        Self {
            t_s,
            name: c.name.to_string(),
            kind: c.action.kind(),
            from,
            to,
            reason: c.reason.to_string(),
            error: applied.error.clone(),
        }
    }

    fn json(&self) -> Value {
        json!({"t": round2(self.t_s), "name": self.name, "kind": self.kind, "from": self.from,
               "to": self.to, "reason": self.reason, "error": self.error})
    }

    fn text(&self) -> String {
        let (from, to) = match self.kind {
            "memory" => (
                format!("{} MiB", self.from / MIB),
                format!("{} MiB", self.to / MIB),
            ),
            "cap" => (format!("{}%", self.from), format!("{}%", self.to)),
            _ => (self.from.to_string(), self.to.to_string()),
        };
        let failed = self
            .error
            .as_ref()
            .map_or(String::new(), |e| format!(" FAILED: {e}"));
        format!(
            "[{:8.1}s] {} {} {from} -> {to}: {}{failed}",
            self.t_s, self.name, self.kind, self.reason
        )
    }
}

/// The daemon's state as status reports it.
pub struct Board {
    started: Instant,
    t0_ns: Option<u64>,
    ticks: u64,
    last_cost: Duration,
    max_cost: Duration,
    total_cost: Duration,
    last: Option<TickReport>,
    recent: VecDeque<Decision>,
    last_by_domain: HashMap<String, Decision>,
    /// Set while `rex pause` holds changes: when, and by whom.
    pub paused: Option<String>,
    /// The error of the last tick, while ticks fail.
    pub failing: Option<String>,
    pub dry_run: bool,
    /// The policy file, as an absolute path (for `rex sla --persist`).
    policy: String,
}

impl Board {
    pub fn new(dry_run: bool, policy: &std::path::Path) -> Self {
        let policy = std::path::absolute(policy).unwrap_or_else(|_| policy.to_path_buf());
        Self {
            policy: policy.display().to_string(),
            started: Instant::now(),
            t0_ns: None,
            ticks: 0,
            last_cost: Duration::ZERO,
            max_cost: Duration::ZERO,
            total_cost: Duration::ZERO,
            last: None,
            recent: VecDeque::with_capacity(RECENT),
            last_by_domain: HashMap::new(),
            paused: None,
            failing: None,
            dry_run,
        }
    }

    /// Takes one tick's report and what the tick cost (observe, decide,
    /// apply).
    pub fn record(&mut self, report: &TickReport, cost: Duration) {
        self.ticks += 1;
        self.last_cost = cost;
        self.max_cost = self.max_cost.max(cost);
        self.total_cost += cost;
        self.failing = None;
        let t0 = *self.t0_ns.get_or_insert(report.at_ns);
        let t_s = report.at_ns.saturating_sub(t0) as f64 / 1e9;
        for applied in &report.applied {
            let decision = Decision::new(t_s, applied);
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(decision.clone());
            self.last_by_domain.insert(decision.name.clone(), decision);
        }
        // Only domains still alive keep their last decision.
        let alive: HashSet<&str> = report.usage.iter().map(|u| u.name.as_ref()).collect();
        self.last_by_domain
            .retain(|name, _| alive.contains(name.as_str()));
        // Shown as they are after this tick's changes.
        let mut last = report.clone();
        last.usage = report.usage_after_changes();
        self.last = Some(last);
    }

    /// Whether rex holds the domain's balloon flagged uncooperative.
    fn uncooperative(&self, usage: &Usage) -> bool {
        self.last
            .as_ref()
            .is_some_and(|r| r.uncooperative.contains(&usage.domid))
    }

    /// What the domain asked for at the last tick and did not get.
    fn shortfall(&self, usage: &Usage) -> Option<&Shortfall> {
        self.last.as_ref()?.shortfall(usage.domid)
    }

    /// Each managed domain's class, as an administrator reads it.
    fn class(&self, usage: &Usage, sla_ms: Option<f64>) -> &'static str {
        match (sla_ms, usage.report.response_ms) {
            (None, _) => "best-effort",
            (Some(_), None) => "no response reported",
            (Some(sla), Some(r)) if r > sla => "missing SLA",
            (Some(_), Some(_)) => "within SLA",
        }
    }

    fn state(&self) -> String {
        match (&self.paused, self.dry_run) {
            (Some(by), _) => format!("paused ({by}): no changes until `rex resume'"),
            (None, true) => "dry run: decides, changes nothing".into(),
            (None, false) => "running".into(),
        }
    }

    fn managed<'a>(&'a self, config: &'a PolicyConfig) -> Vec<&'a Usage> {
        let names: HashSet<&str> = config.domains.iter().map(|d| d.name.as_str()).collect();
        self.last
            .iter()
            .flat_map(|r| r.usage.iter())
            .filter(|u| u.domid != 0 && names.contains(u.name.as_ref()))
            .collect()
    }

    fn mean_cost_ms(&self) -> f64 {
        if self.ticks == 0 {
            return 0.0;
        }
        self.total_cost.as_secs_f64() * 1e3 / self.ticks as f64
    }

    /// The status as one JSON object.
    pub fn json(&self, config: &PolicyConfig) -> Value {
        let domains: Vec<Value> = self
            .managed(config)
            .into_iter()
            .map(|u| {
                let p = config.domain(&u.name).expect("managed");
                json!({
                    "name": &*u.name, "domid": u.domid, "cap": u.sched.cap,
                    "weight": u.sched.weight, "cpu_pct": round2(u.cpu_pct),
                    "mem_target_kb": u.mem_target_kb, "mem_current_kb": u.mem_current_kb,
                    "mem_used_kb": u.mem_used_kb, "sla_ms": p.sla_ms,
                    "response_ms": u.report.response_ms,
                    "class": self.class(u, p.sla_ms),
                    "level_cap": p.guaranteed_cap(), "level_mem_kb": p.guaranteed_mem_kb(),
                    "cap_min": p.cap_min, "cap_max": p.cap_max, "priority": p.priority,
                    "uncooperative": self.uncooperative(u),
                    "agent_stale": u.report.stale,
                    "unmet_cpu_pct": self.shortfall(u).map_or(0, |s| s.cpu_pct),
                    "unmet_mem_kb": self.shortfall(u).map_or(0, |s| s.mem_kb),
                    "last_decision": self.last_by_domain.get(&*u.name).map(Decision::json),
                })
            })
            .collect();
        let host = self.last.as_ref().map(|r| {
            let (unmet_cpu_pct, unmet_mem_kb) = r.unmet_totals();
            json!({"guest_pcpus": r.host.guest_pcpus, "scheduler": r.host.scheduler.to_string(),
                   "total_mem_kb": r.host.total_mem_kb, "free_mem_kb": r.host.free_mem_kb,
                   "unmet_cpu_pct": unmet_cpu_pct, "unmet_mem_kb": unmet_mem_kb})
        });
        json!({
            "state": if self.paused.is_some() { "paused" } else if self.dry_run { "dry_run" } else { "running" },
            "paused_by": self.paused, "uptime_s": round2(self.started.elapsed().as_secs_f64()),
            "policy": self.policy, "interval_ms": config.host.interval_ms, "ticks": self.ticks,
            "tick_ms": {"last": round3(self.last_cost.as_secs_f64() * 1e3),
                        "max": round3(self.max_cost.as_secs_f64() * 1e3),
                        "mean": round3(self.mean_cost_ms())},
            "failing": self.failing, "host": host, "domains": domains,
            "recent": self.recent.iter().map(Decision::json).collect::<Vec<_>>(),
        })
    }

    /// The status as a table, for people.
    pub fn text(&self, config: &PolicyConfig) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rex: {}; up {}, {} ticks of {} ms, last tick {:.2} ms (mean {:.2}, max {:.2})",
            self.state(),
            uptime(self.started.elapsed()),
            self.ticks,
            config.host.interval_ms,
            self.last_cost.as_secs_f64() * 1e3,
            self.mean_cost_ms(),
            self.max_cost.as_secs_f64() * 1e3
        );
        if let Some(e) = &self.failing {
            let _ = writeln!(out, "ticks are failing: {e}");
        }
        if let Some(r) = &self.last {
            let _ = writeln!(
                out,
                "host: {} guest pCPU(s), {} scheduler, {} MiB free of {} MiB",
                r.host.guest_pcpus,
                r.host.scheduler,
                r.host.free_mem_kb / MIB,
                r.host.total_mem_kb / MIB
            );
        }
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>5} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9}  Class",
            "Name", "ID", "Cap", "Level", "Use%", "Mem(MiB)", "Tgt(MiB)", "SLA(ms)", "Resp(ms)"
        );
        for u in self.managed(config) {
            let p = config.domain(&u.name).expect("managed");
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
            let mut class = self.class(u, p.sla_ms).to_string();
            if self.uncooperative(u) {
                class.push_str(", balloon uncooperative");
            }
            if u.report.stale {
                class.push_str(", agent stale");
            }
            if let Some(short) = self.shortfall(u) {
                let _ = write!(
                    class,
                    ", unmet {}% CPU, {} MiB",
                    short.cpu_pct,
                    short.mem_kb / MIB
                );
            }
            let _ = writeln!(
                out,
                "{:<16} {:>5} {:>4}% {:>5}% {:>6.1} {:>9} {:>9} {:>8} {:>9}  {class}",
                u.name,
                u.domid,
                u.sched.cap,
                p.guaranteed_cap(),
                u.cpu_pct,
                u.mem_current_kb / MIB,
                u.mem_target_kb / MIB,
                ms(p.sla_ms),
                ms(u.report.response_ms),
            );
        }
        if !self.recent.is_empty() {
            let _ = writeln!(out, "recent decisions:");
            for d in &self.recent {
                let _ = writeln!(out, "  {}", d.text());
            }
        }
        out
    }
}

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
