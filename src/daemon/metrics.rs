//! `--metrics FILE`: what the daemon manages and does, in the Prometheus
//! text exposition format (version 0.0.4), rewritten after every tick.
//!
//! The file is written beside its final name and renamed over it, so a
//! reader (node_exporter's textfile collector, a cron job) never sees half
//! a file. Names follow Prometheus' conventions (base units, `_total` for
//! counters) under a `xen_rex_` prefix; a domain is labelled by its name,
//! as `xl list` shows it. Only managed domains are exported.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::monitor::Usage;
use crate::engine::{Action, PolicyConfig};
use crate::host::driver::TickReport;

/// Upper bounds of the latency histograms' buckets, seconds: from an
/// in-process libxl call (about 2 ms under emulation) to a fork/exec of
/// xl (100–200 ms) and beyond.
const LATENCY_BUCKETS_S: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A Prometheus histogram over LATENCY_BUCKETS_S.
#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts per bucket, then +Inf (the count).
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        self.sum_s += s;
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS_S) {
            if s <= bound {
                *bucket += 1;
            }
        }
        self.buckets[LATENCY_BUCKETS_S.len()] += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in LATENCY_BUCKETS_S.iter().zip(self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let total = self.buckets[LATENCY_BUCKETS_S.len()];
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {total}\n{name}_sum {}\n{name}_count {total}",
            number(self.sum_s)
        );
    }
}

