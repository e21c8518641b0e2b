//! Property tests of the policy: whatever the usage, guest reports and
//! configuration, a plan applied to its inputs keeps the pool, the bounds,
//! the slush and the order of memory changes, and never touches a domain rex
//! does not manage.

use std::collections::HashMap;

use proptest::prelude::*;
use rex::engine::{
    Action, DomainInfo, DomainObservation, DomainPolicy, DomainState, Engine, GuestReport,
    HostInfo, HostPolicy, KiB, Level, Plan, Policy, PolicyConfig, SchedParams, Scheduler, Snapshot,
    Usage,
};
use rex::host::guest::parse_report;

const MIB: KiB = 1024;

#[derive(Debug, Clone)]
struct Case {
    host: HostInfo,
    config: PolicyConfig,
    rows: Vec<Usage>,
    /// CPU use of every row at later ticks, as a fraction of its vCPUs.
    later: Vec<Vec<f64>>,
}

/// Decodes bounded fields from random words. Generating a few plain words
/// per domain (rather than one strategy per field) keeps 10,000 cases fast
/// in a debug build; shrinking a word still shrinks its fields towards 0.
struct Fields<'a> {
    words: &'a [u64],
    current: u64,
}

impl<'a> Fields<'a> {
    fn new(words: &'a [u64]) -> Self {
        Self { words, current: 0 }
    }

    /// A value in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        if self.current < n {
            if let Some((&next, rest)) = self.words.split_first() {
                self.current = next;
                self.words = rest;
            }
        }
        let value = self.current % n;
        self.current /= n;
        value
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn fraction(&mut self) -> f64 {
        self.below(1001) as f64 / 1000.0
    }

    /// True with probability `percent`%.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn host_policy(f: &mut Fields) -> HostPolicy {
    HostPolicy {
        dom0_cpu_pct: f.range(0, 60) as u32,
        reserve_cpu_pct: f.range(0, 40) as u32,
        slush_kb: f.range(0, 128) * MIB,
        saturation_pct: 50.0 + 50.0 * f.fraction(),
        idle_pct: 49.0 * f.fraction(),
        deadband_cap: f.range(0, 6) as u32,
        deadband_mem_kb: f.range(0, 16) * MIB,
        max_step_cap: f.range(0, 40) as u32,
        max_step_mem_kb: f.range(0, 128) * MIB,
        cooldown_ticks: f.range(0, 5) as u32,
        mem_pressure_free_pct: 30.0 * f.fraction(),
        ..HostPolicy::default()
    }
}

/// A domain's policy. Now and then cap_min > cap_max, cap_max = 0 or
/// mem_min > mem_max, which validation rejects.
fn domain_policy(f: &mut Fields, name: String) -> DomainPolicy {
    let cap_min = f.range(0, 60);
    let cap_max = (cap_min + f.range(0, 305)).saturating_sub(5);
    let mem_min = f.range(0, 128) * MIB;
    let mem_max = (mem_min + f.range(0, 392) * MIB).saturating_sub(8 * MIB);
    DomainPolicy {
        name,
        sla_ms: f.chance(70).then(|| 1.0 + f.range(0, 2000) as f64),
        level: Level {
            load: 0,
            cap_pct: f.range(0, 200) as u32,
            mem_kb: f.range(0, 512) * MIB,
        },
        cap_min: cap_min as u32,
        cap_max: cap_max as u32,
        mem_min_kb: mem_min,
        mem_max_kb: mem_max,
        weight: f.range(1, 1024) as u32,
        priority: f.range(0, 3) as u32,
    }
}

