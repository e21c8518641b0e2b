//! `rex report`: what a real run did, read back from the daemon's `--json`
//! output (one event a line, as `rex run --json` and `xl rex -- --json`
//! print them).
//!
//! The timeline comes from the `usage` events (`--verbose`): each managed
//! domain's cap, memory and reported response at every tick. Without them
//! the caps and memory targets are rebuilt from the `start` event and the
//! reallocations, and there is no response time to show.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::simulate::TimelinePoint;

/// Why a log cannot be read; names the line.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}:{line}: {what}")]
    Line {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{0}: no start event: not the output of `rex run --json` (or `xl rex -- --json`)")]
    NoStart(String),
}

/// A managed domain as the run's start event showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedDomain {
    pub name: String,
    pub sla_ms: Option<f64>,
    cap: u32,
    mem_target_kb: u64,
}

/// A run, read back.
#[derive(Debug, Default)]
pub struct RunLog {
    pub domains: Vec<LoggedDomain>,
    pub interval_ms: u64,
    /// Seconds from the first tick to the last event.
    pub duration_s: f64,
    /// Ticks with a usage event (0 without `--verbose`).
    pub usage_ticks: usize,
    pub timeline: Vec<TimelinePoint>,
    /// Applied changes by (domain, kind, reason).
    pub reallocations: BTreeMap<(String, String, String), u64>,
    /// Changes the host refused, by domain.
    pub failed: BTreeMap<String, u64>,
    /// Seconds each SLA domain reported a response above its SLA (ticks ×
    /// interval; only from usage events).
    pub violation_s: BTreeMap<String, f64>,
}