/// The counters kept between ticks, and where they are written.
#[derive(Debug)]
pub struct Metrics {
    /// The `--metrics` file, if any (`--metrics-listen` alone needs none).
    path: Option<PathBuf>,
    ticks: u64,
    /// Applied changes by (domain, kind, reason).
    reallocations: BTreeMap<(String, &'static str, &'static str), u64>,
    /// Changes the host refused, by (domain, kind).
    errors: BTreeMap<(String, &'static str), u64>,
    /// Seconds each SLA domain answered above its SLA (ticks × interval).
    violation_s: BTreeMap<String, f64>,
    /// Time from a change decided to the host call done.
    apply: Histogram,
    /// Time of a tick's observation and decision, before any change.
    decision: Histogram,
    /// The loop's reactions and the guests' key reads.
    loop_counters: super::reactions::LoopCounters,
    last_text: String,
}

impl Metrics {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            ticks: 0,
            reallocations: BTreeMap::new(),
            errors: BTreeMap::new(),
            violation_s: BTreeMap::new(),
            apply: Histogram::default(),
            decision: Histogram::default(),
            loop_counters: Default::default(),
            last_text: String::new(),
        }
    }

    /// The loop's counters as of now (rendered with the next tick).
    pub fn set_loop_counters(&mut self, counters: super::reactions::LoopCounters) {
        self.loop_counters = counters;
    }

    /// Counts one tick's report and renders the exposition.
    pub fn record(&mut self, report: &TickReport, config: &PolicyConfig) {
        self.ticks += 1;
        self.decision.observe(report.decided_in);
        let interval_s = config.host.interval_ms as f64 / 1000.0;
        for applied in &report.applied {
            let kind = Action::kind(&applied.change.action);
            let name = applied.change.name.to_string();
            match &applied.error {
                None => {
                    let key = (name, kind, applied.change.reason.key());
                    *self.reallocations.entry(key).or_default() += 1;
                    self.apply.observe(applied.elapsed);
                }
                Some(_) => *self.errors.entry((name, kind)).or_default() += 1,
            }
        }
        for usage in &report.usage {
            let Some(domain) = config.domain(&usage.name) else {
                continue;
            };
            let Some(sla_ms) = domain.sla_ms else {
                continue;
            };
            let seconds = self.violation_s.entry(usage.name.to_string()).or_default();
            if usage.report.response_ms.is_some_and(|r| r > sla_ms) {
                *seconds += interval_s;
            }
        }
        // A domain gone takes its series along (counters of a name that
        // comes back restart at zero, which Prometheus reads as a reset):
        // with churn the maps would otherwise grow for ever.
        let alive: HashSet<&str> = report.usage.iter().map(|u| u.name.as_ref()).collect();
        self.reallocations
            .retain(|(domain, _, _), _| alive.contains(domain.as_str()));
        self.errors
            .retain(|(domain, _), _| alive.contains(domain.as_str()));
        self.violation_s
            .retain(|domain, _| alive.contains(domain.as_str()));
        self.last_text = self.render(report, config);
    }

    /// The exposition of the last recorded tick.
    pub fn text(&self) -> &str {
        &self.last_text
    }

    /// Writes the last exposition to the file, if there is one: a
    /// temporary file in the same directory, then a rename over the old one.
    pub fn write(&self) -> io::Result<()> {
        match &self.path {
            Some(path) => write_atomically(path, self.last_text.as_bytes()),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn render(&self, report: &TickReport, config: &PolicyConfig) -> String {
        let mut out = String::new();
        // The settings after this tick: what was observed, then what was
        // applied on top of it.
        let managed: Vec<Usage> = report
            .usage_after_changes()
            .into_iter()
            .filter(|u| config.domain(&u.name).is_some())
            .collect();
        let gauge = |out: &mut String,
                     name: &str,
                     help: &str,
                     rows: &mut dyn Iterator<Item = (String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (domain, value) in rows {
                let _ = writeln!(
                    out,
                    "{name}{{domain=\"{}\"}} {}",
                    escape(&domain),
                    number(value)
                );
            }
        };
        gauge(
            &mut out,
            "xen_rex_domain_cap_percent",
            "Scheduler cap of the domain, percent of one pCPU (0: uncapped).",
            &mut managed
                .iter()
                .map(|u| (u.name.to_string(), f64::from(u.sched.cap))),
        );
        gauge(
            &mut out,
            "xen_rex_domain_weight",
            "Scheduler weight of the domain.",
            &mut managed
                .iter()
                .map(|u| (u.name.to_string(), f64::from(u.sched.weight))),
        );
        gauge(
            &mut out,
            "xen_rex_domain_cpu_usage_percent",
            "CPU the domain used, smoothed, percent of one pCPU.",
            &mut managed.iter().map(|u| (u.name.to_string(), u.cpu_pct)),
        );
        out.push_str(
            "# HELP xen_rex_domain_cpu_seconds_total CPU time the domain has used since it was created.\n\
             # TYPE xen_rex_domain_cpu_seconds_total counter\n",
        );
        for u in &managed {
            let _ = writeln!(
                out,
                "xen_rex_domain_cpu_seconds_total{{domain=\"{}\"}} {}",
                escape(&u.name),
                number(u.cpu_time_ns as f64 / 1e9)
            );
        }
        gauge(
            &mut out,
            "xen_rex_domain_memory_target_bytes",
            "Balloon target of the domain.",
            &mut managed
                .iter()
                .map(|u| (u.name.to_string(), u.mem_target_kb as f64 * 1024.0)),
        );
        gauge(
            &mut out,
            "xen_rex_domain_memory_current_bytes",
            "Memory the domain holds now.",
            &mut managed
                .iter()
                .map(|u| (u.name.to_string(), u.mem_current_kb as f64 * 1024.0)),
        );
        gauge(
            &mut out,
            "xen_rex_domain_sla_seconds",
            "Response-time SLA of the domain (SLA domains only).",
            &mut managed.iter().filter_map(|u| {
                let sla = config.domain(&u.name)?.sla_ms?;
                Some((u.name.to_string(), sla / 1000.0))
            }),
        );
        gauge(
            &mut out,
            "xen_rex_domain_balloon_uncooperative",
            "1 while rex holds the domain's balloon uncooperative (xenstore memory/uncooperative).",
            &mut managed.iter().map(|u| {
                let flagged = report.uncooperative.contains(&u.domid);
                (u.name.to_string(), f64::from(u8::from(flagged)))
            }),
        );
        gauge(
            &mut out,
            "xen_rex_domain_unmet_cpu_percent",
            "CPU the domain asked for this tick and the host could not give, percent of one pCPU.",
            &mut managed.iter().map(|u| {
                let unmet = report.shortfall(u.domid).map_or(0, |s| s.cpu_pct);
                (u.name.to_string(), f64::from(unmet))
            }),
        );
        gauge(
            &mut out,
            "xen_rex_domain_unmet_memory_bytes",
            "Memory the domain asked for this tick beyond what the host had free.",
            &mut managed.iter().map(|u| {
                let unmet = report.shortfall(u.domid).map_or(0, |s| s.mem_kb);
                (u.name.to_string(), unmet as f64 * 1024.0)
            }),
        );
        gauge(
            &mut out,
            "xen_rex_domain_guest_agent_stale",
            "1 while the guest's agent has stopped publishing (its values are ignored).",
            &mut managed
                .iter()
                .map(|u| (u.name.to_string(), f64::from(u8::from(u.report.stale)))),
        );
        gauge(
            &mut out,
            "xen_rex_domain_response_seconds",
            "Response time the guest last reported (where it reports one).",
            &mut managed
                .iter()
                .filter_map(|u| Some((u.name.to_string(), u.report.response_ms? / 1000.0))),
        );
        out.push_str(
            "# HELP xen_rex_domain_sla_violation_seconds_total Seconds the domain answered above its SLA.\n\
             # TYPE xen_rex_domain_sla_violation_seconds_total counter\n",
        );
        for (domain, seconds) in &self.violation_s {
            let _ = writeln!(
                out,
                "xen_rex_domain_sla_violation_seconds_total{{domain=\"{}\"}} {}",
                escape(domain),
                number(*seconds)
            );
        }
        out.push_str(
            "# HELP xen_rex_reallocations_total Changes applied, by domain, kind and reason.\n\
             # TYPE xen_rex_reallocations_total counter\n",
        );
        for ((domain, kind, reason), n) in &self.reallocations {
            let _ = writeln!(
                out,
                "xen_rex_reallocations_total{{domain=\"{}\",kind=\"{kind}\",reason=\"{reason}\"}} {n}",
                escape(domain)
            );
        }
        out.push_str(
            "# HELP xen_rex_reallocation_errors_total Changes the host refused, by domain and kind.\n\
             # TYPE xen_rex_reallocation_errors_total counter\n",
        );
        for ((domain, kind), n) in &self.errors {
            let _ = writeln!(
                out,
                "xen_rex_reallocation_errors_total{{domain=\"{}\",kind=\"{kind}\"}} {n}",
                escape(domain)
            );
        }
        self.apply.render(
            &mut out,
            "xen_rex_apply_duration_seconds",
            "Time to apply one change, decision to done.",
        );
        self.decision.render(
            &mut out,
            "xen_rex_decision_duration_seconds",
            "Time of one tick's observation of the host and decision, before any change.",
        );
        let (unmet_cpu_pct, unmet_mem_kb) = report.unmet_totals();
        let _ = writeln!(
            out,
            "# HELP xen_rex_ticks_total Ticks the daemon has run.\n\
             # TYPE xen_rex_ticks_total counter\n\
             xen_rex_ticks_total {}\n\
             # HELP xen_rex_host_unmet_cpu_percent CPU the managed domains asked for this tick and the host could not give, percent of one pCPU.\n\
             # TYPE xen_rex_host_unmet_cpu_percent gauge\n\
             xen_rex_host_unmet_cpu_percent {}\n\
             # HELP xen_rex_host_unmet_memory_bytes Memory the managed domains asked for this tick beyond what the host had free.\n\
             # TYPE xen_rex_host_unmet_memory_bytes gauge\n\
             xen_rex_host_unmet_memory_bytes {}\n\
             # HELP xen_rex_host_cpu_pool_percent CPU the managed domains share, percent of one pCPU: the pool's pCPUs less dom0's share, the reserve and the caps of unmanaged capped guests.\n\
             # TYPE xen_rex_host_cpu_pool_percent gauge\n\
             xen_rex_host_cpu_pool_percent {}\n\
             # HELP xen_rex_host_free_memory_bytes Memory of the host no domain holds.\n\
             # TYPE xen_rex_host_free_memory_bytes gauge\n\
             xen_rex_host_free_memory_bytes {}\n\
             # HELP xen_rex_host_guest_pcpus Physical CPUs of the pool the managed domains run in.\n\
             # TYPE xen_rex_host_guest_pcpus gauge\n\
             xen_rex_host_guest_pcpus {}\n\
             # HELP xen_rex_managed_domains Managed domains running now.\n\
             # TYPE xen_rex_managed_domains gauge\n\
             xen_rex_managed_domains {}\n\
             # HELP xen_rex_dry_run 1 when rex decides but applies nothing.\n\
             # TYPE xen_rex_dry_run gauge\n\
             xen_rex_dry_run {}\n\
             # HELP xen_rex_paused 1 while `rex pause` holds every change.\n\
             # TYPE xen_rex_paused gauge\n\
             xen_rex_paused {}",
            self.ticks,
            unmet_cpu_pct,
            unmet_mem_kb * 1024,
            cpu_pool_pct(report, config),
            report.host.free_mem_kb * 1024,
            report.host.guest_pcpus,
            managed.len(),
            u8::from(report.dry_run),
            u8::from(report.paused)
        );
        let c = &self.loop_counters;
        let _ = writeln!(
            out,
            "# HELP xen_rex_early_ticks_total Ticks run before their time because a guest published memory pressure or an SLA miss.\n\
             # TYPE xen_rex_early_ticks_total counter\n\
             xen_rex_early_ticks_total {}\n\
             # HELP xen_rex_reactions_limited_total Guest changes left to the next tick: the guest had been looked at less than a quarter interval before, or had made for an early tick less than an interval before.\n\
             # TYPE xen_rex_reactions_limited_total counter\n\
             xen_rex_reactions_limited_total {}\n\
             # HELP xen_rex_xenstore_reads_total xenstore reads of the domains' keys.\n\
             # TYPE xen_rex_xenstore_reads_total counter\n\
             xen_rex_xenstore_reads_total {}\n\
             # HELP xen_rex_xenstore_watch_events_total xenstore watch events received.\n\
             # TYPE xen_rex_xenstore_watch_events_total counter\n\
             xen_rex_xenstore_watch_events_total {}",
            c.early_ticks, c.limited, c.keys.reads, c.keys.events
        );
        out
    }
}

/// The pool the policy shares this tick, as it computes it.
fn cpu_pool_pct(report: &TickReport, config: &PolicyConfig) -> u64 {
    let unmanaged_caps: u64 = report
        .usage
        .iter()
        .filter(|u| u.domid != 0 && config.domain(&u.name).is_none())
        .map(|u| u64::from(u.sched.cap))
        .sum();
    crate::engine::limits::cpu_pool_pct(
        report.host.guest_pcpus,
        config.host.dom0_cpu_pct,
        config.host.reserve_cpu_pct,
        unmanaged_caps,
    )
}

/// A label value as the text format wants it: `\`, `"` and newlines
/// escaped. Domain names come from xl, but nothing stops one holding a quote.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: finite numbers as Rust prints them (shortest exact
/// form), the rest in the format's own spelling.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// Writes `bytes` to `path` so a reader sees the old file or the new one,
/// never a part: a temporary file beside it, synced, renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, None)
}