/// A usage row as the monitor hands it over, guest values clamped.
fn usage_row(f: &mut Fields, domid: u32, name: String) -> Usage {
    let cap = if f.chance(10) {
        0
    } else {
        f.range(1, 500) as u32
    };
    let weight = f.range(1, 1024) as u32;
    let vcpus = f.range(1, 4) as u32;
    let has_cpu_sample = f.chance(85);
    let cpu_pct = if has_cpu_sample {
        f.fraction() * f64::from(vcpus) * 100.0
    } else {
        0.0
    };
    let mem_target_kb = f.range(0, 600) * MIB;
    let mem_max_kb = f.range(0, 700) * MIB;
    let raw = GuestReport {
        mem_free_kb: f.chance(70).then(|| f.range(0, 600) * MIB + f.below(1024)),
        mem_total_kb: f.chance(70).then(|| f.range(0, 600) * MIB),
        response_ms: match f.below(5) {
            0 => None,
            1 => Some(f64::NAN),
            2 => Some(1e300),
            _ => Some(f.range(0, 3000) as f64),
        },
        stale: false,
    };
    let report = sanitised(raw, mem_max_kb);
    Usage {
        domid,
        name: name.into(),
        cpu_pct,
        cpu_pct_raw: cpu_pct,
        vcpus,
        sched: SchedParams { weight, cap },
        mem_current_kb: mem_target_kb,
        mem_target_kb,
        mem_max_kb,
        mem_used_kb: match (report.mem_total_kb, report.mem_free_kb) {
            (Some(t), Some(free)) => Some(t - free),
            _ => None,
        },
        report,
        has_cpu_sample,
        cpu_time_ns: 0,
    }
}

/// `raw` as a backend hands it to the engine: written out as a guest would
/// write it to xenstore, read back through the one owner of guest values.
fn sanitised(raw: GuestReport, mem_max_kb: u64) -> GuestReport {
    let text = |v: Option<String>| v.map(String::into_bytes);
    parse_report(
        text(raw.mem_free_kb.map(|v| v.to_string())).as_deref(),
        text(raw.mem_total_kb.map(|v| v.to_string())).as_deref(),
        text(raw.response_ms.map(|v| v.to_string())).as_deref(),
        mem_max_kb,
    )
}

/// A host, its policy, dom0, up to 6 configured domains (most of them
/// running) and up to 3 guests rex does not manage, plus up to 3 later ticks.
fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(any::<u64>(), 4),
        prop::collection::vec(prop::collection::vec(any::<u64>(), 4), 0..7),
        prop::collection::vec(prop::collection::vec(any::<u64>(), 3), 0..4),
        prop::collection::vec(any::<u64>(), 0..3),
    )
        .prop_map(|(host_words, managed, others, later_words)| {
            let mut f = Fields::new(&host_words);
            let total_mb = f.range(256, 8192);
            let host = HostInfo {
                guest_pcpus: f.range(1, 8) as u32,
                total_mem_kb: total_mb * MIB,
                free_mem_kb: f.range(0, 2048).min(total_mb) * MIB,
                scheduler: Scheduler::Credit,
            };
            let host_policy = host_policy(&mut f);
            let mut rows = vec![usage_row(&mut f, 0, "Domain-0".into())];
            let mut domains = Vec::new();
            for (i, words) in managed.iter().enumerate() {
                let mut f = Fields::new(words);
                let name = format!("vm{i}");
                if f.chance(90) {
                    rows.push(usage_row(&mut f, 1 + 2 * i as u32, name.clone()));
                }
                domains.push(domain_policy(&mut f, name));
            }
            for (i, words) in others.iter().enumerate() {
                let mut f = Fields::new(words);
                rows.push(usage_row(&mut f, 100 + i as u32, format!("stranger{i}")));
            }
            let later = later_words
                .iter()
                .map(|&word| {
                    (0..8)
                        .map(|b| ((word >> (8 * b)) & 0xff) as f64 / 255.0)
                        .collect()
                })
                .collect();
            Case {
                host,
                config: PolicyConfig {
                    host: host_policy,
                    domains,
                },
                rows,
                later,
            }
        })
}

