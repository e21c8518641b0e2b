//! What rex prints while it runs, as ReX did: every managed domain's
//! settings at start, usage percentages per tick (verbose), and a notice for
//! every reallocation with the old and new value and the reason. `--json`
//! prints one JSON object per line instead, for scripts.

use std::io::Write;

use serde_json::json;

use crate::engine::{Action, PolicyConfig, Usage};
use crate::host::driver::{AppliedChange, TickReport};

const MIB: u64 = 1024;

/// Writes rex's live display to `out`.
pub struct Display {
    out: Box<dyn Write>,
    json: bool,
    verbose: bool,
    t0_ns: Option<u64>,
}

impl Display {
    pub fn new(out: Box<dyn Write>, json: bool, verbose: bool) -> Self {
        Self {
            out,
            json,
            verbose,
            t0_ns: None,
        }
    }

    fn seconds(&mut self, at_ns: u64) -> f64 {
        let t0 = *self.t0_ns.get_or_insert(at_ns);
        at_ns.saturating_sub(t0) as f64 / 1e9
    }

    /// The settings of every managed domain, from the first tick.
    pub fn start(&mut self, report: &TickReport, config: &PolicyConfig) {
        let t = self.seconds(report.at_ns);
        let managed: Vec<&Usage> = report
            .usage
            .iter()
            .filter(|u| config.domain(&u.name).is_some())
            .collect();
        let result = if self.json {
            let domains: Vec<_> = managed
                .iter()
                .map(|u| {
                    let p = config.domain(&u.name).expect("filtered above");
                    json!({
                        "domid": u.domid, "name": &*u.name, "vcpus": u.vcpus,
                        "weight": u.sched.weight, "cap": u.sched.cap,
                        "mem_target_kb": u.mem_target_kb, "mem_max_kb": u.mem_max_kb,
                        "sla_ms": p.sla_ms, "level_cap": p.guaranteed_cap(),
                        "level_mem_kb": p.guaranteed_mem_kb(),
                        "cap_min": p.cap_min, "cap_max": p.cap_max,
                        "mem_min_kb": p.mem_min_kb, "mem_max_kb_policy": p.mem_max_kb,
                    })
                })
                .collect();
            writeln!(
                self.out,
                "{}",
                json!({"event": "start", "t": t, "dry_run": report.dry_run,
                       "interval_ms": config.host.interval_ms, "domains": domains})
            )
        } else {
            self.start_table(&managed, config, report.dry_run)
        };
        self.finish(result);
    }

    fn start_table(
        &mut self,
        managed: &[&Usage],
        config: &PolicyConfig,
        dry_run: bool,
    ) -> std::io::Result<()> {
        writeln!(
            self.out,
            "rex: managing {} domain(s), tick {} ms{}",
            managed.len(),
            config.host.interval_ms,
            if dry_run {
                " (dry run: nothing is changed)"
            } else {
                ""
            }
        )?;
        writeln!(
            self.out,
            "{:<16} {:>5} {:>5} {:>6} {:>5} {:>8} {:>8} {:>11} {:>13}",
            "Name", "ID", "VCPUs", "Weight", "Cap", "Mem(MiB)", "SLA(ms)", "Cap range", "Mem range"
        )?;
        for u in managed {
            let p = config.domain(&u.name).expect("managed");
            let sla = p.sla_ms.map_or("-".to_string(), |s| format!("{s:.0}"));
            writeln!(
                self.out,
                "{:<16} {:>5} {:>5} {:>6} {:>4}% {:>8} {:>8} {:>11} {:>13}",
                u.name,
                u.domid,
                u.vcpus,
                u.sched.weight,
                u.sched.cap,
                u.mem_target_kb / MIB,
                sla,
                format!("{}..{}%", p.cap_min, p.cap_max),
                format!(
                    "{}..{}M",
                    p.mem_min_kb / MIB,
                    p.mem_max_kb.min(u64::MAX / 4) / MIB
                ),
            )?;
        }
        Ok(())
    }

    /// Usage (when verbose) and one notice per reallocation.
    pub fn tick(&mut self, report: &TickReport, config: &PolicyConfig) {
        let t = self.seconds(report.at_ns);
        let mut result = Ok(());
        if self.verbose {
            result = self.usage(t, report, config);
        }
        for applied in &report.applied {
            if result.is_ok() {
                result = self.notice(t, applied, report.dry_run);
            }
        }
        self.finish(result);
    }