/// Writes `bytes` beside `path` (with `mode`, when given, before any
/// byte) and renames the file over `path`.
pub fn replace_file(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    // A leading dot: node_exporter's collector reads *.prom files only.
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        if let Some(mode) = mode {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::parse_policy_text;
    use crate::engine::{Change, GuestReport, Reason, SchedParams};
    use crate::host::driver::AppliedChange;

    fn usage(domid: u32, name: &str, cap: u32, response_ms: Option<f64>) -> Usage {
        Usage {
            domid,
            name: name.into(),
            cpu_pct: 19.0,
            cpu_pct_raw: 19.0,
            vcpus: 1,
            sched: SchedParams { weight: 256, cap },
            mem_current_kb: 65_536,
            mem_target_kb: 65_536,
            mem_max_kb: 131_072,
            mem_used_kb: None,
            report: GuestReport {
                response_ms,
                ..GuestReport::default()
            },
            has_cpu_sample: true,
            cpu_time_ns: u64::from(domid) * 1_500_000_000,
        }
    }

    fn raise(name: &str, from: u32, to: u32, error: Option<&str>) -> AppliedChange {
        AppliedChange {
            change: Change {
                domid: 1,
                name: name.into(),
                action: Action::Cap { from, to },
                reason: Reason::SlaMissed {
                    response_ms: 1200.0,
                    sla_ms: 900.0,
                    from: vec![],
                },
            },
            elapsed: Duration::from_micros(1500),
            error: error.map(String::from),
        }
    }

    /// One tick's report on a one-pCPU host with 1 GiB.
    fn report(usage: Vec<Usage>, applied: Vec<AppliedChange>) -> TickReport {
        TickReport {
            at_ns: 0,
            host: crate::engine::HostInfo {
                guest_pcpus: 1,
                total_mem_kb: 1 << 20,
                free_mem_kb: 1 << 19,
                scheduler: crate::engine::Scheduler::Credit2,
            },
            usage,
            applied,
            dry_run: false,
            paused: false,
            uncooperative: Default::default(),
            shortfalls: Vec::new(),
            decided_in: Duration::from_micros(300),
        }
    }

    #[test]
    fn a_flagged_balloon_and_a_pause_are_exported_as_the_tick_reports_them() {
        let config =
            parse_policy_text("test.cfg", "domains = [ \"name=web\", \"name=batch\" ]\n").unwrap();
        let mut metrics = Metrics::new(None);
        let gauge = |text: &str, domain: &str| {
            let prefix = format!("xen_rex_domain_balloon_uncooperative{{domain=\"{domain}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix).map(String::from))
        };
        let both = || vec![usage(1, "web", 20, None), usage(2, "batch", 20, None)];
        let mut flagged = report(both(), vec![]);
        flagged.uncooperative.insert(1);
        flagged.usage[1].report.stale = true;
        metrics.record(&flagged, &config);
        assert_eq!(gauge(metrics.text(), "web").as_deref(), Some("1"));
        assert_eq!(gauge(metrics.text(), "batch").as_deref(), Some("0"));
        assert!(metrics.text().lines().any(|l| l == "xen_rex_paused 0"));
        for line in [
            "xen_rex_domain_guest_agent_stale{domain=\"batch\"} 1",
            "xen_rex_domain_guest_agent_stale{domain=\"web\"} 0",
        ] {
            assert!(metrics.text().lines().any(|l| l == line), "{line}");
        }
        flagged.paused = true;
        metrics.record(&flagged, &config);
        assert!(metrics.text().lines().any(|l| l == "xen_rex_paused 1"));
        metrics.record(&report(both(), vec![]), &config);
        assert_eq!(gauge(metrics.text(), "web").as_deref(), Some("0"));
        assert!(metrics.text().lines().any(|l| l == "xen_rex_paused 0"));
    }

    #[test]
    fn violations_reallocations_and_latencies_are_counted_across_ticks() {
        let config = parse_policy_text(
            "test.cfg",
            "interval = 500\ndomains = [ \"name=web,sla_ms=900\", \"name=batch\" ]\n",
        )
        .unwrap();
        let mut metrics = Metrics::new(None);
        // Two ticks above the SLA (one second at 500 ms a tick), one below.
        for (response, applied) in [
            (1200.0, vec![raise("web", 20, 30, None)]),
            (
                1000.0,
                vec![
                    raise("web", 30, 40, None),
                    raise("web", 40, 50, Some("refused")),
                ],
            ),
            (400.0, vec![raise("web", 40, 50, None)]),
        ] {
            metrics.record(
                &report(
                    vec![
                        usage(1, "web", 40, Some(response)),
                        usage(2, "batch", 20, None),
                        usage(3, "other", 0, None),
                    ],
                    applied,
                ),
                &config,
            );
        }
        let text = metrics.text();
        for line in [
            "xen_rex_domain_sla_violation_seconds_total{domain=\"web\"} 1",
            "xen_rex_reallocations_total{domain=\"web\",kind=\"cap\",reason=\"sla_missed\"} 3",
            "xen_rex_reallocation_errors_total{domain=\"web\",kind=\"cap\"} 1",
            "xen_rex_apply_duration_seconds_bucket{le=\"0.001\"} 0",
            "xen_rex_apply_duration_seconds_bucket{le=\"0.002\"} 3",
            "xen_rex_apply_duration_seconds_count 3",
            "xen_rex_domain_sla_seconds{domain=\"web\"} 0.9",
            "xen_rex_domain_response_seconds{domain=\"web\"} 0.4",
            "xen_rex_domain_cap_percent{domain=\"batch\"} 20",
            "xen_rex_domain_cap_percent{domain=\"web\"} 50",
            "xen_rex_ticks_total 3",
            "xen_rex_managed_domains 2",
            "xen_rex_domain_cpu_seconds_total{domain=\"web\"} 1.5",
            "xen_rex_host_cpu_pool_percent 100",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("other"),
            "an unmanaged domain is not exported:\n{text}"
        );
        assert!(
            !text.contains("xen_rex_domain_sla_seconds{domain=\"batch\"}"),
            "{text}"
        );
    }

    #[test]
    fn unmet_demand_is_exported_per_domain_and_for_the_host() {
        let config =
            parse_policy_text("test.cfg", "domains = [ \"name=web\", \"name=batch\" ]\n").unwrap();
        let mut metrics = Metrics::new(None);
        let mut short = report(
            vec![usage(1, "web", 20, None), usage(2, "batch", 20, None)],
            vec![],
        );
        short.shortfalls = vec![
            crate::engine::Shortfall {
                domid: 1,
                name: "web".into(),
                cpu_pct: 20,
                mem_kb: 0,
            },
            crate::engine::Shortfall {
                domid: 2,
                name: "batch".into(),
                cpu_pct: 5,
                mem_kb: 65_536,
            },
        ];
        metrics.record(&short, &config);
        let text = metrics.text();
        for line in [
            "xen_rex_domain_unmet_cpu_percent{domain=\"web\"} 20",
            "xen_rex_domain_unmet_cpu_percent{domain=\"batch\"} 5",
            "xen_rex_domain_unmet_memory_bytes{domain=\"web\"} 0",
            "xen_rex_domain_unmet_memory_bytes{domain=\"batch\"} 67108864",
            "xen_rex_host_unmet_cpu_percent 25",
            "xen_rex_host_unmet_memory_bytes 67108864",
            "xen_rex_host_free_memory_bytes 536870912",
            "xen_rex_decision_duration_seconds_bucket{le=\"0.0005\"} 1",
            "xen_rex_decision_duration_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Met at the next tick: the gauges fall back to zero.
        metrics.record(&report(vec![usage(1, "web", 40, None)], vec![]), &config);
        assert!(metrics
            .text()
            .lines()
            .any(|l| l == "xen_rex_host_unmet_cpu_percent 0"));
    }

    #[test]
    fn a_domain_gone_takes_its_series_along() {
        let config = parse_policy_text(
            "test.cfg",
            "domains = [ \"name=web,sla_ms=900\", \"name=batch\" ]\n",
        )
        .unwrap();
        let mut metrics = Metrics::new(None);
        metrics.record(
            &report(
                vec![
                    usage(1, "web", 20, Some(1200.0)),
                    usage(2, "batch", 20, None),
                ],
                vec![
                    raise("web", 20, 30, None),
                    raise("batch", 20, 30, Some("no")),
                ],
            ),
            &config,
        );
        assert!(metrics.text().contains("{domain=\"web\",kind=\"cap\""));
        metrics.record(&report(vec![usage(2, "batch", 20, None)], vec![]), &config);
        let text = metrics.text();
        assert!(!text.contains("\"web\""), "web is gone:\n{text}");
        assert!(text.contains("xen_rex_reallocation_errors_total{domain=\"batch\",kind=\"cap\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn numbers_use_the_formats_spelling() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("rex-metrics-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rex.prom");
        write_atomically(&path, b"first\n").unwrap();
        write_atomically(&path, b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("rex.prom")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_into_a_missing_directory_fails_and_says_so() {
        let err = write_atomically(Path::new("/nonexistent/dir/rex.prom"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