impl RunLog {
    /// Reads the JSON lines of `text` (from `path`, for errors). Blank
    /// lines and events of other kinds are skipped; a line that is not a
    /// JSON object, or an event missing a field, is an error.
    pub fn parse(path: &str, text: &str) -> Result<Self, ReportError> {
        let mut log = RunLog::default();
        let mut started = false;
        // Settings now, and the timeline rebuilt from the reallocations (a
        // step at each), for a log without usage events.
        let mut now: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        let mut rebuilt = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let error = |what: String| ReportError::Line {
                path: path.to_string(),
                line: line_no,
                what,
            };
            if line.trim().is_empty() {
                continue;
            }
            let event: Value =
                serde_json::from_str(line).map_err(|e| error(format!("not a JSON event: {e}")))?;
            let Some(kind) = event.get("event").and_then(Value::as_str) else {
                return Err(error("not a rex event: no \"event\" field".into()));
            };
            let t = event.get("t").and_then(Value::as_f64);
            if let Some(t) = t {
                log.duration_s = log.duration_s.max(t);
            }
            let field = |name: &str| error(format!("{kind} event without a valid \"{name}\""));
            match kind {
                "start" if !started => {
                    started = true;
                    log.interval_ms = event
                        .get("interval_ms")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| field("interval_ms"))?;
                    for d in array(&event, "domains").ok_or_else(|| field("domains"))? {
                        let domain = LoggedDomain {
                            name: str_field(d, "name").ok_or_else(|| field("name"))?,
                            sla_ms: d.get("sla_ms").and_then(Value::as_f64),
                            cap: u32_field(d, "cap").ok_or_else(|| field("cap"))?,
                            mem_target_kb: d
                                .get("mem_target_kb")
                                .and_then(Value::as_u64)
                                .ok_or_else(|| field("mem_target_kb"))?,
                        };
                        now.insert(domain.name.clone(), (domain.cap, domain.mem_target_kb));
                        log.domains.push(domain);
                    }
                    points(&mut rebuilt, t.unwrap_or(0.0), &now);
                }
                "usage" if started => {
                    let t = t.ok_or_else(|| field("t"))?;
                    log.usage_ticks += 1;
                    for d in array(&event, "domains").ok_or_else(|| field("domains"))? {
                        let name = str_field(d, "name").ok_or_else(|| field("name"))?;
                        let cap = u32_field(d, "cap").ok_or_else(|| field("cap"))?;
                        let mem_kb = d
                            .get("mem_current_kb")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| field("mem_current_kb"))?;
                        let response_ms = d.get("response_ms").and_then(Value::as_f64);
                        log.count_violation(&name, response_ms);
                        log.timeline.push(TimelinePoint {
                            t_s: t,
                            vm: name,
                            cap,
                            mem_mib: mem_kb as f64 / 1024.0,
                            response_ms,
                        });
                    }
                }
                "reallocation" if started => {
                    let name = str_field(&event, "name").ok_or_else(|| field("name"))?;
                    let change = str_field(&event, "kind").ok_or_else(|| field("kind"))?;
                    if event.get("error").is_some_and(|e| !e.is_null()) {
                        *log.failed.entry(name).or_default() += 1;
                        continue;
                    }
                    // Logs of rex before reason_key: the reason's first word.
                    let reason = str_field(&event, "reason_key")
                        .or_else(|| {
                            let text = str_field(&event, "reason")?;
                            Some(text.split([':', ' ']).next()?.to_string())
                        })
                        .ok_or_else(|| field("reason"))?;
                    let t = t.ok_or_else(|| field("t"))?;
                    points(&mut rebuilt, t, &now);
                    let to = event.get("to").and_then(Value::as_u64);
                    if let (Some(setting), Some(to)) = (now.get_mut(&name), to) {
                        match change.as_str() {
                            "cap" => setting.0 = u32::try_from(to).unwrap_or(u32::MAX),
                            "memory" => setting.1 = to,
                            _ => {}
                        }
                    }
                    *log.reallocations.entry((name, change, reason)).or_default() += 1;
                    points(&mut rebuilt, t, &now);
                }
                _ => {}
            }
        }
        if !started {
            return Err(ReportError::NoStart(path.to_string()));
        }
        if log.usage_ticks == 0 {
            points(&mut rebuilt, log.duration_s, &now);
            log.timeline = rebuilt;
        }
        Ok(log)
    }

    fn count_violation(&mut self, name: &str, response_ms: Option<f64>) {
        let Some(sla) = self
            .domains
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.sla_ms)
        else {
            return;
        };
        let seconds = self.violation_s.entry(name.to_string()).or_default();
        if response_ms.is_some_and(|r| r > sla) {
            *seconds += self.interval_ms as f64 / 1000.0;
        }
    }

    /// The SLA line to draw: the one every SLA domain shares, if they do.
    pub fn common_sla_ms(&self) -> Option<f64> {
        let mut slas = self.domains.iter().filter_map(|d| d.sla_ms);
        let first = slas.next()?;
        slas.all(|s| s == first).then_some(first)
    }

    /// The summary table: per domain, its SLA, the time it missed it and
    /// its reallocations; then every (domain, kind, reason) count.
    pub fn summary(&self, path: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rex report {path}: {:.1} s, {} managed domain(s), ticks of {} ms, {} with usage{}",
            self.duration_s,
            self.domains.len(),
            self.interval_ms,
            self.usage_ticks,
            if self.usage_ticks == 0 {
                " (run rex with --verbose for use and response times)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>14} {:>13} {:>7}",
            "Domain", "SLA(ms)", "Missing SLA(s)", "Reallocations", "Failed"
        );
        for d in &self.domains {
            let changes: u64 = self
                .reallocations
                .iter()
                .filter(|((name, _, _), _)| *name == d.name)
                .map(|(_, n)| n)
                .sum();
            let missing = match (d.sla_ms, self.usage_ticks) {
                (None, _) => "-".to_string(),
                (Some(_), 0) => "?".to_string(),
                (Some(_), _) => format!("{:.1}", self.violation_s.get(&d.name).unwrap_or(&0.0)),
            };
            let _ = writeln!(
                out,
                "{:<16} {:>8} {:>14} {:>13} {:>7}",
                d.name,
                d.sla_ms.map_or("-".to_string(), |s| format!("{s:.0}")),
                missing,
                changes,
                self.failed.get(&d.name).unwrap_or(&0)
            );
        }
        if !self.reallocations.is_empty() {
            let _ = writeln!(out, "\nReallocations by domain and reason:");
            for ((name, kind, reason), n) in &self.reallocations {
                let _ = writeln!(out, "  {name:<16} {kind:<14} {reason:<16} {n:>6}");
            }
        }
        out
    }
}

/// A point of every domain at its settings of `now`.
fn points(timeline: &mut Vec<TimelinePoint>, t_s: f64, now: &BTreeMap<String, (u32, u64)>) {
    for (name, (cap, mem_kb)) in now {
        timeline.push(TimelinePoint {
            t_s,
            vm: name.clone(),
            cap: *cap,
            mem_mib: *mem_kb as f64 / 1024.0,
            response_ms: None,
        });
    }
}

fn array<'a>(v: &'a Value, name: &str) -> Option<&'a Vec<Value>> {
    v.get(name)?.as_array()
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    Some(v.get(name)?.as_str()?.to_string())
}

fn u32_field(v: &Value, name: &str) -> Option<u32> {
    u32::try_from(v.get(name)?.as_u64()?).ok()
}

#[cfg(test)]
mod tests;