    fn usage(&mut self, t: f64, report: &TickReport, config: &PolicyConfig) -> std::io::Result<()> {
        // Once per tick: a set, not a scan of the policy per domain.
        let names: std::collections::HashSet<&str> =
            config.domains.iter().map(|d| d.name.as_str()).collect();
        let managed = report
            .usage
            .iter()
            .filter(|u| names.contains(u.name.as_ref()));
        if self.json {
            let domains: Vec<_> = managed
                .map(|u| {
                    json!({"domid": u.domid, "name": &*u.name, "cpu_pct": round2(u.cpu_pct),
                           "cap": u.sched.cap, "cap_used_pct": round2(cap_used_pct(u)),
                           "mem_current_kb": u.mem_current_kb, "mem_target_kb": u.mem_target_kb,
                           "mem_used_kb": u.mem_used_kb, "response_ms": u.report.response_ms})
                })
                .collect();
            return writeln!(
                self.out,
                "{}",
                json!({"event": "usage", "t": t, "domains": domains})
            );
        }
        let parts: Vec<String> = managed
            .map(|u| {
                format!(
                    "{} cpu {:.0}% ({:.0}% of cap {}%) mem {}M",
                    u.name,
                    u.cpu_pct,
                    cap_used_pct(u),
                    u.sched.cap,
                    u.mem_current_kb / MIB
                )
            })
            .collect();
        writeln!(self.out, "[{t:8.1}s] {}", parts.join(" | "))
    }

    fn notice(&mut self, t: f64, applied: &AppliedChange, dry_run: bool) -> std::io::Result<()> {
        let c = &applied.change;
        let kind = c.action.kind();
        let (from_value, to_value) = c.action.values();
        let (from, to, unit) = match c.action {
            Action::Cap { .. } => (from_value.to_string(), to_value.to_string(), "%"),
            Action::Weight { .. } => (from_value.to_string(), to_value.to_string(), ""),
            Action::Memory { .. } => (
                (from_value / MIB).to_string(),
                (to_value / MIB).to_string(),
                " MiB",
            ),
            Action::BalloonFlag { uncooperative } => {
                let word = |on: bool| if on { "yes" } else { "no" };
                (word(!uncooperative).into(), word(uncooperative).into(), "")
            }
        };
        if self.json {
            return writeln!(
                self.out,
                "{}",
                json!({"event": "reallocation", "t": t, "domid": c.domid, "name": &*c.name,
                       "kind": kind, "from": from_value, "to": to_value,
                       "reason": c.reason.to_string(), "reason_key": c.reason.key(),
                       "dry_run": dry_run,
                       "elapsed_us": applied.elapsed.as_secs_f64() * 1e6,
                       "error": applied.error})
            );
        }
        let verb = if dry_run { "would set" } else { "set" };
        let outcome = match &applied.error {
            Some(e) => format!(" FAILED: {e}"),
            None if dry_run => String::new(),
            None => format!(" in {:.3} ms", applied.elapsed.as_secs_f64() * 1e3),
        };
        writeln!(
            self.out,
            "[{t:8.1}s] rex: {verb} {} (domain {}) {kind} {from}{unit} -> {to}{unit}: {}{outcome}",
            c.name, c.domid, c.reason
        )
    }

    /// A free-form line (human) or `{"event": kind, ...fields}` (JSON).
    pub fn event(&mut self, kind: &str, text: &str, fields: serde_json::Value) {
        let result = if self.json {
            let mut obj = json!({"event": kind});
            if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
                o.extend(f);
            }
            writeln!(self.out, "{obj}")
        } else {
            writeln!(self.out, "rex: {text}")
        };
        self.finish(result);
    }

    fn finish(&mut self, result: std::io::Result<()>) {
        // A closed stdout (e.g. `| head`) must not stop the reallocator.
        if let Err(e) = result.and_then(|_| self.out.flush()) {
            log::debug!("display output failed: {e}");
        }
    }
}

fn cap_used_pct(u: &Usage) -> f64 {
    if u.sched.cap == 0 {
        return 0.0;
    }
    u.cpu_pct * 100.0 / u.sched.cap as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