/// What a plan did to the rows, checked as it is applied.
/// `valid`: whether the configuration passed [`Policy::validate`].
fn apply_and_check(case: &mut Case, plan: &Plan, valid: bool) -> Result<(), TestCaseError> {
    let policies: HashMap<&str, &DomainPolicy> = case
        .config
        .domains
        .iter()
        .map(|d| (d.name.as_str(), d))
        .collect();
    let h = &case.config.host;
    let budget = case.host.free_mem_kb.saturating_sub(h.slush_kb);
    let unmanaged_caps: u64 = case
        .rows
        .iter()
        .filter(|r| r.domid != 0 && !policies.contains_key(r.name.as_ref()))
        .map(|r| u64::from(r.sched.cap))
        .sum();
    let pool = (u64::from(case.host.guest_pcpus) * 100)
        .saturating_sub(u64::from(h.dom0_cpu_pct) + u64::from(h.reserve_cpu_pct))
        .saturating_sub(unmanaged_caps);
    let before: Vec<Usage> = case.rows.clone();

    let mut seen_grow = false;
    let mut seen_cap_raise = false;
    let mut growth: KiB = 0;
    let mut touched: HashMap<(u32, u8), usize> = HashMap::new();
    for change in &plan.changes {
        let row = case
            .rows
            .iter_mut()
            .find(|r| r.domid == change.domid)
            .ok_or_else(|| TestCaseError::fail(format!("change for unknown domain: {change:?}")))?;
        prop_assert!(change.domid != 0, "dom0 changed: {change:?}");
        prop_assert!(
            policies.contains_key(row.name.as_ref()),
            "unmanaged domain changed: {change:?}"
        );
        prop_assert_eq!(&*change.name, &*row.name);
        let kind = match change.action {
            Action::Cap { from, to } => {
                prop_assert_eq!(from, row.sched.cap);
                prop_assert!(to >= 1, "cap 0 (uncapped) set: {:?}", change);
                // Leaving uncapped (0) is a decrease too.
                if from != 0 && to > from {
                    seen_cap_raise = true;
                } else {
                    prop_assert!(!seen_cap_raise, "cap decrease after a raise: {:?}", plan);
                }
                row.sched.cap = to;
                0
            }
            Action::Weight { from, to } => {
                prop_assert_eq!(from, row.sched.weight);
                row.sched.weight = to;
                1
            }
            Action::Memory { from, to } => {
                prop_assert_eq!(from, row.mem_target_kb);
                if to > from {
                    seen_grow = true;
                    // What it takes from the host: above what it holds (a
                    // stuck balloon's target set back to it takes nothing).
                    growth += to - from.max(row.mem_current_kb.min(to));
                } else {
                    prop_assert!(!seen_grow, "memory shrink after a grow: {:?}", plan);
                }
                row.mem_target_kb = to;
                row.mem_current_kb = to;
                2
            }
            Action::BalloonFlag { .. } => 3,
        };
        *touched.entry((change.domid, kind)).or_default() += 1;
    }
    prop_assert!(
        touched.values().all(|&n| n == 1),
        "two changes of one kind: {:?}",
        plan
    );
    prop_assert!(
        growth <= budget,
        "grew {growth} KiB with {budget} KiB above the slush"
    );

    let managed: Vec<(&Usage, &Usage, &DomainPolicy)> = case
        .rows
        .iter()
        .zip(&before)
        .filter(|(r, _)| r.domid != 0)
        .filter_map(|(r, b)| policies.get(r.name.as_ref()).map(|p| (r, b, *p)))
        .collect();
    let guaranteed: u64 = managed
        .iter()
        .map(|(_, _, p)| u64::from(p.guaranteed_cap()))
        .sum();
    let caps: u64 = managed.iter().map(|(r, _, _)| u64::from(r.sched.cap)).sum();
    if guaranteed <= pool {
        prop_assert!(caps <= pool, "caps add up to {caps} in a pool of {pool}");
    }
    if valid {
        for (row, was, p) in &managed {
            prop_assert!(
                (p.cap_min.max(1)..=p.cap_max).contains(&row.sched.cap),
                "{}: cap {} outside [{}, {}]",
                p.name,
                row.sched.cap,
                p.cap_min,
                p.cap_max
            );
            prop_assert!(
                row.mem_target_kb <= p.mem_max_kb,
                "{}: above mem_max",
                p.name
            );
            // Never above what the domain may have (its maxmem), even for
            // a guarantee: Xen would refuse it.
            let floor = match row.mem_max_kb {
                0 => p.mem_min_kb,
                max => p.mem_min_kb.min(max),
            };
            let short = floor.saturating_sub(row.mem_target_kb);
            // A domain with no balloon target yet (xl create is building
            // it) is left alone until it has one.
            let building = was.mem_target_kb == 0;
            prop_assert!(
                short == 0 || building || (was.mem_target_kb < floor && budget - growth < short),
                "{}: memory {} below mem_min {} (maxmem {}) with budget left",
                p.name,
                row.mem_target_kb,
                p.mem_min_kb,
                row.mem_max_kb
            );
            let raised = row.mem_target_kb > was.mem_target_kb;
            prop_assert!(
                !raised || row.mem_max_kb == 0 || row.mem_target_kb <= row.mem_max_kb,
                "{}: grown to {} above its maxmem {}",
                p.name,
                row.mem_target_kb,
                row.mem_max_kb
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn plans_keep_the_invariants(mut case in case()) {
        let valid = Policy::validate(&case.config, &case.host).is_ok();
        let mut policy = Policy::new(case.config.clone());
        let plan = policy.decide(&case.host, &case.rows);
        apply_and_check(&mut case, &plan, valid)?;
        let mut last = plan;
        for loads in case.later.clone() {
            // The previous plan happened: its shrinks freed memory, its grows took some.
            let (shrunk, grown) = plan_memory_delta(&last);
            case.host.free_mem_kb = (case.host.free_mem_kb + shrunk).saturating_sub(grown);
            for (row, load) in case.rows.iter_mut().zip(loads.iter().cycle()) {
                row.cpu_pct = load * f64::from(row.vcpus) * 100.0;
                row.has_cpu_sample = true;
            }
            last = policy.decide(&case.host, &case.rows);
            apply_and_check(&mut case, &last, valid)?;
        }
    }
}

/// Memory given back and taken by a plan, KiB.
fn plan_memory_delta(plan: &Plan) -> (KiB, KiB) {
    plan.changes
        .iter()
        .fold((0, 0), |(down, up), c| match c.action {
            Action::Memory { from, to } if to < from => (down + from - to, up),
            Action::Memory { from, to } => (down, up + to - from),
            _ => (down, up),
        })
}

/// One tick of a host whose domains come, go, die, get their domid reused,
/// and whose guests write anything at all.
fn chaotic_snapshot(
    words: &[u64],
    tick: u64,
    state: &mut HashMap<u32, (SchedParams, KiB, u64)>,
) -> Snapshot {
    let mut f = Fields::new(words);
    let mut domains = Vec::new();
    for domid in 0..6u32 {
        if !f.chance(85) {
            continue;
        }
        let (sched, mem_kb, cpu_time_ns) = state.entry(domid).or_insert((
            SchedParams {
                weight: 256,
                cap: 0,
            },
            64 * MIB,
            0,
        ));
        // Mostly forwards; now and then backwards, as after a domid reuse.
        if f.chance(95) {
            *cpu_time_ns += f.range(0, 3_000_000_000);
        } else {
            *cpu_time_ns /= 2;
        }
        let garbage = [f64::NAN, f64::INFINITY, -5.0, 1e300, 450.0, 2500.0];
        let mem_max_kb = f.range(0, 512) * MIB;
        // Memory figures: now and then any 64-bit value, else plausible
        // ones, with free often short enough for the domain to grow.
        let figure = |f: &mut Fields, plausible_mib: u64| {
            f.chance(70).then(|| {
                if f.chance(25) {
                    f.below(u64::MAX)
                } else {
                    f.range(0, plausible_mib) * MIB + f.below(1024)
                }
            })
        };
        domains.push(DomainObservation {
            info: DomainInfo {
                domid,
                name: if domid == 0 {
                    "Domain-0".into()
                } else {
                    format!("vm{}", f.range(1, 5))
                },
                uuid: [f.range(0, 1) as u8; 16],
                vcpus_online: f.range(0, 4) as u32,
                cpu_time_ns: *cpu_time_ns,
                mem_current_kb: *mem_kb,
                mem_target_kb: *mem_kb,
                mem_max_kb,
                state: match f.below(6) {
                    0 => DomainState::Dying,
                    1 => DomainState::Shutdown,
                    2 => DomainState::Paused,
                    3 => DomainState::Blocked,
                    _ => DomainState::Running,
                },
            },
            sched: *sched,
            report: sanitised(
                GuestReport {
                    mem_free_kb: figure(&mut f, 48),
                    mem_total_kb: figure(&mut f, 512),
                    response_ms: f.chance(80).then(|| garbage[f.below(6) as usize]),
                    stale: false,
                },
                mem_max_kb,
            ),
        });
    }
    Snapshot {
        at_ns: tick * 1_000_000_000,
        host: HostInfo {
            guest_pcpus: 2,
            total_mem_kb: 4096 * MIB,
            free_mem_kb: f.range(0, 1024) * MIB,
            scheduler: Scheduler::Credit2,
        },
        domains,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The whole engine on chaotic hosts: usage is well-formed and the
    /// plans touch only managed domains, with sane values: caps within
    /// bounds, memory grown only within mem_max, the domain's maxmem and
    /// the free memory above the slush, and shrunk no lower than mem_min.
    #[test]
    fn engine_copes_with_chaotic_hosts(
        ticks in prop::collection::vec(prop::collection::vec(any::<u64>(), 16), 1..6),
    ) {
        let policy = |name: &str| DomainPolicy {
            name: name.into(),
            sla_ms: Some(900.0),
            level: Level { load: 0, cap_pct: 20, mem_kb: 64 * MIB },
            cap_min: 5,
            cap_max: 80,
            mem_min_kb: 64 * MIB,
            mem_max_kb: 256 * MIB,
            weight: 256,
            priority: 0,
        };
        let config = PolicyConfig {
            host: HostPolicy::default(),
            domains: vec![policy("vm1"), policy("vm2"), policy("vm3")],
        };
        let mut engine = Engine::new(config);
        let mut state = HashMap::new();
        for (i, words) in ticks.iter().enumerate() {
            let snapshot = chaotic_snapshot(words, i as u64 + 1, &mut state);
            let tick = engine.step(&snapshot);
            prop_assert!(tick.usage.windows(2).all(|w| w[0].domid < w[1].domid));
            for u in &tick.usage {
                let obs = snapshot.domains.iter().find(|d| d.info.domid == u.domid).unwrap();
                prop_assert!(obs.info.state.is_alive(), "dead domain {} in usage", u.domid);
                let ceiling = f64::from(u.vcpus) * 100.0;
                prop_assert!((0.0..=ceiling).contains(&u.cpu_pct), "cpu {} of {}", u.cpu_pct, ceiling);
                prop_assert!(u.has_cpu_sample || u.cpu_pct == 0.0);
                if let Some(ms) = u.report.response_ms {
                    prop_assert!((0.0..=3_600_000.0).contains(&ms));
                }
                if let (Some(free), Some(total)) = (u.report.mem_free_kb, u.report.mem_total_kb) {
                    prop_assert!(free <= total);
                    prop_assert_eq!(u.mem_used_kb, Some(total - free));
                }
            }
            // Growth comes out of the host's free memory above the slush
            // (and the reserve), all of this tick's grows together.
            let host_policy = HostPolicy::default();
            let budget = snapshot
                .host
                .free_mem_kb
                .saturating_sub(host_policy.slush_kb + host_policy.reserve_mem_kb);
            let mut grown: KiB = 0;
            for change in &tick.plan.changes {
                prop_assert!(change.domid != 0, "dom0 changed");
                prop_assert!(["vm1", "vm2", "vm3"].contains(&&*change.name));
                let obs = snapshot.domains.iter().find(|d| d.info.domid == change.domid).unwrap();
                let entry = state.get_mut(&change.domid).unwrap();
                match change.action {
                    Action::Cap { to, .. } => {
                        prop_assert!((5..=80).contains(&to));
                        entry.0.cap = to;
                    }
                    Action::Weight { to, .. } => entry.0.weight = to,
                    Action::BalloonFlag { .. } => {}
                    Action::Memory { from, to } => {
                        prop_assert_eq!(from, entry.1, "from is not the target rex saw");
                        if to > from {
                            // Within the policy's mem_max and the domain's
                            // maxmem (0: unknown).
                            prop_assert!(to <= 256 * MIB, "grown to {} above mem_max", to);
                            let maxmem = obs.info.mem_max_kb;
                            prop_assert!(
                                maxmem == 0 || to <= maxmem,
                                "grown to {} above maxmem {}", to, maxmem
                            );
                            grown += to - from.max(obs.info.mem_current_kb.min(to));
                        } else {
                            // Never below the guarantee (mem_min = level).
                            prop_assert!(to >= 64 * MIB, "shrunk to {} below mem_min", to);
                        }
                        entry.1 = to;
                    }
                }
            }
            prop_assert!(
                grown <= budget,
                "grew {} KiB with {} KiB free above the slush", grown, budget
            );
        }
    }
}
